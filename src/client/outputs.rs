//! What the session's outputs become for the client's users: its events, stop reasons,
//! operation results and errors are the session's, renamed into the public types of this
//! layer (the session may not name them: it sits below).

use std::sync::Arc;

use tracing::info;

use crate::session::{
    Acked, ClientSession, ConnectFailure, InvokeFailure, Invoked, OpError, SessionEvent,
    SessionState, SessionStop, Started,
};

use super::event::{Event, GroupMessage, ServerMessage, StopReason};
use super::messages::ClientStatus;
use super::{AckResult, ClientError, ClientState, ConnectionInfo, InvokeResponse};

/// The public event of a session event.
pub(super) fn event(event: SessionEvent<ClientError>) -> Event {
    match event {
        SessionEvent::Connected {
            connection_id,
            user_id,
        } => Event::Connected {
            connection_id,
            user_id,
        },
        SessionEvent::Disconnected {
            connection_id,
            message,
        } => Event::Disconnected {
            connection_id,
            message,
        },
        SessionEvent::Stopped(reason) => Event::Stopped {
            reason: stop_reason(reason),
        },
        SessionEvent::GroupMessage {
            group,
            from_user_id,
            data,
            sequence_id,
        } => Event::GroupMessage(Arc::new(GroupMessage {
            group,
            from_user_id,
            data,
            sequence_id,
        })),
        SessionEvent::ServerMessage { data, sequence_id } => {
            Event::ServerMessage(Arc::new(ServerMessage { data, sequence_id }))
        }
        SessionEvent::Rejoined { group } => Event::Rejoined { group },
        SessionEvent::RejoinGroupFailed { group, error } => Event::RejoinGroupFailed {
            group,
            error: op_error(error),
        },
        SessionEvent::Recovering { connection_id } => Event::Recovering { connection_id },
        SessionEvent::Recovered {
            connection_id,
            after,
        } => Event::Recovered {
            connection_id,
            after,
        },
        SessionEvent::Reconnecting { attempt, delay } => Event::Reconnecting { attempt, delay },
    }
}

fn stop_reason(reason: SessionStop<ClientError>) -> StopReason {
    match reason {
        SessionStop::Requested => StopReason::Requested,
        SessionStop::ConnectionLost => StopReason::ConnectionLost,
        SessionStop::ReconnectGaveUp(failure) => {
            StopReason::ReconnectGaveUp(connect_error(failure))
        }
        SessionStop::StartFailed(failure) => StopReason::StartFailed(connect_error(failure)),
    }
}

/// The log line of an event worth one at INFO (the others are counted, not logged).
pub(super) fn log(span: &tracing::Span, event: &Event) {
    match event {
        Event::Connected {
            connection_id,
            user_id,
        } => {
            span.record("connection_id", connection_id.as_str());
            info!(parent: span, user_id = ?user_id, "connected");
        }
        Event::Stopped { reason } => info!(parent: span, ?reason, "stopped"),
        Event::Recovering { .. } => info!(parent: span, "socket lost; recovering"),
        Event::Recovered { after, .. } => info!(parent: span, ?after, "recovered"),
        Event::Reconnecting { attempt, delay } => {
            info!(parent: span, attempt, ?delay, "reconnecting")
        }
        _ => {}
    }
}

/// What `start()` answers: the connection, or the first connection's error, or `Stopped`.
pub(super) fn start_result(
    result: Result<Started, SessionStop<ClientError>>,
) -> Result<ConnectionInfo, ClientError> {
    match result {
        Ok(started) => Ok(ConnectionInfo {
            connection_id: started.connection_id,
            user_id: started.user_id,
        }),
        Err(SessionStop::StartFailed(failure)) => Err(connect_error(failure)),
        Err(_) => Err(ClientError::Stopped { ack_id: None }),
    }
}

/// What an operation's future answers.
pub(super) fn op_result(result: Result<Acked, OpError>) -> Result<AckResult, ClientError> {
    match result {
        Ok(acked) => Ok(AckResult {
            ack_id: acked.ack_id,
            duplicated: acked.duplicated,
        }),
        Err(error) => Err(op_error(error)),
    }
}

/// The answer to an `invoke_event`.
pub(super) fn invoke_result(
    result: Result<Invoked, InvokeFailure>,
) -> Result<InvokeResponse, ClientError> {
    match result {
        Ok(invoked) => Ok(InvokeResponse {
            invocation_id: invoked.invocation_id,
            data: invoked.data,
        }),
        Err(InvokeFailure::Refused {
            invocation_id,
            error,
        }) => Err(ClientError::InvokeFailed {
            invocation_id,
            error,
        }),
        Err(InvokeFailure::Timeout {
            invocation_id,
            after,
        }) => Err(ClientError::InvokeTimeout {
            invocation_id,
            after,
        }),
        Err(InvokeFailure::ConnectionLost { invocation_id }) => {
            Err(ClientError::InvocationLost { invocation_id })
        }
        Err(InvokeFailure::Stopped { .. }) => Err(ClientError::Stopped { ack_id: None }),
        Err(InvokeFailure::NotStarted) => Err(ClientError::NotStarted),
        Err(InvokeFailure::NotConnected) => Err(ClientError::NotConnected),
        Err(InvokeFailure::TooManyPending { max }) => Err(ClientError::TooManyPending { max }),
    }
}

/// The status report of a session (`events_dropped` is the dispatcher's count).
pub(super) fn status(session: &ClientSession<ClientError>, events_dropped: u64) -> ClientStatus {
    let mut counters = session.counters().clone();
    counters.events_dropped = events_dropped;
    ClientStatus {
        state: client_state(session.state()),
        connection_id: session.connection_id().map(str::to_owned),
        user_id: session.user_id().map(str::to_owned),
        groups: session.groups().cloned().collect(),
        pending: session.pending_len(),
        counters,
    }
}

/// The public state of a session state.
pub(super) fn client_state(state: SessionState) -> ClientState {
    match state {
        SessionState::Stopped => ClientState::Stopped,
        SessionState::Connecting => ClientState::Connecting,
        SessionState::Connected => ClientState::Connected,
        SessionState::Recovering => ClientState::Recovering,
        SessionState::WaitingToReconnect => ClientState::Disconnected,
    }
}

fn connect_error(failure: ConnectFailure<ClientError>) -> ClientError {
    match failure {
        ConnectFailure::Open(error) => error,
        ConnectFailure::StartTimeout(after) => ClientError::StartTimeout(after),
        ConnectFailure::Closed(code) => ClientError::from_close(code),
    }
}

fn op_error(error: OpError) -> ClientError {
    match error {
        OpError::Ack { ack_id, error } => ClientError::Ack { ack_id, error },
        OpError::ConnectionLost { ack_id } => ClientError::ConnectionLost { ack_id },
        OpError::AckTimeout { ack_id, after } => ClientError::AckTimeout { ack_id, after },
        OpError::Stopped { ack_id } => ClientError::Stopped { ack_id },
        OpError::NotStarted => ClientError::NotStarted,
        OpError::NotConnected => ClientError::NotConnected,
        OpError::TooManyPending { max } => ClientError::TooManyPending { max },
    }
}
