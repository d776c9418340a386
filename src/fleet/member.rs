//! [`FleetClient`]: the handle of one client of a fleet that outlives its actor, and the
//! groups the fleet owns for it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::client::{AckResult, Client, ClientError};

/// One client of a fleet, by index: a handle that survives the replacement of a dead actor
/// (a panic in a handler), and the groups joined through it since the client started. Cheap
/// to clone.
///
/// A client's own session rejoins its groups on every new connection, but a replaced actor
/// starts with an empty session: the fleet rejoins the groups recorded here on the new actor
/// before it counts the replacement as started. A group is recorded when a join through this
/// handle (or a [`super::Command::JoinGroup`]) succeeded and forgotten when a leave did;
/// joins made on the [`Client`] directly are not seen, and groups of the identity (joined on
/// connect by the token) need no record.
#[derive(Clone)]
pub struct FleetClient {
    inner: Arc<Inner>,
}

struct Inner {
    index: u64,
    client: Mutex<Client>,
    groups: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for FleetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetClient")
            .field("index", &self.inner.index)
            .field("groups", &self.groups())
            .finish_non_exhaustive()
    }
}

impl FleetClient {
    pub(super) fn new(index: u64, client: Client) -> FleetClient {
        FleetClient {
            inner: Arc::new(Inner {
                index,
                client: Mutex::new(client),
                groups: Mutex::default(),
            }),
        }
    }

    /// The client's index in its fleet.
    pub fn index(&self) -> u64 {
        self.inner.index
    }

    /// The client behind this index now (a new one after a dead actor was replaced).
    pub fn client(&self) -> Client {
        // A panic while holding this lock cannot leave a handle half-written.
        (self.inner.client.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The groups joined through this handle and not left since, in order.
    pub fn groups(&self) -> Vec<String> {
        (self.inner.groups.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Joins `group` on the current client and records it when the join succeeded.
    pub async fn join_group(&self, group: impl Into<String>) -> Result<AckResult, ClientError> {
        let group = group.into();
        let result = self.client().join_group(group.clone()).await;
        if result.is_ok() {
            self.groups_mut().insert(group);
        }
        result
    }

    /// Leaves `group` on the current client and forgets it when the leave succeeded.
    pub async fn leave_group(&self, group: impl Into<String>) -> Result<AckResult, ClientError> {
        let group = group.into();
        let result = self.client().leave_group(group.clone()).await;
        if result.is_ok() {
            self.groups_mut().remove(&group);
        }
        result
    }

    /// Puts a new client (a replaced actor's) behind this handle.
    pub(super) fn replace(&self, client: Client) {
        *self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = client;
    }

    fn groups_mut(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
