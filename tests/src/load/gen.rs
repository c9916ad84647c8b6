//! The data: a seeded catalog of series (counters, gauges, classic
//! histograms spread over instances) and their values at every scrape.
//!
//! Every *source* (one counter, one gauge, or one histogram with all its
//! `_bucket`/`_sum`/`_count` series) draws from its own random stream
//! ([`Rng::new`]`(seed, source index)`), so a source's values depend only on
//! the seed and its index: generation can be split across threads and the
//! same seed always gives the same bytes.

use rand_distr::{Distribution, Poisson};

use super::rng::Rng;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Total number of series (every histogram bucket, `_sum` and `_count`
    /// counts as one).
    pub series: usize,
    /// Samples per series.
    pub points: usize,
    /// Scrape interval in milliseconds.
    pub interval_ms: i64,
    /// Timestamp of the last sample (Unix ms).
    pub end_ms: i64,
    /// Number of distinct `instance` values.
    pub instances: usize,
    /// Seed of every random stream.
    pub seed: u64,
}

impl Shape {
    /// Timestamp of sample `j` (0-based).
    pub fn ts(&self, j: usize) -> i64 {
        self.end_ms - (self.points - 1 - j) as i64 * self.interval_ms
    }

    /// Total number of samples.
    pub fn samples(&self) -> u64 {
        self.series as u64 * self.points as u64
    }
}

/// The kind of a series, as counted for the shape proportions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A counter (`_total`).
    Counter,
    /// A gauge.
    Gauge,
    /// A `_bucket`, `_sum` or `_count` series of a classic histogram.
    Histogram,
}

/// Counter families: (metric name, job).
pub const COUNTERS: [(&str, &str); 3] = [
    ("http_requests_total", "api"),
    ("node_network_receive_bytes_total", "node"),
    ("rpc_client_calls_total", "rpc"),
];

/// Gauge families: (metric name, job).
pub const GAUGES: [(&str, &str); 3] = [
    ("node_memory_active_bytes", "node"),
    ("node_hwmon_temp_celsius", "node"),
    ("app_queue_depth", "api"),
];

/// Histogram families: (metric name without suffix, job, upper bounds
/// without `+Inf`).
pub const HISTOGRAMS: [(&str, &str, &[f64]); 3] = [
    (
        "http_request_duration_seconds",
        "api",
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    (
        "rpc_duration_seconds",
        "rpc",
        &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
    ),
    (
        "db_query_duration_seconds",
        "db",
        &[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ],
    ),
];

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 5] = ["200", "201", "404", "429", "500"];
const PRIORITIES: [&str; 3] = ["high", "normal", "low"];

/// One generator of values: a counter or gauge (one series) or a histogram
/// (its buckets, then `_sum`, then `_count`).
#[derive(Clone, Debug)]
pub struct Source {
    /// Family index into [`COUNTERS`], [`GAUGES`] or [`HISTOGRAMS`].
    pub family: usize,
    /// Which table `family` indexes.
    pub kind: Kind,
    /// Index of this source in the catalog (its random stream).
    pub index: usize,
    /// Label sets of its series, each sorted by name, `__name__` included.
    pub series: Vec<Vec<(String, String)>>,
}

/// The catalog: every source in the order their series are sent.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// The sources.
    pub sources: Vec<Source>,
}

/// `host-007:9100`.
pub fn instance_name(i: usize) -> String {
    format!("host-{i:03}:9100")
}

/// `le` as Prometheus writes it (`0.005`, `1`, `+Inf`).
pub fn le_label(b: f64) -> String {
    if b.is_infinite() {
        "+Inf".into()
    } else {
        format!("{b}")
    }
}

fn labels(
    name: &str,
    job: &str,
    instance: usize,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut l = vec![
        ("__name__".to_string(), name.to_string()),
        ("job".to_string(), job.to_string()),
        ("instance".to_string(), instance_name(instance)),
    ];
    l.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
    l.sort();
    l
}

fn counter_labels(family: usize, instance: usize, k: usize) -> Vec<(String, String)> {
    let (name, job) = COUNTERS[family];
    let extra = match family {
        0 => vec![
            ("method", METHODS[k % 4].to_string()),
            ("code", CODES[(k / 4) % 5].to_string()),
            ("handler", format!("/api/v1/endpoint{}", k / 20)),
        ],
        1 => vec![("device", format!("eth{k}"))],
        _ => vec![
            ("service", format!("svc{}", k / 8)),
            ("method", format!("Method{}", k % 8)),
        ],
    };
    labels(name, job, instance, &extra)
}

fn gauge_labels(family: usize, instance: usize, k: usize) -> Vec<(String, String)> {
    let (name, job) = GAUGES[family];
    let extra = match family {
        0 => vec![("numa", format!("node{k}"))],
        1 => vec![
            ("chip", format!("platform_coretemp_{}", k / 16)),
            ("sensor", format!("temp{}", k % 16)),
        ],
        _ => vec![
            ("queue", format!("q{}", k / 3)),
            ("priority", PRIORITIES[k % 3].to_string()),
        ],
    };
    labels(name, job, instance, &extra)
}

fn histogram_labels(family: usize, instance: usize, k: usize) -> Vec<Vec<(String, String)>> {
    let (name, job, bounds) = HISTOGRAMS[family];
    let extra = match family {
        0 => vec![("handler", format!("/api/v1/endpoint{k}"))],
        1 => vec![
            ("service", format!("svc{}", k / 4)),
            ("method", format!("Method{}", k % 4)),
        ],
        _ => vec![("db", format!("db{k}"))],
    };
    let bucket = format!("{name}_bucket");
    let mut out: Vec<Vec<(String, String)>> = bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .map(|b| {
            let mut e = extra.clone();
            e.push(("le", le_label(b)));
            labels(&bucket, job, instance, &e)
        })
        .collect();
    out.push(labels(&format!("{name}_sum"), job, instance, &extra));
    out.push(labels(&format!("{name}_count"), job, instance, &extra));
    out
}

/// Series of one histogram of `family` (buckets with `+Inf`, `_sum`,
/// `_count`).
pub fn histogram_width(family: usize) -> usize {
    HISTOGRAMS[family].2.len() + 3
}

impl Catalog {
    /// About 40% counters, 30% gauges and 30% histogram series (whole
    /// histograms; the few series left over become gauges), exactly
    /// `shape.series` series over `shape.instances` instances.
    pub fn new(shape: &Shape) -> Catalog {
        let inst = shape.instances.max(1);
        let n_counter = shape.series * 4 / 10;
        let hist_budget = shape.series * 3 / 10;
        let mut hist = Vec::new();
        let mut used = 0;
        for h in 0.. {
            let family = (h / inst) % HISTOGRAMS.len();
            let w = histogram_width(family);
            if used + w > hist_budget {
                break;
            }
            used += w;
            hist.push((family, h % inst, h / inst / HISTOGRAMS.len()));
        }
        let n_gauge = shape.series - n_counter - used;
        let mut sources = Vec::with_capacity(n_counter + n_gauge + hist.len());
        let mut push = |kind: Kind, family: usize, series: Vec<Vec<(String, String)>>| {
            let index = sources.len();
            sources.push(Source {
                family,
                kind,
                index,
                series,
            });
        };
        for c in 0..n_counter {
            let family = (c / inst) % COUNTERS.len();
            let k = c / inst / COUNTERS.len();
            push(
                Kind::Counter,
                family,
                vec![counter_labels(family, c % inst, k)],
            );
        }
        for g in 0..n_gauge {
            let family = (g / inst) % GAUGES.len();
            let k = g / inst / GAUGES.len();
            push(Kind::Gauge, family, vec![gauge_labels(family, g % inst, k)]);
        }
        for (family, instance, k) in hist {
            push(
                Kind::Histogram,
                family,
                histogram_labels(family, instance, k),
            );
        }
        Catalog { sources }
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.sources.iter().map(|s| s.series.len()).sum()
    }

    /// Every series' labels, in sending order.
    pub fn series_labels(&self) -> impl Iterator<Item = &Vec<(String, String)>> {
        self.sources.iter().flat_map(|s| s.series.iter())
    }

    /// Series count per kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.sources
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.series.len())
            .sum()
    }
}

/// The values of one source: `out[i][j]` is series `i` of the source at
/// sample `j`.
pub fn values(src: &Source, shape: &Shape) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(shape.seed, src.index as u64);
    let n = shape.points;
    match src.kind {
        Kind::Counter => vec![counter(&mut rng, src.family, n)],
        Kind::Gauge => vec![gauge(&mut rng, src.family, n)],
        Kind::Histogram => histogram(&mut rng, src.family, n),
    }
}

/// Chance per scrape that a counter or histogram restarts from zero.
pub const RESET_PROBABILITY: f64 = 1.0 / 2000.0;

fn poisson(rng: &mut Rng, lambda: f64) -> f64 {
    match Poisson::new(lambda) {
        Ok(p) => p.sample(rng),
        Err(_) => 0.0,
    }
}

fn counter(rng: &mut Rng, family: usize, n: usize) -> Vec<f64> {
    let lambda = match family {
        1 => rng.log_range(1e3, 1e6),   // bytes per scrape
        _ => rng.log_range(0.2, 200.0), // requests per scrape
    };
    let mut v = (rng.unit() * lambda * 10_000.0).floor();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if rng.unit() < RESET_PROBABILITY {
            v = 0.0;
        }
        v += poisson(rng, lambda);
        out.push(v);
    }
    out
}

fn gauge(rng: &mut Rng, family: usize, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    match family {
        0 => {
            // Bytes: integers around 0.1–8 GB, moving by a few MB.
            let mut v = (rng.range(1e8, 8e9) / 4096.0).round() * 4096.0;
            let sd = rng.log_range(1e4, 1e7);
            for _ in 0..n {
                v = (v + (rng.normal() * sd).round()).max(0.0);
                out.push(v);
            }
        }
        1 => {
            // Temperatures with two decimals.
            let mut c = rng.range(3000.0, 8000.0).round();
            for _ in 0..n {
                c = (c + (rng.normal() * 15.0).round()).clamp(2000.0, 10_000.0);
                out.push(c / 100.0);
            }
        }
        _ => {
            // Small integers.
            let mut v = rng.below(100) as f64;
            for _ in 0..n {
                v = (v + rng.below(7) as f64 - 3.0).max(0.0);
                out.push(v);
            }
        }
    }
    out
}

fn histogram(rng: &mut Rng, family: usize, n: usize) -> Vec<Vec<f64>> {
    let bounds = HISTOGRAMS[family].2;
    let nb = bounds.len() + 1;
    let rate = rng.log_range(1.0, 30.0);
    let mu = rng.log_range(0.005, 0.2).ln();
    let sigma = rng.range(0.4, 1.2);
    let mut buckets = vec![0.0; nb];
    let (mut sum, mut count) = (0.0f64, 0.0f64);
    let mut out = vec![Vec::with_capacity(n); nb + 2];
    for _ in 0..n {
        if rng.unit() < RESET_PROBABILITY {
            buckets.iter_mut().for_each(|b| *b = 0.0);
            (sum, count) = (0.0, 0.0);
        }
        let obs = poisson(rng, rate) as usize;
        for _ in 0..obs {
            let x = (mu + sigma * rng.normal()).exp();
            sum += x;
            count += 1.0;
            let first = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len());
            buckets[first..].iter_mut().for_each(|b| *b += 1.0);
        }
        for (i, b) in buckets.iter().enumerate() {
            out[i].push(*b);
        }
        out[nb].push(sum);
        out[nb + 1].push(count);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shape(series: usize) -> Shape {
        Shape {
            series,
            points: 200,
            interval_ms: 15_000,
            end_ms: 1_800_000_000_000,
            instances: 100,
            seed: 7,
        }
    }

    #[test]
    fn proportions_labels_and_uniqueness() {
        let f = |series: usize| {
            let c = Catalog::new(&shape(series));
            assert_eq!(c.series_count(), series);
            let frac = |k| c.count(k) as f64 / series as f64;
            assert!((frac(Kind::Counter) - 0.4).abs() < 0.01, "{series}");
            assert!((frac(Kind::Gauge) - 0.3).abs() < 0.01, "{series}");
            assert!((frac(Kind::Histogram) - 0.3).abs() < 0.01, "{series}");
            let mut seen = HashSet::new();
            let mut instances = HashSet::new();
            for l in c.series_labels() {
                assert!((4..=6).contains(&l.len()), "{l:?}");
                assert!(l.windows(2).all(|w| w[0].0 < w[1].0), "unsorted {l:?}");
                assert!(seen.insert(l.clone()), "duplicate series {l:?}");
                if let Some((_, v)) = l.iter().find(|(n, _)| n == "instance") {
                    instances.insert(v.clone());
                }
            }
            assert_eq!(instances.len(), 100);
        };
        f(5_000);
        f(50_000);
        f(123_457);
    }

    #[test]
    fn same_seed_same_values_other_seed_other_values() {
        let s = shape(3_000);
        let c = Catalog::new(&s);
        for src in c.sources.iter().step_by(97) {
            assert_eq!(values(src, &s), values(src, &s));
            let other = Shape {
                seed: 8,
                ..s.clone()
            };
            assert_ne!(values(src, &s), values(src, &other));
        }
    }

    #[test]
    fn series_shapes() {
        let s = shape(6_000);
        let c = Catalog::new(&s);
        let mut resets = 0;
        for src in &c.sources {
            let v = values(src, &s);
            assert_eq!(v.len(), src.series.len());
            assert!(v.iter().all(|x| x.len() == s.points));
            match (src.kind, src.family) {
                (Kind::Counter, _) => {
                    for w in v[0].windows(2) {
                        if w[1] < w[0] {
                            resets += 1;
                        }
                    }
                    assert!(v[0].iter().all(|x| *x >= 0.0 && x.fract() == 0.0));
                }
                (Kind::Gauge, 1) => {
                    assert!(v[0]
                        .iter()
                        .all(|x| ((x * 100.0).round() / 100.0 - x).abs() < 1e-9));
                    assert!(v[0].iter().any(|x| x.fract() != 0.0));
                }
                (Kind::Gauge, _) => assert!(v[0].iter().all(|x| x.fract() == 0.0)),
                (Kind::Histogram, _) => {
                    let nb = v.len() - 2;
                    assert!((10..=12).contains(&nb), "{nb} buckets");
                    for w in v[..nb].windows(2) {
                        let ok = w[0].iter().zip(&w[1]).all(|(lo, hi)| hi >= lo);
                        assert!(ok, "buckets not cumulative");
                    }
                    assert_eq!(v[nb - 1], v[nb + 1], "+Inf bucket != count");
                    assert!(v[nb].iter().all(|x| *x >= 0.0), "negative _sum");
                    let le: Vec<&str> = src.series[..nb]
                        .iter()
                        .map(|l| {
                            l.iter()
                                .find(|(n, _)| n == "le")
                                .map(|(_, v)| v.as_str())
                                .unwrap_or("")
                        })
                        .collect();
                    assert_eq!(le.last(), Some(&"+Inf"));
                    // Sorted labels start with __name__ ('_' < 'a').
                    assert!(src.series[nb][0].1.ends_with("_sum"));
                    assert!(src.series[nb + 1][0].1.ends_with("_count"));
                }
            }
        }
        // 2400 counters × 199 steps at 1/2000 per step: about 240 resets.
        assert!((100..500).contains(&resets), "{resets} resets");
    }

    #[test]
    fn timestamps_end_at_end_ms() {
        let s = shape(10);
        assert_eq!(s.ts(s.points - 1), s.end_ms);
        assert_eq!(s.ts(0), s.end_ms - 199 * 15_000);
        assert_eq!(s.samples(), 2_000);
    }

    #[test]
    fn le_labels_look_like_prometheus() {
        assert_eq!(le_label(0.005), "0.005");
        assert_eq!(le_label(1.0), "1");
        assert_eq!(le_label(2.5), "2.5");
        assert_eq!(le_label(f64::INFINITY), "+Inf");
    }
}
