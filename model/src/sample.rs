//! Samples and the stale marker.

use crate::Labels;

/// The Prometheus stale marker: a NaN with this exact bit pattern means
/// "the series ended here".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is the Prometheus stale marker (compared bit-exactly).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: timestamp in milliseconds since the epoch and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value (stale markers included, bit-exact).
    pub v: f64,
}

/// A series and its samples in a time range, sorted by time, unique
/// timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// The series' labels.
    pub labels: Labels,
    /// Samples in increasing time order.
    pub samples: Vec<Sample>,
}
