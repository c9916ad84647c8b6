//! [`Shard::snapshot`] and [`Shard::restore`] over the format of
//! `crate::snapshot`.

//! Shard snapshots over the format of `crate::snapshot`: reading one
//! ([`Shard::snapshot_source`], [`Shard::snapshot`]) and replacing a shard
//! with one ([`Shard::restore_file`], [`Shard::restore`]).
//!
//! Neither side holds a snapshot in memory. The sender reads a pinned
//! RocksDB snapshot twice: once to learn the stream's length (Raft's chunked
//! transfer needs it up front), then once per transfer. The receiver keeps
//! the bytes in a file; a restore validates the whole file first, then
//! replaces the shard in write batches of a few MiB. Those batches are not
//! one atomic write, so the first one records the file's name
//! (`keys::TAG_RESTORING`) and the last one removes it: a shard opened with
//! the record present finishes the restore from the file before anything
//! else sees it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::Arc;

use super::load::StateRecord;
use super::Shard;
use crate::db::{restore_file_name, DbInner};
use crate::head::MemSeries;
use crate::keys::{
    self, CF_CHUNKS, CF_POSTINGS, CF_SERIES, CF_SM_META, TAG_RESTORING, TAG_STATE, TAG_USER_META,
};
use crate::snapshot::{self as fmt, bad, Deframer, Header};
use crate::{chunk, labels, StorageError};

type Part = Result<Vec<u8>, StorageError>;

/// Receives the parts of one pass over a [`SnapshotSource`]; returns false
/// to stop the pass (the reader went away).
pub type PartSink = Box<dyn FnMut(Part) -> bool + Send>;

/// Bytes of restored records per write batch.
const RESTORE_BATCH_BYTES: usize = 8 << 20;

/// A consistent snapshot of a shard that can be streamed any number of
/// times, each time with the same bytes, and whose length is known first.
/// A background thread holds the RocksDB snapshot until this is dropped.
pub struct SnapshotSource {
    len: u64,
    passes: Sender<PartSink>,
}

impl SnapshotSource {
    /// Length in bytes of the stream every pass produces.
    pub fn byte_len(&self) -> u64 {
        self.len
    }

    /// Starts a pass: the background thread feeds every part, in order, to
    /// `sink` (ending with an `Err` part if reading fails).
    pub fn stream_into(&self, sink: PartSink) {
        if let Err(e) = self.passes.send(sink) {
            let mut sink = e.0;
            sink(Err(StorageError::Corrupt(
                "snapshot reader thread stopped".into(),
            )));
        }
    }
}

impl Shard {
    /// A consistent snapshot of the shard at its applied index (it
    /// checkpoints first): see [`SnapshotSource`].
    pub fn snapshot_source(&self) -> Result<SnapshotSource, StorageError> {
        let gate = self.db.checkpoint_gate.lock();
        let mut st = self.state.lock();
        self.checkpoint_locked(&mut st)?;
        drop(gate);
        let (len_tx, len_rx) = sync_channel::<Result<u64, StorageError>>(1);
        let (passes, pass_rx) = channel::<PartSink>();
        let db = self.db.clone();
        let shard = self.id;
        std::thread::Builder::new()
            .name(format!("snapshot-{shard}"))
            .spawn(move || {
                let snap = db.rocks.snapshot();
                let mut len = 0u64;
                let counted = write_snapshot(&db, &snap, shard, &mut |p| {
                    len += p.len() as u64;
                    true
                });
                let ok = counted.is_ok();
                let _ = len_tx.send(counted.map(|()| len));
                if !ok {
                    return;
                }
                while let Ok(mut sink) = pass_rx.recv() {
                    if let Err(e) = write_snapshot(&db, &snap, shard, &mut |p| sink(Ok(p))) {
                        sink(Err(e));
                    }
                }
            })
            .map_err(|e| StorageError::Corrupt(format!("cannot start snapshot thread: {e}")))?;
        // Hold the apply lock until the RocksDB snapshot exists (the length
        // is counted on it).
        let len = len_rx
            .recv()
            .map_err(|_| StorageError::Corrupt("snapshot thread ended early".into()))??;
        drop(st);
        Ok(SnapshotSource { len, passes })
    }

    /// The shard as one pass of snapshot parts (see [`Shard::snapshot_source`]).
    pub fn snapshot(
        &self,
    ) -> Result<impl Iterator<Item = Result<Vec<u8>, StorageError>> + Send + 'static, StorageError>
    {
        let src = self.snapshot_source()?;
        let (tx, rx) = sync_channel::<Part>(4);
        src.stream_into(Box::new(move |p| tx.send(p).is_ok()));
        Ok(rx.into_iter())
    }

    /// A new, empty file for receiving a snapshot of this shard, in the
    /// DB's snapshot directory (removed at the next open if never restored).
    pub fn create_snapshot_file(&self) -> Result<(PathBuf, File), StorageError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            self.db
                .snapshot_dir()
                .join(format!("recv-{}-{}-{n}", self.id, std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| file_err(&path, e))?;
        Ok((path, f))
    }

    /// Replaces the shard's whole content with the snapshot in `path` (bytes
    /// from a peer). The whole file is validated first; on a validation
    /// error the shard is left exactly as it was. On success the file has
    /// been consumed (moved aside while in use, then removed).
    pub fn restore_file(&self, path: &Path) -> Result<(), StorageError> {
        scan(self.id, path, &mut None)?;
        let target = self.db.snapshot_dir().join(restore_file_name(self.id));
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| file_err(path, e))?;
        std::fs::rename(path, &target).map_err(|e| file_err(path, e))?;
        sync_dir(&self.db.snapshot_dir())?;
        let mut st = self.state.lock();
        self.check_dropped()?;
        replace_from(&self.db, self.id, &target)?;
        self.load(&mut st)
    }

    /// Replaces the shard's content with a snapshot stream (kept in a file
    /// while restoring, as [`Shard::restore_file`]).
    pub fn restore(
        &self,
        parts: impl Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError> {
        let (path, f) = self.create_snapshot_file()?;
        let res = (|| {
            let mut w = std::io::BufWriter::new(f);
            for p in parts {
                std::io::Write::write_all(&mut w, &p?).map_err(|e| file_err(&path, e))?;
            }
            std::io::Write::flush(&mut w).map_err(|e| file_err(&path, e))?;
            drop(w);
            self.restore_file(&path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        res
    }

    /// Finishes a restore that a crash cut off (called on open, before the
    /// shard is loaded).
    pub(super) fn finish_restore(&self) -> Result<(), StorageError> {
        let db = &self.db;
        let Some(name) = db
            .rocks
            .get_cf(db.cf(CF_SM_META), keys::meta_key(self.id, TAG_RESTORING))?
        else {
            return Ok(());
        };
        let name = String::from_utf8(name)
            .map_err(|_| StorageError::Corrupt("restore record is not a file name".into()))?;
        let path = db.snapshot_dir().join(&name);
        if name.contains('/') || !path.exists() {
            return Err(StorageError::Corrupt(format!(
                "shard {} was being restored from {}, which is gone",
                self.id,
                path.display()
            )));
        }
        tracing::warn!(shard = self.id, file = %path.display(), "finishing a restore that a crash cut off");
        replace_from(db, self.id, &path)
    }
}

fn file_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::SnapshotFile {
        path: path.to_path_buf(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_err(dir, e))
}

/// Replaces shard `shard` with the (validated) snapshot in `path`, then
/// removes the file: the first batch empties the shard and records the
/// file, the last one writes the state and removes the record.
fn replace_from(db: &DbInner, shard: u32, path: &Path) -> Result<(), StorageError> {
    begin_replace(db, shard, path)?;
    finish_replace(db, shard, path)
}

fn synced() -> rocksdb::WriteOptions {
    let mut sync = rocksdb::WriteOptions::default();
    sync.set_sync(true);
    sync
}

/// The first batch of a restore: empties the shard, records the file.
fn begin_replace(db: &DbInner, shard: u32, path: &Path) -> Result<(), StorageError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut wb = rocksdb::WriteBatch::default();
    let (start, end) = keys::shard_range(shard);
    for cf in keys::SHARD_CFS {
        wb.delete_range_cf(db.cf(cf), start, end);
    }
    wb.put_cf(
        db.cf(CF_SM_META),
        keys::meta_key(shard, TAG_RESTORING),
        name.as_bytes(),
    );
    db.rocks.write_opt(wb, &synced())?;
    Ok(())
}

/// The rest of a restore: the records in batches, then the state.
fn finish_replace(db: &DbInner, shard: u32, path: &Path) -> Result<(), StorageError> {
    let mut wb = rocksdb::WriteBatch::default();
    let mut put = |cf: &'static str, k: &[u8], v: &[u8]| -> Result<(), StorageError> {
        wb.put_cf(db.cf(cf), k, v);
        if wb.size_in_bytes() >= RESTORE_BATCH_BYTES {
            db.rocks.write(std::mem::take(&mut wb))?;
        }
        Ok(())
    };
    let header = scan(shard, path, &mut Some(&mut put))?;
    let rec = StateRecord {
        applied_index: header.applied_index,
        next_series_id: header.next_series_id,
        next_chunk_seq: header.next_chunk_seq,
    };
    wb.put_cf(
        db.cf(CF_SM_META),
        keys::meta_key(shard, TAG_STATE),
        rec.encode(),
    );
    if let Some(m) = &header.user_meta {
        wb.put_cf(db.cf(CF_SM_META), keys::meta_key(shard, TAG_USER_META), m);
    }
    wb.delete_cf(db.cf(CF_SM_META), keys::meta_key(shard, TAG_RESTORING));
    // The synced write also makes the unsynced batches before it durable
    // (one write-ahead log, written in order).
    db.rocks.write_opt(wb, &synced())?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_err(path, e)),
        _ => Ok(()),
    }
}

fn write_snapshot(
    db: &Arc<DbInner>,
    snap: &rocksdb::Snapshot<'_>,
    shard: u32,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), StorageError> {
    let meta = db.cf(CF_SM_META);
    let rec = match snap.get_cf(meta, keys::meta_key(shard, TAG_STATE))? {
        Some(b) => StateRecord::decode(&b)?,
        None => StateRecord {
            applied_index: 0,
            next_series_id: 1,
            next_chunk_seq: 1,
        },
    };
    let header = Header {
        shard,
        applied_index: rec.applied_index,
        next_series_id: rec.next_series_id,
        next_chunk_seq: rec.next_chunk_seq,
        user_meta: snap.get_cf(meta, keys::meta_key(shard, TAG_USER_META))?,
    };
    let mut send = |p: Vec<u8>| {
        if sink(p) {
            Ok(())
        } else {
            Err(StorageError::Corrupt("snapshot reader gone".into()))
        }
    };
    send(fmt::frame(fmt::KIND_HEADER, &header.encode()))?;
    let (mut parts, mut records) = (1u64, 0u64);
    let mut buf = Vec::with_capacity(fmt::PART_TARGET + 4096);
    let shard_prefix = shard.to_be_bytes();
    let head_prefix = keys::head_prefix(shard);
    let sources: [(u8, &str, &[u8]); 3] = [
        (fmt::REC_SERIES, CF_SERIES, &shard_prefix),
        (fmt::REC_CHUNK, CF_CHUNKS, &shard_prefix),
        (fmt::REC_HEAD, CF_SM_META, &head_prefix),
    ];
    for (tag, cf, prefix) in sources {
        let mut ro = rocksdb::ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            ro.set_iterate_upper_bound(end);
        }
        // A snapshot pass reads the whole shard once: keep it out of the
        // block cache.
        ro.fill_cache(false);
        let mut it = snap.raw_iterator_cf_opt(db.cf(cf), ro);
        it.seek(prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(prefix) {
                break;
            }
            fmt::put_record(&mut buf, tag, &k[4..], v);
            records += 1;
            if buf.len() >= fmt::PART_TARGET {
                send(fmt::frame(fmt::KIND_RECORDS, &buf))?;
                buf.clear();
                parts += 1;
            }
            it.next();
        }
        it.status()?;
    }
    if !buf.is_empty() {
        send(fmt::frame(fmt::KIND_RECORDS, &buf))?;
        parts += 1;
    }
    let mut end = Vec::with_capacity(16);
    end.extend_from_slice(&parts.to_be_bytes());
    end.extend_from_slice(&records.to_be_bytes());
    send(fmt::frame(fmt::KIND_END, &end))
}

/// Receives the RocksDB puts a snapshot turns into.
type PutFn<'a> = &'a mut dyn FnMut(&'static str, &[u8], &[u8]) -> Result<(), StorageError>;

/// Reads and validates the whole snapshot file for shard `shard`, handing
/// each RocksDB put (postings rebuilt from labels) to `put` if given.
/// Memory: one part (at most 16 MiB) plus 8 bytes per series and per run
/// of records that refer to one series.
fn scan(shard: u32, path: &Path, put: &mut Option<PutFn<'_>>) -> Result<Header, StorageError> {
    let mut file = File::open(path).map_err(|e| file_err(path, e))?;
    let mut de = Deframer::default();
    let mut header: Option<Header> = None;
    let mut ended = false;
    let (mut n_parts, mut n_records) = (0u64, 0u64);
    let mut ids = Ids::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| file_err(path, e))?;
        if n == 0 {
            break;
        }
        de.push(&buf[..n]);
        while let Some((kind, payload)) = de.next_part()? {
            if ended {
                return Err(bad("part after the end part"));
            }
            match kind {
                fmt::KIND_HEADER if header.is_none() => {
                    let h = Header::decode(&payload)?;
                    if h.next_series_id == 0 {
                        return Err(bad("next series id is 0"));
                    }
                    header = Some(h);
                }
                fmt::KIND_RECORDS if header.is_some() => {
                    let h = header.as_ref().ok_or_else(|| bad("no header"))?;
                    for r in fmt::records(&payload) {
                        let (tag, k, v) = r?;
                        check_record(shard, h, tag, k, v, &mut ids, put)?;
                        n_records += 1;
                    }
                }
                fmt::KIND_END if header.is_some() => {
                    let end: [u8; 16] = payload
                        .as_slice()
                        .try_into()
                        .map_err(|_| bad("bad end part"))?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&end[..8]);
                    let parts = u64::from_be_bytes(a);
                    a.copy_from_slice(&end[8..]);
                    let recs = u64::from_be_bytes(a);
                    if parts != n_parts || recs != n_records {
                        return Err(bad("part or record count mismatch"));
                    }
                    ended = true;
                }
                _ => return Err(bad(&format!("unexpected part kind {kind}"))),
            }
            n_parts += 1;
        }
    }
    if !ended || !de.is_empty() {
        return Err(bad("stream ended before the end part"));
    }
    ids.check()?;
    header.ok_or_else(|| bad("no header"))
}

/// The series ids a snapshot defines and the ones its records refer to.
#[derive(Default)]
struct Ids {
    /// Strictly increasing (series records come in key order).
    series: Vec<u64>,
    /// Consecutive repeats collapsed.
    referenced: Vec<u64>,
}

impl Ids {
    fn refer(&mut self, id: u64) {
        if self.referenced.last() != Some(&id) {
            self.referenced.push(id);
        }
    }

    fn check(&mut self) -> Result<(), StorageError> {
        self.referenced.sort_unstable();
        self.referenced.dedup();
        match self
            .referenced
            .iter()
            .find(|id| self.series.binary_search(id).is_err())
        {
            Some(id) => Err(bad(&format!("record refers to unknown series {id}"))),
            None => Ok(()),
        }
    }
}

fn check_record(
    shard: u32,
    h: &Header,
    tag: u8,
    k: &[u8],
    v: &[u8],
    ids: &mut Ids,
    put: &mut Option<PutFn<'_>>,
) -> Result<(), StorageError> {
    let id_at = |k: &[u8], at: usize| -> Result<u64, StorageError> {
        k.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| bad("short key"))
    };
    match tag {
        fmt::REC_SERIES => {
            if k.len() != 8 {
                return Err(bad("series key length"));
            }
            let id = id_at(k, 0)?;
            if id >= h.next_series_id || ids.series.last().is_some_and(|&last| id <= last) {
                return Err(bad("series id out of range, out of order or repeated"));
            }
            ids.series.push(id);
            let l = labels::decode(v).map_err(|e| bad(&e.to_string()))?;
            crate::validate_labels(&l).map_err(|e| bad(&e.to_string()))?;
            if *labels::encode(&l) != *v {
                return Err(bad("labels not in canonical encoding"));
            }
            if let Some(put) = put {
                put(CF_SERIES, &keys::series_key(shard, id), v)?;
                for lab in l.iter() {
                    put(
                        CF_POSTINGS,
                        &keys::postings_key(shard, &lab.name, &lab.value, id),
                        &[],
                    )?;
                }
            }
            Ok(())
        }
        fmt::REC_CHUNK => {
            if k.len() != 24 {
                return Err(bad("chunk key length"));
            }
            let mut full = shard.to_be_bytes().to_vec();
            full.extend_from_slice(k);
            let (id, min_t, _) = keys::parse_chunk_key(&full).ok_or_else(|| bad("chunk key"))?;
            let (max_t, data) = keys::parse_chunk_value(v).ok_or_else(|| bad("chunk value"))?;
            let samples = chunk::decode(data).map_err(|e| bad(&e.to_string()))?;
            match (samples.first(), samples.last()) {
                (Some(a), Some(b)) if a.0 == min_t && b.0 == max_t => {}
                _ => return Err(bad("chunk times disagree with its key")),
            }
            ids.refer(id);
            if let Some(put) = put {
                put(CF_CHUNKS, &full, v)?;
            }
            Ok(())
        }
        fmt::REC_HEAD => {
            if k.len() != 9 || k[0] != keys::TAG_HEAD {
                return Err(bad("head key"));
            }
            let id = id_at(k, 1)?;
            MemSeries::new(Box::default())
                .decode_head(v)
                .map_err(|e| bad(&e.to_string()))?;
            ids.refer(id);
            if let Some(put) = put {
                put(CF_SM_META, &keys::head_key(shard, id), v)?;
            }
            Ok(())
        }
        _ => Err(bad(&format!("unknown record tag {tag}"))),
    }
}

#[cfg(test)]
mod tests {
    use model::{Labels, MatchOp, Matcher, Sample};

    use super::*;
    use crate::{Db, SeriesRef, SeriesSamples, StorageOptions, WriteBatch};

    fn fill(sh: &Shard, name: &str, n: usize) {
        let v = (0..n)
            .map(|s| SeriesSamples {
                series: SeriesRef::Labels(Labels::from_pairs([
                    ("__name__", name.to_string()),
                    ("s", s.to_string()),
                ])),
                samples: (0..200)
                    .map(|k| Sample {
                        t: k * 15_000,
                        v: (s as f64) * 0.5 + k as f64,
                    })
                    .collect(),
            })
            .collect();
        sh.apply(sh.applied_index() + 1, &WriteBatch::Samples(v))
            .unwrap();
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

    /// A restore cut off after its first batch (the shard emptied, the file
    /// recorded) is finished when the shard is opened again, from the file.
    #[test]
    fn a_restore_cut_off_by_a_crash_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let want = {
            let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
            let src = db.shard(1).unwrap();
            fill(&src, "src", 50);
            src.set_user_meta(b"meta".to_vec());
            let dst = db.shard(2).unwrap();
            fill(&dst, "old", 10);
            dst.checkpoint().unwrap();
            let (path, f) = dst.create_snapshot_file().unwrap();
            let mut w = std::io::BufWriter::new(f);
            for p in src.snapshot().unwrap() {
                std::io::Write::write_all(&mut w, &p.unwrap()).unwrap();
            }
            drop(w);
            // restore_file up to the crash: validated, moved aside, first batch
            scan(2, &path, &mut None).unwrap();
            let target = db.inner.snapshot_dir().join(restore_file_name(2));
            std::fs::rename(&path, &target).unwrap();
            begin_replace(&db.inner, 2, &target).unwrap();
            dump(&src)
        };
        let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
        let dst = db.shard(2).unwrap();
        let got: Vec<_> = dump(&dst)
            .into_iter()
            .map(|(l, s)| (l.get("s").unwrap_or_default().to_string(), s))
            .collect();
        let want: Vec<_> = want
            .into_iter()
            .map(|(l, s)| (l.get("s").unwrap_or_default().to_string(), s))
            .collect();
        assert_eq!(got.len(), 50);
        assert_eq!(got, want);
        assert_eq!(dst.user_meta(), Some(b"meta".to_vec()));
        assert!(
            std::fs::read_dir(db.inner.snapshot_dir())
                .unwrap()
                .next()
                .is_none(),
            "the restore file is removed once used"
        );
        let m = [Matcher::equal("__name__", "old")];
        assert!(dst.series(&m, i64::MIN, i64::MAX).unwrap().is_empty());
    }

    /// The record names a file that is gone: opening the shard fails loudly
    /// instead of serving an emptied shard as if it were whole.
    #[test]
    fn a_restore_whose_file_is_gone_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
            let sh = db.shard(4).unwrap();
            fill(&sh, "x", 3);
            sh.checkpoint().unwrap();
            let gone = db.inner.snapshot_dir().join(restore_file_name(4));
            begin_replace(&db.inner, 4, &gone).unwrap();
        }
        let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
        let err = db.shard(4).err().expect("open must fail");
        assert!(err.to_string().contains("which is gone"), "{err}");
    }
}
