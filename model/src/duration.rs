//! Prometheus duration strings (`15d`, `1h30m`, `500ms`, `0`): one grammar
//! for PromQL, flags, the config file and the HTTP API.
//!
//! The grammar is Prometheus' `model.ParseDuration`: units in decreasing
//! order, each at most once, from `y w d h m s ms`; a year is 365 days.

use std::fmt::Write as _;

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Prometheus keeps durations in int64 nanoseconds.
const MAX_MS: i64 = i64::MAX / 1_000_000;

/// Why a duration string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// `""`.
    #[error("empty duration string")]
    Empty,
    /// Not digits followed by a unit, or units out of order or repeated.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// A unit other than `y w d h m s ms`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole string.
        input: String,
    },
    /// More than Prometheus' int64 nanoseconds hold.
    #[error("duration out of range")]
    OutOfRange,
}

/// Parses a duration into milliseconds (never negative).
pub fn parse_duration_ms(input: &str) -> Result<i64, DurationError> {
    if input == "0" {
        return Ok(0);
    }
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let bad = || DurationError::Invalid(input.to_string());
    let mut rest = input;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(bad());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit {
                unit: unit.to_string(),
                input: input.to_string(),
            });
        };
        if idx < next_unit {
            return Err(bad());
        }
        next_unit = idx + 1;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .filter(|&t| t <= MAX_MS)
            .ok_or(DurationError::OutOfRange)?;
    }
    Ok(total)
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`, `0s`,
/// `15d`): years and weeks only when they divide the whole duration, as
/// `90d` reads better than `12w6d` (Prometheus' `model.Duration.String`).
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut left = ms;
    let mut out = String::new();
    for (unit, size) in UNITS {
        let size = size as u64;
        let exact_only = matches!(unit, "y" | "w");
        if left >= size && (!exact_only || left.is_multiple_of(size)) {
            let _ = write!(out, "{}{unit}", left / size);
            left %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |s: &str, ms: i64| assert_eq!(parse_duration_ms(s), Ok(ms), "{s}");
        ok("0", 0);
        ok("5m", 300_000);
        ok("1h30m", 5_400_000);
        ok("500ms", 500);
        ok("1y2w3d", (365 + 14 + 3) * 86_400_000);
        ok("0s", 0);
        let err = |s: &str, e: DurationError| assert_eq!(parse_duration_ms(s), Err(e), "{s}");
        err("", DurationError::Empty);
        err("5", DurationError::Invalid("5".into()));
        err("m", DurationError::Invalid("m".into()));
        err("1m1h", DurationError::Invalid("1m1h".into()));
        err("1m1m", DurationError::Invalid("1m1m".into()));
        err(
            "3x",
            DurationError::UnknownUnit {
                unit: "x".into(),
                input: "3x".into(),
            },
        );
        err("300000y", DurationError::OutOfRange);
        err(
            "99999999999999999999s",
            DurationError::Invalid("99999999999999999999s".into()),
        );
    }

    #[test]
    fn format_table() {
        for (ms, s) in [
            (0, "0s"),
            (1, "1ms"),
            (90 * 86_400_000, "90d"),
            (14 * 86_400_000, "2w"),
            (5_400_000, "1h30m"),
            (365 * 86_400_000, "1y"),
            (61_500, "1m1s500ms"),
        ] {
            assert_eq!(format_duration_ms(ms), s);
            assert_eq!(parse_duration_ms(s), Ok(ms as i64));
        }
    }
}
