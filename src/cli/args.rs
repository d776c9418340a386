//! Parsers for argument values shared by the commands: durations, chaos specs, targets.

use std::time::Duration;

use webpubsub_fleet::credential::ConnectionString;

/// The environment variable the official SDK samples read the connection string from.
pub const CONNECTION_STRING_ENV: &str = "WebPubSubConnectionString";

/// Parses `500ms`, `25s`, `2m`, `1h` or a bare number of seconds (`1.5`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 500ms, 25s, 2m or 1h"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}`: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{s}` is out of range"))
}

/// `--chaos SHARE:PERIOD`: `0.05:2s` or `5%:2s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosSpec {
    /// Share of connections dropped each round, 0.0 to 1.0.
    pub share: f64,
    /// Time between rounds.
    pub period: Duration,
}

/// Parses a [`ChaosSpec`].
pub fn chaos(s: &str) -> Result<ChaosSpec, String> {
    let (share, period) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not SHARE:PERIOD, such as 0.05:2s or 5%:2s"))?;
    let share = match share.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => share.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{share}` is not a share such as 0.05 or 5%"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!(
            "the chaos share {share} is not between 0 and 1 (0% and 100%)"
        ));
    }
    let period = duration(period)?;
    if period.is_zero() {
        return Err("the chaos period must be above zero".into());
    }
    Ok(ChaosSpec { share, period })
}

/// Parses a connection string (the error never repeats the input, which holds a key).
pub fn connection_string(s: &str) -> Result<ConnectionString, String> {
    ConnectionString::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("").is_err());
        assert!(duration("5 days").is_err());
        assert!(duration("-1s").is_err());
        assert!(duration("1e400").is_err());
    }

    #[test]
    fn chaos_specs() {
        let spec = chaos("0.05:2s").unwrap();
        assert!((spec.share - 0.05).abs() < 1e-12);
        assert_eq!(spec.period, Duration::from_secs(2));
        assert!((chaos("5%:500ms").unwrap().share - 0.05).abs() < 1e-12);
        assert!(chaos("0.05").is_err());
        assert!(chaos("2:1s").is_err());
        assert!(chaos("0.1:0s").is_err());
        assert!(chaos("x:1s").is_err());
    }

    #[test]
    fn connection_string_errors_do_not_echo_the_key() {
        let err = connection_string("Endpoint=ftp://h;AccessKey=supersecretkey;Version=1.0;")
            .unwrap_err();
        assert!(!err.contains("supersecretkey"), "{err}");
    }
}
