//! The retry policy of the official service SDKs (JS `@azure/core-rest-pipeline`, whose
//! exponential and throttling strategies the Python `azure-core` `RetryPolicy` mirrors in
//! substance): which answers are retried and how long to wait before the next attempt.
//! Pure: no clock, no I/O; the caller sleeps.

use std::time::{Duration, SystemTime};

/// How failed calls are retried. Defaults are the JS SDK's (`DEFAULT_RETRY_POLICY_COUNT`,
/// `DEFAULT_CLIENT_RETRY_INTERVAL`, `DEFAULT_CLIENT_MAX_RETRY_INTERVAL`): 3 retries, 1 s base,
/// 64 s cap.
///
/// ```
/// use std::time::Duration;
/// use webpubsub_fleet::service::RetryPolicy;
///
/// let policy = RetryPolicy::new().max_retries(5).base_delay(Duration::from_millis(200));
/// assert_eq!(policy.max_retries, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 3 by default; 0 turns retrying off.
    pub max_retries: u32,
    /// The wait before the first retry is drawn from `[base/2, base]`, and doubles with each
    /// retry; 1 s by default.
    pub base_delay: Duration,
    /// No computed wait exceeds this; 64 s by default. A `Retry-After` longer than this is
    /// honoured all the same, as the SDKs do.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(64),
        }
    }
}

impl RetryPolicy {
    /// The SDK defaults (see the type).
    pub fn new() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy::default().max_retries(0)
    }

    /// Sets [`RetryPolicy::max_retries`].
    pub fn max_retries(mut self, n: u32) -> RetryPolicy {
        self.max_retries = n;
        self
    }

    /// Sets [`RetryPolicy::base_delay`].
    pub fn base_delay(mut self, delay: Duration) -> RetryPolicy {
        self.base_delay = delay;
        self
    }

    /// Sets [`RetryPolicy::max_delay`].
    pub fn max_delay(mut self, delay: Duration) -> RetryPolicy {
        self.max_delay = delay;
        self
    }

    /// The wait before retry number `retry` (1 for the first retry), given a uniform draw
    /// `jitter` in `[0, 1]`: `d/2 + jitter * d/2` with `d = min(max, base * 2^(retry-1))`, as
    /// the JS SDK's `calculateRetryDelay`. A `Retry-After` from the answer wins when given.
    pub fn delay(&self, retry: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let exponent = retry.saturating_sub(1).min(31);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Whether an answer with this status is retried: 408, 429 and every 5xx except 501 and 505
/// (JS `isExponentialRetryResponse` and `isThrottlingRetryResponse`; Python retries 408, 429,
/// 500, 502, 503, 504).
pub(crate) fn is_retriable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505)
}

/// The wait an answer asks for, from `retry-after-ms`, `x-ms-retry-after-ms` (milliseconds)
/// or `Retry-After` (seconds or an HTTP date), in that order, as the JS SDK reads them.
/// Waits longer than `cap` are cut to it, so a hostile answer cannot park a caller for days.
pub(crate) fn retry_after(
    header: impl Fn(&str) -> Option<String>,
    now: SystemTime,
    cap: Duration,
) -> Option<Duration> {
    let millis = ["retry-after-ms", "x-ms-retry-after-ms"]
        .iter()
        .find_map(|name| header(name)?.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms.min(cap.as_secs_f64() * 1000.0) / 1000.0));
    let after = millis.or_else(|| {
        let value = header("retry-after")?;
        let value = value.trim();
        match value.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                Some(Duration::from_secs_f64(secs.min(cap.as_secs_f64())))
            }
            Ok(_) => None,
            Err(_) => parse_http_date(value)?.duration_since(now).ok(),
        }
    })?;
    Some(after.min(cap))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form RFC 9110 lets
/// senders write.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_half_jitter_and_stop_at_the_cap() {
        let p = RetryPolicy::new();
        assert_eq!(p.delay(1, 0.0, None), Duration::from_millis(500));
        assert_eq!(p.delay(1, 1.0, None), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0, None), Duration::from_secs(4));
        assert_eq!(p.delay(30, 1.0, None), Duration::from_secs(64));
        assert_eq!(p.delay(30, 0.0, None), Duration::from_secs(32));
        let told = Some(Duration::from_secs(7));
        assert_eq!(p.delay(1, 0.5, told), Duration::from_secs(7));
    }

    #[test]
    fn retried_statuses_are_the_sdks() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retriable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 501, 505] {
            assert!(!is_retriable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_reads_ms_headers_seconds_and_dates() {
        let cap = Duration::from_secs(120);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            retry_after(
                h(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now,
                cap
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(h(&[("retry-after", "3")]), now, cap),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(
                h(&[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]),
                now,
                cap
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(h(&[("retry-after", "999999999")]), now, cap),
            Some(cap)
        );
        assert_eq!(retry_after(h(&[("retry-after", "soon")]), now, cap), None);
        assert_eq!(retry_after(h(&[("retry-after", "-1")]), now, cap), None);
        assert_eq!(retry_after(h(&[]), now, cap), None);
    }
}
