//! Issue 14: a shard snapshot moves between nodes without being held in
//! memory. These tests drive [`SnapshotData`] the way openraft's chunked
//! transfer does (seek to the end for the length, then read chunks
//! from offset 0, starting over at 0 after a mismatch) and write the
//! chunks into a receiving file, then restore from it.

use std::io::SeekFrom;

use cluster::raft::snapshot_data::SnapshotData;
use model::{Labels, MatchOp, Matcher, Sample};
use storage::{Db, SeriesRef, SeriesSamples, Shard, StorageOptions, WriteBatch};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// openraft's chunk size here (Silverback sends 4 MiB; smaller keeps the
/// test quick while still crossing many chunk and part boundaries).
const CHUNK: usize = 1 << 20;

fn fill(sh: &Shard, series: usize, rounds: i64) {
    for r in 0..rounds {
        let v = (0..series)
            .map(|s| SeriesSamples {
                series: SeriesRef::Labels(Labels::from_pairs([
                    ("__name__", "snap".to_string()),
                    ("s", s.to_string()),
                ])),
                samples: (0..60)
                    .map(|k| {
                        let t = (r * 60 + k) * 15_000;
                        // Values that do not compress: the stream is many chunks.
                        let mut x = (s as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t as u64;
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        Sample {
                            t,
                            v: (x >> 11) as f64 / (1u64 << 53) as f64,
                        }
                    })
                    .collect(),
            })
            .collect();
        sh.apply(sh.applied_index() + 1, &WriteBatch::Samples(v))
            .unwrap();
    }
}

fn dump(sh: &Shard) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let m = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    sh.select(&m, i64::MIN, i64::MAX)
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

/// One chunk at `offset`, as openraft's sender reads it.
async fn chunk_at(data: &mut SnapshotData, offset: u64) -> Vec<u8> {
    data.seek(SeekFrom::Start(offset)).await.unwrap();
    let mut buf = Vec::with_capacity(CHUNK);
    while buf.len() < buf.capacity() {
        if data.read_buf(&mut buf).await.unwrap() == 0 {
            break;
        }
    }
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_snapshot_streams_in_chunks_into_a_file_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
    let src = db.shard(1).unwrap();
    fill(&src, 2000, 12);
    let want = dump(&src);

    let source = src.snapshot_source().unwrap();
    let len = source.byte_len();
    assert!(len > 3 * CHUNK as u64, "{len} bytes: want several chunks");
    let mut out = SnapshotData::source(source);
    assert_eq!(out.seek(SeekFrom::End(0)).await.unwrap(), len);

    let dst = db.shard(2).unwrap();
    let (path, file) = dst.create_snapshot_file().unwrap();
    let mut inc = SnapshotData::file(path.clone(), file);

    // Two chunks, then the receiver answers "mismatch": start over at 0.
    let mut offset = 0u64;
    for _ in 0..2 {
        let c = chunk_at(&mut out, offset).await;
        assert_eq!(c.len(), CHUNK);
        inc.seek(SeekFrom::Start(offset)).await.unwrap();
        inc.write_all(&c).await.unwrap();
        offset += c.len() as u64;
    }
    // Not a position the sender ever asks for: refused, not misread.
    assert!(out.seek(SeekFrom::Start(CHUNK as u64 / 2)).await.is_err());
    offset = 0;
    loop {
        let c = chunk_at(&mut out, offset).await;
        inc.seek(SeekFrom::Start(offset)).await.unwrap();
        inc.write_all(&c).await.unwrap();
        offset += c.len() as u64;
        if offset == len {
            break;
        }
        assert!(!c.is_empty() && offset < len, "at {offset} of {len}");
    }
    inc.shutdown().await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);

    let received = inc.into_file().unwrap();
    let p = received.path().to_path_buf();
    tokio::task::spawn_blocking(move || dst.restore_file(&p))
        .await
        .unwrap()
        .unwrap();
    drop(received);
    let dst = db.shard(2).unwrap();
    assert_eq!(dump(&dst), want);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A receive that is given up (a new stream, a failed restore) leaves no
/// file behind, and the shard is untouched by a file that does not
/// validate.
#[tokio::test]
async fn abandoned_and_bad_receives_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
    let sh = db.shard(3).unwrap();
    fill(&sh, 10, 1);
    let before = dump(&sh);
    let (path, file) = sh.create_snapshot_file().unwrap();
    let mut inc = SnapshotData::file(path.clone(), file);
    inc.write_all(b"SBSN not really a snapshot").await.unwrap();
    inc.shutdown().await.unwrap();
    let received = inc.into_file().unwrap();
    assert!(sh.restore_file(received.path()).is_err());
    drop(received);
    assert!(!path.exists());
    assert_eq!(dump(&sh), before);

    let (path, file) = sh.create_snapshot_file().unwrap();
    drop(SnapshotData::file(path.clone(), file));
    assert!(!path.exists());
}

/// The meta group's in-memory snapshot refuses to grow past its cap.
#[tokio::test]
async fn an_in_memory_snapshot_is_capped() {
    let mut m = SnapshotData::empty();
    m.seek(SeekFrom::Start(
        cluster::raft::snapshot_data::MAX_MEMORY_SNAPSHOT_BYTES - 2,
    ))
    .await
    .unwrap();
    assert!(m.write_all(b"abc").await.is_err());
}
