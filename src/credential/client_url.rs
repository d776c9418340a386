//! The URL a client connects to: `wss://{host}/client/hubs/{hub}?access_token={jwt}`.

use std::fmt;
use std::str::FromStr;

use url::{Position, Url};

use super::error::{CredentialError, shorten};
use crate::protocol::Secret;

/// Query parameter of the access token (protocol.md 1.1).
pub const ACCESS_TOKEN_PARAM: &str = "access_token";
/// Query parameter of the connection id on a recovery (protocol.md 1.2).
pub const CONNECTION_ID_PARAM: &str = "awps_connection_id";
/// Query parameter of the reconnection token on a recovery (protocol.md 1.2).
pub const RECONNECTION_TOKEN_PARAM: &str = "awps_reconnection_token";

/// A client access URL: ws or wss, usually with the hub in the path and a token in the
/// query.
///
/// `Display` and `Debug` replace every query value with `[REDACTED]` (and a password, if
/// any), so `wss://host/client/hubs/chat?access_token=[REDACTED]`; [`ClientAccessUrl::expose`]
/// gives the real URL, for the transport only.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAccessUrl(Url);

impl ClientAccessUrl {
    /// Parses a client access URL. `http` and `https` are accepted and switched to `ws` and
    /// `wss`, since the portal and some servers hand out either form.
    pub fn parse(s: &str) -> Result<ClientAccessUrl, CredentialError> {
        // url::ParseError's text never repeats the input, so the token cannot leak here.
        let url = Url::parse(s.trim()).map_err(|e| CredentialError::InvalidClientAccessUrl {
            reason: e.to_string(),
        })?;
        ClientAccessUrl::from_url(url)
    }

    /// Wraps a parsed URL, with the same checks and scheme switch as [`ClientAccessUrl::parse`].
    pub fn from_url(mut url: Url) -> Result<ClientAccessUrl, CredentialError> {
        let ws_scheme = match url.scheme() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => {
                return Err(CredentialError::UnsupportedUrlScheme {
                    scheme: shorten(other, 16),
                });
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(CredentialError::InvalidClientAccessUrl {
                reason: "it has no host".into(),
            });
        }
        // Between special schemes the switch always succeeds.
        if url.set_scheme(ws_scheme).is_err() {
            return Err(CredentialError::InvalidClientAccessUrl {
                reason: "its scheme cannot be switched to ws or wss".into(),
            });
        }
        url.set_fragment(None);
        Ok(ClientAccessUrl(url))
    }

    /// The real URL, token included. For the transport; never for a log line.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The real URL, token included, by value.
    pub fn into_exposed(self) -> Url {
        self.0
    }

    /// The hub: the path segment after `/client/hubs/` (after any path prefix of a reverse
    /// proxy), else the `hub` query parameter; percent-decoded.
    pub fn hub(&self) -> Option<String> {
        let segments: Vec<&str> = self.0.path_segments()?.collect();
        let from_path = segments
            .windows(3)
            .find(|w| w[0] == "client" && w[1] == "hubs" && !w[2].is_empty())
            .map(|w| percent_decode(w[2]));
        from_path.or_else(|| {
            self.0
                .query_pairs()
                .find(|(k, v)| k == "hub" && !v.is_empty())
                .map(|(_, v)| v.into_owned())
        })
    }

    /// The `access_token` query parameter, if present.
    pub fn access_token(&self) -> Option<Secret> {
        self.0
            .query_pairs()
            .find(|(k, _)| k == ACCESS_TOKEN_PARAM)
            .map(|(_, v)| Secret::new(v.into_owned()))
    }

    /// The recovery URL of a reliable connection, built as every official client builds it:
    /// this URL (access token kept) with `awps_connection_id` and `awps_reconnection_token`
    /// set, replacing earlier values of the two.
    pub fn with_recovery(
        &self,
        connection_id: &str,
        reconnection_token: &Secret,
    ) -> ClientAccessUrl {
        let mut url = self.0.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != CONNECTION_ID_PARAM && k != RECONNECTION_TOKEN_PARAM)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair(CONNECTION_ID_PARAM, connection_id)
            .append_pair(RECONNECTION_TOKEN_PARAM, reconnection_token.expose());
        ClientAccessUrl(url)
    }
}

/// Checks a hub name against the service's rule `^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$`
/// (protocol.md 1.1), which also keeps `/`, `?` and `#` out of URL paths.
pub fn validate_hub_name(hub: &str) -> Result<(), CredentialError> {
    let reason = if hub.is_empty() {
        "it is empty"
    } else if hub.len() > 128 {
        "it is longer than 128 characters"
    } else if !hub.starts_with(|c: char| c.is_ascii_alphabetic()) {
        "it does not start with a letter"
    } else if !hub
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_`,.[]".contains(c))
    {
        "it holds a character other than letters, digits and _`,.[]"
    } else {
        return Ok(());
    };
    Err(CredentialError::InvalidHub { reason })
}

/// Decodes `%XX` escapes; anything that is not a valid escape or UTF-8 is kept as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

impl FromStr for ClientAccessUrl {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientAccessUrl::parse(s)
    }
}

impl fmt::Display for ClientAccessUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        f.write_str(url.scheme())?;
        f.write_str("://")?;
        if !url.username().is_empty() || url.password().is_some() {
            f.write_str(url.username())?;
            if url.password().is_some() {
                f.write_str(":[REDACTED]")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&url[Position::BeforeHost..Position::AfterPath])?;
        if let Some(query) = url.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _)) => write!(f, "{key}=[REDACTED]")?,
                    // A bare `?flag` has no value to hide, but it could be a token pasted
                    // without its name.
                    None if pair.is_empty() => {}
                    None => f.write_str("[REDACTED]")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ClientAccessUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientAccessUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    #[test]
    fn parse_accepts_ws_and_http_forms_and_switches_schemes() {
        // (input, exposed URL, hub)
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "wss://x.webpubsub.azure.com/client/hubs/chat?access_token=abc",
                "wss://x.webpubsub.azure.com/client/hubs/chat?access_token=abc",
                Some("chat"),
            ),
            (
                "https://x.webpubsub.azure.com/client/hubs/chat?access_token=abc",
                "wss://x.webpubsub.azure.com/client/hubs/chat?access_token=abc",
                Some("chat"),
            ),
            (
                "http://127.0.0.1:8080/client/hubs/h1?access_token=abc",
                "ws://127.0.0.1:8080/client/hubs/h1?access_token=abc",
                Some("h1"),
            ),
            (
                "ws://127.0.0.1:8080/client/?hub=h2&access_token=abc",
                "ws://127.0.0.1:8080/client/?hub=h2&access_token=abc",
                Some("h2"),
            ),
            (
                "wss://contoso.com/api/webpubsub/client/hubs/theHub?access_token=abc",
                "wss://contoso.com/api/webpubsub/client/hubs/theHub?access_token=abc",
                Some("theHub"),
            ),
            (
                "wss://h/client/hubs/a%60b%5B1%5D/",
                "wss://h/client/hubs/a%60b%5B1%5D/",
                Some("a`b[1]"),
            ),
            ("wss://h/client/hubs/", "wss://h/client/hubs/", None),
            ("wss://h/", "wss://h/", None),
            (
                "  wss://h/client/hubs/x#frag  ",
                "wss://h/client/hubs/x",
                Some("x"),
            ),
        ];
        for (input, exposed, hub) in cases {
            let url = ClientAccessUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.expose().as_str(), *exposed, "{input}");
            assert_eq!(url.hub().as_deref(), *hub, "{input}");
            let via_from_str: ClientAccessUrl = input.parse().unwrap();
            assert_eq!(via_from_str, url);
        }
    }

    #[test]
    fn parse_rejects_other_schemes_and_garbage_without_echoing_the_url() {
        for input in [
            "ftp://h/client/hubs/x?access_token=SECRETTOKEN",
            "file:///client/hubs/x?access_token=SECRETTOKEN",
            "not a url SECRETTOKEN",
            "wss://?access_token=SECRETTOKEN",
            "",
            "mailto:SECRETTOKEN@x",
        ] {
            let err = ClientAccessUrl::parse(input).expect_err(input);
            assert!(
                matches!(
                    err,
                    CredentialError::InvalidClientAccessUrl { .. }
                        | CredentialError::UnsupportedUrlScheme { .. }
                ),
                "{input}: {err:?}"
            );
            assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
        }
    }

    #[test]
    fn display_and_debug_redact_every_query_value_and_password() {
        let cases = [
            (
                format!("wss://x.webpubsub.azure.com/client/hubs/chat?access_token={TOKEN}"),
                "wss://x.webpubsub.azure.com/client/hubs/chat?access_token=[REDACTED]",
            ),
            (
                format!(
                    "ws://127.0.0.1:9/client/hubs/c?access_token={TOKEN}&awps_connection_id=c1&awps_reconnection_token={TOKEN}"
                ),
                "ws://127.0.0.1:9/client/hubs/c?access_token=[REDACTED]&awps_connection_id=[REDACTED]&awps_reconnection_token=[REDACTED]",
            ),
            (
                format!("wss://user:{TOKEN}@h/client/hubs/c?{TOKEN}&&x="),
                "wss://user:[REDACTED]@h/client/hubs/c?[REDACTED]&&x=[REDACTED]",
            ),
            ("wss://h/client/hubs/c".to_owned(), "wss://h/client/hubs/c"),
        ];
        for (input, shown) in cases {
            let url = ClientAccessUrl::parse(&input).unwrap();
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("ClientAccessUrl({shown})"));
            assert!(!format!("{:?}", Some(&url)).contains(TOKEN));
            assert!(url.expose().as_str().contains(TOKEN) || !input.contains(TOKEN));
        }
    }

    #[test]
    fn recovery_url_keeps_the_token_and_replaces_earlier_recovery_params() {
        let url = ClientAccessUrl::parse(&format!("wss://h/client/hubs/chat?access_token={TOKEN}"))
            .unwrap();
        let first = url.with_recovery("conn1", &Secret::new("reco1"));
        let second = first.with_recovery("conn2", &Secret::new("RECOTOKEN/2+="));
        let pairs: Vec<(String, String)> = second
            .expose()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("access_token".to_owned(), TOKEN.to_owned()),
                ("awps_connection_id".to_owned(), "conn2".to_owned()),
                (
                    "awps_reconnection_token".to_owned(),
                    "RECOTOKEN/2+=".to_owned()
                ),
            ]
        );
        assert_eq!(second.access_token(), Some(Secret::new(TOKEN)));
        assert_eq!(second.hub().as_deref(), Some("chat"));
        assert!(!second.to_string().contains("RECOTOKEN"));
        assert!(!format!("{second:?}").contains("RECOTOKEN"));
    }

    #[test]
    fn hub_name_rule() {
        let long_ok = format!("h{}", "x".repeat(127));
        let too_long = format!("h{}", "x".repeat(128));
        let cases: &[(&str, bool)] = &[
            ("chat", true),
            ("Chat_1", true),
            ("a`b,c.d[e]", true),
            (&long_ok, true),
            (&too_long, false),
            ("", false),
            ("1chat", false),
            ("_chat", false),
            ("chat/x", false),
            ("chat?x", false),
            ("chat#x", false),
            ("chat x", false),
            ("chät", false),
            ("chat-1", false),
        ];
        for (hub, ok) in cases {
            assert_eq!(validate_hub_name(hub).is_ok(), *ok, "{hub:?}");
        }
    }

    #[test]
    fn percent_decode_keeps_what_it_cannot_decode() {
        for (input, out) in [
            ("a%60b", "a`b"),
            ("%5B%5d", "[]"),
            ("a%", "a%"),
            ("a%6", "a%6"),
            ("a%zz", "a%zz"),
            ("%FF", "%FF"),
            ("plain", "plain"),
        ] {
            assert_eq!(percent_decode(input), out, "{input}");
        }
    }
}
