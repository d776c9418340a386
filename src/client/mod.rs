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
mod outputs;
mod test_hooks;
mod transport;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use futures::Stream;
use tokio::sync::{mpsc, watch};

use crate::credential::{ClientAccessUrl, Credential};
use crate::protocol::{AckId, Outbound, Payload};

pub use crate::session::ClientCounters;
pub use actor::ClientActor;
pub use dispatch::{Callback, SubscriptionId};
pub use error::ClientError;
pub use event::{Event, EventKind, GroupMessage, ServerMessage, StopReason};
pub use messages::{
    ClientStatus, GetStatus, Invoke, Operation, Start, Stop, SubscribeCallback, SubscribeRecipient,
    SubscribeStream, Unsubscribe,
};
pub use options::*;
#[doc(hidden)]
pub use test_hooks::PanicForTest;
// Chaos against any hub (issue 8, helper wa).
pub use messages::InjectFault;
pub use transport::SocketFault;

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

/// The event handler's reply to [`Client::invoke_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeResponse {
    /// The invocation id the client used.
    pub invocation_id: String,
    /// The reply body with its data type (from the handler's `Content-Type`); `None` when the
    /// handler answered without a body.
    pub data: Option<Payload>,
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

/// A handle to one client. Cheap to clone.
///
/// # Lifetime: the last handle stops the client
///
/// The `Client` values made by one constructor ([`Client::new`], [`Client::new_on`],
/// [`Client::from_url`]) and all their clones are the client's *handles*; so are the ones
/// [`Client::from_addr`] makes for the same actor. When the last of them is dropped, the
/// client does what [`Client::stop`] does (pending operations fail with
/// [`ClientError::Stopped`], subscribers get `disconnected` and `stopped`, the close frame is
/// sent) and then its actor ends, at most one second later (the closing handshake's bound):
/// its socket is closed, its timers, callbacks and streams end, and its mailbox closes.
///
/// What is *not* a handle, and does not keep a client alive: an `Addr<ClientActor>` (from
/// [`Client::addr`], or the actor's own address held by its callback actor), an
/// [`EventStream`], a subscription, a [`WeakClient`]. A handle captured by one of the client's
/// own callbacks would keep the client alive for ever (the callback lives in the client): let
/// such a callback capture [`Client::downgrade`] instead. A [`crate::fleet::Fleet`] holds one handle of each of its
/// clients, so its clients live as long as the fleet does (or longer, while you hold a handle
/// it gave you). An actor you start yourself with `ClientActor::new(..).start()` has no
/// handles until [`Client::from_addr`] makes one; until then it is yours to [`Stop`].
///
/// The client runs on the actix runtime: create it inside an actix `System` (for example
/// under `#[actix::main]`, `#[actix_rt::main]` or `#[actix_web::main]`); its actor lives on
/// the arbiter that created it (or the one given to [`Client::new_on`]).
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
    lease: Arc<Lease>,
    status: watch::Receiver<StatusSnapshot>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// One family of handles: shared by a handle and its clones, it tells the actor when the last
/// of them is gone. The actor counts the families it handed out ([`AcquireHandle`]).
struct Lease {
    addr: Addr<ClientActor>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // `do_send` ignores the mailbox bound and never blocks: a drop must not wait. If the
        // actor is already gone there is nothing to release.
        self.addr.do_send(ReleaseHandle);
    }
}

/// What the synchronous accessors read; the actor publishes it whenever its state or its
/// connection changes, before it answers `start()` or emits the event that tells of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusSnapshot {
    pub(crate) state: ClientState,
    pub(crate) connection_id: Option<String>,
    pub(crate) user_id: Option<String>,
}

impl StatusSnapshot {
    pub(crate) const STOPPED: StatusSnapshot = StatusSnapshot {
        state: ClientState::Stopped,
        connection_id: None,
        user_id: None,
    };
}

/// A new handle family for an actor: counts it, answers the status channel (`None` once the
/// last handle was released and the actor is ending).
pub(crate) struct AcquireHandle;

impl actix::Message for AcquireHandle {
    type Result = Option<watch::Receiver<StatusSnapshot>>;
}

/// A handle family is gone; the last one stops the client and ends its actor.
pub(crate) struct ReleaseHandle;

impl actix::Message for ReleaseHandle {
    type Result = ();
}

impl Client {
    /// A stopped client on the current arbiter.
    ///
    /// Must be called inside an actix `System` (see the type's docs), or it fails with
    /// [`ClientError::NoActixSystem`].
    pub fn new(credential: Credential, options: ClientOptions) -> Result<Client, ClientError> {
        // Without a System, starting the actor would panic deep in tokio ("spawn_local called
        // from outside of a LocalSet"): say what to do instead.
        if actix::System::try_current().is_none() {
            return Err(ClientError::NoActixSystem);
        }
        let (status_tx, status) = watch::channel(StatusSnapshot::STOPPED);
        let actor = ClientActor::new(credential, options).with_first_handle(status_tx);
        Ok(Client::leased(actor.start(), status))
    }

    /// A stopped client on the given arbiter (fleets spread clients over one per core).
    pub fn new_on(
        arbiter: &ArbiterHandle,
        credential: Credential,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        // The actor is not `Send` once started; it is built on its arbiter, counted as
        // handled from birth, so no message to it can come before its first handle.
        let (status_tx, status) = watch::channel(StatusSnapshot::STOPPED);
        let addr = ClientActor::start_in_arbiter(arbiter, move |_| {
            ClientActor::new(credential, options).with_first_handle(status_tx)
        });
        Ok(Client::leased(addr, status))
    }

    /// A stopped client for a fixed client access URL (`wss://.../client/hubs/{hub}?access_token=...`).
    pub fn from_url(url: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let url = ClientAccessUrl::parse(url)?;
        Client::new(Credential::from_url(url), options)
    }

    /// A handle for an actor you hold (an actix application that started `ClientActor`
    /// itself). It joins the actor's handles: from now on the actor stops when the last
    /// handle is dropped (see the type's docs). Fails with [`ClientError::ActorGone`] when
    /// the actor has ended or its last handle was already dropped.
    pub async fn from_addr(addr: Addr<ClientActor>) -> Result<Client, ClientError> {
        let status = addr
            .send(AcquireHandle)
            .await?
            .ok_or(ClientError::ActorGone)?;
        Ok(Client::leased(addr, status))
    }

    fn leased(addr: Addr<ClientActor>, status: watch::Receiver<StatusSnapshot>) -> Client {
        Client {
            lease: Arc::new(Lease { addr }),
            status,
        }
    }

    /// A reference that does not keep the client alive, for the client's own callbacks (see
    /// the type's docs); [`WeakClient::upgrade`] gives a handle while another one exists.
    pub fn downgrade(&self) -> WeakClient {
        WeakClient {
            lease: Arc::downgrade(&self.lease),
            status: self.status.clone(),
        }
    }

    /// The actor, for actix applications. An `Addr` is not a handle: it does not keep the
    /// client alive.
    pub fn addr(&self) -> &Addr<ClientActor> {
        &self.lease.addr
    }

    /// Where the client is in its life, without a round trip to its actor (a read of a value
    /// the actor publishes; it never blocks on the actor). After `start()` resolved it is
    /// [`ClientState::Connected`] until the next event says otherwise.
    pub fn state(&self) -> ClientState {
        self.status.borrow().state
    }

    /// Whether a connection is up: true from `system/connected` (and from a confirmed
    /// recovery) until the next `disconnected` or `recovering`. The Python client's
    /// `is_connected()` is true from the socket's open instead. Cheap and synchronous, like
    /// [`Client::state`].
    pub fn is_connected(&self) -> bool {
        self.state() == ClientState::Connected
    }

    /// The id of the current connection, if one is up or being recovered. Cheap and
    /// synchronous, like [`Client::state`].
    pub fn connection_id(&self) -> Option<String> {
        self.status.borrow().connection_id.clone()
    }

    /// The user id of the current connection, if its token named one.
    pub fn user_id(&self) -> Option<String> {
        self.status.borrow().user_id.clone()
    }

    /// Connects; resolves once `system/connected` arrived.
    pub async fn start(&self) -> Result<ConnectionInfo, ClientError> {
        self.addr().send(Start).await?
    }

    /// Stops: pending operations fail with [`ClientError::Stopped`]; `stopped` is the last event.
    pub async fn stop(&self) -> Result<(), ClientError> {
        Ok(self.addr().send(Stop).await?)
    }

    async fn operation(
        &self,
        frame: Outbound,
        fire_and_forget: bool,
    ) -> Result<AckResult, ClientError> {
        self.addr()
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

    /// Invokes the user event `event` and waits for the event handler's reply (`invoke` and
    /// `invokeResponse`, protocol.md 8.3; JSON subprotocols only). Fails with
    /// [`ClientError::InvokeFailed`] when the service answers `success: false`,
    /// [`ClientError::InvokeTimeout`] after the `invoke_timeout` option,
    /// [`ClientError::InvocationLost`] when the connection ends unrecovered and
    /// [`ClientError::Stopped`] on [`Client::stop`]. Dropping the future, a timeout and a stop
    /// send `cancelInvocation`. An invocation is never resent: it needs an open connection
    /// ([`ClientError::NotConnected`] otherwise).
    pub async fn invoke_event(
        &self,
        event: impl Into<String>,
        data: impl Into<Payload>,
    ) -> Result<InvokeResponse, ClientError> {
        // Held until this future ends: dropping it early tells the actor to cancel.
        let (_cancel_on_drop, cancel) = tokio::sync::oneshot::channel();
        self.addr()
            .send(Invoke {
                event: event.into(),
                data: data.into(),
                cancel,
            })
            .await?
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
        Ok(self
            .addr()
            .send(SubscribeCallback { kind, callback })
            .await?)
    }

    /// Delivers events (of one kind, or all) to an actix actor.
    pub async fn subscribe_recipient(
        &self,
        kind: Option<EventKind>,
        recipient: Recipient<Event>,
    ) -> Result<SubscriptionId, ClientError> {
        Ok(self
            .addr()
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
        let (id, receiver) = self.addr().send(SubscribeStream { kind, capacity }).await?;
        Ok(EventStream { id, receiver })
    }

    /// Removes a subscription; answers whether it existed.
    pub async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, ClientError> {
        Ok(self.addr().send(Unsubscribe(id)).await?)
    }

    /// The client's state and counters.
    pub async fn status(&self) -> Result<ClientStatus, ClientError> {
        Ok(self.addr().send(GetStatus).await?)
    }
}

/// A [`Client`] that does not keep its client alive; from [`Client::downgrade`].
#[derive(Clone)]
pub struct WeakClient {
    lease: std::sync::Weak<Lease>,
    status: watch::Receiver<StatusSnapshot>,
}

impl WeakClient {
    /// A handle, while another handle of the same family still exists; `None` once the last
    /// one was dropped (the client is stopping or gone).
    pub fn upgrade(&self) -> Option<Client> {
        Some(Client {
            lease: self.lease.upgrade()?,
            status: self.status.clone(),
        })
    }
}

impl std::fmt::Debug for WeakClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakClient").finish_non_exhaustive()
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
