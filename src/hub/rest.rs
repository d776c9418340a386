//! The data-plane REST API of the service (protocol.md 6) and the hub's own `/_fleet/*`
//! endpoints. Every route except `/api/health` needs `Authorization: Bearer <JWT>` signed with
//! the access key, whose `aud` is the request URL without query or trailing slash.
//!
//! Errors are `{"code": ..., "message": ...}` with the code also in `x-ms-error-code`.
//! `api-version` is accepted with any value and not required.
//!
//! Order of checks, so that an anonymous peer costs the hub nothing: the path (400 for dot
//! segments and encoded slashes, so that the token check and the router read the same path),
//! the token (401), and only then the body, bounded by the message size limit (413, refused
//! from `Content-Length` before any byte is read) and by the request timeout (408).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::auth;
use super::faults::FaultRequest;
use super::filter::Filter;
use super::http::{self, all, first};
use super::inject;
use super::names;
use super::roles::Permission;
use super::state::{Connection, HubState, JoinRefused, Publication, Scope};
use crate::credential::{TokenOptions, mint_client_token};
use crate::protocol::{CLOSE_NORMAL, CLOSE_UNRECOVERABLE, Payload};

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/health", web::head().to(health))
        .route("/api/health", web::get().to(health))
        .route("/api/hubs/{hub}/:send", web::post().to(send_to_all))
        .route(
            "/api/hubs/{hub}/:closeConnections",
            web::post().to(close_all),
        )
        .route(
            "/api/hubs/{hub}/:generateToken",
            web::post().to(generate_token),
        )
        .route(
            "/api/hubs/{hub}/:addToGroups",
            web::post().to(add_to_groups),
        )
        .route(
            "/api/hubs/{hub}/:removeFromGroups",
            web::post().to(remove_from_groups),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/:send",
            web::post().to(send_to_user),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/:closeConnections",
            web::post().to(close_user),
        )
        .route("/api/hubs/{hub}/users/{user}", web::head().to(user_exists))
        .route(
            "/api/hubs/{hub}/users/{user}/groups/{group}",
            web::put().to(add_user_to_group),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/groups/{group}",
            web::delete().to(remove_user_from_group),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/groups",
            web::delete().to(remove_user_from_all_groups),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}/:send",
            web::post().to(send_to_connection),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}",
            web::head().to(connection_exists),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}",
            web::delete().to(close_connection),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}/groups",
            web::delete().to(remove_connection_from_all_groups),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/:send",
            web::post().to(send_to_group),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/:closeConnections",
            web::post().to(close_group),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}",
            web::head().to(group_exists),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/connections",
            web::get().to(list_group_connections),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/connections/{connection}",
            web::put().to(add_connection_to_group),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/connections/{connection}",
            web::delete().to(remove_connection_from_group),
        )
        .route(
            "/api/hubs/{hub}/permissions/{permission}/connections/{connection}",
            web::put().to(grant_permission),
        )
        .route(
            "/api/hubs/{hub}/permissions/{permission}/connections/{connection}",
            web::delete().to(revoke_permission),
        )
        .route(
            "/api/hubs/{hub}/permissions/{permission}/connections/{connection}",
            web::head().to(check_permission),
        )
        .route("/_fleet/stats", web::get().to(fleet_stats))
        .route("/_fleet/faults", web::post().to(fleet_faults));
}

/// An error response in the service's shape.
fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("x-ms-error-code", code))
        .json(json!({ "code": code, "message": message }))
}

fn status(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status).finish()
}

/// Why a request path is refused before routing, if it is: the router matches the raw
/// segments (`users/../groups/g` is user `..`) while a token's audience is compared as a
/// URL, where `..` and `%2E%2E` are resolved, so a token for one path would authorize
/// another. Encoded slashes and backslashes are refused for the same reason: a `%2F` is
/// one segment to the router and two to anything that decodes first.
fn path_problem(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return Some(
            "The path contains an encoded slash or a backslash: send names unencoded or choose names without slashes",
        );
    }
    let dot_segment = lower
        .split('/')
        .map(|segment| segment.replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..");
    dot_segment.then_some(
        "The path contains a `.` or `..` segment: send the path the token was minted for, without dot segments",
    )
}

/// Checks the path and then the bearer token against the request URL; reads nothing of the
/// body.
fn authorize(req: &HttpRequest, state: &HubState) -> Result<(), HttpResponse> {
    if let Some(problem) = path_problem(req.uri().path()) {
        return Err(error(StatusCode::BAD_REQUEST, "InvalidPath", problem));
    }
    let Some(token) = auth::bearer_token(http::authorization(req)) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "No bearer token: send Authorization: Bearer <JWT signed with the access key>",
        ));
    };
    let authorities = http::audience_authorities(req, state);
    auth::validate_for_path(
        token,
        &state.key,
        &authorities,
        req.uri().path(),
        SystemTime::now(),
    )
    .map(|_| ())
    .map_err(|e| {
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &auth::unauthorized_reason(&e),
        )
    })
}

/// The longest `messageTtlSeconds` the service accepts.
const MAX_MESSAGE_TTL_SECS: u64 = 300;

/// An authorized request to one hub: its scope and decoded query.
struct Call {
    state: Arc<HubState>,
    scope: Arc<Scope>,
    hub: String,
    query: Vec<(String, String)>,
}

impl Call {
    fn new(req: &HttpRequest, state: &web::Data<HubState>) -> Result<Call, HttpResponse> {
        authorize(req, state)?;
        let hub = req.match_info().get("hub").unwrap_or_default().to_owned();
        if !names::is_valid_hub_name(&hub) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidHubName",
                "Invalid hub name: it must match ^[A-Za-z][A-Za-z0-9_`,.[\\]]{0,127}$",
            ));
        }
        let state = state.clone().into_inner();
        Ok(Call {
            scope: state.scope(&hub),
            state,
            hub,
            query: http::query_pairs(req),
        })
    }

    fn param<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
        req.match_info().get(name).unwrap_or_default()
    }

    fn group(req: &HttpRequest) -> Result<String, HttpResponse> {
        let group = Call::param(req, "group");
        match names::group_name_problem(group) {
            None => Ok(group.to_owned()),
            Some(problem) => Err(error(StatusCode::BAD_REQUEST, "InvalidGroupName", problem)),
        }
    }

    fn excluded(&self) -> Vec<&str> {
        all(&self.query, "excluded")
    }

    fn filter(&self) -> Result<Option<Filter>, HttpResponse> {
        match first(&self.query, "filter").filter(|f| !f.trim().is_empty()) {
            None => Ok(None),
            Some(text) => Filter::parse(text)
                .map(Some)
                .map_err(|e| error(StatusCode::BAD_REQUEST, "InvalidFilter", &e)),
        }
    }

    /// Connections selected by `excluded` and `filter`.
    fn selected(
        &self,
        candidates: Vec<Arc<Connection>>,
    ) -> Result<Vec<Arc<Connection>>, HttpResponse> {
        let excluded = self.excluded();
        let filter = self.filter()?;
        Ok(candidates
            .into_iter()
            .filter(|c| !excluded.contains(&c.id.as_str()))
            .filter(|c| filter.as_ref().is_none_or(|f| f.matches(c)))
            .collect())
    }

    /// When a message of this send expires (`messageTtlSeconds`, 1 to 300; absent or 0:
    /// never, as the service). The hub drops an expired message that is still waiting in a
    /// socket's queue or in a detached session's replay buffer, instead of sending it.
    fn expires_at(&self) -> Result<Option<Instant>, HttpResponse> {
        let Some(text) = first(&self.query, "messageTtlSeconds") else {
            return Ok(None);
        };
        match text.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(secs @ 1..=MAX_MESSAGE_TTL_SECS) => {
                Ok(Some(Instant::now() + Duration::from_secs(secs)))
            }
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidMessageTtl",
                "messageTtlSeconds must be a whole number of seconds from 0 (never expires) to 300",
            )),
        }
    }

    fn close_reason(&self) -> String {
        first(&self.query, "reason")
            .filter(|r| !r.is_empty())
            .unwrap_or("ClosedByAppServer")
            .to_owned()
    }

    /// Closes connections as the service does for a REST close: `system/disconnected` with the
    /// reason, then the close frame. The session is gone, so reliable clients get 1008 (they must
    /// not try to recover); others get 1000.
    fn close(&self, conns: &[Arc<Connection>]) {
        let reason = self.close_reason();
        for conn in conns {
            let code = if conn.mode.is_reliable() {
                CLOSE_UNRECOVERABLE
            } else {
                CLOSE_NORMAL
            };
            self.state.remove(conn, Some((code, reason.clone())));
        }
    }
}

/// Reads the body of an authorized call: refused at once when `Content-Length` announces
/// more than the message size limit, cut when it grows past it (413), and cut when it has not
/// all arrived within the request timeout (408), so a slow sender holds nothing for long.
async fn read_body(
    req: &HttpRequest,
    mut body: web::Payload,
    state: &HubState,
) -> Result<Bytes, HttpResponse> {
    let limit = state.config.max_message_size;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            &format!("The body is larger than the {limit}-byte limit"),
        )
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = state.config.request_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut read = BytesMut::new();
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => {
                return Err(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    &format!(
                        "The body did not arrive within {} ms: send it in one go",
                        timeout.as_millis()
                    ),
                ));
            }
            Ok(None) => return Ok(read.freeze()),
            Ok(Some(Err(e))) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidBody",
                    &format!("The body could not be read: {e}"),
                ));
            }
            Ok(Some(Ok(chunk))) => {
                if read.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                read.extend_from_slice(&chunk);
            }
        }
    }
}

/// The payload of a send: the body with a `dataType` from `Content-Type`.
fn payload(req: &HttpRequest, body: Bytes) -> Result<Payload, HttpResponse> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "application/json" => serde_json::from_slice(&body)
            .map(Payload::Json)
            .map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidJson",
                    &format!("The body is not JSON: {e}"),
                )
            }),
        "text/plain" => String::from_utf8(body.to_vec())
            .map(Payload::Text)
            .map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidText",
                    "A text/plain body must be UTF-8",
                )
            }),
        "application/octet-stream" => Ok(Payload::Binary(body)),
        _ => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "Content-Type must be application/json, text/plain or application/octet-stream",
        )),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

async fn health() -> HttpResponse {
    status(StatusCode::OK)
}

fn deliver_all(call: &Call, conns: &[Arc<Connection>], data: Payload) {
    let publication = match call.expires_at() {
        Ok(expires_at) => Publication::server_until(data, expires_at),
        // Checked before the body was read (`Call::sending`).
        Err(_) => return,
    };
    for conn in conns {
        call.state.deliver(conn, &publication);
    }
}

async fn send_to_all(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    tri!(call.expires_at());
    let body = tri!(read_body(&req, body, &call.state).await);
    let data = tri!(payload(&req, body));
    let conns = tri!(call.selected(call.scope.all_connections()));
    deliver_all(&call, &conns, data);
    status(StatusCode::ACCEPTED)
}

async fn send_to_user(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    tri!(call.expires_at());
    let body = tri!(read_body(&req, body, &call.state).await);
    let data = tri!(payload(&req, body));
    let conns = tri!(call.selected(call.scope.user_connections(Call::param(&req, "user"))));
    deliver_all(&call, &conns, data);
    status(StatusCode::ACCEPTED)
}

async fn send_to_connection(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    tri!(call.expires_at());
    let body = tri!(read_body(&req, body, &call.state).await);
    let data = tri!(payload(&req, body));
    let conns: Vec<_> = call
        .scope
        .connection(Call::param(&req, "connection"))
        .into_iter()
        .collect();
    deliver_all(&call, &conns, data);
    status(StatusCode::ACCEPTED)
}

async fn send_to_group(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    tri!(call.expires_at());
    let group = tri!(Call::group(&req));
    let body = tri!(read_body(&req, body, &call.state).await);
    let data = tri!(payload(&req, body));
    let conns = tri!(call.selected(call.scope.group_members(&group)));
    deliver_all(&call, &conns, data);
    status(StatusCode::ACCEPTED)
}

async fn connection_exists(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    found(
        call.scope
            .connection(Call::param(&req, "connection"))
            .is_some(),
    )
}

async fn group_exists(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    found(call.scope.group_exists(&group))
}

async fn user_exists(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    found(call.scope.user_exists(Call::param(&req, "user")))
}

fn found(exists: bool) -> HttpResponse {
    status(if exists {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn close_connection(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let conns: Vec<_> = call
        .scope
        .connection(Call::param(&req, "connection"))
        .into_iter()
        .collect();
    call.close(&conns);
    status(StatusCode::NO_CONTENT)
}

async fn close_all(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let conns = tri!(call.selected(call.scope.all_connections()));
    call.close(&conns);
    status(StatusCode::NO_CONTENT)
}

async fn close_group(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    let conns = tri!(call.selected(call.scope.group_members(&group)));
    call.close(&conns);
    status(StatusCode::NO_CONTENT)
}

async fn close_user(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let conns = tri!(call.selected(call.scope.user_connections(Call::param(&req, "user"))));
    call.close(&conns);
    status(StatusCode::NO_CONTENT)
}

fn connection_or_404(call: &Call, req: &HttpRequest) -> Result<Arc<Connection>, HttpResponse> {
    let id = Call::param(req, "connection");
    call.scope.connection(id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No such connection in this hub",
        )
    })
}

async fn add_connection_to_group(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    let conn = tri!(connection_or_404(&call, &req));
    match call.state.join(&conn, &group) {
        Err(JoinRefused::TooManyGroups(cap)) => error(
            StatusCode::BAD_REQUEST,
            "TooManyGroups",
            &format!(
                "The connection is already in {cap} groups, the most the hub allows: remove it from one first"
            ),
        ),
        // Gone between the lookup and the join: as if it had been removed just after.
        Err(JoinRefused::Gone) | Ok(()) => status(StatusCode::OK),
    }
}

async fn remove_connection_from_group(
    req: HttpRequest,
    state: web::Data<HubState>,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    if let Some(conn) = call.scope.connection(Call::param(&req, "connection")) {
        call.state.leave(&conn, &group);
    }
    status(StatusCode::NO_CONTENT)
}

async fn remove_connection_from_all_groups(
    req: HttpRequest,
    state: web::Data<HubState>,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    if let Some(conn) = call.scope.connection(Call::param(&req, "connection")) {
        call.state.leave_all(&conn);
    }
    status(StatusCode::NO_CONTENT)
}

async fn add_user_to_group(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    for conn in call.scope.user_connections(Call::param(&req, "user")) {
        // A connection at its group cap is skipped: the others still join.
        let _ = call.state.join(&conn, &group);
    }
    status(StatusCode::OK)
}

async fn remove_user_from_group(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    for conn in call.scope.user_connections(Call::param(&req, "user")) {
        call.state.leave(&conn, &group);
    }
    status(StatusCode::NO_CONTENT)
}

async fn remove_user_from_all_groups(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    for conn in call.scope.user_connections(Call::param(&req, "user")) {
        call.state.leave_all(&conn);
    }
    status(StatusCode::NO_CONTENT)
}

/// Body of `:addToGroups` and `:removeFromGroups`.
#[derive(Deserialize)]
struct GroupsBody {
    groups: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
}

fn groups_body(body: &Bytes) -> Result<(Vec<String>, Option<Filter>), HttpResponse> {
    let parsed: GroupsBody = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "InvalidBody",
            &format!("Expected {{\"groups\":[...],\"filter\":\"...\"}}: {e}"),
        )
    })?;
    if let Some(problem) = parsed
        .groups
        .iter()
        .find_map(|g| names::group_name_problem(g))
    {
        return Err(error(StatusCode::BAD_REQUEST, "InvalidGroupName", problem));
    }
    let filter = match parsed.filter.filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(text) => Some(
            Filter::parse(&text)
                .map_err(|e| error(StatusCode::BAD_REQUEST, "InvalidFilter", &e))?,
        ),
    };
    Ok((parsed.groups, filter))
}

async fn add_to_groups(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let body = tri!(read_body(&req, body, &call.state).await);
    let (groups, filter) = tri!(groups_body(&body));
    for conn in call.scope.all_connections() {
        if filter.as_ref().is_none_or(|f| f.matches(&conn)) {
            for group in &groups {
                // A connection at its group cap is skipped: the others still join.
                let _ = call.state.join(&conn, group);
            }
        }
    }
    status(StatusCode::OK)
}

async fn remove_from_groups(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let body = tri!(read_body(&req, body, &call.state).await);
    let (groups, filter) = tri!(groups_body(&body));
    for conn in call.scope.all_connections() {
        if filter.as_ref().is_none_or(|f| f.matches(&conn)) {
            for group in &groups {
                call.state.leave(&conn, group);
            }
        }
    }
    status(StatusCode::OK)
}

/// Query of the list-members call (2024-12-01).
async fn list_group_connections(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let group = tri!(Call::group(&req));
    let page_size = first(&call.query, "maxpagesize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(200)
        .clamp(1, 200);
    let top = first(&call.query, "top").and_then(|v| v.parse::<usize>().ok());
    let after = first(&call.query, "continuationToken").unwrap_or("");
    let mut members = call.scope.group_members(&group);
    members.sort_by(|a, b| a.id.cmp(&b.id));
    let remaining: Vec<_> = members
        .into_iter()
        .filter(|c| c.id.as_str() > after)
        .collect();
    let limit = top.map_or(page_size, |t| t.min(page_size));
    let page: Vec<_> = remaining.iter().take(limit).collect();
    let more = remaining.len() > page.len() && top.is_none_or(|t| t > page.len());
    let next_link = match (more, page.last()) {
        (true, Some(last)) => {
            let mut url = format!(
                "{}?maxpagesize={page_size}&continuationToken={}",
                req.uri().path(),
                url::form_urlencoded::byte_serialize(last.id.as_bytes()).collect::<String>()
            );
            if let Some(version) = first(&call.query, "api-version") {
                url.push_str("&api-version=");
                url.extend(url::form_urlencoded::byte_serialize(version.as_bytes()));
            }
            serde_json::Value::String(url)
        }
        _ => serde_json::Value::Null,
    };
    let value: Vec<_> = page
        .iter()
        .map(|c| json!({ "connectionId": c.id, "userId": c.user_id }))
        .collect();
    HttpResponse::Ok().json(json!({ "value": value, "nextLink": next_link }))
}

fn permission(req: &HttpRequest) -> Result<Permission, HttpResponse> {
    Permission::from_rest_name(Call::param(req, "permission")).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "InvalidPermission",
            "The permission must be sendToGroup or joinLeaveGroup",
        )
    })
}

async fn grant_permission(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let permission = tri!(permission(&req));
    let conn = tri!(connection_or_404(&call, &req));
    let target = first(&call.query, "targetName");
    call.state
        .with_roles(&conn, |roles| roles.grant(permission, target));
    status(StatusCode::OK)
}

async fn revoke_permission(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let permission = tri!(permission(&req));
    if let Some(conn) = call.scope.connection(Call::param(&req, "connection")) {
        let target = first(&call.query, "targetName");
        call.state
            .with_roles(&conn, |roles| roles.revoke(permission, target));
    }
    status(StatusCode::NO_CONTENT)
}

async fn check_permission(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let permission = tri!(permission(&req));
    let Some(conn) = call.scope.connection(Call::param(&req, "connection")) else {
        return status(StatusCode::NOT_FOUND);
    };
    let target = first(&call.query, "targetName");
    found(
        call.state
            .with_roles(&conn, |roles| roles.has(permission, target)),
    )
}

/// Longest lifetime `:generateToken` mints, in minutes (365 days). The service documents no
/// maximum; without one `minutesToExpire * 60` overflowed (2^62 minutes gave a 0 s token).
pub(crate) const MAX_TOKEN_MINUTES: u64 = 365 * 24 * 60;

/// `POST :generateToken`: a client token for this hub, as the service mints it. Both the
/// swagger names (`role`, `group`) and the TypeSpec names (`roles`, `groups`) are read.
async fn generate_token(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    let call = tri!(Call::new(&req, &state));
    let q = &call.query;
    let minutes = match first(q, "minutesToExpire") {
        None => 60,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(m) if (1..=MAX_TOKEN_MINUTES).contains(&m) => m,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidMinutesToExpire",
                    &format!(
                        "minutesToExpire must be a whole number from 1 to {MAX_TOKEN_MINUTES} (365 days), not {text:.40}"
                    ),
                );
            }
        },
    };
    let roles: Vec<String> = all(q, "role")
        .into_iter()
        .chain(all(q, "roles"))
        .map(str::to_owned)
        .collect();
    let groups: Vec<String> = all(q, "group")
        .into_iter()
        .chain(all(q, "groups"))
        .map(str::to_owned)
        .collect();
    if let Some(problem) = groups.iter().find_map(|g| names::group_name_problem(g)) {
        return error(StatusCode::BAD_REQUEST, "InvalidGroupName", problem);
    }
    let opts = TokenOptions {
        user_id: first(q, "userId")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        roles,
        groups,
        // At most 525,600 * 60 seconds: no overflow, and an `exp` every JWT library reads.
        lifetime: Duration::from_secs(minutes * 60),
    };
    let audience = if call.state.config.trust_host_header {
        // Behind a proxy that keeps the client's Host (and may add Forwarded headers).
        let info = req.connection_info();
        format!(
            "{}://{}/client/hubs/{}",
            info.scheme(),
            info.host(),
            call.hub
        )
    } else {
        let scheme = if call.state.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let own = call.state.audience_authorities(None);
        let authority = own.first().map(String::as_str).unwrap_or("localhost");
        format!("{scheme}://{authority}/client/hubs/{}", call.hub)
    };
    match mint_client_token(&call.state.key, &audience, &opts, SystemTime::now()) {
        Ok(token) => HttpResponse::Ok().json(json!({ "token": token.expose() })),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The token could not be signed",
        ),
    }
}

async fn fleet_stats(req: HttpRequest, state: web::Data<HubState>) -> HttpResponse {
    tri!(authorize(&req, &state));
    HttpResponse::Ok().json(state.stats.snapshot(state.group_count()))
}

async fn fleet_faults(
    req: HttpRequest,
    state: web::Data<HubState>,
    body: web::Payload,
) -> HttpResponse {
    tri!(authorize(&req, &state));
    let body = tri!(read_body(&req, body, &state).await);
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidFault", &e.to_string()),
    };
    match request.into_fault() {
        Ok(fault) => {
            let affected = inject::apply(&state, fault);
            HttpResponse::Ok().json(json!({ "affected": affected }))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "InvalidFault", &e),
    }
}
