//! Bit-level writer and reader for the chunk bit stream, built on `bitvec`.
//!
//! The stream is MSB-first: bit 0 of the stream is the most significant bit
//! of its first byte. The writer keeps whole `u64` words (`Msb0` order, so a
//! word serialised big-endian gives the stream bytes) and stores each field
//! with one word-level `store_be` into the bit slice instead of pushing bits
//! one by one. The reader takes each field out of the 64-bit big-endian
//! window at its byte position (a plain `u64` load: bitvec's `load_be` over
//! the same 8 bytes measured about twice as slow on the decode hot path);
//! bitvec still checks the padding and loads the zero-padded last window.

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

    /// The 64 stream bits starting at byte `pos / 8`, MSB first, zero
    /// padded past the end.
    #[inline]
    fn window(&self) -> u64 {
        let b = self.pos / 8;
        match self.bytes.get(b..b + 8) {
            Some(w) => u64::from_be_bytes(w.try_into().unwrap_or([0; 8])),
            None => {
                let mut pad = [0u8; 8];
                let tail = &self.bytes[b.min(self.bytes.len())..];
                pad[..tail.len()].copy_from_slice(tail);
                pad.view_bits::<Msb0>().load_be::<u64>()
            }
        }
    }

    /// Reads `n` bits (`1..=64`) as an unsigned integer.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, OutOfBits> {
        debug_assert!((1..=64).contains(&n), "field width {n} out of range");
        let end = self.pos + n as usize;
        if end > self.end {
            return Err(OutOfBits);
        }
        let skip = (self.pos % 8) as u32;
        // The window holds at least 57 bits from `pos`.
        let v = if n <= 64 - skip {
            (self.window() << skip) >> (64 - n)
        } else {
            let hi = n - 32;
            let high = (self.window() << skip) >> (64 - hi);
            self.pos += hi as usize;
            let skip = (self.pos % 8) as u32;
            let low = (self.window() << skip) >> 32;
            (high << 32) | low
        };
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

    /// Counts leading one bits, reading at most `max` (≤ 32) bits: consumes
    /// the ones and the terminating zero (if one was found before `max`).
    #[inline]
    pub(crate) fn read_unary(&mut self, max: u32) -> Result<u32, OutOfBits> {
        debug_assert!(max <= 32);
        let ones = (self.window() << (self.pos % 8)).leading_ones().min(max);
        let used = (ones + u32::from(ones < max)) as usize;
        if self.pos + used > self.end {
            // Past the end the window reads zeros, so this only happens when
            // the stream ends inside the run of ones.
            return Err(OutOfBits);
        }
        self.pos += used;
        Ok(ones)
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
    fn unary_and_wide_fields_at_every_bit_offset() {
        for offset in 0..16u32 {
            let mut w = BitWriter::default();
            if offset > 0 {
                w.write(0, offset);
            }
            w.write(0b1110, 4); // unary 3
            w.write(0b11111, 5); // unary 5 (capped, no terminator)
            w.write(0x8000_0000_0000_0001, 64);
            w.write(0x1234_5678_9ABC_DEF0 >> 1, 63);
            let mut bytes = Vec::new();
            w.extend_bytes(&mut bytes);
            let mut r = BitReader::new(&bytes);
            if offset > 0 {
                assert_eq!(r.read(offset), Ok(0));
            }
            assert_eq!(r.read_unary(5), Ok(3), "offset {offset}");
            assert_eq!(r.read_unary(5), Ok(5), "offset {offset}");
            assert_eq!(r.read(64), Ok(0x8000_0000_0000_0001), "offset {offset}");
            assert_eq!(
                r.read(63),
                Ok(0x1234_5678_9ABC_DEF0 >> 1),
                "offset {offset}"
            );
            assert!(r.rest_is_zero());
        }
    }

    #[test]
    fn unary_run_cut_by_the_end_is_out_of_bits() {
        let mut r = BitReader::new(&[0xFF]);
        assert_eq!(r.read(5), Ok(0b11111));
        assert_eq!(r.read_unary(5), Err(OutOfBits));
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
