//! Raw HTTP/1.1 over a TCP socket, as a REST caller, a Prometheus scrape or a hostile peer
//! sends it: a request with `Connection: close`, a response head read on its own (for peers
//! that never send a body), a request read by a fake upstream, and chunked bodies decoded.
//! Every read ends by [`DEADLINE`](super::DEADLINE).

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webpubsub_fleet::hub::Hub;

use super::hub::rest_token;
use super::within;

/// A response head read from a raw socket, and the bytes that followed it.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The status line and the header lines, without the blank line.
    pub text: String,
    /// What was read past the head (the start of the body or of the WebSocket frames).
    pub rest: Vec<u8>,
}

impl Head {
    /// The first header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.text, name)
    }
}

fn header_in(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Reads a response head; `None` when the peer closed the socket without answering.
pub async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&raw[..end]).into_owned();
            let status = text.split(' ').nth(1)?.parse().ok()?;
            return Some(Head {
                status,
                text,
                rest: raw[end + 4..].to_vec(),
            });
        }
        let n = within("a response head (or a close)", stream.read(&mut chunk))
            .await
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

/// A whole response of a `Connection: close` request.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and the header lines.
    pub head: String,
    /// The body, de-chunked when it came chunked.
    pub body: String,
}

impl Response {
    /// The body as JSON, `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The first header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.head, name)
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` to `addr` and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = within("a TCP connection", TcpStream::connect(addr))
        .await
        .expect("connects");
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream.write_all(body).await.expect("writes");
    let mut raw = Vec::new();
    within("the whole response", stream.read_to_end(&mut raw))
        .await
        .expect("reads");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a response head: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head:?}"));
    let chunked =
        header_in(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        head: head.to_owned(),
        body,
    }
}

/// A plain request to the hub.
pub async fn http(
    hub: &Hub,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    request(hub.addr(), method, path_and_query, headers, body).await
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

/// A chunked body decoded; a malformed one fails the test (the hub must not send one).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("a chunk size line in {body:?}"));
        let size = size.split(';').next().unwrap_or_default().trim();
        let n = usize::from_str_radix(size, 16)
            .unwrap_or_else(|_| panic!("a hexadecimal chunk size, got {size:?} in {body:?}"));
        if n == 0 {
            return out;
        }
        let data = after
            .get(..n)
            .unwrap_or_else(|| panic!("a chunk of {n} bytes in {body:?}"));
        out.push_str(data);
        rest = after
            .get(n..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .unwrap_or_else(|| panic!("CRLF after a chunk in {body:?}"));
    }
}

/// One request as a fake upstream (an event handler) receives it.
#[derive(Debug)]
pub struct Request {
    /// The request line: method, target and version.
    pub line: String,
    /// The target (path and query).
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// `Content-Length` bytes of body.
    pub body: Vec<u8>,
}

/// Reads one request (head, then `Content-Length` bytes of body); `None` when the peer
/// closed first. Not bounded by [`DEADLINE`](super::DEADLINE): a fake upstream waits as long as the hub keeps
/// the socket open, and the test's own waits bound the test.
pub async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let (head, mut body) = loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&raw[..i]).into_owned(),
                raw[i + 4..].to_vec(),
            );
        }
    };
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while body.len() < length {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(Request {
        line,
        path,
        headers,
        body,
    })
}
