//! The client handle's contract against the real local hub (issue 14 item 4): the last handle
//! dropped stops the client and ends its actor, socket, timers and callbacks; the synchronous
//! accessors follow the client's life; `ClientError::is_transient` and the `Payload` accessors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod support;

use actix::Actor;
use support::client::next_of;
use support::{DEADLINE, eventually};
use webpubsub_fleet::actor::{ClientActor, Start};
use webpubsub_fleet::client::{
    Client, ClientError, ClientOptions, ClientState, Event, EventKind, StopReason,
};
use webpubsub_fleet::credential::{ConnectionString, Credential, CredentialError};
use webpubsub_fleet::hub::{Hub, HubConfig, HubStats};
use webpubsub_fleet::protocol::{AckError, AckErrorName, Payload, Subprotocol};

async fn hub() -> (Hub, ConnectionString) {
    let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let cs = hub.connection_string();
    (hub, cs)
}

fn credential(cs: &ConnectionString, user: &str) -> Credential {
    support::client::credential(cs, "api", user, &support::client::ROLES)
}

/// The hub's view of its sockets.
fn attached(hub: &Hub) -> (u64, u64) {
    let HubStats {
        connections,
        attached,
        ..
    } = hub.stats();
    (connections, attached)
}

/// Set when the value holding it is dropped: captured by a callback, it tells when the
/// client's callback actor, and the callbacks it owns, are gone.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[actix_rt::test]
async fn dropping_the_last_handle_stops_the_client_and_ends_everything_it_held() {
    let (hub, cs) = hub().await;
    let client = Client::new(credential(&cs, "dropped"), ClientOptions::new()).unwrap();
    let callback_gone = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(callback_gone.clone());
    client
        .subscribe_all(move |_| {
            let _ = &flag;
        })
        .await
        .unwrap();
    let mut events = client.events().await.unwrap();
    client.start().await.unwrap();
    client.join_group("room").await.unwrap();
    assert_eq!(attached(&hub), (1, 1));
    // An `Addr` is not a handle: kept here only to watch the actor's mailbox.
    let addr = client.addr().clone();

    // A clone is a handle: dropping one of two changes nothing.
    let other = client.clone();
    drop(client);
    other.join_group("still-alive").await.unwrap();
    assert!(other.is_connected());
    assert_eq!(attached(&hub), (1, 1));

    drop(other);
    next_of(&mut events, EventKind::Disconnected).await;
    match next_of(&mut events, EventKind::Stopped).await {
        Event::Stopped { reason } => assert_eq!(reason, StopReason::Requested),
        other => unreachable!("{other:?}"),
    }
    eventually("the hub sees the connection closed", async || {
        attached(&hub) == (0, 0)
    })
    .await;
    eventually("the actor's mailbox closes", async || !addr.connected()).await;
    eventually(
        "the callback actor and its callbacks are dropped",
        async || callback_gone.load(Ordering::SeqCst),
    )
    .await;
    // The stream's sender lived in the actor: the stream ends instead of waiting forever.
    let end = tokio::time::timeout(DEADLINE, events.recv()).await;
    assert!(
        matches!(end, Ok(None)),
        "the event stream did not end with the actor: {end:?}"
    );
    // A closed client (one that reconnects without limit by default) did not come back.
    assert_eq!(hub.stats().connections_opened, 1);
}

#[actix_rt::test]
async fn a_never_started_client_ends_when_its_last_handle_drops() {
    let (_hub, cs) = hub().await;
    let client = Client::new(credential(&cs, "idle"), ClientOptions::new()).unwrap();
    let addr = client.addr().clone();
    drop(client);
    eventually("the actor's mailbox closes", async || !addr.connected()).await;
}

#[actix_rt::test]
async fn from_addr_joins_the_handles_and_refuses_a_released_actor() {
    let (hub, cs) = hub().await;
    let client = Client::new(credential(&cs, "wrapped"), ClientOptions::new()).unwrap();
    client.start().await.unwrap();
    let addr = client.addr().clone();
    let wrapped = Client::from_addr(addr.clone()).await.unwrap();
    // The two handle families share the actor and its status.
    assert_eq!(wrapped.connection_id(), client.connection_id());
    drop(client);
    wrapped.join_group("g").await.unwrap();
    assert_eq!(attached(&hub), (1, 1));
    drop(wrapped);
    // The release is in the mailbox before this Start: an `Addr` cannot bring the client back.
    let restarted = addr.send(Start).await;
    assert!(
        matches!(restarted, Err(_) | Ok(Err(ClientError::ActorGone))),
        "{restarted:?}"
    );
    eventually("the hub sees the connection closed", async || {
        attached(&hub) == (0, 0)
    })
    .await;
    let again = Client::from_addr(addr).await;
    assert_eq!(again.err(), Some(ClientError::ActorGone));
    assert_eq!(hub.stats().connections_opened, 1);
}

#[actix_rt::test]
async fn an_actor_started_by_hand_lives_on_until_from_addr_hands_it_to_handles() {
    let (hub, cs) = hub().await;
    let addr = ClientActor::new(credential(&cs, "actix-native"), ClientOptions::new()).start();
    addr.send(Start).await.unwrap().unwrap();
    // With no handle at all the actor lives on; a handle made for it takes it over, and the
    // drop of that handle stops it.
    assert_eq!(attached(&hub), (1, 1));
    assert!(addr.connected());
    let handle = Client::from_addr(addr.clone()).await.unwrap();
    assert!(handle.is_connected());
    drop(handle);
    eventually("the actor's mailbox closes", async || !addr.connected()).await;
    eventually("the hub sees the connection closed", async || {
        attached(&hub) == (0, 0)
    })
    .await;
}

#[actix_rt::test]
async fn accessors_follow_start_drop_recovery_and_stop_without_a_round_trip() {
    let (hub, cs) = hub().await;
    let client = Client::new(credential(&cs, "watched"), ClientOptions::new()).unwrap();
    assert_eq!(client.state(), ClientState::Stopped);
    assert!(!client.is_connected());
    assert_eq!(client.connection_id(), None);
    let mut events = client.events().await.unwrap();

    let info = client.start().await.unwrap();
    // Published before start() resolved: no wait, no message to the actor.
    assert!(client.is_connected());
    assert_eq!(client.state(), ClientState::Connected);
    assert_eq!(
        client.connection_id().as_deref(),
        Some(&*info.connection_id)
    );
    assert_eq!(client.user_id().as_deref(), Some("watched"));
    let status = client.status().await.unwrap();
    assert_eq!(status.connection_id, client.connection_id());

    // A dropped socket on the reliable subprotocol: recovered, same connection.
    assert!(hub.drop_connection(&info.connection_id));
    next_of(&mut events, EventKind::Recovered).await;
    assert!(client.is_connected());
    assert_eq!(
        client.connection_id().as_deref(),
        Some(&*info.connection_id)
    );

    client.stop().await.unwrap();
    assert_eq!(client.state(), ClientState::Stopped);
    assert!(!client.is_connected());
    assert_eq!(client.connection_id(), None);
}

#[actix_rt::test]
async fn accessors_say_disconnected_then_a_new_connection_id_after_a_reconnect() {
    let (hub, cs) = hub().await;
    let options = ClientOptions::new().with_protocol(Subprotocol::Json);
    let client = Client::new(credential(&cs, "moved"), options).unwrap();
    let mut events = client.events().await.unwrap();
    let first = client.start().await.unwrap();
    // No recovery on the plain JSON subprotocol: a drop is a new connection.
    assert!(hub.drop_connection(&first.connection_id));
    next_of(&mut events, EventKind::Disconnected).await;
    let second = match next_of(&mut events, EventKind::Connected).await {
        Event::Connected { connection_id, .. } => connection_id,
        other => unreachable!("{other:?}"),
    };
    assert_ne!(second, first.connection_id);
    // Published before the event was emitted, so it holds when the event arrives.
    assert_eq!(client.connection_id().as_deref(), Some(&*second));
    assert!(client.is_connected());
}

#[actix_rt::test]
async fn a_client_stopped_by_a_lost_connection_reads_stopped() {
    let (hub, cs) = hub().await;
    let options = ClientOptions::new()
        .with_protocol(Subprotocol::Json)
        .with_auto_reconnect(false);
    let client = Client::new(credential(&cs, "lost"), options).unwrap();
    let mut events = client.events().await.unwrap();
    let info = client.start().await.unwrap();
    assert!(client.is_connected());
    assert!(hub.drop_connection(&info.connection_id));
    next_of(&mut events, EventKind::Stopped).await;
    assert_eq!(client.state(), ClientState::Stopped);
    assert_eq!(client.connection_id(), None);
}

#[test]
fn transient_errors_are_the_ones_a_retry_can_fix() {
    let ack = |name: AckErrorName| ClientError::Ack {
        ack_id: 7,
        error: AckError {
            name,
            message: String::new(),
        },
    };
    let transient = [
        ack(AckErrorName::InternalServerError),
        ack(AckErrorName::Other("Timeout".into())),
        ClientError::ConnectionLost { ack_id: 1 },
        ClientError::AckTimeout {
            ack_id: 1,
            after: Duration::from_secs(30),
        },
        ClientError::StartTimeout(Duration::from_secs(30)),
        ClientError::Tcp("refused".into()),
        ClientError::Dns("no such host".into()),
        ClientError::HandshakeStatus { status: 503 },
        ClientError::HandshakeStatus { status: 429 },
        ClientError::NotConnected,
        ClientError::TooManyPending { max: 1 },
        ClientError::Credential(CredentialError::Provider {
            reason: "token server down".into(),
        }),
    ];
    for e in &transient {
        assert!(e.is_transient(), "{e:?} should be transient");
    }
    let permanent = [
        ack(AckErrorName::Forbidden),
        ack(AckErrorName::Other("InvalidRequest".into())),
        ClientError::Unauthorized,
        ClientError::HandshakeStatus { status: 404 },
        ClientError::NoSubprotocol,
        ClientError::Tls("unknown issuer".into()),
        ClientError::Stopped { ack_id: Some(1) },
        ClientError::NotStarted,
        ClientError::ActorGone,
        ClientError::Credential(CredentialError::MissingEndpoint),
    ];
    for e in &permanent {
        assert!(!e.is_transient(), "{e:?} should not be transient");
    }
}

#[test]
fn payload_accessors_answer_only_for_their_own_type() {
    let text = Payload::from("hi");
    let json = Payload::from(serde_json::json!({"n": 1}));
    let binary = Payload::from(vec![1u8, 2, 3]);
    assert_eq!(text.as_text(), Some("hi"));
    assert_eq!(json.as_json(), Some(&serde_json::json!({"n": 1})));
    assert_eq!(binary.as_bytes(), Some(&[1u8, 2, 3][..]));
    for p in [&text, &json, &binary] {
        let answers = [
            p.as_text().is_some(),
            p.as_json().is_some(),
            p.as_bytes().is_some(),
        ];
        assert_eq!(answers.iter().filter(|&&a| a).count(), 1, "{p:?}");
    }
    assert_eq!(
        Payload::Protobuf(bytes::Bytes::from_static(b"\x0a")).as_bytes(),
        None
    );
}

#[tokio::test]
async fn a_client_made_outside_an_actix_system_is_refused_with_what_to_do() {
    let url = "wss://example.webpubsub.azure.com/client/hubs/api?access_token=x";
    let error = Client::from_url(url, ClientOptions::new()).unwrap_err();
    assert_eq!(error, ClientError::NoActixSystem);
    assert!(error.to_string().contains("#[actix::main]"), "{error}");
}

#[actix_rt::test]
async fn a_callback_holding_a_weak_client_does_not_keep_the_client_alive() {
    let (hub, cs) = hub().await;
    let client = Client::new(credential(&cs, "weak"), ClientOptions::new()).unwrap();
    let weak = client.downgrade();
    let upgraded_in_callback = Arc::new(AtomicBool::new(false));
    let seen = upgraded_in_callback.clone();
    // A reply-from-a-callback pattern: the callback reaches the client through the weak one.
    client
        .subscribe(EventKind::Connected, move |_| {
            if let Some(client) = weak.upgrade() {
                seen.store(client.is_connected(), Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    client.start().await.unwrap();
    eventually(
        "the callback reached the client through the weak handle",
        async || upgraded_in_callback.load(Ordering::SeqCst),
    )
    .await;
    let addr = client.addr().clone();
    let weak = client.downgrade();
    drop(client);
    assert!(weak.upgrade().is_none(), "a weak handle is not a handle");
    eventually("the actor's mailbox closes", async || !addr.connected()).await;
    eventually("the hub sees the connection closed", async || {
        attached(&hub) == (0, 0)
    })
    .await;
}
