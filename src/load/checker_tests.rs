//! Hand-made histories, one per kind of violation, run through the same transitions the
//! recorder uses. Client 0 publishes, client 1 receives (unless said otherwise). Times in µs.

use std::sync::Arc;

use super::*;
use crate::load::stamp::{Stamp, StampError};
use crate::load::track::{ECHO_GROUP, Outcome, PublisherLog, ReceiverTrack, Verdict};

const P: u64 = 0;
const R: u64 = 1;

/// Two clients connected at t=0 (connection ids `p1` and `r1`); the receiver joins group `g`
/// on connect, the publisher is in no group.
struct History {
    receivers: Vec<ReceiverTrack>,
    publishers: Vec<PublisherLog>,
}

impl History {
    fn new() -> History {
        let mut receivers = vec![
            ReceiverTrack::new(Vec::new()),
            ReceiverTrack::new(vec!["g".into()]),
        ];
        receivers[0].on_connected("p1", 0);
        receivers[1].on_connected("r1", 0);
        History {
            receivers,
            publishers: vec![PublisherLog::default(), PublisherLog::default()],
        }
    }

    /// Client `p` publishes to `group` at `at`, with this outcome known 1 µs later.
    fn publish(&mut self, p: u64, group: &str, at: u64, outcome: Outcome) -> u64 {
        let log = &mut self.publishers[p as usize];
        let seq = log.begin(Arc::from(group), at);
        log.end(seq, outcome, at + 1);
        seq
    }

    /// Client `r` receives publisher `p`'s `seq` (stamped `sent`) in `group` at `at`.
    fn deliver(&mut self, r: u64, group: &str, p: u64, seq: u64, sent: u64, at: u64) -> Verdict {
        let text = Stamp {
            publisher: p,
            seq,
            sent_us: sent,
        }
        .to_payload(64);
        self.receivers[r as usize]
            .on_delivery(group, Ok(&text), at)
            .0
    }

    /// Publishes `n` acked messages at t = 10, 20, ... and delivers those in `deliver` 5 µs later.
    fn publish_and_deliver(&mut self, n: u64, deliver: &[u64]) {
        for i in 1..=n {
            self.publish(P, "g", i * 10, Outcome::Acked);
        }
        for &seq in deliver {
            self.deliver(R, "g", P, seq, seq * 10, seq * 10 + 5);
        }
    }

    fn check(mut self, end: u64) -> CheckReport {
        for r in &mut self.receivers {
            r.finish(end);
        }
        check(&self.receivers, &self.publishers)
    }
}

fn only(report: &CheckReport) -> Counts {
    report.total
}

#[test]
fn nothing_wrong() {
    let mut h = History::new();
    h.publish_and_deliver(3, &[1, 2, 3]);
    let report = h.check(1000);
    assert_eq!(
        only(&report),
        Counts {
            delivered: 3,
            ..Counts::default()
        }
    );
    assert!(report.by_receiver.is_empty() && report.by_group.is_empty());
}

#[test]
fn lost() {
    let mut h = History::new();
    h.publish_and_deliver(3, &[1, 3]);
    let report = h.check(1000);
    assert_eq!((report.total.lost, report.total.delivered), (1, 2));
    assert_eq!(report.by_receiver[&R].lost, 1);
    assert_eq!(report.by_group["g"].lost, 1);
    assert!(!report.by_receiver.contains_key(&P));
}

#[test]
fn lost_at_the_tail_of_an_unbroken_connection() {
    let mut h = History::new();
    h.publish_and_deliver(3, &[1, 2]);
    assert_eq!(h.check(1000).total.lost, 1);
}

#[test]
fn duplicated() {
    let mut h = History::new();
    h.publish_and_deliver(2, &[1, 2]);
    assert_eq!(h.deliver(R, "g", P, 2, 20, 40), Verdict::Duplicate);
    let report = h.check(1000);
    assert_eq!((report.total.duplicated, report.total.lost), (1, 0));
    assert_eq!(report.by_receiver[&R].duplicated, 1);
}

#[test]
fn reordered() {
    let mut h = History::new();
    h.publish_and_deliver(3, &[1, 3]);
    assert_eq!(h.deliver(R, "g", P, 2, 20, 40), Verdict::Reordered);
    let report = h.check(1000);
    assert_eq!((report.total.reordered, report.total.lost), (1, 0));
    assert_eq!(report.by_group["g"].reordered, 1);
}

#[test]
fn unexpected_kinds() {
    let mut h = History::new();
    h.publish_and_deliver(1, &[1]);
    // Not a stamp, not text, a number never published, a group never joined, a refused publish.
    let r = &mut h.receivers[R as usize];
    assert_eq!(r.on_delivery("g", Ok("hello"), 50).0, Verdict::Unexpected);
    assert_eq!(
        r.on_delivery("g", Err(StampError::NotText), 51).0,
        Verdict::Unexpected
    );
    h.deliver(R, "g", P, 9, 52, 53);
    assert_eq!(h.deliver(R, "other", P, 1, 10, 54), Verdict::Unexpected);
    let refused = h.publish(P, "g", 60, Outcome::Refused);
    h.deliver(R, "g", P, refused, 60, 65);
    // A publisher that never published to `g` at all.
    h.deliver(R, "g", 1, 1, 70, 75);
    let report = h.check(1000);
    assert_eq!(report.total.unexpected, 6, "{report:#?}");
    assert_eq!(report.total.lost, 0);
    assert_eq!(report.by_group["other"].unexpected, 1);
}

#[test]
fn allowed_gap_across_a_reconnect() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Acked);
    h.deliver(R, "g", P, 1, 10, 15);
    h.publish(P, "g", 20, Outcome::Acked); // before the drop, never delivered
    h.receivers[R as usize].on_disconnected(25);
    h.publish(P, "g", 30, Outcome::Acked); // while disconnected
    h.receivers[R as usize].on_connected("r2", 40);
    h.publish(P, "g", 50, Outcome::Acked);
    h.deliver(R, "g", P, 4, 50, 55);
    let report = h.check(1000);
    assert_eq!(report.total.allowed_gap, 2, "{report:#?}");
    assert_eq!(report.total.violations(), 0, "{report:#?}");
    assert_eq!(report.by_receiver[&R].allowed_gap, 2);
}

#[test]
fn a_gap_below_a_later_delivery_on_the_same_connection_is_lost_even_if_it_broke_later() {
    let mut h = History::new();
    h.publish_and_deliver(3, &[1, 3]);
    h.receivers[R as usize].on_disconnected(100);
    h.receivers[R as usize].on_connected("r2", 110);
    let report = h.check(1000);
    assert_eq!((report.total.lost, report.total.allowed_gap), (1, 0));
}

#[test]
fn recovery_keeps_the_connection_and_the_expectations() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Acked);
    h.receivers[R as usize].on_recovering(12);
    h.publish(P, "g", 20, Outcome::Acked);
    h.deliver(R, "g", P, 2, 20, 30);
    // Seq 1 never came back after the recovery: the same connection must not lose it.
    let report = h.check(1000);
    assert_eq!((report.total.lost, report.total.allowed_gap), (1, 0));
}

#[test]
fn leave_before_the_ack_is_not_a_loss_but_after_it_is() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Acked); // acked at 11, before the leave at 15: expected
    let late = h.publish(P, "g", 14, Outcome::Pending);
    h.publishers[P as usize].end(late, Outcome::Acked, 20); // acked after the leave
    h.receivers[R as usize].on_leaving("g", 15);
    h.publish(P, "g", 30, Outcome::Acked); // after the leave: not expected
    let report = h.check(1000);
    assert_eq!(report.total.lost, 1, "{report:#?}");
    assert_eq!(report.total.allowed_gap, 0);
}

#[test]
fn explicit_join_starts_at_its_ack_or_first_delivery() {
    let mut h = History::new();
    let r = &mut h.receivers[R as usize];
    r.on_joining("room");
    h.publish(P, "room", 5, Outcome::Acked); // sent while the join was in flight
    h.receivers[R as usize].on_joined("room", 10);
    h.publish(P, "room", 20, Outcome::Acked); // after the ack: expected
    let report = h.check(1000);
    assert_eq!((report.total.lost, report.total.indeterminate), (1, 0));
}

#[test]
fn rejoined_groups_are_optional_until_their_first_delivery() {
    let mut h = History::new();
    h.receivers[R as usize].on_joining("room");
    h.receivers[R as usize].on_joined("room", 1);
    h.receivers[R as usize].on_disconnected(5);
    h.receivers[R as usize].on_connected("r2", 10);
    h.publish(P, "room", 12, Outcome::Acked); // the automatic rejoin may not be done
    h.publish(P, "room", 20, Outcome::Acked);
    h.deliver(R, "room", P, 2, 20, 25); // proves the rejoin: from here on, expected
    h.publish(P, "room", 30, Outcome::Acked);
    let report = h.check(1000);
    assert_eq!(report.total.lost, 1, "{report:#?}");
    // Seq 1 was sent after the break and before the rejoin was proven: an allowed gap.
    assert_eq!(report.total.allowed_gap, 1, "{report:#?}");
}

#[test]
fn fire_and_forget_is_expected_unless_the_publisher_broke() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Written);
    assert_eq!(h.check(1000).total.lost, 1);

    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Written);
    h.receivers[P as usize].on_recovering(11);
    let report = h.check(1000);
    assert_eq!((report.total.lost, report.total.indeterminate), (0, 1));
}

#[test]
fn unknown_and_unsent_outcomes_are_not_losses() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Unknown);
    h.publish(P, "g", 20, Outcome::NotSent);
    h.publish(P, "g", 30, Outcome::Refused);
    let report = h.check(1000);
    assert_eq!(report.total.violations(), 0);
    assert_eq!(report.total.indeterminate, 1);
}

#[test]
fn echoes_are_expected_only_by_their_sender() {
    let mut h = History::new();
    for r in &mut h.receivers {
        // Both clients registered the echo pseudo-group on connect.
        *r = ReceiverTrack::new(vec![ECHO_GROUP.into()]);
    }
    h.receivers[0].on_connected("p1", 0);
    h.receivers[1].on_connected("r1", 0);
    h.publish(P, ECHO_GROUP, 10, Outcome::Acked);
    h.publish(P, ECHO_GROUP, 20, Outcome::Acked);
    h.deliver(P, ECHO_GROUP, P, 1, 10, 15);
    let report = h.check(1000);
    assert_eq!(report.total.lost, 1, "only client 0 expects its echoes");
    assert_eq!(report.by_receiver.keys().copied().collect::<Vec<_>>(), [P]);
    // Someone else's echo is unexpected.
    let mut h2 = History::new();
    h2.receivers[R as usize] = ReceiverTrack::new(vec![ECHO_GROUP.into()]);
    h2.receivers[R as usize].on_connected("r1", 0);
    h2.publish(P, ECHO_GROUP, 10, Outcome::Acked);
    h2.deliver(R, ECHO_GROUP, P, 1, 10, 15);
    assert_eq!(h2.check(1000).total.unexpected, 1);
}

#[test]
fn publishes_left_pending_are_counted_unresolved() {
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Acked);
    h.publish(P, "g", 20, Outcome::Pending); // never acked, never failed
    let report = h.check(1000);
    assert_eq!(report.unresolved, 1, "{report:#?}");
    let mut h = History::new();
    h.publish(P, "g", 10, Outcome::Acked);
    assert_eq!(h.check(1000).unresolved, 0);
}

#[test]
fn a_rejoin_ack_ends_the_allowed_gap_of_a_reconnect() {
    let mut h = History::new();
    let r = &mut h.receivers[R as usize];
    r.on_joining("room");
    r.on_joined("room", 1);
    r.on_disconnected(10);
    r.on_connected("c2", 20);
    h.publish(P, "room", 15, Outcome::Acked); // while reconnecting: an allowed gap
    h.receivers[R as usize].on_joined("room", 30); // the rejoin was acked
    h.publish(P, "room", 40, Outcome::Acked); // after it: must arrive, and did not
    let report = h.check(1000);
    assert_eq!(
        (report.total.allowed_gap, report.total.lost),
        (1, 1),
        "{report:#?}"
    );
}
