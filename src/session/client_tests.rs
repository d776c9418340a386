//! Table tests of [`ClientSession`]: inputs in, actions out, with the time passed in.

use std::time::{Duration, Instant};

use super::*;
use crate::protocol::CLOSE_UNRECOVERABLE;

const SEC: Duration = Duration::from_secs(1);

type Session = ClientSession<&'static str>;

fn config() -> SessionConfig {
    SessionConfig {
        reliable: true,
        auto_reconnect: true,
        auto_rejoin_groups: true,
        message_retry: RetryPolicy::MESSAGE_DEFAULT,
        reconnect_retry: RetryPolicy::RECONNECT_DEFAULT,
        start_timeout: 30 * SEC,
        ack_timeout: Some(30 * SEC),
        keepalive_interval: 20 * SEC,
        keepalive_timeout: 120 * SEC,
        max_pending: 4,
        recovery: RecoveryPolicy::default(),
        seed: 7,
    }
}

fn drain(s: &mut Session) -> Vec<Action<&'static str>> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn connected(id: &str) -> Incoming {
    Incoming::Frame(Inbound::Connected {
        connection_id: id.into(),
        user_id: None,
        reconnection_token: Some(Secret::new("token")),
    })
}

fn ack(ack_id: AckId) -> Incoming {
    Incoming::Frame(Inbound::Ack {
        ack_id,
        success: true,
        error: None,
    })
}

fn join(group: &str) -> Outbound {
    Outbound::JoinGroup {
        group: group.into(),
        ack_id: None,
    }
}

fn joined(group: &str, ack_id: AckId) -> Action<&'static str> {
    Action::Send(Outbound::JoinGroup {
        group: group.into(),
        ack_id: Some(ack_id),
    })
}

/// A session connected as `conn` on socket 1 at `t0`, its actions drained.
fn up(t0: Instant) -> Session {
    let mut s = Session::new(config(), t0);
    s.start(t0);
    assert_eq!(
        drain(&mut s),
        [Action::Open(SocketId(1), OpenKind::Connect)]
    );
    assert!(s.on_socket_opened(SocketId(1), t0));
    s.on_frame(SocketId(1), connected("conn"), t0);
    let started = Started {
        connection_id: "conn".into(),
        user_id: None,
    };
    let connected_event = SessionEvent::Connected {
        connection_id: "conn".into(),
        user_id: None,
    };
    assert_eq!(
        drain(&mut s),
        [
            Action::StartDone(Ok(started)),
            Action::Emit(connected_event)
        ]
    );
    s
}

/// Drops socket 1 abruptly and opens the recovery socket 2.
fn recovering(s: &mut Session, t: Instant) {
    s.on_socket_lost(SocketId(1), None, t);
    let actions = drain(s);
    assert_eq!(actions[0], Action::Drop);
    assert!(matches!(
        actions[1],
        Action::Emit(SessionEvent::Recovering { .. })
    ));
    assert!(
        matches!(&actions[2], Action::Open(SocketId(2), OpenKind::Recover { connection_id, .. }) if connection_id == "conn")
    );
    assert!(s.on_socket_opened(SocketId(2), t));
}

#[test]
fn operations_submitted_before_connected_go_out_once_it_arrives() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    assert_eq!(
        (s.submit(join("a"), t0), drain(&mut s)),
        (
            OpId(1),
            vec![Action::Resolve(OpId(1), Err(OpError::NotStarted))]
        )
    );
    s.start(t0);
    drain(&mut s);
    let op = s.submit(join("a"), t0);
    assert_eq!(drain(&mut s), [], "no socket yet");
    assert!(s.on_socket_opened(SocketId(1), t0));
    s.on_frame(SocketId(1), connected("conn"), t0);
    assert_eq!(drain(&mut s)[0], joined("a", 1));
    s.on_frame(SocketId(1), ack(1), t0);
    let acked = Acked {
        ack_id: Some(1),
        duplicated: false,
    };
    assert_eq!(drain(&mut s), [Action::Resolve(op, Ok(acked))]);
    assert_eq!(s.groups().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn a_recovery_resends_in_flight_operations_with_their_ack_ids_and_confirms_on_a_frame() {
    let t0 = Instant::now();
    let mut s = up(t0);
    s.submit(join("a"), t0);
    drain(&mut s);
    recovering(&mut s, t0 + SEC);
    assert_eq!(
        drain(&mut s),
        [joined("a", 1)],
        "resent at once, same ack id"
    );
    // Submitted while unconfirmed: waits for the confirmation.
    s.submit(join("b"), t0 + SEC);
    assert_eq!(drain(&mut s), []);
    s.on_frame(SocketId(2), ack(1), t0 + 2 * SEC);
    let actions = drain(&mut s);
    assert_eq!(actions[0], joined("b", 2), "sent at the confirmation");
    assert!(actions.contains(&Action::Emit(SessionEvent::Recovered {
        connection_id: "conn".into(),
        after: SEC,
    })));
    assert_eq!((s.counters().recoveries, s.counters().resends), (1, 1));
}

#[test]
fn a_recovered_socket_confirms_after_a_second_open_but_not_on_disconnected() {
    let t0 = Instant::now();
    let mut s = up(t0);
    recovering(&mut s, t0);
    drain(&mut s);
    let disconnected = Incoming::Frame(Inbound::Disconnected { message: None });
    s.on_frame(SocketId(2), disconnected, t0);
    assert_eq!(drain(&mut s), [], "disconnected proves nothing");
    assert_eq!(s.next_wake(), Some(t0 + RECOVERY_CONFIRM));
    s.on_tick(t0 + RECOVERY_CONFIRM);
    let recovered = SessionEvent::Recovered {
        connection_id: "conn".into(),
        after: RECOVERY_CONFIRM,
    };
    assert_eq!(drain(&mut s), [Action::Emit(recovered)]);
}

#[test]
fn a_refused_recovery_reconnects_fails_orphans_and_rejoins() {
    let t0 = Instant::now();
    let mut s = up(t0);
    s.submit(join("a"), t0);
    s.on_frame(SocketId(1), ack(1), t0);
    let op = s.submit(join("b"), t0);
    drain(&mut s);
    recovering(&mut s, t0);
    drain(&mut s);
    s.on_socket_lost(SocketId(2), Some(CLOSE_UNRECOVERABLE), t0);
    let actions = drain(&mut s);
    let failed = Action::Resolve(op, Err(OpError::ConnectionLost { ack_id: 2 }));
    assert_eq!(actions[..2], [Action::Drop, failed]);
    assert!(matches!(
        actions[2],
        Action::Emit(SessionEvent::Disconnected { .. })
    ));
    assert!(
        matches!(actions[3], Action::Emit(SessionEvent::Reconnecting { attempt: 1, delay }) if delay == Duration::ZERO)
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Emit(SessionEvent::Recovered { .. })))
    );
    s.on_tick(t0);
    assert_eq!(
        drain(&mut s),
        [Action::Open(SocketId(4), OpenKind::Connect)]
    );
    assert!(s.on_socket_opened(SocketId(4), t0));
    s.on_frame(SocketId(4), connected("conn2"), t0);
    assert_eq!(drain(&mut s)[0], joined("a", 3), "rejoin with a new ack id");
    s.on_frame(SocketId(4), ack(3), t0);
    let rejoined = SessionEvent::Rejoined { group: "a".into() };
    assert_eq!(drain(&mut s), [Action::Emit(rejoined)]);
    assert_eq!(s.counters().reconnects, 1);
}

#[test]
fn a_retriable_failure_is_resent_with_the_same_ack_id_after_its_delay() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let op = s.submit(join("a"), t0);
    drain(&mut s);
    let failed = |name| {
        Incoming::Frame(Inbound::Ack {
            ack_id: 1,
            success: false,
            error: Some(AckError {
                name,
                message: String::new(),
            }),
        })
    };
    s.on_frame(SocketId(1), failed(AckErrorName::InternalServerError), t0);
    assert_eq!(drain(&mut s), []);
    let retry_at = t0 + RetryPolicy::MESSAGE_DEFAULT.delay;
    assert_eq!(s.next_wake(), Some(retry_at));
    s.on_tick(retry_at - Duration::from_millis(1));
    assert_eq!(drain(&mut s), []);
    s.on_tick(retry_at);
    assert_eq!(drain(&mut s), [joined("a", 1)]);
    s.on_frame(SocketId(1), failed(AckErrorName::Forbidden), retry_at);
    let error = AckError {
        name: AckErrorName::Forbidden,
        message: String::new(),
    };
    let refused = Action::Resolve(op, Err(OpError::Ack { ack_id: 1, error }));
    assert_eq!(drain(&mut s), [refused], "not retriable");
    assert_eq!(s.counters().resends, 1);
}

#[test]
fn deadlines_fail_operations_and_starts_and_wake_the_caller() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let op = s.submit(join("a"), t0);
    drain(&mut s);
    assert_eq!(s.next_wake(), Some(t0 + 20 * SEC), "the ping comes first");
    s.on_tick(t0 + 30 * SEC);
    let actions = drain(&mut s);
    let timeout = OpError::AckTimeout {
        ack_id: 1,
        after: 30 * SEC,
    };
    assert_eq!(
        actions,
        [
            Action::Resolve(op, Err(timeout)),
            Action::Send(Outbound::Ping)
        ]
    );
    // A first start that never gets `connected` fails with the start timeout.
    let mut s = Session::new(config(), t0);
    s.start(t0);
    drain(&mut s);
    assert_eq!(s.next_wake(), None, "no deadline until the socket opened");
    assert!(s.on_socket_opened(SocketId(1), t0));
    assert_eq!(s.next_wake(), Some(t0 + 30 * SEC));
    s.on_tick(t0 + 30 * SEC);
    let failure = SessionStop::StartFailed(ConnectFailure::StartTimeout(30 * SEC));
    let actions = drain(&mut s);
    assert_eq!(actions[..2], [Action::Drop, Action::Drop]);
    assert_eq!(actions[2], Action::StartDone(Err(failure.clone())));
    assert_eq!(actions[3], Action::Emit(SessionEvent::Stopped(failure)));
}

#[test]
fn stop_fails_pending_reports_once_and_ignores_everything_after() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let op = s.submit(join("a"), t0);
    drain(&mut s);
    s.stop(t0);
    let stopped = OpError::Stopped { ack_id: Some(1) };
    let disconnected = SessionEvent::Disconnected {
        connection_id: Some("conn".into()),
        message: None,
    };
    assert_eq!(
        drain(&mut s),
        [
            Action::Close,
            Action::Resolve(op, Err(stopped)),
            Action::Emit(disconnected),
            Action::Drop,
            Action::Emit(SessionEvent::Stopped(SessionStop::Requested)),
        ]
    );
    // The old socket's frames, its loss, a second stop and ticks change nothing.
    s.on_frame(SocketId(1), ack(1), t0);
    s.on_socket_lost(SocketId(1), None, t0);
    s.stop(t0);
    s.on_tick(t0 + 100 * SEC);
    assert_eq!((drain(&mut s), s.next_wake()), (vec![], None));
}

#[test]
fn too_many_pending_and_fire_and_forget_answer_at_once() {
    let t0 = Instant::now();
    let mut s = up(t0);
    for _ in 0..4 {
        s.submit(join("a"), t0);
    }
    drain(&mut s);
    let fifth = s.submit(join("a"), t0);
    let full = Action::Resolve(fifth, Err(OpError::TooManyPending { max: 4 }));
    assert_eq!(drain(&mut s), [full]);
    let sent = s.send_without_ack(Outbound::LeaveGroup {
        group: "x".into(),
        ack_id: Some(9),
    });
    assert_eq!(sent.map(|a| a.ack_id), Ok(None));
    let leave = Outbound::LeaveGroup {
        group: "x".into(),
        ack_id: None,
    };
    assert_eq!(
        drain(&mut s),
        [Action::Send(leave)],
        "the ack id is removed"
    );
    s.on_socket_lost(SocketId(1), None, t0);
    assert_eq!(s.send_without_ack(join("y")), Err(OpError::NotConnected));
}

#[test]
fn a_plain_protocol_reconnects_and_duplicates_are_dropped_but_reacked() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let message = |id| {
        Incoming::Frame(Inbound::ServerMessage {
            sequence_id: Some(id),
            data: Payload::Text("x".into()),
        })
    };
    s.on_frame(SocketId(1), message(1), t0);
    s.on_frame(SocketId(1), message(1), t0);
    assert_eq!(drain(&mut s).len(), 1, "the duplicate is dropped");
    s.on_tick(t0 + SEC);
    let seq_ack = Outbound::SequenceAck { sequence_id: 1 };
    assert_eq!(drain(&mut s), [Action::Send(seq_ack)]);
    let mut plain = Session::new(
        SessionConfig {
            reliable: false,
            ..config()
        },
        t0,
    );
    plain.start(t0);
    plain.on_socket_opened(SocketId(1), t0);
    plain.on_frame(SocketId(1), connected("conn"), t0);
    drain(&mut plain);
    plain.on_socket_lost(SocketId(1), None, t0);
    let actions = drain(&mut plain);
    assert!(
        matches!(actions[2], Action::Emit(SessionEvent::Reconnecting { delay, .. }) if delay < RECONNECT_SPREAD)
    );
}

/// Found by the simulator (seed 1): a rejoin retried, or queued, after the user's own leave
/// of the group put the client back into it.
#[test]
fn a_rejoin_never_undoes_a_later_leave_of_the_same_group() {
    let t0 = Instant::now();
    let leave = |group: &str| Outbound::LeaveGroup {
        group: group.into(),
        ack_id: None,
    };
    let reconnect = |s: &mut Session, socket: u64, id: &str| {
        s.on_socket_lost(SocketId(socket - 2), Some(CLOSE_UNRECOVERABLE), t0);
        s.on_tick(t0 + SEC);
        drain(s);
        assert!(s.on_socket_opened(SocketId(socket), t0 + SEC));
        s.on_frame(SocketId(socket), connected(id), t0 + SEC);
    };
    // The rejoin of "a" fails retriably; the user leaves "a" before the retry is due.
    let mut s = up(t0);
    s.submit(join("a"), t0);
    s.on_frame(SocketId(1), ack(1), t0);
    drain(&mut s);
    reconnect(&mut s, 3, "conn2");
    assert_eq!(drain(&mut s)[0], joined("a", 2));
    let internal_error = Incoming::Frame(Inbound::Ack {
        ack_id: 2,
        success: false,
        error: Some(AckError {
            name: AckErrorName::InternalServerError,
            message: String::new(),
        }),
    });
    s.on_frame(SocketId(3), internal_error, t0 + SEC);
    s.submit(leave("a"), t0 + SEC);
    s.on_frame(SocketId(3), ack(3), t0 + SEC);
    drain(&mut s);
    s.on_tick(t0 + 10 * SEC);
    let sent: Vec<_> = drain(&mut s);
    assert!(
        !sent.contains(&joined("a", 2)),
        "the rejoin is not retried: {sent:?}"
    );
    assert_eq!(s.groups().count(), 0);
    // A leave still queued when the new connection comes up: no rejoin follows it.
    let mut s = up(t0);
    s.submit(join("b"), t0);
    s.on_frame(SocketId(1), ack(1), t0);
    s.on_socket_lost(SocketId(1), Some(CLOSE_UNRECOVERABLE), t0);
    s.submit(leave("b"), t0);
    s.on_tick(t0 + SEC);
    drain(&mut s);
    assert!(s.on_socket_opened(SocketId(3), t0 + SEC));
    s.on_frame(SocketId(3), connected("conn2"), t0 + SEC);
    let sent: Vec<_> = drain(&mut s)
        .into_iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .collect();
    let left = Outbound::LeaveGroup {
        group: "b".into(),
        ack_id: Some(2),
    };
    assert_eq!(
        sent,
        [Action::Send(left)],
        "the leave alone, no rejoin after it"
    );
}

fn invoke_frame(id: &str) -> Action<&'static str> {
    Action::Send(Outbound::Invoke {
        invocation_id: id.into(),
        event: "e".into(),
        data: Payload::Text("q".into()),
    })
}

fn cancel_frame(id: &str) -> Action<&'static str> {
    Action::Send(Outbound::CancelInvocation {
        invocation_id: id.into(),
    })
}

fn invoke_response(id: &str, success: bool) -> Incoming {
    Incoming::Frame(Inbound::InvokeResponse {
        invocation_id: id.into(),
        success,
        data: success.then(|| Payload::Text("a".into())),
        error: (!success).then(|| AckError {
            name: AckErrorName::Other("InvocationFailed".into()),
            message: "500".into(),
        }),
    })
}

#[test]
fn invocations_are_answered_by_id_and_late_answers_are_ignored() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let first = s.invoke("e".into(), Payload::Text("q".into()), Some(SEC), t0);
    let second = s.invoke("e".into(), Payload::Text("q".into()), Some(SEC), t0);
    assert_eq!(drain(&mut s), [invoke_frame("1"), invoke_frame("2")]);
    // Answered out of order: each reaches its own caller.
    s.on_frame(SocketId(1), invoke_response("2", false), t0);
    s.on_frame(SocketId(1), invoke_response("1", true), t0);
    let refused = InvokeFailure::Refused {
        invocation_id: "2".into(),
        error: AckError {
            name: AckErrorName::Other("InvocationFailed".into()),
            message: "500".into(),
        },
    };
    let ok = Invoked {
        invocation_id: "1".into(),
        data: Some(Payload::Text("a".into())),
    };
    assert_eq!(
        drain(&mut s),
        [
            Action::Invoked(second, Err(refused)),
            Action::Invoked(first, Ok(ok))
        ]
    );
    // A second answer to the same id is a late one: nothing.
    s.on_frame(SocketId(1), invoke_response("1", true), t0);
    assert_eq!(drain(&mut s), []);
}

#[test]
fn an_invocation_times_out_is_cancelled_on_drop_and_on_stop() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let timed = s.invoke("e".into(), Payload::Text("q".into()), Some(SEC), t0);
    let dropped = s.invoke("e".into(), Payload::Text("q".into()), None, t0);
    let stopped = s.invoke("e".into(), Payload::Text("q".into()), None, t0);
    drain(&mut s);
    assert_eq!(
        s.next_wake(),
        Some(t0 + SEC),
        "the invoke deadline wakes the caller"
    );
    s.on_tick(t0 + SEC);
    let timeout = InvokeFailure::Timeout {
        invocation_id: "1".into(),
        after: SEC,
    };
    assert_eq!(
        drain(&mut s),
        [cancel_frame("1"), Action::Invoked(timed, Err(timeout))]
    );
    // The caller dropped its future: cancel on the wire, nothing answered.
    s.cancel_invocation(dropped);
    assert_eq!(drain(&mut s), [cancel_frame("2")]);
    s.cancel_invocation(dropped);
    assert_eq!(drain(&mut s), [], "a second cancel is a no-op");
    // A stop cancels before it closes.
    s.stop(t0 + SEC);
    let actions = drain(&mut s);
    let failed = InvokeFailure::Stopped {
        invocation_id: "3".into(),
    };
    assert_eq!(
        actions[..3],
        [
            cancel_frame("3"),
            Action::Invoked(stopped, Err(failed)),
            Action::Close
        ]
    );
}

#[test]
fn invocations_need_a_connection_are_bounded_and_fail_when_it_is_lost() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let early = s.invoke("e".into(), Payload::Text("q".into()), None, t0);
    assert_eq!(
        drain(&mut s),
        [Action::Invoked(early, Err(InvokeFailure::NotStarted))]
    );
    let mut s = up(t0);
    for _ in 0..4 {
        s.invoke("e".into(), Payload::Text("q".into()), None, t0);
    }
    drain(&mut s);
    let fifth = s.invoke("e".into(), Payload::Text("q".into()), None, t0);
    assert_eq!(
        drain(&mut s),
        [Action::Invoked(
            fifth,
            Err(InvokeFailure::TooManyPending { max: 4 })
        )]
    );
    // Lost for good (recovery refused): every invocation fails with ConnectionLost.
    s.on_socket_lost(SocketId(1), Some(CLOSE_UNRECOVERABLE), t0);
    let lost: Vec<_> = drain(&mut s)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::Invoked(_, Err(InvokeFailure::ConnectionLost { .. }))
            )
        })
        .collect();
    assert_eq!(lost.len(), 4);
    assert_eq!(s.invocations.len(), 0);
}

#[test]
fn the_identity_epoch_moves_whenever_the_connection_or_user_does() {
    let t0 = Instant::now();
    let mut s = up(t0);
    let mut seen = vec![(s.identity_epoch(), s.connection_id().map(str::to_owned))];
    let mut step = |s: &mut Session| {
        drain(s);
        seen.push((s.identity_epoch(), s.connection_id().map(str::to_owned)));
    };
    let message = Incoming::Frame(Inbound::GroupMessage {
        sequence_id: Some(1),
        group: "g".into(),
        from_user_id: None,
        data: crate::protocol::Payload::Text("x".into()),
    });
    s.on_frame(SocketId(1), message, t0);
    step(&mut s);
    recovering(&mut s, t0);
    step(&mut s);
    s.on_socket_lost(SocketId(2), Some(CLOSE_UNRECOVERABLE), t0);
    step(&mut s);
    s.on_tick(t0);
    assert!(s.on_socket_opened(SocketId(4), t0));
    s.on_frame(SocketId(4), connected("conn2"), t0);
    step(&mut s);
    s.stop(t0);
    step(&mut s);
    // A message changes nothing; every change of the connection changed the epoch.
    assert_eq!(seen[0], seen[1]);
    for pair in seen.windows(2) {
        if pair[0].1 != pair[1].1 {
            assert_ne!(pair[0].0, pair[1].0, "{seen:?}");
        }
    }
    let ids: Vec<_> = seen.iter().map(|(_, id)| id.as_deref()).collect();
    assert_eq!(
        ids,
        [
            Some("conn"),
            Some("conn"),
            Some("conn"),
            None,
            Some("conn2"),
            None
        ]
    );
}
