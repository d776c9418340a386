//! The client: one Web PubSub connection as an actix actor, behind a cheap clonable handle.
//!
//! [`Client`] is the handle for everyone (async methods); [`ClientActor`] and its messages
//! (re-exported in [`crate::actor`]) are the actix-native way in. The actor owns the socket
//! (its `transport` module is the only awc user) and the protocol state of [`crate::session`].
//!
//! Compared with the official clients: an operation in flight when the socket drops is resent
//! with its ack id after a recovery instead of failing; retries keep the operation's ack id, so
//! the service deduplicates them; `start()` resolves when `system/connected` arrived, not
//! when the socket opened; events reach callbacks, actix recipients and streams through
//! bounded queues with a documented slow-consumer policy.

mod actor;
mod dispatch;
mod error;
mod event;
mod messages;
mod options;
mod test_hooks;
mod transport;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use futures::Stream;
use tokio::sync::mpsc;

use crate::credential::{ClientAccessUrl, Credential};
use crate::protocol::{AckId, Outbound, Payload};

pub use actor::{ClientActor, ClientCounters};
pub use dispatch::{Callback, SubscriptionId};
pub use error::ClientError;
pub use event::{Event, EventKind, GroupMessage, ServerMessage, StopReason};
pub use messages::{
    ClientStatus, GetStatus, Operation, Start, Stop, SubscribeCallback, SubscribeRecipient,
    SubscribeStream, Unsubscribe,
};
pub use options::*;
#[doc(hidden)]
pub use test_hooks::PanicForTest;

/// Where a client is in its life (the official clients' states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Not started or stopped.
    Stopped,
    /// Waiting before a reconnect.
    Disconnected,
    /// Opening a connection.
    Connecting,
    /// Connected.
    Connected,
    /// Recovering the same connection after a drop.
    Recovering,
}

/// The connection a successful `start()` reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection id.
    pub connection_id: String,
    /// The user id, if the token named one.
    pub user_id: Option<String>,
}

/// The result of an acknowledged operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckResult {
    /// The ack id used (`None` for fire-and-forget).
    pub ack_id: Option<AckId>,
    /// The service had already processed this ack id (a retry that was deduplicated).
    pub duplicated: bool,
}

/// Options of one send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Do not deliver the message back to this connection (group sends only).
    pub no_echo: bool,
    /// Send without an ack id; resolves once written to the socket.
    pub fire_and_forget: bool,
    /// Use this ack id instead of the next one (to retry an operation that failed).
    pub ack_id: Option<AckId>,
}

impl SendOptions {
    /// Default options: acknowledged, echoed, next ack id.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `no_echo`.
    pub fn no_echo(mut self, on: bool) -> Self {
        self.no_echo = on;
        self
    }
    /// Sets `fire_and_forget`.
    pub fn fire_and_forget(mut self, on: bool) -> Self {
        self.fire_and_forget = on;
        self
    }
    /// Uses a given ack id.
    pub fn ack_id(mut self, ack_id: AckId) -> Self {
        self.ack_id = Some(ack_id);
        self
    }
}

/// Something told of every event inline, on the client's thread, before any queue: meant for
/// metrics and recorders that must see everything at load-test rates. It must be fast and must
/// not block; use a subscription for anything else.
pub trait Observer: Send + Sync + 'static {
    /// Called for every event of the client with this index.
    fn observe(&self, client_index: u64, event: &Event);
}

/// A handle to one client. Cheap to clone; the client lives while a handle does.
///
/// ```no_run
/// use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, SendOptions};
/// # async fn demo(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::from_url(url, ClientOptions::new())?;
/// client
///     .subscribe(EventKind::GroupMessage, |event| {
///         if let Event::GroupMessage(m) = event {
///             println!("{}: {:?}", m.group, m.data);
///         }
///     })
///     .await?;
/// client.start().await?;
/// client.join_group("chat").await?;
/// client.send_to_group("chat", "hello", SendOptions::new()).await?;
/// client.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    addr: Addr<ClientActor>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A stopped client on the current arbiter.
    pub fn new(credential: Credential, options: ClientOptions) -> Client {
        Client {
            addr: ClientActor::new(credential, options).start(),
        }
    }

    /// A stopped client on the given arbiter (fleets spread clients over one per core).
    pub fn new_on(
        arbiter: &ArbiterHandle,
        credential: Credential,
        options: ClientOptions,
    ) -> Client {
        Client {
            addr: ClientActor::start_in_arbiter(arbiter, move |_| {
                ClientActor::new(credential, options)
            }),
        }
    }

    /// A stopped client for a fixed client access URL (`wss://.../client/hubs/{hub}?access_token=...`).
    pub fn from_url(url: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let url = ClientAccessUrl::parse(url)?;
        Ok(Client::new(Credential::from_url(url), options))
    }

    /// Wraps an existing actor.
    pub fn from_addr(addr: Addr<ClientActor>) -> Client {
        Client { addr }
    }

    /// The actor, for actix applications.
    pub fn addr(&self) -> &Addr<ClientActor> {
        &self.addr
    }

    /// Connects; resolves once `system/connected` arrived.
    pub async fn start(&self) -> Result<ConnectionInfo, ClientError> {
        self.addr.send(Start).await?
    }

    /// Stops: pending operations fail with [`ClientError::Stopped`]; `stopped` is the last event.
    pub async fn stop(&self) -> Result<(), ClientError> {
        Ok(self.addr.send(Stop).await?)
    }

    async fn operation(
        &self,
        frame: Outbound,
        fire_and_forget: bool,
    ) -> Result<AckResult, ClientError> {
        self.addr
            .send(Operation {
                frame,
                fire_and_forget,
            })
            .await?
    }

    /// Joins a group (needs the `webpubsub.joinLeaveGroup` role or its per-group form).
    pub async fn join_group(&self, group: impl Into<String>) -> Result<AckResult, ClientError> {
        self.join_group_with(group, SendOptions::new()).await
    }

    /// Joins a group with options (ack id, fire-and-forget).
    pub async fn join_group_with(
        &self,
        group: impl Into<String>,
        options: SendOptions,
    ) -> Result<AckResult, ClientError> {
        let frame = Outbound::JoinGroup {
            group: group.into(),
            ack_id: options.ack_id,
        };
        self.operation(frame, options.fire_and_forget).await
    }

    /// Leaves a group.
    pub async fn leave_group(&self, group: impl Into<String>) -> Result<AckResult, ClientError> {
        self.leave_group_with(group, SendOptions::new()).await
    }

    /// Leaves a group with options.
    pub async fn leave_group_with(
        &self,
        group: impl Into<String>,
        options: SendOptions,
    ) -> Result<AckResult, ClientError> {
        let frame = Outbound::LeaveGroup {
            group: group.into(),
            ack_id: options.ack_id,
        };
        self.operation(frame, options.fire_and_forget).await
    }

    /// Publishes to a group: text (`&str`, `String`), JSON (`serde_json::Value`) or binary
    /// (`Vec<u8>`, `Bytes`).
    pub async fn send_to_group(
        &self,
        group: impl Into<String>,
        data: impl Into<Payload>,
        options: SendOptions,
    ) -> Result<AckResult, ClientError> {
        let frame = Outbound::SendToGroup {
            group: group.into(),
            ack_id: options.ack_id,
            no_echo: options.no_echo,
            data: data.into(),
        };
        self.operation(frame, options.fire_and_forget).await
    }

    /// Sends an event to the app server.
    pub async fn send_event(
        &self,
        event: impl Into<String>,
        data: impl Into<Payload>,
        options: SendOptions,
    ) -> Result<AckResult, ClientError> {
        let frame = Outbound::Event {
            event: event.into(),
            ack_id: options.ack_id,
            data: data.into(),
        };
        self.operation(frame, options.fire_and_forget).await
    }

    /// Calls `callback` for every event of one kind, on the client's callback actor. The
    /// subscription outlives reconnects and stops; a panic in the callback is caught and
    /// reported as [`Event::CallbackPanicked`].
    pub async fn subscribe(
        &self,
        kind: EventKind,
        callback: impl FnMut(&Event) + Send + 'static,
    ) -> Result<SubscriptionId, ClientError> {
        self.subscribe_callback(Some(kind), Box::new(callback))
            .await
    }

    /// Calls `callback` for every event.
    pub async fn subscribe_all(
        &self,
        callback: impl FnMut(&Event) + Send + 'static,
    ) -> Result<SubscriptionId, ClientError> {
        self.subscribe_callback(None, Box::new(callback)).await
    }

    async fn subscribe_callback(
        &self,
        kind: Option<EventKind>,
        callback: Callback,
    ) -> Result<SubscriptionId, ClientError> {
        Ok(self.addr.send(SubscribeCallback { kind, callback }).await?)
    }

    /// Delivers events (of one kind, or all) to an actix actor.
    pub async fn subscribe_recipient(
        &self,
        kind: Option<EventKind>,
        recipient: Recipient<Event>,
    ) -> Result<SubscriptionId, ClientError> {
        Ok(self
            .addr
            .send(SubscribeRecipient { kind, recipient })
            .await?)
    }

    /// An async stream of every event, with the client's queue capacity.
    pub async fn events(&self) -> Result<EventStream, ClientError> {
        self.events_of(None).await
    }

    /// An async stream of events of one kind (or all).
    pub async fn events_of(&self, kind: Option<EventKind>) -> Result<EventStream, ClientError> {
        self.stream(kind, None).await
    }

    /// An async stream with its own queue capacity.
    pub async fn events_with_capacity(
        &self,
        kind: Option<EventKind>,
        capacity: usize,
    ) -> Result<EventStream, ClientError> {
        self.stream(kind, Some(capacity)).await
    }

    async fn stream(
        &self,
        kind: Option<EventKind>,
        capacity: Option<usize>,
    ) -> Result<EventStream, ClientError> {
        let (id, receiver) = self.addr.send(SubscribeStream { kind, capacity }).await?;
        Ok(EventStream { id, receiver })
    }

    /// Removes a subscription; answers whether it existed.
    pub async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, ClientError> {
        Ok(self.addr.send(Unsubscribe(id)).await?)
    }

    /// The client's state and counters.
    pub async fn status(&self) -> Result<ClientStatus, ClientError> {
        Ok(self.addr.send(GetStatus).await?)
    }
}

/// A stream of a client's events. Dropping it unsubscribes.
pub struct EventStream {
    id: SubscriptionId,
    receiver: mpsc::Receiver<Event>,
}

impl EventStream {
    /// The subscription behind the stream.
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// Whether no event is queued right now.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// The next event; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Event>> {
        self.receiver.poll_recv(cx)
    }
}

/// How options hold an observer: shared by every client it watches.
pub(crate) type SharedObserver = Arc<dyn Observer>;
