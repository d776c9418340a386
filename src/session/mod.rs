//! The sans-I/O protocol state of one client.
//!
//! Nothing here touches a socket, starts a timer or reads the clock: the caller (the
//! client actor) passes the current [`Instant`](std::time::Instant) in, and gets decisions
//! back as values, including the next instant it should wake up. That keeps every rule
//! below testable with plain tables of inputs and expected outputs.
//!
//! | module | holds |
//! |---|---|
//! | [`client`] | [`ClientSession`]: the whole connection state machine of one client, built from the pieces below |
//! | [`acks`] | [`AckIds`] (allocation) and [`PendingAcks`] (operations waiting for their ack) |
//! | [`invoke`] | [`PendingInvocations`]: `invoke` calls waiting for their `invokeResponse` (protocol.md 8.3) |
//! | [`sequence`] | [`SequenceTracker`]: duplicate dropping and when to send `sequenceAck` |
//! | [`recovery`] | [`DropContext`] (recover, reconnect or stop?), [`Recovery`] (the 30 s loop), [`recovery_url`] |
//! | [`retry`] | [`RetryPolicy`] and [`RetryState`]: delays of message retries and reconnects |
//! | [`keepalive`] | [`Keepalive`]: when to `ping`, when a silent socket is dead |
//!
//! # The contract
//!
//! Acks ([`acks`]):
//! 1. Generated ack ids start at 1 and increase for the client's life; a caller may supply
//!    its own, and generated ids then skip past it.
//! 2. One logical operation keeps one ack id across all its retries and resends, so the
//!    service answers a repeat with `Duplicate` instead of running it twice.
//! 3. `Duplicate` is success, flagged `duplicated`; any other error carries its name and
//!    message. An ack for an id that is not pending is ignored and counted.
//! 4. Two waiters on the same pending id both get the one answer.
//! 5. After a recovery, operations in flight are resent with their ids; they fail only on a
//!    reconnect (new connection) or a stop, all together, or at their own deadline if the
//!    caller gave one (Python's 30 s ack timeout; JS and .NET have none).
//!
//! Sequence ids ([`sequence`], reliable subprotocols):
//! 6. An id at or below the max seen is a duplicate: dropped, yet the max is acked again.
//!    A message without id is always delivered.
//! 7. A `sequenceAck` of the max is due 1 s after the first message since the last ack, at
//!    once when the max moved 300 or more since the last ack, never when nothing arrived;
//!    a failed send is retried 1 s later.
//! 8. The max survives a recovery (and is re-acked at once) and is reset by a new connection.
//!
//! Recovery ([`recovery`]):
//! 9. Recover only on a reliable subprotocol, with a known connection id and reconnection
//!    token, when not stopping, and when the close code is not 1008. Otherwise reconnect
//!    (and rejoin groups) if auto-reconnect is on and the client is not stopping, else stop.
//! 10. Recovery attempts start at once, then 1 s after each failure, and only within 30 s
//!     of the drop; an attempt closed with 1008 ends it. The recovery URL is the access URL
//!     plus `awps_connection_id` and `awps_reconnection_token`.
//!
//! Retries ([`retry`]):
//! 11. Retry `n` (from 1) waits `delay` (fixed) or `delay * 2^(n-1)` capped at `max_delay`
//!     (exponential), optionally ±20 % jitter from a number the caller draws; `n >
//!     max_retries` gives up. Defaults: messages 3 retries from 0.8 s; reconnects forever,
//!     1 s doubling up to 5 s. A success resets the count.
//!
//! Keepalive ([`keepalive`]):
//! 12. `ping` every 20 s; dead after 120 s with nothing received; zero disables either.
//!
//! Every default is a documented constant saying where it comes from (`protocol.md` 7.1).
//!
//! # Example
//!
//! What a client actor does with an incoming message and its timer:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use webpubsub_fleet::session::{SeqVerdict, SequenceTracker};
//!
//! let start = Instant::now();
//! let mut seq = SequenceTracker::new();
//! assert_eq!(seq.on_message(Some(1), start), SeqVerdict::Deliver);
//! assert_eq!(seq.on_message(Some(1), start), SeqVerdict::Duplicate);
//! // The actor sleeps until the deadline, then asks what to send.
//! let wake = seq.next_ack_deadline().expect("an ack is owed");
//! assert_eq!(wake, start + Duration::from_secs(1));
//! assert_eq!(seq.poll_ack(wake), Some(1)); // send {"type":"sequenceAck","sequenceId":1}
//! ```

pub mod acks;
pub mod client;
pub mod invoke;
pub mod keepalive;
pub mod recovery;
pub mod retry;
pub mod sequence;

pub use acks::{AckIds, AckOutcome, DEFAULT_ACK_TIMEOUT, PendingAcks, ack_is_transient};
pub use client::{
    Acked, Action, ClientCounters, ClientSession, ConnectFailure, Incoming, OpError, OpId,
    OpenKind, SessionConfig, SessionEvent, SessionState, SessionStop, SocketId, Started,
};
pub use invoke::{InvokeFailure, Invoked, PendingInvocations};
pub use keepalive::{DEFAULT_DEAD_AFTER, DEFAULT_PING_INTERVAL, Keepalive, KeepaliveAction};
pub use recovery::{
    AfterDrop, DEFAULT_RECOVERY_INTERVAL, DEFAULT_RECOVERY_WINDOW, DropContext, Recovery,
    RecoveryPolicy, RecoveryStep, reconnect_or_stop, recovery_url,
};
pub use retry::{JITTER, RetryMode, RetryPolicy, RetryState};
pub use sequence::{
    SEQUENCE_ACK_IMMEDIATE_AFTER, SEQUENCE_ACK_INTERVAL, SeqVerdict, SequenceTracker,
};
