//! What can go wrong with a connection string, a client access URL or a token.

use thiserror::Error;

/// The error of the credential layer. Every message says what is wrong and what to do;
/// none ever contains an access key, an access token or a reconnection token (values that
/// a peer chose, such as an algorithm name or an audience, are shortened before they are kept).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    /// A `;`-separated part of a connection string has no `=`. The part itself is not
    /// shown: it may be a misplaced key.
    #[error(
        "connection string part {index} (counting from 0) has no `=`: write each part as Key=Value, separated by `;`"
    )]
    MalformedSegment {
        /// Index of the part among the `;`-separated parts.
        index: usize,
    },
    /// A connection string sets the same key twice.
    #[error("connection string sets `{key}` more than once: keep one")]
    DuplicateKey {
        /// The key, as this crate names it (`Endpoint`, `AccessKey` or `Port`).
        key: &'static str,
    },
    /// A connection string has no `Endpoint`.
    #[error(
        "connection string has no Endpoint: add Endpoint=https://<name>.webpubsub.azure.com (or http://127.0.0.1:<port> for the local hub)"
    )]
    MissingEndpoint,
    /// A connection string has no `AccessKey`, or an empty one.
    #[error(
        "connection string has no AccessKey (or an empty one): copy the whole connection string from the portal or from the hub's first output line"
    )]
    MissingAccessKey,
    /// The endpoint is not a usable URL.
    #[error(
        "endpoint is not usable ({reason}): use https://<name>.webpubsub.azure.com or http://127.0.0.1:<port>"
    )]
    InvalidEndpoint {
        /// Why.
        reason: String,
    },
    /// The endpoint's scheme is neither http nor https.
    #[error("endpoint scheme `{scheme}` is not supported: use http or https")]
    UnsupportedEndpointScheme {
        /// The scheme given.
        scheme: String,
    },
    /// `Port` is not a number from 1 to 65535. The value is not shown: a key pasted in
    /// the wrong place must not reach a log line.
    #[error("connection string Port is not a port number: use a number from 1 to 65535")]
    InvalidPort,
    /// A hub name that the service would refuse, or that would not fit in a URL path.
    #[error(
        "hub name is invalid ({reason}): start with a letter, then up to 127 letters, digits or _`,.[]"
    )]
    InvalidHub {
        /// Why.
        reason: &'static str,
    },
    /// A client access URL that cannot be used. The URL is not shown: it may hold a token.
    #[error(
        "client access URL is invalid ({reason}): use wss://<host>/client/hubs/<hub>?access_token=<token>"
    )]
    InvalidClientAccessUrl {
        /// Why.
        reason: String,
    },
    /// A client access URL whose scheme is not ws, wss, http or https.
    #[error(
        "client access URL scheme `{scheme}` is not supported: use wss (or ws for a local hub)"
    )]
    UnsupportedUrlScheme {
        /// The scheme given.
        scheme: String,
    },
    /// A token lifetime shorter than one second: the token would be expired when minted.
    #[error("token lifetime is shorter than one second: give a lifetime of at least one second")]
    InvalidLifetime,
    /// The clock given is before 1970, so no JWT time can be written.
    #[error("the time given is before 1970-01-01: fix the system clock")]
    ClockBeforeEpoch,
    /// A token that is not a well-formed JWT.
    #[error("token is malformed ({reason}): send a JWT as minted by a Web PubSub server SDK")]
    MalformedToken {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A token signed with another algorithm than HS256 (including `none`).
    #[error("token algorithm `{alg}` is not accepted: sign with HS256 and the access key")]
    WrongAlgorithm {
        /// The `alg` of the token's header (shortened).
        alg: String,
    },
    /// A token whose signature does not match the access key.
    #[error(
        "token signature does not match: sign with the AccessKey of this hub's connection string"
    )]
    BadSignature,
    /// A token without an `exp` claim.
    #[error("token has no `exp` claim: mint tokens with an expiry")]
    MissingExpiry,
    /// A token past its `exp` (plus the leeway).
    #[error("token expired at {expired_at} (now {now}, seconds since 1970): mint a new token")]
    Expired {
        /// The token's `exp`.
        expired_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// A token before its `nbf` (minus the leeway).
    #[error(
        "token is not valid before {not_before} (now {now}, seconds since 1970): check the clocks of the minting server and of the hub"
    )]
    NotYetValid {
        /// The token's `nbf`.
        not_before: u64,
        /// The time of the check.
        now: u64,
    },
    /// A token without an `aud` claim.
    #[error("token has no `aud` claim: mint the token for `{expected}`")]
    MissingAudience {
        /// The audience the token should have named.
        expected: String,
    },
    /// A token minted for another endpoint, hub or URL.
    #[error(
        "token audience `{found}` does not match `{expected}`: mint the token for this endpoint and hub"
    )]
    WrongAudience {
        /// The audience the token should have named.
        expected: String,
        /// The audience it named (shortened).
        found: String,
    },
    /// A user-supplied client access URL provider failed.
    #[error("the client access URL provider failed: {reason}")]
    Provider {
        /// The provider's description. Providers must not put tokens in it.
        reason: String,
    },
}

/// Shortens peer-chosen values kept in these errors (shared with the protocol layer).
pub(crate) use crate::protocol::error::shorten;
