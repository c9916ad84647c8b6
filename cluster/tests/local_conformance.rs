//! The same read assertions through every read surface: `Shard::select` and
//! friends, and `cluster::LocalQueryable` (the query engine's `Queryable` over local
//! shards).

use std::sync::Arc;

use cluster::LocalQueryable;
use model::{Labels, MatchOp, Matcher, Sample, SeriesData};
use query::model::Queryable;
use storage::{Db, SeriesRef, SeriesSamples, Shard, StorageOptions, WriteBatch};

fn open(opts: StorageOptions) -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    (dir, db)
}

/// `{__name__=name, k=v...}`.
fn lbl(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    v.extend(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    Labels::from_pairs(v)
}

/// One `SeriesSamples` by labels.
fn series(l: &Labels, samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        series: SeriesRef::Labels(l.clone()),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

/// One read surface.
trait Reader {
    fn select(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<SeriesData>, String>;
    fn names(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String>;
    fn values(&self, n: &str, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String>;
    fn series(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<Labels>, String>;
}

/// Reads straight from shards, merged by hand.
struct Direct(Vec<Arc<Shard>>);

impl Reader for Direct {
    fn select(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<SeriesData>, String> {
        let mut v = Vec::new();
        for s in &self.0 {
            v.extend(s.select(m, a, b).map_err(|e| e.to_string())?);
        }
        v.sort_by(|x, y| x.labels.cmp(&y.labels));
        Ok(v)
    }
    fn names(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for s in &self.0 {
            v.extend(s.label_names(m, a, b).map_err(|e| e.to_string())?);
        }
        v.sort();
        v.dedup();
        Ok(v)
    }
    fn values(&self, n: &str, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for s in &self.0 {
            v.extend(s.label_values(n, m, a, b).map_err(|e| e.to_string())?);
        }
        v.sort();
        v.dedup();
        Ok(v)
    }
    fn series(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<Labels>, String> {
        let mut v = Vec::new();
        for s in &self.0 {
            v.extend(s.series(m, a, b).map_err(|e| e.to_string())?);
        }
        v.sort();
        Ok(v)
    }
}

/// Reads through the `Queryable` trait.
struct ViaQueryable(LocalQueryable, tokio::runtime::Runtime);

impl Reader for ViaQueryable {
    fn select(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<SeriesData>, String> {
        self.1
            .block_on(self.0.select(m, a, b))
            .map(|r| r.series)
            .map_err(|e| e.to_string())
    }
    fn names(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String> {
        self.1
            .block_on(self.0.label_names(m, a, b))
            .map_err(|e| e.to_string())
    }
    fn values(&self, n: &str, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>, String> {
        self.1
            .block_on(self.0.label_values(n, m, a, b))
            .map_err(|e| e.to_string())
    }
    fn series(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<Labels>, String> {
        self.1
            .block_on(self.0.series(m, a, b))
            .map_err(|e| e.to_string())
    }
}

fn suite(r: &dyn Reader, what: &str) {
    let re = |n: &str, v: &str| Matcher::new(MatchOp::RegexMatch, n, v).unwrap();
    // 6 series over 2 shards; samples every 10 s from 0 to 990 s
    let all = r.select(&[re("__name__", "req_.*")], 0, i64::MAX).unwrap();
    assert_eq!(all.len(), 6, "{what}");
    assert!(
        all.windows(2).all(|w| w[0].labels < w[1].labels),
        "{what}: sorted"
    );
    assert!(all.iter().all(|s| s.samples.len() == 100), "{what}");
    let api = r
        .select(&[Matcher::equal("job", "api")], 100_000, 199_999)
        .unwrap();
    assert_eq!(api.len(), 3, "{what}");
    assert!(
        api.iter()
            .all(|s| s.samples.len() == 10 && s.samples[0].t == 100_000),
        "{what}"
    );
    // stale marker kept bit-exactly
    let stale = r
        .select(&[Matcher::equal("i", "0")], 990_000, 990_000)
        .unwrap();
    assert_eq!(
        stale[0].samples[0].v.to_bits(),
        0x7ff0_0000_0000_0002,
        "{what}"
    );
    // empty range, missing label, bad selector
    assert!(
        r.select(&[Matcher::equal("job", "api")], 2_000_000, 3_000_000)
            .unwrap()
            .is_empty(),
        "{what}"
    );
    assert_eq!(
        r.series(
            &[Matcher::equal("job", "web"), Matcher::equal("zone", "")],
            0,
            i64::MAX
        )
        .unwrap()
        .len(),
        3,
        "{what}"
    );
    assert!(r.select(&[re("job", ".*")], 0, 10).is_err(), "{what}");
    assert_eq!(
        r.names(&[], 0, i64::MAX).unwrap(),
        vec!["__name__", "i", "job"],
        "{what}"
    );
    assert_eq!(
        r.values("job", &[], 0, i64::MAX).unwrap(),
        vec!["api", "web"],
        "{what}"
    );
    assert_eq!(
        r.values("i", &[Matcher::equal("job", "web")], 0, i64::MAX)
            .unwrap(),
        vec!["1", "3", "5"],
        "{what}"
    );
}

#[test]
fn shard_reads_and_local_queryable_agree() {
    let (_d, db) = open(StorageOptions::default());
    let shards = vec![db.shard(0).unwrap(), db.shard(1).unwrap()];
    for i in 0..6u32 {
        let l = lbl(
            "req_total",
            &[
                ("job", if i % 2 == 0 { "api" } else { "web" }),
                ("i", &i.to_string()),
            ],
        );
        let mut s: Vec<(i64, f64)> = (0..99)
            .map(|k| (k * 10_000, f64::from(k as u32 * i)))
            .collect();
        s.push((990_000, f64::from_bits(0x7ff0_0000_0000_0002)));
        let sh = &shards[(i % 2) as usize];
        sh.apply(u64::from(i) + 1, &WriteBatch::Samples(vec![series(&l, &s)]))
            .unwrap();
    }
    shards[0].checkpoint().unwrap(); // one shard persisted, one only in memory
    let direct = Direct(shards.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let via = ViaQueryable(LocalQueryable::new(shards), rt);
    suite(&direct, "Shard");
    suite(&via, "LocalQueryable");
    let m = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    // Compared bit-exactly: the stale markers are NaN, which `==` rejects.
    let bits = |v: Vec<SeriesData>| -> Vec<(Labels, Vec<(i64, u64)>)> {
        v.into_iter()
            .map(|s| {
                let samples = s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect();
                (s.labels, samples)
            })
            .collect()
    };
    let want = bits(direct.select(&m, 0, i64::MAX).unwrap());
    assert_eq!(want.len(), 6);
    assert!(want.iter().all(|(_, s)| s.len() == 100));
    assert_eq!(want, bits(via.select(&m, 0, i64::MAX).unwrap()));
}
