//! Evaluator unit tests on hand-built ASTs (the PromQL test files cover the
//! semantics end to end through the parser).

use super::histogram::bucket_quantile;
use super::rangefn::{extrapolated_rate, quantile};
use crate::model::Sample;

fn s(t: i64, v: f64) -> Sample {
    Sample { t, v }
}

#[test]
fn rate_extrapolates_to_window_edges() {
    // 0..=40 every 10 s, counter +10 each: 1/s; window (0, 60s] at eff=60s.
    let w: Vec<Sample> = (1..=6).map(|i| s(i * 10_000, i as f64 * 10.0)).collect();
    let r = extrapolated_rate(&w, 60_000, 60_000, true, true).unwrap();
    assert!((r - 1.0).abs() < 1e-9, "{r}");
    // Counter reset: 10, 20, 5 -> increase 15 over 20 s sampled.
    let w = vec![s(10_000, 10.0), s(20_000, 20.0), s(30_000, 5.0)];
    let inc = extrapolated_rate(&w, 30_000, 30_000, true, false).unwrap();
    assert!(inc > 15.0 && inc <= 25.0, "{inc}");
    assert!(extrapolated_rate(&w[..1], 30_000, 30_000, true, true).is_none());
}

#[test]
fn quantile_interpolates() {
    let f = |q: f64, mut v: Vec<f64>, want: f64| {
        let got = quantile(q, &mut v);
        assert!(
            got == want || (got - want).abs() < 1e-12 || (got.is_nan() && want.is_nan()),
            "{q}: {got} != {want}"
        );
    };
    f(0.5, vec![1.0, 2.0, 3.0, 4.0], 2.5);
    f(0.0, vec![3.0, 1.0], 1.0);
    f(1.0, vec![3.0, 1.0], 3.0);
    f(-1.0, vec![3.0, 1.0], f64::NEG_INFINITY);
    f(2.0, vec![3.0, 1.0], f64::INFINITY);
    f(0.5, vec![], f64::NAN);
}

#[test]
fn bucket_quantile_rules() {
    let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
    assert!((bucket_quantile(0.5, &mut b).value - 1.0).abs() < 1e-12);
    let mut b = vec![(1.0, 10.0), (2.0, 20.0)];
    assert!(
        bucket_quantile(0.5, &mut b).value.is_nan(),
        "no +Inf bucket"
    );
    let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 20.0)];
    assert!(bucket_quantile(0.5, &mut b).forced_monotonic);
    let mut b = vec![(1.0, 10.0), (f64::INFINITY, 20.0)];
    assert_eq!(
        bucket_quantile(0.99, &mut b).value,
        1.0,
        "+Inf bucket returns the previous bound"
    );
}
