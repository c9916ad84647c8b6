//! Engine figures (a bench binary, not criterion: each figure is one long,
//! fixed-seed run). Sizes come from environment variables so a quick run is
//! possible:
//!
//! ```text
//! cargo bench -p storage --bench engine                      # full sizes
//! SB_APPLY_SERIES=10000 SB_HEAP_SERIES=100000 SB_SELECT_SERIES=1000 \
//!   cargo bench -p storage --bench engine                    # quick
//! ```
//!
//! - apply: batches of 2000 samples across `SB_APPLY_SERIES` (100k) series,
//!   `SB_APPLY_ROUNDS` (10) scrape rounds; the first round names series by
//!   labels (creates them), later rounds by id, as the cluster proposes.
//! - heap: `SB_HEAP_SERIES` (1M) active series with `SB_HEAP_SAMPLES` (60)
//!   samples each in their open chunk, after a checkpoint; heap measured by a
//!   counting global allocator (RocksDB's C++ memory is not included).
//! - select: `SB_SELECT_SERIES` (10k) series × 2 h at 15 s of a realistic
//!   mix, checkpointed and compacted; one select of all through the public
//!   API, decoded samples/s (best of 3).
//! - disk: bytes on disk per sample for that data set after checkpoint +
//!   flush_and_compact (SST + WAL files, index included), then where they
//!   go: SST bytes per column family, WAL bytes, and the chunk bytes
//!   alone (sum of the encoded chunks that `select_chunks` returns).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use model::{Labels, Matcher, Sample};
use rand::{Rng, SeedableRng};
use storage::{BatchEncoder, Db, SeriesRef, SeriesSamples, StorageOptions, WriteBatch};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Counts allocations (alloc, alloc_zeroed and realloc calls).
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only adds atomic bookkeeping, so `System`'s guarantees hold.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic label set: metric name, job, instance, and 2-4 more labels.
fn labels_of(i: u64) -> Labels {
    let metrics = [
        "http_requests_total",
        "node_cpu_seconds_total",
        "process_resident_memory_bytes",
        "http_request_duration_seconds_bucket",
    ];
    let name = metrics[(i % 4) as usize];
    let mut p = vec![
        ("__name__".to_string(), name.to_string()),
        ("job".to_string(), format!("job-{}", i % 20)),
        (
            "instance".to_string(),
            format!("10.0.{}.{}:9100", (i / 250) % 250, i % 250),
        ),
        ("series".to_string(), i.to_string()),
    ];
    match i % 4 {
        0 => {
            p.push(("method".into(), ["GET", "POST"][(i % 2) as usize].into()));
            p.push((
                "code".into(),
                ["200", "500", "404"][(i % 3) as usize].into(),
            ));
        }
        1 => p.push((
            "mode".into(),
            ["idle", "user", "system"][(i % 3) as usize].into(),
        )),
        3 => p.push((
            "le".into(),
            ["0.1", "0.5", "1", "+Inf"][(i % 4) as usize].into(),
        )),
        _ => {}
    }
    Labels::from_pairs(p)
}

/// Value generator for series `i` (realistic mix: 40% counters, 30% gauges,
/// 30% histogram-bucket-like counters, some integer gauges).
struct Gen {
    kind: u64,
    v: f64,
}

impl Gen {
    fn new(i: u64) -> Self {
        Gen {
            kind: i % 10,
            v: (i % 1000) as f64,
        }
    }
    fn next(&mut self, rng: &mut rand::rngs::StdRng) -> f64 {
        match self.kind {
            0..=3 => self.v += f64::from(rng.gen_range(0..20u32)),
            4..=5 => self.v = ((self.v + rng.gen_range(-1.0..1.0)) * 100.0).round() / 100.0,
            6 => self.v = f64::from(rng.gen_range(100..110u32)),
            _ => self.v += f64::from(rng.gen_range(0..3u32)),
        }
        self.v
    }
}

fn main() {
    // cargo bench passes --bench; ignore arguments.
    let apply_series = env("SB_APPLY_SERIES", 100_000);
    let apply_rounds = env("SB_APPLY_ROUNDS", 10);
    let heap_series = env("SB_HEAP_SERIES", 1_000_000);
    let heap_samples = env("SB_HEAP_SAMPLES", 60);
    let select_series = env("SB_SELECT_SERIES", 10_000);
    println!("# storage engine figures");
    bench_apply(apply_series, apply_rounds);
    bench_heap(heap_series, heap_samples);
    bench_select_and_disk(select_series);
}

/// Applies `rounds` scrapes of `n` series in batches of 2000 samples,
/// encoded as the ingest path encodes them ([`BatchEncoder`]) and applied
/// as the state machine applies them ([`storage::Shard::apply_encoded`]);
/// only the applies are timed. Returns (first-round samples/s, later rounds
/// samples/s, later rounds allocations per sample).
fn run_rounds(
    shard: &storage::Shard,
    n: u64,
    rounds: u64,
    idx: &mut u64,
    quiet: bool,
) -> (f64, f64, f64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut gens: Vec<Gen> = (0..n).map(Gen::new).collect();
    let mut ids: Vec<u64> = vec![0; n as usize];
    let (mut first, mut rest, mut allocs) = (0.0, 0.0, 0.0);
    for round in 0..rounds {
        let t = 1_700_000_000_000 + round as i64 * 15_000;
        let batches: Vec<(u64, Vec<u8>)> = (0..n)
            .step_by(2000)
            .map(|chunk_start| {
                let mut b = BatchEncoder::new();
                for i in chunk_start..(chunk_start + 2000).min(n) {
                    let s = [Sample {
                        t,
                        v: gens[i as usize].next(&mut rng),
                    }];
                    if round == 0 {
                        b.push_labels(&labels_of(i), &s);
                    } else {
                        b.push_id(ids[i as usize], &s);
                    }
                }
                (chunk_start, b.finish())
            })
            .collect();
        let start = Instant::now();
        let allocs_before = ALLOCS.load(Ordering::Relaxed);
        let mut applied = 0u64;
        for (chunk_start, bytes) in &batches {
            *idx += 1;
            let out = shard.apply_encoded(*idx, bytes).expect("apply");
            assert_eq!(out.rejected_count(), 0, "{:?}", out.rejected);
            if round == 0 {
                for (k, id) in out.series_ids.iter().enumerate() {
                    ids[*chunk_start as usize + k] = id.expect("created");
                }
            }
            applied += out.accepted;
        }
        let rate = applied as f64 / start.elapsed().as_secs_f64();
        let per_sample =
            (ALLOCS.load(Ordering::Relaxed) - allocs_before) as f64 / applied.max(1) as f64;
        if round == 0 {
            first = rate;
        } else {
            rest += rate / (rounds - 1) as f64;
            allocs += per_sample / (rounds - 1) as f64;
        }
        if !quiet && round == 0 {
            println!("  round 0 (series created): {rate:.0} samples/s, {per_sample:.2} allocations/sample");
        }
    }
    (first, rest, allocs)
}

fn bench_apply(n: u64, rounds: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), StorageOptions::default()).expect("open");
    let shard = db.shard(0).expect("shard");
    let mut idx = 0;
    let (_, rest, allocs) = run_rounds(&shard, n, rounds.max(2), &mut idx, false);
    println!("apply: {rest:.0} samples/s, {allocs:.3} allocations/sample (batches of 2000 samples across {n} series, rounds 1..{rounds} by id)");
    let t = Instant::now();
    shard.checkpoint().expect("checkpoint");
    println!(
        "  checkpoint of {n} series: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

fn bench_heap(n: u64, samples: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), StorageOptions::default()).expect("open");
    let before = LIVE.load(Ordering::Relaxed);
    let shard = db.shard(0).expect("shard");
    let mut idx = 0;
    run_rounds(&shard, n, samples, &mut idx, true);
    shard.checkpoint().expect("checkpoint");
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    let st = shard.stats();
    println!(
        "heap: {per:.0} bytes/series at {n} active series ({samples} samples each in the open chunk; counting allocator; engine's own estimate {:.0} B/series of series data)",
        st.heap_bytes as f64 / n as f64
    );
}

fn bench_select_and_disk(n: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        StorageOptions {
            retention_ms: i64::MAX / 2,
            ..Default::default()
        },
    )
    .expect("open");
    let shard = db.shard(0).expect("shard");
    let mut idx = 0;
    let per_series = 2 * 3600 / 15; // 480
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut gens: Vec<Gen> = (0..n).map(Gen::new).collect();
    let t0 = 1_700_000_000_000i64;
    // apply in batches of 2000 samples: 100 series × 20 samples
    for block in (0..n).step_by(100) {
        for k in (0..per_series).step_by(20) {
            let v: Vec<SeriesSamples> = (block..(block + 100).min(n))
                .map(|i| SeriesSamples {
                    series: SeriesRef::Labels(labels_of(i)),
                    samples: (k..k + 20)
                        .map(|j| {
                            let jitter = if i % 3 == 0 {
                                rng.gen_range(-50..50)
                            } else {
                                0
                            };
                            Sample {
                                t: t0 + j as i64 * 15_000 + jitter,
                                v: gens[i as usize].next(&mut rng),
                            }
                        })
                        .collect(),
                })
                .collect();
            idx += 1;
            shard.apply(idx, &WriteBatch::Samples(v)).expect("apply");
        }
    }
    shard.checkpoint().expect("checkpoint");
    db.flush_and_compact().expect("compact");
    let total = n * per_series;
    let disk = db.disk_usage_bytes();
    println!(
        "disk: {:.2} bytes/sample after checkpoint + flush_and_compact ({n} series × {per_series} samples, realistic mix, {disk} bytes incl. index)",
        disk as f64 / total as f64
    );
    disk_breakdown(&db, &shard, total, t0);
    let m = [Matcher::new(model::MatchOp::RegexMatch, "__name__", ".+").expect("regex")];
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let got = shard.select(&m, t0, t0 + 2 * 3600 * 1000).expect("select");
        let secs = start.elapsed().as_secs_f64();
        let samples: usize = got.iter().map(|s| s.samples.len()).sum();
        assert_eq!(got.len() as u64, n);
        best = best.max(samples as f64 / secs);
    }
    println!("select: {best:.0} samples/s decoded ({n} series × 2 h at 15 s, one select through Shard::select, best of 3)");
}

/// Splits the on-disk bytes of the select/disk data set: SST bytes per
/// column family, WAL files, and the encoded chunk bytes alone.
fn disk_breakdown(db: &Db, shard: &storage::Shard, samples: u64, t0: i64) {
    use storage::keys::{CF_CHUNKS, CF_POSTINGS, CF_SERIES, CF_SM_META};
    let per = |b: u64| b as f64 / samples as f64;
    let mut parts = Vec::new();
    for name in [CF_CHUNKS, CF_SERIES, CF_POSTINGS, CF_SM_META] {
        let cf = db.rocks().cf_handle(name).expect("column family");
        let sst = db
            .rocks()
            .property_int_value_cf(&cf, "rocksdb.total-sst-files-size")
            .expect("property")
            .unwrap_or(0);
        parts.push(format!("{name} {:.2}", per(sst)));
    }
    let wal: u64 = std::fs::read_dir(db.rocks().path())
        .expect("db dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    parts.push(format!("WAL {:.2}", per(wal)));
    let m = [Matcher::new(model::MatchOp::RegexMatch, "__name__", ".+").expect("regex")];
    let chunks: u64 = shard
        .select_chunks(&m, t0, t0 + 2 * 3600 * 1000)
        .expect("select_chunks")
        .iter()
        .flat_map(|s| &s.chunks)
        .map(|c| c.data.len() as u64)
        .sum();
    println!(
        "  of which (bytes/sample): {}; chunk bytes alone {:.2}",
        parts.join(", "),
        per(chunks)
    );
}
