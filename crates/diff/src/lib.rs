//! deltapack's diff engines and package writer.
//!
//! [`Differ`] compares two trees (or two files) and writes a `.dpk` package
//! that rebuilds the new one from the old one. Per file it finds unchanged
//! files (free), renames and copies (by content hash), and for changed files
//! tries a bsdiff-family codec on a suffix array and a zstd patch-from codec
//! and keeps the smaller; the most similar old file serves as base when a
//! file has none under its own path. Output is deterministic: the same
//! inputs give the same bytes whatever the thread count.
//!
//! ```no_run
//! use std::path::Path;
//! let package = deltapack_diff::Differ::new()
//!     .to_version("1.0.1")
//!     .diff(Some(Path::new("v1.0.0")), Path::new("v1.0.1"), &|_| {})?;
//! std::fs::write("update.dpk", package.to_bytes())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod bsdiff;
mod compress;
mod encode;
mod exe;
pub mod fuzzing;
mod input;
mod package;
mod plan;
pub mod sa;
mod similarity;
mod streams;

use std::io::Write;
use std::path::{Path, PathBuf};

use deltapack_format::{BLOCK_LOG_MAX, BLOCK_LOG_MIN, Header, RootKind};
use deltapack_tree::{NodeKind, Tree};
use rayon::prelude::*;

use crate::compress::Method;
use crate::plan::PlannedNode;

/// Errors of the diff engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an input failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An input tree could not be read.
    #[error(transparent)]
    Tree(#[from] deltapack_tree::Error),
    /// A file changed while it was being diffed.
    #[error("{path}: file changed while it was being diffed")]
    ChangedDuringDiff {
        /// The file.
        path: PathBuf,
    },
    /// A symlink is absolute or points outside the tree.
    #[error("symlink {path:?} -> {target:?} points outside the tree")]
    UnsafeSymlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// Old and new are not the same kind (file vs directory).
    #[error("cannot diff a {old} against a {new}: both must be files or both directories")]
    RootMismatch {
        /// Kind of the old root.
        old: &'static str,
        /// Kind of the new root.
        new: &'static str,
    },
    /// The suffix array could not be built.
    #[error("suffix array construction failed for {len} bytes: {reason}")]
    SuffixArray {
        /// Text length.
        len: usize,
        /// Cause reported by the library.
        reason: String,
    },
    /// A compressor failed.
    #[error("{stream_codec} compression failed: {cause}")]
    Compress {
        /// Which compressor.
        stream_codec: &'static str,
        /// Cause.
        cause: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(&'static str),
    /// The thread pool could not be created.
    #[error("could not start worker threads: {0}")]
    Threads(String),
    /// A bug: an invariant of the writer did not hold.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Progress events, for a front end to render. The library never prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Reading and hashing the trees.
    Scanning,
    /// The plan is made: `files` files to encode, `bytes` new bytes in them.
    Planned {
        /// Files to encode.
        files: u64,
        /// Their total size.
        bytes: u64,
    },
    /// One file was encoded.
    Encoded {
        /// Its size.
        bytes: u64,
    },
    /// Compressing and writing the package.
    Writing,
}

/// Which suffix-array construction to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sorter {
    /// libsais (C), the fastest.
    #[default]
    Libsais,
    /// divsufsort (pure Rust).
    DivSufSort,
}

/// Resolved settings shared by the pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) level: u8,
    pub(crate) block_log: u8,
    pub(crate) platform: String,
    pub(crate) from_version: String,
    pub(crate) to_version: String,
    pub(crate) sorter: Sorter,
    pub(crate) zstd_ref_max: u64,
    pub(crate) zstd_ref_level: i32,
    /// A codec to use instead of the smallest (set by [`fuzzing`] only).
    pub(crate) force: Option<encode::ForceCodec>,
    /// Whether to try the executable-aware codec (`bsdiff-exe`).
    pub(crate) executables: bool,
    /// Whether to record the new files' modification times, and the
    /// latest one to record (`SOURCE_DATE_EPOCH`).
    pub(crate) mtimes: bool,
    pub(crate) clamp_mtime: Option<u64>,
}

impl Settings {
    pub(crate) fn sorter(&self) -> &'static dyn sa::SuffixSorter {
        match self.sorter {
            Sorter::Libsais => &sa::Libsais,
            Sorter::DivSufSort => &sa::DivSufSort,
        }
    }

    /// Stream compression for the level: LZMA2 from 6 up (9 searches for
    /// the longest matches), zstd below.
    pub(crate) fn method(&self) -> Method<'static> {
        match self.level {
            9 => Method::Lzma2 {
                preset: 9,
                nice_len: 273,
            },
            6..=8 => Method::Lzma2 {
                preset: u32::from(self.level),
                nice_len: 0,
            },
            l => Method::Zstd {
                level: [1, 3, 9, 15, 19][usize::from(l.clamp(1, 5)) - 1],
            },
        }
    }
}

/// Builds packages. Configure with the builder methods, then call
/// [`Differ::diff`].
#[derive(Debug, Clone)]
pub struct Differ {
    settings: Settings,
    threads: Option<usize>,
}

impl Default for Differ {
    fn default() -> Self {
        Self::new()
    }
}

impl Differ {
    /// Defaults: level 9 (smallest), 1 MiB hash blocks, libsais.
    pub fn new() -> Self {
        Differ {
            settings: Settings {
                level: 9,
                block_log: 20,
                platform: String::new(),
                from_version: String::new(),
                to_version: String::new(),
                sorter: Sorter::Libsais,
                zstd_ref_max: 4 << 20,
                zstd_ref_level: 19,
                force: None,
                executables: true,
                mtimes: false,
                clamp_mtime: None,
            },
            threads: None,
        }
    }

    /// Compression level, 1 (fastest) to 9 (smallest).
    pub fn level(mut self, level: u8) -> Self {
        self.settings.level = level;
        self
    }

    /// Whether to try the executable-aware codec on x86-64 ELF, PE and
    /// Mach-O files (default: yes; it is kept only where it is smaller).
    /// Off, packages use the generic codecs only, which readers from
    /// before op 5 (FORMAT.md §6.4) can apply.
    pub fn executables(mut self, on: bool) -> Self {
        self.settings.executables = on;
        self
    }

    /// Whether the package records the modification time of every file of
    /// the new tree (FORMAT.md §3, header flag bit 2; default: no). The
    /// applier then gives each rebuilt file its time, so caches keyed on
    /// it (Python's bytecode) stay valid. Readers from before that flag
    /// refuse such packages.
    pub fn mtimes(mut self, on: bool) -> Self {
        self.settings.mtimes = on;
        self
    }

    /// Records no time later than `t` (Unix seconds): later ones become
    /// `t`, as reproducible builds do with `SOURCE_DATE_EPOCH`.
    pub fn clamp_mtime(mut self, t: Option<u64>) -> Self {
        self.settings.clamp_mtime = t;
        self
    }

    /// Worker threads (default: one per core). Output does not depend on it.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// log2 of the block size for block hashes (12..=30, default 20).
    pub fn block_log(mut self, log: u8) -> Self {
        self.settings.block_log = log;
        self
    }

    /// Platform name recorded in the header.
    pub fn platform(mut self, p: impl Into<String>) -> Self {
        self.settings.platform = p.into();
        self
    }

    /// Version of the old tree recorded in the header.
    pub fn from_version(mut self, v: impl Into<String>) -> Self {
        self.settings.from_version = v.into();
        self
    }

    /// Version of the new tree recorded in the header.
    pub fn to_version(mut self, v: impl Into<String>) -> Self {
        self.settings.to_version = v.into();
        self
    }

    /// Suffix-array construction.
    pub fn sorter(mut self, s: Sorter) -> Self {
        self.settings.sorter = s;
        self
    }

    /// Largest old + new size for which the zstd patch-from codec is tried
    /// (the applier holds both in memory; default 4 MiB).
    pub fn zstd_ref_max(mut self, bytes: u64) -> Self {
        self.settings.zstd_ref_max = bytes;
        self
    }

    /// Diffs `old` (a file or directory; `None` for a full package) against
    /// `new`.
    pub fn diff(
        &self,
        old: Option<&Path>,
        new: &Path,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Package, Error> {
        if !(1..=9).contains(&self.settings.level) {
            return Err(Error::InvalidOption("level must be 1..=9"));
        }
        if !(BLOCK_LOG_MIN..=BLOCK_LOG_MAX).contains(&self.settings.block_log) {
            return Err(Error::InvalidOption("block log must be 12..=30"));
        }
        match self.threads {
            None => self.run(old, new, progress),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| Error::Threads(e.to_string()))?
                .install(|| self.run(old, new, progress)),
        }
    }

    fn run(
        &self,
        old: Option<&Path>,
        new: &Path,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Package, Error> {
        progress(Event::Scanning);
        let (old_tree, new_tree) =
            rayon::join(|| old.map(Tree::scan).transpose(), || Tree::scan(new));
        let (old_tree, new_tree) = (old_tree?, new_tree?);
        if new_tree.root == RootKind::Dir {
            new_tree.check_portable()?;
        }
        if let Some(o) = &old_tree
            && o.root != new_tree.root
        {
            let name = |r: RootKind| {
                if r == RootKind::File {
                    "file"
                } else {
                    "directory"
                }
            };
            return Err(Error::RootMismatch {
                old: name(o.root),
                new: name(new_tree.root),
            });
        }
        let plan = plan::plan(old_tree.as_ref(), &new_tree)?;
        let (files, bytes) = plan.entries.iter().fold((0, 0), |(f, b), e| match e.node {
            PlannedNode::File { size, .. } => (f + 1, b + size),
            _ => (f, b),
        });
        progress(Event::Planned { files, bytes });

        let s = &self.settings;
        let old_sizes: std::collections::HashMap<&deltapack_format::RelPath, u64> = old_tree
            .iter()
            .flat_map(|t| &t.nodes)
            .filter_map(|n| match n.kind {
                NodeKind::File { size, .. } => Some((&n.path, size)),
                _ => None,
            })
            .collect();
        let encoded: Vec<Option<encode::EncodedFile>> = plan
            .entries
            .par_iter()
            .map(|e| {
                let PlannedNode::File {
                    size,
                    hash,
                    plan: fp,
                    ..
                } = &e.node
                else {
                    return Ok(None);
                };
                let old_path = match (fp, &old_tree) {
                    (plan::FilePlan::Delta(p), Some(t)) => {
                        old_sizes.get(p).map(|sz| (t.fs_path(p), *sz))
                    }
                    _ => None,
                };
                let f = encode::encode_file(
                    fp,
                    &new_tree.fs_path(&e.path),
                    *size,
                    hash,
                    old_path.as_ref().map(|(p, s)| (p.as_path(), *s)),
                    s,
                )?;
                progress(Event::Encoded { bytes: *size });
                Ok(Some(f))
            })
            .collect::<Result<_, Error>>()?;

        progress(Event::Writing);
        package::write(
            package::Parts {
                old: old_tree.as_ref(),
                new: &new_tree,
                removals: plan.removals,
                entries: plan.entries,
                files: encoded,
            },
            s,
        )
    }
}

/// A finished package: header, and the encoded bytes.
#[derive(Debug, Clone)]
pub struct Package {
    /// The header as written.
    pub header: Header,
    prefix: Vec<u8>,
    payload: Vec<u8>,
}

impl Package {
    /// Total size in bytes.
    pub fn len(&self) -> u64 {
        (self.prefix.len() + self.payload.len()) as u64
    }

    /// Whether the package is empty (never: a package has a prologue).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Size of prologue plus header.
    pub fn header_len(&self) -> u64 {
        self.prefix.len() as u64
    }

    /// Writes the package.
    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&self.prefix)?;
        w.write_all(&self.payload)
    }

    /// The package bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        v.extend_from_slice(&self.prefix);
        v.extend_from_slice(&self.payload);
        v
    }
}
