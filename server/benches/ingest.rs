//! The remote-write decoder and batch builder, per sample (criterion):
//!
//! ```text
//! cargo bench -p server --bench ingest
//! ```
//!
//! One request is 2000 series × 1 sample with 6-7 labels each, the shape
//! Prometheus sends (`max_samples_per_send: 2000`). Cases:
//! - `prost decode`: decoding the request into owned structs with prost,
//!   the first step of the old path (for reference);
//! - `feed, cold cache`: every series is new: labels parsed, validated,
//!   sorted, sharded and encoded;
//! - `feed, warm cache`: every series is known: one cache look-up, samples
//!   encoded by id.
//!
//! Before criterion runs, one pass of each feed case prints its heap
//! allocations per sample (a counting global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use server::config::Limits;
use server::ingest::cache::IngestCache;
use server::ingest::remote_write::{feed, reread};
use server::ingest::shards::{ShardBatches, TimeWindow};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only counts calls, so `System`'s guarantees hold.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract (see above).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (see above).
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SERIES: usize = 2000;
const ALL_TIME: TimeWindow = TimeWindow {
    min_t: i64::MIN,
    max_t: i64::MAX,
};

fn request(first: usize) -> Vec<u8> {
    let label = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    let timeseries = (first..first + SERIES)
        .map(|i| TimeSeries {
            labels: vec![
                label("__name__", format!("http_requests_total_{}", i % 7)),
                label("code", ["200", "404", "500"][i % 3].into()),
                label("handler", format!("/api/v1/endpoint{}", i % 50)),
                label("instance", format!("host-{:04}:9100", i / 100)),
                label("job", "node".into()),
                label("method", ["GET", "POST"][i % 2].into()),
                label("series", i.to_string()),
            ],
            samples: vec![Sample {
                value: i as f64,
                timestamp: 1_700_000_000_000,
            }],
            ..Default::default()
        })
        .collect();
    WriteRequest {
        timeseries,
        metadata: vec![],
    }
    .encode_to_vec()
}

fn feed_once(raw: &[u8], cache: &IngestCache, limits: &Limits) -> usize {
    let mut b = ShardBatches::new(limits, cache, 32, ALL_TIME, reread);
    feed(raw, &mut b, limits).expect("feed");
    b.into_batches().len()
}

/// Fills `cache` as the cluster's answers would: every series of `raw`.
fn warm(raw: &[u8], cache: &IngestCache, limits: &Limits) {
    let mut b = ShardBatches::new(limits, cache, 32, ALL_TIME, reread);
    feed(raw, &mut b, limits).expect("feed");
    b.learn_all_for_bench();
}

fn allocs_per_sample(f: impl FnOnce()) -> f64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    f();
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / SERIES as f64
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let raw = request(0);
    let warm_cache = IngestCache::new(1 << 20);
    warm(&raw, &warm_cache, &limits);
    let cold = allocs_per_sample(|| {
        feed_once(&raw, &IngestCache::new(1 << 20), &limits);
    });
    let hot = allocs_per_sample(|| {
        feed_once(&raw, &warm_cache, &limits);
    });
    let prost = allocs_per_sample(|| {
        WriteRequest::decode(raw.as_slice()).expect("decode");
    });
    println!(
        "allocations per sample: prost decode {prost:.2}, feed cold cache {cold:.2}, feed warm cache {hot:.3}"
    );

    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("prost decode", |b| {
        b.iter(|| WriteRequest::decode(raw.as_slice()).expect("decode"))
    });
    g.bench_function("feed, cold cache", |b| {
        b.iter_batched(
            || IngestCache::new(1 << 20),
            |cache| feed_once(&raw, &cache, &limits),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("feed, warm cache", |b| {
        b.iter(|| feed_once(&raw, &warm_cache, &limits))
    });
    g.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
