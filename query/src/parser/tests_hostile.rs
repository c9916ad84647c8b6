//! Hostile and pathological input: deep nesting, long chains, huge numbers,
//! long strings, odd unicode. Nothing may panic, hang or overflow the stack.

use super::{parse, MAX_DEPTH};

/// Runs `f` on a thread with a 1 MiB stack: half the Rust default for
/// spawned threads (2 MiB), so passing proves a 2x margin in this build.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .expect("spawn test thread")
        .join()
        .expect("test thread panicked (stack overflow?)")
}

fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{}{}", open.repeat(n), inner, close.repeat(n))
}

/// Inputs nested `n` levels in every way the grammar allows.
fn nestings(n: usize) -> Vec<String> {
    vec![
        nested("(", "1", ")", n),
        nested("-(", "x", ")", n),
        nested("abs(", "x", ")", n),
        nested("sum(", "x", ")", n),
        nested("topk(1, ", "x", ")", n),
        nested("min_over_time(", "x", "[5m:])", n),
        nested("-", "1", "", n),
        nested("- -", "x", "", n / 2),
        format!("x{}", " ^ x".repeat(n)),
        format!("x{}", " + x".repeat(n)),
        format!("x{}", " or x".repeat(n)),
        nested("abs(", "x", ") + 1", n),
    ]
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    on_small_stack(|| {
        for q in nestings(100_000) {
            let err = parse(&q).expect_err("100k levels must be rejected");
            assert!(err.msg.contains("nested too deeply"), "{}: {err}", &q[..40]);
        }
    });
}

#[test]
fn nesting_up_to_the_limit_parses_prints_and_drops() {
    on_small_stack(|| {
        // Some forms use two or three parser levels per written level; for
        // each form, test the deepest nesting that is accepted.
        for form in 0..nestings(1).len() {
            let deepest = (1..=3)
                .map(|per_level| (MAX_DEPTH - 4) / per_level)
                .find_map(|n| parse(&nestings(n)[form]).ok().map(|e| (n, e)));
            let Some((n, e)) = deepest else {
                panic!("form {form} not accepted even at a third of the limit");
            };
            let printed = e.to_string();
            assert!(e.pretty().len() >= printed.len());
            let again = parse(&printed).unwrap_or_else(|err| panic!("form {form}, {n}: {err}"));
            assert_eq!(again.to_string(), printed);
            drop(e);
        }
    });
}

#[test]
fn huge_numbers_long_strings_and_odd_unicode() {
    let ok = |q: &str| {
        parse(q).unwrap_or_else(|e| panic!("{:.60}: {e}", q));
    };
    let fails = |q: &str, msg_part: &str| match parse(q) {
        Ok(e) => panic!("{:.60} parsed as {:.60}", q, e.to_string()),
        Err(e) => assert!(e.msg.contains(msg_part), "{:.60}: {e}", q),
    };
    fails("1e400", "value out of range");
    fails(&"9".repeat(100_000), "value out of range");
    fails("0xFFFFFFFFFFFFFFFFFF", "invalid syntax");
    ok(&format!("0.{}1", "0".repeat(10_000)));
    ok("1.7976931348623157e308");
    ok("5e-324");
    fails("foo[99999999999y]", "duration out of range");
    fails(
        "foo offset 9999999999999999999999s",
        "not a valid duration string",
    );
    fails("foo offset 300y", "duration out of range");
    fails("foo @ 1e300", "timestamp out of bounds");
    ok(&format!("\"{}\"", "x".repeat(1 << 20)));
    ok(&format!("foo{{a=\"{}\"}}", "ü€😀".repeat(10_000)));
    ok("{\"😀\"=\"x\", \"日本\"=~\"語.*\"}");
    ok("\"\\u00e9\\U0001F600\\x41\\101\"");
    fails("\"\\uD800\"", "invalid Unicode code point");
    fails("\"\\xff\"", "invalid UTF-8");
    fails("fö", "unexpected character");
    fails("foo{ö=\"x\"}", "unexpected character inside braces");
    fails("\u{0}", "unexpected character");
    fails("foo\u{202e}", "unexpected character");
    fails("sum(\u{feff}x)", "unexpected character");
    fails(&"(".repeat(10), "unclosed left parenthesis");
    fails(&")".repeat(10), "unexpected right parenthesis");
    fails(&"[".repeat(10), "unexpected");
    fails(&"{".repeat(10), "unexpected left brace");
    fails("`unterminated", "unterminated raw string");
    fails("'a\nb'", "unterminated quoted string");
}

#[test]
fn ten_thousand_terms_parse_in_linear_time() {
    // Flat: 10k function arguments and 10k matchers.
    let args: Vec<String> = (0..10_000).map(|i| format!("\"l{i}\"")).collect();
    let q = format!("label_join(x, \"dst\", \",\", {})", args.join(", "));
    assert!(parse(&q).is_ok());
    let matchers: Vec<String> = (0..10_000).map(|i| format!("l{i}=~\"a|b{i}\"")).collect();
    let q = format!("foo{{{}}}", matchers.join(","));
    assert!(parse(&q).is_ok());
    // A balanced tree of 16384 terms (depth 14 plus parentheses).
    let mut terms: Vec<String> = (0..16_384).map(|i| format!("m{i}{{job=\"a\"}}")).collect();
    let ops = ["+", "or", "*", "and", "-", "unless", "/", "> bool"];
    let mut level = 0;
    while terms.len() > 1 {
        let op = ops[level % ops.len()];
        terms = terms
            .chunks(2)
            .map(|p| format!("({} {op} on (job) {})", p[0], p[1]))
            .collect();
        level += 1;
    }
    let e = parse(&terms[0]).expect("balanced 16k-term expression");
    assert!(e.to_string().len() > 16_384 * 10);
    // A 10k-term chain exceeds the depth limit and is rejected, quickly.
    let q = format!("x{}", " + x".repeat(10_000));
    assert!(parse(&q).is_err());
    // Long runs of shared prefixes that a backtracking parser retries.
    let q = format!("{}x", "sum by (a) (".repeat(200)) + &")".repeat(200);
    assert!(parse(&q).is_ok());
    let q = "rate(foo{a=\"b\"}[5m] offset 1m @ 10 ".repeat(2_000);
    assert!(parse(&q).is_err());
}
