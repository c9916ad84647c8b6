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
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> BucketQuantile {
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
    // Go's sort.Search with `count >= rank`: with a NaN count or rank the
    // predicate is not monotonic, and Go's bisection decides (a NaN total
    // count picks the last finite bucket's bound, not NaN).
    let b = super::gomath::go_search(merged.len() - 1, |i| merged[i].1 >= rank);
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

/// `BucketFraction`: the fraction of observations between `lower` and `upper`.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let count = merged[merged.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if merged[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(ub, bc)) in merged.iter().enumerate() {
        if i > 0 {
            lower_bound = merged[i - 1].0;
        }
        let interp = |v: f64, rank: f64| {
            if lower_bound == f64::NEG_INFINITY {
                bc
            } else {
                rank + (bc - rank) * (v - lower_bound) / (ub - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && ub > lower {
            lower_rank = interp(lower, rank);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && ub > upper {
            upper_rank = interp(upper, rank);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = bc;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Go's `FormatOpenMetricsFloat`: shortest form, with ".0" when it would
/// otherwise look like an integer.
fn format_openmetrics(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let a = f.abs();
    let s = if a != 0.0 && !(1e-4..1e21).contains(&a) {
        format!("{f:e}")
            .replace("e-", "e-0")
            .replace("e", "e+")
            .replace("e+-", "e-")
    } else {
        format!("{f}")
    };
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Bucket series grouped by their labels without `le`.
type BucketGroups = Vec<(Labels, Vec<(f64, usize)>)>;

impl Evaluator<'_> {
    fn bucket_groups(&mut self, input: &[Series]) -> BucketGroups {
        let mut groups: BucketGroups = Vec::new();
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
        groups
    }

    /// Runs `f(step, buckets)` for every group and step with buckets.
    fn per_group_step(
        &mut self,
        input: &[Series],
        groups: &BucketGroups,
        steps: &Steps,
        mut f: impl FnMut(&mut Self, &Labels, usize, &mut Vec<(f64, f64)>) -> f64,
    ) -> Vec<Vec<Option<f64>>> {
        let mut buckets = Vec::new();
        let mut out = Vec::with_capacity(groups.len());
        for (labels, members) in groups {
            let mut vals = vec![None; steps.n];
            for (i, v) in vals.iter_mut().enumerate() {
                buckets.clear();
                for &(ub, si) in members {
                    if let Some(x) = input[si].vals[i] {
                        buckets.push((ub, x));
                    }
                }
                if !buckets.is_empty() {
                    *v = Some(f(self, labels, i, &mut buckets));
                }
            }
            out.push(vals);
        }
        out
    }

    /// One warning per distinct out-of-range `q` (Prometheus checks every
    /// step).
    fn warn_bad_quantiles(&mut self, q: &[f64]) {
        for bad in q.iter().filter(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
            self.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                super::gomath::go_g(*bad)
            ));
        }
    }

    fn quantile_at(&mut self, q: f64, labels: &Labels, b: &mut [(f64, f64)]) -> f64 {
        let r = bucket_quantile(q, b);
        if r.forced_monotonic {
            let name = labels.metric_name().unwrap_or("");
            self.info(format!(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
            ));
        }
        r.value
    }

    pub(crate) fn histogram_quantile(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let q = self.eval_scalar(&c.args[0], steps)?;
        let input = self.eval_vector(&c.args[1], steps)?;
        self.warn_bad_quantiles(&q);
        let groups = self.bucket_groups(&input);
        let vals = self.per_group_step(&input, &groups, steps, |ev, l, i, b| {
            ev.quantile_at(q[i], l, b)
        });
        Ok(collect(groups, vals))
    }

    pub(crate) fn histogram_quantiles(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let input = self.eval_vector(&c.args[0], steps)?;
        let label = match &c.args[1] {
            crate::ast::Expr::String(s) => s.clone(),
            _ => return super::exec_err("histogram_quantiles: expected a label name"),
        };
        let mut qs = Vec::new();
        for a in &c.args[2..] {
            qs.push(self.eval_scalar(a, steps)?);
        }
        for q in &qs {
            self.warn_bad_quantiles(q);
        }
        let groups = self.bucket_groups(&input);
        let mut out = Vec::new();
        for q in &qs {
            let vals = self.per_group_step(&input, &groups, steps, |ev, l, i, b| {
                ev.quantile_at(q[i], l, b)
            });
            let mut series = collect(groups.clone(), vals);
            let qstr = format_openmetrics(q.first().copied().unwrap_or(f64::NAN));
            for s in &mut series {
                s.labels.set(&label, &qstr);
            }
            out.extend(series);
        }
        Ok(out)
    }

    pub(crate) fn histogram_fraction(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let lo = self.eval_scalar(&c.args[0], steps)?;
        let hi = self.eval_scalar(&c.args[1], steps)?;
        let input = self.eval_vector(&c.args[2], steps)?;
        let groups = self.bucket_groups(&input);
        let vals = self.per_group_step(&input, &groups, steps, |_, _, i, b| {
            bucket_fraction(lo[i], hi[i], b)
        });
        Ok(collect(groups, vals))
    }
}

fn collect(groups: BucketGroups, vals: Vec<Vec<Option<f64>>>) -> Vec<Series> {
    groups
        .into_iter()
        .zip(vals)
        .filter(|(_, v)| v.iter().any(Option::is_some))
        .map(|((labels, _), vals)| Series {
            labels,
            drop_name: true,
            vals,
        })
        .collect()
}
