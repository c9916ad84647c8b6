//! Parser unit tests: table-style `f(input, want)` cases.

use super::*;
use crate::ast::Expr;

/// Parses and prints back; panics with the error otherwise.
fn canon(q: &str) -> String {
    match parse(q) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("{q:?}: {e}"),
    }
}

#[test]
fn prints_canonical_form() {
    let f = |q: &str, want: &str| assert_eq!(canon(q), want, "query {q:?}");
    f("1", "1");
    f("1.5e3", "1500");
    f("0x1F", "31");
    f("0755", "493");
    f("1_000", "1000");
    f(".5", "0.5");
    f("5.", "5");
    f("Inf", "+Inf");
    f("-inF", "-Inf");
    f("nan", "NaN");
    f("-1", "-1");
    f("+1", "1");
    f("- - 1", "1");
    f("5m", "300");
    f(r#""a\nb""#, r#""a\nb""#);
    f(r#"'it''s'"#.replace("''", "\\'").as_str(), r#""it's""#);
    f("`a\\b`", r#""a\\b""#);
    f("foo", "foo");
    f("foo:bar_1", "foo:bar_1");
    f(r#"foo{b="2",a=~"1"}"#, r#"foo{a=~"1",b="2"}"#);
    f(r#"foo{a!="1", b!~"2",}"#, r#"foo{a!="1",b!~"2"}"#);
    f(r#"{__name__="foo"}"#, r#"{__name__="foo"}"#);
    f(
        r#"{"metric.name", a="b"}"#,
        r#"{__name__="metric.name",a="b"}"#,
    );
    f(r#"{"a.b"="c"}"#, r#"{"a.b"="c"}"#);
    f("foo[5m]", "foo[5m]");
    f("foo[90m]", "foo[1h30m]");
    f("foo[300]", "foo[5m]");
    f("foo[1.5]", "foo[1s500ms]");
    f("foo[1y2w3d]", "foo[382d]");
    f("foo[2w]", "foo[2w]");
    f("foo offset 5m", "foo offset 5m");
    f("foo offset -5m", "foo offset -5m");
    f("foo[5m] offset 1h", "foo[5m] offset 1h");
    f("foo @ 100", "foo @ 100.000");
    f("foo @ -1.5", "foo @ -1.500");
    f("foo offset 1m @ start()", "foo @ start() offset 1m");
    f("foo @ end() offset 1m", "foo @ end() offset 1m");
    f("foo[5m] @ 10 offset 1m", "foo[5m] @ 10.000 offset 1m");
    f("rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]");
    f("foo[30m:]", "foo[30m:]");
    f("foo[30m:] offset 1m @ 5", "foo[30m:] @ 5.000 offset 1m");
    f("sum(rate(x[5m])) by (job)", "sum by (job) (rate(x[5m]))");
    f("sum by (job,) (x)", "sum by (job) (x)");
    f("sum without (a, b) (x)", "sum without (a, b) (x)");
    f("SUM BY (job) (x)", "sum by (job) (x)");
    f(r#"sum by ("a.b") (x)"#, r#"sum by ("a.b") (x)"#);
    f("topk(5, x)", "topk(5, x)");
    f(r#"count_values("v", x)"#, r#"count_values("v", x)"#);
    f(
        "quantile without (a) (0.9, x)",
        "quantile without (a) (0.9, x)",
    );
    f("a + on (b) group_left (c) d", "a + on (b) group_left (c) d");
    f("a + on(b) group_left d", "a + on (b) group_left () d");
    f("a * ignoring(b) d", "a * ignoring (b) d");
    f("a > bool 1", "a > bool 1");
    f("1 == bool 1", "1 == bool 1");
    f("a and b or c unless d", "a and b or c unless d");
    f("a atan2 b", "a atan2 b");
    f("-a", "-a");
    f("-(a)", "-(a)");
    f("time()", "time()");
    f(
        "label_join(x, \"d\", \",\", \"a\", \"b\")",
        "label_join(x, \"d\", \",\", \"a\", \"b\")",
    );
    f("round(x)", "round(x)");
    f("# comment\nfoo # another\n", "foo");
    f("sum", "sum");
    f(
        r#"foo{on="a", by="b", bool="c", offset="d"}"#,
        r#"foo{bool="c",by="b",offset="d",on="a"}"#,
    );
    f(
        "sum by (on, bool, offset, sum) (x)",
        "sum by (on, bool, offset, sum) (x)",
    );
    f("a + on (by, group_left) b", "a + on (by, group_left) b");
    f("offset offset 5m", "offset offset 5m");
    f("without{a=\"b\"} + count", "without{a=\"b\"} + count");
    f("time() + pi()", "time() + pi()");
    f("by + offset", "by + offset");
}

#[test]
fn reports_prometheus_errors() {
    // (query, expected message, expected byte position)
    let f = |q: &str, msg: &str, pos: usize| match parse(q) {
        Ok(e) => panic!("{q:?} parsed as {e}"),
        Err(e) => {
            assert_eq!(e.msg, msg, "query {q:?}");
            assert_eq!(e.pos, pos, "position for {q:?} ({e})");
        }
    };
    f("", "no expression found in input", 0);
    f("on{a=\"b\"}", "unexpected <on>", 0);
    f(
        "rate(x)",
        "expected type range vector in call to function \"rate\", got instant vector",
        5,
    );
    f(
        "rate(x[5m], 1)",
        "expected 1 argument(s) in call to \"rate\", got 2",
        0,
    );
    f(
        "round()",
        "expected at least 1 argument(s) in call to \"round\", got 0",
        0,
    );
    f(
        "round(x, 1, 2)",
        "expected at most 2 argument(s) in call to \"round\", got 3",
        0,
    );
    f("nope(x)", "unknown function with name \"nope\"", 0);
    f("RATE(x[5m])", "unknown function with name \"RATE\"", 0);
    f(
        "rate(x[5m],)",
        "trailing commas not allowed in function call args",
        10,
    );
    f(
        "{}",
        "vector selector must contain at least one non-empty matcher",
        0,
    );
    f(
        "{a=\"\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    );
    f(
        "{a=~\".*\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    );
    f(
        "foo{__name__=\"bar\"}",
        "metric name must not be set twice: \"foo\" or \"bar\"",
        0,
    );
    f(
        "1 > 2",
        "comparisons between scalars must use BOOL modifier",
        2,
    );
    f(
        "a + bool b",
        "bool modifier can only be used on comparison operators",
        2,
    );
    f(
        "a and 1",
        "set operator \"and\" not allowed in binary scalar expression",
        0,
    );
    f(
        "a and on(x) group_left b",
        "no grouping allowed for \"and\" operation",
        0,
    );
    f(
        "1 + on(a) 2",
        "vector matching only allowed between instant vectors",
        0,
    );
    f(
        "a + on(b) group_left(b) c",
        "label \"b\" must not occur in ON and GROUP clause at once",
        2,
    );
    f(
        "x[5m] + 1",
        "binary expression must contain only scalar and instant vector types",
        0,
    );
    f(
        "1 + \"a\"",
        "binary expression must contain only scalar and instant vector types",
        4,
    );
    f("-x[5m]", "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"", 0);
    f(
        "sum(x[5m])",
        "expected type instant vector in aggregation expression, got range vector",
        4,
    );
    f(
        "topk(\"a\", x)",
        "expected type scalar in aggregation parameter, got string",
        5,
    );
    f(
        "count_values(1, x)",
        "expected type string in aggregation parameter, got scalar",
        13,
    );
    f("sum()", "no arguments for aggregate expression provided", 0);
    f(
        "topk(x)",
        "wrong number of arguments for aggregate expression provided, expected 2, got 1",
        0,
    );
    f("sum(x) offset 5m", "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0);
    f("sum(x) @ 5", "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0);
    f(
        "foo offset 1m offset 2m",
        "offset may not be set multiple times",
        0,
    );
    f(
        "foo @ 1 @ 2",
        "@ <timestamp> may not be set multiple times",
        0,
    );
    f(
        "foo offset 5m[5m]",
        "no offset modifiers allowed before range",
        13,
    );
    f("foo @ 5 [5m]", "no @ modifiers allowed before range", 8);
    f("(foo)[5m]", "ranges only allowed for vector selectors", 5);
    f(
        "foo[5m][10m:]",
        "subquery is only allowed on instant vector, got matrix instead",
        0,
    );
    f(
        "\"a\"[5m:]",
        "subquery is only allowed on instant vector, got string instead",
        0,
    );
    f("foo[0s]", "duration must be greater than 0", 4);
    f("foo[-5m]", "duration must be greater than 0", 4);
    f("foo[5m:0s]", "duration must be greater than 0", 7);
    f("foo[5x]", "bad number or duration syntax: \"5\"", 4);
    f("0deadbeef", "bad number or duration syntax: \"0de\"", 0);
    f("100..4", "bad number or duration syntax: \"100..\"", 0);
    f("foo[5y1hs]", "unknown unit \"hs\" in duration \"5y1hs\"", 4);
    f(
        "foo[\"5m\"]",
        "unexpected character in duration expression: '\"'",
        4,
    );
    f("foo[5s x 5s]", "unexpected character: 'x', expected ':'", 7);
    f("foo[", "unexpected end of input in duration expression", 4);
    f("*1", "unexpected <op:*>", 0);
    f(
        "sum without(==)(x)",
        "unexpected <op:==> in grouping opts, expected label",
        12,
    );
    f(
        "sum some_metric by (test)",
        "unexpected identifier \"some_metric\"",
        4,
    );
    f(
        "foo @ +Inf",
        "timestamp out of bounds for @ modifier: +Inf",
        6,
    );
    f("\"\\c\"", "unknown escape sequence U+0063 'c'", 1);
    f("}", "unexpected character: '}'", 0);
    f(
        "info(x, {a=\"b\"} == 1)",
        "expected label selectors only",
        8,
    );
    f(
        "info(x, foo)",
        "expected label selectors only, got vector selector instead",
        8,
    );
    f("foo[1m5h]", "not a valid duration string: \"1m5h\"", 4);
    f(
        "foo[step()]",
        "step() and range() in duration expressions are not enabled",
        4,
    );
    f(
        "foo offset -range()",
        "step() and range() in duration expressions are not enabled",
        11,
    );
    f("foo[1m / 0]", "division by zero", 7);
    f("foo[1m % (1 - 1)]", "modulo by zero", 7);
    f("foo[step() / 0]", "division by zero", 11);
    f("foo[1m - 1m]", "duration must be greater than 0", 4);
    f("foo[-2 ^ 2]", "duration must be greater than 0", 4);
    f("foo[5m:1m - 2m]", "duration must be greater than 0", 7);
    f("foo[(1m]", "unclosed left parenthesis", 8);
    f("foo[1m +]", "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()", 8);
    f(
        "rate(foo[5m] anchored)",
        "anchored modifier is experimental and not enabled",
        13,
    );
    f(
        "a + fill(0) b",
        "binop fill modifiers are experimental and not enabled",
        4,
    );
    f(
        "foo @ Inf",
        "timestamp out of bounds for @ modifier: +Inf",
        6,
    );
    f("foo{a=\"b\"", "unexpected end of input inside braces", 9);
    f("(foo", "unclosed left parenthesis", 4);
    f("foo)", "unexpected right parenthesis ')'", 3);
    f("foo[5m", "unclosed left bracket", 6);
    f(
        "foo{a}",
        "unexpected \"}\" in label matching, expected label matching operator",
        5,
    );
    f(
        "foo{a=b}",
        "unexpected identifier \"b\" in label matching, expected string",
        6,
    );
    f(
        "foo{a=~\"(\"}",
        "invalid regular expression \"(\": unclosed group",
        4,
    );
    f("\"abc", "unterminated quoted string", 0);
    f("\"\\q\"", "unknown escape sequence U+0071 'q'", 1);
    f("sum by (a) (x) by (b)", "unexpected <by>", 15);
    f("foo bar", "unexpected identifier \"bar\"", 4);
    f("1 +", "unexpected end of input", 3);
    f("()", "unexpected \")\"", 1);
    f("$", "unexpected character: '$'", 0);
    f("a = b", "unexpected \"=\"", 2);
    f(
        "sum by (without) (x)",
        "unexpected <without> in grouping opts, expected label",
        8,
    );
    f(
        "sum by (\"\") (x)",
        "invalid label name for grouping: \"\"",
        8,
    );
}

#[test]
fn experimental_functions_need_the_feature() {
    // (query, message, position) without the feature; each parses with it.
    let f = |q: &str, msg: &str, pos: usize| {
        let e = parse(q).expect_err(q);
        assert_eq!((e.msg.as_str(), e.pos), (msg, pos), "query {q:?}");
        let on = ParseOptions {
            experimental_functions: true,
            ..ParseOptions::NONE
        };
        if let Err(e) = parse_with(q, on) {
            panic!("{q:?} with the feature: {e}");
        }
    };
    let how =
        "is experimental and must be enabled with --enable-feature=promql-experimental-functions";
    f(
        "sort_by_label(up, \"job\")",
        &format!("function \"sort_by_label\" is not enabled: it {how}"),
        0,
    );
    f(
        "1 + step()",
        &format!("function \"step\" is not enabled: it {how}"),
        4,
    );
    f(
        "sum(double_exponential_smoothing(x[5m], 0.5, 0.5))",
        &format!("function \"double_exponential_smoothing\" is not enabled: it {how}"),
        4,
    );
    f("limitk(1, up)", &format!("limitk() {how}"), 0);
    f(
        "x + limit_ratio(0.5, up)",
        &format!("limit_ratio() {how}"),
        4,
    );
    // Every function the table marks experimental is refused, every other
    // one is not refused for that reason.
    for sig in functions::functions() {
        let args: Vec<&str> = sig
            .arg_types
            .iter()
            .map(|t| match t {
                crate::ast::ValueType::Scalar => "1",
                crate::ast::ValueType::Vector => "x",
                crate::ast::ValueType::Matrix => "x[5m]",
                crate::ast::ValueType::String => "\"a\"",
            })
            .collect();
        let mut q = format!("{}({})", sig.name, args.join(", "));
        if sig.name == "info" {
            // Its second argument is a bare label selector.
            q = "info(x, {a=\"b\"})".to_string();
        }
        let refused = parse(&q)
            .err()
            .is_some_and(|e| e.msg.contains("is not enabled"));
        assert_eq!(refused, sig.experimental, "{q}");
    }
}

#[test]
fn error_display_has_line_and_column() {
    let e = parse("foo +\n  bar baz").unwrap_err();
    assert_eq!(
        e.to_string(),
        "2:7: parse error: unexpected identifier \"baz\""
    );
    assert_eq!((e.line(), e.col()), (2, 7));
}

#[test]
fn folds_constant_duration_expressions() {
    let f = |q: &str, want: &str| assert_eq!(canon(q), want, "query {q:?}");
    f("foo[26m+4m]", "foo[30m]");
    f("foo[60*30]", "foo[30m]");
    f("foo[2m*(10+5)]", "foo[30m]");
    f("foo[24m+((1.5*2m)+2m)]", "foo[29m]");
    f("foo[-5m+35m]", "foo[30m]");
    f("foo[1h30m % 1h]", "foo[30m]");
    f("foo[30m1s-30m1s % 1m]", "foo[30m]");
    f(
        "foo[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms]",
        "foo[30s:10s]",
    );
    f("foo[2^3]", "foo[8s]");
    f("foo[max_of(1m, 2m)]", "foo[2m]");
    f("foo[min_of(1m, 2m):]", "foo[1m:]");
    f("foo offset (100 + 2)", "foo offset 1m42s");
    f("foo offset 100 + 2", "foo offset 1m40s + 2");
    f("foo offset -2 ^ 2", "foo offset -2s ^ 2");
    f("foo offset (-2 * 2)", "foo offset -4s");
    f("foo offset -(2 * 2)", "foo offset -4s");
    f("foo offset max_of(1m, 2m)", "foo offset 2m");
    // Computed values are truncated to the millisecond, literals rounded.
    f("foo[1s / 3]", "foo[333ms]");
    f("foo[0.0015]", "foo[2ms]");
}

#[test]
fn keeps_step_and_range_expressions_when_enabled() {
    let opts = ParseOptions {
        duration_expr_functions: true,
        ..ParseOptions::default()
    };
    let f = |q: &str, want: &str| {
        let e = parse_with(q, opts).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "query {q:?}");
        let again = parse_with(&e.to_string(), opts).expect("printed form parses");
        assert_eq!(again, e);
    };
    f("foo[step()]", "foo[step()]");
    f("foo[STep()+1ms]", "foo[step() + 0.001]");
    f("foo[1+(step()-5)*2]", "foo[1 + (step() - 5) * 2]");
    f(
        "foo[max_of(min_of(step()+1,1h),1ms)]",
        "foo[max_of(min_of(step() + 1, 3600), 0.001)]",
    );
    f("foo offset -step()", "foo offset -step()");
    f("foo offset step()*0", "foo offset step() * 0");
    f(
        "foo offset -min_of(step(), 1s)+8000",
        "foo offset -min_of(step(), 1) + 8000",
    );
    f(
        "foo[5m:step()] offset (range() / 2)",
        "foo[5m:step()] offset (range() / 2)",
    );
    f(
        "rate(foo[range()] offset step())",
        "rate(foo[range()] offset step())",
    );
    let e = parse_with("foo[step() * 2] offset range()", opts).expect("parses");
    let Expr::MatrixSelector(m) = e else {
        panic!("not a matrix selector: {e:?}");
    };
    assert_eq!(m.range, 0);
    assert_eq!(m.vs.offset, 0);
    assert_eq!(
        m.range_expr.map(|e| e.to_string()),
        Some("step() * 2".to_string())
    );
    assert_eq!(
        m.vs.offset_expr.map(|e| e.to_string()),
        Some("range()".to_string())
    );
}

#[test]
fn fill_and_extended_selectors_when_enabled() {
    let f = |q: &str, want: &str| {
        let e = parse_with(q, ParseOptions::ALL).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "query {q:?}");
    };
    f("a + fill(0) b", "a + fill (0) b");
    f(
        "a + fill_left(5) fill_right(7) b",
        "a + fill_left (5) fill_right (7) b",
    );
    f(
        "a + fill_right(-Inf) fill_left(NaN) b",
        "a + fill_left (NaN) fill_right (-Inf) b",
    );
    f(
        "a == bool on(x) group_left fill(1) b",
        "a == bool on (x) group_left () fill (1) b",
    );
    f("fill + fill", "fill + fill");
    f("rate(foo[5m] anchored)", "rate(foo[5m] anchored)");
    f("foo smoothed offset 1m", "foo smoothed offset 1m");
    f(
        "foo[5m] offset 1m smoothed @ 5",
        "foo[5m] smoothed @ 5.000 offset 1m",
    );
    let e = parse_with("a - fill_right(2) b", ParseOptions::ALL).expect("parses");
    let Expr::Binary(b) = e else {
        panic!("not binary: {e:?}");
    };
    assert_eq!((b.fill_lhs, b.fill_rhs), (None, Some(2.0)));
    let err = |q: &str, msg: &str| {
        let e = parse_with(q, ParseOptions::ALL).expect_err(q);
        assert_eq!(e.msg, msg, "query {q:?}");
    };
    err(
        "1 + fill(0) a",
        "filling in missing series only allowed between instant vectors",
    );
    err(
        "a and fill(0) b",
        "filling in missing series not allowed for set operators",
    );
    err(
        "foo anchored smoothed",
        "anchored and smoothed modifiers cannot be used together",
    );
    err(
        "foo smoothed anchored",
        "anchored and smoothed modifiers cannot be used together",
    );
    err(
        "foo[5m:] anchored",
        "anchored modifier is not supported for subqueries",
    );
    err("sum(foo) smoothed", "smoothed modifier not implemented");
    err(
        "a + fill(x) b",
        "unexpected identifier \"x\" in fill modifier, expected number",
    );
    err("a + fill_left(1) fill_left(2) b", "unexpected \"(\"");
    // Off by default, as in Prometheus.
    let e = parse("rate(foo[5m] smoothed)").expect_err("gated");
    assert_eq!(e.msg, "smoothed modifier is experimental and not enabled");
}

#[test]
fn pretty_splits_long_nodes_like_prometheus() {
    // Width 10 makes every non-trivial node split, as Prometheus' own tests do.
    let f = |q: &str, want: &str| {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(crate::printer::pretty(&e, 0, 10), want, "query {q:?}");
    };
    f("sum(foo)", "sum(foo)");
    f(
        "sum by() (task:errors:rate10s{job=\"s\"})",
        "sum(\n  task:errors:rate10s{job=\"s\"}\n)",
    );
    f(
        "sum(task:errors:rate10s{job=\"s\"}) without(job,foo)",
        "sum without (job, foo) (\n  task:errors:rate10s{job=\"s\"}\n)",
    );
    f(
        "topk(10, ask:errors:rate10s{job=\"s\"})",
        "topk(\n  10,\n  ask:errors:rate10s{job=\"s\"}\n)",
    );
    f("a == bool 1", "  a\n== bool\n  1");
    f("foo + baar + foo_3", "  foo + baar\n+\n  foo_3");
    f(
        "foo_1 + ignoring(foo) foo_2 + on(instance) group_right foo_4",
        "    foo_1\n  + ignoring (foo)\n    foo_2\n+ on (instance) group_right ()\n  foo_4",
    );
    f(
        "histogram_quantile(0.9, rate(foo[1m]))",
        "histogram_quantile(\n  0.9,\n  rate(\n    foo[1m]\n  )\n)",
    );
    f(
        "max_over_time(rate(demo_api_request_duration_seconds_count[1m])[1m:] @ start() offset 1m)",
        "max_over_time(\n  rate(\n    demo_api_request_duration_seconds_count[1m]\n  )[1m:] @ start() offset 1m\n)",
    );
    f("(foo_bar_baz)", "(\n  foo_bar_baz\n)");
    f("-(foo_bar_baz)", "-(\n  foo_bar_baz\n)");
    // The public form uses Prometheus' width of 100.
    let e = parse("sum by (job) (rate(x[5m]))").expect("parses");
    assert_eq!(e.pretty(), "sum by (job) (rate(x[5m]))");
}

#[test]
fn metric_selectors_and_durations() {
    let sel = |q: &str| -> Vec<String> {
        let ms = parse_metric_selector(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        ms.iter().map(|m| m.to_string()).collect()
    };
    assert_eq!(sel(r#"foo{a="b"}"#), [r#"a="b""#, r#"__name__="foo""#]);
    assert_eq!(sel(r#"{a=~"b.*", c!=""}"#), [r#"a=~"b.*""#, r#"c!="""#]);
    assert_eq!(sel(r#"{"metric.name"}"#), [r#"__name__="metric.name""#]);
    assert_eq!(sel("sum"), [r#"__name__="sum""#]);
    for bad in [
        "",
        "{}",
        r#"{a=""}"#,
        "foo offset 5m",
        "foo[5m]",
        "rate(x[5m])",
        "1",
        "foo bar",
    ] {
        assert!(parse_metric_selector(bad).is_err(), "{bad:?} accepted");
    }
    let dur = |s: &str| parse_duration(s);
    assert_eq!(dur("0"), Ok(0));
    assert_eq!(dur("1h30m"), Ok(5_400_000));
    assert_eq!(dur("500ms"), Ok(500));
    assert_eq!(dur("1y2w3d"), Ok((365 + 14 + 3) * 86_400_000));
    for bad in ["", "5", "1.5s", "5m1h", "1hh", "5x", "-5m", "1h 2m", "300y"] {
        assert!(dur(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        dur("5m1h").unwrap_err().to_string(),
        "1:1: parse error: not a valid duration string: \"5m1h\""
    );
}
