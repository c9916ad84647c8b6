//! Metadata read figures at many series (issue 13): the calls Grafana makes
//! on every dashboard load, through the public `Shard` API of 32 shards
//! answered one after the other and merged (as `LocalQueryable` does on one
//! node). A bench binary, not criterion: each figure is the median of
//! `SB_INDEX_RUNS` (5) runs over one fixed-seed data set.
//!
//! ```text
//! cargo bench -p storage --bench index                  # 1M series
//! SB_INDEX_SERIES=100000 cargo bench -p storage --bench index
//! ```
//!
//! Data: `SB_INDEX_SERIES` series of 8 samples at 15 s, spread round-robin
//! over 32 shards and 1000 instances (`host-0007:9100`), in the proportions
//! of the load tool's catalog: counters (`http_requests_total` with method,
//! code and handler), gauges, and classic histogram buckets with `le`.

use std::collections::BTreeSet;
use std::time::Instant;

use model::{Labels, MatchOp, Matcher, Sample};
use storage::{Db, SeriesRef, SeriesSamples, Shard, StorageOptions, WriteBatch};

const SHARDS: u32 = 32;
const INSTANCES: u64 = 1000;
const POINTS: i64 = 8;
const T0: i64 = 1_700_000_000_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Series `i`: instance `i % 1000`; the rest picks a family and its labels.
fn labels_of(i: u64) -> Labels {
    let inst = format!("host-{:04}:9100", i % INSTANCES);
    let k = i / INSTANCES;
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let codes = ["200", "201", "400", "404", "500"];
    let les = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];
    let mut p: Vec<(&str, String)> = vec![("instance", inst)];
    match k % 10 {
        0..=3 => {
            p.push(("__name__", "http_requests_total".into()));
            p.push(("job", "api".into()));
            p.push(("method", methods[(k % 4) as usize].into()));
            p.push(("code", codes[((k / 4) % 5) as usize].into()));
            p.push(("handler", format!("/api/v1/endpoint{}", k / 20)));
        }
        4..=6 => {
            p.push(("__name__", "node_hwmon_temp_celsius".into()));
            p.push(("job", "node".into()));
            p.push(("chip", format!("platform_coretemp_{}", k / 16)));
            p.push(("sensor", format!("temp{}", k % 16)));
        }
        _ => {
            p.push(("__name__", "http_request_duration_seconds_bucket".into()));
            p.push(("job", "api".into()));
            p.push(("handler", format!("/api/v1/endpoint{}", k / 8)));
            p.push(("le", les[(k % 8) as usize].into()));
        }
    }
    Labels::from_pairs(p)
}

fn build(
    n: u64,
) -> (
    tempfile::TempDir,
    std::sync::Arc<Db>,
    Vec<std::sync::Arc<Shard>>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), StorageOptions::default()).expect("open");
    let shards: Vec<_> = (0..SHARDS).map(|s| db.shard(s).expect("shard")).collect();
    let per_batch = 5000u64;
    let mut log = vec![0u64; SHARDS as usize];
    let t = Instant::now();
    let mut pending: Vec<Vec<SeriesSamples>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for i in 0..n {
        let s = (i % u64::from(SHARDS)) as usize;
        pending[s].push(SeriesSamples {
            series: SeriesRef::Labels(labels_of(i)),
            samples: (0..POINTS)
                .map(|j| Sample {
                    t: T0 + j * 15_000,
                    v: (i + j as u64) as f64,
                })
                .collect(),
        });
        if pending[s].len() as u64 == per_batch || i + 1 == n {
            log[s] += 1;
            let b = WriteBatch::Samples(std::mem::take(&mut pending[s]));
            shards[s].apply(log[s], &b).expect("apply");
        }
    }
    for (s, p) in pending.iter_mut().enumerate() {
        if !p.is_empty() {
            log[s] += 1;
            let b = WriteBatch::Samples(std::mem::take(p));
            shards[s].apply(log[s], &b).expect("apply");
        }
    }
    for sh in &shards {
        sh.checkpoint().expect("checkpoint");
    }
    eprintln!("built {n} series in {:.1} s", t.elapsed().as_secs_f64());
    (dir, db, shards)
}

/// Median milliseconds of `runs` calls of `f`, and its last answer's size.
fn time(runs: u64, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        size = f();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], size)
}

fn union<T: Ord>(parts: impl IntoIterator<Item = Vec<T>>) -> Vec<T> {
    parts
        .into_iter()
        .flatten()
        .collect::<BTreeSet<T>>()
        .into_iter()
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env("SB_INDEX_SERIES", 1_000_000);
    let runs = env("SB_INDEX_RUNS", 5);
    let (_dir, _db, shards) = build(n);
    let (all_min, all_max) = (i64::MIN, i64::MAX);
    // a Grafana-style range: the last hour of the data
    let (h_min, h_max) = (T0 + POINTS * 15_000 - 3_600_000, T0 + POINTS * 15_000);
    let name = |v: &str| Matcher::equal("__name__", v);
    let one = [
        name("http_requests_total"),
        Matcher::equal("instance", "host-0007:9100"),
    ];
    let re = [
        name("http_requests_total"),
        Matcher::new(
            MatchOp::RegexMatch,
            "instance",
            "host-0007:9100|host-0008:9100",
        )
        .expect("regex"),
    ];
    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").expect("regex")];

    let report = |what: &str, (ms, size): (f64, usize)| {
        println!("{what:<62} {ms:>10.2} ms  ({size} items)");
    };
    println!("{n} series over {SHARDS} shards, median of {runs}");
    report(
        "label/instance/values (no range)",
        time(runs, || {
            union(shards.iter().map(|s| {
                s.label_values("instance", &[], all_min, all_max)
                    .expect("values")
            }))
            .len()
        }),
    );
    report(
        "label/instance/values (last hour)",
        time(runs, || {
            union(shards.iter().map(|s| {
                s.label_values("instance", &[], h_min, h_max)
                    .expect("values")
            }))
            .len()
        }),
    );
    report(
        "label/instance/values?match[]=http_requests_total",
        time(runs, || {
            union(shards.iter().map(|s| {
                s.label_values("instance", &[name("http_requests_total")], h_min, h_max)
                    .expect("values")
            }))
            .len()
        }),
    );
    report(
        "labels (no range)",
        time(runs, || {
            union(
                shards
                    .iter()
                    .map(|s| s.label_names(&[], all_min, all_max).expect("names")),
            )
            .len()
        }),
    );
    report(
        "series?match[]=http_requests_total{instance=\"host-0007:9100\"}",
        time(runs, || {
            union(
                shards
                    .iter()
                    .map(|s| s.series(&one, h_min, h_max).expect("series")),
            )
            .len()
        }),
    );
    report(
        "series?match[]=http_requests_total{instance=~\"…7|…8\"}",
        time(runs, || {
            union(
                shards
                    .iter()
                    .map(|s| s.series(&re, h_min, h_max).expect("series")),
            )
            .len()
        }),
    );
    report(
        "status/tsdb as a walk (series of {__name__=~\".+\"}, counted)",
        time(1, || {
            let series = union(
                shards
                    .iter()
                    .map(|s| s.series(&all, all_min, all_max).expect("series")),
            );
            let mut pairs = std::collections::HashMap::<String, u64>::new();
            for l in &series {
                for x in l.iter() {
                    *pairs.entry(format!("{}={}", x.name, x.value)).or_default() += 1;
                }
            }
            pairs.len()
        }),
    );
    // tsdb_stats begin
    report(
        "status/tsdb from the index (Shard::tsdb_stats, merged, tops)",
        time(runs, || {
            let mut st = storage::TsdbStats::default();
            for s in &shards {
                st.merge(s.tsdb_stats());
            }
            st.series_count_by_metric_name(10).len()
                + st.label_value_count_by_label_name(10).len()
                + st.memory_in_bytes_by_label_name(10).len()
                + st.series_count_by_label_value_pair(10).len()
        }),
    );
    // tsdb_stats end
}
