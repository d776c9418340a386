//! The hub under attack from a local process (issue 8, items 1-10; docs/security.md lists
//! each with the test here that proves its defence). Most tests speak raw TCP: the attacks
//! are in what a well-behaved client library never sends (a header without its body, a frame
//! header without its payload, reserved bits, a forged `Host`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use support::http::*;
use support::hub::*;
use support::process::hub_process;
use support::ws::*;
use support::{eventually, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webpubsub_fleet::hub::Hub;

const LIMIT: usize = 4096;

// ---------------------------------------------------------------------------------------
// Raw HTTP and WebSocket over TCP.

/// A valid `Sec-WebSocket-Key`: base64 of 16 bytes.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for the client endpoint, with the given headers after `Host`.
fn upgrade_request(path_and_query: &str, host: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn standard_headers<'a>(key: &'a str, version: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", version),
        ("Sec-WebSocket-Protocol", JSON),
    ]
}

/// A WebSocket spoken byte by byte: frames are written exactly as given.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One server frame: first byte (FIN, RSV, opcode) and payload.
struct ServerFrame {
    opcode: u8,
    payload: Vec<u8>,
}

impl RawWs {
    /// Upgrades with `headers` sent as given; the response head, and the socket when 101.
    async fn upgrade(
        hub: &Hub,
        host: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (Head, RawWs) {
        let mut stream = TcpStream::connect(hub.addr()).await.unwrap();
        let path = format!("/client/hubs/{HUB}?access_token={token}");
        stream
            .write_all(upgrade_request(&path, host, headers).as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut stream).await.expect("a response head");
        let buf = head.rest.clone();
        (head, RawWs { stream, buf })
    }

    /// A JSON-subprotocol connection that has read its `connected` frame.
    async fn connected(hub: &Hub) -> RawWs {
        let token = client_token(hub, HUB, Some("raw"), &[], &[]);
        let host = hub.addr().to_string();
        let (head, mut ws) = RawWs::upgrade(hub, &host, &token, &standard_headers(KEY, "13")).await;
        assert_eq!(head.status, 101, "{}", head.text);
        let first = ws.next_frame().await.expect("the connected frame");
        let text = String::from_utf8(first.payload).unwrap();
        assert!(text.contains("\"connected\""), "{text}");
        ws
    }

    /// Writes raw bytes; the hub may already have closed, which is what some tests expect.
    async fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next server frame; `None` when the socket ended.
    async fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = within("a frame (or the end)", self.stream.read(&mut chunk))
                .await
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until a close frame; its code, or `None` when the socket ended without one.
    async fn close_code(&mut self) -> Option<u16> {
        while let Some(frame) = self.next_frame().await {
            if frame.opcode == 0x8 {
                return (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
            }
        }
        None
    }

    /// The next text frame's payload, control frames skipped.
    async fn next_text(&mut self) -> String {
        loop {
            let frame = self.next_frame().await.expect("a text frame");
            if frame.opcode == 0x1 {
                return String::from_utf8(frame.payload).unwrap();
            }
        }
    }
}

fn parse_server_frame(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, at) = match buf[1] & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        ServerFrame {
            opcode: buf[0] & 0x0f,
            payload,
        },
        at + len,
    ))
}

/// A masked client frame header announcing `len` payload bytes (mask key included).
fn client_header(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first];
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

/// A whole masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = client_header(first, payload.len() as u64);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1u8, 2, 3, 4][i % 4]),
    );
    out
}

/// The claims of a JWT (no signature check: the test only reads what the hub minted).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. REST: token before body, and deadlines for slow clients.

#[tokio::test]
async fn rest_refuses_a_bad_token_before_reading_the_body() {
    let hub = start_hub_with(|c| c.max_message_size(1 << 20)).await;
    for auth in ["", "Authorization: Bearer not-a-token\r\n"] {
        let mut stream = TcpStream::connect(hub.addr()).await.unwrap();
        // Announces a whole 1 MiB body (within the limit) and sends none of it.
        let head = format!(
            "POST /api/hubs/{HUB}/:send HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            hub.addr(),
            1 << 20
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let head = read_head(&mut stream)
            .await
            .expect("an answer without the body");
        assert_eq!(head.status, 401, "{}", head.text);
    }
    hub.stop().await;
}

/// Sends `head`, then one of `pieces` every 50 ms, and asserts the hub cuts the socket (408
/// or a plain close) within 3 s, long before the pieces run out.
async fn assert_dribble_is_cut(hub: &Hub, head: String, pieces: Vec<String>, what: &str) {
    let stream = TcpStream::connect(hub.addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let dribble = tokio::spawn(async move {
        for piece in std::iter::once(head).chain(pieces) {
            if write.write_all(piece.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut raw = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(3), read.read_to_end(&mut raw)).await;
    dribble.abort();
    assert!(cut.is_ok(), "{what} was not cut within 3 s");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{what}: expected 408 or a close: {text}"
    );
}

#[tokio::test]
async fn a_slow_rest_body_is_cut_at_the_request_timeout() {
    let hub = start_hub_with(|c| c.request_timeout(Duration::from_millis(300))).await;
    let path = format!("/api/hubs/{HUB}/:send");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n",
        hub.addr(),
        rest_token(&hub, &path)
    );
    // One byte every 50 ms: the whole body would take 50 s.
    let body = vec!["x".to_owned(); 1000];
    assert_dribble_is_cut(&hub, head, body, "a slow body").await;
    hub.stop().await;
}

#[tokio::test]
async fn slow_request_headers_are_cut_at_the_request_timeout() {
    let hub = start_hub_with(|c| c.request_timeout(Duration::from_millis(300))).await;
    let head = "GET /api/health HTTP/1.1\r\n".to_owned();
    let lines = (0..1000).map(|i| format!("X-Slow-{i}: 1\r\n")).collect();
    assert_dribble_is_cut(&hub, head, lines, "a slow head").await;
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. An oversized WebSocket frame is refused at its header.

#[tokio::test]
async fn an_oversized_frame_header_gets_1009_before_its_payload() {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    for announced in [
        LIMIT as u64 + 1,
        u64::from(u16::MAX),
        64 << 20,
        (1 << 63) - 1,
        1 << 63,
        u64::MAX,
    ] {
        let mut ws = RawWs::connected(&hub).await;
        // Only the header: the payload is never sent.
        ws.write(&client_header(0x81, announced)).await;
        assert_eq!(ws.close_code().await, Some(1009), "announced {announced}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn frames_before_an_oversized_header_in_the_same_write_are_still_handled() {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    let mut ws = RawWs::connected(&hub).await;
    let mut bytes = client_frame(0x81, br#"{"type":"ping"}"#);
    bytes.extend(client_header(0x81, 1 << 40));
    ws.write(&bytes).await;
    assert_eq!(ws.next_text().await, r#"{"type":"pong"}"#);
    assert_eq!(ws.close_code().await, Some(1009));
    hub.stop().await;
}

#[tokio::test]
async fn a_frame_at_the_limit_split_across_writes_is_accepted() {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    let mut ws = RawWs::connected(&hub).await;
    let padding = " ".repeat(LIMIT - r#"{"type":"ping"}"#.len());
    let payload = format!(r#"{{"type":"ping"}}{padding}"#);
    assert_eq!(payload.len(), LIMIT);
    let frame = client_frame(0x81, payload.as_bytes());
    // Byte by byte through the header, then the rest: the guard must reassemble headers.
    for b in &frame[..8] {
        ws.write(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ws.write(&frame[8..]).await;
    assert_eq!(ws.next_text().await, r#"{"type":"pong"}"#);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. The connection limit is below the descriptor limit, settable, and health still answers.

#[tokio::test]
async fn the_default_connection_limit_is_below_the_descriptor_limit() {
    let hub = start_hub().await;
    // Linux (the only platform CI runs) always has `/proc/self/limits`: a missing limit fails
    // the test instead of skipping the comparison.
    let soft = webpubsub_fleet::fleet::fd_limit()
        .expect("RLIMIT_NOFILE is readable from /proc/self/limits")
        .soft;
    assert!(
        hub.max_connections() as u64 + 128 <= soft,
        "limit {} leaves no room under {soft} descriptors",
        hub.max_connections()
    );
    hub.stop().await;
}

#[tokio::test]
async fn health_answers_while_the_connection_limit_refuses_with_429() {
    let hub = start_hub_with(|c| c.max_connections(2)).await;
    let _a = connect(&hub, JSON, None, &[], &[]).await;
    let _b = connect(&hub, JSON, None, &[], &[]).await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let refused = open(&client_url(&hub, HUB, &token), Some(JSON)).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(429));
    assert_eq!(http(&hub, "GET", "/api/health", &[], b"").await.status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn the_hub_command_takes_max_connections() {
    let (_hub, cs) = hub_process(&["--max-connections", "1"]);
    let port = cs.endpoint().port().expect("the hub's port");
    let key = cs.access_key().expose().to_owned();
    let endpoint = format!("127.0.0.1:{port}");
    let token = sign(
        &key,
        &json!({"aud": format!("http://{endpoint}/client/hubs/{HUB}"), "exp": 4_000_000_000u64}),
    );
    let url = format!("ws://{endpoint}/client/hubs/{HUB}?access_token={token}");
    let _first = open(&url, Some(JSON)).await.expect("the first fits");
    let second = open(&url, Some(JSON)).await.err();
    assert_eq!(second.map(|(status, _)| status), Some(429));
}

// ---------------------------------------------------------------------------------------
// 4 and 5. Event names and the event handler's concurrency.

/// A fake event handler: records each request's first line; answers 200 unless `silent`,
/// in which case it accepts and never answers.
async fn fake_handler(silent: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            if silent {
                record.lock().unwrap().push("accepted".to_owned());
                held.push(socket);
                continue;
            }
            let record = record.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                record.lock().unwrap().push(request.line);
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/api/events/{{event}}"), seen)
}

#[tokio::test]
async fn hostile_event_names_are_refused_and_never_reach_the_handler() {
    let (url, seen) = fake_handler(false).await;
    let hub = start_hub_with(|c| c.event_handler(url.parse().unwrap())).await;
    let mut client = connect(&hub, JSON, Some("u"), &[], &[]).await;
    let hundred_kb = "e".repeat(100 * 1024);
    for (ack_id, name) in [
        (1, "../../escaped?inj=1"),
        (2, "a/b"),
        (3, "x%2F..%2Fy"),
        (4, ".."),
        (5, ""),
        (6, "sp ace"),
        (7, "new\r\nline"),
        (8, hundred_kb.as_str()),
    ] {
        let ack = client
            .request(
                json!({"type":"event","event":name,"dataType":"text","data":"x"}),
                ack_id,
            )
            .await;
        assert_eq!(ack["success"], false, "{name:.40}: {ack}");
        assert_eq!(ack["error"]["name"], "BadRequest", "{name:.40}: {ack}");
    }
    let ack = client
        .request(
            json!({"type":"event","event":"chat.message-1_x","dataType":"text","data":"x"}),
            9,
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("POST /api/events/chat.message-1_x ")),
        "{seen:?}"
    );
    for line in &seen {
        assert!(line.starts_with("POST /api/events/"), "{line}");
        assert!(!line.contains("escaped") && !line.contains("inj"), "{line}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn upstream_calls_past_the_limit_are_refused_at_once_and_counted() {
    let (url, seen) = fake_handler(true).await;
    let hub = start_hub_with(|c| c.event_handler(url.parse().unwrap()).max_upstream_calls(3)).await;
    // `connected` takes one call; two events take the other two. None is ever answered.
    let mut client = connect(&hub, JSON, Some("u"), &[], &[]).await;
    for ack_id in [1, 2] {
        client
            .send_json(
                json!({"type":"event","event":"hang","ackId":ack_id,"dataType":"text","data":"x"}),
            )
            .await;
    }
    eventually("three calls held by the handler", async || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    let ack = client
        .request(
            json!({"type":"event","event":"more","dataType":"text","data":"x"}),
            3,
        )
        .await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "InvocationFailed", "{ack}");
    assert_eq!(hub.stats().upstream_dropped, 1);
    let stats = rest(&hub, "GET", "/_fleet/stats", None, b"").await.json();
    assert_eq!(stats["upstream_dropped"], 1, "{stats}");
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "the refused event was not sent"
    );
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 6. Groups per connection.

#[tokio::test]
async fn joins_past_the_group_cap_are_refused() {
    let hub = start_hub_with(|c| c.max_groups_per_connection(3)).await;
    let mut client = connect_all(&hub, JSON, "joiner").await;
    for (ack_id, group) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(client.join(group, ack_id).await["success"], true);
    }
    let ack = client.join("d", 4).await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["name"], "BadRequest", "{ack}");
    // Joining a group it is in already is no new group.
    assert_eq!(client.join("a", 5).await["success"], true);
    let path = format!(
        "/api/hubs/{HUB}/groups/e/connections/{}",
        client.connection_id
    );
    assert_eq!(rest(&hub, "PUT", &path, None, b"").await.status, 400);
    assert_eq!(hub.stats().groups, 3);
    client
        .request(json!({"type":"leaveGroup","group":"a"}), 6)
        .await;
    assert_eq!(client.join("d", 7).await["success"], true);
    // A token that lists more groups than the cap is refused at the handshake.
    let token = client_token(&hub, HUB, None, &[], &["g1", "g2", "g3", "g4"]);
    let refused = open(&client_url(&hub, HUB, &token), Some(JSON)).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(400));
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 7. The token check and the router see the same path.

#[tokio::test]
async fn dot_segments_and_encoded_slashes_are_refused_before_routing() {
    let hub = start_hub().await;
    let client = connect(&hub, JSON, Some("victim"), &[], &[]).await;
    let canary = format!("/api/hubs/{HUB}/groups/canary");
    let token = rest_token(&hub, &canary);
    let auth = format!("Bearer {token}");
    for path in [
        format!("/api/hubs/{HUB}/users/../groups/canary"),
        format!("/api/hubs/{HUB}/users/%2E%2E/groups/canary"),
        format!("/api/hubs/{HUB}/users/./groups/canary"),
        format!("/api/hubs/{HUB}/users/a%2Fb/groups/canary"),
        format!("/api/hubs/{HUB}/users/a%5Cb/groups/canary"),
    ] {
        let response = http(&hub, "PUT", &path, &[("Authorization", &auth)], b"").await;
        assert_eq!(response.status, 400, "{path}: {}", response.body);
    }
    assert_eq!(hub.stats().groups, 0, "nobody joined canary");
    // The same token on its own path is fine.
    let response = http(&hub, "HEAD", &canary, &[("Authorization", &auth)], b"").await;
    assert_eq!(response.status, 404);
    drop(client);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 8. minutesToExpire.

#[tokio::test]
async fn generate_token_refuses_lifetimes_it_cannot_represent() {
    let hub = start_hub().await;
    let path = format!("/api/hubs/{HUB}/:generateToken");
    for bad in [
        "0",
        "-1",
        "abc",
        "4611686018427387904",
        "18446744073709551615",
        "525601",
    ] {
        let response = rest(
            &hub,
            "POST",
            &format!("{path}?minutesToExpire={bad}"),
            None,
            b"",
        )
        .await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains("525600"),
            "{bad}: {}",
            response.body
        );
    }
    let response = rest(
        &hub,
        "POST",
        &format!("{path}?minutesToExpire=525600"),
        None,
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let claims = claims_of(response.json()["token"].as_str().unwrap());
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 525_600 * 60);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 9. Reserved bits and the upgrade's key and version.

#[tokio::test]
async fn reserved_bits_close_with_1002() {
    let hub = start_hub().await;
    for first in [0xC1u8, 0xA1, 0x91] {
        let mut ws = RawWs::connected(&hub).await;
        ws.write(&client_frame(first, br#"{"type":"ping"}"#)).await;
        assert_eq!(ws.close_code().await, Some(1002), "first byte {first:#x}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn malformed_keys_and_old_versions_are_refused_at_the_upgrade() {
    let hub = start_hub().await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let host = hub.addr().to_string();
    let fifteen = STANDARD.encode([7u8; 15]);
    for key in [
        "not base64!",
        fifteen.as_str(),
        "",
        "dGhlIHNhbXBsZSBub25jZQ",
    ] {
        let (head, _) = RawWs::upgrade(&hub, &host, &token, &standard_headers(key, "13")).await;
        assert_eq!(head.status, 400, "key {key:?}: {}", head.text);
    }
    for version in ["7", "8", "12", "14", "x"] {
        let (head, _) = RawWs::upgrade(&hub, &host, &token, &standard_headers(KEY, version)).await;
        assert_eq!(head.status, 426, "version {version}: {}", head.text);
        assert_eq!(head.header("Sec-WebSocket-Version").as_deref(), Some("13"));
    }
    let (head, _) = RawWs::upgrade(&hub, &host, &token, &standard_headers(KEY, "13")).await;
    assert_eq!(head.status, 101, "{}", head.text);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------
// 10. The audience's host.

fn foreign_token(hub: &Hub) -> String {
    sign(
        hub.access_key().expose(),
        &json!({"aud": format!("http://evil.example:81/client/hubs/{HUB}"), "exp": 4_000_000_000u64}),
    )
}

#[tokio::test]
async fn the_host_header_names_no_audience_by_default() {
    let hub = start_hub().await;
    let (head, _) = RawWs::upgrade(
        &hub,
        "evil.example:81",
        &foreign_token(&hub),
        &standard_headers(KEY, "13"),
    )
    .await;
    assert_eq!(head.status, 401, "{}", head.text);
    // :generateToken mints for the hub's own address whatever Host says.
    let path = format!("/api/hubs/{HUB}/:generateToken");
    let auth = format!("Bearer {}", rest_token(&hub, &path));
    let mut stream = TcpStream::connect(hub.addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: evil.example:81\r\nX-Forwarded-Host: evil.example:81\r\nAuthorization: {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let token = raw
        .split("\"token\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(
        claims_of(token)["aud"],
        format!("{}/client/hubs/{HUB}", hub.endpoint())
    );
    hub.stop().await;
}

#[tokio::test]
async fn trusting_the_host_header_is_an_explicit_option() {
    let hub = start_hub_with(|c| c.trust_host_header(true)).await;
    let (head, _) = RawWs::upgrade(
        &hub,
        "evil.example:81",
        &foreign_token(&hub),
        &standard_headers(KEY, "13"),
    )
    .await;
    assert_eq!(head.status, 101, "{}", head.text);
    hub.stop().await;

    let hub = start_hub_with(|c| c.authority("evil.example:81")).await;
    let host = hub.addr().to_string();
    let (head, _) = RawWs::upgrade(
        &hub,
        &host,
        &foreign_token(&hub),
        &standard_headers(KEY, "13"),
    )
    .await;
    assert_eq!(head.status, 101, "a configured authority: {}", head.text);
    hub.stop().await;
}
