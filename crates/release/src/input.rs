//! A platform's build output as given on the command line: a directory, a
//! single file, or an archive that is unpacked into a temporary directory.

use std::path::{Path, PathBuf};

use deltapack_format::RootKind;
use deltapack_manifest::TreeRef;
use deltapack_tree::Tree;

use crate::Error;
use crate::archive::{self, Kind};

/// A build output ready to diff.
#[derive(Debug)]
pub(crate) struct Input {
    /// The tree (or single file) on disk.
    pub(crate) root: PathBuf,
    /// Its identity.
    pub(crate) tree: TreeRef,
    _unpacked: Option<tempfile::TempDir>,
}

impl Input {
    /// Opens `path`; archives are unpacked into a temporary directory.
    pub(crate) fn open(path: &Path) -> Result<Input, Error> {
        let meta = fs_err::metadata(path)?;
        let (root, unpacked) = match Kind::of(path) {
            Some(kind) if meta.is_file() => {
                let dir = tempfile::Builder::new()
                    .prefix("deltapack-input-")
                    .tempdir()?;
                archive::unpack(path, kind, dir.path())?;
                (dir.path().to_owned(), Some(dir))
            }
            _ => (path.to_owned(), None),
        };
        let tree = Tree::scan(&root)?;
        if tree.root == RootKind::Dir {
            tree.check_portable()?;
        }
        Ok(Input {
            root,
            tree: tree_ref(tree.id()),
            _unpacked: unpacked,
        })
    }
}

/// The manifest's form of a tree identity.
pub(crate) fn tree_ref(id: deltapack_format::TreeId) -> TreeRef {
    TreeRef {
        digest: deltapack_tree::hex(&id.digest),
        files: id.files,
        bytes: id.bytes,
    }
}
