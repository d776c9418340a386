//! Which hub and group names the hub accepts (the service's REST rules, which the emulator also
//! applies to the WebSocket side), and the random identifiers it hands out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// Longest group name (RSPEC / emulator: 1024 characters).
pub(crate) const MAX_GROUP_NAME_CHARS: usize = 1024;

/// `^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$`, checked by hand: never build a regex from input.
pub(crate) fn is_valid_hub_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_alphabetic() => {}
        _ => return false,
    }
    bytes.len() <= 128
        && bytes[1..].iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'`' | b',' | b'.' | b'[' | b']')
        })
}

/// Why a group name is refused, or `None` when it is fine: 1..=1024 characters, not only
/// whitespace. Everything else (`*`, `?`, `.`, `\`, Unicode) is a literal part of the name.
pub(crate) fn group_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the group name is empty")
    } else if name.chars().all(char::is_whitespace) {
        Some("the group name is only whitespace")
    } else if name.chars().count() > MAX_GROUP_NAME_CHARS {
        Some("the group name is longer than 1024 characters")
    } else {
        None
    }
}

/// Longest event name, in bytes. The service documents no rule for event names (protocol.md
/// 8.2 only says `{event}` in the handler URL is replaced by it); 128 is the hub name's bound.
pub(crate) const MAX_EVENT_NAME_BYTES: usize = 128;

/// Why an event name is refused, or `None` when it is fine: 1..=128 bytes of ASCII letters,
/// digits, `_`, `-` and `.`, not starting with `.` or `-`. The name goes into the event
/// handler's URL path and into `ce-type`/`ce-eventName` headers, so nothing in it may end a
/// segment, start a query, resolve as `..`, or break a header line.
pub(crate) fn event_name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    match bytes.first() {
        None => Some("the event name is empty"),
        Some(_) if bytes.len() > MAX_EVENT_NAME_BYTES => {
            Some("the event name is longer than 128 bytes")
        }
        Some(b'.' | b'-') => Some("the event name must not start with `.` or `-`"),
        Some(_)
            if !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
        {
            Some("the event name may only hold ASCII letters, digits, `_`, `-` and `.`")
        }
        Some(_) => None,
    }
}

/// The key under which a hub's state is kept: hub names are case-insensitive in the service.
pub(crate) fn hub_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A new connection id: 16 random bytes, 22 URL-safe characters, like the service's ids.
pub(crate) fn new_connection_id() -> String {
    random_token(16)
}

/// A new reconnection token: 32 random bytes. It is stored with its connection and compared in
/// constant time, so it is only good for the connection it was issued to.
pub(crate) fn new_reconnection_token() -> String {
    random_token(32)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Compares two secrets without an early exit, so timing does not reveal a matching prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_follow_the_service_rule() {
        for ok in [
            "a",
            "chat",
            "Hub_1",
            "h`,.[]",
            &format!("h{}", "x".repeat(127)),
        ] {
            assert!(is_valid_hub_name(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "1hub",
            "_hub",
            "a-b",
            "a/b",
            "a b",
            "..",
            "a%2F",
            "é",
            &format!("h{}", "x".repeat(128)),
        ] {
            assert!(!is_valid_hub_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn group_names_are_literal_but_bounded() {
        for ok in [
            "g",
            "a.b",
            "*",
            "?",
            "\\",
            "grüße",
            " x ",
            &"é".repeat(1024),
        ] {
            assert_eq!(group_name_problem(ok), None, "{ok:?}");
        }
        assert!(group_name_problem("").is_some());
        assert!(group_name_problem(" \t ").is_some());
        assert!(group_name_problem(&"g".repeat(1025)).is_some());
    }

    #[test]
    fn event_names_are_url_and_header_safe() {
        for ok in ["message", "chat.message-1_x", "E", "_x", &"e".repeat(128)] {
            assert_eq!(event_name_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "a/b",
            "a?b",
            "a%2F",
            "a b",
            "a\r\nb",
            "é",
            &"e".repeat(129),
        ] {
            assert!(event_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn ids_have_the_expected_shape() {
        let id = new_connection_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_connection_id());
        assert_eq!(new_reconnection_token().len(), 43);
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
