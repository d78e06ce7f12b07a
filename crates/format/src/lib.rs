//! The `.dpk` package format of deltapack: types, encoding, and a strict,
//! bounded decoder for untrusted bytes.
//!
//! A package is a [`Prologue`], a zstd-compressed [`Header`], and a payload
//! of records that carry the compressed [streams](StreamId). The header
//! describes a whole target tree relative to a base tree (a single file is
//! a tree of one): which base files it reads ([`Source`]), which base paths
//! go away, and one [`Entry`] per target path that is new or different.
//! Unchanged files cost nothing: the base is bound by one [`TreeId`] digest.
//! `docs/FORMAT.md` specifies every byte.
//!
//! Decoding never panics and never allocates from a length it has not
//! checked against [`Limits`] and the remaining input:
//!
//! ```
//! use deltapack_format::{decode_prefix, DecodeError, Limits};
//!
//! let garbage = b"not a package at all, just text";
//! let err = decode_prefix(garbage, &Limits::default()).unwrap_err();
//! assert!(matches!(err, DecodeError::BadMagic { .. }));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod arm64;
mod digest;
mod error;
pub mod exe;
pub mod fuzzing;
mod header;
mod limits;
mod prologue;
pub mod reader;
pub mod reloc;
mod relpath;
mod stream;
pub mod x86;

pub use digest::{DigestNode, TreeDigester, TreeId};
pub use error::DecodeError;
pub use header::{
    BLOCK_LOG_MAX, BLOCK_LOG_MIN, Entry, FileEntry, Hash8, Header, MAX_MTIME, MODE_MASK, Mtimes,
    Node, Op, RootKind, Source, block_count,
};
pub use limits::Limits;
pub use prologue::{FORMAT_VERSION, MAGIC, PROLOGUE_LEN, Prologue};
pub use reader::Section;
pub use relpath::{RelPath, tree_cmp_str};
pub use stream::{Compression, RecordHeader, STREAMS, StreamId, StreamInfo, WINDOW_LOG_MIN};

/// zstd level for the header.
const HEADER_LEVEL: i32 = 19;

/// Encodes the prologue and compressed header for `payload`: the bytes that
/// precede it.
pub fn encode_prefix(header: &Header, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    encode_prefix_raw(&header.encode(), payload)
}

/// [`encode_prefix`] for header bytes encoded already (tools and tests that
/// need to write headers the encoder would not).
pub fn encode_prefix_raw(raw_header: &[u8], payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let compressed = zstd::bulk::compress(raw_header, HEADER_LEVEL)?;
    let mut h = blake3::Hasher::new();
    h.update(&compressed);
    h.update(payload);
    let prologue = Prologue {
        header_len: compressed.len() as u32,
        header_raw_len: raw_header.len() as u32,
        package_hash: *h.finalize().as_bytes(),
    };
    let mut out = Vec::with_capacity(PROLOGUE_LEN + compressed.len());
    out.extend_from_slice(&prologue.encode());
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// Decompresses and decodes a header whose prologue is known. The package
/// hash cannot be checked until the payload has been read: see
/// [`Prologue::package_hash`].
pub fn decode_header(
    prologue: &Prologue,
    compressed: &[u8],
    limits: &Limits,
) -> Result<Header, DecodeError> {
    if compressed.len() != prologue.header_len as usize {
        return Err(DecodeError::Truncated {
            section: Section::Header,
            offset: compressed.len() as u64,
        });
    }
    let declared = u64::from(prologue.header_raw_len);
    let fail = |reason: String| DecodeError::HeaderDecompress { declared, reason };
    let mut d = zstd::bulk::Decompressor::new().map_err(|e| fail(e.to_string()))?;
    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(u32::from(
        limits.max_window_log,
    )))
    .map_err(|e| fail(e.to_string()))?;
    // One byte of slack so that a frame inflating past its declared size is
    // caught as "too long" rather than as a generic error.
    let mut raw = Vec::with_capacity(prologue.header_raw_len as usize + 1);
    d.decompress_to_buffer(compressed, &mut raw)
        .map_err(|e| fail(e.to_string()))?;
    if raw.len() as u64 != declared {
        return Err(fail(format!("got {} bytes", raw.len())));
    }
    Header::decode(&raw, limits)
}

/// Decodes the prologue and header from the start of `bytes`; returns the
/// prologue, the header and the offset at which the payload starts.
pub fn decode_prefix(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Prologue, Header, usize), DecodeError> {
    let p = Prologue::decode(&bytes[..bytes.len().min(PROLOGUE_LEN)], limits)?;
    let end = PROLOGUE_LEN + p.header_len as usize;
    let compressed = &bytes[PROLOGUE_LEN..bytes.len().min(end)];
    let h = decode_header(&p, compressed, limits)?;
    Ok((p, h, end))
}
