//! What the hub does with each client request (protocol.md 2.2, 8.4): permission checks,
//! ack-id dedupe, group operations, publishing, events. No socket I/O here: the socket actor
//! writes the returned reply and performs the returned action.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::faults::AckFault;
use super::names;
use super::roles::Permission;
use super::state::{Connection, HubState, JoinRefused, Publication};
use super::stats::bump;
use super::upstream::Reply;
use crate::protocol::{AckError, AckErrorName, AckId, Inbound, Outbound, Payload};

/// What the socket must do after a request.
#[derive(Debug)]
pub(crate) enum After {
    /// Nothing more.
    Continue,
    /// Drop the socket abruptly (the `close_after_processing` fault).
    DropSocket,
    /// End the connection with this reason (close 1008: it cannot be recovered): an event
    /// without an ack id whose handler call failed, as the service drops such a connection.
    EndConnection(String),
    /// Wait for the event handler's reply, then ack (with this ack id, if any) and forward
    /// the reply's body to the client.
    AwaitHandler {
        /// The request's ack id.
        ack_id: Option<AckId>,
        /// Where the reply arrives.
        reply: tokio::sync::oneshot::Receiver<Reply>,
    },
}

/// The socket's response to one request: a frame to write at once (ack or pong) and what next.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Ack or pong to write.
    pub(crate) reply: Option<Inbound>,
    /// Follow-up.
    pub(crate) after: After,
}

impl Outcome {
    fn none() -> Outcome {
        Outcome {
            reply: None,
            after: After::Continue,
        }
    }
}

/// The result of executing an operation, before it becomes an ack.
enum Done {
    Ok,
    Failed(AckErrorName, String),
    /// Sent to the event handler; the ack waits for its reply.
    Pending(tokio::sync::oneshot::Receiver<Reply>),
}

/// Handles one decoded request of a JSON-subprotocol connection.
pub(crate) fn handle(state: &HubState, conn: &Arc<Connection>, request: Outbound) -> Outcome {
    bump(&state.stats.messages_in);
    match request {
        Outbound::Ping => Outcome {
            reply: Some(Inbound::Pong),
            after: After::Continue,
        },
        Outbound::SequenceAck { sequence_id } => {
            bump(&state.stats.sequence_acks);
            state.sequence_ack(conn, sequence_id);
            Outcome::none()
        }
        other => {
            let ack_id = other.ack_id();
            if let Some(id) = ack_id {
                if !conn.claim_ack(id, state.config.remembered_ack_ids) {
                    bump(&state.stats.duplicates);
                    return ack(
                        state,
                        id,
                        Done::Failed(
                            AckErrorName::Duplicate,
                            format!("Message with ack-id: {id} has been processed"),
                        ),
                    );
                }
            }
            let done = execute(state, conn, other);
            if let Some(id) = ack_id {
                if !matches!(done, Done::Ok | Done::Pending(_)) {
                    // Only operations that took effect are remembered: a request refused
                    // for lack of permission is judged again if retried after a grant.
                    conn.release_ack(id);
                }
            }
            match (done, ack_id) {
                (Done::Pending(reply), ack_id) => Outcome {
                    reply: None,
                    after: After::AwaitHandler { ack_id, reply },
                },
                (_, None) => Outcome::none(),
                (done, Some(id)) => ack(state, id, done),
            }
        }
    }
}

fn execute(state: &HubState, conn: &Arc<Connection>, request: Outbound) -> Done {
    match request {
        Outbound::JoinGroup { group, .. } => group_op(state, conn, &group, "join", |s, c, g| {
            match s.join(c, g) {
                Err(JoinRefused::TooManyGroups(cap)) => Some(format!(
                    "The connection is already in {cap} groups, the most the hub allows: leave one first"
                )),
                // A connection that is gone gets no ack anyway.
                Err(JoinRefused::Gone) | Ok(()) => None,
            }
        }),
        Outbound::LeaveGroup { group, .. } => group_op(state, conn, &group, "leave", |s, c, g| {
            s.leave(c, g);
            None
        }),
        Outbound::SendToGroup {
            group,
            no_echo,
            data,
            ..
        } => {
            if let Some(problem) = names::group_name_problem(&group) {
                return Done::Failed(AckErrorName::Other("BadRequest".into()), problem.to_owned());
            }
            if !conn.allows(Permission::SendToGroup, &group) {
                bump(&state.stats.forbidden);
                return Done::Failed(
                    AckErrorName::Forbidden,
                    format!("The client has no permission to send message to group '{group}'."),
                );
            }
            publish(state, conn, &group, no_echo, data);
            Done::Ok
        }
        Outbound::Event { event, data, .. } => {
            if let Some(problem) = names::event_name_problem(&event) {
                return Done::Failed(AckErrorName::Other("BadRequest".into()), problem.to_owned());
            }
            if let Some(reply) = state.invoke(conn, &event, &data) {
                return Done::Pending(reply);
            }
            if state.config.echo_events {
                state.deliver(conn, &Publication::server(data));
            }
            Done::Ok
        }
        // Handled in `handle`, and by the socket (which holds the invocations in flight).
        Outbound::SequenceAck { .. }
        | Outbound::Ping
        | Outbound::Invoke { .. }
        | Outbound::CancelInvocation { .. } => Done::Ok,
    }
}

fn group_op(
    state: &HubState,
    conn: &Arc<Connection>,
    group: &str,
    verb: &str,
    op: impl FnOnce(&HubState, &Arc<Connection>, &str) -> Option<String>,
) -> Done {
    if let Some(problem) = names::group_name_problem(group) {
        return Done::Failed(AckErrorName::Other("BadRequest".into()), problem.to_owned());
    }
    if !conn.allows(Permission::JoinLeaveGroup, group) {
        bump(&state.stats.forbidden);
        return Done::Failed(
            AckErrorName::Forbidden,
            format!("The client has no permission to {verb} group '{group}'."),
        );
    }
    match op(state, conn, group) {
        None => Done::Ok,
        Some(problem) => Done::Failed(AckErrorName::Other("BadRequest".into()), problem),
    }
}

/// Publishes to a group: every member receives it, except the sender when `no_echo`.
pub(crate) fn publish(
    state: &HubState,
    conn: &Arc<Connection>,
    group: &str,
    no_echo: bool,
    data: Payload,
) {
    let publication = Publication::group(group, conn.user_id.as_deref(), data);
    let scope = state.scope(&conn.hub);
    state.publish_to_group(&scope, group, &publication, |member| {
        no_echo && member.id == conn.id
    });
}

/// The event handler replied: forward a reply body to the client, and ack if asked to.
pub(crate) fn handler_replied(
    state: &HubState,
    conn: &Arc<Connection>,
    ack_id: Option<AckId>,
    reply: Reply,
) -> Outcome {
    let done = match accept_reply(conn, reply) {
        Ok(data) => {
            if let Some(data) = data {
                state.deliver(conn, &Publication::server(data));
            }
            Done::Ok
        }
        Err(reason) => {
            let Some(id) = ack_id else {
                // No ack to carry the failure: the service drops the connection (protocol.md
                // 8.2); with an ack id it answers an `InvocationFailed` ack instead.
                return Outcome {
                    reply: None,
                    after: After::EndConnection(format!("The event handler failed: {reason}")),
                };
            };
            // The event did not take effect: like a refused request, its ack id is judged
            // again if the client retries it.
            conn.release_ack(id);
            Done::Failed(AckErrorName::Other("InvocationFailed".into()), reason)
        }
    };
    match ack_id {
        Some(id) => ack(state, id, done),
        None => Outcome::none(),
    }
}

fn ack(state: &HubState, ack_id: AckId, done: Done) -> Outcome {
    match state.faults.take_ack_fault() {
        Some(AckFault::Withhold) => return Outcome::none(),
        Some(AckFault::DropSocket) => {
            return Outcome {
                reply: None,
                after: After::DropSocket,
            };
        }
        None => {}
    }
    state.stats.acks.fetch_add(1, Relaxed);
    let (success, error) = match done {
        Done::Ok | Done::Pending(_) => (true, None),
        Done::Failed(name, message) => (false, Some(AckError { name, message })),
    };
    Outcome {
        reply: Some(Inbound::Ack {
            ack_id,
            success,
            error,
        }),
        after: After::Continue,
    }
}

/// Longest `invocationId` the hub accepts: it is echoed in the response and kept while the
/// call is in flight.
pub(crate) const MAX_INVOCATION_ID: usize = 128;

/// Where an `invoke` goes: answered at once, or waiting for the event handler.
#[derive(Debug)]
pub(crate) enum InvokeStart {
    /// The response to write now.
    Answer(Inbound),
    /// The handler was called; its reply arrives here.
    Await(tokio::sync::oneshot::Receiver<Reply>),
}

/// An `invoke` (protocol.md 8.3): refused at once when its id is too long or already in
/// flight, or when `in_flight` calls already are; else sent to the event handler as the user
/// event `event` (the same call as an `event` frame), or echoed with `echo_events`.
pub(crate) fn invoke(
    state: &HubState,
    conn: &Connection,
    in_flight: usize,
    duplicate: bool,
    invocation_id: &str,
    event: &str,
    data: Payload,
) -> InvokeStart {
    bump(&state.stats.messages_in);
    let refuse = |name: &str, message: String| {
        InvokeStart::Answer(invoke_failed(invocation_id, name, message))
    };
    if invocation_id.chars().count() > MAX_INVOCATION_ID {
        return refuse(
            "BadRequest",
            format!("invocationId is longer than {MAX_INVOCATION_ID} characters: use a shorter id"),
        );
    }
    if duplicate {
        return refuse(
            "Duplicate",
            format!("Invocation {invocation_id} is already in flight: use a new invocationId"),
        );
    }
    let max = state.config.max_invocations_per_connection;
    if in_flight >= max {
        return refuse(
            "TooManyInvocations",
            format!("{max} invocations of this connection are in flight: await some first"),
        );
    }
    if let Some(problem) = names::event_name_problem(event) {
        return refuse("BadRequest", problem.to_owned());
    }
    if let Some(reply) = state.invoke(conn, event, &data) {
        return InvokeStart::Await(reply);
    }
    if state.config.echo_events {
        return InvokeStart::Answer(Inbound::InvokeResponse {
            invocation_id: invocation_id.to_owned(),
            success: true,
            data: Some(data),
            error: None,
        });
    }
    refuse(
        "InvocationFailed",
        "No event handler is configured for this hub: configure one, or turn on echo_events"
            .to_owned(),
    )
}

/// The event handler answered an invocation: its body (data type by `Content-Type`, as for
/// user events) in a successful response, or its failure in a failed one.
pub(crate) fn invoke_replied(conn: &Connection, invocation_id: String, reply: Reply) -> Inbound {
    match accept_reply(conn, reply) {
        Ok(data) => Inbound::InvokeResponse {
            invocation_id,
            success: true,
            data,
            error: None,
        },
        Err(reason) => invoke_failed(&invocation_id, "InvocationFailed", reason),
    }
}

/// A handler's reply to a user event or invocation: a 2xx sets the connection state it
/// carries and gives its body; a failure gives its reason.
fn accept_reply(conn: &Connection, reply: Reply) -> Result<Option<Payload>, String> {
    match reply {
        Reply::Ok {
            data,
            connection_state,
        } => {
            if let Some(new_state) = connection_state {
                conn.set_handler_state(new_state);
            }
            Ok(data)
        }
        Reply::Failed(reason) => Err(reason),
    }
}

fn invoke_failed(invocation_id: &str, name: &str, message: String) -> Inbound {
    Inbound::InvokeResponse {
        invocation_id: invocation_id.to_owned(),
        success: false,
        data: None,
        error: Some(AckError {
            name: AckErrorName::from_wire(name),
            message,
        }),
    }
}

/// A frame that decoded as JSON but is not a valid request: if it carries a usable `ackId`, the
/// client gets a failed ack naming the problem (an `invoke` with a usable `invocationId`: a
/// failed `invokeResponse`) and the connection stays; otherwise `None` and the socket closes
/// it as malformed.
pub(crate) fn bad_request_ack(state: &HubState, text: &str, problem: &str) -> Option<Inbound> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("type").and_then(|t| t.as_str()) == Some("invoke") {
        let id = value.get("invocationId")?.as_str()?;
        if id.is_empty() || id.chars().count() > MAX_INVOCATION_ID {
            return None;
        }
        return Some(invoke_failed(id, "BadRequest", problem.to_owned()));
    }
    let ack_id = value.get("ackId")?.as_u64()?;
    state.stats.acks.fetch_add(1, Relaxed);
    Some(Inbound::Ack {
        ack_id,
        success: false,
        error: Some(AckError {
            name: AckErrorName::Other("BadRequest".into()),
            message: problem.to_owned(),
        }),
    })
}
