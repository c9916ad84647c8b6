//! Engine benchmarks: range queries over 2 h at a 60 s step on 10k
//! in-memory series sampled every 15 s (fixed seed, counter-shaped data).
//!
//! - `sum by (job) (rate(x[5m]))` over 10k counters `x` (100 jobs).
//! - `histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))` over 10k
//!   bucket series (1000 instances x 10 `le` buckets).
//!
//! Reports wall time per query; samples/s is printed once per benchmark
//! (samples loaded from the store divided by the measured time).

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use model::{Labels, Sample};
use query::engine::{Engine, EngineOptions};
use query::mem::MemQueryable;

const SERIES: usize = 10_000;
const SCRAPE_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;
const RANGE_MS: i64 = 2 * 3_600_000;
const STEP_MS: i64 = 60_000;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn counter(rng: &mut Rng) -> Vec<Sample> {
    // Data from 5 minutes before the first step to the last step.
    let first = START_MS - 300_000;
    let n = ((RANGE_MS + 300_000) / SCRAPE_MS) as usize + 1;
    let mut v = 0.0;
    (0..n)
        .map(|i| {
            v += (rng.next() % 100) as f64;
            Sample {
                t: first + i as i64 * SCRAPE_MS,
                v,
            }
        })
        .collect()
}

fn store() -> MemQueryable {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut m = MemQueryable::new();
    for i in 0..SERIES {
        let l = Labels::from_pairs([
            ("__name__", "x".to_string()),
            ("job", format!("job-{}", i % 100)),
            ("instance", format!("inst-{i}")),
        ]);
        m.add_series(l, counter(&mut rng));
    }
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for i in 0..SERIES / les.len() {
        let base = counter(&mut rng);
        for (k, le) in les.iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "h_bucket".to_string()),
                ("le", le.to_string()),
                ("instance", format!("inst-{i}")),
            ]);
            // Cumulative buckets: each bound holds a growing share.
            let share = (k + 1) as f64 / les.len() as f64;
            m.add_series(
                l,
                base.iter().map(|s| Sample {
                    t: s.t,
                    v: (s.v * share).floor(),
                }),
            );
        }
    }
    m
}

fn bench(c: &mut Criterion) {
    let m = store();
    let engine = Engine::new(EngineOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let end = START_MS + RANGE_MS;
    let mut g = c.benchmark_group("engine_range_2h_step60s_10k_series");
    g.sample_size(10);
    for (name, q) in [
        ("sum_rate", "sum by (job) (rate(x[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        ),
    ] {
        // One timed run to report samples/s.
        let t0 = Instant::now();
        let out = rt
            .block_on(engine.range(&m, q, START_MS, end, STEP_MS))
            .expect("query runs");
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{name}: {} samples loaded in {:.1} ms = {:.1} M samples/s",
            out.samples_loaded,
            secs * 1e3,
            out.samples_loaded as f64 / secs / 1e6
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(engine.range(&m, q, START_MS, end, STEP_MS))
                    .expect("query runs")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
