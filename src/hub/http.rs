//! Small HTTP helpers shared by the client endpoint and the REST API.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::state::HubState;

/// The query string as decoded pairs, in order (repeated keys such as `excluded` or `role` are
/// kept, which `web::Query` into a map would lose).
pub(crate) fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of a query parameter (case-sensitive name, as the service's are).
pub(crate) fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeatable query parameter.
pub(crate) fn all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The `Host` the client addressed (HTTP/1.1 `Host` header, or the URI's authority).
pub(crate) fn host(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// The authorities a token's audience may name for this request: the hub's own (bound
/// address, `localhost:PORT`, configured ones), and the request's `Host` only when the hub is
/// configured to trust it (`HubConfig::trust_host_header`): any peer chooses its `Host`.
pub(crate) fn audience_authorities(req: &HttpRequest, state: &HubState) -> Vec<String> {
    let host = state.config.trust_host_header.then(|| host(req)).flatten();
    state.audience_authorities(host.as_deref())
}

/// The bearer token of the `Authorization` header, if any.
pub(crate) fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
}

/// A plain-text response with a short reason: what the client endpoint answers before the
/// upgrade, so that a failing handshake says why.
pub(crate) fn plain(status: StatusCode, reason: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(reason.to_owned())
}
