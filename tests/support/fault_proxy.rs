//! An in-process TCP fault proxy for reliability tests (reliability.md section 1, "Fault
//! injection"): Toxiproxy's useful toxics in ~300 lines of tokio, no extra dependency, because
//! this machine has neither Toxiproxy nor netem.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every accepted connection to
//! `upstream`, both ways. Faults set on the proxy apply to every current and future connection;
//! faults set on one [`ProxyConnection`] (from [`FaultProxy::connections`] or
//! [`FaultProxy::wait_connections`]) apply to that connection only. The faults compose:
//! latency (with jitter, order kept), bandwidth, slicing into tiny writes, and a blackhole that
//! keeps both sockets open but forwards nothing (a half-open link; what was held is forwarded
//! if the link is passed again, as TCP would after a partition heals). [`ProxyConnection::reset`]
//! closes both sockets with `SO_LINGER 0`, so both peers get an RST and no FIN;
//! [`ProxyConnection::close`] closes them with a FIN.
//!
//! **Tokens through the proxy.** A hub configured with `HubConfig::trust_host_header(true)` (as
//! `reliability_proxy.rs` does; it is off by default) checks a token's audience against the
//! request's `Host` first and its own address second (`src/hub/auth.rs`); the proxy does not
//! rewrite `Host`, so a client sends `Host: 127.0.0.1:PROXY_PORT`. Both ways therefore work,
//! and `proxy_tokens_minted_for_either_authority_are_accepted` in `reliability_proxy.rs`
//! checks it: a token minted for the hub's own endpoint in a URL whose port was swapped for the
//! proxy's ([`FaultProxy::url_via`]), or a connection string whose endpoint is the proxy's
//! with the hub's key ([`FaultProxy::connection_string`]), which lets a [`Credential`] mint a
//! fresh token for every reconnect. (`audience_matches` alone would refuse a token for the
//! hub's port presented at the proxy's port: ports other than the default must be equal.)
//!
//! Randomness (jitter, slice sizes) comes from one seed per proxy, printed at start;
//! `RELIABILITY_SEED=<n>` replays it.
//!
//! [`Credential`]: webpubsub_fleet::credential::Credential

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use webpubsub_fleet::credential::{ConnectionString, TokenOptions};

use super::DEADLINE;

/// The faults of a link, in both directions. `Faults::default()` forwards untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added to every chunk's delivery time.
    pub latency: Duration,
    /// Each chunk gets `latency ± jitter` (uniform); order is kept.
    pub jitter: Duration,
    /// Throughput cap per direction.
    pub bytes_per_s: Option<u64>,
    /// Write in random chunks of 1..=max bytes, pausing this long after each (zero: yield).
    pub slice: Option<(usize, Duration)>,
    /// Forward nothing (data is held), keep both sockets open.
    pub blackhole: bool,
}

#[derive(Default)]
struct DirCounters {
    read: AtomicU64,
    written: AtomicU64,
    writes: AtomicU64,
}

/// What one direction of a link carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes read from the sender.
    pub read: u64,
    /// Bytes written to the receiver.
    pub written: u64,
    /// Write calls (slices).
    pub writes: u64,
}

impl Traffic {
    /// Bytes read and not (yet) written: held by a blackhole or in flight.
    pub fn held(&self) -> u64 {
        self.read - self.written
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Reset,
    Close,
}

struct Link {
    id: usize,
    /// Per direction (0: client to upstream, 1: upstream to client): bytes read, bytes
    /// written and write calls.
    counters: [DirCounters; 2],
    faults: watch::Sender<Faults>,
    end: watch::Sender<Option<End>>,
    closed: watch::Sender<bool>,
}

/// One proxied connection: its own faults and its end.
#[derive(Clone)]
pub struct ProxyConnection(Arc<Link>);

impl ProxyConnection {
    /// The connection's number, from 0 in accept order.
    pub fn id(&self) -> usize {
        self.0.id
    }
    /// Traffic from the client to the upstream.
    pub fn upstream_traffic(&self) -> Traffic {
        self.traffic(0)
    }
    /// Traffic from the upstream to the client.
    pub fn downstream_traffic(&self) -> Traffic {
        self.traffic(1)
    }
    fn traffic(&self, dir: usize) -> Traffic {
        let c = &self.0.counters[dir];
        Traffic {
            read: c.read.load(Relaxed),
            written: c.written.load(Relaxed),
            writes: c.writes.load(Relaxed),
        }
    }
    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.0.faults.borrow().clone()
    }
    /// Replaces the faults.
    pub fn set(&self, faults: Faults) {
        self.0.faults.send_replace(faults);
    }
    fn modify(&self, f: impl FnOnce(&mut Faults)) {
        self.0.faults.send_modify(f);
    }
    /// Forwards untouched again (held data flows).
    pub fn pass(&self) {
        self.set(Faults::default());
    }
    /// Delays every chunk by `ms ± jitter_ms` milliseconds.
    pub fn latency(&self, ms: u64, jitter_ms: u64) {
        self.modify(|f| {
            f.latency = Duration::from_millis(ms);
            f.jitter = Duration::from_millis(jitter_ms);
        });
    }
    /// Caps each direction at `bytes_per_s`.
    pub fn bandwidth(&self, bytes_per_s: u64) {
        self.modify(|f| f.bytes_per_s = Some(bytes_per_s.max(1)));
    }
    /// Writes in random chunks of 1..=`max_chunk` bytes with `delay` after each.
    pub fn slice(&self, max_chunk: usize, delay: Duration) {
        self.modify(|f| f.slice = Some((max_chunk.max(1), delay)));
    }
    /// Stops forwarding both ways, sockets kept open: a half-open link.
    pub fn blackhole(&self) {
        self.modify(|f| f.blackhole = true);
    }
    /// Closes both sockets with an RST (`SO_LINGER 0`).
    pub fn reset(&self) {
        self.0.end.send_replace(Some(End::Reset));
    }
    /// Closes both sockets with a FIN.
    pub fn close(&self) {
        self.0.end.send_replace(Some(End::Close));
    }
    /// Whether both sockets are closed.
    pub fn is_closed(&self) -> bool {
        *self.0.closed.borrow()
    }
}

struct Shared {
    upstream: SocketAddr,
    seed: u64,
    defaults: Mutex<Faults>,
    connections: Mutex<Vec<ProxyConnection>>,
    accepted: watch::Sender<usize>,
}

/// A TCP proxy on `127.0.0.1:0` in front of one upstream address. Dropping it closes the
/// listener and every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy on loopback");
        let addr = listener.local_addr().expect("the proxy's address");
        eprintln!("fault proxy {addr} -> {upstream}: RELIABILITY_SEED={seed}");
        let shared = Arc::new(Shared {
            upstream,
            seed,
            defaults: Mutex::new(Faults::default()),
            connections: Mutex::new(Vec::new()),
            accepted: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection string for clients that go through the proxy: the proxy's endpoint with
    /// the hub's key, so tokens name the proxy's address (the `Host` the hub sees).
    pub fn connection_string(&self, hub: &ConnectionString) -> ConnectionString {
        let endpoint = url::Url::parse(&format!("http://{}", self.addr)).expect("a URL");
        ConnectionString::new(endpoint, hub.access_key().clone()).expect("a connection string")
    }

    /// A client access URL minted by the hub's own connection string (audience: the hub's
    /// address), with the port swapped for the proxy's.
    pub fn url_via(&self, hub: &ConnectionString, hub_name: &str, token: &TokenOptions) -> String {
        let minted = hub
            .client_access_url(hub_name, token, SystemTime::now())
            .expect("mint a client access URL");
        let mut url = minted.into_exposed();
        url.set_port(Some(self.addr.port()))
            .expect("a URL with a port");
        url.to_string()
    }

    /// Every connection accepted so far, in accept order.
    pub fn connections(&self) -> Vec<ProxyConnection> {
        lock(&self.shared.connections).clone()
    }

    /// Waits until `n` connections were accepted; returns them all.
    pub async fn wait_connections(&self, n: usize) -> Vec<ProxyConnection> {
        let mut accepted = self.shared.accepted.subscribe();
        let reached = tokio::time::timeout(DEADLINE, accepted.wait_for(|&count| count >= n))
            .await
            .is_ok();
        let got = self.connections();
        assert!(
            reached,
            "only {} of {n} connections reached the proxy within {DEADLINE:?}",
            got.len()
        );
        got
    }

    fn modify_all(&self, f: impl Fn(&mut Faults)) {
        f(&mut lock(&self.shared.defaults));
        for c in lock(&self.shared.connections).iter() {
            c.modify(&f);
        }
    }

    /// Every connection, now and later: forward untouched.
    pub fn pass(&self) {
        self.modify_all(|f| *f = Faults::default());
    }
    /// Every connection, now and later: see [`ProxyConnection::latency`].
    pub fn latency(&self, ms: u64, jitter_ms: u64) {
        self.modify_all(|f| {
            f.latency = Duration::from_millis(ms);
            f.jitter = Duration::from_millis(jitter_ms);
        });
    }
    /// Every connection, now and later: see [`ProxyConnection::bandwidth`].
    pub fn bandwidth(&self, bytes_per_s: u64) {
        self.modify_all(|f| f.bytes_per_s = Some(bytes_per_s.max(1)));
    }
    /// Every connection, now and later: see [`ProxyConnection::slice`].
    pub fn slice(&self, max_chunk: usize, delay: Duration) {
        self.modify_all(|f| f.slice = Some((max_chunk.max(1), delay)));
    }
    /// Every connection, now and later: see [`ProxyConnection::blackhole`].
    pub fn blackhole(&self) {
        self.modify_all(|f| f.blackhole = true);
    }
    /// Every current connection: see [`ProxyConnection::reset`].
    pub fn reset(&self) {
        self.connections().iter().for_each(ProxyConnection::reset);
    }
    /// Every current connection: see [`ProxyConnection::close`].
    pub fn close(&self) {
        self.connections().iter().for_each(ProxyConnection::close);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let link = {
            let mut list = lock(&shared.connections);
            let link = ProxyConnection(Arc::new(Link {
                id: list.len(),
                counters: Default::default(),
                faults: watch::Sender::new(lock(&shared.defaults).clone()),
                end: watch::Sender::new(None),
                closed: watch::Sender::new(false),
            }));
            list.push(link.clone());
            link
        };
        shared.accepted.send_modify(|n| *n += 1);
        let seed = shared.seed.wrapping_add(link.id() as u64);
        tokio::spawn(run_link(client, shared.upstream, link, seed));
    }
}

async fn run_link(client: TcpStream, upstream: SocketAddr, link: ProxyConnection, seed: u64) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        // The upstream is gone: the client sees a refusal-like RST.
        #[allow(deprecated)] // Linger 0 never blocks on drop; it is how an RST is made.
        let _ = client.set_linger(Some(Duration::ZERO));
        link.0.closed.send_replace(true);
        return;
    };
    // Slices must leave as separate segments, not be coalesced by Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut end_rx = link.0.end.subscribe();
    let end = {
        let faults = || link.0.faults.subscribe();
        let up = direction(&mut cr, &mut sw, faults(), &link.0.counters[0], seed);
        let down = direction(&mut sr, &mut cw, faults(), &link.0.counters[1], !seed);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => None,
            end = end_rx.wait_for(Option::is_some) => end.ok().and_then(|e| *e),
        }
    };
    match end {
        Some(End::Reset) => {
            for w in [&cw, &sw] {
                #[allow(deprecated)] // Linger 0 never blocks on drop; it is how an RST is made.
                let _ = w.as_ref().set_linger(Some(Duration::ZERO));
            }
            // Dropping a write half would send a FIN before the RST: forget them instead,
            // so the sockets close (with linger 0) when the read halves drop.
            cw.forget();
            sw.forget();
        }
        Some(End::Close) => {
            let _ = cw.shutdown().await;
            let _ = sw.shutdown().await;
        }
        None => {}
    }
    drop((cr, sr));
    link.0.closed.send_replace(true);
}

/// Forwards `r` to `w` under the link's faults until `r` ends, then half-closes `w`.
async fn direction(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
    counters: &DirCounters,
    seed: u64,
) {
    // Bounded: a stalled writer (blackhole, bandwidth) stops the reading, so the sender's
    // socket buffers fill as they would on a slow network.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let read_faults = faults.clone();
    let reading = async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut buf = vec![0u8; 16 * 1024];
        let mut last_due = Instant::now();
        while let Ok(n @ 1..) = r.read(&mut buf).await {
            counters.read.fetch_add(n as u64, Relaxed);
            let f = read_faults.borrow().clone();
            let jitter = f.jitter.as_micros() as i64;
            let offset = if jitter > 0 {
                rng.random_range(-jitter..=jitter)
            } else {
                0
            };
            let delay = (f.latency.as_micros() as i64 + offset).max(0) as u64;
            // Never before the previous chunk: jitter must not reorder a byte stream.
            let due = (Instant::now() + Duration::from_micros(delay)).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writing = async move {
        let mut faults = faults;
        let mut rng = StdRng::seed_from_u64(seed.rotate_left(17));
        let mut pacer = Pacer::new();
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let mut rest = &data[..];
            while !rest.is_empty() {
                if !wait_open(&mut faults).await {
                    return;
                }
                let f = faults.borrow().clone();
                let mut take = match f.slice {
                    Some((max, _)) => rng.random_range(1..=max),
                    None => rest.len(),
                };
                if let Some(bps) = f.bytes_per_s {
                    // Pieces of ~10 ms keep the pacing smooth.
                    take = take.min((bps / 100).max(1) as usize);
                }
                let take = take.min(rest.len());
                if w.write_all(&rest[..take]).await.is_err() {
                    return;
                }
                rest = &rest[take..];
                counters.written.fetch_add(take as u64, Relaxed);
                counters.writes.fetch_add(1, Relaxed);
                if let Some(bps) = f.bytes_per_s {
                    pacer.pace(take as u64, bps).await;
                }
                match f.slice {
                    Some((_, d)) if d.is_zero() => tokio::task::yield_now().await,
                    Some((_, d)) => tokio::time::sleep(d).await,
                    None => {}
                }
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Waits while the link is blackholed; false if the link is gone.
async fn wait_open(faults: &mut watch::Receiver<Faults>) -> bool {
    faults.wait_for(|f| !f.blackhole).await.is_ok()
}

/// A byte budget over time: sleeps only when ahead of `bytes_per_s` by more than a timer tick,
/// because tokio's timer has a 1 ms resolution and a sleep per small write would cap far below.
struct Pacer {
    since: Instant,
    bytes: u64,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            since: Instant::now(),
            bytes: 0,
        }
    }

    async fn pace(&mut self, n: u64, bps: u64) {
        let now = Instant::now();
        let budget_end = |p: &Pacer| p.since + Duration::from_secs_f64(p.bytes as f64 / bps as f64);
        if budget_end(self) < now {
            // Idle time is not saved up as a burst.
            self.since = now;
            self.bytes = 0;
        }
        self.bytes += n;
        let next = budget_end(self);
        if next > now + Duration::from_millis(1) {
            tokio::time::sleep_until(next).await;
        }
    }
}
