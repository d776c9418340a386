//! The hub's token check (`validate_token`) against a fixed key and audience.
//!
//! Three kinds of input: an arbitrary token string; a token minted from arbitrary claims; a
//! minted token with one byte changed. Checks beyond "no panic":
//! - a minted token validates, and its claims are exactly what was minted (user, roles,
//!   groups, `exp` = `iat` + lifetime); it is refused under another key, at another
//!   audience and once expired;
//! - a changed token either fails or validates to the very same claims (base64 slack in
//!   the last character), never to other claims: nothing is forgeable without the key;
//! - any accepted token is refused under another key, and no error message contains the token.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::credential::{
    CredentialError, TOKEN_LEEWAY, TokenOptions, mint_client_token, validate_token,
};
use webpubsub_fleet::protocol::Secret;

const KEY: &str = "fuzzKeyAbc+/xyz0123456789=";
const OTHER_KEY: &str = "fuzzKeyAbc+/xyz0123456789";
const AUDIENCE: &str = "http://127.0.0.1:8080/client/hubs/chat";
const OTHER_AUDIENCE: &str = "http://127.0.0.1:8080/client/hubs/chat2";
/// 2026-01-01, when the seed tokens were minted with a 100-year lifetime.
const SEED_NOW: u64 = 1_767_225_600;

#[derive(Arbitrary, Debug)]
struct Claims {
    user_id: Option<String>,
    roles: Vec<String>,
    groups: Vec<String>,
    lifetime_secs: u32,
    now_secs: u32,
}

/// The first byte picks the kind of input: 0 a raw token (the rest, as text; so seeds are
/// `\0` + a token), 1 minted claims, 2 a minted token with one byte changed (both built
/// from the rest with `arbitrary`).
#[derive(Debug)]
enum Input {
    Raw(String),
    Minted(Claims),
    Tampered { claims: Claims, at: u16, byte: u8 },
}

impl Input {
    fn read(data: &[u8]) -> Option<Input> {
        let (&kind, rest) = data.split_first()?;
        let mut u = Unstructured::new(rest);
        Some(match kind % 3 {
            0 => Input::Raw(std::str::from_utf8(rest).ok()?.to_owned()),
            1 => Input::Minted(Claims::arbitrary_take_rest(u).ok()?),
            _ => Input::Tampered {
                at: u.arbitrary().ok()?,
                byte: u.arbitrary().ok()?,
                claims: Claims::arbitrary_take_rest(u).ok()?,
            },
        })
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn options(c: &Claims) -> TokenOptions {
    let mut o = TokenOptions::new()
        .roles(c.roles.clone())
        .groups(c.groups.clone())
        .lifetime(Duration::from_secs(u64::from(c.lifetime_secs).max(1)));
    if let Some(user) = &c.user_id {
        o = o.user_id(user.clone());
    }
    o
}

fn mint(c: &Claims) -> (String, u64) {
    let now = SEED_NOW + u64::from(c.now_secs);
    let token = mint_client_token(&Secret::new(KEY), AUDIENCE, &options(c), at(now))
        .expect("minting with a key and a lifetime succeeds");
    (token.expose().to_owned(), now)
}

fn assert_no_leak(token: &str, e: &CredentialError) {
    // Only token-shaped inputs (two dots): a fuzzer can otherwise hand in a piece of the
    // error message's own fixed text as the "token" and find it in the message.
    if token.len() >= 24 && token.matches('.').count() >= 2 {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(token), "an error shows the token: {shown}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let key = Secret::new(KEY);
    match input {
        Input::Raw(token) => match validate_token(&token, &key, AUDIENCE, at(SEED_NOW)) {
            Ok(claims) => {
                assert!(claims.expires_at + TOKEN_LEEWAY.as_secs() > SEED_NOW);
                assert!(
                    validate_token(&token, &Secret::new(OTHER_KEY), AUDIENCE, at(SEED_NOW))
                        .is_err(),
                    "a token validates under two keys"
                );
            }
            Err(e) => assert_no_leak(&token, &e),
        },
        Input::Minted(c) => {
            let (token, now) = mint(&c);
            let claims = validate_token(&token, &key, AUDIENCE, at(now))
                .unwrap_or_else(|e| panic!("a freshly minted token is refused: {e}"));
            let lifetime = u64::from(c.lifetime_secs).max(1);
            assert_eq!(claims.user_id, c.user_id.filter(|u| !u.is_empty()));
            assert_eq!(claims.roles, c.roles);
            assert_eq!(claims.groups, c.groups);
            assert_eq!(claims.issued_at, Some(now));
            assert_eq!(claims.expires_at, now + lifetime);
            assert_eq!(
                validate_token(&token, &Secret::new(OTHER_KEY), AUDIENCE, at(now)),
                Err(CredentialError::BadSignature)
            );
            assert!(matches!(
                validate_token(&token, &key, OTHER_AUDIENCE, at(now)),
                Err(CredentialError::WrongAudience { .. })
            ));
            let expired = now + lifetime + TOKEN_LEEWAY.as_secs();
            assert!(matches!(
                validate_token(&token, &key, AUDIENCE, at(expired)),
                Err(CredentialError::Expired { .. })
            ));
        }
        Input::Tampered {
            claims,
            at: index,
            byte,
        } => {
            let (token, now) = mint(&claims);
            let original =
                validate_token(&token, &key, AUDIENCE, at(now)).expect("minted tokens validate");
            let mut bytes = token.into_bytes();
            let index = usize::from(index) % bytes.len();
            bytes[index] = byte;
            let Ok(tampered) = String::from_utf8(bytes) else {
                return;
            };
            match validate_token(&tampered, &key, AUDIENCE, at(now)) {
                Ok(got) => assert_eq!(got, original, "a changed token validates to other claims"),
                Err(e) => assert_no_leak(&tampered, &e),
            }
        }
    }
});
