//! Helpers for the hub's integration tests: start a hub, mint tokens, drive raw WebSocket
//! clients (tokio-tungstenite) and plain HTTP/1.1 REST calls. Every wait has a deadline.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use webpubsub_fleet::hub::{Hub, HubConfig};

pub const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
pub const JSON: &str = "json.webpubsub.azure.v1";
pub const HUB: &str = "chat";
/// Long enough for a loaded 2-core machine; short enough that a hang fails fast.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for: an absence can only be checked for a while.
pub const QUIET: Duration = Duration::from_millis(300);

/// A hub on a free loopback port with test-sized windows.
pub async fn start_hub() -> Hub {
    start_hub_with(|c| c).await
}

pub async fn start_hub_with(tweak: impl FnOnce(HubConfig) -> HubConfig) -> Hub {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .workers(1)
        .recovery_window(Duration::from_secs(2));
    Hub::start(tweak(config)).await.expect("hub starts")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with `key` (HS256), as the server SDKs do.
pub fn sign(key: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A client token for `hub_name` on this hub.
pub fn client_token(
    hub: &Hub,
    hub_name: &str,
    user: Option<&str>,
    roles: &[&str],
    groups: &[&str],
) -> String {
    let mut claims = json!({
        "aud": format!("{}/client/hubs/{hub_name}", hub.endpoint()),
        "iat": now(),
        "exp": now() + 3600,
        "role": roles,
        "webpubsub.group": groups,
    });
    if let Some(user) = user {
        claims["sub"] = json!(user);
    }
    sign(hub.access_key().expose(), &claims)
}

/// A REST token for a path (audience = the URL without query).
pub fn rest_token(hub: &Hub, path: &str) -> String {
    let claims = json!({
        "aud": format!("{}{path}", hub.endpoint()),
        "iat": now(),
        "exp": now() + 300,
    });
    sign(hub.access_key().expose(), &claims)
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw client. Keeps the `connected` frame it received.
pub struct Client {
    pub ws: Socket,
    pub connection_id: String,
    pub reconnection_token: Option<String>,
    pub connected: Value,
}

/// Opens a WebSocket with an optional subprotocol; returns the socket or the HTTP refusal.
pub async fn open(url: &str, protocol: Option<&str>) -> Result<Socket, (u16, String)> {
    let mut request = url.into_client_request().unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    // Nagle off, as real clients of small frames want: request/ack round trips would
    // otherwise wait for delayed ACKs.
    let connecting = connect_async_with_config(request, None, true);
    match tokio::time::timeout(DEADLINE, connecting)
        .await
        .expect("handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

pub fn client_url(hub: &Hub, hub_name: &str, token: &str) -> String {
    format!(
        "ws://{}/client/hubs/{hub_name}?access_token={token}",
        hub.addr()
    )
}

/// Connects a JSON client with the given roles and groups and reads its `connected` frame.
pub async fn connect(
    hub: &Hub,
    protocol: &str,
    user: Option<&str>,
    roles: &[&str],
    groups: &[&str],
) -> Client {
    let token = client_token(hub, HUB, user, roles, groups);
    let ws = open(&client_url(hub, HUB, &token), Some(protocol))
        .await
        .expect("connects");
    Client::from_socket(ws).await
}

/// A client allowed to do everything.
pub async fn connect_all(hub: &Hub, protocol: &str, user: &str) -> Client {
    connect(
        hub,
        protocol,
        Some(user),
        &["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"],
        &[],
    )
    .await
}

impl Client {
    pub async fn from_socket(ws: Socket) -> Client {
        let mut client = Client {
            ws,
            connection_id: String::new(),
            reconnection_token: None,
            connected: Value::Null,
        };
        let first = client.next_json().await;
        assert_eq!(
            first["type"], "system",
            "first frame must be system/connected: {first}"
        );
        assert_eq!(
            first["event"], "connected",
            "first frame must be system/connected: {first}"
        );
        client.connection_id = first["connectionId"].as_str().unwrap().to_owned();
        client.reconnection_token = first["reconnectionToken"].as_str().map(str::to_owned);
        client.connected = first;
        client
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        // The hub may close while we send hostile input; that is not a test failure.
        let _ = self.ws.send(message).await;
    }

    /// The next text frame as JSON (pings and pongs skipped).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a frame within the deadline")
                .expect("socket open")
                .expect("frame ok");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of any kind, pings and pongs skipped.
    pub async fn next_message(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a frame within the deadline")
                .expect("socket open")
                .expect("frame ok");
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    /// The next frame that is not `system/connected` (recoveries re-send it).
    pub async fn next_data(&mut self) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] != "system" || v["event"] != "connected" {
                return v;
            }
        }
    }

    /// Sends a request with an ack id and returns the ack.
    pub async fn request(&mut self, mut request: Value, ack_id: u64) -> Value {
        request["ackId"] = json!(ack_id);
        self.send_json(request).await;
        loop {
            let v = self.next_json().await;
            if v["type"] == "ack" && v["ackId"] == ack_id {
                return v;
            }
        }
    }

    pub async fn join(&mut self, group: &str, ack_id: u64) -> Value {
        self.request(json!({"type":"joinGroup","group":group}), ack_id)
            .await
    }

    /// Asserts nothing but pings arrives for [`QUIET`].
    pub async fn expect_silence(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Reads until the socket closes; returns the close code (None when it ended without a
    /// close frame) and the text frames seen before.
    pub async fn until_closed(&mut self) -> (Option<u16>, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("close within the deadline")
            {
                None | Some(Err(_)) => return (None, seen),
                Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)), seen),
                Some(Ok(Message::Text(t))) => {
                    seen.push(serde_json::from_str(&t).unwrap_or(Value::String(t)))
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Reads the close code of a socket that the hub closes right after the upgrade.
pub async fn close_code(ws: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("close within the deadline")
        {
            None | Some(Err(_)) => return None,
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
        }
    }
}

pub fn recovery_url(hub: &Hub, connection_id: &str, token: &str) -> String {
    format!(
        "ws://{}/client/hubs/{HUB}?awps_connection_id={connection_id}&awps_reconnection_token={token}",
        hub.addr()
    )
}

/// Waits until `check` holds, polling; panics at the deadline.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A response of a plain HTTP/1.1 call.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 request (`Connection: close`), enough for the REST API.
pub async fn http(
    hub: &Hub,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(hub.addr()).await.unwrap();
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        hub.addr(),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw))
        .await
        .expect("response within the deadline")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // Chunked bodies (JSON responses) are de-chunked crudely: good enough for small bodies.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Response { status, body }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

/// An authorized REST call (audience = this path without query).
pub async fn rest(
    hub: &Hub,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    let path = path_and_query.split('?').next().unwrap();
    let auth = format!("Bearer {}", rest_token(hub, path));
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(ct) = content_type {
        headers.push(("Content-Type", ct));
    }
    http(hub, method, path_and_query, &headers, body).await
}

pub fn close_code_of(code: CloseCode) -> u16 {
    u16::from(code)
}
