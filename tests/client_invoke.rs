//! `invoke` / `invokeResponse` / `cancelInvocation` (protocol.md 8.3, issue 12 item 5): the
//! client's `invoke_event` against the in-process hub calling a scripted app server, the
//! hub's answers to hostile and concurrent invokes on a raw socket, and the client's cancels
//! on the wire of a scripted fake hub.

mod support;

use std::time::Duration;

use serde_json::json;
use support::app_server::{Answer, AppServer, Received, app_server};
use support::fake_hub::{FakeHub, Handshake};
use support::hub::*;
use support::ws::*;
use webpubsub_fleet::client::{ClientError, ClientOptions};
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig};
use webpubsub_fleet::protocol::{Outbound, Payload, Subprotocol};

/// Replies by event name; `slow` answers after half a second, so it is in flight meanwhile.
async fn scripted_app() -> AppServer {
    app_server(false, |r: &Received| {
        if r.method == "OPTIONS" {
            return Answer::allow_all();
        }
        match r.header("ce-eventname") {
            Some("json") => Answer::status(200).body("application/json", r#"{"a":1}"#),
            Some("bin") => Answer::status(200).body("application/octet-stream", vec![0, 1, 2]),
            Some("text") => Answer::status(200).body("text/plain; charset=utf-8", "plain"),
            Some("fail") => Answer::status(500),
            Some("slow") => {
                std::thread::sleep(Duration::from_millis(500));
                Answer::status(200).body("text/plain", "late")
            }
            _ => Answer::status(204),
        }
    })
    .await
}

async fn hub_calling(app: &AppServer, tweak: impl FnOnce(HubConfig) -> HubConfig) -> Hub {
    let template = format!("{}/{{event}}", app.base());
    start_hub_with(|c| tweak(c.handler(EventHandler::new(template)))).await
}

#[actix_rt::test]
async fn invoke_event_returns_the_handlers_reply_typed_by_content_type_or_its_failure() {
    let mut app = scripted_app().await;
    let hub = hub_calling(&app, |c| c).await;
    let client = support::client::client(
        &hub.connection_string(),
        HUB,
        "alice",
        &[],
        ClientOptions::new(),
    );
    client.start().await.unwrap();
    for (event, expected) in [
        ("json", Some(Payload::Json(json!({"a": 1})))),
        ("bin", Some(Payload::Binary(vec![0, 1, 2].into()))),
        ("text", Some(Payload::Text("plain".into()))),
        ("quiet", None),
    ] {
        let response = client.invoke_event(event, "question").await.unwrap();
        assert_eq!(response.data, expected, "{event}");
        // The handler got the user event, with the request's data.
        let call = app
            .next_of_type(&format!("azure.webpubsub.user.{event}"))
            .await;
        assert_eq!(call.body, b"question");
    }
    match client.invoke_event("fail", "q").await {
        Err(ClientError::InvokeFailed { error, .. }) => {
            assert_eq!(error.name.as_str(), "InvocationFailed", "{error}");
        }
        other => panic!("expected InvokeFailed, got {other:?}"),
    }
    // After a stop an invocation is refused, typed.
    client.stop().await.unwrap();
    assert_eq!(
        client.invoke_event("json", "q").await,
        Err(ClientError::NotStarted)
    );
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn without_a_handler_an_invoke_is_echoed_or_refused() {
    let hub = start_hub_with(|c| c.echo_events(true)).await;
    let mut peer = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    peer.send_json(json!({"type":"invoke","invocationId":"1","target":"event","event":"e","dataType":"json","data":{"x":2}}))
        .await;
    assert_eq!(
        peer.next_json().await,
        json!({"type":"invokeResponse","invocationId":"1","success":true,"dataType":"json","data":{"x":2}})
    );
    hub.stop().await;
    let hub = start_hub().await;
    let mut peer = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    peer.send_json(
        json!({"type":"invoke","invocationId":"1","event":"e","dataType":"text","data":"x"}),
    )
    .await;
    let response = peer.next_json().await;
    assert_eq!(response["success"], false, "{response}");
    assert_eq!(response["error"]["name"], "InvocationFailed", "{response}");
    hub.stop().await;
}

#[tokio::test]
async fn hostile_invokes_get_a_clear_failed_response_or_a_clear_close() {
    let hub = start_hub_with(|c| c.echo_events(true)).await;
    let mut peer = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    // A usable id but no event: a failed response naming the missing field.
    peer.send_json(json!({"type":"invoke","invocationId":"a","dataType":"text","data":"x"}))
        .await;
    let response = peer.next_json().await;
    assert_eq!(response["invocationId"], "a");
    assert_eq!(response["error"]["name"], "BadRequest", "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`event`"),
        "{response}"
    );
    // A huge id: refused with the limit, echoed so the client can match it.
    let huge = "i".repeat(10_000);
    peer.send_json(
        json!({"type":"invoke","invocationId":huge,"event":"e","dataType":"text","data":"x"}),
    )
    .await;
    let response = peer.next_json().await;
    assert_eq!(response["success"], false);
    assert_eq!(response["error"]["name"], "BadRequest", "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 128"),
        "{response}"
    );
    // The connection is still served.
    peer.send_json(
        json!({"type":"invoke","invocationId":"b","event":"e","dataType":"text","data":"ok"}),
    )
    .await;
    assert_eq!(peer.next_json().await["data"], "ok");
    // No id to answer: the connection is closed with a reason, as for other bad frames.
    peer.send_json(json!({"type":"invoke","event":"e","dataType":"text","data":"x"}))
        .await;
    let (code, _) = peer.until_closed().await;
    assert_eq!(code, Some(1008));
    hub.stop().await;
}

#[tokio::test]
async fn duplicate_ids_and_too_many_in_flight_are_refused_and_a_cancel_silences_the_reply() {
    let app = scripted_app().await;
    let hub = hub_calling(&app, |c| c.max_invocations_per_connection(1)).await;
    let mut peer = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    let slow = |id: &str| json!({"type":"invoke","invocationId":id,"event":"slow","dataType":"text","data":"x"});
    peer.send_json(slow("1")).await;
    peer.send_json(slow("1")).await;
    let response = peer.next_json().await;
    assert_eq!(response["invocationId"], "1");
    assert_eq!(response["error"]["name"], "Duplicate", "{response}");
    peer.send_json(slow("2")).await;
    let response = peer.next_json().await;
    assert_eq!(response["invocationId"], "2");
    assert_eq!(
        response["error"]["name"], "TooManyInvocations",
        "{response}"
    );
    // Cancelled while the handler works: the slot is free at once, and the reply to 1, which
    // the one-thread app server sends before the one to 3, is never written.
    peer.send_json(json!({"type":"cancelInvocation","invocationId":"1"}))
        .await;
    peer.send_json(slow("3")).await;
    let response = peer.next_json().await;
    assert_eq!(response["invocationId"], "3", "{response}");
    assert_eq!(response["data"], "late");
    hub.stop().await;
    app.stop().await;
}

fn is_cancel(frame: &Outbound) -> bool {
    matches!(frame, Outbound::CancelInvocation { .. })
}

#[actix_rt::test]
async fn timeout_drop_and_stop_send_cancel_invocation_and_fail_typed() {
    let mut fake = FakeHub::start(Handshake::Accept).await;
    let options = ClientOptions::new()
        .with_protocol(Subprotocol::Json)
        .with_invoke_timeout(Some(Duration::from_millis(200)));
    let (client, _events, mut conn) = fake.connected_client(options).await;

    // Timeout: a typed error, and the cancel on the wire with the same id.
    let timed = client.invoke_event("e", "q").await;
    let Outbound::Invoke { invocation_id, .. } = conn.recv_outbound().await else {
        panic!("expected an invoke first");
    };
    match timed {
        Err(ClientError::InvokeTimeout {
            invocation_id: id,
            after,
        }) => {
            assert_eq!(id, invocation_id);
            assert_eq!(after, Duration::from_millis(200));
        }
        other => panic!("expected InvokeTimeout, got {other:?}"),
    }
    assert_eq!(
        conn.recv_outbound().await,
        Outbound::CancelInvocation { invocation_id }
    );

    // Drop: the future is dropped once the invoke is on the wire; the cancel follows.
    let dropped = {
        let client = client.clone();
        actix_rt::spawn(async move { client.invoke_event("e", "q").await })
    };
    let Outbound::Invoke { invocation_id, .. } = conn.recv_outbound().await else {
        panic!("expected an invoke");
    };
    dropped.abort();
    assert_eq!(
        conn.recv_outbound_matching(is_cancel).await,
        Outbound::CancelInvocation { invocation_id }
    );

    // Stop: the pending call fails with Stopped, after its cancel went out.
    let stopped = {
        let client = client.clone();
        actix_rt::spawn(async move { client.invoke_event("e", "q").await })
    };
    let Outbound::Invoke { invocation_id, .. } = conn.recv_outbound().await else {
        panic!("expected an invoke");
    };
    client.stop().await.unwrap();
    assert_eq!(
        conn.recv_outbound_matching(is_cancel).await,
        Outbound::CancelInvocation { invocation_id }
    );
    assert_eq!(
        stopped.await.unwrap(),
        Err(ClientError::Stopped { ack_id: None })
    );
}

#[actix_rt::test]
async fn a_protobuf_client_refuses_invoke_with_a_typed_error() {
    let mut fake = FakeHub::start(Handshake::Accept).await;
    let options = ClientOptions::new().with_protocol(Subprotocol::Protobuf);
    let (client, _events, _conn) = fake.connected_client(options).await;
    assert_eq!(
        client.invoke_event("e", "q").await,
        Err(ClientError::InvokeUnsupported(Subprotocol::Protobuf))
    );
}
