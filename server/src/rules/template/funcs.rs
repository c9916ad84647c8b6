//! The template functions: Go's builtins (`eq`, `printf`, `len`, ...) and
//! Prometheus' (`query`, `first`, `value`, `label`, `humanize*`, `title`,
//! `reReplaceAll`, `match`, `args`, `safeHtml`, `stripPort`, `stripDomain`,
//! `graphLink`, `tableLink`, `externalURL`, `pathPrefix`, ...), with
//! Prometheus' output formats.

use std::collections::BTreeMap;

use super::gofmt::{format_g, sprintf};
use super::{Env, Value};

const NAMES: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toUpper",
    "toLower",
    "title",
    "reReplaceAll",
    "match",
    "args",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "graphLink",
    "tableLink",
    "externalURL",
    "pathPrefix",
    "parseDuration",
];

/// Whether a function of this name exists.
pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(args: &[Value], n: usize, f: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_str(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("expected string; found {}", other.to_go_string())),
    }
}

/// Prometheus' `convertToFloat`: numbers and numeric strings.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => crate::rules::model::parse_go_float(s)
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        other => Err(format!("can't convert {} to float", other.to_go_string())),
    }
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use Value::*;
    let o = match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (Int(_) | Float(_), Int(_) | Float(_)) => to_float(a)?
            .partial_cmp(&to_float(b)?)
            .unwrap_or(std::cmp::Ordering::Less),
        (Str(x), Str(y)) => x.cmp(y),
        _ => return Err("incompatible types for comparison".into()),
    };
    Ok(o)
}

fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        _ => Ok(cmp(a, b)? == std::cmp::Ordering::Equal),
    }
}

/// `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus' `humanize`: SI prefixes, `%.4g`.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_g(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus' `humanize1024`: binary prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_g(v, Some(4));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus' `humanizeDuration`: `1d 2h 3m 4s`, or `1.5s`, `500ms`.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return format_g(v, Some(4));
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", format_g(v, Some(4)))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4)))
}

/// Prometheus' `humanizeTimestamp`: the float seconds become nanoseconds,
/// then a millisecond `model.Time`, printed as Go prints a UTC time.
fn humanize_timestamp(v: f64) -> String {
    let nanos = v * 1e9;
    if !v.is_finite() || nanos >= i64::MAX as f64 || nanos < i64::MIN as f64 {
        return format_g(v, Some(4));
    }
    let ms = (nanos as i64) / 1_000_000;
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let sub = ms.rem_euclid(1000);
            if sub > 0 {
                let frac = format!("{sub:03}");
                s.push('.');
                s.push_str(frac.trim_end_matches('0'));
            }
            s.push_str(" +0000 UTC");
            s
        }
        None => format_g(v, Some(4)),
    }
}

/// `net.SplitHostPort`, roughly.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = hp.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp.to_string(), String::new()));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("").to_string();
    if port.is_empty() {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn sample_of(v: &Value) -> Result<&super::QuerySample, String> {
    match v {
        Value::Sample(s) => Ok(s),
        other => Err(format!(
            "expected a query result sample; found {}",
            other.to_go_string()
        )),
    }
}

fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Calls function `f`.
pub fn call(f: &str, args: &[Value], env: &Env<'_>) -> Result<Value, String> {
    let s = |v: String| Ok(Value::Str(v));
    match f {
        "and" => Ok(args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "or" => Ok(args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "not" => {
            want(args, 1, f)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if eq(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(args, 2, f)?;
            use std::cmp::Ordering::*;
            let r = if f == "ne" {
                !eq(&args[0], &args[1])?
            } else {
                let o = cmp(&args[0], &args[1])?;
                match f {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                }
            };
            Ok(Value::Bool(r))
        }
        "len" => {
            want(args, 1, f)?;
            Ok(Value::Int(match &args[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                other => return Err(format!("len of type {}", other.to_go_string())),
            }))
        }
        "index" => {
            let mut v = args.first().cloned().ok_or("index of nothing")?;
            for k in &args[1..] {
                v = match (v, k) {
                    (Value::Map(mut m), Value::Str(k)) => m.remove(k).unwrap_or(Value::Nil),
                    (Value::List(l), Value::Int(i)) => l
                        .get(*i as usize)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    _ => return Err("can't index item".into()),
                };
            }
            Ok(v)
        }
        "print" => s(sprint(args)),
        "println" => s(format!(
            "{}\n",
            args.iter()
                .map(|a| a.to_go_string())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        "printf" => {
            let fmt = as_str(args.first().ok_or("printf needs a format")?)?;
            s(sprintf(&fmt, &args[1..]))
        }
        "html" => s(html_escape(&sprint(args))),
        "js" => s(sprint(args)
            .replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('"', "\\\"")),
        "urlquery" => s(query_escape(&sprint(args))),
        "query" => {
            want(args, 1, f)?;
            let q = as_str(&args[0])?;
            let querier = env
                .querier
                .ok_or("no query engine available to templates here")?;
            let res = querier.query(&q, env.ts_ms)?;
            Ok(Value::List(res.into_iter().map(Value::Sample).collect()))
        }
        "first" => {
            want(args, 1, f)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".into()),
                other => Err(format!("first() of non-list {}", other.to_go_string())),
            }
        }
        "label" => {
            want(args, 2, f)?;
            let name = as_str(&args[0])?;
            s(sample_of(&args[1])?
                .labels
                .get(&name)
                .cloned()
                .unwrap_or_default())
        }
        "value" => {
            want(args, 1, f)?;
            Ok(Value::Float(sample_of(&args[0])?.value))
        }
        "strvalue" => {
            want(args, 1, f)?;
            s(sample_of(&args[0])?
                .labels
                .get("__value__")
                .cloned()
                .unwrap_or_default())
        }
        "sortByLabel" => {
            want(args, 2, f)?;
            let name = as_str(&args[0])?;
            let Value::List(mut l) = args[1].clone() else {
                return Err("sortByLabel of non-list".into());
            };
            l.sort_by_key(|v| match v {
                Value::Sample(s) => s.labels.get(&name).cloned().unwrap_or_default(),
                _ => String::new(),
            });
            Ok(Value::List(l))
        }
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" => {
            want(args, 1, f)?;
            let v = to_float(&args[0])?;
            s(match f {
                "humanize" => humanize(v),
                "humanize1024" => humanize1024(v),
                "humanizeDuration" => humanize_duration(v),
                "humanizePercentage" => format!("{}%", format_g(v * 100.0, Some(4))),
                _ => humanize_timestamp(v),
            })
        }
        "toUpper" | "toLower" | "title" | "safeHtml" | "stripPort" | "stripDomain"
        | "graphLink" | "tableLink" => {
            want(args, 1, f)?;
            let a = as_str(&args[0])?;
            s(match f {
                "toUpper" => a.to_uppercase(),
                "toLower" => a.to_lowercase(),
                "title" => title(&a),
                "safeHtml" => a,
                "stripPort" => split_host_port(&a).map(|(h, _)| h).unwrap_or(a),
                "stripDomain" => strip_domain(&a),
                "graphLink" => format!("/graph?g0.expr={}&g0.tab=0", query_escape(&a)),
                _ => format!("/graph?g0.expr={}&g0.tab=1", query_escape(&a)),
            })
        }
        "reReplaceAll" => {
            want(args, 3, f)?;
            let re = regex::Regex::new(&as_str(&args[0])?).map_err(|e| e.to_string())?;
            s(
                re.replace_all(&as_str(&args[2])?, as_str(&args[1])?.as_str())
                    .into_owned(),
            )
        }
        "match" => {
            want(args, 2, f)?;
            let re = regex::Regex::new(&as_str(&args[0])?).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(&as_str(&args[1])?)))
        }
        "args" => Ok(Value::Map(
            args.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )),
        "externalURL" => s(env.external_url.to_string()),
        "pathPrefix" => {
            let u = env.external_url;
            let path = u
                .split_once("://")
                .map(|(_, r)| r.find('/').map(|i| &r[i..]).unwrap_or(""))
                .unwrap_or(u);
            s(path.to_string())
        }
        "parseDuration" => {
            want(args, 1, f)?;
            let d = crate::rules::model::parse_duration(&as_str(&args[0])?)
                .map_err(|e| e.to_string())?;
            Ok(Value::Float(d as f64 / 1000.0))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}
