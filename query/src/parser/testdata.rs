//! Parses every `eval` query of Prometheus' PromQL test files and checks
//! that printing round-trips: `parse(print(e)) == e` (matchers compared as
//! sets) and printing is idempotent.

use std::path::PathBuf;

use super::parse_with;
use crate::ast::Expr;

fn testdata_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/promql-testdata"
    ))
}

/// `(line number, query, expected to fail)` for each eval in a test file.
pub(crate) fn eval_queries(text: &str) -> Vec<(usize, String, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, kind) = match words.as_slice() {
            [cmd, kind, ..] if cmd.starts_with("eval") => (*cmd, *kind),
            _ => continue,
        };
        // Words before the query: `instant at T` or `range from A to B step S`.
        let skip = if kind == "instant" { 3 } else { 7 };
        let mut rest = line.trim_start();
        for _ in 0..=skip {
            rest = rest.trim_start();
            rest = rest.find(char::is_whitespace).map_or("", |n| &rest[n..]);
        }
        let query = rest.trim().to_string();
        let expect_fail = cmd == "eval_fail"
            || lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with(' ') || l.starts_with('\t'))
                .any(|l| l.trim_start().starts_with("expect fail"));
        out.push((i + 1, query, expect_fail));
    }
    out
}

/// The expression with every selector's matchers sorted, so ASTs that
/// differ only in matcher order compare equal.
fn normalized(e: &Expr) -> String {
    let mut e = e.clone();
    sort_matchers(&mut e);
    format!("{e:?}")
}

fn sort_matchers(e: &mut Expr) {
    let key = |m: &crate::model::Matcher| m.to_string();
    match e {
        Expr::VectorSelector(vs) => vs.matchers.sort_by_key(key),
        Expr::MatrixSelector(ms) => ms.vs.matchers.sort_by_key(key),
        Expr::Subquery(sq) => sort_matchers(&mut sq.expr),
        Expr::Paren(x) | Expr::Unary(_, x) => sort_matchers(x),
        Expr::Binary(b) => {
            sort_matchers(&mut b.lhs);
            sort_matchers(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            sort_matchers(&mut a.expr);
            if let Some(p) = &mut a.param {
                sort_matchers(p);
            }
        }
        Expr::Call(c) => c.args.iter_mut().for_each(sort_matchers),
        Expr::Number(_) | Expr::String(_) => {}
    }
}

/// Checks one query; returns an error description on failure.
pub(crate) fn check_round_trip(q: &str) -> Result<(), String> {
    let opts = super::extended::all_options();
    let e = parse_with(q, opts).map_err(|err| format!("parse: {err}"))?;
    let printed = e.to_string();
    let e2 = parse_with(&printed, opts).map_err(|err| format!("re-parse of {printed:?}: {err}"))?;
    if normalized(&e) != normalized(&e2) {
        return Err(format!("round trip changed the AST: {printed:?} -> {e2}"));
    }
    if e2.to_string() != printed {
        return Err(format!("printing not idempotent: {printed:?} vs {e2}"));
    }
    Ok(())
}

#[test]
fn every_testdata_query_round_trips() {
    let dir = testdata_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the Prometheus test files in {}",
        dir.display()
    );
    let (mut ok, mut gated, mut unsupported, mut failures) = (0, 0, 0, Vec::new());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for (line, q, expect_fail) in eval_queries(&text) {
            if expect_fail {
                continue;
            }
            match check_round_trip(&q) {
                Ok(()) => ok += 1,
                // Experimental syntax Prometheus gates behind feature flags
                // is rejected on purpose, with this wording.
                Err(msg) if msg.starts_with("parse:") && msg.contains("experimental") => gated += 1,
                // Native histogram syntax is out of scope for now.
                Err(msg) if msg.contains("native histogram trim operator") => unsupported += 1,
                Err(msg) => failures.push(format!("{name}:{line}: {q}\n    {msg}")),
            }
        }
    }
    eprintln!(
        "{ok} queries round-trip, {gated} rejected as experimental, \
         {unsupported} use histogram trim operators, {} failed",
        failures.len()
    );
    assert!(ok > 1500, "too few queries parsed: {ok}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
