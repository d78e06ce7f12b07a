//! The install root: versions side by side and an atomically switched
//! `current` pointer.
//!
//! ```text
//! <root>/current -> versions/<version>     relative symlink, the only switch
//! <root>/versions/<version>/               one complete tree per version
//! <root>/.deltapack/state.json             install id, last manifest sequence, time floor, …
//! <root>/.deltapack/state.backup.json      the same, a second copy
//! <root>/.deltapack/history.jsonl          append-only update history
//! <root>/.deltapack/downloads/<blake3>.dpk packages, named by their hash
//! <root>/.deltapack/lock                   held while an updater runs
//! ```
//!
//! A version directory appears only by the applier's final rename (the tree
//! is complete and verified before it has its name), and `current` changes
//! only by renaming a new symlink over it, then syncing the directory: after
//! a crash at any point, `current` names a whole old or a whole new version.
//! The symlink is the truth about what is installed; the state file only
//! remembers what cannot be read from disk.
//!
//! Every path below the root is reached through [`deltapack_fs::Root`], so
//! a link planted in place of `versions/`, `.deltapack/` or any file the
//! client writes is an error naming it, and nothing outside is touched. A
//! version directory that is a link is not a version.
//!
//! Windows (not implemented yet): the same versioned directories, with a
//! small launcher that reads a `current` file replaced by `MoveFileEx`
//! (`MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH`), and old versions
//! renamed rather than deleted while their files are in use.

use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Version;

use crate::Error;

/// The install's metadata directory.
pub(crate) const META: &str = ".deltapack";
const VERSIONS: &str = "versions";
const CURRENT: &str = "current";
/// Chain intermediates and trees being deleted.
pub(crate) const SCRATCH: &str = ".deltapack/tmp";

/// What the client writes below the root: a link at any of these is
/// refused before an operation starts (the writes themselves refuse links
/// too; this makes the refusal come before the switch, not after it).
const WRITTEN: [&str; 7] = [
    ".deltapack/history.jsonl",
    ".deltapack/state.json",
    ".deltapack/state.backup.json",
    ".deltapack/journal.json",
    ".deltapack/downloads",
    ".deltapack/tmp",
    "versions",
];

/// Paths of an install root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: Root,
}

fn version_rel(v: &Version) -> PathBuf {
    Path::new(VERSIONS).join(v.to_string())
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Layout {
        Layout {
            root: Root::new(root),
        }
    }

    /// The install root's path.
    pub(crate) fn path(&self) -> &Path {
        self.root.path()
    }

    /// Where version `v` is (or would be) installed.
    pub(crate) fn version_dir(&self, v: &Version) -> PathBuf {
        self.root.join(version_rel(v))
    }

    /// The checked `versions/` directory, created if missing: the parent of
    /// every new version (the applier stages beside its output).
    pub(crate) fn versions_dir(&self) -> Result<PathBuf, Error> {
        Ok(self.root.dir(VERSIONS)?)
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

    /// Creates the directories an install needs.
    pub(crate) fn create(&self) -> Result<(), Error> {
        self.root.ensure()?;
        self.root.dir(VERSIONS)?;
        self.root.dir(crate::downloads::DIR)?;
        Ok(())
    }

    /// Whether version `v`'s directory is a real directory.
    pub(crate) fn has(&self, v: &Version) -> Result<bool, Error> {
        Ok(self.root.kind(version_rel(v))? == Some(Kind::Dir))
    }

    /// The installed version, read from the `current` symlink.
    pub(crate) fn current(&self) -> Result<Option<Version>, Error> {
        let target = match self.root.read_link(CURRENT) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(deltapack_fs::Error::NotAFile { path }) => {
                return Err(Error::Layout {
                    reason: format!("{} is not a symbolic link", path.display()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let name = target
            .strip_prefix(VERSIONS)
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|s| Version::parse(s).ok())
            .ok_or_else(|| Error::Layout {
                reason: format!("current points at {}", target.display()),
            })?;
        if !self.has(&name)? {
            return Err(Error::Layout {
                reason: format!("current points at missing version {name}"),
            });
        }
        Ok(Some(name))
    }

    /// Versions present on disk (real directories named by a version),
    /// oldest first.
    pub(crate) fn installed(&self) -> Result<Vec<Version>, Error> {
        let mut v: Vec<Version> = self
            .root
            .list(VERSIONS)?
            .into_iter()
            .filter(|(_, k)| *k == Kind::Dir)
            .filter_map(|(n, _)| n.to_str().and_then(|s| Version::parse(s).ok()))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Points `current` at `v` atomically and durably.
    pub(crate) fn switch(&self, v: &Version) -> Result<(), Error> {
        if !self.has(v)? {
            return Err(Error::Layout {
                reason: format!("version {v} is not installed"),
            });
        }
        let tmp = format!(".current-{v}.tmp");
        self.root.remove_file(&tmp)?;
        self.symlink(&version_rel(v), &tmp)?;
        self.root.rename(&tmp, CURRENT)?;
        self.root.sync("")?;
        Ok(())
    }

    #[cfg(unix)]
    fn symlink(&self, target: &Path, rel: &str) -> Result<(), Error> {
        Ok(self.root.symlink(target, rel)?)
    }

    #[cfg(not(unix))]
    fn symlink(&self, _target: &Path, _rel: &str) -> Result<(), Error> {
        Err(Error::Layout {
            reason: "the current-version switch needs symlinks (Windows support is planned)".into(),
        })
    }

    /// Removes a version directory (never the current one).
    pub(crate) fn remove(&self, v: &Version) -> Result<(), Error> {
        if self.current()?.as_ref() == Some(v) {
            return Ok(());
        }
        // Rename first so a crash never leaves a half-deleted tree under a
        // version's name.
        self.scratch_dir()?;
        let trash = Path::new(SCRATCH).join(format!("trash-{v}"));
        self.root.remove_all(&trash)?;
        self.root.rename(version_rel(v), &trash)?;
        self.root.sync(VERSIONS)?;
        self.root.remove_all(&trash)?;
        Ok(())
    }
}
