//! Prometheus duration strings (`15d`, `1h30m`, `500ms`, `0`) as used in
//! flags, the config file and the HTTP API.
//!
//! The grammar (Prometheus' `model.ParseDuration`) is `model::duration`'s,
//! shared with the PromQL parser.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use model::duration::format_duration_ms;

/// Parses a Prometheus duration such as `15d` or `1h30m` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let ms = model::duration::parse_duration_ms(s)
        .map_err(|e| format!("not a valid duration {s:?}: {e}"))?;
    u64::try_from(ms).map_err(|_| format!("duration {s:?} must not be negative"))
}

/// A [`Duration`] written as a Prometheus duration string in flags and YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// The duration from milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        PromDuration(Duration::from_millis(ms))
    }
}

impl FromStr for PromDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration_ms(s).map(PromDuration::from_millis)
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ms(self.0.as_millis() as u64))
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept a bare integer 0 as well as strings.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::N(0) => Ok(PromDuration::from_millis(0)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "duration {n} needs a unit, e.g. \"{n}s\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |s: &str, want: u64| assert_eq!(parse_duration_ms(s), Ok(want), "{s}");
        ok("0", 0);
        ok("15d", 15 * 86_400_000);
        ok("1h30m", 5_400_000);
        ok("500ms", 500);
        ok("1m1s1ms", 61_001);
        ok("2w", 14 * 86_400_000);
        ok("1y", 365 * 86_400_000);
        let bad = |s: &str| assert!(parse_duration_ms(s).is_err(), "{s}");
        bad("");
        bad("1");
        bad("1x");
        bad("1m1h");
        bad("1s1s");
        bad("-1s");
        bad("1.5s");
        bad("s");
    }

    #[test]
    fn format_round_trips() {
        for s in [
            "0s", "15d", "90d", "1h30m", "500ms", "1m1s1ms", "2w", "1y", "400d",
        ] {
            let ms = parse_duration_ms(s).unwrap();
            assert_eq!(format_duration_ms(ms), s);
        }
    }
}
