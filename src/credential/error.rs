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
        /// The provider's description, redacted when shown: a provider that passes on an
        /// HTTP error body or a URL may carry a token in it.
        reason: ProviderReason,
    },
}

/// Shortens peer-chosen values kept in these errors (shared with the protocol layer).
pub(crate) use crate::protocol::error::shorten;

/// Longest provider reason shown, in characters.
pub const PROVIDER_REASON_MAX: usize = 300;

/// Why a URL provider failed, in its own words. Shown (`Display` and `Debug`) with
/// anything that looks like a secret replaced by `<redacted>` (values of `access_token=`,
/// `AccessKey=`, `token=`, `key=`, `sig=`, `password=`; what follows `Bearer`; JWT-shaped
/// words) and cut to [`PROVIDER_REASON_MAX`] characters; [`ProviderReason::as_str`] has the
/// original for code that matches on it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderReason(String);

impl ProviderReason {
    /// The reason as the provider gave it (not redacted: do not log it).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<T: Into<String>> From<T> for ProviderReason {
    fn from(reason: T) -> Self {
        ProviderReason(reason.into())
    }
}

impl std::fmt::Display for ProviderReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shorten(&redact_secrets(&self.0), PROVIDER_REASON_MAX))
    }
}

impl std::fmt::Debug for ProviderReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

/// Keys whose values are secrets in URLs, connection strings and form bodies.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "accesskey",
    "token",
    "key",
    "sig",
    "signature",
    "password",
    "secret",
];

/// Replaces what looks like a secret in free text with `<redacted>`.
pub(crate) fn redact_secrets(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || "-_.+/=%".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut redact_next = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !is_word(c) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        if std::mem::take(&mut redact_next) {
            out.push_str("<redacted>");
        } else if let Some((key, _)) = word
            .split_once('=')
            .filter(|(k, _)| SECRET_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s)))
        {
            out.push_str(key);
            out.push_str("=<redacted>");
        } else if looks_like_jwt(word) {
            out.push_str("<redacted>");
        } else {
            redact_next = word.eq_ignore_ascii_case("bearer");
            out.push_str(word);
        }
    }
    out
}

/// Three dot-separated base64url parts, the first two long enough to be a JWT's header and
/// claims.
fn looks_like_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].len() >= 10
        && parts[1].len() >= 10
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_reasons_are_redacted_when_shown() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJodHRwOi8vaCJ9.c2lnbmF0dXJl";
        let reason = format!(
            "negotiate failed: GET https://h/negotiate?user=a&access_token=s3cr3t&x=1 \
             said 401 (Authorization: Bearer abc.def; token {jwt}; AccessKey=k3y;Version=1.0)"
        );
        let error = CredentialError::Provider {
            reason: reason.as_str().into(),
        };
        for shown in [error.to_string(), format!("{error:?}")] {
            for secret in ["s3cr3t", "abc.def", "eyJhbGci", "k3y"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("access_token=<redacted>"), "{shown}");
            assert!(
                shown.contains("user=a&") && shown.contains("said 401"),
                "{shown}"
            );
        }
        let CredentialError::Provider { reason: kept } = &error else {
            unreachable!()
        };
        assert_eq!(kept.as_str(), reason, "the original stays for code");
        let long = CredentialError::Provider {
            reason: "x".repeat(10_000).into(),
        };
        assert!(long.to_string().len() < PROVIDER_REASON_MAX + 64);
    }
}
