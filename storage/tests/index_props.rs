//! Property test (issue 13): for random series sets, time ranges and
//! matchers, the shard's in-memory inverted index answers `label_names`,
//! `label_values`, `series` and `select` exactly as a scan of every series
//! does, also after retention removed series and after a reopen (the index
//! rebuilt from disk).

mod common;

use std::collections::BTreeSet;

use common::*;
use model::{Label, Labels, MatchOp, Matcher, Sample};
use proptest::prelude::*;
use storage::{Db, SeriesRef, SeriesSamples, Shard, StorageOptions, WriteBatch};

const NAMES: [&str; 3] = ["a", "b", "c"];
const VALUES: [&str; 4] = ["x", "y", "xy", "z.1"];
const METRICS: [&str; 3] = ["m1", "m2", "m3"];

/// A generated series: metric, optional values of a, b, c, first sample
/// time, number of samples (one a minute; none makes a series without
/// samples, which no answer shows).
#[derive(Clone, Debug)]
struct Gen {
    metric: usize,
    vals: [Option<usize>; 3],
    start: i64,
    n: i64,
}

impl Gen {
    fn labels(&self) -> Labels {
        let mut v = vec![Label::new("__name__", METRICS[self.metric])];
        for (i, val) in self.vals.iter().enumerate() {
            if let Some(x) = val {
                v.push(Label::new(NAMES[i], VALUES[*x]));
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Labels::from_sorted(v)
    }
    fn last(&self) -> i64 {
        self.start + (self.n - 1) * 60_000
    }
}

fn gen_series() -> impl Strategy<Value = Gen> {
    (
        0..METRICS.len(),
        proptest::array::uniform3(proptest::option::of(0..VALUES.len())),
        0i64..20,
        prop_oneof![1 => Just(0i64), 6 => 1i64..10],
    )
        .prop_map(|(metric, vals, start, n)| Gen {
            metric,
            vals,
            start: start * 60_000,
            n,
        })
}

fn gen_matcher() -> impl Strategy<Value = Matcher> {
    let name = prop_oneof![
        Just("__name__"),
        Just("a"),
        Just("b"),
        Just("c"),
        Just("nope")
    ];
    let value = prop_oneof![
        Just(""),
        Just("x"),
        Just("y"),
        Just("xy"),
        Just("m1"),
        Just("x.*"),
        Just(".*"),
        Just(".+"),
        Just("x|y"),
        Just("(y|z\\.1)"),
        Just("m1|m3"),
        Just("y?"),
        Just("z.1"),
    ];
    let op = prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::RegexMatch),
        Just(MatchOp::RegexNoMatch)
    ];
    (op, name, value).prop_map(|(op, n, v)| Matcher::new(op, n, v).unwrap())
}

/// What a scan of `set` answers.
/// A series of the model: labels, first and last sample time, and the time
/// of every accepted sample (duplicate label sets may leave gaps).
type Entry = (Labels, i64, i64, Vec<i64>);

struct Scan<'a> {
    set: &'a [Entry],
}

impl Scan<'_> {
    fn matching(&self, ms: &[Matcher], min_t: i64, max_t: i64) -> Vec<&Labels> {
        let mut v: Vec<&Labels> = self
            .set
            .iter()
            .filter(|(l, a, b, ts)| {
                !ts.is_empty()
                    && *a <= max_t
                    && *b >= min_t
                    && ms.iter().all(|m| m.matches_labels(l))
            })
            .map(|(l, _, _, _)| l)
            .collect();
        v.sort();
        v
    }
    /// What `select` answers: only series with a sample in the range (the
    /// metadata calls go by the overlap of first and last sample).
    fn with_samples(&self, ms: &[Matcher], min_t: i64, max_t: i64) -> Vec<Labels> {
        let mut v: Vec<Labels> = self
            .set
            .iter()
            .filter(|(l, _, _, ts)| {
                ts.iter().any(|t| (min_t..=max_t).contains(t))
                    && ms.iter().all(|m| m.matches_labels(l))
            })
            .map(|(l, _, _, _)| l.clone())
            .collect();
        v.sort();
        v
    }
    fn names(&self, ms: &[Matcher], min_t: i64, max_t: i64) -> Vec<String> {
        let s: BTreeSet<String> = self
            .matching(ms, min_t, max_t)
            .iter()
            .flat_map(|l| l.iter().map(|x| x.name.clone()))
            .collect();
        s.into_iter().collect()
    }
    fn values(&self, name: &str, ms: &[Matcher], min_t: i64, max_t: i64) -> Vec<String> {
        let s: BTreeSet<String> = self
            .matching(ms, min_t, max_t)
            .iter()
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        s.into_iter().collect()
    }
}

fn check(sh: &Shard, set: &[Entry], ms: &[Matcher], min_t: i64, max_t: i64) {
    let scan = Scan { set };
    let ctx = format!("matchers {ms:?}, range [{min_t}, {max_t}]");
    let has_selecting = ms.iter().any(|m| !m.matches_empty());
    // labels / label values without matchers
    assert_eq!(
        sh.label_names(&[], min_t, max_t).unwrap(),
        scan.names(&[], min_t, max_t),
        "{ctx}"
    );
    for n in ["__name__", "a", "c", "nope"] {
        assert_eq!(
            sh.label_values(n, &[], min_t, max_t).unwrap(),
            scan.values(n, &[], min_t, max_t),
            "values of {n}, {ctx}"
        );
    }
    if !has_selecting {
        assert!(sh.series(ms, min_t, max_t).is_err(), "{ctx}");
        assert!(sh.label_names(ms, min_t, max_t).is_err(), "{ctx}");
        return;
    }
    let want: Vec<Labels> = scan
        .matching(ms, min_t, max_t)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(sh.series(ms, min_t, max_t).unwrap(), want, "series, {ctx}");
    let got: Vec<Labels> = sh
        .select(ms, min_t, max_t)
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect();
    assert_eq!(got, scan.with_samples(ms, min_t, max_t), "select, {ctx}");
    assert_eq!(
        sh.label_names(ms, min_t, max_t).unwrap(),
        scan.names(ms, min_t, max_t),
        "{ctx}"
    );
    for n in ["__name__", "a", "b", "nope"] {
        assert_eq!(
            sh.label_values(n, ms, min_t, max_t).unwrap(),
            scan.values(n, ms, min_t, max_t),
            "values of {n}, {ctx}"
        );
    }
}

fn write(sh: &Shard, log_index: u64, gens: &[Gen]) {
    let batch = WriteBatch::Samples(
        gens.iter()
            .map(|g| SeriesSamples {
                series: SeriesRef::Labels(g.labels()),
                samples: (0..g.n)
                    .map(|i| Sample {
                        t: g.start + i * 60_000,
                        v: i as f64,
                    })
                    .collect(),
            })
            .collect(),
    );
    sh.apply(log_index, &batch).unwrap();
}

/// The expected set: one entry per distinct label set (the first generated
/// wins; later duplicates append samples only when newer).
fn expected(gens: &[Gen]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for g in gens {
        let l = g.labels();
        let times = (0..g.n).map(|i| g.start + i * 60_000);
        match out.iter_mut().find(|(x, _, _, _)| *x == l) {
            // a series without samples takes all of them
            Some(e) if e.3.is_empty() => *e = (l, g.start, g.last(), times.collect()),
            Some(e) => {
                // samples not newer than the newest are rejected (out of order)
                let newest = e.2;
                e.3.extend(times.filter(|t| *t > newest));
                if g.n > 0 && g.last() > e.2 {
                    e.2 = g.last();
                }
            }
            None => out.push((l, g.start, g.last(), times.collect())),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn index_answers_what_a_scan_answers(
        gens in proptest::collection::vec(gen_series(), 1..40),
        queries in proptest::collection::vec(
            (proptest::collection::vec(gen_matcher(), 1..4), 0i64..30, 0i64..30),
            1..6,
        ),
        cutoff in proptest::option::of(0i64..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut set = {
            let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
            let sh = db.shard(0).unwrap();
            // one series per entry, so each series' samples are in order
            for (i, g) in gens.iter().enumerate() {
                write(&sh, i as u64 + 1, std::slice::from_ref(g));
            }
            let mut set = expected(&gens);
            if let Some(c) = cutoff {
                let cutoff_ms = c * 60_000;
                sh.apply(gens.len() as u64 + 1, &WriteBatch::Retention { cutoff_ms }).unwrap();
                // retention also removes series without samples
                set.retain(|(_, _, last, ts)| !ts.is_empty() && *last >= cutoff_ms);
            }
            for (ms, a, b) in &queries {
                let (a, b) = (a.min(b) * 60_000, a.max(b) * 60_000);
                check(&sh, &set, ms, a, b);
                check(&sh, &set, ms, i64::MIN, i64::MAX);
            }
            // a checkpoint makes the shard's time bounds exact: ranges that
            // cover every series skip the per-series check
            sh.checkpoint().unwrap();
            for (ms, a, b) in &queries {
                let (a, b) = (a.min(b) * 60_000, a.max(b) * 60_000);
                check(&sh, &set, ms, a, b);
                check(&sh, &set, ms, 0, 30 * 60_000);
            }
            set
        };
        // reopen: the index is rebuilt from the series column family
        let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
        let sh = db.shard(0).unwrap();
        set.sort();
        for (ms, a, b) in &queries {
            let (a, b) = (a.min(b) * 60_000, a.max(b) * 60_000);
            check(&sh, &set, ms, a, b);
        }
    }
}

/// Many series removed by retention at once (more than the index removes
/// lazily) leave no trace in any answer.
#[test]
fn mass_retention_leaves_no_trace() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let n = 20_000i64;
    let batch = WriteBatch::Samples(
        (0..n)
            .map(|i| {
                let l = lbl(
                    if i % 2 == 0 { "even" } else { "odd" },
                    &[("i", &i.to_string()), ("g", &(i % 7).to_string())],
                );
                series(&l, &[(i, 1.0)])
            })
            .collect(),
    );
    sh.apply(1, &batch).unwrap();
    // series 0..15000 go: above the lazy-removal threshold
    sh.apply(2, &WriteBatch::Retention { cutoff_ms: 15_000 })
        .unwrap();
    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    let got = sh.series(&all, i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), 5_000);
    let vals = sh.label_values("i", &[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(vals.len(), 5_000);
    assert!(!vals.contains(&"14999".to_string()));
    assert!(vals.contains(&"15000".to_string()));
    let even = sh
        .label_values("i", &[Matcher::equal("__name__", "even")], 0, 15_008)
        .unwrap();
    assert_eq!(even, vec!["15000", "15002", "15004", "15006", "15008"][..]);
    let stats = sh.tsdb_stats();
    assert_eq!(stats.num_series, 5_000);
}

/// The time spans the index keeps per series (set at a series' first
/// sample, moved on at checkpoints) answer only for series they prove
/// overlap the range: a series without samples, one whose newest sample is
/// older than the range, one that moved on since the last checkpoint and
/// series removed by retention (still in the postings) are answered right,
/// whether the spans are behind (between checkpoints) or exact (after one).
#[test]
fn time_spans_answer_exactly() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let vals = |sh: &Shard, a: i64, b: i64| sh.label_values("i", &[], a, b).unwrap();
    let sel = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    let matched = |sh: &Shard, a: i64, b: i64| sh.label_values("i", &sel, a, b).unwrap();
    sh.apply(
        1,
        &WriteBatch::Samples(vec![
            series(&lbl("m", &[("i", "1")]), &[(100, 1.0), (200, 1.0)]),
            series(&lbl("m", &[("i", "2")]), &[(150, 1.0)]),
            // no samples
            series(&lbl("m", &[("i", "3")]), &[]),
        ]),
    )
    .unwrap();
    for _ in 0..2 {
        assert_eq!(vals(&sh, i64::MIN, i64::MAX), ["1", "2"]);
        assert_eq!(matched(&sh, i64::MIN, i64::MAX), ["1", "2"]);
        assert_eq!(vals(&sh, 160, 1000), ["1"]);
        assert_eq!(vals(&sh, 0, 120), ["1"]);
        sh.checkpoint().unwrap();
    }
    // the series without samples gets one: it counts from now on
    sh.apply(
        2,
        &WriteBatch::Samples(vec![series(&lbl("m", &[("i", "3")]), &[(300, 1.0)])]),
    )
    .unwrap();
    assert_eq!(vals(&sh, i64::MIN, i64::MAX), ["1", "2", "3"]);
    assert_eq!(vals(&sh, 0, 1000), ["1", "2", "3"]);
    assert_eq!(vals(&sh, 250, 1000), ["3"]);
    // series 1 moves on: its span stays where it was until a checkpoint
    sh.apply(
        3,
        &WriteBatch::Samples(vec![
            series(&lbl("m", &[("i", "1")]), &[(400, 1.0)]),
            series(&lbl("m", &[("i", "4")]), &[]),
        ]),
    )
    .unwrap();
    assert_eq!(vals(&sh, 350, 1000), ["1"]);
    assert_eq!(vals(&sh, i64::MIN, i64::MAX), ["1", "2", "3"]);
    // retention drops 2 (newest 150) and the empty 4; both stay in the
    // postings (lazy removal) while every other series overlaps
    sh.apply(4, &WriteBatch::Retention { cutoff_ms: 160 })
        .unwrap();
    for _ in 0..2 {
        assert_eq!(vals(&sh, i64::MIN, i64::MAX), ["1", "3"]);
        assert_eq!(matched(&sh, i64::MIN, i64::MAX), ["1", "3"]);
        assert_eq!(vals(&sh, 0, 1000), ["1", "3"]);
        assert_eq!(vals(&sh, 350, 1000), ["1"]);
        assert_eq!(sh.label_names(&[], 0, 1000).unwrap(), ["__name__", "i"]);
        sh.checkpoint().unwrap();
    }
    drop(sh);
    drop(db);
    let db = Db::open(_d.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(0).unwrap();
    assert_eq!(vals(&sh, i64::MIN, i64::MAX), ["1", "3"]);
    assert_eq!(vals(&sh, 350, 1000), ["1"]);
}
