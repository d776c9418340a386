//! Event handler settings as the service has them: several handlers with URL templates and
//! filters, `https` with an extra CA, every header the service sends, abuse protection.
//! The app server is a scripted actix-web server (tests/handler_support).

mod support;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use support::app_server::{Answer, Received, app_server, event};
use support::http::*;
use support::hub::*;
use support::ws::*;
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig, HubError, SystemEvent};

const SECONDARY: &str = "a-secondary-key-of-at-least-32-bytes-for-tests";

fn hmac_hex(key: &str, connection_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(connection_id.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Every attribute the service puts on an event (protocol.md 8.2, the handler SDK's needs).
fn assert_service_headers(r: &Received, hub: &Hub, connection_id: &str, ce_type: &str) {
    let h = |name: &str| {
        r.header(name)
            .unwrap_or_else(|| panic!("no {name} in {r:?}"))
    };
    assert_eq!(h("ce-awpsversion"), "1.0");
    assert_eq!(
        h("webhook-request-origin"),
        hub.addr().to_string(),
        "the origin is the hub's host:port"
    );
    assert_eq!(h("ce-specversion"), "1.0");
    assert_eq!(h("ce-type"), ce_type);
    assert_eq!(
        h("ce-source"),
        format!("/hubs/{HUB}/client/{connection_id}")
    );
    assert!(!h("ce-id").is_empty());
    assert!(h("ce-time").ends_with('Z'));
    assert_eq!(h("ce-hub"), HUB);
    assert_eq!(h("ce-connectionid"), connection_id);
    assert_eq!(h("ce-eventname"), ce_type.rsplit('.').next().unwrap());
    assert_eq!(h("ce-userid"), "alice");
    assert_eq!(h("ce-subprotocol"), JSON);
    // One signature per access key, primary first.
    let expected = format!(
        "{},{}",
        hmac_hex(hub.access_key().expose(), connection_id),
        hmac_hex(SECONDARY, connection_id)
    );
    assert_eq!(h("ce-signature"), expected);
}

#[tokio::test]
async fn https_handler_trusted_through_the_extra_ca_gets_every_service_header() {
    let mut app = app_server(true, |r| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ => Answer::status(200).body("text/plain", "re"),
    })
    .await;
    let template = format!("{}/api/{{hub}}/{{event}}", app.base());
    let ca = app.ca_pem.clone().unwrap();
    let hub = start_hub_with(|c| {
        c.handler(EventHandler::new(template))
            .upstream_ca(ca)
            .secondary_access_key(SECONDARY)
    })
    .await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;

    // The check comes first, to the first event's URL, with the origin and the version.
    let options = app.next().await;
    assert_eq!(options.method, "OPTIONS");
    assert_eq!(options.path, format!("/api/{HUB}/connected"));
    assert_eq!(
        options.header("webhook-request-origin"),
        Some(hub.addr().to_string().as_str())
    );
    assert_eq!(options.header("ce-awpsversion"), Some("1.0"));

    let connected = app.next().await;
    assert_eq!(connected.method, "POST");
    assert_eq!(connected.path, format!("/api/{HUB}/connected"));
    assert_service_headers(
        &connected,
        &hub,
        &client.connection_id,
        "azure.webpubsub.sys.connected",
    );
    assert_eq!(connected.json(), json!({}));

    let ack = event(&mut client, "echo", "hi", 1).await;
    assert_eq!(ack["success"], true, "{ack}");
    let event = app.next().await;
    assert_eq!(event.path, format!("/api/{HUB}/echo"));
    assert_service_headers(
        &event,
        &hub,
        &client.connection_id,
        "azure.webpubsub.user.echo",
    );
    assert_eq!(event.body, b"hi");
    assert_eq!(
        client.next_json().await,
        json!({"type":"message","from":"server","dataType":"text","data":"re"})
    );
    // One check per host: nothing but events from here on.
    assert!(hub.stats().event_handlers_refused.is_empty());
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn an_https_handler_whose_certificate_is_not_trusted_is_not_called() {
    let mut app = app_server(true, |_| Answer::allow_all()).await;
    let template = format!("{}/api/{{event}}", app.base());
    let hub = start_hub_with(|c| c.handler(EventHandler::new(template))).await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    let ack = event(&mut client, "e", "x", 1).await;
    assert_eq!(ack["error"]["name"], "InvocationFailed", "{ack}");
    let host = format!("https://localhost:{}", app.addr.port());
    let refused = hub.stats().event_handlers_refused;
    let why = refused.get(&host).unwrap_or_else(|| panic!("{refused:?}"));
    assert!(
        why.contains("certificate") || why.contains("Certificate"),
        "{why}"
    );
    // The TLS handshake failed, so no request reached the app at all.
    assert!(app.requests.try_recv().is_err());
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_handler_that_does_not_allow_the_origin_gets_no_event_and_the_hub_says_why() {
    let mut app = app_server(false, |r| match r.method.as_str() {
        "OPTIONS" => Answer::status(200).header("WebHook-Allowed-Origin", "other.example"),
        _ => Answer::status(200),
    })
    .await;
    let template = format!("{}/api/{{event}}", app.base());
    let hub = start_hub_with(|c| c.handler(EventHandler::new(template))).await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    let ack = event(&mut client, "e", "x", 1).await;
    assert_eq!(ack["error"]["name"], "InvocationFailed", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not allow the origin"),
        "{ack}"
    );
    // Only the check reached the app; `connected` and the event were not sent.
    assert_eq!(app.next().await.method, "OPTIONS");
    let stats = rest(&hub, "GET", "/_fleet/stats", None, b"").await.json();
    let host = format!("http://{}", app.addr);
    let why = stats["event_handlers_refused"][&host].as_str().unwrap();
    assert!(why.contains("other.example"), "{stats}");
    assert!(stats["upstream_refused"].as_u64().unwrap() >= 2, "{stats}");
    // The hub goes on serving the client.
    client.send_json(json!({"type":"ping"})).await;
    assert_eq!(client.next_json().await["type"], "pong");
    assert!(
        app.requests.try_recv().is_err(),
        "no POST after the refusal"
    );
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn events_go_to_the_first_handler_whose_filters_take_them() {
    let allow = |r: &Received| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ => Answer::status(204),
    };
    let mut first = app_server(false, allow).await;
    let mut second = app_server(false, allow).await;
    let mut other_hub = app_server(false, allow).await;
    let hub = start_hub_with(|c| {
        c.handler(
            EventHandler::new(format!("{}/{{event}}", other_hub.base()))
                .hub("elsewhere")
                .user_events("*"),
        )
        .handler(
            EventHandler::new(format!("{}/first/{{event}}", first.base()))
                .user_events("a, b")
                .system_events([SystemEvent::Connected]),
        )
        .handler(
            EventHandler::new(format!("{}/second/{{event}}", second.base()))
                .user_events("*")
                .system_events([SystemEvent::Disconnected]),
        )
    })
    .await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    assert_eq!(first.next_event().await.path, "/first/connected");
    for (ack_id, name) in [(1, "b"), (2, "c")] {
        let ack = event(&mut client, name, "x", ack_id).await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    assert_eq!(first.next_event().await.path, "/first/b");
    assert_eq!(second.next_event().await.path, "/second/c");
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    hub.restart();
    assert_eq!(second.next_event().await.path, "/second/disconnected");
    // Nothing for the handler of another hub.
    assert!(other_hub.requests.try_recv().is_err());
    hub.stop().await;
    for app in [first, second, other_hub] {
        app.stop().await;
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_message_limit_fails_the_event_not_the_hub() {
    let mut app = app_server(false, |r| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ if r.header("ce-eventname") == Some("big") => {
            Answer::status(200).body("text/plain", vec![b'x'; 4096])
        }
        _ => Answer::status(200).body("application/json", "{not json"),
    })
    .await;
    let template = format!("{}/{{event}}", app.base());
    let hub = start_hub_with(|c| {
        c.handler(EventHandler::new(template))
            .max_message_size(1024)
    })
    .await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    let ack = event(&mut client, "big", "x", 1).await;
    assert_eq!(ack["error"]["name"], "InvocationFailed", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024-byte"),
        "{ack}"
    );
    // A body that is not what its content type says arrives as binary.
    let ack = event(&mut client, "garbled", "x", 2).await;
    assert_eq!(ack["success"], true, "{ack}");
    let message = client.next_json().await;
    assert_eq!(message["dataType"], "binary", "{message}");
    let _ = app.next().await;
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn unusable_handler_settings_are_refused_at_start_with_the_reason() {
    let start = |handler: EventHandler| {
        Hub::start(
            HubConfig::new()
                .bind("127.0.0.1:0".parse().unwrap())
                .handler(handler),
        )
    };
    for (template, expected) in [
        ("ws://h/{event}", "use http:// or https://"),
        ("http://h/{connectionId}", "only {hub} and {event}"),
        ("not a url", "not a URL"),
    ] {
        match start(EventHandler::new(template)).await {
            Err(HubError::InvalidEventHandler(why)) => assert!(why.contains(expected), "{why}"),
            other => panic!("{template}: {other:?}"),
        }
    }
    let bad_ca = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .upstream_ca("no certificate here");
    match Hub::start(bad_ca).await {
        Err(HubError::InvalidEventHandler(why)) => assert!(why.contains("CA"), "{why}"),
        other => panic!("{other:?}"),
    }
}
