//! Canonical PromQL printing of the AST, the way Prometheus' `String()` does
//! it: `sum by (job) (rate(x[5m]))`, `a + on (b) group_left (c) d`,
//! `x[5m] @ 100.000 offset 1h30m`, matchers sorted, strings quoted as Go's
//! `%q`. `parse(e.to_string())` gives back `e` (matchers may be reordered).

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::{
    AggregateExpr, AtModifier, BinaryExpr, BinaryOp, Cardinality, Expr, MatrixSelector,
    SubqueryExpr, UnaryOp, VectorSelector,
};
use crate::model::{MatchOp, Matcher, METRIC_NAME};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(v) => f.write_str(&format_number(*v)),
            Expr::String(s) => f.write_str(&go_quote(s)),
            Expr::VectorSelector(vs) => write_selector(f, vs, true),
            Expr::MatrixSelector(ms) => write_matrix(f, ms),
            Expr::Subquery(sq) => write_subquery(f, sq),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Unary(op, e) => {
                let sign = if *op == UnaryOp::Neg { "-" } else { "+" };
                write!(f, "{sign}{e}")
            }
            Expr::Binary(b) => write_binary(f, b),
            Expr::Aggregate(a) => write_aggregate(f, a),
            Expr::Call(c) => {
                write!(f, "{}(", c.func)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits
/// that read back exactly, no exponent; `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// A duration in milliseconds as Prometheus' `model.Duration` prints it:
/// `0s`, `1h30m`, `2w`, `1y`, `1d2h`, `500ms`. Years and weeks are used only
/// when they divide the whole remaining value.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    const DAY: u64 = 24 * 3600 * 1000;
    let units: [(&str, u64, bool); 7] = [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && !rest.is_multiple_of(mult) {
            continue;
        }
        let n = rest / mult;
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
            rest -= n * mult;
        }
    }
    out
}

/// A string quoted as Go's `strconv.Quote`, which PromQL reads back.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || (c != ' ' && c.is_whitespace()) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a label name needs no quotes (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn is_legacy_name(s: &str) -> bool {
    !s.is_empty()
        && s.char_indices()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

fn write_label(out: &mut String, name: &str) {
    if is_legacy_name(name) {
        out.push_str(name);
    } else {
        out.push_str(&go_quote(name));
    }
}

fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    let mut out = String::new();
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_label(&mut out, l);
    }
    f.write_str(&out)
}

fn matcher_string(m: &Matcher) -> String {
    let mut out = String::new();
    write_label(&mut out, &m.name);
    out.push_str(m.op.as_str());
    out.push_str(&go_quote(&m.value));
    out
}

fn write_at(f: &mut Formatter<'_>, at: &Option<AtModifier>) -> fmt::Result {
    match at {
        None => Ok(()),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
        Some(AtModifier::Timestamp(ms)) => {
            let sign = if *ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            write!(f, " @ {sign}{}.{:03}", abs / 1000, abs % 1000)
        }
    }
}

fn write_offset(f: &mut Formatter<'_>, offset: i64, expr: &Option<Box<Expr>>) -> fmt::Result {
    if let Some(e) = expr {
        write!(f, " offset {e}")?;
    } else if offset != 0 {
        write!(f, " offset {}", format_duration(offset))?;
    }
    Ok(())
}

/// A range or step: the duration expression if there is one.
fn duration_or_expr(ms: i64, expr: &Option<Box<Expr>>) -> String {
    match expr {
        Some(e) => e.to_string(),
        None => format_duration(ms),
    }
}

fn write_selector(f: &mut Formatter<'_>, vs: &VectorSelector, modifiers: bool) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut parts: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == METRIC_NAME
                && m.op == MatchOp::Equal
                && m.value == name
                && !m.value.is_empty())
        })
        .map(matcher_string)
        .collect();
    f.write_str(name)?;
    if !parts.is_empty() {
        parts.sort();
        write!(f, "{{{}}}", parts.join(","))?;
    }
    if modifiers {
        write_at(f, &vs.at)?;
        write_extended(f, vs)?;
        write_offset(f, vs.offset, &vs.offset_expr)?;
    }
    Ok(())
}

/// ` anchored` / ` smoothed`.
fn write_extended(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if vs.anchored {
        f.write_str(" anchored")?;
    } else if vs.smoothed {
        f.write_str(" smoothed")?;
    }
    Ok(())
}

fn write_matrix(f: &mut Formatter<'_>, ms: &MatrixSelector) -> fmt::Result {
    write_selector(f, &ms.vs, false)?;
    write!(f, "[{}]", duration_or_expr(ms.range, &ms.range_expr))?;
    write_extended(f, &ms.vs)?;
    write_at(f, &ms.vs.at)?;
    write_offset(f, ms.vs.offset, &ms.vs.offset_expr)
}

fn write_subquery(f: &mut Formatter<'_>, sq: &SubqueryExpr) -> fmt::Result {
    let step = match (&sq.step_expr, sq.step) {
        (Some(e), _) => e.to_string(),
        (None, Some(ms)) => format_duration(ms),
        (None, None) => String::new(),
    };
    let range = duration_or_expr(sq.range, &sq.range_expr);
    write!(f, "{}[{range}:{step}]", sq.expr)?;
    write_at(f, &sq.at)?;
    write_offset(f, sq.offset, &sq.offset_expr)
}

fn write_binary(f: &mut Formatter<'_>, b: &BinaryExpr) -> fmt::Result {
    match *b.lhs {
        // `+Inf ^ x` would read back as `+(Inf ^ x)`: unary operators bind
        // looser than `^`. Prometheus prints `+Inf` here and loses the round
        // trip; we print `Inf`.
        Expr::Number(v) if b.op == BinaryOp::Pow && v == f64::INFINITY => f.write_str("Inf")?,
        _ => write!(f, "{}", b.lhs)?,
    }
    write!(f, " {}", b.op.as_str())?;
    write_modifiers(f, b)?;
    write!(f, " {}", b.rhs)
}

/// ` bool on (a) group_left (b) fill (0)` after a binary operator.
fn write_modifiers(f: &mut Formatter<'_>, b: &BinaryExpr) -> fmt::Result {
    if b.return_bool {
        f.write_str(" bool")?;
    }
    if let Some(vm) = &b.matching {
        let grouped = matches!(vm.card, Cardinality::ManyToOne | Cardinality::OneToMany);
        if !vm.labels.is_empty() || vm.on || grouped {
            f.write_str(if vm.on { " on (" } else { " ignoring (" })?;
            write_labels(f, &vm.labels)?;
            f.write_str(")")?;
        }
        if grouped {
            f.write_str(if vm.card == Cardinality::ManyToOne {
                " group_left ("
            } else {
                " group_right ("
            })?;
            write_labels(f, &vm.include)?;
            f.write_str(")")?;
        }
    }
    match (b.fill_lhs, b.fill_rhs) {
        (Some(l), Some(r)) if l == r => write!(f, " fill ({})", format_number(l))?,
        (l, r) => {
            if let Some(l) = l {
                write!(f, " fill_left ({})", format_number(l))?;
            }
            if let Some(r) = r {
                write!(f, " fill_right ({})", format_number(r))?;
            }
        }
    }
    Ok(())
}

fn write_aggregate(f: &mut Formatter<'_>, a: &AggregateExpr) -> fmt::Result {
    f.write_str(a.op.as_str())?;
    if a.without || !a.grouping.is_empty() {
        f.write_str(if a.without { " without (" } else { " by (" })?;
        write_labels(f, &a.grouping)?;
        f.write_str(") ")?;
    }
    f.write_str("(")?;
    if let Some(p) = &a.param {
        write!(f, "{p}, ")?;
    }
    write!(f, "{})", a.expr)
}

/// Prometheus' default line width for [`Expr::pretty`].
const PRETTY_WIDTH: usize = 100;

impl Expr {
    /// The expression formatted over several lines the way Prometheus'
    /// `Prettify` does (`/api/v1/format_query`): any node whose one-line form
    /// is longer than 100 characters is split, children indented by two
    /// spaces.
    pub fn pretty(&self) -> String {
        pretty(self, 0, PRETTY_WIDTH)
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// Prometheus' `Pretty(level)`; `width` is its `maxCharactersPerLine`.
pub(crate) fn pretty(e: &Expr, level: usize, width: usize) -> String {
    let flat = e.to_string();
    let split = flat.len() > width;
    let pad = indent(level);
    match e {
        Expr::Aggregate(a) if split => {
            let mut head = a.op.as_str().to_string();
            if a.without || !a.grouping.is_empty() {
                let mut labels = String::new();
                for (i, l) in a.grouping.iter().enumerate() {
                    if i > 0 {
                        labels.push_str(", ");
                    }
                    write_label(&mut labels, l);
                }
                let kw = if a.without { "without" } else { "by" };
                head = format!("{head} {kw} ({labels}) ");
            }
            let mut out = format!("{pad}{head}(\n");
            if let Some(p) = &a.param {
                out.push_str(&pretty(p, level + 1, width));
                out.push_str(",\n");
            }
            out.push_str(&pretty(&a.expr, level + 1, width));
            out.push_str(&format!("\n{pad})"));
            out
        }
        Expr::Binary(b) if split => {
            let modifiers = Modifiers(b).to_string();
            format!(
                "{}\n{pad}{}{modifiers}\n{}",
                pretty(&b.lhs, level + 1, width),
                b.op.as_str(),
                pretty(&b.rhs, level + 1, width)
            )
        }
        Expr::Call(c) if split => {
            let args: Vec<String> = c.args.iter().map(|a| pretty(a, level + 1, width)).collect();
            format!("{pad}{}(\n{}\n{pad})", c.func, args.join(",\n"))
        }
        Expr::Paren(inner) if split => {
            format!("{pad}(\n{}\n{pad})", pretty(inner, level + 1, width))
        }
        // Prometheus does not indent an unsplit subquery.
        Expr::Subquery(_) if !split => flat,
        Expr::Subquery(sq) => {
            let inner = pretty(&sq.expr, level, width);
            let suffix = flat.get(sq.expr.to_string().len()..).unwrap_or_default();
            format!("{inner}{suffix}")
        }
        Expr::Unary(op, inner) => {
            let sign = if *op == UnaryOp::Neg { "-" } else { "+" };
            format!("{pad}{sign}{}", pretty(inner, level, width).trim())
        }
        _ => format!("{pad}{flat}"),
    }
}

/// Displays the modifiers of a binary expression.
struct Modifiers<'a>(&'a BinaryExpr);

impl Display for Modifiers<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_modifiers(f, self.0)
    }
}
