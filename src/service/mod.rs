//! The server side of Azure Web PubSub in Rust: [`ServiceClient`] calls the service's
//! data-plane REST API (protocol.md 6) as the official service SDKs do, to push to everyone,
//! groups, users and connections, manage groups and permissions, close connections and mint
//! client tokens. It works the same against the real service and the local hub.
//!
//! - [`ServiceClient`]: one hub; built from a connection string or an endpoint and key;
//! - [`ServiceOptions`]: API version, [`RetryPolicy`], timeout, token lifetime;
//! - [`SendOptions`], [`CloseOptions`], [`ListOptions`]: per-call `filter`, `excluded`,
//!   `messageTtlSeconds`, `reason`, paging;
//! - [`ServiceError`]: the one error type; it carries the status and the service's error body.
//!
//! Layering: this module uses `credential/` (connection strings, tokens) and `protocol/`
//! (`Secret`), never `hub/` or `client/`. Only `service/http.rs` names awc. Every attempt
//! carries a freshly minted HS256 bearer token whose `aud` is the request URL without query
//! (protocol.md 5.3). The key and tokens never appear in `Debug`, `Display`, errors or logs.
//!
//! ```no_run
//! use webpubsub_fleet::credential::TokenOptions;
//! use webpubsub_fleet::service::{Content, SendOptions, ServiceClient, ServiceOptions};
//!
//! # async fn demo() -> Result<(), webpubsub_fleet::service::ServiceError> {
//! let service = ServiceClient::from_connection_string(
//!     "Endpoint=https://contoso.webpubsub.azure.com;AccessKey=...;Version=1.0;",
//!     "chat",
//!     ServiceOptions::new(),
//! )?;
//! // A URL a browser or a `client::Client` connects with.
//! let access = service.client_access_token(&TokenOptions::new().user_id("alice"))?;
//! println!("connect to {}", access.url); // the token prints as [REDACTED]
//! service.send_to_all(Content::json(&serde_json::json!({"hello": "world"}))?, &SendOptions::new()).await?;
//! service.send_to_user("alice", "hi alice", &SendOptions::new().message_ttl_seconds(60)).await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod http;
mod options;
mod retry;

pub use client::{
    ClientAccessToken, Content, GroupMember, GroupMemberPage, Permission, ServiceClient,
};
pub use error::{MAX_ERROR_BODY, ServiceError};
pub use options::{
    CloseOptions, DEFAULT_API_VERSION, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_TIMEOUT, ListOptions,
    MAX_RETRY_AFTER, SendOptions, ServiceOptions,
};
pub use retry::RetryPolicy;
