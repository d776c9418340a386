//! Connection strings, client access URLs and tokens: where a client's URL comes from, and
//! how the hub checks the token it carries. No I/O here besides what a user's provider
//! callback does.
//!
//! - [`ConnectionString`]: `Endpoint=...;AccessKey=...;Port=...;Version=1.0;`, parsed as the
//!   official server SDKs parse it;
//! - [`mint_client_token`], [`mint_rest_token`]: HS256 tokens exactly as the server SDKs
//!   mint them (protocol.md 5.1, 5.3); [`TokenOptions`] says what a client token grants;
//! - [`validate_token`], [`audience_matches`]: the hub's side of the same tokens;
//! - [`ClientAccessUrl`]: the URL a client connects to,
//!   `wss://host/client/hubs/{hub}?access_token=...`;
//! - [`event_signature`], [`signature_matches`]: the `ce-signature` of the events the hub
//!   sends to an event handler, and the handler's check of it;
//! - [`Credential`]: a fixed URL, a connection string that mints a token per connection, or
//!   an async provider callback.
//!
//! Every type that holds a key or a token prints it as `[REDACTED]`.
//!
//! ```
//! use std::time::SystemTime;
//! use webpubsub_fleet::credential::{ConnectionString, TokenOptions, validate_token};
//!
//! let cs: ConnectionString =
//!     "Endpoint=http://127.0.0.1;Port=8080;AccessKey=abc=;Version=1.0;".parse()?;
//! let url = cs.client_access_url("chat", &TokenOptions::new().user_id("alice"), SystemTime::now())?;
//! assert_eq!(url.to_string(), "ws://127.0.0.1:8080/client/hubs/chat?access_token=[REDACTED]");
//!
//! // The hub's side.
//! let token = url.access_token().expect("minted URLs carry a token");
//! let claims = validate_token(token.expose(), cs.access_key(), &cs.client_audience("chat"), SystemTime::now())?;
//! assert_eq!(claims.user_id.as_deref(), Some("alice"));
//! # Ok::<(), webpubsub_fleet::credential::CredentialError>(())
//! ```

mod client_url;
mod connection_string;
mod error;
mod provider;
mod signature;
mod token;

pub use client_url::{
    ACCESS_TOKEN_PARAM, CONNECTION_ID_PARAM, ClientAccessUrl, RECONNECTION_TOKEN_PARAM,
    validate_hub_name,
};
pub use connection_string::ConnectionString;
pub use error::{CredentialError, PROVIDER_REASON_MAX, ProviderReason};
pub use provider::{Credential, UrlProvider};
pub use signature::{event_signature, signature_matches};
pub use token::{
    DEFAULT_REST_TOKEN_LIFETIME, DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LEN, TOKEN_LEEWAY, TokenClaims,
    TokenOptions, audience_matches, mint_client_token, mint_rest_token, validate_token,
};
