//! Bit-level writer and reader for the chunk bit stream, built on `bitvec`.
//!
//! The stream is MSB-first: bit 0 of the stream is the most significant bit
//! of its first byte. The writer keeps whole `u64` words (`Msb0` order, so a
//! word serialised big-endian gives the stream bytes) and stores each field
//! with one word-level `store_be` into the bit slice instead of pushing bits
//! one by one; the reader loads fields with `load_be` the same way.

use bitvec::field::BitField;
use bitvec::order::Msb0;
use bitvec::view::BitView;

/// Appends fields of up to 64 bits to a growable bit stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BitWriter {
    /// Backing words; bits past `len` are always zero.
    words: Vec<u64>,
    /// Number of bits written.
    len: usize,
}

impl BitWriter {
    /// Number of bits written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of heap held by the backing words.
    pub(crate) fn heap_size(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }

    /// Appends the low `n` bits of `value`, most significant first.
    /// `n` must be in `1..=64` and `value` must fit in `n` bits.
    #[inline]
    pub(crate) fn write(&mut self, value: u64, n: u32) {
        debug_assert!((1..=64).contains(&n), "field width {n} out of range");
        debug_assert!(n == 64 || value >> n == 0, "value wider than {n} bits");
        let start = self.len;
        let end = start + n as usize;
        let need = end.div_ceil(64);
        if need > self.words.len() {
            // Grow in small steps: a head chunk is rarely more than ~30 words
            // and the engine keeps one per active series.
            if self.words.capacity() < need {
                self.words.reserve(need.max(4) - self.words.len());
            }
            self.words.resize(need, 0);
        }
        self.words.view_bits_mut::<Msb0>()[start..end].store_be(value);
        self.len = end;
    }

    /// Appends the stream bytes (MSB first, zero padded to a byte boundary).
    pub(crate) fn extend_bytes(&self, out: &mut Vec<u8>) {
        let nbytes = self.len.div_ceil(8);
        out.reserve(nbytes);
        let full = nbytes / 8;
        for w in &self.words[..full] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let rest = nbytes % 8;
        if rest > 0 {
            out.extend_from_slice(&self.words[full].to_be_bytes()[..rest]);
        }
    }
}

/// Error returned when a read runs past the end of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfBits;

/// Reads fields of up to 64 bits from a byte slice, MSB first.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next bit to read.
    pos: usize,
    /// Total bits available.
    end: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over all bits of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            end: bytes.len() * 8,
        }
    }

    /// Bits not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Reads `n` bits (`1..=64`) as an unsigned integer.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, OutOfBits> {
        debug_assert!((1..=64).contains(&n), "field width {n} out of range");
        let end = self.pos + n as usize;
        if end > self.end {
            return Err(OutOfBits);
        }
        let v = self.bytes.view_bits::<Msb0>()[self.pos..end].load_be::<u64>();
        self.pos = end;
        Ok(v)
    }

    /// Reads one bit.
    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, OutOfBits> {
        if self.pos >= self.end {
            return Err(OutOfBits);
        }
        let byte = self.bytes[self.pos / 8];
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Counts leading one bits, reading at most `max` bits: consumes the ones
    /// and the terminating zero (if one was found before `max`).
    #[inline]
    pub(crate) fn read_unary(&mut self, max: u32) -> Result<u32, OutOfBits> {
        let mut n = 0;
        while n < max {
            if !self.read_bit()? {
                return Ok(n);
            }
            n += 1;
        }
        Ok(n)
    }

    /// True if every bit not yet read is zero (the padding).
    pub(crate) fn rest_is_zero(&self) -> bool {
        self.bytes.view_bits::<Msb0>()[self.pos..self.end].not_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_across_word_boundaries() {
        let fields: Vec<(u64, u32)> = (1..=64u32)
            .map(|n| {
                let v = 0xDEAD_BEEF_F00D_CAFEu64;
                (if n == 64 { v } else { v & ((1 << n) - 1) }, n)
            })
            .chain([(1, 1), (0, 3), (u64::MAX, 64), (5, 3)])
            .collect();
        let mut w = BitWriter::default();
        for &(v, n) in &fields {
            w.write(v, n);
        }
        let mut bytes = Vec::new();
        w.extend_bytes(&mut bytes);
        assert_eq!(bytes.len(), w.len().div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &fields {
            assert_eq!(r.read(n), Ok(v), "width {n}");
        }
        assert!(r.rest_is_zero());
        assert!(r.remaining() < 8);
    }

    #[test]
    fn msb_first_byte_order() {
        let mut w = BitWriter::default();
        w.write(0b1, 1);
        w.write(0b0000_0011, 8);
        let mut bytes = Vec::new();
        w.extend_bytes(&mut bytes);
        assert_eq!(bytes, vec![0b1000_0001, 0b1000_0000]);
    }

    #[test]
    fn reader_stops_at_end() {
        let mut r = BitReader::new(&[0xFF]);
        assert_eq!(r.read_unary(5), Ok(5));
        assert_eq!(r.read(3), Ok(0b111));
        assert_eq!(r.read_bit(), Err(OutOfBits));
        assert_eq!(r.read(1), Err(OutOfBits));
    }
}
