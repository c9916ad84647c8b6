//! Reading chunks of either encoding back: a sample iterator and bulk
//! decoders.
//!
//! The per-sample step is generic over the encoding (`DECIMAL_ENC`, and
//! `SCALED` for a decimal scale above 0), so the bulk decoder runs one loop
//! per encoding with the reader and the state in registers (the rare slow
//! path takes and returns them by value, so they need no home in memory),
//! and the iterator is an enum of one iterator per encoding, picked once by
//! [`ChunkIter::new`].
//!
//! A step refills the bit buffer once and takes its fields from that one
//! word. While 8 whole bytes are left, the bulk loop refills without
//! testing anything. An encoding 2 sample is then, in order:
//! - a regular timestamp ('0') and a value field of up to 12 bits: one
//!   look-up in a table of all such fields (`DECIMAL_FIELDS`, 12 KiB);
//! - two fields that end within 10 bits: one look-up in a table of all such
//!   pairs (`DECIMAL_PAIRS`, 4 KiB);
//! - two fields of up to 12 bits: a look-up each;
//! - fields up to 28 bits: decoded from the word directly.
//!
//! Only wide fields and the end of the stream take the field-by-field path.
//! The bulk decoder writes straight into the output's spare capacity.

use std::mem::MaybeUninit;

use model::Sample;

use super::bits::{BitReader, OutOfBits};
use super::buckets::{DECIMAL, DECIMAL_FIELDS, DECIMAL_PAIRS, FIELD_BITS, GORILLA, PAIR_BITS};
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
        r.refill();
        self.fields::<DECIMAL_ENC, SCALED>(r)
    }

    /// [`State::next`] while 8 whole bytes follow the buffered bits (all
    /// but the last few samples): the refill needs no tests.
    #[inline(always)]
    fn next_fast<const DECIMAL_ENC: bool, const SCALED: bool>(
        &mut self,
        r: &mut BitReader<'_>,
    ) -> Result<(), ChunkError> {
        r.refill_fast();
        self.fields::<DECIMAL_ENC, SCALED>(r)
    }

    /// Reads the fields of a sample after the first from a refilled
    /// reader.
    #[inline(always)]
    fn fields<const DECIMAL_ENC: bool, const SCALED: bool>(
        &mut self,
        r: &mut BitReader<'_>,
    ) -> Result<(), ChunkError> {
        // Both fields from one buffered word when they are short (fields
        // that run past the buffered bits fail the length check).
        let done = if DECIMAL_ENC {
            self.decimal_fields::<SCALED>(r)?
        } else {
            self.gorilla_fields(r)?
        };
        if done {
            return Ok(());
        }
        // By value: a `&mut` to the loop's state would make it live in
        // memory for the whole loop, not just for this rare call.
        let (s, rest) = Self::next_slow::<DECIMAL_ENC, SCALED>(*self, *r)?;
        *self = s;
        *r = rest;
        Ok(())
    }

    /// Encoding 2: the fields of a sample from the buffered word, by the
    /// tables or, up to 28 bits each, directly; false if they are wider or
    /// run past the buffered bits (nothing is consumed then).
    #[inline(always)]
    fn decimal_fields<const SCALED: bool>(
        &mut self,
        r: &mut BitReader<'_>,
    ) -> Result<bool, ChunkError> {
        let top = r.peek();
        if top >> 63 == 0 {
            // A regular timestamp ('0', the usual case) and a value
            // field of at most 12 bits: one look-up. The MSB is 0, so
            // the index is the 12 bits after it.
            let i = (top >> (63 - FIELD_BITS)) as usize;
            if let (Some(&n), Some(&dd)) = (DECIMAL_FIELDS.len1.get(i), DECIMAL_FIELDS.d.get(i)) {
                let n = u32::from(n);
                if n != 0 && n <= r.buffered() {
                    r.consume(n);
                    self.advance_t(0)?;
                    self.advance_n::<SCALED>(dd as u64);
                    return Ok(true);
                }
            }
        } else {
            // Both fields within the next 10 bits: one look-up.
            let pair = DECIMAL_PAIRS[(top >> (64 - PAIR_BITS)) as usize];
            let n = pair & 63;
            if n != 0 && n <= r.buffered() {
                r.consume_low6(pair);
                self.advance_t((pair >> 8) as u8 as i8 as u64)?;
                self.advance_n::<SCALED>((pair >> 16) as u8 as i8 as u64);
                return Ok(true);
            }
        }
        // Both fields of at most 12 bits: a look-up each.
        let f = &DECIMAL_FIELDS;
        let i1 = (top >> (64 - FIELD_BITS)) as usize;
        let n1 = u32::from(f.len1[i1]);
        if n1 != 0 {
            // n1 - 1 <= 12, so the shift is in range.
            let i2 = ((top << (n1 - 1)) >> (64 - FIELD_BITS)) as usize;
            let n2 = u32::from(f.len1[i2]);
            if n2 != 0 && n1 + n2 - 2 <= r.buffered() {
                r.consume(n1 + n2 - 2);
                self.advance_t(f.d[i1] as u64)?;
                self.advance_n::<SCALED>(f.d[i2] as u64);
                return Ok(true);
            }
        }
        if let Some((dod, n1)) = DECIMAL.peek_short(top) {
            // n1 <= 28, so the shift is in range.
            if let Some((dd, n2)) = DECIMAL.peek_short(top << n1) {
                if n1 + n2 <= r.buffered() {
                    r.consume(n1 + n2);
                    self.advance_t(dod)?;
                    self.advance_n::<SCALED>(dd);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Encoding 1: a short timestamp field from the buffered word, then the
    /// value field; false if the timestamp field is wide or runs past the
    /// buffered bits (nothing is consumed then).
    #[inline(always)]
    fn gorilla_fields(&mut self, r: &mut BitReader<'_>) -> Result<bool, ChunkError> {
        if let Some((dod, n1)) = GORILLA.peek_short(r.peek()) {
            if n1 <= r.buffered() {
                r.consume(n1);
                self.advance_t(dod)?;
                self.v = self.read_xor(r)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`State::next`] with every field read and checked on its own (a
    /// field in a wide bucket, or one that runs past the buffered bits).
    #[inline(never)]
    fn next_slow<'a, const DECIMAL_ENC: bool, const SCALED: bool>(
        mut self,
        mut r: BitReader<'a>,
    ) -> Result<(Self, BitReader<'a>), ChunkError> {
        let dod = if DECIMAL_ENC {
            DECIMAL.read(&mut r)?
        } else {
            GORILLA.read(&mut r)?
        };
        self.advance_t(dod)?;
        if DECIMAL_ENC {
            let dd = DECIMAL.read(&mut r)?;
            self.advance_n::<SCALED>(dd);
        } else {
            self.v = self.read_xor(&mut r)?;
        }
        Ok((self, r))
    }

    /// Moves the timestamp on by the delta-of-delta `dod`.
    #[inline(always)]
    fn advance_t(&mut self, dod: u64) -> Result<(), ChunkError> {
        let delta = self.delta.wrapping_add(dod);
        let t = (self.t as u64).wrapping_add(delta) as i64;
        if t <= self.t {
            return Err(ChunkError::Corrupt("timestamps do not increase"));
        }
        self.t = t;
        self.delta = delta;
        Ok(())
    }

    /// Encoding 2: moves the scaled value on by the delta-of-delta `dd`.
    #[inline(always)]
    fn advance_n<const SCALED: bool>(&mut self, dd: u64) {
        self.dn = self.dn.wrapping_add(dd);
        self.n = self.n.wrapping_add(self.dn);
        self.v = self.decimal_value::<SCALED>();
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
pub struct ChunkIter<'a>(Kind<'a>);

/// One iterator per encoding (and decimal scale 0 or above), so that a
/// step does not look at the encoding again.
#[derive(Clone, Debug)]
enum Kind<'a> {
    Gorilla(Samples<'a, false, false>),
    Decimal(Samples<'a, true, false>),
    Scaled(Samples<'a, true, true>),
}

/// The samples of one chunk of a known encoding.
#[derive(Clone, Debug)]
struct Samples<'a, const DECIMAL_ENC: bool, const SCALED: bool> {
    reader: BitReader<'a>,
    state: State,
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
        let state = State {
            t: h.min_t.unwrap_or(0),
            delta: 0,
            v: 0,
            lead: 0,
            sig: 0,
            n: 0,
            dn: 0,
            pow: POW10[usize::from(scale)],
        };
        let max_t = h.max_t.unwrap_or(0);
        Ok(ChunkIter(match (h.encoding, scale) {
            (Encoding::Gorilla, _) => Kind::Gorilla(Samples::new(reader, state, h.count, max_t)),
            (Encoding::Decimal, 0) => Kind::Decimal(Samples::new(reader, state, h.count, max_t)),
            (Encoding::Decimal, _) => Kind::Scaled(Samples::new(reader, state, h.count, max_t)),
        }))
    }

    /// Decodes every sample into `out` (see [`decode_into`]).
    fn all_into(&self, out: &mut Vec<Sample>) -> Result<(), ChunkError> {
        match &self.0 {
            Kind::Gorilla(s) => s.all_into(out),
            Kind::Decimal(s) => s.all_into(out),
            Kind::Scaled(s) => s.all_into(out),
        }
    }
}

impl<'a, const DECIMAL_ENC: bool, const SCALED: bool> Samples<'a, DECIMAL_ENC, SCALED> {
    fn new(reader: BitReader<'a>, state: State, count: usize, max_t: i64) -> Self {
        Samples {
            reader,
            state,
            count,
            read: 0,
            max_t,
            failed: false,
        }
    }

    /// Reads the next sample; at least one must be left.
    #[inline(always)]
    fn step(&mut self) -> Result<(), ChunkError> {
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

    #[inline(always)]
    fn next_sample(&mut self) -> Option<Result<(i64, f64), ChunkError>> {
        if self.failed || self.read == self.count {
            return None;
        }
        match self.step() {
            Ok(()) => Some(Ok((self.state.t, f64::from_bits(self.state.v)))),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn left(&self) -> usize {
        if self.failed {
            0
        } else {
            self.count - self.read
        }
    }

    /// Decodes the whole chunk (nothing read yet) and appends it to `out`;
    /// on error `out` is left as it was. One loop per encoding, with the
    /// reader and the state in locals so that they stay in registers.
    fn all_into(&self, out: &mut Vec<Sample>) -> Result<(), ChunkError> {
        if self.count == 0 {
            return Ok(());
        }
        // Every sample after the first takes at least two bits, so a count
        // above this cannot decode: the iterator finds the error.
        if self.count > self.reader.remaining() / 2 + 1 {
            let mut it = self.clone();
            return match std::iter::from_fn(|| it.next_sample()).find_map(Result::err) {
                Some(e) => Err(e),
                None => Err(ChunkError::Truncated),
            };
        }
        out.reserve(self.count);
        let slots = &mut out.spare_capacity_mut()[..self.count];
        self.fill(slots)?;
        // SAFETY: `fill` returned Ok, so it wrote every one of the first
        // `count` spare slots (the loops below write each slot before
        // moving on and return early only with an error), and `reserve`
        // made `len + count` at most the capacity. `Sample` is `Copy`, so
        // nothing was there to drop.
        unsafe { out.set_len(out.len() + self.count) };
        Ok(())
    }

    /// Decodes the whole chunk into `out`, which holds exactly `count`
    /// slots (at least one), writing every slot if it returns Ok.
    #[inline(always)]
    fn fill(&self, out: &mut [MaybeUninit<Sample>]) -> Result<(), ChunkError> {
        let mut r = self.reader;
        let mut s = self.state;
        let Some((first, rest)) = out.split_first_mut() else {
            return Ok(());
        };
        s.first::<DECIMAL_ENC, SCALED>(&mut r)?;
        first.write(Sample {
            t: s.t,
            v: f64::from_bits(s.v),
        });
        // Two loops: while 8 whole bytes are left to load, then the rest.
        let mut i = 0;
        while i < rest.len() && r.can_refill_fast() {
            s.next_fast::<DECIMAL_ENC, SCALED>(&mut r)?;
            rest[i].write(Sample {
                t: s.t,
                v: f64::from_bits(s.v),
            });
            i += 1;
        }
        for slot in &mut rest[i..] {
            s.next::<DECIMAL_ENC, SCALED>(&mut r)?;
            slot.write(Sample {
                t: s.t,
                v: f64::from_bits(s.v),
            });
        }
        finish(r, s.t, self.max_t)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Kind::Gorilla(s) => s.next_sample(),
            Kind::Decimal(s) => s.next_sample(),
            Kind::Scaled(s) => s.next_sample(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.0 {
            Kind::Gorilla(s) => s.left(),
            Kind::Decimal(s) => s.left(),
            Kind::Scaled(s) => s.left(),
        };
        (0, Some(left))
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
    ChunkIter::new(bytes)?.all_into(out)
}
