//! The fixed 52-byte prologue that opens every package.
//!
//! ```text
//! offset size field
//!      0    8 magic 89 44 50 4B 0D 0A 1A 0A ("\x89DPK\r\n\x1a\n")
//!      8    2 format version, u16 little endian
//!     10    2 flags, u16 little endian, reserved (must be 0)
//!     12    4 compressed header length, u32 little endian
//!     16    4 uncompressed header length, u32 little endian
//!     20   32 BLAKE3 of everything after the prologue: the compressed
//!             header followed by the payload
//! ```
//!
//! One hash covers the whole package so that a stream reader can check it
//! when the last byte arrives; the header itself is safe to decode before
//! that (the decoder is strict and bounded).

use crate::reader::{Reader, Section};
use crate::{DecodeError, Limits};

/// The magic bytes (PNG-style: high bit, name, CR LF, ^Z, LF catch text-mode
/// mangling).
pub const MAGIC: [u8; 8] = *b"\x89DPK\r\n\x1a\n";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Length of the prologue in bytes.
pub const PROLOGUE_LEN: usize = 52;

/// The decoded prologue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prologue {
    /// Length of the compressed header that follows.
    pub header_len: u32,
    /// Length of the header after decompression.
    pub header_raw_len: u32,
    /// BLAKE3 of the compressed header followed by the payload.
    pub package_hash: [u8; 32],
}

impl Prologue {
    /// Encodes the prologue.
    pub fn encode(&self) -> [u8; PROLOGUE_LEN] {
        let mut out = [0u8; PROLOGUE_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.header_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.header_raw_len.to_le_bytes());
        out[20..52].copy_from_slice(&self.package_hash);
        out
    }

    /// Decodes and checks a prologue. Fewer than [`PROLOGUE_LEN`] bytes is
    /// a truncation error at the first missing byte.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Prologue, DecodeError> {
        let mut r = Reader::new(bytes, Section::Prologue);
        if bytes.len() >= 8 && bytes[..8] != MAGIC {
            let mut found = [0u8; 8];
            found.copy_from_slice(&bytes[..8]);
            return Err(DecodeError::BadMagic { found });
        }
        if bytes.len() < 8 && bytes != &MAGIC[..bytes.len()] {
            let mut found = [0u8; 8];
            found[..bytes.len()].copy_from_slice(bytes);
            return Err(DecodeError::BadMagic { found });
        }
        r.take(8)?;
        let version = r.u16_le()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = r.u16_le()?;
        if flags != 0 {
            return Err(DecodeError::UnsupportedFlags { found: flags });
        }
        let header_len = r.u32_le()?;
        let header_raw_len = r.u32_le()?;
        for (what, v, offset) in [
            ("compressed header length", header_len, 12),
            ("header length", header_raw_len, 16),
        ] {
            if v > limits.max_header_bytes {
                return Err(DecodeError::LengthExceedsLimit {
                    what,
                    value: u64::from(v),
                    limit: u64::from(limits.max_header_bytes),
                    section: Section::Prologue,
                    offset,
                });
            }
        }
        let package_hash = r.array::<32>()?;
        r.finish()?;
        Ok(Prologue {
            header_len,
            header_raw_len,
            package_hash,
        })
    }
}
