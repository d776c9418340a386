//! The upstream caller: CloudEvents in HTTP binary mode (protocol.md 8.2) to the event
//! handlers of `HubConfig` (`handlers.rs` picks the handler and its URL), over awc with
//! rustls. This is the hub's only outbound-HTTP seam and the only hub file that names awc.
//!
//! Sent: the blocking `connect` (the upgrade waits for its answer), `connected` and
//! `disconnected` (fire-and-forget), and user events (`event` requests, and every message of
//! a simple client in sendEvent mode), whose reply body, if any, goes back to the connection
//! as a server message. Each carries every header the service sends, `ce-awpsversion` and
//! `WebHook-Request-Origin` included: the official handler SDK ignores a request without them.
//!
//! Abuse protection: before the first event to a handler host (`scheme://host:port`) the
//! hub sends `OPTIONS` with `WebHook-Request-Origin`; a host that does not answer with a
//! `WebHook-Allowed-Origin` naming that origin (or `*`) gets no events: they fail as a failed
//! call would, the reason is logged and shown in `HubStats::event_handlers_refused`. A passed
//! check holds for the hub's life; a failed one is tried again after [`RECHECK_AFTER`], so an
//! app server started after the hub is picked up.
//!
//! Every call runs on the hub's own thread (awc's client is not `Send`), fed through a
//! channel, so any worker thread can emit an event. A call holds one of
//! `HubConfig::max_upstream_calls` permits from the moment it is queued until it has
//! finished, so a handler that never answers holds at most that many sockets and tasks:
//! without a permit, fire-and-forget events are dropped, user events fail at once and a
//! `connect` is answered 503 (all counted as `upstream_dropped`). Each call, its check
//! included, is bounded by `HubConfig::upstream_timeout`, and an answer's body by
//! `HubConfig::max_message_size`.
//!
//! TLS: the Mozilla root set of `webpki-roots` (the same roots the client transport and the
//! service client trust, identical on every machine, so a hub in a bare container can call
//! a public `https` handler), plus the CA certificates given with `HubConfig::upstream_ca`
//! for a local app server with its own certificate. The system store is not read: a
//! corporate CA is added with the same option.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use url::Url;

use super::HubError;
use super::config::HubConfig;
use super::handlers::{self, Event, EventHandler, SystemEvent};
use super::stats::HandlerChecks;
use crate::credential::event_signature;
use crate::protocol::{DataType, Payload, Secret};

/// How long a failed abuse-protection check is remembered before the host is asked again.
pub(crate) const RECHECK_AFTER: Duration = Duration::from_secs(5);

/// Hosts whose refusal is kept for `HubStats` at most (templates may put `{hub}` in the host).
const MAX_REPORTED_HOSTS: usize = 64;

/// The `ce-awpsversion` the hub speaks.
const AWPS_VERSION: &str = "1.0";

/// What the handler answered to a user event.
#[derive(Debug)]
pub(crate) enum Reply {
    /// 2xx.
    Ok {
        /// The body (with its data type) to send back to the client, if not empty.
        data: Option<Payload>,
        /// A `ce-connectionState` header: the connection's new state (empty: none).
        connection_state: Option<String>,
    },
    /// Anything else, or no answer; the reason for the ack.
    Failed(String),
}

/// What the handler answered to a `connect` event.
#[derive(Debug)]
pub(crate) enum ConnectReply {
    /// 204, or 200 with what to apply to the connection.
    Accepted(ConnectResponse),
    /// Refused: the HTTP status to answer the upgrade with, and why.
    Refused {
        /// A 4xx of the handler, 500 for its 5xx, 502 for no usable answer, 503 when too
        /// many calls are in flight, 504 for no answer in time.
        status: u16,
        /// What the client is told (the handler's own text for a 4xx).
        reason: String,
    },
}

/// The body of a 200 answer to `connect` (protocol.md 8.2); every field optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct ConnectResponse {
    /// Replaces the token's user id.
    #[serde(rename = "userId")]
    pub(crate) user_id: Option<String>,
    /// Groups joined before the first frame, besides the token's.
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Roles given besides the token's.
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    /// The subprotocol chosen among the offered ones.
    pub(crate) subprotocol: Option<String>,
    /// The answer's `ce-connectionState` header, carried on the connection's later events.
    #[serde(skip)]
    pub(crate) connection_state: Option<String>,
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
    /// The connection's `ce-connectionState`, if a handler set one.
    pub(crate) connection_state: Option<String>,
    /// Where to send the reply (user events only).
    pub(crate) reply: Option<oneshot::Sender<Reply>>,
}

/// Where an answer goes.
enum Respond {
    /// Fire-and-forget.
    Nowhere,
    /// A user event's reply.
    User(oneshot::Sender<Reply>),
    /// A `connect` event's reply.
    Connect(oneshot::Sender<ConnectReply>),
}

/// One request, ready for the hub's thread.
struct Job {
    url: String,
    /// `scheme://host:port` of `url`: what abuse protection checks.
    host: String,
    /// Abuse protection on for its handler.
    check: bool,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    respond: Respond,
}

/// The sending side, kept in the hub's state.
pub(crate) struct Upstream {
    tx: mpsc::Sender<(Job, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
    handlers: Vec<EventHandler>,
    keys: Vec<Secret>,
    origin: String,
    ids: AtomicU64,
}

/// What the upstream caller is built from.
pub(crate) struct Settings {
    pub(crate) handlers: Vec<EventHandler>,
    /// Every access key: one signature each.
    pub(crate) keys: Vec<Secret>,
    /// `WebHook-Request-Origin`.
    pub(crate) origin: String,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) checks: Arc<HandlerChecks>,
}

impl Upstream {
    /// Queues a user or fire-and-forget system event; false (and the call dropped) when
    /// `max_upstream_calls` calls are in flight already. An event that no handler takes is
    /// answered at once as a 204 would be.
    pub(crate) fn send(&self, call: Call) -> bool {
        let system = call
            .system
            .then(|| call.event.parse::<SystemEvent>().ok())
            .flatten();
        let event = match system {
            Some(e) => Event::System(e),
            None if call.system => return true,
            None => Event::User(&call.event),
        };
        let Some(handler) = self.handler_for(&call.hub, &event) else {
            if let Some(reply) = call.reply {
                let _ = reply.send(Reply::Ok {
                    data: None,
                    connection_state: None,
                });
            }
            return true;
        };
        let job = self.job(handler, &event, &call, call.body.0.clone());
        let respond = match call.reply {
            Some(reply) => Respond::User(reply),
            None => Respond::Nowhere,
        };
        self.queue(Job { respond, ..job })
    }

    /// Whether some handler takes `connect` events of `hub`: the upgrade then waits for one.
    pub(crate) fn wants_connect(&self, hub: &str) -> bool {
        self.wants(hub, SystemEvent::Connect)
    }

    /// Whether some handler takes the system event `event` of `hub`: lets a caller on a hot
    /// path (group joins) skip building an event nobody takes.
    pub(crate) fn wants(&self, hub: &str, event: SystemEvent) -> bool {
        self.handler_for(hub, &Event::System(event)).is_some()
    }

    /// Sends the blocking `connect` event of a connection about to be accepted; its answer
    /// arrives on the receiver (`None`: no handler takes `connect` for this hub).
    pub(crate) fn connect(
        &self,
        identity: Call,
        body: &serde_json::Value,
    ) -> Option<oneshot::Receiver<ConnectReply>> {
        let event = Event::System(SystemEvent::Connect);
        let handler = self.handler_for(&identity.hub, &event)?;
        let (tx, rx) = oneshot::channel();
        let body = Bytes::from(body.to_string());
        let job = Job {
            respond: Respond::Connect(tx),
            ..self.job(handler, &event, &identity, body)
        };
        if !self.queue(job) {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(ConnectReply::Refused {
                status: 503,
                reason: "The event handler is overloaded: too many calls in flight; retry later"
                    .to_owned(),
            });
            return Some(rx);
        }
        Some(rx)
    }

    fn handler_for(&self, hub: &str, event: &Event<'_>) -> Option<&EventHandler> {
        self.handlers.iter().find(|h| h.takes(hub, event))
    }

    fn queue(&self, job: Job) -> bool {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => self.tx.try_send((job, permit)).is_ok(),
            Err(_) => false,
        }
    }

    /// The request for `event` of `call`'s connection to `handler` (without its responder).
    fn job(&self, handler: &EventHandler, event: &Event<'_>, call: &Call, body: Bytes) -> Job {
        let url = handler.expand(&call.hub, event.name());
        let host = Url::parse(&url)
            .map(|u| handlers::handler_host(&u))
            .unwrap_or_else(|_| url.clone());
        let id = self.ids.fetch_add(1, Relaxed);
        let signature: Vec<String> = self
            .keys
            .iter()
            .map(|key| event_signature(key, &call.connection_id))
            .collect();
        let mut headers = vec![
            ("content-type", call.body.1.to_owned()),
            ("ce-awpsversion", AWPS_VERSION.to_owned()),
            ("webhook-request-origin", self.origin.clone()),
            ("ce-specversion", "1.0".to_owned()),
            ("ce-type", event.ce_type()),
            (
                "ce-source",
                format!("/hubs/{}/client/{}", call.hub, call.connection_id),
            ),
            ("ce-id", id.to_string()),
            ("ce-time", rfc3339(SystemTime::now())),
            ("ce-hub", call.hub.clone()),
            ("ce-connectionId", call.connection_id.clone()),
            ("ce-eventName", event.name().to_owned()),
            ("ce-signature", signature.join(",")),
        ];
        if let Some(user) = &call.user_id {
            headers.push(("ce-userId", user.clone()));
        }
        if let Some(p) = call.subprotocol {
            headers.push(("ce-subprotocol", p.to_owned()));
        }
        if let Some(state) = &call.connection_state {
            headers.push(("ce-connectionState", state.clone()));
        }
        Job {
            url,
            host,
            check: handler.checks_origin(),
            headers,
            body,
            respond: Respond::Nowhere,
        }
    }
}

/// The rustls configuration for `https` handlers: the web PKI roots plus the extra CAs.
pub(crate) fn client_tls(config: &HubConfig) -> Result<Arc<rustls::ClientConfig>, HubError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = actix_tls::connect::rustls_0_23::webpki_roots_cert_store();
    for pem in &config.upstream_ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                HubError::InvalidEventHandler(format!("the extra CA file is not PEM: {e}"))
            })?;
        if certs.is_empty() {
            return Err(HubError::InvalidEventHandler(
                "the extra CA file holds no certificate; give PEM CERTIFICATE blocks".to_owned(),
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                HubError::InvalidEventHandler(format!("an extra CA certificate is unusable: {e}"))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::InvalidEventHandler(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// The channel, and the task that drains it (to be spawned on the hub's thread).
pub(crate) fn channel(
    settings: Settings,
    config: &HubConfig,
) -> (Upstream, impl Future<Output = ()> + use<>) {
    let max_calls = config.max_upstream_calls.max(1);
    let limits = Limits {
        max_body: config.max_message_size,
        timeout: config.upstream_timeout,
    };
    let origin = settings.origin.clone();
    // Every queued call holds a permit, so the channel never holds more than `max_calls`.
    let (tx, mut rx) = mpsc::channel::<(Job, OwnedSemaphorePermit)>(max_calls);
    let permits = Arc::new(Semaphore::new(max_calls));
    let tls = settings.tls;
    let checks = settings.checks;
    let task = async move {
        let connector = awc::Connector::new()
            .rustls_0_23(tls)
            .timeout(limits.timeout)
            .handshake_timeout(limits.timeout)
            // The permits bound the calls; awc's own pool limit would only queue them.
            .limit(0);
        let client = awc::Client::builder()
            .connector(connector)
            // A redirect would carry the signature and the event elsewhere.
            .disable_redirects()
            .disable_timeout()
            .finish();
        let caller = Rc::new(Caller {
            client,
            limits,
            origin,
            checks,
            verdicts: RefCell::new(HashMap::new()),
        });
        while let Some((job, permit)) = rx.recv().await {
            let caller = caller.clone();
            actix_rt::spawn(async move {
                let answer =
                    tokio::time::timeout(caller.limits.timeout, caller.deliver(&job)).await;
                // The call is over (answered, failed or timed out): another may start.
                drop(permit);
                let answer = answer.unwrap_or(Err(Failure::Timeout));
                respond(job.respond, &job.url, answer);
            });
        }
    };
    let upstream = Upstream {
        tx,
        permits,
        handlers: settings.handlers,
        keys: settings.keys,
        origin: settings.origin,
        ids: AtomicU64::new(1),
    };
    (upstream, task)
}

#[derive(Clone, Copy)]
struct Limits {
    max_body: usize,
    timeout: Duration,
}

/// Why a call has no usable answer.
#[derive(Debug)]
enum Failure {
    /// Nothing within the timeout.
    Timeout,
    /// The host did not pass the abuse-protection check.
    NotAllowed(String),
    /// Connecting, sending or reading failed, or the answer is unusable.
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("the event handler did not answer in time"),
            Failure::NotAllowed(why) => write!(f, "the event handler is not called: {why}"),
            Failure::Transport(why) => write!(f, "the event handler could not be called: {why}"),
        }
    }
}

/// An answer, its body read up to the bound.
struct Answer {
    status: u16,
    content_type: Option<String>,
    connection_state: Option<String>,
    body: Bytes,
}

/// The awc client and the abuse-protection verdicts, on the hub's thread.
struct Caller {
    client: awc::Client,
    limits: Limits,
    origin: String,
    checks: Arc<HandlerChecks>,
    /// Per host: the check, run once by whichever call comes first, the others waiting.
    verdicts: RefCell<HashMap<String, Rc<OnceCell<Verdict>>>>,
}

#[derive(Clone)]
struct Verdict {
    allowed: Result<(), String>,
    at: Instant,
}

impl Caller {
    async fn deliver(&self, job: &Job) -> Result<Answer, Failure> {
        if job.check {
            if let Err(why) = self.check(job).await {
                self.checks.refused_events.fetch_add(1, Relaxed);
                return Err(Failure::NotAllowed(why));
            }
        }
        let mut request = self.client.post(&job.url).timeout(self.limits.timeout);
        for (name, value) in &job.headers {
            request = request.insert_header((*name, value.as_str()));
        }
        let response = request
            .send_body(job.body.clone())
            .await
            .map_err(|e| match e {
                awc::error::SendRequestError::Timeout => Failure::Timeout,
                other => Failure::Transport(other.to_string()),
            })?;
        read(response, self.limits.max_body).await
    }

    /// The abuse-protection verdict for the job's host, asking it first if need be.
    async fn check(&self, job: &Job) -> Result<(), String> {
        let cell = {
            let mut verdicts = self.verdicts.borrow_mut();
            let stale = verdicts.get(&job.host).is_some_and(|cell| {
                cell.get()
                    .is_some_and(|v| v.allowed.is_err() && v.at.elapsed() >= RECHECK_AFTER)
            });
            if stale || verdicts.len() > 4 * MAX_REPORTED_HOSTS {
                verdicts.remove(&job.host);
                if verdicts.len() > 4 * MAX_REPORTED_HOSTS {
                    verdicts.clear();
                }
            }
            verdicts.entry(job.host.clone()).or_default().clone()
        };
        let verdict = cell
            .get_or_init(|| async {
                let allowed = self.ask(job).await;
                self.report(&job.host, &allowed);
                Verdict {
                    allowed,
                    at: Instant::now(),
                }
            })
            .await;
        verdict.allowed.clone()
    }

    /// `OPTIONS` with `WebHook-Request-Origin` (CloudEvents webhook spec 4.2), to the URL of
    /// the event that prompted it, as the service validates each handler URL.
    async fn ask(&self, job: &Job) -> Result<(), String> {
        let host = &job.host;
        let request = self
            .client
            .request(awc::http::Method::OPTIONS, &job.url)
            .timeout(self.limits.timeout)
            .insert_header(("webhook-request-origin", self.origin.as_str()))
            .insert_header(("ce-awpsversion", AWPS_VERSION));
        let response = request.send().await.map_err(|e| {
            format!("{host} did not answer the abuse-protection OPTIONS request: {e}")
        })?;
        let status = response.status().as_u16();
        let allowed: Vec<&str> = response
            .headers()
            .get_all("webhook-allowed-origin")
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !(200..300).contains(&status) {
            return Err(format!(
                "{host} answered the abuse-protection OPTIONS request with {status}; it must answer 200 with WebHook-Allowed-Origin: {} (or *)",
                self.origin
            ));
        }
        if !handlers::origin_allowed(allowed.iter().copied(), &self.origin) {
            return Err(format!(
                "{host} does not allow the origin {}: its WebHook-Allowed-Origin is {:?}; allow it (or *), or set the hub's webhook origin to one it allows",
                self.origin, allowed
            ));
        }
        Ok(())
    }

    fn report(&self, host: &str, allowed: &Result<(), String>) {
        let Ok(mut refused) = self.checks.refused_hosts.lock() else {
            return;
        };
        match allowed {
            Ok(()) => {
                refused.remove(host);
            }
            Err(why) => {
                tracing::warn!(host, reason = %why, "event handler host refused: no events go there");
                if refused.len() < MAX_REPORTED_HOSTS || refused.contains_key(host) {
                    refused.insert(host.to_owned(), why.clone());
                }
            }
        }
    }
}

/// Reads status, content type and a bounded body.
async fn read<S>(mut response: awc::ClientResponse<S>, max_body: usize) -> Result<Answer, Failure>
where
    S: futures::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let states: Vec<&str> = response
        .headers()
        .get_all("ce-connectionstate")
        .map(|v| v.to_str())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Failure::Transport("its ce-connectionState header is not visible ASCII".to_owned())
        })?;
    if states.len() > 1 {
        return Err(Failure::Transport(
            "it answered more than one ce-connectionState header; the service allows one"
                .to_owned(),
        ));
    }
    let connection_state = states.first().map(|s| (*s).to_owned());
    let body = response.body().limit(max_body).await.map_err(|e| {
        Failure::Transport(match e {
            awc::error::PayloadError::Overflow => {
                format!("its answer is larger than the {max_body}-byte message limit")
            }
            other => format!("reading its answer: {other}"),
        })
    })?;
    Ok(Answer {
        status,
        content_type,
        connection_state,
        body,
    })
}

/// Turns an answer (or its absence) into what the waiting side expects.
fn respond(to: Respond, url: &str, answer: Result<Answer, Failure>) {
    if let Err(failure) = &answer {
        // A handler URL's query can hold a key (an Azure Functions `code=`): log the path only.
        let url = url.split_once('?').map_or(url, |(path, _)| path);
        tracing::debug!(url, reason = %failure, "upstream event failed");
    }
    match to {
        Respond::Nowhere => {}
        Respond::User(tx) => {
            let reply = match answer {
                Err(failure) => Reply::Failed(failure.to_string()),
                Ok(a) if (200..300).contains(&a.status) => Reply::Ok {
                    data: payload(a.content_type.as_deref(), a.body),
                    connection_state: a.connection_state,
                },
                Ok(a) => Reply::Failed(format!("the event handler answered {}", a.status)),
            };
            let _ = tx.send(reply);
        }
        Respond::Connect(tx) => {
            let _ = tx.send(connect_reply(answer));
        }
    }
}

/// The rules of protocol.md 8.2 for a `connect` answer.
fn connect_reply(answer: Result<Answer, Failure>) -> ConnectReply {
    let refused = |status: u16, reason: String| ConnectReply::Refused { status, reason };
    let answer = match answer {
        Ok(a) => a,
        Err(Failure::Timeout) => {
            return refused(
                504,
                "The event handler did not answer the connect event in time".to_owned(),
            );
        }
        Err(other) => return refused(502, format!("Connect refused: {other}")),
    };
    let accepted = |response: ConnectResponse| {
        ConnectReply::Accepted(ConnectResponse {
            connection_state: answer.connection_state.clone(),
            ..response
        })
    };
    match answer.status {
        200..=299 if answer.body.iter().all(u8::is_ascii_whitespace) => {
            accepted(ConnectResponse::default())
        }
        200..=299 => match serde_json::from_slice::<ConnectResponse>(&answer.body) {
            Ok(response) => accepted(response),
            Err(e) => refused(
                502,
                format!(
                    "The event handler's answer to connect is not the JSON object the service expects ({{\"userId\",\"groups\",\"roles\",\"subprotocol\"}}): {e}"
                ),
            ),
        },
        status @ 400..=499 => {
            let text = printable(&answer.body);
            refused(
                status,
                if text.is_empty() {
                    format!("The event handler refused the connection ({status})")
                } else {
                    text
                },
            )
        }
        status => refused(
            500,
            format!("The event handler failed the connect event: it answered {status}"),
        ),
    }
}

/// At most 512 characters of a handler's text, without control characters.
fn printable(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect::<String>()
        .trim()
        .to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00Z");
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

    fn answer(status: u16, body: &'static str) -> Result<Answer, Failure> {
        Ok(Answer {
            status,
            content_type: Some("application/json".to_owned()),
            connection_state: None,
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    #[test]
    fn connect_answers_follow_the_service_rules() {
        let status = |reply: ConnectReply| match reply {
            ConnectReply::Accepted(_) => 0,
            ConnectReply::Refused { status, .. } => status,
        };
        assert_eq!(status(connect_reply(answer(204, ""))), 0);
        assert_eq!(status(connect_reply(answer(200, " \n"))), 0);
        match connect_reply(answer(
            200,
            r#"{"userId":"u","groups":["g"],"roles":["r"],"x":1}"#,
        )) {
            ConnectReply::Accepted(r) => {
                assert_eq!(r.user_id.as_deref(), Some("u"));
                assert_eq!((r.groups, r.roles), (vec!["g".into()], vec!["r".into()]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(status(connect_reply(answer(200, "<html>"))), 502);
        assert_eq!(status(connect_reply(answer(200, r#"{"groups":"g"}"#))), 502);
        assert_eq!(status(connect_reply(answer(401, "no"))), 401);
        assert_eq!(status(connect_reply(answer(503, ""))), 500);
        assert_eq!(status(connect_reply(answer(302, ""))), 500);
        assert_eq!(status(connect_reply(Err(Failure::Timeout))), 504);
        let not_allowed = Err(Failure::NotAllowed("x".into()));
        assert_eq!(status(connect_reply(not_allowed)), 502);
        match connect_reply(answer(403, "go away\r\nX: y")) {
            ConnectReply::Refused { reason, .. } => assert_eq!(reason, "go awayX: y"),
            other => panic!("{other:?}"),
        }
    }
}
