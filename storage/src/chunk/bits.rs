//! Bit-level writer and reader for the chunk bit stream, built on `bitvec`.
//!
//! The stream is MSB-first: bit 0 of the stream is the most significant bit
//! of its first byte.
//!
//! The writer gathers fields in a 64-bit accumulator with plain shifts and
//! hands each completed word to `bitvec` with one word-level `store_be` into
//! the 64-bit-aligned slot of the bit slice (`Msb0` order, so a word
//! serialised big-endian gives the stream bytes). Storing every field
//! through `store_be` at an arbitrary bit offset cost ~18 ns per field
//! (bitvec splits each store into partial head/tail elements); with the
//! accumulator, bitvec sees one aligned store per 64 bits.
//!
//! The reader keeps up to 63 stream bits, MSB-aligned, in a `u64` buffer
//! and refills it with one unaligned big-endian 8-byte load, so a field read
//! is a shift and a mask. `bitvec` checks the padding after the last field.

use bitvec::array::BitArray;
use bitvec::field::BitField;
use bitvec::order::Msb0;
use bitvec::view::BitView;

/// Appends fields of up to 64 bits to a growable bit stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BitWriter {
    /// Completed 64-bit words of the stream.
    words: Vec<u64>,
    /// Bits not yet in `words`, MSB-aligned; bits past `fill` are zero.
    acc: u64,
    /// Number of bits in `acc`, `0..64`.
    fill: u32,
}

impl BitWriter {
    /// Number of bits written so far.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.words.len() * 64 + self.fill as usize
    }

    /// Bytes of heap held by the backing words.
    pub(crate) fn heap_size(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }

    /// Appends the low `n` bits of `value`, most significant first.
    /// `n` must be in `1..=64` and `value` must fit in `n` bits.
    #[inline(always)]
    pub(crate) fn write(&mut self, value: u64, n: u32) {
        debug_assert!((1..=64).contains(&n), "field width {n} out of range");
        debug_assert!(n == 64 || value >> n == 0, "value wider than {n} bits");
        let free = 64 - self.fill; // 1..=64
        if n < free {
            // 1 <= free - n <= 63
            self.acc |= value << (free - n);
            self.fill += n;
        } else {
            let spill = n - free; // 0..=63
            self.push_word(self.acc | (value >> spill));
            self.acc = if spill == 0 { 0 } else { value << (64 - spill) };
            self.fill = spill;
        }
    }

    /// Stores a completed word at the end of the stream.
    #[inline(always)]
    fn push_word(&mut self, word: u64) {
        // One whole, aligned element: bitvec's word-level store. The slot
        // has a fixed width, so the compiler resolves the bit domain at
        // build time and this is a plain word store.
        let mut slot = BitArray::<u64, Msb0>::ZERO;
        slot.store_be(word);
        if self.words.len() == self.words.capacity() {
            self.grow();
        }
        self.words.push(slot.into_inner());
    }

    /// Makes room for more words: 4 at first (32 bytes: the header and
    /// the first few samples, all that a short-lived series ever needs;
    /// at 1M such series, 96 bytes each less than starting at 16), then 16
    /// (128 bytes, a whole chunk of 120 samples at up to 8.5 bits each,
    /// so a full chunk grows twice), then doubling.
    #[cold]
    fn grow(&mut self) {
        let len = self.words.len();
        let want = match len {
            0..4 => 4,
            4..16 => 16,
            _ => len * 2,
        };
        self.words.reserve_exact(want - len);
    }

    /// Appends the stream bytes (MSB first, zero padded to a byte boundary).
    pub(crate) fn extend_bytes(&self, out: &mut Vec<u8>) {
        out.reserve(self.words.len() * 8 + 8);
        for w in &self.words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let rest = self.fill.div_ceil(8) as usize;
        out.extend_from_slice(&self.acc.to_be_bytes()[..rest]);
    }
}

/// The bytes of `bytes` from `next` on (fewer than 8, at least 1), MSB
/// first in a big-endian word and zero padded.
#[inline(always)]
fn tail_word(bytes: &[u8], next: usize) -> u64 {
    let left = bytes.len() - next; // 1..=7
    match bytes.len().checked_sub(8) {
        // The last 8 bytes of the stream, shifted so that `next` comes
        // first: one load instead of a copy into a padded buffer.
        Some(last8) => {
            let w = bytes[last8..]
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            w << (8 * (8 - left))
        }
        None => bytes[next..]
            .iter()
            .enumerate()
            .fold(0, |w, (i, &b)| w | u64::from(b) << (56 - 8 * i)),
    }
}

/// Error returned when a read runs past the end of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfBits;

/// Reads fields of up to 64 bits from a byte slice, MSB first. `Copy`, so
/// that a decode loop can keep it in registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next byte of `bytes` not yet counted in `avail`.
    next: usize,
    /// The next `avail` stream bits, MSB-aligned. Bits past `avail` are
    /// either zero or the stream's own following bits.
    buf: u64,
    /// Valid bits in `buf`, `0..=63`.
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over all bits of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let mut r = Self {
            bytes,
            next: 0,
            buf: 0,
            avail: 0,
        };
        r.refill();
        r
    }

    /// Bits not yet read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.avail as usize + (self.bytes.len() - self.next) * 8
    }

    /// Tops the buffer up to at least 56 valid bits, or to the end of the
    /// stream.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        if self.avail >= 56 {
            return;
        }
        if self.can_refill_fast() {
            return self.refill_fast();
        }
        let left = self.bytes.len() - self.next;
        if left == 0 {
            return;
        }
        // Whole bytes that fit, at most those left; `avail <= 55`, so the
        // shift is in range.
        let take = ((63 - self.avail) / 8).min(left as u32);
        self.buf |= tail_word(self.bytes, self.next) >> self.avail;
        self.next += take as usize;
        self.avail += take * 8;
    }

    /// True if 8 whole stream bytes follow the buffered bits, so that
    /// [`BitReader::refill_fast`] can load them at once.
    #[inline(always)]
    pub(crate) fn can_refill_fast(&self) -> bool {
        self.bytes.len() - self.next >= 8
    }

    /// Tops the buffer up to 56..=63 valid bits when
    /// [`BitReader::can_refill_fast`], without first testing how many are
    /// buffered: loading bits that are already buffered again ORs them onto
    /// themselves. Does nothing otherwise.
    #[inline(always)]
    pub(crate) fn refill_fast(&mut self) {
        if let Some(w) = self.bytes.get(self.next..self.next + 8) {
            let word = u64::from_be_bytes(w.try_into().unwrap_or([0; 8]));
            // `avail <= 63`: the shift is in range, and adding the whole
            // bytes that fit, `(63 - avail) / 8`, makes `avail | 56`.
            self.buf |= word >> self.avail;
            self.next += ((63 - self.avail) / 8) as usize;
            self.avail |= 56;
        }
    }

    /// The buffered bits, MSB first (valid up to [`BitReader::buffered`]).
    #[inline(always)]
    pub(crate) fn peek(&self) -> u64 {
        self.buf
    }

    /// Number of valid bits in [`BitReader::peek`].
    #[inline(always)]
    pub(crate) fn buffered(&self) -> u32 {
        self.avail
    }

    /// Drops `n` buffered bits; `n` must be at most [`BitReader::buffered`].
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.avail);
        // n <= avail <= 63
        self.buf <<= n;
        self.avail -= n;
    }

    /// Drops as many buffered bits as the low 6 bits of `n` say (at most
    /// [`BitReader::buffered`]); the other bits of `n` are ignored, so a
    /// table entry that packs more beside its length needs no masking
    /// before the shift.
    #[inline(always)]
    pub(crate) fn consume_low6(&mut self, n: u32) {
        debug_assert!(n & 63 <= self.avail);
        self.buf = self.buf.wrapping_shl(n);
        self.avail -= n & 63;
    }

    /// Drops `n` bits, if there are that many buffered.
    #[inline(always)]
    pub(crate) fn skip(&mut self, n: u32) -> Result<(), OutOfBits> {
        if n > self.avail {
            return Err(OutOfBits);
        }
        self.consume(n);
        Ok(())
    }

    /// Reads `n` bits (`1..=64`) as an unsigned integer.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, OutOfBits> {
        debug_assert!((1..=64).contains(&n), "field width {n} out of range");
        self.refill();
        if n <= self.avail {
            let v = self.buf >> (64 - n);
            self.consume(n);
            return Ok(v);
        }
        if n <= 32 {
            return Err(OutOfBits);
        }
        // Taken and given back by value, so that a decode loop's reader
        // does not have to live in memory for this rare call.
        let (v, r) = Self::read_halves(*self, n)?;
        *self = r;
        Ok(v)
    }

    /// Reads a field (33..=64 bits) wider than the buffer as two halves.
    #[cold]
    #[inline(never)]
    fn read_halves(mut self, n: u32) -> Result<(u64, Self), OutOfBits> {
        let high = self.read(n - 32)?;
        let low = self.read(32)?;
        Ok(((high << 32) | low, self))
    }

    /// Reads one bit.
    #[cfg(test)]
    pub(crate) fn read_bit(&mut self) -> Result<bool, OutOfBits> {
        self.read(1).map(|b| b == 1)
    }

    /// True if every bit not yet read is zero (the padding).
    pub(crate) fn rest_is_zero(&self) -> bool {
        let buffered = match self.avail {
            0 => 0,
            n => self.buf >> (64 - n),
        };
        buffered == 0
            && self.bytes[self.next.min(self.bytes.len())..]
                .view_bits::<Msb0>()
                .not_any()
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
        let mut w = BitWriter::default();
        w.write(u64::MAX, 64);
        w.write(0, 64);
        w.write(0xAB, 8);
        let mut bytes = Vec::new();
        w.extend_bytes(&mut bytes);
        let mut want = vec![0xFF; 8];
        want.extend([0; 8]);
        want.push(0xAB);
        assert_eq!(bytes, want);
        assert_eq!(w.len(), 136);
    }

    #[test]
    fn narrow_and_wide_fields_at_every_bit_offset() {
        for offset in 0..80u32 {
            let mut w = BitWriter::default();
            for _ in 0..offset {
                w.write(0, 1);
            }
            w.write(0b1110, 4); // unary 3
            w.write(0b11111, 5); // unary 5 (capped, no terminator)
            w.write(0x8000_0000_0000_0001, 64);
            w.write(0x1234_5678_9ABC_DEF0 >> 1, 63);
            w.write(0b101, 3);
            let mut bytes = Vec::new();
            w.extend_bytes(&mut bytes);
            let mut r = BitReader::new(&bytes);
            for _ in 0..offset {
                assert_eq!(r.read_bit(), Ok(false));
            }
            assert_eq!(r.read(4), Ok(0b1110), "offset {offset}");
            assert_eq!(r.read(5), Ok(0b11111), "offset {offset}");
            assert_eq!(r.read(64), Ok(0x8000_0000_0000_0001), "offset {offset}");
            assert_eq!(
                r.read(63),
                Ok(0x1234_5678_9ABC_DEF0 >> 1),
                "offset {offset}"
            );
            assert_eq!(r.read(3), Ok(0b101), "offset {offset}");
            assert!(r.rest_is_zero());
            assert_eq!(r.remaining(), (8 - (offset as usize + 139) % 8) % 8);
        }
    }

    #[test]
    fn reader_stops_at_end() {
        let mut r = BitReader::new(&[0xFF]);
        assert_eq!(r.read(5), Ok(0b11111));
        assert_eq!(r.read(4), Err(OutOfBits));
        assert_eq!(r.read(3), Ok(0b111));
        assert_eq!(r.read_bit(), Err(OutOfBits));
        assert_eq!(r.read(1), Err(OutOfBits));
        assert_eq!(r.read(64), Err(OutOfBits));
        let mut r = BitReader::new(&[0xFF; 9]);
        assert_eq!(r.read(8), Ok(0xFF));
        assert_eq!(r.read(64), Ok(u64::MAX));
        assert_eq!(r.read(1), Err(OutOfBits));
    }

    #[test]
    fn padding_check_sees_every_unread_bit() {
        // 20 bytes, one set bit at each position after a 3-bit read.
        for bit in 3..160usize {
            let mut bytes = [0u8; 20];
            bytes[bit / 8] |= 0x80 >> (bit % 8);
            let mut r = BitReader::new(&bytes);
            assert_eq!(r.read(3), Ok(0));
            assert!(!r.rest_is_zero(), "bit {bit}");
        }
        let mut r = BitReader::new(&[0u8; 20]);
        assert_eq!(r.read(3), Ok(0));
        assert!(r.rest_is_zero());
    }
}
