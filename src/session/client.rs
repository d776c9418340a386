//! [`ClientSession`]: the whole connection logic of one client as a pure state machine.
//!
//! Dialing and reconnecting, recovery and its confirmation, the operation table, rejoin,
//! inbound frames, sequence acks and keepalive all live here; the client actor only performs
//! what comes out. Inputs are method calls with the time passed in (`start`, `submit`,
//! `on_socket_opened`, `on_frame`, `on_socket_lost`, `on_tick`, `stop`, ...); outputs are
//! [`Action`]s taken with [`ClientSession::poll_action`], and [`ClientSession::next_wake`]
//! says when to call `on_tick` next. Nothing here reads the clock, draws random numbers from
//! the system (jitter comes from a generator seeded by the caller) or touches a socket, so a
//! simulator can drive thousands of sessions through every interleaving in virtual time.
//!
//! Every socket the session asks for gets a [`SocketId`]; inputs about any other socket
//! are ignored. That is how a stop wins every race: it retires the current id, so nothing
//! that was in flight before it can act after it.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::{
    AckError, AckErrorName, AckId, Inbound, Outbound, Payload, Secret, SequenceId,
};

use super::invoke::{InvokeFailure, Invoked, PendingInvocations};
use super::{
    AckIds, AckOutcome, AfterDrop, DropContext, Keepalive, KeepaliveAction, PendingAcks, Recovery,
    RecoveryPolicy, RecoveryStep, RetryPolicy, RetryState, SeqVerdict, SequenceTracker,
};

/// A recovered socket counts as recovered once a frame other than `disconnected` arrived on
/// it, or once it stayed open this long: a refused recovery is answered at once with
/// `disconnected` and close 1008, so a socket that merely opened proves nothing.
pub const RECOVERY_CONFIRM: Duration = Duration::from_secs(1);

/// Longest random pause before reconnecting after a connection was lost for good, so a
/// fleet dropped together does not dial back in lockstep.
pub const RECONNECT_SPREAD: Duration = Duration::from_millis(100);

/// What a [`ClientSession`] needs to know of the client's options.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The subprotocol is a reliable one (sequence ids, recovery).
    pub reliable: bool,
    /// Open a new connection when one is lost for good.
    pub auto_reconnect: bool,
    /// Rejoin the joined groups on a new connection.
    pub auto_rejoin_groups: bool,
    /// Retries of an operation after a retriable failed ack.
    pub message_retry: RetryPolicy,
    /// Delays between reconnect attempts.
    pub reconnect_retry: RetryPolicy,
    /// How long an open socket may wait for `system/connected`.
    pub start_timeout: Duration,
    /// How long an operation waits for its ack; `None` until the connection ends.
    pub ack_timeout: Option<Duration>,
    /// Ping interval; zero disables pings.
    pub keepalive_interval: Duration,
    /// Silence after which the socket is dead; zero disables.
    pub keepalive_timeout: Duration,
    /// Operations pending at most.
    pub max_pending: usize,
    /// Recovery window and interval.
    pub recovery: RecoveryPolicy,
    /// Seed of the jitter generator (the actor draws it at random, a simulator fixes it).
    pub seed: u64,
}

/// Names one socket (or one attempt to open one) the session asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u64);

/// Names one operation submitted with [`ClientSession::submit`], to match its resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Which socket to open.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenKind {
    /// A new connection from a fresh client access URL.
    Connect,
    /// A recovery of this connection: the access URL plus these two parameters
    /// ([`super::recovery_url`]). Holds the token: never log it.
    Recover {
        /// The connection to recover.
        connection_id: String,
        /// Its reconnection token.
        reconnection_token: Secret,
    },
}

/// Why a new connection could not be established.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectFailure<E> {
    /// The socket could not be opened (or no access URL could be had): the caller's error.
    Open(E),
    /// The socket opened but `system/connected` did not arrive within the start timeout.
    StartTimeout(Duration),
    /// The socket closed (with this code, if any) before `system/connected`.
    Closed(Option<u16>),
}

/// Why a session stopped for good.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionStop<E> {
    /// [`ClientSession::stop`] was called.
    Requested,
    /// The connection was lost for good and auto reconnect is off.
    ConnectionLost,
    /// The reconnect policy gave up; the last failure.
    ReconnectGaveUp(ConnectFailure<E>),
    /// The first connection failed; `start` fails with it.
    StartFailed(ConnectFailure<E>),
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum OpError {
    /// The service answered with a failed ack.
    Ack {
        /// The ack id used.
        ack_id: AckId,
        /// The service's error.
        error: AckError,
    },
    /// The connection ended for good before the ack.
    ConnectionLost {
        /// The ack id used.
        ack_id: AckId,
    },
    /// No ack within the ack timeout.
    AckTimeout {
        /// The ack id used.
        ack_id: AckId,
        /// The timeout.
        after: Duration,
    },
    /// The session stopped before the ack.
    Stopped {
        /// The ack id used, if any.
        ack_id: Option<AckId>,
    },
    /// The session is not started.
    NotStarted,
    /// A fire-and-forget operation found no open connection.
    NotConnected,
    /// Too many operations are pending.
    TooManyPending {
        /// The limit.
        max: usize,
    },
}

/// An acknowledged operation's success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// The ack id used (`None` for fire-and-forget).
    pub ack_id: Option<AckId>,
    /// The service had already run this ack id (`Duplicate`).
    pub duplicated: bool,
}

/// The connection a start reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The connection id.
    pub connection_id: String,
    /// The user id, if any.
    pub user_id: Option<String>,
}

/// What the session reports; the client maps each to its public `Event`.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent<E> {
    /// A new connection is up.
    Connected {
        /// The connection id.
        connection_id: String,
        /// The user id.
        user_id: Option<String>,
    },
    /// The connection ended and was not recovered.
    Disconnected {
        /// The connection that ended, if one was established.
        connection_id: Option<String>,
        /// The service's `disconnected` message, if any.
        message: Option<String>,
    },
    /// The session stopped; nothing follows.
    Stopped(SessionStop<E>),
    /// A group message to deliver.
    GroupMessage {
        /// The group.
        group: String,
        /// The publisher's user id.
        from_user_id: Option<String>,
        /// The payload.
        data: Payload,
        /// The sequence id.
        sequence_id: Option<SequenceId>,
    },
    /// A server message to deliver.
    ServerMessage {
        /// The payload.
        data: Payload,
        /// The sequence id.
        sequence_id: Option<SequenceId>,
    },
    /// An automatic rejoin was acked.
    Rejoined {
        /// The group.
        group: String,
    },
    /// An automatic rejoin failed.
    RejoinGroupFailed {
        /// The group.
        group: String,
        /// Why.
        error: OpError,
    },
    /// The socket dropped; recovering the same connection.
    Recovering {
        /// The connection.
        connection_id: String,
    },
    /// The connection was recovered.
    Recovered {
        /// The connection.
        connection_id: String,
        /// From the drop to the confirmation.
        after: Duration,
    },
    /// A new connection will be opened after `delay`.
    Reconnecting {
        /// Attempt number from 1.
        attempt: u32,
        /// The delay.
        delay: Duration,
    },
}

/// What the session wants done, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<E> {
    /// Write this frame on the open socket.
    Send(Outbound),
    /// Open a socket (dropping the current one and any attempt in flight); report the result
    /// with [`ClientSession::on_socket_opened`] or [`ClientSession::on_open_failed`].
    Open(SocketId, OpenKind),
    /// Drop the open socket, and any attempt in flight, at once and without a word.
    Drop,
    /// Write a normal close and let the socket go after the closing handshake; cancel any
    /// attempt in flight.
    Close,
    /// Report an event.
    Emit(SessionEvent<E>),
    /// An operation is over.
    Resolve(OpId, Result<Acked, OpError>),
    /// An invocation ([`ClientSession::invoke`]) is over.
    Invoked(OpId, Result<Invoked, InvokeFailure>),
    /// Answer everyone waiting for `start`.
    StartDone(Result<Started, SessionStop<E>>),
}

/// What came in on a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A decoded frame.
    Frame(Inbound),
    /// A frame that failed to decode (counted, ignored).
    Malformed,
    /// A WebSocket ping or pong: life, nothing else.
    Traffic,
}

/// Where the session is in its life, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Not started or stopped.
    Stopped,
    /// Opening a new connection.
    Connecting,
    /// A connection is up (possibly an unconfirmed recovery).
    Connected,
    /// Recovering after a drop.
    Recovering,
    /// Waiting before a reconnect.
    WaitingToReconnect,
}

/// The client's counters, reported in its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Data messages delivered to subscribers.
    pub delivered: u64,
    /// Replayed messages dropped as duplicates (sequence id at or below the max).
    pub duplicates_dropped: u64,
    /// Frames that failed to decode (ignored, counted).
    pub bad_frames: u64,
    /// Frames of unknown types (ignored, counted).
    pub unknown_frames: u64,
    /// Acks for ack ids nobody waited for.
    pub unknown_acks: u64,
    /// Recoveries that succeeded.
    pub recoveries: u64,
    /// New connections after the first.
    pub reconnects: u64,
    /// Operations resent with the same ack id (after a recovery or a retriable failure).
    pub resends: u64,
    /// Events dropped for slow subscribers (counted by the dispatcher, not the session).
    pub events_dropped: u64,
    /// Frames sent.
    pub frames_sent: u64,
}

/// Test-only switches that bring back bugs fixed earlier, so a test can prove the simulator
/// finds them.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Regressions {
    /// A recovery's confirmation does not send what was submitted while it was unconfirmed.
    pub(crate) no_send_on_confirm: bool,
    /// A recovered socket counts as recovered the moment it opens.
    pub(crate) confirm_on_open: bool,
}

/// Where an operation is (one state instead of `sent`/`orphaned` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpState {
    /// Waiting for a socket to be sent on.
    Queued,
    /// Sent on the current socket.
    Sent,
    /// Sent on a socket that dropped: resent after a recovery, failed on a new connection.
    Orphaned,
    /// Failed with a retriable error; sent again at this instant.
    RetryAt(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    None,
    Join,
    Leave,
    /// An automatic rejoin: a failure is reported as `RejoinGroupFailed`.
    Rejoin,
    /// An automatic rejoin the user's own join or leave of that group came after: it is not
    /// retried, changes no membership and reports nothing, so a rejoin retried late cannot
    /// put the client back into a group the user left meanwhile.
    SupersededRejoin,
}

#[derive(Debug)]
struct Op {
    frame: Outbound,
    id: Option<OpId>,
    retry: RetryState,
    state: OpState,
    membership: Membership,
}

/// A recovered socket waiting for its confirmation.
#[derive(Debug)]
struct Unconfirmed {
    /// When the old socket was lost.
    lost_at: Instant,
    /// When the recovered socket opened.
    opened_at: Instant,
    /// The recovery, which goes on if this socket fails too.
    recovery: Recovery,
}

#[derive(Debug)]
enum Phase {
    Stopped,
    /// Opening a new connection; once the socket is open, `system/connected` is due by `deadline`.
    Connecting {
        deadline: Option<Instant>,
    },
    Connected {
        unconfirmed: Option<Unconfirmed>,
    },
    /// Recovering; `wait_until` is `None` while an attempt is in flight.
    Recovering {
        recovery: Recovery,
        wait_until: Option<Instant>,
    },
    WaitingToReconnect {
        until: Instant,
    },
}

/// The pure state machine of one client connection; see the [module docs](self).
#[derive(Debug)]
pub struct ClientSession<E> {
    config: SessionConfig,
    phase: Phase,
    /// The socket being opened or open; inputs about any other are stale.
    socket: u64,
    /// Socket `socket` is open.
    attached: bool,
    connection_id: Option<String>,
    user_id: Option<String>,
    /// Bumped whenever `connection_id` or `user_id` is set or cleared.
    identity_epoch: u64,
    reconnection_token: Option<Secret>,
    last_disconnect_message: Option<String>,
    lost_at: Option<Instant>,
    ack_ids: AckIds,
    pending: PendingAcks<Op>,
    invocations: PendingInvocations,
    /// No ack deadline is before this (a lower bound, exact after each tick).
    ack_deadline_floor: Option<Instant>,
    /// No retry is due before this (a lower bound, exact after each tick).
    retry_floor: Option<Instant>,
    sequence: SequenceTracker,
    keepalive: Keepalive,
    reconnect: RetryState,
    groups: BTreeSet<String>,
    /// Automatic rejoins pending (superseded or not), so a user's join or leave scans the
    /// table only when one might be there.
    rejoins_pending: usize,
    awaiting_start: bool,
    ever_connected: bool,
    counters: ClientCounters,
    next_op: u64,
    rng: u64,
    out: VecDeque<Action<E>>,
    #[cfg(test)]
    pub(crate) regressions: Regressions,
}

impl<E: Clone> ClientSession<E> {
    /// A stopped session.
    pub fn new(config: SessionConfig, now: Instant) -> ClientSession<E> {
        ClientSession {
            keepalive: Keepalive::with_timing(
                config.keepalive_interval,
                config.keepalive_timeout,
                now,
            ),
            reconnect: RetryState::new(config.reconnect_retry),
            // Zero is a fixed point of xorshift.
            rng: config.seed | 1,
            config,
            phase: Phase::Stopped,
            socket: 0,
            attached: false,
            connection_id: None,
            user_id: None,
            identity_epoch: 0,
            reconnection_token: None,
            last_disconnect_message: None,
            lost_at: None,
            ack_ids: AckIds::new(),
            pending: PendingAcks::new(),
            invocations: PendingInvocations::new(),
            ack_deadline_floor: None,
            retry_floor: None,
            sequence: SequenceTracker::new(),
            groups: BTreeSet::new(),
            rejoins_pending: 0,
            awaiting_start: false,
            ever_connected: false,
            counters: ClientCounters::default(),
            next_op: 0,
            out: VecDeque::new(),
            #[cfg(test)]
            regressions: Regressions::default(),
        }
    }

    // ---- outputs ----------------------------------------------------------------------

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action<E>> {
        self.out.pop_front()
    }

    /// When to call [`Self::on_tick`] next; `None` when no deadline is armed. Waking earlier
    /// is harmless.
    pub fn next_wake(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Stopped => None,
            Phase::Connecting { deadline } => *deadline,
            Phase::Recovering { wait_until, .. } => *wait_until,
            Phase::WaitingToReconnect { until } => Some(*until),
            Phase::Connected { unconfirmed } => {
                let confirm = unconfirmed
                    .as_ref()
                    .and_then(|u| u.opened_at.checked_add(RECOVERY_CONFIRM));
                let keepalive = self.attached.then(|| self.keepalive.next_deadline());
                [
                    confirm,
                    keepalive.flatten(),
                    self.sequence.next_ack_deadline(),
                ]
                .into_iter()
                .flatten()
                .min()
            }
        };
        [
            phase,
            self.ack_deadline_floor,
            self.retry_floor,
            self.invocations.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Where the session is.
    pub fn state(&self) -> SessionState {
        match self.phase {
            Phase::Stopped => SessionState::Stopped,
            Phase::Connecting { .. } => SessionState::Connecting,
            Phase::Connected { .. } => SessionState::Connected,
            Phase::Recovering { .. } => SessionState::Recovering,
            Phase::WaitingToReconnect { .. } => SessionState::WaitingToReconnect,
        }
    }

    /// Whether a connection is up on an open socket (fire-and-forget sends may go).
    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. }) && self.attached
    }

    /// The current connection id.
    pub fn connection_id(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }

    /// The user id of the current connection.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// A number that changes whenever [`Self::connection_id`] or [`Self::user_id`] may have:
    /// a shell that mirrors them compares this instead of the strings on every frame.
    pub fn identity_epoch(&self) -> u64 {
        self.identity_epoch
    }

    /// The groups joined (rejoined on a new connection).
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.groups.iter()
    }

    /// Ack ids pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The counters (`events_dropped` is the dispatcher's and stays zero here).
    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Whether an operation waits for a socket while a confirmed one is up: it should have
    /// gone out (an invariant of the simulator).
    #[cfg(test)]
    pub(crate) fn has_unsent_while_confirmed(&self) -> bool {
        if !matches!(self.phase, Phase::Connected { unconfirmed: None }) || !self.attached {
            return false;
        }
        self.pending.resend_order().into_iter().any(|id| {
            self.pending
                .waiters(id)
                .any(|op| op.state == OpState::Queued)
        })
    }

    /// The largest sequence id received on this connection.
    pub fn sequence_max(&self) -> SequenceId {
        self.sequence.max()
    }

    // ---- inputs: the user ---------------------------------------------------------------

    /// Connect; [`Action::StartDone`] answers once connected (at once when already connected).
    pub fn start(&mut self, now: Instant) {
        match (&self.phase, &self.connection_id) {
            (Phase::Connected { .. }, Some(id)) => {
                // Answers every waiter, those of a start made while recovering too.
                self.awaiting_start = false;
                let started = Started {
                    connection_id: id.clone(),
                    user_id: self.user_id.clone(),
                };
                self.out.push_back(Action::StartDone(Ok(started)));
            }
            (Phase::Stopped, _) => {
                self.awaiting_start = true;
                self.ever_connected = false;
                self.reconnect.reset();
                self.open_new_connection(now);
            }
            _ => self.awaiting_start = true,
        }
    }

    /// Submits an acknowledged operation (`JoinGroup`, `LeaveGroup`, `SendToGroup` or
    /// `Event`); with an ack id in the frame that id is used and kept across retries. The
    /// answer comes as [`Action::Resolve`] with the returned id (perhaps at once).
    pub fn submit(&mut self, frame: Outbound, now: Instant) -> OpId {
        self.next_op += 1;
        let id = OpId(self.next_op);
        if matches!(self.phase, Phase::Stopped) {
            self.out
                .push_back(Action::Resolve(id, Err(OpError::NotStarted)));
        } else if self.pending.len() >= self.config.max_pending {
            let max = self.config.max_pending;
            self.out
                .push_back(Action::Resolve(id, Err(OpError::TooManyPending { max })));
        } else {
            let membership = membership_of(&frame);
            if let Outbound::JoinGroup { group, .. } | Outbound::LeaveGroup { group, .. } = &frame {
                self.supersede_rejoin(group);
            }
            self.submit_op(frame, Some(id), membership, now);
        }
        id
    }

    /// Invokes the user event `event` with `data` (protocol.md 8.3): sends `invoke` now, and
    /// answers with [`Action::Invoked`] for the returned id when the `invokeResponse` comes,
    /// or with a failure after `timeout`, on a stop, or when the connection ends for good.
    /// Never queued: it needs a connection up on an open socket ([`InvokeFailure::NotConnected`]).
    pub fn invoke(
        &mut self,
        event: String,
        data: Payload,
        timeout: Option<Duration>,
        now: Instant,
    ) -> OpId {
        self.next_op += 1;
        let id = OpId(self.next_op);
        let refused = if matches!(self.phase, Phase::Stopped) {
            Some(InvokeFailure::NotStarted)
        } else if !self.is_connected() {
            Some(InvokeFailure::NotConnected)
        } else if self.invocations.len() >= self.config.max_pending {
            Some(InvokeFailure::TooManyPending {
                max: self.config.max_pending,
            })
        } else {
            None
        };
        if let Some(failure) = refused {
            self.out.push_back(Action::Invoked(id, Err(failure)));
            return id;
        }
        let invocation_id = self.invocations.open(id, timeout, now);
        self.send(Outbound::Invoke {
            invocation_id,
            event,
            data,
        });
        id
    }

    /// The caller of invocation `op` stopped waiting (dropped its future): forget it and send
    /// `cancelInvocation` if a socket is open. Nothing is answered for it. A no-op once it
    /// is over.
    pub fn cancel_invocation(&mut self, op: OpId) {
        if let Some(invocation_id) = self.invocations.cancel(op) {
            self.send_cancel(invocation_id);
        }
    }

    fn send_cancel(&mut self, invocation_id: String) {
        if self.attached {
            self.send(Outbound::CancelInvocation { invocation_id });
        }
    }

    fn on_invoke_response(
        &mut self,
        invocation_id: String,
        success: bool,
        data: Option<Payload>,
        error: Option<AckError>,
    ) {
        // A late answer to a timed-out or cancelled invocation is expected, not an error.
        let Some(op) = self.invocations.answer(&invocation_id) else {
            return;
        };
        let result = if success {
            Ok(Invoked {
                invocation_id,
                data,
            })
        } else {
            let error = error.unwrap_or(AckError {
                name: AckErrorName::Other("InvocationFailed".into()),
                message: String::new(),
            });
            Err(InvokeFailure::Refused {
                invocation_id,
                error,
            })
        };
        self.out.push_back(Action::Invoked(op, result));
    }

    /// Fails every invocation in flight, telling the service first when `cancel` (a stop,
    /// with the socket still there to carry it).
    fn fail_invocations(&mut self, cancel: bool, failure: fn(String) -> InvokeFailure) {
        for (invocation_id, op) in self.invocations.drain() {
            if cancel {
                self.send_cancel(invocation_id.clone());
            }
            self.out
                .push_back(Action::Invoked(op, Err(failure(invocation_id))));
        }
    }

    /// The user joins or leaves `group` while an automatic rejoin of it is pending: the
    /// rejoin goes if it has not been sent, and is not retried if it has.
    fn supersede_rejoin(&mut self, group: &str) {
        if self.rejoins_pending == 0 {
            return;
        }
        for ack_id in self.pending.resend_order() {
            let mut unsent = false;
            for op in self.pending.waiters_mut(ack_id) {
                if op.membership == Membership::Rejoin
                    && matches!(&op.frame, Outbound::JoinGroup { group: g, .. } if g == group)
                {
                    op.membership = Membership::SupersededRejoin;
                    unsent |= op.state != OpState::Sent;
                }
            }
            if unsent {
                for op in self.pending.take(ack_id) {
                    self.finish_op(
                        op,
                        Err(OpError::Stopped {
                            ack_id: Some(ack_id),
                        }),
                    );
                }
            }
        }
    }

    /// Sends an operation without an ack id, now or never: `NotConnected` unless a
    /// connection is up on an open socket.
    pub fn send_without_ack(&mut self, mut frame: Outbound) -> Result<Acked, OpError> {
        if matches!(self.phase, Phase::Stopped) {
            return Err(OpError::NotStarted);
        }
        if !self.is_connected() {
            return Err(OpError::NotConnected);
        }
        set_ack_id(&mut frame, None);
        match &frame {
            Outbound::JoinGroup { group, .. } => {
                self.supersede_rejoin(group);
                self.groups.insert(group.clone());
            }
            Outbound::LeaveGroup { group, .. } => {
                self.supersede_rejoin(group);
                self.groups.remove(group);
            }
            _ => {}
        }
        self.send(frame);
        Ok(Acked {
            ack_id: None,
            duplicated: false,
        })
    }

    /// Stop: close the socket, fail pending operations with `Stopped`, report `Disconnected`
    /// (if a connection was up) and `Stopped`. Nothing is reported after that.
    pub fn stop(&mut self, _now: Instant) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        // Before the close, so the service hears of the cancels on the socket it ran them on.
        self.fail_invocations(true, |invocation_id| InvokeFailure::Stopped {
            invocation_id,
        });
        self.out.push_back(if self.attached {
            Action::Close
        } else {
            Action::Drop
        });
        self.attached = false;
        let was_connected = self.connection_id.is_some();
        self.fail_all(|ack_id| OpError::Stopped {
            ack_id: Some(ack_id),
        });
        if was_connected {
            let connection_id = self.connection_id.take();
            self.identity_epoch += 1;
            let message = self.last_disconnect_message.take();
            self.emit(SessionEvent::Disconnected {
                connection_id,
                message,
            });
        }
        self.finish_stop(SessionStop::Requested);
    }

    /// The owner is gone: answer every pending operation with `Stopped`, report nothing else.
    pub fn abandon(&mut self) {
        self.fail_invocations(false, |invocation_id| InvokeFailure::Stopped {
            invocation_id,
        });
        self.fail_all(|ack_id| OpError::Stopped {
            ack_id: Some(ack_id),
        });
    }

    // ---- inputs: sockets and time -----------------------------------------------------

    /// Socket `socket` opened. `false`: it is stale (drop it, do not attach it).
    pub fn on_socket_opened(&mut self, socket: SocketId, now: Instant) -> bool {
        if socket.0 != self.socket || self.attached {
            return false;
        }
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Connecting { .. } => {
                self.phase = Phase::Connecting {
                    deadline: now.checked_add(self.config.start_timeout),
                };
                self.attached = true;
                self.keepalive.on_socket_opened(now);
                true
            }
            Phase::Recovering { recovery, .. } => {
                self.attached = true;
                self.keepalive.on_socket_opened(now);
                self.phase = Phase::Connected {
                    unconfirmed: Some(Unconfirmed {
                        lost_at: self.lost_at.unwrap_or(now),
                        opened_at: now,
                        recovery,
                    }),
                };
                self.sequence.on_recovered(now);
                self.flush_sequence_ack(now);
                self.send_unsent();
                #[cfg(test)]
                if self.regressions.confirm_on_open {
                    self.confirm_recovery(now);
                }
                true
            }
            other => {
                self.phase = other;
                false
            }
        }
    }

    /// Opening socket `socket` failed. `fatal` ends the reconnect loop at once (a refused
    /// token that cannot change).
    pub fn on_open_failed(&mut self, socket: SocketId, error: E, fatal: bool, now: Instant) {
        if socket.0 != self.socket || self.attached {
            return;
        }
        match self.phase {
            Phase::Connecting { .. } => {
                self.connect_failed(ConnectFailure::Open(error), fatal, now)
            }
            Phase::Recovering { .. } => self.recovery_attempt_failed(None, now),
            _ => {}
        }
    }

    /// Something arrived on socket `socket`.
    pub fn on_frame(&mut self, socket: SocketId, incoming: Incoming, now: Instant) {
        if socket.0 != self.socket || !self.attached {
            return;
        }
        self.keepalive.on_received(now);
        let Incoming::Frame(inbound) = incoming else {
            if incoming == Incoming::Malformed {
                self.counters.bad_frames += 1;
            }
            return;
        };
        // `disconnected` comes before a refusal's close: it confirms nothing.
        if !matches!(inbound, Inbound::Disconnected { .. }) {
            self.confirm_recovery(now);
        }
        match inbound {
            Inbound::Ack {
                ack_id,
                success,
                error,
            } => self.on_ack(ack_id, success, error, now),
            Inbound::GroupMessage {
                sequence_id,
                group,
                from_user_id,
                data,
            } => {
                if self.accept_sequence(sequence_id, now) {
                    self.counters.delivered += 1;
                    self.emit(SessionEvent::GroupMessage {
                        group,
                        from_user_id,
                        data,
                        sequence_id,
                    });
                }
            }
            Inbound::ServerMessage { sequence_id, data } => {
                if self.accept_sequence(sequence_id, now) {
                    self.counters.delivered += 1;
                    self.emit(SessionEvent::ServerMessage { data, sequence_id });
                }
            }
            Inbound::Connected {
                connection_id,
                user_id,
                reconnection_token,
            } => self.on_connected(connection_id, user_id, reconnection_token, now),
            Inbound::Disconnected { message } => self.last_disconnect_message = message,
            Inbound::Pong => {}
            Inbound::InvokeResponse {
                invocation_id,
                success,
                data,
                error,
            } => self.on_invoke_response(invocation_id, success, data, error),
            Inbound::Unknown { .. } => self.counters.unknown_frames += 1,
        }
    }

    /// Socket `socket` closed (with its close code, if a close frame came) or failed.
    pub fn on_socket_lost(&mut self, socket: SocketId, close_code: Option<u16>, now: Instant) {
        if socket.0 != self.socket || !self.attached {
            return;
        }
        self.lose_socket(close_code, now);
    }

    /// Time passed: fire whatever is due at `now`.
    pub fn on_tick(&mut self, now: Instant) {
        if self.invocations.next_deadline().is_some_and(|t| t <= now) {
            for (invocation_id, op, after) in self.invocations.expired(now) {
                self.send_cancel(invocation_id.clone());
                let failure = InvokeFailure::Timeout {
                    invocation_id,
                    after,
                };
                self.out.push_back(Action::Invoked(op, Err(failure)));
            }
        }
        if self.ack_deadline_floor.is_some_and(|t| t <= now) {
            let after = self.config.ack_timeout.unwrap_or_default();
            for (ack_id, op) in self.pending.expired(now) {
                self.finish_op(op, Err(OpError::AckTimeout { ack_id, after }));
            }
            self.ack_deadline_floor = self.pending.next_deadline();
        }
        if self.retry_floor.is_some_and(|t| t <= now) {
            self.retries_due(now);
        }
        match &self.phase {
            Phase::Connecting {
                deadline: Some(deadline),
            } if *deadline <= now => {
                let failure = ConnectFailure::StartTimeout(self.config.start_timeout);
                self.connect_failed(failure, false, now);
            }
            Phase::WaitingToReconnect { until } if *until <= now => self.open_new_connection(now),
            Phase::Recovering {
                wait_until: Some(at),
                ..
            } if *at <= now => self.try_recover(now),
            Phase::Connected { unconfirmed } => {
                let confirm_at = unconfirmed
                    .as_ref()
                    .and_then(|u| u.opened_at.checked_add(RECOVERY_CONFIRM));
                if confirm_at.is_some_and(|at| at <= now) {
                    self.confirm_recovery(now);
                }
                self.flush_sequence_ack(now);
                if !self.attached {
                    return;
                }
                match self.keepalive.poll(now) {
                    KeepaliveAction::Nothing => {}
                    KeepaliveAction::SendPing => {
                        self.send(Outbound::Ping);
                        self.keepalive.on_sent_ping(now);
                    }
                    KeepaliveAction::Dead => self.lose_socket(None, now),
                }
            }
            _ => {}
        }
    }

    // ---- connections ------------------------------------------------------------------

    fn open_new_connection(&mut self, _now: Instant) {
        self.attached = false;
        self.socket += 1;
        self.phase = Phase::Connecting { deadline: None };
        self.out
            .push_back(Action::Open(SocketId(self.socket), OpenKind::Connect));
    }

    fn drop_socket(&mut self) {
        if self.attached {
            self.attached = false;
            self.out.push_back(Action::Drop);
        }
    }

    /// Opening a new connection failed (socket, credential, start timeout or early close).
    fn connect_failed(&mut self, failure: ConnectFailure<E>, fatal: bool, now: Instant) {
        self.drop_socket();
        if !self.ever_connected && self.awaiting_start {
            // The first start fails as the official clients' start() does: with the error.
            self.finish_stop(SessionStop::StartFailed(failure));
            return;
        }
        let delay = if fatal {
            None
        } else {
            let random = self.random();
            self.reconnect.next_delay_with_jitter(random)
        };
        match delay {
            Some(delay) => self.schedule_reconnect(delay, now),
            None => self.finish_stop(SessionStop::ReconnectGaveUp(failure)),
        }
    }

    fn schedule_reconnect(&mut self, delay: Duration, now: Instant) {
        self.socket += 1;
        self.phase = Phase::WaitingToReconnect {
            until: now.checked_add(delay).unwrap_or(now),
        };
        let attempt = self.reconnect.retries().max(1);
        self.emit(SessionEvent::Reconnecting { attempt, delay });
    }

    /// `system/connected` on a socket.
    fn on_connected(
        &mut self,
        connection_id: String,
        user_id: Option<String>,
        token: Option<Secret>,
        now: Instant,
    ) {
        if token.is_some() {
            self.reconnection_token = token;
        }
        if !matches!(self.phase, Phase::Connecting { .. }) {
            // Repeated after a recovery: refresh the token, no second `connected` event.
            return;
        }
        let new_connection = self.connection_id.as_deref() != Some(connection_id.as_str());
        if self.ever_connected {
            self.counters.reconnects += 1;
        }
        self.ever_connected = true;
        self.phase = Phase::Connected { unconfirmed: None };
        self.reconnect.reset();
        self.connection_id = Some(connection_id.clone());
        self.user_id = user_id.clone();
        self.identity_epoch += 1;
        self.last_disconnect_message = None;
        if new_connection {
            self.sequence.on_new_connection();
        }
        self.send_unsent();
        if self.config.auto_rejoin_groups && !self.groups.is_empty() {
            // A group the user joins or leaves in an operation still pending is left to that
            // operation: a rejoin sent after it would undo a leave.
            let mut groups = self.groups.clone();
            for ack_id in self.pending.resend_order() {
                for op in self.pending.waiters(ack_id) {
                    if let (Membership::Join | Membership::Leave, Some(group)) =
                        (op.membership, group_of(&op.frame))
                    {
                        groups.remove(group);
                    }
                }
            }
            for group in groups {
                let frame = Outbound::JoinGroup {
                    group,
                    ack_id: None,
                };
                // Rejoins are not the caller's operations: no `Resolve`, and no bound (the
                // groups were joined under it).
                self.submit_op(frame, None, Membership::Rejoin, now);
            }
        }
        self.answer_start(Started {
            connection_id: connection_id.clone(),
            user_id: user_id.clone(),
        });
        self.emit(SessionEvent::Connected {
            connection_id,
            user_id,
        });
    }

    /// The socket is gone: recover, reconnect or stop.
    fn lose_socket(&mut self, close_code: Option<u16>, now: Instant) {
        self.drop_socket();
        match &mut self.phase {
            Phase::Connecting { .. } => {
                self.connect_failed(ConnectFailure::Closed(close_code), false, now);
                return;
            }
            Phase::Recovering { .. } => {
                self.recovery_attempt_failed(close_code, now);
                return;
            }
            Phase::Stopped | Phase::WaitingToReconnect { .. } => return,
            Phase::Connected { unconfirmed } => {
                // A recovered socket lost before it was confirmed: that attempt failed, and
                // the same recovery goes on (1 s apart, within its window; 1008 ends it).
                if let Some(unconfirmed) = unconfirmed.take() {
                    self.mark_all_unsent();
                    self.phase = Phase::Recovering {
                        recovery: unconfirmed.recovery,
                        wait_until: None,
                    };
                    self.recovery_attempt_failed(close_code, now);
                    return;
                }
            }
        }
        let decision = DropContext {
            reliable: self.config.reliable,
            resumable: self.connection_id.is_some() && self.reconnection_token.is_some(),
            stopping: false,
            auto_reconnect: self.config.auto_reconnect,
            close_code,
        }
        .decide();
        self.mark_all_unsent();
        self.lost_at = Some(now);
        match decision {
            AfterDrop::Recover => {
                let connection_id = self.connection_id.clone().unwrap_or_default();
                self.phase = Phase::Recovering {
                    recovery: Recovery::with_policy(now, self.config.recovery),
                    wait_until: None,
                };
                self.emit(SessionEvent::Recovering { connection_id });
                self.try_recover(now);
            }
            AfterDrop::Reconnect => {
                self.connection_lost();
                let spread = RECONNECT_SPREAD.mul_f64(self.random());
                self.schedule_reconnect(spread, now);
            }
            AfterDrop::Stop => {
                self.connection_lost();
                self.finish_stop(SessionStop::ConnectionLost);
            }
        }
    }

    /// A connection ended for good: operations sent on it fail, `disconnected` is reported.
    fn connection_lost(&mut self) {
        self.fail_orphaned(|ack_id| OpError::ConnectionLost { ack_id });
        self.fail_invocations(false, |invocation_id| InvokeFailure::ConnectionLost {
            invocation_id,
        });
        let connection_id = self.connection_id.take();
        self.identity_epoch += 1;
        self.reconnection_token = None;
        self.sequence.on_new_connection();
        let message = self.last_disconnect_message.take();
        self.emit(SessionEvent::Disconnected {
            connection_id,
            message,
        });
    }

    fn try_recover(&mut self, now: Instant) {
        let Phase::Recovering {
            recovery,
            wait_until,
        } = &mut self.phase
        else {
            return;
        };
        match recovery.next_attempt(now) {
            RecoveryStep::WaitUntil(at) => *wait_until = Some(at),
            RecoveryStep::GiveUp => self.recovery_gave_up(now),
            RecoveryStep::TryNow(_) => {
                *wait_until = None;
                let (Some(connection_id), Some(reconnection_token)) =
                    (self.connection_id.clone(), self.reconnection_token.clone())
                else {
                    self.recovery_gave_up(now);
                    return;
                };
                self.socket += 1;
                let kind = OpenKind::Recover {
                    connection_id,
                    reconnection_token,
                };
                self.out
                    .push_back(Action::Open(SocketId(self.socket), kind));
            }
        }
    }

    fn recovery_attempt_failed(&mut self, close_code: Option<u16>, now: Instant) {
        if let Phase::Recovering { recovery, .. } = &mut self.phase {
            recovery.on_attempt_failed(now, close_code);
        }
        self.try_recover(now);
    }

    fn recovery_gave_up(&mut self, now: Instant) {
        self.phase = Phase::Connected { unconfirmed: None };
        self.connection_lost();
        if self.config.auto_reconnect {
            self.schedule_reconnect(Duration::ZERO, now);
        } else {
            self.finish_stop(SessionStop::ConnectionLost);
        }
    }

    /// A recovered socket proved itself (a frame arrived, or it stayed open a second).
    fn confirm_recovery(&mut self, now: Instant) {
        let Phase::Connected { unconfirmed } = &mut self.phase else {
            return;
        };
        let Some(unconfirmed) = unconfirmed.take() else {
            return;
        };
        self.counters.recoveries += 1;
        let connection_id = self.connection_id.clone().unwrap_or_default();
        #[cfg(test)]
        let resend = !self.regressions.no_send_on_confirm;
        #[cfg(not(test))]
        let resend = true;
        if resend {
            self.send_unsent();
        }
        self.answer_start(Started {
            connection_id: connection_id.clone(),
            user_id: self.user_id.clone(),
        });
        self.emit(SessionEvent::Recovered {
            connection_id,
            after: now.saturating_duration_since(unconfirmed.lost_at),
        });
    }

    /// Ends in `Stopped`: nothing is reported after this.
    fn finish_stop(&mut self, reason: SessionStop<E>) {
        self.socket += 1;
        // After `stop`'s `Close` this only cancels an attempt in flight: the closing socket
        // is no longer the current one.
        self.out.push_back(Action::Drop);
        self.attached = false;
        self.phase = Phase::Stopped;
        self.connection_id = None;
        self.identity_epoch += 1;
        self.reconnection_token = None;
        self.fail_all(|ack_id| OpError::Stopped {
            ack_id: Some(ack_id),
        });
        if std::mem::take(&mut self.awaiting_start) {
            self.out.push_back(Action::StartDone(Err(reason.clone())));
        }
        self.emit(SessionEvent::Stopped(reason));
    }

    fn answer_start(&mut self, started: Started) {
        if std::mem::take(&mut self.awaiting_start) {
            self.out.push_back(Action::StartDone(Ok(started)));
        }
    }

    // ---- operations -------------------------------------------------------------------

    fn submit_op(
        &mut self,
        mut frame: Outbound,
        id: Option<OpId>,
        membership: Membership,
        now: Instant,
    ) {
        if membership == Membership::Rejoin {
            self.rejoins_pending += 1;
        }
        let ack_id = self.ack_ids.assign(frame.ack_id());
        set_ack_id(&mut frame, Some(ack_id));
        let op = Op {
            frame,
            id,
            retry: RetryState::new(self.config.message_retry),
            state: OpState::Queued,
            membership,
        };
        self.register(ack_id, op, now);
        if matches!(self.phase, Phase::Connected { unconfirmed: None }) {
            self.send_op(ack_id);
        }
    }

    fn register(&mut self, ack_id: AckId, op: Op, now: Instant) {
        match self.config.ack_timeout.and_then(|t| now.checked_add(t)) {
            Some(deadline) => {
                self.pending.register_until(ack_id, op, deadline);
                self.ack_deadline_floor = Some(
                    self.ack_deadline_floor
                        .map_or(deadline, |f| f.min(deadline)),
                );
            }
            None => self.pending.register(ack_id, op),
        }
    }

    /// Writes an operation's frame once for all waiters of its ack id.
    fn send_op(&mut self, ack_id: AckId) {
        if !self.attached {
            return;
        }
        let Some(frame) = self
            .pending
            .waiters_mut(ack_id)
            .find(|op| op.state != OpState::Sent)
            .map(|op| op.frame.clone())
        else {
            return;
        };
        for op in self.pending.waiters_mut(ack_id) {
            op.state = OpState::Sent;
        }
        self.send(frame);
    }

    /// Sends every operation waiting for a socket, in the order first submitted; those sent
    /// on a socket that dropped go again with the same ack id.
    fn send_unsent(&mut self) {
        for ack_id in self.pending.resend_order() {
            let mut orphaned = false;
            for op in self.pending.waiters_mut(ack_id) {
                if op.state == OpState::Orphaned {
                    orphaned = true;
                    op.state = OpState::Queued;
                }
            }
            if orphaned {
                self.counters.resends += 1;
            }
            self.send_op(ack_id);
        }
    }

    /// The socket dropped: what was sent on it is orphaned, a pending retry waits for a socket.
    fn mark_all_unsent(&mut self) {
        for ack_id in self.pending.resend_order() {
            for op in self.pending.waiters_mut(ack_id) {
                op.state = match op.state {
                    OpState::Sent => OpState::Orphaned,
                    OpState::RetryAt(_) => OpState::Queued,
                    other => other,
                };
            }
        }
        self.retry_floor = None;
    }

    /// Retries whose delay is over go out again on the same socket.
    fn retries_due(&mut self, now: Instant) {
        let mut floor = None::<Instant>;
        for ack_id in self.pending.resend_order() {
            let mut due = false;
            for op in self.pending.waiters_mut(ack_id) {
                match op.state {
                    OpState::RetryAt(at) if at <= now => {
                        op.state = OpState::Queued;
                        due = true;
                        self.counters.resends += 1;
                    }
                    OpState::RetryAt(at) => floor = Some(floor.map_or(at, |f| f.min(at))),
                    _ => {}
                }
            }
            if due && matches!(self.phase, Phase::Connected { .. }) {
                self.send_op(ack_id);
            }
        }
        self.retry_floor = floor;
    }

    /// Fails the operations that were sent on a connection that ended for good.
    fn fail_orphaned(&mut self, error: impl Fn(AckId) -> OpError) {
        for ack_id in self.pending.resend_order() {
            if self
                .pending
                .waiters_mut(ack_id)
                .any(|op| op.state == OpState::Orphaned)
            {
                for op in self.pending.take(ack_id) {
                    self.finish_op(op, Err(error(ack_id)));
                }
            }
        }
    }

    fn fail_all(&mut self, error: impl Fn(AckId) -> OpError) {
        for (ack_id, op) in self.pending.fail_all() {
            self.finish_op(op, Err(error(ack_id)));
        }
        self.ack_deadline_floor = None;
        self.retry_floor = None;
    }

    fn finish_op(&mut self, op: Op, result: Result<Acked, OpError>) {
        if matches!(
            op.membership,
            Membership::Rejoin | Membership::SupersededRejoin
        ) {
            self.rejoins_pending -= 1;
        }
        if let (Membership::Rejoin, Outbound::JoinGroup { group, .. }) = (op.membership, &op.frame)
        {
            let group = group.clone();
            self.emit(match &result {
                Ok(_) => SessionEvent::Rejoined { group },
                Err(error) => SessionEvent::RejoinGroupFailed {
                    group,
                    error: error.clone(),
                },
            });
        }
        if result.is_ok() {
            match (&op.frame, op.membership) {
                (Outbound::JoinGroup { group, .. }, Membership::Join | Membership::Rejoin) => {
                    self.groups.insert(group.clone());
                }
                (Outbound::LeaveGroup { group, .. }, Membership::Leave) => {
                    self.groups.remove(group);
                }
                _ => {}
            }
        }
        if let Some(id) = op.id {
            self.out.push_back(Action::Resolve(id, result));
        }
    }

    fn on_ack(&mut self, ack_id: AckId, success: bool, error: Option<AckError>, now: Instant) {
        let Some((ops, outcome)) = self.pending.resolve(ack_id, success, error) else {
            self.counters.unknown_acks = self.pending.unknown_acks();
            return;
        };
        match outcome {
            AckOutcome::Success { duplicated } => {
                for op in ops {
                    let acked = Acked {
                        ack_id: Some(ack_id),
                        duplicated,
                    };
                    self.finish_op(op, Ok(acked));
                }
            }
            AckOutcome::Failed(error) => {
                let error = error.unwrap_or(AckError {
                    name: AckErrorName::Other("Unknown".into()),
                    message: String::new(),
                });
                let retriable = super::ack_is_transient(&error.name);
                for mut op in ops {
                    let delay = if retriable {
                        op.retry.next_delay()
                    } else {
                        None
                    };
                    match delay.and_then(|d| now.checked_add(d)) {
                        Some(at) => {
                            op.state = OpState::RetryAt(at);
                            self.register(ack_id, op, now);
                            self.retry_floor = Some(self.retry_floor.map_or(at, |f| f.min(at)));
                        }
                        None => {
                            let error = error.clone();
                            self.finish_op(op, Err(OpError::Ack { ack_id, error }));
                        }
                    }
                }
            }
        }
    }

    // ---- frames -------------------------------------------------------------------------

    fn send(&mut self, frame: Outbound) {
        self.counters.frames_sent += 1;
        self.out.push_back(Action::Send(frame));
    }

    fn emit(&mut self, event: SessionEvent<E>) {
        self.out.push_back(Action::Emit(event));
    }

    fn flush_sequence_ack(&mut self, now: Instant) {
        if let Some(sequence_id) = self.sequence.poll_ack(now) {
            if self.attached {
                self.send(Outbound::SequenceAck { sequence_id });
            } else {
                self.sequence.on_ack_send_failed(now);
            }
        }
    }

    /// Sequence bookkeeping of a data message; false when it is a replayed duplicate.
    fn accept_sequence(&mut self, sequence_id: Option<SequenceId>, now: Instant) -> bool {
        let verdict = self.sequence.on_message(sequence_id, now);
        self.flush_sequence_ack(now);
        match verdict {
            SeqVerdict::Deliver => true,
            SeqVerdict::Duplicate => {
                self.counters.duplicates_dropped += 1;
                false
            }
        }
    }

    /// A number in `[0, 1)` from the seeded xorshift generator: jitter without a system source.
    fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn group_of(frame: &Outbound) -> Option<&String> {
    match frame {
        Outbound::JoinGroup { group, .. } | Outbound::LeaveGroup { group, .. } => Some(group),
        _ => None,
    }
}

fn membership_of(frame: &Outbound) -> Membership {
    match frame {
        Outbound::JoinGroup { .. } => Membership::Join,
        Outbound::LeaveGroup { .. } => Membership::Leave,
        _ => Membership::None,
    }
}

/// Sets (or, with `None`, removes) the ack id of an operation frame.
fn set_ack_id(frame: &mut Outbound, id: Option<AckId>) {
    match frame {
        Outbound::JoinGroup { ack_id, .. }
        | Outbound::LeaveGroup { ack_id, .. }
        | Outbound::SendToGroup { ack_id, .. }
        | Outbound::Event { ack_id, .. } => *ack_id = id,
        Outbound::SequenceAck { .. }
        | Outbound::Ping
        | Outbound::Invoke { .. }
        | Outbound::CancelInvocation { .. } => {}
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
