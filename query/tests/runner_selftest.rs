//! Self-tests of the PromQL test-file runner (`support/`): for every
//! comparison path, an eval whose expectation is right must pass and the
//! same eval with a deliberately wrong expectation must be reported as a
//! failure. A runner that accepted anything would make the specification
//! files prove nothing.

#[path = "support/check.rs"]
mod check;
#[path = "support/format.rs"]
mod format;
#[path = "support/testfile.rs"]
#[allow(dead_code)]
mod testfile;

use testfile::{run_file, FileStats, Skips};

const LOAD: &str = "load 1m
    m 1 2 3
    n NaN NaN NaN
    o{i=\"a\"} 1
    o{i=\"b\"} 2
    s 1 stale
";

fn run(eval: &str) -> FileStats {
    let text = format!("{LOAD}\n{eval}\n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime for the test");
    rt.block_on(run_file("selftest.test", &text, &Skips::parse(""), false))
}

/// `good` passes, each of `bad` fails (and nothing is skipped).
fn case(path: &str, good: &str, bad: &[&str]) {
    let st = run(good);
    assert_eq!(
        (st.passed, st.failed),
        (1, 0),
        "{path}: the right expectation must pass: {good}\n{:?}",
        st.failures
    );
    for b in bad {
        let st = run(b);
        assert_eq!(
            (st.passed, st.failed, st.skipped_native + st.skipped_listed),
            (0, 1, 0),
            "{path}: a wrong expectation must fail: {b}"
        );
    }
}

#[test]
fn scalar() {
    case(
        "scalar",
        "eval instant at 1m 1 + 1\n    2",
        &[
            "eval instant at 1m 1 + 1\n    3",
            // A vector where a scalar is expected, and the other way round.
            "eval instant at 1m m\n    2",
            "eval instant at 1m 1 + 1\n    {} 2",
        ],
    );
}

#[test]
fn vector() {
    case(
        "vector",
        "eval instant at 1m m\n    m 2",
        &[
            "eval instant at 1m m\n    m 3",
            "eval instant at 1m m\n    m{a=\"b\"} 2",
            "eval instant at 1m m\n    m 2\n    o 1",
            "eval instant at 1m o\n    o{i=\"a\"} 1",
            "eval instant at 1m m",
        ],
    );
}

#[test]
fn matrix() {
    case(
        "matrix",
        "eval range from 0 to 2m step 1m m\n    m 1 2 3",
        &[
            "eval range from 0 to 2m step 1m m\n    m 1 2 4",
            // A missing point, an extra point, a shifted series.
            "eval range from 0 to 2m step 1m m\n    m 1 _ 3",
            "eval range from 0 to 2m step 1m m\n    m 1 2",
            "eval range from 0 to 2m step 1m m\n    m _ 1 2 3",
            "eval range from 0 to 2m step 1m m\n    m 1 2 3\n    o{i=\"a\"} 1 1 1",
        ],
    );
    case(
        "range vector",
        "eval instant at 2m m[2m]\n    expect range vector from 1m to 2m step 1m\n    m 2 3",
        &["eval instant at 2m m[2m]\n    expect range vector from 1m to 2m step 1m\n    m 1 3"],
    );
}

#[test]
fn nan() {
    case(
        "NaN",
        "eval instant at 1m n\n    n NaN",
        &[
            "eval instant at 1m n\n    n 1",
            "eval instant at 1m m\n    m NaN",
            "eval range from 0 to 2m step 1m n\n    n NaN 1 NaN",
            "eval instant at 1m scalar(n)\n    1",
        ],
    );
}

#[test]
fn stale_marker() {
    // A stale marker is a NaN with its own bits: NaN and stale are not
    // interchangeable, nor is stale a number.
    case(
        "stale",
        "eval range from 0 to 2m step 1m s\n    s 1 _ _",
        &[
            "eval range from 0 to 2m step 1m s\n    s 1 stale _",
            "eval range from 0 to 2m step 1m s\n    s 1 1 _",
            "eval instant at 1m n\n    n stale",
            "eval instant at 0m s\n    s stale",
        ],
    );
}

#[test]
fn ordered() {
    case(
        "ordered",
        "eval_ordered instant at 1m sort_desc(o)\n    o{i=\"b\"} 2\n    o{i=\"a\"} 1",
        &[
            "eval_ordered instant at 1m sort_desc(o)\n    o{i=\"a\"} 1\n    o{i=\"b\"} 2",
            "eval instant at 1m sort_desc(o)\n    expect ordered\n    o{i=\"a\"} 1\n    o{i=\"b\"} 2",
            // Ordered results need an instant vector.
            "eval_ordered range from 0 to 1m step 1m o\n    o{i=\"b\"} 2 2\n    o{i=\"a\"} 1 1",
        ],
    );
}

#[test]
fn warnings() {
    let q = "eval instant at 1m quantile(2, o)";
    let want = "PromQL warning: quantile value should be between 0 and 1, got 2";
    case(
        "warnings",
        &format!("{q}\n    expect warn msg: {want} (1:10)\n    {{}} +Inf"),
        &[
            &format!("{q}\n    expect no_warn\n    {{}} +Inf"),
            &format!("{q}\n    expect warn msg: PromQL warning: something else\n    {{}} +Inf"),
            &format!("{q}\n    expect warn regex: got 3$\n    {{}} +Inf"),
            "eval_warn instant at 1m m\n    m 2",
            "eval instant at 1m m\n    expect warn\n    m 2",
            // Right warning, wrong value.
            &format!("{q}\n    expect warn\n    {{}} 2"),
        ],
    );
    case(
        "warning regex",
        &format!("{q}\n    expect warn regex: should be between 0 and 1, got [0-9]+ \\([0-9]+:[0-9]+\\)\n    {{}} +Inf"),
        &[&format!("{q}\n    expect warn regex: got NaN\n    {{}} +Inf")],
    );
}

#[test]
fn info_annotations() {
    // rate() over a name that does not look like a counter.
    let q = "eval instant at 2m rate(m[5m])";
    let want = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"m\"";
    case(
        "info",
        &format!("{q}\n    expect info msg: {want} (1:6)\n    {{}} 0.0083333333"),
        &[
            &format!("{q}\n    expect no_info\n    {{}} 0.0083333333"),
            &format!("{q}\n    expect info msg: PromQL info: other\n    {{}} 0.0083333333"),
            "eval_info instant at 1m m\n    m 2",
        ],
    );
}

#[test]
fn errors_and_strings() {
    case(
        "fail",
        "eval instant at 1m 1 +\n    expect fail",
        &[
            "eval instant at 1m 1 +\n    1",
            "eval instant at 1m 1 +\n    expect fail msg: some other error",
            "eval instant at 1m 1 +\n    expect fail regex: ^nothing like it$",
            "eval instant at 1m m\n    expect fail",
        ],
    );
    case(
        "string",
        "eval instant at 1m \"a\"\n    expect string \"a\"",
        &["eval instant at 1m \"a\"\n    expect string \"b\""],
    );
}
