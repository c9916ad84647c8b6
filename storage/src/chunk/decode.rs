//! Reading chunks of either encoding back: a sample iterator and bulk
//! decoders.
//!
//! The per-sample step is generic over the encoding (`DECIMAL`), so the bulk
//! decoder runs one loop per encoding with the reader and the state in
//! registers; the iterator dispatches on the encoding once per sample.

use query::model::Sample;

use super::bits::{BitReader, OutOfBits};
use super::buckets::{DECIMAL, GORILLA};
use super::{parse_header, ChunkError, Encoding, MAX_SCALE, POW10};

impl From<OutOfBits> for ChunkError {
    fn from(_: OutOfBits) -> Self {
        ChunkError::Truncated
    }
}

/// Decoder state between samples.
#[derive(Clone, Copy, Debug)]
struct State {
    t: i64,
    /// Last timestamp delta (wrapping).
    delta: u64,
    /// Bits of the last value.
    v: u64,
    /// Encoding 1: the XOR window.
    lead: u32,
    sig: u32,
    /// Encoding 2: the last scaled value and delta (wrapping), and `10^k`.
    n: u64,
    dn: u64,
    scale: u8,
    pow: f64,
}

impl State {
    /// Reads sample 0 (its timestamp is `t`, set from the header).
    #[inline(always)]
    fn first<const DECIMAL_ENC: bool, const SCALED: bool>(
        &mut self,
        r: &mut BitReader<'_>,
    ) -> Result<(), ChunkError> {
        if DECIMAL_ENC {
            self.n = DECIMAL.read(r)?;
            self.v = self.decimal_value::<SCALED>();
        } else {
            self.v = self.read_xor(r)?;
        }
        Ok(())
    }

    /// Reads a sample after the first.
    #[inline(always)]
    fn next<const DECIMAL_ENC: bool, const SCALED: bool>(
        &mut self,
        r: &mut BitReader<'_>,
    ) -> Result<(), ChunkError> {
        let dod = if DECIMAL_ENC {
            DECIMAL.read(r)?
        } else {
            GORILLA.read(r)?
        };
        let delta = self.delta.wrapping_add(dod);
        let t = (self.t as u64).wrapping_add(delta) as i64;
        if t <= self.t {
            return Err(ChunkError::Corrupt("timestamps do not increase"));
        }
        self.t = t;
        self.delta = delta;
        if DECIMAL_ENC {
            let d = DECIMAL.read(r)?;
            self.dn = self.dn.wrapping_add(d);
            self.n = self.n.wrapping_add(self.dn);
            self.v = self.decimal_value::<SCALED>();
        } else {
            self.v = self.read_xor(r)?;
        }
        Ok(())
    }

    /// The bits of `n / 10^k`; `SCALED` is `k > 0` (dividing by 10^0 = 1
    /// changes nothing, so it is skipped).
    #[inline(always)]
    fn decimal_value<const SCALED: bool>(&self) -> u64 {
        let n = self.n as i64 as f64;
        if SCALED {
            (n / self.pow).to_bits()
        } else {
            n.to_bits()
        }
    }

    /// Reads an encoding 1 value field; returns the value's bits.
    #[inline(always)]
    fn read_xor(&mut self, r: &mut BitReader<'_>) -> Result<u64, ChunkError> {
        r.refill();
        let top = r.peek();
        if top >> 63 == 0 {
            r.skip(1)?;
            return Ok(self.v);
        }
        r.skip(2)?;
        let x = if top >> 62 == 0b10 {
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

/// Checks the end of the chunk after its last sample.
#[cold]
fn finish(r: BitReader<'_>, t: i64, max_t: i64) -> Result<(), ChunkError> {
    if t != max_t {
        return Err(ChunkError::Corrupt("last timestamp differs from header"));
    }
    if r.remaining() >= 8 {
        return Err(ChunkError::Corrupt("bytes after the last sample"));
    }
    if !r.rest_is_zero() {
        return Err(ChunkError::Corrupt("padding bits are not zero"));
    }
    Ok(())
}

/// Iterates over the samples of an encoded chunk, in time order. Yields an
/// error (and then nothing) if the bytes are malformed.
#[derive(Clone, Debug)]
pub struct ChunkIter<'a> {
    reader: BitReader<'a>,
    state: State,
    encoding: Encoding,
    /// Samples in the chunk.
    count: usize,
    /// Samples read so far.
    read: usize,
    max_t: i64,
    failed: bool,
}

impl<'a> ChunkIter<'a> {
    /// Starts decoding `bytes`; fails at once if the header is malformed.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let (h, mut start) = parse_header(bytes)?;
        let mut scale = 0;
        if h.encoding == Encoding::Decimal && h.count > 0 {
            scale = *bytes.get(start).ok_or(ChunkError::Truncated)?;
            if scale > MAX_SCALE {
                return Err(ChunkError::Corrupt("decimal scale above 15"));
            }
            start += 1;
        }
        let reader = BitReader::new(&bytes[start..]);
        if h.count == 0 && reader.remaining() > 0 {
            return Err(ChunkError::Corrupt("bytes after an empty chunk"));
        }
        Ok(Self {
            reader,
            state: State {
                t: h.min_t.unwrap_or(0),
                delta: 0,
                v: 0,
                lead: 0,
                sig: 0,
                n: 0,
                dn: 0,
                scale,
                pow: POW10[usize::from(scale)],
            },
            encoding: h.encoding,
            count: h.count,
            read: 0,
            max_t: h.max_t.unwrap_or(0),
            failed: false,
        })
    }

    /// Reads the next sample; at least one must be left.
    #[inline(always)]
    fn step<const DECIMAL_ENC: bool, const SCALED: bool>(&mut self) -> Result<(), ChunkError> {
        if self.read == 0 {
            self.state.first::<DECIMAL_ENC, SCALED>(&mut self.reader)?;
        } else {
            self.state.next::<DECIMAL_ENC, SCALED>(&mut self.reader)?;
        }
        self.read += 1;
        if self.read == self.count {
            finish(self.reader, self.state.t, self.max_t)?;
        }
        Ok(())
    }

    /// Decodes a whole chunk (nothing read yet, at least one sample) into
    /// `out`, which holds exactly `count` slots; one loop per encoding, with
    /// the reader and the state in locals so that they stay in registers.
    #[inline(always)]
    fn all_into<const DECIMAL_ENC: bool, const SCALED: bool>(
        &self,
        out: &mut [Sample],
    ) -> Result<(), ChunkError> {
        let mut r = self.reader;
        let mut s = self.state;
        let Some((first, rest)) = out.split_first_mut() else {
            return Ok(());
        };
        s.first::<DECIMAL_ENC, SCALED>(&mut r)?;
        *first = Sample {
            t: s.t,
            v: f64::from_bits(s.v),
        };
        for slot in rest {
            s.next::<DECIMAL_ENC, SCALED>(&mut r)?;
            *slot = Sample {
                t: s.t,
                v: f64::from_bits(s.v),
            };
        }
        finish(r, s.t, self.max_t)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read == self.count {
            return None;
        }
        let res = match (self.encoding, self.state.scale) {
            (Encoding::Gorilla, _) => self.step::<false, false>(),
            (Encoding::Decimal, 0) => self.step::<true, false>(),
            (Encoding::Decimal, _) => self.step::<true, true>(),
        };
        match res {
            Ok(()) => Some(Ok((self.state.t, f64::from_bits(self.state.v)))),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.failed {
            0
        } else {
            self.count - self.read
        };
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
    let it = ChunkIter::new(bytes)?;
    // Every sample after the first takes at least two bits, so a count
    // above this cannot decode: the iterator finds the error.
    if it.count > it.reader.remaining() / 2 + 1 {
        return match it.into_iter().find_map(Result::err) {
            Some(e) => Err(e),
            None => Err(ChunkError::Truncated),
        };
    }
    let old_len = out.len();
    out.resize(old_len + it.count, Sample { t: 0, v: 0.0 });
    let slots = &mut out[old_len..];
    let res = match (it.encoding, it.state.scale) {
        (Encoding::Gorilla, _) => it.all_into::<false, false>(slots),
        (Encoding::Decimal, 0) => it.all_into::<true, false>(slots),
        (Encoding::Decimal, _) => it.all_into::<true, true>(slots),
    };
    if res.is_err() {
        out.truncate(old_len);
    }
    res
}
