//! The fleet layer's error type.

use thiserror::Error;

use crate::client::ClientError;
use crate::credential::CredentialError;

/// Why a fleet could not start or answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FleetError {
    /// The process may not open enough file descriptors for the clients asked for.
    #[error(
        "{requested} clients need about {needed} file descriptors but the soft limit is {soft_limit} ({open_now} open already), so at most {fit} clients fit: raise the limit (`ulimit -n`, hard limit {hard_limit}) or run fewer clients"
    )]
    TooManyClients {
        /// Clients asked for.
        requested: u64,
        /// Clients that fit under the limit.
        fit: u64,
        /// File descriptors the requested clients would need.
        needed: u64,
        /// `RLIMIT_NOFILE` soft limit.
        soft_limit: u64,
        /// `RLIMIT_NOFILE` hard limit.
        hard_limit: u64,
        /// Descriptors the process held when the fleet started.
        open_now: u64,
    },
    /// Clients would need more loopback source addresses than 127.0.0.0/8 offers.
    #[error(
        "{requested} clients need more than the {max} loopback source addresses: run fewer clients"
    )]
    TooManyForLoopback {
        /// Clients asked for.
        requested: u64,
        /// Source addresses available.
        max: u64,
    },
    /// The options are inconsistent.
    #[error("invalid fleet options: {0}")]
    InvalidOptions(String),
    /// An identity template has a placeholder the fleet does not know.
    #[error(
        "identity template `{template}` uses `{{{placeholder}}}`: only {{i}} (client), {{u}} (user) and {{g}} (group) are known"
    )]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// The unknown placeholder, without braces.
        placeholder: String,
    },
    /// The target could not give a client credential (bad hub name, bad connection string).
    #[error("cannot build client credentials: {0}")]
    Credential(#[from] CredentialError),
    /// A client call failed.
    #[error("client {index}: {error}")]
    Client {
        /// The client's index.
        index: u64,
        /// What failed.
        error: ClientError,
    },
    /// The fleet's manager actor is gone (the fleet was stopped or its system shut down).
    #[error("the fleet's manager is gone: it was stopped, or its actix system shut down")]
    ManagerGone,
}

impl From<actix::MailboxError> for FleetError {
    fn from(_: actix::MailboxError) -> Self {
        FleetError::ManagerGone
    }
}
