//! Parser and executor for the PromQL `.test` script format (see
//! `../shared/promql-testdata/README.md`).

use std::collections::HashSet;

use model::Labels;
use query::ast::{AtModifier, Expr};
use query::engine::{Engine, EngineOptions, QueryError, Value};
use query::mem::MemQueryable;

use crate::check::{check_result, compare_value};
use crate::format::{build_eval, parse_duration, parse_series_line, EvalCmd};

/// Upstream's test parser (`promqltest.TestParserOpts`) enables the
/// experimental functions and duration expressions for every file.
const PARSE_OPTS: query::parser::ParseOptions = query::parser::ParseOptions {
    experimental_functions: true,
    duration_expr_functions: true,
    ..query::parser::ParseOptions::NONE
};

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

/// The matchers of every selector in `e`.
fn selectors<'e>(e: &'e Expr, out: &mut Vec<&'e [model::Matcher]>) {
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
                if native
                    && std::env::var("PROMQL_TEST_LIST_NATIVE").is_ok()
                    && !cmd.expect.series.iter().any(|s| s.native)
                {
                    println!("NATIVEFLOAT {}:{} {:?}", self.file, cmd.line, r);
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
        parse: PARSE_OPTS,
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
