//! Property tests: arbitrary and mutated input never panics, and whatever
//! parses prints back to an expression that parses to the same AST.

use proptest::prelude::*;

use super::parse_with;
use super::testdata::check_round_trip;

/// Real queries to mutate (a sample of the shapes Grafana sends).
const SEEDS: &[&str] = &[
    r#"histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket{job=~"api|web"}[5m])))"#,
    r#"sum without (instance) (rate(x{a!="b", c!~"d.*"}[1m] offset -5m @ 100)) > bool on (job) group_left (team) y"#,
    r#"topk(3, max_over_time(rate(foo[5m])[1h:30s] @ end())) or vector(-Inf) unless label_replace(up, "a", "$1", "b", "(.*)")"#,
    r#"-2 ^ 3 ^ -x % 0x1F atan2 -(y) / count_values("v", {__name__="m", "x.y"=~'a\n'}) == bool 1e3"#,
    r#"quantile(0.9, stddev_over_time({"metric.name", l="`"}[1y2w3d4h5m6s7ms])) # comment"#,
    r#"sum_over_time(x[2m * (10 + 5) : step() / 2] offset -min_of(range(), 1h % 7m)) + y offset (5m ^ 2) @ 3"#,
    r#"absent(nonexistent{job="myjob"}) * on () group_right () sum(count by (a,) (b)) - time()"#,
];

/// Characters PromQL uses, so random strings reach deep into the grammar.
fn promql_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(
            "abcxyz_:019.eE+-*/%^=!~<>(){}[],@\"'`\\# \n"
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ]
}

/// Tokens to splice into real queries.
fn promql_token() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "@",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "bool",
        "and",
        "or",
        "unless",
        "sum",
        "rate",
        "5m",
        "-",
        "+",
        "^",
        "==",
        "=~",
        "\"",
        "'",
        "`",
        "#",
        "start()",
        "1e308",
        "Inf",
        "0x",
        "\\",
        "[5m:]",
        " ",
        "é",
        "{{",
        "}}",
    ])
    .prop_map(str::to_string)
}

/// Asserts the round-trip property for input that parses.
fn check(q: &str) -> Result<(), TestCaseError> {
    if parse_with(q, super::extended::all_options()).is_ok() {
        if let Err(msg) = check_round_trip(q) {
            return Err(TestCaseError::fail(format!("{q:?}: {msg}")));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        check(&s)?;
    }

    #[test]
    fn promql_alphabet_never_panics(chars in prop::collection::vec(promql_char(), 0..120)) {
        let s: String = chars.into_iter().collect();
        check(&s)?;
    }

    #[test]
    fn mutated_real_queries_never_panic(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..6, promql_token()), 1..4),
    ) {
        let mut q = seed.to_string();
        for (at, del, tok) in edits {
            let boundaries: Vec<usize> =
                q.char_indices().map(|(i, _)| i).chain([q.len()]).collect();
            let start = boundaries[at.index(boundaries.len())];
            let end = boundaries.iter().copied().find(|&b| b >= start + del).unwrap_or(q.len());
            q.replace_range(start..end, &tok);
        }
        check(&q)?;
    }
}

#[test]
fn seeds_round_trip() {
    for q in SEEDS {
        check_round_trip(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
}
