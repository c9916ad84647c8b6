//! Bucketed signed fields: the delta-of-delta fields of both encodings.
//!
//! A field holds a signed 64-bit `D` (a wrapping difference). `D = 0` is the
//! single bit `0`. Otherwise a unary prefix picks bucket `j` (`j + 1` ones
//! and a zero; the last bucket has no zero) and `w(j)` bits follow holding
//! `D mod 2^w(j)`. Bucket `j` holds `D` in `[-(2^(w-1) - 1), 2^(w-1)]`,
//! i.e. `D - 1` fits in `w` bits two's complement; the reader gets
//! `D = sign_extend((v - 1) mod 2^w) + 1`. The last bucket is 64 bits wide
//! and holds any `D`. The encoder always picks the narrowest bucket.

use super::bits::{BitReader, BitWriter, OutOfBits};

/// Most buckets a table has (besides `D = 0`).
const MAX_BUCKETS: usize = 8;

/// A bucket table (see the module doc).
pub(crate) struct Buckets {
    /// Payload width of each bucket; the last is 64.
    widths: [u32; MAX_BUCKETS],
    /// Number of buckets.
    n: u32,
    /// For a signed bit length `1..=64` of `D - 1`: the narrowest bucket
    /// holding it, as `(prefix code, prefix length, payload width)`.
    by_len: [(u64, u32, u32); 65],
}

impl Buckets {
    /// Builds a table from its widths (ascending, last one 64).
    const fn new(widths: &[u32]) -> Self {
        assert!(widths.len() <= MAX_BUCKETS && widths[widths.len() - 1] == 64);
        let n = widths.len();
        let mut w = [64; MAX_BUCKETS];
        let mut by_len = [(0, 0, 0); 65];
        let mut len = 1;
        while len <= 64 {
            let mut j = 0;
            while widths[j] < len {
                j += 1;
            }
            let ones = (1u64 << (j + 1)) - 1;
            by_len[len as usize] = if j + 1 < n {
                (ones << 1, j as u32 + 2, widths[j])
            } else {
                (ones, j as u32 + 1, widths[j])
            };
            len += 1;
        }
        let mut j = 0;
        while j < n {
            w[j] = widths[j];
            j += 1;
        }
        Buckets {
            widths: w,
            n: n as u32,
            by_len,
        }
    }

    /// Bits the field for `d` takes.
    #[cfg(test)]
    fn len_of(&self, d: u64) -> u32 {
        self.len_at(d, signed_len(d))
    }

    /// Bits the field for `d` takes, given `len = signed_len(d)`.
    #[inline(always)]
    pub(crate) fn len_at(&self, d: u64, len: usize) -> u32 {
        if d == 0 {
            return 1;
        }
        let (_, plen, width) = self.by_len[len];
        plen + width
    }

    /// The field for `d` as `(bits, length)`, given `len = signed_len(d)`,
    /// unless it is in the 64-bit bucket (then it does not fit in one word).
    #[inline(always)]
    pub(crate) fn short_field(&self, d: u64, len: usize) -> Option<(u64, u32)> {
        if d == 0 {
            return Some((0, 1));
        }
        let (code, plen, width) = self.by_len[len];
        (width < 64).then(|| ((code << width) | (d & ((1 << width) - 1)), plen + width))
    }

    /// Writes the field for `d` (a wrapping `i64` as `u64`); returns its
    /// length in bits.
    #[inline(always)]
    pub(crate) fn write(&self, w: &mut BitWriter, d: u64) -> u32 {
        if d == 0 {
            w.write(0, 1);
            return 1;
        }
        let (code, plen, width) = self.by_len[signed_len(d)];
        let payload = if width == 64 {
            d
        } else {
            d & ((1 << width) - 1)
        };
        if plen + width <= 64 {
            w.write((code << width) | payload, plen + width);
        } else {
            w.write(code, plen);
            w.write(payload, width);
        }
        plen + width
    }

    /// Reads a field.
    #[inline(always)]
    pub(crate) fn read(&self, r: &mut BitReader<'_>) -> Result<u64, OutOfBits> {
        r.refill();
        let ones = r.peek().leading_ones().min(self.n);
        if ones == 0 {
            if r.buffered() == 0 {
                return Err(OutOfBits);
            }
            r.consume(1);
            return Ok(0);
        }
        let plen = ones + u32::from(ones < self.n);
        let width = self.widths[(ones - 1) as usize];
        let v = if plen + width <= r.buffered() {
            // 1 <= width <= 63 here: plen + width <= 63.
            let v = (r.peek() << plen) >> (64 - width);
            r.consume(plen + width);
            v
        } else {
            if plen > r.buffered() {
                return Err(OutOfBits);
            }
            r.consume(plen);
            r.read(width)?
        };
        // Sign-extend (v - 1) from `width` bits, then add 1.
        let shift = 64 - width;
        let x = ((v.wrapping_sub(1) << shift) as i64) >> shift;
        Ok(x.wrapping_add(1) as u64)
    }
}

/// Signed bit length of `d - 1` (as `i64`): `1..=64`.
#[inline(always)]
pub(crate) fn signed_len(d: u64) -> usize {
    let x = (d as i64).wrapping_sub(1);
    (65 - (x ^ (x >> 63)).leading_zeros()).min(64) as usize
}

/// Encoding 1 (Gorilla) timestamp buckets: 7, 9, 12, 32, 64 bits.
pub(crate) static GORILLA: Buckets = Buckets::new(&[7, 9, 12, 32, 64]);

/// Encoding 2 (decimal) timestamp and value buckets: 3, 5, 8, 12, 20, 32,
/// 64 bits.
pub(crate) static DECIMAL: Buckets = Buckets::new(&[3, 5, 8, 12, 20, 32, 64]);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(table: &Buckets, values: &[i64]) {
        let mut w = BitWriter::default();
        let mut total = 0;
        for &d in values {
            let n = table.write(&mut w, d as u64);
            assert_eq!(n, table.len_of(d as u64), "len_of({d})");
            total += n as usize;
        }
        assert_eq!(w.len(), total);
        let mut bytes = Vec::new();
        w.extend_bytes(&mut bytes);
        let mut r = BitReader::new(&bytes);
        for &d in values {
            assert_eq!(table.read(&mut r), Ok(d as u64), "value {d}");
        }
        assert!(r.rest_is_zero());
    }

    #[test]
    fn every_bucket_edge_round_trips() {
        for (table, widths) in [
            (&GORILLA, &[7u32, 9, 12, 32][..]),
            (&DECIMAL, &[3, 5, 8, 12, 20, 32][..]),
        ] {
            let mut values = vec![0, 1, -1, i64::MIN, i64::MAX, i64::MIN + 1];
            for &w in widths {
                let hi = 1i64 << (w - 1);
                values.extend([hi, -hi + 1, hi + 1, -hi, hi - 1, -hi + 2]);
            }
            round_trip(table, &values);
        }
    }

    #[test]
    fn field_lengths_match_the_layout() {
        let f = |table: &Buckets, d: i64, want: u32| {
            assert_eq!(table.len_of(d as u64), want, "d = {d}");
        };
        f(&GORILLA, 0, 1);
        f(&GORILLA, 64, 2 + 7);
        f(&GORILLA, -63, 2 + 7);
        f(&GORILLA, 65, 3 + 9);
        f(&GORILLA, -64, 3 + 9);
        f(&GORILLA, 2048, 4 + 12);
        f(&GORILLA, 1 << 31, 5 + 32);
        f(&GORILLA, -(1 << 31), 5 + 64);
        f(&DECIMAL, 4, 2 + 3);
        f(&DECIMAL, -3, 2 + 3);
        f(&DECIMAL, 5, 3 + 5);
        f(&DECIMAL, 16, 3 + 5);
        f(&DECIMAL, 17, 4 + 8);
        f(&DECIMAL, 1 << 19, 6 + 20);
        f(&DECIMAL, (1 << 19) + 1, 7 + 32);
        f(&DECIMAL, 1 << 31, 7 + 32);
        f(&DECIMAL, (1 << 31) + 1, 7 + 64);
    }

    #[test]
    fn truncated_fields_are_out_of_bits() {
        // '10' then only 6 of 7 payload bits, then the stream ends.
        let mut r = BitReader::new(&[0b1000_0000]);
        assert_eq!(GORILLA.read(&mut r), Err(OutOfBits));
        let mut r = BitReader::new(&[]);
        assert_eq!(DECIMAL.read(&mut r), Err(OutOfBits));
        // Seven ones: the 64-bit bucket, with no payload.
        let mut r = BitReader::new(&[0xFE]);
        assert_eq!(DECIMAL.read(&mut r), Err(OutOfBits));
    }
}
