//! `info(v, {data label selector})` (experimental): adds the data labels of
//! info series (default `target_info`) that share the identifying labels
//! `instance` and `job` with each series of `v`, as Prometheus' `info.go`.

use std::collections::{HashMap, HashSet};

use super::{exec_err, EResult, Evaluator, Series, Steps};
use crate::ast::{AtModifier, Call, Expr};
use crate::model::{is_stale_nan, Labels, MatchOp, Matcher, METRIC_NAME};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// Key of an `info()` call's info series in the fetched data.
pub(crate) fn info_key(c: &Call) -> usize {
    c as *const Call as usize
}

/// `@` and offset of the first selector in `e` (with enclosing subqueries
/// inside `e`), which upstream uses to time the info selection.
pub(crate) fn first_selector_time(e: &Expr) -> (Option<AtModifier>, i64) {
    fn walk(e: &Expr) -> Option<(Option<AtModifier>, i64)> {
        match e {
            Expr::VectorSelector(vs) => Some((vs.at, vs.offset)),
            Expr::MatrixSelector(ms) => Some((ms.vs.at, ms.vs.offset)),
            Expr::Subquery(sq) => walk(&sq.expr).map(|(at, off)| match at {
                Some(a) => (Some(a), off),
                None => (sq.at, off + sq.offset),
            }),
            Expr::Paren(x) | Expr::Unary(_, x) => walk(x),
            Expr::Binary(b) => walk(&b.lhs).or_else(|| walk(&b.rhs)),
            Expr::Aggregate(a) => a.param.as_deref().and_then(walk).or_else(|| walk(&a.expr)),
            Expr::Call(c) => c.args.iter().find_map(walk),
            Expr::Number(_) | Expr::String(_) => None,
        }
    }
    walk(e).unwrap_or((None, 0))
}

/// The matchers of the label selector argument (empty when absent).
fn selector_matchers(c: &Call) -> &[Matcher] {
    match c.args.get(1) {
        Some(Expr::VectorSelector(vs)) => &vs.matchers,
        _ => &[],
    }
}

/// Upstream's `effectiveInfoNameMatchers`.
fn effective_name_matchers(name_matchers: Vec<Matcher>) -> Vec<Matcher> {
    if name_matchers
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return name_matchers;
    }
    if !name_matchers.is_empty() {
        let mut v = match Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info") {
            Ok(m) => vec![m],
            Err(_) => Vec::new(),
        };
        v.extend(name_matchers);
        return v;
    }
    vec![Matcher::equal(METRIC_NAME, TARGET_INFO)]
}

fn name_matchers(c: &Call) -> Vec<Matcher> {
    if c.args.len() > 1 {
        selector_matchers(c)
            .iter()
            .filter(|m| m.name == METRIC_NAME)
            .cloned()
            .collect()
    } else {
        vec![Matcher::equal(METRIC_NAME, TARGET_INFO)]
    }
}

/// The static matchers the info series are fetched with.
pub(crate) fn fetch_matchers(c: &Call) -> Vec<Matcher> {
    let mut v: Vec<Matcher> = selector_matchers(c)
        .iter()
        .filter(|m| m.name != METRIC_NAME)
        .cloned()
        .collect();
    v.extend(effective_name_matchers(name_matchers(c)));
    v
}

impl Evaluator<'_> {
    pub(crate) fn eval_info(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let base = self.eval_vector(&c.args[0], steps)?;
        let eff_names = effective_name_matchers(name_matchers(c));
        // Data-label matchers by name, without those on __name__.
        let mut data_matchers: HashMap<&str, Vec<&Matcher>> = HashMap::new();
        for m in selector_matchers(c)
            .iter()
            .filter(|m| m.name != METRIC_NAME)
        {
            data_matchers.entry(m.name.as_str()).or_default().push(m);
        }
        let ignored: Vec<bool> = base
            .iter()
            .map(|s| {
                let name = s.labels.metric_name().unwrap_or("");
                eff_names.iter().all(|m| m.matches(name))
            })
            .collect();
        // Identifying label values of the series to enrich.
        let mut id_values: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (s, _) in base.iter().zip(&ignored).filter(|(_, ig)| !**ig) {
            for l in IDENTIFYING {
                if let Some(v) = s.labels.get(l) {
                    id_values.entry(l).or_default().insert(v);
                }
            }
        }
        let info = if id_values.is_empty() {
            Vec::new()
        } else {
            self.info_series(c, steps, &id_values)?
        };
        self.combine_info(base, &ignored, &info, &data_matchers, steps)
    }

    /// The info series at each step, valued with their sample's timestamp.
    fn info_series(
        &mut self,
        c: &Call,
        steps: &Steps,
        id_values: &HashMap<&str, HashSet<&str>>,
    ) -> EResult<Vec<Series>> {
        let Some(data) = self.data.get(&info_key(c)) else {
            return exec_err("internal: info series were not fetched");
        };
        let (at, offset) = first_selector_time(&c.args[0]);
        let at = self.at_ts(&at);
        let mut out = Vec::new();
        for sd in data {
            let ids_ok = id_values
                .iter()
                .all(|(l, vals)| sd.labels.get(l).is_some_and(|v| vals.contains(v)));
            if !ids_ok {
                continue;
            }
            let s = &sd.samples;
            let mut vals = vec![None; steps.n];
            for (i, x) in vals.iter_mut().enumerate() {
                let eff = at.unwrap_or(steps.ts(i)) - offset;
                let j = s.partition_point(|p| p.t <= eff);
                if j > 0 {
                    let p = s[j - 1];
                    if p.t > eff - self.lookback && !is_stale_nan(p.v) {
                        *x = Some(p.t as f64);
                    }
                }
            }
            if vals.iter().any(Option::is_some) {
                out.push(Series {
                    labels: sd.labels.clone(),
                    drop_name: false,
                    vals,
                });
            }
        }
        Ok(out)
    }

    fn combine_info(
        &mut self,
        base: Vec<Series>,
        ignored: &[bool],
        info: &[Series],
        data_matchers: &HashMap<&str, Vec<&Matcher>>,
        steps: &Steps,
    ) -> EResult<Vec<Series>> {
        let sig = |name: &str, l: &Labels| -> Vec<u8> {
            let mut b = name.as_bytes().to_vec();
            for id in IDENTIFYING {
                b.push(0xff);
                if let Some(v) = l.get(id) {
                    b.extend_from_slice(id.as_bytes());
                    b.push(0xfe);
                    b.extend_from_slice(v.as_bytes());
                }
            }
            b
        };
        let mut info_names: Vec<&str> =
            info.iter().filter_map(|s| s.labels.metric_name()).collect();
        info_names.sort_unstable();
        info_names.dedup();
        let info_sigs: Vec<Vec<u8>> = info
            .iter()
            .map(|s| sig(s.labels.metric_name().unwrap_or(""), &s.labels))
            .collect();
        let base_sigs: Vec<Vec<Vec<u8>>> = base
            .iter()
            .map(|s| info_names.iter().map(|n| sig(n, &s.labels)).collect())
            .collect();
        let all_match_empty = data_matchers.values().flatten().all(|m| m.matches_empty());
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
        for i in 0..steps.n {
            self.check_deadline()?;
            // Latest info series per signature at this step.
            let mut by_sig: HashMap<&[u8], (usize, f64)> = HashMap::new();
            for (k, s) in info.iter().enumerate() {
                let Some(orig_t) = s.vals[i] else { continue };
                match by_sig.get(info_sigs[k].as_slice()) {
                    Some(&(_, t)) if t > orig_t => {}
                    Some(&(e, t)) if t == orig_t => {
                        return exec_err(format!(
                            "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                            info[e].labels, t as i64, s.labels, orig_t as i64
                        ));
                    }
                    _ => {
                        by_sig.insert(&info_sigs[k], (k, orig_t));
                    }
                }
            }
            for (bi, b) in base.iter().enumerate() {
                let Some(v) = b.vals[i] else { continue };
                let labels = if ignored[bi] {
                    b.labels.clone()
                } else {
                    let mut add = Labels::empty();
                    let mut seen = 0;
                    for s in &base_sigs[bi] {
                        let Some(&(k, _)) = by_sig.get(s.as_slice()) else {
                            continue;
                        };
                        seen += 1;
                        for l in info[k].labels.iter() {
                            if l.name == METRIC_NAME
                                || (!data_matchers.is_empty()
                                    && !data_matchers.contains_key(l.name.as_str()))
                            {
                                continue;
                            }
                            if let Some(existing) = add.get(&l.name) {
                                if existing != l.value {
                                    return exec_err(format!("conflicting label: {}", l.name));
                                }
                            }
                            if b.labels.get(&l.name).is_some() {
                                continue;
                            }
                            add.set(&l.name, &l.value);
                        }
                    }
                    if seen == 0 && !all_match_empty {
                        continue;
                    }
                    let mut l = b.labels.clone();
                    for x in add.iter() {
                        l.set(&x.name, &x.value);
                    }
                    l
                };
                let key = (labels, b.drop_name);
                let oi = match index.get(&key) {
                    Some(&oi) => oi,
                    None => {
                        let vals = self.new_vals(steps.n)?;
                        out.push(Series {
                            labels: key.0.clone(),
                            drop_name: b.drop_name,
                            vals,
                        });
                        index.insert(key, out.len() - 1);
                        out.len() - 1
                    }
                };
                if out[oi].vals[i].is_some() {
                    return exec_err("vector cannot contain metrics with the same labelset");
                }
                out[oi].vals[i] = Some(v);
            }
        }
        Ok(out)
    }
}
