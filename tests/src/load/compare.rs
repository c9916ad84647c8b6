//! Do two systems give the same answer?
//!
//! Same series (label sets), same timestamps, and then either
//! [`Rule::PerValue`]: every value within a relative tolerance,
//! `|a − b| ≤ tol · max(|a|, |b|)` (or both NaN, or the same infinity, or
//! both within `1e-9` of zero: sums of rates that cancel to ~0 differ only
//! by rounding); or [`Rule::Total`]: the same values are NaN/infinite, and
//! the sum of all finite values is within the tolerance.

use super::queries::{Answer, AnswerSeries};

/// How values are compared once series and timestamps match.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Rule {
    /// Every value within this relative tolerance.
    PerValue(f64),
    /// The sum of all finite values within this relative tolerance.
    Total(f64),
}

/// The rule for answers that must agree (Prometheus vs Silverback, and
/// every non-`rate` query of VictoriaMetrics).
pub const STRICT: Rule = Rule::PerValue(1e-6);

/// The rule for VictoriaMetrics' `rate` queries. VictoriaMetrics does not
/// extrapolate to the window's edges and counts the increase from the last
/// sample before the window, so over a 5 m window of 15 s scrapes it divides
/// 20 increments by 300 s where Prometheus divides 19 by 285 s. One slow
/// counter's rate can then differ by 20% or more, but over a whole answer
/// the two estimates of the same rates agree to well under 1%; 5% catches a
/// wrong answer without flagging the method.
pub const VM_RATE: Rule = Rule::Total(0.05);

/// The rule for Silverback's `rate` queries when the reference is a
/// Prometheus older than 2.51. Where a counter starts inside the window,
/// Prometheus before 2.51 limited the extrapolation towards the start to
/// the counter's zero point *before* deciding whether the series starts
/// there (and so extrapolated up to 1.1 scrape intervals instead of half
/// of one); prometheus/prometheus#13725 (2.51) applies the zero-point
/// limit after, as Silverback does. Series that start inside a `[5m]`
/// window (the 1M-series run: every series has 8 points) then differ by a
/// fraction of one scrape's increase; seen at most 2.8e-3 relative (a
/// `histogram_quantile` over buckets that start at zero). 1% per value
/// still catches a wrong answer.
pub const PRE_2_51_RATE: Rule = Rule::PerValue(0.01);

/// Whether a Prometheus version (`2.42.0`, `2.42.0+ds`) is older than 2.51,
/// whose `rate` extrapolation differs from Silverback's (see
/// [`PRE_2_51_RATE`]).
pub fn before_2_51(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => (major, minor) < (2, 51),
        _ => false,
    }
}

/// The result of comparing an answer with the reference.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Agreement {
    /// Within the rule.
    pub ok: bool,
    /// Largest relative difference seen over matched values.
    pub max_rel: f64,
    /// Relative difference of the sums of all finite values.
    pub total_rel: f64,
    /// The rule applied.
    pub rule: Rule,
    /// The first disagreement, when not ok.
    pub detail: Option<String>,
}

/// Relative difference of two values (0 when equal, both NaN, or both
/// within 1e-9 of zero).
pub fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0.0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return f64::INFINITY;
    }
    if (a - b).abs() <= 1e-9 {
        return 0.0;
    }
    (a - b).abs() / a.abs().max(b.abs())
}

fn show(s: &AnswerSeries) -> String {
    let inner: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn structure(want: &Answer, got: &Answer) -> Option<String> {
    if want.len() != got.len() {
        let missing = want
            .iter()
            .find(|w| !got.iter().any(|g| g.labels == w.labels));
        let extra = got
            .iter()
            .find(|g| !want.iter().any(|w| w.labels == g.labels));
        let mut d = format!("{} series, reference has {}", got.len(), want.len());
        if let Some(m) = missing {
            d += &format!("; missing {}", show(m));
        }
        if let Some(x) = extra {
            d += &format!("; extra {}", show(x));
        }
        return Some(d);
    }
    for (w, g) in want.iter().zip(got) {
        if w.labels != g.labels {
            return Some(format!(
                "series {} where the reference has {}",
                show(g),
                show(w)
            ));
        }
        if w.points.len() != g.points.len() {
            return Some(format!(
                "{}: {} points, reference has {}",
                show(w),
                g.points.len(),
                w.points.len()
            ));
        }
        for (pw, pg) in w.points.iter().zip(&g.points) {
            if (pw.0 - pg.0).abs() > 1e-6 {
                return Some(format!(
                    "{}: point at {} where the reference has {}",
                    show(w),
                    pg.0,
                    pw.0
                ));
            }
        }
    }
    None
}

/// Compares `got` with `want` (both sorted by labels, as
/// [`super::queries::parse_answer`] returns them).
pub fn compare(want: &Answer, got: &Answer, rule: Rule) -> Agreement {
    let mut a = Agreement {
        ok: false,
        max_rel: 0.0,
        total_rel: f64::NAN,
        rule,
        detail: structure(want, got),
    };
    if a.detail.is_some() {
        return a;
    }
    let (mut sum_want, mut sum_got) = (0.0, 0.0);
    for (w, g) in want.iter().zip(got) {
        for (pw, pg) in w.points.iter().zip(&g.points) {
            let r = rel_diff(pw.1, pg.1);
            a.max_rel = a.max_rel.max(r);
            let finite = pw.1.is_finite() && pg.1.is_finite();
            let limit = match rule {
                Rule::PerValue(tol) => tol,
                Rule::Total(_) if finite => f64::INFINITY,
                Rule::Total(_) => 0.0,
            };
            if r > limit {
                a.detail = Some(format!(
                    "{} at {}: {} vs reference {} (relative {r:.2e})",
                    show(w),
                    pw.0,
                    pg.1,
                    pw.1
                ));
                return a;
            }
            if finite {
                sum_want += pw.1;
                sum_got += pg.1;
            }
        }
    }
    a.total_rel = rel_diff(sum_want, sum_got);
    if let Rule::Total(tol) = rule {
        if a.total_rel > tol {
            a.detail = Some(format!(
                "sum of all values {sum_got} vs reference {sum_want} (relative {:.2e})",
                a.total_rel
            ));
            return a;
        }
    }
    a.ok = true;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(l: &[(&str, &str)], p: &[(f64, f64)]) -> AnswerSeries {
        AnswerSeries {
            labels: l
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            points: p.to_vec(),
        }
    }

    #[test]
    fn rel_diffs() {
        let f = |a: f64, b: f64, want: f64| {
            let got = rel_diff(a, b);
            assert!(
                (got - want).abs() < 1e-12 || got == want,
                "{a} {b}: {got} != {want}"
            );
        };
        f(1.0, 1.0, 0.0);
        f(f64::NAN, f64::NAN, 0.0);
        f(f64::INFINITY, f64::INFINITY, 0.0);
        f(f64::INFINITY, 1.0, f64::INFINITY);
        f(f64::NAN, 1.0, f64::INFINITY);
        f(100.0, 101.0, 1.0 / 101.0);
        f(-2.0, 2.0, 2.0);
        f(1e-12, -1e-12, 0.0);
    }

    #[test]
    fn prometheus_versions_before_2_51() {
        assert!(before_2_51("2.42.0"));
        assert!(before_2_51("2.42.0+ds"));
        assert!(before_2_51("2.50.1"));
        assert!(!before_2_51("2.51.0"));
        assert!(!before_2_51("3.5.0"));
        assert!(!before_2_51("unknown"));
    }

    #[test]
    fn compares() {
        let want = vec![
            s(&[("i", "a")], &[(1.0, 100.0), (2.0, 200.0)]),
            s(&[("i", "b")], &[(1.0, 5.0)]),
        ];
        // Identical.
        assert!(compare(&want, &want, STRICT).ok);
        // Within 1e-6.
        let close = vec![
            s(&[("i", "a")], &[(1.0, 100.00005), (2.0, 200.0)]),
            want[1].clone(),
        ];
        let a = compare(&want, &close, STRICT);
        assert!(a.ok && a.max_rel > 0.0);
        // One value 3% off: beyond 1e-6, but the sum is only 1% off.
        let off = vec![
            s(&[("i", "a")], &[(1.0, 103.0), (2.0, 200.0)]),
            want[1].clone(),
        ];
        let a = compare(&want, &off, STRICT);
        assert!(!a.ok);
        assert!(
            a.detail.as_deref().is_some_and(|d| d.contains("103")),
            "{a:?}"
        );
        let a = compare(&want, &off, VM_RATE);
        assert!(a.ok, "{a:?}");
        assert!((a.max_rel - 3.0 / 103.0).abs() < 1e-12);
        assert!((a.total_rel - 3.0 / 308.0).abs() < 1e-12);
        // A value far off fails the total rule once the sum is > 5% off.
        let far = vec![want[0].clone(), s(&[("i", "b")], &[(1.0, 25.0)])];
        let a = compare(&want, &far, VM_RATE);
        assert!(
            !a.ok && a.detail.as_deref().is_some_and(|d| d.contains("sum")),
            "{a:?}"
        );
        // NaN where the reference has a number never passes.
        let nan = vec![
            s(&[("i", "a")], &[(1.0, f64::NAN), (2.0, 200.0)]),
            want[1].clone(),
        ];
        assert!(!compare(&want, &nan, VM_RATE).ok);
        // A missing series, an extra series, other labels, other points.
        let a = compare(&want, &want[..1].to_vec(), VM_RATE);
        assert!(!a.ok && a.detail.as_deref().is_some_and(|d| d.contains("missing")));
        let other = vec![want[0].clone(), s(&[("i", "c")], &[(1.0, 5.0)])];
        assert!(!compare(&want, &other, VM_RATE).ok);
        let fewer = vec![s(&[("i", "a")], &[(1.0, 100.0)]), want[1].clone()];
        assert!(!compare(&want, &fewer, VM_RATE).ok);
        let shifted = vec![
            s(&[("i", "a")], &[(1.0, 100.0), (3.0, 200.0)]),
            want[1].clone(),
        ];
        assert!(!compare(&want, &shifted, VM_RATE).ok);
        // Empty answers agree with each other.
        assert!(compare(&vec![], &vec![], STRICT).ok);
    }
}
