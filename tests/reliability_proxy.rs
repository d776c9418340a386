//! Reliability rows that need a faulty network between the real client and the real local hub
//! (reliability.md section 5, rows 2, 7, 8 and 9), through the in-process [`FaultProxy`].
//! Publishers talk to the hub directly; the subscriber under test goes through the proxy.
//! Every publish carries its index, and each receiver's history is checked for lost,
//! duplicated and reordered messages.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::client::{Inbox, ROLES, assert_exactly_once_in_order, next_of};
use support::fault_proxy::FaultProxy;
use support::{eventually, rss_kib, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, EventStream, SendOptions};
use webpubsub_fleet::credential::{ConnectionString, TokenOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};

const HUB: &str = "chat";
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(200);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_millis(1200);

async fn hub(config: HubConfig) -> (Hub, ConnectionString) {
    // The proxy keeps the client's `Host` (its own address): the hub must trust it to accept
    // tokens minted for the proxy's address, as a hub behind a real proxy would.
    let config = config.trust_host_header(true);
    let hub = Hub::start(config.bind("127.0.0.1:0".parse().unwrap()).workers(1))
        .await
        .unwrap();
    let cs = hub.connection_string();
    (hub, cs)
}

fn client(cs: &ConnectionString, user: &str, options: ClientOptions) -> Client {
    support::client::client(cs, HUB, user, &ROLES, options)
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

/// A raw client and a raw echo-less upstream through the proxy: the faults do what they say.
async fn raw_pair(proxy: &FaultProxy, upstream: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (server, _) = within("the proxy's upstream connection", upstream.accept())
        .await
        .unwrap();
    (client, server)
}

async fn read_exact_within(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within(format!("{n} bytes"), s.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

#[actix_rt::test]
async fn proxy_faults_behave_as_documented() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = FaultProxy::start(upstream.local_addr().unwrap()).await;

    // Blackhole: nothing passes either way, the sockets stay open; pass releases what was held.
    let (mut c, mut s) = raw_pair(&proxy, &upstream).await;
    let link = proxy.wait_connections(1).await.remove(0);
    link.blackhole();
    c.write_all(b"held").await.unwrap();
    s.write_all(b"back").await.unwrap();
    eventually("the proxy to read both ways", async || {
        let (up, down) = (link.upstream_traffic(), link.downstream_traffic());
        if up.read >= 4 && down.read >= 4 {
            Ok(())
        } else {
            Err(format!("up {up:?}, down {down:?}"))
        }
    })
    .await;
    assert_eq!(link.upstream_traffic().written, 0);
    assert_eq!(link.downstream_traffic().written, 0);
    let mut one = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), c.read(&mut one))
            .await
            .is_err(),
        "nothing arrives through a blackhole"
    );
    link.pass();
    assert_eq!(read_exact_within(&mut s, 4).await, b"held");
    assert_eq!(read_exact_within(&mut c, 4).await, b"back");

    // Slice: many small writes, bytes intact and in order.
    link.slice(8, Duration::ZERO);
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&data).await.unwrap();
    assert_eq!(read_exact_within(&mut c, data.len()).await, data);
    assert!(link.downstream_traffic().writes >= 4096 / 8);

    // Reset: both peers get an RST (ECONNRESET), not an orderly end of stream.
    link.reset();
    for peer in [&mut c, &mut s] {
        let got = within("the reset to reach a peer", peer.read(&mut one)).await;
        assert_eq!(
            got.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionReset)
        );
    }
    assert!(link.is_closed());

    // Close: an orderly end of stream (FIN) on both sides.
    let (mut c, mut s) = raw_pair(&proxy, &upstream).await;
    let link = proxy.wait_connections(2).await.remove(1);
    link.close();
    for peer in [&mut c, &mut s] {
        let got = within("the close to reach a peer", peer.read(&mut one)).await;
        assert_eq!(got.unwrap(), 0);
    }

    // Latency: proxy-wide, so the next connection gets it; bytes still arrive.
    proxy.latency(30, 0);
    let (mut c, mut s) = raw_pair(&proxy, &upstream).await;
    let sent = Instant::now();
    c.write_all(b"late").await.unwrap();
    assert_eq!(read_exact_within(&mut s, 4).await, b"late");
    assert!(sent.elapsed() >= Duration::from_millis(30));
}

#[actix_rt::test]
async fn proxy_tokens_minted_for_either_authority_are_accepted() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    // The hub's own audience, in a URL whose port is the proxy's.
    let by_url = Client::from_url(
        &proxy.url_via(&cs, HUB, &TokenOptions::new().user_id("a").roles(ROLES)),
        ClientOptions::new(),
    )
    .unwrap();
    by_url.start().await.unwrap();
    // The proxy's audience, minted afresh for every connection.
    let by_cs = client(&proxy.connection_string(&cs), "b", ClientOptions::new());
    by_cs.start().await.unwrap();
    assert_eq!(proxy.wait_connections(2).await.len(), 2);
    assert_eq!(hub.stats().unauthorized, 0);
}

/// Row 7: a half-open link (both sockets open, nothing forwarded) is noticed by the client's
/// keepalive and recovered on a fresh socket with the same connection id.
#[actix_rt::test]
async fn half_open_link_is_detected_and_recovered_with_nothing_lost() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let proxy = FaultProxy::start(hub.addr()).await;
    let options = ClientOptions::new().with_keepalive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT);
    let (subscriber, inbox, _events, first) = subscriber_via(&proxy, &cs, options).await;
    // When each lifecycle event reached a callback, to time the detection.
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let sink = timeline.clone();
    subscriber
        .subscribe_all(move |e| {
            if e.kind() != EventKind::GroupMessage {
                sink.lock().unwrap().push((e.clone(), Instant::now()));
            }
        })
        .await
        .unwrap();
    let link = proxy.wait_connections(1).await.remove(0);
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

    let timeline = timeline.lock().unwrap().clone();
    let kinds: Vec<EventKind> = timeline.iter().map(|(e, _)| e.kind()).collect();
    assert_eq!(kinds, [EventKind::Recovering, EventKind::Recovered]);
    let Event::Recovering { connection_id } = &timeline[0].0 else {
        unreachable!()
    };
    assert_eq!(connection_id, &first);
    let detected = timeline[0].1 - cut_at.unwrap();
    eprintln!(
        "half-open link: detected {detected:?} after the blackhole (timeout {KEEPALIVE_TIMEOUT:?}), \
         recovered {:?} later",
        timeline[1].1 - timeline[0].1
    );
    // Generous (matrix bound: timeout + interval); the default 120 s keepalive would miss it.
    assert!(
        detected < Duration::from_secs(5),
        "detected after {detected:?}"
    );
    assert!(!link.is_closed(), "the blackholed sockets stay open");
    let held = link.downstream_traffic().held();
    assert!(held > 0, "the hub wrote into the dead link until recovery");
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
    let link = proxy.wait_connections(1).await.remove(0);
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
    let links = proxy.connections();
    assert_eq!(links.len(), 1);
    // Each group-message frame is over 64 bytes, so it reached the client in several writes.
    let down = links[0].downstream_traffic();
    assert!(
        down.writes >= 2 * N as u64,
        "only {} writes for {N} frames",
        down.writes
    );
}

#[derive(Default)]
struct SlowLog {
    received: Vec<usize>,
    notices: u64,
    reported_dropped: u64,
}

const SLOW_CAPACITY: usize = 16;

/// Row 9's scenario: five normal subscribers and one whose stream (capacity
/// [`SLOW_CAPACITY`]) is read every 50 ms, `n` messages at 500/s. Checks what must hold
/// whatever the drop policy, and returns the slow stream's log and the client's drop count.
async fn slow_consumer_scenario(n: usize) -> (SlowLog, u64) {
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
        .events_with_capacity(Some(EventKind::GroupMessage), SLOW_CAPACITY)
        .await
        .unwrap();
    slow.start().await.unwrap();
    slow.join_group("room").await.unwrap();
    let log = Arc::new(Mutex::new(SlowLog::default()));
    let sink = log.clone();
    let reader = actix_rt::spawn(async move {
        while let Some(e) = stream.recv().await {
            {
                let mut log = sink.lock().unwrap();
                match e {
                    Event::GroupMessage(m) => {
                        let text = m.data.as_text().unwrap_or_default();
                        log.received.push(text.parse().expect("a published index"));
                    }
                    Event::SlowConsumer { dropped } => {
                        log.notices += 1;
                        log.reported_dropped += dropped;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            // The consumer under test is slow on purpose.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let publisher = client(&cs, "pub", ClientOptions::new());
    publisher.start().await.unwrap();

    publish_paced(&publisher, n, 500, |_| {}).await;
    for (_, inbox) in &normal {
        assert_exactly_once_in_order(&inbox.wait_len(n).await, n);
    }
    // Every message was either handed to the slow stream or counted as dropped for it.
    let dropped = eventually("every message received or dropped", async || {
        let dropped = slow.status().await.unwrap().counters.events_dropped;
        let received = log.lock().unwrap().received.len() as u64;
        if received + dropped == n as u64 {
            Ok(dropped)
        } else {
            Err(format!("{received} received + {dropped} dropped != {n}"))
        }
    })
    .await;
    reader.abort();
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(log.notices > 0, "no SlowConsumer notice");
    assert!(dropped > 0 && log.reported_dropped <= dropped);
    assert!(
        log.received.windows(2).all(|w| w[0] < w[1]),
        "the slow stream kept its order"
    );
    assert_eq!(
        hub.stats().slow_clients,
        0,
        "the client, not the hub, dropped"
    );
    let growth = rss_kib().saturating_sub(rss_before);
    eprintln!(
        "slow consumer: {} received (last {:?}), {dropped} dropped, {} notices reporting {}; \
         RSS +{growth} KiB (whole test process)",
        log.received.len(),
        log.received.last(),
        log.notices,
        log.reported_dropped
    );
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB");
    (log, dropped)
}

/// Row 9: one subscriber reads its stream slowly (20 events/s under 500 messages/s); it gets
/// `SlowConsumer` notices and a gap-free count (received + dropped = published), in order,
/// while the hub keeps serving it and five normal subscribers get everything. It keeps
/// receiving messages published after its queue first filled: events and notices take turns
/// at the slots it frees (src/client/dispatch.rs `deliver`).
#[actix_rt::test]
async fn slow_consumer_is_told_while_others_get_everything() {
    let (log, _) = slow_consumer_scenario(1500).await;
    let later = log.received.iter().filter(|&&i| i > SLOW_CAPACITY).count();
    assert!(
        later > 0,
        "only {:?} received, plus {} notices",
        log.received,
        log.notices
    );
}
