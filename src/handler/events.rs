//! The events an event handler receives and the answers it gives, as the service (and the
//! local hub) sends and reads them (protocol.md 8.2; the official `@azure/web-pubsub-express`
//! 1.1.0 reads them the same way), and the pure parsing and rendering between them and HTTP.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::error::Refusal;
use crate::credential::signature_matches;
use crate::protocol::Secret;

/// A connection's state: the JSON object carried, base64-encoded, in `ce-connectionState`
/// (what the express SDK's `setState` writes). Empty when none was set or the header could not
/// be read.
pub type ConnectionStates = Map<String, Value>;

/// What every event says about its connection (the `ce-*` headers).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionContext {
    /// `ce-hub`.
    pub hub: String,
    /// `ce-connectionId`.
    pub connection_id: String,
    /// `ce-userId`, when the connection has a user.
    pub user_id: Option<String>,
    /// `ce-eventName`: `connect`, `connected`, `disconnected`, `joined`, `left` or the user
    /// event's name.
    pub event_name: String,
    /// `ce-subprotocol`, when the client negotiated one.
    pub subprotocol: Option<String>,
    /// `WebHook-Request-Origin`: the host of the service (or hub) that sent the event.
    pub origin: String,
    /// The connection's state, as set by earlier answers to this connection's events.
    pub states: ConnectionStates,
}

/// The blocking `connect` event: the handler admits, shapes or refuses the connection.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// The access token's claims, each as an array of strings (`sub` is the user id).
    pub claims: BTreeMap<String, Vec<String>>,
    /// The query of the client's URL (without its access token).
    pub query: BTreeMap<String, Vec<String>>,
    /// The headers of the client's upgrade request (without its access token).
    pub headers: BTreeMap<String, Vec<String>>,
    /// The subprotocols the client offered.
    pub subprotocols: Vec<String>,
    /// The client's certificates (the local hub sends none).
    pub client_certificates: Vec<ClientCertificate>,
}

/// A client certificate of a `connect` event.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ClientCertificate {
    /// Its thumbprint.
    #[serde(default)]
    pub thumbprint: String,
    /// Its content (PEM).
    #[serde(default)]
    pub content: String,
}

/// The payload of a user event, by its `Content-Type`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventData {
    /// `text/plain`.
    Text(String),
    /// `application/json`.
    Json(Value),
    /// `application/octet-stream`.
    Binary(Bytes),
}

/// A user event (`event` requests of the JSON subprotocols, messages of simple clients): its
/// answer goes back to that client.
#[derive(Clone, Debug, PartialEq)]
pub struct UserEventRequest {
    /// The connection; `context.event_name` is the event's name (`message` for a simple client).
    pub context: ConnectionContext,
    /// The payload.
    pub data: EventData,
}

/// The `connected` notification: the client got its `connected` frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectedRequest {
    /// The connection.
    pub context: ConnectionContext,
}

/// The `disconnected` notification.
#[derive(Clone, Debug, PartialEq)]
pub struct DisconnectedRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// Why it ended, when the service says.
    pub reason: Option<String>,
}

/// A group presence notification (`azure.webpubsub.gp.joined` or `.left`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// The group it joined or left.
    pub group: String,
}

/// The answer to `connect`, built with consuming setters:
///
/// ```
/// use webpubsub_fleet::handler::ConnectResponse;
///
/// let admit = ConnectResponse::accept()
///     .user_id("app-alice")
///     .groups(["room"])
///     .set_state("greeting", "hello alice");
/// let refuse = ConnectResponse::refuse(401, "alice is not welcome here");
/// # let _ = (admit, refuse);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectResponse {
    outcome: Result<Admission, (u16, String)>,
    states: Vec<(String, Value)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct Admission {
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subprotocol: Option<String>,
}

impl ConnectResponse {
    /// Admits the connection as its token says (204 unless a setter below adds something).
    pub fn accept() -> ConnectResponse {
        ConnectResponse {
            outcome: Ok(Admission::default()),
            states: Vec::new(),
        }
    }

    /// Refuses it: the client's upgrade is answered with `status` (400..=599; anything else is
    /// sent as 500) and `reason`.
    pub fn refuse(status: u16, reason: impl Into<String>) -> ConnectResponse {
        ConnectResponse {
            outcome: Err((error_status(status), reason.into())),
            states: Vec::new(),
        }
    }

    /// The connection's user id (replacing the token's). Ignored on a refusal.
    pub fn user_id(mut self, user_id: impl Into<String>) -> ConnectResponse {
        if let Ok(a) = &mut self.outcome {
            a.user_id = Some(user_id.into());
        }
        self
    }

    /// Groups the connection joins before its first frame. Ignored on a refusal.
    pub fn groups<S: Into<String>>(
        mut self,
        groups: impl IntoIterator<Item = S>,
    ) -> ConnectResponse {
        if let Ok(a) = &mut self.outcome {
            a.groups = Some(groups.into_iter().map(Into::into).collect());
        }
        self
    }

    /// Roles the connection gets (`webpubsub.joinLeaveGroup`, `webpubsub.sendToGroup.<group>`,
    /// ...). Ignored on a refusal.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> ConnectResponse {
        if let Ok(a) = &mut self.outcome {
            a.roles = Some(roles.into_iter().map(Into::into).collect());
        }
        self
    }

    /// The subprotocol chosen among the offered ones. Ignored on a refusal.
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> ConnectResponse {
        if let Ok(a) = &mut self.outcome {
            a.subprotocol = Some(subprotocol.into());
        }
        self
    }

    /// Sets one entry of the connection's state, carried on its later events
    /// (`ConnectionContext::states`), as the express SDK's `setState`.
    pub fn set_state(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> ConnectResponse {
        self.states.push((name.into(), value.into()));
        self
    }

    /// Whether it admits the connection.
    pub fn is_accepted(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The answer to a user event, built with consuming setters:
///
/// ```
/// use webpubsub_fleet::handler::UserEventResponse;
///
/// let reply = UserEventResponse::text("echo: hi").set_state("seen", 1);
/// let failed = UserEventResponse::error(400, "unknown command");
/// # let _ = (reply, failed);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct UserEventResponse {
    outcome: Result<Option<EventData>, (u16, String)>,
    states: Vec<(String, Value)>,
}

impl UserEventResponse {
    /// Nothing goes back to the client (204).
    pub fn empty() -> UserEventResponse {
        UserEventResponse::with(Ok(None))
    }

    /// A text message goes back to the client (`dataType: text`).
    pub fn text(data: impl Into<String>) -> UserEventResponse {
        UserEventResponse::with(Ok(Some(EventData::Text(data.into()))))
    }

    /// A JSON message goes back to the client (`dataType: json`).
    pub fn json(data: Value) -> UserEventResponse {
        UserEventResponse::with(Ok(Some(EventData::Json(data))))
    }

    /// A binary message goes back to the client (`dataType: binary`).
    pub fn binary(data: impl Into<Bytes>) -> UserEventResponse {
        UserEventResponse::with(Ok(Some(EventData::Binary(data.into()))))
    }

    /// The event failed: answered with `status` (400..=599; anything else is sent as 500) and
    /// `detail`. The service then answers the client's request with an error ack (or, without
    /// an ack id, drops the connection).
    pub fn error(status: u16, detail: impl Into<String>) -> UserEventResponse {
        UserEventResponse::with(Err((error_status(status), detail.into())))
    }

    /// Sets one entry of the connection's state, as [`ConnectResponse::set_state`].
    pub fn set_state(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> UserEventResponse {
        self.states.push((name.into(), value.into()));
        self
    }

    fn with(outcome: Result<Option<EventData>, (u16, String)>) -> UserEventResponse {
        UserEventResponse {
            outcome,
            states: Vec::new(),
        }
    }
}

fn error_status(status: u16) -> u16 {
    if (400..=599).contains(&status) {
        status
    } else {
        500
    }
}

/// An HTTP answer, ready to send: what `mod.rs` turns into an `HttpResponse`.
#[derive(Debug, PartialEq)]
pub(crate) struct Rendered {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'static str>,
    /// `ce-connectionState`, when the answer set a state.
    pub(crate) state: Option<String>,
    pub(crate) body: Bytes,
}

impl Rendered {
    pub(crate) fn empty(status: u16) -> Rendered {
        Rendered {
            status,
            content_type: None,
            state: None,
            body: Bytes::new(),
        }
    }

    pub(crate) fn text(status: u16, text: String) -> Rendered {
        Rendered {
            content_type: Some(TEXT),
            body: Bytes::from(text),
            ..Rendered::empty(status)
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// The state header after `changes` on top of the request's `states`; `None` without changes
/// (the service then keeps the state it has), as the express SDK does.
fn state_header(mut states: ConnectionStates, changes: Vec<(String, Value)>) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    for (name, value) in changes {
        states.insert(name, value);
    }
    Some(STANDARD.encode(Value::Object(states).to_string()))
}

impl ConnectResponse {
    pub(crate) fn render(self, states: ConnectionStates) -> Rendered {
        let state = state_header(states, self.states);
        match self.outcome {
            Err((status, reason)) => Rendered::text(status, reason),
            Ok(a) if a == Admission::default() => Rendered {
                state,
                ..Rendered::empty(204)
            },
            Ok(a) => Rendered {
                status: 200,
                content_type: Some("application/json; charset=utf-8"),
                state,
                // A struct of strings always serializes.
                body: Bytes::from(serde_json::to_vec(&a).unwrap_or_default()),
            },
        }
    }
}

impl UserEventResponse {
    pub(crate) fn render(self, states: ConnectionStates) -> Rendered {
        let state = state_header(states, self.states);
        let (content_type, body) = match self.outcome {
            Err((status, detail)) => return Rendered::text(status, detail),
            Ok(None) => {
                return Rendered {
                    state,
                    ..Rendered::empty(204)
                };
            }
            Ok(Some(EventData::Text(s))) => (TEXT, Bytes::from(s)),
            Ok(Some(EventData::Json(v))) => (
                "application/json; charset=utf-8",
                Bytes::from(v.to_string()),
            ),
            Ok(Some(EventData::Binary(b))) => ("application/octet-stream", b),
        };
        Rendered {
            status: 200,
            content_type: Some(content_type),
            state,
            body,
        }
    }
}

/// Which event a request is, by its `ce-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    Connected,
    Disconnected,
    GroupJoined,
    GroupLeft,
    User,
}

impl Kind {
    /// As the express SDK reads `ce-type`.
    fn of(ce_type: &str) -> Option<Kind> {
        if ce_type.starts_with("azure.webpubsub.user.") {
            return Some(Kind::User);
        }
        Some(match ce_type {
            "azure.webpubsub.sys.connect" => Kind::Connect,
            "azure.webpubsub.sys.connected" => Kind::Connected,
            "azure.webpubsub.sys.disconnected" => Kind::Disconnected,
            "azure.webpubsub.gp.joined" => Kind::GroupJoined,
            "azure.webpubsub.gp.left" => Kind::GroupLeft,
            _ => return None,
        })
    }
}

/// What the headers of an event say, checked before its body is read.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) kind: Kind,
    pub(crate) context: ConnectionContext,
    content_type: Option<String>,
}

/// The settings the checks of a request need.
pub(crate) struct Checks<'a> {
    pub(crate) hub: &'a str,
    /// Lower-case `host[:port]`s; `None`: every origin.
    pub(crate) allowed_origins: Option<&'a [String]>,
    /// Empty: signatures are not checked.
    pub(crate) keys: &'a [Secret],
}

impl Checks<'_> {
    /// The `WebHook-Allowed-Origin` values of an abuse-protection answer.
    pub(crate) fn allowed_origin_values(&self) -> Vec<String> {
        match self.allowed_origins {
            None => vec!["*".to_owned()],
            Some(list) => list.to_vec(),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .is_none_or(|list| list.iter().any(|o| o.eq_ignore_ascii_case(origin.trim())))
    }
}

/// The abuse-protection `OPTIONS` request: the `WebHook-Allowed-Origin` values to answer with,
/// or why it is refused.
pub(crate) fn preflight(headers: &HeaderMap, checks: &Checks<'_>) -> Result<Vec<String>, Refusal> {
    let origin = header(headers, "webhook-request-origin")?.ok_or_else(|| {
        Refusal::bad_request(
            "an abuse-protection OPTIONS request needs a WebHook-Request-Origin header",
        )
    })?;
    if !checks.origin_allowed(&origin) {
        // Still answered with the list, as the express SDK does: the service decides.
        tracing::info!(origin = %origin, "abuse-protection request from an origin that is not allowed");
    }
    Ok(checks.allowed_origin_values())
}

/// Checks an event's headers: a Web PubSub event of a known type, for this hub, from an allowed
/// origin, signed with one of the keys.
pub(crate) fn parse_head(headers: &HeaderMap, checks: &Checks<'_>) -> Result<Head, Refusal> {
    let required = |name: &str| -> Result<String, Refusal> {
        header(headers, name)?.ok_or_else(|| {
            Refusal::bad_request(format!(
                "not a Web PubSub event: the {name} header is missing (the service sends it on every event)"
            ))
        })
    };
    required("ce-awpsversion")?;
    let origin = required("webhook-request-origin")?;
    if !checks.origin_allowed(&origin) {
        return Err(Refusal::new(
            403,
            format!(
                "events from {origin} are not allowed: add its endpoint to the handler's allowed endpoints"
            ),
        ));
    }
    let ce_type = required("ce-type")?;
    let kind = Kind::of(&ce_type).ok_or_else(|| {
        Refusal::bad_request(format!(
            "unknown ce-type `{}`: this handler takes azure.webpubsub.sys.connect, .connected, .disconnected, azure.webpubsub.gp.joined, .left and azure.webpubsub.user.<event>",
            shorten(&ce_type)
        ))
    })?;
    let hub = required("ce-hub")?;
    if !hub.eq_ignore_ascii_case(checks.hub) {
        return Err(Refusal::new(
            404,
            format!(
                "this handler takes events of hub `{}`, not `{}`",
                checks.hub,
                shorten(&hub)
            ),
        ));
    }
    let connection_id = required("ce-connectionid")?;
    if !checks.keys.is_empty() {
        let signature = header(headers, "ce-signature")?.unwrap_or_default();
        if !signature_matches(&signature, checks.keys, &connection_id) {
            return Err(Refusal::new(
                401,
                "the ce-signature header does not hold a signature of the connection id by one of this handler's access keys: give the handler the service's access key",
            ));
        }
    }
    let states = match header(headers, "ce-connectionstate")? {
        None => ConnectionStates::new(),
        Some(encoded) => decode_states(&encoded).ok_or_else(|| {
            Refusal::bad_request("the ce-connectionState header is not base64 of a JSON object")
        })?,
    };
    Ok(Head {
        kind,
        context: ConnectionContext {
            hub,
            connection_id,
            user_id: header(headers, "ce-userid")?,
            event_name: header(headers, "ce-eventname")?.unwrap_or_default(),
            subprotocol: header(headers, "ce-subprotocol")?,
            origin,
            states,
        },
        content_type: header(headers, "content-type")?,
    })
}

/// One parsed event, ready for the application.
#[derive(Debug)]
pub(crate) enum Incoming {
    Connect(ConnectRequest),
    Connected(ConnectedRequest),
    Disconnected(DisconnectedRequest),
    GroupJoined(GroupRequest),
    GroupLeft(GroupRequest),
    User(UserEventRequest),
}

/// The body of a `connect` event (every field optional, as the service may add to it).
#[derive(Deserialize)]
struct ConnectBody {
    #[serde(default)]
    claims: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    query: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    subprotocols: Vec<String>,
    #[serde(default, rename = "clientCertificates")]
    client_certificates: Vec<ClientCertificate>,
}

#[derive(Deserialize)]
struct DisconnectedBody {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct GroupBody {
    group: String,
}

/// The event of `head` with its `body`.
pub(crate) fn parse_body(head: Head, body: Bytes) -> Result<Incoming, Refusal> {
    let Head {
        kind,
        context,
        content_type,
    } = head;
    let json = |what: &str| -> Result<Value, Refusal> {
        serde_json::from_slice(&body).map_err(|e| {
            Refusal::bad_request(format!("the body of the {what} event is not JSON: {e}"))
        })
    };
    let shaped = |what: &str, e: serde_json::Error| {
        Refusal::bad_request(format!(
            "the body of the {what} event is not what the service sends: {e}"
        ))
    };
    Ok(match kind {
        Kind::Connect => {
            let b: ConnectBody =
                serde_json::from_value(json("connect")?).map_err(|e| shaped("connect", e))?;
            Incoming::Connect(ConnectRequest {
                context,
                claims: b.claims,
                query: b.query,
                headers: b.headers,
                subprotocols: b.subprotocols,
                client_certificates: b.client_certificates,
            })
        }
        Kind::Connected => {
            // `{}` from the service; nothing in it is used, but it must be JSON.
            if !body.iter().all(u8::is_ascii_whitespace) {
                json("connected")?;
            }
            Incoming::Connected(ConnectedRequest { context })
        }
        Kind::Disconnected => {
            let reason = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                let b: DisconnectedBody = serde_json::from_value(json("disconnected")?)
                    .map_err(|e| shaped("disconnected", e))?;
                b.reason
            };
            Incoming::Disconnected(DisconnectedRequest { context, reason })
        }
        Kind::GroupJoined | Kind::GroupLeft => {
            let b: GroupBody =
                serde_json::from_value(json("group")?).map_err(|e| shaped("group", e))?;
            let request = GroupRequest {
                context,
                group: b.group,
            };
            if kind == Kind::GroupJoined {
                Incoming::GroupJoined(request)
            } else {
                Incoming::GroupLeft(request)
            }
        }
        Kind::User => {
            let essence = content_type
                .as_deref()
                .and_then(|c| c.split(';').next())
                .map(|c| c.trim().to_ascii_lowercase())
                .unwrap_or_default();
            let data = match essence.as_str() {
                "application/octet-stream" => EventData::Binary(body),
                "application/json" => {
                    EventData::Json(serde_json::from_slice(&body).map_err(|e| {
                        Refusal::bad_request(format!(
                            "the user event says application/json but its body is not JSON: {e}"
                        ))
                    })?)
                }
                "text/plain" => {
                    EventData::Text(String::from_utf8(body.to_vec()).map_err(|_| {
                        Refusal::bad_request(
                            "the user event says text/plain but its body is not UTF-8",
                        )
                    })?)
                }
                other => {
                    return Err(Refusal::new(
                        415,
                        format!(
                            "a user event's Content-Type must be text/plain, application/json or application/octet-stream, not `{}`",
                            shorten(other)
                        ),
                    ));
                }
            };
            Incoming::User(UserEventRequest { context, data })
        }
    })
}

/// One header as UTF-8 (the service may send a user id that is not ASCII); a second value of
/// the same header is ignored, as the express SDK reads the first.
fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.to_owned()))
            .map_err(|_| Refusal::bad_request(format!("the {name} header is not UTF-8"))),
    }
}

fn decode_states(encoded: &str) -> Option<ConnectionStates> {
    let json = STANDARD.decode(encoded.trim()).ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// At most 64 characters of a peer's value, for an error text.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::event_signature;
    use actix_web::http::header::{HeaderName, HeaderValue};

    const KEY: &str = "key";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn event(ce_type: &str, extra: &[(&str, &str)]) -> HeaderMap {
        let sig = event_signature(&Secret::new(KEY), "c1");
        let mut pairs = vec![
            ("ce-awpsversion", "1.0"),
            ("webhook-request-origin", "127.0.0.1:8080"),
            ("ce-type", ce_type),
            ("ce-hub", "Chat"),
            ("ce-connectionid", "c1"),
            ("ce-eventname", "e"),
            ("ce-signature", sig.as_str()),
        ];
        pairs.extend_from_slice(extra);
        let mut map = headers(&pairs);
        for (name, _) in extra {
            // An extra pair replaces the default of the same name.
            let values: Vec<_> = map.get_all(*name).cloned().collect();
            if let Some(last) = values.last() {
                map.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    last.clone(),
                );
            }
        }
        map
    }

    fn checks<'a>(keys: &'a [Secret], origins: Option<&'a [String]>) -> Checks<'a> {
        Checks {
            hub: "chat",
            allowed_origins: origins,
            keys,
        }
    }

    fn status(r: Result<Head, Refusal>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|r| r.status)
    }

    #[test]
    fn heads_are_checked_before_the_body() {
        let keys = [Secret::new("other"), Secret::new(KEY)];
        let origins = ["127.0.0.1:8080".to_owned()];
        let c = checks(&keys, Some(&origins));
        let head = parse_head(&event("azure.webpubsub.sys.connect", &[]), &c).unwrap();
        assert_eq!(head.kind, Kind::Connect);
        assert_eq!(head.context.connection_id, "c1");
        let ok = |t: &str| status(parse_head(&event(t, &[]), &c));
        assert_eq!(ok("azure.webpubsub.gp.joined"), 200);
        assert_eq!(ok("azure.webpubsub.user.anything"), 200);
        assert_eq!(ok("azure.webpubsub.sys.nope"), 400);
        let with = |extra: &[(&str, &str)]| {
            status(parse_head(
                &event("azure.webpubsub.sys.connected", extra),
                &c,
            ))
        };
        assert_eq!(with(&[("ce-signature", "sha256=00")]), 401);
        assert_eq!(
            with(&[("ce-connectionid", "c2")]),
            401,
            "signed for another connection"
        );
        assert_eq!(with(&[("webhook-request-origin", "evil.example")]), 403);
        assert_eq!(with(&[("ce-hub", "other")]), 404);
        assert_eq!(with(&[("ce-connectionstate", "not base64!")]), 400);
        let mut missing = event("azure.webpubsub.sys.connected", &[]);
        missing.remove("ce-awpsversion");
        let refusal = parse_head(&missing, &c).unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(
            refusal.reason.contains("ce-awpsversion"),
            "{}",
            refusal.reason
        );
        // No keys: signatures are not checked; no origins: every origin.
        let open = checks(&[], None);
        assert_eq!(
            status(parse_head(
                &event(
                    "azure.webpubsub.sys.connected",
                    &[("ce-signature", "x"), ("webhook-request-origin", "a.b")]
                ),
                &open
            )),
            200
        );
    }

    #[test]
    fn bodies_become_typed_requests() {
        let c = checks(&[], None);
        let head = |t: &str, extra: &[(&str, &str)]| parse_head(&event(t, extra), &c).unwrap();
        let body = |s: &'static str| Bytes::from_static(s.as_bytes());
        match parse_body(
            head("azure.webpubsub.sys.connect", &[]),
            body(r#"{"claims":{"sub":["alice"]},"query":{"a":["1"]},"subprotocols":["json.webpubsub.azure.v1"],"extra":1}"#),
        )
        .unwrap()
        {
            Incoming::Connect(r) => {
                assert_eq!(r.claims["sub"], vec!["alice".to_owned()]);
                assert_eq!(r.query["a"], vec!["1".to_owned()]);
                assert!(r.headers.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let refused = |t: &str, extra: &[(&str, &str)], b: &'static str| {
            parse_body(head(t, extra), body(b)).unwrap_err().status
        };
        assert_eq!(refused("azure.webpubsub.sys.connect", &[], "<html>"), 400);
        assert_eq!(
            refused(
                "azure.webpubsub.sys.connect",
                &[],
                r#"{"claims":{"sub":"alice"}}"#
            ),
            400
        );
        assert_eq!(refused("azure.webpubsub.gp.left", &[], "{}"), 400);
        assert_eq!(
            refused(
                "azure.webpubsub.user.e",
                &[("content-type", "application/json")],
                "{"
            ),
            400
        );
        assert_eq!(
            refused(
                "azure.webpubsub.user.e",
                &[("content-type", "text/html")],
                "x"
            ),
            415
        );
        assert_eq!(refused("azure.webpubsub.user.e", &[], "x"), 415);
        match parse_body(
            head("azure.webpubsub.gp.joined", &[]),
            body(r#"{"group":"g"}"#),
        )
        .unwrap()
        {
            Incoming::GroupJoined(r) => assert_eq!(r.group, "g"),
            other => panic!("{other:?}"),
        }
        match parse_body(
            head("azure.webpubsub.sys.disconnected", &[]),
            body(r#"{"reason":"bye"}"#),
        )
        .unwrap()
        {
            Incoming::Disconnected(r) => assert_eq!(r.reason.as_deref(), Some("bye")),
            other => panic!("{other:?}"),
        }
        let text = head(
            "azure.webpubsub.user.e",
            &[("content-type", "text/plain; charset=utf-8")],
        );
        match parse_body(text, body("hi")).unwrap() {
            Incoming::User(r) => assert_eq!(r.data, EventData::Text("hi".into())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_render_as_the_express_sdk_writes_them() {
        let r = ConnectResponse::accept().render(ConnectionStates::new());
        assert_eq!((r.status, r.state), (204, None));
        let r = ConnectResponse::accept()
            .user_id("u")
            .groups(["g"])
            .set_state("k", "v")
            .render(ConnectionStates::new());
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            Bytes::from_static(br#"{"userId":"u","groups":["g"]}"#)
        );
        let state = decode_states(&r.state.unwrap()).unwrap();
        assert_eq!(Value::Object(state), serde_json::json!({"k": "v"}));
        let r = ConnectResponse::refuse(200, "no")
            .user_id("ignored")
            .render(ConnectionStates::new());
        assert_eq!((r.status, r.body), (500, Bytes::from_static(b"no")));
        let mut before = ConnectionStates::new();
        before.insert("a".into(), 1.into());
        let r = UserEventResponse::json(serde_json::json!([1]))
            .set_state("b", 2)
            .render(before);
        assert_eq!(r.content_type, Some("application/json; charset=utf-8"));
        let state = decode_states(&r.state.unwrap()).unwrap();
        assert_eq!(Value::Object(state), serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(
            UserEventResponse::empty()
                .render(ConnectionStates::new())
                .status,
            204
        );
        assert_eq!(
            UserEventResponse::error(403, "x")
                .render(ConnectionStates::new())
                .status,
            403
        );
    }
}
