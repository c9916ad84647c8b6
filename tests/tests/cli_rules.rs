//! `silverback rules check` and `silverback rules test` as a user runs them
//! (issue 6): exit codes and messages.

use std::path::Path;
use std::process::Command;

fn silverback(args: &[&str]) -> (i32, String) {
    let out = Command::new(tests::binary_path().expect("binary"))
        .args(args)
        .output()
        .expect("run silverback");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn testdata(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../server/testdata/rules")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn rules_check_accepts_good_and_names_the_problem_in_bad_files() {
    let (code, out) = silverback(&["rules", "check", &testdata("alerts.yml")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
    )
    .expect("write");
    let (code, out) = silverback(&["rules", "check", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bad.yml:4"),
        "file and line of the rule: {out}"
    );
    assert!(out.contains("could not parse expression"), "{out}");
}

#[test]
fn rules_test_runs_promtool_format_files() {
    let (code, out) = silverback(&["rules", "test", &testdata("alerts_test.yml")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}
