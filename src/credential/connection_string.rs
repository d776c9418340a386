//! `Endpoint=...;AccessKey=...;Port=...;Version=1.0;`, parsed as the server SDKs parse it.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use url::Url;

use super::client_url::{ClientAccessUrl, validate_hub_name};
use super::error::{CredentialError, shorten};
use super::token::{TokenOptions, mint_client_token};
use crate::protocol::Secret;

/// A Web PubSub connection string: the service endpoint and its access key.
///
/// `Display` and `Debug` print `AccessKey=[REDACTED]`; [`ConnectionString::expose`] is the
/// only way to the full string.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// http or https, a host, maybe a port and a path prefix; no query, no trailing `/`
    /// (except the lone `/` that `Url` keeps for an empty path).
    endpoint: Url,
    access_key: Secret,
}

impl ConnectionString {
    /// A connection string for `endpoint` (http or https, no query or fragment) and `access_key`.
    /// A trailing `/` on the endpoint's path is dropped.
    pub fn new(endpoint: Url, access_key: Secret) -> Result<ConnectionString, CredentialError> {
        if access_key.is_empty() {
            return Err(CredentialError::MissingAccessKey);
        }
        Ok(ConnectionString {
            endpoint: check_endpoint(endpoint)?,
            access_key,
        })
    }

    /// Parses a connection string the way the official server SDKs do (JS, Python, .NET):
    /// `;`-separated `Key=Value` parts, keys case-insensitive, each value split at its first
    /// `=` (access keys end with `=`), empty parts ignored, `Version` and unknown keys ignored,
    /// a trailing `/` on `Endpoint` dropped, `https://` added to an endpoint without a
    /// scheme, and `Port` overriding the endpoint's port. Whitespace around parts is trimmed,
    /// so a string read from a file with its newline still parses.
    pub fn parse(s: &str) -> Result<ConnectionString, CredentialError> {
        let mut endpoint: Option<&str> = None;
        let mut access_key: Option<&str> = None;
        let mut port: Option<&str> = None;
        for (index, part) in s.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(CredentialError::MalformedSegment { index });
            };
            let key = key.trim();
            let value = value.trim();
            let (slot, name) = if key.eq_ignore_ascii_case("endpoint") {
                (&mut endpoint, "Endpoint")
            } else if key.eq_ignore_ascii_case("accesskey") {
                (&mut access_key, "AccessKey")
            } else if key.eq_ignore_ascii_case("port") {
                (&mut port, "Port")
            } else {
                // `Version` and keys of newer formats: the SDKs ignore them too.
                continue;
            };
            if slot.replace(value).is_some() {
                return Err(CredentialError::DuplicateKey { key: name });
            }
        }
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .ok_or(CredentialError::MissingEndpoint)?;
        let access_key = access_key
            .filter(|k| !k.is_empty())
            .ok_or(CredentialError::MissingAccessKey)?;
        let with_scheme = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("https://{endpoint}")
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| CredentialError::InvalidEndpoint {
            reason: e.to_string(),
        })?;
        if let Some(port) = port {
            let number = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(CredentialError::InvalidPort)?;
            // Fails only for URLs that cannot have a port; check_endpoint names those.
            let _ = url.set_port(Some(number));
        }
        ConnectionString::new(url, Secret::new(access_key))
    }

    /// The endpoint: http or https, host, port if not the scheme's default, path prefix if any.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The endpoint as the SDKs write it: no trailing `/` (`https://x.webpubsub.azure.com`).
    pub fn endpoint_str(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    /// The access key. Never pass it to a log line or an error.
    pub fn access_key(&self) -> &Secret {
        &self.access_key
    }

    /// The full connection string, key included, in the form of the service's local
    /// emulator and of the SDKs' own tests:
    /// `Endpoint=http://127.0.0.1;Port=8080;AccessKey=...;Version=1.0;`. The port goes only
    /// in `Port`, because the Python SDK (1.3.0) appends `:{Port}` to the endpoint text, so
    /// `Endpoint=http://h:8080;Port=8080` would become `http://h:8080:8080` there; JS and .NET
    /// set the URL's port from `Port`. With a path prefix the port stays in the endpoint and
    /// `Port` is left out, for the same reason. Parses back to an equal value.
    /// Meant for the one place that must show it, such as the hub's first line of output.
    pub fn expose(&self) -> String {
        self.format(self.access_key.expose())
    }

    fn format(&self, key: &str) -> String {
        let endpoint = self.endpoint_str();
        match self.endpoint.port() {
            Some(port) if self.endpoint.path() == "/" => {
                let mut without_port = self.endpoint.clone();
                // Cannot fail: an http(s) URL with a host can always drop its port.
                let _ = without_port.set_port(None);
                format!(
                    "Endpoint={};Port={port};AccessKey={key};Version=1.0;",
                    without_port.as_str().trim_end_matches('/')
                )
            }
            _ => format!("Endpoint={endpoint};AccessKey={key};Version=1.0;"),
        }
    }

    /// The audience of a client access token for `hub`, as the SDKs write it:
    /// `{endpoint}/client/hubs/{hub}` with the endpoint's own http or https scheme.
    /// The hub name is not checked here; [`ConnectionString::client_access_url`] checks it.
    pub fn client_audience(&self, hub: &str) -> String {
        format!("{}/client/hubs/{hub}", self.endpoint_str())
    }

    /// Mints a client access token for `hub` (see [`mint_client_token`]).
    pub fn client_access_token(
        &self,
        hub: &str,
        options: &TokenOptions,
        now: SystemTime,
    ) -> Result<Secret, CredentialError> {
        validate_hub_name(hub)?;
        mint_client_token(&self.access_key, &self.client_audience(hub), options, now)
    }

    /// The URL a client connects to, as the SDKs' `getClientAccessUrl` builds it: the
    /// endpoint with http switched to ws and https to wss (port kept), path
    /// `/client/hubs/{hub}`, and a freshly minted token in `access_token`.
    pub fn client_access_url(
        &self,
        hub: &str,
        options: &TokenOptions,
        now: SystemTime,
    ) -> Result<ClientAccessUrl, CredentialError> {
        let token = self.client_access_token(hub, options, now)?;
        let endpoint = self.endpoint_str();
        let ws_scheme = if self.endpoint.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let after_scheme = &endpoint[self.endpoint.scheme().len()..];
        let mut url =
            Url::parse(&format!("{ws_scheme}{after_scheme}/client/hubs/{hub}")).map_err(|e| {
                CredentialError::InvalidClientAccessUrl {
                    reason: e.to_string(),
                }
            })?;
        url.query_pairs_mut()
            .append_pair("access_token", token.expose());
        ClientAccessUrl::from_url(url)
    }
}

/// Checks an endpoint and drops trailing `/` from its path.
fn check_endpoint(mut url: Url) -> Result<Url, CredentialError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CredentialError::UnsupportedEndpointScheme {
            scheme: shorten(url.scheme(), 16),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CredentialError::InvalidEndpoint {
            reason: "it has no host".into(),
        });
    }
    // IDNA maps some code points to `;` or `=` (U+037E GREEK QUESTION MARK becomes `;`), and
    // a host holding either would not survive `expose()` (found by fuzzing).
    if url.host_str().is_some_and(|host| host.contains([';', '='])) {
        return Err(CredentialError::InvalidEndpoint {
            reason: "its host contains `;` or `=` (after international name mapping): use a DNS name or an IP address".into(),
        });
    }
    // `Port=0` is refused when parsing, so an endpoint with `:0` must be too: otherwise
    // `expose()` would write `Port=0` and not parse back (found by fuzzing).
    if url.port() == Some(0) {
        return Err(CredentialError::InvalidEndpoint {
            reason: "its port is 0: use a port from 1 to 65535".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CredentialError::InvalidEndpoint {
            reason: "it has a query or a fragment".into(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CredentialError::InvalidEndpoint {
            reason: "it has a user name or password; the AccessKey is the only secret".into(),
        });
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

impl FromStr for ConnectionString {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionString::parse(s)
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format("[REDACTED]"))
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionString({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::token::{TokenOptions, validate_token};
    use std::time::{Duration, UNIX_EPOCH};

    const KEY: &str = "s3cr3tKeyAbc+/xyz=";

    #[test]
    fn parse_accepts_the_forms_the_sdks_accept() {
        // (input, endpoint_str, Url::port)
        let cases: &[(&str, &str, Option<u16>)] = &[
            (
                "Endpoint=https://x.webpubsub.azure.com;AccessKey=s3cr3tKeyAbc+/xyz=;Version=1.0;",
                "https://x.webpubsub.azure.com",
                None,
            ),
            (
                "endpoint=https://x.webpubsub.azure.com/;accesskey=s3cr3tKeyAbc+/xyz=;version=1.0",
                "https://x.webpubsub.azure.com",
                None,
            ),
            (
                "ENDPOINT=HTTPS://X.WebPubSub.Azure.com;ACCESSKEY=s3cr3tKeyAbc+/xyz=",
                "https://x.webpubsub.azure.com",
                None,
            ),
            (
                "AccessKey=s3cr3tKeyAbc+/xyz=;;Endpoint=x.webpubsub.azure.com;",
                "https://x.webpubsub.azure.com",
                None,
            ),
            (
                "Endpoint=http://localhost:8080;Port=8080;AccessKey=s3cr3tKeyAbc+/xyz=;Version=1.0;",
                "http://localhost:8080",
                Some(8080),
            ),
            (
                "Endpoint=http://localhost;Port=9090;AccessKey=s3cr3tKeyAbc+/xyz=",
                "http://localhost:9090",
                Some(9090),
            ),
            (
                "Endpoint=http://localhost:1234/;Port=5678;AccessKey=s3cr3tKeyAbc+/xyz=",
                "http://localhost:5678",
                Some(5678),
            ),
            (
                "Endpoint=https://x.example.com;Port=443;AccessKey=s3cr3tKeyAbc+/xyz=",
                "https://x.example.com",
                None,
            ),
            (
                "Endpoint=https://contoso.com/api/webpubsub//;AccessKey=s3cr3tKeyAbc+/xyz=",
                "https://contoso.com/api/webpubsub",
                None,
            ),
            (
                "  Endpoint = http://127.0.0.1:7 ; AccessKey = s3cr3tKeyAbc+/xyz= ;\n",
                "http://127.0.0.1:7",
                Some(7),
            ),
            (
                "Endpoint=https://x.example.com;AccessKey=s3cr3tKeyAbc+/xyz=;ClientCertificate=ignored",
                "https://x.example.com",
                None,
            ),
        ];
        for (input, endpoint, port) in cases {
            let cs = ConnectionString::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(cs.endpoint_str(), *endpoint, "{input:?}");
            assert_eq!(cs.endpoint().port(), *port, "{input:?}");
            assert_eq!(cs.access_key().expose(), KEY, "{input:?}");
            let via_from_str: ConnectionString = input.parse().expect("FromStr agrees with parse");
            assert_eq!(via_from_str, cs);
        }
    }

    #[test]
    fn parse_rejects_what_cannot_work() {
        use CredentialError as E;
        let cases: &[(&str, CredentialError)] = &[
            ("", E::MissingEndpoint),
            (";;;", E::MissingEndpoint),
            ("AccessKey=abc", E::MissingEndpoint),
            ("Endpoint=;AccessKey=abc", E::MissingEndpoint),
            ("Endpoint=https://x.example.com", E::MissingAccessKey),
            (
                "Endpoint=https://x.example.com;AccessKey=",
                E::MissingAccessKey,
            ),
            (
                "Endpoint=https://x.example.com;s3cr3tKey",
                E::MalformedSegment { index: 1 },
            ),
            ("garbage", E::MalformedSegment { index: 0 }),
            (
                "Endpoint=https://a;Endpoint=https://b;AccessKey=k",
                E::DuplicateKey { key: "Endpoint" },
            ),
            (
                "Endpoint=https://a;AccessKey=k;accesskey=k2",
                E::DuplicateKey { key: "AccessKey" },
            ),
            (
                "Endpoint=ftp://x.example.com;AccessKey=k",
                E::UnsupportedEndpointScheme {
                    scheme: "ftp".into(),
                },
            ),
            (
                "Endpoint=https://x.example.com;Port=0;AccessKey=k",
                E::InvalidPort,
            ),
            (
                "Endpoint=https://a\u{37e}b.example.com;AccessKey=k",
                E::InvalidEndpoint {
                    reason: "its host contains `;` or `=` (after international name mapping): use a DNS name or an IP address".into(),
                },
            ),
            (
                "Endpoint=https://x.example.com;Port=70000;AccessKey=k",
                E::InvalidPort,
            ),
            (
                "Endpoint=https://x.example.com;Port=http;AccessKey=k",
                E::InvalidPort,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                ConnectionString::parse(input).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
        // Unparsable endpoints: only the kind of error matters.
        for input in [
            "Endpoint=https://;AccessKey=k",
            "Endpoint=https://x.example.com?a=b;AccessKey=k",
            "Endpoint=https://user:pw@x.example.com;AccessKey=k",
            "Endpoint=http://[::1;AccessKey=k",
            "Endpoint=https://exa mple.com;AccessKey=k",
            "Endpoint=https://x.example.com:0;AccessKey=k",
            "Endpoint=x.example.com:0;AccessKey=k",
        ] {
            assert!(
                matches!(
                    ConnectionString::parse(input),
                    Err(E::InvalidEndpoint { .. })
                ),
                "{input:?} gave {:?}",
                ConnectionString::parse(input)
            );
        }
    }

    #[test]
    fn parse_errors_never_contain_the_key() {
        for input in [
            "Endpoint=https://x.example.com;s3cr3tKeyAbc",
            "s3cr3tKeyAbc;Endpoint=https://x.example.com",
            "Endpoint=ftp://x;AccessKey=s3cr3tKeyAbc",
            "Endpoint=https://x;AccessKey=s3cr3tKeyAbc;AccessKey=s3cr3tKeyAbc",
            "Endpoint=https://x;AccessKey=s3cr3tKeyAbc;Port=s3cr3tKeyAbc",
        ] {
            let err = ConnectionString::parse(input).expect_err(input);
            assert!(!err.to_string().contains("s3cr3tKeyAbc"), "{err}");
            assert!(!format!("{err:?}").contains("s3cr3tKeyAbc"), "{err:?}");
        }
    }

    #[test]
    fn display_and_debug_redact_the_key_and_expose_round_trips() {
        let input = "Endpoint=http://localhost;Port=8080;AccessKey=s3cr3tKeyAbc+/xyz=;Version=1.0;";
        let cs = ConnectionString::parse(input).expect("parses");
        for shown in [
            format!("{cs}"),
            format!("{cs:?}"),
            format!("{:?}", Some(&cs)),
        ] {
            assert!(!shown.contains("s3cr3tKey"), "{shown}");
            assert!(shown.contains("AccessKey=[REDACTED]"), "{shown}");
            assert!(
                shown.contains("Endpoint=http://localhost;Port=8080;"),
                "{shown}"
            );
        }
        assert_eq!(cs.expose(), input);
        assert_eq!(ConnectionString::parse(&cs.expose()), Ok(cs.clone()));

        let azure = ConnectionString::parse("Endpoint=x.webpubsub.azure.com;AccessKey=k=").unwrap();
        assert_eq!(
            azure.expose(),
            "Endpoint=https://x.webpubsub.azure.com;AccessKey=k=;Version=1.0;"
        );
        // Both SDK-compatible spellings of a local endpoint give the same value.
        let both = ConnectionString::parse(
            "Endpoint=http://localhost:8080;Port=8080;AccessKey=s3cr3tKeyAbc+/xyz=",
        );
        assert_eq!(both.as_ref(), Ok(&cs));
        let prefixed =
            ConnectionString::parse("Endpoint=https://h/api/wps;Port=8443;AccessKey=k").unwrap();
        assert_eq!(
            prefixed.expose(),
            "Endpoint=https://h:8443/api/wps;AccessKey=k;Version=1.0;"
        );
        assert_eq!(ConnectionString::parse(&prefixed.expose()), Ok(prefixed));
    }

    #[test]
    fn new_checks_the_endpoint_and_key() {
        let url = Url::parse("http://127.0.0.1:4321/").unwrap();
        let cs = ConnectionString::new(url.clone(), Secret::new("k")).unwrap();
        assert_eq!(
            cs.expose(),
            "Endpoint=http://127.0.0.1;Port=4321;AccessKey=k;Version=1.0;"
        );
        assert_eq!(
            ConnectionString::new(url, Secret::new("")),
            Err(CredentialError::MissingAccessKey)
        );
        assert!(matches!(
            ConnectionString::new(Url::parse("ws://h").unwrap(), Secret::new("k")),
            Err(CredentialError::UnsupportedEndpointScheme { .. })
        ));
    }

    #[test]
    fn client_audience_and_access_url_follow_the_sdks() {
        // (connection string, hub, audience, URL without query)
        let cases = [
            (
                "Endpoint=https://x.webpubsub.azure.com/;AccessKey=k",
                "chat",
                "https://x.webpubsub.azure.com/client/hubs/chat",
                "wss://x.webpubsub.azure.com/client/hubs/chat",
            ),
            (
                "Endpoint=http://127.0.0.1:8080;Port=8080;AccessKey=k",
                "Hub_1",
                "http://127.0.0.1:8080/client/hubs/Hub_1",
                "ws://127.0.0.1:8080/client/hubs/Hub_1",
            ),
            (
                "Endpoint=http://localhost;Port=9000;AccessKey=k",
                "h",
                "http://localhost:9000/client/hubs/h",
                "ws://localhost:9000/client/hubs/h",
            ),
            (
                "Endpoint=https://contoso.com/api/webpubsub;AccessKey=k",
                "theHub",
                "https://contoso.com/api/webpubsub/client/hubs/theHub",
                "wss://contoso.com/api/webpubsub/client/hubs/theHub",
            ),
        ];
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (input, hub, audience, base) in cases {
            let cs = ConnectionString::parse(input).unwrap();
            assert_eq!(cs.client_audience(hub), audience);
            let url = cs
                .client_access_url(hub, &TokenOptions::new().user_id("u1"), now)
                .unwrap();
            let exposed = url.expose();
            assert_eq!(&exposed[..url::Position::AfterPath], base);
            let pairs: Vec<_> = exposed.query_pairs().collect();
            assert_eq!(pairs.len(), 1, "{input}");
            assert_eq!(pairs[0].0, "access_token");
            assert_eq!(url.hub().as_deref(), Some(hub));
            let claims = validate_token(&pairs[0].1, cs.access_key(), audience, now).unwrap();
            assert_eq!(claims.user_id.as_deref(), Some("u1"));
        }
    }

    #[test]
    fn client_access_url_refuses_hub_names_that_would_break_the_url() {
        let cs = ConnectionString::parse("Endpoint=https://x.example.com;AccessKey=k").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for hub in [
            "",
            "1chat",
            "chat/../admin",
            "chat?x=1",
            "chat#x",
            &"h".repeat(129),
        ] {
            assert!(
                matches!(
                    cs.client_access_url(hub, &TokenOptions::new(), now),
                    Err(CredentialError::InvalidHub { .. })
                ),
                "{hub:?}"
            );
        }
    }
}
