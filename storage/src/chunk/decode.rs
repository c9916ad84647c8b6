//! Reading Gorilla chunks back: a sample iterator and bulk decoders.

use query::model::Sample;

use super::bits::{BitReader, OutOfBits};
use super::{parse_header, ChunkError};

impl From<OutOfBits> for ChunkError {
    fn from(_: OutOfBits) -> Self {
        ChunkError::Truncated
    }
}

/// Decoder state between samples.
#[derive(Clone, Debug)]
struct State {
    /// Samples still to read.
    remaining: usize,
    /// Samples read so far.
    read: usize,
    t: i64,
    delta: u64,
    v: u64,
    lead: u32,
    sig: u32,
    max_t: i64,
}

impl State {
    /// Reads the next sample; `remaining` must be > 0.
    #[inline]
    fn step(&mut self, r: &mut BitReader<'_>) -> Result<(i64, u64), ChunkError> {
        if self.read > 0 {
            let dod = read_dod(r)?;
            let delta = self.delta.wrapping_add(dod as u64);
            let t = (self.t as u64).wrapping_add(delta) as i64;
            if t <= self.t {
                return Err(ChunkError::Corrupt("timestamps do not increase"));
            }
            self.t = t;
            self.delta = delta;
        }
        self.v = self.read_value(r)?;
        self.read += 1;
        self.remaining -= 1;
        if self.remaining == 0 {
            if self.t != self.max_t {
                return Err(ChunkError::Corrupt("last timestamp differs from header"));
            }
            if r.remaining() >= 8 {
                return Err(ChunkError::Corrupt("bytes after the last sample"));
            }
            if !r.rest_is_zero() {
                return Err(ChunkError::Corrupt("padding bits are not zero"));
            }
        }
        Ok((self.t, self.v))
    }

    #[inline]
    fn read_value(&mut self, r: &mut BitReader<'_>) -> Result<u64, ChunkError> {
        if !r.read_bit()? {
            return Ok(self.v);
        }
        let x = if !r.read_bit()? {
            if self.sig == 0 {
                return Err(ChunkError::Corrupt(
                    "value reuses a window before one was set",
                ));
            }
            r.read(self.sig)? << (64 - self.lead - self.sig)
        } else {
            let head = r.read(11)?;
            let lead = (head >> 6) as u32;
            let sig = match (head & 63) as u32 {
                0 => 64,
                m => m,
            };
            if lead + sig > 64 {
                return Err(ChunkError::Corrupt("value window wider than 64 bits"));
            }
            self.lead = lead;
            self.sig = sig;
            r.read(sig)? << (64 - lead - sig)
        };
        Ok(self.v ^ x)
    }
}

/// Reads a timestamp field: the delta of delta.
#[inline]
fn read_dod(r: &mut BitReader<'_>) -> Result<i64, ChunkError> {
    let width = match r.read_unary(5)? {
        0 => return Ok(0),
        1 => 7,
        2 => 9,
        3 => 12,
        4 => 32,
        _ => return Ok(r.read(64)? as i64),
    };
    let v = r.read(width)?;
    Ok(if v > 1 << (width - 1) {
        v as i64 - (1i64 << width)
    } else {
        v as i64
    })
}

/// Iterates over the samples of an encoded chunk, in time order. Yields an
/// error (and then nothing) if the bytes are malformed.
#[derive(Clone, Debug)]
pub struct ChunkIter<'a> {
    reader: BitReader<'a>,
    state: State,
    failed: bool,
}

impl<'a> ChunkIter<'a> {
    /// Starts decoding `bytes`; fails at once if the header is malformed.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let (h, start) = parse_header(bytes)?;
        let reader = BitReader::new(&bytes[start..]);
        if h.count == 0 && reader.remaining() > 0 {
            return Err(ChunkError::Corrupt("bytes after an empty chunk"));
        }
        Ok(Self {
            reader,
            state: State {
                remaining: h.count,
                read: 0,
                t: h.min_t.unwrap_or(0),
                delta: 0,
                v: 0,
                lead: 0,
                sig: 0,
                max_t: h.max_t.unwrap_or(0),
            },
            failed: false,
        })
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.state.remaining == 0 {
            return None;
        }
        match self.state.step(&mut self.reader) {
            Ok((t, v)) => Some(Ok((t, f64::from_bits(v)))),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.failed { 0 } else { self.state.remaining };
        (0, Some(n))
    }
}

impl std::iter::FusedIterator for ChunkIter<'_> {}

/// Decodes a whole chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    ChunkIter::new(bytes)?.collect()
}

/// Decodes a whole chunk, appending its samples to `out`: the fast path for
/// the query engine. On error `out` is left as it was.
pub fn decode_into(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), ChunkError> {
    let mut it = ChunkIter::new(bytes)?;
    let old_len = out.len();
    // Every sample after the first takes at least two bits: a bounded
    // reservation even if the header lies about the count.
    out.reserve(it.state.remaining.min(it.reader.remaining() / 2 + 1));
    while it.state.remaining > 0 {
        match it.state.step(&mut it.reader) {
            Ok((t, v)) => out.push(Sample {
                t,
                v: f64::from_bits(v),
            }),
            Err(e) => {
                out.truncate(old_len);
                return Err(e);
            }
        }
    }
    Ok(())
}
