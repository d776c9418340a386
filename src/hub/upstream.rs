//! The upstream event handler: CloudEvents in HTTP binary mode (protocol.md 8.2), POSTed to
//! `HubConfig::event_handler` with `{event}` in the URL replaced by the event name.
//!
//! Sent: `connected` and `disconnected` (fire-and-forget) and user events (`event` requests,
//! and every message of a simple client in sendEvent mode), whose reply body, if any, goes back
//! to the connection as a server message. Not sent: the blocking `connect` event (tokens alone
//! decide user, roles and groups here) and the `OPTIONS` abuse-protection handshake.
//!
//! Every call runs on the hub's own thread, fed through a channel, so any thread can emit an
//! event. A call holds one of `HubConfig::max_upstream_calls` permits from the moment it is
//! queued until it has finished, so a handler that never answers holds at most that many
//! sockets and tasks: without a permit, fire-and-forget events are dropped and user events
//! fail at once (both counted as `upstream_dropped`).
//!
//! The event name is substituted into the URL percent-encoded (names are also validated
//! before they get here: `names::event_name_problem`).
//!
//! The HTTP client is a minimal HTTP/1.1 one (one connection per call, `Connection: close`,
//! `http://` only): the hub may not use the client layer's HTTP stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use url::Url;

use super::config::HubConfig;
use crate::protocol::{DataType, Payload, Secret};

/// What the handler answered to a user event.
#[derive(Debug)]
pub(crate) enum Reply {
    /// 2xx; the body (with its data type) to send back to the client, if not empty.
    Ok(Option<Payload>),
    /// Anything else, or no answer; the reason for the ack.
    Failed(String),
}

/// One event to POST.
pub(crate) struct Call {
    /// Event name (`connected`, `disconnected` or the user event's name).
    pub(crate) event: String,
    /// `true` for system events (`azure.webpubsub.sys.*`).
    pub(crate) system: bool,
    /// The connection.
    pub(crate) hub: String,
    /// The connection id.
    pub(crate) connection_id: String,
    /// The user id.
    pub(crate) user_id: Option<String>,
    /// The subprotocol name, if any.
    pub(crate) subprotocol: Option<&'static str>,
    /// The body and its content type.
    pub(crate) body: (Bytes, &'static str),
    /// Where to send the reply (user events only).
    pub(crate) reply: Option<oneshot::Sender<Reply>>,
}

/// The sending side, kept in the hub's state.
pub(crate) struct Upstream {
    tx: mpsc::Sender<(Call, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
}

impl Upstream {
    /// Queues a call; false (and the call dropped) when `max_upstream_calls` calls are in
    /// flight already.
    pub(crate) fn send(&self, call: Call) -> bool {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => self.tx.try_send((call, permit)).is_ok(),
            Err(_) => false,
        }
    }
}

/// The channel, and the task that drains it (to be spawned on the hub's thread).
pub(crate) fn channel(
    url: Url,
    key: Secret,
    config: &HubConfig,
) -> (Upstream, impl Future<Output = ()> + use<>) {
    let max_calls = config.max_upstream_calls.max(1);
    let max_body = config.max_message_size;
    let call_timeout = config.upstream_timeout;
    // Every queued call holds a permit, so the channel never holds more than `max_calls`.
    let (tx, mut rx) = mpsc::channel::<(Call, OwnedSemaphorePermit)>(max_calls);
    let permits = Arc::new(Semaphore::new(max_calls));
    let task = async move {
        let ids = AtomicU64::new(1);
        while let Some((call, permit)) = rx.recv().await {
            let id = ids.fetch_add(1, Relaxed);
            let request = build_request(&url, &key, &call, id);
            let reply = call.reply;
            actix_rt::spawn(async move {
                let result = tokio::time::timeout(call_timeout, post(request, max_body)).await;
                // The call is over (answered, failed or timed out): another may start.
                drop(permit);
                let outcome = match result {
                    Err(_) => Reply::Failed("the event handler did not answer in time".to_owned()),
                    Ok(Err(e)) => {
                        Reply::Failed(format!("the event handler could not be called: {e}"))
                    }
                    Ok(Ok(response)) if (200..300).contains(&response.status) => {
                        Reply::Ok(payload(response.content_type.as_deref(), response.body))
                    }
                    Ok(Ok(response)) => {
                        Reply::Failed(format!("the event handler answered {}", response.status))
                    }
                };
                if let Reply::Failed(reason) = &outcome {
                    tracing::debug!(reason, "upstream event failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            });
        }
    };
    (Upstream { tx, permits }, task)
}

/// The body and content type of a user event's payload (protocol.md 8.2).
pub(crate) fn event_body(data: &Payload) -> (Bytes, &'static str) {
    match data {
        Payload::Text(s) => (
            Bytes::copy_from_slice(s.as_bytes()),
            "text/plain; charset=utf-8",
        ),
        Payload::Json(v) => (Bytes::from(v.to_string()), "application/json"),
        Payload::Binary(b) => (b.clone(), "application/octet-stream"),
        Payload::Protobuf(b) => (b.clone(), "application/x-protobuf"),
    }
}

/// The reply body as a server message payload; `None` for an empty body.
fn payload(content_type: Option<&str>, body: Bytes) -> Option<Payload> {
    if body.is_empty() {
        return None;
    }
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let data_type = match essence.as_str() {
        "application/json" => DataType::Json,
        "text/plain" => DataType::Text,
        "application/x-protobuf" => DataType::Protobuf,
        _ => DataType::Binary,
    };
    Some(match data_type {
        DataType::Json => match serde_json::from_slice(&body) {
            Ok(v) => Payload::Json(v),
            Err(_) => Payload::Binary(body),
        },
        DataType::Text => match String::from_utf8(body.to_vec()) {
            Ok(s) => Payload::Text(s),
            Err(_) => Payload::Binary(body),
        },
        DataType::Protobuf => Payload::Protobuf(body),
        DataType::Binary => Payload::Binary(body),
    })
}

struct Request {
    host: String,
    port: u16,
    head: String,
    body: Bytes,
}

/// `name` with every byte outside RFC 3986's unreserved set percent-encoded, so that it stays
/// one path segment (or one query value) of the handler's URL whatever it holds.
fn encode_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn build_request(url: &Url, key: &Secret, call: &Call, id: u64) -> Request {
    let event = encode_component(&call.event);
    let target = url
        .as_str()
        .replace("%7Bevent%7D", &event)
        .replace("{event}", &event);
    let target = Url::parse(&target).unwrap_or_else(|_| url.clone());
    let host = target.host_str().unwrap_or("localhost").to_owned();
    let port = target.port_or_known_default().unwrap_or(80);
    let mut path = target.path().to_owned();
    if let Some(q) = target.query() {
        path.push('?');
        path.push_str(q);
    }
    let ce_type = if call.system {
        format!("azure.webpubsub.sys.{}", call.event)
    } else {
        format!("azure.webpubsub.user.{}", call.event)
    };
    let (body, content_type) = &call.body;
    let mut headers = vec![
        ("Host", format!("{host}:{port}")),
        ("Content-Type", (*content_type).to_owned()),
        ("Content-Length", body.len().to_string()),
        ("Connection", "close".to_owned()),
        ("ce-specversion", "1.0".to_owned()),
        ("ce-type", ce_type),
        (
            "ce-source",
            format!("/hubs/{}/client/{}", call.hub, call.connection_id),
        ),
        ("ce-id", id.to_string()),
        ("ce-time", rfc3339(SystemTime::now())),
        ("ce-hub", call.hub.clone()),
        ("ce-connectionId", call.connection_id.clone()),
        ("ce-eventName", call.event.clone()),
        ("ce-signature", signature(key, &call.connection_id)),
        ("WebHook-Request-Origin", "localhost".to_owned()),
    ];
    if let Some(user) = &call.user_id {
        headers.push(("ce-userId", user.clone()));
    }
    if let Some(p) = call.subprotocol {
        headers.push(("ce-subprotocol", p.to_owned()));
    }
    let mut head = format!("POST {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        // Header values come from names the hub validated; strip line breaks all the same.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Request {
        host,
        port,
        head,
        body: body.clone(),
    }
}

/// `sha256={hex(HMAC-SHA256(access key, connection id))}`: lets the handler check the event
/// comes from a holder of the key.
fn signature(key: &Secret, connection_id: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(connection_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// `2026-01-02T03:04:05Z`, computed from the Unix time (civil-from-days, H. Hinnant).
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct Response {
    status: u16,
    content_type: Option<String>,
    body: Bytes,
}

async fn post(request: Request, max_body: usize) -> Result<Response, String> {
    let mut stream = TcpStream::connect((request.host.as_str(), request.port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&request.body)
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // Head plus body, bounded: a handler cannot make the hub buffer without limit.
    let limit = (max_body + 64 * 1024) as u64;
    (&mut stream)
        .take(limit)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no complete head")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "the response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the response has no status line")?;
    let mut content_type = None;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_owned()),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        let n = length.unwrap_or(rest.len()).min(rest.len());
        rest[..n].to_vec()
    };
    Ok(Response {
        status,
        content_type,
        body: Bytes::from(body),
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is incomplete")?;
        let size_text =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "a chunk size is not hex")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("a chunk is shorter than announced".to_owned());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_event_name_stays_one_segment_of_the_handler_url() {
        let url = Url::parse("http://127.0.0.1:9/api/{event}/x").unwrap();
        let call = |event: &str| Call {
            event: event.to_owned(),
            system: false,
            hub: "h".to_owned(),
            connection_id: "c".to_owned(),
            user_id: None,
            subprotocol: None,
            body: (Bytes::new(), "text/plain"),
            reply: None,
        };
        let key = Secret::new("k".repeat(40));
        let head = |event: &str| build_request(&url, &key, &call(event), 1).head;
        assert!(head("message").starts_with("POST /api/message/x HTTP/1.1\r\n"));
        assert!(
            head("../../escaped?inj=1").starts_with("POST /api/..%2F..%2Fescaped%3Finj%3D1/x "),
            "{}",
            head("../../escaped?inj=1")
        );
        assert!(head("a b#c").starts_with("POST /api/a%20b%23c/x "));
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn signature_is_hmac_sha256_hex_of_the_connection_id() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = signature(&Secret::new("Jefe"), "what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn responses_plain_and_chunked() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_ref()), (200, &b"hi"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body.as_ref(), b"abc");
        assert!(parse_response(b"HTTP/1.1 200").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn reply_bodies_follow_their_content_type() {
        let p = |ct: Option<&str>, b: &'static [u8]| payload(ct, Bytes::from_static(b));
        assert_eq!(
            p(Some("application/json"), br#"{"a":1}"#),
            Some(Payload::Json(serde_json::json!({"a":1})))
        );
        assert_eq!(
            p(Some("text/plain; charset=utf-8"), b"t"),
            Some(Payload::Text("t".into()))
        );
        assert_eq!(
            p(None, b"\x01"),
            Some(Payload::Binary(Bytes::from_static(b"\x01")))
        );
        assert_eq!(p(Some("text/plain"), b""), None);
    }
}
