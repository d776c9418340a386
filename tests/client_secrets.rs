//! No access token or reconnection token reaches a log line, an error or an event: a whole
//! connect, recover, reconnect and failure cycle runs with TRACE logging captured, and the
//! capture is searched for the secrets. Payload logging is on: even then no secret shows.
//! Its own test binary, since it installs a subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::fake_hub::{FakeHub, Handshake};
use support::within;
use webpubsub_fleet::client::{Client, ClientOptions, EventKind, EventStream, SendOptions};
use webpubsub_fleet::session::{RetryMode, RetryPolicy};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn wait_for(events: &mut EventStream, kind: EventKind, seen: &mut Vec<String>) {
    within(format!("a {kind:?} event"), async {
        loop {
            let event = events.recv().await.expect("stream ended");
            seen.push(format!("{event:?}"));
            if event.kind() == kind {
                return;
            }
        }
    })
    .await;
}

#[actix_rt::test]
async fn no_secret_in_trace_logs_errors_or_events() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut hub = FakeHub::start(Handshake::Accept).await;
    let token = "tok-SECRET-4f1d";
    let options = ClientOptions::new()
        .with_payload_logging(true)
        .with_reconnect_retry(RetryPolicy {
            max_retries: 3,
            delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
            mode: RetryMode::Fixed,
        });
    let client = Client::from_url(&hub.url(token), options).unwrap();
    let mut events = client.events().await.unwrap();
    let mut seen = Vec::new();
    let mut errors = Vec::new();

    // Connect.
    let started = {
        let c = client.clone();
        actix_rt::spawn(async move { c.start().await })
    };
    let mut conn = hub.accept_connected("conn-1").await;
    started.await.unwrap().unwrap();
    let send = {
        let c = client.clone();
        actix_rt::spawn(async move { c.send_to_group("g", "x", SendOptions::new()).await })
    };
    conn.recv_json().await;

    // Recover after an abrupt drop (the recovery URL carries both secrets).
    conn.drop_abruptly();
    let mut recovered = hub.accept().await;
    recovered.send_ack_error(1, "Forbidden").await;
    errors.push(send.await.unwrap().unwrap_err().to_string());
    wait_for(&mut events, EventKind::Recovered, &mut seen).await;

    // Reconnect after 1008, then fail: the fixed token is refused with 401.
    hub.set_mode(Handshake::Unauthorized);
    recovered.close(1008).await;
    wait_for(&mut events, EventKind::Stopped, &mut seen).await;
    // The refused start must fail, or its error text would go unchecked.
    let e = client.start().await.unwrap_err();
    errors.push(e.to_string());
    errors.push(format!("{e:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("connected"), "the capture works: {logs}");
    assert!(logs.contains("recovered"), "the cycle ran: {logs}");
    for secret in [token, "reco-SECRET-conn-1", "SECRET"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        for e in &errors {
            assert!(!e.contains(secret), "{secret} in error {e}");
        }
        for e in &seen {
            assert!(!e.contains(secret), "{secret} in event {e}");
        }
    }
}
