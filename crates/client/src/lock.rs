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

/// Takes the lock, or says who holds it.
pub(crate) fn acquire(root: &Root) -> Result<Lock, Error> {
    root.ensure()?;
    match root.lock(LOCK) {
        Ok(l) => Ok(Lock { _lock: l }),
        Err(deltapack_fs::Error::Locked { pid, .. }) => Err(Error::Busy { pid }),
        Err(e) => Err(e.into()),
    }
}

/// Whether another process holds the lock (read-only; for doctor).
pub(crate) fn is_held(root: &Root) -> bool {
    root.is_locked(LOCK)
}
