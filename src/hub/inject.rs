//! Applies a [`Fault`] to the hub's state: picks the connections a fault targets and signals
//! their sockets, arms the counted faults, restarts. The faults themselves are pure values
//! (`faults.rs`); the state knows nothing of targets.

use std::sync::Arc;

use rand::seq::SliceRandom as _;

use super::faults::{Fault, Target};
use super::state::{Connection, HubState, ToSocket};
use super::stats::bump;

/// Applies a fault; returns how many connections it affected (for counted faults, the count
/// armed).
pub(crate) fn apply(state: &HubState, fault: Fault) -> usize {
    bump(&state.stats.faults_injected);
    match fault {
        Fault::Drop(target) => select(state, &target)
            .iter()
            .filter(|c| c.signal(ToSocket::Drop))
            .count(),
        Fault::Close {
            target,
            code,
            reason,
        } => select(state, &target)
            .iter()
            .filter(|c| {
                c.signal(ToSocket::Close {
                    code,
                    reason: reason.clone(),
                })
            })
            .count(),
        Fault::StopReading(target) => select(state, &target)
            .iter()
            .filter(|c| c.signal(ToSocket::StopReading))
            .count(),
        Fault::RefuseRecoveries(n) => {
            state.faults.arm_refuse_recoveries(n);
            usize::try_from(n).unwrap_or(usize::MAX)
        }
        Fault::DropAcks(n) => {
            state.faults.arm_drop_acks(n);
            usize::try_from(n).unwrap_or(usize::MAX)
        }
        Fault::CloseAfterProcessing(n) => {
            state.faults.arm_close_after_processing(n);
            usize::try_from(n).unwrap_or(usize::MAX)
        }
        Fault::Restart => restart(state),
        Fault::Misdeliver {
            target,
            kind,
            count,
        } => {
            let targets = select(state, &target);
            for conn in &targets {
                conn.arm(kind, count);
            }
            targets.len()
        }
    }
}

/// Picks the connections a fault applies to: by id or user whether attached or not, a share
/// or all among the attached ones.
fn select(state: &HubState, target: &Target) -> Vec<Arc<Connection>> {
    match target {
        Target::Connection(id) => state.find_connection(id).into_iter().collect(),
        Target::User(user) => state.user_connections(user),
        Target::All => state
            .all_connections()
            .into_iter()
            .filter(|c| c.is_attached())
            .collect(),
        Target::Fraction(share) => {
            let mut attached: Vec<Arc<Connection>> = state
                .all_connections()
                .into_iter()
                .filter(|c| c.is_attached())
                .collect();
            let n = ((attached.len() as f64) * share.clamp(0.0, 1.0)).ceil() as usize;
            attached.shuffle(&mut rand::rng());
            attached.truncate(n);
            attached
        }
    }
}

/// Drops every socket and forgets every session, as a hub restart would; returns how many
/// connections there were.
fn restart(state: &HubState) -> usize {
    let all = state.all_connections();
    for conn in &all {
        state.remove(conn, None);
    }
    state.faults.clear();
    all.len()
}
