//! A filesystem tree as deltapack sees it: every directory, regular file
//! (mode, size, BLAKE3) and symlink under a root, in canonical order, and the
//! [`TreeId`] digest that names it.
//!
//! Symlinks are never followed. Anything else (sockets, devices, FIFOs) is
//! an error, as is a name that is not a portable [`RelPath`].
//!
//! ```no_run
//! let tree = deltapack_tree::Tree::scan(std::path::Path::new("dist/linux"))?;
//! println!("{} files, digest {}", tree.id().files, deltapack_tree::hex(&tree.id().digest));
//! # Ok::<(), deltapack_tree::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};

use deltapack_format::{DecodeError, DigestNode, RelPath, RootKind, TreeDigester, TreeId};
use rayon::prelude::*;

/// Errors while reading a tree from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A directory entry is neither a directory, a regular file nor a symlink.
    #[error("{path}: unsupported file type (only directories, regular files and symlinks)")]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// A name is not valid UTF-8.
    #[error("{path}: file name is not valid UTF-8")]
    NonUtf8Name {
        /// The offending path.
        path: PathBuf,
    },
    /// A name is not a portable relative path.
    #[error("{path}: {reason}")]
    UnsafeName {
        /// The offending path.
        path: PathBuf,
        /// The rule it breaks.
        reason: DecodeError,
    },
    /// Two names collide on case-insensitive or normalising file systems.
    #[error("{a:?} and {b:?} differ only in case or Unicode normalisation")]
    FoldCollision {
        /// First path.
        a: String,
        /// Second path.
        b: String,
    },
}

/// What a path in a tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// Size in bytes.
        size: u64,
        /// BLAKE3 of the contents.
        hash: [u8; 32],
    },
    /// A symbolic link.
    Symlink {
        /// The link target as stored.
        target: String,
    },
}

/// One path in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// Path relative to the root. For a single-file root, the file's name.
    pub path: RelPath,
    /// What it is.
    pub kind: NodeKind,
    /// A regular file's modification time (Unix seconds), when the file
    /// system gives one from after 1970; not part of the tree's identity.
    pub mtime: Option<u64>,
}

/// A file's modification time in Unix seconds, if it has one after 1970.
fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A scanned tree, nodes in canonical order.
#[derive(Debug, Clone)]
pub struct Tree {
    /// Where it was read from.
    pub root_path: PathBuf,
    /// Directory or single file.
    pub root: RootKind,
    /// All nodes below the root, in [`RelPath::tree_cmp`] order.
    pub nodes: Vec<TreeNode>,
}

/// Permission bits kept from the file system.
#[cfg(unix)]
const MODE_BITS: u32 = deltapack_format::MODE_MASK;

impl Tree {
    /// Scans and hashes everything under `root` (a directory or a file).
    pub fn scan(root: &Path) -> Result<Tree, Error> {
        let meta = fs_err::symlink_metadata(root)?;
        if meta.is_file() {
            let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            let path = RelPath::parse(name, 4096, 64)
                .or_else(|_| RelPath::parse("file", 4096, 64))
                .map_err(|reason| Error::UnsafeName {
                    path: root.to_owned(),
                    reason,
                })?;
            let (size, hash) = hash_file(root)?;
            let kind = NodeKind::File {
                mode: mode_of(&meta),
                size,
                hash,
            };
            return Ok(Tree {
                root_path: root.to_owned(),
                root: RootKind::File,
                nodes: vec![TreeNode {
                    path,
                    kind,
                    mtime: mtime_of(&meta),
                }],
            });
        }
        if !meta.is_dir() {
            return Err(Error::UnsupportedFileType {
                path: root.to_owned(),
            });
        }
        let mut listed: Vec<(RelPath, Listed)> = Vec::new();
        walk(root, None, None, &mut listed)?;
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let nodes = listed
            .into_par_iter()
            .map(|(path, l)| {
                let (kind, mtime) = match l {
                    Listed::Dir(mode) => (NodeKind::Dir { mode }, None),
                    Listed::Symlink(target) => (NodeKind::Symlink { target }, None),
                    Listed::File(mode, mtime) => {
                        let (size, hash) = hash_file(&root.join(path.as_str()))?;
                        (NodeKind::File { mode, size, hash }, mtime)
                    }
                };
                Ok(TreeNode { path, kind, mtime })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Tree {
            root_path: root.to_owned(),
            root: RootKind::Dir,
            nodes,
        })
    }

    /// Scans only the paths in `keep` (as [`RelPath`] strings) under the
    /// directory `root`: anything else there (files an app or its runtime
    /// added, say `__pycache__/`) is neither hashed nor listed, whatever it
    /// is. A path in `keep` that is missing is simply absent from the tree,
    /// so the tree's identity then differs from the one recorded.
    pub fn scan_only(
        root: &Path,
        keep: &std::collections::BTreeSet<String>,
    ) -> Result<Tree, Error> {
        let meta = fs_err::symlink_metadata(root)?;
        if !meta.is_dir() {
            return Tree::scan(root);
        }
        let mut listed: Vec<(RelPath, Listed)> = Vec::new();
        walk(root, None, Some(keep), &mut listed)?;
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let nodes = listed
            .into_par_iter()
            .map(|(path, l)| {
                let (kind, mtime) = match l {
                    Listed::Dir(mode) => (NodeKind::Dir { mode }, None),
                    Listed::Symlink(target) => (NodeKind::Symlink { target }, None),
                    Listed::File(mode, mtime) => {
                        let (size, hash) = hash_file(&root.join(path.as_str()))?;
                        (NodeKind::File { mode, size, hash }, mtime)
                    }
                };
                Ok(TreeNode { path, kind, mtime })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Tree {
            root_path: root.to_owned(),
            root: RootKind::Dir,
            nodes,
        })
    }

    /// The tree's identity.
    pub fn id(&self) -> TreeId {
        let mut d = TreeDigester::new();
        for n in &self.nodes {
            let path = if self.root == RootKind::File {
                ""
            } else {
                n.path.as_str()
            };
            d.add(path, digest_node(&n.kind));
        }
        d.finish()
    }

    /// Fails if two paths collide on a case-insensitive or normalising
    /// file system.
    pub fn check_portable(&self) -> Result<(), Error> {
        let mut seen = std::collections::HashMap::with_capacity(self.nodes.len());
        for n in &self.nodes {
            if let Some(prev) = seen.insert(n.path.fold_key(), n.path.as_str()) {
                return Err(Error::FoldCollision {
                    a: prev.to_owned(),
                    b: n.path.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The file-system path of a node.
    pub fn fs_path(&self, path: &RelPath) -> PathBuf {
        match self.root {
            RootKind::File => self.root_path.clone(),
            RootKind::Dir => self.root_path.join(path.as_str()),
        }
    }
}

/// The digest view of a node.
pub fn digest_node(kind: &NodeKind) -> DigestNode<'_> {
    match kind {
        NodeKind::Dir { .. } => DigestNode::Dir,
        NodeKind::File { mode, size, hash } => DigestNode::File {
            executable: mode & 0o111 != 0,
            size: *size,
            hash,
        },
        NodeKind::Symlink { target } => DigestNode::Symlink { target },
    }
}

enum Listed {
    Dir(u32),
    File(u32, Option<u64>),
    Symlink(String),
}

fn walk(
    root: &Path,
    rel: Option<&RelPath>,
    keep: Option<&std::collections::BTreeSet<String>>,
    out: &mut Vec<(RelPath, Listed)>,
) -> Result<(), Error> {
    let dir = match rel {
        Some(r) => root.join(r.as_str()),
        None => root.to_owned(),
    };
    for entry in fs_err::read_dir(&dir)? {
        let entry = entry?;
        let fs_path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            if keep.is_some() {
                continue;
            }
            return Err(Error::NonUtf8Name {
                path: fs_path.clone(),
            });
        };
        let joined = match rel {
            Some(r) => format!("{r}/{name}"),
            None => name.to_owned(),
        };
        if keep.is_some_and(|k| !k.contains(&joined)) {
            continue;
        }
        let path = RelPath::parse(&joined, 4096, 64).map_err(|reason| Error::UnsafeName {
            path: fs_path.clone(),
            reason,
        })?;
        let meta = fs_err::symlink_metadata(&fs_path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push((path.clone(), Listed::Dir(mode_of(&meta))));
            walk(root, Some(&path), keep, out)?;
        } else if ft.is_file() {
            out.push((path, Listed::File(mode_of(&meta), mtime_of(&meta))));
        } else if ft.is_symlink() {
            let target = fs_err::read_link(&fs_path)?;
            let target = target
                .to_str()
                .ok_or_else(|| Error::NonUtf8Name {
                    path: fs_path.clone(),
                })?
                .to_owned();
            out.push((path, Listed::Symlink(target)));
        } else {
            return Err(Error::UnsupportedFileType { path: fs_path });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & MODE_BITS
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Size and BLAKE3 of a file, read through a bounded buffer.
pub fn hash_file(path: &Path) -> Result<(u64, [u8; 32]), Error> {
    let mut f = fs_err::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, *h.finalize().as_bytes()))
}

/// Whether the symlink at `path` with `target` stays inside the tree when
/// resolved, following the tree's other symlinks (`link_target(p)` gives the
/// target of the symlink at `p`, if there is one). Absolute targets and
/// backslashes never do. Resolution stops after 40 links, where operating
/// systems stop too (a loop inside the tree is harmless).
pub fn symlink_stays_inside(
    path: &str,
    target: &str,
    link_target: &dyn Fn(&str) -> Option<String>,
) -> bool {
    if target.is_empty()
        || target.starts_with('/')
        || target.contains('\\')
        || target.contains('\0')
    {
        return false;
    }
    let mut stack: Vec<String> = path.split('/').map(str::to_owned).collect();
    stack.pop();
    let mut todo: Vec<String> = target.split('/').rev().map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            name => {
                stack.push(name.to_owned());
                if let Some(t) = link_target(&stack.join("/")) {
                    hops += 1;
                    if hops > 40 {
                        return true;
                    }
                    if t.starts_with('/') || t.contains('\\') {
                        return false;
                    }
                    stack.pop();
                    todo.extend(t.split('/').rev().map(str::to_owned));
                }
            }
        }
    }
    true
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_orders_and_hashes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("a/b")).unwrap();
        fs_err::create_dir_all(r.join("empty")).unwrap();
        fs_err::write(r.join("a/b/f"), b"hello").unwrap();
        fs_err::write(r.join("a.txt"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a/b/f", r.join("link")).unwrap();
        let tree = Tree::scan(r).unwrap();
        let paths: Vec<&str> = tree.nodes.iter().map(|n| n.path.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(paths, ["a", "a/b", "a/b/f", "a.txt", "empty", "link"]);
        let f = &tree.nodes[2];
        assert_eq!(
            f.kind,
            NodeKind::File {
                mode: f_mode(&f.kind),
                size: 5,
                hash: *blake3::hash(b"hello").as_bytes()
            }
        );
        let id = tree.id();
        assert_eq!(id.files, 2);
        assert_eq!(id.bytes, 5);
        // Touching content changes the digest.
        fs_err::write(r.join("a.txt"), b"x").unwrap();
        assert_ne!(Tree::scan(r).unwrap().id(), id);
    }

    fn f_mode(k: &NodeKind) -> u32 {
        match k {
            NodeKind::File { mode, .. } => *mode,
            _ => 0,
        }
    }

    #[test]
    fn symlink_resolution() {
        let links: std::collections::HashMap<&str, &str> = [
            ("d/up", ".."),
            ("d/esc", "up/.."),
            ("loop", "loop/x"),
            ("top", "/etc"),
        ]
        .into_iter()
        .collect();
        let lt = |p: &str| links.get(p).map(|s| s.to_string());
        assert!(symlink_stays_inside("a/link", "../b", &lt));
        assert!(!symlink_stays_inside("a/link", "../../b", &lt));
        assert!(!symlink_stays_inside("link", "/etc", &lt));
        assert!(symlink_stays_inside("d/up", "..", &lt));
        assert!(
            !symlink_stays_inside("d/esc", "up/..", &lt),
            "escape through another link"
        );
        assert!(
            !symlink_stays_inside("x", "top/passwd", &lt),
            "through an absolute link"
        );
        assert!(
            symlink_stays_inside("loop", "loop/x", &lt),
            "a loop never leaves"
        );
    }

    #[test]
    fn single_file_digest_ignores_the_name() {
        let t = tempfile::tempdir().unwrap();
        fs_err::write(t.path().join("one"), b"same").unwrap();
        fs_err::write(t.path().join("two"), b"same").unwrap();
        let a = Tree::scan(&t.path().join("one")).unwrap();
        let b = Tree::scan(&t.path().join("two")).unwrap();
        assert_eq!(a.root, RootKind::File);
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn unsafe_names_are_errors() {
        let t = tempfile::tempdir().unwrap();
        fs_err::write(t.path().join("aux.c"), b"").unwrap();
        assert!(matches!(
            Tree::scan(t.path()),
            Err(Error::UnsafeName { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn fifo_is_unsupported() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            assert!(matches!(
                Tree::scan(t.path()),
                Err(Error::UnsupportedFileType { .. })
            ));
        }
    }
}
