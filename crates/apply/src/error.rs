//! The applier's error type. Every variant names the file, block, stream or
//! byte offset it is about.

use std::path::PathBuf;

use deltapack_format::{DecodeError, StreamId};

/// A header field checked against [`crate::Expected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderField {
    /// The platform name.
    Platform,
    /// The base version (empty for a full package).
    FromVersion,
    /// The target version.
    ToVersion,
    /// The target tree digest.
    Target,
}

impl HeaderField {
    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            HeaderField::Platform => "platform",
            HeaderField::FromVersion => "base version",
            HeaderField::ToVersion => "target version",
            HeaderField::Target => "target tree digest",
        }
    }
}

/// Why an apply or verify failed. When it fails, nothing has been written
/// at the output path and the base is untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The header is not the package the caller expected (another
    /// platform, version pair or tree): nothing was written.
    #[error("the package's {} is {found:?}, expected {expected:?}", .field.name())]
    Unexpected {
        /// Which field.
        field: HeaderField,
        /// What the caller expected.
        expected: String,
        /// What the header says.
        found: String,
    },
    /// The package bytes are malformed.
    #[error("bad package: {0}")]
    Decode(DecodeError),
    /// An I/O operation failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The base tree could not be read.
    #[error("reading the base: {0}")]
    BaseTree(deltapack_tree::Error),
    /// The package is a delta but no base was given.
    #[error("this package is a delta from version {from:?}: a base tree is required")]
    BaseRequired {
        /// The base version the package names.
        from: String,
    },
    /// The base is a file where the package expects a directory, or the
    /// other way round.
    #[error("base {path} is a {found}, but the package expects a {expected}")]
    BaseKind {
        /// The base path.
        path: PathBuf,
        /// What the package expects.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A base file the package reads is missing or differs from what the
    /// package was made against.
    #[error("base file {path:?} does not match the package: {reason}")]
    BaseMismatch {
        /// Path in the base tree.
        path: String,
        /// What differs.
        reason: String,
    },
    /// The base tree as a whole differs from the one the package was made
    /// against (a file the package does not read was added, removed or
    /// changed).
    #[error(
        "base tree does not match the package: expected {expected_files} files / {expected_bytes} bytes \
         with digest {expected}, found {found_files} files / {found_bytes} bytes with digest {found}"
    )]
    BaseTreeMismatch {
        /// Expected digest (hex).
        expected: String,
        /// Found digest (hex).
        found: String,
        /// Expected number of files.
        expected_files: u64,
        /// Found number of files.
        found_files: u64,
        /// Expected total bytes.
        expected_bytes: u64,
        /// Found total bytes.
        found_bytes: u64,
    },
    /// A base file changed while the package was being applied.
    #[error("base file {path:?} changed during apply")]
    BaseChanged {
        /// Path in the base tree.
        path: String,
    },
    /// Rebuilt bytes do not hash to what the package declares.
    #[error("{path:?}: rebuilt {} does not match its hash", match .block { Some(b) => format!("block {b}"), None => "file".to_owned() })]
    HashMismatch {
        /// Target path.
        path: String,
        /// Block index, or `None` for the whole-file hash.
        block: Option<u64>,
    },
    /// The rebuilt tree does not match the target digest.
    #[error(
        "rebuilt tree does not match the package's target digest (expected {expected}, got {found})"
    )]
    TargetMismatch {
        /// Expected digest (hex).
        expected: String,
        /// Computed digest (hex).
        found: String,
    },
    /// A patch asks for something impossible: a read outside the base file,
    /// more output than the file's size, a malformed control.
    #[error("{path:?}: corrupt {codec} patch: {what}")]
    CorruptPatch {
        /// Target path.
        path: String,
        /// Codec name.
        codec: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A payload stream is malformed, shorter or longer than declared.
    #[error("{} stream: {what}", .stream.name())]
    Stream {
        /// Which stream.
        stream: StreamId,
        /// What is wrong.
        what: String,
    },
    /// The package does not hash to the value in its prologue.
    #[error("package hash mismatch: the package is corrupt")]
    PackageHashMismatch,
    /// More data is buffered for streams not yet being read than the limit
    /// allows.
    #[error(
        "package interleaves its streams badly: more than {limit} bytes would have to be buffered"
    )]
    PendingLimit {
        /// The limit.
        limit: u64,
    },
    /// A file the patch-from codec must hold in memory exceeds the limit.
    #[error("{path:?}: reference file of {size} bytes exceeds the limit of {limit}")]
    ReferenceTooLarge {
        /// Target path.
        path: String,
        /// Size of the base file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The package's entries contradict the base tree.
    #[error("package does not fit the base: {what}")]
    Conflict {
        /// What contradicts.
        what: String,
    },
    /// A symlink would point outside the tree.
    #[error("symlink {path:?} -> {target:?} escapes the tree")]
    SymlinkEscape {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// The output path already exists.
    #[error("output {path} already exists")]
    OutputExists {
        /// The path.
        path: PathBuf,
    },
    /// Symlinks cannot be created on this platform.
    #[error("cannot create symlink {path:?} on this platform")]
    SymlinkUnsupported {
        /// The link.
        path: String,
    },
}

// The inner errors are part of the message rather than a `source`, so
// that a chain printer (`{:#}`) does not say everything twice.
impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

impl From<deltapack_tree::Error> for Error {
    fn from(e: deltapack_tree::Error) -> Self {
        Error::BaseTree(e)
    }
}

impl Error {
    pub(crate) fn stream(stream: StreamId, what: impl Into<String>) -> Error {
        Error::Stream {
            stream,
            what: what.into(),
        }
    }
}
