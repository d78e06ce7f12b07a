//! The one bounded cursor every decoder in deltapack reads through.
//!
//! A [`Reader`] walks a byte slice, knows which [`Section`] it is in and its
//! offset there, and never hands out more bytes than remain. Lengths are
//! checked against a limit *and* the remaining input before anything is
//! allocated.

use crate::DecodeError;

/// The part of a package (or other encoded object) being decoded, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Section {
    /// The fixed-size prologue.
    Prologue,
    /// The (decompressed) header.
    Header,
    /// The payload record stream.
    Payload,
    /// A named payload stream, after decompression.
    Stream(crate::StreamId),
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Section::Prologue => f.write_str("prologue"),
            Section::Header => f.write_str("header"),
            Section::Payload => f.write_str("payload"),
            Section::Stream(s) => write!(f, "{} stream", s.name()),
        }
    }
}

/// A bounded cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    section: Section,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, reporting errors in `section`.
    pub fn new(buf: &'a [u8], section: Section) -> Self {
        Reader {
            buf,
            pos: 0,
            section,
        }
    }

    /// Current offset within the section.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The section being read.
    pub fn section(&self) -> Section {
        self.section
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated {
            section: self.section,
            offset: self.pos as u64,
        }
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        let (head, _) = rest.split_at_checked(n).ok_or_else(|| self.truncated())?;
        self.pos += n;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub fn u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// An unsigned LEB128 varint in its shortest form (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let bad = DecodeError::BadVarint {
            section: self.section,
            offset: start as u64,
        };
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(bad);
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    // A trailing zero group: not the shortest encoding.
                    return Err(bad);
                }
                return Ok(value);
            }
        }
        Err(bad)
    }

    /// A varint that must not exceed `limit`; `what` names it in errors.
    pub fn varint_max(&mut self, what: &'static str, limit: u64) -> Result<u64, DecodeError> {
        let offset = self.offset();
        let v = self.varint()?;
        if v > limit {
            return Err(DecodeError::LengthExceedsLimit {
                what,
                value: v,
                limit,
                section: self.section,
                offset,
            });
        }
        Ok(v)
    }

    /// A count of items each at least `min_item` bytes long: checked against
    /// `limit` and against what remains, so it is safe to allocate for.
    pub fn count(
        &mut self,
        what: &'static str,
        limit: u64,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let offset = self.offset();
        let n = self.varint_max(what, limit)?;
        let need = n.checked_mul(min_item.max(1) as u64);
        match need {
            Some(need) if need <= self.remaining() as u64 => Ok(n as usize),
            _ => Err(DecodeError::Truncated {
                section: self.section,
                offset,
            }),
        }
    }

    /// Length-prefixed bytes, at most `limit` long.
    pub fn bytes(&mut self, what: &'static str, limit: u64) -> Result<&'a [u8], DecodeError> {
        let n = self.varint_max(what, limit)?;
        let n = usize::try_from(n).map_err(|_| self.truncated())?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string, at most `limit` bytes.
    pub fn string(&mut self, what: &'static str, limit: u64) -> Result<&'a str, DecodeError> {
        let offset = self.offset();
        let b = self.bytes(what, limit)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 {
            what,
            section: self.section,
            offset,
        })
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingData {
                section: self.section,
                count: n as u64,
            }),
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    ((64 - v.leading_zeros()).max(1) as usize).div_ceil(7)
}

/// Appends length-prefixed bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Zigzag-maps a signed value to unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_canonical() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut r = Reader::new(&b, Section::Header);
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
        // Overlong zero.
        let mut r = Reader::new(&[0x80, 0x00], Section::Header);
        assert!(matches!(
            r.varint(),
            Err(DecodeError::BadVarint { offset: 0, .. })
        ));
        // 11 bytes.
        let mut r = Reader::new(&[0xff; 11], Section::Header);
        assert!(matches!(r.varint(), Err(DecodeError::BadVarint { .. })));
        // Overflow in the tenth byte.
        let mut b = vec![0xff; 9];
        b.push(0x02);
        let mut r = Reader::new(&b, Section::Header);
        assert!(matches!(r.varint(), Err(DecodeError::BadVarint { .. })));
        // Truncated.
        let mut r = Reader::new(&[0x80], Section::Header);
        assert!(matches!(
            r.varint(),
            Err(DecodeError::Truncated { offset: 1, .. })
        ));
    }

    #[test]
    fn zigzag_round_trip() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1234567] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn count_is_checked_against_remaining_before_allocating() {
        let mut b = Vec::new();
        put_varint(&mut b, u32::MAX as u64);
        let mut r = Reader::new(&b, Section::Header);
        assert!(matches!(
            r.count("entries", u64::MAX, 1),
            Err(DecodeError::Truncated { offset: 0, .. })
        ));
        let mut r = Reader::new(&b, Section::Header);
        assert!(matches!(
            r.count("entries", 10, 1),
            Err(DecodeError::LengthExceedsLimit {
                what: "entries",
                limit: 10,
                ..
            })
        ));
    }
}
