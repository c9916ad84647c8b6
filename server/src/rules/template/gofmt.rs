//! Go's number formatting (`strconv.FormatFloat` 'g'/'e'/'f' and a subset of
//! `fmt.Sprintf`), so templates print values exactly as Prometheus does:
//! `{{ $value }}` of 1234567 is `1.234567e+06`, `humanize` uses `%.4g`.

use super::Value;

/// Decimal digits of |v| without trailing zeros and the position of the
/// decimal point: v = 0.d1d2d3... × 10^dp. `prec` = significant digits, or
/// `None` for the shortest representation that round-trips.
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    if v == 0.0 {
        return ("0".to_string(), 1);
    }
    let s = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    (d, exp + 1)
}

fn special(v: f64, plus_inf: &str) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some(plus_inf.into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

fn fmt_e(neg: bool, d: &str, prec: usize, dp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let b = d.as_bytes();
    out.push(b[0] as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(*b.get(i).unwrap_or(&b'0') as char);
        }
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

fn fmt_f(neg: bool, d: &str, prec: usize, dp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let b = d.as_bytes();
    let digit = |i: i32| -> char {
        if i >= 0 && (i as usize) < b.len() {
            b[i as usize] as char
        } else {
            '0'
        }
    };
    if dp > 0 {
        for i in 0..dp {
            out.push(digit(i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            out.push(digit(dp + i));
        }
    }
    out
}

/// Go's `%g` with an optional precision (`None` = `%v` / shortest).
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v, "+Inf") {
        return s;
    }
    let neg = v.is_sign_negative() && v != 0.0;
    let (d, dp) = digits(v, prec);
    let nd = d.len() as i32;
    let mut p = prec.map(|p| p.max(1) as i32).unwrap_or(nd);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return fmt_e(neg, &d, (p - 1).max(0) as usize, dp);
    }
    if p > dp {
        p = nd;
    }
    fmt_f(neg, &d, (p - dp).max(0) as usize, dp)
}

/// Go's `%e` with precision (default 6).
pub fn format_e(v: f64, prec: usize) -> String {
    if let Some(s) = special(v, "+Inf") {
        return s;
    }
    let neg = v.is_sign_negative() && v != 0.0;
    let (d, dp) = digits(v, Some(prec + 1));
    fmt_e(neg, &d, prec, dp)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest exponent form
/// that round-trips (`1e+00`, `1.2345e+03`), as Prometheus prints alert
/// values in its API.
pub fn format_e_shortest(v: f64) -> String {
    if let Some(s) = special(v, "+Inf") {
        return s;
    }
    let neg = v.is_sign_negative() && v != 0.0;
    let (d, dp) = digits(v, None);
    fmt_e(neg, &d, d.len() - 1, dp)
}

/// Go's `%f` with precision (default 6).
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v, "+Inf") {
        return s;
    }
    format!("{v:.prec$}")
}

/// Go's `%q` of a string (close to `strconv.Quote`).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

fn pad(s: String, spec: &Spec) -> String {
    let Some(w) = spec.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && spec.verb != 's' && spec.verb != 'q' {
        let (sign, rest) = match s.strip_prefix('-') {
            Some(r) => ("-", r.to_string()),
            None => match s.strip_prefix('+') {
                Some(r) => ("+", r.to_string()),
                None => ("", s.clone()),
            },
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Map(_) => "map[string]string",
        Value::List(_) => "[]interface {}",
        Value::Sample(_) => "*template.sample",
    }
}

fn bad_verb(spec: &Spec, v: &Value) -> String {
    format!("%!{}({}={})", spec.verb, type_name(v), v.to_go_string())
}

fn with_sign(s: String, spec: &Spec) -> String {
    if s.starts_with('-') || s.starts_with('+') || s == "NaN" {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(spec: &Spec, v: &Value) -> String {
    let s = match (spec.verb, v) {
        ('v', _) => v.to_go_string(),
        ('s', Value::Str(s)) => match spec.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', Value::Float(_) | Value::Int(_) | Value::Bool(_)) => bad_verb(spec, v),
        ('s', _) => v.to_go_string(),
        ('q', Value::Str(s)) => quote(s),
        ('d', Value::Int(i)) => with_sign(i.to_string(), spec),
        ('x', Value::Int(i)) => format!("{i:x}"),
        ('X', Value::Int(i)) => format!("{i:X}"),
        ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F', Value::Float(f)) => with_sign(format_f(*f, spec.prec.unwrap_or(6)), spec),
        ('f' | 'F', Value::Int(_)) => bad_verb(spec, v),
        ('e', Value::Float(f)) => with_sign(format_e(*f, spec.prec.unwrap_or(6)), spec),
        ('g', Value::Float(f)) => with_sign(format_g(*f, spec.prec), spec),
        _ => bad_verb(spec, v),
    };
    pad(s, spec)
}

/// `fmt.Sprintf` for the verbs templates use: `%v %s %q %d %x %X %t %f %F %e
/// %g %%` with flags `-+0 `, width and precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec {
            minus: false,
            plus: false,
            zero: false,
            space: false,
            width: None,
            prec: None,
            verb: 'v',
        };
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        spec.verb = verb;
        match args.get(next_arg) {
            Some(a) => out.push_str(&format_one(&spec, a)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), a.to_go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_formatting() {
        let f =
            |v: f64, p: Option<usize>, want: &str| assert_eq!(format_g(v, p), want, "{v} {p:?}");
        f(1.0, None, "1");
        f(0.5, None, "0.5");
        f(1234567.0, None, "1.234567e+06");
        f(123456.0, None, "123456");
        f(0.0001, None, "0.0001");
        f(0.00001, None, "1e-05");
        f(-2.5, None, "-2.5");
        f(f64::INFINITY, None, "+Inf");
        f(f64::NAN, None, "NaN");
        f(12.0, Some(4), "12");
        f(12.5, Some(4), "12.5");
        f(1000.0, Some(4), "1000");
        f(100000.0, Some(4), "1e+05");
        f(1234.5678, Some(4), "1235");
        f(0.0001234, Some(4), "0.0001234");
        f(0.0, Some(4), "0");
        f(5.43219, Some(4), "5.432");
    }

    #[test]
    fn go_format_e_shortest() {
        let f = |v: f64, want: &str| assert_eq!(format_e_shortest(v), want, "{v}");
        f(1.0, "1e+00");
        f(0.0, "0e+00");
        f(1234.5, "1.2345e+03");
        f(-0.00125, "-1.25e-03");
        f(f64::INFINITY, "+Inf");
        f(f64::NAN, "NaN");
    }

    #[test]
    fn go_sprintf() {
        let f = |fmt: &str, args: &[Value], want: &str| assert_eq!(sprintf(fmt, args), want);
        f("%.2f", &[Value::Float(5.43719)], "5.44");
        f(
            "%s is %v",
            &[Value::Str("x".into()), Value::Float(2.0)],
            "x is 2",
        );
        f("%d%%", &[Value::Int(5)], "5%");
        f("%5.1f|", &[Value::Float(2.25)], "  2.2|");
        f("%-4s|", &[Value::Str("a".into())], "a   |");
        f("%q", &[Value::Str("a\"b".into())], "\"a\\\"b\"");
        f("%d", &[Value::Float(1.5)], "%!d(float64=1.5)");
        f("%s", &[], "%!s(MISSING)");
        f("%e", &[Value::Float(1234.5)], "1.234500e+03");
    }
}
