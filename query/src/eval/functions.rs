//! Function calls: range functions over windows, element-wise math, label
//! manipulation, sorting, `absent`, date functions.

use chrono::{DateTime, Datelike, Timelike};
use regex::Regex;

use super::gomath::{go_max, go_min};
use super::rangefn as rf;
use super::selector::windows;
use super::{exec_err, EResult, Evaluator, Series, Steps, Val};
use crate::ast::{Call, Expr};
use crate::model::{Labels, MatchOp, METRIC_NAME};

/// Receives each output series of a selector or range function call, one
/// at a time: its labels,
/// whether `__name__` is dropped at the end, and its per-step values.
pub(crate) type SeriesSink<'s, 'a> =
    dyn FnMut(&mut Evaluator<'a>, &Labels, bool, Vec<Option<f64>>) -> EResult<()> + 's;

/// The [`SeriesSink`] of the general path: keeps every series in `out`,
/// where it stays accounted.
pub(crate) fn keep(
    out: &mut Vec<Series>,
    labels: &Labels,
    drop_name: bool,
    vals: Vec<Option<f64>>,
) -> EResult<()> {
    out.push(Series {
        labels: labels.clone(),
        drop_name,
        vals,
    });
    Ok(())
}

/// Functions whose argument is a range vector.
pub(crate) fn is_range_fn(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "changes"
            | "resets"
            | "deriv"
            | "predict_linear"
            | "double_exponential_smoothing"
            | "holt_winters"
            | "absent_over_time"
            | "present_over_time"
            | "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "last_over_time"
            | "first_over_time"
            | "quantile_over_time"
            | "mad_over_time"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time"
    )
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(inner) => unparen(inner),
        other => other,
    }
}

fn string_arg(e: &Expr) -> EResult<&str> {
    match unparen(e) {
        Expr::String(s) => Ok(s),
        _ => exec_err("expected string argument"),
    }
}

/// Labels for `absent(sel)`: the `=` matchers (a name matched twice is
/// dropped), without `__name__`.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut out = Labels::empty();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            out.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            out.remove(&m.name);
        }
    }
    out
}

/// Applies `f` to every value, marking the name for removal.
fn map_values(mut v: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    for s in &mut v {
        s.drop_name = true;
        for x in s.vals.iter_mut().flatten() {
            *x = f(*x);
        }
    }
    v
}

/// Like [`map_values`] with a per-step parameter.
fn map_values_step(mut v: Vec<Series>, f: impl Fn(f64, usize) -> Option<f64>) -> Vec<Series> {
    for s in &mut v {
        s.drop_name = true;
        for (i, x) in s.vals.iter_mut().enumerate() {
            if let Some(val) = *x {
                *x = f(val, i);
            }
        }
    }
    v.retain(|s| s.vals.iter().any(Option::is_some));
    v
}

fn simple_math(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

fn date_fn(name: &str) -> Option<fn(f64) -> f64> {
    fn dt(v: f64) -> DateTime<chrono::Utc> {
        let secs = if v.is_finite() { v as i64 } else { i64::MIN };
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }
    Some(match name {
        "minute" => |v| dt(v).minute() as f64,
        "hour" => |v| dt(v).hour() as f64,
        "day_of_week" => |v| dt(v).weekday().num_days_from_sunday() as f64,
        "day_of_month" => |v| dt(v).day() as f64,
        "day_of_year" => |v| dt(v).ordinal() as f64,
        "month" => |v| dt(v).month() as f64,
        "year" => |v| dt(v).year() as f64,
        "days_in_month" => |v| {
            let d = dt(v);
            let (y, m) = (d.year(), d.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
            let next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
            match (first, next) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            }
        },
        _ => return None,
    })
}

impl<'a> Evaluator<'a> {
    /// Evaluates a function call over all steps.
    pub(crate) fn eval_call(&mut self, c: &Call, steps: &Steps) -> EResult<Val> {
        let name = c.func.as_str();
        check_arity(c)?;
        if is_range_fn(name) {
            return self.eval_range_call(c, steps).map(Val::Vector);
        }
        match name {
            "time" => Ok(Val::Scalar(
                (0..steps.n).map(|i| steps.ts(i) as f64 / 1000.0).collect(),
            )),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; steps.n])),
            "vector" => {
                let s = self.eval_scalar(&c.args[0], steps)?;
                Ok(Val::Vector(vec![Series {
                    labels: Labels::empty(),
                    drop_name: false,
                    vals: s.into_iter().map(Some).collect(),
                }]))
            }
            "scalar" => {
                let v = self.eval_vector(&c.args[0], steps)?;
                let mut out = vec![f64::NAN; steps.n];
                for (i, o) in out.iter_mut().enumerate() {
                    let mut found = None;
                    let mut many = false;
                    for s in &v {
                        if let Some(x) = s.vals[i] {
                            if found.is_some() {
                                many = true;
                            }
                            found = Some(x);
                        }
                    }
                    if let (Some(x), false) = (found, many) {
                        *o = x;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "timestamp" => {
                if let Expr::VectorSelector(vs) = unparen(&c.args[0]) {
                    return Ok(Val::Vector(self.selector_timestamps(vs, steps)?));
                }
                let v = self.eval_vector(&c.args[0], steps)?;
                let v = map_values_step(v, |_, i| Some(steps.ts(i) as f64 / 1000.0));
                Ok(Val::Vector(v))
            }
            "absent" => {
                let v = self.eval_vector(&c.args[0], steps)?;
                let mut vals = vec![Some(1.0); steps.n];
                for s in &v {
                    for (i, x) in s.vals.iter().enumerate() {
                        if x.is_some() {
                            vals[i] = None;
                        }
                    }
                }
                let out = if vals.iter().any(Option::is_some) {
                    vec![Series {
                        labels: absent_labels(&c.args[0]),
                        drop_name: false,
                        vals,
                    }]
                } else {
                    Vec::new()
                };
                Ok(Val::Vector(out))
            }
            "label_replace" => self.label_replace(c, steps).map(Val::Vector),
            "info" => self.eval_info(c, steps).map(Val::Vector),
            "label_join" => self.label_join(c, steps).map(Val::Vector),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
                self.eval_sort(c, steps).map(Val::Vector)
            }
            "histogram_quantile" => self.histogram_quantile(c, steps).map(Val::Vector),
            "histogram_quantiles" => self.histogram_quantiles(c, steps).map(Val::Vector),
            "histogram_fraction" => self.histogram_fraction(c, steps).map(Val::Vector),
            "start" => Ok(Val::Scalar(vec![self.query_start as f64 / 1000.0; steps.n])),
            "end" => Ok(Val::Scalar(vec![self.query_end as f64 / 1000.0; steps.n])),
            "range" => Ok(Val::Scalar(vec![
                (self.query_end - self.query_start) as f64
                    / 1000.0;
                steps.n
            ])),
            "step" => Ok(Val::Scalar(vec![self.query_step as f64 / 1000.0; steps.n])),
            "min_of" | "max_of" => {
                let a = self.eval_scalar(&c.args[0], steps)?;
                let b = self.eval_scalar(&c.args[1], steps)?;
                let min = name == "min_of";
                Ok(Val::Scalar(
                    a.iter()
                        .zip(&b)
                        .map(|(&x, &y)| if min { go_min(x, y) } else { go_max(x, y) })
                        .collect(),
                ))
            }
            _ => self.eval_elementwise(c, steps).map(Val::Vector),
        }
    }

    /// Element-wise functions on an instant vector.
    fn eval_elementwise(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let name = c.func.as_str();
        if let Some(f) = simple_math(name) {
            let v = self.eval_vector(&c.args[0], steps)?;
            return Ok(map_values(v, f));
        }
        if let Some(f) = date_fn(name) {
            if c.args.is_empty() {
                let vals = (0..steps.n)
                    .map(|i| Some(f((steps.ts(i) / 1000) as f64)))
                    .collect();
                return Ok(vec![Series {
                    labels: Labels::empty(),
                    drop_name: false,
                    vals,
                }]);
            }
            let v = self.eval_vector(&c.args[0], steps)?;
            return Ok(map_values(v, f));
        }
        match name {
            "clamp" | "clamp_min" | "clamp_max" => {
                let v = self.eval_vector(&c.args[0], steps)?;
                let (lo, hi) = match name {
                    "clamp" => (
                        self.eval_scalar(&c.args[1], steps)?,
                        self.eval_scalar(&c.args[2], steps)?,
                    ),
                    "clamp_min" => (
                        self.eval_scalar(&c.args[1], steps)?,
                        vec![f64::INFINITY; steps.n],
                    ),
                    _ => (
                        vec![f64::NEG_INFINITY; steps.n],
                        self.eval_scalar(&c.args[1], steps)?,
                    ),
                };
                // Go's math.Max/Min: a NaN bound or sample gives NaN.
                Ok(map_values_step(v, |x, i| {
                    if hi[i] < lo[i] {
                        None
                    } else {
                        Some(go_max(lo[i], go_min(hi[i], x)))
                    }
                }))
            }
            "round" => {
                let v = self.eval_vector(&c.args[0], steps)?;
                let to = match c.args.get(1) {
                    Some(a) => self.eval_scalar(a, steps)?,
                    None => vec![1.0; steps.n],
                };
                Ok(map_values_step(v, |x, i| {
                    let inv = 1.0 / to[i];
                    Some((x * inv + 0.5).floor() / inv)
                }))
            }
            // Functions of native histograms: float samples are ignored, and
            // this engine has no native histogram samples yet.
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                self.eval_vector(&c.args[0], steps)?;
                Ok(Vec::new())
            }
            _ => exec_err(format!("function {name:?} is not supported")),
        }
    }

    /// Functions over a range vector: one output series per input series.
    fn eval_range_call(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let name = c.func.as_str();
        let mut out = Vec::new();
        self.range_call_each(c, steps, &mut |_, l, d, v| keep(&mut out, l, d, v))?;
        if name == "absent_over_time" {
            let mut vals = vec![Some(1.0); steps.n];
            for s in &out {
                for (i, x) in s.vals.iter().enumerate() {
                    if x.is_some() {
                        vals[i] = None;
                    }
                }
            }
            if vals.iter().all(Option::is_none) {
                return Ok(Vec::new());
            }
            return Ok(vec![Series {
                labels: absent_labels(&c.args[0]),
                drop_name: true,
                vals,
            }]);
        }
        Ok(out)
    }

    /// Evaluates the range function call `c` one input series at a time,
    /// handing each output series that has a value at some step to `sink`
    /// as (labels, drop `__name__` at the end, per-step values): the
    /// values are accounted against the sample budget, and a sink that
    /// drops them gives them back with [`Evaluator::release_samples`].
    /// `absent_over_time`'s one output is built by the caller from these.
    pub(crate) fn range_call_each(
        &mut self,
        c: &Call,
        steps: &Steps,
        sink: &mut SeriesSink<'_, 'a>,
    ) -> EResult<()> {
        let name = c.func.as_str();
        let (ri, scalar_args) = match name {
            "quantile_over_time" => (1, vec![0]),
            "predict_linear" => (0, vec![1]),
            "double_exponential_smoothing" | "holt_winters" => (0, vec![1, 2]),
            _ => (0, vec![]),
        };
        let mut params: Vec<Vec<f64>> = Vec::new();
        for &a in &scalar_args {
            params.push(self.eval_scalar(&c.args[a], steps)?);
        }
        let input = self.range_input(&c.args[ri], steps)?;
        if name == "quantile_over_time" {
            // One warning per distinct bad value, as Prometheus checks
            // every step.
            for q in params[0]
                .iter()
                .filter(|q| q.is_nan() || **q < 0.0 || **q > 1.0)
            {
                self.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    super::gomath::go_g(*q)
                ));
            }
        }
        if name == "double_exponential_smoothing" || name == "holt_winters" {
            for (&sf, &tf) in params[0].iter().zip(&params[1]) {
                if sf <= 0.0 || sf >= 1.0 {
                    return exec_err(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    ));
                }
                if tf <= 0.0 || tf >= 1.0 {
                    return exec_err(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    ));
                }
            }
        }
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        for rs in &input.series {
            self.check_deadline()?;
            self.add_samples(steps.n)?;
            let s: &[crate::model::Sample] = &rs.samples;
            let stop = self.stop();
            let vals = windows(s, steps, &input, stop, |i, w, eff| {
                apply_range_fn(name, w, steps.ts(i), eff, input.range, &params, i)
            })?;
            if vals.iter().all(Option::is_none) {
                self.release_samples(steps.n);
                continue;
            }
            if name == "rate" || name == "increase" {
                if let Some(m) = rs.labels.metric_name() {
                    if !["_total", "_sum", "_count", "_bucket"]
                        .iter()
                        .any(|suf| m.ends_with(suf))
                    {
                        self.info(format!(
                            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {m:?}"
                        ));
                    }
                }
            }
            sink(self, &rs.labels, rs.drop_name || !keep_name, vals)?;
        }
        Ok(())
    }

    fn label_replace(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let dst = string_arg(&c.args[1])?;
        let repl = string_arg(&c.args[2])?;
        let src = string_arg(&c.args[3])?;
        let re_src = string_arg(&c.args[4])?;
        let re = match Regex::new(&format!("^(?s:{re_src})$")) {
            Ok(r) => r,
            Err(_) => {
                return exec_err(format!(
                    "invalid regular expression in label_replace(): {re_src}"
                ))
            }
        };
        if !valid_label_name(dst) {
            return exec_err(format!(
                "invalid destination label name in label_replace(): {dst}"
            ));
        }
        let mut v = self.eval_vector(&c.args[0], steps)?;
        for s in &mut v {
            let val = s.labels.get(src).unwrap_or("").to_string();
            if let Some(caps) = re.captures(&val) {
                let mut res = String::new();
                caps.expand(repl, &mut res);
                s.labels.set(dst, &res);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        merge_same_labels(v)
    }

    fn label_join(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let dst = string_arg(&c.args[1])?;
        let sep = string_arg(&c.args[2])?;
        let mut srcs = Vec::new();
        for a in &c.args[3..] {
            let s = string_arg(a)?;
            if !valid_label_name(s) {
                return exec_err(format!("invalid source label name in label_join(): {s}"));
            }
            srcs.push(s);
        }
        if !valid_label_name(dst) {
            return exec_err(format!(
                "invalid destination label name in label_join(): {dst}"
            ));
        }
        let mut v = self.eval_vector(&c.args[0], steps)?;
        for s in &mut v {
            let joined: Vec<&str> = srcs.iter().map(|l| s.labels.get(l).unwrap_or("")).collect();
            let joined = joined.join(sep);
            s.labels.set(dst, &joined);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        merge_same_labels(v)
    }

    fn eval_sort(&mut self, c: &Call, steps: &Steps) -> EResult<Vec<Series>> {
        let name = c.func.as_str();
        if steps.n > 1 {
            self.warn(
                "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                    .to_string(),
            );
        }
        let mut v = self.eval_vector(&c.args[0], steps)?;
        match name {
            "sort" | "sort_desc" => {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            _ => {
                let mut names = Vec::new();
                for a in &c.args[1..] {
                    names.push(string_arg(a)?.to_string());
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for l in &names {
                        let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                        if x != y {
                            let o = natural_cmp(x, y);
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
            }
        }
        Ok(v)
    }
}

/// The parser checks arity; expressions built by hand are checked here so a
/// malformed AST is an error, not a panic.
pub(crate) fn check_arity(c: &Call) -> EResult<()> {
    let Some(sig) = crate::parser::function_sig(&c.func) else {
        return exec_err(format!("unknown function {:?}", c.func));
    };
    let n = sig.arg_types.len();
    let (min, max) = match sig.variadic {
        0 => (n, n),
        v if v < 0 => (n.saturating_sub(1), usize::MAX),
        v => (n.saturating_sub(1), n - 1 + v as usize),
    };
    if c.args.len() < min || c.args.len() > max {
        return exec_err(format!(
            "wrong number of arguments for function {:?}: got {}",
            c.func,
            c.args.len()
        ));
    }
    Ok(())
}

/// Dispatches one range function on one window.
fn apply_range_fn(
    name: &str,
    w: &[crate::model::Sample],
    ts: i64,
    eff: i64,
    range: i64,
    params: &[Vec<f64>],
    i: usize,
) -> Option<f64> {
    Some(match name {
        "rate" => return rf::extrapolated_rate(w, eff, range, true, true),
        "increase" => return rf::extrapolated_rate(w, eff, range, true, false),
        "delta" => return rf::extrapolated_rate(w, eff, range, false, false),
        "irate" => return rf::instant_value(w, true),
        "idelta" => return rf::instant_value(w, false),
        "changes" => rf::changes(w),
        "resets" => rf::resets(w),
        "deriv" => {
            if w.len() < 2 {
                return None;
            }
            rf::linear_regression(w, w[0].t).0
        }
        "predict_linear" => {
            if w.len() < 2 {
                return None;
            }
            let (slope, intercept) = rf::linear_regression(w, ts);
            slope * params[0][i] + intercept
        }
        "double_exponential_smoothing" | "holt_winters" => {
            return rf::double_exp_smoothing(w, params[0][i], params[1][i])
        }
        "absent_over_time" | "present_over_time" => 1.0,
        "avg_over_time" => rf::avg_over_time(w),
        "sum_over_time" => rf::sum_over_time(w),
        "count_over_time" => w.len() as f64,
        "min_over_time" => rf::compare_over_time(w, |c, m| c < m || m.is_nan(), false),
        "max_over_time" => rf::compare_over_time(w, |c, m| c > m || m.is_nan(), false),
        "ts_of_min_over_time" => rf::compare_over_time(w, |c, m| c <= m || m.is_nan(), true),
        "ts_of_max_over_time" => rf::compare_over_time(w, |c, m| c >= m || m.is_nan(), true),
        "ts_of_last_over_time" => w[w.len() - 1].t as f64 / 1000.0,
        "ts_of_first_over_time" => w[0].t as f64 / 1000.0,
        "stddev_over_time" => rf::variance_over_time(w).sqrt(),
        "stdvar_over_time" => rf::variance_over_time(w),
        "last_over_time" => w[w.len() - 1].v,
        "first_over_time" => w[0].v,
        "quantile_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.v).collect();
            rf::quantile(params[0][i], &mut vals)
        }
        "mad_over_time" => rf::mad_over_time(w),
        _ => return None,
    })
}

/// Prometheus 3 accepts any UTF-8 label name that is not empty.
fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

/// After relabelling: series that now share a label set are merged when
/// their points do not overlap; overlap is an error.
fn merge_same_labels(v: Vec<Series>) -> EResult<Vec<Series>> {
    let n = v.first().map(|s| s.vals.len()).unwrap_or(0);
    let mut out: Vec<Series> = Vec::with_capacity(v.len());
    let mut index: std::collections::HashMap<(Labels, bool), usize> = Default::default();
    for s in v {
        match index.get(&(s.labels.clone(), s.drop_name)) {
            Some(&i) => {
                for k in 0..n {
                    if let Some(x) = s.vals[k] {
                        if out[i].vals[k].is_some() {
                            return exec_err(
                                "vector cannot contain metrics with the same labelset",
                            );
                        }
                        out[i].vals[k] = Some(x);
                    }
                }
            }
            None => {
                index.insert((s.labels.clone(), s.drop_name), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Natural ("human") string order: digit runs compare numerically.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}
