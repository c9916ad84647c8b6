//! Prometheus' JSON shapes: the `{"status":"success","data":..}` envelope,
//! sample values as strings (`"NaN"`, `"+Inf"`, `"-Inf"`, shortest decimal
//! otherwise) and timestamps as seconds with at most millisecond fraction
//! (`1435781451.781`, integral seconds without a fraction).

use axum::response::{IntoResponse, Response};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

/// Formats a sample value as Prometheus does (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display prints the shortest round-tripping decimal without
        // an exponent, as Go's 'f' with precision -1 does.
        format!("{v}")
    }
}

/// A millisecond timestamp that serializes as float seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ts(pub i64);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

/// A `[timestamp, "value"]` pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Milliseconds.
    pub t: i64,
    /// Value.
    pub v: f64,
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&Ts(self.t))?;
        seq.serialize_element(&format_value(self.v))?;
        seq.end()
    }
}

/// The success envelope.
#[derive(Serialize)]
pub struct Success<T: Serialize> {
    status: &'static str,
    data: T,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    infos: Vec<String>,
}

impl<T: Serialize> Success<T> {
    /// `data` with no warnings.
    pub fn new(data: T) -> Self {
        Success {
            status: "success",
            data,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    /// `data` with warnings and infos.
    pub fn with_notes(data: T, warnings: Vec<String>, infos: Vec<String>) -> Self {
        Success {
            status: "success",
            data,
            warnings,
            infos,
        }
    }
}

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_like_prometheus() {
        let f = |v: f64, want: &str| assert_eq!(format_value(v), want);
        f(f64::NAN, "NaN");
        f(f64::INFINITY, "+Inf");
        f(f64::NEG_INFINITY, "-Inf");
        f(1.0, "1");
        f(-0.5, "-0.5");
        f(0.1 + 0.2, "0.30000000000000004");
        f(1e21, "1000000000000000000000");
        f(1.5e-7, "0.00000015");
    }

    #[test]
    fn timestamps_as_seconds() {
        let f = |t: i64, want: &str| assert_eq!(serde_json::to_string(&Ts(t)).unwrap(), want);
        f(1_435_781_451_781, "1435781451.781");
        f(1_435_781_451_000, "1435781451");
        f(1_435_781_451_100, "1435781451.1");
        f(-1_500, "-1.5");
        let p = Point {
            t: 1_000_500,
            v: 2.0,
        };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"[1000.5,"2"]"#);
    }

    #[test]
    fn envelope_omits_empty_notes() {
        let s = serde_json::to_string(&Success::new(vec!["a"])).unwrap();
        assert_eq!(s, r#"{"status":"success","data":["a"]}"#);
        let s = serde_json::to_string(&Success::with_notes(1, vec!["w".into()], vec![])).unwrap();
        assert_eq!(s, r#"{"status":"success","data":1,"warnings":["w"]}"#);
    }
}
