//! Verifying the base tree against the package before anything is written.
//!
//! [`VerifiedBase`] can only be built by [`verify_base`]: holding one means
//! every file the package reads has the size and hash it was diffed
//! against, and the whole tree matches the package's base digest.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use deltapack_format::{Header, RelPath, RootKind};
use deltapack_tree::{NodeKind, Tree, TreeNode, hex};

use crate::Error;

/// A base tree that matches a package.
#[derive(Debug)]
pub struct VerifiedBase {
    tree: Tree,
    index: HashMap<RelPath, usize>,
}

impl VerifiedBase {
    /// The scanned tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The node at `path` (for a single-file base: the file, whatever its
    /// name).
    pub(crate) fn node(&self, path: &RelPath) -> Option<&TreeNode> {
        match self.tree.root {
            RootKind::File => self.tree.nodes.first(),
            RootKind::Dir => self.index.get(path).map(|&i| &self.tree.nodes[i]),
        }
    }

    /// Where a base node lives on disk.
    pub(crate) fn fs_path(&self, path: &RelPath) -> PathBuf {
        self.tree.fs_path(path)
    }
}

fn kind_name(root: RootKind) -> &'static str {
    match root {
        RootKind::File => "file",
        RootKind::Dir => "directory",
    }
}

/// Scans `base` and checks it against the package header.
pub fn verify_base(header: &Header, base: &Path) -> Result<VerifiedBase, Error> {
    verify_base_of(header, base, None)
}

/// [`verify_base`] of only the paths in `only`, when given (see
/// [`crate::Applier::base_paths`]).
pub(crate) fn verify_base_of(
    header: &Header,
    base: &Path,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<VerifiedBase, Error> {
    let Some(expected) = header.base else {
        return Err(Error::Conflict {
            what: "a full package has no base to verify".into(),
        });
    };
    let tree = match only {
        Some(paths) => Tree::scan_only(base, paths)?,
        None => Tree::scan(base)?,
    };
    if tree.root != header.root {
        return Err(Error::BaseKind {
            path: base.to_owned(),
            expected: kind_name(header.root),
            found: kind_name(tree.root),
        });
    }
    let index: HashMap<RelPath, usize> = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.clone(), i))
        .collect();
    let vb = VerifiedBase { tree, index };
    for s in &header.sources {
        let mismatch = |reason: String| Error::BaseMismatch {
            path: s.path.to_string(),
            reason,
        };
        match vb.node(&s.path).map(|n| &n.kind) {
            None => return Err(mismatch("missing".into())),
            Some(NodeKind::File { size, hash, .. }) => {
                if *size != s.size {
                    return Err(mismatch(format!(
                        "size is {size} bytes, expected {}",
                        s.size
                    )));
                }
                if hash[..8] != s.hash8 {
                    return Err(mismatch(format!(
                        "contents differ (hash {}…, expected {}…)",
                        hex(&hash[..8]),
                        hex(&s.hash8)
                    )));
                }
            }
            Some(_) => return Err(mismatch("not a regular file".into())),
        }
    }
    let found = vb.tree.id();
    if found != expected {
        return Err(Error::BaseTreeMismatch {
            expected: hex(&expected.digest),
            found: hex(&found.digest),
            expected_files: expected.files,
            found_files: found.files,
            expected_bytes: expected.bytes,
            found_bytes: found.bytes,
        });
    }
    Ok(vb)
}

/// Random-access reads of a base file through a small cache, so that the
/// applier's memory does not grow with the file.
pub(crate) struct BaseFile {
    file: fs_err::File,
    size: u64,
    cache: Vec<u8>,
    cache_start: u64,
    cache_len: usize,
}

const CACHE: usize = 64 * 1024;

impl BaseFile {
    pub(crate) fn open(path: &Path, size: u64) -> Result<BaseFile, Error> {
        Ok(BaseFile {
            file: fs_err::File::open(path)?,
            size,
            cache: vec![0u8; CACHE],
            cache_start: 0,
            cache_len: 0,
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Up to `max` bytes at `pos` (at least one; `pos` must be < size).
    pub(crate) fn at(&mut self, pos: u64, max: usize) -> Result<&[u8], Error> {
        let in_cache = pos >= self.cache_start && pos < self.cache_start + self.cache_len as u64;
        if !in_cache {
            // Read what is asked for (at least a page): patches jump around
            // the base, and reading a whole cache for a few bytes each time
            // would copy the file many times over.
            let len = max.clamp(4096, CACHE);
            self.cache_start = pos;
            self.cache_len = read_at(&mut self.file, pos, &mut self.cache[..len])?;
            if self.cache_len == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: base file shrank during apply",
                        self.file.path().display()
                    ),
                )
                .into());
            }
        }
        let off = (pos - self.cache_start) as usize;
        let n = max.min(self.cache_len - off);
        Ok(&self.cache[off..off + n])
    }

    /// Reads the whole file (for the patch-from codec).
    pub(crate) fn read_all(&mut self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::with_capacity(self.size as usize);
        (&mut self.file).take(self.size).read_to_end(&mut v)?;
        Ok(v)
    }
}

#[cfg(unix)]
fn read_at(f: &mut fs_err::File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    f.file().read_at(buf, pos)
}

#[cfg(windows)]
fn read_at(f: &mut fs_err::File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::windows::fs::FileExt;
    f.file().seek_read(buf, pos)
}
