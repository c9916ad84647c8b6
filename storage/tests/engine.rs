//! Head, index, checkpoint, retention and out-of-order behaviour of a shard.

mod common;

use common::*;
use model::{MatchOp, Matcher, Sample};
use storage::{ErrorKind, RejectReason, SeriesRef, SeriesSamples, StorageOptions, WriteBatch};

fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
    Matcher::new(op, n, v).unwrap()
}

#[test]
fn apply_select_and_seal_across_chunks() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(3).unwrap();
    let l = lbl("cpu", &[("host", "a")]);
    // 300 samples at 15 s: 3 chunks by count (120, 120, 60)
    let samples: Vec<(i64, f64)> = (0..300).map(|i| (i * 15_000, i as f64 * 1.5)).collect();
    let out = sh.apply(1, &batch(&l, &samples)).unwrap();
    assert_eq!(out.accepted, 300);
    assert_eq!(out.series_ids, vec![Some(1)]);
    let st = sh.stats();
    assert_eq!(
        (st.series, st.sealed_chunks_in_memory, st.head_samples),
        (1, 2, 60)
    );
    let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    let eq = [Matcher::equal("host", "a")];
    assert_eq!(bits(&sh, &eq, i64::MIN, i64::MAX), want);
    // after checkpoint the sealed chunks come from RocksDB
    sh.checkpoint().unwrap();
    assert_eq!(sh.stats().sealed_chunks_in_memory, 0);
    assert_eq!(bits(&sh, &eq, i64::MIN, i64::MAX), want);
    // a sub-range straddling chunk boundaries
    assert_eq!(
        bits(&sh, &eq, 1_000_000, 2_000_000),
        want[67..=133].to_vec()
    );
    // chunks for transport
    let sc = sh.select_chunks(&eq, 0, i64::MAX).unwrap();
    assert_eq!(sc[0].chunks.len(), 3);
    assert_eq!(
        storage::merge_chunks(&sc[0].chunks, 0, i64::MAX)
            .unwrap()
            .len(),
        300
    );
}

#[test]
fn seals_when_span_exceeds_two_hours() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let l = lbl("slow", &[]);
    let hour = 3_600_000;
    sh.apply(
        1,
        &batch(
            &l,
            &[(0, 1.0), (hour, 2.0), (2 * hour, 3.0), (2 * hour + 1, 4.0)],
        ),
    )
    .unwrap();
    let sc = sh
        .select_chunks(&[Matcher::equal("__name__", "slow")], 0, i64::MAX)
        .unwrap();
    let ranges: Vec<(i64, i64)> = sc[0].chunks.iter().map(|c| (c.min_t, c.max_t)).collect();
    assert_eq!(ranges, vec![(0, 2 * hour), (2 * hour + 1, 2 * hour + 1)]);
}

#[test]
fn out_of_order_duplicates_and_rejections() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let l = lbl("x", &[]);
    sh.apply(1, &batch(&l, &[(100, 1.0), (200, 2.0)])).unwrap();
    let nan = f64::from_bits(0x7ff8_0000_0000_0001);
    let out = sh
        .apply(
            2,
            &batch(
                &l,
                &[
                    (200, 2.0),
                    (200, 3.0),
                    (150, 9.0),
                    (300, nan),
                    (300, nan),
                    (250, 1.0),
                ],
            ),
        )
        .unwrap();
    // identical duplicate is a no-op (accepted), 300 stored, the rest rejected
    assert_eq!(out.accepted, 3);
    let reasons: Vec<(RejectReason, u64)> =
        out.rejected.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        vec![(RejectReason::OutOfOrder, 2), (RejectReason::Duplicate, 1)]
    );
    assert!(
        out.rejected[0]
            .example
            .starts_with("out of order sample: series {__name__=\"x\"}"),
        "{}",
        out.rejected[0].example
    );
    assert_eq!(
        RejectReason::Duplicate.to_string(),
        "duplicate sample for timestamp"
    );
    let got = bits(&sh, &[Matcher::equal("__name__", "x")], 0, 1000);
    assert_eq!(
        got,
        vec![
            (100, 1f64.to_bits()),
            (200, 2f64.to_bits()),
            (300, nan.to_bits())
        ]
    );
}

#[test]
fn out_of_order_window_merges_at_read() {
    let opts = StorageOptions {
        out_of_order_window_ms: 1000,
        ..Default::default()
    };
    let (_d, db) = open(opts);
    let sh = db.shard(0).unwrap();
    let l = lbl("late", &[]);
    sh.apply(1, &batch(&l, &[(1000, 1.0), (2000, 2.0)]))
        .unwrap();
    let out = sh
        .apply(
            2,
            &batch(
                &l,
                &[
                    (1500, 1.5),
                    (1500, 1.5),
                    (1200, 1.2),
                    (1000, 7.0),
                    (1001, 0.9),
                    (500, 0.5),
                ],
            ),
        )
        .unwrap();
    let reasons: Vec<(RejectReason, u64)> =
        out.rejected.iter().map(|r| (r.reason, r.count)).collect();
    // 1000 clashes with the head chunk; 500 is older than 2000 - 1000
    assert_eq!(
        reasons,
        vec![(RejectReason::TooOld, 1), (RejectReason::Duplicate, 1)]
    );
    assert_eq!(out.accepted, 4);
    let want = |sh: &storage::Shard| {
        let got = bits(sh, &[Matcher::equal("__name__", "late")], 0, 5000);
        let ts: Vec<i64> = got.iter().map(|x| x.0).collect();
        assert_eq!(ts, vec![1000, 1001, 1200, 1500, 2000]);
        assert_eq!(got[0].1, 1f64.to_bits());
    };
    want(&sh);
    // many OOO samples get sealed into OOO chunks; checkpoint + reopen keeps all
    let ooo: Vec<(i64, f64)> = (0..99).map(|i| (1002 + i * 2, i as f64)).collect();
    assert_eq!(sh.apply(3, &batch(&l, &ooo)).unwrap().accepted, 99);
    sh.checkpoint().unwrap();
    drop(sh);
    let dir = _d;
    drop(db);
    let db = storage::Db::open(
        dir.path(),
        StorageOptions {
            out_of_order_window_ms: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let sh = db.shard(0).unwrap();
    let got = bits(&sh, &[Matcher::equal("__name__", "late")], 0, 5000);
    assert_eq!(got.len(), 104);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn invalid_labels_and_unknown_ids_are_rejected_per_series() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let good = lbl("ok", &[]);
    let bad = model::Labels::from_pairs([("job", "no_name")]);
    let b = WriteBatch::Samples(vec![
        series(&bad, &[(1, 1.0), (2, 2.0)]),
        series(&good, &[(1, 1.0)]),
        SeriesSamples {
            series: SeriesRef::Id(77),
            samples: vec![Sample { t: 1, v: 1.0 }],
        },
    ]);
    let out = sh.apply(1, &b).unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.series_ids, vec![None, Some(1), None]);
    let reasons: Vec<(RejectReason, u64)> =
        out.rejected.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        vec![
            (RejectReason::InvalidLabels, 2),
            (RejectReason::UnknownSeriesId, 1)
        ]
    );
    assert!(
        out.rejected[0].example.contains("missing metric name"),
        "{}",
        out.rejected[0].example
    );
    // by id works once known
    let b = WriteBatch::Samples(vec![SeriesSamples {
        series: SeriesRef::Id(1),
        samples: vec![Sample { t: 5, v: 5.0 }],
    }]);
    assert_eq!(sh.apply(2, &b).unwrap().accepted, 1);
    assert_eq!(sh.lookup(&good), Some(1));
    assert_eq!(sh.lookup(&bad), None);
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let series_set = [
        lbl("http", &[("code", "200"), ("job", "api")]),
        lbl("http", &[("code", "500"), ("job", "api")]),
        lbl("http", &[("job", "web")]),
        lbl("cpu", &[("job", "api"), ("mode", "idle")]),
    ];
    let b = WriteBatch::Samples(series_set.iter().map(|l| series(l, &[(10, 1.0)])).collect());
    sh.apply(1, &b).unwrap();
    // check both before (in-memory new series) and after checkpoint (postings)
    for round in 0..2 {
        let f = |ms: Vec<Matcher>, want: &[usize]| {
            let got: Vec<_> = sh.series(&ms, 0, 100).unwrap();
            let mut want: Vec<_> = want.iter().map(|&i| series_set[i].clone()).collect();
            want.sort();
            assert_eq!(got, want, "round {round}: {ms:?}");
        };
        f(vec![Matcher::equal("__name__", "http")], &[0, 1, 2]);
        f(
            vec![
                Matcher::equal("__name__", "http"),
                m(MatchOp::Equal, "code", ""),
            ],
            &[2],
        );
        f(
            vec![
                Matcher::equal("__name__", "http"),
                m(MatchOp::NotEqual, "code", ""),
            ],
            &[0, 1],
        );
        f(vec![m(MatchOp::RegexMatch, "code", "2..|5.*")], &[0, 1]);
        f(vec![m(MatchOp::RegexMatch, "code", "0")], &[]); // anchored
        f(
            vec![
                m(MatchOp::RegexMatch, "job", "api"),
                m(MatchOp::RegexNoMatch, "code", "5.*"),
            ],
            &[0, 3],
        );
        f(
            vec![
                m(MatchOp::RegexMatch, "job", ".+"),
                m(MatchOp::NotEqual, "job", "api"),
            ],
            &[2],
        );
        f(vec![m(MatchOp::NotEqual, "job", "")], &[0, 1, 2, 3]);
        f(vec![Matcher::equal("job", "nope")], &[]);
        // time range excludes everything
        assert!(sh
            .series(&[Matcher::equal("job", "api")], 11, 100)
            .unwrap()
            .is_empty());
        // every matcher matches "": an error of kind BadData
        let e = sh
            .select(&[m(MatchOp::RegexMatch, "job", ".*")], 0, 100)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadData);
        assert_eq!(
            sh.label_names(&[], 0, 100).unwrap(),
            vec!["__name__", "code", "job", "mode"]
        );
        assert_eq!(
            sh.label_names(&[Matcher::equal("__name__", "cpu")], 0, 100)
                .unwrap(),
            vec!["__name__", "job", "mode"]
        );
        assert_eq!(
            sh.label_values("job", &[], 0, 100).unwrap(),
            vec!["api", "web"]
        );
        assert_eq!(
            sh.label_values("code", &[Matcher::equal("job", "api")], 0, 100)
                .unwrap(),
            vec!["200", "500"]
        );
        sh.checkpoint().unwrap();
    }
}

#[test]
fn reopen_restores_head_index_and_meta_and_replay_is_a_noop() {
    let dir = tempfile::tempdir().unwrap();
    let l = lbl("up", &[("job", "a")]);
    let want;
    {
        let db = storage::Db::open(dir.path(), StorageOptions::default()).unwrap();
        let sh = db.shard(5).unwrap();
        let s: Vec<(i64, f64)> = (0..130).map(|i| (i * 1000, i as f64)).collect();
        sh.apply(10, &batch(&l, &s)).unwrap();
        sh.set_user_meta(b"raft-meta".to_vec());
        sh.checkpoint().unwrap();
        assert_eq!(sh.checkpointed_index(), 10);
        // applied but not checkpointed: lost on reopen (the Raft log replays it)
        sh.apply(11, &batch(&l, &[(200_000, 1.0)])).unwrap();
        sh.apply_noop(12);
        assert_eq!(sh.applied_index(), 12);
        want = s;
    }
    let db = storage::Db::open(dir.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(5).unwrap();
    assert!(std::sync::Arc::ptr_eq(&sh, &db.shard(5).unwrap()));
    assert_eq!(sh.applied_index(), 10);
    assert_eq!(sh.user_meta().as_deref(), Some(&b"raft-meta"[..]));
    let got = bits(&sh, &[Matcher::equal("job", "a")], i64::MIN, i64::MAX);
    assert_eq!(
        got,
        want.iter()
            .map(|&(t, v)| (t, v.to_bits()))
            .collect::<Vec<_>>()
    );
    // replaying an already checkpointed entry changes nothing
    let again = sh.apply(10, &batch(&l, &[(500_000, 9.0)])).unwrap();
    assert!(again.already_applied);
    assert_eq!(again.series_ids, vec![Some(1)]);
    assert_eq!(
        bits(&sh, &[Matcher::equal("job", "a")], i64::MIN, i64::MAX).len(),
        130
    );
    // appending continues in the restored head chunk; new series get new ids
    let out = sh
        .apply(
            11,
            &WriteBatch::Samples(vec![
                series(&l, &[(200_000, 1.0)]),
                series(&lbl("up", &[]), &[(1, 1.0)]),
            ]),
        )
        .unwrap();
    assert_eq!(out.series_ids, vec![Some(1), Some(2)]);
    assert_eq!(
        bits(&sh, &[Matcher::equal("job", "a")], i64::MIN, i64::MAX).len(),
        131
    );
}

#[test]
fn retention_removes_old_series_and_chunks() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    let opts = StorageOptions {
        retention_ms: 24 * hour,
        ..Default::default()
    };
    let (_d, db) = open(opts);
    let sh = db.shard(1).unwrap();
    let old = lbl("old", &[]);
    let mixed = lbl("mixed", &[]);
    let recent = lbl("recent", &[]);
    let old_s: Vec<(i64, f64)> = (0..300)
        .map(|i| (now - 30 * 24 * hour + i * 60_000, 1.0))
        .collect();
    let mut mixed_s = old_s.clone();
    mixed_s.extend((0..300).map(|i| (now - 2 * hour + i * 15_000, 2.0)));
    let recent_s: Vec<(i64, f64)> = (0..100).map(|i| (now - hour + i * 15_000, 3.0)).collect();
    sh.apply(
        1,
        &WriteBatch::Samples(vec![
            series(&old, &old_s),
            series(&mixed, &mixed_s),
            series(&recent, &recent_s),
        ]),
    )
    .unwrap();
    sh.checkpoint().unwrap();
    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    assert_eq!(sh.series(&all, i64::MIN, i64::MAX).unwrap().len(), 3);

    // the leader proposes a retention cutoff: "old" leaves the index
    sh.apply(
        2,
        &WriteBatch::Retention {
            cutoff_ms: now - 24 * hour,
        },
    )
    .unwrap();
    let names: Vec<_> = sh
        .label_values("__name__", &[], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(names, vec!["mixed", "recent"]);
    sh.checkpoint().unwrap();
    // the compaction filter drops the old chunks of "mixed"
    db.flush_and_compact().unwrap();
    let got = bits(
        &sh,
        &[Matcher::equal("__name__", "mixed")],
        i64::MIN,
        i64::MAX,
    );
    assert_eq!(got.len(), 300, "only the recent samples of mixed remain");
    assert!(got.iter().all(|&(t, _)| t >= now - 2 * hour));
    assert_eq!(
        bits(
            &sh,
            &[Matcher::equal("__name__", "recent")],
            i64::MIN,
            i64::MAX
        )
        .len(),
        100
    );
    assert!(sh
        .select(&[Matcher::equal("__name__", "old")], i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
    // after reopen "old" is gone from the persisted index too
    drop(sh);
    let dir = _d;
    drop(db);
    let db = storage::Db::open(dir.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(1).unwrap();
    assert_eq!(sh.stats().series, 2);
    assert!(sh
        .series(&[Matcher::equal("__name__", "old")], i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
}

#[test]
fn drop_shard_deletes_everything_of_that_shard_only() {
    let (_d, db) = open(StorageOptions::default());
    let a = db.shard(1).unwrap();
    let b = db.shard(2).unwrap();
    let l = lbl("m", &[]);
    a.apply(1, &batch(&l, &[(1, 1.0)])).unwrap();
    b.apply(1, &batch(&l, &[(1, 2.0)])).unwrap();
    a.checkpoint().unwrap();
    b.checkpoint().unwrap();
    db.drop_shard(1).unwrap();
    assert_eq!(
        a.apply(2, &batch(&l, &[(2, 1.0)])).unwrap_err().kind(),
        ErrorKind::Internal
    );
    let a2 = db.shard(1).unwrap();
    assert_eq!(a2.stats().series, 0);
    assert_eq!(a2.applied_index(), 0);
    assert_eq!(
        bits(&b, &[Matcher::equal("__name__", "m")], 0, 10),
        vec![(1, 2f64.to_bits())]
    );
}

#[test]
fn snapshot_restore_round_trip() {
    let (_d, db) = open(StorageOptions {
        out_of_order_window_ms: 10_000,
        ..Default::default()
    });
    let src = db.shard(1).unwrap();
    for i in 1..=5u64 {
        src.apply(i, &det_batch(i, 20)).unwrap();
        if i == 3 {
            src.checkpoint().unwrap();
        }
    }
    src.apply(
        6,
        &batch(
            &lbl("crash_metric", &[("series", "0"), ("kind", "even")]),
            &[(250_000, 5.0)],
        ),
    )
    .unwrap();
    src.set_user_meta(vec![1, 2, 3]);
    let parts: Vec<Vec<u8>> = src.snapshot().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(src.checkpointed_index(), 6);
    let dst = db.shard(9).unwrap();
    dst.apply(1, &batch(&lbl("other", &[]), &[(1, 1.0)]))
        .unwrap();
    // re-cut the byte stream at odd places: restore must reassemble
    let joined: Vec<u8> = parts.concat();
    let recut: Vec<Vec<u8>> = joined.chunks(7).map(<[u8]>::to_vec).collect();
    dst.restore(recut.into_iter().map(Ok)).unwrap();
    assert_eq!(dst.applied_index(), 6);
    assert_eq!(dst.user_meta(), Some(vec![1, 2, 3]));
    assert_eq!(dump(&dst), dump(&src));
    assert_eq!(dst.stats().series, 20);
    assert!(dst
        .series(&[Matcher::equal("__name__", "other")], 0, 10)
        .unwrap()
        .is_empty());
    // ids carry over: the next new series gets the same id on both
    let n = lbl("new", &[]);
    assert_eq!(
        src.apply(7, &batch(&n, &[(1, 1.0)])).unwrap().series_ids,
        dst.apply(7, &batch(&n, &[(1, 1.0)])).unwrap().series_ids
    );
}

#[test]
fn snapshot_of_a_shard_larger_than_many_parts_restores_whole() {
    // Several MiB of chunks: the stream spans many parts (1 MiB target
    // each) and the Raft layer sends it in 4 MiB pieces.
    let (_d, db) = open(StorageOptions::default());
    let src = db.shard(1).unwrap();
    let mut idx = 0;
    for round in 0..40i64 {
        let v: Vec<_> = (0..3000)
            .map(|s| {
                let l = lbl("big", &[("series", &s.to_string())]);
                let samples: Vec<(i64, f64)> = (0..30)
                    .map(|k| {
                        let t = (round * 30 + k) * 15_000;
                        (t, ((s * 31 + t / 1000) % 977) as f64 * 0.37)
                    })
                    .collect();
                series(&l, &samples)
            })
            .collect();
        idx += 1;
        src.apply(idx, &WriteBatch::Samples(v)).unwrap();
    }
    let parts: Vec<Vec<u8>> = src.snapshot().unwrap().collect::<Result<_, _>>().unwrap();
    let joined: Vec<u8> = parts.concat();
    assert!(
        parts.len() > 4,
        "{} parts, {} bytes",
        parts.len(),
        joined.len()
    );
    let dst = db.shard(2).unwrap();
    let recut: Vec<Vec<u8>> = joined.chunks(4 << 20).map(<[u8]>::to_vec).collect();
    dst.restore(recut.into_iter().map(Ok)).unwrap();
    assert_eq!(dst.stats().series, 3000);
    assert_eq!(dump(&dst), dump(&src));
}

/// Issue 13: a chunk read for a query gives up once the query's deadline
/// has passed instead of reading every series to the end.
#[test]
fn select_chunks_stop_at_the_deadline() {
    use std::time::{Duration, Instant};
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    sh.apply(1, &det_batch(1, 300)).unwrap();
    let all = [Matcher::equal("__name__", "crash_metric")];
    let later = Instant::now() + Duration::from_secs(60);
    let got = sh
        .select_chunks_until(&all, i64::MIN, i64::MAX, Some(later))
        .unwrap();
    assert_eq!(got.len(), 300);
    let past = Instant::now() - Duration::from_millis(1);
    let err = sh
        .select_chunks_until(&all, i64::MIN, i64::MAX, Some(past))
        .unwrap_err();
    assert!(
        matches!(err, storage::StorageError::DeadlinePassed { shard: 0 }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Limited);
}

/// Issue 14: a series without samples for three chunk ranges (6 h) behind
/// the shard's newest sample leaves memory at the next checkpoint: its open
/// chunk is written out, its data stays readable, and it takes samples as
/// before (its newest time is kept for the out-of-order rules).
#[test]
fn idle_series_leave_memory_and_stay_readable() {
    let (d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let min = 60_000;
    let idle = lbl("idle", &[]);
    let busy = lbl("busy", &[]);
    let early: Vec<(i64, f64)> = (0..30).map(|i| (i * min, i as f64)).collect();
    sh.apply(1, &batch(&idle, &early)).unwrap();
    sh.apply(2, &batch(&busy, &early)).unwrap();
    sh.checkpoint().unwrap();
    assert_eq!(sh.stats().head_samples, 60, "both heads open");
    // busy goes on past 6 h; idle says nothing
    let late: Vec<(i64, f64)> = (0..30).map(|i| (7 * 3_600_000 + i * min, 1.0)).collect();
    sh.apply(3, &batch(&busy, &late)).unwrap();
    sh.checkpoint().unwrap();
    let st = sh.stats();
    assert_eq!(st.head_samples, 30, "only busy's head is in memory: {st:?}");
    let want: Vec<(i64, u64)> = early.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    let eq = [Matcher::equal("__name__", "idle")];
    assert_eq!(bits(&sh, &eq, i64::MIN, i64::MAX), want);
    // newest time kept: an old sample is refused, a new one taken
    let out = sh.apply(4, &batch(&idle, &[(10 * min, 5.0)])).unwrap();
    assert_eq!(out.accepted, 0);
    let t_new = 8 * 3_600_000;
    let out = sh.apply(5, &batch(&idle, &[(t_new, 7.0)])).unwrap();
    assert_eq!(out.accepted, 1);
    sh.checkpoint().unwrap();
    drop(sh);
    drop(db);
    let db = storage::Db::open(d.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(0).unwrap();
    let mut want = want;
    want.push((t_new, 7f64.to_bits()));
    assert_eq!(bits(&sh, &eq, i64::MIN, i64::MAX), want);
}

/// Issue 14: a snapshot source gives its length before any pass, and every
/// pass gives the same bytes (Raft may restart a transfer from 0), however
/// the shard changes meanwhile.
#[test]
fn snapshot_source_passes_repeat_the_same_bytes() {
    let (_d, db) = open(StorageOptions::default());
    let src = db.shard(1).unwrap();
    for i in 1..=4u64 {
        src.apply(i, &det_batch(i, 500)).unwrap();
    }
    let source = src.snapshot_source().unwrap();
    let pass = || {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        source.stream_into(Box::new(move |p| tx.send(p).is_ok()));
        rx.into_iter()
            .collect::<Result<Vec<Vec<u8>>, _>>()
            .unwrap()
            .concat()
    };
    let first = pass();
    assert_eq!(first.len() as u64, source.byte_len());
    src.apply(5, &det_batch(5, 800)).unwrap();
    src.checkpoint().unwrap();
    assert_eq!(pass(), first);
    // an abandoned pass does not disturb the next one
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        source.stream_into(Box::new(move |p| tx.send(p).is_ok()));
        let _ = rx.recv();
    }
    assert_eq!(pass(), first);
    let dst = db.shard(2).unwrap();
    dst.restore(std::iter::once(Ok(first))).unwrap();
    assert_eq!(dst.applied_index(), 4);
    assert_eq!(dst.stats().series, 500);
}

/// Issue 12: the encoded path (what the cluster applies) gives the same
/// outcome as `apply`: series created by labels, written by id after,
/// unknown ids reported by position, undecodable bytes refused whole.
#[test]
fn apply_encoded_names_series_by_labels_then_id() {
    use storage::{BatchEncoder, StorageError};
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(0).unwrap();
    let a = lbl("enc_a", &[("job", "x")]);
    let b = lbl("enc_b", &[]);
    let s = |t: i64, v: f64| [Sample { t, v }];
    let mut e = BatchEncoder::new();
    e.push_labels(&a, &s(1000, 1.0));
    e.push_labels(&b, &s(1000, 2.0));
    let out = sh.apply_encoded(1, &e.finish()).unwrap();
    assert_eq!(
        (out.accepted, out.series_ids.clone()),
        (2, vec![Some(1), Some(2)])
    );
    // by id, with one id the shard never gave
    let mut e = BatchEncoder::new();
    e.push_id(2, &s(2000, 3.0));
    e.push_id(77, &s(2000, 4.0));
    e.push_id(1, &s(2000, 5.0));
    let bytes = e.finish();
    let out = sh.apply_encoded(2, &bytes).unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(out.series_ids, vec![Some(2), None, Some(1)]);
    assert_eq!(out.unknown_ids, vec![1]);
    // a replay changes nothing and still reports the ids
    let again = sh.apply_encoded(2, &bytes).unwrap();
    assert!(again.already_applied);
    assert_eq!(again.series_ids, vec![Some(2), None, Some(1)]);
    let got = bits(&sh, &[Matcher::equal("__name__", "enc_b")], 0, i64::MAX);
    assert_eq!(got, vec![(1000, 2f64.to_bits()), (2000, 3f64.to_bits())]);
    // bytes cut short: refused whole, nothing applied, index unchanged
    let mut e = BatchEncoder::new();
    e.push_id(1, &s(3000, 6.0));
    e.push_id(2, &s(3000, 7.0));
    let bytes = e.finish();
    let cut = &bytes[..bytes.len() - 3];
    assert!(matches!(
        sh.apply_encoded(3, cut),
        Err(StorageError::Batch(_))
    ));
    assert_eq!(sh.applied_index(), 2);
    let got = bits(&sh, &[Matcher::equal("__name__", "enc_a")], 0, i64::MAX);
    assert_eq!(got.len(), 2);
}

/// Issue 14: limits on creating series (`--max-series`,
/// `--max-series-per-metric`, a shard's share of each) refuse new series
/// whole, keep taking samples of existing ones, count live series (a
/// series removed by retention frees its place) and hold after a reopen.
#[test]
fn series_limits_refuse_new_series_only() {
    use storage::{BatchEncoder, SeriesLimits};
    let dir = tempfile::tempdir().unwrap();
    let limits = SeriesLimits {
        max_series: 3,
        max_series_per_metric: 2,
    };
    let s = |t: i64| [Sample { t, v: 1.0 }];
    let write = |sh: &storage::Shard, idx: u64, series: &[(&str, &str)], t: i64| {
        let mut e = BatchEncoder::new();
        for (name, a) in series {
            e.push_labels(&lbl(name, &[("a", a)]), &s(t));
        }
        sh.apply_limited(idx, &e.finish(), &limits).unwrap()
    };
    {
        let db = storage::Db::open(dir.path(), StorageOptions::default()).unwrap();
        let sh = db.shard(0).unwrap();
        let out = write(
            &sh,
            1,
            &[("m1", "1"), ("m1", "2"), ("m1", "3"), ("m2", "1")],
            1000,
        );
        assert_eq!(out.series_ids, vec![Some(1), Some(2), None, Some(3)]);
        assert_eq!(out.accepted, 3);
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(out.rejected[0].reason, RejectReason::MetricSeriesLimit);
        assert!(
            out.rejected[0].example.contains("m1")
                && out.rejected[0].example.contains("limit is 2"),
            "{}",
            out.rejected[0].example
        );
        // the shard is full: a new metric is refused, existing series
        // still take samples (by labels and by id)
        let out = write(&sh, 2, &[("m3", "1"), ("m1", "1"), ("m2", "1")], 2000);
        assert_eq!(out.series_ids, vec![None, Some(1), Some(3)]);
        assert_eq!(out.rejected[0].reason, RejectReason::SeriesLimit);
        let mut e = BatchEncoder::new();
        e.push_id(2, &s(2000));
        assert_eq!(
            sh.apply_limited(3, &e.finish(), &limits).unwrap().accepted,
            1
        );
        // without limits (an entry proposed with none) the same series goes in
        let mut e = BatchEncoder::new();
        e.push_labels(&lbl("m3", &[("a", "1")]), &s(2000));
        let out = sh
            .apply_limited(4, &e.finish(), &SeriesLimits::NONE)
            .unwrap();
        assert_eq!(out.series_ids, vec![Some(4)]);
        sh.checkpoint().unwrap();
    }
    let db = storage::Db::open(dir.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(0).unwrap();
    // after a reopen the counts are the same: 4 series, 2 of m1
    let out = write(&sh, 5, &[("m4", "1"), ("m1", "9")], 3000);
    assert_eq!(out.series_ids, vec![None, None]);
    // retention at 2500 removes all four (newest samples at 2000), which
    // frees their places
    sh.apply(6, &WriteBatch::Retention { cutoff_ms: 2500 })
        .unwrap();
    let out = write(
        &sh,
        7,
        &[("m1", "5"), ("m1", "6"), ("m1", "7"), ("m5", "1")],
        3000,
    );
    assert_eq!(out.series_ids, vec![Some(5), Some(6), None, Some(7)]);
}

/// A read of recent times skips the disk when every chunk there ends
/// before the series' chunks in memory, and still finds out-of-order
/// chunks that were written out, before and after a reopen.
#[test]
fn recent_reads_see_written_out_of_order_chunks() {
    let opts = || StorageOptions {
        out_of_order_window_ms: 3_600_000,
        ..Default::default()
    };
    let (d, db) = open(opts());
    let sh = db.shard(0).unwrap();
    let l = lbl("m", &[]);
    let eq = [Matcher::equal("__name__", "m")];
    // 200 samples a second apart: the first 120 sealed and written out
    let inorder: Vec<(i64, f64)> = (0..200).map(|i| (i * 1000, i as f64)).collect();
    sh.apply(1, &batch(&l, &inorder)).unwrap();
    sh.checkpoint().unwrap();
    let want = |from: i64, extra: &[(i64, f64)]| {
        let mut v: Vec<(i64, u64)> = inorder
            .iter()
            .chain(extra)
            .filter(|x| x.0 >= from)
            .map(|&(t, v)| (t, v.to_bits()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(bits(&sh, &eq, 150_000, i64::MAX), want(150_000, &[]));
    assert_eq!(bits(&sh, &eq, 100_000, i64::MAX), want(100_000, &[]));
    // 40 out-of-order samples inside the open chunk's times: an
    // out-of-order chunk is sealed and written out at the checkpoint
    let late: Vec<(i64, f64)> = (0..40).map(|i| (150_500 + i * 1000, -1.0)).collect();
    assert_eq!(sh.apply(2, &batch(&l, &late)).unwrap().accepted, 40);
    sh.checkpoint().unwrap();
    assert_eq!(bits(&sh, &eq, 150_000, i64::MAX), want(150_000, &late));
    drop(sh);
    drop(db);
    let db = storage::Db::open(d.path(), opts()).unwrap();
    let sh = db.shard(0).unwrap();
    assert_eq!(bits(&sh, &eq, 150_000, i64::MAX), want(150_000, &late));
    assert_eq!(bits(&sh, &eq, 0, i64::MAX), want(0, &late));
}
