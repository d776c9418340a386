//! The table of a client's invocations in flight (`invoke` / `invokeResponse`, protocol.md
//! 8.3): who waits for which invocation id, until when. Pure: the time is passed in.
//!
//! Unlike acked operations an invocation is never resent: an event handler may have run it,
//! and the protocol has no dedupe for invocation ids. So a lost connection (not recovered)
//! fails it, and so do a timeout and a stop, each sending `cancelInvocation` when a socket is
//! there to carry it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::protocol::{AckError, Payload};

use super::client::OpId;

/// Why an invocation failed (the session's side; the client maps it to its error).
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeFailure {
    /// The service answered `success: false` (the handler failed, refused, or is absent).
    Refused {
        /// The invocation's id.
        invocation_id: String,
        /// The service's error name and message.
        error: AckError,
    },
    /// No `invokeResponse` within the timeout; `cancelInvocation` was sent.
    Timeout {
        /// The invocation's id.
        invocation_id: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection ended for good (not recovered) before the response.
    ConnectionLost {
        /// The invocation's id.
        invocation_id: String,
    },
    /// The session stopped before the response; `cancelInvocation` was sent if a socket was
    /// open.
    Stopped {
        /// The invocation's id.
        invocation_id: String,
    },
    /// The session is not started.
    NotStarted,
    /// No connection is up on an open socket: an invocation is never queued (it is not
    /// resent, so one that waited for a socket could not be told from one that ran).
    NotConnected,
    /// Too many invocations are in flight.
    TooManyPending {
        /// The limit (the session's `max_pending`).
        max: usize,
    },
}

/// A successful invocation: the handler's reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoked {
    /// The invocation's id.
    pub invocation_id: String,
    /// The handler's reply body (`None` when it answered with no body).
    pub data: Option<Payload>,
}

#[derive(Debug)]
struct Pending {
    op: OpId,
    /// When it times out, and after how long.
    deadline: Option<(Instant, Duration)>,
}

/// Invocations in flight, keyed by invocation id.
#[derive(Debug, Default)]
pub struct PendingInvocations {
    by_id: BTreeMap<String, Pending>,
    next_id: u64,
}

impl PendingInvocations {
    /// An empty table.
    pub fn new() -> PendingInvocations {
        PendingInvocations::default()
    }

    /// Invocations in flight.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Registers a new invocation for `op` that times out `timeout` after `now`; returns its
    /// id, unique over the session's life (a counter, so a late response to an old one never
    /// matches a new one).
    pub fn open(&mut self, op: OpId, timeout: Option<Duration>, now: Instant) -> String {
        let deadline = timeout.and_then(|t| Some((now.checked_add(t)?, t)));
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.by_id.insert(id.clone(), Pending { op, deadline });
        id
    }

    /// The invocation with this id is answered: who waited for it (`None`: unknown, or
    /// already timed out or cancelled).
    pub fn answer(&mut self, invocation_id: &str) -> Option<OpId> {
        self.by_id.remove(invocation_id).map(|p| p.op)
    }

    /// The caller of `op` stopped waiting: its invocation id, if it was still in flight.
    pub fn cancel(&mut self, op: OpId) -> Option<String> {
        let id = self
            .by_id
            .iter()
            .find(|(_, p)| p.op == op)
            .map(|(id, _)| id.clone())?;
        self.by_id.remove(&id);
        Some(id)
    }

    /// Removes and returns the invocations whose deadline is at or before `now`, each with
    /// its timeout.
    pub fn expired(&mut self, now: Instant) -> Vec<(String, OpId, Duration)> {
        let due: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|(d, _)| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        due.into_iter()
            .filter_map(|id| {
                let p = self.by_id.remove(&id)?;
                Some((id, p.op, p.deadline.map(|(_, t)| t).unwrap_or_default()))
            })
            .collect()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_id
            .values()
            .filter_map(|p| p.deadline.map(|(d, _)| d))
            .min()
    }

    /// Removes and returns every invocation.
    pub fn drain(&mut self) -> Vec<(String, OpId)> {
        std::mem::take(&mut self.by_id)
            .into_iter()
            .map(|(id, p)| (id, p.op))
            .collect()
    }
}
