//! A small protobuf wire reader for the fixed shapes of remote write 1.0,
//! borrowing every string and message from the decompressed body: no
//! allocation per series, label or sample.
//!
//! ```text
//! message      = field*
//! field        = key varint | payload
//! key          = field_number << 3 | wire_type
//! wire_type 0  = varint          payload = varint (1..=10 bytes)
//! wire_type 1  = 64-bit          payload = 8 bytes little-endian
//! wire_type 2  = length-delimited payload = len varint | len bytes
//! wire_type 5  = 32-bit          payload = 4 bytes little-endian
//! wire_type 3, 4 (groups) and 6, 7 are refused
//! ```
//! Fields come in any order and unknown fields are skipped, as protobuf
//! requires. Every read is checked against the bytes left: arbitrary input
//! gives a [`WireError`], never a panic or an allocation sized by the input.

/// Why bytes are not a valid protobuf message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ended inside a field.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes or overflowing 64 bits.
    #[error("bad varint at byte {0}")]
    Varint(usize),
    /// A wire type protobuf 3 does not use.
    #[error("unsupported wire type {wire_type} at byte {at}")]
    WireType {
        /// The wire type.
        wire_type: u8,
        /// Where its key starts.
        at: usize,
    },
    /// A known field with the wrong wire type.
    #[error("field {field} has wire type {wire_type}, want {want}")]
    FieldType {
        /// The field number.
        field: u32,
        /// The wire type found.
        wire_type: u8,
        /// The wire type of that field.
        want: u8,
    },
    /// A string field is not UTF-8.
    #[error("string field is not valid UTF-8")]
    Utf8,
}

/// One field's payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        }
    }

    /// The bytes of a length-delimited field.
    pub fn bytes(self, field: u32) -> Result<&'a [u8], WireError> {
        match self {
            Value::Bytes(b) => Ok(b),
            v => Err(v.type_error(field, 2)),
        }
    }

    /// The value of a varint field.
    pub fn varint(self, field: u32) -> Result<u64, WireError> {
        match self {
            Value::Varint(v) => Ok(v),
            v => Err(v.type_error(field, 0)),
        }
    }

    /// The value of a 64-bit field.
    pub fn fixed64(self, field: u32) -> Result<u64, WireError> {
        match self {
            Value::Fixed64(v) => Ok(v),
            v => Err(v.type_error(field, 1)),
        }
    }

    fn type_error(&self, field: u32, want: u8) -> WireError {
        WireError::FieldType {
            field,
            wire_type: self.wire_type(),
            want,
        }
    }
}

/// Iterates the fields of one message.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// The fields of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn at(&self) -> usize {
        self.pos
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.at();
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated(self.at()));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(WireError::Varint(start));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(WireError::Varint(start))
    }

    #[inline]
    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(WireError::Truncated(self.buf.len()));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// The next field as `(field number, payload)`.
    #[inline]
    #[allow(clippy::should_implement_trait)] // an Iterator of Results reads worse here
    pub fn next(&mut self) -> Option<Result<(u32, Value<'a>), WireError>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let at = self.at();
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let v = match (key & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?
                    .try_into()
                    .map_err(|_| WireError::Truncated(at))?,
            )),
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?
                    .try_into()
                    .map_err(|_| WireError::Truncated(at))?,
            )),
            wire_type => return Err(WireError::WireType { wire_type, at }),
        };
        Ok((field, v))
    }
}

/// A string field's value.
pub fn utf8(b: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(b).map_err(|_| WireError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type_and_refuses_groups() {
        // field 1 varint 150, field 2 fixed64, field 3 bytes "hi", field 4 fixed32
        let mut b = vec![0x08, 0x96, 0x01, 0x11];
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&[0x1a, 2, b'h', b'i', 0x25]);
        b.extend_from_slice(&9u32.to_le_bytes());
        let mut f = Fields::new(&b);
        assert_eq!(f.next(), Some(Ok((1, Value::Varint(150)))));
        assert_eq!(f.next(), Some(Ok((2, Value::Fixed64(7)))));
        assert_eq!(f.next(), Some(Ok((3, Value::Bytes(b"hi")))));
        assert_eq!(f.next(), Some(Ok((4, Value::Fixed32(9)))));
        assert_eq!(f.next(), None);
        // group start (wire type 3)
        let mut g = Fields::new(&[0x0b]);
        assert!(matches!(g.next(), Some(Err(WireError::WireType { .. }))));
        // every prefix of a valid message that cuts a field is an error
        for cut in 1..b.len() {
            let mut f = Fields::new(&b[..cut]);
            let mut errs = 0;
            while let Some(r) = f.next() {
                if r.is_err() {
                    errs += 1;
                    break;
                }
            }
            let ends_on_field = [3, 12, 16].contains(&cut);
            assert_eq!(errs, usize::from(!ends_on_field), "cut {cut}");
        }
        // a length far beyond the buffer, an overlong varint
        assert!(matches!(
            Fields::new(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).next(),
            Some(Err(WireError::Truncated(_)))
        ));
        assert!(matches!(
            Fields::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).next(),
            Some(Err(WireError::Varint(1)))
        ));
    }
}
