//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use model::{Labels, Matcher, Sample};
use storage::{Db, SeriesRef, SeriesSamples, Shard, StorageOptions, WriteBatch};

/// Opens a DB in a fresh temp dir.
pub fn open(opts: StorageOptions) -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    (dir, db)
}

/// `{__name__=name, k=v...}`.
pub fn lbl(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    v.extend(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    Labels::from_pairs(v)
}

/// A batch with one series named by labels.
pub fn batch(l: &Labels, samples: &[(i64, f64)]) -> WriteBatch {
    WriteBatch::Samples(vec![series(l, samples)])
}

/// One `SeriesSamples` by labels.
pub fn series(l: &Labels, samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        series: SeriesRef::Labels(l.clone()),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

/// `(t, value bits)` of the samples of the one series matching `m`.
pub fn bits(shard: &Shard, m: &[Matcher], min_t: i64, max_t: i64) -> Vec<(i64, u64)> {
    let got = shard.select(m, min_t, max_t).unwrap();
    assert!(
        got.len() <= 1,
        "expected at most one series, got {}",
        got.len()
    );
    got.first()
        .map(|s| s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect())
        .unwrap_or_default()
}

/// Every series of a shard as `(labels, [(t, bits)])`, for bit-exact
/// comparisons.
pub fn dump(shard: &Shard) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let m = [Matcher::new(model::MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    shard
        .select(&m, i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels,
                s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

/// A deterministic batch number `i` (used by the crash test): `n_series`
/// series, 3 samples each at 15 s steps, values with awkward bit patterns.
pub fn det_batch(i: u64, n_series: u64) -> WriteBatch {
    let mut v = Vec::new();
    for s in 0..n_series {
        let l = lbl(
            "crash_metric",
            &[
                ("series", &s.to_string()),
                ("kind", if s % 2 == 0 { "even" } else { "odd" }),
            ],
        );
        let samples: Vec<(i64, f64)> = (0..3)
            .map(|k| {
                let t = ((i * 3 + k) * 15_000) as i64;
                let v = match (i + k + s) % 5 {
                    0 => f64::from_bits(0x7ff0_0000_0000_0002),
                    1 => -0.0,
                    2 => (i * 7 + s) as f64 * 0.1,
                    3 => f64::from_bits(1), // subnormal
                    _ => (i + s) as f64,
                };
                (t, v)
            })
            .collect();
        v.push(series(&l, &samples));
    }
    WriteBatch::Samples(v)
}
