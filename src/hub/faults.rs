//! Fault injection: what a test or the CLI can break on purpose, as a Rust value ([`Fault`])
//! and as the JSON body of `POST /_fleet/faults` ([`FaultRequest`]), and the armed counters.
//! Pure values: `inject.rs` applies them to the hub's state.
//!
//! Socket faults (drop, close, restart) act at once on the connections they select. Counted
//! faults (refuse recoveries, drop acks, close after processing) arm a counter that the next
//! matching events consume, one each.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Deserialize;

/// Which connections a fault applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One connection, by id.
    Connection(String),
    /// Every connection of a user (the token's `sub`), in any hub.
    User(String),
    /// A random share of the attached connections, between 0.0 and 1.0 (rounded up, so any
    /// positive share of a non-empty hub picks at least one).
    Fraction(f64),
    /// Every attached connection.
    All,
}

/// A delivery the hub gets wrong on purpose, silently, so that a delivery checker can be
/// proven to see it (see [`Fault::Misdeliver`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misdelivery {
    /// The message is not delivered: no sequence id is used, nothing is buffered for replay,
    /// so the client cannot notice.
    Lose,
    /// The message is delivered twice; on the reliable subprotocol each copy gets a sequence
    /// id of its own, so the client's deduplication by sequence id lets both through, as a
    /// hub that published twice would.
    Duplicate,
    /// The message is held back and delivered right after the next message to the same
    /// connection from the same publisher (same group and sender), with sequence ids in
    /// wire order: one reorder that a per-publisher order check sees.
    Reorder,
}

/// A fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Drop the sockets abruptly, without a close frame, as a network failure would. Reliable
    /// sessions stay recoverable for the recovery window.
    Drop(Target),
    /// Close the sockets with this code and reason (after a `system/disconnected` message).
    /// Reliable sessions stay recoverable unless the code is 1008.
    Close {
        /// The connections.
        target: Target,
        /// The WebSocket close code.
        code: u16,
        /// The reason sent in the close frame and the `disconnected` message.
        reason: String,
    },
    /// Stop reading the sockets; the hub still writes to them. The clients' frames back up and
    /// their requests go unanswered until the hub's silence timeout drops the socket
    /// (`HubConfig::client_timeout`), as a hub whose reader hung would.
    StopReading(Target),
    /// Close the next `n` recovery attempts with 1008, as if the sessions had expired.
    RefuseRecoveries(u64),
    /// Process the next `n` requests that carry an ack id but send no ack for them.
    DropAcks(u64),
    /// Process the next `n` requests that carry an ack id, then drop the socket instead of
    /// acking: the client must recover and resend, and its resend gets `Duplicate`.
    CloseAfterProcessing(u64),
    /// Drop every socket and forget every session, as a hub restart would: recoveries get 1008.
    Restart,
    /// Get the next `count` deliveries to each targeted connection wrong in the way `kind`
    /// says. Connections by id or user are armed whether attached or waiting for recovery;
    /// a share or all, the attached ones. What was done is counted in
    /// [`HubStats`](super::HubStats) (`injected_lost`, `injected_duplicated`,
    /// `injected_reordered`).
    Misdeliver {
        /// The connections.
        target: Target,
        /// What goes wrong.
        kind: Misdelivery,
        /// Deliveries per connection.
        count: u64,
    },
}

/// The JSON form of a fault, for `POST /_fleet/faults`:
///
/// ```json
/// {"fault":"drop","connection_id":"abc"}    {"fault":"drop","fraction":0.05}   {"fault":"drop","all":true}
/// {"fault":"close","all":true,"code":1011,"reason":"test"}   {"fault":"stop_reading","connection_id":"abc"}
/// {"fault":"refuse_recoveries","count":3}   {"fault":"drop_acks","count":1}
/// {"fault":"close_after_processing","count":1}   {"fault":"restart"}
/// {"fault":"lose","user_id":"user-3","count":5}   {"fault":"duplicate","connection_id":"abc"}
/// {"fault":"reorder","fraction":0.1,"count":2}
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// `drop`, `close`, `stop_reading`, `refuse_recoveries`, `drop_acks`,
    /// `close_after_processing`, `restart`, `lose`, `duplicate` or `reorder`.
    pub fault: String,
    /// Target of `drop`/`close`/`lose`/`duplicate`/`reorder`: one connection.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Target: the connections of one user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Target: a share of the connections.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Target: every connection.
    #[serde(default)]
    pub all: Option<bool>,
    /// Close code of `close` (default 1000).
    #[serde(default)]
    pub code: Option<u16>,
    /// Close reason of `close`.
    #[serde(default)]
    pub reason: Option<String>,
    /// How many events a counted fault applies to, or deliveries per connection a
    /// misdelivery applies to (default 1).
    #[serde(default)]
    pub count: Option<u64>,
}

impl FaultRequest {
    /// The fault this request describes, or what is wrong with it.
    pub fn into_fault(self) -> Result<Fault, String> {
        let count = self.count.unwrap_or(1);
        match self.fault.as_str() {
            "drop" => Ok(Fault::Drop(self.target()?)),
            "close" => {
                let code = self.code.unwrap_or(crate::protocol::CLOSE_NORMAL);
                if !(1000..=4999).contains(&code) || matches!(code, 1004..=1006 | 1015) {
                    return Err(format!("close code {code} cannot be sent in a close frame"));
                }
                Ok(Fault::Close {
                    target: self.target()?,
                    code,
                    reason: self
                        .reason
                        .clone()
                        .unwrap_or_else(|| "Fault injected".to_owned()),
                })
            }
            "stop_reading" => Ok(Fault::StopReading(self.target()?)),
            "refuse_recoveries" => Ok(Fault::RefuseRecoveries(count)),
            "drop_acks" => Ok(Fault::DropAcks(count)),
            "close_after_processing" => Ok(Fault::CloseAfterProcessing(count)),
            "restart" => Ok(Fault::Restart),
            "lose" | "duplicate" | "reorder" => Ok(Fault::Misdeliver {
                target: self.target()?,
                kind: match self.fault.as_str() {
                    "lose" => Misdelivery::Lose,
                    "duplicate" => Misdelivery::Duplicate,
                    _ => Misdelivery::Reorder,
                },
                count,
            }),
            other => Err(format!(
                "unknown fault `{other}`: use drop, close, stop_reading, refuse_recoveries, drop_acks, close_after_processing, restart, lose, duplicate or reorder"
            )),
        }
    }

    fn target(&self) -> Result<Target, String> {
        let all = self.all == Some(true);
        let given = usize::from(self.connection_id.is_some())
            + usize::from(self.user_id.is_some())
            + usize::from(self.fraction.is_some())
            + usize::from(all);
        if given != 1 {
            return Err(
                "give exactly one target: `connection_id`, `user_id`, `fraction` or `all: true`"
                    .to_owned(),
            );
        }
        if let Some(id) = &self.connection_id {
            Ok(Target::Connection(id.clone()))
        } else if let Some(user) = &self.user_id {
            Ok(Target::User(user.clone()))
        } else if let Some(f) = self.fraction {
            if (0.0..=1.0).contains(&f) {
                Ok(Target::Fraction(f))
            } else {
                Err("`fraction` must be between 0.0 and 1.0".to_owned())
            }
        } else {
            Ok(Target::All)
        }
    }
}

/// What the hub does instead of sending an ack, when a counted fault is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckFault {
    /// Send nothing.
    Withhold,
    /// Drop the socket.
    DropSocket,
}

/// The armed counters.
#[derive(Default)]
pub(crate) struct Faults {
    refuse_recoveries: AtomicU64,
    drop_acks: AtomicU64,
    close_after_processing: AtomicU64,
}

/// Takes one from a counter if it is positive.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

impl Faults {
    pub(crate) fn arm_refuse_recoveries(&self, n: u64) {
        self.refuse_recoveries.fetch_add(n, Relaxed);
    }

    pub(crate) fn arm_drop_acks(&self, n: u64) {
        self.drop_acks.fetch_add(n, Relaxed);
    }

    pub(crate) fn arm_close_after_processing(&self, n: u64) {
        self.close_after_processing.fetch_add(n, Relaxed);
    }

    /// Whether this recovery attempt must be refused.
    pub(crate) fn take_recovery_refusal(&self) -> bool {
        take(&self.refuse_recoveries)
    }

    /// What to do instead of the ack about to be sent, if anything.
    pub(crate) fn take_ack_fault(&self) -> Option<AckFault> {
        if take(&self.close_after_processing) {
            Some(AckFault::DropSocket)
        } else if take(&self.drop_acks) {
            Some(AckFault::Withhold)
        } else {
            None
        }
    }

    /// Disarms everything (used by restart).
    pub(crate) fn clear(&self) {
        self.refuse_recoveries.store(0, Relaxed);
        self.drop_acks.store(0, Relaxed);
        self.close_after_processing.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Fault, String> {
        serde_json::from_str::<FaultRequest>(json)
            .map_err(|e| e.to_string())?
            .into_fault()
    }

    #[test]
    fn wire_forms() {
        assert_eq!(
            parse(r#"{"fault":"drop","connection_id":"c"}"#),
            Ok(Fault::Drop(Target::Connection("c".into())))
        );
        assert_eq!(
            parse(r#"{"fault":"drop","fraction":0.5}"#),
            Ok(Fault::Drop(Target::Fraction(0.5)))
        );
        assert_eq!(
            parse(r#"{"fault":"drop","all":true}"#),
            Ok(Fault::Drop(Target::All))
        );
        assert_eq!(
            parse(r#"{"fault":"close","all":true,"code":1011,"reason":"r"}"#),
            Ok(Fault::Close {
                target: Target::All,
                code: 1011,
                reason: "r".into()
            })
        );
        assert_eq!(
            parse(r#"{"fault":"refuse_recoveries","count":3}"#),
            Ok(Fault::RefuseRecoveries(3))
        );
        assert_eq!(parse(r#"{"fault":"drop_acks"}"#), Ok(Fault::DropAcks(1)));
        assert_eq!(
            parse(r#"{"fault":"close_after_processing","count":2}"#),
            Ok(Fault::CloseAfterProcessing(2))
        );
        assert_eq!(parse(r#"{"fault":"restart"}"#), Ok(Fault::Restart));
        assert_eq!(
            parse(r#"{"fault":"stop_reading","connection_id":"c"}"#),
            Ok(Fault::StopReading(Target::Connection("c".into())))
        );
        assert_eq!(
            parse(r#"{"fault":"drop","user_id":"u"}"#),
            Ok(Fault::Drop(Target::User("u".into())))
        );
        // (JSON, kind, target, count)
        let misdeliveries = [
            (
                r#"{"fault":"lose","user_id":"u","count":5}"#,
                Misdelivery::Lose,
                Target::User("u".into()),
                5,
            ),
            (
                r#"{"fault":"duplicate","connection_id":"c"}"#,
                Misdelivery::Duplicate,
                Target::Connection("c".into()),
                1,
            ),
            (
                r#"{"fault":"reorder","fraction":0.1,"count":2}"#,
                Misdelivery::Reorder,
                Target::Fraction(0.1),
                2,
            ),
            (
                r#"{"fault":"lose","all":true}"#,
                Misdelivery::Lose,
                Target::All,
                1,
            ),
        ];
        for (json, kind, target, count) in misdeliveries {
            assert_eq!(
                parse(json),
                Ok(Fault::Misdeliver {
                    target,
                    kind,
                    count
                }),
                "{json}"
            );
        }
    }

    #[test]
    fn bad_requests_say_why() {
        assert!(
            parse(r#"{"fault":"drop"}"#)
                .unwrap_err()
                .contains("exactly one target")
        );
        assert!(parse(r#"{"fault":"drop","all":true,"connection_id":"c"}"#).is_err());
        assert!(parse(r#"{"fault":"lose","user_id":"u","connection_id":"c"}"#).is_err());
        assert!(parse(r#"{"fault":"reorder"}"#).is_err());
        // `all: false` is no target.
        assert!(parse(r#"{"fault":"drop","all":false}"#).is_err());
        assert!(
            parse(r#"{"fault":"drop","fraction":2.0}"#)
                .unwrap_err()
                .contains("between")
        );
        assert!(parse(r#"{"fault":"close","all":true,"code":1006}"#).is_err());
        assert!(
            parse(r#"{"fault":"explode"}"#)
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(parse(r#"{"fault":"drop","all":true,"extra":1}"#).is_err());
    }

    #[test]
    fn counters_are_consumed_one_by_one() {
        let faults = Faults::default();
        assert_eq!(faults.take_ack_fault(), None);
        faults.arm_drop_acks(1);
        faults.arm_close_after_processing(1);
        assert_eq!(faults.take_ack_fault(), Some(AckFault::DropSocket));
        assert_eq!(faults.take_ack_fault(), Some(AckFault::Withhold));
        assert_eq!(faults.take_ack_fault(), None);
        faults.arm_refuse_recoveries(2);
        assert!(faults.take_recovery_refusal());
        faults.clear();
        assert!(!faults.take_recovery_refusal());
    }
}
