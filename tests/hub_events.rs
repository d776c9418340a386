//! The upstream event handler: CloudEvents POSTed to a scripted fake handler, whose replies
//! come back to the client as server messages or as failed acks.

mod support;

use serde_json::json;
use support::http::*;
use support::hub::*;
use support::within;
use support::ws::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webpubsub_fleet::hub::{Hub, HubConfig, HubError};

/// A handler on a free port: `/api/echo` answers 200 text "re: <body>", `/api/fail` 500,
/// anything else 200 with no body. Every request is reported on the channel.
async fn fake_handler() -> (String, mpsc::UnboundedReceiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/{{event}}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                let response = match request.path.as_str() {
                    "/api/echo" => {
                        let reply = format!("re: {}", String::from_utf8_lossy(&request.body));
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{reply}",
                            reply.len()
                        )
                    }
                    "/api/fail" => {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_owned()
                    }
                    _ => "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
                let _ = tx.send(request);
            });
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Request>) -> Request {
    within("a call to the event handler", rx.recv())
        .await
        .expect("handler alive")
}

#[tokio::test]
async fn user_events_round_trip_through_the_handler() {
    let (url, mut calls) = fake_handler().await;
    let hub = start_hub_with(|c| c.event_handler(url.parse().unwrap())).await;
    let mut client = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;

    let connected = next(&mut calls).await;
    assert_eq!(connected.path, "/api/connected");
    assert_eq!(
        connected.headers["ce-type"],
        "azure.webpubsub.sys.connected"
    );
    assert_eq!(connected.headers["ce-connectionid"], client.connection_id);
    assert_eq!(connected.headers["ce-userid"], "alice");
    assert_eq!(connected.headers["ce-hub"], HUB);
    assert_eq!(connected.headers["ce-specversion"], "1.0");
    assert_eq!(connected.headers["ce-subprotocol"], RELIABLE);
    assert!(connected.headers["ce-signature"].starts_with("sha256="));
    assert!(connected.headers["ce-time"].ends_with('Z'));

    let ack = client
        .request(
            json!({"type":"event","event":"echo","dataType":"text","data":"hello"}),
            1,
        )
        .await;
    assert_eq!(ack["success"], true);
    let call = next(&mut calls).await;
    assert_eq!(call.headers["ce-type"], "azure.webpubsub.user.echo");
    assert_eq!(call.headers["ce-eventname"], "echo");
    assert_eq!(call.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(call.body, b"hello");
    assert_eq!(
        client.next_json().await,
        json!({"sequenceId":1,"type":"message","from":"server","dataType":"text","data":"re: hello"})
    );

    let failed = client
        .request(
            json!({"type":"event","event":"fail","dataType":"json","data":{"x":1}}),
            2,
        )
        .await;
    assert_eq!(failed["success"], false);
    assert_eq!(failed["error"]["name"], "InvocationFailed");
    assert_eq!(next(&mut calls).await.body, br#"{"x":1}"#);
    // It did not take effect, so a retry with the same ack id runs again (not `Duplicate`).
    let retried = client
        .request(
            json!({"type":"event","event":"fail","dataType":"json","data":{"x":1}}),
            2,
        )
        .await;
    assert_eq!(retried["error"]["name"], "InvocationFailed");
    assert_eq!(next(&mut calls).await.body, br#"{"x":1}"#);

    // The connection stays; leaving sends `disconnected` with the reason.
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    hub.restart();
    let disconnected = next(&mut calls).await;
    assert_eq!(disconnected.path, "/api/disconnected");
    assert!(String::from_utf8_lossy(&disconnected.body).contains("reason"));
    assert!(hub.stats().upstream_events >= 4);
    hub.stop().await;
}

#[tokio::test]
async fn simple_clients_send_message_events_and_get_raw_replies() {
    let (url, mut calls) = fake_handler().await;
    let hub =
        start_hub_with(|c| c.event_handler(url.replace("{event}", "echo").parse().unwrap())).await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let mut ws = open(&client_url(&hub, HUB, &token), None).await.unwrap();
    use futures::{SinkExt, StreamExt};
    ws.send(Message::Text("ping me".into())).await.unwrap();
    let reply = within("the handler's reply", ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::Text("re: ping me".into()));
    // Calls: connected (to the fixed URL), then the message event.
    let mut types = Vec::new();
    for _ in 0..2 {
        types.push(next(&mut calls).await.headers["ce-type"].clone());
    }
    assert!(
        types.contains(&"azure.webpubsub.user.message".to_owned()),
        "{types:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn an_unreachable_handler_fails_the_event_not_the_connection() {
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/{{event}}");
    let hub = start_hub_with(|c| c.event_handler(url.parse().unwrap())).await;
    let mut client = connect(&hub, JSON, None, &[], &[]).await;
    let ack = client
        .request(
            json!({"type":"event","event":"e","dataType":"text","data":"x"}),
            1,
        )
        .await;
    assert_eq!(ack["error"]["name"], "InvocationFailed");
    client.send_json(json!({"type":"ping"})).await;
    assert_eq!(client.next_json().await["type"], "pong");
    hub.stop().await;
}

#[tokio::test]
async fn only_http_handlers_are_accepted() {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .event_handler("https://example.com/{event}".parse().unwrap());
    assert!(matches!(
        Hub::start(config).await,
        Err(HubError::InvalidEventHandler(_))
    ));
}
