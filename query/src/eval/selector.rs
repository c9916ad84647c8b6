//! Selectors: instant vector lookups with lookback and staleness, and the
//! sliding windows of range selectors and subqueries.

use super::functions::{keep, SeriesSink};
use super::{
    exec_err, sel_key, EResult, Evaluator, Fetched, RangeSeries, Series, Steps, Stop, Val,
};
use crate::ast::{MatrixSelector, SubqueryExpr, VectorSelector};
use std::borrow::Cow;

use crate::model::{is_stale_nan, Labels, Sample};

/// A range-vector argument ready for windowing: each series' samples (stale
/// markers removed), and how a step maps to its window
/// `(eff - range, eff]` where `eff = (at or step time) - offset`.
pub(crate) struct RangeInput<'d> {
    pub series: Vec<RangeRef<'d>>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

/// A series of a range argument, borrowed from the fetched data when it has
/// no stale markers to remove (the common case), owned otherwise.
pub(crate) struct RangeRef<'d> {
    pub labels: Cow<'d, Labels>,
    pub drop_name: bool,
    pub samples: Cow<'d, [Sample]>,
}

impl RangeInput<'_> {
    /// The window end for the step at `ts`.
    #[inline]
    pub fn eff(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts) - self.offset
    }
}

/// Window samples between two deadline checks in [`windows`].
const CHECK_WORK: usize = 1 << 16;

/// Calls `f(step, window, eff_t)` for every step and collects the results.
/// Windows slide with two cursors; with `@` the single window is computed
/// once and repeated. `stop` is checked every 64 steps or 65,536 window
/// samples, whichever comes first, so a query that times out stops inside
/// one long series too.
pub(crate) fn windows(
    samples: &[Sample],
    steps: &Steps,
    input: &RangeInput<'_>,
    stop: Stop<'_>,
    mut f: impl FnMut(usize, &[Sample], i64) -> Option<f64>,
) -> EResult<Vec<Option<f64>>> {
    let mut out = vec![None; steps.n];
    if steps.n == 0 {
        return Ok(out);
    }
    if input.at.is_some() {
        let eff = input.eff(steps.start);
        let w = window(samples, eff - input.range, eff);
        if !w.is_empty() {
            let every = (CHECK_WORK / (w.len() + 1)).clamp(1, 64);
            for (i, o) in out.iter_mut().enumerate() {
                if i % every == every - 1 {
                    stop.check()?;
                }
                *o = f(i, w, eff);
            }
        }
        return Ok(out);
    }
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut work = 0usize;
    for (i, o) in out.iter_mut().enumerate() {
        work += 1 + (hi - lo);
        if work >= CHECK_WORK || i % 64 == 63 {
            stop.check()?;
            work = 0;
        }
        let eff = input.eff(steps.ts(i));
        let min = eff - input.range;
        while hi < samples.len() && samples[hi].t <= eff {
            hi += 1;
        }
        while lo < hi && samples[lo].t <= min {
            lo += 1;
        }
        if lo < hi {
            *o = f(i, &samples[lo..hi], eff);
        }
    }
    Ok(out)
}

/// Samples with `min < t <= max`.
pub(crate) fn window(samples: &[Sample], min: i64, max: i64) -> &[Sample] {
    let lo = samples.partition_point(|s| s.t <= min);
    let hi = samples.partition_point(|s| s.t <= max);
    if lo >= hi {
        &[]
    } else {
        &samples[lo..hi]
    }
}

impl<'a> Evaluator<'a> {
    fn fetched(&self, vs: &VectorSelector) -> EResult<&'a [crate::model::SeriesData]> {
        match self.data.get(&sel_key(vs)) {
            Some(d) => Ok(d),
            None => exec_err("internal: selector data was not fetched"),
        }
    }

    /// An instant vector selector over all steps.
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let mut out = Vec::new();
        self.vector_selector_each(vs, steps, &mut |_, l, d, v| keep(&mut out, l, d, v))?;
        Ok(out)
    }

    /// Evaluates the selector `vs` one series at a time, handing each
    /// series with a value at some step to `sink` (see
    /// [`Evaluator::range_call_each`] for the accounting).
    pub(crate) fn vector_selector_each(
        &mut self,
        vs: &VectorSelector,
        steps: &Steps,
        sink: &mut SeriesSink<'_, 'a>,
    ) -> EResult<()> {
        let at = self.at_ts(&vs.at);
        let lookback = self.lookback;
        let data = self.fetched(vs)?;
        for sd in data {
            self.check_deadline()?;
            let s = &sd.samples;
            let lookup = |j: usize, eff: i64| -> Option<f64> {
                if j == 0 {
                    return None;
                }
                let p = s[j - 1];
                if p.t <= eff - lookback || is_stale_nan(p.v) {
                    None
                } else {
                    Some(p.v)
                }
            };
            let mut vals = self.new_vals(steps.n)?;
            if let Some(at) = at {
                let eff = at - vs.offset;
                let j = s.partition_point(|p| p.t <= eff);
                let v = lookup(j, eff);
                vals.iter_mut().for_each(|x| *x = v);
            } else {
                let mut j = 0usize;
                for (i, x) in vals.iter_mut().enumerate() {
                    let eff = steps.ts(i) - vs.offset;
                    while j < s.len() && s[j].t <= eff {
                        j += 1;
                    }
                    *x = lookup(j, eff);
                }
            }
            if vals.iter().any(Option::is_some) {
                sink(self, &sd.labels, false, vals)?;
            } else {
                self.release_samples(steps.n);
            }
        }
        Ok(())
    }

    /// `timestamp(selector)`: the timestamps of the samples found.
    pub(crate) fn selector_timestamps(
        &mut self,
        vs: &VectorSelector,
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let at = self.at_ts(&vs.at);
        let lookback = self.lookback;
        let data = self.fetched(vs)?;
        let mut out = Vec::with_capacity(data.len());
        for sd in data {
            self.check_deadline()?;
            let s = &sd.samples;
            let mut vals = self.new_vals(steps.n)?;
            for (i, x) in vals.iter_mut().enumerate() {
                let eff = at.unwrap_or(steps.ts(i)) - vs.offset;
                let j = s.partition_point(|p| p.t <= eff);
                if j > 0 {
                    let p = s[j - 1];
                    if p.t > eff - lookback && !is_stale_nan(p.v) {
                        *x = Some(p.t as f64 / 1000.0);
                    }
                }
            }
            if vals.iter().any(Option::is_some) {
                out.push(Series {
                    labels: sd.labels.clone(),
                    drop_name: true,
                    vals,
                });
            } else {
                self.release_samples(steps.n);
            }
        }
        Ok(out)
    }

    /// The input of a range function: a matrix selector or a subquery.
    pub(crate) fn range_input(
        &mut self,
        e: &crate::ast::Expr,
        steps: &Steps,
    ) -> EResult<RangeInput<'a>> {
        use crate::ast::Expr;
        match e {
            Expr::MatrixSelector(ms) => {
                let all: &'a Fetched = self.data;
                let Some(data) = all.get(&sel_key(&ms.vs)) else {
                    return exec_err("internal: selector data was not fetched");
                };
                let series = data
                    .iter()
                    .map(|sd| {
                        let samples = if sd.samples.iter().any(|p| is_stale_nan(p.v)) {
                            Cow::Owned(
                                sd.samples
                                    .iter()
                                    .filter(|p| !is_stale_nan(p.v))
                                    .copied()
                                    .collect(),
                            )
                        } else {
                            Cow::Borrowed(&sd.samples[..])
                        };
                        RangeRef {
                            labels: Cow::Borrowed(&sd.labels),
                            drop_name: false,
                            samples,
                        }
                    })
                    .collect();
                Ok(RangeInput {
                    series,
                    range: ms.range,
                    offset: ms.vs.offset,
                    at: self.at_ts(&ms.vs.at),
                })
            }
            Expr::Subquery(sq) => {
                let series = self
                    .subquery_series(sq, steps)?
                    .into_iter()
                    .map(|s| RangeRef {
                        labels: Cow::Owned(s.labels),
                        drop_name: s.drop_name,
                        samples: Cow::Owned(s.samples),
                    })
                    .collect();
                Ok(RangeInput {
                    series,
                    range: sq.range,
                    offset: sq.offset,
                    at: self.at_ts(&sq.at),
                })
            }
            Expr::Paren(inner) => self.range_input(inner, steps),
            _ => exec_err("expected range vector argument"),
        }
    }

    /// Evaluates a subquery's inner expression on its own step grid, aligned
    /// to absolute multiples of the step, covering every outer step.
    fn subquery_series(&mut self, sq: &SubqueryExpr, steps: &Steps) -> EResult<Vec<RangeSeries>> {
        let step = sq.step.unwrap_or(self.default_step).max(1);
        let at = self.at_ts(&sq.at);
        let (first, last) = match at {
            Some(t) => (t, t),
            None => (steps.start, steps.end()),
        };
        let lo = first - sq.offset - sq.range;
        let mut start = step * (lo / step);
        if start <= lo {
            start += step;
        }
        let end = last - sq.offset;
        let inner = Steps::new(start, end, step);
        if inner.n == 0 {
            return Ok(Vec::new());
        }
        // Every inner step holds at least one value per series: refuse grids
        // larger than the sample limit before allocating them.
        if inner.n > self.max_samples {
            return Err(super::EvalError::TooManySamples);
        }
        let val = self.eval(&sq.expr, &inner)?;
        let series: Vec<Series> = match val {
            Val::Vector(v) => v,
            Val::Scalar(s) => {
                self.add_samples(s.len())?;
                vec![Series {
                    labels: Default::default(),
                    drop_name: false,
                    vals: s.into_iter().map(Some).collect(),
                }]
            }
            _ => return exec_err("subquery is only allowed on instant vector"),
        };
        // Each series' step slots (accounted by `eval`) are dropped as soon
        // as its samples are built, so the samples take their place in the
        // count: the transient overlap is one series.
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            self.check_deadline()?;
            self.release_samples(s.vals.len());
            let samples: Vec<Sample> = s
                .vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| Sample { t: inner.ts(i), v }))
                .collect();
            self.add_samples(samples.len())?;
            if !samples.is_empty() {
                out.push(RangeSeries {
                    labels: s.labels,
                    drop_name: s.drop_name,
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// A top-level range selector (instant queries only).
    pub(crate) fn matrix_selector_at(
        &mut self,
        ms: &MatrixSelector,
        steps: &Steps,
    ) -> EResult<Vec<RangeSeries>> {
        let data = self.fetched(&ms.vs)?;
        let eff = self.at_ts(&ms.vs.at).unwrap_or(steps.start) - ms.vs.offset;
        let mut out = Vec::new();
        for sd in data {
            self.check_deadline()?;
            let w = window(&sd.samples, eff - ms.range, eff);
            self.add_samples(w.len())?;
            let samples: Vec<Sample> = w.iter().filter(|p| !is_stale_nan(p.v)).copied().collect();
            if !samples.is_empty() {
                out.push(RangeSeries {
                    labels: sd.labels.clone(),
                    drop_name: false,
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// A top-level subquery (instant queries only).
    pub(crate) fn subquery_matrix_at(
        &mut self,
        sq: &SubqueryExpr,
        steps: &Steps,
    ) -> EResult<Vec<RangeSeries>> {
        let one = Steps::new(steps.start, steps.start, 1);
        let mut series = self.subquery_series(sq, &one)?;
        let eff = self.at_ts(&sq.at).unwrap_or(steps.start) - sq.offset;
        for s in &mut series {
            s.samples = window(&s.samples, eff - sq.range, eff).to_vec();
        }
        series.retain(|s| !s.samples.is_empty());
        Ok(series)
    }
}
