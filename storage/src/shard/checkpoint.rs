//! [`Shard::checkpoint`]: everything applied so far, in one atomic, synced
//! RocksDB write batch.

use std::sync::atomic::Ordering;

use super::load::StateRecord;
use super::{ApplyState, Shard};
use crate::chunk::MAX_CHUNK_SPAN_MS;
use crate::keys::{self, CF_CHUNKS, CF_POSTINGS, CF_SERIES, CF_SM_META, TAG_STATE, TAG_USER_META};
use crate::{labels, StorageError};

impl Shard {
    /// Makes everything applied so far durable in ONE atomic RocksDB write
    /// batch, synced: chunks sealed since the last checkpoint, the head
    /// record of every changed series, new series (series + postings keys),
    /// series removed by retention (their keys and chunks deleted), the
    /// applied index and the user meta.
    ///
    /// The node's shards checkpoint one at a time (`DbInner::checkpoint_gate`,
    /// always taken before the shard's state lock).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let _gate = self.db.checkpoint_gate.lock();
        let mut st = self.state.lock();
        let r = self.checkpoint_locked(&mut st);
        if let Some(release) = self.db.opts.release_memory {
            release();
        }
        r
    }

    /// A checkpoint by a caller holding the state lock, which must have
    /// taken `DbInner::checkpoint_gate` before it.
    pub(super) fn checkpoint_locked(&self, st: &mut ApplyState) -> Result<(), StorageError> {
        self.check_dropped()?;
        self.seal_idle(st);
        let db = &self.db;
        let (cf_series, cf_post, cf_chunks, cf_meta) = (
            db.cf(CF_SERIES),
            db.cf(CF_POSTINGS),
            db.cf(CF_CHUNKS),
            db.cf(CF_SM_META),
        );
        let mut wb = rocksdb::WriteBatch::default();

        // Series removed by retention: delete everything they had.
        for (id, enc) in &st.removed {
            wb.delete_cf(cf_series, keys::series_key(self.id, *id));
            wb.delete_cf(cf_meta, keys::head_key(self.id, *id));
            for p in labels::pairs(enc) {
                let (n, v) = p?;
                wb.delete_cf(cf_post, keys::postings_key(self.id, n, v, *id));
            }
            let start = keys::chunks_series_prefix(self.id, *id);
            if let Some(end) = keys::prefix_end(&start) {
                wb.delete_range_cf(cf_chunks, start.to_vec(), end);
            }
        }

        // New series: series record and postings.
        let new_ids = self.new_series.read().clone();
        for &id in &new_ids {
            let stripe = self.stripe(id).read();
            let Some(m) = stripe.series.get(&id) else {
                continue;
            };
            wb.put_cf(cf_series, keys::series_key(self.id, id), &m.labels);
            for p in labels::pairs(&m.labels) {
                let (n, v) = p?;
                wb.put_cf(cf_post, keys::postings_key(self.id, n, v, id), b"");
            }
        }

        // Changed series: sealed chunks and head records.
        let mut written: Vec<(u64, usize)> = Vec::with_capacity(st.dirty.len());
        let mut spans = Vec::with_capacity(st.dirty.len());
        for &id in &st.dirty {
            let stripe = self.stripe(id).read();
            let Some(m) = stripe.series.get(&id) else {
                continue;
            };
            for c in m.sealed() {
                wb.put_cf(
                    cf_chunks,
                    keys::chunk_key(self.id, id, c.min_t, c.seq),
                    keys::chunk_value(c.max_t, &c.data),
                );
            }
            wb.put_cf(cf_meta, keys::head_key(self.id, id), m.encode_head());
            written.push((id, m.sealed().len()));
            spans.push((id, super::span_of(m)));
        }
        // Their time ranges moved on: so do their spans in the index.
        self.update_spans(&spans);

        let applied = self.applied.load(Ordering::Acquire);
        let rec = StateRecord {
            applied_index: applied,
            next_series_id: st.next_series_id,
            next_chunk_seq: st.next_chunk_seq,
        };
        wb.put_cf(cf_meta, keys::meta_key(self.id, TAG_STATE), rec.encode());
        match &*self.user_meta.lock() {
            Some(m) => wb.put_cf(cf_meta, keys::meta_key(self.id, TAG_USER_META), m),
            None => wb.delete_cf(cf_meta, keys::meta_key(self.id, TAG_USER_META)),
        }

        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.rocks.write_opt(wb, &wo)?;

        // Durable: drop what was written from memory. Apply is excluded by
        // the state lock, so nothing changed since the batch was built.
        for (id, n) in written {
            let mut stripe = self.stripe(id).write();
            if let Some(m) = stripe.series.get_mut(&id) {
                m.drop_sealed(n);
                m.dirty = false;
            }
        }
        st.dirty.clear();
        st.removed.clear();
        self.new_series.write().clear();
        self.checkpointed.store(applied, Ordering::Release);
        Ok(())
    }

    /// Writes out the open chunk of every series idle for [`IDLE_MS`]
    /// behind the shard's newest sample, with this checkpoint: such a
    /// series then holds no samples in memory (its data is on disk and
    /// read from there; its labels, times and index entries stay). A
    /// series with out-of-order samples buffered is left as it is (sealing
    /// those numbers chunks shard-wide). The sweep walks every series, so it
    /// runs once per chunk range of newly applied time.
    fn seal_idle(&self, st: &mut ApplyState) {
        let Some(newest) = st.newest_t else { return };
        if st
            .idle_swept_at
            .is_some_and(|at| newest < at.saturating_add(MAX_CHUNK_SPAN_MS))
        {
            return;
        }
        st.idle_swept_at = Some(newest);
        let cutoff = newest.saturating_sub(IDLE_MS);
        for stripe in self.stripes.iter() {
            let mut stripe = stripe.write();
            for (&id, m) in stripe.series.iter_mut() {
                if m.has_samples && m.last_t < cutoff && !m.head.is_empty() && m.ooo().is_none() {
                    let was_dirty = m.dirty;
                    m.seal_head();
                    if !was_dirty {
                        st.dirty.push(id);
                    }
                }
            }
        }
    }
}

/// How long a series may go without samples, behind its shard's newest
/// sample, before its open chunk leaves memory: three chunk ranges
/// (Prometheus' head keeps about one and a half).
pub(crate) const IDLE_MS: i64 = 3 * MAX_CHUNK_SPAN_MS;
