//! Tree digests: one BLAKE3 hash that names a whole tree (every path, kind,
//! executable bit, size, content hash and symlink target).
//!
//! A delta package binds its base with a single digest instead of listing
//! every unchanged file, and names its target the same way.

use crate::reader::put_varint;

/// The BLAKE3 key-derivation context for tree digests.
const CONTEXT: &str = "deltapack 2026-11 tree digest v1";

/// Identity of a tree: its digest, number of files and total file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeId {
    /// The tree digest.
    pub digest: [u8; 32],
    /// Number of regular files.
    pub files: u64,
    /// Sum of the sizes of the regular files.
    pub bytes: u64,
}

/// What the digest records about one node.
#[derive(Debug, Clone, Copy)]
pub enum DigestNode<'a> {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Whether any execute bit is set.
        executable: bool,
        /// Size in bytes.
        size: u64,
        /// Full BLAKE3 hash of the contents.
        hash: &'a [u8; 32],
    },
    /// A symbolic link.
    Symlink {
        /// The link target, as stored.
        target: &'a str,
    },
}

/// Builds a [`TreeId`] from nodes fed in canonical tree order
/// ([`RelPath::tree_cmp`](crate::RelPath::tree_cmp)).
///
/// A single-file tree is digested as one file node with the empty path, so
/// that its digest depends on the contents and not on the file name.
#[derive(Debug, Clone)]
pub struct TreeDigester {
    hasher: blake3::Hasher,
    files: u64,
    bytes: u64,
    record: Vec<u8>,
}

impl Default for TreeDigester {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeDigester {
    /// An empty digester.
    pub fn new() -> Self {
        TreeDigester {
            hasher: blake3::Hasher::new_derive_key(CONTEXT),
            files: 0,
            bytes: 0,
            record: Vec::new(),
        }
    }

    /// Adds one node. The root directory itself is not added.
    pub fn add(&mut self, path: &str, node: DigestNode<'_>) {
        let r = &mut self.record;
        r.clear();
        put_varint(r, path.len() as u64);
        r.extend_from_slice(path.as_bytes());
        match node {
            DigestNode::Dir => r.push(0),
            DigestNode::File {
                executable,
                size,
                hash,
            } => {
                r.push(1);
                r.push(u8::from(executable));
                r.extend_from_slice(&size.to_le_bytes());
                r.extend_from_slice(hash);
                self.files += 1;
                self.bytes = self.bytes.saturating_add(size);
            }
            DigestNode::Symlink { target } => {
                r.push(2);
                put_varint(r, target.len() as u64);
                r.extend_from_slice(target.as_bytes());
            }
        }
        self.hasher.update(r);
    }

    /// The finished identity.
    pub fn finish(&self) -> TreeId {
        let mut h = self.hasher.clone();
        h.update(&self.files.to_le_bytes());
        TreeId {
            digest: *h.finalize().as_bytes(),
            files: self.files,
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_every_field() {
        let h = [7u8; 32];
        let base = |exec: bool, size: u64, path: &str| {
            let mut d = TreeDigester::new();
            d.add("dir", DigestNode::Dir);
            d.add(
                path,
                DigestNode::File {
                    executable: exec,
                    size,
                    hash: &h,
                },
            );
            d.finish().digest
        };
        let a = base(false, 3, "dir/f");
        assert_ne!(a, base(true, 3, "dir/f"));
        assert_ne!(a, base(false, 4, "dir/f"));
        assert_ne!(a, base(false, 3, "dir/g"));
        assert_eq!(a, base(false, 3, "dir/f"));
        // Path boundaries are unambiguous.
        let mut d1 = TreeDigester::new();
        d1.add("ab", DigestNode::Symlink { target: "c" });
        let mut d2 = TreeDigester::new();
        d2.add("a", DigestNode::Symlink { target: "bc" });
        assert_ne!(d1.finish(), d2.finish());
    }
}
