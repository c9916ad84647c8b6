//! The in-memory state of one series ([`MemSeries`]): its open chunk, chunks
//! sealed since the last checkpoint, its out-of-order buffer, and the append
//! rules (seal at 120 samples or 2 h, out-of-order window, duplicates).
//!
//! The head record of a series (CF "sm_meta", key `shard | 0x03 | id`,
//! written at checkpoint, read on open) is:
//!
//! ```text
//! version u8 (=2) | flags u8 (bit 0: has samples, bit 1: an out-of-order
//!                            chunk was sealed) |
//! first_t i64 | last_t i64 | last_v u64 (f64 bits)   -- big-endian
//! head_len varint | head chunk bytes (crate::chunk format; 0 = empty)
//! ooo_n varint | (t zigzag-varint | v u64 LE)*       -- sorted by t
//! ```
//!
//! A version-1 record (written before bit 1 existed) is read as if bit 1
//! were set: its series may have out-of-order chunks on disk.

use model::Sample;

use crate::chunk::{ChunkEncoder, MAX_CHUNK_SPAN_MS, MAX_SAMPLES_PER_CHUNK};
use crate::{RejectReason, StorageError};
use model::varint::{put_i64, put_u64, Reader};

/// Out-of-order samples buffered per series before they are sealed into a
/// chunk (as Prometheus' default `out_of_order_cap`).
pub(crate) const OOO_CAP: usize = 32;

const HEAD_VERSION: u8 = 2;
/// Head records of this version lack flag bit 1.
const HEAD_VERSION_1: u8 = 1;

/// Out-of-order samples of a series, sorted by time, unique.
#[derive(Default, Debug)]
pub(crate) struct OooBuf(pub(crate) Vec<Sample>);

impl std::ops::Deref for OooBuf {
    type Target = Vec<Sample>;
    fn deref(&self) -> &Vec<Sample> {
        &self.0
    }
}

impl std::ops::DerefMut for OooBuf {
    fn deref_mut(&mut self) -> &mut Vec<Sample> {
        &mut self.0
    }
}

/// A chunk sealed since the last checkpoint, waiting to be written.
#[derive(Clone, Debug)]
pub(crate) struct SealedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    /// 0 for in-order chunks, a shard-wide counter for out-of-order ones
    /// (see `crate::keys`).
    pub(crate) seq: u64,
    pub(crate) data: Box<[u8]>,
}

/// The parts of a series that most series have empty most of the time,
/// kept behind one box (see [`MemSeries::cold`]).
#[derive(Default)]
pub(crate) struct Cold {
    /// Chunks sealed since the last checkpoint (visible to reads).
    sealed: Vec<SealedChunk>,
    /// Out-of-order samples not sealed yet, sorted by time, unique.
    ooo: Option<OooBuf>,
}

/// The in-memory state of one series.
pub(crate) struct MemSeries {
    /// Canonical label encoding (`crate::labels`).
    pub(crate) labels: Box<[u8]>,
    /// The open in-order chunk (possibly empty).
    pub(crate) head: ChunkEncoder,
    /// Sealed chunks and the out-of-order buffer, `None` while both are
    /// empty (between checkpoints, most series): 8 bytes instead of 32,
    /// which puts a series in mimalloc's 160-byte size class, not 192.
    cold: Option<Box<Cold>>,
    /// Oldest sample time ever appended (approximate after retention).
    pub(crate) first_t: i64,
    /// Newest sample time.
    pub(crate) last_t: i64,
    /// Bits of the newest sample's value.
    pub(crate) last_v: u64,
    pub(crate) has_samples: bool,
    /// Changed since the last checkpoint.
    pub(crate) dirty: bool,
    /// An out-of-order chunk was ever sealed, so chunks on disk may hold
    /// samples anywhere before `last_t`. While it is false every chunk on
    /// disk ends before the oldest chunk in memory
    /// ([`MemSeries::disk_ends_before`]).
    ooo_sealed: bool,
}

/// What happened to one appended sample.
#[derive(Debug, PartialEq)]
pub(crate) enum Appended {
    /// Stored.
    Stored,
    /// Identical to a stored sample: a no-op.
    Duplicate,
    /// Rejected for this reason; the string says why.
    Rejected(RejectReason, String),
}

impl MemSeries {
    /// A series with no samples.
    pub(crate) fn new(labels: Box<[u8]>) -> Self {
        MemSeries {
            labels,
            head: ChunkEncoder::new(),
            cold: None,
            first_t: 0,
            last_t: 0,
            last_v: 0,
            has_samples: false,
            dirty: false,
            ooo_sealed: false,
        }
    }

    /// A time before which every chunk of this series on disk ends, when
    /// one is known: the start of its oldest in-order chunk in memory, if
    /// no out-of-order chunk was ever sealed (in-order chunks are sealed
    /// and written oldest first). A read of `[min_t, ..]` with `min_t` at
    /// or after it has nothing to find on disk.
    pub(crate) fn disk_ends_before(&self) -> Option<i64> {
        if self.ooo_sealed {
            return None;
        }
        match self.sealed().first() {
            Some(c) => Some(c.min_t),
            None => self.head.min_time(),
        }
    }

    /// Whether the series may hold samples in `[min_t, max_t]`.
    pub(crate) fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        self.has_samples && self.first_t <= max_t && self.last_t >= min_t
    }

    /// Appends one sample under the rules of the module doc. `next_seq`
    /// numbers sealed out-of-order chunks.
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        ooo_window: i64,
        next_seq: &mut u64,
    ) -> Appended {
        if !self.has_samples || t > self.last_t {
            self.append_in_order(t, v);
            return Appended::Stored;
        }
        if t == self.last_t {
            return if v.to_bits() == self.last_v {
                Appended::Duplicate
            } else {
                Appended::Rejected(
                    RejectReason::Duplicate,
                    format!(
                        "timestamp {t} already has value {}",
                        f64::from_bits(self.last_v)
                    ),
                )
            };
        }
        if ooo_window <= 0 {
            return Appended::Rejected(
                RejectReason::OutOfOrder,
                format!(
                    "newest sample is at {}, got {t}; raise the out-of-order window to accept late samples",
                    self.last_t
                ),
            );
        }
        if t < self.last_t.saturating_sub(ooo_window) {
            return Appended::Rejected(
                RejectReason::TooOld,
                format!(
                    "sample at {t} is more than the out-of-order window ({ooo_window} ms) behind the newest sample at {}",
                    self.last_t
                ),
            );
        }
        self.append_ooo(t, v, next_seq)
    }

    fn append_in_order(&mut self, t: i64, v: f64) {
        if let Some(min) = self.head.min_time() {
            let span = i128::from(t) - i128::from(min);
            if self.head.len() >= MAX_SAMPLES_PER_CHUNK || span > i128::from(MAX_CHUNK_SPAN_MS) {
                self.seal_head();
            }
        }
        if let Err(e) = self.head.push(t, v) {
            panic!(
                "invariant broken: head push of t={t} after last_t={} failed: {e}",
                self.last_t
            );
        }
        if !self.has_samples {
            self.first_t = t;
        }
        self.has_samples = true;
        self.last_t = t;
        self.last_v = v.to_bits();
        self.dirty = true;
    }

    /// Chunks sealed since the last checkpoint, oldest first.
    pub(crate) fn sealed(&self) -> &[SealedChunk] {
        self.cold.as_deref().map_or(&[], |c| &c.sealed)
    }

    /// The out-of-order buffer, if any.
    pub(crate) fn ooo(&self) -> Option<&OooBuf> {
        self.cold.as_deref().and_then(|c| c.ooo.as_ref())
    }

    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Forgets the first `n` sealed chunks (written by a checkpoint).
    pub(crate) fn drop_sealed(&mut self, n: usize) {
        if let Some(c) = self.cold.as_deref_mut() {
            c.sealed.drain(..n.min(c.sealed.len()));
            c.sealed.shrink_to_fit();
            if c.sealed.is_empty() && c.ooo.is_none() {
                self.cold = None;
            }
        }
    }

    /// Moves the open chunk to the sealed list.
    pub(crate) fn seal_head(&mut self) {
        let (Some(min_t), Some(max_t)) = (self.head.min_time(), self.head.max_time()) else {
            return;
        };
        let data = self.head.bytes().into_boxed_slice();
        self.head = ChunkEncoder::new();
        self.cold_mut().sealed.push(SealedChunk {
            min_t,
            max_t,
            seq: 0,
            data,
        });
        self.dirty = true;
    }

    fn append_ooo(&mut self, t: i64, v: f64, next_seq: &mut u64) -> Appended {
        // A sample with this timestamp may already be in the open chunk.
        if self.head.min_time().is_some_and(|m| m <= t) {
            if let Ok(samples) = crate::chunk::decode(&self.head.bytes()) {
                if let Some(&(_, old)) = samples.iter().find(|(ts, _)| *ts == t) {
                    return dup_or_reject(t, old, v);
                }
            }
        }
        let buf = self.cold_mut().ooo.get_or_insert_with(Default::default);
        let pos = match buf.binary_search_by(|s| s.t.cmp(&t)) {
            Ok(i) => return dup_or_reject(t, buf[i].v, v),
            Err(i) => i,
        };
        let span_after = match (buf.first(), buf.last()) {
            (Some(a), Some(b)) => i128::from(b.t.max(t)) - i128::from(a.t.min(t)),
            _ => 0,
        };
        if buf.len() >= OOO_CAP || span_after > i128::from(MAX_CHUNK_SPAN_MS) {
            self.seal_ooo(next_seq);
            self.cold_mut().ooo = Some(OooBuf(vec![Sample { t, v }]));
        } else {
            buf.insert(pos, Sample { t, v });
        }
        self.first_t = self.first_t.min(t);
        self.dirty = true;
        Appended::Stored
    }

    /// Encodes the out-of-order buffer as a sealed chunk.
    pub(crate) fn seal_ooo(&mut self, next_seq: &mut u64) {
        let Some(buf) = self.cold.as_deref_mut().and_then(|c| c.ooo.take()) else {
            return;
        };
        if let Some(c) = encode_sorted(&buf) {
            self.cold_mut().sealed.push(SealedChunk {
                min_t: c.0,
                max_t: c.1,
                seq: *next_seq,
                data: c.2,
            });
            *next_seq += 1;
            self.ooo_sealed = true;
            self.dirty = true;
        }
    }

    /// The out-of-order buffer as an encoded chunk, for reads.
    pub(crate) fn ooo_chunk(&self) -> Option<(i64, i64, Box<[u8]>)> {
        self.ooo().and_then(|b| encode_sorted(b))
    }

    /// Heap bytes held by this series (labels, chunks, buffers).
    pub(crate) fn heap_size(&self) -> usize {
        self.labels.len()
            + self.head.heap_size()
            + self.cold.as_deref().map_or(0, |c| {
                std::mem::size_of::<Cold>()
                    + c.sealed.capacity() * std::mem::size_of::<SealedChunk>()
                    + c.sealed.iter().map(|c| c.data.len()).sum::<usize>()
                    + c.ooo
                        .as_ref()
                        .map_or(0, |b| b.capacity() * std::mem::size_of::<Sample>())
            })
    }

    /// The head record (see the module doc).
    pub(crate) fn encode_head(&self) -> Vec<u8> {
        let head = if self.head.is_empty() {
            Vec::new()
        } else {
            self.head.bytes()
        };
        let mut out = Vec::with_capacity(30 + head.len());
        out.push(HEAD_VERSION);
        out.push(u8::from(self.has_samples) | u8::from(self.ooo_sealed) << 1);
        out.extend_from_slice(&self.first_t.to_be_bytes());
        out.extend_from_slice(&self.last_t.to_be_bytes());
        out.extend_from_slice(&self.last_v.to_be_bytes());
        put_u64(&mut out, head.len() as u64);
        out.extend_from_slice(&head);
        let ooo = self.ooo().map_or(&[][..], |b| &b[..]);
        put_u64(&mut out, ooo.len() as u64);
        for s in ooo {
            put_i64(&mut out, s.t);
            out.extend_from_slice(&s.v.to_bits().to_le_bytes());
        }
        out
    }

    /// Restores the fields of a head record onto a series loaded from the
    /// index. Validates everything (snapshots come from peers).
    pub(crate) fn decode_head(&mut self, b: &[u8]) -> Result<(), StorageError> {
        let bad = |what: &str| StorageError::Corrupt(format!("head record: {what}"));
        let mut r = Reader::new(b);
        let version = r.u8();
        if version != Some(HEAD_VERSION) && version != Some(HEAD_VERSION_1) {
            return Err(bad("unknown version"));
        }
        let flags = r.u8().ok_or_else(|| bad("truncated"))?;
        let mut i64_field = || {
            r.array::<8>()
                .map(i64::from_be_bytes)
                .ok_or_else(|| bad("truncated"))
        };
        let first_t = i64_field()?;
        let last_t = i64_field()?;
        let last_v = i64_field()? as u64;
        let head_bytes = r
            .len_prefixed()
            .ok_or_else(|| bad("truncated head chunk"))?;
        let head = if head_bytes.is_empty() {
            ChunkEncoder::new()
        } else {
            ChunkEncoder::from_bytes(head_bytes).map_err(|e| bad(&format!("head chunk: {e}")))?
        };
        let n = r.u64().ok_or_else(|| bad("truncated"))?;
        if n as usize > OOO_CAP {
            return Err(bad("out-of-order buffer too long"));
        }
        let mut ooo = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t = r.i64().ok_or_else(|| bad("truncated"))?;
            let v = f64::from_bits(u64::from_le_bytes(
                r.array::<8>().ok_or_else(|| bad("truncated"))?,
            ));
            if ooo.last().is_some_and(|p: &Sample| p.t >= t) {
                return Err(bad("out-of-order buffer not sorted"));
            }
            ooo.push(Sample { t, v });
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let has_samples = flags & 1 == 1;
        let known_flags = if version == Some(HEAD_VERSION_1) {
            1
        } else {
            3
        };
        if flags & !known_flags != 0 || (!has_samples && (!head.is_empty() || !ooo.is_empty())) {
            return Err(bad("inconsistent flags"));
        }
        if head.max_time().is_some_and(|m| m != last_t)
            || head.min_time().is_some_and(|m| m < first_t)
        {
            return Err(bad("head chunk times disagree with the record"));
        }
        self.head = head;
        if !ooo.is_empty() {
            self.cold_mut().ooo = Some(OooBuf(ooo));
        } else if let Some(c) = self.cold.as_deref_mut() {
            c.ooo = None;
            if c.sealed.is_empty() {
                self.cold = None;
            }
        }
        self.first_t = first_t;
        self.last_t = last_t;
        self.last_v = last_v;
        self.has_samples = has_samples;
        self.ooo_sealed = version == Some(HEAD_VERSION_1) || flags & 2 != 0;
        Ok(())
    }
}

fn dup_or_reject(t: i64, old: f64, new: f64) -> Appended {
    if old.to_bits() == new.to_bits() {
        Appended::Duplicate
    } else {
        Appended::Rejected(
            RejectReason::Duplicate,
            format!("timestamp {t} already has value {old}"),
        )
    }
}

/// Encodes samples sorted by unique time into one chunk: `(min_t, max_t, bytes)`.
fn encode_sorted(s: &[Sample]) -> Option<(i64, i64, Box<[u8]>)> {
    let mut e = ChunkEncoder::new();
    for x in s {
        e.push(x.t, x.v).ok()?;
    }
    Some((e.min_time()?, e.max_time()?, e.bytes().into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series_with(samples: &[(i64, f64)], ooo_window: i64) -> MemSeries {
        let mut m = MemSeries::new(Box::new([]));
        let mut seq = 1;
        for &(t, v) in samples {
            m.append(t, v, ooo_window, &mut seq);
        }
        m
    }

    #[test]
    fn disk_ends_before_the_oldest_in_order_chunk_in_memory() {
        let m = series_with(&[(1000, 1.0), (2000, 2.0)], 0);
        assert_eq!(m.disk_ends_before(), Some(1000));
        assert_eq!(MemSeries::new(Box::new([])).disk_ends_before(), None);
        // once an out-of-order chunk is sealed, nothing is known
        let mut late: Vec<(i64, f64)> = vec![(100_000, 0.0)];
        late.extend((0..=OOO_CAP as i64).map(|i| (50_000 + i, 1.0)));
        let mut m = series_with(&late, 3_600_000);
        assert_eq!(m.disk_ends_before(), None);
        // and it survives the head record
        let rec = m.encode_head();
        let mut back = MemSeries::new(Box::new([]));
        back.decode_head(&rec).unwrap();
        assert_eq!(back.disk_ends_before(), None);
        m.ooo_sealed = false;
        let mut back = MemSeries::new(Box::new([]));
        back.decode_head(&m.encode_head()).unwrap();
        assert_eq!(back.disk_ends_before(), Some(100_000));
    }

    /// A series fills mimalloc's 160-byte size class (see `cold`); a new
    /// field must fit in the padding or pay for it in a benchmark.
    #[test]
    fn a_series_fits_160_bytes() {
        assert!(std::mem::size_of::<MemSeries>() <= 160);
    }

    #[test]
    fn a_version_1_head_record_may_have_out_of_order_chunks_on_disk() {
        let m = series_with(&[(1000, 1.0), (2000, 2.0)], 0);
        let mut rec = m.encode_head();
        rec[0] = HEAD_VERSION_1;
        let mut back = MemSeries::new(Box::new([]));
        back.decode_head(&rec).unwrap();
        assert_eq!(back.disk_ends_before(), None);
        assert_eq!(back.last_t, 2000);
        // bit 1 is unknown to version 1
        rec[1] |= 2;
        assert!(MemSeries::new(Box::new([])).decode_head(&rec).is_err());
    }
}
