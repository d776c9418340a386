//! What more than one fuzz target checks.

use webpubsub_fleet::protocol::ProtocolError;

/// Longest error message a decoder may produce. The hub sends it back in a failed ack or a
/// close reason and clients log it: a peer's megabyte must not come back in it.
pub const MAX_ERROR_LEN: usize = 512;

/// The decoded frame, or `None` after checking that the error's message is short.
pub fn decoded_or_short_error<T>(result: Result<T, ProtocolError>) -> Option<T> {
    match result {
        Ok(frame) => Some(frame),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "error message of {} bytes",
                message.len()
            );
            None
        }
    }
}

/// Checks that a `connected` frame's `Debug` output does not depend on its reconnection token
/// (whichever codec decoded it): the token is a secret and must never reach a log line.
pub fn assert_reconnection_token_hidden(frame: &webpubsub_fleet::protocol::Inbound) {
    use webpubsub_fleet::protocol::{Inbound, Secret};
    if let Inbound::Connected {
        connection_id,
        user_id,
        reconnection_token: Some(_),
    } = frame
    {
        let other = Inbound::Connected {
            connection_id: connection_id.clone(),
            user_id: user_id.clone(),
            reconnection_token: Some(Secret::new("another token")),
        };
        assert_eq!(
            format!("{frame:?}"),
            format!("{other:?}"),
            "the reconnection token shows in Debug"
        );
    }
}
