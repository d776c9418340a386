//! The client against the real local hub, in process on 127.0.0.1:0: reliability.md section 5
//! rows 1-3, 5, 12 and 14, plus `wss://` through a throwaway CA.
//! Rows 7, 11 and 13 (half-open links, hostile frames, stop races) need a scripted peer and
//! are in `client_fake_hub.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod support;

use support::client::{Inbox, ROLES, next_of};
use support::eventually;
use webpubsub_fleet::client::{Client, ClientError, ClientOptions, Event, EventKind, SendOptions};
use webpubsub_fleet::credential::{ConnectionString, TokenOptions};
use webpubsub_fleet::hub::{Fault, Hub, HubConfig};
use webpubsub_fleet::protocol::{AckErrorName, Secret};

async fn hub(config: HubConfig) -> (Hub, ConnectionString) {
    let hub = Hub::start(config.bind("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let cs = hub.connection_string();
    (hub, cs)
}

fn client(cs: &ConnectionString, user: &str, roles: &[&str]) -> Client {
    support::client::client(cs, "chat", user, roles, ClientOptions::new())
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[actix_rt::test]
async fn baseline_one_publisher_ten_subscribers_nothing_lost_or_reordered() {
    let (_hub, cs) = hub(HubConfig::new()).await;
    let mut inboxes = Vec::new();
    let mut subscribers = Vec::new();
    for i in 0..10 {
        let c = client(&cs, &format!("sub-{i}"), &ROLES);
        inboxes.push(Inbox::attach(&c).await);
        c.start().await.unwrap();
        c.join_group("room").await.unwrap();
        subscribers.push(c);
    }
    let publisher = client(&cs, "pub", &ROLES);
    publisher.start().await.unwrap();
    // 100 sends in flight at a time: a burst far beyond the 1000 unacknowledged messages a
    // hub buffers per receiver would close receivers as slow clients, here as on the service.
    const N: usize = 2000;
    for window in (0..N).collect::<Vec<_>>().chunks(100) {
        let sends: Vec<_> = window
            .iter()
            .map(|&i| {
                let p = publisher.clone();
                actix_rt::spawn(async move {
                    p.send_to_group("room", i.to_string(), SendOptions::new())
                        .await
                })
            })
            .collect();
        for s in sends {
            let ack = s.await.unwrap().unwrap();
            assert!(!ack.duplicated);
        }
    }
    for inbox in &inboxes {
        assert_eq!(inbox.wait_len(N).await, numbered(N));
    }
}

#[actix_rt::test]
async fn abrupt_drop_recovers_the_same_connection_with_nothing_lost() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let subscriber = client(&cs, "sub", &ROLES);
    let inbox = Inbox::attach(&subscriber).await;
    let mut events = subscriber.events().await.unwrap();
    let first = subscriber.start().await.unwrap();
    subscriber.join_group("room").await.unwrap();
    let publisher = client(&cs, "pub", &ROLES);
    publisher.start().await.unwrap();
    const N: usize = 600;
    for i in 0..N {
        if i == N / 3 {
            assert!(hub.drop_connection(&first.connection_id));
        }
        publisher
            .send_to_group("room", i.to_string(), SendOptions::new())
            .await
            .unwrap();
    }
    assert_eq!(inbox.wait_len(N).await, numbered(N));
    next_of(&mut events, EventKind::Recovered).await;
    let status = subscriber.status().await.unwrap();
    assert_eq!(status.connection_id, Some(first.connection_id));
    assert_eq!(status.counters.recoveries, 1);
    assert_eq!(status.counters.reconnects, 0);
    assert_eq!(hub.stats().recoveries, 1);
}

#[actix_rt::test]
async fn ack_lost_after_processing_is_resent_with_the_same_id_and_deduplicated() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let subscriber = client(&cs, "sub", &ROLES);
    let inbox = Inbox::attach(&subscriber).await;
    subscriber.start().await.unwrap();
    subscriber.join_group("room").await.unwrap();
    let publisher = client(&cs, "pub", &ROLES);
    publisher.start().await.unwrap();
    hub.inject(Fault::CloseAfterProcessing(1));
    let ack = publisher
        .send_to_group("room", "once", SendOptions::new())
        .await
        .unwrap();
    assert!(
        ack.duplicated,
        "the resend after recovery was answered Duplicate"
    );
    publisher
        .send_to_group("room", "next", SendOptions::new())
        .await
        .unwrap();
    assert_eq!(inbox.wait_len(2).await, ["once", "next"]);
    assert_eq!(hub.stats().duplicates, 1);
}

#[actix_rt::test]
async fn refused_recovery_starts_a_new_connection_and_rejoins() {
    let (hub, cs) = hub(HubConfig::new().recovery_window(Duration::from_secs(2))).await;
    let subscriber = client(&cs, "sub", &ROLES);
    let inbox = Inbox::attach(&subscriber).await;
    let mut events = subscriber.events().await.unwrap();
    let first = subscriber.start().await.unwrap();
    subscriber.join_group("room").await.unwrap();
    hub.inject(Fault::RefuseRecoveries(1));
    hub.drop_connection(&first.connection_id);
    next_of(&mut events, EventKind::Disconnected).await;
    let second = match next_of(&mut events, EventKind::Connected).await {
        Event::Connected { connection_id, .. } => connection_id,
        other => panic!("{other:?}"),
    };
    assert_ne!(second, first.connection_id);
    // The group was rejoined on the new connection: a message reaches it.
    let publisher = client(&cs, "pub", &ROLES);
    publisher.start().await.unwrap();
    eventually("the group rejoined, nothing pending", async || {
        let status = subscriber.status().await.unwrap();
        if status.groups.contains(&"room".to_owned()) && status.pending == 0 {
            Ok(())
        } else {
            Err(format!(
                "groups {:?}, {} pending",
                status.groups, status.pending
            ))
        }
    })
    .await;
    publisher
        .send_to_group("room", "after", SendOptions::new())
        .await
        .unwrap();
    assert_eq!(inbox.wait_len(1).await, ["after"]);
    assert_eq!(subscriber.status().await.unwrap().counters.reconnects, 1);
}

#[actix_rt::test]
async fn hub_restart_forces_new_connections_for_every_client() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let mut clients = Vec::new();
    let mut streams = Vec::new();
    for i in 0..20 {
        let c = client(&cs, &format!("u{i}"), &ROLES);
        streams.push(c.events().await.unwrap());
        c.start().await.unwrap();
        c.join_group(format!("g{}", i % 4)).await.unwrap();
        clients.push(c);
    }
    hub.restart();
    for s in &mut streams {
        next_of(s, EventKind::Connected).await;
        next_of(s, EventKind::Connected).await;
    }
    for c in &clients {
        assert_eq!(c.status().await.unwrap().counters.reconnects, 1);
    }
}

fn url_with_token(hub: &Hub, token: &str) -> String {
    format!(
        "{}/client/hubs/chat?access_token={token}",
        hub.endpoint().replacen("http", "ws", 1)
    )
}

#[actix_rt::test]
async fn refused_tokens_fail_start_with_unauthorized() {
    let (hub, cs) = hub(HubConfig::new()).await;
    let now = SystemTime::now();
    let audience = cs.client_audience("chat");
    let good = TokenOptions::new().user_id("u");
    let expired = webpubsub_fleet::credential::mint_client_token(
        cs.access_key(),
        &audience,
        &good.clone().lifetime(Duration::from_secs(60)),
        now - Duration::from_secs(3600),
    )
    .unwrap();
    let wrong_key = webpubsub_fleet::credential::mint_client_token(
        &Secret::new("not-the-key"),
        &audience,
        &good,
        now,
    )
    .unwrap();
    let wrong_audience = webpubsub_fleet::credential::mint_client_token(
        cs.access_key(),
        &cs.client_audience("other"),
        &good,
        now,
    )
    .unwrap();
    let alg_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjQxMDI0NDQ4MDB9.";
    for token in [
        expired.expose(),
        wrong_key.expose(),
        wrong_audience.expose(),
        alg_none,
    ] {
        let c = Client::from_url(&url_with_token(&hub, token), ClientOptions::new()).unwrap();
        assert_eq!(c.start().await, Err(ClientError::Unauthorized));
    }
    assert_eq!(hub.stats().unauthorized, 4);
}

#[actix_rt::test]
async fn forbidden_without_role_carries_the_ack_id() {
    let (_hub, cs) = hub(HubConfig::new()).await;
    let c = client(&cs, "no-roles", &[]);
    c.start().await.unwrap();
    match c.join_group("room").await {
        Err(ClientError::Ack { ack_id, error }) => {
            assert_eq!(ack_id, 1);
            assert_eq!(error.name, AckErrorName::Forbidden);
        }
        other => panic!("{other:?}"),
    }
    // An event needs no role.
    c.send_event("hello", "x", SendOptions::new())
        .await
        .unwrap();
}

#[actix_rt::test]
async fn ten_thousand_acked_sends_without_a_spurious_failure() {
    let (_hub, cs) = hub(HubConfig::new()).await;
    let c = client(&cs, "fast", &ROLES);
    c.start().await.unwrap();
    const N: usize = 10_000;
    let mut batch = Vec::new();
    for i in 0..N {
        let p = c.clone();
        batch.push(actix_rt::spawn(async move {
            p.send_event("e", i.to_string(), SendOptions::new()).await
        }));
        if batch.len() == 1000 {
            for s in batch.drain(..) {
                s.await.unwrap().unwrap();
            }
        }
    }
    for s in batch {
        s.await.unwrap().unwrap();
    }
    let status = c.status().await.unwrap();
    assert_eq!(status.pending, 0);
    assert_eq!(status.counters.unknown_acks, 0);
}

#[actix_rt::test]
async fn wss_through_a_throwaway_ca() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let hub = Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse().unwrap())
            .tls(server.pem().into_bytes(), server_key.serialize_pem()),
    )
    .await
    .unwrap();
    let cs = hub.connection_string();
    let url = cs
        .client_access_url(
            "chat",
            &TokenOptions::new().user_id("tls"),
            SystemTime::now(),
        )
        .unwrap()
        .expose()
        .as_str()
        .replace("127.0.0.1", "localhost");
    assert!(
        url.starts_with("wss://"),
        "{}",
        url.split('?').next().unwrap()
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let c = Client::from_url(&url, ClientOptions::new().with_tls(Arc::new(tls))).unwrap();
    c.start().await.unwrap();
    c.send_event("over-tls", "x", SendOptions::new())
        .await
        .unwrap();

    // Without the CA the handshake fails with a TLS error, not a hang.
    let untrusted = Client::from_url(&url, ClientOptions::new()).unwrap();
    assert!(matches!(untrusted.start().await, Err(ClientError::Tls(_))));
}

#[actix_rt::test]
async fn frames_far_larger_than_the_read_buffer_arrive_intact() {
    let (_hub, cs) = hub(HubConfig::new()).await;
    let receiver = client(&cs, "big-in", &ROLES);
    let mut events = receiver.events().await.unwrap();
    receiver.start().await.unwrap();
    receiver.join_group("big").await.unwrap();
    let sender = client(&cs, "big-out", &ROLES);
    sender.start().await.unwrap();
    let text: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let binary: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    sender
        .send_to_group("big", text.clone(), SendOptions::new())
        .await
        .unwrap();
    sender
        .send_to_group("big", binary.clone(), SendOptions::new())
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let Event::GroupMessage(m) = next_of(&mut events, EventKind::GroupMessage).await {
            got.push(m.data.clone());
        }
    }
    assert_eq!(got[0], webpubsub_fleet::protocol::Payload::Text(text));
    assert_eq!(
        got[1],
        webpubsub_fleet::protocol::Payload::Binary(binary.into())
    );
}
