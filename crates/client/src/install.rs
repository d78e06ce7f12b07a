//! The install root: versions side by side and an atomically switched
//! `current` pointer.
//!
//! ```text
//! <root>/current -> versions/<version>     relative symlink, the only switch
//! <root>/versions/<version>/               one complete tree per version
//! <root>/.deltapack/state.json             install id, last manifest sequence, …
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
//! Windows (not implemented yet): the same versioned directories, with a
//! small launcher that reads a `current` file replaced by `MoveFileEx`
//! (`MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH`), and old versions
//! renamed rather than deleted while their files are in use.

use std::path::{Path, PathBuf};

use deltapack_manifest::Version;

use crate::Error;

/// Paths of an install root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn versions(&self) -> PathBuf {
        self.root.join("versions")
    }

    pub(crate) fn version_dir(&self, v: &Version) -> PathBuf {
        self.versions().join(v.to_string())
    }

    pub(crate) fn meta(&self) -> PathBuf {
        self.root.join(".deltapack")
    }

    pub(crate) fn downloads(&self) -> PathBuf {
        self.meta().join("downloads")
    }

    pub(crate) fn scratch(&self) -> PathBuf {
        self.meta().join("tmp")
    }

    pub(crate) fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    /// Creates the directories an install needs.
    pub(crate) fn create(&self) -> Result<(), Error> {
        fs_err::create_dir_all(self.versions())?;
        fs_err::create_dir_all(self.downloads())?;
        Ok(())
    }

    /// The installed version, read from the `current` symlink.
    pub(crate) fn current(&self) -> Result<Option<Version>, Error> {
        let target = match fs_err::read_link(self.current_link()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let name = target
            .strip_prefix("versions")
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|s| Version::parse(s).ok())
            .ok_or_else(|| Error::Layout {
                reason: format!("current points at {}", target.display()),
            })?;
        if !self.version_dir(&name).is_dir() {
            return Err(Error::Layout {
                reason: format!("current points at missing version {name}"),
            });
        }
        Ok(Some(name))
    }

    /// Versions present on disk, oldest first.
    pub(crate) fn installed(&self) -> Result<Vec<Version>, Error> {
        let mut v = Vec::new();
        let entries = match fs_err::read_dir(self.versions()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
            Err(e) => return Err(e.into()),
        };
        for e in entries {
            let e = e?;
            if let Some(ver) = e.file_name().to_str().and_then(|s| Version::parse(s).ok()) {
                v.push(ver);
            }
        }
        v.sort();
        Ok(v)
    }

    /// Points `current` at `v` atomically and durably.
    pub(crate) fn switch(&self, v: &Version) -> Result<(), Error> {
        let dir = self.version_dir(v);
        if !dir.is_dir() {
            return Err(Error::Layout {
                reason: format!("version {v} is not installed"),
            });
        }
        let tmp = self.root.join(format!(".current-{v}.tmp"));
        let _ = fs_err::remove_file(&tmp);
        symlink(Path::new("versions").join(v.to_string()).as_path(), &tmp)?;
        fs_err::rename(&tmp, self.current_link())?;
        sync_dir(&self.root)?;
        Ok(())
    }

    /// Removes a version directory (never the current one).
    pub(crate) fn remove(&self, v: &Version) -> Result<(), Error> {
        if self.current()?.as_ref() == Some(v) {
            return Ok(());
        }
        let dir = self.version_dir(v);
        // Rename first so a crash never leaves a half-deleted tree under a
        // version's name.
        let trash = self.scratch().join(format!("trash-{v}"));
        fs_err::create_dir_all(self.scratch())?;
        let _ = fs_err::remove_dir_all(&trash);
        fs_err::rename(&dir, &trash)?;
        sync_dir(&self.versions())?;
        fs_err::remove_dir_all(&trash)?;
        Ok(())
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<(), Error> {
    fs_err::os::unix::fs::symlink(target, link)?;
    Ok(())
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> Result<(), Error> {
    Err(Error::Layout {
        reason: "the current-version switch needs symlinks (Windows support is planned)".into(),
    })
}

/// Replaces `path` with `bytes` atomically and durably: writes `tmp` (same
/// directory), syncs it, renames it over `path`, syncs the directory. After
/// a crash, `path` holds the old or the new bytes, never a torn mix; `tmp`
/// may be left behind (recovery removes it).
pub(crate) fn replace_file(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = fs_err::File::create(tmp)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()?;
    drop(f);
    fs_err::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Syncs a directory so renames in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    fs_err::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
