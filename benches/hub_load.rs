//! Hub and transport benchmarks: the local hub in a process of its own, driven by raw
//! tokio-tungstenite clients that speak `json.reliable.webpubsub.azure.v1` with this crate's
//! codec. The raw clients are also the bare-transport baseline the official clients
//! (`benches/peers/`) are compared with.
//!
//! ```text
//! cargo bench --bench hub_load -- idle --connections 10000
//! cargo bench --bench hub_load -- fanout --groups 4 --group-size 100 --size 100 --duration 10
//! cargo bench --bench hub_load -- fanout --server both --groups 10 --publishers 1 --rate 300
//! cargo bench --bench hub_load -- peer --client js --workload idle --connections 1000
//! ```
//!
//! The binary re-executes itself as `serve-hub` to run the hub (default `HubConfig` on
//! 127.0.0.1:0), reads the connection string from the child's first stdout line and measures
//! both processes from `/proc`: RSS (`VmRSS`) and CPU time (`utime + stime`). Every run is
//! bounded in time and count and talks to 127.0.0.1 only. Results print as a summary and,
//! with `--json FILE`, as JSON. See docs/performance.md, "Hub and transport benchmarks".

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use webpubsub_fleet::credential::{ConnectionString, TokenOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::protocol::json::{
    decode_inbound, decode_outbound, encode_inbound, encode_outbound,
};
use webpubsub_fleet::protocol::{Inbound, Outbound, Payload};

/// The hub name every client uses.
const HUB: &str = "bench";
/// The subprotocol of every raw client.
const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
/// A receiver acks after this many messages, or after [`ACK_INTERVAL`], as the official
/// clients do; the hub closes a reliable client past 1000 unacked messages.
const ACK_EVERY: u64 = 300;
const ACK_INTERVAL: Duration = Duration::from_secs(1);
/// Descriptors kept free in each process beyond one per connection (listener, epoll, pipes,
/// log files).
const FD_MARGIN: usize = 100;
/// Hard bounds, whatever the arguments say.
const MAX_DURATION_SECS: u64 = 120;
const CONNECT_DEADLINE: Duration = Duration::from_secs(180);
/// The hub process exits on its own after this long even if the driver never closes its stdin.
const HUB_LIFETIME: Duration = Duration::from_secs(1800);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Parser)]
#[command(about = "Local hub benchmarks with raw WebSocket clients (see docs/performance.md)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Internal: run the hub and print its connection string on stdout's first line.
    #[command(hide = true)]
    ServeHub {
        /// HTTP worker threads (default: the hub's default, one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Internal: run the bare actix-web-actors pusher (issue 10's baseline) and print a
    /// connection string for it on stdout's first line.
    #[command(hide = true)]
    ServeBare {
        /// HTTP worker threads (default: one per core, as the hub).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Open N raw clients, hold them idle, report RSS per connection of hub and driver.
    Idle(IdleArgs),
    /// Groups of receivers, publishers sending as fast as the hub acks (or at a rate).
    Fanout(FanoutArgs),
    /// Run an official client (benches/peers/) against a hub process.
    Peer(PeerArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Hub HTTP worker threads (default: the hub's default, one per core).
    #[arg(long)]
    hub_workers: Option<usize>,
    /// Driver threads, each a current-thread tokio runtime (default: cores).
    #[arg(long)]
    driver_threads: Option<usize>,
}

#[derive(Args, Clone)]
struct IdleArgs {
    /// Connections to open (capped by RLIMIT_NOFILE and the ephemeral port range).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds to hold them idle once all are connected (25: one keepalive ping round).
    #[arg(long, default_value_t = 25)]
    hold: u64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Clone)]
struct FanoutArgs {
    /// Groups.
    #[arg(long, default_value_t = 4)]
    groups: usize,
    /// Receivers per group.
    #[arg(long, default_value_t = 100)]
    group_size: usize,
    /// Publishers per group (not members: they receive only acks).
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Unacked sendToGroup requests per publisher.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Messages per second per publisher (0: as fast as the acks come back).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Bytes of text data per message (a timestamp and padding).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// The server: the hub, the bare actix-web-actors pusher (no hub logic: the baseline of
    /// issue 10), or both one after the other with the same clients and workload.
    #[arg(long, value_enum, default_value_t = Server::Hub)]
    server: Server,
    #[command(flatten)]
    common: Common,
}

/// What `fanout` measures.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Server {
    /// The local hub.
    Hub,
    /// The bare pusher.
    Bare,
    /// The hub, then the bare pusher, and their CPU per delivery side by side.
    Both,
}

#[derive(Args, Clone)]
struct PeerArgs {
    /// `python` (sync client), `python-aio` or `js`.
    #[arg(long)]
    client: String,
    /// `idle` or `fanout`.
    #[arg(long)]
    workload: String,
    /// Idle: connections.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// Idle: seconds held.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Fan-out: groups.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// Fan-out: receivers per group.
    #[arg(long, default_value_t = 100)]
    group_size: usize,
    /// Fan-out: publishers per group.
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Fan-out: unacked sends per publisher.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Fan-out: messages per second per publisher (0: as fast as acked).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Fan-out: bytes of text data per message.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Fan-out: seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Fan-out: seconds of warm-up.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// The Python interpreter with azure-messaging-webpubsubclient (default: the one in
    /// target/interop/venv, from scripts/setup-interop.sh).
    #[arg(long)]
    python: Option<PathBuf>,
    /// A node_modules folder with @azure/web-pubsub-client (default: the one in
    /// target/interop/node, from scripts/setup-interop.sh).
    #[arg(long)]
    node_modules: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn main() {
    // `cargo bench` appends `--bench` to the arguments of every bench binary.
    let mut args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    // `cargo test --all-targets` runs it with no arguments at all: a one-second fan-out with
    // ten receivers, against the hub and then the bare pusher, proves the benchmark still
    // runs, without spending CI minutes on figures.
    if args.len() == 1 {
        args.extend(
            [
                "fanout",
                "--server",
                "both",
                "--groups",
                "1",
                "--group-size",
                "10",
                "--publishers",
                "1",
                "--rate",
                "50",
                "--duration",
                "1",
                "--warmup",
                "0",
            ]
            .map(String::from),
        );
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Cmd::ServeHub { workers } => serve_hub(workers),
        Cmd::ServeBare { workers } => serve_bare(workers),
        Cmd::Idle(a) => idle(a),
        Cmd::Fanout(a) => fanout(a),
        Cmd::Peer(a) => peer(a),
    };
    if let Err(e) = result {
        eprintln!("hub_load: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// The hub process.

/// Runs the hub until stdin closes (the driver ended) or [`HUB_LIFETIME`]. A `stats` line on
/// stdin is answered with the hub's counters as one JSON line.
fn serve_hub(workers: Option<usize>) -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut config = HubConfig::new().bind("127.0.0.1:0".parse().expect("an address"));
        if let Some(w) = workers {
            config = config.workers(w);
        }
        let hub = Hub::start(config).await.map_err(|e| e.to_string())?;
        {
            let mut out = std::io::stdout().lock();
            // The development key (public, loopback only): the driver needs it to mint tokens.
            writeln!(out, "{}", hub.connection_string().expose()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let for_stdin = hub.clone();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "stats" {
                    let stats = serde_json::to_string(&for_stdin.stats()).unwrap_or_default();
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{stats}").and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
            }
            let _ = done_tx.send(());
        });
        tokio::select! {
            _ = done_rx => {}
            _ = tokio::time::sleep(HUB_LIFETIME) => eprintln!("serve-hub: lifetime reached, stopping"),
        }
        hub.stop().await;
        Ok(())
    })
}

/// A hub running in a child process.
struct HubProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    connection_string: ConnectionString,
}

impl HubProcess {
    fn start(workers: Option<usize>) -> Res<HubProcess> {
        HubProcess::start_server("serve-hub", workers)
    }

    /// Starts `serve-hub` or `serve-bare` in a child process.
    fn start_server(command: &str, workers: Option<usize>) -> Res<HubProcess> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.arg(command);
        if let Some(w) = workers {
            cmd.arg("--workers").arg(w.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the hub process: {e}"))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no hub stdout")?);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| format!("reading the hub's connection string: {e}"))?;
        let connection_string = ConnectionString::parse(line.trim())
            .map_err(|e| format!("the hub printed no connection string: {e}"))?;
        Ok(HubProcess {
            child,
            stdin,
            stdout,
            connection_string,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The hub's counters (`HubStats` as JSON).
    fn stats(&mut self) -> Value {
        let Some(stdin) = self.stdin.as_mut() else {
            return Value::Null;
        };
        if writeln!(stdin, "stats")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return Value::Null;
        }
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The bare pusher (issue 10's baseline): actix-web + actix-web-actors and nothing of the hub.
// Sockets sit in groups (from the `group` query parameter: no token is read); a sendToGroup
// becomes one pre-serialized group-message frame (with the group's sequenceId), shared by
// every member's socket, and an ack. Sequence acks and anything else are read and dropped.
// What the hub adds on top (auth, reliable sessions, per-receiver sequence ids, the
// slow-client rule, stats) is exactly what `fanout --server both` prices.

#[derive(Default)]
struct BareState {
    groups: std::sync::Mutex<std::collections::HashMap<String, BareGroup>>,
    messages_out: AtomicU64,
    connections: AtomicU64,
}

#[derive(Default)]
struct BareGroup {
    members: Vec<actix::Addr<BareSocket>>,
    sequence: u64,
}

struct BareSocket {
    state: Arc<BareState>,
    group: Option<String>,
    user: String,
}

/// One frame for one socket; the frame's bytes are shared, not copied.
struct Push(bytestring::ByteString);

impl actix::Message for Push {
    type Result = ();
}

impl BareSocket {
    fn groups(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, BareGroup>> {
        self.state.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_text(&mut self, text: &str, ctx: &mut actix_web_actors::ws::WebsocketContext<Self>) {
        let Ok(Outbound::SendToGroup {
            group,
            ack_id,
            data,
            ..
        }) = decode_outbound(text)
        else {
            return;
        };
        let sent = {
            let mut groups = self.groups();
            let g = groups.entry(group.clone()).or_default();
            g.sequence += 1;
            let frame: bytestring::ByteString = encode_inbound(&Inbound::GroupMessage {
                sequence_id: Some(g.sequence),
                group,
                from_user_id: Some(self.user.clone()),
                data,
            })
            .into();
            for member in &g.members {
                member.do_send(Push(frame.clone()));
            }
            g.members.len() as u64
        };
        self.state.messages_out.fetch_add(sent, Relaxed);
        if let Some(ack_id) = ack_id {
            ctx.text(encode_inbound(&Inbound::Ack {
                ack_id,
                success: true,
                error: None,
            }));
        }
    }
}

impl actix::Actor for BareSocket {
    type Context = actix_web_actors::ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        use actix::AsyncContext;
        let id = self.state.connections.fetch_add(1, Relaxed);
        if let Some(group) = &self.group {
            let address = ctx.address();
            self.groups()
                .entry(group.clone())
                .or_default()
                .members
                .push(address);
        }
        ctx.text(encode_inbound(&Inbound::Connected {
            connection_id: format!("bare-{id}"),
            user_id: Some(self.user.clone()),
            reconnection_token: None,
        }));
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        use actix::AsyncContext;
        if let Some(group) = &self.group {
            let address = ctx.address();
            if let Some(g) = self.groups().get_mut(group) {
                g.members.retain(|m| *m != address);
            }
        }
    }
}

impl actix::Handler<Push> for BareSocket {
    type Result = ();

    fn handle(&mut self, Push(frame): Push, ctx: &mut Self::Context) {
        ctx.text(frame);
    }
}

impl
    actix::StreamHandler<Result<actix_web_actors::ws::Message, actix_web_actors::ws::ProtocolError>>
    for BareSocket
{
    fn handle(
        &mut self,
        message: Result<actix_web_actors::ws::Message, actix_web_actors::ws::ProtocolError>,
        ctx: &mut Self::Context,
    ) {
        use actix::ActorContext;
        use actix_web_actors::ws::Message as M;
        match message {
            Ok(M::Text(text)) => self.on_text(&text, ctx),
            Ok(M::Ping(p)) => ctx.pong(&p),
            Ok(M::Close(_)) | Err(_) => ctx.stop(),
            Ok(_) => {}
        }
    }
}

async fn bare_socket(
    request: actix_web::HttpRequest,
    stream: actix_web::web::Payload,
    state: actix_web::web::Data<BareState>,
) -> Result<actix_web::HttpResponse, actix_web::Error> {
    let mut query = actix_web::web::Query::<std::collections::HashMap<String, String>>::from_query(
        request.query_string(),
    )
    .map(|q| q.into_inner())
    .unwrap_or_default();
    let socket = BareSocket {
        state: state.into_inner(),
        group: query.remove("group"),
        user: query.remove("user").unwrap_or_default(),
    };
    actix_web_actors::ws::WsResponseBuilder::new(socket, &request, stream)
        .protocols(&[RELIABLE])
        .frame_size(1 << 20)
        .start()
}

/// Runs the bare pusher until stdin closes; answers `stats` lines as `serve-hub` does
/// (`messages_out`, and `slow_clients` always 0: it has no such rule).
fn serve_bare(workers: Option<usize>) -> Res<()> {
    actix_rt::System::new().block_on(async move {
        let state = actix_web::web::Data::new(BareState::default());
        let for_app = state.clone();
        let mut server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(for_app.clone())
                .route("/client/hubs/{hub}", actix_web::web::get().to(bare_socket))
        })
        .disable_signals();
        if let Some(w) = workers {
            server = server.workers(w.max(1));
        }
        let server = server
            .bind("127.0.0.1:0")
            .map_err(|e| format!("the bare pusher cannot bind: {e}"))?;
        let port = server.addrs().first().map(|a| a.port()).ok_or("no address")?;
        let server = server.run();
        let handle = server.handle();
        {
            let mut out = std::io::stdout().lock();
            // A connection string only so that the driver mints its URLs as for the hub: the
            // bare pusher reads no token.
            writeln!(
                out,
                "Endpoint=http://127.0.0.1:{port};AccessKey={};Version=1.0;",
                webpubsub_fleet::hub::DEVELOPMENT_ACCESS_KEY
            )
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "stats" {
                    let stats = json!({
                        "messages_out": state.messages_out.load(Relaxed),
                        "connections": state.connections.load(Relaxed),
                        "slow_clients": 0,
                    });
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{stats}").and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
            }
            let _ = done_tx.send(());
        });
        let stopper = async move {
            tokio::select! {
                _ = done_rx => {}
                _ = tokio::time::sleep(HUB_LIFETIME) => eprintln!("serve-bare: lifetime reached, stopping"),
            }
            handle.stop(false).await;
        };
        let (served, ()) = futures::join!(server, stopper);
        served.map_err(|e| e.to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// /proc readings.

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime from a `/proc/.../stat` line, in clock ticks, with the thread or process name.
fn stat_ticks(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU time of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    stat_ticks(&format!("/proc/{pid}/stat")).map_or(0.0, |(_, t)| t as f64 / clk_tck())
}

/// CPU seconds of each thread of a process, as `name/tid` (names are cut to 15 bytes by the
/// kernel, so actix's worker threads all read `actix-rt|system`: the tid tells them apart).
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut threads: Vec<(String, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for entry in dir.flatten() {
        let tid = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{}/stat", entry.path().display());
        if let Some((name, ticks)) = stat_ticks(&path) {
            threads.push((format!("{name}/{tid}"), ticks as f64 / clk_tck()));
        }
    }
    threads
}

fn thread_cpu_delta(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, a)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, b)| *b);
            (name.clone(), a - b)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Busy CPU seconds of the machine since boot (all CPUs, everything but idle and iowait):
/// what other processes (other engineers' builds) took during a run is this less ours.
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, x)| *x)
        .sum();
    busy as f64 / clk_tck()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The soft limit of open files of this process (children inherit it).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Ephemeral ports one source address has for one destination.
fn ephemeral_ports() -> usize {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let v: Vec<usize> = range
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v.as_slice() {
        [lo, hi] if hi >= lo => hi - lo + 1,
        _ => 28_000,
    }
}

/// How many connections this machine lets one driver and one hub process hold, and why.
fn connection_capacity() -> (usize, String) {
    let fds = open_files_limit().saturating_sub(FD_MARGIN);
    let ports = ephemeral_ports().saturating_sub(FD_MARGIN);
    let cap = fds.min(ports);
    let why = format!(
        "RLIMIT_NOFILE {} per process (driver and hub each hold one descriptor per connection), {} ephemeral ports on 127.0.0.1",
        open_files_limit(),
        ephemeral_ports()
    );
    (cap, why)
}

/// Seconds since the Unix epoch, in nanoseconds: the timestamp carried in each payload, on the
/// wall clock so that other processes (the official clients) can read it too.
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------------
// Driver threads: one current-thread runtime each, clients spread round robin.

thread_local! {
    static THREAD_INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static LATENCY: RefCell<Histogram<u64>> = RefCell::new(new_histogram());
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// A counter per driver thread, each on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

struct Counters {
    per_thread: Vec<Padded>,
}

impl Counters {
    fn new(threads: usize) -> Counters {
        Counters {
            per_thread: (0..threads).map(|_| Padded::default()).collect(),
        }
    }
    fn add(&self, n: u64) {
        let i = THREAD_INDEX.with(|c| c.get());
        self.per_thread[i].0.fetch_add(n, Relaxed);
    }
    fn total(&self) -> u64 {
        self.per_thread.iter().map(|p| p.0.load(Relaxed)).sum()
    }
}

struct Driver {
    handles: Vec<tokio::runtime::Handle>,
    stop_txs: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Driver {
    fn start(threads: usize) -> Res<Driver> {
        let mut handles = Vec::new();
        let mut stop_txs = Vec::new();
        let mut joins = Vec::new();
        for index in 0..threads {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            handles.push(rt.handle().clone());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            stop_txs.push(tx);
            joins.push(
                std::thread::Builder::new()
                    .name(format!("driver-{index}"))
                    .spawn(move || {
                        THREAD_INDEX.with(|c| c.set(index));
                        rt.block_on(async move {
                            let _ = rx.await;
                        });
                        // Tasks still running (sockets) are dropped with the runtime.
                        rt.shutdown_timeout(Duration::from_secs(2));
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(Driver {
            handles,
            stop_txs,
            threads: joins,
        })
    }

    fn handle(&self, i: usize) -> &tokio::runtime::Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Merges the latency histograms of every driver thread (and resets them).
    fn take_latency(&self) -> Histogram<u64> {
        let mut total = new_histogram();
        for h in &self.handles {
            let (tx, rx) = std::sync::mpsc::channel();
            h.spawn(async move {
                let hist = LATENCY.with(|l| {
                    let mut l = l.borrow_mut();
                    let copy = l.clone();
                    l.reset();
                    copy
                });
                let _ = tx.send(hist);
            });
            if let Ok(hist) = rx.recv_timeout(Duration::from_secs(5)) {
                let _ = total.add(hist);
            }
        }
        total
    }

    fn stop(self) {
        for tx in self.stop_txs {
            let _ = tx.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn driver_threads(common: &Common) -> usize {
    common.driver_threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Opens one raw client with a token minted by the credential module, and waits for its
/// `connected` frame.
async fn connect(cs: &ConnectionString, options: &TokenOptions, bare: Option<String>) -> Res<Ws> {
    let url = cs
        .client_access_url(HUB, options, SystemTime::now())
        .map_err(|e| e.to_string())?;
    // The bare pusher reads no token: it takes the group and user from the query.
    let url = match bare {
        Some(query) => format!("{}&{query}", url.expose()),
        None => url.expose().to_string(),
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        RELIABLE.parse().expect("a header value"),
    );
    let config = WebSocketConfig {
        max_message_size: Some(1 << 20),
        max_frame_size: Some(1 << 20),
        ..WebSocketConfig::default()
    };
    let (mut ws, _) = connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match decode_inbound(&t) {
                Ok(Inbound::Connected { .. }) => return Ok(ws),
                Ok(_) => {}
                Err(e) => return Err(format!("bad first frame: {e}")),
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed before connected".into()),
        }
    }
}

/// Shared progress of the clients.
struct Shared {
    connected: AtomicUsize,
    failed: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
    /// Sockets that ended while they should have stayed open.
    lost: AtomicUsize,
    deliveries: Counters,
    published: AtomicU64,
    acked: AtomicU64,
    ack_errors: AtomicU64,
    sequence_acks: AtomicU64,
    /// Latency is recorded only while this is set (the measured window).
    measuring: AtomicBool,
    /// The server is the bare pusher (group and user go in the query).
    bare: bool,
}

impl Shared {
    fn new(threads: usize, bare: bool) -> Arc<Shared> {
        Arc::new(Shared {
            bare,
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_error: std::sync::Mutex::new(None),
            lost: AtomicUsize::new(0),
            deliveries: Counters::new(threads),
            published: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            ack_errors: AtomicU64::new(0),
            sequence_acks: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
        })
    }

    fn fail(&self, e: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
    }

    fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Waits until `done()` or the deadline; prints progress every few seconds.
fn wait_for(
    what: &str,
    deadline: Duration,
    mut done: impl FnMut() -> bool,
    progress: impl Fn() -> String,
) -> bool {
    let start = Instant::now();
    let mut last = Instant::now();
    while start.elapsed() < deadline {
        if done() {
            return true;
        }
        if last.elapsed() > Duration::from_secs(3) {
            eprintln!("  {what}: {}", progress());
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn write_json(path: &Option<PathBuf>, value: &Value) -> Res<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}

fn machine_note() -> Value {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "loadavg_before": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "open_files_limit": open_files_limit(),
    })
}

// ---------------------------------------------------------------------------------------------
// idle

/// An idle raw client: reads (so that pings are answered) until told to stop.
async fn idle_client(
    cs: ConnectionString,
    index: usize,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let options = TokenOptions::new().user_id(format!("idle-{index}"));
    let ws = {
        let _permit = permits.acquire().await;
        connect(&cs, &options, None).await
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => return shared.fail(e),
    };
    shared.connected.fetch_add(1, Relaxed);
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(_)) => {}
                _ => {
                    if !*stop.borrow() {
                        shared.lost.fetch_add(1, Relaxed);
                    }
                    return;
                }
            },
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
}

fn idle(args: IdleArgs) -> Res<()> {
    let threads = driver_threads(&args.common);
    let (capacity, why) = connection_capacity();
    let n = args.connections.min(capacity);
    if n < args.connections {
        eprintln!(
            "asked for {} connections; this machine allows {capacity} ({why}): using {n}",
            args.connections
        );
    }
    let hold = args.hold.min(MAX_DURATION_SECS);
    let machine = machine_note();
    let mut hub = HubProcess::start(args.common.hub_workers)?;
    let hub_pid = hub.pid();
    let me = std::process::id();
    let driver = Driver::start(threads)?;
    let shared = Shared::new(threads, false);
    // Let both processes settle before the baselines.
    std::thread::sleep(Duration::from_millis(500));
    let hub_base = rss_kib(hub_pid);
    let driver_base = rss_kib(me);
    eprintln!(
        "idle: {n} raw clients ({RELIABLE}), hub pid {hub_pid} baseline {hub_base} KiB, driver baseline {driver_base} KiB"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let t0 = Instant::now();
    for i in 0..n {
        driver.handle(i).spawn(idle_client(
            hub.connection_string.clone(),
            i,
            shared.clone(),
            permits.clone(),
            stop_rx.clone(),
        ));
    }
    let all = wait_for(
        "connecting",
        CONNECT_DEADLINE,
        || shared.connected.load(Relaxed) + shared.failed.load(Relaxed) >= n,
        || {
            format!(
                "{} connected, {} failed, hub RSS {} KiB",
                shared.connected.load(Relaxed),
                shared.failed.load(Relaxed),
                rss_kib(hub_pid)
            )
        },
    );
    let connect_secs = t0.elapsed().as_secs_f64();
    let connected = shared.connected.load(Relaxed);
    eprintln!(
        "  {connected} connected in {connect_secs:.1} s ({} failed{}); holding {hold} s",
        shared.failed.load(Relaxed),
        shared
            .first_error()
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default()
    );
    let mut hub_peak = 0;
    let mut driver_peak = 0;
    let cpu0 = (cpu_secs(hub_pid), cpu_secs(me));
    let hold_start = Instant::now();
    while hold_start.elapsed() < Duration::from_secs(hold) {
        hub_peak = hub_peak.max(rss_kib(hub_pid));
        driver_peak = driver_peak.max(rss_kib(me));
        std::thread::sleep(Duration::from_millis(250));
    }
    let hub_rss = rss_kib(hub_pid);
    let driver_rss = rss_kib(me);
    let cpu1 = (cpu_secs(hub_pid), cpu_secs(me));
    let stats = hub.stats();
    let lost = shared.lost.load(Relaxed);
    let _ = stop_tx.send(true);
    std::thread::sleep(Duration::from_millis(500));
    driver.stop();
    hub.stop();

    let per = |rss: u64, base: u64| {
        if connected == 0 {
            0.0
        } else {
            rss.saturating_sub(base) as f64 / connected as f64
        }
    };
    let hub_per = per(hub_rss, hub_base);
    let driver_per = per(driver_rss, driver_base);
    println!();
    println!(
        "== idle: {connected} of {n} raw clients connected ({all_s}), held {hold} s",
        all_s = if all {
            "all settled"
        } else {
            "deadline reached"
        }
    );
    println!(
        "  connect time            {connect_secs:.1} s ({:.0}/s)",
        connected as f64 / connect_secs.max(1e-9)
    );
    println!("  hub RSS                 {hub_base} -> {hub_rss} KiB (peak {hub_peak})");
    println!(
        "  hub RSS per connection  {hub_per:.1} KiB   (target <= 24 KiB: {})",
        if hub_per <= 24.0 { "met" } else { "NOT met" }
    );
    println!("  driver RSS              {driver_base} -> {driver_rss} KiB (peak {driver_peak})");
    println!("  driver RSS per client   {driver_per:.1} KiB");
    println!(
        "  CPU while idle          hub {:.3} s, driver {:.3} s over {hold} s",
        cpu1.0 - cpu0.0,
        cpu1.1 - cpu0.1
    );
    println!(
        "  sockets lost while idle {lost}; hub counts {} connections",
        stats["connections"]
    );
    write_json(
        &args.common.json,
        &json!({
            "workload": "idle",
            "client": "raw tokio-tungstenite",
            "requested": args.connections,
            "connections": connected,
            "failed": shared.failed.load(Relaxed),
            "lost_while_idle": lost,
            "connect_secs": connect_secs,
            "hold_secs": hold,
            "hub": {"pid": hub_pid, "rss_base_kib": hub_base, "rss_kib": hub_rss, "rss_peak_kib": hub_peak,
                    "rss_per_connection_kib": hub_per, "workers": args.common.hub_workers},
            "driver": {"threads": threads, "rss_base_kib": driver_base, "rss_kib": driver_rss,
                       "rss_peak_kib": driver_peak, "rss_per_client_kib": driver_per},
            "hub_stats": stats,
            "machine": machine,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// fanout

/// The payload: the publish time (wall clock, ns), the publisher and its counter, padded with
/// `x` to `size` bytes.
fn payload(size: usize, publisher: usize, seq: u64) -> String {
    let mut s = format!("t={:019};p={publisher:05};s={seq:012};", now_nanos());
    while s.len() < size {
        s.push('x');
    }
    s
}

/// The publish time in a payload made by [`payload`] (or by the peer scripts, same format).
fn payload_time(data: &str) -> Option<u64> {
    data.get(2..21)?.parse().ok()
}

async fn receiver(
    cs: ConnectionString,
    group: String,
    index: usize,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let bare = (shared.bare).then(|| format!("group={group}&user=recv-{index}"));
    let options = TokenOptions::new()
        .user_id(format!("recv-{index}"))
        .group(group);
    let ws = {
        let _permit = permits.acquire().await;
        connect(&cs, &options, bare).await
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => return shared.fail(e),
    };
    shared.connected.fetch_add(1, Relaxed);
    let mut last_seq = 0u64;
    let mut acked_seq = 0u64;
    let mut tick = tokio::time::interval(ACK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ack_now = tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(Inbound::GroupMessage { sequence_id, data, .. }) = decode_inbound(&t) {
                        shared.deliveries.add(1);
                        if let Some(seq) = sequence_id {
                            last_seq = last_seq.max(seq);
                        }
                        if shared.measuring.load(Relaxed) {
                            if let Payload::Text(s) = &data {
                                if let Some(sent) = payload_time(s) {
                                    let micros = now_nanos().saturating_sub(sent) / 1000;
                                    LATENCY.with(|l| l.borrow_mut().saturating_record(micros.max(1)));
                                }
                            }
                        }
                    }
                    last_seq - acked_seq >= ACK_EVERY
                }
                Some(Ok(_)) => false,
                _ => {
                    if !*stop.borrow() {
                        shared.lost.fetch_add(1, Relaxed);
                    }
                    return;
                }
            },
            _ = tick.tick() => last_seq > acked_seq,
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
        };
        if ack_now {
            let frame = encode_outbound(&Outbound::SequenceAck {
                sequence_id: last_seq,
            });
            if ws.send(Message::Text(frame)).await.is_err() {
                shared.lost.fetch_add(1, Relaxed);
                return;
            }
            shared.sequence_acks.fetch_add(1, Relaxed);
            acked_seq = last_seq;
        }
    }
}

struct PublisherPlan {
    index: usize,
    group: String,
    window: usize,
    rate: f64,
    size: usize,
}

async fn publisher(
    cs: ConnectionString,
    plan: PublisherPlan,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut go: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let options = TokenOptions::new()
        .user_id(format!("pub-{}", plan.index))
        .role(format!("webpubsub.sendToGroup.{}", plan.group));
    let bare = (shared.bare).then(|| format!("user=pub-{}", plan.index));
    let ws = {
        let _permit = permits.acquire().await;
        connect(&cs, &options, bare).await
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => return shared.fail(e),
    };
    shared.connected.fetch_add(1, Relaxed);
    if go.wait_for(|g| *g).await.is_err() {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    let mut in_flight = 0usize;
    loop {
        let stopping = *stop.borrow();
        if stopping && in_flight == 0 {
            let _ = ws.close(None).await;
            return;
        }
        // Fill the window (up to the rate's schedule).
        let mut wrote = false;
        let mut due = None;
        while !stopping && in_flight < plan.window {
            if plan.rate > 0.0 {
                let at = start + Duration::from_secs_f64(sent as f64 / plan.rate);
                if at > tokio::time::Instant::now() {
                    due = Some(at);
                    break;
                }
            }
            sent += 1;
            let frame = encode_outbound(&Outbound::SendToGroup {
                group: plan.group.clone(),
                ack_id: Some(sent),
                no_echo: false,
                data: Payload::Text(payload(plan.size, plan.index, sent)),
            });
            if ws.feed(Message::Text(frame)).await.is_err() {
                shared.lost.fetch_add(1, Relaxed);
                return;
            }
            in_flight += 1;
            wrote = true;
            shared.published.fetch_add(1, Relaxed);
        }
        if wrote && ws.flush().await.is_err() {
            shared.lost.fetch_add(1, Relaxed);
            return;
        }
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(Inbound::Ack { success, .. }) = decode_inbound(&t) {
                        in_flight = in_flight.saturating_sub(1);
                        shared.acked.fetch_add(1, Relaxed);
                        if !success {
                            shared.ack_errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    if !*stop.borrow() {
                        shared.lost.fetch_add(1, Relaxed);
                    }
                    return;
                }
            },
            _ = sleep => {}
            _ = stop.changed(), if !stopping => {}
        }
    }
}

struct Snapshot {
    at: Instant,
    /// Busy CPU seconds of the whole machine (every process), from /proc/stat.
    machine_busy: f64,
    deliveries: u64,
    published: u64,
    hub_cpu: f64,
    driver_cpu: f64,
    hub_threads: Vec<(String, f64)>,
    driver_threads: Vec<(String, f64)>,
}

fn snapshot(shared: &Shared, hub_pid: u32) -> Snapshot {
    let me = std::process::id();
    Snapshot {
        at: Instant::now(),
        machine_busy: machine_busy_secs(),
        deliveries: shared.deliveries.total(),
        published: shared.published.load(Relaxed),
        hub_cpu: cpu_secs(hub_pid),
        driver_cpu: cpu_secs(me),
        hub_threads: thread_cpu(hub_pid),
        driver_threads: thread_cpu(me),
    }
}

fn latency_json(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
    })
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// `fanout` on the server(s) `--server` names; with `both`, the hub then the bare pusher,
/// and the ratio of their CPU per delivery.
fn fanout(args: FanoutArgs) -> Res<()> {
    let result = match args.server {
        Server::Both => {
            let hub = fanout_on(&args, Server::Hub)?;
            let bare = fanout_on(&args, Server::Bare)?;
            let per = |v: &Value| v["hub"]["cpu_us_per_delivery"].as_f64().unwrap_or(0.0);
            let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
            let ratio = if per(&bare) > 0.0 {
                per(&hub) / per(&bare)
            } else {
                0.0
            };
            println!();
            println!("== hub vs bare pusher, same clients and workload");
            println!(
                "  server CPU per delivery   hub {:.2} us, bare pusher {:.2} us: {ratio:.2}x (issue 10 target <= 1.5x)",
                per(&hub),
                per(&bare)
            );
            println!(
                "  deliveries/s              hub {:.0}, bare pusher {:.0}",
                rate(&hub),
                rate(&bare)
            );
            json!({"hub": hub, "bare": bare, "hub_over_bare_cpu_per_delivery": ratio})
        }
        server => fanout_on(&args, server)?,
    };
    write_json(&args.common.json, &result)
}

/// One fan-out run against `server` (the hub or the bare pusher): prints its summary and
/// returns it as JSON. The server's figures are under `hub` in either case.
fn fanout_on(args: &FanoutArgs, server: Server) -> Res<Value> {
    let server_name = if server == Server::Bare {
        "bare pusher"
    } else {
        "hub"
    };
    let threads = driver_threads(&args.common);
    let receivers = args.groups * args.group_size;
    let publishers = args.groups * args.publishers;
    let (capacity, why) = connection_capacity();
    if receivers + publishers > capacity {
        return Err(format!(
            "{} connections asked; this machine allows {capacity} ({why})",
            receivers + publishers
        ));
    }
    if args.size < 40 {
        return Err("--size must be at least 40 bytes (timestamp and ids)".into());
    }
    let duration = args.duration.clamp(1, MAX_DURATION_SECS);
    let warmup = args.warmup.min(MAX_DURATION_SECS);
    let machine = machine_note();
    let command = if server == Server::Bare {
        "serve-bare"
    } else {
        "serve-hub"
    };
    let mut hub = HubProcess::start_server(command, args.common.hub_workers)?;
    let hub_pid = hub.pid();
    let driver = Driver::start(threads)?;
    let shared = Shared::new(threads, server == Server::Bare);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (go_tx, go_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(128));
    let rate_note = if args.rate > 0.0 {
        format!("{} msg/s each", args.rate)
    } else {
        "as fast as acked".to_owned()
    };
    eprintln!(
        "fanout ({server_name}): {} groups x {} receivers, {} publishers per group (window {}, {rate_note}), {} B text, {threads} driver threads",
        args.groups, args.group_size, args.publishers, args.window, args.size
    );
    let mut i = 0;
    for g in 0..args.groups {
        for _ in 0..args.group_size {
            driver.handle(i).spawn(receiver(
                hub.connection_string.clone(),
                format!("g{g}"),
                i,
                shared.clone(),
                permits.clone(),
                stop_rx.clone(),
            ));
            i += 1;
        }
    }
    let total = receivers + publishers;
    let mut p = 0;
    for g in 0..args.groups {
        for _ in 0..args.publishers {
            let plan = PublisherPlan {
                index: p,
                group: format!("g{g}"),
                window: args.window.max(1),
                rate: args.rate,
                size: args.size,
            };
            driver.handle(i).spawn(publisher(
                hub.connection_string.clone(),
                plan,
                shared.clone(),
                permits.clone(),
                go_rx.clone(),
                stop_rx.clone(),
            ));
            i += 1;
            p += 1;
        }
    }
    wait_for(
        "connecting",
        CONNECT_DEADLINE,
        || shared.connected.load(Relaxed) + shared.failed.load(Relaxed) >= total,
        || format!("{} connected", shared.connected.load(Relaxed)),
    );
    if shared.failed.load(Relaxed) > 0 {
        let _ = stop_tx.send(true);
        driver.stop();
        hub.stop();
        return Err(format!(
            "{} connections failed; first error: {}",
            shared.failed.load(Relaxed),
            shared.first_error().unwrap_or_default()
        ));
    }
    let hub_rss_connected = rss_kib(hub_pid);
    let _ = go_tx.send(true);
    std::thread::sleep(Duration::from_secs(warmup));
    let _ = driver.take_latency();
    shared.measuring.store(true, Relaxed);
    let stats0 = hub.stats();
    let s0 = snapshot(&shared, hub_pid);
    let mut per_second = Vec::new();
    let mut last = (Instant::now(), shared.deliveries.total());
    while s0.at.elapsed() < Duration::from_secs(duration) {
        std::thread::sleep(
            Duration::from_millis(1000)
                .min(Duration::from_secs(duration).saturating_sub(s0.at.elapsed())),
        );
        let now = (Instant::now(), shared.deliveries.total());
        let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
        per_second.push(rate.round());
        eprintln!("  {:>9.0} deliveries/s", rate);
        last = now;
    }
    let s1 = snapshot(&shared, hub_pid);
    shared.measuring.store(false, Relaxed);
    let stats1 = hub.stats();
    let lost = shared.lost.load(Relaxed);
    let latency = driver.take_latency();
    let hub_rss = rss_kib(hub_pid);
    let driver_rss = rss_kib(std::process::id());
    let _ = stop_tx.send(true);
    // Publishers wait for their last acks; receivers close.
    std::thread::sleep(Duration::from_millis(500));
    let ack_errors = shared.ack_errors.load(Relaxed);
    driver.stop();
    hub.stop();

    let secs = s1.at.duration_since(s0.at).as_secs_f64();
    let deliveries = s1.deliveries - s0.deliveries;
    let published = s1.published - s0.published;
    let rate = deliveries as f64 / secs;
    let hub_cpu = s1.hub_cpu - s0.hub_cpu;
    let driver_cpu = s1.driver_cpu - s0.driver_cpu;
    let per_delivery = |cpu: f64| {
        if deliveries == 0 {
            0.0
        } else {
            cpu * 1e6 / deliveries as f64
        }
    };
    let hub_threads = thread_cpu_delta(&s0.hub_threads, &s1.hub_threads);
    let driver_threads_cpu = thread_cpu_delta(&s0.driver_threads, &s1.driver_threads);
    let fmt_threads = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, c)| format!("{n} {:.0}%", c / secs * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hub_out = stats1["messages_out"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(stats0["messages_out"].as_u64().unwrap_or(0));
    println!();
    println!(
        "== fanout ({server_name}): {} groups x {} receivers, {} publishers/group, window {}, {rate_note}, {} B, {threads} driver threads, {secs:.1} s measured",
        args.groups, args.group_size, args.publishers, args.window, args.size
    );
    println!(
        "  deliveries/s        {rate:.0}   (target 150,000: {})",
        if rate >= 150_000.0 { "met" } else { "NOT met" }
    );
    println!("  publishes/s         {:.0}", published as f64 / secs);
    println!(
        "  latency             p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.9)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.value_at_quantile(0.999)),
        ms(latency.max()),
        latency.len()
    );
    println!(
        "  CPU                 {server_name} {:.2} cores, driver {:.2} cores (of {})",
        hub_cpu / secs,
        driver_cpu / secs,
        machine["cores"]
    );
    println!(
        "  CPU per delivery    {server_name} {:.2} us, driver {:.2} us, total {:.2} us",
        per_delivery(hub_cpu),
        per_delivery(driver_cpu),
        per_delivery(hub_cpu + driver_cpu)
    );
    let others = (s1.machine_busy - s0.machine_busy - hub_cpu - driver_cpu).max(0.0);
    println!(
        "  other processes     {:.2} cores (builds of other engineers share the machine)",
        others / secs
    );
    println!("  {server_name} threads {}", fmt_threads(&hub_threads));
    println!("  driver threads      {}", fmt_threads(&driver_threads_cpu));
    println!(
        "  {server_name} messages_out/s {:.0}; slow clients closed {}; sockets lost {lost}; failed acks {ack_errors}",
        hub_out as f64 / secs,
        stats1["slow_clients"]
    );
    println!(
        "  RSS                 {server_name} {hub_rss_connected} KiB connected, {hub_rss} KiB at end; driver {driver_rss} KiB"
    );
    if stats1["slow_clients"].as_u64().unwrap_or(0) > 0 || lost > 0 {
        println!("  NOT STEADY: sockets were closed or lost during the run");
    }
    Ok(json!({
            "workload": "fanout",
            "server": server_name,
            "client": "raw tokio-tungstenite",
            "groups": args.groups, "group_size": args.group_size,
            "publishers_per_group": args.publishers, "window": args.window, "rate_per_publisher": args.rate,
            "size": args.size, "duration_secs": secs, "warmup_secs": warmup,
            "connections": receivers + publishers,
            "deliveries": deliveries, "deliveries_per_sec": rate,
            "publishes_per_sec": published as f64 / secs,
            "per_second": per_second,
            "latency": latency_json(&latency),
            "hub": {"pid": hub_pid, "cpu_secs": hub_cpu, "cores": hub_cpu / secs,
                    "cpu_us_per_delivery": per_delivery(hub_cpu), "threads": hub_threads,
                    "rss_connected_kib": hub_rss_connected, "rss_end_kib": hub_rss,
                    "workers": args.common.hub_workers},
            "driver": {"threads": threads, "cpu_secs": driver_cpu, "cores": driver_cpu / secs,
                       "cpu_us_per_delivery": per_delivery(driver_cpu), "thread_cpu": driver_threads_cpu,
                       "rss_kib": driver_rss},
            "lost_sockets": lost, "failed_acks": ack_errors,
            "other_processes_cores": others / secs,
            "hub_stats_end": stats1,
            "machine": machine,
    }))
}

// ---------------------------------------------------------------------------------------------
// peer: official clients, see benches/peers/README.md

/// The crate root, where `benches/peers/` and `target/` are.
fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python to run the peer with: the given one, or the interop venv's when it imports the
/// official client.
fn find_python(given: &Option<PathBuf>) -> Res<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let python = crate_root().join("target/interop/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import azure.messaging.webpubsubclient"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(python);
    }
    Err("no venv with azure-messaging-webpubsubclient: run `bash scripts/setup-interop.sh`".into())
}

/// The node_modules folder holding the official JS client.
fn find_node_modules(given: &Option<PathBuf>) -> Res<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let modules = crate_root().join("target/interop/node/node_modules");
    if modules
        .join("@azure/web-pubsub-client/package.json")
        .is_file()
    {
        return Ok(modules);
    }
    Err("no node_modules with @azure/web-pubsub-client: run `bash scripts/setup-interop.sh`".into())
}

/// Runs an official client (benches/peers/) against a hub process. The peer measures its own
/// RSS and CPU and prints `MEASURE_START`, `MEASURE_END` and `RESULT {json}` lines; this side
/// reads the hub's (and, as a cross-check, the peer's) figures from /proc at the same moments,
/// then answers each mark with a line on the peer's stdin so that the peer goes on.
fn peer(args: PeerArgs) -> Res<()> {
    let (capacity, why) = connection_capacity();
    let idle = match args.workload.as_str() {
        "idle" => true,
        "fanout" => false,
        other => return Err(format!("unknown workload {other:?}: use idle or fanout")),
    };
    let total = if idle {
        args.connections
    } else {
        args.groups * (args.group_size + args.publishers)
    };
    if total > capacity {
        return Err(format!(
            "{total} connections asked; this machine allows {capacity} ({why})"
        ));
    }
    let root = crate_root();
    let mut cmd = match args.client.as_str() {
        "python" | "python-aio" => {
            let mut c = Command::new(find_python(&args.python)?);
            c.arg(root.join("benches/peers/py_peer.py"));
            c.arg("--api").arg(if args.client == "python" {
                "sync"
            } else {
                "aio"
            });
            c
        }
        "js" => {
            let mut c = Command::new("node");
            c.env("NODE_PATH", find_node_modules(&args.node_modules)?);
            c.arg(root.join("benches/peers/js_peer.cjs"));
            c
        }
        other => {
            return Err(format!(
                "unknown client {other:?}: use python, python-aio or js"
            ));
        }
    };
    let machine = machine_note();
    let mut hub = HubProcess::start(args.common.hub_workers)?;
    let hub_pid = hub.pid();
    let cs = hub.connection_string.clone();
    let url = |options: TokenOptions| -> Res<String> {
        cs.client_access_url(HUB, &options, SystemTime::now())
            .map(|u| u.expose().to_string())
            .map_err(|e| e.to_string())
    };
    let mut receivers = Vec::new();
    let mut publishers = Vec::new();
    if idle {
        for i in 0..args.connections {
            receivers.push(json!({"url": url(TokenOptions::new().user_id(format!("idle-{i}")))?}));
        }
    } else {
        let mut i = 0;
        for g in 0..args.groups {
            let group = format!("g{g}");
            for _ in 0..args.group_size {
                let options = TokenOptions::new()
                    .user_id(format!("recv-{i}"))
                    .group(group.clone());
                receivers.push(json!({"url": url(options)?, "group": group}));
                i += 1;
            }
            for p in 0..args.publishers {
                let options = TokenOptions::new()
                    .user_id(format!("pub-{g}-{p}"))
                    .role(format!("webpubsub.sendToGroup.{group}"));
                publishers.push(
                    json!({"url": url(options)?, "group": group, "index": g * args.publishers + p}),
                );
            }
        }
    }
    let plan = json!({
        "workload": args.workload,
        "hold": args.hold.min(MAX_DURATION_SECS),
        "warmup": args.warmup.min(MAX_DURATION_SECS),
        "duration": args.duration.clamp(1, MAX_DURATION_SECS),
        "window": args.window.max(1),
        "rate": args.rate,
        "size": args.size.max(40),
        "receivers": receivers,
        "publishers": publishers,
    });
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plan_path = dir.path().join("plan.json");
    // The plan holds access tokens: it lives in a private temporary folder, removed at the end.
    std::fs::write(&plan_path, plan.to_string()).map_err(|e| e.to_string())?;
    cmd.arg(&plan_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!(
        "peer: {} client, {} workload, {total} connections, hub pid {hub_pid}",
        args.client, args.workload
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the peer: {e}"))?;
    let peer_pid = child.id();
    let bound =
        CONNECT_DEADLINE + Duration::from_secs(args.hold + args.warmup + args.duration + 120);
    let killer = {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < bound && !d.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
            }
            if !d.load(Relaxed) {
                eprintln!("peer: time bound reached, killing pid {peer_pid}");
                let _ = Command::new("kill").arg(peer_pid.to_string()).status();
            }
        });
        done
    };
    let stdout = BufReader::new(child.stdout.take().ok_or("no peer stdout")?);
    let mut peer_stdin = child.stdin.take().ok_or("no peer stdin")?;
    let mut resume = move || {
        let _ = writeln!(peer_stdin, "go").and_then(|_| peer_stdin.flush());
    };
    let mut start: Option<(Instant, f64, f64, Value)> = None;
    let mut end: Option<(Instant, f64, f64, u64, u64, Value)> = None;
    let mut result = Value::Null;
    let (mut machine0, mut machine1) = (0.0, 0.0);
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "MEASURE_START" {
            machine0 = machine_busy_secs();
            start = Some((
                Instant::now(),
                cpu_secs(hub_pid),
                cpu_secs(peer_pid),
                hub.stats(),
            ));
            resume();
        } else if line == "MEASURE_END" {
            end = Some((
                Instant::now(),
                cpu_secs(hub_pid),
                cpu_secs(peer_pid),
                rss_kib(hub_pid),
                rss_kib(peer_pid),
                hub.stats(),
            ));
            machine1 = machine_busy_secs();
            resume();
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = serde_json::from_str(r).unwrap_or(Value::Null);
        } else if !line.is_empty() {
            eprintln!("  peer: {line}");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    killer.store(true, Relaxed);
    hub.stop();
    let (Some(s), Some(e)) = (start, end) else {
        return Err(format!("the peer ended ({status}) before measuring"));
    };
    let secs = e.0.duration_since(s.0).as_secs_f64();
    let hub_cpu = e.1 - s.1;
    let peer_cpu_external = e.2 - s.2;
    let f = |k: &str| result[k].as_f64().unwrap_or(0.0);
    let connections = f("connections");
    let deliveries = f("deliveries");
    let per_delivery = |cpu: f64| {
        if deliveries > 0.0 {
            cpu * 1e6 / deliveries
        } else {
            0.0
        }
    };
    let others = (machine1 - machine0 - hub_cpu - peer_cpu_external).max(0.0) / secs;
    let hub_out = e.5["messages_out"].as_u64().unwrap_or(0) as f64
        - s.3["messages_out"].as_u64().unwrap_or(0) as f64;
    println!();
    println!(
        "== peer {} / {}: {} connections ({} failed), {secs:.1} s measured",
        args.client, args.workload, connections, result["failed"]
    );
    println!(
        "  peer RSS per connection  {:.1} KiB  ({} -> {} KiB, self-measured; /proc says {} KiB at the end)",
        f("rss_per_connection_kib"),
        result["rss_base_kib"],
        result["rss_kib"],
        e.4
    );
    if !idle {
        println!(
            "  deliveries/s             {:.0}",
            deliveries / f("seconds").max(1e-9)
        );
        println!(
            "  publishes/s              {:.0}",
            f("published") / f("seconds").max(1e-9)
        );
        println!(
            "  latency                  p50 {}  p99 {}  max {}  ({} samples)",
            ms(f("p50_us") as u64),
            ms(f("p99_us") as u64),
            ms(f("max_us") as u64),
            result["latency_samples"]
        );
        println!(
            "  CPU per delivery         peer {:.1} us (self), {:.1} us (/proc); hub {:.2} us",
            per_delivery(f("cpu_secs")),
            per_delivery(peer_cpu_external),
            per_delivery(hub_cpu)
        );
        println!(
            "  CPU                      peer {:.2} cores, hub {:.2} cores, other processes {others:.2} cores",
            peer_cpu_external / secs,
            hub_cpu / secs
        );
        println!(
            "  hub messages_out/s       {:.0}; slow clients closed {}",
            hub_out / secs,
            e.5["slow_clients"]
        );
        let received = deliveries / f("seconds").max(1e-9);
        if e.5["slow_clients"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  NOT STEADY: the hub closed slow clients (more than 1000 unacked messages: the official clients ack once a second); lower --rate"
            );
        } else if received < 0.95 * hub_out / secs {
            println!(
                "  NOT STEADY: the peer received {received:.0}/s while the hub sent {:.0}/s: it falls behind; lower --rate",
                hub_out / secs
            );
        }
    } else {
        println!(
            "  CPU while idle           peer {:.3} s, hub {:.3} s over {secs:.0} s",
            peer_cpu_external, hub_cpu
        );
    }
    write_json(
        &args.common.json,
        &json!({
            "workload": args.workload,
            "client": args.client,
            "peer": result,
            "peer_cpu_secs_proc": peer_cpu_external,
            "peer_rss_end_kib_proc": e.4,
            "seconds": secs,
            "other_processes_cores": others,
            "hub": {"cpu_secs": hub_cpu, "cpu_us_per_delivery": per_delivery(hub_cpu),
                    "rss_end_kib": e.3, "messages_out_per_sec": hub_out / secs},
            "hub_stats_end": e.5,
            "machine": machine,
        }),
    )
}
