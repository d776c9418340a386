//! Token checks for the client endpoint and the REST API, on top of
//! [`crate::credential`]'s HS256 validation.

use std::time::SystemTime;

use crate::credential::{CredentialError, TokenClaims, validate_token};
use crate::protocol::Secret;

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
) -> Result<TokenClaims, CredentialError> {
    let mut first_error = None;
    for authority in authorities {
        match validate_token(token, key, &format!("http://{authority}{path}"), now) {
            Ok(claims) => return Ok(claims),
            Err(e) => {
                // Only a wrong audience can be cured by another authority.
                if !matches!(e, CredentialError::WrongAudience { .. }) {
                    return Err(e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(CredentialError::MissingAudience {
        expected: path.to_owned(),
    }))
}

/// The short reason a 401 carries: what is wrong, never the token (credential errors
/// never contain one).
pub(crate) fn unauthorized_reason(error: &CredentialError) -> String {
    format!("Unauthorized: {error}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credential::{TokenOptions, mint_client_token};

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn another_authority_can_match_but_other_errors_stop_the_search() {
        let key = Secret::new("k".repeat(40));
        let now = SystemTime::now();
        let opts = TokenOptions::new().lifetime(Duration::from_secs(60));
        let token =
            mint_client_token(&key, "http://127.0.0.1:9/client/hubs/c", &opts, now).unwrap();
        let authorities = ["proxy:1".to_owned(), "127.0.0.1:9".to_owned()];
        let path = "/client/hubs/c";
        assert!(validate_for_path(token.expose(), &key, &authorities, path, now).is_ok());
        assert!(matches!(
            validate_for_path(token.expose(), &key, &authorities[..1], path, now),
            Err(CredentialError::WrongAudience { .. })
        ));
        let other = Secret::new("x".repeat(40));
        assert!(matches!(
            validate_for_path(token.expose(), &other, &authorities, path, now),
            Err(CredentialError::BadSignature)
        ));
        let reason = unauthorized_reason(&CredentialError::BadSignature);
        assert!(reason.starts_with("Unauthorized: "));
    }
}
