//! The actor's messages: what a [`super::Client`] handle sends to its [`super::ClientActor`].
//! Public for actix applications that talk to the actor directly.

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::protocol::{Outbound, Payload};

use super::dispatch::{Callback, SubscriptionId};
use super::event::{Event, EventKind};
use super::transport::SocketFault;
use super::{AckResult, ClientError, ClientState, ConnectionInfo, InvokeResponse};

/// Connect; resolves once `system/connected` arrived (or with the error that prevented it).
#[derive(Message, Debug, Default)]
#[rtype(result = "Result<ConnectionInfo, ClientError>")]
pub struct Start;

/// Stop: close the socket, fail pending operations with `Stopped`, emit `disconnected` and
/// `stopped`. Nothing is emitted after that.
#[derive(Message, Debug, Default)]
#[rtype(result = "()")]
pub struct Stop;

/// Send a join, leave, group message or event. With an ack id in the frame that id is used
/// (and kept across retries); without, the client assigns the next one.
#[derive(Message, Debug)]
#[rtype(result = "Result<AckResult, ClientError>")]
pub struct Operation {
    /// The frame (`JoinGroup`, `LeaveGroup`, `SendToGroup` or `Event`).
    pub frame: Outbound,
    /// Send without an ack id and resolve once written to the socket.
    pub fire_and_forget: bool,
}

/// Invoke a user event and wait for the event handler's reply (protocol.md 8.3). When
/// `cancel`'s sender is dropped before the answer, the client stops waiting and sends
/// `cancelInvocation` ([`super::Client::invoke_event`] drops it with its future).
#[derive(Message, Debug)]
#[rtype(result = "Result<InvokeResponse, ClientError>")]
pub struct Invoke {
    /// The user event's name.
    pub event: String,
    /// The payload.
    pub data: Payload,
    /// Dropped by the caller when it stops waiting.
    pub cancel: tokio::sync::oneshot::Receiver<()>,
}

/// Subscribe a callback (all kinds when `kind` is `None`).
#[derive(Message)]
#[rtype(result = "SubscriptionId")]
pub struct SubscribeCallback {
    /// The kind to receive, or every kind.
    pub kind: Option<EventKind>,
    /// The callback.
    pub callback: Callback,
}

/// Subscribe an actix recipient.
#[derive(Message)]
#[rtype(result = "SubscriptionId")]
pub struct SubscribeRecipient {
    /// The kind to receive, or every kind.
    pub kind: Option<EventKind>,
    /// The recipient; its mailbox capacity is its queue bound.
    pub recipient: Recipient<Event>,
}

/// Subscribe a bounded channel; answers with its receiving end.
#[derive(Message)]
#[rtype(result = "(SubscriptionId, mpsc::Receiver<Event>)")]
pub struct SubscribeStream {
    /// The kind to receive, or every kind.
    pub kind: Option<EventKind>,
    /// Queue capacity; `None` uses the client's `event_queue` option.
    pub capacity: Option<usize>,
}

/// Remove a subscription; answers whether it existed.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct Unsubscribe(pub SubscriptionId);

/// Ask for the client's state and counters.
#[derive(Message, Debug, Default)]
#[rtype(result = "ClientStatus")]
pub struct GetStatus;

/// A snapshot of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// Where the client is in its life.
    pub state: ClientState,
    /// The current connection id.
    pub connection_id: Option<String>,
    /// The user id of the current connection.
    pub user_id: Option<String>,
    /// Groups this client joined (rejoined on a new connection).
    pub groups: Vec<String>,
    /// Operations waiting for an ack or a socket.
    pub pending: usize,
    /// Counters over the client's life.
    pub counters: crate::session::ClientCounters,
}

/// Inject a fault into the client's own socket: chaos that works against any hub, the
/// service included ([`SocketFault`] says what each does). Answers whether there was an open
/// socket to fault (a client between sockets, or whose socket is already blackholed, is left
/// alone, and so is an invalid fault).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct InjectFault(pub SocketFault);
