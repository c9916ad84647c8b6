//! Parser speed: a ~200-character dashboard query, parsed and printed.
//!
//! `cargo bench -p query --bench parser`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use query::parser::parse;

/// A typical Grafana panel query (latency SLO with a team join).
const DASHBOARD_QUERY: &str = r#"histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket{job=~"api|web", code!~"5.."}[5m]))) > on (job) group_left (team) max by (job, team) (team_info{env="prod"})"#;

fn bench_parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Bytes(DASHBOARD_QUERY.len() as u64));
    // Repeated query: its regex matchers come from the parser's cache, as
    // for a dashboard that refreshes.
    g.bench_function("parse_dashboard_query", |b| {
        b.iter(|| parse(black_box(DASHBOARD_QUERY)))
    });
    // A new query every time: both regexes are compiled.
    let mut n = 0u64;
    g.bench_function("parse_dashboard_query_cold_regex", |b| {
        b.iter_batched(
            || {
                n += 1;
                DASHBOARD_QUERY
                    .replace("api|web", &format!("api|web|w{n}"))
                    .replace("5..", &format!("5..|x{n}"))
            },
            |q| parse(black_box(&q)),
            criterion::BatchSize::SmallInput,
        )
    });
    // The same shape with `=` matchers: the parser's own cost, without the
    // regex compilation that `=~`/`!~` matchers need.
    let no_regex = DASHBOARD_QUERY.replace("=~", "=").replace("!~", "!=");
    g.bench_function("parse_dashboard_query_no_regex", |b| {
        b.iter(|| parse(black_box(&no_regex)))
    });
    let expr = parse(DASHBOARD_QUERY).expect("benchmark query parses");
    g.bench_function("print_dashboard_query", |b| {
        b.iter(|| black_box(&expr).to_string())
    });
    g.finish();
}

criterion_group!(benches, bench_parser);
criterion_main!(benches);
