//! What can go wrong in the event handler layer: a setting that cannot work (found when the
//! handler is built), and a request the handler refuses (answered with a 4xx, never a panic).

use thiserror::Error;

/// The error of the event handler layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandlerError {
    /// An allowed endpoint is not an absolute URL with a host.
    #[error(
        "allowed endpoint `{endpoint}` is not usable ({reason}): give the service's endpoint, such as https://<name>.webpubsub.azure.com or http://127.0.0.1:8080 for the local hub"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The hub name is empty.
    #[error("the hub name is empty: give the hub whose events this handler takes, such as `chat`")]
    EmptyHub,
    /// The path does not start with `/`.
    #[error("the path `{0}` does not start with `/`: give one such as /api/webpubsub/hubs/chat/")]
    InvalidPath(String),
}

/// Why a request was refused: the HTTP status and a text that says what to do. Built by the
/// parser of `events.rs`, answered by the service in `mod.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{status}: {reason}")]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Refusal {
        Refusal::new(400, reason)
    }
}
