//! Install strategies: how the app's files are laid out on disk and how a
//! new version replaces the running one. One seam, the same guarantees for
//! each (journal and recovery after a kill at any point, the lock, the
//! free-space check, previous versions kept for rollback, probation):
//!
//! - [`Versions`]: `versions/<v>/` side by side and a `current` symlink
//!   (Unix), switched by renaming a new link over it;
//! - [`Executable`]: one file replaced in place — a CLI that updates
//!   itself; the new file is staged beside it and renamed over it, the
//!   previous one kept in the state directory;
//! - [`Bundle`]: a directory at a fixed path (`/opt/foo`, `Foo.app`); the
//!   new tree is built beside it and the two are swapped atomically
//!   (`renameat2(RENAME_EXCHANGE)`, `renamex_np(RENAME_SWAP)`, or two
//!   renames under the journal where neither exists), the previous tree
//!   kept beside it in `.<name>.deltapack/versions/`.
//!
//! A switch goes in two steps around the journal: [`Strategy::plan`] does
//! what can be done before (keeps the old version, stages the new one
//! where the switch takes it from) and returns a [`SwitchRecord`] with a
//! proof — the identity of the object that will be at the app's path
//! afterwards; the journal is written; [`Strategy::commit`] makes the one
//! atomic change and tidies up. After a kill, [`Strategy::switched`] tells
//! from what the app's path holds now whether the change happened, and
//! [`Strategy::finish`] completes the tidying.

mod bundle;
mod executable;
mod versions;

use std::path::{Path, PathBuf};

use deltapack_fs::Identity;
use deltapack_manifest::Version;
use serde::{Deserialize, Serialize};

pub(crate) use bundle::Bundle;
pub(crate) use executable::Executable;
pub(crate) use versions::Versions;

use crate::Error;
use crate::state::State;
use crate::store::Store;

/// What kind of install an updater keeps current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallKind {
    /// `versions/<v>/` and a `current` symlink.
    Versions,
    /// One executable file replaced in place.
    Executable,
    /// A directory at a fixed path, swapped whole.
    Bundle,
}

/// [`Identity`] as the state and journal files keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum IdentityRecord {
    /// Device and inode.
    Inode {
        /// Device.
        dev: u64,
        /// Inode.
        ino: u64,
    },
    /// A file's BLAKE3.
    Blake3 {
        /// Hex.
        hash: String,
    },
}

impl From<Identity> for IdentityRecord {
    fn from(i: Identity) -> Self {
        match i {
            Identity::Inode { dev, ino } => IdentityRecord::Inode { dev, ino },
            Identity::Blake3(hash) => IdentityRecord::Blake3 { hash },
        }
    }
}

/// The version at an executable's or a bundle's path, as this updater put
/// it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Installed {
    /// The version.
    pub(crate) version: Version,
    /// What was at the path when it was recorded.
    pub(crate) identity: IdentityRecord,
}

/// What the journal records of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchRecord {
    /// The identity the app's path has once the switch happened (none for
    /// a versions install, whose link tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) proof: Option<IdentityRecord>,
    /// Where the new version is taken from, relative to the strategy's
    /// root (`versions/1.2.0`, `.tool.new-1.2.0`, `.app.deltapack/new-1.2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
}

/// What is at the app's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Current {
    /// Nothing.
    None,
    /// This version.
    Known(Version),
    /// Something this updater did not put there (or no longer recognises):
    /// it is identified against the manifest at the next check.
    Unknown,
}

/// One of the strategies above.
#[derive(Debug)]
pub(crate) enum Strategy {
    Versions(Versions),
    Executable(Executable),
    Bundle(Bundle),
}

/// Calls the same method on whichever strategy it is.
macro_rules! each {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            Strategy::Versions($v) => $e,
            Strategy::Executable($v) => $e,
            Strategy::Bundle($v) => $e,
        }
    };
}

impl Strategy {
    /// The kind.
    pub(crate) fn kind(&self) -> InstallKind {
        match self {
            Strategy::Versions(_) => InstallKind::Versions,
            Strategy::Executable(_) => InstallKind::Executable,
            Strategy::Bundle(_) => InstallKind::Bundle,
        }
    }

    /// The install location as configured (root, file or directory).
    pub(crate) fn location(&self) -> &Path {
        each!(self, s => s.location())
    }

    /// The path the app runs from.
    pub(crate) fn runs_from(&self) -> PathBuf {
        each!(self, s => s.runs_from())
    }

    /// A directory on the file system the app lives on (for free space).
    pub(crate) fn space_dir(&self) -> PathBuf {
        match self {
            Strategy::Versions(v) => v.location().to_owned(),
            Strategy::Executable(e) => parent(e.location()),
            Strategy::Bundle(b) => parent(b.location()),
        }
    }

    /// Checks and creates what must exist before the lock is taken.
    pub(crate) fn prepare(&self) -> Result<(), Error> {
        each!(self, s => s.prepare())
    }

    /// Refuses to go on when a link was planted where the strategy writes.
    pub(crate) fn refuse_links(&self) -> Result<(), Error> {
        each!(self, s => s.refuse_links())
    }

    /// What is at the app's path.
    pub(crate) fn current(&self, st: &State) -> Result<Current, Error> {
        each!(self, s => s.current(st))
    }

    /// Puts back the switch of a versions install that is not what the
    /// updater wrote (see `Versions::repair`); other strategies have
    /// nothing to repair here.
    pub(crate) fn repair(
        &self,
        st: &State,
        store: &Store,
        now: u64,
    ) -> Result<Option<String>, Error> {
        match self {
            #[cfg(not(windows))]
            Strategy::Versions(v) => v.repair(st, store, now),
            _ => {
                let _ = (st, store, now);
                Ok(None)
            }
        }
    }

    /// Previous versions kept on disk, oldest first (not the current one).
    pub(crate) fn kept(&self) -> Result<Vec<Version>, Error> {
        each!(self, s => s.kept())
    }

    /// Where version `v`'s files are: the app's path for the current one,
    /// its kept copy otherwise.
    pub(crate) fn tree(&self, v: &Version, current: Option<&Version>) -> PathBuf {
        each!(self, s => s.tree(v, current))
    }

    /// Where the applier builds version `v` (its parent checked and
    /// created; nothing there).
    pub(crate) fn staged(&self, v: &Version) -> Result<PathBuf, Error> {
        each!(self, s => s.staged(v))
    }

    /// Whether version `v` is staged (built, not yet switched to).
    pub(crate) fn is_staged(&self, v: &Version) -> Result<bool, Error> {
        each!(self, s => s.is_staged(v))
    }

    /// Removes a staged version that is not wanted.
    pub(crate) fn unstage(&self, v: &Version) -> Result<(), Error> {
        each!(self, s => s.unstage(v))
    }

    /// Everything that can be done before the switch: returns what the
    /// journal must record. `to` is staged or kept.
    pub(crate) fn plan(
        &self,
        store: &Store,
        to: &Version,
        from: Option<&Version>,
    ) -> Result<SwitchRecord, Error> {
        each!(self, s => s.plan(store, to, from))
    }

    /// The switch: one atomic change of what the app's path holds, then
    /// the previous version put where kept versions go.
    pub(crate) fn commit(
        &self,
        store: &Store,
        rec: &SwitchRecord,
        to: &Version,
        from: Option<&Version>,
    ) -> Result<(), Error> {
        each!(self, s => s.commit(store, rec, to, from))
    }

    /// After a kill: whether the switch to `to` happened.
    pub(crate) fn switched(
        &self,
        st: &State,
        rec: &SwitchRecord,
        to: &Version,
    ) -> Result<bool, Error> {
        each!(self, s => s.switched(st, rec, to))
    }

    /// After a kill that came after the switch: the tidying `commit` did
    /// not finish.
    pub(crate) fn finish(
        &self,
        store: &Store,
        rec: &SwitchRecord,
        from: Option<&Version>,
    ) -> Result<(), Error> {
        each!(self, s => s.finish(store, rec, from))
    }

    /// What now stands at the app's path, for the state file (`None` for
    /// a versions install, whose link is the record).
    pub(crate) fn identity(&self) -> Result<Option<IdentityRecord>, Error> {
        each!(self, s => s.identity())
    }

    /// Removes a kept version (never the current one).
    pub(crate) fn remove(
        &self,
        store: &Store,
        v: &Version,
        current: Option<&Version>,
    ) -> Result<(), Error> {
        each!(self, s => s.remove(store, v, current))
    }

    /// Removes what an interrupted run left (staging, half-made links),
    /// as far as it can: what cannot be removed now is left for a later
    /// start and reported, never an error that blocks the next operation.
    pub(crate) fn cleanup(&self, c: &mut Cleanup) {
        each!(self, s => s.cleanup(c))
    }

    /// Whether the install holds directory trees (so that a version's
    /// release paths are its base, see [`Store::read_paths`]).
    pub(crate) fn holds_trees(&self) -> bool {
        !matches!(self, Strategy::Executable(_))
    }
}

/// What a cleanup removed, and what it could not.
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    /// Removed (paths relative to where they were).
    pub(crate) removed: Vec<String>,
    /// Could not be removed: the path and why.
    pub(crate) left: Vec<String>,
}

impl Cleanup {
    /// Removes `rel` under `root`, or notes why it could not.
    pub(crate) fn remove(&mut self, root: &deltapack_fs::Root, rel: &Path) {
        match root.remove_all(rel) {
            Ok(_) => self.removed.push(rel.to_string_lossy().into_owned()),
            Err(e) => self.left.push(format!("{}: {e}", root.join(rel).display())),
        }
    }

    /// The entries of `dir` under `root` whose names `debris` picks,
    /// removed (a directory that cannot be listed is noted too).
    pub(crate) fn sweep(
        &mut self,
        root: &deltapack_fs::Root,
        dir: &Path,
        debris: impl Fn(&str) -> bool,
    ) {
        let entries = match root.list(dir) {
            Ok(e) => e,
            Err(e) => {
                self.left.push(format!("{}: {e}", root.join(dir).display()));
                return;
            }
        };
        for (name, _) in entries {
            let name = name.to_string_lossy();
            if debris(&name) {
                self.remove(root, &dir.join(&*name));
            }
        }
    }
}

/// The record of what is at `path` of `root`, if anything.
pub(crate) fn identity_at(
    root: &deltapack_fs::Root,
    rel: impl AsRef<Path>,
) -> Result<Option<IdentityRecord>, Error> {
    Ok(root.identity(rel)?.map(IdentityRecord::from))
}

/// `name`'s file name as text, for hidden siblings (`.<name>.new-1.2.0`).
pub(crate) fn file_name(p: &Path) -> Result<String, Error> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Layout {
            reason: format!("{} has no file name", p.display()),
        })
}

/// The parent directory of an executable or bundle path.
pub(crate) fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}
