//! Go's `math.Max`, `math.Min` and `sort.Search`, whose NaN and infinity
//! rules Prometheus' results follow. Rust's `f64::max` / `f64::min` return
//! the other argument when one is NaN; Go's return NaN, except that +Inf
//! wins `Max` and -Inf wins `Min` even against NaN. A `partition_point` over
//! a predicate that a NaN makes non-monotonic can stop elsewhere than Go's
//! binary search, so code ported from Prometheus uses these instead.

/// Go's `math.Max`: +Inf if either is +Inf, else NaN if either is NaN, else
/// the larger (+0 over -0).
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf if either is -Inf, else NaN if either is NaN, else
/// the smaller (-0 under +0).
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Go's `sort.Search`: the smallest `i` in `[0, n)` for which `f(i)` holds,
/// or `n`, by the same bisection (so a predicate that is not monotonic, as
/// with NaN counts, gives Go's answer).
pub(crate) fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0, n);
    while i < j {
        let h = i + (j - i) / 2;
        if !f(h) {
            i = h + 1;
        } else {
            j = h;
        }
    }
    i
}

/// The minimum and maximum of a query parameter over all steps, folded as
/// Prometheus' `fParams` does (`math.Max` / `math.Min` from ∓MaxFloat64, so a
/// NaN step makes both NaN unless an infinity wins), and whether any step is
/// NaN. A literal parameter is its own minimum and maximum.
pub(crate) struct ParamRange {
    pub min: f64,
    pub max: f64,
    pub has_nan: bool,
}

impl ParamRange {
    pub(crate) fn new(vals: &[f64], literal: bool) -> ParamRange {
        if literal {
            if let Some(&v) = vals.first() {
                return ParamRange {
                    min: v,
                    max: v,
                    has_nan: v.is_nan(),
                };
            }
        }
        let mut r = ParamRange {
            min: f64::MAX,
            max: -f64::MAX,
            has_nan: false,
        };
        for &v in vals {
            r.max = go_max(r.max, v);
            r.min = go_min(r.min, v);
            r.has_nan |= v.is_nan();
        }
        r
    }
}

/// Go's `%g` / `%v` for a float64 (as in Prometheus' annotation and error
/// texts): shortest digits, exponent form (`1e+06`, `1e-05`) when the
/// decimal exponent is below -4 or at least 6 (Go's threshold for the
/// shortest form), `+Inf`, `-Inf`, `NaN`.
pub(crate) fn go_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_min_follow_go() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
        let cases: &[(f64, f64, f64, f64)] = &[
            // x, y, Max, Min
            (1.0, 2.0, 2.0, 1.0),
            (nan, 2.0, nan, nan),
            (2.0, nan, nan, nan),
            (nan, inf, inf, nan),
            (-inf, nan, nan, -inf),
            (inf, -inf, inf, -inf),
            (0.0, -0.0, 0.0, -0.0),
            (-0.0, 0.0, 0.0, -0.0),
            (-0.0, -0.0, -0.0, -0.0),
        ];
        for &(x, y, max, min) in cases {
            assert!(same(go_max(x, y), max), "Max({x}, {y}) = {}", go_max(x, y));
            assert!(same(go_min(x, y), min), "Min({x}, {y}) = {}", go_min(x, y));
        }
    }

    #[test]
    fn g_format_is_gos() {
        let f = |v: f64, want: &str| assert_eq!(go_g(v), want, "{v}");
        f(1.5, "1.5");
        f(-1.1, "-1.1");
        f(100000.0, "100000");
        f(1e6, "1e+06");
        f(1234567.0, "1.234567e+06");
        f(0.0001, "0.0001");
        f(0.00001, "1e-05");
        f(-9.223372036854776e18, "-9.223372036854776e+18");
        f(f64::INFINITY, "+Inf");
        f(f64::NEG_INFINITY, "-Inf");
        f(f64::NAN, "NaN");
        f(0.0, "0");
    }

    #[test]
    fn search_is_go_bisection() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(go_search(v.len(), |i| v[i] >= 2.5), 2);
        assert_eq!(go_search(v.len(), |i| v[i] >= 9.0), 4);
        // A NaN target: Go's predicate is never true, so the end;
        // partition_point with the negated predicate says 0.
        let rank = f64::NAN;
        assert_eq!(go_search(v.len(), |i| v[i] >= rank), 4);
        assert_eq!(v.partition_point(|x| *x < rank), 0);
    }

    #[test]
    fn param_range_like_fparams() {
        let r = ParamRange::new(&[2.0, f64::NAN, 0.5], false);
        assert!(r.max.is_nan() && r.min.is_nan() && r.has_nan);
        let r = ParamRange::new(&[f64::NAN, f64::INFINITY], false);
        assert_eq!(r.max, f64::INFINITY);
        let r = ParamRange::new(&[2.0, -3.0], false);
        assert_eq!((r.min, r.max, r.has_nan), (-3.0, 2.0, false));
        let r = ParamRange::new(&[f64::NEG_INFINITY], true);
        assert_eq!(r.max, f64::NEG_INFINITY);
    }
}
