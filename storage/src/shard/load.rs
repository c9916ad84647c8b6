//! Loading a shard's index and head from RocksDB (on open and after a
//! restore), and the shard state record.

use std::sync::atomic::Ordering;

use super::{ApplyState, Shard};
use crate::head::MemSeries;
use crate::keys::{self, CF_SERIES, CF_SM_META, TAG_STATE, TAG_USER_META};
use crate::StorageError;

const STATE_VERSION: u8 = 1;

/// The shard state record (`sm_meta`, key `shard | 0x01`), see `crate::keys`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateRecord {
    pub(crate) applied_index: u64,
    pub(crate) next_series_id: u64,
    pub(crate) next_chunk_seq: u64,
}

impl StateRecord {
    pub(crate) fn encode(&self) -> [u8; 25] {
        let mut b = [0u8; 25];
        b[0] = STATE_VERSION;
        b[1..9].copy_from_slice(&self.applied_index.to_be_bytes());
        b[9..17].copy_from_slice(&self.next_series_id.to_be_bytes());
        b[17..25].copy_from_slice(&self.next_chunk_seq.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, StorageError> {
        if b.len() != 25 || b[0] != STATE_VERSION {
            return Err(StorageError::Corrupt(
                "shard state record: bad length or version".into(),
            ));
        }
        let u = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[r]);
            u64::from_be_bytes(a)
        };
        Ok(StateRecord {
            applied_index: u(1..9),
            next_series_id: u(9..17),
            next_chunk_seq: u(17..25),
        })
    }
}

impl Shard {
    /// Replaces all in-memory state with what is on disk.
    pub(super) fn load(&self, st: &mut ApplyState) -> Result<(), StorageError> {
        self.clear_memory(st);
        let db = &self.db;
        let rec = match db
            .rocks
            .get_cf(db.cf(CF_SM_META), keys::meta_key(self.id, TAG_STATE))?
        {
            Some(b) => StateRecord::decode(&b)?,
            None => StateRecord {
                applied_index: 0,
                next_series_id: 1,
                next_chunk_seq: 1,
            },
        };
        st.next_series_id = rec.next_series_id;
        st.next_chunk_seq = rec.next_chunk_seq;
        *self.user_meta.lock() = db
            .rocks
            .get_cf(db.cf(CF_SM_META), keys::meta_key(self.id, TAG_USER_META))?;

        let (start, end) = keys::shard_range(self.id);
        let mut it = db.rocks.raw_iterator_cf(db.cf(CF_SERIES));
        it.seek(start);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k >= &end[..] {
                break;
            }
            let id = match k.get(4..12) {
                Some(b) if k.len() == 12 => u64::from_be_bytes(b.try_into().unwrap_or_default()),
                _ => return Err(StorageError::Corrupt("series key of wrong length".into())),
            };
            crate::labels::decode(v)?;
            self.insert_series(id, MemSeries::new(v.into()));
            it.next();
        }
        it.status()?;

        let mut spans = Vec::new();
        let prefix = keys::head_prefix(self.id);
        let mut it = db.rocks.raw_iterator_cf(db.cf(CF_SM_META));
        it.seek(prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            let id = match k.get(5..13) {
                Some(b) if k.len() == 13 => u64::from_be_bytes(b.try_into().unwrap_or_default()),
                _ => return Err(StorageError::Corrupt("head key of wrong length".into())),
            };
            let mut stripe = self.stripe(id).write();
            let m = stripe.series.get_mut(&id).ok_or_else(|| {
                StorageError::Corrupt(format!("head record of unknown series {id}"))
            })?;
            m.decode_head(v)?;
            if m.has_samples && st.newest_t < Some(m.last_t) {
                st.newest_t = Some(m.last_t);
            }
            spans.push((id, super::span_of(m)));
            drop(stripe);
            it.next();
        }
        it.status()?;
        self.update_spans(&spans);
        self.applied.store(rec.applied_index, Ordering::Release);
        self.checkpointed
            .store(rec.applied_index, Ordering::Release);
        Ok(())
    }
}
