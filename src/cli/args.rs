//! Parsers for argument values shared by the commands: durations, chaos specs, targets.

use std::time::Duration;

use webpubsub_fleet::client::SocketFault;
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

/// What `--chaos` says: `[hub:|client:]SHARE:PERIOD[:KIND]`.
///
/// - `5%:2s` or `hub:5%:2s`: the in-process local hub drops 5 % of its connections abruptly
///   every 2 s (needs the local hub in this process);
/// - `client:5%:2s[:KIND]`: every 2 s the fleet faults the sockets of 5 % of its connected
///   clients itself, against any hub; KIND is `drop` (the default: the TCP connection ends
///   without a close frame), `blackhole` (half-open: nothing is read or written any more, the
///   client's keepalive timeout notices) or `close=CODE` (a close frame with CODE, such as 1011
///   or 1000).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosSpec {
    /// Who injects the faults.
    pub side: ChaosSide,
    /// Share of connections hit each round, 0.0 to 1.0.
    pub share: f64,
    /// Time between rounds.
    pub period: Duration,
    /// What a round does to each connection it hits (always `Drop` on the hub side).
    pub fault: SocketFault,
}

/// Who injects `--chaos` faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosSide {
    /// The in-process local hub, through its fault API.
    Hub,
    /// The fleet, into its own clients' sockets: works against any hub.
    Client,
}

const CHAOS_FORMS: &str = "[hub:|client:]SHARE:PERIOD[:KIND], such as 5%:2s, client:5%:2s, client:5%:2s:blackhole or client:5%:2s:close=1011";

/// Parses a [`ChaosSpec`].
pub fn chaos(s: &str) -> Result<ChaosSpec, String> {
    let (side, rest) = match s.split_once(':') {
        Some(("hub", rest)) => (ChaosSide::Hub, rest),
        Some(("client", rest)) => (ChaosSide::Client, rest),
        _ => (ChaosSide::Hub, s),
    };
    let mut fields = rest.splitn(3, ':');
    let (Some(share), Some(period)) = (fields.next(), fields.next()) else {
        return Err(format!("`{s}` is not {CHAOS_FORMS}"));
    };
    let fault = match (side, fields.next()) {
        (_, None) => SocketFault::Drop,
        (ChaosSide::Hub, Some(kind)) => {
            return Err(format!(
                "`{kind}`: the hub side only drops connections; faults of a kind are client:SHARE:PERIOD:KIND"
            ));
        }
        (ChaosSide::Client, Some(kind)) => chaos_kind(kind)?,
    };
    let share = fraction(share).map_err(|e| format!("chaos: {e}"))?;
    let period = duration(period)?;
    if period.is_zero() {
        return Err("the chaos period must be above zero".into());
    }
    Ok(ChaosSpec {
        side,
        share,
        period,
        fault,
    })
}

/// A share between 0 and 1, as a fraction (0.05) or a percentage (5%).
pub fn fraction(s: &str) -> Result<f64, String> {
    let value = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share such as 0.05 or 5%"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "the share {value} is not between 0 and 1 (0% and 100%)"
        ));
    }
    Ok(value)
}

/// `drop`, `blackhole` or `close=CODE`.
fn chaos_kind(kind: &str) -> Result<SocketFault, String> {
    let fault = match kind.trim() {
        "drop" => SocketFault::Drop,
        "blackhole" => SocketFault::Blackhole,
        other => match other.strip_prefix("close=").map(str::parse::<u16>) {
            Some(Ok(code)) => SocketFault::Close(code),
            Some(Err(_)) => {
                return Err(format!("`{other}`: close=CODE needs a number such as 1011"));
            }
            None => {
                return Err(format!(
                    "unknown chaos kind `{other}`: use drop, blackhole or close=CODE"
                ));
            }
        },
    };
    fault.validate()?;
    Ok(fault)
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
        assert_eq!((spec.side, spec.fault), (ChaosSide::Hub, SocketFault::Drop));
        assert_eq!(chaos("hub:5%:2s").unwrap().side, ChaosSide::Hub);
        // Client side: the kind defaults to drop.
        let table = [
            ("client:5%:2s", SocketFault::Drop),
            ("client:5%:2s:drop", SocketFault::Drop),
            ("client:10%:1s:blackhole", SocketFault::Blackhole),
            ("client:5%:2s:close=1011", SocketFault::Close(1011)),
            ("client:5%:2s:close=1000", SocketFault::Close(1000)),
        ];
        for (text, fault) in table {
            let spec = chaos(text).unwrap();
            assert_eq!(
                (spec.side, spec.fault),
                (ChaosSide::Client, fault),
                "{text}"
            );
        }
        let spec = chaos("client:5%:2s:blackhole").unwrap();
        assert!((spec.share - 0.05).abs() < 1e-12);
        assert_eq!(spec.period, Duration::from_secs(2));
        for bad in [
            "hub:5%:2s:blackhole",
            "client:5%:2s:jam",
            "client:5%:2s:close=1006",
            "client:5%:2s:close=abc",
            "client:5%",
            "client:200%:1s",
        ] {
            assert!(chaos(bad).is_err(), "{bad}");
        }
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
