//! The WebSocket transport: the only file that names awc types.
//!
//! It turns awc's framed socket into a stream of [`InFrame`] and a sink of [`OutFrame`], so the
//! actor above deals only with frames of its own vocabulary. One awc `Client` per arbiter
//! thread and local address is kept in a thread local: awc clients are `!Send`, and sharing one
//! per thread keeps the TLS configuration and resolver once per thread, not once per socket.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::{Decoder as _, Encoder as _};
use actix_service::ServiceExt as _;
use awc::error::{ConnectError as AwcConnectError, SendRequestError, WsClientError};
use awc::http::StatusCode;
use awc::ws;
use bytes::Bytes;
use bytes::BytesMut;
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

/// A frame received from the peer, in our vocabulary.
#[derive(Debug)]
pub(crate) enum InFrame {
    /// A text frame (bytes, not yet checked as UTF-8).
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
    /// A WebSocket ping the actor must answer.
    Ping(Bytes),
    /// A WebSocket pong (counts as traffic for keepalive).
    Pong,
    /// The peer closed, with its close code if it sent one.
    Closed {
        /// The close code; `None` when the socket ended without a close frame.
        code: Option<u16>,
        /// The close reason text.
        reason: Option<String>,
    },
    /// The socket failed (protocol error or I/O error); the connection is gone.
    Failed(String),
}

/// A frame to send.
#[derive(Debug)]
pub(crate) enum OutFrame {
    Text(String),
    Binary(Vec<u8>),
    Pong(Bytes),
    Close(u16),
}

/// Why a socket could not be opened. Carries no URL: its query holds the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// HTTP status before the upgrade (401 for a refused token).
    Status(u16),
    /// Name resolution failed.
    Dns(String),
    /// TCP connect failed or timed out.
    Tcp(String),
    /// TLS handshake failed.
    Tls(String),
    /// The handshake did not finish in time.
    Timeout,
    /// The peer answered but not as a WebSocket server.
    Handshake(String),
    /// The peer accepted the socket without choosing our subprotocol.
    NoSubprotocol,
}

type TcpConnection = actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>;

pub(crate) type FrameSink = Pin<Box<dyn Sink<OutFrame, Error = String>>>;
pub(crate) type FrameStream = Pin<Box<dyn Stream<Item = InFrame>>>;

/// Settings of the socket, taken from the client options.
#[derive(Clone)]
pub(crate) struct SocketSettings {
    pub subprotocol: &'static str,
    pub connect_timeout: Duration,
    pub max_frame_size: usize,
    pub local_address: Option<IpAddr>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

thread_local! {
    static CLIENTS: RefCell<HashMap<(Option<IpAddr>, usize), awc::Client>> = RefCell::new(HashMap::new());
}

fn client_for(settings: &SocketSettings) -> awc::Client {
    let tls_key = settings.tls.as_ref().map_or(0, |c| Arc::as_ptr(c) as usize);
    CLIENTS.with(|clients| {
        clients
            .borrow_mut()
            .entry((settings.local_address, tls_key))
            .or_insert_with(|| build_client(settings))
            .clone()
    })
}

fn build_client(settings: &SocketSettings) -> awc::Client {
    // limit(0): a WebSocket holds its pool slot for its whole life; the default of 100 would
    // cap a fleet at 100 sockets per thread.
    // TCP_NODELAY: a WebSocket client sends small frames (acks, sends) that must not wait
    // for Nagle's algorithm. HTTP/1.1 only: a WebSocket upgrade needs it, and offering h2 in
    // ALPN could make a TLS endpoint pick a protocol awc cannot upgrade.
    let tcp =
        actix_tls::connect::Connector::default()
            .service()
            .map(|connection: TcpConnection| {
                let _ = connection.io_ref().set_nodelay(true);
                connection
            });
    let mut connector = awc::Connector::new()
        .connector(tcp)
        .max_http_version(awc::http::Version::HTTP_11)
        .limit(0)
        .timeout(settings.connect_timeout)
        .handshake_timeout(settings.connect_timeout);
    // Without an explicit configuration awc uses rustls with the web PKI roots, so `wss://`
    // endpoints of the real service work; tests pass their own CA.
    if let Some(tls) = settings.tls.clone() {
        connector = connector.rustls_0_23(tls);
    }
    if let Some(ip) = settings.local_address {
        connector = connector.local_address(ip);
    }
    awc::Client::builder()
        .connector(connector)
        .timeout(settings.connect_timeout)
        .finish()
}

/// Opens a WebSocket to `url` offering one subprotocol, as the official clients do; with its
/// reader and writer comes the switch that blackholes it ([`SocketFault::Blackhole`]).
pub(crate) async fn open(
    url: &str,
    settings: &SocketSettings,
) -> Result<(FrameSink, FrameStream, Blackhole), OpenError> {
    let client = client_for(settings);
    let request = client
        .ws(url)
        .protocols([settings.subprotocol])
        .max_frame_size(settings.max_frame_size);
    let connect = request.connect();
    let (response, framed) = match tokio::time::timeout(settings.connect_timeout, connect).await {
        Err(_) => return Err(OpenError::Timeout),
        Ok(result) => result.map_err(open_error)?,
    };
    let chosen = response
        .headers()
        .get(awc::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    if chosen != Some(settings.subprotocol) {
        return Err(OpenError::NoSubprotocol);
    }
    // awc hands over a `Framed` whose read and write buffers hold 8 KiB each and, with
    // traffic, get touched page by page: 16 KiB of RSS per idle client. Its parts are taken
    // apart here: reads go through a per-thread buffer ([`READS`]), so a quiet socket holds
    // no read buffer, and each frame written gets a buffer of its own.
    let parts = framed.into_parts();
    let hole = Blackhole::default();
    let gated = Gated {
        io: parts.io,
        hole: hole.clone(),
    };
    let (reader, writer) = tokio::io::split(gated);
    let read_buf = BytesMut::from(&parts.read_buf[..]);
    drop(parts.read_buf);
    // The codec keeps separate state for each direction, so each half gets its own copy.
    Ok((
        Box::pin(frame_sink(writer, parts.codec.clone())),
        Box::pin(frame_stream(reader, parts.codec, read_buf)),
        hole,
    ))
}

type Reader = tokio::io::ReadHalf<Gated>;
type Writer = tokio::io::WriteHalf<Gated>;

/// Encodes each frame into its own small buffer and writes it out.
fn frame_sink(writer: Writer, codec: ws::Codec) -> impl Sink<OutFrame, Error = String> {
    futures::sink::unfold(
        (writer, codec),
        |(mut writer, mut codec), frame: OutFrame| async move {
            let message = match frame {
                OutFrame::Text(text) => ws::Message::Text(text.into()),
                OutFrame::Binary(bytes) => ws::Message::Binary(bytes.into()),
                OutFrame::Pong(payload) => ws::Message::Pong(payload),
                OutFrame::Close(code) => ws::Message::Close(Some(ws::CloseReason {
                    code: ws::CloseCode::from(code),
                    description: None,
                })),
            };
            let mut buf = BytesMut::new();
            codec.encode(message, &mut buf).map_err(|e| e.to_string())?;
            writer.write_all(&buf).await.map_err(|e| e.to_string())?;
            // A no-op on plain TCP; pushes the record out of a TLS session.
            writer.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((writer, codec))
        },
    )
}

/// Decodes frames from what the socket reads; ends with `Closed` when the socket does.
fn frame_stream(reader: Reader, codec: ws::Codec, buf: BytesMut) -> impl Stream<Item = InFrame> {
    FrameReader {
        reader,
        codec,
        buf,
        own: true,
        done: false,
    }
}

/// Most bytes one read takes: the size of the per-thread buffer ([`READS`]) reads go into.
/// About 15 group messages of the load tool, so a burst costs one read call where a 1 KiB
/// buffer took four; and about what actix hands an actor per turn (16 stream items), so the
/// bytes of a read are mostly decoded and freed in the turn that read them. A larger room
/// cut the reads further but kept up to a room per client allocated in a saturated fleet.
const READ_ROOM: usize = 4 * 1024;

/// A frame in progress longer than this is read into the socket's own buffer: copying it out
/// of [`READS`] with each read would cost more than the read.
const OWN_BUFFER_AFTER: usize = 4 * 1024;

thread_local! {
    /// Where the sockets of this thread read into. A read takes what the kernel holds, up to
    /// [`READ_ROOM`], in one call, and the bytes are copied into a buffer of the socket's own
    /// of exactly that size, freed once its frames are decoded: a quiet socket holds no read
    /// buffer at all, only the start of a frame whose end has not arrived.
    static READS: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_ROOM].into_boxed_slice());
}

/// The reading half of a socket as a stream of frames.
struct FrameReader<R = Reader> {
    reader: R,
    codec: ws::Codec,
    /// Bytes read and not yet decoded: the rest of the last read, or a buffer of their own
    /// for the start of a frame kept while the socket is quiet, or one for a frame longer
    /// than [`OWN_BUFFER_AFTER`].
    buf: BytesMut,
    /// `buf` is an allocation of its own, not what is left of one frames were cut from.
    own: bool,
    /// The socket ended or failed; nothing more comes.
    done: bool,
}

impl<R: AsyncRead + Unpin> Stream for FrameReader<R> {
    type Item = InFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<InFrame>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => {
                    // What is left may keep the whole allocation the frame came from.
                    this.own = false;
                    return Poll::Ready(Some(in_frame(frame)));
                }
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(InFrame::Failed(e.to_string())));
                }
            }
            let read = if this.buf.len() > OWN_BUFFER_AFTER {
                this.read_own(cx)
            } else {
                this.read_shared(cx)
            };
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    // A socket that ends without a close frame is an abrupt drop (1006 in
                    // browsers).
                    this.done = true;
                    let closed = InFrame::Closed {
                        code: None,
                        reason: None,
                    };
                    return Poll::Ready(Some(closed));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(InFrame::Failed(e.to_string())));
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads into this thread's buffer and appends what came to the socket's.
    fn read_shared(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        READS.with_borrow_mut(|room| {
            let mut read = ReadBuf::new(room);
            match Pin::new(&mut self.reader).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let bytes = read.filled();
                    if !bytes.is_empty() {
                        let mut buf = BytesMut::with_capacity(self.buf.len() + bytes.len());
                        buf.extend_from_slice(&self.buf);
                        buf.extend_from_slice(bytes);
                        self.buf = buf;
                        self.own = false;
                    }
                    Poll::Ready(Ok(bytes.len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Quiet now: what is left of the last read (the start of a frame, or
                    // nothing) moves to a buffer of its own size; an empty slice of the read
                    // would keep all of it allocated.
                    self.own_buffer();
                    Poll::Pending
                }
            }
        })
    }

    /// Moves what is left to read into a buffer of exactly its size, unless it is one already.
    fn own_buffer(&mut self) {
        if !self.own {
            self.buf = BytesMut::from(&self.buf[..]);
            self.own = true;
        }
    }

    /// Reads the rest of a long frame into the socket's own buffer, doubling its room as it
    /// grows (the codec refuses a frame over the maximum size from its header, before its
    /// bytes arrive, which bounds this buffer).
    fn read_own(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.own_buffer();
        let start = self.buf.len();
        if self.buf.capacity() - start < READ_ROOM {
            self.buf.reserve(start.max(READ_ROOM));
        }
        self.buf.resize(self.buf.capacity(), 0);
        let mut read = ReadBuf::new(&mut self.buf[start..]);
        let result = Pin::new(&mut self.reader).poll_read(cx, &mut read);
        let n = match &result {
            Poll::Ready(Ok(())) => read.filled().len(),
            _ => 0,
        };
        self.buf.truncate(start + n);
        result.map_ok(|()| n)
    }
}

fn in_frame(frame: ws::Frame) -> InFrame {
    match frame {
        ws::Frame::Text(b) => InFrame::Text(b),
        ws::Frame::Binary(b) => InFrame::Binary(b),
        ws::Frame::Ping(b) => InFrame::Ping(b),
        ws::Frame::Pong(_) => InFrame::Pong,
        ws::Frame::Close(reason) => InFrame::Closed {
            code: reason.as_ref().map(|r| u16::from(r.code)),
            reason: reason.and_then(|r| r.description),
        },
        // The hub never fragments; a continuation frame is a peer error we report.
        ws::Frame::Continuation(_) => InFrame::Failed("fragmented frames are not supported".into()),
    }
}

fn open_error(e: WsClientError) -> OpenError {
    match e {
        WsClientError::InvalidResponseStatus(status) => OpenError::Status(status_code(status)),
        WsClientError::SendRequest(SendRequestError::Connect(c)) => match c {
            AwcConnectError::Resolver(r) => OpenError::Dns(r.to_string()),
            AwcConnectError::NoRecords => OpenError::Dns("no DNS records".into()),
            AwcConnectError::Timeout => OpenError::Timeout,
            AwcConnectError::SslIsNotSupported => {
                OpenError::Tls("TLS is not supported by this build".into())
            }
            // rustls reports a failed handshake (bad certificate, unknown CA) as InvalidData.
            AwcConnectError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                OpenError::Tls(e.to_string())
            }
            AwcConnectError::Io(e) => OpenError::Tcp(e.to_string()),
            other => OpenError::Tcp(other.to_string()),
        },
        WsClientError::SendRequest(SendRequestError::Timeout) => OpenError::Timeout,
        WsClientError::SendRequest(SendRequestError::Url(_)) => {
            OpenError::Handshake("the URL is not a valid ws:// or wss:// URL".into())
        }
        WsClientError::SendRequest(other) => OpenError::Tcp(other.to_string()),
        other => OpenError::Handshake(other.to_string()),
    }
}

fn status_code(status: StatusCode) -> u16 {
    status.as_u16()
}

// ---- faults the client injects into its own socket (chaos against any hub) ---------------

/// A fault a client injects into its own socket, so chaos works against any hub (the service
/// included), not only the local one: [`crate::fleet::Fleet::inject_fault`] applies one to a
/// share of a fleet's connected clients, `load --chaos client:SHARE:PERIOD[:KIND]` on a
/// schedule. The session decides what follows exactly as if the network or the peer had done
/// it: a recovery on the reliable subprotocol, a reconnect otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFault {
    /// Drop the TCP connection without a close frame (an abrupt drop, 1006 in browsers). The
    /// client notices at once; the hub sees the socket end and keeps a reliable session for
    /// recovery.
    Drop,
    /// Stop reading and writing but keep the TCP connection open, as a half-open link does:
    /// bytes from the peer stay unread, and what the client writes (pings, acks, sends) is
    /// swallowed as if sent. Only the client's own liveness check notices: the socket is
    /// called dead once nothing was received for `keepalive_timeout` (120 s by default,
    /// [`crate::client::ClientOptions::with_keepalive`]), then recovered.
    Blackhole,
    /// Send a close frame with this code and treat the socket as closed with it. 1000 and
    /// 1001 end the session on the hub (the recovery is refused: a new connection follows);
    /// other codes, such as 1011, leave it recoverable. Codes a peer may not send (below
    /// 1000, 1004 to 1006, 1012 to 2999 reserved or undefined for clients, above 4999) are
    /// refused by [`SocketFault::validate`].
    Close(u16),
}

impl SocketFault {
    /// Whether the fault can be injected: a `Close` code must be one an endpoint may send
    /// (RFC 6455 7.4: 1000 to 1003, 1007 to 1011, or 3000 to 4999).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            SocketFault::Close(code) if !matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) => {
                Err(format!(
                    "close code {code} cannot be sent by an endpoint: use 1000 to 1003, 1007 to 1011 or 3000 to 4999"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for SocketFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketFault::Drop => f.write_str("drop"),
            SocketFault::Blackhole => f.write_str("blackhole"),
            SocketFault::Close(code) => write!(f, "close={code}"),
        }
    }
}

/// The blackhole switch of one socket, shared by its two halves and the actor (all on the
/// client's arbiter thread). Once engaged it stays engaged: the socket is dead for good, and
/// the actor drops it when the session gives up on it.
#[derive(Clone, Default)]
pub(crate) struct Blackhole(Rc<Cell<bool>>);

impl Blackhole {
    /// From now on nothing is read or written.
    pub(crate) fn engage(&self) {
        self.0.set(true);
    }

    /// Whether it was engaged.
    pub(crate) fn engaged(&self) -> bool {
        self.0.get()
    }
}

/// The socket behind its blackhole switch. Engaged, a read never completes (arriving bytes
/// stay in the kernel's buffer; no waker is kept, the reader waits for nothing) and a write
/// reports success without sending, which is what a dead link looks like from the inside.
pub(crate) struct Gated {
    io: awc::BoxedSocket,
    hole: Blackhole,
}

impl AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.hole.engaged() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.hole.engaged() {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.hole.engaged() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.hole.engaged() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A socket that hands out scripted reads: some bytes, or `None` for "nothing yet" (the
    /// reader is woken at once), then the end.
    struct Script(VecDeque<Option<Vec<u8>>>);

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            match self.0.pop_front() {
                Some(None) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Some(Some(mut bytes)) => {
                    let n = bytes.len().min(buf.remaining());
                    buf.put_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.0.push_front(Some(bytes.split_off(n)));
                    }
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Ok(())),
            }
        }
    }

    fn server_frames() -> (Vec<u8>, Vec<String>) {
        let mut codec = ws::Codec::new().max_size(1 << 20);
        let long = "x".repeat(3 * READ_ROOM + 17);
        let messages = [
            ws::Message::Text("small".into()),
            ws::Message::Text(long.clone().into()),
            ws::Message::Binary(Bytes::from_static(b"\x01\x02")),
            ws::Message::Ping(Bytes::from_static(b"p")),
            ws::Message::Text("after".into()),
            ws::Message::Close(Some(ws::CloseCode::Away.into())),
        ];
        let mut wire = BytesMut::new();
        for m in messages {
            codec.encode(m, &mut wire).unwrap();
        }
        let expected = [
            "text 5".to_owned(),
            format!("text {}", long.len()),
            "binary 2".to_owned(),
            "ping 1".to_owned(),
            "text 5".to_owned(),
            "closed Some(1001)".to_owned(),
        ];
        (wire.to_vec(), expected.to_vec())
    }

    fn describe(frame: &InFrame) -> String {
        match frame {
            InFrame::Text(b) => format!("text {}", b.len()),
            InFrame::Binary(b) => format!("binary {}", b.len()),
            InFrame::Ping(b) => format!("ping {}", b.len()),
            InFrame::Pong => "pong".into(),
            InFrame::Closed { code, .. } => format!("closed {code:?}"),
            InFrame::Failed(e) => format!("failed {e}"),
        }
    }

    /// Polls the reader until the script is done; after each `Pending`, checks that the
    /// socket keeps no more than the start of a frame (and the room a long one grows into).
    fn run(script: Script) -> Vec<String> {
        let mut reader = FrameReader {
            reader: script,
            codec: ws::Codec::new().max_size(1 << 20).client_mode(),
            buf: BytesMut::new(),
            own: true,
            done: false,
        };
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            match Pin::new(&mut reader).poll_next(&mut cx) {
                Poll::Ready(Some(frame)) => seen.push(describe(&frame)),
                Poll::Ready(None) => return seen,
                Poll::Pending => {
                    assert!(reader.own, "a quiet socket kept a slice of its last read");
                    let (len, capacity) = (reader.buf.len(), reader.buf.capacity());
                    if len <= OWN_BUFFER_AFTER {
                        assert_eq!(capacity, len, "more than the start of a frame");
                    } else {
                        // A long frame's own buffer grows by doubling.
                        assert!(capacity <= 4 * len + READ_ROOM, "{capacity} for {len}");
                    }
                }
            }
        }
        panic!("the reader never ended: {seen:?}");
    }

    #[test]
    fn frames_arrive_whole_however_the_bytes_are_cut() {
        let (wire, expected) = server_frames();
        for cut in [
            1,
            2,
            7,
            100,
            READ_ROOM - 1,
            READ_ROOM,
            READ_ROOM + 1,
            wire.len(),
        ] {
            for pause in [false, true] {
                let mut script = VecDeque::new();
                for piece in wire.chunks(cut) {
                    script.push_back(Some(piece.to_vec()));
                    if pause {
                        script.push_back(None);
                    }
                }
                let mut seen = run(Script(script));
                // The socket ends after the close frame: an abrupt end follows it.
                assert_eq!(seen.pop().as_deref(), Some("closed None"), "cut {cut}");
                assert_eq!(seen, expected, "cut {cut}, pauses {pause}");
            }
        }
    }

    #[test]
    fn a_socket_that_ends_inside_a_frame_is_an_abrupt_close() {
        let (wire, expected) = server_frames();
        let script = Script(VecDeque::from([Some(wire[..9].to_vec()), None]));
        assert_eq!(run(script), ["text 5", "closed None"]);
        assert_eq!(expected[0], "text 5");
    }
}
