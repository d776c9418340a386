//! Reliability rows that need a faulty network between the real client and the real local hub
//! (reliability.md section 5, rows 2, 7, 8 and 9), through the in-process [`FaultProxy`].
//! Publishers talk to the hub directly; the subscriber under test goes through the proxy.
//! Every publish carries its index, and each receiver's history is checked for lost,
//! duplicated and reordered messages.

mod fault_proxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fault_proxy::FaultProxy;
use tokio::time::Instant;
use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, EventStream, SendOptions};
use webpubsub_fleet::credential::{ConnectionString, Credential, TokenOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};

/// Long enough for a loaded 2-core machine; short enough that a hang fails fast.
const DEADLINE: Duration = Duration::from_secs(10);
const ROLES: [&str; 2] = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];
const HUB: &str = "chat";

async fn hub(config: HubConfig) -> (Hub, ConnectionString) {
    let hub = Hub::start(config.bind("127.0.0.1:0".parse().unwrap()).workers(1))
        .await
        .unwrap();
    let cs = hub.connection_string();
    (hub, cs)
}

fn token(user: &str) -> TokenOptions {
    TokenOptions::new().user_id(user).roles(ROLES)
}

fn client(cs: &ConnectionString, user: &str, options: ClientOptions) -> Client {
    let credential = Credential::from_connection_string(cs.clone(), HUB, token(user)).unwrap();
    Client::new(credential, options)
}

/// Records the text of every group message, in arrival order.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<String>>>);

impl Inbox {
    async fn attach(client: &Client) -> Inbox {
        let inbox = Inbox::default();
        let sink = inbox.clone();
        client
            .subscribe(EventKind::GroupMessage, move |e| {
                if let Event::GroupMessage(m) = e {
                    sink.0
                        .lock()
                        .unwrap()
                        .push(m.data.as_text().unwrap_or_default().to_owned());
                }
            })
            .await
            .unwrap();
        inbox
    }

    async fn wait_len(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.0.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived; {}",
                got.len(),
                verdict(&got, n)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The checker of reliability.md section 1 for one receiver of messages `0..n` from one
/// publisher: lost, duplicated, reordered and unexpected counts.
fn verdict(got: &[String], n: usize) -> String {
    let mut seen = vec![0u32; n];
    let (mut unexpected, mut reordered, mut last) = (0, 0, None);
    for s in got {
        match s.parse::<usize>().ok().filter(|&i| i < n) {
            Some(i) => {
                seen[i] += 1;
                if last.is_some_and(|l| i <= l) {
                    reordered += 1;
                }
                last = Some(i);
            }
            None => unexpected += 1,
        }
    }
    let lost = seen.iter().filter(|&&c| c == 0).count();
    let duplicated: u32 = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    format!("lost {lost}, duplicated {duplicated}, reordered {reordered}, unexpected {unexpected}")
}

fn assert_exactly_once_in_order(got: &[String], n: usize) {
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert!(got == expected, "{}", verdict(got, n));
}

async fn next_of(events: &mut EventStream, kind: EventKind) -> Event {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let e = events.recv().await.expect("stream ended");
            if e.kind() == kind {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} before the deadline"))
}

/// Publishes `0..n` to `group` at `per_second`, calling `at(i)` before message `i`.
async fn publish_paced(publisher: &Client, n: usize, per_second: u64, mut at: impl FnMut(usize)) {
    let start = Instant::now();
    let gap = Duration::from_micros(1_000_000 / per_second);
    for i in 0..n {
        at(i);
        tokio::time::sleep_until(start + gap * i as u32).await;
        publisher
            .send_to_group("room", i.to_string(), SendOptions::new())
            .await
            .unwrap();
    }
}

/// A started subscriber in `room` through the proxy, with its inbox and event stream.
async fn subscriber_via(
    proxy: &FaultProxy,
    cs: &ConnectionString,
    options: ClientOptions,
) -> (Client, Inbox, EventStream, String) {
    let c = client(&proxy.connection_string(cs), "sub", options);
    let inbox = Inbox::attach(&c).await;
    let events = c.events().await.unwrap();
    let info = c.start().await.unwrap();
    c.join_group("room").await.unwrap();
    (c, inbox, events, info.connection_id)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[actix_rt::test]
async fn proxy_tokens_minted_for_either_authority_are_accepted() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    // The hub's own audience, in a URL whose port is the proxy's.
    let by_url = Client::from_url(&proxy.url_via(&cs, HUB, &token("a")), ClientOptions::new())
        .unwrap();
    by_url.start().await.unwrap();
    // The proxy's audience, minted afresh for every connection.
    let by_cs = client(&proxy.connection_string(&cs), "b", ClientOptions::new());
    by_cs.start().await.unwrap();
    assert_eq!(proxy.wait_connections(2, DEADLINE).await.len(), 2);
    assert_eq!(hub.stats().unauthorized, 0);
}

/// Row 7: a half-open link (both sockets open, nothing forwarded) is noticed by the client's
/// keepalive and recovered on a fresh socket with the same connection id.
#[actix_rt::test]
async fn half_open_link_is_detected_and_recovered_with_nothing_lost() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    let options =
        ClientOptions::new().with_keepalive(Duration::from_millis(200), Duration::from_millis(1200));
    let (subscriber, inbox, mut events, first) = subscriber_via(&proxy, &cs, options).await;
    let link = proxy.wait_connections(1, DEADLINE).await.remove(0);
    let publisher = client(&cs, "pub", ClientOptions::new());
    publisher.start().await.unwrap();

    const N: usize = 600;
    let mut cut_at = None;
    publish_paced(&publisher, N, 200, |i| {
        if i == 100 {
            // Only this connection: the recovery's new connection passes.
            link.blackhole();
            cut_at = Some(Instant::now());
        }
    })
    .await;
    assert_exactly_once_in_order(&inbox.wait_len(N).await, N);

    let Event::Recovering { connection_id } = next_of(&mut events, EventKind::Recovering).await
    else {
        unreachable!()
    };
    assert_eq!(connection_id, first);
    let Event::Recovered { after, .. } = next_of(&mut events, EventKind::Recovered).await else {
        unreachable!()
    };
    eprintln!(
        "blackhole at {:?}; recovered {after:?} after the drop",
        cut_at.unwrap().elapsed()
    );
    assert!(!link.is_closed(), "the blackholed sockets stay open");
    assert_eq!(proxy.connections().len(), 2, "one new socket, no storm");
    let status = subscriber.status().await.unwrap();
    assert_eq!(status.connection_id, Some(first));
    assert_eq!(status.counters.recoveries, 1);
    assert_eq!(status.counters.reconnects, 0);
    assert_eq!(status.counters.delivered, N as u64);
    assert_eq!(hub.stats().recoveries, 1);
    assert_eq!(hub.stats().slow_clients, 0);
}

/// Row 2 through the proxy: an RST mid-stream (no close frame, no FIN) on both sides.
#[actix_rt::test]
async fn rst_mid_stream_recovers_the_same_connection_with_nothing_lost() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    let (subscriber, inbox, mut events, first) =
        subscriber_via(&proxy, &cs, ClientOptions::new()).await;
    let link = proxy.wait_connections(1, DEADLINE).await.remove(0);
    let publisher = client(&cs, "pub", ClientOptions::new());
    publisher.start().await.unwrap();

    const N: usize = 600;
    publish_paced(&publisher, N, 500, |i| {
        if i == 200 {
            link.reset();
        }
    })
    .await;
    assert_exactly_once_in_order(&inbox.wait_len(N).await, N);
    next_of(&mut events, EventKind::Recovered).await;
    assert!(link.is_closed());
    let status = subscriber.status().await.unwrap();
    assert_eq!(status.connection_id, Some(first));
    assert_eq!(status.counters.recoveries, 1);
    assert_eq!(status.counters.reconnects, 0);
    assert_eq!(status.counters.delivered, N as u64);
    assert_eq!(hub.stats().recoveries, 1);
}

/// Row 8: latency with jitter, a bandwidth cap and frames cut into 1-64 byte writes.
#[actix_rt::test]
async fn slow_sliced_network_loses_nothing_and_breaks_no_frame() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    proxy.latency(20, 10);
    proxy.bandwidth(256 * 1024);
    // Zero delay: each slice is its own write (TCP_NODELAY) followed by a yield, so the
    // client, on the same thread, reads frames in pieces; a 1 ms sleep per slice would cap
    // the link below the publish rate.
    proxy.slice(64, Duration::ZERO);
    let (subscriber, inbox, _events, _) = subscriber_via(&proxy, &cs, ClientOptions::new()).await;
    let publisher = client(&cs, "pub", ClientOptions::new());
    publisher.start().await.unwrap();

    const N: usize = 1000;
    publish_paced(&publisher, N, 200, |_| {}).await;
    assert_exactly_once_in_order(&inbox.wait_len(N).await, N);
    let status = subscriber.status().await.unwrap();
    assert_eq!(status.counters.bad_frames, 0);
    assert_eq!(status.counters.recoveries, 0, "the slow link never broke");
    assert_eq!(status.counters.reconnects, 0);
    let stats = hub.stats();
    assert_eq!(stats.slow_clients, 0);
    assert!(
        stats.closes_by_code.is_empty(),
        "{:?}",
        stats.closes_by_code
    );
    assert_eq!(proxy.connections().len(), 1);
}

/// Row 9: one subscriber reads its stream slowly; it gets `SlowConsumer` notices and a
/// gap-free count (received + dropped = published), while the hub keeps serving it and five
/// normal subscribers get everything.
#[actix_rt::test]
async fn slow_consumer_is_told_while_others_get_everything() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let rss_before = rss_kib();
    let mut normal = Vec::new();
    for i in 0..5 {
        let c = client(&cs, &format!("sub-{i}"), ClientOptions::new());
        let inbox = Inbox::attach(&c).await;
        c.start().await.unwrap();
        c.join_group("room").await.unwrap();
        normal.push((c, inbox));
    }
    let slow = client(&cs, "slow", ClientOptions::new());
    let mut stream = slow
        .events_with_capacity(Some(EventKind::GroupMessage), 16)
        .await
        .unwrap();
    slow.start().await.unwrap();
    slow.join_group("room").await.unwrap();
    #[derive(Default)]
    struct SlowLog {
        received: Vec<String>,
        notices: u64,
        reported_dropped: u64,
    }
    let log = Arc::new(Mutex::new(SlowLog::default()));
    let sink = log.clone();
    let reader = actix_rt::spawn(async move {
        while let Some(e) = stream.recv().await {
            let mut log = sink.lock().unwrap();
            match e {
                Event::GroupMessage(m) => log
                    .received
                    .push(m.data.as_text().unwrap_or_default().to_owned()),
                Event::SlowConsumer { dropped } => {
                    log.notices += 1;
                    log.reported_dropped += dropped;
                }
                other => panic!("unexpected {other:?}"),
            }
            drop(log);
            // The consumer under test is slow on purpose.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let publisher = client(&cs, "pub", ClientOptions::new());
    publisher.start().await.unwrap();

    const N: usize = 1500;
    publish_paced(&publisher, N, 500, |_| {}).await;
    for (_, inbox) in &normal {
        assert_exactly_once_in_order(&inbox.wait_len(N).await, N);
    }
    // Every message was either handed to the slow stream or counted as dropped for it.
    let deadline = Instant::now() + DEADLINE;
    let dropped = loop {
        let dropped = slow.status().await.unwrap().counters.events_dropped;
        let received = log.lock().unwrap().received.len() as u64;
        if received + dropped == N as u64 {
            break dropped;
        }
        assert!(
            Instant::now() < deadline,
            "slow consumer: {received} received + {dropped} dropped != {N}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    reader.abort();
    let log = log.lock().unwrap();
    assert!(log.notices > 0, "no SlowConsumer notice");
    assert!(dropped > 0 && log.reported_dropped <= dropped);
    let indices: Vec<usize> = log.received.iter().map(|s| s.parse().unwrap()).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "the slow stream kept its order"
    );
    let stats = hub.stats();
    assert_eq!(stats.slow_clients, 0, "the client, not the hub, dropped");
    let growth = rss_kib().saturating_sub(rss_before);
    eprintln!(
        "slow consumer: {} received, {dropped} dropped, {} notices; RSS +{growth} KiB",
        log.received.len(),
        log.notices
    );
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB");
}
