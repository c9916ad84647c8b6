//! Chunks: the compressed form of up to [`MAX_SAMPLES_PER_CHUNK`] samples of
//! one series, in one of two encodings written with `bitvec`: Gorilla
//! (Pelkonen et al., "Gorilla", VLDB 2015; encoding 1, the default, for any
//! values) and decimal (encoding 2, for values that are all exact decimals
//! with at most [`MAX_SCALE`] fraction digits).
//!
//! [`ChunkEncoder`] is the open (head) chunk that samples are appended to;
//! it writes decimal while the values allow it, else Gorilla. [`ChunkIter`], [`decode`] and
//! [`decode_into`] read either encoding back; [`header`] peeks at the count
//! and time range without decoding.
//!
//! # Header (both encodings)
//!
//! A chunk is a byte header followed by a bit stream, zero padded to a whole
//! byte. Nothing follows the padding.
//!
//! ```text
//! offset  field     encoding
//! 0       encoding  u8: 1 = Gorilla, 2 = decimal (see `Encoding`; never
//!                   renumbered)
//! 1..3    count     u16 big-endian: number of samples, 0..=65535
//! -- only when count > 0 --
//! 3..     min_t     varint: first timestamp, zig-zag, then LEB128 (1-10 B)
//! ..      span      uvarint: max_t - min_t as a wrapping u64, LEB128 (1-10 B)
//! ..      scale     u8, encoding 2 only: k in 0..=15 (values are i / 10^k)
//! ..      bits      the bit stream of the encoding, MSB first in every
//!                   byte, zero bits up to the next byte boundary
//! ```
//!
//! The encoder writes an empty chunk as encoding 1 (`[1, 0, 0]`); the
//! decoder also accepts `[2, 0, 0]`.
//!
//! # Bucketed fields
//!
//! Both encodings store differences `D` (wrapping 64-bit integers, so
//! differences that overflow i64, e.g. from i64::MIN to i64::MAX, still
//! round-trip exactly) in bucketed fields. A table of widths `w0 < w1 <
//! ... < 64` defines them: `D = 0` is the single bit `0`; otherwise bucket
//! `j` is `j + 1` one bits and a zero bit (the last bucket: only the ones),
//! then `w(j)` bits holding `D mod 2^w(j)`. Bucket `j` holds `D` in
//! `[-(2^(w-1) - 1), 2^(w-1)]`; a stored value `v > 2^(w-1)` means
//! `v - 2^w`. The encoder picks the narrowest bucket.
//!
//! ```text
//! table G (encoding 1 timestamps)        table E (encoding 2, both fields)
//!   '0'                  D = 0             '0'                   D = 0
//!   '10'    then  7 bits                   '10'      then  3 bits
//!   '110'   then  9 bits                   '110'     then  5 bits
//!   '1110'  then 12 bits                   '1110'    then  8 bits
//!   '11110' then 32 bits                   '11110'   then 12 bits
//!   '11111' then 64 bits                   '111110'  then 20 bits
//!                                          '1111110' then 32 bits
//!                                          '1111111' then 64 bits
//! ```
//!
//! # Encoding 1, Gorilla
//!
//! The bit stream holds, for every sample `i` in order, a timestamp field
//! (absent for `i = 0`, whose timestamp is `min_t`) and then a value field:
//!
//! ```text
//! timestamp field: table G with D = delta(i) - delta(i-1), where
//! delta(i) = t(i) - t(i-1) and delta(0) = 0.
//!
//! value field, X = bits(v(i)) XOR bits(v(i-1)), with bits(v(-1)) = 0
//! (so the first value is compressed against zero, not stored raw):
//!   '0'                         X = 0, the value repeats
//!   '10' then m bits            X's meaningful bits, inside the current
//!                               window (L leading zeros, m meaningful bits);
//!                               only valid once a window exists
//!   '11' then  5 bits L         leading zeros of X, capped at 31
//!        then  6 bits m         meaningful bits, 1..=64 (64 is written as 0)
//!        then  m bits           X >> (64 - L - m); L + m <= 64.
//!                               This sets the window to (L, m).
//! ```
//!
//! The encoder reuses the window whenever X fits in it and that is no longer
//! than opening a new one; the decoder accepts either choice.
//!
//! Every f64 bit pattern (NaN payloads such as the stale marker
//! `0x7ff0000000000002`, ±Inf, -0.0, subnormals) round-trips bit-exactly,
//! because values are only ever handled as `u64` bits.
//!
//! # Encoding 2, decimal
//!
//! Every value `v(i)` is stored as the integer `n(i)` with
//! `v(i) = (n(i) as f64) / 10^k` (IEEE division of the i64 converted to
//! f64 by the exact power of ten; `k` is the header's scale). The encoder
//! uses it only if that gives back the exact bits of every value, so -0.0,
//! NaNs (the stale marker too), ±Inf and values that are merely close to a
//! decimal are never encoding 2. For every sample `i` in order:
//!
//! ```text
//! timestamp field: table E with D = delta(i) - delta(i-1), as encoding 1
//!                  (absent for i = 0).
//! value field:     table E with D = n(0) for i = 0, D = n(1) - n(0) for
//!                  i = 1, and D = (n(i) - n(i-1)) - (n(i-1) - n(i-2))
//!                  after that (wrapping 64-bit arithmetic).
//! ```
//!
//! The encoder takes the least scale that fits every value of the chunk.
//! It writes encoding 2 whenever every value fits, unless that takes more
//! than 24 bits per sample and encoding 1 would be shorter (see
//! `encode.rs` for why it does not compare the two on every chunk).
//!
//! # Decoding
//!
//! The decoder never panics and never loops past `count` samples: malformed
//! bytes give a [`ChunkError`]. It also checks that timestamps strictly
//! increase, that the last timestamp equals `min_t + span`, that the scale
//! is at most [`MAX_SCALE`], and that only zero padding follows the last
//! sample.

mod bits;
mod buckets;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::{decode, decode_into, ChunkIter};
pub use encode::ChunkEncoder;

/// Most samples a chunk holds before the head seals it.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Longest time span (max_t - min_t, in ms) of one chunk before the head
/// seals it.
pub const MAX_CHUNK_SPAN_MS: i64 = 2 * 3600 * 1000;

/// Most samples one encoded chunk can hold (the width of its count field).
pub const MAX_ENCODED_SAMPLES: usize = u16::MAX as usize;

/// Largest decimal scale (fraction digits) of encoding 2.
pub const MAX_SCALE: u8 = 15;

/// `10^k` for every scale `k`; all exact in f64.
pub(crate) const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Chunk encodings, stored in a chunk's first byte. Values are never
/// renumbered; new encodings get new numbers.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Delta-of-delta timestamps and XOR values (the default; any values).
    Gorilla = 1,
    /// Delta-of-delta timestamps and values scaled to integers (exact
    /// decimals only).
    Decimal = 2,
}

impl TryFrom<u8> for Encoding {
    type Error = ChunkError;

    fn try_from(b: u8) -> Result<Self, ChunkError> {
        match b {
            1 => Ok(Encoding::Gorilla),
            2 => Ok(Encoding::Decimal),
            other => Err(ChunkError::BadEncoding(other)),
        }
    }
}

/// Errors from encoding or decoding chunks.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// A sample's timestamp is not after the chunk's last one.
    #[error("cannot append sample to chunk: out of order (last timestamp {last}, got {got})")]
    OutOfOrder {
        /// The chunk's newest timestamp.
        last: i64,
        /// The rejected timestamp.
        got: i64,
    },
    /// The chunk already holds [`MAX_ENCODED_SAMPLES`] samples.
    #[error("cannot append sample to chunk: chunk is full ({MAX_ENCODED_SAMPLES} samples)")]
    Full,
    /// The bytes end before the header or the samples it announces.
    #[error("cannot decode chunk: truncated")]
    Truncated,
    /// The first byte names no known encoding.
    #[error("cannot decode chunk: unknown encoding {0}")]
    BadEncoding(u8),
    /// The bytes are not a valid chunk; the text says which check failed.
    #[error("cannot decode chunk: corrupt ({0})")]
    Corrupt(&'static str),
}

/// What a chunk's header says, read without decoding the samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// The chunk's encoding.
    pub encoding: Encoding,
    /// Number of samples.
    pub count: usize,
    /// First timestamp (`None` for an empty chunk).
    pub min_t: Option<i64>,
    /// Last timestamp (`None` for an empty chunk).
    pub max_t: Option<i64>,
}

/// Reads a chunk's header. Cheap: it looks at the first few bytes only and
/// does not validate the samples.
pub fn header(bytes: &[u8]) -> Result<ChunkHeader, ChunkError> {
    parse_header(bytes).map(|(h, _)| h)
}

/// Parses the header; returns it and the offset where the bit stream starts.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<(ChunkHeader, usize), ChunkError> {
    let (&enc, rest) = bytes.split_first().ok_or(ChunkError::Truncated)?;
    let encoding = Encoding::try_from(enc)?;
    let count = match rest {
        [a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
        _ => return Err(ChunkError::Truncated),
    };
    let mut pos = 3;
    if count == 0 {
        let h = ChunkHeader {
            encoding,
            count,
            min_t: None,
            max_t: None,
        };
        return Ok((h, pos));
    }
    let min_t = unzigzag(read_uvarint(bytes, &mut pos)?);
    let span = read_uvarint(bytes, &mut pos)?;
    let max_t = (min_t as u64).wrapping_add(span) as i64;
    if max_t < min_t || (count == 1 && span != 0) || (count > 1 && span == 0) {
        return Err(ChunkError::Corrupt("time span does not fit the count"));
    }
    let h = ChunkHeader {
        encoding,
        count,
        min_t: Some(min_t),
        max_t: Some(max_t),
    };
    Ok((h, pos))
}

/// Writes the header for `count` samples spanning `min_t..=max_t`, up to
/// and without the encoding's own fields.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    encoding: Encoding,
    count: usize,
    min_t: i64,
    max_t: i64,
) {
    out.push(encoding as u8);
    out.extend_from_slice(&(count as u16).to_be_bytes());
    if count > 0 {
        write_uvarint(out, zigzag(min_t));
        write_uvarint(out, (max_t as u64).wrapping_sub(min_t as u64));
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn write_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_uvarint(bytes: &[u8], pos: &mut usize) -> Result<u64, ChunkError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let &b = bytes.get(*pos).ok_or(ChunkError::Truncated)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(ChunkError::Corrupt("varint overflows 64 bits"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ChunkError::Corrupt("varint longer than 10 bytes"))
}
