//! `histogram_quantile` over classic `le` buckets.

use std::collections::HashMap;

use super::{EResult, Evaluator, Series, Steps};
use crate::ast::Call;
use crate::model::Labels;

/// Relative tolerance under which bucket counts are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Result of [`bucket_quantile`].
pub(crate) struct BucketQuantile {
    pub value: f64,
    pub forced_monotonic: bool,
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// The q-quantile of classic buckets `(upper bound, cumulative count)`,
/// Prometheus' `BucketQuantile`.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> BucketQuantile {
    let mut out = BucketQuantile {
        value: f64::NAN,
        forced_monotonic: false,
    };
    if q.is_nan() {
        return out;
    }
    if q < 0.0 {
        out.value = f64::NEG_INFINITY;
        return out;
    }
    if q > 1.0 {
        out.value = f64::INFINITY;
        return out;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return out,
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Monotonicity fix.
    let mut prev = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            out.forced_monotonic = true;
            continue;
        }
        prev = curr;
    }
    if merged.len() < 2 {
        return out;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return out;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.1 < rank);
    out.value = if b == merged.len() - 1 {
        merged[merged.len() - 2].0
    } else if b == 0 && merged[0].0 <= 0.0 {
        merged[0].0
    } else {
        let mut start = 0.0;
        let end = merged[b].0;
        let mut count = merged[b].1;
        if b > 0 {
            start = merged[b - 1].0;
            count -= merged[b - 1].1;
            rank -= merged[b - 1].1;
        }
        start + (end - start) * (rank / count)
    };
    out
}

/// Parses an `le` value as Go's `strconv.ParseFloat` would.
fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

impl Evaluator<'_> {
    pub(crate) fn histogram_quantile(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let q = self.eval_scalar(&c.args[0], steps)?;
        let input = self.eval_vector(&c.args[1], steps)?;
        if let Some(bad) = q.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
            if !input.is_empty() {
                self.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {bad}"
                ));
            }
        }
        // Group the bucket series by their labels without `le`.
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for (si, s) in input.iter().enumerate() {
            let le = s.labels.get("le").unwrap_or("");
            let Some(ub) = parse_le(le) else {
                let name = s.labels.metric_name().unwrap_or("");
                self.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"
                ));
                continue;
            };
            let mut key = s.labels.clone();
            key.remove("le");
            let gi = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[gi].1.push((ub, si));
        }
        let mut out = Vec::with_capacity(groups.len());
        let mut buckets = Vec::new();
        for (labels, members) in groups {
            let mut vals = vec![None; steps.n];
            for (i, v) in vals.iter_mut().enumerate() {
                buckets.clear();
                for &(ub, si) in &members {
                    if let Some(x) = input[si].vals[i] {
                        buckets.push((ub, x));
                    }
                }
                if buckets.is_empty() {
                    continue;
                }
                let r = bucket_quantile(q[i], &mut buckets);
                if r.forced_monotonic {
                    let name = labels.metric_name().unwrap_or("");
                    self.info(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
                    ));
                }
                *v = Some(r.value);
            }
            if vals.iter().any(Option::is_some) {
                out.push(Series {
                    labels,
                    drop_name: true,
                    vals,
                });
            }
        }
        Ok(out)
    }
}
