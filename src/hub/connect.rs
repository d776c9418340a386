//! The blocking `connect` event (protocol.md 8.1, 8.2): between the token check and the
//! upgrade, a handler that takes `connect` is asked; its answer admits the connection as the
//! token describes it (204), shapes it (200: user id, groups, roles, subprotocol, state), or
//! refuses it with an HTTP status before the upgrade. Without such a handler the token alone
//! decides.
//!
//! What the handler sees, as the service sends it: `claims` (every token claim, each as an
//! array of strings), `query` and `headers` (each value an array), `subprotocols` (every
//! offered name) and `clientCertificates` (always empty: the hub takes no client
//! certificates). The access token itself is left out of `query` and `headers` (the
//! `access_token` parameter, `Authorization`), so the app server never sees a credential.
//!
//! How an answer applies (the service documents no merge rule; these are the hub's): a
//! `userId` replaces the token's `sub`; `groups` are joined besides the token's; `roles` are
//! given besides the token's; `subprotocol` must be one the client offered.

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::names;
use super::state::HubState;
use super::upstream::{Call, ConnectReply};
use crate::credential::TokenClaims;

/// Who the connection is, once admitted.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The id the `connect` event named (the connection is created with it).
    pub(crate) connection_id: String,
    pub(crate) user_id: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) groups: Vec<String>,
    /// The subprotocol the handler chose, as the client wrote it; `None`: the hub's own
    /// negotiation stands.
    pub(crate) subprotocol: Option<String>,
    /// `ce-connectionState` from the answer.
    pub(crate) connection_state: Option<String>,
}

/// A refusal: the status and text to answer the upgrade with.
pub(crate) type Refusal = (u16, String);

/// Asks the `connect` handler, if one takes this hub's `connect`, and applies its answer.
pub(crate) async fn admit(
    state: &HubState,
    req: &HttpRequest,
    hub: &str,
    token: &str,
    claims: TokenClaims,
    offered: &[String],
) -> Result<Admission, Refusal> {
    let mut admission = Admission {
        connection_id: names::new_connection_id(),
        user_id: claims.user_id,
        roles: claims.roles,
        groups: claims.groups,
        subprotocol: None,
        connection_state: None,
    };
    let Some(upstream) = state.upstream().filter(|u| u.wants_connect(hub)) else {
        return Ok(admission);
    };
    let identity = Call {
        event: "connect".to_owned(),
        system: true,
        hub: hub.to_owned(),
        connection_id: admission.connection_id.clone(),
        user_id: admission.user_id.clone(),
        subprotocol: None,
        body: (Bytes::new(), "application/json"),
        connection_state: None,
        reply: None,
    };
    let body = request_body(req, token, offered);
    let Some(reply) = upstream.connect(identity, &body) else {
        return Ok(admission);
    };
    let response = match reply.await {
        Ok(ConnectReply::Accepted(response)) => response,
        Ok(ConnectReply::Refused { status, reason }) => return Err((status, reason)),
        Err(_) => {
            return Err((
                500,
                "The connect event was abandoned: the hub is stopping".to_owned(),
            ));
        }
    };
    if let Some(user) = response.user_id.filter(|u| !u.is_empty()) {
        admission.user_id = Some(user);
    }
    if let Some(problem) = response
        .groups
        .iter()
        .find_map(|g| names::group_name_problem(g))
    {
        return Err((
            502,
            format!("The event handler's connect answer lists an invalid group: {problem}"),
        ));
    }
    for group in response.groups {
        if !admission.groups.contains(&group) {
            admission.groups.push(group);
        }
    }
    let cap = state.config.max_groups_per_connection;
    if admission.groups.len() > cap {
        return Err((
            502,
            format!(
                "The token and the event handler's connect answer list {} groups; a connection may be in at most {cap}",
                admission.groups.len()
            ),
        ));
    }
    admission.roles.extend(response.roles);
    if let Some(chosen) = response.subprotocol.filter(|p| !p.is_empty()) {
        match offered.iter().find(|o| o.eq_ignore_ascii_case(&chosen)) {
            Some(name) => admission.subprotocol = Some(name.clone()),
            None => {
                return Err((
                    502,
                    format!(
                        "The event handler chose the subprotocol `{chosen}`, which the client did not offer"
                    ),
                ));
            }
        }
    }
    admission.connection_state = response.connection_state.filter(|s| !s.is_empty());
    // With a connect handler, the service drops a connection that ends up with no user id
    // (protocol.md 8.2).
    if admission.user_id.is_none() {
        return Err((
            401,
            "Unauthorized: neither the token (sub) nor the connect event handler gave this connection a user id".to_owned(),
        ));
    }
    Ok(admission)
}

/// Every subprotocol the client offered, in its order and spelling.
pub(crate) fn offered_subprotocols(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `connect` event's body.
fn request_body(req: &HttpRequest, token: &str, offered: &[String]) -> Value {
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if name != "access_token" {
            query
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        if name == actix_web::http::header::AUTHORIZATION {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    json!({
        "claims": claims_of(token),
        "query": query,
        "headers": headers,
        "subprotocols": offered,
        "clientCertificates": [],
    })
}

/// The token's claims as the service passes them: each claim an array of strings (an array
/// claim element-wise, any other JSON value as its text). The token was validated already;
/// a payload that cannot be read gives no claims.
fn claims_of(token: &str) -> Map<String, Value> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .unwrap_or_default();
    payload
        .into_iter()
        .map(|(name, value)| {
            let texts: Vec<Value> = match value {
                Value::Array(items) => items.into_iter().map(text_of).collect(),
                other => vec![text_of(other)],
            };
            (name, Value::Array(texts))
        })
        .collect()
}

fn text_of(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_arrays_of_strings() {
        let payload = json!({"sub":"u","role":["a","b"],"exp":5,"webpubsub.group":"g"});
        let token = format!(
            "h.{}.s",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
        );
        let claims = Value::Object(claims_of(&token));
        assert_eq!(
            claims,
            json!({"sub":["u"],"role":["a","b"],"exp":["5"],"webpubsub.group":["g"]})
        );
        assert!(claims_of("not a token").is_empty());
    }
}
