//! The stamp every published payload starts with: publisher id, sequence number and send
//! time, as compact text (`p=17;s=42;t=1234567;`), padded to the payload size.
//!
//! Text, not JSON, because it is parsed once per delivery at load-test rates and must cost
//! next to nothing; and text frames are what the official clients send by default.

use std::fmt::Write as _;
use std::time::Instant;

use thiserror::Error;

/// Byte used to pad a stamp up to the payload size.
pub const PAD: char = '.';

/// Who sent a payload, its number in the publisher's sequence and when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publisher (a client index).
    pub publisher: u64,
    /// The publisher's sequence number, from 1; unique per publisher over all its targets.
    pub seq: u64,
    /// Send time in microseconds since the run's [`Clock`] epoch.
    pub sent_us: u64,
}

/// Why a payload carries no valid stamp. A delivery like that counts as "unexpected".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StampError {
    /// The payload is not text.
    #[error("the payload is not text")]
    NotText,
    /// A field is missing or out of order.
    #[error("the stamp lacks its `{0}=` field")]
    Missing(&'static str),
    /// A field is not a decimal number, or too large.
    #[error("the stamp's `{0}` field is not a number")]
    NotANumber(&'static str),
}

impl Stamp {
    /// Writes the stamp into `out` (cleared first), padded with [`PAD`] up to `size` bytes.
    /// A stamp longer than `size` is written whole: the payload is then longer than asked.
    pub fn write(&self, size: usize, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "p={};s={};t={};",
            self.publisher, self.seq, self.sent_us
        );
        let pad = size.saturating_sub(out.len());
        out.extend(std::iter::repeat_n(PAD, pad));
    }

    /// The stamp as a new string of at least `size` bytes.
    pub fn to_payload(&self, size: usize) -> String {
        let mut out = String::with_capacity(size.max(48));
        self.write(size, &mut out);
        out
    }

    /// Reads the stamp at the start of `text`; whatever follows it is ignored. Never panics.
    pub fn parse(text: &str) -> Result<Stamp, StampError> {
        let mut rest = text.as_bytes();
        let publisher = field(&mut rest, "p")?;
        let seq = field(&mut rest, "s")?;
        let sent_us = field(&mut rest, "t")?;
        Ok(Stamp {
            publisher,
            seq,
            sent_us,
        })
    }
}

/// Reads `name=<digits>;` from the start of `rest` and advances past it. One pass over the
/// bytes, as this runs once per delivery: no substring search, no second pass to check the
/// digits, no `str::parse`. Byte-wise is exact on UTF-8: `;` and ASCII digits never occur
/// inside a multi-byte character. A field without its `;` is missing, even if it also holds
/// a non-digit (what the earlier search-then-parse reported too).
fn field(rest: &mut &[u8], name: &'static str) -> Result<u64, StampError> {
    let Some(after_name) = rest
        .strip_prefix(name.as_bytes())
        .and_then(|r| r.strip_prefix(b"="))
    else {
        return Err(StampError::Missing(name));
    };
    let mut value: u64 = 0;
    let mut digits = 0usize;
    // Set once a byte is not a digit: then the field is not a number, if it ends at all.
    let mut bad = false;
    for (i, &b) in after_name.iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit < 10 {
            // No overflow check per digit (it would lengthen the loop's dependency chain):
            // 19 digits always fit in a u64, longer numbers are checked once at the end.
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            digits += 1;
        } else if b == b';' {
            if i == 0 || bad {
                return Err(StampError::NotANumber(name));
            }
            if digits > 19 {
                // Leading zeros, or too large: the slow, exact answer (all ASCII digits).
                value = std::str::from_utf8(&after_name[..i])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(StampError::NotANumber(name))?;
            }
            *rest = &after_name[i + 1..];
            return Ok(value);
        } else {
            bad = true;
        }
    }
    Err(StampError::Missing(name))
}

/// The run's shared time base: every publisher stamps and every receiver measures against
/// the same monotonic epoch (all clients live in this process). A sharded run's processes
/// share no `Instant`, so their clocks count from the Unix epoch instead ([`Clock::wall`]):
/// times from different shards compare as well as the machines' clocks agree.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    /// Microseconds added to the time since `epoch` (the wall time at `epoch` for a wall clock).
    offset_us: u64,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
            offset_us: 0,
        }
    }

    /// A clock that reads microseconds since the Unix epoch, read once from the system clock
    /// and then advanced monotonically (a clock step during the run does not move it).
    pub fn wall() -> Clock {
        let since_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            epoch: Instant::now(),
            offset_us: u64::try_from(since_unix.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Microseconds since the epoch.
    pub fn now_us(&self) -> u64 {
        let elapsed = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.offset_us.saturating_add(elapsed)
    }

    /// The instant the clock counts from (a wall clock adds the Unix time it read then).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        publisher: 17,
        seq: 42,
        sent_us: 1_234_567,
    };

    #[test]
    fn format_pads_to_size() {
        let text = STAMP.to_payload(32);
        assert_eq!(text, "p=17;s=42;t=1234567;............");
        assert_eq!(text.len(), 32);
        // Too small a size: the stamp stays whole.
        assert_eq!(STAMP.to_payload(4), "p=17;s=42;t=1234567;");
    }

    #[test]
    fn parse_reads_back_what_write_wrote() {
        for size in [0, 20, 64, 1024] {
            assert_eq!(Stamp::parse(&STAMP.to_payload(size)), Ok(STAMP));
        }
        let max = Stamp {
            publisher: u64::MAX,
            seq: u64::MAX,
            sent_us: u64::MAX,
        };
        assert_eq!(Stamp::parse(&max.to_payload(0)), Ok(max));
    }

    #[test]
    fn write_reuses_the_buffer() {
        let mut buf = String::from("old content that is long");
        STAMP.write(0, &mut buf);
        assert_eq!(buf, "p=17;s=42;t=1234567;");
    }

    #[test]
    fn malformed_stamps_are_errors_not_panics() {
        let cases: &[(&str, StampError)] = &[
            ("", StampError::Missing("p")),
            ("hello", StampError::Missing("p")),
            ("p=1", StampError::Missing("p")),
            ("p=;s=1;t=1;", StampError::NotANumber("p")),
            ("p=+1;s=1;t=1;", StampError::NotANumber("p")),
            ("p=-1;s=1;t=1;", StampError::NotANumber("p")),
            ("p=1;t=1;s=1;", StampError::Missing("s")),
            ("p=1;s=1x;t=1;", StampError::NotANumber("s")),
            ("p=1;s=1;", StampError::Missing("t")),
            (
                "p=1;s=1;t=99999999999999999999999;",
                StampError::NotANumber("t"),
            ),
            ("p=1;s=1;t=é;", StampError::NotANumber("t")),
            ("p=١;s=1;t=1;", StampError::NotANumber("p")),
            ("P=1;s=1;t=1;", StampError::Missing("p")),
        ];
        for (text, expected) in cases {
            assert_eq!(Stamp::parse(text), Err(*expected), "{text:?}");
        }
        // Arbitrary bytes never panic.
        for n in 0..2000u32 {
            let text: String = (0..(n % 23))
                .map(|i| char::from_u32((n * 31 + i * 7) % 128).unwrap_or('x'))
                .collect();
            let _ = Stamp::parse(&text);
        }
    }

    /// The parse as it was before the one-pass [`field`]: search for `;`, check the digits,
    /// `str::parse`. The fast parse must agree with it on every input.
    fn reference_parse(text: &str) -> Result<Stamp, StampError> {
        fn field(rest: &mut &str, name: &'static str) -> Result<u64, StampError> {
            let after_name = rest
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .ok_or(StampError::Missing(name))?;
            let end = after_name.find(';').ok_or(StampError::Missing(name))?;
            let digits = &after_name[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(StampError::NotANumber(name));
            }
            let value = digits.parse().map_err(|_| StampError::NotANumber(name))?;
            *rest = &after_name[end + 1..];
            Ok(value)
        }
        let mut rest = text;
        Ok(Stamp {
            publisher: field(&mut rest, "p")?,
            seq: field(&mut rest, "s")?,
            sent_us: field(&mut rest, "t")?,
        })
    }

    #[test]
    fn one_pass_parse_agrees_with_search_then_parse() {
        let edges = [
            "p=18446744073709551615;s=0;t=0;",
            "p=18446744073709551616;s=0;t=0;",
            "p=99999999999999999999;s=0;t=0;",
            "p=00000000000000000000000001;s=007;t=0;",
            "p=1x;s=1;t=1;",
            "p=1x",
            "p=1;s=",
            "p=1;s=;",
            "p=1;s=2;t=3",
            "p=1;s=2;t=3;x",
            "p=1;;s=2;t=3;",
            "p==1;s=2;t=3;",
            "p=1é;s=2;t=3;",
            "p=1;s=2;t=3é",
            "=1;s=2;t=3;",
            ";",
            "p",
            "p=",
        ];
        for text in edges {
            assert_eq!(Stamp::parse(text), reference_parse(text), "{text:?}");
        }
        // Every mutation of one byte of a real stamp, and every truncation of it.
        let stamp = Stamp {
            publisher: 4_294_967_296,
            seq: 18_446_744_073_709_551_615,
            sent_us: 90_000_000_000,
        }
        .to_payload(0);
        for cut in 0..=stamp.len() {
            assert_eq!(
                Stamp::parse(&stamp[..cut]),
                reference_parse(&stamp[..cut]),
                "{cut}"
            );
        }
        for i in 0..stamp.len() {
            for b in (0u8..128).chain([0xc3]) {
                let mut bytes = stamp.clone().into_bytes();
                bytes[i] = b;
                let text = String::from_utf8_lossy(&bytes);
                assert_eq!(Stamp::parse(&text), reference_parse(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn clock_is_monotonic() {
        let clock = Clock::new();
        let a = clock.now_us();
        let b = clock.now_us();
        assert!(b >= a);
    }
}
