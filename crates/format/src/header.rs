//! The package header: what the package builds, from what, and how.
//!
//! The header is encoded with the primitives of [`reader`](crate::reader),
//! compressed with zstd, and framed by the [`Prologue`](crate::Prologue).
//! [`Header::decode`] is strict: every count and length is bounded by
//! [`Limits`] and by the input that remains, paths go through [`RelPath`],
//! lists must be in canonical order, and cross-references must resolve.

use std::collections::HashSet;

use crate::digest::TreeId;
use crate::reader::{Reader, Section, put_bytes, put_varint};
use crate::stream::{Compression, STREAMS, StreamId, StreamInfo, WINDOW_LOG_MIN};
use crate::{DecodeError, Limits, RelPath};

/// A BLAKE3 hash truncated to 8 bytes: per-file and per-block hashes, which
/// name the file or block that went wrong as soon as it is produced. The
/// cryptographic binding is the full-length target digest, which the
/// applier recomputes from the full hashes of everything it wrote.
pub type Hash8 = [u8; 8];

/// Permission bits a mode may carry. Anything else (setuid, setgid, sticky,
/// file-type bits) is rejected.
pub const MODE_MASK: u32 = 0o777;

/// Smallest and largest block size (as log2) for block hashes.
pub const BLOCK_LOG_MIN: u8 = 12;
/// See [`BLOCK_LOG_MIN`].
pub const BLOCK_LOG_MAX: u8 = 30;

const FLAG_HAS_BASE: u8 = 1;
const FLAG_FILE_ROOT: u8 = 2;
const FLAG_MTIMES: u8 = 4;

/// The latest modification time a package may carry (Unix seconds, in
/// the year 36812): later values are refused, so every one converts to a
/// time the OS can set.
pub const MAX_MTIME: u64 = 1 << 40;

/// Modification times of the target's regular files (Unix seconds), as
/// the build input had them: the `i`-th file of the target in tree order
/// (base files carried over included) gets `times[index[i]]`. A build
/// shares few distinct times, so they are listed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mtimes {
    /// Distinct times, strictly increasing.
    pub times: Vec<u64>,
    /// One index into `times` per file of the target, in tree order.
    pub index: Vec<u32>,
}

impl Mtimes {
    /// The table for files with these times, in tree order.
    pub fn of(files: &[u64]) -> Mtimes {
        let mut times: Vec<u64> = files.to_vec();
        times.sort_unstable();
        times.dedup();
        let index = files
            .iter()
            .map(|t| times.binary_search(t).unwrap_or(0) as u32)
            .collect();
        Mtimes { times, index }
    }

    /// The time of the `i`-th file.
    pub fn get(&self, i: usize) -> Option<u64> {
        self.index
            .get(i)
            .and_then(|&k| self.times.get(k as usize))
            .copied()
    }
}

/// What the root of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// A directory tree.
    Dir,
    /// A single file: the tree holds exactly one file entry, whose path is
    /// the file's name (informational only).
    File,
}

/// A base file the package reads, and the identity it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path in the base tree.
    pub path: RelPath,
    /// Size in bytes.
    pub size: u64,
    /// First 8 bytes of its BLAKE3 hash (the base tree digest binds the rest).
    pub hash8: [u8; 8],
}

/// How a target file's contents are rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Same bytes as a base file (unchanged with a new mode, moved, or copied).
    Copy {
        /// Index into [`Header::sources`].
        source: u32,
    },
    /// Bytes stored in the data stream.
    Literal,
    /// bsdiff-family patch against a base file, from the ctrl, zrun, diff
    /// and extra streams.
    Bsdiff {
        /// Index into [`Header::sources`].
        source: u32,
    },
    /// Bytes from the ref stream: zstd with the reference files (the
    /// sources of all `ZstdRef` ops) as prefix.
    ZstdRef {
        /// Index into [`Header::sources`].
        source: u32,
    },
    /// bsdiff-family patch whose old bytes are first corrected for moved
    /// x86-64 code: branch targets are relocated through the patch's own
    /// equivalences (see [`crate::reloc`]).
    BsdiffX86 {
        /// Index into [`Header::sources`].
        source: u32,
    },
    /// bsdiff-family patch whose old bytes are first corrected for moved
    /// code and data of an executable: calls, jumps, RIP-relative
    /// operands, pointers and table offsets are predicted through the
    /// patch's own equivalences and the layout it carries (see
    /// [`crate::exe`]).
    BsdiffExe {
        /// Index into [`Header::sources`].
        source: u32,
    },
}

impl Op {
    /// The base file the op reads, if any.
    pub fn source(&self) -> Option<u32> {
        match *self {
            Op::Copy { source }
            | Op::Bsdiff { source }
            | Op::ZstdRef { source }
            | Op::BsdiffX86 { source }
            | Op::BsdiffExe { source } => Some(source),
            Op::Literal => None,
        }
    }

    /// Short name for messages and `inspect`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Copy { .. } => "copy",
            Op::Literal => "literal",
            Op::Bsdiff { .. } => "bsdiff",
            Op::ZstdRef { .. } => "zstd-ref",
            Op::BsdiffX86 { .. } => "bsdiff-x86",
            Op::BsdiffExe { .. } => "bsdiff-exe",
        }
    }
}

/// A regular file in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Permission bits (at most [`MODE_MASK`]).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Truncated BLAKE3 hash of the whole contents.
    pub hash: Hash8,
    /// How to rebuild it.
    pub op: Op,
    /// Truncated BLAKE3 hash of each block, when the file spans more than
    /// one block; empty otherwise (the file hash covers it).
    pub blocks: Vec<Hash8>,
}

/// What a target path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory (new, or with a new mode).
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File(FileEntry),
    /// A symbolic link.
    Symlink {
        /// Relative link target.
        target: String,
    },
}

impl Node {
    /// Short name of the kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Dir { .. } => "dir",
            Node::File(_) => "file",
            Node::Symlink { .. } => "symlink",
        }
    }
}

/// One target path that differs from the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it goes.
    pub path: RelPath,
    /// What it is.
    pub node: Node,
}

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Directory tree or single file.
    pub root: RootKind,
    /// Free-form platform name (e.g. `linux-x86_64`); may be empty.
    pub platform: String,
    /// Version of the base; empty for full packages.
    pub from_version: String,
    /// Version of the target.
    pub to_version: String,
    /// log2 of the block size for block hashes.
    pub block_log: u8,
    /// Identity of the base tree; `None` for a full package.
    pub base: Option<TreeId>,
    /// Identity of the target tree.
    pub target: TreeId,
    /// The payload streams, indexed by [`StreamId`].
    pub streams: [StreamInfo; STREAMS],
    /// Total payload bytes (all records).
    pub payload_len: u64,
    /// Base files the package reads.
    pub sources: Vec<Source>,
    /// Base paths absent from the target (a directory removes its subtree).
    pub removals: Vec<RelPath>,
    /// Target paths that are new or differ from the base, in tree order.
    pub entries: Vec<Entry>,
    /// Modification times of every file of the target, if the package
    /// carries them (header flag bit 2).
    pub mtimes: Option<Mtimes>,
}

/// Number of block hashes a file of `size` bytes carries.
pub fn block_count(size: u64, block_log: u8) -> u64 {
    let block = 1u64 << block_log;
    if size > block {
        size.div_ceil(block)
    } else {
        0
    }
}

impl Header {
    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        1u64 << self.block_log
    }

    /// Whether this is a full package (no base).
    pub fn is_full(&self) -> bool {
        self.base.is_none()
    }

    /// Encodes the header (uncompressed). The layout is columnar (all
    /// paths, then all sizes, then all hashes...) and paths are front-coded,
    /// which roughly halves the compressed size of small headers.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut flags = 0;
        if self.base.is_some() {
            flags |= FLAG_HAS_BASE;
        }
        if self.root == RootKind::File {
            flags |= FLAG_FILE_ROOT;
        }
        if self.mtimes.is_some() {
            flags |= FLAG_MTIMES;
        }
        out.push(flags);
        put_bytes(&mut out, self.platform.as_bytes());
        put_bytes(&mut out, self.from_version.as_bytes());
        put_bytes(&mut out, self.to_version.as_bytes());
        out.push(self.block_log);
        let put_tree = |out: &mut Vec<u8>, t: &TreeId| {
            out.extend_from_slice(&t.digest);
            put_varint(out, t.files);
            put_varint(out, t.bytes);
        };
        if let Some(b) = &self.base {
            put_tree(&mut out, b);
        }
        put_tree(&mut out, &self.target);
        for s in &self.streams {
            out.push(s.compression as u8);
            out.push(s.window_log);
            put_varint(&mut out, s.raw_len);
        }
        put_varint(&mut out, self.payload_len);

        put_varint(&mut out, self.sources.len() as u64);
        put_paths(&mut out, self.sources.iter().map(|s| &s.path));
        for s in &self.sources {
            put_varint(&mut out, s.size);
        }
        for s in &self.sources {
            out.extend_from_slice(&s.hash8);
        }

        put_varint(&mut out, self.removals.len() as u64);
        put_paths(&mut out, self.removals.iter());

        put_varint(&mut out, self.entries.len() as u64);
        put_paths(&mut out, self.entries.iter().map(|e| &e.path));
        for e in &self.entries {
            out.push(match e.node {
                Node::Dir { .. } => 0,
                Node::File(_) => 1,
                Node::Symlink { .. } => 2,
            });
        }
        for e in &self.entries {
            match &e.node {
                Node::Dir { mode } | Node::File(FileEntry { mode, .. }) => {
                    put_varint(&mut out, u64::from(*mode))
                }
                Node::Symlink { .. } => {}
            }
        }
        let files = || {
            self.entries.iter().filter_map(|e| {
                if let Node::File(f) = &e.node {
                    Some(f)
                } else {
                    None
                }
            })
        };
        for e in &self.entries {
            if let Node::Symlink { target } = &e.node {
                put_bytes(&mut out, target.as_bytes());
            }
        }
        for f in files() {
            out.push(match f.op {
                Op::Copy { .. } => 0,
                Op::Literal => 1,
                Op::Bsdiff { .. } => 2,
                Op::ZstdRef { .. } => 3,
                Op::BsdiffX86 { .. } => 4,
                Op::BsdiffExe { .. } => 5,
            });
        }
        for f in files() {
            if let Some(src) = f.op.source() {
                put_varint(&mut out, u64::from(src));
            }
        }
        // A copy's size and hash are its source's.
        for f in files().filter(|f| !matches!(f.op, Op::Copy { .. })) {
            put_varint(&mut out, f.size);
        }
        for f in files().filter(|f| !matches!(f.op, Op::Copy { .. })) {
            out.extend_from_slice(&f.hash);
            for b in &f.blocks {
                out.extend_from_slice(b);
            }
        }
        if let Some(m) = &self.mtimes {
            put_varint(&mut out, m.times.len() as u64);
            let mut prev = 0;
            for (i, &t) in m.times.iter().enumerate() {
                put_varint(&mut out, if i == 0 { t } else { t - prev });
                prev = t;
            }
            put_varint(&mut out, m.index.len() as u64);
            for &k in &m.index {
                put_varint(&mut out, u64::from(k));
            }
        }
        out
    }

    /// Decodes and validates an uncompressed header.
    pub fn decode(raw: &[u8], limits: &Limits) -> Result<Header, DecodeError> {
        let mut r = Reader::new(raw, Section::Header);
        let flags_at = r.offset();
        let flags = r.u8()?;
        if flags & !(FLAG_HAS_BASE | FLAG_FILE_ROOT | FLAG_MTIMES) != 0 {
            return Err(unknown("header flags", u64::from(flags), flags_at));
        }
        let root = if flags & FLAG_FILE_ROOT != 0 {
            RootKind::File
        } else {
            RootKind::Dir
        };
        let platform = r.string("platform", limits.max_string_len)?.to_owned();
        let from_version = r.string("from version", limits.max_string_len)?.to_owned();
        let to_version = r.string("to version", limits.max_string_len)?.to_owned();
        let bl_at = r.offset();
        let block_log = r.u8()?;
        if !(BLOCK_LOG_MIN..=BLOCK_LOG_MAX).contains(&block_log) {
            return Err(unknown("block size log", u64::from(block_log), bl_at));
        }
        let tree = |r: &mut Reader<'_>| -> Result<TreeId, DecodeError> {
            let digest = r.array::<32>()?;
            let files = r.varint_max("file count", limits.max_total_size)?;
            let bytes = r.varint_max("tree size", limits.max_total_size)?;
            Ok(TreeId {
                digest,
                files,
                bytes,
            })
        };
        let base = if flags & FLAG_HAS_BASE != 0 {
            Some(tree(&mut r)?)
        } else {
            None
        };
        let target = tree(&mut r)?;

        let mut streams = [StreamInfo::EMPTY; STREAMS];
        for s in streams.iter_mut() {
            let at = r.offset();
            let c = r.u8()?;
            let compression =
                Compression::from_u8(c).ok_or_else(|| unknown("compression", u64::from(c), at))?;
            let wl_at = r.offset();
            let window_log = r.u8()?;
            let ok = match compression {
                Compression::Stored => window_log == 0,
                _ => (WINDOW_LOG_MIN..=limits.max_window_log).contains(&window_log),
            };
            if !ok {
                return Err(DecodeError::LengthExceedsLimit {
                    what: "window log",
                    value: u64::from(window_log),
                    limit: u64::from(limits.max_window_log),
                    section: Section::Header,
                    offset: wl_at,
                });
            }
            let raw_len = r.varint_max("stream length", limits.max_total_size)?;
            *s = StreamInfo {
                compression,
                window_log,
                raw_len,
            };
        }
        let payload_len = r.varint()?;

        // Sources: path (>= 2 bytes), size (1), hash (8).
        let n = r.count("source count", limits.max_entries, 11)?;
        let paths = get_paths(&mut r, n, limits)?;
        check_order(&paths, "sources")?;
        let mut sizes = Vec::with_capacity(n);
        for _ in 0..n {
            sizes.push(r.varint_max("source size", limits.max_file_size)?);
        }
        let mut sources = Vec::with_capacity(n);
        for (path, size) in paths.into_iter().zip(sizes) {
            sources.push(Source {
                path,
                size,
                hash8: r.array::<8>()?,
            });
        }

        let n = r.count("removal count", limits.max_entries, 2)?;
        let removals = get_paths(&mut r, n, limits)?;
        check_order(&removals, "removals")?;
        for w in removals.windows(2) {
            if w[0].is_ancestor_of(&w[1]) {
                return Err(DecodeError::Inconsistent {
                    what: format!("removal {:?} lies inside removal {:?}", w[1], w[0]),
                });
            }
        }

        // Entries: path (2), kind (1), mode or target (1).
        let n = r.count("entry count", limits.max_entries, 4)?;
        let paths = get_paths(&mut r, n, limits)?;
        check_order(&paths, "entries")?;
        let mut folded: HashSet<String> = HashSet::with_capacity(n);
        for p in &paths {
            if !folded.insert(p.fold_key()) {
                let other = paths
                    .iter()
                    .find(|o| o.fold_key() == p.fold_key() && *o != p)
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                return Err(DecodeError::DuplicatePath {
                    path: p.to_string(),
                    other,
                });
            }
        }
        let mut kinds = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.offset();
            let k = r.u8()?;
            if k > 2 {
                return Err(unknown("entry kind", u64::from(k), at));
            }
            kinds.push(k);
        }
        for (i, w) in kinds.windows(2).enumerate() {
            if w[0] != 0 && paths[i].is_ancestor_of(&paths[i + 1]) {
                return Err(DecodeError::Inconsistent {
                    what: format!(
                        "entry {:?} lies inside non-directory {:?}",
                        paths[i + 1],
                        paths[i]
                    ),
                });
            }
        }
        let mut modes = Vec::with_capacity(n);
        for (p, &k) in paths.iter().zip(&kinds) {
            modes.push(if k == 2 { 0 } else { mode(&mut r, p)? });
        }
        let mut targets = Vec::new();
        for &k in &kinds {
            if k == 2 {
                targets.push(
                    r.string("symlink target", limits.max_string_len)?
                        .to_owned(),
                );
            }
        }
        let nfiles = kinds.iter().filter(|&&k| k == 1).count();
        let mut ops = Vec::with_capacity(nfiles);
        for _ in 0..nfiles {
            let at = r.offset();
            let o = r.u8()?;
            if o > 5 {
                return Err(unknown("operation", u64::from(o), at));
            }
            ops.push(o);
        }
        let mut op_list = Vec::with_capacity(nfiles);
        for &o in &ops {
            let mut src = || -> Result<u32, DecodeError> {
                let at = r.offset();
                let s = r.varint()?;
                if s >= sources.len() as u64 {
                    return Err(DecodeError::Inconsistent {
                        what: format!(
                            "operation reads source {s} at header byte {at}, but there are {} sources",
                            sources.len()
                        ),
                    });
                }
                Ok(s as u32)
            };
            op_list.push(match o {
                0 => Op::Copy { source: src()? },
                1 => Op::Literal,
                2 => Op::Bsdiff { source: src()? },
                3 => Op::ZstdRef { source: src()? },
                4 => Op::BsdiffX86 { source: src()? },
                _ => Op::BsdiffExe { source: src()? },
            });
        }
        let mut sizes = Vec::with_capacity(nfiles);
        let mut total: u64 = 0;
        for op in &op_list {
            let size = match op {
                Op::Copy { source } => sources[*source as usize].size,
                _ => r.varint_max("file size", limits.max_file_size)?,
            };
            total = total.saturating_add(size);
            if total > limits.max_total_size {
                return Err(DecodeError::LengthExceedsLimit {
                    what: "total target size",
                    value: total,
                    limit: limits.max_total_size,
                    section: Section::Header,
                    offset: r.offset(),
                });
            }
            sizes.push(size);
        }
        let mut file_entries = Vec::with_capacity(nfiles);
        let (mut data_bytes, mut ref_bytes) = (0u64, 0u64);
        let mut file_modes = kinds
            .iter()
            .zip(&modes)
            .filter(|(k, _)| **k == 1)
            .map(|(_, m)| *m);
        for (op, size) in op_list.into_iter().zip(sizes) {
            let mode = file_modes.next().unwrap_or(0);
            let (hash, blocks) = match op {
                Op::Copy { source } => (sources[source as usize].hash8, Vec::new()),
                _ => {
                    let hash = r.array::<8>()?;
                    let nb = block_count(size, block_log);
                    let at = r.offset();
                    if nb.checked_mul(8).is_none_or(|b| b > r.remaining() as u64) {
                        return Err(DecodeError::Truncated {
                            section: Section::Header,
                            offset: at,
                        });
                    }
                    let mut blocks = Vec::with_capacity(nb as usize);
                    for _ in 0..nb {
                        blocks.push(r.array::<8>()?);
                    }
                    (hash, blocks)
                }
            };
            match op {
                Op::Literal => data_bytes = data_bytes.saturating_add(size),
                Op::ZstdRef { .. } => ref_bytes = ref_bytes.saturating_add(size),
                _ => {}
            }
            file_entries.push(FileEntry {
                mode,
                size,
                hash,
                op,
                blocks,
            });
        }
        let mtimes = if flags & FLAG_MTIMES != 0 {
            Some(decode_mtimes(&mut r, limits)?)
        } else {
            None
        };
        r.finish()?;

        let mut files = file_entries.into_iter();
        let mut targets = targets.into_iter();
        let mut entries = Vec::with_capacity(n);
        for ((path, k), m) in paths.into_iter().zip(kinds).zip(modes) {
            let node = match k {
                0 => Node::Dir { mode: m },
                1 => Node::File(files.next().ok_or_else(|| DecodeError::Inconsistent {
                    what: "file count".into(),
                })?),
                _ => Node::Symlink {
                    target: targets.next().unwrap_or_default(),
                },
            };
            entries.push(Entry { path, node });
        }

        let h = Header {
            root,
            platform,
            from_version,
            to_version,
            block_log,
            base,
            target,
            streams,
            payload_len,
            sources,
            removals,
            entries,
            mtimes,
        };
        h.check_shape(data_bytes, ref_bytes, limits)?;
        Ok(h)
    }

    /// Indices of the sources of all `ZstdRef` ops, each once, in order of
    /// first use: their concatenation is the ref stream's prefix.
    pub fn ref_sources(&self) -> Vec<u32> {
        let mut seen = vec![false; self.sources.len()];
        let mut out = Vec::new();
        for e in &self.entries {
            if let Node::File(FileEntry {
                op: Op::ZstdRef { source },
                ..
            }) = &e.node
                && let Some(s) = seen.get_mut(*source as usize)
                && !*s
            {
                *s = true;
                out.push(*source);
            }
        }
        out
    }

    /// Cross-field rules that need the whole header.
    fn check_shape(
        &self,
        data_bytes: u64,
        ref_bytes: u64,
        limits: &Limits,
    ) -> Result<(), DecodeError> {
        let bad = |what: String| Err(DecodeError::Inconsistent { what });
        if self.base.is_none() {
            if !self.sources.is_empty() || !self.removals.is_empty() {
                return bad("a full package lists base sources or removals".into());
            }
            if let Some(e) = self
                .entries
                .iter()
                .find(|e| matches!(&e.node, Node::File(f) if f.op.source().is_some()))
            {
                return bad(format!("full package entry {:?} reads a base file", e.path));
            }
        }
        if self.root == RootKind::File {
            let ok = self.entries.len() == 1
                && matches!(self.entries[0].node, Node::File(_))
                && self.sources.len() <= 1
                && self.removals.is_empty();
            if !ok {
                return bad("a single-file package must hold exactly one file entry, at most one source and no removals".into());
            }
        }
        for (id, want) in [(StreamId::Data, data_bytes), (StreamId::Ref, ref_bytes)] {
            let got = self.streams[id.index()].raw_len;
            if got != want {
                return bad(format!(
                    "{} stream declares {got} bytes but its files total {want}",
                    id.name()
                ));
            }
        }
        let r = &self.streams[StreamId::Ref.index()];
        if r.raw_len > 0 && r.compression != Compression::Zstd {
            return bad("the ref stream must be zstd".into());
        }
        let prefix: u64 = self
            .ref_sources()
            .iter()
            .map(|&i| self.sources[i as usize].size)
            .sum();
        if prefix > limits.max_ref_prefix {
            return Err(DecodeError::LengthExceedsLimit {
                what: "reference prefix",
                value: prefix,
                limit: limits.max_ref_prefix,
                section: Section::Header,
                offset: 0,
            });
        }
        Ok(())
    }
}

/// Writes paths front-coded: for each, the number of bytes it shares with
/// the previous one, then the rest.
fn put_paths<'a>(out: &mut Vec<u8>, paths: impl Iterator<Item = &'a RelPath>) {
    let mut prev = "";
    for p in paths {
        let s = p.as_str();
        let mut k = s
            .bytes()
            .zip(prev.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        while !s.is_char_boundary(k) {
            k -= 1;
        }
        put_varint(out, k as u64);
        put_bytes(out, &s.as_bytes()[k..]);
        prev = s;
    }
}

/// Reads `n` front-coded paths.
fn get_paths(r: &mut Reader<'_>, n: usize, limits: &Limits) -> Result<Vec<RelPath>, DecodeError> {
    let mut out: Vec<RelPath> = Vec::with_capacity(n);
    let mut buf = String::new();
    for _ in 0..n {
        let at = r.offset();
        let shared = r.varint_max("shared path prefix", limits.max_path_len as u64)? as usize;
        let rest = r.string("path", limits.max_path_len as u64)?;
        if shared > buf.len() || !buf.is_char_boundary(shared) {
            return Err(DecodeError::Inconsistent {
                what: format!(
                    "path at header byte {at} shares {shared} bytes with a {}-byte path",
                    buf.len()
                ),
            });
        }
        buf.truncate(shared);
        buf.push_str(rest);
        out.push(RelPath::parse(
            &buf,
            limits.max_path_len,
            limits.max_path_depth,
        )?);
    }
    Ok(out)
}

/// Paths of a list must be strictly increasing in tree order.
fn check_order(paths: &[RelPath], what: &'static str) -> Result<(), DecodeError> {
    for w in paths.windows(2) {
        if w[0] == w[1] {
            return Err(DecodeError::DuplicatePath {
                path: w[1].to_string(),
                other: w[0].to_string(),
            });
        }
        if w[0] > w[1] {
            return Err(DecodeError::Unsorted {
                what,
                path: w[1].to_string(),
            });
        }
    }
    Ok(())
}

fn unknown(what: &'static str, value: u64, offset: u64) -> DecodeError {
    DecodeError::UnknownValue {
        what,
        value,
        section: Section::Header,
        offset,
    }
}

fn mode(r: &mut Reader<'_>, p: &RelPath) -> Result<u32, DecodeError> {
    let m = r.varint()?;
    if m > u64::from(MODE_MASK) {
        return Err(DecodeError::HostileMode {
            path: p.to_string(),
            mode: m,
        });
    }
    Ok(m as u32)
}

/// Reads the mtimes section (see [`Mtimes`]): at least one time, strictly
/// increasing, none above [`MAX_MTIME`]; every index names a time.
fn decode_mtimes(r: &mut Reader<'_>, limits: &Limits) -> Result<Mtimes, DecodeError> {
    let n = r.count("mtime count", limits.max_entries, 1)?;
    if n == 0 {
        return Err(DecodeError::Inconsistent {
            what: "an mtimes section with no times".into(),
        });
    }
    let mut times = Vec::with_capacity(n);
    let mut prev = 0u64;
    for i in 0..n {
        let d = r.varint_max("mtime", MAX_MTIME)?;
        if i > 0 && d == 0 {
            return Err(DecodeError::Inconsistent {
                what: "mtimes are not strictly increasing".into(),
            });
        }
        let t = prev.saturating_add(d);
        if t > MAX_MTIME {
            return Err(DecodeError::Inconsistent {
                what: format!("an mtime after {MAX_MTIME}"),
            });
        }
        times.push(t);
        prev = t;
    }
    let files = r.count("mtime file count", limits.max_entries, 1)?;
    let mut index = Vec::with_capacity(files);
    for _ in 0..files {
        index.push(r.varint_max("mtime index", n as u64 - 1)? as u32);
    }
    Ok(Mtimes { times, index })
}
