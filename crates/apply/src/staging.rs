//! The staging location beside the output, where the target is built, and
//! the single rename that moves it into place.
//!
//! Staging is a fresh directory (or file) named `.<output>.dpk-XXXXXX` in
//! the output's parent, so the final rename never crosses file systems.
//! Dropping a [`Staging`] that was not finished removes it. Nothing is
//! ever written through a symlink: staging is new and empty, only
//! directories are created below it before files, and symlinks are made
//! last.

use std::io::Read;
use std::path::{Path, PathBuf};

use deltapack_format::{Mtimes, RelPath, RootKind};
use deltapack_tree::NodeKind;

use crate::Error;
use crate::base::VerifiedBase;
use crate::target::{Origin, Target};

/// Permission bits the applier may set: never group- or world-writable.
const SAFE_MODE: u32 = 0o755;

enum Guard {
    Dir(tempfile::TempDir),
    File(tempfile::NamedTempFile),
}

/// A target under construction.
pub(crate) struct Staging {
    path: PathBuf,
    guard: Guard,
}

impl Staging {
    pub(crate) fn create(output: &Path, root: RootKind) -> Result<Staging, Error> {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut b = tempfile::Builder::new();
        let prefix = format!(".{name}.dpk-");
        b.prefix(&prefix);
        let wrap = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("creating staging in {}: {e}", parent.display()),
            )
        };
        let guard = match root {
            RootKind::Dir => Guard::Dir(b.tempdir_in(&parent).map_err(wrap)?),
            RootKind::File => Guard::File(b.tempfile_in(&parent).map_err(wrap)?),
        };
        let path = match &guard {
            Guard::Dir(d) => d.path().to_owned(),
            Guard::File(f) => f.path().to_owned(),
        };
        Ok(Staging { path, guard })
    }

    fn at(&self, p: &RelPath) -> PathBuf {
        match self.guard {
            Guard::Dir(_) => self.path.join(p.as_str()),
            Guard::File(_) => self.path.clone(),
        }
    }

    /// Creates every directory of the target, with its final mode when
    /// that leaves it writable (the others are fixed in [`Self::finish`]).
    pub(crate) fn make_dirs(&self, target: &Target) -> Result<(), Error> {
        if matches!(self.guard, Guard::File(_)) {
            return Ok(());
        }
        for (p, n) in &target.nodes {
            if let NodeKind::Dir { mode } = n.kind {
                create_dir(&self.at(p), mode)?;
            }
        }
        Ok(())
    }

    /// Opens a new file for a target path, created with its final mode.
    pub(crate) fn create_file(&self, p: &RelPath, mode: u32) -> Result<fs_err::File, Error> {
        match self.guard {
            Guard::Dir(_) => create_file(&self.at(p), mode),
            Guard::File(_) => Ok(fs_err::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&self.path)?),
        }
    }

    /// Copies the base files that the target keeps unchanged, checking that
    /// each still has the contents the base was verified with, and syncing
    /// each copy when asked.
    pub(crate) fn carry_over(
        &self,
        vb: &VerifiedBase,
        target: &Target,
        sync: bool,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; 64 * 1024];
        for (p, n) in &target.nodes {
            let (Origin::Base, NodeKind::File { hash, mode, .. }) = (&n.origin, &n.kind) else {
                continue;
            };
            let mode = *mode;
            let mut src = fs_err::File::open(vb.fs_path(p))?;
            let mut dst = create_file(&self.at(p), mode)?;
            let mut h = blake3::Hasher::new();
            loop {
                let k = src.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                std::io::Write::write_all(&mut dst, &buf[..k])?;
            }
            if h.finalize().as_bytes() != hash {
                return Err(Error::BaseChanged {
                    path: p.to_string(),
                });
            }
            if sync {
                dst.sync_all()?;
            }
        }
        Ok(())
    }

    /// Creates the target's symlinks (last, so nothing is written through
    /// them).
    pub(crate) fn make_symlinks(&self, target: &Target) -> Result<(), Error> {
        for (p, n) in &target.nodes {
            if let NodeKind::Symlink { target: t } = &n.kind {
                symlink(t, &self.at(p), p)?;
            }
        }
        Ok(())
    }

    /// Gives every file of the target the modification time the package
    /// records for it (files first, so that nothing writes them after).
    fn set_mtimes(&self, target: &Target, mtimes: &Mtimes) -> Result<(), Error> {
        for (i, p) in target.files().enumerate() {
            let Some(t) = mtimes.get(i) else { continue };
            // Below MAX_MTIME (checked when decoded): fits an i64.
            let ft = filetime::FileTime::from_unix_time(i64::try_from(t).unwrap_or(i64::MAX), 0);
            let at = self.at(p);
            filetime::set_symlink_file_times(&at, ft, ft).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("setting the modification time of {}: {e}", at.display()),
                )
            })?;
        }
        Ok(())
    }

    /// Sets times and modes, syncs, and renames staging to `output`.
    pub(crate) fn finish(
        self,
        target: &Target,
        mtimes: Option<&Mtimes>,
        output: &Path,
        sync: bool,
    ) -> Result<(), Error> {
        if let Some(m) = mtimes {
            self.set_mtimes(target, m)?;
        }
        // Files were created with their modes and synced when written;
        // directories, deepest first, may still need theirs (one that is
        // not writable was created writable).
        for (p, n) in target.nodes.iter().rev() {
            if let NodeKind::Dir { mode } = n.kind {
                if sync {
                    sync_dir(&self.at(p))?;
                }
                fix_dir_mode(&self.at(p), mode)?;
            }
        }
        if fs_err::symlink_metadata(output).is_ok() {
            return Err(Error::OutputExists {
                path: output.to_owned(),
            });
        }
        match self.guard {
            Guard::Dir(d) => {
                if sync {
                    sync_dir(d.path())?;
                }
                set_mode(d.path(), 0o755)?;
                fs_err::rename(d.path(), output)?;
                // The directory now lives at `output`; do not remove it.
                let _ = d.keep();
            }
            Guard::File(f) => {
                if let Some((_, n)) = target.nodes.iter().next()
                    && let NodeKind::File { mode, .. } = n.kind
                {
                    set_mode(f.path(), mode)?;
                }
                f.persist_noclobber(output).map_err(|e| {
                    let kind = e.error.kind();
                    if kind == std::io::ErrorKind::AlreadyExists {
                        Error::OutputExists {
                            path: output.to_owned(),
                        }
                    } else {
                        Error::Io(std::io::Error::new(
                            kind,
                            format!("moving staging to {}: {}", output.display(), e.error),
                        ))
                    }
                })?;
            }
        }
        if sync && let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

/// The mode a file or directory is created with: its final (safe) mode,
/// plus owner write so that it can be filled in.
#[cfg(unix)]
fn creation_mode(mode: u32) -> u32 {
    (mode & SAFE_MODE) | 0o200
}

#[cfg(unix)]
fn create_dir(p: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(creation_mode(mode) | 0o700)
        .create(p)
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("creating directory {}: {e}", p.display()))
        })?;
    Ok(())
}

#[cfg(not(unix))]
fn create_dir(p: &Path, _mode: u32) -> Result<(), Error> {
    fs_err::create_dir(p)?;
    Ok(())
}

#[cfg(unix)]
fn create_file(p: &Path, mode: u32) -> Result<fs_err::File, Error> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let mut o = fs_err::OpenOptions::new();
    o.write(true).create_new(true).mode(creation_mode(mode));
    let f = o.open(p)?;
    // The umask may have taken bits away, and a read-only file was created
    // writable: set the exact mode on the open handle.
    let want = mode & SAFE_MODE;
    if f.metadata()?.permissions().mode() & 0o777 != want {
        f.set_permissions(std::fs::Permissions::from_mode(want))?;
    }
    Ok(f)
}

#[cfg(not(unix))]
fn create_file(p: &Path, _mode: u32) -> Result<fs_err::File, Error> {
    Ok(fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)?)
}

/// Gives a directory its exact mode (the umask may have changed it).
#[cfg(unix)]
fn fix_dir_mode(p: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    if fs_err::symlink_metadata(p)?.permissions().mode() & 0o777 != mode & SAFE_MODE {
        set_mode(p, mode)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn fix_dir_mode(_p: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(mode & SAFE_MODE))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_p: &Path, _mode: u32) -> Result<(), Error> {
    let _ = SAFE_MODE;
    Ok(())
}

fn sync_dir(p: &Path) -> Result<(), Error> {
    deltapack_fs::sync_dir(p).map_err(|e| match e {
        deltapack_fs::Error::Io(io) => Error::Io(io),
        other => Error::Io(std::io::Error::other(other.to_string())),
    })
}

#[cfg(unix)]
fn symlink(target: &str, at: &Path, _p: &RelPath) -> Result<(), Error> {
    std::os::unix::fs::symlink(target, at).map_err(|e| {
        std::io::Error::new(e.kind(), format!("creating symlink {}: {e}", at.display()))
    })?;
    Ok(())
}

#[cfg(not(unix))]
fn symlink(_target: &str, _at: &Path, p: &RelPath) -> Result<(), Error> {
    Err(Error::SymlinkUnsupported {
        path: p.to_string(),
    })
}
