//! The evaluator: walks a parsed [`Expr`] over all steps of a query at once.
//!
//! Data flow, as in Prometheus' engine:
//! 1. [`plan`] walks the AST and computes, for every selector, the time range
//!    it needs (offset, `@`, range, lookback and enclosing subqueries); the
//!    engine fetches each with one `Queryable::select` call.
//! 2. [`Evaluator::eval`] evaluates synchronously on that in-memory data.
//!    Every node yields its value for *all* steps: an instant vector is a
//!    list of series, each with one optional value per step (series-major),
//!    so range functions slide a window over each series once and grouping
//!    or matching computes label signatures once per series, not per step.
//!
//! Instant queries are range queries with one step.

mod aggregate;
mod binary;
pub(crate) mod durations;
mod functions;
pub(crate) mod gomath;
mod histogram;
pub(crate) mod info;
pub(crate) mod plan;
mod rangefn;
mod selector;

use std::collections::HashMap;
use std::time::Instant;

use crate::ast::{AtModifier, Expr, UnaryOp, VectorSelector};
use crate::model::{Labels, Sample, SeriesData, METRIC_NAME};

/// The evaluation grid: `start, start+step, ..., end` (inclusive).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    /// First step, ms.
    pub start: i64,
    /// Step width, ms (> 0).
    pub step: i64,
    /// Number of steps (>= 1).
    pub n: usize,
}

impl Steps {
    /// Steps from `start` to `end` (inclusive) every `step` ms.
    pub fn new(start: i64, end: i64, step: i64) -> Steps {
        let step = step.max(1);
        let n = if end < start {
            0
        } else {
            usize::try_from(end.saturating_sub(start) / step)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        Steps { start, step, n }
    }

    /// Timestamp of step `i`.
    #[inline]
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Last step's timestamp.
    pub fn end(&self) -> i64 {
        self.ts(self.n.saturating_sub(1))
    }
}

/// One series of an instant-vector result: a value (or nothing) per step.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub labels: Labels,
    /// Prometheus 3.x delayed name removal: drop `__name__` at the end.
    pub drop_name: bool,
    pub vals: Vec<Option<f64>>,
}

/// A series of a range vector (matrix) value.
#[derive(Clone, Debug)]
pub(crate) struct RangeSeries {
    pub labels: Labels,
    pub drop_name: bool,
    pub samples: Vec<Sample>,
}

/// The value of an evaluated node over all steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<Series>),
    /// Only at the top of an instant query (`foo[5m]`, `foo[5m:1m]`).
    Matrix(Vec<RangeSeries>),
}

/// Errors raised while evaluating.
#[derive(Debug)]
pub(crate) enum EvalError {
    Execution(String),
    TooManySamples,
    Timeout,
    Canceled,
}

pub(crate) type EResult<T> = Result<T, EvalError>;

pub(crate) fn exec_err<T>(msg: impl Into<String>) -> EResult<T> {
    Err(EvalError::Execution(msg.into()))
}

/// Fetched series per selector node (keyed by the node's address).
pub(crate) type Fetched = HashMap<usize, Vec<SeriesData>>;

/// Key of a selector node in [`Fetched`].
pub(crate) fn sel_key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// Evaluation state shared by all nodes of one query.
pub(crate) struct Evaluator<'a> {
    pub data: &'a Fetched,
    pub lookback: i64,
    /// Query start/end, for `@ start()` / `@ end()` and `start()` / `end()`
    /// / `range()`; `query_end` is the query's `end` parameter, not its last
    /// step.
    pub query_start: i64,
    pub query_end: i64,
    /// Query step (0 for instant queries), for `step()`.
    pub query_step: i64,
    pub default_step: i64,
    pub deadline: Instant,
    /// Set by another task to stop the query.
    pub cancel: &'a std::sync::atomic::AtomicBool,
    pub max_samples: usize,
    /// Sample slots the query holds now: fetched samples plus the values
    /// of the nodes being evaluated (see [`Evaluator::eval`]).
    pub cur_samples: usize,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// A query's cancel flag and deadline, for loops that cannot borrow the
/// [`Evaluator`].
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    deadline: Instant,
    cancel: &'a std::sync::atomic::AtomicBool,
}

impl Stop<'_> {
    /// Fails when the query was canceled or its deadline passed.
    pub fn check(&self) -> EResult<()> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(EvalError::Canceled);
        }
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout);
        }
        Ok(())
    }
}

impl<'a> Evaluator<'a> {
    /// Fails when the query was canceled or its deadline passed.
    pub fn check_deadline(&self) -> EResult<()> {
        self.stop().check()
    }

    /// The cancel flag and deadline, to check inside closures.
    pub fn stop(&self) -> Stop<'a> {
        Stop {
            deadline: self.deadline,
            cancel: self.cancel,
        }
    }

    /// Accounts `n` more samples against the limit: call it *before*
    /// allocating them, so a query over its budget stops before it holds
    /// the memory.
    pub fn add_samples(&mut self, n: usize) -> EResult<()> {
        self.cur_samples = self.cur_samples.saturating_add(n);
        if self.cur_samples > self.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }

    /// Gives back `n` samples accounted with [`Evaluator::add_samples`]
    /// whose memory was dropped.
    pub fn release_samples(&mut self, n: usize) {
        self.cur_samples = self.cur_samples.saturating_sub(n);
    }

    /// A dense per-step value list of `n` empty slots, accounted first:
    /// an instant-vector series holds one slot per step whether or not the
    /// step has a value, so that is what counts.
    pub fn new_vals(&mut self, n: usize) -> EResult<Vec<Option<f64>>> {
        self.add_samples(n)?;
        Ok(vec![None; n])
    }

    /// Resolves an `@` modifier to a timestamp.
    pub fn at_ts(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
        })
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    /// Evaluates `expr` over `steps`.
    ///
    /// Sample accounting (the `--max-query-samples` budget): the fetched
    /// samples count from the start; every node accounts the slots it
    /// allocates *before* allocating them (dense per-step vectors, range
    /// windows, result series), while the results of its children, still
    /// alive, keep counting. When the node returns, its children's values
    /// are gone and the count is reset to what it held before plus the
    /// slots its own result holds. Scalars are not counted: they are one
    /// grid of steps, and every grid is refused up front when it has more
    /// steps than the limit.
    pub fn eval(&mut self, expr: &Expr, steps: &Steps) -> EResult<Val> {
        self.check_deadline()?;
        let base = self.cur_samples;
        let v = self.eval_node(expr, steps)?;
        self.cur_samples = base;
        self.add_samples(held(&v))?;
        Ok(v)
    }

    fn eval_node(&mut self, expr: &Expr, steps: &Steps) -> EResult<Val> {
        match expr {
            Expr::Number(v) => Ok(Val::Scalar(vec![*v; steps.n])),
            Expr::String(s) => Ok(Val::String(s.clone())),
            Expr::Paren(e) => self.eval(e, steps),
            Expr::VectorSelector(vs) => {
                let out = self.vector_selector(vs, steps)?;
                Ok(Val::Vector(out))
            }
            Expr::MatrixSelector(ms) => {
                let m = self.matrix_selector_at(ms, steps)?;
                Ok(Val::Matrix(m))
            }
            Expr::Subquery(sq) => {
                let m = self.subquery_matrix_at(sq, steps)?;
                Ok(Val::Matrix(m))
            }
            Expr::Unary(op, e) => {
                let v = self.eval(e, steps)?;
                Ok(match (op, v) {
                    (UnaryOp::Pos, v) => v,
                    (UnaryOp::Neg, Val::Scalar(mut s)) => {
                        s.iter_mut().for_each(|x| *x = -*x);
                        Val::Scalar(s)
                    }
                    (UnaryOp::Neg, Val::Vector(mut vs)) => {
                        for s in &mut vs {
                            s.drop_name = true;
                            for v in s.vals.iter_mut().flatten() {
                                *v = -*v;
                            }
                        }
                        Val::Vector(vs)
                    }
                    (UnaryOp::Neg, other) => other,
                })
            }
            Expr::Binary(b) => self.eval_binary(b, steps),
            Expr::Aggregate(a) => self.eval_aggregate(a, steps),
            Expr::Call(c) => self.eval_call(c, steps),
        }
    }

    /// Evaluates an expression the type checker says is a scalar.
    pub fn eval_scalar(&mut self, expr: &Expr, steps: &Steps) -> EResult<Vec<f64>> {
        match self.eval(expr, steps)? {
            Val::Scalar(s) => Ok(s),
            _ => exec_err("expected scalar expression"),
        }
    }

    /// Evaluates an expression the type checker says is an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr, steps: &Steps) -> EResult<Vec<Series>> {
        match self.eval(expr, steps)? {
            Val::Vector(v) => Ok(v),
            _ => exec_err("expected instant vector expression"),
        }
    }
}

/// The sample slots a value holds (see [`Evaluator::eval`]).
pub(crate) fn held(v: &Val) -> usize {
    match v {
        Val::Vector(vs) => vs.iter().map(|s| s.vals.len()).sum(),
        Val::Matrix(ms) => ms.iter().map(|s| s.samples.len()).sum(),
        Val::Scalar(_) | Val::String(_) => 0,
    }
}

/// Removes the metric name and the other metadata labels Prometheus drops
/// with it (`__type__`, `__unit__`).
pub(crate) fn drop_metadata_labels(l: &mut Labels) {
    l.remove(METRIC_NAME);
    l.remove("__type__");
    l.remove("__unit__");
}

/// Removes `__name__` from series marked `drop_name` and merges series that
/// end up with the same label set (Prometheus' `cleanupMetricLabels`);
/// overlapping points are the "same labelset" error.
pub(crate) fn cleanup_names(mut vs: Vec<Series>, n: usize) -> EResult<Vec<Series>> {
    for s in &mut vs {
        if s.drop_name {
            drop_metadata_labels(&mut s.labels);
            s.drop_name = false;
        }
    }
    // Fast path: all label sets distinct (checked by reference, no clones).
    let mut seen: std::collections::HashSet<&Labels> =
        std::collections::HashSet::with_capacity(vs.len());
    if vs.iter().all(|s| seen.insert(&s.labels)) {
        return Ok(vs);
    }
    drop(seen);
    let mut out: Vec<Series> = Vec::with_capacity(vs.len());
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(vs.len());
    for s in vs {
        match index.get(&s.labels) {
            Some(&i) => {
                let dst = &mut out[i];
                for (k, v) in s.vals.into_iter().enumerate().take(n) {
                    if let Some(v) = v {
                        if dst.vals[k].is_some() {
                            return exec_err(
                                "vector cannot contain metrics with the same labelset",
                            );
                        }
                        dst.vals[k] = Some(v);
                    }
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Same for a matrix result.
pub(crate) fn cleanup_matrix_names(ms: Vec<RangeSeries>) -> EResult<Vec<RangeSeries>> {
    let mut out: Vec<RangeSeries> = Vec::with_capacity(ms.len());
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for mut s in ms {
        if s.drop_name {
            drop_metadata_labels(&mut s.labels);
            s.drop_name = false;
        }
        match index.get(&s.labels) {
            Some(&i) => {
                let dst = &mut out[i];
                dst.samples.extend(s.samples);
                dst.samples.sort_by_key(|p| p.t);
                if dst.samples.windows(2).any(|w| w[0].t == w[1].t) {
                    return exec_err("vector cannot contain metrics with the same labelset");
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// A byte signature of the labels selected by `on(names)` / `ignoring(names)`
/// (ignoring always also ignores `__name__`).
pub(crate) fn signature(labels: &Labels, on: bool, names: &[String]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    for l in labels.iter() {
        let listed = names.iter().any(|n| n == &l.name);
        let keep = if on {
            listed
        } else {
            !listed && l.name != METRIC_NAME
        };
        if keep {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
    }
    buf
}

/// The labels kept by `on(names)` (or all but `names` and `__name__` for
/// ignoring).
pub(crate) fn match_labels(labels: &Labels, on: bool, names: &[String]) -> Labels {
    let v = labels
        .iter()
        .filter(|l| {
            let listed = names.iter().any(|n| n == &l.name);
            if on {
                listed
            } else {
                !listed && l.name != METRIC_NAME
            }
        })
        .cloned()
        .collect();
    Labels::from_sorted(v)
}

/// Formats a float the way Go's `strconv.FormatFloat(f, 'f', -1, 64)` does
/// (shortest representation that round-trips, no exponent).
pub(crate) fn format_float(f: f64) -> String {
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
    let s = format!("{f}");
    s
}

#[cfg(test)]
mod tests;
