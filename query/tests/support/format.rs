//! Parsing of the `.test` format: durations, series lines with the
//! expanding value notation, `eval` headers and `expect` lines.

use std::collections::HashMap;

use model::{Labels, STALE_NAN_BITS};

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

pub fn parse_float(s: &str) -> Option<f64> {
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
pub struct SeriesLine {
    pub labels: Labels,
    pub vals: Vec<Option<f64>>,
    pub native: bool,
}

pub fn parse_series_line(line: &str) -> Option<SeriesLine> {
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
pub struct Expect {
    pub fail: bool,
    pub fail_msg: Option<String>,
    pub fail_regex: Option<String>,
    pub ordered: bool,
    pub warn: bool,
    pub info: bool,
    /// `expect warn msg: ...` texts, position suffix `(1:19)` removed.
    pub warn_msgs: Vec<String>,
    /// `expect info msg: ...` texts, position suffix removed.
    pub info_msgs: Vec<String>,
    /// `expect warn regex: ...`, a trailing position pattern removed.
    pub warn_regexes: Vec<String>,
    /// `expect info regex: ...`, a trailing position pattern removed.
    pub info_regexes: Vec<String>,
    pub no_warn: bool,
    pub no_info: bool,
    pub string: Option<String>,
    /// `expect range vector from .. to .. step ..`.
    pub range_vector: Option<(i64, i64, i64)>,
    pub scalar: Option<f64>,
    pub series: Vec<SeriesLine>,
}

pub struct EvalCmd {
    pub line: usize,
    pub query: String,
    pub range: Option<(i64, i64, i64)>,
    pub at: i64,
    pub expect: Expect,
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
        "warn" => {
            e.warn = true;
            if let Some(m) = arg.strip_prefix("msg:") {
                e.warn_msgs.push(strip_position(m.trim()));
            } else if let Some(r) = arg.strip_prefix("regex:") {
                e.warn_regexes.push(strip_position_regex(r.trim()));
            }
        }
        "info" => {
            e.info = true;
            if let Some(m) = arg.strip_prefix("msg:") {
                e.info_msgs.push(strip_position(m.trim()));
            } else if let Some(r) = arg.strip_prefix("regex:") {
                e.info_regexes.push(strip_position_regex(r.trim()));
            }
        }
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

pub fn build_eval(line: usize, header: &str, block: &[String]) -> Option<EvalCmd> {
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

/// Removes a trailing ` (line:col)` position from an annotation text: the
/// engine's annotations carry no positions (the AST has none).
fn strip_position(m: &str) -> String {
    if let Some(i) = m.rfind(" (") {
        let tail = &m[i + 2..];
        if tail.ends_with(')')
            && tail[..tail.len() - 1]
                .split(':')
                .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        {
            return m[..i].to_string();
        }
    }
    m.to_string()
}

/// Removes a trailing position pattern ` \(1:21\)` or ` \([0-9]+:[0-9]+\)`
/// from an annotation regex, as [`strip_position`] does for texts.
fn strip_position_regex(r: &str) -> String {
    if r.ends_with("\\)") {
        if let Some(i) = r.rfind(" \\(") {
            return r[..i].to_string();
        }
    }
    r.to_string()
}
