//! [`Shard`]: the state machine of one shard, which Raft drives.
//!
//! Memory layout (no global lock on the ingest path):
//! - `stripes`: 64 `RwLock`ed maps `series id -> MemSeries`, striped by id;
//!   apply write-locks one stripe per series it touches, reads read-lock.
//! - `hashes`: 64 `RwLock`ed maps `xxh3(label encoding) -> id`, striped by
//!   hash (collisions, practically never seen, go to a side list).
//! - `state`: a mutex held by apply, checkpoint and restore only (Raft
//!   applies one entry at a time anyway): id counters and the lists of dirty,
//!   new and removed series since the last checkpoint.
//!
//! - `index`: the in-memory inverted index (label name -> value -> postings,
//!   see `inverted`), kept in step with `stripes` by `insert_series` and
//!   `remove_series`; lock order is `index` before a stripe. It also holds
//!   bounds on each series' time range (`inverted::Span`), so that index
//!   reads need not look most series up in `stripes`.
//!
//! The operations live in their own modules: `apply`, `checkpoint`, `load`,
//! `read` (+ `index` for matcher resolution), `snapshot`, `tsdb`.

mod apply;
mod checkpoint;
mod index;
mod inverted;
mod load;
mod read;
mod snapshot;
pub use snapshot::{PartSink, SnapshotSource};
mod tsdb;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use model::Labels;
use parking_lot::{Mutex, RwLock};

use crate::db::DbInner;
use crate::head::MemSeries;
use crate::labels;

pub use read::{EncodedChunk, SeriesChunks};
pub use tsdb::TsdbStats;

const STRIPES: usize = 64;

/// A cheap hasher for keys that are ids or already hashes (a multiply mixes
/// sequential ids into the high bits hashbrown uses).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// One stripe of the series map. A series is boxed: the map's table then
/// holds 16 bytes per slot instead of a whole `MemSeries` (184 bytes), and
/// a hash table is between about 44% and 87% full, so an inline
/// `MemSeries` cost up to twice its size (at 1M series, about 400 of the
/// engine's 765 bytes per series; boxed, the series and its slot take
/// about 225).
#[derive(Default)]
pub(crate) struct Stripe {
    pub(crate) series: IdMap<Box<MemSeries>>,
}

/// One stripe of the labels-hash -> id map.
#[derive(Default)]
pub(crate) struct HashStripe {
    one: IdMap<u64>,
    /// Further ids whose labels share a hash with the one in `one`.
    more: IdMap<Vec<u64>>,
}

/// Counters and change lists, guarded by the apply mutex.
#[derive(Default)]
pub(crate) struct ApplyState {
    pub(crate) next_series_id: u64,
    pub(crate) next_chunk_seq: u64,
    /// Series whose head changed since the last checkpoint.
    pub(crate) dirty: Vec<u64>,
    /// Series removed by retention since the last checkpoint, with labels.
    pub(crate) removed: Vec<(u64, Box<[u8]>)>,
    /// Newest sample time applied to the shard.
    pub(crate) newest_t: Option<i64>,
    /// `newest_t` at the last idle sweep (see `Shard::seal_idle`).
    pub(crate) idle_swept_at: Option<i64>,
}

/// Figures of one shard, for `/metrics` and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Series in the index (head).
    pub series: u64,
    /// Series created since the last checkpoint.
    pub new_series: u64,
    /// Chunks sealed but not checkpointed yet (held in memory).
    pub sealed_chunks_in_memory: u64,
    /// Samples in open head chunks.
    pub head_samples: u64,
    /// Samples in out-of-order buffers.
    pub ooo_samples: u64,
    /// Approximate heap bytes of series data (labels, chunks, buffers).
    pub heap_bytes: u64,
    /// Last applied log index.
    pub applied_index: u64,
    /// Last checkpointed log index.
    pub checkpointed_index: u64,
}

/// The state machine of one shard; `&self` methods, internally synchronised.
pub struct Shard {
    id: u32,
    db: Arc<DbInner>,
    stripes: Box<[RwLock<Stripe>]>,
    hashes: Box<[RwLock<HashStripe>]>,
    state: Mutex<ApplyState>,
    /// Ids created since the last checkpoint (not in the postings CF yet).
    new_series: RwLock<Vec<u64>>,
    index: RwLock<inverted::InvertedIndex>,
    applied: AtomicU64,
    checkpointed: AtomicU64,
    user_meta: Mutex<Option<Vec<u8>>>,
    dropped: AtomicBool,
}

/// What the index may know of a series' time range: all of it.
fn span_of(m: &MemSeries) -> inverted::Span {
    if m.has_samples {
        inverted::Span {
            first: m.first_t,
            last: m.last_t,
        }
    } else {
        inverted::Span::UNKNOWN
    }
}

impl Shard {
    /// Opens a shard, loading its index and head from disk.
    pub(crate) fn open(db: Arc<DbInner>, id: u32) -> Result<Shard, crate::StorageError> {
        let s = Shard {
            id,
            db,
            stripes: (0..STRIPES).map(|_| RwLock::default()).collect(),
            hashes: (0..STRIPES).map(|_| RwLock::default()).collect(),
            state: Mutex::new(ApplyState::default()),
            new_series: RwLock::default(),
            index: RwLock::default(),
            applied: AtomicU64::new(0),
            checkpointed: AtomicU64::new(0),
            user_meta: Mutex::new(None),
            dropped: AtomicBool::new(false),
        };
        {
            let mut st = s.state.lock();
            s.finish_restore()?;
            s.load(&mut st)?;
        }
        Ok(s)
    }

    /// The shard id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Log index of the last applied entry (as of the last apply).
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Log index as of the last checkpoint (durable). After reopen this equals
    /// [`Shard::applied_index`]: replay starts after it.
    pub fn checkpointed_index(&self) -> u64 {
        self.checkpointed.load(Ordering::Acquire)
    }

    /// Sets the opaque bytes the Raft adapter stores with each checkpoint.
    pub fn set_user_meta(&self, meta: Vec<u8>) {
        *self.user_meta.lock() = Some(meta);
    }

    /// The user meta as last set (after reopen: as of the last checkpoint).
    pub fn user_meta(&self) -> Option<Vec<u8>> {
        self.user_meta.lock().clone()
    }

    /// Advances the applied index for entries that carry no batch
    /// (blank/membership entries). Lower indexes are ignored.
    pub fn apply_noop(&self, log_index: u64) {
        let _st = self.state.lock();
        self.applied.fetch_max(log_index, Ordering::AcqRel);
    }

    /// Labels -> id lookup for proposers (never allocates an id).
    pub fn lookup(&self, labels: &Labels) -> Option<u64> {
        let enc = labels::encode(labels);
        self.find(&enc, labels::hash(&enc))
    }

    /// Figures of this shard.
    pub fn stats(&self) -> ShardStats {
        let mut s = ShardStats {
            new_series: self.new_series.read().len() as u64,
            applied_index: self.applied_index(),
            checkpointed_index: self.checkpointed_index(),
            ..Default::default()
        };
        for stripe in self.stripes.iter() {
            let stripe = stripe.read();
            s.series += stripe.series.len() as u64;
            for m in stripe.series.values() {
                s.sealed_chunks_in_memory += m.sealed().len() as u64;
                s.head_samples += m.head.len() as u64;
                s.ooo_samples += m.ooo().map_or(0, |b| b.len()) as u64;
                s.heap_bytes += m.heap_size() as u64;
            }
        }
        s
    }

    pub(crate) fn mark_dropped(&self) {
        let mut st = self.state.lock();
        self.dropped.store(true, Ordering::Release);
        self.clear_memory(&mut st);
    }

    fn check_dropped(&self) -> Result<(), crate::StorageError> {
        if self.dropped.load(Ordering::Acquire) {
            Err(crate::StorageError::ShardDropped(self.id))
        } else {
            Ok(())
        }
    }

    #[inline]
    fn stripe(&self, id: u64) -> &RwLock<Stripe> {
        &self.stripes[(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % STRIPES]
    }

    #[inline]
    fn hash_stripe(&self, h: u64) -> &RwLock<HashStripe> {
        &self.hashes[(h >> 58) as usize % STRIPES]
    }

    /// The id of the series with this label encoding, if any.
    fn find(&self, enc: &[u8], h: u64) -> Option<u64> {
        let hs = self.hash_stripe(h).read();
        let first = *hs.one.get(&h)?;
        let more: Vec<u64> = hs.more.get(&h).cloned().unwrap_or_default();
        drop(hs);
        std::iter::once(first).chain(more).find(|&id| {
            self.stripe(id)
                .read()
                .series
                .get(&id)
                .is_some_and(|m| &*m.labels == enc)
        })
    }

    /// Adds a series to both maps and the inverted index.
    fn insert_series(&self, id: u64, m: MemSeries) {
        self.index.write().add(id, &m.labels, span_of(&m));
        let h = labels::hash(&m.labels);
        {
            let mut hs = self.hash_stripe(h).write();
            let hs = &mut *hs;
            match hs.one.entry(h) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    hs.more.entry(h).or_default().push(id)
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(id);
                }
            }
        }
        self.stripe(id).write().series.insert(id, Box::new(m));
    }

    /// Removes a series from both maps, returning it.
    fn remove_series(&self, id: u64) -> Option<Box<MemSeries>> {
        let m = self.stripe(id).write().series.remove(&id)?;
        self.index.write().remove(id, m.labels.clone());
        let h = labels::hash(&m.labels);
        let mut hs = self.hash_stripe(h).write();
        let hs = &mut *hs;
        if hs.one.get(&h) == Some(&id) {
            match hs.more.get_mut(&h).and_then(Vec::pop) {
                Some(next) => {
                    hs.one.insert(h, next);
                }
                None => {
                    hs.one.remove(&h);
                }
            }
        } else if let Some(v) = hs.more.get_mut(&h) {
            v.retain(|&x| x != id);
        }
        if hs.more.get(&h).is_some_and(Vec::is_empty) {
            hs.more.remove(&h);
        }
        Some(m)
    }

    /// Brings the index's spans of these series up to date (see
    /// `inverted`). Takes no stripe lock (the index lock comes first).
    fn update_spans(&self, spans: &[(u64, inverted::Span)]) {
        if spans.is_empty() {
            return;
        }
        let mut idx = self.index.write();
        for &(id, span) in spans {
            idx.set_span(id, span);
        }
    }

    /// Empties every in-memory structure.
    fn clear_memory(&self, st: &mut ApplyState) {
        for s in self.stripes.iter() {
            *s.write() = Stripe::default();
        }
        for h in self.hashes.iter() {
            *h.write() = HashStripe::default();
        }
        self.new_series.write().clear();
        *self.index.write() = inverted::InvertedIndex::default();
        *st = ApplyState::default();
    }
}
