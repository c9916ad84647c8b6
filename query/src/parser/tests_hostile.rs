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
            let again = parse(&printed).unwrap_or_else(|err| panic!("form {form}, {n}: {err}"));
            assert_eq!(again.to_string(), printed);
            drop(e);
        }
    });
}
