//! A scripted fake hub for client tests: it accepts WebSockets on 127.0.0.1:0 and hands each
//! one to the test, which then plays the service's side frame by frame (withhold acks, replay
//! sequence ids, drop abruptly, close with 1008, send garbage). The real hub is tested apart.
//!
//! A connection speaks the subprotocol the client offered: on a JSON one the scripted frames
//! are hand-written JSON text (independent of the crate's codec); on a protobuf one they are
//! the same frames encoded with the crate's protobuf codec, whose bytes
//! `tests/protobuf_golden.rs` checks against Python's `protobuf`.
// tungstenite's handshake callback must return its own (large) `ErrorResponse`.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use webpubsub_fleet::client::{Client, ClientOptions, EventStream};
use webpubsub_fleet::protocol::{
    AckError, AckErrorName, Codec, FrameKind, Inbound, Outbound, Payload, Secret, Subprotocol,
    WireFrame,
};

use super::within;

/// How the fake answers the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Upgrade and choose the offered subprotocol.
    Accept,
    /// Upgrade without choosing a subprotocol.
    AcceptWithoutSubprotocol,
    /// Answer HTTP 401 before the upgrade.
    Unauthorized,
}

pub struct FakeHub {
    pub port: u16,
    connections: mpsc::UnboundedReceiver<FakeConnection>,
    mode: tokio::sync::watch::Sender<Handshake>,
}

pub struct FakeConnection {
    /// Path and query of the request (holds the access token or the recovery parameters).
    pub uri: String,
    /// The subprotocol the client offered (and the fake chose, in `Handshake::Accept`).
    pub protocol: Option<Subprotocol>,
    ws: WebSocketStream<TcpStream>,
}

impl FakeHub {
    pub async fn start(mode: Handshake) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let (mode_tx, mode_rx) = tokio::sync::watch::channel(mode);
        actix_rt::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let mode = *mode_rx.borrow();
                let tx = tx.clone();
                actix_rt::spawn(async move {
                    let mut uri = String::new();
                    let mut protocol = None;
                    let callback = |req: &Request, mut res: Response| {
                        uri = req.uri().to_string();
                        let offered = req
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        protocol = offered.as_deref().and_then(Subprotocol::from_name);
                        match mode {
                            Handshake::Unauthorized => {
                                let mut err = ErrorResponse::new(Some("token refused".into()));
                                *err.status_mut() = StatusCode::UNAUTHORIZED;
                                Err(err)
                            }
                            Handshake::AcceptWithoutSubprotocol => Ok(res),
                            Handshake::Accept => {
                                if let Some(p) = offered {
                                    res.headers_mut().insert(
                                        "sec-websocket-protocol",
                                        HeaderValue::from_str(&p).unwrap(),
                                    );
                                }
                                Ok(res)
                            }
                        }
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                        let _ = tx.send(FakeConnection { uri, protocol, ws });
                    }
                });
            }
        });
        FakeHub {
            port,
            connections: rx,
            mode: mode_tx,
        }
    }

    pub fn set_mode(&self, mode: Handshake) {
        self.mode.send_replace(mode);
    }

    /// A client access URL for this fake, with a recognisable token.
    pub fn url(&self, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/client/hubs/hub1?access_token={token}",
            self.port
        )
    }

    /// The next socket a client opened.
    pub async fn accept(&mut self) -> FakeConnection {
        within("a connection to the fake hub", self.connections.recv())
            .await
            .expect("fake hub stopped")
    }

    /// Accepts a socket and sends `system/connected` on it.
    pub async fn accept_connected(&mut self, connection_id: &str) -> FakeConnection {
        let mut conn = self.accept().await;
        conn.send_connected(connection_id).await;
        conn
    }

    /// A client with `options` for this fake, started and connected with connection id
    /// `conn-1`, with its event stream (subscribed before the start, so `connected` is in it)
    /// and the fake's side of its socket.
    pub async fn connected_client(
        &mut self,
        options: ClientOptions,
    ) -> (Client, EventStream, FakeConnection) {
        let client = Client::from_url(&self.url("tok-SECRET"), options).unwrap();
        let events = client.events().await.unwrap();
        let started = {
            let client = client.clone();
            actix_rt::spawn(async move { client.start().await })
        };
        let conn = self.accept_connected("conn-1").await;
        let info = started.await.unwrap().unwrap();
        assert_eq!(info.connection_id, "conn-1");
        (client, events, conn)
    }

    /// The next socket, which must be a recovery of `connection_id` with the reconnection
    /// token [`FakeConnection::send_connected`] gave it.
    pub async fn accept_recovery(&mut self, connection_id: &str) -> FakeConnection {
        let recovery = self.accept().await;
        assert_eq!(
            recovery.query("awps_connection_id").as_deref(),
            Some(connection_id)
        );
        let token = format!("reco-SECRET-{connection_id}");
        assert_eq!(
            recovery.query("awps_reconnection_token").as_deref(),
            Some(token.as_str())
        );
        recovery
    }

    /// Whether a socket arrives within `wait` (for "nothing happens" checks with a bound).
    pub async fn accept_within(&mut self, wait: Duration) -> Option<FakeConnection> {
        tokio::time::timeout(wait, self.connections.recv())
            .await
            .ok()
            .flatten()
    }
}

impl FakeConnection {
    pub fn query(&self, key: &str) -> Option<String> {
        let url = url::Url::parse(&format!("ws://x{}", self.uri)).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.to_owned())).await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec())).await.unwrap();
    }

    /// The codec of the connection's subprotocol (JSON when none was offered).
    pub fn codec(&self) -> Codec {
        self.protocol.unwrap_or_default().codec()
    }

    /// Sends a service frame encoded with the connection's codec.
    pub async fn send_inbound(&mut self, frame: &Inbound) {
        match self.codec().encode_inbound(frame).unwrap() {
            WireFrame::Text(text) => self.send_text(&text).await,
            WireFrame::Binary(bytes) => self.send_binary(&bytes).await,
        }
    }

    /// Sends `json` on a JSON connection, `frame` encoded on a protobuf one (the two must
    /// say the same thing).
    async fn send_scripted(&mut self, json: String, frame: Inbound) {
        match self.codec() {
            Codec::Json => self.send_text(&json).await,
            Codec::Protobuf => self.send_inbound(&frame).await,
        }
    }

    pub async fn send_connected(&mut self, connection_id: &str) {
        let token = format!("reco-SECRET-{connection_id}");
        let frame = Inbound::Connected {
            connection_id: connection_id.to_owned(),
            user_id: Some("user1".to_owned()),
            reconnection_token: Some(Secret::new(token.clone())),
        };
        self.send_scripted(format!(
            r#"{{"type":"system","event":"connected","userId":"user1","connectionId":"{connection_id}","reconnectionToken":"{token}"}}"#
        ), frame)
        .await;
    }

    pub async fn send_ack(&mut self, ack_id: u64) {
        let frame = Inbound::Ack {
            ack_id,
            success: true,
            error: None,
        };
        self.send_scripted(
            format!(r#"{{"type":"ack","ackId":{ack_id},"success":true}}"#),
            frame,
        )
        .await;
    }

    pub async fn send_ack_error(&mut self, ack_id: u64, name: &str) {
        let frame = Inbound::Ack {
            ack_id,
            success: false,
            error: Some(AckError {
                name: AckErrorName::from_wire(name),
                message: "scripted".to_owned(),
            }),
        };
        self.send_scripted(format!(
            r#"{{"type":"ack","ackId":{ack_id},"success":false,"error":{{"name":"{name}","message":"scripted"}}}}"#
        ), frame)
        .await;
    }

    /// A text message to group `group` (from user `u2`, which protobuf cannot carry).
    pub async fn send_group_message(&mut self, sequence_id: u64, group: &str, text: &str) {
        let frame = Inbound::GroupMessage {
            sequence_id: Some(sequence_id),
            group: group.to_owned(),
            from_user_id: Some("u2".to_owned()),
            data: Payload::Text(text.to_owned()),
        };
        self.send_scripted(format!(
            r#"{{"sequenceId":{sequence_id},"type":"message","from":"group","group":"{group}","fromUserId":"u2","dataType":"text","data":"{text}"}}"#
        ), frame)
        .await;
    }

    /// The next client frame decoded with the connection's codec, skipping sequence acks and
    /// pings. A frame that does not decode (a text frame on a protobuf connection among them)
    /// fails the test.
    pub async fn recv_outbound(&mut self) -> Outbound {
        self.recv_outbound_matching(|f| !matches!(f, Outbound::SequenceAck { .. } | Outbound::Ping))
            .await
    }

    /// The next client frame for which `want` is true, decoded with the connection's codec;
    /// others are skipped. Returns the frame's raw bytes too, for wire checks.
    pub async fn recv_outbound_matching(&mut self, want: impl Fn(&Outbound) -> bool) -> Outbound {
        self.recv_outbound_raw(want).await.0
    }

    /// [`Self::recv_outbound_matching`] with the frame's bytes as sent.
    pub async fn recv_outbound_raw(
        &mut self,
        want: impl Fn(&Outbound) -> bool,
    ) -> (Outbound, Vec<u8>) {
        let codec = self.codec();
        within("a frame from the client", async {
            loop {
                let (kind, bytes) = match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => (FrameKind::Text, t.into_bytes()),
                    Some(Ok(Message::Binary(b))) => (FrameKind::Binary, b),
                    Some(Ok(_)) => continue,
                    other => panic!("socket ended while waiting for a frame: {other:?}"),
                };
                let frame = codec
                    .decode_outbound(kind, &bytes)
                    .unwrap_or_else(|e| panic!("the client sent a bad {kind:?} frame: {e}"));
                if want(&frame) {
                    return (frame, bytes);
                }
            }
        })
        .await
    }

    /// The next JSON frame from the client, skipping pings, sequence acks and pongs unless asked.
    pub async fn recv_json(&mut self) -> Value {
        self.recv_matching(|v| !matches!(v["type"].as_str(), Some("sequenceAck") | Some("ping")))
            .await
    }

    /// The next JSON frame for which `want` is true; others are skipped.
    pub async fn recv_matching(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        within("a frame from the client", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if want(&v) {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("socket ended while waiting for a frame: {other:?}"),
                }
            }
        })
        .await
    }

    /// Waits until the client closes or drops the socket; returns the close code it sent.
    pub async fn closed(&mut self) -> Option<u16> {
        within("the client's close", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        })
        .await
    }

    pub async fn close(mut self, code: u16) {
        let _ = self
            .ws
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "scripted".into(),
            })))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.next()).await;
    }

    /// Drops the TCP connection without a close frame, as a crashed peer would.
    pub fn drop_abruptly(self) {
        drop(self.ws);
    }
}
