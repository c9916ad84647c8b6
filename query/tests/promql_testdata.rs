//! Runs Prometheus' PromQL test scripts (`../shared/promql-testdata/*.test`)
//! and our own (`query/testdata/*.test`) against the engine over a
//! [`MemQueryable`].
//!
//! Per file it prints evals passed / failed / skipped (shown with
//! `--nocapture` or on failure), then one total line `PromQL test files: N
//! passed, M failed, K skipped` that is always shown. Skips come from `query/testdata/SKIPS.txt`
//! (each with a reason) or are automatic for evals that touch native
//! histogram data (`{{...}}` series, `load_with_nhcb`). Skipped evals still
//! run, and their would-pass count is printed, so the list stays honest.
//! Like upstream, each instant query is run again with `@ <eval time>` added
//! to every selector, evaluated at several other times.

#[path = "support/check.rs"]
mod check;
#[path = "support/format.rs"]
mod format;
#[path = "support/testfile.rs"]
mod testfile;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use testfile::{run_file, FileStats, Skips};

fn spec_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/promql-testdata"
    ))
    .to_path_buf()
}

fn own_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).to_path_buf()
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read test directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    v.sort();
    v
}

#[test]
fn promql_test_files() {
    let spec = spec_dir();
    assert!(
        spec.is_dir(),
        "the PromQL specification {} is missing: check out ../shared beside the repository",
        spec.display()
    );
    let skips_text = std::fs::read_to_string(own_dir().join("SKIPS.txt")).unwrap_or_default();
    let skips = Skips::parse(&skips_text);
    let filter = std::env::var("PROMQL_TEST_FILTER").ok();
    let verbose = std::env::var("PROMQL_TEST_VERBOSE").is_ok();
    let mut files = test_files(&spec);
    files.extend(test_files(&own_dir()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime for the test");
    let mut total = FileStats::default();
    let mut per_file: HashMap<String, FileStats> = HashMap::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Some(flt) = &filter {
            if !name.contains(flt.as_str()) {
                continue;
            }
        }
        let text = std::fs::read_to_string(f)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let st = rt.block_on(run_file(&name, &text, &skips, verbose));
        println!(
            "{name}: {} passed, {} failed, {} skipped ({} skipped-native-histogram, {} listed; {} of the skipped pass)",
            st.passed, st.failed, st.skipped_native + st.skipped_listed, st.skipped_native, st.skipped_listed, st.skipped_would_pass
        );
        for m in st
            .failures
            .iter()
            .take(if verbose { usize::MAX } else { 20 })
        {
            println!("    FAIL {m}");
        }
        total.add(&st);
        per_file.insert(name, st);
    }
    // The total goes to the process' own stderr handle, which the test
    // harness does not capture (it captures `print!`/`eprint!` only), so
    // `cargo test` and CI's log show it without `--nocapture`.
    let _ = writeln!(
        std::io::stderr().lock(),
        "PromQL test files: {} passed, {} failed, {} skipped",
        total.passed,
        total.failed,
        total.skipped_native + total.skipped_listed
    );
    assert_eq!(total.failed, 0, "{} PromQL test evals failed", total.failed);
}
