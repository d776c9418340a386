//! HS256 JWTs: minted exactly as the official server SDKs mint them, validated as the hub
//! needs (protocol.md 5.1 and 5.3).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use url::Url;

use super::error::{CredentialError, shorten};
use crate::protocol::Secret;

/// Lifetime of a client access token when none is given: 60 minutes, the default of every
/// official server SDK (`minutes_to_expire=60`, `expiresAfter: 1h`). The service checks it
/// only when a connection starts, so it bounds how long a token can open new connections.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Lifetime of a token for one server-side REST call: 5 minutes, as the .NET SDK
/// (Python uses 60 s, JS 1 h). Long enough for a slow request, short enough to be useless
/// if a proxy logs the header.
pub const DEFAULT_REST_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How far past `exp` (and before `nbf`) [`validate_token`] still accepts a token: 5 s.
/// Enough for the clocks of a minting server and a hub on two machines that both run NTP;
/// small enough that a test of expiry waits only a few seconds.
pub const TOKEN_LEEWAY: Duration = Duration::from_secs(5);

/// Tokens longer than this are refused before any decoding (64 KiB): a token travels in a
/// URL or a header, and no legitimate one comes near it.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The JOSE header of every token minted here, byte for byte as the SDKs write it.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Decoding accepts base64url with or without padding; the signature is checked over the
/// text as sent, so the leniency changes nothing about what verifies.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a client access token grants: user, roles, groups to join on connect, lifetime.
///
/// ```
/// use std::time::Duration;
/// use webpubsub_fleet::credential::TokenOptions;
///
/// let options = TokenOptions::new()
///     .user_id("alice")
///     .role("webpubsub.joinLeaveGroup")
///     .group("lobby")
///     .lifetime(Duration::from_secs(600));
/// assert_eq!(options.roles, ["webpubsub.joinLeaveGroup"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOptions {
    /// The `sub` claim; omitted when `None` or empty, as the SDKs do.
    pub user_id: Option<String>,
    /// The `role` claim (for example `webpubsub.sendToGroup.chat`); omitted when empty.
    pub roles: Vec<String>,
    /// The `webpubsub.group` claim: groups joined on connect; omitted when empty.
    pub groups: Vec<String>,
    /// From `iat` to `exp`; [`DEFAULT_TOKEN_LIFETIME`] by default. Whole seconds count.
    pub lifetime: Duration,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            user_id: None,
            roles: Vec::new(),
            groups: Vec::new(),
            lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }
}

impl TokenOptions {
    /// No user, no roles, no groups, [`DEFAULT_TOKEN_LIFETIME`].
    pub fn new() -> TokenOptions {
        TokenOptions::default()
    }

    /// Sets the user id.
    pub fn user_id(mut self, user_id: impl Into<String>) -> TokenOptions {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds one role.
    pub fn role(mut self, role: impl Into<String>) -> TokenOptions {
        self.roles.push(role.into());
        self
    }

    /// Adds several roles.
    pub fn roles<I, S>(mut self, roles: I) -> TokenOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Adds one group to join on connect.
    pub fn group(mut self, group: impl Into<String>) -> TokenOptions {
        self.groups.push(group.into());
        self
    }

    /// Adds several groups to join on connect.
    pub fn groups<I, S>(mut self, groups: I) -> TokenOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Sets the lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> TokenOptions {
        self.lifetime = lifetime;
        self
    }
}

/// Mints a client access token as the official server SDKs do: HS256 keyed with the UTF-8
/// bytes of the access key string (not base64-decoded), header `{"alg":"HS256","typ":"JWT"}`,
/// claims `aud`, `sub` (if a user), `exp`, `iat`, `role` (array, if any) and
/// `webpubsub.group` (array, if any). `audience` is normally
/// [`ConnectionString::client_audience`](super::ConnectionString::client_audience).
pub fn mint_client_token(
    key: &Secret,
    audience: &str,
    options: &TokenOptions,
    now: SystemTime,
) -> Result<Secret, CredentialError> {
    let (iat, exp) = times(key, options.lifetime, now)?;
    Ok(sign(
        key,
        &ClientClaims {
            aud: audience,
            sub: options.user_id.as_deref().filter(|u| !u.is_empty()),
            exp,
            iat,
            role: &options.roles,
            groups: &options.groups,
        },
    ))
}

/// The claims of a client access token, in a fixed order so that a token is the same bytes
/// whatever serde_json features other crates switch on.
#[derive(Serialize)]
struct ClientClaims<'a> {
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    role: &'a [String],
    #[serde(
        rename = "webpubsub.group",
        skip_serializing_if = "<[String]>::is_empty"
    )]
    groups: &'a [String],
}

/// The claims of a REST call token.
#[derive(Serialize)]
struct RestClaims<'a> {
    aud: &'a str,
    exp: u64,
    iat: u64,
}

/// Mints the bearer token of one server-side REST call: `aud` = the request URL (the hub
/// compares it without query and trailing `/`, so either form works), `exp`, `iat`.
pub fn mint_rest_token(
    key: &Secret,
    request_url_without_query: &str,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Secret, CredentialError> {
    let (iat, exp) = times(key, lifetime, now)?;
    Ok(sign(
        key,
        &RestClaims {
            aud: request_url_without_query,
            exp,
            iat,
        },
    ))
}

/// `iat` and `exp` in whole seconds, after checking what would make a useless token.
fn times(key: &Secret, lifetime: Duration, now: SystemTime) -> Result<(u64, u64), CredentialError> {
    if key.is_empty() {
        return Err(CredentialError::MissingAccessKey);
    }
    if lifetime.as_secs() == 0 {
        return Err(CredentialError::InvalidLifetime);
    }
    let iat = epoch_seconds(now)?;
    Ok((iat, iat.saturating_add(lifetime.as_secs())))
}

fn epoch_seconds(now: SystemTime) -> Result<u64, CredentialError> {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CredentialError::ClockBeforeEpoch)
}

fn mac(key: &Secret) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC accepts any key length")
}

fn sign(key: &Secret, claims: &impl Serialize) -> Secret {
    // Structs of strings and integers have no way to fail serialization.
    let claims = serde_json::to_vec(claims).expect("token claims always serialize");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER_JSON),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = mac(key);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Secret::new(format!("{signing_input}.{signature}"))
}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// `sub`; `None` when absent or empty.
    pub user_id: Option<String>,
    /// `role`, given as an array or a single string.
    pub roles: Vec<String>,
    /// `webpubsub.group`, given as an array or a single string.
    pub groups: Vec<String>,
    /// `exp`, seconds since 1970.
    pub expires_at: u64,
    /// `iat`, seconds since 1970, when present.
    pub issued_at: Option<u64>,
}

/// Validates a token as the hub does. In this order: the header names HS256 and nothing
/// else (`none`, HS384, RS256, ... are refused); the signature matches the UTF-8 bytes of
/// `key`; `exp` is present and `now` is before `exp` + [`TOKEN_LEEWAY`]; `nbf`, if present,
/// is before `now` + [`TOKEN_LEEWAY`]; `aud` (a string or an array of strings) names
/// `expected_audience` in the sense of [`audience_matches`].
///
/// Errors say which check failed; they never contain the token.
pub fn validate_token(
    token: &str,
    key: &Secret,
    expected_audience: &str,
    now: SystemTime,
) -> Result<TokenClaims, CredentialError> {
    use CredentialError::MalformedToken as Malformed;

    let now = epoch_seconds(now)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(Malformed {
            reason: "longer than 64 KiB",
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed {
            reason: "not three dot-separated parts",
        });
    };
    let header_json = decode_json_object(header).ok_or(Malformed {
        reason: "the header is not a base64url JSON object",
    })?;
    let alg = header_json
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Malformed {
            reason: "the header has no `alg` string",
        })?;
    if alg != "HS256" {
        return Err(CredentialError::WrongAlgorithm {
            alg: shorten(alg, 16),
        });
    }
    let signature = B64URL_LENIENT.decode(signature).map_err(|_| Malformed {
        reason: "the signature is not base64url",
    })?;
    // The signing input is the text as sent, up to the second dot.
    let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
    let mut mac = mac(key);
    mac.update(signing_input);
    mac.verify_slice(&signature)
        .map_err(|_| CredentialError::BadSignature)?;

    let claims = decode_json_object(payload).ok_or(Malformed {
        reason: "the claims are not a base64url JSON object",
    })?;
    let expires_at = match claims.get("exp") {
        None | Some(Value::Null) => return Err(CredentialError::MissingExpiry),
        Some(v) => epoch_claim(v).ok_or(Malformed {
            reason: "`exp` is not a non-negative number of seconds",
        })?,
    };
    let leeway = TOKEN_LEEWAY.as_secs();
    if now >= expires_at.saturating_add(leeway) {
        return Err(CredentialError::Expired {
            expired_at: expires_at,
            now,
        });
    }
    if let Some(v) = claims.get("nbf") {
        let not_before = epoch_claim(v).ok_or(Malformed {
            reason: "`nbf` is not a non-negative number of seconds",
        })?;
        if now.saturating_add(leeway) < not_before {
            return Err(CredentialError::NotYetValid { not_before, now });
        }
    }
    let issued_at = match claims.get("iat") {
        None => None,
        Some(v) => Some(epoch_claim(v).ok_or(Malformed {
            reason: "`iat` is not a non-negative number of seconds",
        })?),
    };
    check_audience(claims.get("aud"), expected_audience)?;
    let user_id = match claims.get("sub") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Malformed {
                reason: "`sub` is not a string",
            });
        }
    };
    let roles = strings_claim(claims.get("role")).ok_or(Malformed {
        reason: "`role` is not a string or an array of strings",
    })?;
    let groups = strings_claim(claims.get("webpubsub.group")).ok_or(Malformed {
        reason: "`webpubsub.group` is not a string or an array of strings",
    })?;
    Ok(TokenClaims {
        user_id,
        roles,
        groups,
        expires_at,
        issued_at,
    })
}

fn decode_json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = B64URL_LENIENT.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A NumericDate: integer seconds, or a fraction (some libraries write one), floored.
fn epoch_claim(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // `as` saturates at u64::MAX for huge values, which only makes `exp` later.
    (f.is_finite() && f >= 0.0).then(|| f.floor() as u64)
}

/// `None` (absent) gives an empty list; a string gives a one-element list.
fn strings_claim(v: Option<&Value>) -> Option<Vec<String>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

fn check_audience(aud: Option<&Value>, expected: &str) -> Result<(), CredentialError> {
    let missing = || CredentialError::MissingAudience {
        expected: expected.to_owned(),
    };
    let wrong = |found: &str| CredentialError::WrongAudience {
        expected: expected.to_owned(),
        found: shorten(found, 200),
    };
    match aud {
        None | Some(Value::Null) => Err(missing()),
        Some(Value::String(a)) if audience_matches(a, expected) => Ok(()),
        Some(Value::String(a)) => Err(wrong(a)),
        // RFC 7519 allows several audiences; one match is enough.
        Some(Value::Array(items)) => {
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if names.iter().any(|a| audience_matches(a, expected)) {
                Ok(())
            } else if names.is_empty() {
                Err(missing())
            } else {
                Err(wrong(&names.join(", ")))
            }
        }
        Some(_) => Err(CredentialError::MalformedToken {
            reason: "`aud` is not a string or an array of strings",
        }),
    }
}

/// Whether two audiences name the same place, the way the hub compares a token's `aud` with
/// the URL it was presented at. Equal when host (case-insensitive), port and path are equal;
/// ignored: the scheme (http, https, ws and wss are one; the portal writes `wss://`, the
/// SDKs `https://`), the query, the fragment, user info and trailing `/` on the path. Port
/// 80, port 443 and no port are one ("the default"), since the scheme is ignored. The path
/// is case-sensitive (hub names are). Anything that is not an absolute http(s)/ws(s) URL
/// matches nothing.
pub fn audience_matches(a: &str, b: &str) -> bool {
    match (AudienceKey::parse(a), AudienceKey::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[derive(PartialEq, Eq)]
struct AudienceKey {
    host: String,
    port: Option<u16>,
    path: String,
}

impl AudienceKey {
    fn parse(s: &str) -> Option<AudienceKey> {
        let url = Url::parse(s).ok()?;
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return None;
        }
        Some(AudienceKey {
            // Url lowercases the host of these special schemes.
            host: url.host_str()?.to_owned(),
            port: url.port().filter(|p| *p != 80 && *p != 443),
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "s3cr3tKeyAbc+/xyz=";
    const AUD: &str = "https://x.webpubsub.azure.com/client/hubs/chat";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn key() -> Secret {
        Secret::new(KEY)
    }

    /// Builds a token by hand, signing `header.payload` with `key` as HS256.
    fn hand_made(header: &str, claims: &str, key: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn parts(token: &Secret) -> (Value, Value) {
        let mut it = token.expose().split('.');
        let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        (
            serde_json::from_slice(&h).unwrap(),
            serde_json::from_slice(&c).unwrap(),
        )
    }

    #[test]
    fn minted_client_token_has_the_sdk_header_and_claims() {
        let options = TokenOptions::new()
            .user_id("alice")
            .roles(["webpubsub.sendToGroup", "webpubsub.joinLeaveGroup.g1"])
            .group("g1")
            .lifetime(Duration::from_secs(600));
        let token = mint_client_token(&key(), AUD, &options, at(1_700_000_000)).unwrap();
        let header_b64 = token.expose().split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header_b64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
        let (_, claims) = parts(&token);
        assert_eq!(
            claims,
            json!({
                "aud": AUD,
                "sub": "alice",
                "exp": 1_700_000_600u64,
                "iat": 1_700_000_000u64,
                "role": ["webpubsub.sendToGroup", "webpubsub.joinLeaveGroup.g1"],
                "webpubsub.group": ["g1"],
            })
        );
        assert!(!token.expose().contains('='), "base64url without padding");
    }

    #[test]
    fn minted_client_token_omits_empty_claims_and_uses_the_default_lifetime() {
        for options in [TokenOptions::new(), TokenOptions::new().user_id("")] {
            let token = mint_client_token(&key(), AUD, &options, at(100)).unwrap();
            let (_, claims) = parts(&token);
            assert_eq!(claims, json!({ "aud": AUD, "exp": 3700u64, "iat": 100u64 }));
        }
    }

    #[test]
    fn minting_refuses_useless_tokens() {
        let opts = TokenOptions::new();
        assert_eq!(
            mint_client_token(&Secret::new(""), AUD, &opts, at(1)),
            Err(CredentialError::MissingAccessKey)
        );
        assert_eq!(
            mint_client_token(
                &key(),
                AUD,
                &opts.clone().lifetime(Duration::from_millis(999)),
                at(1)
            ),
            Err(CredentialError::InvalidLifetime)
        );
        assert_eq!(
            mint_client_token(&key(), AUD, &opts, UNIX_EPOCH - Duration::from_secs(1)),
            Err(CredentialError::ClockBeforeEpoch)
        );
    }

    #[test]
    fn minting_matches_a_known_vector() {
        // Computed apart from this crate, with Python's hmac and base64 modules, over
        // {"alg":"HS256","typ":"JWT"} and {"aud":"http://h/api/hubs/chat/:send","exp":70,"iat":10}.
        let token = mint_rest_token(
            &Secret::new("key"),
            "http://h/api/hubs/chat/:send",
            Duration::from_secs(60),
            at(10),
        )
        .unwrap();
        assert_eq!(
            token.expose(),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\
             .eyJhdWQiOiJodHRwOi8vaC9hcGkvaHVicy9jaGF0LzpzZW5kIiwiZXhwIjo3MCwiaWF0IjoxMH0\
             .UXkAKn5wL-xay-aA_wpHMWyBy1MgLSpx2m3mP-tOGyM"
        );
    }

    #[test]
    fn minted_tokens_validate_and_give_back_their_claims() {
        let options = TokenOptions::new()
            .user_id("bob")
            .role("r1")
            .groups(["a", "b"]);
        let token = mint_client_token(&key(), AUD, &options, at(1000)).unwrap();
        let claims = validate_token(token.expose(), &key(), AUD, at(1001)).unwrap();
        assert_eq!(
            claims,
            TokenClaims {
                user_id: Some("bob".into()),
                roles: vec!["r1".into()],
                groups: vec!["a".into(), "b".into()],
                expires_at: 1000 + 3600,
                issued_at: Some(1000),
            }
        );
        let rest = mint_rest_token(
            &key(),
            "https://x.webpubsub.azure.com/api/hubs/chat/:send",
            DEFAULT_REST_TOKEN_LIFETIME,
            at(1000),
        )
        .unwrap();
        let claims = validate_token(
            rest.expose(),
            &key(),
            "https://x.webpubsub.azure.com/api/hubs/chat/:send?api-version=2024-01-01",
            at(1000),
        )
        .unwrap();
        assert_eq!(claims.user_id, None);
        assert_eq!(claims.expires_at, 1300);
    }

    #[test]
    fn validation_accepts_single_strings_fractions_nbf_and_audience_arrays() {
        let token = hand_made(
            HEADER_JSON,
            &json!({
                "aud": ["https://other/x", "wss://X.webpubsub.azure.com/client/hubs/chat/"],
                "exp": 2000.9,
                "nbf": 1003,
                "sub": "",
                "role": "webpubsub.sendToGroup",
                "webpubsub.group": "g",
                "custom": {"ignored": true},
            })
            .to_string(),
            KEY,
        );
        let claims = validate_token(&token, &key(), AUD, at(1000)).unwrap();
        assert_eq!(
            claims,
            TokenClaims {
                user_id: None,
                roles: vec!["webpubsub.sendToGroup".into()],
                groups: vec!["g".into()],
                expires_at: 2000,
                issued_at: None,
            }
        );
        // Header without `typ`, as some libraries write it.
        let token = hand_made(
            r#"{"alg":"HS256"}"#,
            &json!({"aud": AUD, "exp": 2000}).to_string(),
            KEY,
        );
        assert!(validate_token(&token, &key(), AUD, at(1000)).is_ok());
    }

    #[test]
    fn validation_failures_say_what_is_wrong() {
        use CredentialError as E;
        let claims = |extra: Value| {
            let mut base = json!({"aud": AUD, "exp": 2000, "iat": 1000});
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    base.as_object_mut().unwrap().remove(k);
                } else {
                    base[k] = v.clone();
                }
            }
            base.to_string()
        };
        let good = hand_made(HEADER_JSON, &claims(json!({})), KEY);
        let unsigned_none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims(json!({})))
        );
        let bad_sig = format!("{}AAAA", &good[..good.len() - 4]);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let cases: Vec<(&str, String, u64, CredentialError)> = vec![
            (
                "expired",
                good.clone(),
                2005,
                E::Expired {
                    expired_at: 2000,
                    now: 2005,
                },
            ),
            (
                "expired long ago",
                good.clone(),
                99_999,
                E::Expired {
                    expired_at: 2000,
                    now: 99_999,
                },
            ),
            (
                "wrong key",
                hand_made(HEADER_JSON, &claims(json!({})), "other"),
                1000,
                E::BadSignature,
            ),
            ("tampered signature", bad_sig, 1000, E::BadSignature),
            (
                "tampered claims",
                {
                    let mut p: Vec<&str> = good.split('.').collect();
                    let forged = URL_SAFE_NO_PAD.encode(claims(json!({"sub": "admin"})));
                    p[1] = &forged;
                    p.join(".")
                },
                1000,
                E::BadSignature,
            ),
            (
                "alg none",
                unsigned_none,
                1000,
                E::WrongAlgorithm { alg: "none".into() },
            ),
            (
                "HS384",
                hand_made(r#"{"alg":"HS384","typ":"JWT"}"#, &claims(json!({})), KEY),
                1000,
                E::WrongAlgorithm {
                    alg: "HS384".into(),
                },
            ),
            (
                "RS256",
                hand_made(r#"{"alg":"RS256"}"#, &claims(json!({})), KEY),
                1000,
                E::WrongAlgorithm {
                    alg: "RS256".into(),
                },
            ),
            (
                "lowercase hs256",
                hand_made(r#"{"alg":"hs256"}"#, &claims(json!({})), KEY),
                1000,
                E::WrongAlgorithm {
                    alg: "hs256".into(),
                },
            ),
            (
                "wrong hub",
                hand_made(
                    HEADER_JSON,
                    &claims(json!({"aud": "https://x.webpubsub.azure.com/client/hubs/other"})),
                    KEY,
                ),
                1000,
                E::WrongAudience {
                    expected: AUD.into(),
                    found: "https://x.webpubsub.azure.com/client/hubs/other".into(),
                },
            ),
            (
                "missing aud",
                hand_made(HEADER_JSON, &claims(json!({"aud": null})), KEY),
                1000,
                E::MissingAudience {
                    expected: AUD.into(),
                },
            ),
            (
                "missing exp",
                hand_made(HEADER_JSON, &claims(json!({"exp": null})), KEY),
                1000,
                E::MissingExpiry,
            ),
            (
                "not yet valid",
                hand_made(HEADER_JSON, &claims(json!({"nbf": 1010})), KEY),
                1000,
                E::NotYetValid {
                    not_before: 1010,
                    now: 1000,
                },
            ),
            (
                "exp as string",
                hand_made(HEADER_JSON, &claims(json!({"exp": "2000"})), KEY),
                1000,
                E::MalformedToken {
                    reason: "`exp` is not a non-negative number of seconds",
                },
            ),
            (
                "negative exp",
                hand_made(HEADER_JSON, &claims(json!({"exp": -5})), KEY),
                1000,
                E::MalformedToken {
                    reason: "`exp` is not a non-negative number of seconds",
                },
            ),
            (
                "role of numbers",
                hand_made(HEADER_JSON, &claims(json!({"role": [1, 2]})), KEY),
                1000,
                E::MalformedToken {
                    reason: "`role` is not a string or an array of strings",
                },
            ),
            (
                "sub as number",
                hand_made(HEADER_JSON, &claims(json!({"sub": 7})), KEY),
                1000,
                E::MalformedToken {
                    reason: "`sub` is not a string",
                },
            ),
            (
                "garbage",
                "garbage".into(),
                1000,
                E::MalformedToken {
                    reason: "not three dot-separated parts",
                },
            ),
            (
                "four parts",
                format!("{good}.x"),
                1000,
                E::MalformedToken {
                    reason: "not three dot-separated parts",
                },
            ),
            (
                "empty",
                String::new(),
                1000,
                E::MalformedToken {
                    reason: "not three dot-separated parts",
                },
            ),
            (
                "header not base64",
                "%%%.e30.AAAA".into(),
                1000,
                E::MalformedToken {
                    reason: "the header is not a base64url JSON object",
                },
            ),
            (
                "header is an array",
                format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("[1]")),
                1000,
                E::MalformedToken {
                    reason: "the header is not a base64url JSON object",
                },
            ),
            (
                "claims not JSON",
                hand_made(HEADER_JSON, "not json", KEY),
                1000,
                E::MalformedToken {
                    reason: "the claims are not a base64url JSON object",
                },
            ),
            (
                "signature not base64",
                format!("{}.%%%", &good[..good.rfind('.').unwrap()]),
                1000,
                E::MalformedToken {
                    reason: "the signature is not base64url",
                },
            ),
            (
                "too long",
                long,
                1000,
                E::MalformedToken {
                    reason: "longer than 64 KiB",
                },
            ),
        ];
        for (name, token, now, expected) in cases {
            let got = validate_token(&token, &key(), AUD, at(now));
            assert_eq!(got, Err(expected), "{name}");
            let message = got.unwrap_err().to_string();
            if token.len() > 8 {
                assert!(!message.contains(&token), "{name}: message holds the token");
            }
            assert!(!message.contains(KEY), "{name}: message holds the key");
        }
    }

    #[test]
    fn expiry_leeway_is_exact_at_its_edges() {
        let token = hand_made(
            HEADER_JSON,
            &json!({"aud": AUD, "exp": 2000}).to_string(),
            KEY,
        );
        let leeway = TOKEN_LEEWAY.as_secs();
        assert!(validate_token(&token, &key(), AUD, at(2000 + leeway - 1)).is_ok());
        assert!(matches!(
            validate_token(&token, &key(), AUD, at(2000 + leeway)),
            Err(CredentialError::Expired { .. })
        ));
        let token = hand_made(
            HEADER_JSON,
            &json!({"aud": AUD, "exp": 9000, "nbf": 2000}).to_string(),
            KEY,
        );
        assert!(validate_token(&token, &key(), AUD, at(2000 - leeway)).is_ok());
        assert!(matches!(
            validate_token(&token, &key(), AUD, at(2000 - leeway - 1)),
            Err(CredentialError::NotYetValid { .. })
        ));
    }

    #[test]
    fn audience_matching_table() {
        let base = "https://x.webpubsub.azure.com/client/hubs/chat";
        let cases: &[(&str, &str, bool)] = &[
            (base, base, true),
            (base, "wss://x.webpubsub.azure.com/client/hubs/chat", true),
            (base, "ws://x.webpubsub.azure.com/client/hubs/chat", true),
            (base, "http://x.webpubsub.azure.com/client/hubs/chat", true),
            (base, "https://X.WebPubSub.Azure.COM/client/hubs/chat", true),
            (
                base,
                "https://x.webpubsub.azure.com/client/hubs/chat/",
                true,
            ),
            (
                base,
                "https://x.webpubsub.azure.com/client/hubs/chat?access_token=t",
                true,
            ),
            (
                base,
                "https://x.webpubsub.azure.com/client/hubs/chat#f",
                true,
            ),
            (
                base,
                "https://x.webpubsub.azure.com:443/client/hubs/chat",
                true,
            ),
            (
                base,
                "wss://x.webpubsub.azure.com:80/client/hubs/chat",
                true,
            ),
            (
                "http://127.0.0.1:8080/client/hubs/chat",
                "ws://127.0.0.1:8080/client/hubs/chat?awps_connection_id=c",
                true,
            ),
            (
                "http://127.0.0.1:8080/api/hubs/h/:send",
                "http://127.0.0.1:8080/api/hubs/h/:send?api-version=2024-01-01",
                true,
            ),
            (
                base,
                "https://x.webpubsub.azure.com/client/hubs/Chat",
                false,
            ),
            (
                base,
                "https://x.webpubsub.azure.com/client/hubs/chat2",
                false,
            ),
            (base, "https://x.webpubsub.azure.com/client/hubs", false),
            (
                base,
                "https://y.webpubsub.azure.com/client/hubs/chat",
                false,
            ),
            (
                base,
                "https://x.webpubsub.azure.com:8443/client/hubs/chat",
                false,
            ),
            (
                "http://127.0.0.1:8080/client/hubs/chat",
                "http://127.0.0.1:8081/client/hubs/chat",
                false,
            ),
            (base, "ftp://x.webpubsub.azure.com/client/hubs/chat", false),
            (base, "x.webpubsub.azure.com/client/hubs/chat", false),
            (base, "", false),
            ("", "", false),
            ("garbage", "garbage", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(audience_matches(a, b), *expected, "{a:?} vs {b:?}");
            assert_eq!(
                audience_matches(b, a),
                *expected,
                "{b:?} vs {a:?} (symmetry)"
            );
        }
    }

    #[test]
    fn token_options_builders_accumulate() {
        let o = TokenOptions::new()
            .role("a")
            .roles(vec![String::from("b")])
            .group("g")
            .groups(["h"]);
        assert_eq!(o.roles, ["a", "b"]);
        assert_eq!(o.groups, ["g", "h"]);
        assert_eq!(o.lifetime, DEFAULT_TOKEN_LIFETIME);
    }
}
