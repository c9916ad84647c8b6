//! Every RocksDB key layout of the storage engine, in one place.
//!
//! All integers are big-endian so that byte order is numeric order. Every key
//! of a shard starts with the shard id, so a shard is one key range per column
//! family (`drop_shard`, snapshots and restores work on that range). Shard id
//! `u32::MAX` is reserved (its range would have no finite end key).
//!
//! ```text
//! CF "series"    key:   shard u32 | series_id u64                       (12 B)
//!                value: labels, see `crate::labels` (canonical encoding)
//!
//! CF "postings"  key:   shard u32 | name bytes | 0x00 |
//!                       value_len u32 | value bytes | series_id u64
//!                value: empty
//!                (label names never contain 0x00: they match
//!                 [a-zA-Z_][a-zA-Z0-9_]*; values are length-prefixed, so a
//!                 `name="v"` lookup is the prefix up to and including `v`, and
//!                 every value of `name` is the prefix up to the 0x00)
//!
//! CF "chunks"    key:   shard u32 | series_id u64 | min_t u64 | seq u64  (28 B)
//!                       min_t is the i64 chunk start with the sign bit
//!                       flipped (t ^ 1<<63), so negative times sort first;
//!                       seq is 0 for in-order chunks (their min_t is unique
//!                       per series) and a shard-wide counter >= 1 for
//!                       out-of-order chunks (which may share a min_t)
//!                value: max_t i64 | chunk bytes (see `crate::chunk`)
//!                       (max_t first lets the retention compaction filter
//!                        decide without decoding the chunk)
//!
//! CF "sm_meta"   key:   shard u32 | 0x01            -> state record:
//!                       version u8 (=1) | applied_index u64 |
//!                       next_series_id u64 | next_chunk_seq u64
//!                key:   shard u32 | 0x02            -> user meta (opaque)
//!                key:   shard u32 | 0x03 | series_id u64
//!                                                   -> head record of a series,
//!                                                      see `crate::head`
//!                key:   shard u32 | 0x04            -> file name (UTF-8) of the
//!                       snapshot in `<data dir>/snapshots` that the shard is
//!                       being replaced by; present only between the first
//!                       and the last write batch of a restore
//!
//! CF "raft_log", "raft_meta": owned by the cluster crate (Raft log store).
//! ```

/// Column family of the Raft log (used by the cluster crate).
pub const CF_RAFT_LOG: &str = "raft_log";
/// Column family of Raft votes/membership (used by the cluster crate).
pub const CF_RAFT_META: &str = "raft_meta";
/// Column family: series id -> labels.
pub const CF_SERIES: &str = "series";
/// Column family: postings (label name/value -> series ids).
pub const CF_POSTINGS: &str = "postings";
/// Column family: sealed chunks.
pub const CF_CHUNKS: &str = "chunks";
/// Column family: state-machine metadata and head chunks.
pub const CF_SM_META: &str = "sm_meta";

/// Column families whose keys start with a shard id and belong to storage.
pub(crate) const SHARD_CFS: [&str; 4] = [CF_SERIES, CF_POSTINGS, CF_CHUNKS, CF_SM_META];

pub(crate) const TAG_STATE: u8 = 0x01;
pub(crate) const TAG_USER_META: u8 = 0x02;
pub(crate) const TAG_HEAD: u8 = 0x03;
/// Present while a shard is being replaced by a snapshot; the value names
/// the snapshot file (in the DB's `snapshots` directory) to finish from.
pub(crate) const TAG_RESTORING: u8 = 0x04;

/// Sign-bit flip making i64 order equal unsigned byte order.
#[inline]
pub(crate) fn flip(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// Inverse of [`flip`].
#[inline]
pub(crate) fn unflip(u: u64) -> i64 {
    (u ^ (1 << 63)) as i64
}

/// `[start, end)` covering every key of `shard` in any shard-prefixed CF.
pub(crate) fn shard_range(shard: u32) -> ([u8; 4], [u8; 4]) {
    debug_assert!(shard < u32::MAX, "shard u32::MAX is reserved");
    (shard.to_be_bytes(), (shard + 1).to_be_bytes())
}

/// Key of a series record.
pub(crate) fn series_key(shard: u32, id: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Prefix of every posting of label `name`.
pub(crate) fn postings_name_prefix(shard: u32, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + name.len());
    k.extend_from_slice(&shard.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

/// Prefix of every posting of `name="value"`.
pub(crate) fn postings_value_prefix(shard: u32, name: &str, value: &str) -> Vec<u8> {
    let mut k = postings_name_prefix(shard, name);
    k.reserve(12 + value.len());
    k.extend_from_slice(&(value.len() as u32).to_be_bytes());
    k.extend_from_slice(value.as_bytes());
    k
}

/// Key of one posting.
pub(crate) fn postings_key(shard: u32, name: &str, value: &str, id: u64) -> Vec<u8> {
    let mut k = postings_value_prefix(shard, name, value);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Splits a postings key (with its 4-byte shard prefix) into
/// `(name, value, series_id)`; `None` when malformed. (The postings are
/// read into the in-memory index from the `series` family, so only the
/// key-layout tests read postings keys back.)
#[cfg(test)]
pub(crate) fn parse_postings_key(k: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let rest = k.get(4..)?;
    let nul = rest.iter().position(|&b| b == 0)?;
    let name = &rest[..nul];
    let rest = &rest[nul + 1..];
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = &rest[4..];
    if rest.len() != len.checked_add(8)? {
        return None;
    }
    let id = u64::from_be_bytes(rest[len..].try_into().ok()?);
    Some((name, &rest[..len], id))
}

/// Prefix of every chunk of a series.
pub(crate) fn chunks_series_prefix(shard: u32, id: u64) -> [u8; 12] {
    series_key(shard, id)
}

/// Key of a chunk.
pub(crate) fn chunk_key(shard: u32, id: u64, min_t: i64, seq: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4..12].copy_from_slice(&id.to_be_bytes());
    k[12..20].copy_from_slice(&flip(min_t).to_be_bytes());
    k[20..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a chunk key into `(series_id, min_t, seq)`.
pub(crate) fn parse_chunk_key(k: &[u8]) -> Option<(u64, i64, u64)> {
    if k.len() != 28 {
        return None;
    }
    let id = u64::from_be_bytes(k[4..12].try_into().ok()?);
    let min_t = unflip(u64::from_be_bytes(k[12..20].try_into().ok()?));
    let seq = u64::from_be_bytes(k[20..28].try_into().ok()?);
    Some((id, min_t, seq))
}

/// Value of a chunk record: `max_t | bytes`.
pub(crate) fn chunk_value(max_t: i64, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + bytes.len());
    v.extend_from_slice(&max_t.to_be_bytes());
    v.extend_from_slice(bytes);
    v
}

/// Splits a chunk value into `(max_t, chunk bytes)`.
pub(crate) fn parse_chunk_value(v: &[u8]) -> Option<(i64, &[u8])> {
    let max_t = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    Some((max_t, &v[8..]))
}

/// Key of a shard-level metadata record (`TAG_STATE`, `TAG_USER_META`).
pub(crate) fn meta_key(shard: u32, tag: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4] = tag;
    k
}

/// Key of the head record of a series.
pub(crate) fn head_key(shard: u32, id: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4] = TAG_HEAD;
    k[5..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Prefix of every head record of a shard.
pub(crate) fn head_prefix(shard: u32) -> [u8; 5] {
    meta_key(shard, TAG_HEAD)
}

/// Smallest key strictly greater than every key starting with `prefix`
/// (`None` when the prefix is all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_is_byte_order() {
        let ts = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in ts.windows(2) {
            assert!(chunk_key(1, 2, w[0], 0) < chunk_key(1, 2, w[1], 0));
            assert_eq!(unflip(flip(w[0])), w[0]);
        }
        assert_eq!(parse_chunk_key(&chunk_key(3, 9, -42, 5)), Some((9, -42, 5)));
    }

    #[test]
    fn postings_round_trip_and_prefixes() {
        let k = postings_key(7, "job", "api", 99);
        assert_eq!(parse_postings_key(&k), Some((&b"job"[..], &b"api"[..], 99)));
        assert!(k.starts_with(&postings_value_prefix(7, "job", "api")));
        assert!(k.starts_with(&postings_name_prefix(7, "job")));
        // "job" must not match the prefix of a value "ap"
        assert!(!k.starts_with(&postings_value_prefix(7, "job", "ap")));
        // nor a name that extends "jo"
        assert!(!k.starts_with(&postings_name_prefix(7, "jo")));
        assert_eq!(parse_postings_key(&k[..k.len() - 1]), None);
    }

    #[test]
    fn prefix_end_works() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
