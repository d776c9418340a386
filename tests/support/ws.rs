//! The raw WebSocket peer (tokio-tungstenite): a client that speaks the JSON subprotocols
//! frame by frame, sends hostile input, and watches for silence or a close. Every read ends
//! by [`DEADLINE`](super::DEADLINE).

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use webpubsub_fleet::hub::Hub;

use super::hub::{HUB, client_token, client_url};
use super::{QUIET, within};

/// A WebSocket to the hub, plain or TLS.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw client of the hub. Keeps the `connected` frame it received.
pub struct Peer {
    /// The socket, for what the helpers below do not cover.
    pub ws: Socket,
    /// The `connectionId` of the `connected` frame.
    pub connection_id: String,
    /// The `reconnectionToken` of the `connected` frame (reliable subprotocols only).
    pub reconnection_token: Option<String>,
    /// The whole `connected` frame.
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
    match within("the WebSocket handshake", connecting).await {
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

/// Connects a JSON client with the given roles and groups and reads its `connected` frame.
pub async fn connect(
    hub: &Hub,
    protocol: &str,
    user: Option<&str>,
    roles: &[&str],
    groups: &[&str],
) -> Peer {
    let token = client_token(hub, HUB, user, roles, groups);
    let ws = open(&client_url(hub, HUB, &token), Some(protocol))
        .await
        .expect("connects");
    Peer::from_socket(ws).await
}

/// A client allowed to do everything.
pub async fn connect_all(hub: &Hub, protocol: &str, user: &str) -> Peer {
    connect(
        hub,
        protocol,
        Some(user),
        &["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"],
        &[],
    )
    .await
}

impl Peer {
    pub async fn from_socket(ws: Socket) -> Peer {
        let mut client = Peer {
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
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(&text).expect("JSON frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame of any kind, pings and pongs skipped.
    pub async fn next_message(&mut self) -> Message {
        loop {
            let message = within("a frame from the hub", self.ws.next())
                .await
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
            match within("the hub's close", self.ws.next()).await {
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
        match within("the hub's close", ws.next()).await {
            None | Some(Err(_)) => return None,
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
        }
    }
}

/// A tungstenite close code as a number.
pub fn close_code_of(code: CloseCode) -> u16 {
    u16::from(code)
}
