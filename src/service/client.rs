//! [`ServiceClient`]: every data-plane operation of the REST API, with per-attempt bearer
//! tokens and the SDKs' retry policy.

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::{MAX_ERROR_BODY, ServiceError, scrub, truncate};
use super::http::{Answer, Failure, Http, Method, Request};
use super::options::{CloseOptions, ListOptions, MAX_RETRY_AFTER, SendOptions, ServiceOptions};
use super::retry;
use crate::credential::{
    ClientAccessUrl, ConnectionString, TokenOptions, mint_rest_token, validate_hub_name,
};
use crate::protocol::Secret;

/// The body of a send and its `Content-Type`: JSON, text or binary, which receivers get as
/// `dataType` `json`, `text` or `binary`.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// `application/json`: the bytes of one JSON value.
    Json(Bytes),
    /// `text/plain`.
    Text(String),
    /// `application/octet-stream`.
    Binary(Bytes),
}

impl Content {
    /// Serializes a value as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Content, ServiceError> {
        serde_json::to_vec(value)
            .map(|v| Content::Json(v.into()))
            .map_err(|e| ServiceError::InvalidArgument {
                name: "content",
                reason: format!("it does not serialize as JSON: {e}"),
            })
    }

    /// Text.
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text(text.into())
    }

    /// Bytes.
    pub fn binary(bytes: impl Into<Bytes>) -> Content {
        Content::Binary(bytes.into())
    }

    fn content_type(&self) -> &'static str {
        match self {
            Content::Json(_) => "application/json",
            Content::Text(_) => "text/plain",
            Content::Binary(_) => "application/octet-stream",
        }
    }

    fn into_body(self) -> Bytes {
        match self {
            Content::Json(b) | Content::Binary(b) => b,
            Content::Text(t) => t.into(),
        }
    }
}

impl From<serde_json::Value> for Content {
    fn from(value: serde_json::Value) -> Self {
        Content::Json(value.to_string().into())
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_owned())
    }
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Content::Text(text)
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Binary(bytes.into())
    }
}

impl fmt::Debug for Content {
    /// Kind and length only: a message may carry what its app considers private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match self {
            Content::Json(b) => ("Json", b.len()),
            Content::Text(t) => ("Text", t.len()),
            Content::Binary(b) => ("Binary", b.len()),
        };
        write!(f, "{kind}({len} bytes)")
    }
}

/// A permission a connection can be granted on a group (the `permission` path segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `sendToGroup`.
    SendToGroup,
    /// `joinLeaveGroup`.
    JoinLeaveGroup,
}

impl Permission {
    /// The name in the REST path.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SendToGroup => "sendToGroup",
            Permission::JoinLeaveGroup => "joinLeaveGroup",
        }
    }
}

/// One member of a group, as listed by the service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// The connection id.
    pub connection_id: String,
    /// The user, if the connection has one.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// One page of group members.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberPage {
    /// The members on this page.
    pub value: Vec<GroupMember>,
    /// Where the next page is, relative to the endpoint; `None` on the last page.
    #[serde(default)]
    pub next_link: Option<String>,
}

/// What a client token minted by the client itself looks like, as the SDKs'
/// `get_client_access_token` returns it: the token, the URL without it, and the URL with it.
#[derive(Clone, Debug)]
pub struct ClientAccessToken {
    /// The token (prints as `[REDACTED]`).
    pub token: Secret,
    /// `ws(s)://host/client/hubs/{hub}`.
    pub base_url: String,
    /// `base_url?access_token=...` (prints with the token redacted).
    pub url: ClientAccessUrl,
}

/// A client of the service's data-plane REST API for one hub: pushes to everyone, groups,
/// users and connections, manages group membership and permissions, closes connections and
/// mints client tokens. Every attempt of every call carries a freshly minted bearer token
/// whose audience is the request URL without query, as the server SDKs do.
///
/// awc is single-threaded: a `ServiceClient` lives on one actix (or `LocalSet`) thread. It
/// is cheap to clone (one connection pool per clone family).
///
/// ```no_run
/// # async fn demo() -> Result<(), webpubsub_fleet::service::ServiceError> {
/// use webpubsub_fleet::service::{SendOptions, ServiceClient, ServiceOptions};
///
/// let service = ServiceClient::from_connection_string(
///     "Endpoint=https://contoso.webpubsub.azure.com;AccessKey=...;Version=1.0;",
///     "chat",
///     ServiceOptions::new(),
/// )?;
/// service.send_to_all("hello", &SendOptions::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceClient {
    credential: ConnectionString,
    hub: String,
    options: ServiceOptions,
    http: Http,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("endpoint", &self.credential.endpoint_str())
            .field("hub", &self.hub)
            .field("access_key", &"[REDACTED]")
            .field("options", &self.options)
            .finish()
    }
}

/// What a call expects as success.
#[derive(Clone, Copy)]
enum Expect {
    /// Any 2xx.
    Success,
    /// 200 is true, 404 is false.
    Exists,
}

impl ServiceClient {
    /// A client for `hub` from a connection string
    /// (`Endpoint=https://x.webpubsub.azure.com;AccessKey=...;Version=1.0;`, optional `Port`).
    pub fn from_connection_string(
        connection_string: &str,
        hub: &str,
        options: ServiceOptions,
    ) -> Result<ServiceClient, ServiceError> {
        ServiceClient::new(ConnectionString::parse(connection_string)?, hub, options)
    }

    /// A client for `hub` from an endpoint (`https://x.webpubsub.azure.com`) and its key.
    pub fn from_endpoint(
        endpoint: &str,
        access_key: Secret,
        hub: &str,
        options: ServiceOptions,
    ) -> Result<ServiceClient, ServiceError> {
        let url = url::Url::parse(endpoint).map_err(|e| ServiceError::InvalidArgument {
            name: "endpoint",
            reason: format!("not a URL ({e}): give https://<name>.webpubsub.azure.com"),
        })?;
        ServiceClient::new(ConnectionString::new(url, access_key)?, hub, options)
    }

    /// A client for `hub` from a parsed connection string.
    pub fn new(
        credential: ConnectionString,
        hub: &str,
        options: ServiceOptions,
    ) -> Result<ServiceClient, ServiceError> {
        validate_hub_name(hub)?;
        if credential.access_key().is_empty() {
            return Err(crate::credential::CredentialError::MissingAccessKey.into());
        }
        options.check()?;
        Ok(ServiceClient {
            credential,
            hub: hub.to_owned(),
            options,
            http: Http::new(),
        })
    }

    /// The hub this client addresses.
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The endpoint, without trailing `/`.
    pub fn endpoint(&self) -> &str {
        self.credential.endpoint_str()
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    // ---- sends -------------------------------------------------------------------------

    /// `POST /api/hubs/{hub}/:send`: to every connection of the hub.
    pub async fn send_to_all(
        &self,
        content: impl Into<Content>,
        options: &SendOptions,
    ) -> Result<(), ServiceError> {
        self.send("send_to_all", &[":send"], content.into(), options)
            .await
    }

    /// `POST /api/hubs/{hub}/groups/{group}/:send`.
    pub async fn send_to_group(
        &self,
        group: &str,
        content: impl Into<Content>,
        options: &SendOptions,
    ) -> Result<(), ServiceError> {
        let group = name("group", group)?;
        self.send(
            "send_to_group",
            &["groups", group, ":send"],
            content.into(),
            options,
        )
        .await
    }

    /// `POST /api/hubs/{hub}/users/{user}/:send`.
    pub async fn send_to_user(
        &self,
        user_id: &str,
        content: impl Into<Content>,
        options: &SendOptions,
    ) -> Result<(), ServiceError> {
        let user = name("user_id", user_id)?;
        self.send(
            "send_to_user",
            &["users", user, ":send"],
            content.into(),
            options,
        )
        .await
    }

    /// `POST /api/hubs/{hub}/connections/{connection}/:send`.
    pub async fn send_to_connection(
        &self,
        connection_id: &str,
        content: impl Into<Content>,
        options: &SendOptions,
    ) -> Result<(), ServiceError> {
        let conn = name("connection_id", connection_id)?;
        self.send(
            "send_to_connection",
            &["connections", conn, ":send"],
            content.into(),
            options,
        )
        .await
    }

    async fn send(
        &self,
        operation: &'static str,
        path: &[&str],
        content: Content,
        options: &SendOptions,
    ) -> Result<(), ServiceError> {
        let mut query = Vec::new();
        for id in &options.excluded {
            query.push(("excluded", id.clone()));
        }
        if let Some(filter) = &options.filter {
            query.push(("filter", filter.clone()));
        }
        if let Some(ttl) = options.message_ttl_seconds {
            if ttl > 300 {
                return Err(ServiceError::InvalidArgument {
                    name: "message_ttl_seconds",
                    reason: format!("{ttl} is above 300, the service's maximum (0: never expires)"),
                });
            }
            query.push(("messageTtlSeconds", ttl.to_string()));
        }
        let content_type = content.content_type();
        self.call(
            operation,
            Method::Post,
            path,
            &query,
            Some(content_type),
            content.into_body(),
            Expect::Success,
        )
        .await
        .map(drop)
    }

    // ---- existence checks --------------------------------------------------------------

    /// `HEAD /api/hubs/{hub}/connections/{connection}`: whether it is connected.
    pub async fn connection_exists(&self, connection_id: &str) -> Result<bool, ServiceError> {
        let conn = name("connection_id", connection_id)?;
        self.exists("connection_exists", &["connections", conn], &[])
            .await
    }

    /// `HEAD /api/hubs/{hub}/groups/{group}`: whether it has a member.
    pub async fn group_exists(&self, group: &str) -> Result<bool, ServiceError> {
        let group = name("group", group)?;
        self.exists("group_exists", &["groups", group], &[]).await
    }

    /// `HEAD /api/hubs/{hub}/users/{user}`: whether the user has a connection.
    pub async fn user_exists(&self, user_id: &str) -> Result<bool, ServiceError> {
        let user = name("user_id", user_id)?;
        self.exists("user_exists", &["users", user], &[]).await
    }

    async fn exists(
        &self,
        operation: &'static str,
        path: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<bool, ServiceError> {
        let answer = self
            .call(
                operation,
                Method::Head,
                path,
                query,
                None,
                Bytes::new(),
                Expect::Exists,
            )
            .await?;
        Ok(answer.status == 200)
    }

    // ---- closes ------------------------------------------------------------------------

    /// `POST /api/hubs/{hub}/:closeConnections`.
    pub async fn close_all_connections(&self, options: &CloseOptions) -> Result<(), ServiceError> {
        self.close("close_all_connections", &[":closeConnections"], options)
            .await
    }

    /// `POST /api/hubs/{hub}/groups/{group}/:closeConnections`.
    pub async fn close_group_connections(
        &self,
        group: &str,
        options: &CloseOptions,
    ) -> Result<(), ServiceError> {
        let group = name("group", group)?;
        self.close(
            "close_group_connections",
            &["groups", group, ":closeConnections"],
            options,
        )
        .await
    }

    /// `POST /api/hubs/{hub}/users/{user}/:closeConnections`.
    pub async fn close_user_connections(
        &self,
        user_id: &str,
        options: &CloseOptions,
    ) -> Result<(), ServiceError> {
        let user = name("user_id", user_id)?;
        self.close(
            "close_user_connections",
            &["users", user, ":closeConnections"],
            options,
        )
        .await
    }

    /// `DELETE /api/hubs/{hub}/connections/{connection}?reason=`.
    pub async fn close_connection(
        &self,
        connection_id: &str,
        reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        let conn = name("connection_id", connection_id)?;
        let query: Vec<_> = reason
            .map(|r| ("reason", r.to_owned()))
            .into_iter()
            .collect();
        self.empty(
            "close_connection",
            Method::Delete,
            &["connections", conn],
            &query,
        )
        .await
    }

    async fn close(
        &self,
        operation: &'static str,
        path: &[&str],
        options: &CloseOptions,
    ) -> Result<(), ServiceError> {
        let mut query: Vec<_> = options
            .excluded
            .iter()
            .map(|id| ("excluded", id.clone()))
            .collect();
        if let Some(reason) = &options.reason {
            query.push(("reason", reason.clone()));
        }
        self.empty(operation, Method::Post, path, &query).await
    }

    /// A call with no body whose success carries nothing.
    async fn empty(
        &self,
        operation: &'static str,
        method: Method,
        path: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<(), ServiceError> {
        self.call(
            operation,
            method,
            path,
            query,
            None,
            Bytes::new(),
            Expect::Success,
        )
        .await
        .map(drop)
    }

    // ---- group membership --------------------------------------------------------------

    /// `PUT /api/hubs/{hub}/groups/{group}/connections/{connection}`. The service answers
    /// 404 for a connection that is not there.
    pub async fn add_connection_to_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let (group, conn) = (name("group", group)?, name("connection_id", connection_id)?);
        self.empty(
            "add_connection_to_group",
            Method::Put,
            &["groups", group, "connections", conn],
            &[],
        )
        .await
    }

    /// `DELETE /api/hubs/{hub}/groups/{group}/connections/{connection}`.
    pub async fn remove_connection_from_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let (group, conn) = (name("group", group)?, name("connection_id", connection_id)?);
        self.empty(
            "remove_connection_from_group",
            Method::Delete,
            &["groups", group, "connections", conn],
            &[],
        )
        .await
    }

    /// `DELETE /api/hubs/{hub}/connections/{connection}/groups`.
    pub async fn remove_connection_from_all_groups(
        &self,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let conn = name("connection_id", connection_id)?;
        self.empty(
            "remove_connection_from_all_groups",
            Method::Delete,
            &["connections", conn, "groups"],
            &[],
        )
        .await
    }

    /// `PUT /api/hubs/{hub}/users/{user}/groups/{group}`: every connection of the user joins.
    pub async fn add_user_to_group(&self, group: &str, user_id: &str) -> Result<(), ServiceError> {
        let (group, user) = (name("group", group)?, name("user_id", user_id)?);
        self.empty(
            "add_user_to_group",
            Method::Put,
            &["users", user, "groups", group],
            &[],
        )
        .await
    }

    /// `DELETE /api/hubs/{hub}/users/{user}/groups/{group}`.
    pub async fn remove_user_from_group(
        &self,
        group: &str,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let (group, user) = (name("group", group)?, name("user_id", user_id)?);
        self.empty(
            "remove_user_from_group",
            Method::Delete,
            &["users", user, "groups", group],
            &[],
        )
        .await
    }

    /// `DELETE /api/hubs/{hub}/users/{user}/groups`.
    pub async fn remove_user_from_all_groups(&self, user_id: &str) -> Result<(), ServiceError> {
        let user = name("user_id", user_id)?;
        self.empty(
            "remove_user_from_all_groups",
            Method::Delete,
            &["users", user, "groups"],
            &[],
        )
        .await
    }

    /// `POST /api/hubs/{hub}/:addToGroups`: every connection matching `filter` joins `groups`.
    pub async fn add_connections_to_groups(
        &self,
        groups: &[&str],
        filter: &str,
    ) -> Result<(), ServiceError> {
        self.groups_by_filter("add_connections_to_groups", ":addToGroups", groups, filter)
            .await
    }

    /// `POST /api/hubs/{hub}/:removeFromGroups`: every connection matching `filter` leaves
    /// `groups`.
    pub async fn remove_connections_from_groups(
        &self,
        groups: &[&str],
        filter: &str,
    ) -> Result<(), ServiceError> {
        self.groups_by_filter(
            "remove_connections_from_groups",
            ":removeFromGroups",
            groups,
            filter,
        )
        .await
    }

    async fn groups_by_filter(
        &self,
        operation: &'static str,
        action: &str,
        groups: &[&str],
        filter: &str,
    ) -> Result<(), ServiceError> {
        for group in groups {
            name("groups", group)?;
        }
        let body = serde_json::json!({ "groups": groups, "filter": filter });
        self.call(
            operation,
            Method::Post,
            &[action],
            &[],
            Some("application/json"),
            body.to_string().into(),
            Expect::Success,
        )
        .await
        .map(drop)
    }

    /// `GET /api/hubs/{hub}/groups/{group}/connections`, every page followed (up to
    /// `options.top` members). API version 2024-12-01 or later.
    pub async fn list_connections_in_group(
        &self,
        group: &str,
        options: &ListOptions,
    ) -> Result<Vec<GroupMember>, ServiceError> {
        let mut page = self.group_connections_page(group, options).await?;
        let mut members = Vec::new();
        loop {
            members.append(&mut page.value);
            if options.top.is_some_and(|top| members.len() >= top as usize) {
                members.truncate(options.top.unwrap_or(u32::MAX) as usize);
                return Ok(members);
            }
            match page.next_link.take() {
                None => return Ok(members),
                Some(link) => page = self.next_group_connections_page(&link).await?,
            }
        }
    }

    /// The first page of [`ServiceClient::list_connections_in_group`].
    pub async fn group_connections_page(
        &self,
        group: &str,
        options: &ListOptions,
    ) -> Result<GroupMemberPage, ServiceError> {
        let group = name("group", group)?;
        let mut query = Vec::new();
        if let Some(size) = options.max_page_size {
            if !(1..=200).contains(&size) {
                return Err(ServiceError::InvalidArgument {
                    name: "max_page_size",
                    reason: format!("{size} is outside 1..=200, the service's range"),
                });
            }
            query.push(("maxpagesize", size.to_string()));
        }
        if let Some(top) = options.top {
            if top == 0 {
                return Err(ServiceError::InvalidArgument {
                    name: "top",
                    reason: "top is at least 1".into(),
                });
            }
            query.push(("top", top.to_string()));
        }
        let answer = self
            .call(
                "list_connections_in_group",
                Method::Get,
                &["groups", group, "connections"],
                &query,
                None,
                Bytes::new(),
                Expect::Success,
            )
            .await?;
        page(&answer)
    }

    /// The page a [`GroupMemberPage::next_link`] points to. The link must stay on this
    /// client's endpoint: the bearer token is never sent elsewhere.
    pub async fn next_group_connections_page(
        &self,
        next_link: &str,
    ) -> Result<GroupMemberPage, ServiceError> {
        let endpoint = self.credential.endpoint();
        let url = endpoint
            .join(next_link)
            .ok()
            .filter(|u| u.origin() == endpoint.origin())
            .ok_or_else(|| ServiceError::InvalidResponse {
                operation: "list_connections_in_group",
                reason: "the nextLink is not a URL on this endpoint".into(),
            })?;
        let mut query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "api-version")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        query.push(("api-version".into(), self.options.api_version.clone()));
        let mut target = url.clone();
        target.set_query(None);
        let full = format!(
            "{}{}",
            target.as_str().trim_end_matches('/'),
            encode_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        );
        let answer = self
            .attempts(
                "list_connections_in_group",
                Method::Get,
                target.as_str().trim_end_matches('/'),
                &full,
                None,
                Bytes::new(),
                Expect::Success,
            )
            .await?;
        page(&answer)
    }

    // ---- permissions -------------------------------------------------------------------

    /// `PUT /api/hubs/{hub}/permissions/{permission}/connections/{connection}`, on one group
    /// (`target_name`) or, with `None`, on every group.
    pub async fn grant_permission(
        &self,
        permission: Permission,
        connection_id: &str,
        target_name: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (path, query) = self.permission_call(permission, connection_id, target_name)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        self.empty("grant_permission", Method::Put, &path, &query)
            .await
    }

    /// `DELETE` of the same path.
    pub async fn revoke_permission(
        &self,
        permission: Permission,
        connection_id: &str,
        target_name: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (path, query) = self.permission_call(permission, connection_id, target_name)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        self.empty("revoke_permission", Method::Delete, &path, &query)
            .await
    }

    /// `HEAD` of the same path: whether the connection has the permission.
    pub async fn has_permission(
        &self,
        permission: Permission,
        connection_id: &str,
        target_name: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let (path, query) = self.permission_call(permission, connection_id, target_name)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        self.exists("has_permission", &path, &query).await
    }

    #[allow(clippy::type_complexity)]
    fn permission_call(
        &self,
        permission: Permission,
        connection_id: &str,
        target_name: Option<&str>,
    ) -> Result<(Vec<String>, Vec<(&'static str, String)>), ServiceError> {
        let conn = name("connection_id", connection_id)?;
        let path = ["permissions", permission.as_str(), "connections", conn]
            .map(str::to_owned)
            .to_vec();
        let query = target_name
            .map(|t| ("targetName", t.to_owned()))
            .into_iter()
            .collect();
        Ok((path, query))
    }

    // ---- client tokens -----------------------------------------------------------------

    /// A client access token minted here with the access key, as the SDKs'
    /// `get_client_access_token` / `getClientAccessToken` do with a key credential (no call).
    pub fn client_access_token(
        &self,
        options: &TokenOptions,
    ) -> Result<ClientAccessToken, ServiceError> {
        let url = self
            .credential
            .client_access_url(&self.hub, options, SystemTime::now())?;
        let token = url
            .access_token()
            .ok_or_else(|| ServiceError::InvalidResponse {
                operation: "client_access_token",
                reason: "the minted URL has no token".into(),
            })?;
        let mut base = url.expose().clone();
        base.set_query(None);
        Ok(ClientAccessToken {
            token,
            base_url: base.to_string(),
            url,
        })
    }

    /// `POST /api/hubs/{hub}/:generateToken`: a client access token minted by the service
    /// (`userId`, `role`, `group`, `minutesToExpire`). The lifetime is rounded up to whole
    /// minutes.
    pub async fn generate_client_token(
        &self,
        options: &TokenOptions,
    ) -> Result<Secret, ServiceError> {
        let mut query = Vec::new();
        if let Some(user) = options.user_id.as_deref().filter(|u| !u.is_empty()) {
            query.push(("userId", user.to_owned()));
        }
        for role in &options.roles {
            query.push(("role", role.clone()));
        }
        query.push((
            "minutesToExpire",
            options.lifetime.as_secs().div_ceil(60).max(1).to_string(),
        ));
        for group in &options.groups {
            query.push(("group", group.clone()));
        }
        // Both SDKs send it (tests/service_wire.rs); `Default` is the Web PubSub protocol,
        // where a service could otherwise pick MQTT or Socket.IO in a later version.
        query.push(("clientType", "Default".to_owned()));
        let answer = self
            .call(
                "generate_client_token",
                Method::Post,
                &[":generateToken"],
                &query,
                None,
                Bytes::new(),
                Expect::Success,
            )
            .await?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: String,
        }
        // The body is a token: never quote it in the error.
        serde_json::from_slice::<TokenAnswer>(&answer.body)
            .map(|t| Secret::new(t.token))
            .map_err(|_| ServiceError::InvalidResponse {
                operation: "generate_client_token",
                reason: "the answer is not {\"token\": \"...\"}".into(),
            })
    }

    // ---- the call ----------------------------------------------------------------------

    /// Builds the URL of `/api/hubs/{hub}/{path...}` and runs the attempts.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &[&str],
        query: &[(&'static str, String)],
        content_type: Option<&'static str>,
        body: Bytes,
        expect: Expect,
    ) -> Result<Answer, ServiceError> {
        let mut without_query = format!("{}/api/hubs/{}", self.endpoint(), encode(&self.hub));
        for segment in path {
            without_query.push('/');
            // `:send` and the like are literal actions, not names.
            if segment.starts_with(':') {
                without_query.push_str(segment);
            } else {
                without_query.push_str(&encode(segment));
            }
        }
        let full = format!(
            "{without_query}{}",
            encode_query(
                query
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .chain([("api-version", self.options.api_version.as_str())])
            )
        );
        self.attempts(
            operation,
            method,
            &without_query,
            &full,
            content_type,
            body,
            expect,
        )
        .await
    }

    /// The attempts of one call: a fresh token each, the SDKs' retry policy between them.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        operation: &'static str,
        method: Method,
        audience: &str,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
        expect: Expect,
    ) -> Result<Answer, ServiceError> {
        let policy = &self.options.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let token = mint_rest_token(
                self.credential.access_key(),
                audience,
                self.options.token_lifetime,
                SystemTime::now(),
            )?;
            let sent = self
                .http
                .send(Request {
                    method,
                    url,
                    bearer: token.expose(),
                    content_type,
                    body: body.clone(),
                    timeout: self.options.timeout,
                    max_body: self.options.max_response_body,
                    user_agent: &self.options.user_agent,
                })
                .await;
            let secrets = [self.credential.access_key().expose(), token.expose()];
            let (error, retry_after) = match sent {
                Ok(answer) => {
                    let ok = match expect {
                        Expect::Success => (200..300).contains(&answer.status),
                        Expect::Exists => answer.status == 200 || answer.status == 404,
                    };
                    if ok {
                        return Ok(answer);
                    }
                    let retry_after = retry::retry_after(
                        |name| answer.header(name),
                        SystemTime::now(),
                        MAX_RETRY_AFTER,
                    );
                    let error = status_error(operation, &answer, &secrets);
                    if !retry::is_retriable_status(answer.status) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(Failure::Timeout) => (
                    ServiceError::Timeout {
                        operation,
                        attempts: attempt,
                        timeout: self.options.timeout,
                    },
                    None,
                ),
                Err(Failure::Transport(reason)) => (
                    ServiceError::Transport {
                        operation,
                        attempts: attempt,
                        reason: scrub(&reason, &secrets),
                    },
                    None,
                ),
            };
            if attempt > policy.max_retries {
                return Err(error);
            }
            let wait = policy.delay(attempt, rand::random::<f64>(), retry_after);
            tracing::debug!(operation, attempt, ?wait, %error, "service call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// A `Status` error from an answer, its body cut and scrubbed.
fn status_error(operation: &'static str, answer: &Answer, secrets: &[&str]) -> ServiceError {
    let text = String::from_utf8_lossy(&answer.body);
    let body = scrub(truncate(&text, MAX_ERROR_BODY), secrets);
    #[derive(Deserialize)]
    struct ErrorDetail {
        code: Option<String>,
        message: Option<String>,
    }
    let detail = serde_json::from_slice::<ErrorDetail>(&answer.body).ok();
    let code = answer
        .header("x-ms-error-code")
        .or_else(|| detail.as_ref().and_then(|d| d.code.clone()))
        .map(|c| scrub(truncate(&c, 256), secrets));
    let message = detail
        .and_then(|d| d.message)
        .map(|m| scrub(truncate(&m, MAX_ERROR_BODY), secrets));
    ServiceError::Status {
        operation,
        status: answer.status,
        code,
        message,
        body,
    }
}

fn page(answer: &Answer) -> Result<GroupMemberPage, ServiceError> {
    serde_json::from_slice(&answer.body).map_err(|e| ServiceError::InvalidResponse {
        operation: "list_connections_in_group",
        reason: format!("not a page of members: {e}"),
    })
}

/// Checks a name that goes in the path: the service refuses empty ones, and a name that is
/// only dots would be resolved away as a path segment.
fn name<'a>(what: &'static str, value: &'a str) -> Result<&'a str, ServiceError> {
    if value.is_empty() || value.chars().all(|c| c == '.') {
        return Err(ServiceError::InvalidArgument {
            name: what,
            reason: "it is empty or only dots; give the id or name itself".into(),
        });
    }
    Ok(value)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as `encodeURIComponent`
/// and Python's `quote(safe='')` do for path and query values.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(&encode(key));
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_query_values_are_percent_encoded() {
        assert_eq!(encode("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(
            encode_query([("filter", "userId eq 'x'"), ("n", "1")].into_iter()),
            "?filter=userId%20eq%20%27x%27&n=1"
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let client = ServiceClient::from_connection_string(
            "Endpoint=http://localhost;Port=8080;AccessKey=s3cr3t-key-value;Version=1.0;",
            "chat",
            ServiceOptions::new(),
        )
        .unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains("s3cr3t-key-value"), "{printed}");
        assert!(printed.contains("http://localhost:8080"), "{printed}");
    }
}
