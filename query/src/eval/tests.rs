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

/// Issue 13: the sample budget counts what is allocated, as it is
/// allocated, and the store is asked for no more once it is spent.
mod budget {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;

    use crate::engine::{Engine, EngineOptions, QueryError, Value};
    use crate::mem::MemQueryable;
    use crate::model::{Labels, Matcher, Queryable, QueryableError, SelectResult};

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn engine(max_samples: usize) -> Engine {
        Engine::new(EngineOptions {
            max_samples,
            ..EngineOptions::default()
        })
    }

    fn too_many(r: Result<crate::engine::QueryOutput, QueryError>) -> bool {
        matches!(r, Err(QueryError::TooManySamples(_)))
    }

    /// A store that counts its `select` calls.
    struct Counting {
        inner: MemQueryable,
        selects: AtomicUsize,
    }

    #[async_trait]
    impl Queryable for Counting {
        async fn select(
            &self,
            ms: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<SelectResult, QueryableError> {
            self.selects.fetch_add(1, Ordering::Relaxed);
            self.inner.select(ms, min_t, max_t).await
        }
        async fn label_names(
            &self,
            ms: &[Matcher],
            a: i64,
            b: i64,
        ) -> Result<Vec<String>, QueryableError> {
            self.inner.label_names(ms, a, b).await
        }
        async fn label_values(
            &self,
            n: &str,
            ms: &[Matcher],
            a: i64,
            b: i64,
        ) -> Result<Vec<String>, QueryableError> {
            self.inner.label_values(n, ms, a, b).await
        }
        async fn series(
            &self,
            ms: &[Matcher],
            a: i64,
            b: i64,
        ) -> Result<Vec<Labels>, QueryableError> {
            self.inner.series(ms, a, b).await
        }
    }

    #[test]
    fn subquery_points_are_allowed_up_to_exactly_the_limit() {
        let m = MemQueryable::new();
        // (t - 100s, t] every 1 s at t = 1000 s: 100 points.
        let out = run(engine(100).instant(&m, "vector(1)[100s:1s]", 1_000_000)).expect("100");
        let Value::Matrix(ms) = out.value else {
            panic!("matrix expected")
        };
        assert_eq!(ms[0].samples.len(), 100);
        assert!(too_many(run(engine(100).instant(
            &m,
            "vector(1)[101s:1s]",
            1_000_000
        ))));
        assert!(too_many(run(engine(99).instant(
            &m,
            "vector(1)[100s:1s]",
            1_000_000
        ))));
    }

    #[test]
    fn count_values_counts_the_slots_it_allocates() {
        let m = MemQueryable::new();
        // 100 steps, a new value (so a new series of 100 slots) per step:
        // 10,000 slots allocated though only 100 are filled.
        let q = r#"count_values("v", vector(time()))"#;
        let ok = run(engine(10_200).range(&m, q, 0, 99_000, 1_000)).expect("fits");
        let Value::Matrix(ms) = ok.value else {
            panic!("matrix expected")
        };
        assert_eq!(ms.len(), 100);
        assert!(too_many(run(engine(5_000).range(&m, q, 0, 99_000, 1_000))));
    }

    #[test]
    fn dense_step_grids_count_empty_slots() {
        // One sample at t=0: with a 5m lookback it fills 5 of 1000 steps,
        // but its series holds 1000 slots, plus the sample loaded.
        let mut m = MemQueryable::new();
        m.add(Labels::from_pairs([("__name__", "x")]), 0, 1.0);
        assert!(run(engine(1_001).range(&m, "x", 0, 999 * 60_000, 60_000)).is_ok());
        assert!(too_many(run(engine(1_000).range(
            &m,
            "x",
            0,
            999 * 60_000,
            60_000
        ))));
    }

    #[test]
    fn loading_stops_at_the_first_selector_over_the_budget() {
        let mut inner = MemQueryable::new();
        for name in ["a", "b", "c"] {
            let l = Labels::from_pairs([("__name__", name)]);
            inner.add_series(
                l,
                (0..100).map(|i| crate::model::Sample {
                    t: i * 1000,
                    v: 1.0,
                }),
            );
        }
        let store = Counting {
            inner,
            selects: AtomicUsize::new(0),
        };
        let q = "count_over_time(a[200s]) + count_over_time(b[200s]) + count_over_time(c[200s])";
        // 300 samples loaded, plus one output slot per series and node.
        assert!(run(engine(400).instant(&store, q, 100_000)).is_ok());
        assert_eq!(store.selects.swap(0, Ordering::Relaxed), 3);
        // 150: the second selector passes it, the third is never asked for.
        assert!(too_many(run(engine(150).instant(&store, q, 100_000))));
        assert_eq!(store.selects.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_timeout_stops_evaluation_inside_a_long_series() {
        let m = MemQueryable::new();
        let e = Engine::new(EngineOptions {
            timeout: Duration::from_millis(50),
            ..EngineOptions::default()
        });
        // 11,000 steps over one series, each a window of 180,000 points.
        let q = "sum_over_time(vector(time())[30m:10ms])";
        let began = std::time::Instant::now();
        let err = run(e.range(&m, q, 0, 10_999_000, 1_000)).unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        assert_eq!(err.to_string(), "query timed out in expression evaluation");
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
    }

    mod fused_aggregation {
        use super::run;
        use crate::engine::{Engine, Value};
        use crate::mem::MemQueryable;
        use crate::model::{Labels, SeriesData};
        use proptest::prelude::*;

        /// Points of a range result, by labels, for comparison.
        fn points(v: Value) -> Vec<(String, Vec<(i64, f64)>)> {
            let Value::Matrix(ms) = v else {
                panic!("matrix expected")
            };
            let mut out: Vec<_> = ms
                .into_iter()
                .map(|SeriesData { labels, samples }| {
                    (
                        labels.to_string(),
                        samples.iter().map(|p| (p.t, p.v)).collect(),
                    )
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }

        fn close(a: f64, b: f64) -> bool {
            a == b
                || (a.is_nan() && b.is_nan())
                || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            /// An aggregation of a selector or a range function (evaluated
            /// one series at a time, never holding the argument whole) answers
            /// what the general path answers on the same series (`* 1`
            /// keeps every value and makes the argument a binary
            /// expression, which takes the general path).
            #[test]
            fn matches_the_general_path(
                series in prop::collection::vec(
                    (0u8..3, prop::collection::vec((0i64..40, -5.0f64..100.0, any::<bool>()), 0..30)),
                    1..12,
                ),
                op in 0usize..8,
                func in 0usize..6,
                grouping in 0usize..3,
            ) {
                let mut m = MemQueryable::new();
                for (i, (g, pts)) in series.iter().enumerate() {
                    let l = Labels::from_pairs([
                        ("__name__", "x".to_string()),
                        ("g", ["a", "b", "c"][*g as usize].to_string()),
                        ("i", i.to_string()),
                    ]);
                    let mut ts: Vec<(i64, f64)> = pts
                        .iter()
                        .map(|&(t, v, nan)| (t * 10_000, if nan && v < 0.0 { f64::NAN } else { v }))
                        .collect();
                    ts.sort_by_key(|p| p.0);
                    ts.dedup_by_key(|p| p.0);
                    for (t, v) in ts {
                        m.add(l.clone(), t, v);
                    }
                }
                let op = ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"][op];
                let arg = ["rate(x[1m])", "increase(x[1m])", "max_over_time(x[1m])",
                    "last_over_time(x[1m])", "stddev_over_time(x[1m])", "x"][func];
                let grouping = ["", " by (g)", " without (i)"][grouping];
                let fused = format!("{op}{grouping} ({arg})");
                let general = format!("{op}{grouping} ({arg} * 1)");
                let e = Engine::default();
                let a = run(e.range(&m, &fused, 0, 400_000, 7_000)).expect("fused");
                let b = run(e.range(&m, &general, 0, 400_000, 7_000)).expect("general");
                let (pa, pb) = (points(a.value), points(b.value));
                prop_assert_eq!(pa.len(), pb.len(), "{} vs {}", fused, general);
                for ((la, sa), (lb, sb)) in pa.iter().zip(&pb) {
                    prop_assert_eq!(la, lb);
                    prop_assert_eq!(sa.len(), sb.len(), "{}: {}", fused, la);
                    for (x, y) in sa.iter().zip(sb) {
                        prop_assert!(x.0 == y.0 && close(x.1, y.1), "{}: {} {:?} vs {:?}", fused, la, x, y);
                    }
                }
            }
        }
    }
}
