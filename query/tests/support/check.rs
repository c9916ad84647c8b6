//! Comparing a query result with an eval's expectations (upstream's
//! `compareResult`, `checkAnnotations`, `checkExpectedFailure`).

use std::collections::HashSet;

use model::{is_stale_nan, Sample};
use query::engine::{QueryError, QueryOutput, Value};

use crate::format::EvalCmd;

/// Relative error allowed for sample values (upstream `defaultEpsilon`).
const EPSILON: f64 = 0.000001;

fn almost_equal(a: f64, b: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

pub fn check_result(cmd: &EvalCmd, res: Result<QueryOutput, QueryError>) -> Result<(), String> {
    let e = &cmd.expect;
    let out = match res {
        Err(err) => {
            if !e.fail {
                return Err(format!("unexpected error: {err}"));
            }
            let msg = err.to_string();
            if let Some(m) = &e.fail_msg {
                if &msg != m {
                    return Err(format!("expected error {m:?}, got {msg:?}"));
                }
            }
            if let Some(r) = &e.fail_regex {
                let re = regex::Regex::new(r).map_err(|x| format!("bad regex in test: {x}"))?;
                if !re.is_match(&msg) {
                    return Err(format!("expected error matching {r:?}, got {msg:?}"));
                }
            }
            return Ok(());
        }
        Ok(o) => o,
    };
    if e.fail {
        return Err("expected an error, got none".into());
    }
    if e.warn && out.warnings.is_empty() {
        return Err("expected warnings, got none".into());
    }
    if e.info && out.infos.is_empty() {
        return Err("expected info annotations, got none".into());
    }
    // Annotation texts, compared without upstream's position suffix
    // (upstream's validateExpectedAnnotationsOfType): every expected text or
    // regex must match an annotation, and when any is given, every
    // annotation of that kind must match one of them.
    for (msgs, regexes, got, kind) in [
        (&e.warn_msgs, &e.warn_regexes, &out.warnings, "warning"),
        (&e.info_msgs, &e.info_regexes, &out.infos, "info"),
    ] {
        let mut res = Vec::new();
        for r in regexes.iter() {
            res.push(regex::Regex::new(r).map_err(|x| format!("bad regex in test: {x}"))?);
        }
        for w in msgs.iter() {
            if !got.contains(w) {
                return Err(format!("expected {kind} {w:?}, got {got:?}"));
            }
        }
        for r in &res {
            if !got.iter().any(|g| r.is_match(g)) {
                return Err(format!(
                    "expected {kind} matching {:?}, got {got:?}",
                    r.as_str()
                ));
            }
        }
        if msgs.is_empty() && res.is_empty() {
            continue;
        }
        if let Some(extra) = got
            .iter()
            .find(|g| !msgs.contains(g) && !res.iter().any(|r| r.is_match(g)))
        {
            return Err(format!("unexpected {kind} {extra:?}"));
        }
    }
    if e.no_warn && !out.warnings.is_empty() {
        return Err(format!("unexpected warnings: {:?}", out.warnings));
    }
    if e.no_info && !out.infos.is_empty() {
        return Err(format!("unexpected infos: {:?}", out.infos));
    }
    compare_value(cmd, &out.value)
}

pub fn compare_value(cmd: &EvalCmd, v: &Value) -> Result<(), String> {
    let e = &cmd.expect;
    match v {
        Value::String { s, .. } => match &e.string {
            Some(want) if want == s => Ok(()),
            other => Err(format!("got string {s:?}, expected {other:?}")),
        },
        Value::Scalar { v, .. } => match e.scalar {
            Some(want) if almost_equal(want, *v) => Ok(()),
            other => Err(format!("got scalar {v}, expected {other:?}")),
        },
        Value::Vector(samples) => {
            if e.scalar.is_some() {
                return Err("expected scalar, got vector".into());
            }
            if samples.len() != e.series.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    e.series.len(),
                    samples.len(),
                    samples
                        .iter()
                        .map(|s| format!("{} {}", s.labels, s.v))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            for (pos, s) in samples.iter().enumerate() {
                let Some(idx) = e.series.iter().position(|x| x.labels == s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result (value {})",
                        s.labels, s.v
                    ));
                };
                let want = e.series[idx].vals.first().copied().flatten();
                match want {
                    Some(w) if almost_equal(w, s.v) => {}
                    _ => return Err(format!("for {} expected {want:?}, got {}", s.labels, s.v)),
                }
                if e.ordered && idx != pos {
                    return Err(format!("{} at position {pos}, expected {idx}", s.labels));
                }
            }
            Ok(())
        }
        Value::Matrix(series) => {
            if e.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if e.scalar.is_some() {
                return Err("expected scalar, got matrix".into());
            }
            let (start, step) = match (cmd.range, e.range_vector) {
                (_, Some((from, _, step))) => (from, step),
                (Some((from, _, step)), None) => (from, step),
                (None, None) => {
                    return Err(
                        "got a matrix for an instant query without `expect range vector`".into(),
                    )
                }
            };
            if series.windows(2).any(|w| w[0].labels > w[1].labels) {
                return Err("matrix result is not sorted by labels".into());
            }
            let mut seen = HashSet::new();
            for s in series {
                let Some(exp) = e.series.iter().find(|x| x.labels == s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result: {:?}",
                        s.labels,
                        short(&s.samples)
                    ));
                };
                seen.insert(s.labels.clone());
                let want: Vec<Sample> = exp
                    .vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        v.map(|v| Sample {
                            t: start + i as i64 * step,
                            v,
                        })
                    })
                    .collect();
                let ok = want.len() == s.samples.len()
                    && want
                        .iter()
                        .zip(&s.samples)
                        .all(|(a, b)| a.t == b.t && almost_equal(a.v, b.v));
                if !ok {
                    return Err(format!(
                        "for {} expected {:?}, got {:?}",
                        s.labels,
                        short(&want),
                        short(&s.samples)
                    ));
                }
            }
            for exp in &e.series {
                if !seen.contains(&exp.labels) {
                    return Err(format!("expected metric {} not found", exp.labels));
                }
            }
            Ok(())
        }
    }
}

fn short(s: &[Sample]) -> Vec<(i64, f64)> {
    s.iter().take(12).map(|p| (p.t / 1000, p.v)).collect()
}
