//! `ce-signature`: how an event handler knows an event comes from a holder of the access key
//! (protocol.md 8.2). The service (and the local hub) signs the connection id of each event
//! with every access key; the handler accepts an event that carries the signature of one of
//! its keys.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::protocol::Secret;

/// `sha256={hex(HMAC-SHA256(key, connection id))}`: one entry of a `ce-signature` header (the
/// service joins one per access key with `,`).
pub fn event_signature(key: &Secret, connection_id: &str) -> String {
    let mut mac = mac(key);
    mac.update(connection_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether a `ce-signature` header value holds the signature of `connection_id` by one of
/// `keys`. Each entry is compared in constant time (`Mac::verify_slice`), so how long the
/// check takes says nothing about how much of a forged signature was right.
pub fn signature_matches(header: &str, keys: &[Secret], connection_id: &str) -> bool {
    header
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("sha256="))
        .filter_map(decode_hex)
        .any(|digest| {
            keys.iter().any(|key| {
                let mut mac = mac(key);
                mac.update(connection_id.as_bytes());
                mac.verify_slice(&digest).is_ok()
            })
        })
}

fn mac(key: &Secret) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC accepts any key length")
}

/// Lower- or upper-case hex to bytes; `None` for anything else (or an odd length).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || hex.len() > 128 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex_of_the_connection_id() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = event_signature(&Secret::new("Jefe"), "what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn any_key_and_any_entry_may_match() {
        let (a, b) = (Secret::new("key-a"), Secret::new("key-b"));
        let header = format!(
            "{}, {}",
            event_signature(&a, "conn"),
            event_signature(&b, "conn")
        );
        assert!(signature_matches(&header, std::slice::from_ref(&b), "conn"));
        assert!(signature_matches(
            &header,
            &[Secret::new("x"), a.clone()],
            "conn"
        ));
        assert!(!signature_matches(&header, &[Secret::new("x")], "conn"));
        // Signed for another connection, or garbage: refused, never a panic.
        assert!(!signature_matches(
            &header,
            std::slice::from_ref(&a),
            "other"
        ));
        for garbage in [
            "",
            ",,",
            "sha256=",
            "sha256=zz",
            "sha256=abc",
            "sha1=00",
            "sha256=é1",
        ] {
            assert!(
                !signature_matches(garbage, std::slice::from_ref(&a), "conn"),
                "{garbage}"
            );
        }
        let upper = event_signature(&a, "conn")
            .to_ascii_uppercase()
            .replace("SHA256=", "sha256=");
        assert!(signature_matches(&upper, &[a], "conn"));
    }
}
