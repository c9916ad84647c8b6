//! Aggregations. Series are assigned to groups once (by their grouping
//! labels); each group then accumulates over all steps.

use std::collections::HashMap;

use super::gomath::{go_g, ParamRange};
use super::rangefn::{kahan_inc, quantile};
use super::{exec_err, format_float, EResult, Evaluator, Series, Steps, Val};
use crate::ast::{AggregateExpr, AggregateOp, Call, Expr, VectorSelector};
use crate::model::{Label, Labels, METRIC_NAME};

/// The labels a series keeps under `by (grouping)` / `without (grouping)`.
fn grouping_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    let v: Vec<Label> = l
        .iter()
        .filter(|lb| {
            let listed = grouping.iter().any(|g| g == &lb.name);
            if without {
                !listed && lb.name != METRIC_NAME
            } else {
                listed
            }
        })
        .cloned()
        .collect();
    Labels::from_sorted(v)
}

/// Per-group, per-step accumulator for the simple aggregations.
#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    value: f64,
    mean: f64,
    c: f64,
    count: f64,
    incremental: bool,
}

impl Acc {
    fn first(op: AggregateOp, f: f64) -> Acc {
        let mut a = Acc {
            seen: true,
            value: f,
            mean: f,
            c: 0.0,
            count: 1.0,
            incremental: false,
        };
        match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                a.value = if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            AggregateOp::Group => a.value = 1.0,
            _ => {}
        }
        a
    }

    fn add(&mut self, op: AggregateOp, f: f64) {
        match op {
            AggregateOp::Sum => (self.value, self.c) = kahan_inc(f, self.value, self.c),
            AggregateOp::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (nv, nc) = kahan_inc(f, self.value, self.c);
                    if !nv.is_infinite() {
                        self.value = nv;
                        self.c = nc;
                        return;
                    }
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.c /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.c) = kahan_inc(f / self.count, q * self.mean, q * self.c);
            }
            AggregateOp::Max if self.value < f || self.value.is_nan() => self.value = f,
            AggregateOp::Min if self.value > f || self.value.is_nan() => self.value = f,
            AggregateOp::Count => self.count += 1.0,
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
            _ => {}
        }
    }

    fn result(&self, op: AggregateOp) -> f64 {
        match op {
            AggregateOp::Sum => self.value + self.c,
            AggregateOp::Avg => {
                if self.incremental {
                    self.mean + self.c
                } else {
                    self.value / self.count + self.c / self.count
                }
            }
            AggregateOp::Count => self.count,
            AggregateOp::Stdvar => self.value / self.count,
            AggregateOp::Stddev => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

/// Adds one series' per-step values into a group's per-step accumulators.
fn fold(op: AggregateOp, accs: &mut [Acc], vals: &[Option<f64>]) {
    for (acc, v) in accs.iter_mut().zip(vals) {
        if let Some(f) = *v {
            if acc.seen {
                acc.add(op, f);
            } else {
                *acc = Acc::first(op, f);
            }
        }
    }
}

/// A group's per-step results.
fn results(op: AggregateOp, accs: &[Acc]) -> Vec<Option<f64>> {
    accs.iter()
        .map(|acc| acc.seen.then(|| acc.result(op)))
        .collect()
}

/// The argument of an aggregation whose groups can be fed one series at a
/// time: `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev` or
/// `stdvar` of a selector or of a range function call (the dashboard
/// shapes `sum by (instance) (rate(m[5m]))`, `max by (instance) (m)`), so
/// the argument's value, one dense step vector per series, is never held
/// whole.
enum Fusable<'e> {
    Selector(&'e VectorSelector),
    RangeCall(&'e Call),
}

fn fusable(a: &AggregateExpr) -> Option<Fusable<'_>> {
    use AggregateOp::*;
    if !matches!(
        a.op,
        Sum | Avg | Count | Min | Max | Group | Stddev | Stdvar
    ) {
        return None;
    }
    let mut e = &*a.expr;
    while let Expr::Paren(inner) = e {
        e = inner;
    }
    match e {
        Expr::VectorSelector(vs) => Some(Fusable::Selector(vs)),
        Expr::Call(c) if super::functions::is_range_fn(&c.func) && c.func != "absent_over_time" => {
            Some(Fusable::RangeCall(c))
        }
        _ => None,
    }
}

impl<'a> Evaluator<'a> {
    /// `op by/without (grouping) (arg)` for a [`fusable`] argument: each
    /// series of `arg` is added to its group as it is computed and then
    /// dropped. The groups, their order (first appearance) and each step's
    /// accumulation order are those of the general path, so the answer is
    /// the same to the bit; what is held is the groups' per-step
    /// accumulators (accounted as one slot per step per group) and one
    /// series at a time.
    fn aggregate_streamed(
        &mut self,
        op: AggregateOp,
        arg: Fusable<'_>,
        grouping: &[String],
        without: bool,
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let n = steps.n;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, bool, Vec<Acc>)> = Vec::new();
        let mut add =
            |ev: &mut Evaluator<'a>, labels: &Labels, drop_name: bool, vals: Vec<Option<f64>>| {
                let key = grouping_labels(labels, grouping, without);
                let gi = match index.get(&key) {
                    Some(&gi) => gi,
                    None => {
                        ev.add_samples(n)?;
                        groups.push((key.clone(), false, vec![Acc::default(); n]));
                        index.insert(key, groups.len() - 1);
                        groups.len() - 1
                    }
                };
                let g = &mut groups[gi];
                g.1 |= drop_name;
                fold(op, &mut g.2, &vals);
                ev.release_samples(n);
                Ok(())
            };
        match arg {
            Fusable::Selector(vs) => self.vector_selector_each(vs, steps, &mut add)?,
            Fusable::RangeCall(c) => {
                super::functions::check_arity(c)?;
                self.range_call_each(c, steps, &mut add)?
            }
        }
        Ok(groups
            .into_iter()
            .map(|(labels, drop_name, accs)| Series {
                labels,
                drop_name,
                vals: results(op, &accs),
            })
            .collect())
    }

    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr, steps: &Steps) -> EResult<Val> {
        let mut grouping = a.grouping.clone();
        grouping.sort();
        if a.op == AggregateOp::CountValues {
            return self.count_values(a, &grouping, steps).map(Val::Vector);
        }
        if a.op.has_param() && a.param.is_none() {
            return exec_err(format!("{} needs a parameter", a.op.as_str()));
        }
        let param = match (&a.param, a.op) {
            (Some(p), op) if op != AggregateOp::CountValues => Some(self.eval_scalar(p, steps)?),
            _ => None,
        };
        if let Some(arg) = fusable(a) {
            return self
                .aggregate_streamed(a.op, arg, &grouping, a.without, steps)
                .map(Val::Vector);
        }
        let input = self.eval_vector(&a.expr, steps)?;
        // Assign series to groups.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
        for (si, s) in input.iter().enumerate() {
            let key = grouping_labels(&s.labels, &grouping, a.without);
            let gi = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[gi].1.push(si);
        }
        match a.op {
            AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio => {
                let p = param.unwrap_or_default();
                self.aggregate_k(a.op, &p, input, &groups, steps, &a.param)
                    .map(Val::Vector)
            }
            AggregateOp::Quantile => {
                let q = param.unwrap_or_default();
                // Prometheus warns once for NaN, once for the largest value
                // above 1 and once for the smallest below 0 (Go's Max/Min
                // fold, so a NaN step hides the others).
                let pr = ParamRange::new(&q, is_literal(&a.param));
                let mut bad = Vec::new();
                if pr.has_nan {
                    bad.push(f64::NAN);
                }
                if pr.max > 1.0 {
                    bad.push(pr.max);
                }
                if pr.min < 0.0 {
                    bad.push(pr.min);
                }
                for b in bad {
                    self.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        go_g(b)
                    ));
                }
                let mut out = Vec::with_capacity(groups.len());
                let mut buf = Vec::new();
                for (labels, members) in groups {
                    self.check_deadline()?;
                    let mut vals = self.new_vals(steps.n)?;
                    let mut drop_name = false;
                    for (i, v) in vals.iter_mut().enumerate() {
                        buf.clear();
                        for &si in &members {
                            if let Some(x) = input[si].vals[i] {
                                buf.push(x);
                                drop_name |= input[si].drop_name;
                            }
                        }
                        if !buf.is_empty() {
                            *v = Some(quantile(q[i], &mut buf));
                        }
                    }
                    out.push(Series {
                        labels,
                        drop_name,
                        vals,
                    });
                }
                Ok(Val::Vector(out))
            }
            op => {
                let mut out = Vec::with_capacity(groups.len());
                let mut accs = vec![Acc::default(); steps.n];
                for (labels, members) in groups {
                    self.check_deadline()?;
                    self.add_samples(steps.n)?;
                    accs.iter_mut().for_each(|a| *a = Acc::default());
                    let mut drop_name = false;
                    for &si in &members {
                        let s = &input[si];
                        drop_name |= s.drop_name;
                        fold(op, &mut accs, &s.vals);
                    }
                    out.push(Series {
                        labels,
                        drop_name,
                        vals: results(op, &accs),
                    });
                }
                Ok(Val::Vector(out))
            }
        }
    }

    fn aggregate_k(
        &mut self,
        op: AggregateOp,
        param: &[f64],
        input: Vec<Series>,
        groups: &[(Labels, Vec<usize>)],
        steps: &Steps,
        param_expr: &Option<Box<Expr>>,
    ) -> EResult<Vec<Series>> {
        // The checks of Prometheus' rangeEvalAgg, on the parameter's range
        // over all steps folded with Go's math.Max/Min (a NaN step makes the
        // maximum NaN, so `max < 1` does not return early before the NaN
        // error).
        let pr = ParamRange::new(param, is_literal(param_expr));
        if op == AggregateOp::LimitRatio {
            if pr.max == 0.0 && pr.min == 0.0 {
                return Ok(Vec::new());
            }
            if pr.has_nan {
                return exec_err("Ratio value is NaN");
            }
            if pr.max > 1.0 {
                self.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                    go_g(pr.max)
                ));
            }
            if pr.min < -1.0 {
                self.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                    go_g(pr.min)
                ));
            }
        } else {
            if pr.max < 1.0 {
                return Ok(Vec::new());
            }
            if pr.has_nan {
                return exec_err("Parameter value is NaN");
            }
            if pr.min <= i64::MIN as f64 {
                return exec_err(format!("Scalar value {} underflows int64", go_g(pr.min)));
            }
            if pr.max >= i64::MAX as f64 {
                return exec_err(format!("Scalar value {} overflows int64", go_g(pr.max)));
            }
        }
        self.add_samples(input.len().saturating_mul(steps.n))?;
        let mut selected: Vec<Vec<Option<f64>>> = vec![vec![None; steps.n]; input.len()];
        // For instant queries, the output order (per group, best first).
        let mut order: Vec<usize> = Vec::new();
        let mut cand: Vec<(f64, usize)> = Vec::new();
        for i in 0..steps.n {
            let k = (param[i] as i64).min(input.len() as i64);
            for (_, members) in groups {
                cand.clear();
                for &si in members {
                    if let Some(x) = input[si].vals[i] {
                        cand.push((x, si));
                    }
                }
                let picked: Vec<(f64, usize)> = match op {
                    AggregateOp::Topk | AggregateOp::Bottomk => {
                        if k < 1 {
                            continue;
                        }
                        select_k(&cand, k as usize, op == AggregateOp::Topk)
                    }
                    AggregateOp::Limitk => {
                        if k < 1 {
                            continue;
                        }
                        cand.iter().take(k as usize).copied().collect()
                    }
                    _ => {
                        let r = param[i].clamp(-1.0, 1.0);
                        cand.iter()
                            .filter(|(_, si)| ratio_keep(&input[*si].labels, r))
                            .copied()
                            .collect()
                    }
                };
                for (x, si) in picked {
                    selected[si][i] = Some(x);
                    if steps.n == 1 {
                        order.push(si);
                    }
                }
            }
        }
        let mut out = Vec::new();
        if steps.n == 1 {
            let mut input: Vec<Option<Series>> = input.into_iter().map(Some).collect();
            for si in order {
                if let Some(mut s) = input[si].take() {
                    s.vals = std::mem::take(&mut selected[si]);
                    out.push(s);
                }
            }
            return Ok(out);
        }
        for (si, mut s) in input.into_iter().enumerate() {
            s.vals = std::mem::take(&mut selected[si]);
            if s.vals.iter().any(Option::is_some) {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn count_values(
        &mut self,
        a: &AggregateExpr,
        grouping: &[String],
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let mut param = a.param.as_deref();
        while let Some(Expr::Paren(p)) = param {
            param = Some(p.as_ref());
        }
        let label = match param {
            Some(Expr::String(s)) => s.clone(),
            _ => return exec_err("count_values: expected string parameter"),
        };
        if label.is_empty() {
            return exec_err(format!("invalid label name {label:?}"));
        }
        let mut grouping = grouping.to_vec();
        if !a.without {
            grouping.push(label.clone());
            grouping.sort();
        }
        let input = self.eval_vector(&a.expr, steps)?;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        for s in &input {
            self.check_deadline()?;
            for (i, v) in s.vals.iter().enumerate() {
                let Some(x) = v else { continue };
                let mut l = s.labels.clone();
                l.set(&label, &format_float(*x));
                let key = grouping_labels(&l, &grouping, a.without);
                // Every new value is a new series with a slot per step:
                // account it before allocating (issue 13: one distinct
                // value per step over 11,000 steps is 121 M slots).
                let oi = match index.get(&key) {
                    Some(&oi) => oi,
                    None => {
                        let vals = self.new_vals(steps.n)?;
                        index.insert(key.clone(), out.len());
                        out.push(Series {
                            labels: key,
                            drop_name: false,
                            vals,
                        });
                        out.len() - 1
                    }
                };
                let slot = &mut out[oi].vals[i];
                *slot = Some(slot.unwrap_or(0.0) + 1.0);
            }
        }
        Ok(out)
    }
}

/// The k best candidates (largest for topk, smallest for bottomk), best
/// first; NaN counts as worst; ties keep input order.
fn select_k(cand: &[(f64, usize)], k: usize, top: bool) -> Vec<(f64, usize)> {
    let mut v: Vec<(usize, f64, usize)> = cand
        .iter()
        .enumerate()
        .map(|(p, &(x, s))| (p, x, s))
        .collect();
    v.sort_by(|a, b| {
        let (x, y) = (a.1, b.1);
        let o = match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ if top => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        };
        o.then(a.0.cmp(&b.0))
    });
    v.into_iter().take(k).map(|(_, x, s)| (x, s)).collect()
}

/// `limit_ratio`: keeps a series when its offset in [0, 1) (its label hash
/// over `u64::MAX`, as Prometheus' `HashRatioSampler`) is below `r`, or for
/// a negative `r` at or above `1 + r`, so `limit_ratio(r, v)` and
/// `limit_ratio(r - 1, v)` partition `v`.
fn ratio_keep(labels: &Labels, r: f64) -> bool {
    let offset = label_hash(labels) as f64 / u64::MAX as f64;
    (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
}

/// Prometheus' `Labels.Hash()`: XXH64 over `name 0xff value 0xff ...`.
fn label_hash(labels: &Labels) -> u64 {
    let mut b = Vec::with_capacity(128);
    for l in labels.iter() {
        b.extend_from_slice(l.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(l.value.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0)
}

/// Whether an aggregation parameter is a number literal (Prometheus takes
/// its value as both minimum and maximum).
fn is_literal(p: &Option<Box<Expr>>) -> bool {
    let mut p = p.as_deref();
    while let Some(Expr::Paren(x)) = p {
        p = Some(x.as_ref());
    }
    matches!(p, Some(Expr::Number(_)))
}
