//! What a client reports: one [`Event`] enum, delivered to callbacks, actix recipients and
//! async streams through one mechanism (see [`super::dispatch`]).

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{Payload, SequenceId};

use super::ClientError;

/// A message a group member received.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMessage {
    /// The group it was published to.
    pub group: String,
    /// The publisher's user id, when it has one.
    pub from_user_id: Option<String>,
    /// The payload.
    pub data: Payload,
    /// Sequence id on the reliable subprotocol.
    pub sequence_id: Option<SequenceId>,
}

/// A message from the server (REST send APIs or an event handler's response).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMessage {
    /// The payload.
    pub data: Payload,
    /// Sequence id on the reliable subprotocol.
    pub sequence_id: Option<SequenceId>,
}

/// Why a client stopped for good.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// `stop()` was called.
    Requested,
    /// The connection dropped and auto reconnect is off.
    ConnectionLost,
    /// Reconnecting failed as often as the reconnect policy allows; holds the last error.
    ReconnectGaveUp(ClientError),
    /// The first connection could not be opened; holds the error `start()` returned.
    StartFailed(ClientError),
}

impl StopReason {
    /// Whether the stop was a failure a supervisor may want to restart from.
    pub fn is_failure(&self) -> bool {
        !matches!(self, StopReason::Requested)
    }
}

/// Everything a client reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new connection is up (`system/connected` arrived). Not repeated after a recovery.
    Connected {
        /// The connection id.
        connection_id: String,
        /// The user id, if the token named one.
        user_id: Option<String>,
    },
    /// The connection is gone and was not recovered.
    Disconnected {
        /// The connection that ended, if one had been established.
        connection_id: Option<String>,
        /// The service's `system/disconnected` message, if it sent one.
        message: Option<String>,
    },
    /// The client stopped; no event follows.
    Stopped {
        /// Why.
        reason: StopReason,
    },
    /// A message from the server.
    ServerMessage(Arc<ServerMessage>),
    /// A message from a group this connection is in.
    GroupMessage(Arc<GroupMessage>),
    /// A group was rejoined on a new connection (its join was acked).
    Rejoined {
        /// The group.
        group: String,
    },
    /// A group could not be rejoined on a new connection.
    RejoinGroupFailed {
        /// The group.
        group: String,
        /// Why.
        error: ClientError,
    },
    /// The socket dropped; the client is recovering the same connection (reliable only).
    Recovering {
        /// The connection being recovered.
        connection_id: String,
    },
    /// The connection was recovered: same connection id, nothing lost.
    Recovered {
        /// The connection id.
        connection_id: String,
        /// How long it took from the drop to the recovered socket.
        after: Duration,
    },
    /// The client is about to open a new connection.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// The delay before this attempt.
        delay: Duration,
    },
    /// A subscriber's bounded queue was full, so events were dropped for it (newest dropped);
    /// follows the first event that fit again.
    SlowConsumer {
        /// Events dropped for that subscriber since the last report.
        dropped: u64,
    },
    /// A callback panicked; the client and the other callbacks go on.
    CallbackPanicked {
        /// The kind of event the callback was handling.
        kind: EventKind,
        /// The panic message.
        message: String,
    },
}

/// The kind of an [`Event`], to subscribe to one kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::Connected`].
    Connected,
    /// [`Event::Disconnected`].
    Disconnected,
    /// [`Event::Stopped`].
    Stopped,
    /// [`Event::ServerMessage`].
    ServerMessage,
    /// [`Event::GroupMessage`].
    GroupMessage,
    /// [`Event::Rejoined`].
    Rejoined,
    /// [`Event::RejoinGroupFailed`].
    RejoinGroupFailed,
    /// [`Event::Recovering`].
    Recovering,
    /// [`Event::Recovered`].
    Recovered,
    /// [`Event::Reconnecting`].
    Reconnecting,
    /// [`Event::SlowConsumer`].
    SlowConsumer,
    /// [`Event::CallbackPanicked`].
    CallbackPanicked,
}

impl Event {
    /// This event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Connected { .. } => EventKind::Connected,
            Event::Disconnected { .. } => EventKind::Disconnected,
            Event::Stopped { .. } => EventKind::Stopped,
            Event::ServerMessage(_) => EventKind::ServerMessage,
            Event::GroupMessage(_) => EventKind::GroupMessage,
            Event::Rejoined { .. } => EventKind::Rejoined,
            Event::RejoinGroupFailed { .. } => EventKind::RejoinGroupFailed,
            Event::Recovering { .. } => EventKind::Recovering,
            Event::Recovered { .. } => EventKind::Recovered,
            Event::Reconnecting { .. } => EventKind::Reconnecting,
            Event::SlowConsumer { .. } => EventKind::SlowConsumer,
            Event::CallbackPanicked { .. } => EventKind::CallbackPanicked,
        }
    }
}

impl actix::Message for Event {
    type Result = ();
}
