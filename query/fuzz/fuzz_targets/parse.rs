//! Fuzz target: any input parses or fails cleanly (no panic, no stack
//! overflow, no hang), and whatever parses prints to a query that parses to
//! the same printed form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let all = query::parser::ParseOptions::ALL;
    let _ = query::parser::parse(q);
    if let Ok(e) = query::parser::parse_with(q, all) {
        let _ = e.pretty();
        let printed = e.to_string();
        let again = query::parser::parse_with(&printed, all)
            .unwrap_or_else(|err| panic!("printed form {printed:?} does not parse: {err}"));
        assert_eq!(again.to_string(), printed, "printing is not idempotent");
    }
    let _ = query::parser::parse_metric_selector(q);
    let _ = query::parser::parse_duration(q);
});
