//! The byte format of shard snapshots (Raft `InstallSnapshot` payloads).
//!
//! A snapshot is a sequence of self-delimiting, checksummed parts; the byte
//! stream may be cut into transport chunks anywhere (restore reassembles).
//!
//! ```text
//! part     = magic "SBSN" | version u8 (=1) | kind u8 | len u32 BE |
//!            payload (len bytes, at most 16 MiB) |
//!            xxh3_64(magic .. payload) u64 BE
//! kind 1   Header (first part, once):
//!            source shard u32 | applied_index u64 | next_series_id u64 |
//!            next_chunk_seq u64 | has_user_meta u8 (0/1) |
//!            [user_meta_len varint | user_meta]
//! kind 2   Records (any number of parts):
//!            (cf u8 | key_len varint | key | value_len varint | value)*
//!            cf: 1 = series, 3 = chunks, 4 = head records (sm_meta);
//!            keys are the RocksDB keys WITHOUT the 4-byte shard prefix,
//!            values are the RocksDB values as drawn in `crate::keys`.
//!            Postings are not shipped: restore rebuilds them from labels.
//! kind 3   End (last part, once): parts u64 | records u64 (both counts
//!            include nothing of this part; parts counts header + records)
//! ```
//! Restore validates every part (magic, version, checksum, order, counts)
//! and every record (key shape, labels, chunk bytes fully decoded, head
//! records, references to known series) before touching the shard.

use crate::StorageError;
use model::varint::{put_u64, Reader};

pub(crate) const MAGIC: &[u8; 4] = b"SBSN";
pub(crate) const VERSION: u8 = 1;
pub(crate) const KIND_HEADER: u8 = 1;
pub(crate) const KIND_RECORDS: u8 = 2;
pub(crate) const KIND_END: u8 = 3;
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;
/// Target payload size of a records part.
pub(crate) const PART_TARGET: usize = 1 << 20;

pub(crate) const REC_SERIES: u8 = 1;
pub(crate) const REC_CHUNK: u8 = 3;
pub(crate) const REC_HEAD: u8 = 4;

/// Frames one part.
pub(crate) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 18);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// The header part's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) shard: u32,
    pub(crate) applied_index: u64,
    pub(crate) next_series_id: u64,
    pub(crate) next_chunk_seq: u64,
    pub(crate) user_meta: Option<Vec<u8>>,
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(40);
        p.extend_from_slice(&self.shard.to_be_bytes());
        p.extend_from_slice(&self.applied_index.to_be_bytes());
        p.extend_from_slice(&self.next_series_id.to_be_bytes());
        p.extend_from_slice(&self.next_chunk_seq.to_be_bytes());
        match &self.user_meta {
            Some(m) => {
                p.push(1);
                put_u64(&mut p, m.len() as u64);
                p.extend_from_slice(m);
            }
            None => p.push(0),
        }
        p
    }

    pub(crate) fn decode(p: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(p);
        let t = || bad("truncated header");
        let h = Header {
            shard: u32::from_be_bytes(r.array::<4>().ok_or_else(t)?),
            applied_index: u64::from_be_bytes(r.array::<8>().ok_or_else(t)?),
            next_series_id: u64::from_be_bytes(r.array::<8>().ok_or_else(t)?),
            next_chunk_seq: u64::from_be_bytes(r.array::<8>().ok_or_else(t)?),
            user_meta: match r.u8().ok_or_else(t)? {
                0 => None,
                1 => Some(r.len_prefixed().ok_or_else(t)?.to_vec()),
                _ => return Err(bad("bad user meta flag")),
            },
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes in header"));
        }
        Ok(h)
    }
}

/// Appends one record to a records payload.
pub(crate) fn put_record(out: &mut Vec<u8>, cf: u8, key: &[u8], value: &[u8]) {
    out.push(cf);
    put_u64(out, key.len() as u64);
    out.extend_from_slice(key);
    put_u64(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Iterates the records of a records payload.
pub(crate) fn records(
    p: &[u8],
) -> impl Iterator<Item = Result<(u8, &[u8], &[u8]), StorageError>> + '_ {
    let mut r = Reader::new(p);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.is_empty() {
            return None;
        }
        let rec = (|| Some((r.u8()?, r.len_prefixed()?, r.len_prefixed()?)))();
        if rec.is_none() {
            failed = true;
        }
        Some(rec.ok_or_else(|| bad("truncated record")))
    })
}

/// Reassembles parts from a byte stream cut anywhere.
#[derive(Default)]
pub(crate) struct Deframer {
    buf: Vec<u8>,
    pos: usize,
}

impl Deframer {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete part as `(kind, payload)`, `Ok(None)` if more bytes
    /// are needed.
    pub(crate) fn next_part(&mut self) -> Result<Option<(u8, Vec<u8>)>, StorageError> {
        let b = &self.buf[self.pos..];
        if b.len() < 10 {
            return Ok(None);
        }
        if &b[..4] != MAGIC {
            return Err(bad("bad magic"));
        }
        if b[4] != VERSION {
            return Err(bad(&format!("unknown snapshot version {}", b[4])));
        }
        let kind = b[5];
        let len = u32::from_be_bytes([b[6], b[7], b[8], b[9]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(bad("part too large"));
        }
        let total = 10 + len + 8;
        if b.len() < total {
            return Ok(None);
        }
        let sum = u64::from_be_bytes(b[10 + len..total].try_into().map_err(|_| bad("checksum"))?);
        if xxhash_rust::xxh3::xxh3_64(&b[..10 + len]) != sum {
            return Err(bad("checksum mismatch"));
        }
        let payload = b[10..10 + len].to_vec();
        self.pos += total;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 22) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(Some((kind, payload)))
    }

    /// True when no partial part is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
}

pub(crate) fn bad(what: &str) -> StorageError {
    StorageError::BadSnapshot(what.to_string())
}
