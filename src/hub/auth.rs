//! Token checks for the client endpoint and the REST API.
//!
//! The token format itself belongs to `crate::credential`. Until that module offers
//! `validate_token` and `mint_client_token`, the [`adapter`] below implements exactly the
//! signatures it will have, with jsonwebtoken directly; switching is a one-line `use` change.
//! ADAPTER: remove `mod adapter` once `crate::credential` has these functions on `main`.

use std::time::SystemTime;

use crate::protocol::Secret;

pub(crate) use adapter::{TokenClaims, TokenOptions, mint_client_token, validate_token};

/// Stand-in for `crate::credential::{validate_token, mint_client_token, TokenClaims,
/// TokenOptions, CredentialError}` with the same shapes (HS256 only, `exp` required, audience
/// compared ignoring scheme, query, trailing slash and ASCII case).
pub(crate) mod adapter {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
    use serde::{Deserialize, Deserializer, Serialize};

    use crate::protocol::Secret;

    /// What a valid token says about its holder.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub(crate) struct TokenClaims {
        /// `sub`.
        pub(crate) user_id: Option<String>,
        /// `role` claims.
        pub(crate) roles: Vec<String>,
        /// `webpubsub.group` claims: groups joined on connect.
        pub(crate) groups: Vec<String>,
        /// `exp`, epoch seconds.
        pub(crate) expires_at: u64,
        /// `iat`, epoch seconds.
        pub(crate) issued_at: Option<u64>,
    }

    /// What a minted client token carries.
    #[derive(Clone, Debug)]
    pub(crate) struct TokenOptions {
        /// `sub`.
        pub(crate) user_id: Option<String>,
        /// `role` claims.
        pub(crate) roles: Vec<String>,
        /// `webpubsub.group` claims.
        pub(crate) groups: Vec<String>,
        /// Time from now to `exp`.
        pub(crate) lifetime: Duration,
    }

    /// Why a token was refused. Never carries the token or the key.
    #[derive(Debug, thiserror::Error, PartialEq, Eq)]
    pub(crate) enum CredentialError {
        /// Not a well-formed HS256 JWT, or the signature does not match the key.
        #[error("the token is malformed, not HS256, or not signed with this hub's access key")]
        Invalid,
        /// `exp` is in the past.
        #[error("the token has expired")]
        Expired,
        /// `aud` names another endpoint.
        #[error("the token's audience is another endpoint")]
        WrongAudience,
        /// Minting failed.
        #[error("the token could not be signed")]
        Mint,
    }

    #[derive(Deserialize)]
    struct Claims {
        #[serde(default, deserialize_with = "one_or_many")]
        aud: Vec<String>,
        exp: u64,
        #[serde(default)]
        iat: Option<u64>,
        #[serde(default)]
        sub: Option<String>,
        #[serde(default, deserialize_with = "one_or_many")]
        role: Vec<String>,
        #[serde(default, rename = "webpubsub.group", deserialize_with = "one_or_many")]
        groups: Vec<String>,
    }

    #[derive(Serialize)]
    struct MintClaims<'a> {
        aud: &'a str,
        iat: u64,
        exp: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        sub: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        role: &'a [String],
        #[serde(
            rename = "webpubsub.group",
            skip_serializing_if = "<[String]>::is_empty"
        )]
        groups: &'a [String],
    }

    /// JWT allows a claim to be one string or an array of strings (open question 13: accept both).
    fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s],
            Some(OneOrMany::Many(v)) => v,
        })
    }

    fn epoch_seconds(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// An audience reduced to what must match: no scheme, no query, no trailing slash, lower case.
    pub(crate) fn normalize_audience(aud: &str) -> String {
        let rest = aud.split_once("://").map_or(aud, |(_, rest)| rest);
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        rest.trim_end_matches('/').to_ascii_lowercase()
    }

    /// Checks an HS256 token signed with `key` (its UTF-8 bytes, as the server SDKs sign).
    pub(crate) fn validate_token(
        token: &str,
        key: &Secret,
        expected_audience: &str,
        now: SystemTime,
    ) -> Result<TokenClaims, CredentialError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // exp and aud are checked below against `now` and with the service's audience rules.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let data = decode::<Claims>(
            token,
            &DecodingKey::from_secret(key.expose().as_bytes()),
            &validation,
        )
        .map_err(|_| CredentialError::Invalid)?;
        let claims = data.claims;
        if claims.exp <= epoch_seconds(now) {
            return Err(CredentialError::Expired);
        }
        let expected = normalize_audience(expected_audience);
        if !claims.aud.iter().any(|a| normalize_audience(a) == expected) {
            return Err(CredentialError::WrongAudience);
        }
        Ok(TokenClaims {
            user_id: claims.sub,
            roles: claims.role,
            groups: claims.groups,
            expires_at: claims.exp,
            issued_at: claims.iat,
        })
    }

    /// Mints an HS256 client token as the server SDKs do.
    pub(crate) fn mint_client_token(
        key: &Secret,
        audience: &str,
        opts: &TokenOptions,
        now: SystemTime,
    ) -> Result<Secret, CredentialError> {
        let iat = epoch_seconds(now);
        let claims = MintClaims {
            aud: audience,
            iat,
            exp: iat + opts.lifetime.as_secs().max(1),
            sub: opts.user_id.as_deref(),
            role: &opts.roles,
            groups: &opts.groups,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key.expose().as_bytes()),
        )
        .map(Secret::new)
        .map_err(|_| CredentialError::Mint)
    }
}

/// The token of a request: `Authorization: Bearer` first, then the `access_token` query value.
pub(crate) fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Validates `token` for a request to `path` on any of `authorities` (the `Host` the client
/// used and the hub's own addresses: a test proxy in between changes `Host` but not the token).
pub(crate) fn validate_for_path(
    token: &str,
    key: &Secret,
    authorities: &[String],
    path: &str,
    now: SystemTime,
) -> Result<TokenClaims, adapter::CredentialError> {
    let mut first_error = None;
    for authority in authorities {
        match validate_token(token, key, &format!("http://{authority}{path}"), now) {
            Ok(claims) => return Ok(claims),
            Err(e) => {
                // Only a wrong audience can be cured by another authority.
                if e != adapter::CredentialError::WrongAudience {
                    return Err(e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(adapter::CredentialError::WrongAudience))
}

/// The short reason a 401 carries: says what is wrong, never echoes the token.
pub(crate) fn unauthorized_reason(error: &adapter::CredentialError) -> &'static str {
    match error {
        adapter::CredentialError::Expired => "Unauthorized: the access token has expired",
        adapter::CredentialError::WrongAudience => {
            "Unauthorized: the access token was issued for another endpoint or hub"
        }
        _ => "Unauthorized: the access token is malformed or not signed with this hub's key",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::adapter::*;
    use super::*;

    fn opts() -> TokenOptions {
        TokenOptions {
            user_id: Some("u1".into()),
            roles: vec!["webpubsub.sendToGroup".into()],
            groups: vec!["g1".into()],
            lifetime: Duration::from_secs(60),
        }
    }

    #[test]
    fn minted_tokens_validate_with_scheme_and_slash_differences() {
        let key = Secret::new("k".repeat(40));
        let now = SystemTime::now();
        let token =
            mint_client_token(&key, "https://Host:1/client/hubs/Chat", &opts(), now).unwrap();
        let claims = validate_token(
            token.expose(),
            &key,
            "ws://host:1/client/hubs/chat/?x=1",
            now,
        )
        .unwrap();
        assert_eq!(claims.user_id.as_deref(), Some("u1"));
        assert_eq!(claims.roles, vec!["webpubsub.sendToGroup"]);
        assert_eq!(claims.groups, vec!["g1"]);
    }

    #[test]
    fn refusals() {
        let key = Secret::new("k".repeat(40));
        let now = SystemTime::now();
        let aud = "http://h/client/hubs/chat";
        let token = mint_client_token(&key, aud, &opts(), now).unwrap();
        let other = Secret::new("x".repeat(40));
        assert_eq!(
            validate_token(token.expose(), &other, aud, now),
            Err(CredentialError::Invalid)
        );
        assert_eq!(
            validate_token(token.expose(), &key, "http://h/client/hubs/other", now),
            Err(CredentialError::WrongAudience)
        );
        let later = now + Duration::from_secs(120);
        assert_eq!(
            validate_token(token.expose(), &key, aud, later),
            Err(CredentialError::Expired)
        );
        // alg none: a header jsonwebtoken cannot even parse.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhdWQiOiJodHRwOi8vaC9jbGllbnQvaHVicy9jaGF0IiwiZXhwIjo0MTAyNDQ0ODAwfQ.";
        assert_eq!(
            validate_token(none, &key, aud, now),
            Err(CredentialError::Invalid)
        );
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn another_authority_can_match() {
        let key = Secret::new("k".repeat(40));
        let now = SystemTime::now();
        let token =
            mint_client_token(&key, "http://127.0.0.1:9/client/hubs/c", &opts(), now).unwrap();
        let authorities = ["proxy:1".to_owned(), "127.0.0.1:9".to_owned()];
        assert!(
            validate_for_path(token.expose(), &key, &authorities, "/client/hubs/c", now).is_ok()
        );
        assert!(
            validate_for_path(
                token.expose(),
                &key,
                &authorities[..1],
                "/client/hubs/c",
                now
            )
            .is_err()
        );
    }
}
