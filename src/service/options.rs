//! What a [`ServiceClient`](super::ServiceClient) is configured with, and the per-call options
//! of sends, closes and listings.

use std::time::Duration;

use super::error::ServiceError;
use super::retry::RetryPolicy;

/// The REST API version sent as `api-version`: `2024-12-01`, the default of the pinned Python
/// (1.3.0) and JS (1.2.0) service SDKs and the first with the group-member listing.
pub const DEFAULT_API_VERSION: &str = "2024-12-01";

/// Per-attempt timeout when none is set: 30 s, from sending the request to the end of the
/// answer's body. A data-plane call answers in milliseconds; a stuck one is retried.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer body read when none is set: 1 MiB. The biggest answer is a page of 200
/// group members, about 30 KB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Longest wait a `Retry-After` can impose: 120 s, Python azure-core's `retry_backoff_max`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How a [`ServiceClient`](super::ServiceClient) talks to the service.
///
/// ```
/// use std::time::Duration;
/// use webpubsub_fleet::service::{RetryPolicy, ServiceOptions};
///
/// let options = ServiceOptions::new()
///     .timeout(Duration::from_secs(5))
///     .retry(RetryPolicy::new().max_retries(1));
/// assert_eq!(options.api_version, "2024-12-01");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOptions {
    /// `api-version` of every call; [`DEFAULT_API_VERSION`] by default.
    pub api_version: String,
    /// Retries on 408, 429, 5xx, timeouts and transport errors; the SDKs' policy by default.
    pub retry: RetryPolicy,
    /// Per attempt; [`DEFAULT_TIMEOUT`] by default.
    pub timeout: Duration,
    /// Lifetime of the bearer token minted for each attempt;
    /// [`DEFAULT_REST_TOKEN_LIFETIME`](crate::credential::DEFAULT_REST_TOKEN_LIFETIME)
    /// (5 minutes, as .NET) by default.
    pub token_lifetime: Duration,
    /// Answer bodies larger than this fail the call; [`DEFAULT_MAX_RESPONSE_BODY`] by default.
    pub max_response_body: usize,
    /// The `User-Agent` header; `webpubsub-fleet/<version>` by default.
    pub user_agent: String,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            api_version: DEFAULT_API_VERSION.to_owned(),
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            token_lifetime: crate::credential::DEFAULT_REST_TOKEN_LIFETIME,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            user_agent: concat!("webpubsub-fleet/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ServiceOptions {
    /// The defaults listed on each field.
    pub fn new() -> ServiceOptions {
        ServiceOptions::default()
    }

    /// Sets [`ServiceOptions::api_version`].
    pub fn api_version(mut self, version: impl Into<String>) -> ServiceOptions {
        self.api_version = version.into();
        self
    }

    /// Sets [`ServiceOptions::retry`].
    pub fn retry(mut self, retry: RetryPolicy) -> ServiceOptions {
        self.retry = retry;
        self
    }

    /// Sets [`ServiceOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> ServiceOptions {
        self.timeout = timeout;
        self
    }

    /// Sets [`ServiceOptions::token_lifetime`].
    pub fn token_lifetime(mut self, lifetime: Duration) -> ServiceOptions {
        self.token_lifetime = lifetime;
        self
    }

    /// Sets [`ServiceOptions::max_response_body`].
    pub fn max_response_body(mut self, bytes: usize) -> ServiceOptions {
        self.max_response_body = bytes;
        self
    }

    /// Sets [`ServiceOptions::user_agent`].
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> ServiceOptions {
        self.user_agent = user_agent.into();
        self
    }

    pub(crate) fn check(&self) -> Result<(), ServiceError> {
        let invalid = |name, reason: &str| {
            Err(ServiceError::InvalidArgument {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.api_version.is_empty()
            || !self
                .api_version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return invalid(
                "api_version",
                "an api-version is letters, digits and `-`, such as 2024-12-01",
            );
        }
        if self.timeout.is_zero() {
            return invalid(
                "timeout",
                "a zero timeout fails every call: give at least a few seconds",
            );
        }
        if self.token_lifetime.as_secs() == 0 {
            return invalid(
                "token_lifetime",
                "tokens live in whole seconds: give at least 1 s",
            );
        }
        if self.user_agent.bytes().any(|b| b.is_ascii_control()) {
            return invalid(
                "user_agent",
                "a header value cannot hold control characters",
            );
        }
        Ok(())
    }
}

/// Who receives a send besides its target, and for how long the service may hold it.
/// The defaults send to every connection of the target, with no TTL.
///
/// ```
/// use webpubsub_fleet::service::SendOptions;
///
/// let options = SendOptions::new()
///     .filter("userId ne 'bot'")
///     .exclude("conn-1")
///     .message_ttl_seconds(30);
/// assert_eq!(options.excluded, ["conn-1"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// OData filter over `connectionId`, `userId` and `groups` (`filter`); none by default.
    pub filter: Option<String>,
    /// Connection ids that do not receive it (`excluded`, repeated); none by default. Sends to
    /// a user or a connection do not take it in the API; set, it is sent all the same.
    pub excluded: Vec<String>,
    /// `messageTtlSeconds`, 0 to 300 (0: never expires); the service's default when `None`.
    pub message_ttl_seconds: Option<u32>,
}

impl SendOptions {
    /// Everyone in the target, no TTL.
    pub fn new() -> SendOptions {
        SendOptions::default()
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: impl Into<String>) -> SendOptions {
        self.filter = Some(filter.into());
        self
    }

    /// Excludes one connection.
    pub fn exclude(mut self, connection_id: impl Into<String>) -> SendOptions {
        self.excluded.push(connection_id.into());
        self
    }

    /// Sets `messageTtlSeconds` (checked when sent: 0 to 300).
    pub fn message_ttl_seconds(mut self, seconds: u32) -> SendOptions {
        self.message_ttl_seconds = Some(seconds);
        self
    }
}

/// Which connections a close spares, and the reason they are told. Defaults: none spared,
/// no reason (the service says `ClosedByAppServer`... in the hub's words).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloseOptions {
    /// Connection ids left open (`excluded`, repeated).
    pub excluded: Vec<String>,
    /// `reason`, shown to the closed clients in their `disconnected` message.
    pub reason: Option<String>,
}

impl CloseOptions {
    /// Close all of the target, no reason.
    pub fn new() -> CloseOptions {
        CloseOptions::default()
    }

    /// Spares one connection.
    pub fn exclude(mut self, connection_id: impl Into<String>) -> CloseOptions {
        self.excluded.push(connection_id.into());
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> CloseOptions {
        self.reason = Some(reason.into());
        self
    }
}

/// Paging of [`ServiceClient::list_connections_in_group`](super::ServiceClient::list_connections_in_group).
/// Defaults: the service's page size (200 at most), no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `maxpagesize`, 1 to 200.
    pub max_page_size: Option<u32>,
    /// `top`: stop after this many members in all.
    pub top: Option<u32>,
}

impl ListOptions {
    /// Service defaults.
    pub fn new() -> ListOptions {
        ListOptions::default()
    }

    /// Sets `maxpagesize`.
    pub fn max_page_size(mut self, size: u32) -> ListOptions {
        self.max_page_size = Some(size);
        self
    }

    /// Sets `top`.
    pub fn top(mut self, top: u32) -> ListOptions {
        self.top = Some(top);
        self
    }
}
