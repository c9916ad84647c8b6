//! Parser and executor for the PromQL `.test` script format (see
//! `../shared/promql-testdata/README.md`).

use std::collections::{HashMap, HashSet};

use query::ast::{AtModifier, Expr};
use query::engine::{Engine, EngineOptions, QueryError, QueryOutput, Value};
use query::mem::MemQueryable;
use query::model::{is_stale_nan, Labels, Sample, STALE_NAN_BITS};

/// Upstream's test parser enables the experimental syntax.
const PARSE_OPTS: query::parser::ParseOptions = query::parser::ParseOptions {
    duration_expr_functions: true,
};

/// Relative error allowed for sample values (upstream `defaultEpsilon`).
const EPSILON: f64 = 0.000001;

/// Functions whose result depends on the evaluation time itself; upstream
/// does not run the `@` variants of queries using them.
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

/// Counters of one file (or the total).
#[derive(Default, Debug)]
pub struct FileStats {
    pub passed: usize,
    pub failed: usize,
    pub skipped_native: usize,
    pub skipped_listed: usize,
    pub skipped_would_pass: usize,
    pub failures: Vec<String>,
}

impl FileStats {
    pub fn add(&mut self, o: &FileStats) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped_native += o.skipped_native;
        self.skipped_listed += o.skipped_listed;
        self.skipped_would_pass += o.skipped_would_pass;
    }
}

/// The skip list: `file.test:LINE reason` or `file.test reason` (whole file).
pub struct Skips {
    lines: HashSet<(String, usize)>,
    files: HashSet<String>,
}

impl Skips {
    pub fn parse(text: &str) -> Skips {
        let mut s = Skips {
            lines: HashSet::new(),
            files: HashSet::new(),
        };
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let key = l.split_whitespace().next().unwrap_or("");
            match key.split_once(':') {
                Some((f, n)) => {
                    if let Ok(n) = n.parse() {
                        s.lines.insert((f.to_string(), n));
                    }
                }
                None => {
                    s.files.insert(key.to_string());
                }
            }
        }
        s
    }

    fn contains(&self, file: &str, line: usize) -> bool {
        self.files.contains(file) || self.lines.contains(&(file.to_string(), line))
    }
}

/// Parses `1h30m`, `10s`, `0`, `5m`, `100ms`, a bare number = seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n * 1000);
    }
    let (mut total, mut num, mut i) = (0i64, String::new(), 0usize);
    let b = s.as_bytes();
    let mut any = false;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_digit() {
            num.push(c);
            i += 1;
            continue;
        }
        let (unit, len) = if s[i..].starts_with("ms") {
            (1, 2)
        } else {
            let u = match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 7 * 86_400_000,
                'y' => 365 * 86_400_000,
                _ => return None,
            };
            (u, 1)
        };
        let n: i64 = num.parse().ok()?;
        total += n * unit;
        num.clear();
        i += len;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        "stale" => Some(f64::from_bits(STALE_NAN_BITS)),
        _ => s.parse().ok(),
    }
}

/// Expands one sequence item (`1+2x3`, `_x3`, `5x2`, `stale`, `7`).
fn expand_item(item: &str, out: &mut Vec<Option<f64>>) -> Option<()> {
    if item == "_" {
        out.push(None);
        return Some(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().ok()?;
        out.extend(std::iter::repeat_n(None, n));
        return Some(());
    }
    // Split off the `xN` repetition (the last 'x' followed by digits only).
    if let Some(xi) = item.rfind('x') {
        let times = &item[xi + 1..];
        if !times.is_empty() && times.bytes().all(|b| b.is_ascii_digit()) && xi > 0 {
            let times: usize = times.parse().ok()?;
            let head = &item[..xi];
            // Find the operator between start and delta (not a sign, not an exponent's).
            let bytes = head.as_bytes();
            let mut op_at = None;
            for i in 1..bytes.len() {
                if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                    op_at = Some(i);
                }
            }
            return match op_at {
                None => {
                    let v = parse_float(head)?;
                    out.extend(std::iter::repeat_n(Some(v), times + 1));
                    Some(())
                }
                Some(i) => {
                    let mut v = parse_float(&head[..i])?;
                    let d = parse_float(&head[i..])?;
                    out.push(Some(v));
                    for _ in 0..times {
                        v += d;
                        out.push(Some(v));
                    }
                    Some(())
                }
            };
        }
    }
    out.push(Some(parse_float(item)?));
    Some(())
}

/// Parses a Go-style quoted string at the start of `s`; returns the value and
/// the rest.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next()?;
    if q != '"' && q != '\'' && q != '`' {
        return None;
    }
    let mut out = String::new();
    let mut it = s[1..].char_indices();
    while let Some((i, c)) = it.next() {
        if c == q {
            return Some((out, &s[1 + i + 1..]));
        }
        if c == '\\' && q != '`' {
            let (_, e) = it.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = (0..2).filter_map(|_| it.next().map(|x| x.1)).collect();
                    out.push(u8::from_str_radix(&h, 16).ok()? as char);
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| it.next().map(|x| x.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Parses `name{l="v", ...}` (or `{...}`), returning the labels and the rest.
pub fn parse_metric(s: &str) -> Option<(Labels, &str)> {
    let s = s.trim_start();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let mut pairs: Vec<(String, String)> = Vec::new();
    if name_end > 0 {
        pairs.push(("__name__".into(), s[..name_end].to_string()));
    }
    let mut rest = &s[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (lname, r) = if rest.starts_with('"') {
                parse_quoted(rest)?
            } else {
                let e = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
                (rest[..e].to_string(), &rest[e..])
            };
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix('=') {
                let (v, r) = parse_quoted(r.trim_start())?;
                pairs.push((lname, v));
                rest = r.trim_start();
            } else {
                // A quoted metric name inside the braces.
                pairs.push(("__name__".into(), lname));
                rest = r;
            }
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
    } else if name_end == 0 {
        return None;
    }
    Some((Labels::from_pairs(pairs), rest))
}

/// A series line: labels and expanded values; `native` when it holds `{{`.
struct SeriesLine {
    labels: Labels,
    vals: Vec<Option<f64>>,
    native: bool,
}

fn parse_series_line(line: &str) -> Option<SeriesLine> {
    let (labels, rest) = parse_metric(line)?;
    if rest.contains("{{") {
        return Some(SeriesLine {
            labels,
            vals: Vec::new(),
            native: true,
        });
    }
    let mut vals = Vec::new();
    for item in rest.split_whitespace() {
        expand_item(item, &mut vals)?;
    }
    Some(SeriesLine {
        labels,
        vals,
        native: false,
    })
}

#[derive(Default)]
struct Expect {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    ordered: bool,
    warn: bool,
    info: bool,
    no_warn: bool,
    no_info: bool,
    string: Option<String>,
    /// `expect range vector from .. to .. step ..`.
    range_vector: Option<(i64, i64, i64)>,
    scalar: Option<f64>,
    series: Vec<SeriesLine>,
}

struct EvalCmd {
    line: usize,
    query: String,
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expect,
}

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

fn parse_expect_line(l: &str, e: &mut Expect) -> Option<()> {
    let rest = l.strip_prefix("expect")?.trim_start();
    if let Some(r) = rest.strip_prefix("range vector") {
        let r = r.trim().strip_prefix("from")?.trim();
        let (from, r) = r.split_once(" to ")?;
        let (to, step) = r.split_once(" step ")?;
        e.range_vector = Some((
            parse_duration(from)?,
            parse_duration(to)?,
            parse_duration(step)?,
        ));
        return Some(());
    }
    if let Some(r) = rest.strip_prefix("string") {
        let (s, _) = parse_quoted(r.trim())?;
        e.string = Some(s);
        return Some(());
    }
    let (kind, arg) = match rest.split_once(char::is_whitespace) {
        Some((k, a)) => (k, a.trim()),
        None => (rest, ""),
    };
    match kind {
        "fail" => {
            e.fail = true;
            if let Some(m) = arg.strip_prefix("msg:") {
                e.fail_msg = Some(m.trim().to_string());
            } else if let Some(m) = arg.strip_prefix("regex:") {
                e.fail_regex = Some(m.trim().to_string());
            }
        }
        "ordered" => e.ordered = true,
        "warn" => e.warn = true,
        "info" => e.info = true,
        "no_warn" => e.no_warn = true,
        "no_info" => e.no_info = true,
        _ => return None,
    }
    Some(())
}

/// Query, range `(from, to, step)`, instant time, expectations from the header.
type EvalHeader = (String, Option<(i64, i64, i64)>, i64, Expect);

fn parse_eval_header(l: &str) -> Option<EvalHeader> {
    let (cmd, rest) = l.split_once(char::is_whitespace)?;
    let mut e = Expect::default();
    match cmd {
        "eval" => {}
        "eval_fail" => e.fail = true,
        "eval_warn" => e.warn = true,
        "eval_info" => e.info = true,
        "eval_ordered" => e.ordered = true,
        _ => return None,
    }
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start().strip_prefix("at")?.trim_start();
        let (t, q) = r.split_once(char::is_whitespace)?;
        return Some((q.trim().to_string(), None, parse_duration(t)?, e));
    }
    let r = rest
        .strip_prefix("range")?
        .trim_start()
        .strip_prefix("from")?
        .trim_start();
    let (from, r) = r.split_once(char::is_whitespace)?;
    let r = r.trim_start().strip_prefix("to")?.trim_start();
    let (to, r) = r.split_once(char::is_whitespace)?;
    let r = r.trim_start().strip_prefix("step")?.trim_start();
    let (step, q) = r.split_once(char::is_whitespace)?;
    let (from, to, step) = (
        parse_duration(from)?,
        parse_duration(to)?,
        parse_duration(step)?,
    );
    Some((q.trim().to_string(), Some((from, to, step)), from, e))
}

/// Sets `@ ts` on every selector and subquery lacking one (not below a
/// subquery that has one). Returns false when the query uses a function
/// whose result depends on the evaluation time.
fn add_at(e: &mut Expr, ts: i64) -> bool {
    match e {
        Expr::Number(_) | Expr::String(_) => true,
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert(AtModifier::Timestamp(ts));
            true
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.at.get_or_insert(AtModifier::Timestamp(ts));
            true
        }
        Expr::Subquery(sq) => {
            if sq.at.is_some() {
                return !uses_unsafe(&sq.expr);
            }
            // Upstream leaves everything below a subquery with `@` alone.
            sq.at = Some(AtModifier::Timestamp(ts));
            !uses_unsafe(&sq.expr)
        }
        Expr::Paren(x) | Expr::Unary(_, x) => add_at(x, ts),
        Expr::Binary(b) => add_at(&mut b.lhs, ts) & add_at(&mut b.rhs, ts),
        Expr::Aggregate(a) => {
            let p = a.param.as_mut().map(|p| add_at(p, ts)).unwrap_or(true);
            p & add_at(&mut a.expr, ts)
        }
        Expr::Call(c) => {
            let mut ok = !AT_UNSAFE.contains(&c.func.as_str());
            for a in &mut c.args {
                ok &= add_at(a, ts);
            }
            ok
        }
    }
}

fn uses_unsafe(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => AT_UNSAFE.contains(&c.func.as_str()) || c.args.iter().any(uses_unsafe),
        Expr::Paren(x) | Expr::Unary(_, x) => uses_unsafe(x),
        Expr::Binary(b) => uses_unsafe(&b.lhs) || uses_unsafe(&b.rhs),
        Expr::Aggregate(a) => uses_unsafe(&a.expr) || a.param.as_deref().is_some_and(uses_unsafe),
        Expr::Subquery(sq) => uses_unsafe(&sq.expr),
        _ => false,
    }
}

fn check_result(cmd: &EvalCmd, res: Result<QueryOutput, QueryError>) -> Result<(), String> {
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
    if e.no_warn && !out.warnings.is_empty() {
        return Err(format!("unexpected warnings: {:?}", out.warnings));
    }
    if e.no_info && !out.infos.is_empty() {
        return Err(format!("unexpected infos: {:?}", out.infos));
    }
    compare_value(cmd, &out.value)
}

fn compare_value(cmd: &EvalCmd, v: &Value) -> Result<(), String> {
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
                if !seen.contains(&exp.labels) && exp.vals.iter().any(Option::is_some) {
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

/// The matchers of every selector in `e`.
fn selectors<'e>(e: &'e Expr, out: &mut Vec<&'e [query::model::Matcher]>) {
    match e {
        Expr::VectorSelector(vs) => out.push(&vs.matchers),
        Expr::MatrixSelector(ms) => out.push(&ms.vs.matchers),
        Expr::Subquery(sq) => selectors(&sq.expr, out),
        Expr::Paren(x) | Expr::Unary(_, x) => selectors(x, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Call(c) => c.args.iter().for_each(|a| selectors(a, out)),
        Expr::Number(_) | Expr::String(_) => {}
    }
}

struct Runner<'a> {
    file: &'a str,
    store: MemQueryable,
    native_series: Vec<Labels>,
    engine: Engine,
    skips: &'a Skips,
    verbose: bool,
    stats: FileStats,
}

impl Runner<'_> {
    fn load(&mut self, interval: i64, lines: &[String], nhcb: bool) {
        for l in lines {
            if l.split_whitespace()
                .next()
                .is_some_and(|m| m.ends_with("@st"))
            {
                // Start-timestamp lines (experimental; the file is skipped).
                continue;
            }
            let Some(s) = parse_series_line(l) else {
                self.stats
                    .failures
                    .push(format!("{}: cannot parse series line {l:?}", self.file));
                continue;
            };
            let name = s.labels.metric_name().unwrap_or("").to_string();
            if s.native {
                self.native_series.push(s.labels.clone());
                continue;
            }
            if nhcb {
                for suf in ["_bucket", "_count", "_sum"] {
                    if let Some(base) = name.strip_suffix(suf) {
                        let mut l = s.labels.clone();
                        l.set("__name__", base);
                        l.remove("le");
                        self.native_series.push(l);
                    }
                }
            }
            for (i, v) in s.vals.iter().enumerate() {
                if let Some(v) = v {
                    self.store.add(s.labels.clone(), i as i64 * interval, *v);
                }
            }
        }
    }

    /// Whether the eval touches native histogram data: expects a `{{...}}`
    /// result, or one of its selectors matches a native series.
    fn is_native(&self, cmd: &EvalCmd) -> bool {
        if cmd.expect.series.iter().any(|s| s.native) {
            return true;
        }
        let Ok(expr) = query::parser::parse_with(&cmd.query, PARSE_OPTS) else {
            // Unparsable (e.g. native-histogram-only operators): fall back to
            // whether the text names a native series.
            return self
                .native_series
                .iter()
                .any(|l| l.metric_name().is_some_and(|n| cmd.query.contains(n)));
        };
        let mut sels = Vec::new();
        selectors(&expr, &mut sels);
        sels.iter().any(|ms| {
            self.native_series
                .iter()
                .any(|l| ms.iter().all(|m| m.matches_labels(l)))
        })
    }

    async fn run_eval(&mut self, cmd: EvalCmd) {
        let native = self.is_native(&cmd);
        let listed = self.skips.contains(self.file, cmd.line);
        let res = self.exec(&cmd).await;
        let tag = format!("{}:{} {}", self.file, cmd.line, cmd.query);
        match (native, listed, res) {
            (true, _, r) | (false, true, r) => {
                if native {
                    self.stats.skipped_native += 1;
                } else {
                    self.stats.skipped_listed += 1;
                }
                if r.is_ok() {
                    self.stats.skipped_would_pass += 1;
                } else if self.verbose {
                    println!("    skipped, fails: {tag}: {}", r.err().unwrap_or_default());
                }
            }
            (false, false, Ok(())) => self.stats.passed += 1,
            (false, false, Err(m)) => {
                self.stats.failed += 1;
                self.stats.failures.push(format!("{tag}: {m}"));
            }
        }
    }

    async fn exec(&self, cmd: &EvalCmd) -> Result<(), String> {
        let expr = match query::parser::parse_with(&cmd.query, PARSE_OPTS) {
            Ok(e) => e,
            Err(err) => {
                return check_result(cmd, Err(QueryError::Parse(err)));
            }
        };
        if let Some((from, to, step)) = cmd.range {
            let r = self
                .engine
                .range_expr(&self.store, &expr, from, to, step)
                .await;
            return check_result(cmd, r);
        }
        self.instant_case(cmd, &expr, cmd.at).await?;
        // The `@` variants (upstream's atModifierTestCases).
        let mut at_expr = expr.clone();
        if !add_at(&mut at_expr, cmd.at) {
            return Ok(());
        }
        let ts = cmd.at;
        let times: Vec<i64> = if ts == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
        };
        for t in times {
            self.instant_case(cmd, &at_expr, t).await.map_err(|m| {
                format!(
                    "with @ {}s evaluated at {}s: {m}",
                    ts as f64 / 1000.0,
                    t as f64 / 1000.0
                )
            })?;
        }
        Ok(())
    }

    /// One instant evaluation, then (as upstream) the same query as a range
    /// query from t-1m to t+1m whose middle step must give the same result.
    async fn instant_case(&self, cmd: &EvalCmd, expr: &Expr, t: i64) -> Result<(), String> {
        let r = self.engine.instant_expr(&self.store, expr, t).await;
        let failed = r.is_err();
        check_result(cmd, r)?;
        let e = &cmd.expect;
        if failed
            || e.range_vector.is_some()
            || e.string.is_some()
            || e.ordered
            || ["start()", "end()", "range()", "step()"]
                .iter()
                .any(|f| cmd.query.contains(f))
        {
            return Ok(());
        }
        let r = self
            .engine
            .range_expr(&self.store, expr, t - 60_000, t + 60_000, 60_000)
            .await
            .map_err(|err| format!("range mode: unexpected error: {err}"))?;
        let Value::Matrix(m) = r.value else {
            return Err("range mode: result is not a matrix".into());
        };
        let samples: Vec<query::engine::InstantSample> = m
            .iter()
            .filter_map(|s| {
                s.samples
                    .iter()
                    .find(|p| p.t == t)
                    .map(|p| query::engine::InstantSample {
                        labels: s.labels.clone(),
                        t,
                        v: p.v,
                    })
            })
            .collect();
        let v = if e.scalar.is_some() {
            match samples.first() {
                Some(s) => Value::Scalar { t, v: s.v },
                None => return Err("range mode: no scalar value at the middle step".into()),
            }
        } else {
            Value::Vector(samples)
        };
        compare_value(cmd, &v).map_err(|m| format!("range mode: {m}"))
    }
}

/// Runs one test file.
pub async fn run_file(file: &str, text: &str, skips: &Skips, verbose: bool) -> FileStats {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let opts = EngineOptions {
        max_samples: 50_000_000,
        ..EngineOptions::default()
    };
    let mut r = Runner {
        file,
        store: MemQueryable::new(),
        native_series: Vec::new(),
        engine: Engine::new(opts),
        skips,
        verbose,
        stats: FileStats::default(),
    };
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        if first == "clear" {
            r.store.clear();
            r.native_series.clear();
            i += 1;
            continue;
        }
        // The block of non-empty lines after the command.
        let mut j = i + 1;
        while j < lines.len() && !lines[j].is_empty() {
            j += 1;
        }
        let block: Vec<String> = lines[i + 1..j].to_vec();
        if first == "load" || first == "load_with_nhcb" {
            match l.split_whitespace().nth(1).and_then(parse_duration) {
                Some(iv) => r.load(iv, &block, first == "load_with_nhcb"),
                None => r
                    .stats
                    .failures
                    .push(format!("{file}:{}: bad load line {l:?}", i + 1)),
            }
        } else if first.starts_with("eval") {
            match build_eval(i + 1, l, &block) {
                Some(cmd) => r.run_eval(cmd).await,
                None => {
                    r.stats.failed += 1;
                    r.stats
                        .failures
                        .push(format!("{file}:{}: cannot parse eval block {l:?}", i + 1));
                }
            }
        } else {
            r.stats
                .failures
                .push(format!("{file}:{}: unknown command {l:?}", i + 1));
        }
        i = j;
    }
    r.stats
}

fn build_eval(line: usize, header: &str, block: &[String]) -> Option<EvalCmd> {
    let (query, range, at, mut expect) = parse_eval_header(header)?;
    let mut expected: HashMap<Labels, ()> = HashMap::new();
    for l in block {
        if l.split_whitespace().next() == Some("expect") {
            parse_expect_line(l, &mut expect)?;
            continue;
        }
        if let Some(v) = parse_float(l.trim()) {
            expect.scalar = Some(v);
            continue;
        }
        let s = parse_series_line(l)?;
        expected.insert(s.labels.clone(), ());
        expect.series.push(s);
    }
    let at = match expect.range_vector {
        Some((_, to, _)) => to,
        None => at,
    };
    Some(EvalCmd {
        line,
        query,
        range,
        at,
        expect,
    })
}
