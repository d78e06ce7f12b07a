//! The updater's own files, in its state directory: `<root>/.deltapack/`
//! for a versions install, `--state-dir` (by default the platform's
//! per-app data directory) for an executable or a bundle.
//!
//! ```text
//! <state>/state.json          install id, last sequence, time floor, refusals, current
//! <state>/state.backup.json   the same, written after it
//! <state>/history.jsonl       append-only update history
//! <state>/manifest.json       the last manifest accepted (to install what was downloaded, offline)
//! <state>/journal.json        only while a switch is under way
//! <state>/downloads/          packages, named by their hash
//! <state>/tmp/                chain intermediates, trees being deleted
//! <state>/trees/<v>.json      version v's tree digest and paths as released (its base for the next delta)
//! <state>/kept/<v>            an executable's previous versions
//! <state>/lock                held while an updater changes the install
//! <state>/downloads.lock      held while packages are downloaded
//! ```
//!
//! Every path is reached through [`deltapack_fs::Root`]: nothing in it is
//! opened through a link.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Version;

use crate::Error;

/// Chain intermediates and trees being deleted.
pub(crate) const SCRATCH: &str = "tmp";
/// Previous versions of an executable.
pub(crate) const KEPT: &str = "kept";
const TREES: &str = "trees";
/// Bound on a tree's path list (a million paths of 64 bytes).
const MAX_PATHS: u64 = 64 << 20;

/// What the client writes here: a link at any of these is refused before
/// an operation starts (the writes themselves refuse links too; this makes
/// the refusal come before the switch, not after it).
const WRITTEN: [&str; 11] = [
    "manifest.json",
    "downloads.lock",
    "history.jsonl",
    "state.json",
    "state.backup.json",
    "journal.json",
    "downloads",
    SCRATCH,
    TREES,
    KEPT,
    "lock",
];

/// The state directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) root: Root,
}

impl Store {
    pub(crate) fn new(path: PathBuf) -> Store {
        Store {
            root: Root::new(path),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.root.path()
    }

    /// The checked scratch directory, created if missing.
    pub(crate) fn scratch_dir(&self) -> Result<PathBuf, Error> {
        Ok(self.root.dir(SCRATCH)?)
    }

    /// Refuses to go on when a link was planted where the client writes.
    pub(crate) fn refuse_links(&self) -> Result<(), Error> {
        for rel in WRITTEN {
            if self.root.kind(rel)? == Some(Kind::Link) {
                return Err(deltapack_fs::Error::Link {
                    path: self.root.join(rel),
                }
                .into());
            }
        }
        Ok(())
    }

    fn tree_rel(v: &Version) -> PathBuf {
        Path::new(TREES).join(format!("{v}.json"))
    }

    /// Records version `v` as it was built: its tree digest and (for a
    /// directory tree) its paths.
    pub(crate) fn write_tree(&self, v: &Version, rec: &TreeRecord) -> Result<(), Error> {
        let json = serde_json::to_vec(rec).map_err(|e| Error::State {
            path: self.root.join(Self::tree_rel(v)),
            reason: e.to_string(),
        })?;
        Ok(self.root.write_atomic(Self::tree_rel(v), &json)?)
    }

    /// Version `v` as it was built, if it was recorded (installs by older
    /// clients were not) and reads back intact. An unreadable record only
    /// costs a delta: the whole tree is the base then.
    pub(crate) fn read_tree(&self, v: &Version) -> Result<Option<TreeRecord>, Error> {
        let bytes = match self.root.read(Self::tree_rel(v), MAX_PATHS) {
            Ok(Some(b)) => b,
            Ok(None) | Err(deltapack_fs::Error::TooLarge { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// The release paths of version `v` (none for a single file or an
    /// unrecorded version).
    pub(crate) fn read_paths(&self, v: &Version) -> Result<Option<BTreeSet<String>>, Error> {
        Ok(self
            .read_tree(v)?
            .filter(|t| !t.paths.is_empty())
            .map(|t| t.paths.into_iter().collect()))
    }

    /// Forgets version `v`'s record.
    pub(crate) fn remove_tree(&self, v: &Version) -> Result<(), Error> {
        self.root.remove_file(Self::tree_rel(v))?;
        Ok(())
    }
}

/// A version's tree as it was built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TreeRecord {
    /// The tree digest (hex), as in the manifest.
    pub(crate) digest: String,
    /// Every path of a directory tree (empty for a single file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) paths: Vec<String>,
}
