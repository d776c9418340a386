//! The one error type of the service layer.

use std::time::Duration;

use crate::credential::CredentialError;

/// Longest excerpt of a service error body kept in a [`ServiceError::Status`]: 4 KiB. The
/// service's error bodies are a few hundred bytes; the bound keeps a misbehaving proxy's HTML
/// page out of logs.
pub const MAX_ERROR_BODY: usize = 4 * 1024;

/// What went wrong with a service call. No variant ever holds the access key or a bearer
/// token: the service's error body is scrubbed of both before it is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The connection string, endpoint, key or token options were refused.
    #[error("invalid credential: {0}")]
    Credential(#[from] CredentialError),

    /// An argument cannot make a valid request (an empty group name, a TTL above 300 s...).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why, and what to pass instead.
        reason: String,
    },

    /// The service answered with an error status (after retries, for the retried ones).
    #[error("{operation}: the service answered {status}{}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        /// The operation, such as `send_to_group`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// `x-ms-error-code`, or `code` of the JSON body.
        code: Option<String>,
        /// `message` of the JSON body.
        message: Option<String>,
        /// The body as received (UTF-8, lossy), at most [`MAX_ERROR_BODY`] bytes, scrubbed.
        body: String,
    },

    /// No answer: connecting, sending or reading failed on every attempt.
    #[error("{operation}: no answer from the service after {attempts} attempt(s): {reason}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        reason: String,
    },

    /// Every attempt timed out.
    #[error(
        "{operation}: no answer within {timeout:?} on each of {attempts} attempt(s); raise ServiceOptions::timeout if the service is slow"
    )]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },

    /// A success answer whose body is not what the API version promises.
    #[error("{operation}: unexpected answer from the service: {reason}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// What was wrong (never the body of a token answer).
        reason: String,
    },
}

impl ServiceError {
    /// The HTTP status, for [`ServiceError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ServiceError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a retry of the same call later could succeed (429, 408, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        match self {
            ServiceError::Status { status, .. } => super::retry::is_retriable_status(*status),
            ServiceError::Transport { .. } | ServiceError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Replaces every occurrence of each secret in `text` by `[REDACTED]`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(secret) {
            out = out.replace(secret, "[REDACTED]");
        }
    }
    out
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
