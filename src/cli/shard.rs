//! Sharded `load` runs: `--shards N --shard-index I`. Shard 0 coordinates over HTTP (an
//! actix-web server on `--listen`); the others register with `--coordinator URL`, wait at its
//! barrier and post their reports; or, with `--shard-report FILE`, a shard writes its report
//! for `report merge` and talks to nobody.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Args;
use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::load::coordinator::{BarrierState, Coordinator, Registered, Registration};
use webpubsub_fleet::load::merge::nothing_reported;
use webpubsub_fleet::load::{
    self, BarrierFn, LoadError, LoadPlan, RunKey, ShardReport, ShardSpec, Simulation,
};

use super::args::duration;

/// Largest shard report the coordinator accepts: 1 GiB (about 4 million publishes and
/// 100,000 receivers; use `--shard-report` and `report merge` beyond that).
const MAX_REPORT_BYTES: usize = 1 << 30;
/// How often a shard asks the coordinator whether the barrier opened.
const POLL: Duration = Duration::from_millis(100);
/// How long a shard keeps trying a coordinator it cannot reach once registered.
const UNREACHABLE_FOR: Duration = Duration::from_secs(15);
/// How long the coordinator keeps answering after it gave up, so waiting shards learn why.
const LINGER: Duration = Duration::from_secs(2);
/// Added to the ramp-up time for the default barrier timeout.
const BARRIER_MARGIN: Duration = Duration::from_secs(60);

/// Flags of a sharded run (every shard gets the same ones; the index comes from the Job).
#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    /// Shards of the run: every flag means the whole run, and shard I runs clients I, I+N,
    /// I+2N, ... Needs --connection-string (a hub every shard reaches).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: u64,
    /// This shard's index, 0 to N-1 (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX).
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
    shard_index: u64,
    /// Shard 0's coordinator, for shards 1 to N-1 (http://HOST:PORT).
    #[arg(long, value_name = "URL")]
    coordinator: Option<url::Url>,
    /// Where shard 0's coordinator listens.
    #[arg(long, default_value = "0.0.0.0:7070")]
    listen: SocketAddr,
    /// Write this shard's report to FILE instead of talking to a coordinator (merge the
    /// files with `webpubsub-fleet report merge`); needs --seed.
    #[arg(long, value_name = "FILE")]
    shard_report: Option<PathBuf>,
    /// How long the coordinator waits for every shard to register and ramp up
    /// [default: the ramp-up time plus 60 s].
    #[arg(long, value_parser = duration)]
    barrier_timeout: Option<Duration>,
    /// How long the coordinator waits for the other shards' reports once its own run ended.
    #[arg(long, default_value = "60s", value_parser = duration)]
    report_timeout: Duration,
}

impl ShardArgs {
    /// Whether `load` runs as a shard.
    pub fn is_sharded(&self) -> bool {
        self.shards > 1 || self.shard_report.is_some()
    }
}

/// What a shard runs, from the `load` flags.
pub struct ShardRun {
    /// The plan (its seed is set here).
    pub plan: LoadPlan,
    /// `--seed`, if given.
    pub seed: Option<u64>,
    /// The workload hash.
    pub workload: String,
    /// The hub.
    pub target: FleetTarget,
    /// The workload.
    pub simulation: Arc<dyn Simulation>,
    /// `--json`.
    pub json: Option<PathBuf>,
}

/// Runs one shard; shard 0 coordinates unless `--shard-report` is given.
pub fn run(args: &ShardArgs, run: ShardRun) -> ExitCode {
    let spec = match ShardSpec::new(args.shard_index, args.shards) {
        Ok(spec) => spec,
        Err(e) => return super::fail(e),
    };
    if run.plan.clients < args.shards {
        return super::fail(format!(
            "--clients {} is fewer than --shards {}: every shard needs a client",
            run.plan.clients, args.shards
        ));
    }
    let barrier_timeout = args.barrier_timeout.unwrap_or_else(|| {
        // Every shard ramps at its share of the run's rate: together, clients / rate.
        let ramp = run.plan.clients as f64 / run.plan.ramp_rate.max(1e-3);
        Duration::try_from_secs_f64(ramp).unwrap_or(Duration::ZERO) + BARRIER_MARGIN
    });
    let system = actix_rt::System::new();
    if let Some(path) = args.shard_report.clone() {
        let Some(seed) = run.seed else {
            return super::fail(
                "--shard-report needs --seed: shards that never meet must be given the same one",
            );
        };
        return system.block_on(offline(spec, seed, run, path));
    }
    if spec.index == 0 {
        return system.block_on(coordinate(spec, args, barrier_timeout, run));
    }
    let Some(url) = args.coordinator.clone() else {
        return super::fail(format!(
            "shard {} needs --coordinator URL (shard 0's address, such as http://load-0.load:7070) or --shard-report FILE",
            spec.index
        ));
    };
    system.block_on(work(spec, url, barrier_timeout, run))
}

fn key_of(spec: ShardSpec, run: &ShardRun, seed: u64) -> RunKey {
    RunKey {
        shards: spec.count,
        clients: run.plan.clients,
        seed,
        workload: run.workload.clone(),
    }
}

fn progress(spec: ShardSpec) -> impl FnMut(&load::Progress) {
    move |p| eprintln!("[shard {}] {p}", spec.index)
}

/// `--shard-report FILE`: run the slice, write its report, print the slice's own table.
async fn offline(spec: ShardSpec, seed: u64, run: ShardRun, path: PathBuf) -> ExitCode {
    let key = key_of(spec, &run, seed);
    let mut plan = run.plan;
    plan.seed = seed;
    plan.shard = spec;
    let report = match load::run_shard(run.target, plan, key, run.simulation, progress(spec)).await
    {
        Ok(report) => report,
        Err(e) => return super::fail(e),
    };
    println!("{}", report.report);
    if let Err(e) = write_json(&path, &report) {
        return super::fail(e);
    }
    if let Some(json) = &run.json {
        if let Err(e) = write_json(json, &report.report) {
            return super::fail(e);
        }
    }
    eprintln!(
        "shard {} of {}: report written to {} (merge with `webpubsub-fleet report merge`)",
        spec.index,
        spec.count,
        path.display()
    );
    ExitCode::SUCCESS
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_vec(value).map_err(|e| format!("cannot serialize: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Wall time in µs since the Unix epoch.
fn now_us() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// Sleeps until the wall time `at_us` (at most a minute: a start instant further away is a
/// clock problem, not a plan).
async fn sleep_until_wall(at_us: u64) -> Result<(), String> {
    let wait = Duration::from_micros(at_us.saturating_sub(now_us()));
    if wait > Duration::from_secs(60) {
        return Err(format!(
            "the start instant is {} s away: are this machine's and the coordinator's clocks in sync?",
            wait.as_secs()
        ));
    }
    tokio::time::sleep(wait).await;
    Ok(())
}

type Shared = Arc<Mutex<Coordinator>>;

fn lock(c: &Shared) -> MutexGuard<'_, Coordinator> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

async fn register(c: web::Data<Shared>, body: web::Json<Registration>) -> HttpResponse {
    match lock(&c).register(&body) {
        Ok(registered) => {
            eprintln!("coordinator: shard {} registered", body.index);
            HttpResponse::Ok().json(registered)
        }
        Err(why) => {
            eprintln!("coordinator: refused a registration: {why}");
            HttpResponse::Conflict().body(why)
        }
    }
}

async fn barrier(c: web::Data<Shared>, index: web::Path<u64>) -> HttpResponse {
    match lock(&c).arrive(*index, now_us()) {
        Ok(state) => HttpResponse::Ok().json(state),
        Err(why) => HttpResponse::Conflict().body(why),
    }
}

/// `POST /v1/report/{index}`: the body is read only for a registered shard that has not
/// reported yet, and only up to [`MAX_REPORT_BYTES`].
async fn report(
    c: web::Data<Shared>,
    index: web::Path<u64>,
    mut payload: web::Payload,
) -> HttpResponse {
    use futures::StreamExt as _;
    let index = *index;
    if let Err(why) = lock(&c).expects_report(index) {
        return HttpResponse::Conflict().body(why);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return HttpResponse::BadRequest().body("the report's body broke off");
        };
        if body.len() + chunk.len() > MAX_REPORT_BYTES {
            return HttpResponse::PayloadTooLarge().body(format!(
                "a shard report over {} MiB: use --shard-report and report merge",
                MAX_REPORT_BYTES >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let report: ShardReport = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(e) => return HttpResponse::BadRequest().body(format!("not a shard report: {e}")),
    };
    if report.shard != index {
        return HttpResponse::BadRequest().body(format!(
            "the report of shard {} was posted as shard {index}'s",
            report.shard
        ));
    }
    match lock(&c).accept_report(report) {
        Ok(()) => {
            eprintln!("coordinator: shard {index} reported");
            HttpResponse::Ok().finish()
        }
        Err(why) => {
            eprintln!("coordinator: refused a report: {why}");
            HttpResponse::Conflict().body(why)
        }
    }
}

/// Shard 0: serve the coordinator, run its own slice, merge, print, exit by thresholds.
async fn coordinate(
    spec: ShardSpec,
    args: &ShardArgs,
    barrier_timeout: Duration,
    run: ShardRun,
) -> ExitCode {
    let seed = run.seed.unwrap_or_else(rand::random);
    eprintln!("seed {seed} (replay with --seed {seed})");
    let key = key_of(spec, &run, seed);
    let deadline = now_us().saturating_add(barrier_timeout.as_micros() as u64);
    let shared: Shared = Arc::new(Mutex::new(Coordinator::new(key.clone(), deadline)));
    let data = web::Data::new(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(64 * 1024))
            .route("/v1/register", web::post().to(register))
            .route("/v1/barrier/{index}", web::post().to(barrier))
            .route("/v1/report/{index}", web::post().to(report))
    })
    .workers(1)
    .disable_signals()
    .bind(args.listen);
    let server = match server {
        Ok(server) => server.run(),
        Err(e) => {
            return super::fail(format!(
                "the coordinator cannot listen on {}: {e} (choose another with --listen)",
                args.listen
            ));
        }
    };
    let handle = server.handle();
    actix_rt::spawn(server);
    eprintln!(
        "coordinator of {} shards listening on {} (barrier timeout {:.0} s)",
        spec.count,
        args.listen,
        barrier_timeout.as_secs_f64()
    );
    let own = Registration {
        index: 0,
        shards: key.shards,
        clients: key.clients,
        seed: Some(seed),
        workload: key.workload.clone(),
    };
    if let Err(e) = lock(&shared).register(&own) {
        return super::fail(e);
    }
    let barrier_shared = shared.clone();
    let barrier: BarrierFn = Arc::new(move || {
        let shared = barrier_shared.clone();
        async move {
            loop {
                let state = lock(&shared).arrive(0, now_us())?;
                match state {
                    BarrierState::Wait => tokio::time::sleep(POLL).await,
                    BarrierState::Start { at_unix_us } => {
                        return sleep_until_wall(at_unix_us).await;
                    }
                    BarrierState::Abort { error } => return Err(error),
                }
            }
        }
        .boxed_local()
    });
    let thresholds = run.plan.thresholds;
    let scenario = run.simulation.name();
    let mut plan = run.plan;
    plan.seed = seed;
    plan.shard = spec;
    plan.barrier = Some(barrier);
    let outcome = load::run_shard(
        run.target,
        plan,
        key.clone(),
        run.simulation,
        progress(spec),
    )
    .await;
    let report = match outcome {
        Ok(own) => {
            if let Err(e) = lock(&shared).accept_report(own) {
                return super::fail(format!("the coordinator's own report: {e}"));
            }
            let waited = args.report_timeout;
            let until = Instant::now() + waited;
            while !lock(&shared).missing_reports().is_empty() && Instant::now() < until {
                tokio::time::sleep(POLL).await;
            }
            let (reports, absent) =
                lock(&shared).take_reports(&format!("{:.0} s", waited.as_secs_f64()));
            match load::merge(&reports, &absent, &thresholds) {
                Ok(report) => report,
                Err(e) => return super::fail(format!("cannot merge the shard reports: {e}")),
            }
        }
        Err(LoadError::Coordination(why)) => {
            eprintln!("coordinator: {why}");
            let absent = lock(&shared).take_reports("-").1;
            // Shards still polling the barrier learn why before the server goes.
            tokio::time::sleep(LINGER).await;
            nothing_reported(&key, &absent, &scenario, &thresholds)
        }
        Err(e) => {
            lock(&shared).abort(format!("shard 0 failed: {e}"));
            tokio::time::sleep(LINGER).await;
            return super::fail(e);
        }
    };
    handle.stop(true).await;
    super::load::finish(&report, run.json)
}

/// An HTTP client for the coordinator, `timeout` per call.
fn client(timeout: Duration) -> awc::Client {
    awc::Client::builder().timeout(timeout).finish()
}

/// Per call for registration and the barrier: small bodies, answered at once.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Per call for posting a report: up to a gigabyte of JSON.
const REPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// An HTTP call to the coordinator: JSON answer, or the refusal's text.
async fn call<T: DeserializeOwned>(
    http: &awc::Client,
    url: &url::Url,
    path: &str,
    body: Vec<u8>,
) -> Result<T, CallError> {
    let url = url
        .join(path)
        .map_err(|e| CallError::Refused(format!("bad coordinator URL: {e}")))?;
    let mut response = http
        .post(url.as_str())
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    let bytes = response
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(CallError::Refused(format!(
            "{} ({})",
            String::from_utf8_lossy(&bytes),
            response.status()
        )));
    }
    if bytes.is_empty() {
        return serde_json::from_slice(b"null").map_err(|e| CallError::Refused(e.to_string()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| CallError::Refused(format!("the coordinator's answer is not understood: {e}")))
}

enum CallError {
    /// No answer: worth another try.
    Unreachable(String),
    /// An answer that says no: final.
    Refused(String),
}

/// Calls until an answer comes or `patience` passes without one.
async fn call_patiently<T: DeserializeOwned>(
    http: &awc::Client,
    url: &url::Url,
    path: &str,
    body: &[u8],
    patience: Duration,
) -> Result<T, String> {
    let began = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match call(http, url, path, body.to_vec()).await {
            Ok(answer) => return Ok(answer),
            Err(CallError::Refused(why)) => return Err(why),
            Err(CallError::Unreachable(why)) if began.elapsed() >= patience => {
                return Err(format!(
                    "the coordinator at {url} is unreachable after {attempts} attempts over {:.0} s: {why}; is shard 0 running, and is --coordinator its address?",
                    began.elapsed().as_secs_f64()
                ));
            }
            Err(CallError::Unreachable(_)) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Shards 1 to N-1: register, ramp, wait at the barrier, run, post the report.
async fn work(
    spec: ShardSpec,
    url: url::Url,
    barrier_timeout: Duration,
    run: ShardRun,
) -> ExitCode {
    let http = client(CALL_TIMEOUT);
    let registration = Registration {
        index: spec.index,
        shards: spec.count,
        clients: run.plan.clients,
        seed: run.seed,
        workload: run.workload.clone(),
    };
    let body = match serde_json::to_vec(&registration) {
        Ok(body) => body,
        Err(e) => return super::fail(e),
    };
    // Pods start in any order: wait for shard 0 as long as its barrier would.
    let registered: Registered =
        match call_patiently(&http, &url, "/v1/register", &body, barrier_timeout).await {
            Ok(r) => r,
            Err(why) => return super::fail(format!("shard {}: {why}", spec.index)),
        };
    eprintln!(
        "shard {} of {}: registered with {url}, seed {}",
        spec.index, spec.count, registered.seed
    );
    let key = key_of(spec, &run, registered.seed);
    let barrier_url = url.clone();
    let index = spec.index;
    let barrier: BarrierFn = Arc::new(move || {
        let url = barrier_url.clone();
        async move {
            let http = client(CALL_TIMEOUT);
            let path = format!("/v1/barrier/{index}");
            // The coordinator decides within its barrier timeout; this bound only matters
            // when it is gone.
            let until = Instant::now() + barrier_timeout + UNREACHABLE_FOR;
            while Instant::now() < until {
                let state: BarrierState =
                    call_patiently(&http, &url, &path, b"", UNREACHABLE_FOR).await?;
                match state {
                    BarrierState::Wait => tokio::time::sleep(POLL).await,
                    BarrierState::Start { at_unix_us } => {
                        return sleep_until_wall(at_unix_us).await;
                    }
                    BarrierState::Abort { error } => {
                        return Err(format!("the coordinator called the run off: {error}"));
                    }
                }
            }
            Err(format!(
                "the coordinator at {url} did not open the barrier within {:.0} s",
                (barrier_timeout + UNREACHABLE_FOR).as_secs_f64()
            ))
        }
        .boxed_local()
    });
    let mut plan = run.plan;
    plan.seed = registered.seed;
    plan.shard = spec;
    plan.barrier = Some(barrier);
    let report = match load::run_shard(run.target, plan, key, run.simulation, progress(spec)).await
    {
        Ok(report) => report,
        Err(e) => return super::fail(format!("shard {}: {e}", spec.index)),
    };
    println!("{}", report.report);
    let body = match serde_json::to_vec(&report) {
        Ok(body) => body,
        Err(e) => return super::fail(e),
    };
    let posted: Result<(), String> = call_patiently(
        &client(REPORT_TIMEOUT),
        &url,
        &format!("/v1/report/{}", spec.index),
        &body,
        UNREACHABLE_FOR,
    )
    .await;
    if let Err(why) = posted {
        return super::fail(format!("shard {}: posting the report: {why}", spec.index));
    }
    eprintln!("shard {}: report posted to {url}", spec.index);
    if let Some(path) = run.json {
        if let Err(e) = write_json(&path, &report.report) {
            return super::fail(e);
        }
    }
    ExitCode::SUCCESS
}
