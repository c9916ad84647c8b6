//! The open (head) chunk: appends samples in the decimal encoding while the
//! values allow it, else in Gorilla.
//!
//! While every value so far is an exact decimal ([`fit_scale`]), the
//! encoder writes the decimal stream (encoding 2). A value that needs a
//! larger scale re-encodes the chunk at that scale; a value that is no
//! decimal at all re-encodes it as Gorilla (encoding 1), which it then
//! stays. Both happen at most a few times per chunk.
//!
//! The bytes are the decimal stream unless it takes more than
//! [`GORILLA_CHECK_BITS`] bits per sample; only then are the samples also
//! encoded as Gorilla, and the smaller stream wins. Counting the Gorilla
//! bits of every sample as it comes (the XOR window's chain of compares)
//! cost a fifth of the encoder's time, and it paid off rarely: on the chunk
//! bench's realistic mix, Gorilla was smaller in 44 of 1000 chunks, by 1 to
//! 11 % (integer gauges that step and stay, which delta-of-delta pays for
//! twice), 0.14 % of the total size.

use model::Sample;

use super::bits::BitWriter;
use super::buckets::{class, DECIMAL, GORILLA};
use super::{write_header, ChunkError, Encoding, MAX_ENCODED_SAMPLES, MAX_SCALE, POW10};

/// Which stream the encoder writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// Encoding 2 while the values allow it (the start of every chunk).
    #[default]
    Decimal,
    /// Encoding 1, for good.
    Gorilla,
}

/// The Gorilla value state: the last value and the XOR window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Xor {
    /// Bits of the last value.
    last_v: u64,
    /// Leading zeros and meaningful bits of the window (0 = no window yet).
    lead: u8,
    sig: u8,
}

/// One Gorilla value field: `(head, head bits, payload, payload bits)`;
/// a field with no payload has 0 payload bits.
type XorField = (u64, u32, u64, u32);

impl Xor {
    /// The field for `vbits` (see the layout in the module docs); moves the
    /// state on to `vbits`.
    #[inline(always)]
    fn next(&mut self, vbits: u64) -> XorField {
        let x = vbits ^ self.last_v;
        self.last_v = vbits;
        if x == 0 {
            return (0, 1, 0, 0);
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        let sig = 64 - lead - trail;
        let (wlead, wsig) = (u32::from(self.lead), u32::from(self.sig));
        if wsig > 0 && lead >= wlead && trail >= 64 - wlead - wsig && wsig <= sig + 11 {
            (0b10, 2, x >> (64 - wlead - wsig), wsig)
        } else {
            self.lead = lead as u8;
            self.sig = sig as u8;
            let head = (0b11 << 11) | (u64::from(lead) << 6) | u64::from(sig & 63);
            (head, 13, x >> trail, sig)
        }
    }
}

/// An open chunk that samples are appended to; the in-memory head of a
/// series. [`ChunkEncoder::bytes`] gives the encoded chunk at any time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkEncoder {
    /// The stream of `mode`.
    bits: BitWriter,
    mode: Mode,
    /// Number of samples, at most `MAX_ENCODED_SAMPLES`. A `u32`, not a
    /// `u16`: `push` reads it with one 32-bit load, and a 32-bit load of a
    /// field that the previous push stored with 16 bits cannot be served
    /// from the store buffer (a stall of about a dozen cycles per sample).
    count: u32,
    min_t: i64,
    last_t: i64,
    /// Last timestamp delta as a wrapping u64.
    last_delta: u64,
    xor: Xor,
    /// Decimal mode: the scale; before the first sample, the least scale
    /// the chunk may take.
    scale: u8,
    /// Decimal mode: the last scaled value and delta (wrapping).
    last_i: u64,
    last_di: u64,
}

/// Bits per sample above which [`ChunkEncoder::bytes`] also tries Gorilla
/// for a decimal chunk. None of the chunk bench's decimal chunks comes near
/// (2-decimal gauges take 14); streams this expensive are high-entropy
/// values with many digits, where Gorilla may be the smaller.
pub(crate) const GORILLA_CHECK_BITS: usize = 24;

impl ChunkEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty chunk that only ever writes encoding 1 (for tests that
    /// compare the encodings).
    #[cfg(test)]
    pub(crate) fn gorilla_only() -> Self {
        ChunkEncoder {
            mode: Mode::Gorilla,
            ..Self::default()
        }
    }

    /// Appends a sample. `t` must be greater than the last timestamp
    /// ([`ChunkError::OutOfOrder`] otherwise); any f64 bit pattern is kept
    /// exactly. Fails with [`ChunkError::Full`] past
    /// [`MAX_ENCODED_SAMPLES`](super::MAX_ENCODED_SAMPLES) samples; the
    /// engine seals chunks long before that.
    #[inline]
    pub fn push(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        // One test for both an empty and a full chunk: `count - 1` wraps
        // for 0.
        let full = MAX_ENCODED_SAMPLES as u32 - 1;
        if t <= self.last_t || self.count.wrapping_sub(1) >= full {
            return self.push_edge(t, v);
        }
        match self.mode {
            Mode::Decimal => self.push_decimal(t, v),
            Mode::Gorilla => self.push_gorilla(t, v.to_bits()),
        }
        Ok(())
    }

    /// [`ChunkEncoder::push`] for a first sample, a sample that is not
    /// after the last one, or a full chunk.
    #[cold]
    #[inline(never)]
    fn push_edge(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.count == 0 {
            self.push_first(t, v);
            return Ok(());
        }
        if t <= self.last_t {
            return Err(ChunkError::OutOfOrder {
                last: self.last_t,
                got: t,
            });
        }
        if self.count as usize >= MAX_ENCODED_SAMPLES {
            return Err(ChunkError::Full);
        }
        match self.mode {
            Mode::Decimal => self.push_decimal(t, v),
            Mode::Gorilla => self.push_gorilla(t, v.to_bits()),
        }
        Ok(())
    }

    /// The timestamp delta-of-delta for `t` (the chunk is not empty).
    #[inline(always)]
    fn next_dod(&mut self, t: i64) -> u64 {
        let delta = (t as u64).wrapping_sub(self.last_t as u64);
        let dod = delta.wrapping_sub(self.last_delta);
        self.last_delta = delta;
        dod
    }

    /// Appends a sample to a Gorilla stream.
    #[inline(always)]
    fn push_gorilla(&mut self, t: i64, vbits: u64) {
        if self.count == 0 {
            self.min_t = t;
        } else {
            let dod = self.next_dod(t);
            GORILLA.write(&mut self.bits, dod);
        }
        self.push_xor(vbits);
        self.last_t = t;
        self.count += 1;
    }

    /// Writes a Gorilla value field.
    #[inline(always)]
    fn push_xor(&mut self, vbits: u64) {
        let (head, hn, payload, pn) = self.xor.next(vbits);
        self.bits.write(head, hn);
        if pn > 0 {
            self.bits.write(payload, pn);
        }
    }

    /// Appends a sample (not the first) to a decimal stream.
    #[inline(always)]
    fn push_decimal(&mut self, t: i64, v: f64) {
        let vbits = v.to_bits();
        // A repeated value needs no check: its delta is 0.
        let i = if vbits == self.xor.last_v {
            self.last_i
        } else {
            let Some(i) = scaled(v, self.scale) else {
                return self.escalate(t, v);
            };
            self.xor.last_v = vbits;
            i
        };
        let dod = self.next_dod(t);
        let di = i.wrapping_sub(self.last_i);
        let ddi = di.wrapping_sub(self.last_di);
        if dod == 0 {
            // A regular timestamp (the usual case): '0', so it needs no
            // table look-up.
            if ddi == 0 {
                self.bits.write(0, 2);
            } else {
                let b = DECIMAL.field(class(ddi));
                if b.len < 64 {
                    // '0', then the value field, in one write.
                    self.bits.write(b.hi | (ddi & b.mask), b.len + 1);
                } else {
                    self.bits.write(0, 1);
                    DECIMAL.write(&mut self.bits, ddi);
                }
            }
        } else {
            self.push_fields(dod, ddi);
        }
        self.last_i = i;
        self.last_di = di;
        self.last_t = t;
        self.count += 1;
    }

    /// Writes the decimal fields of a sample.
    #[inline(always)]
    fn push_fields(&mut self, dod: u64, ddi: u64) {
        let (a, b) = (DECIMAL.field(class(dod)), DECIMAL.field(class(ddi)));
        if a.len + b.len <= 64 {
            // Both fields in one write (the usual case); b.len <= 63.
            let bits = ((a.hi | (dod & a.mask)) << b.len) | b.hi | (ddi & b.mask);
            self.bits.write(bits, a.len + b.len);
        } else {
            DECIMAL.write(&mut self.bits, dod);
            DECIMAL.write(&mut self.bits, ddi);
        }
    }

    /// The first sample of a chunk: decimal if it fits a scale (at least
    /// the floor `scale`), else Gorilla.
    #[inline(never)]
    fn push_first(&mut self, t: i64, v: f64) {
        let fit = match self.mode {
            Mode::Decimal => fit_scale(v, self.scale),
            Mode::Gorilla => None,
        };
        let Some((k, i)) = fit else {
            self.mode = Mode::Gorilla;
            return self.push_gorilla(t, v.to_bits());
        };
        self.scale = k;
        self.min_t = t;
        self.xor.last_v = v.to_bits();
        // Sample 0's field holds i(0) itself: delta(0) = 0 and i(-1) = 0.
        DECIMAL.write(&mut self.bits, i);
        self.last_i = i;
        self.last_di = 0;
        self.last_t = t;
        self.count = 1;
    }

    /// `v` does not fit the current scale: re-encodes the chunk at a scale
    /// that fits it, or as Gorilla, and appends the sample.
    #[cold]
    fn escalate(&mut self, t: i64, v: f64) {
        let floor = fit_scale(v, self.scale + 1).map(|(k, _)| k);
        let samples = self.samples();
        let mut fresh = ChunkEncoder::new();
        match floor {
            Some(k) => fresh.scale = k,
            None => fresh.mode = Mode::Gorilla,
        }
        let new = Sample { t, v };
        for s in samples.iter().chain([&new]) {
            if let Err(e) = fresh.push(s.t, s.v) {
                panic!("invariant broken: re-encoding accepted samples failed: {e}");
            }
        }
        *self = fresh;
    }

    /// The samples so far, decoded from the stream.
    fn samples(&self) -> Vec<Sample> {
        let mut own = Vec::with_capacity(self.encoded_len());
        self.write_stream(&mut own);
        let mut out = Vec::with_capacity(self.len());
        if let Err(e) = super::decode_into(&own, &mut out) {
            panic!("invariant broken: the encoder's own stream does not decode: {e}");
        }
        out
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if no sample was appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// First timestamp.
    pub fn min_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min_t)
    }

    /// Last timestamp.
    pub fn max_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_t)
    }

    /// Last sample.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.count > 0).then(|| (self.last_t, f64::from_bits(self.xor.last_v)))
    }

    /// The complete encoded chunk as of now (header and bit stream),
    /// decodable by [`ChunkIter`](super::ChunkIter).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_bytes(&mut out);
        out
    }

    /// Appends the encoded chunk to `out` (as [`ChunkEncoder::bytes`],
    /// without allocating a new vector).
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        if self.mode == Mode::Decimal && self.bits.len() > GORILLA_CHECK_BITS * self.len() {
            let mut g = ChunkEncoder {
                mode: Mode::Gorilla,
                ..ChunkEncoder::default()
            };
            for s in self.samples() {
                g.push_gorilla(s.t, s.v.to_bits());
            }
            // The headers differ only in the decimal scale byte.
            if g.bits.len().div_ceil(8) < 1 + self.bits.len().div_ceil(8) {
                return g.write_stream(out);
            }
        }
        self.write_stream(out)
    }

    /// The encoding 2 bytes of the samples so far, if they are decimals.
    #[cfg(test)]
    pub(crate) fn decimal_bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        (self.mode == Mode::Decimal && self.count > 0).then(|| {
            self.write_stream(&mut out);
            out
        })
    }

    /// Bits in the stream of the current mode.
    #[cfg(test)]
    pub(crate) fn stream_bits(&self) -> usize {
        self.bits.len()
    }

    /// Writes the stream of the current mode with its header.
    fn write_stream(&self, out: &mut Vec<u8>) {
        match self.mode {
            Mode::Gorilla => {
                write_header(out, Encoding::Gorilla, self.len(), self.min_t, self.last_t)
            }
            Mode::Decimal if self.count == 0 => {
                write_header(out, Encoding::Gorilla, 0, 0, 0);
                return;
            }
            Mode::Decimal => {
                write_header(out, Encoding::Decimal, self.len(), self.min_t, self.last_t);
                out.push(self.scale);
            }
        }
        self.bits.extend_bytes(out);
    }

    /// Upper bound of the length of [`ChunkEncoder::bytes`].
    pub fn encoded_len(&self) -> usize {
        3 + 20 + 1 + self.bits.len().div_ceil(8)
    }

    /// Bytes of heap this encoder holds.
    pub fn heap_size(&self) -> usize {
        self.bits.heap_size()
    }

    /// Rebuilds an encoder from [`ChunkEncoder::bytes`] (or any valid
    /// chunk) so that more samples can be appended.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ChunkError> {
        let mut enc = Self::new();
        for s in super::ChunkIter::new(b)? {
            let (t, v) = s?;
            enc.push(t, v)?;
        }
        Ok(enc)
    }
}

/// `v` as an integer at scale `k`, if `i / 10^k` gives back `v`'s exact
/// bits (see the encoding 2 layout in the module docs).
#[inline(always)]
fn scaled(v: f64, k: u8) -> Option<u64> {
    if k == 0 {
        // `as` truncates; an integer (the only kind that fits) is kept.
        let i = v as i64;
        return ((i as f64).to_bits() == v.to_bits()).then_some(i as u64);
    }
    let p = POW10[usize::from(k)];
    let x = v * p;
    // Round to the nearest integer; from 2^52 on every f64 is an integer.
    // A wrong guess only fails the exact check below.
    let r = if x.abs() < 4_503_599_627_370_496.0 {
        x + 0.5f64.copysign(x)
    } else {
        x
    };
    let i = r as i64;
    ((i as f64 / p).to_bits() == v.to_bits()).then_some(i as u64)
}

/// The least scale `k` in `from..=MAX_SCALE` at which `v` is an exact
/// decimal, and `v` scaled by it.
pub(crate) fn fit_scale(v: f64, from: u8) -> Option<(u8, u64)> {
    (from..=MAX_SCALE).find_map(|k| scaled(v, k).map(|i| (k, i)))
}
