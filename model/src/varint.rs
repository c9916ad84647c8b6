//! LEB128 varints and zigzag, shared by the batch, labels and snapshot
//! formats. Decoders never panic: they return `None` on truncated or
//! overlong input.

/// Appends `v` as an unsigned LEB128 varint (1..=10 bytes).
#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded.
#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a byte slice with checked reads.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// One unsigned varint.
    pub fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return None; // would overflow 64 bits
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// One zigzag varint.
    pub fn i64(&mut self) -> Option<i64> {
        let u = self.u64()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    /// Bytes read so far (a position for [`Reader::since`]).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes read from position `from` (see [`Reader::position`]) up to
    /// now; empty if `from` is not an earlier position.
    pub fn since(&self, from: usize) -> &'a [u8] {
        self.buf.get(from..self.pos).unwrap_or(&[])
    }

    /// A varint length followed by that many bytes.
    pub fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let us = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let is = [0i64, -1, 1, i64::MIN, i64::MAX, -300];
        let mut b = Vec::new();
        for &u in &us {
            put_u64(&mut b, u);
        }
        for &i in &is {
            put_i64(&mut b, i);
        }
        let mut r = Reader::new(&b);
        for &u in &us {
            assert_eq!(r.u64(), Some(u));
        }
        for &i in &is {
            assert_eq!(r.i64(), Some(i));
        }
        assert!(r.is_empty());
        assert_eq!(r.u64(), None);
        // 11 continuation bytes are rejected, not looped over
        assert_eq!(Reader::new(&[0xff; 11]).u64(), None);
    }
}
