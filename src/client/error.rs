//! The client layer's error type.

use std::time::Duration;

use thiserror::Error;

use crate::credential::CredentialError;
use crate::protocol::{AckError, AckErrorName, AckId};

use super::transport::OpenError;

/// Why a client operation failed. Errors of an operation that had an ack id carry it: retry
/// with the same id and the service deduplicates the operation.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClientError {
    /// The service refused the access token before the upgrade (HTTP 401).
    #[error(
        "the service refused the access token (HTTP 401): mint a new token, check the access key, the hub name and the token's expiry"
    )]
    Unauthorized,
    /// Another HTTP status before the upgrade.
    #[error(
        "the service answered HTTP {status} instead of upgrading to WebSocket: check the endpoint and hub name"
    )]
    HandshakeStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The service accepted the socket without choosing the requested subprotocol.
    #[error(
        "the endpoint accepted the socket but chose no Web PubSub subprotocol: is it a Web PubSub hub?"
    )]
    NoSubprotocol,
    /// The host name could not be resolved.
    #[error("could not resolve the endpoint's host name ({0}): check the endpoint")]
    Dns(String),
    /// The TCP connection failed.
    #[error("could not connect ({0}): check that the endpoint is reachable")]
    Tcp(String),
    /// The TLS handshake failed.
    #[error(
        "TLS handshake failed ({0}): check the certificate or the CA configured in the options"
    )]
    Tls(String),
    /// The WebSocket handshake was malformed.
    #[error("WebSocket handshake failed ({0})")]
    Handshake(String),
    /// `system/connected` did not arrive in time.
    #[error(
        "no connection within {0:?}: the endpoint is slow or not a Web PubSub hub; raise start_timeout or check it"
    )]
    StartTimeout(Duration),
    /// No client access URL could be had.
    #[error("no client access URL: {0}")]
    Credential(#[from] CredentialError),
    /// The service answered the operation with a failed ack.
    #[error("operation with ack id {ack_id} failed: {error}")]
    Ack {
        /// The ack id used; retry with it to be deduplicated.
        ack_id: AckId,
        /// The service's error name and message.
        error: AckError,
    },
    /// The connection ended (not recovered) before the ack arrived; the operation may or may
    /// not have taken effect.
    #[error(
        "the connection ended before ack id {ack_id} was acknowledged: retry with the same ack id to be deduplicated"
    )]
    ConnectionLost {
        /// The ack id used.
        ack_id: AckId,
    },
    /// No ack within the ack timeout.
    #[error(
        "no ack for ack id {ack_id} within {after:?}: retry with the same ack id to be deduplicated"
    )]
    AckTimeout {
        /// The ack id used.
        ack_id: AckId,
        /// The timeout.
        after: Duration,
    },
    /// The client was stopped.
    #[error("the client stopped{}", ack_id.map(|id| format!(" before ack id {id} was acknowledged")).unwrap_or_default())]
    Stopped {
        /// The ack id of the operation, if it had one.
        ack_id: Option<AckId>,
    },
    /// The client has not been started.
    #[error("the client is not started: call start() first")]
    NotStarted,
    /// A fire-and-forget operation found no open socket.
    #[error(
        "no open connection for a fire-and-forget operation or an invocation: wait for `connected` (or send with an ack)"
    )]
    NotConnected,
    /// Too many operations are waiting for acks.
    #[error("{max} operations are already waiting for acks: await some before sending more")]
    TooManyPending {
        /// The `max_pending` option.
        max: usize,
    },
    /// The event handler's side answered an invocation with `success: false`: the handler
    /// failed or timed out (`InvocationFailed`), there is none, or the service refused the
    /// request (`BadRequest`, `TooManyInvocations`, `Duplicate`).
    #[error("invocation {invocation_id} failed: {error}")]
    InvokeFailed {
        /// The invocation id the client used.
        invocation_id: String,
        /// The service's error name and message.
        error: AckError,
    },
    /// No `invokeResponse` within the invoke timeout; the client sent `cancelInvocation`.
    #[error(
        "no response to invocation {invocation_id} within {after:?}: it was cancelled; the handler may still have run it"
    )]
    InvokeTimeout {
        /// The invocation id the client used.
        invocation_id: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection ended (not recovered) before the invocation's response; the handler may
    /// or may not have run it.
    #[error(
        "the connection ended before invocation {invocation_id} was answered: the handler may or may not have run it"
    )]
    InvocationLost {
        /// The invocation id the client used.
        invocation_id: String,
    },
    /// The client's subprotocol cannot carry `invoke` (protocol.md 8.3 defines it for JSON).
    #[error(
        "invoke_event needs a JSON subprotocol; {0} has no invoke frames: use json.reliable.webpubsub.azure.v1 or json.webpubsub.azure.v1"
    )]
    InvokeUnsupported(crate::protocol::Subprotocol),
    /// The client's actor is gone (its arbiter stopped, or its last handle was dropped).
    #[error(
        "the client's actor is gone: its arbiter stopped or its last Client handle was dropped"
    )]
    ActorGone,
    /// `Client::new` was called outside an actix `System`: the client is an actix actor and
    /// needs its runtime.
    #[error(
        "no actix System runs on this thread: create clients under #[actix::main], #[actix_rt::main] or #[actix_web::main] (or inside actix_rt::System::new().block_on), not under a plain #[tokio::main]; or use Client::new_on with an arbiter"
    )]
    NoActixSystem,
}

impl ClientError {
    /// The ack id the failed operation used, if any.
    pub fn ack_id(&self) -> Option<AckId> {
        match self {
            ClientError::Ack { ack_id, .. }
            | ClientError::ConnectionLost { ack_id }
            | ClientError::AckTimeout { ack_id, .. } => Some(*ack_id),
            ClientError::Stopped { ack_id } => *ack_id,
            _ => None,
        }
    }

    /// Whether the same call could succeed later with nothing changed but time: the
    /// connection or the service had a passing failure, or the client was busy. Retry an
    /// operation that failed transiently with the same ack id ([`ClientError::ack_id`]) and
    /// the service deduplicates it. `false` means a retry would hit the same error: a refused
    /// token, a missing role, a bad endpoint or option, a stopped client.
    ///
    /// An `Ack` error is transient for the names the client itself retries
    /// (`InternalServerError`, `Timeout`); a credential error only when an async URL provider
    /// failed (a token server may answer next time).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Ack { error, .. } => ack_is_transient(&error.name),
            ClientError::HandshakeStatus { status } => {
                !(400..500).contains(status) || matches!(status, 408 | 429)
            }
            ClientError::Credential(error) => matches!(error, CredentialError::Provider { .. }),
            ClientError::Dns(_)
            | ClientError::Tcp(_)
            | ClientError::Handshake(_)
            | ClientError::StartTimeout(_)
            | ClientError::ConnectionLost { .. }
            | ClientError::AckTimeout { .. }
            | ClientError::NotConnected
            | ClientError::TooManyPending { .. }
            | ClientError::InvokeTimeout { .. }
            | ClientError::InvocationLost { .. } => true,
            ClientError::InvokeFailed { error, .. } => {
                ack_is_transient(&error.name) || error.name.as_str() == "TooManyInvocations"
            }
            ClientError::Unauthorized
            | ClientError::NoSubprotocol
            | ClientError::Tls(_)
            | ClientError::Stopped { .. }
            | ClientError::NotStarted
            | ClientError::ActorGone
            | ClientError::InvokeUnsupported(_)
            | ClientError::NoActixSystem => false,
        }
    }

    /// The error for a socket that could not be opened within `timeout`.
    pub(crate) fn from_open(e: OpenError, timeout: Duration) -> ClientError {
        match e {
            OpenError::Status(401) => ClientError::Unauthorized,
            OpenError::Status(status) => ClientError::HandshakeStatus { status },
            OpenError::Dns(s) => ClientError::Dns(s),
            OpenError::Tcp(s) => ClientError::Tcp(s),
            OpenError::Tls(s) => ClientError::Tls(s),
            OpenError::Timeout => ClientError::StartTimeout(timeout),
            OpenError::Handshake(s) => ClientError::Handshake(s),
            OpenError::NoSubprotocol => ClientError::NoSubprotocol,
        }
    }

    pub(crate) fn from_close(code: Option<u16>) -> ClientError {
        ClientError::Handshake(match code {
            Some(code) => format!("the socket closed with code {code} before system/connected"),
            None => "the socket closed before system/connected".to_owned(),
        })
    }
}

/// Whether a failed ack's error name is a passing service failure, worth a retry with the same
/// ack id: `InternalServerError`, and `Timeout` (an event handler that did not answer in time).
pub(crate) fn ack_is_transient(name: &AckErrorName) -> bool {
    // One rule for both: the session retries exactly what this calls transient.
    crate::session::ack_is_transient(name)
}

impl From<actix::MailboxError> for ClientError {
    fn from(_: actix::MailboxError) -> Self {
        ClientError::ActorGone
    }
}
