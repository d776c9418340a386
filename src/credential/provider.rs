//! Where a client gets the URL of each new connection.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::client_url::{ClientAccessUrl, validate_hub_name};
use super::connection_string::ConnectionString;
use super::error::CredentialError;
use super::token::TokenOptions;

/// An async source of client access URLs, such as a call to the application's own
/// "negotiate" endpoint, as the official clients' `getClientAccessUrl` callbacks.
pub type UrlProvider =
    Arc<dyn Fn() -> BoxFuture<'static, Result<ClientAccessUrl, CredentialError>> + Send + Sync>;

/// Where a client's access URLs come from.
///
/// [`Credential::next_url`] is called once for every NEW connection (the first one and
/// every reconnection after the session was lost). A recovery of a reliable session reuses
/// the URL of the connection it recovers, with the recovery parameters added, and never
/// calls it: the service accepts the old access token on a recovery (protocol.md 1.2). That
/// rule is the client's to keep; it is written here so a provider knows how often it runs.
///
/// Cheap to clone. `Debug` shows the source without any key or token.
#[derive(Clone)]
pub struct Credential(Source);

#[derive(Clone)]
enum Source {
    Fixed(ClientAccessUrl),
    Minted {
        connection_string: ConnectionString,
        hub: String,
        options: TokenOptions,
    },
    Provider(UrlProvider),
}

impl Credential {
    /// Always the same URL. Once its token expires, new connections fail; use another
    /// source for long runs.
    pub fn from_url(url: ClientAccessUrl) -> Credential {
        Credential(Source::Fixed(url))
    }

    /// Mints a fresh token for every new connection, as a server SDK's
    /// `getClientAccessUrl` does, with the connection string's key. Checks the hub name now,
    /// so a bad one fails here and not at the first connection.
    pub fn from_connection_string(
        connection_string: ConnectionString,
        hub: impl Into<String>,
        options: TokenOptions,
    ) -> Result<Credential, CredentialError> {
        let hub = hub.into();
        validate_hub_name(&hub)?;
        Ok(Credential(Source::Minted {
            connection_string,
            hub,
            options,
        }))
    }

    /// Asks `provider` for every new connection.
    ///
    /// ```
    /// use webpubsub_fleet::credential::{ClientAccessUrl, Credential};
    ///
    /// let credential = Credential::from_provider(|| async {
    ///     // Typically: ask the application server, which holds the key.
    ///     ClientAccessUrl::parse("ws://127.0.0.1:8080/client/hubs/chat?access_token=t")
    /// });
    /// # let _ = credential;
    /// ```
    pub fn from_provider<F, Fut>(provider: F) -> Credential
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ClientAccessUrl, CredentialError>> + Send + 'static,
    {
        Credential(Source::Provider(Arc::new(move || provider().boxed())))
    }

    /// Asks an already boxed provider for every new connection.
    pub fn from_url_provider(provider: UrlProvider) -> Credential {
        Credential(Source::Provider(provider))
    }

    /// Whether every connection gets the same URL: a refused token will be refused again.
    pub fn is_fixed(&self) -> bool {
        matches!(self.0, Source::Fixed(_))
    }

    /// The URL for a new connection. `now` sets `iat` and `exp` of a minted token.
    pub async fn next_url(&self, now: SystemTime) -> Result<ClientAccessUrl, CredentialError> {
        match &self.0 {
            Source::Fixed(url) => Ok(url.clone()),
            Source::Minted {
                connection_string,
                hub,
                options,
            } => connection_string.client_access_url(hub, options, now),
            Source::Provider(provider) => provider().await,
        }
    }
}

impl From<ClientAccessUrl> for Credential {
    fn from(url: ClientAccessUrl) -> Self {
        Credential::from_url(url)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Fixed(url) => f.debug_tuple("Credential::Url").field(url).finish(),
            Source::Minted {
                connection_string,
                hub,
                options,
            } => f
                .debug_struct("Credential::ConnectionString")
                .field("connection_string", connection_string)
                .field("hub", hub)
                .field("options", options)
                .finish(),
            Source::Provider(_) => f.write_str("Credential::Provider(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::token::validate_token;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, UNIX_EPOCH};

    const KEY: &str = "s3cr3tKeyAbc+/xyz=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn connection_string() -> ConnectionString {
        ConnectionString::parse(&format!(
            "Endpoint=http://127.0.0.1:7070;Port=7070;AccessKey={KEY};Version=1.0;"
        ))
        .unwrap()
    }

    #[test]
    fn fixed_url_gives_the_same_url_every_time() {
        let url = ClientAccessUrl::parse("wss://h/client/hubs/c?access_token=tok").unwrap();
        let credential = Credential::from(url.clone());
        for secs in [1, 1_000_000] {
            assert_eq!(
                futures::executor::block_on(credential.next_url(at(secs))),
                Ok(url.clone())
            );
        }
    }

    #[test]
    fn connection_string_mints_a_fresh_token_per_connection() {
        let cs = connection_string();
        let options = TokenOptions::new().user_id("u").group("g");
        let credential = Credential::from_connection_string(cs.clone(), "chat", options).unwrap();
        let audience = cs.client_audience("chat");
        let first = futures::executor::block_on(credential.next_url(at(1000))).unwrap();
        let second = futures::executor::block_on(credential.next_url(at(2000))).unwrap();
        assert_ne!(first, second);
        for (url, iat) in [(first, 1000), (second, 2000)] {
            assert_eq!(url.hub().as_deref(), Some("chat"));
            assert_eq!(url.expose().scheme(), "ws");
            assert_eq!(url.expose().port(), Some(7070));
            let token = url.access_token().unwrap();
            let claims =
                validate_token(token.expose(), cs.access_key(), &audience, at(iat)).unwrap();
            assert_eq!(claims.issued_at, Some(iat));
            assert_eq!(claims.user_id.as_deref(), Some("u"));
            assert_eq!(claims.groups, ["g"]);
        }
        assert!(matches!(
            Credential::from_connection_string(cs, "no/slash", TokenOptions::new()),
            Err(CredentialError::InvalidHub { .. })
        ));
    }

    #[test]
    fn provider_is_called_once_per_new_connection_and_its_errors_pass_through() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let credential = Credential::from_provider(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    ClientAccessUrl::parse("ws://h/client/hubs/c?access_token=t1")
                } else {
                    Err(CredentialError::Provider {
                        reason: "negotiate returned 503".into(),
                    })
                }
            }
        });
        let first = futures::executor::block_on(credential.next_url(at(1)));
        assert_eq!(first.unwrap().access_token(), Some("t1".into()));
        let second = futures::executor::block_on(credential.next_url(at(2)));
        assert_eq!(
            second,
            Err(CredentialError::Provider {
                reason: "negotiate returned 503".into()
            })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn next_url_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let credential =
            Credential::from_provider(|| async { ClientAccessUrl::parse("ws://h/client/hubs/c") });
        assert_send(credential.next_url(at(1)));
    }

    #[test]
    fn debug_never_shows_a_key_or_token() {
        let url = ClientAccessUrl::parse("wss://h/client/hubs/c?access_token=SECRETTOKEN").unwrap();
        let provider: UrlProvider =
            Arc::new(|| async { Err(CredentialError::Provider { reason: "x".into() }) }.boxed());
        let cases = [
            (
                Credential::from_url(url),
                "Credential::Url(ClientAccessUrl(wss://h/client/hubs/c?access_token=[REDACTED]))",
            ),
            (
                Credential::from_connection_string(
                    connection_string(),
                    "chat",
                    TokenOptions::new(),
                )
                .unwrap(),
                "",
            ),
            (
                Credential::from_url_provider(provider),
                "Credential::Provider(..)",
            ),
        ];
        for (credential, expected) in cases {
            let shown = format!("{credential:?}");
            assert!(!shown.contains("SECRETTOKEN"), "{shown}");
            assert!(!shown.contains(KEY), "{shown}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            if !expected.is_empty() {
                assert_eq!(shown, expected);
            } else {
                assert!(shown.contains("AccessKey=[REDACTED]"), "{shown}");
                assert!(shown.contains("hub: \"chat\""), "{shown}");
            }
        }
    }
}
