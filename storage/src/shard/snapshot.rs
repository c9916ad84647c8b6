//! [`Shard::snapshot`] and [`Shard::restore`] over the format of
//! `crate::snapshot`.

use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use super::load::StateRecord;
use super::Shard;
use crate::db::DbInner;
use crate::head::MemSeries;
use crate::keys::{self, CF_CHUNKS, CF_POSTINGS, CF_SERIES, CF_SM_META, TAG_STATE, TAG_USER_META};
use crate::snapshot::{self as fmt, bad, Deframer, Header};
use crate::{chunk, labels, StorageError};

type Part = Result<Vec<u8>, StorageError>;

impl Shard {
    /// The shard as a stream of snapshot parts (see `crate::snapshot`),
    /// consistent at the applied index: it checkpoints first, then reads a
    /// RocksDB snapshot from a background thread while the caller consumes
    /// the stream. Dropping the stream stops the thread.
    pub fn snapshot(
        &self,
    ) -> Result<impl Iterator<Item = Result<Vec<u8>, StorageError>> + Send + 'static, StorageError>
    {
        let mut st = self.state.lock();
        self.checkpoint_locked(&mut st)?;
        let (tx, rx) = sync_channel::<Part>(4);
        let (ready_tx, ready_rx) = sync_channel::<()>(1);
        let db = self.db.clone();
        let shard = self.id;
        std::thread::Builder::new()
            .name(format!("snapshot-{shard}"))
            .spawn(move || {
                let snap = db.rocks.snapshot();
                let _ = ready_tx.send(());
                if let Err(e) = write_snapshot(&db, &snap, shard, &tx) {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| StorageError::Corrupt(format!("cannot start snapshot thread: {e}")))?;
        // Hold the apply lock until the RocksDB snapshot exists.
        let _ = ready_rx.recv();
        drop(st);
        Ok(rx.into_iter())
    }

    /// Replaces the shard's whole content with a snapshot stream. Every byte
    /// is validated first (they come from a peer); on any error the shard is
    /// left exactly as it was.
    pub fn restore(
        &self,
        parts: impl Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError> {
        let staged = stage(self.id, parts)?;
        let mut st = self.state.lock();
        self.check_dropped()?;
        let db = &self.db;
        let mut wb = rocksdb::WriteBatch::default();
        let (start, end) = keys::shard_range(self.id);
        for cf in keys::SHARD_CFS {
            wb.delete_range_cf(db.cf(cf), start, end);
        }
        for (cf, k, v) in &staged.puts {
            wb.put_cf(db.cf(cf), k, v);
        }
        let rec = StateRecord {
            applied_index: staged.header.applied_index,
            next_series_id: staged.header.next_series_id,
            next_chunk_seq: staged.header.next_chunk_seq,
        };
        wb.put_cf(
            db.cf(CF_SM_META),
            keys::meta_key(self.id, TAG_STATE),
            rec.encode(),
        );
        if let Some(m) = &staged.header.user_meta {
            wb.put_cf(db.cf(CF_SM_META), keys::meta_key(self.id, TAG_USER_META), m);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.rocks.write_opt(wb, &wo)?;
        self.load(&mut st)
    }
}

fn write_snapshot(
    db: &Arc<DbInner>,
    snap: &rocksdb::Snapshot<'_>,
    shard: u32,
    tx: &SyncSender<Part>,
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
    let send = |p: Vec<u8>| {
        tx.send(Ok(p))
            .map_err(|_| StorageError::Corrupt("snapshot receiver gone".into()))
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

/// A fully validated snapshot, ready to be written.
struct Staged {
    header: Header,
    puts: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
}

/// Parses and validates a whole snapshot stream into RocksDB puts for shard
/// `shard` (postings rebuilt from labels).
fn stage(shard: u32, parts: impl Iterator<Item = Part>) -> Result<Staged, StorageError> {
    let mut de = Deframer::default();
    let mut header: Option<Header> = None;
    let mut ended = false;
    let (mut n_parts, mut n_records) = (0u64, 0u64);
    let mut puts = Vec::new();
    let mut series_ids = HashSet::new();
    let mut referenced = Vec::new();
    for p in parts {
        de.push(&p?);
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
                        puts.extend(check_record(
                            shard,
                            h,
                            tag,
                            k,
                            v,
                            &mut series_ids,
                            &mut referenced,
                        )?);
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
    if let Some(id) = referenced.iter().find(|id| !series_ids.contains(*id)) {
        return Err(bad(&format!("record refers to unknown series {id}")));
    }
    let header = header.ok_or_else(|| bad("no header"))?;
    Ok(Staged { header, puts })
}

type Put = (&'static str, Vec<u8>, Vec<u8>);

fn check_record(
    shard: u32,
    h: &Header,
    tag: u8,
    k: &[u8],
    v: &[u8],
    series_ids: &mut HashSet<u64>,
    referenced: &mut Vec<u64>,
) -> Result<Vec<Put>, StorageError> {
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
            if id >= h.next_series_id || !series_ids.insert(id) {
                return Err(bad("series id out of range or repeated"));
            }
            let l = labels::decode(v).map_err(|e| bad(&e.to_string()))?;
            crate::validate_labels(&l).map_err(|e| bad(&e.to_string()))?;
            if *labels::encode(&l) != *v {
                return Err(bad("labels not in canonical encoding"));
            }
            let mut puts = vec![(CF_SERIES, keys::series_key(shard, id).to_vec(), v.to_vec())];
            for lab in l.iter() {
                puts.push((
                    CF_POSTINGS,
                    keys::postings_key(shard, &lab.name, &lab.value, id),
                    Vec::new(),
                ));
            }
            Ok(puts)
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
            referenced.push(id);
            Ok(vec![(CF_CHUNKS, full, v.to_vec())])
        }
        fmt::REC_HEAD => {
            if k.len() != 9 || k[0] != keys::TAG_HEAD {
                return Err(bad("head key"));
            }
            let id = id_at(k, 1)?;
            MemSeries::new(Box::default())
                .decode_head(v)
                .map_err(|e| bad(&e.to_string()))?;
            referenced.push(id);
            Ok(vec![(
                CF_SM_META,
                keys::head_key(shard, id).to_vec(),
                v.to_vec(),
            )])
        }
        _ => Err(bad(&format!("unknown record tag {tag}"))),
    }
}
