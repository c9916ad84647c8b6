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
    /// The whole field by [`class`] of `D`: index 0 is `D = 0`, index
    /// `1..=64` the narrowest bucket for that signed bit length of `D - 1`.
    fields: [Field; 65],
    /// Buckets `0..short` have fields of at most [`SHORT_FIELD_BITS`];
    /// `short` is at most the number of buckets minus one.
    short: u32,
}

/// Longest field that [`Buckets::peek_short`] decodes: two of them fit in
/// the 56 bits that [`BitReader::refill`] buffers away from the end of the
/// stream.
pub(crate) const SHORT_FIELD_BITS: u32 = 28;

/// A field by the class of its `D`: its bits are `hi | (D & mask)`, `len`
/// long. `len` exceeds 64 for the 64-bit bucket (and `hi` is then only
/// the prefix code, unshifted).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub(crate) hi: u64,
    pub(crate) mask: u64,
    pub(crate) len: u32,
}

impl Buckets {
    /// Builds a table from its widths (ascending, last one 64).
    const fn new(widths: &[u32]) -> Self {
        assert!(widths.len() <= MAX_BUCKETS && widths[widths.len() - 1] == 64);
        let n = widths.len();
        let mut w = [64; MAX_BUCKETS];
        // For a signed bit length `1..=64` of `D - 1`: the narrowest bucket
        // holding it, as `(prefix code, prefix length, payload width)`.
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
        let mut fields = [Field {
            hi: 0,
            mask: 0,
            len: 1,
        }; 65];
        let mut len = 1;
        while len <= 64 {
            let (code, plen, width) = by_len[len];
            fields[len] = if width < 64 {
                Field {
                    hi: code << width,
                    mask: (1 << width) - 1,
                    len: plen + width,
                }
            } else {
                Field {
                    hi: code,
                    mask: u64::MAX,
                    len: plen + width,
                }
            };
            len += 1;
        }
        let mut short = 0;
        let mut j = 0;
        while j < n {
            w[j] = widths[j];
            if j + 1 < n && short == j as u32 && j as u32 + 2 + widths[j] <= SHORT_FIELD_BITS {
                short += 1;
            }
            j += 1;
        }
        Buckets {
            widths: w,
            n: n as u32,
            fields,
            short,
        }
    }

    /// The field for a `D` of class `c` (see [`class`]).
    #[inline(always)]
    pub(crate) fn field(&self, c: usize) -> Field {
        self.fields[c]
    }

    /// Decodes the field at the top of `top` (stream bits, MSB first) if its
    /// bucket is short (at most [`SHORT_FIELD_BITS`] long); returns `D` and
    /// the field length. The caller checks that that many bits are valid.
    #[inline(always)]
    pub(crate) const fn peek_short(&self, top: u64) -> Option<(u64, u32)> {
        if top >> 63 == 0 {
            return Some((0, 1));
        }
        let ones = top.leading_ones();
        if ones > self.short {
            return None;
        }
        // 1 <= ones <= short < n, so the bucket has a terminating zero and
        // a width of 3..=27 bits: every shift below is in range.
        let plen = ones + 1;
        let width = self.widths[(ones - 1) as usize & (MAX_BUCKETS - 1)];
        let v = (top << plen) >> (64 - width);
        let shift = 64 - width;
        let x = ((v.wrapping_sub(1) << shift) as i64) >> shift;
        Some((x.wrapping_add(1) as u64, plen + width))
    }

    /// Bits the field for `d` takes.
    #[cfg(test)]
    fn len_of(&self, d: u64) -> u32 {
        self.fields[class(d)].len
    }

    /// Writes the field for `d` (a wrapping `i64` as `u64`); returns its
    /// length in bits.
    #[inline(always)]
    pub(crate) fn write(&self, w: &mut BitWriter, d: u64) -> u32 {
        let f = self.fields[class(d)];
        if f.len <= 64 {
            w.write(f.hi | (d & f.mask), f.len);
        } else {
            // The 64-bit bucket: the prefix, then `d` whole.
            w.write(f.hi, f.len - 64);
            w.write(d, 64);
        }
        f.len
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

/// The class of `d` that indexes [`Buckets::field`]: 0 for `d = 0`, else
/// [`signed_len`].
#[inline(always)]
pub(crate) fn class(d: u64) -> usize {
    if d == 0 {
        0
    } else {
        signed_len(d)
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
pub(crate) static DECIMAL: Buckets = DECIMAL_BUCKETS;
const DECIMAL_BUCKETS: Buckets = Buckets::new(&[3, 5, 8, 12, 20, 32, 64]);

/// Stream bits that index [`DECIMAL_PAIRS`].
pub(crate) const PAIR_BITS: u32 = 10;

/// The two fields of an encoding 2 sample (timestamp, then value) decoded
/// from the next [`PAIR_BITS`] stream bits, when both end within them:
/// `len | (D1 as u8) << 8 | (D2 as u8) << 16` (both `D` are in -15..=16),
/// or 0 if they do not fit. The decoder looks the usual, small fields up
/// here instead of decoding them one by one.
pub(crate) static DECIMAL_PAIRS: [u32; 1 << PAIR_BITS] = pair_table(&DECIMAL_BUCKETS);

const fn pair_table(b: &Buckets) -> [u32; 1 << PAIR_BITS] {
    let mut t = [0u32; 1 << PAIR_BITS];
    let mut i = 0;
    while i < t.len() {
        let top = (i as u64) << (64 - PAIR_BITS);
        if let Some((d1, n1)) = b.peek_short(top) {
            if let Some((d2, n2)) = b.peek_short(top << n1) {
                if n1 + n2 <= PAIR_BITS {
                    // Fields of at most 10 bits hold D in -15..=16.
                    t[i] = (n1 + n2) | (d1 as u8 as u32) << 8 | (d2 as u8 as u32) << 16;
                }
            }
        }
        i += 1;
    }
    t
}

/// Stream bits that index [`DECIMAL_FIELDS`].
pub(crate) const FIELD_BITS: u32 = 12;

/// Encoding 2 fields of at most [`FIELD_BITS`] bits, by the next
/// [`FIELD_BITS`] stream bits: `len1` is the field's length plus one (0 if
/// no field ends within them), `d` its `D` (in -127..=128). Two arrays, not
/// one of packed entries, so that the length needs no masking on the
/// decoder's critical path. The decoder takes a regular timestamp ('0')
/// and the value field after it from here, the length plus one counting
/// the '0'; and, one field at a time, a sample that misses
/// [`DECIMAL_PAIRS`] (e.g. a 2-decimal gauge's 12-bit value change).
pub(crate) struct FieldTable {
    pub(crate) len1: [u8; 1 << FIELD_BITS],
    pub(crate) d: [i16; 1 << FIELD_BITS],
}

/// The [`FieldTable`] of encoding 2 (12 KiB).
pub(crate) static DECIMAL_FIELDS: FieldTable = field_table(&DECIMAL_BUCKETS);

const fn field_table(b: &Buckets) -> FieldTable {
    let mut t = FieldTable {
        len1: [0; 1 << FIELD_BITS],
        d: [0; 1 << FIELD_BITS],
    };
    let mut i = 0;
    while i < t.len1.len() {
        if let Some((d, n)) = b.peek_short((i as u64) << (64 - FIELD_BITS)) {
            if n <= FIELD_BITS {
                t.len1[i] = n as u8 + 1;
                t.d[i] = d as i16;
            }
        }
        i += 1;
    }
    t
}

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
    fn pair_table_agrees_with_the_field_reader() {
        let mut hits = 0;
        for (i, &pair) in DECIMAL_PAIRS.iter().enumerate() {
            // The 10 index bits, then zeros.
            let bytes = ((i as u16) << (16 - PAIR_BITS)).to_be_bytes();
            let mut r = BitReader::new(&bytes);
            let fields = DECIMAL
                .read(&mut r)
                .and_then(|a| Ok((a, DECIMAL.read(&mut r)?)));
            let used = 16 - r.remaining() as u32;
            if pair == 0 {
                assert!(fields.is_err() || used > PAIR_BITS, "index {i:#b}");
                continue;
            }
            hits += 1;
            let want = (
                (pair >> 8) as u8 as i8 as u64,
                (pair >> 16) as u8 as i8 as u64,
            );
            assert_eq!(fields, Ok(want), "index {i:#b}");
            assert_eq!(used, pair & 0xff, "index {i:#b}");
        }
        // Indexes starting with a pair that fits: '0' '0' (256), '0' '10xxx'
        // (8 * 16), '0' '110xxxxx' (32 * 2), '10xxx' '0' (8 * 16), '10xxx'
        // '10xxx' (64), '110xxxxx' '0' (32 * 2).
        assert_eq!(hits, 256 + 128 + 64 + 128 + 64 + 64);
    }

    #[test]
    fn field_table_agrees_with_the_field_reader() {
        let mut hits = 0;
        for i in 0..1usize << FIELD_BITS {
            // The 12 index bits, then zeros.
            let bytes = ((i as u16) << (16 - FIELD_BITS)).to_be_bytes();
            let mut r = BitReader::new(&bytes);
            let d = DECIMAL.read(&mut r);
            let used = 16 - r.remaining() as u32;
            let len1 = u32::from(DECIMAL_FIELDS.len1[i]);
            if len1 == 0 {
                assert!(d.is_err() || used > FIELD_BITS, "index {i:#b}");
                continue;
            }
            hits += 1;
            assert_eq!(d, Ok(DECIMAL_FIELDS.d[i] as u64), "index {i:#b}");
            assert_eq!(used + 1, len1, "index {i:#b}");
        }
        // '0' (2048), '10xxx' (1024), '110xxxxx' (512), '1110xxxxxxxx' (256).
        assert_eq!(hits, 2048 + 1024 + 512 + 256);
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
