//! Reads: `select_chunks` (labels + encoded chunks, for transport), `select`
//! (decoded and merged), `label_names`, `label_values`, `series`.
//!
//! Matchers, `label_names` and `label_values` are answered from the
//! in-memory inverted index (`super::inverted`), which a read holds a read
//! lock on while it checks candidate series' time ranges: on the spans the
//! index keeps, and in the series map when a span cannot tell.
//!
//! Reads take read locks only; they run concurrently with apply. A
//! series' in-memory chunks are read before its RocksDB chunks, so a
//! concurrent checkpoint moving sealed chunks to disk can make a chunk appear
//! twice (merged away by timestamp) but never vanish.

use std::collections::BTreeSet;
use std::time::Instant;

use model::{Labels, Matcher, SeriesData};

use super::Shard;
use crate::chunk::MAX_CHUNK_SPAN_MS;
use crate::keys::{self, CF_CHUNKS};
use crate::{labels, merge_chunks, StorageError};

/// Series read between two looks at a read's deadline.
const DEADLINE_CHECK_EVERY: usize = 64;

/// One encoded chunk with its time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChunk {
    /// First sample time.
    pub min_t: i64,
    /// Last sample time.
    pub max_t: i64,
    /// The chunk bytes (`crate::chunk` format).
    pub data: Vec<u8>,
}

/// A series and its chunks overlapping a time range.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesChunks {
    /// The series' labels.
    pub labels: Labels,
    /// Chunks overlapping the range: persisted ones first, then in-memory
    /// sealed ones, the open head chunk and the out-of-order buffer. They may
    /// overlap; [`merge_chunks`] merges them.
    pub chunks: Vec<EncodedChunk>,
}

impl Shard {
    /// Labels and encoded chunks (head included) of the series matching
    /// `matchers` that overlap `[min_t, max_t]`, sorted by labels.
    pub fn select_chunks(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesChunks>, StorageError> {
        self.select_chunks_until(matchers, min_t, max_t, None)
    }

    /// [`Shard::select_chunks`] that gives up with
    /// [`StorageError::DeadlinePassed`] once `deadline` passes (checked
    /// every few series), so a query that timed out stops reading here too.
    pub fn select_chunks_until(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        deadline: Option<Instant>,
    ) -> Result<Vec<SeriesChunks>, StorageError> {
        self.check_dropped()?;
        let ids = self.resolve(&self.index.read(), matchers)?;
        let db = &self.db;
        let mut it = db.rocks.raw_iterator_cf(db.cf(CF_CHUNKS));
        let mut out = Vec::new();
        for (n, id) in ids.into_iter().enumerate() {
            if n % DEADLINE_CHECK_EVERY == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(StorageError::DeadlinePassed { shard: self.id });
            }
            let (enc, mut mem, disk_ends) = {
                let stripe = self.stripe(id).read();
                let Some(m) = stripe.series.get(&id) else {
                    continue;
                };
                if !m.overlaps(min_t, max_t) {
                    continue;
                }
                let mut mem = Vec::new();
                for c in m.sealed() {
                    if c.max_t >= min_t && c.min_t <= max_t {
                        mem.push(EncodedChunk {
                            min_t: c.min_t,
                            max_t: c.max_t,
                            data: c.data.to_vec(),
                        });
                    }
                }
                if let (Some(a), Some(b)) = (m.head.min_time(), m.head.max_time()) {
                    if b >= min_t && a <= max_t {
                        mem.push(EncodedChunk {
                            min_t: a,
                            max_t: b,
                            data: m.head.bytes(),
                        });
                    }
                }
                if let Some((a, b, data)) = m.ooo_chunk() {
                    if b >= min_t && a <= max_t {
                        mem.push(EncodedChunk {
                            min_t: a,
                            max_t: b,
                            data: data.into_vec(),
                        });
                    }
                }
                (m.labels.clone(), mem, m.disk_ends_before())
            };
            let mut chunks = Vec::new();
            // When every chunk on disk ends before the range, no seek (most
            // reads of the last minutes).
            if disk_ends.is_none_or(|t| t > min_t) {
                // Every chunk spans at most MAX_CHUNK_SPAN_MS: start that far back.
                it.seek(keys::chunk_key(
                    self.id,
                    id,
                    min_t.saturating_sub(MAX_CHUNK_SPAN_MS),
                    0,
                ));
                while let (Some(k), Some(v)) = (it.key(), it.value()) {
                    let Some((kid, c_min, _)) = keys::parse_chunk_key(k) else {
                        break;
                    };
                    if kid != id || !k.starts_with(&self.id.to_be_bytes()) || c_min > max_t {
                        break;
                    }
                    let (c_max, data) = keys::parse_chunk_value(v)
                        .ok_or_else(|| StorageError::Corrupt("chunk value too short".into()))?;
                    if c_max >= min_t {
                        chunks.push(EncodedChunk {
                            min_t: c_min,
                            max_t: c_max,
                            data: data.to_vec(),
                        });
                    }
                    it.next();
                }
                it.status()?;
            }
            chunks.append(&mut mem);
            if !chunks.is_empty() {
                out.push(SeriesChunks {
                    labels: labels::decode(&enc)?,
                    chunks,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Series matching `matchers` with their samples in `[min_t, max_t]`
    /// (head and persisted chunks merged), sorted by labels; series without
    /// samples in the range are omitted.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesData>, StorageError> {
        let mut out = Vec::new();
        for sc in self.select_chunks(matchers, min_t, max_t)? {
            let samples = merge_chunks(&sc.chunks, min_t, max_t)?;
            if !samples.is_empty() {
                out.push(SeriesData {
                    labels: sc.labels,
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// Label names of the series matching `matchers` (all series when empty)
    /// whose time range overlaps `[min_t, max_t]`, sorted, unique.
    ///
    /// Answered from the inverted index: a name is kept once one of its
    /// series (newest first) is found in the range, so a name costs one
    /// series look-up when its data is recent.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.check_dropped()?;
        let idx = self.index.read();
        let live = |id: u64| idx.surely_overlaps(id, min_t, max_t) || self.live(id, min_t, max_t);
        if matchers.is_empty() {
            return Ok(idx
                .names
                .iter()
                .filter(|(_, e)| {
                    e.values
                        .values()
                        .any(|ids| ids.iter().rev().any(|&id| live(id)))
                })
                .map(|(n, _)| n.to_string())
                .collect());
        }
        let ids = self.resolve(&idx, matchers)?;
        let postings: usize = idx.names.values().map(|e| e.postings).sum();
        if ids.len().saturating_mul(8) <= postings {
            // Few series: read their labels.
            let mut names = BTreeSet::new();
            self.for_each_series_of(&ids, min_t, max_t, |enc| {
                for p in labels::pairs(enc) {
                    let (n, _) = p?;
                    if !names.contains(n) {
                        names.insert(n.to_string());
                    }
                }
                Ok(())
            })?;
            return Ok(names.into_iter().collect());
        }
        let hit = |post: &[u64]| {
            post.iter()
                .rev()
                .any(|id| ids.binary_search(id).is_ok() && live(*id))
        };
        Ok(idx
            .names
            .iter()
            .filter(|(_, e)| e.values.values().any(|p| hit(p)))
            .map(|(n, _)| n.to_string())
            .collect())
    }

    /// Values of label `name` across matching series (all series when
    /// `matchers` is empty) overlapping the range, sorted, unique.
    ///
    /// Answered from the inverted index like [`Shard::label_names`]: a value
    /// is kept once one of its series is found in the range (and, with
    /// matchers, among the matching ids).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        self.visit_label_values(name, matchers, min_t, max_t, |v| out.push(v.to_string()))?;
        Ok(out)
    }

    /// [`Shard::label_values`] without a `String` per value: `f` sees
    /// each value once, in order.
    pub fn visit_label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        mut f: impl FnMut(&str),
    ) -> Result<(), StorageError> {
        self.check_dropped()?;
        let idx = self.index.read();
        let Some(entry) = idx.name(name) else {
            // Still report a bad selector.
            if !matchers.is_empty() {
                self.resolve(&idx, matchers)?;
            }
            return Ok(());
        };
        let live = |id: u64| idx.surely_overlaps(id, min_t, max_t) || self.live(id, min_t, max_t);
        if matchers.is_empty() {
            entry
                .values
                .iter()
                .filter(|(_, ids)| ids.iter().rev().any(|&id| live(id)))
                .for_each(|(v, _)| f(v));
            return Ok(());
        }
        let ids = self.resolve(&idx, matchers)?;
        if ids.len().saturating_mul(8) <= entry.postings {
            let mut values = BTreeSet::new();
            self.for_each_series_of(&ids, min_t, max_t, |enc| {
                let v = labels::get(enc, name);
                if !v.is_empty() && !values.contains(v) {
                    values.insert(v.to_string());
                }
                Ok(())
            })?;
            values.iter().for_each(|v| f(v));
            return Ok(());
        }
        entry
            .values
            .iter()
            .filter(|(_, post)| {
                post.iter()
                    .rev()
                    .any(|id| ids.binary_search(id).is_ok() && live(*id))
            })
            .for_each(|(v, _)| f(v));
        Ok(())
    }

    /// Label sets of matching series whose time range overlaps the range,
    /// sorted. Needs a matcher that does not match `""`.
    pub fn series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        self.check_dropped()?;
        let ids = self.resolve(&self.index.read(), matchers)?;
        let mut out = Vec::with_capacity(ids.len());
        self.for_each_series_of(&ids, min_t, max_t, |enc| {
            out.push(labels::decode(enc)?);
            Ok(())
        })?;
        out.sort();
        Ok(out)
    }

    /// Whether series `id` exists and its time range (first and newest
    /// sample times) overlaps `[min_t, max_t]`.
    fn live(&self, id: u64, min_t: i64, max_t: i64) -> bool {
        self.stripe(id)
            .read()
            .series
            .get(&id)
            .is_some_and(|m| m.overlaps(min_t, max_t))
    }

    fn for_each_series_of(
        &self,
        ids: &[u64],
        min_t: i64,
        max_t: i64,
        mut f: impl FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for &id in ids {
            let stripe = self.stripe(id).read();
            if let Some(m) = stripe.series.get(&id).filter(|m| m.overlaps(min_t, max_t)) {
                f(&m.labels)?;
            }
        }
        Ok(())
    }
}
