//! The decoder's error type: every variant says what was wrong and where.

use crate::reader::Section;

/// Why a package (or part of one) was rejected by the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("package truncated in the {section} at byte {offset}")]
    Truncated {
        /// Section being decoded.
        section: Section,
        /// Offset (within the section) where more bytes were needed.
        offset: u64,
    },
    /// The first eight bytes are not the deltapack magic.
    #[error(
        "not a deltapack package: its first bytes are {}, a package's are 89 44 50 4b 0d 0a 1a 0a",
        hex8(found)
    )]
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// The format version is not one this build understands.
    #[error("unsupported package format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the package.
        found: u16,
        /// Version this build supports.
        supported: u16,
    },
    /// Reserved flag bits are set.
    #[error("unsupported package flags {found:#06x}")]
    UnsupportedFlags {
        /// The flag word.
        found: u16,
    },
    /// An enumerated field holds a value this build does not know.
    #[error("unknown {what} {value} in the {section} at byte {offset}")]
    UnknownValue {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: u64,
        /// Section.
        section: Section,
        /// Offset of the field.
        offset: u64,
    },
    /// A length, count or size is larger than the configured limit.
    #[error("{what} of {value} exceeds the limit of {limit} (in the {section} at byte {offset})")]
    LengthExceedsLimit {
        /// Which quantity.
        what: &'static str,
        /// Declared value.
        value: u64,
        /// The limit from [`Limits`](crate::Limits).
        limit: u64,
        /// Section.
        section: Section,
        /// Offset of the field.
        offset: u64,
    },
    /// A varint is longer than 10 bytes, overflows 64 bits, or is not in its
    /// shortest form.
    #[error("malformed varint in the {section} at byte {offset}")]
    BadVarint {
        /// Section.
        section: Section,
        /// Offset of the varint.
        offset: u64,
    },
    /// A string is not valid UTF-8.
    #[error("invalid UTF-8 in {what} in the {section} at byte {offset}")]
    InvalidUtf8 {
        /// Which field.
        what: &'static str,
        /// Section.
        section: Section,
        /// Offset of the string.
        offset: u64,
    },
    /// Bytes follow the end of a section or of the package.
    #[error("{count} unexpected trailing byte(s) after the {section}")]
    TrailingData {
        /// Section that should have ended.
        section: Section,
        /// Number of extra bytes seen (at least).
        count: u64,
    },
    /// The compressed header does not decompress to its declared size.
    #[error("header does not decompress to its declared {declared} bytes: {reason}")]
    HeaderDecompress {
        /// Declared raw size.
        declared: u64,
        /// What went wrong.
        reason: String,
    },
    /// A path is not a safe relative path.
    #[error("unsafe path {raw:?}: {reason}")]
    UnsafePath {
        /// The path as found (lossy if not UTF-8).
        raw: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two entries name the same path (possibly differing only in case or
    /// Unicode normalisation).
    #[error("duplicate path {path:?} (conflicts with {other:?})")]
    DuplicatePath {
        /// The later path.
        path: String,
        /// The earlier path it collides with.
        other: String,
    },
    /// A list that must be strictly sorted is not.
    #[error("{what} not in canonical order at {path:?}")]
    Unsorted {
        /// Which list.
        what: &'static str,
        /// First out-of-order path.
        path: String,
    },
    /// Fields contradict each other.
    #[error("inconsistent package: {what}")]
    Inconsistent {
        /// Description of the contradiction.
        what: String,
    },
    /// A file mode carries bits outside the permitted set (setuid, setgid,
    /// sticky, file type bits).
    #[error("hostile mode {mode:#o} on {path:?}")]
    HostileMode {
        /// Path of the entry.
        path: String,
        /// The mode found.
        mode: u64,
    },
}

/// Eight bytes as spaced hex (`68 65 6c 6c 6f 0a 00 00`).
fn hex8(b: &[u8; 8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
