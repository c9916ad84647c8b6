//! Chunk codec benchmarks: encode and decode ns/sample and bytes/sample on
//! four fixed-seed data shapes (constant, counter, gauge, realistic mix).
//!
//! Run: `cargo bench -p storage --bench chunk -- --warm-up-time 1 --measurement-time 3`
//! The bytes/sample of every shape, and how many of its chunks the encoder
//! wrote as encoding 2 (decimal), are printed before the timings.
//!
//! `SB_CHUNK_ROUNDS=60 cargo bench -p storage --bench chunk` runs every
//! routine 60 times instead, the three interleaved, and prints the least
//! and the median ns/sample of each: on a shared machine the least is the
//! undisturbed speed and the median shows how much the neighbours slow it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use model::Sample;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use storage::chunk::{
    decode_into, header, ChunkEncoder, ChunkIter, Encoding, MAX_SAMPLES_PER_CHUNK,
};

const N: usize = MAX_SAMPLES_PER_CHUNK;
const START: i64 = 1_700_000_000_000;
const SCRAPE_MS: i64 = 15_000;

type Series = Vec<(i64, f64)>;

/// Timestamps every 15 s from a random phase; with `jitter`, each scrape is
/// a few ms early or late (normal, sd 2 ms), as real scrape loops are.
fn times(rng: &mut StdRng, jitter: bool) -> Vec<i64> {
    let phase = rng.gen_range(0..SCRAPE_MS);
    let noise = Normal::<f64>::new(0.0, 2.0).unwrap();
    (0..N as i64)
        .map(|i| {
            let j = if jitter {
                noise.sample(rng).round() as i64
            } else {
                0
            };
            START + phase + i * SCRAPE_MS + j
        })
        .collect()
}

fn zip(ts: Vec<i64>, vs: Vec<f64>) -> Series {
    ts.into_iter().zip(vs).collect()
}

fn constant(rng: &mut StdRng) -> Series {
    let v = f64::from(rng.gen_range(0..100u32));
    zip(times(rng, false), vec![v; N])
}

/// A counter with Poisson increments at `rate` per scrape.
fn counter_values(rng: &mut StdRng, rate: f64) -> Vec<f64> {
    let mut v = f64::from(rng.gen_range(0..1_000_000u32));
    let inc = Poisson::new(rate.max(1e-9)).unwrap();
    (0..N)
        .map(|_| {
            v += inc.sample(rng).floor();
            v
        })
        .collect()
}

fn counter(rng: &mut StdRng) -> Series {
    let vs = counter_values(rng, 10.0);
    zip(times(rng, false), vs)
}

/// A random walk rounded to 2 decimals (temperatures, load averages).
fn gauge_values(rng: &mut StdRng) -> Vec<f64> {
    let step = Normal::<f64>::new(0.0, 0.5).unwrap();
    let mut cents = rng.gen_range(1_000..10_000i64);
    (0..N)
        .map(|_| {
            cents += (step.sample(rng) * 100.0).round() as i64;
            cents as f64 / 100.0
        })
        .collect()
}

fn gauge(rng: &mut StdRng) -> Series {
    let vs = gauge_values(rng);
    zip(times(rng, false), vs)
}

/// An integer gauge (goroutines, open fds, queue length): mostly still,
/// sometimes moving by a few units.
fn int_gauge_values(rng: &mut StdRng) -> Vec<f64> {
    let mut v = rng.gen_range(10..500i64);
    (0..N)
        .map(|_| {
            if rng.gen_bool(0.3) {
                v = (v + rng.gen_range(-5..=5)).max(0);
            }
            v as f64
        })
        .collect()
}

/// One classic histogram: 11 cumulative `le` bucket counters fed by
/// Poisson(`rate`) observations per scrape, log-normally distributed.
fn histogram(rng: &mut StdRng, jitter: bool) -> Vec<Series> {
    const LE: [f64; 11] = [
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        f64::INFINITY,
    ];
    let rate = LogNormal::<f64>::new(0.0, 2.0)
        .unwrap()
        .sample(rng)
        .min(5_000.0);
    let obs = Poisson::new(rate.max(1e-9)).unwrap();
    let latency = LogNormal::<f64>::new(-3.0, 1.2).unwrap();
    let ts = times(rng, jitter);
    let mut counts = [0u64; 11];
    let mut out: Vec<Vec<f64>> = (0..11).map(|_| Vec::with_capacity(N)).collect();
    for _ in 0..N {
        let n = obs.sample(rng) as u64;
        for _ in 0..n.min(200) {
            let x: f64 = latency.sample(rng);
            let b = LE.iter().position(|&le| x <= le).unwrap_or(10);
            for c in &mut counts[b..] {
                *c += 1;
            }
        }
        for (s, &c) in out.iter_mut().zip(&counts) {
            s.push(c as f64);
        }
    }
    out.into_iter().map(|vs| zip(ts.clone(), vs)).collect()
}

/// The realistic mix: 40% counters (log-normal rates from ~0 to thousands
/// per scrape), 30% gauges (40% integer, 30% 2-decimal walks, 30% constant),
/// 30% histogram buckets; 15 s scrapes, 30% of the targets with ms jitter.
fn mix(rng: &mut StdRng, series: usize) -> Vec<Series> {
    let mut out = Vec::with_capacity(series);
    let rate = LogNormal::<f64>::new(0.0, 2.5).unwrap();
    while out.len() < series {
        let jitter = rng.gen_bool(0.3);
        let kind = rng.gen_range(0..100);
        if kind < 40 {
            let r = rate.sample(rng).min(1e6);
            let vs = counter_values(rng, r);
            out.push(zip(times(rng, jitter), vs));
        } else if kind < 70 {
            let g = rng.gen_range(0..10);
            let vs = match g {
                0..=3 => int_gauge_values(rng),
                4..=6 => gauge_values(rng),
                _ => vec![f64::from(rng.gen_range(0..4u32)); N],
            };
            out.push(zip(times(rng, jitter), vs));
        } else {
            // 11 bucket series per histogram: draw it 11x less often so the
            // buckets make up ~30% of the series.
            if rng.gen_range(0..11) == 0 {
                out.extend(histogram(rng, jitter));
            }
        }
    }
    out.truncate(series);
    out
}

fn shapes() -> Vec<(&'static str, Vec<Series>)> {
    let gen = |seed: u64, f: fn(&mut StdRng) -> Series| -> Vec<Series> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..100).map(|_| f(&mut rng)).collect()
    };
    vec![
        ("constant", gen(1, constant)),
        ("counter", gen(2, counter)),
        ("gauge", gen(3, gauge)),
        ("mix", mix(&mut StdRng::seed_from_u64(4), 1000)),
    ]
}

fn encode(series: &Series) -> ChunkEncoder {
    let mut enc = ChunkEncoder::new();
    for &(t, v) in series {
        enc.push(t, v).unwrap();
    }
    enc
}

fn print_sizes(shapes: &[(&str, Vec<Series>)]) {
    for (name, data) in shapes {
        let samples: usize = data.iter().map(Vec::len).sum();
        let chunks: Vec<Vec<u8>> = data.iter().map(|s| encode(s).bytes()).collect();
        let bytes: usize = chunks.iter().map(Vec::len).sum();
        let decimal = chunks
            .iter()
            .filter(|c| header(c).map(|h| h.encoding) == Ok(Encoding::Decimal))
            .count();
        println!(
            "chunk/{name}: {:.3} bytes/sample ({samples} samples in {} chunks, {bytes} bytes; \
             {decimal} chunks decimal)",
            bytes as f64 / samples as f64,
            data.len()
        );
    }
}

fn bench(c: &mut Criterion, shapes: &[(&str, Vec<Series>)]) {
    let mut g = c.benchmark_group("chunk");
    for (name, data) in shapes {
        let samples: usize = data.iter().map(Vec::len).sum();
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), data, |b, data| {
            b.iter(|| {
                for s in data {
                    black_box(encode(s).bytes());
                }
            })
        });
        let chunks: Vec<Vec<u8>> = data.iter().map(|s| encode(s).bytes()).collect();
        g.bench_with_input(BenchmarkId::new("decode", name), &chunks, |b, chunks| {
            let mut out: Vec<Sample> = Vec::with_capacity(N);
            b.iter(|| {
                for c in chunks {
                    out.clear();
                    decode_into(c, &mut out).unwrap();
                    black_box(&out);
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("iter", name), &chunks, |b, chunks| {
            b.iter(|| {
                for c in chunks {
                    for s in ChunkIter::new(c).unwrap() {
                        black_box(s.unwrap());
                    }
                }
            })
        });
    }
    g.finish();
}

/// Times `f` once.
fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The least and the median of `times`, in ns per sample.
fn least_and_median(times: &mut [Duration], samples: usize) -> (f64, f64) {
    times.sort();
    let ns = |d: Duration| d.as_nanos() as f64 / samples as f64;
    (ns(times[0]), ns(times[times.len() / 2]))
}

/// Every routine `n` times, interleaved; prints the least and the median.
fn rounds(shapes: &[(&str, Vec<Series>)], n: usize) {
    println!("ns/sample over {n} rounds: least / median");
    let mut out: Vec<Sample> = Vec::with_capacity(N);
    for (name, data) in shapes {
        let samples: usize = data.iter().map(Vec::len).sum();
        let chunks: Vec<Vec<u8>> = data.iter().map(|s| encode(s).bytes()).collect();
        let mut t: [Vec<Duration>; 3] = Default::default();
        for _ in 0..n {
            t[0].push(time(|| {
                for s in data {
                    black_box(encode(s).bytes());
                }
            }));
            t[1].push(time(|| {
                for c in &chunks {
                    out.clear();
                    decode_into(c, &mut out).unwrap();
                    black_box(&out);
                }
            }));
            t[2].push(time(|| {
                for c in &chunks {
                    for s in ChunkIter::new(c).unwrap() {
                        black_box(s.unwrap());
                    }
                }
            }));
        }
        let [enc, dec, iter] = t.map(|mut t| least_and_median(&mut t, samples));
        println!(
            "chunk/{name}: encode {:.1} / {:.1}, decode {:.1} / {:.1}, iter {:.1} / {:.1}",
            enc.0, enc.1, dec.0, dec.1, iter.0, iter.1
        );
    }
}

fn main() {
    let shapes = shapes();
    print_sizes(&shapes);
    if let Some(n) = std::env::var("SB_CHUNK_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        rounds(&shapes, n);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &shapes);
    c.final_summary();
}
