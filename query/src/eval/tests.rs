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

mod engine {
    use crate::engine::{Engine, EngineOptions, QueryError, Value};
    use crate::mem::MemQueryable;
    use crate::model::{Labels, Matcher, Queryable};

    fn store() -> MemQueryable {
        let mut m = MemQueryable::new();
        for i in 0..10 {
            let l = Labels::from_pairs([("__name__", "x".to_string()), ("i", i.to_string())]);
            for t in 0..100 {
                m.add(l.clone(), t * 15_000, (t * i) as f64);
            }
        }
        m
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn sample_limit_is_an_execution_error() {
        let m = store();
        let e = Engine::new(EngineOptions {
            max_samples: 500,
            ..EngineOptions::default()
        });
        let err = run(e.range(&m, "sum(rate(x[5m]))", 0, 1_500_000, 15_000)).unwrap_err();
        assert!(matches!(err, QueryError::TooManySamples(_)), "{err}");
        assert_eq!(err.kind(), "execution");
        assert!(err
            .to_string()
            .starts_with("query processing would load too many samples into memory"));
        let ok = run(Engine::default().range(&m, "sum(rate(x[5m]))", 0, 1_500_000, 15_000));
        assert!(ok.is_ok());
    }

    #[test]
    fn error_kinds() {
        let m = store();
        let e = Engine::default();
        let err = run(e.instant(&m, "sum(", 0)).unwrap_err();
        assert_eq!(err.kind(), "bad_data");
        let err = run(e.range(&m, "x[5m]", 0, 60_000, 15_000)).unwrap_err();
        assert_eq!(err.kind(), "execution");
        let err = run(e.range(&m, "x", 0, 60_000, 0)).unwrap_err();
        assert_eq!(err.kind(), "execution");
        let err = run(e.instant(&m, "x + on() x", 15_000)).unwrap_err();
        assert!(
            err.to_string()
                .contains("many-to-many matching not allowed"),
            "{err}"
        );
    }

    #[test]
    fn experimental_functions_follow_the_engine_option() {
        let m = store();
        let q = "sort_by_label(x, \"i\")";
        let err = run(Engine::default().instant(&m, q, 15_000)).unwrap_err();
        assert_eq!(err.kind(), "bad_data");
        assert!(
            err.to_string()
                .contains("--enable-feature=promql-experimental-functions"),
            "{err}"
        );
        let on = Engine::new(EngineOptions {
            parse: crate::parser::ParseOptions {
                experimental_functions: true,
                ..crate::parser::ParseOptions::NONE
            },
            ..EngineOptions::default()
        });
        let out = run(on.instant(&m, q, 15_000)).expect("enabled");
        assert!(matches!(out.value, Value::Vector(v) if !v.is_empty()));
        assert!(on.parse("limitk(1, x)").is_ok());
        assert!(Engine::default().parse("limitk(1, x)").is_err());
    }

    #[test]
    fn at_end_is_the_query_end_not_the_last_step() {
        // x: one sample every 15 s (see `store`); end 110 s is not on the
        // 30 s grid (last step 90 s): `x @ end()` must read the sample at
        // 105 s, not the one at 90 s.
        let m = store();
        let e = Engine::default();
        let out = run(e.range(&m, "x @ end()", 0, 110_000, 30_000)).expect("range");
        let Value::Matrix(at_end) = out.value else {
            panic!("not a matrix")
        };
        let out = run(e.instant(&m, "x", 110_000)).expect("instant");
        let Value::Vector(at_110) = out.value else {
            panic!("not a vector")
        };
        assert_eq!(at_end.len(), 10);
        for s in &at_end {
            let want = at_110.iter().find(|x| x.labels == s.labels).map(|x| x.v);
            assert_eq!(s.samples.len(), 4);
            assert!(s.samples.iter().all(|p| Some(p.v) == want), "{}", s.labels);
        }
    }

    #[test]
    fn range_query_matches_instant_queries() {
        let m = store();
        let e = Engine::default();
        let q = "sum by (i) (rate(x[1m])) * 2";
        let out = run(e.range(&m, q, 120_000, 600_000, 30_000)).expect("range");
        let Value::Matrix(series) = out.value else {
            panic!("not a matrix")
        };
        assert_eq!(series.len(), 10);
        for s in &series {
            assert_eq!(s.samples.len(), 17);
            for p in &s.samples {
                let inst = run(e.instant(&m, q, p.t)).expect("instant");
                let Value::Vector(v) = inst.value else {
                    panic!("not a vector")
                };
                let got = v.iter().find(|x| x.labels == s.labels).map(|x| x.v);
                assert_eq!(got, Some(p.v), "{} at {}", s.labels, p.t);
            }
        }
    }

    #[test]
    fn mem_queryable_selects_by_matchers_and_time() {
        let m = store();
        let ms = [Matcher::equal("__name__", "x"), Matcher::equal("i", "3")];
        let r = run(m.select(&ms, 15_000, 45_000)).expect("select");
        assert_eq!(r.series.len(), 1);
        assert_eq!(r.series[0].samples.len(), 3);
        let names = run(m.label_names(&ms, 0, 1)).expect("names");
        assert_eq!(names, vec!["__name__".to_string(), "i".to_string()]);
        let none = run(m.select(&ms, 10_000_000, 20_000_000)).expect("select");
        assert!(none.series.is_empty());
    }
}

mod limits {
    use crate::engine::{CancelToken, Engine, EngineOptions, QueryError};
    use crate::mem::MemQueryable;
    use crate::model::Labels;
    use crate::parser::parse;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn canceled_and_timed_out_queries_stop() {
        let mut m = MemQueryable::new();
        m.add(Labels::from_pairs([("__name__", "x")]), 0, 1.0);
        let expr = parse("sum(x)").expect("parses");
        let token = CancelToken::new();
        token.cancel();
        let e = Engine::default();
        let err = run(e.instant_expr_cancelable(&m, &expr, 0, &token)).unwrap_err();
        assert!(matches!(err, QueryError::Canceled), "{err}");
        assert_eq!(err.kind(), "canceled");
        let e = Engine::new(EngineOptions {
            timeout: std::time::Duration::ZERO,
            ..EngineOptions::default()
        });
        let err = run(e.instant_expr(&m, &expr, 0)).unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        assert_eq!(err.kind(), "timeout");
    }
}

mod malformed {
    use crate::ast::{AggregateExpr, AggregateOp, Call, Expr};
    use crate::engine::Engine;
    use crate::mem::MemQueryable;

    /// Hand-built expressions the parser would reject are errors, not panics.
    #[test]
    fn bad_arity_and_missing_params_are_errors() {
        let m = MemQueryable::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let e = Engine::default();
        let f = |expr: Expr| {
            let r = rt.block_on(e.instant_expr(&m, &expr, 0));
            assert!(r.is_err(), "{expr:?} should fail");
        };
        f(Expr::Call(Call {
            func: "histogram_quantile".into(),
            args: vec![Expr::Number(0.5)],
        }));
        f(Expr::Call(Call {
            func: "no_such_function".into(),
            args: vec![],
        }));
        f(Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Topk,
            expr: Box::new(Expr::Call(Call {
                func: "vector".into(),
                args: vec![Expr::Number(1.0)],
            })),
            param: None,
            grouping: vec![],
            without: false,
        }));
    }
}

mod huge_grids {
    use crate::engine::{Engine, QueryError};
    use crate::mem::MemQueryable;
    use crate::model::Labels;

    #[test]
    fn huge_step_counts_fail_before_allocating() {
        let mut m = MemQueryable::new();
        m.add(Labels::from_pairs([("__name__", "x")]), 0, 1.0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let e = Engine::default();
        let err = rt.block_on(e.range(&m, "x", 0, i64::MAX, 1)).unwrap_err();
        assert!(matches!(err, QueryError::TooManySamples(_)), "{err}");
        let err = rt
            .block_on(e.instant(&m, "max_over_time(x[10y:1ms])", 0))
            .unwrap_err();
        assert!(matches!(err, QueryError::TooManySamples(_)), "{err}");
    }
}
