//! One updater at a time: an OS file lock on `<state>/lock`
//! ([`deltapack_fs::Root::lock`]), released when the process exits however
//! it exits; the holder's pid is in the file for the [`Error::Busy`]
//! message others get.

use deltapack_fs::Root;

use crate::Error;

const LOCK: &str = "lock";

/// Held while an updater changes the install; released on drop.
pub(crate) struct Lock {
    _lock: deltapack_fs::Lock,
}

/// Takes the lock, or says who holds it, or that this user cannot write
/// the state ([`Error::ReadOnly`]).
pub(crate) fn acquire(root: &Root) -> Result<Lock, Error> {
    take(root, LOCK).map(|l| Lock { _lock: l })
}

/// Takes the lock file `name` in `root`.
pub(crate) fn take(root: &Root, name: &str) -> Result<deltapack_fs::Lock, Error> {
    match root.ensure().and_then(|()| root.lock(name)) {
        Ok(l) => Ok(l),
        Err(deltapack_fs::Error::Locked { pid, .. }) => Err(Error::Busy { pid }),
        Err(e) => Err(read_only(root, e.into())),
    }
}

/// `e`, or [`Error::ReadOnly`] when it says this user may not write there.
pub(crate) fn read_only(root: &Root, e: Error) -> Error {
    match e {
        Error::Io(io) if denied(&io) => Error::ReadOnly {
            path: root.path().to_owned(),
            source: io,
        },
        e => e,
    }
}

/// Whether an I/O error means "not writable by this user here".
pub(crate) fn denied(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// Whether this user may write somewhere, read without taking the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Both the state and the install's directory.
    Writable,
    /// Permission is denied here.
    Denied(std::path::PathBuf),
    /// The file system here is mounted read-only.
    ReadOnlyFs(std::path::PathBuf),
}

/// Whether this user can write the state directory and the directory new
/// versions are made in (or create them): a probe file in the nearest
/// existing ancestor of each.
pub(crate) fn access(state: &Root, install: &std::path::Path) -> Access {
    for at in [state.path(), install] {
        let mut dir = at;
        while !dir.exists() {
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
        let probe = dir.join(format!(".deltapack-probe-{}", std::process::id()));
        match fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = fs_err::remove_file(&probe);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
                return Access::ReadOnlyFs(dir.to_owned());
            }
            Err(e) if denied(&e) => return Access::Denied(dir.to_owned()),
            Err(_) => {}
        }
    }
    Access::Writable
}

/// Whether another process holds the lock (read-only; for doctor).
pub(crate) fn is_held(root: &Root) -> bool {
    root.is_locked(LOCK)
}
