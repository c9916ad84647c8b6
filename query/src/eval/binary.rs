//! Binary operators: scalar/scalar, vector/scalar, and vector/vector with
//! `on`/`ignoring`/`group_*` matching and the set operators. Signatures are
//! computed once per series and looked up in hash maps.

use std::collections::HashMap;

use super::{exec_err, match_labels, signature, EResult, Evaluator, Series, Steps, Val};
use crate::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};
use crate::model::Labels;

/// Applies `op`; returns the value and whether a comparison held.
#[inline]
fn apply(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    use BinaryOp::*;
    match op {
        Add => (l + r, true),
        Sub => (l - r, true),
        Mul => (l * r, true),
        Div => (l / r, true),
        Mod => (go_mod(l, r), true),
        Pow => (l.powf(r), true),
        Atan2 => (l.atan2(r), true),
        Eql => (l, l == r),
        Neq => (l, l != r),
        Gtr => (l, l > r),
        Lss => (l, l < r),
        Gte => (l, l >= r),
        Lte => (l, l <= r),
        And | Or | Unless => (l, true),
    }
}

/// Go's `math.Mod`: result has the sign of `l`.
fn go_mod(l: f64, r: f64) -> f64 {
    l % r
}

fn is_arith(op: BinaryOp) -> bool {
    !op.is_comparison() && !op.is_set()
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr, steps: &Steps) -> EResult<Val> {
        let lhs = self.eval(&b.lhs, steps)?;
        let rhs = self.eval(&b.rhs, steps)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&x, &y)| {
                        let (v, keep) = apply(b.op, x, y);
                        if b.op.is_comparison() {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(vector_scalar(b, l, &r, false))),
            (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(vector_scalar(b, r, &l, true))),
            (Val::Vector(l), Val::Vector(r)) => {
                let default_matching = VectorMatching {
                    card: if b.op.is_set() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                };
                let m = b.matching.as_ref().unwrap_or(&default_matching);
                let out = match b.op {
                    BinaryOp::And | BinaryOp::Unless => set_and_unless(b.op, l, r, m, steps.n),
                    BinaryOp::Or => set_or(l, r, m, steps.n),
                    _ => self.vector_vector(b, l, r, m, steps)?,
                };
                Ok(Val::Vector(out))
            }
            _ => exec_err("invalid operand types for binary operation"),
        }
    }

    fn vector_vector(
        &mut self,
        b: &BinaryExpr,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        m: &VectorMatching,
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let swap = m.card == Cardinality::OneToMany;
        // After the swap, `many` is the side whose labels the result keeps
        // and `one` must have unique signatures per step.
        let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
        let (many_sig, one_by_sig) = signature_groups(&many, &one, m);
        check_one_side_unique(&many, &one, &one_by_sig, m, swap)?;
        let mut out = Output::new(steps.n, b.return_bool);
        for (li, ls) in many.iter().enumerate() {
            self.check_deadline()?;
            let cands = &one_by_sig[many_sig[li]];
            if cands.is_empty() {
                continue;
            }
            for i in 0..steps.n {
                let Some(lv) = ls.vals[i] else { continue };
                let Some((ri, rv)) = cands.iter().find_map(|&j| one[j].vals[i].map(|v| (j, v)))
                else {
                    continue;
                };
                let before = out.series.len();
                let oi = out.slot(li, ri, || {
                    result_labels(&ls.labels, &one[ri].labels, b.op, m)
                });
                if out.series.len() > before {
                    // A new result series: one slot per step (and a claim
                    // flag per step, not counted).
                    self.add_samples(steps.n)?;
                }
                let (fl, fr) = if swap { (rv, lv) } else { (lv, rv) };
                let (v, keep) = apply(b.op, fl, fr);
                let v = if b.return_bool {
                    Some(if keep { 1.0 } else { 0.0 })
                } else {
                    keep.then_some(v)
                };
                out.set(oi, i, v, m.card)?;
            }
        }
        Ok(out.finish())
    }
}

/// Signature ordinals: per `many` series, and the `one` series per ordinal.
fn signature_groups(
    many: &[Series],
    one: &[Series],
    m: &VectorMatching,
) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut sig_ord: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut ord = |l: &Labels| {
        let k = signature(l, m.on, &m.labels);
        let next = sig_ord.len();
        *sig_ord.entry(k).or_insert(next)
    };
    let many_sig: Vec<usize> = many.iter().map(|s| ord(&s.labels)).collect();
    let one_sig: Vec<usize> = one.iter().map(|s| ord(&s.labels)).collect();
    let mut one_by_sig: Vec<Vec<usize>> = vec![Vec::new(); sig_ord.len()];
    for (i, &s) in one_sig.iter().enumerate() {
        one_by_sig[s].push(i);
    }
    (many_sig, one_by_sig)
}

/// The `one` side may hold a signature only once per step (checked where
/// the other side has samples, as upstream short-circuits empty sides).
fn check_one_side_unique(
    many: &[Series],
    one: &[Series],
    one_by_sig: &[Vec<usize>],
    m: &VectorMatching,
    swap: bool,
) -> EResult<()> {
    let n = many.first().map_or(0, |s| s.vals.len());
    let mut many_any = vec![false; n];
    for s in many {
        for (i, v) in s.vals.iter().enumerate() {
            many_any[i] |= v.is_some();
        }
    }
    for list in one_by_sig.iter().filter(|l| l.len() > 1) {
        for (i, _) in many_any.iter().enumerate().filter(|(_, a)| **a) {
            let mut present = list.iter().filter(|&&j| one[j].vals[i].is_some());
            let (Some(&a), Some(&b)) = (present.next(), present.next()) else {
                continue;
            };
            let side = if swap { "left" } else { "right" };
            let ml = match_labels(&one[a].labels, m.on, &m.labels);
            let mut d = [one[a].labels.to_string(), one[b].labels.to_string()];
            d.sort();
            return exec_err(format!(
                "found duplicate series for the match group {ml} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                d[0], d[1]
            ));
        }
    }
    Ok(())
}

/// Result series of a vector/vector operation, one per result label set,
/// remembering which steps a match already claimed.
struct Output {
    n: usize,
    return_bool: bool,
    series: Vec<Series>,
    claimed: Vec<Vec<bool>>,
    by_labels: HashMap<Labels, usize>,
    by_pair: HashMap<(usize, usize), usize>,
}

impl Output {
    fn new(n: usize, return_bool: bool) -> Self {
        Output {
            n,
            return_bool,
            series: Vec::new(),
            claimed: Vec::new(),
            by_labels: HashMap::new(),
            by_pair: HashMap::new(),
        }
    }

    /// The output series for the pair (`many` index, `one` index).
    fn slot(&mut self, li: usize, ri: usize, labels: impl FnOnce() -> Labels) -> usize {
        if let Some(&oi) = self.by_pair.get(&(li, ri)) {
            return oi;
        }
        let labels = labels();
        let oi = match self.by_labels.get(&labels) {
            Some(&oi) => oi,
            None => {
                self.series.push(Series {
                    labels: labels.clone(),
                    drop_name: self.return_bool,
                    vals: vec![None; self.n],
                });
                self.claimed.push(vec![false; self.n]);
                self.by_labels.insert(labels, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        self.by_pair.insert((li, ri), oi);
        oi
    }

    /// Records a match at step `i` (an error when the step is taken).
    fn set(&mut self, oi: usize, i: usize, v: Option<f64>, card: Cardinality) -> EResult<()> {
        if self.claimed[oi][i] {
            return exec_err(if card == Cardinality::OneToOne {
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            } else {
                "multiple matches for labels: grouping labels must ensure unique matches"
            });
        }
        self.claimed[oi][i] = true;
        self.series[oi].vals[i] = v;
        Ok(())
    }

    fn finish(mut self) -> Vec<Series> {
        self.series.retain(|s| s.vals.iter().any(Option::is_some));
        self.series
    }
}

/// The labels of a vector/vector result (Prometheus' `resultMetric`).
fn result_labels(many: &Labels, one: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut l = many.clone();
    if is_arith(op) {
        super::drop_metadata_labels(&mut l);
    }
    if m.card == Cardinality::OneToOne {
        if m.on {
            l = match_labels(&l, true, &m.labels);
        } else {
            for name in &m.labels {
                l.remove(name);
            }
        }
    }
    for name in &m.include {
        match one.get(name) {
            Some(v) => l.set(name, v),
            None => l.remove(name),
        }
    }
    l
}

fn vector_scalar(b: &BinaryExpr, mut v: Vec<Series>, s: &[f64], swap: bool) -> Vec<Series> {
    let cmp = b.op.is_comparison();
    for series in &mut v {
        if is_arith(b.op) || b.return_bool {
            series.drop_name = true;
        }
        for (i, x) in series.vals.iter_mut().enumerate() {
            let Some(val) = *x else { continue };
            let (l, r) = if swap { (s[i], val) } else { (val, s[i]) };
            let (mut res, keep) = apply(b.op, l, r);
            if cmp && swap {
                res = val;
            }
            *x = if b.return_bool {
                Some(if keep { 1.0 } else { 0.0 })
            } else if keep {
                Some(res)
            } else {
                None
            };
        }
    }
    v.retain(|s| s.vals.iter().any(Option::is_some));
    v
}

/// Per signature, which steps have at least one series; and each series'
/// signature.
type Presence = (HashMap<Vec<u8>, Vec<bool>>, Vec<Vec<u8>>);

/// Per signature, which steps have at least one series.
fn presence(side: &[Series], m: &VectorMatching, n: usize) -> Presence {
    let mut map: HashMap<Vec<u8>, Vec<bool>> = HashMap::new();
    let mut sigs = Vec::with_capacity(side.len());
    for s in side {
        let sig = signature(&s.labels, m.on, &m.labels);
        let p = map.entry(sig.clone()).or_insert_with(|| vec![false; n]);
        for (i, v) in s.vals.iter().enumerate() {
            p[i] |= v.is_some();
        }
        sigs.push(sig);
    }
    (map, sigs)
}

fn set_and_unless(
    op: BinaryOp,
    mut l: Vec<Series>,
    r: Vec<Series>,
    m: &VectorMatching,
    n: usize,
) -> Vec<Series> {
    let (rp, _) = presence(&r, m, n);
    for s in &mut l {
        let sig = signature(&s.labels, m.on, &m.labels);
        let p = rp.get(&sig);
        for (i, x) in s.vals.iter_mut().enumerate() {
            let present = p.is_some_and(|p| p[i]);
            let keep = if op == BinaryOp::And {
                present
            } else {
                !present
            };
            if !keep {
                *x = None;
            }
        }
    }
    l.retain(|s| s.vals.iter().any(Option::is_some));
    l
}

fn set_or(l: Vec<Series>, mut r: Vec<Series>, m: &VectorMatching, n: usize) -> Vec<Series> {
    let (lp, _) = presence(&l, m, n);
    for s in &mut r {
        let sig = signature(&s.labels, m.on, &m.labels);
        if let Some(p) = lp.get(&sig) {
            for (i, x) in s.vals.iter_mut().enumerate() {
                if p[i] {
                    *x = None;
                }
            }
        }
    }
    r.retain(|s| s.vals.iter().any(Option::is_some));
    let mut out = l;
    out.extend(r);
    out
}
