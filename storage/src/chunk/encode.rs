//! The open (head) chunk: appends samples to a Gorilla bit stream.

use super::bits::BitWriter;
use super::{write_header, ChunkError, MAX_ENCODED_SAMPLES};

/// An open chunk that samples are appended to; the in-memory head of a
/// series. [`ChunkEncoder::bytes`] gives the encoded chunk at any time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkEncoder {
    bits: BitWriter,
    count: u16,
    min_t: i64,
    last_t: i64,
    /// Last timestamp delta as a wrapping u64.
    last_delta: u64,
    /// Bits of the last value.
    last_v: u64,
    /// The XOR window: leading zeros and meaningful bits (0 = no window yet).
    lead: u8,
    sig: u8,
}

impl ChunkEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample. `t` must be greater than the last timestamp
    /// ([`ChunkError::OutOfOrder`] otherwise); any f64 bit pattern is kept
    /// exactly. Fails with [`ChunkError::Full`] past
    /// [`MAX_ENCODED_SAMPLES`](super::MAX_ENCODED_SAMPLES) samples; the
    /// engine seals chunks long before that.
    #[inline]
    pub fn push(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let vbits = v.to_bits();
        if self.count == 0 {
            self.min_t = t;
        } else {
            if t <= self.last_t {
                return Err(ChunkError::OutOfOrder {
                    last: self.last_t,
                    got: t,
                });
            }
            if usize::from(self.count) >= MAX_ENCODED_SAMPLES {
                return Err(ChunkError::Full);
            }
            let delta = (t as u64).wrapping_sub(self.last_t as u64);
            self.write_dod(delta.wrapping_sub(self.last_delta) as i64);
            self.last_delta = delta;
        }
        self.write_value(vbits);
        self.last_t = t;
        self.last_v = vbits;
        self.count += 1;
        Ok(())
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        usize::from(self.count)
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
        (self.count > 0).then(|| (self.last_t, f64::from_bits(self.last_v)))
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
        write_header(out, self.len(), self.min_t, self.last_t);
        self.bits.extend_bytes(out);
    }

    /// Upper bound of the length of [`ChunkEncoder::bytes`].
    pub fn encoded_len(&self) -> usize {
        3 + 20 + self.bits.len().div_ceil(8)
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

    /// Writes a timestamp field (see the layout in the module docs).
    #[inline]
    fn write_dod(&mut self, dod: i64) {
        let u = dod as u64;
        if dod == 0 {
            self.bits.write(0, 1);
        } else if (-63..=64).contains(&dod) {
            self.bits.write((0b10 << 7) | (u & 0x7f), 9);
        } else if (-255..=256).contains(&dod) {
            self.bits.write((0b110 << 9) | (u & 0x1ff), 12);
        } else if (-2047..=2048).contains(&dod) {
            self.bits.write((0b1110 << 12) | (u & 0xfff), 16);
        } else if (-(1i64 << 31) + 1..=1i64 << 31).contains(&dod) {
            self.bits.write((0b11110 << 32) | (u & 0xffff_ffff), 37);
        } else {
            self.bits.write(0b11111, 5);
            self.bits.write(u, 64);
        }
    }

    /// Writes a value field (see the layout in the module docs).
    #[inline]
    fn write_value(&mut self, vbits: u64) {
        let x = vbits ^ self.last_v;
        if x == 0 {
            self.bits.write(0, 1);
            return;
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        let sig = 64 - lead - trail;
        let (wlead, wsig) = (u32::from(self.lead), u32::from(self.sig));
        if wsig > 0 && lead >= wlead && trail >= 64 - wlead - wsig && wsig <= sig + 11 {
            let wtrail = 64 - wlead - wsig;
            self.bits.write(0b10, 2);
            self.bits.write(x >> wtrail, wsig);
        } else {
            let head = (0b11 << 11) | (u64::from(lead) << 6) | u64::from(sig & 63);
            self.bits.write(head, 13);
            self.bits.write(x >> trail, sig);
            self.lead = lead as u8;
            self.sig = sig as u8;
        }
    }
}
