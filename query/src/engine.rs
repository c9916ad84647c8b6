//! Query engine entry points: [`Engine::instant`] and [`Engine::range`].
//!
//! A query runs in three phases, as in Prometheus: plan (find every
//! selector's time range), fetch (one [`Queryable::select`] per selector,
//! async), evaluate (synchronously on the fetched data, over all steps at
//! once; an instant query is a range query with one step).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use query::engine::{Engine, EngineOptions, Value};
//! use query::mem::MemQueryable;
//! use query::model::Labels;
//!
//! let mut store = MemQueryable::new();
//! for (job, instance, v) in [("a", "1", 1.0), ("a", "2", 2.0), ("b", "1", 5.0)] {
//!     let l = Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", instance)]);
//!     store.add(l, 0, v);
//! }
//! let engine = Engine::new(EngineOptions::default());
//! let out = engine.instant(&store, "sum by (job) (up)", 30_000).await.unwrap();
//! let Value::Vector(v) = out.value else { panic!("vector expected") };
//! assert_eq!(v.len(), 2);
//! let a = v.iter().find(|s| s.labels.get("job") == Some("a")).unwrap();
//! assert_eq!(a.v, 3.0);
//!
//! let out = engine.range(&store, "count(up)", 0, 60_000, 30_000).await.unwrap();
//! let Value::Matrix(m) = out.value else { panic!("matrix expected") };
//! assert_eq!(m[0].samples.len(), 3);
//! # });
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ast::{Expr, ValueType};
use crate::eval::plan::{self, PlanCtx};
use crate::eval::{self, EvalError, Evaluator, Fetched, Steps, Val};
use crate::model::{Labels, Queryable, QueryableError, ReadBudget, Sample, SeriesData};
use crate::parser::{parse_with, ParseError, ParseOptions};

/// Engine limits and defaults.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for a sample (ms).
    pub lookback_delta_ms: i64,
    /// Maximum samples a query may load or hold.
    pub max_samples: usize,
    /// Wall-clock limit per query.
    pub timeout: Duration,
    /// Default subquery step when `[range:]` omits it (ms).
    pub default_eval_interval_ms: i64,
    /// Experimental syntax accepted by [`Engine::instant`], [`Engine::range`]
    /// and [`Engine::parse`] (Prometheus' `--enable-feature` switches; by
    /// default none, so experimental functions are refused as upstream).
    pub parse: ParseOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_eval_interval_ms: 60_000,
            parse: ParseOptions::NONE,
        }
    }
}

/// One sample of an instant vector result.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// Series labels.
    pub labels: Labels,
    /// Evaluation timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar at time `t` (ms).
    Scalar {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at time `t` (ms).
    String {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        s: String,
    },
    /// An instant vector (order as computed: `sort`, `topk` ... keep theirs).
    Vector(Vec<InstantSample>),
    /// A range vector or a range query result, sorted by labels.
    Matrix(Vec<SeriesData>),
}

/// A result with its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    /// The value.
    pub value: Value,
    /// Warnings (`PromQL warning: ...`) and storage warnings.
    pub warnings: Vec<String>,
    /// Informational annotations (`PromQL info: ...`).
    pub infos: Vec<String>,
    /// Samples read from the store.
    pub samples_loaded: u64,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text is not valid PromQL.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// Evaluation failed (Prometheus' `execution` errors).
    #[error("{0}")]
    Execution(String),
    /// The sample limit was exceeded.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    /// The query ran past its timeout.
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The caller canceled the query.
    #[error("query was canceled")]
    Canceled,
    /// The store failed.
    #[error("{0}")]
    Storage(#[from] QueryableError),
}

impl QueryError {
    /// The Prometheus API `errorType` for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::Parse(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Canceled => "canceled",
            QueryError::Storage(QueryableError::Unavailable(_)) => "unavailable",
            QueryError::Storage(QueryableError::BadData(_)) => "bad_data",
            QueryError::Storage(QueryableError::Limit(_)) => "execution",
            QueryError::Storage(QueryableError::Internal(_)) => "internal",
            QueryError::Storage(QueryableError::TooManySamples) => "execution",
            QueryError::Storage(QueryableError::Timeout) => "timeout",
        }
    }
}

/// Cancels a running query from another task: the evaluator checks it (with
/// the deadline) at every node and in per-series loops, and between store
/// calls. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not canceled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every query using this token to stop with [`QueryError::Canceled`].
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The PromQL engine. Cheap to share; holds only options.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses `query` with the engine's [`EngineOptions::parse`] switches.
    pub fn parse(&self, query: &str) -> Result<Expr, ParseError> {
        parse_with(query, self.opts.parse)
    }

    /// Parses and evaluates `query` at `t_ms`.
    pub async fn instant(
        &self,
        q: &dyn Queryable,
        query: &str,
        t_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self.parse(query)?;
        self.instant_expr(q, &expr, t_ms).await
    }

    /// Parses and evaluates `query` from `start_ms` to `end_ms` every `step_ms`.
    pub async fn range(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self.parse(query)?;
        self.range_expr(q, &expr, start_ms, end_ms, step_ms).await
    }

    /// Evaluates a parsed expression at `t_ms`.
    pub async fn instant_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        self.instant_expr_cancelable(q, expr, t_ms, &CancelToken::new())
            .await
    }

    /// [`Engine::instant_expr`] that stops when `cancel` is canceled.
    pub async fn instant_expr_cancelable(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t_ms: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        self.run(q, expr, (t_ms, t_ms, 1), true, cancel).await
    }

    /// Evaluates a parsed expression as a range query.
    pub async fn range_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        let cancel = CancelToken::new();
        self.range_expr_cancelable(q, expr, start_ms, end_ms, step_ms, &cancel)
            .await
    }

    /// [`Engine::range_expr`] that stops when `cancel` is canceled.
    pub async fn range_expr_cancelable(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Execution(
                "zero or negative query resolution step widths are not accepted".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Execution(
                "end timestamp must not be before start time".into(),
            ));
        }
        let t = value_type(expr);
        if t != ValueType::Scalar && t != ValueType::Vector {
            return Err(QueryError::Execution(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                t.name()
            )));
        }
        self.run(q, expr, (start_ms, end_ms, step_ms), false, cancel)
            .await
    }

    async fn run(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        (start, end, step): (i64, i64, i64),
        instant: bool,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        if eval::durations::has_duration_exprs(expr) {
            let mut resolved = expr.clone();
            let ctx = eval::durations::DurationCtx {
                step_ms: if instant { 0 } else { step },
                range_ms: end - start,
            };
            eval::durations::resolve(&mut resolved, &ctx).map_err(QueryError::Execution)?;
            return Box::pin(self.run(q, &resolved, (start, end, step), instant, cancel)).await;
        }
        let began = Instant::now();
        let deadline = began + self.opts.timeout;
        let steps = Steps::new(start, end, step);
        if steps.n > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution".into()));
        }
        // `@ end()` and `end()` are the query's `end` parameter, which a
        // range query's last step may fall short of (Prometheus gives
        // `PreprocessExpr` the query's end, not the last step).
        let ctx = PlanCtx {
            start,
            end: steps.end(),
            at_end: end,
            lookback: self.opts.lookback_delta_ms,
        };
        let mut data = Fetched::new();
        let mut warnings = Vec::new();
        // One budget for every selector: the store takes samples from it
        // while decoding, so the first selector that passes the limit stops
        // there and the rest are never fetched.
        let budget = ReadBudget::new(self.opts.max_samples as u64, Some(deadline));
        for f in plan::selectors(expr, &ctx) {
            // Dropping the returned future cancels the query; the deadline is
            // checked between fetches, by the store, and inside evaluation
            // loops.
            let res = q
                .select_budgeted(&f.matchers, f.min_t, f.max_t, &budget)
                .await
                .map_err(|e| match e {
                    QueryableError::TooManySamples => {
                        QueryError::TooManySamples("query execution".into())
                    }
                    QueryableError::Timeout => QueryError::Timeout("query preparation".into()),
                    e => QueryError::Storage(e),
                })?;
            if cancel.is_canceled() {
                return Err(QueryError::Canceled);
            }
            if Instant::now() > deadline {
                return Err(QueryError::Timeout("query preparation".into()));
            }
            for w in res.warnings {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            data.insert(f.key, res.series);
        }
        let loaded = budget.loaded();
        let mut ev = Evaluator {
            data: &data,
            lookback: self.opts.lookback_delta_ms,
            query_start: start,
            query_end: end,
            // Prometheus' `step()` is 0 when start and end coincide.
            query_step: if instant || start == end { 0 } else { step },
            default_step: self.opts.default_eval_interval_ms,
            deadline,
            cancel: &cancel.0,
            max_samples: self.opts.max_samples,
            // The fetched samples stay in memory for the whole evaluation.
            cur_samples: usize::try_from(loaded).unwrap_or(usize::MAX),
            warnings: Vec::new(),
            infos: Vec::new(),
        };
        let val = ev.eval(expr, &steps).and_then(|v| finish(v, &steps));
        let val = match val {
            Ok(v) => v,
            Err(EvalError::Execution(m)) => return Err(QueryError::Execution(m)),
            Err(EvalError::TooManySamples) => {
                return Err(QueryError::TooManySamples("query execution".into()))
            }
            Err(EvalError::Timeout) => {
                return Err(QueryError::Timeout("expression evaluation".into()))
            }
            Err(EvalError::Canceled) => return Err(QueryError::Canceled),
        };
        warnings.extend(ev.warnings);
        let value = to_value(val, &steps, instant);
        Ok(QueryOutput {
            value,
            warnings,
            infos: ev.infos,
            samples_loaded: loaded,
        })
    }
}

/// Drops `__name__` where delayed removal asked for it.
fn finish(v: Val, steps: &Steps) -> Result<Val, EvalError> {
    Ok(match v {
        Val::Vector(vs) => Val::Vector(eval::cleanup_names(vs, steps.n)?),
        Val::Matrix(ms) => Val::Matrix(eval::cleanup_matrix_names(ms)?),
        other => other,
    })
}

fn to_value(v: Val, steps: &Steps, instant: bool) -> Value {
    match v {
        Val::Scalar(s) if instant => Value::Scalar {
            t: steps.start,
            v: s.first().copied().unwrap_or(f64::NAN),
        },
        Val::Scalar(s) => Value::Matrix(vec![SeriesData {
            labels: Labels::empty(),
            samples: s
                .iter()
                .enumerate()
                .map(|(i, &v)| Sample { t: steps.ts(i), v })
                .collect(),
        }]),
        Val::String(s) => Value::String { t: steps.start, s },
        Val::Vector(vs) if instant => Value::Vector(
            vs.into_iter()
                .filter_map(|s| {
                    s.vals.first().copied().flatten().map(|v| InstantSample {
                        labels: s.labels,
                        t: steps.start,
                        v,
                    })
                })
                .collect(),
        ),
        Val::Vector(vs) => {
            let mut m: Vec<SeriesData> = vs
                .into_iter()
                .map(|s| SeriesData {
                    labels: s.labels,
                    samples: s
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample { t: steps.ts(i), v }))
                        .collect(),
                })
                .filter(|s| !s.samples.is_empty())
                .collect();
            m.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(m)
        }
        Val::Matrix(ms) => {
            let mut m: Vec<SeriesData> = ms
                .into_iter()
                .map(|s| SeriesData {
                    labels: s.labels,
                    samples: s.samples,
                })
                .collect();
            m.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(m)
        }
    }
}

/// The static type of an expression.
pub fn value_type(e: &Expr) -> ValueType {
    match e {
        Expr::Number(_) => ValueType::Scalar,
        Expr::String(_) => ValueType::String,
        Expr::VectorSelector(_) => ValueType::Vector,
        Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
        Expr::Paren(e) | Expr::Unary(_, e) => value_type(e),
        Expr::Binary(b) => {
            if value_type(&b.lhs) == ValueType::Scalar && value_type(&b.rhs) == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
        Expr::Aggregate(_) => ValueType::Vector,
        Expr::Call(c) => match c.func.as_str() {
            "time" | "scalar" | "pi" | "start" | "end" | "range" | "step" | "min_of" | "max_of" => {
                ValueType::Scalar
            }
            _ => ValueType::Vector,
        },
    }
}
