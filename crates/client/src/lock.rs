//! One updater at a time: an OS file lock on `<state>/lock`, released
//! when the process exits however it exits. The holder writes its pid into
//! the file (best effort) for the [`Error::Busy`] message others get.

use std::io::{Read, Seek, Write};

use deltapack_fs::Root;

use crate::Error;

const LOCK: &str = "lock";

/// Held while an updater changes the install; released on drop.
pub(crate) struct Lock {
    _file: std::fs::File,
}

/// Takes the lock, or says who holds it.
pub(crate) fn acquire(root: &Root) -> Result<Lock, Error> {
    root.ensure()?;
    let mut file = root.open_or_create(LOCK)?;
    match file.try_lock() {
        Ok(()) => {
            // Best effort: the lock is the OS's (released when the process
            // dies, whatever the file says), so a full disk here fails the
            // update later, at a step that matters.
            let _ = file
                .set_len(0)
                .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
                .and_then(|_| write!(file, "{}", std::process::id()));
            Ok(Lock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut s = String::new();
            let pid = (&mut file)
                .take(32)
                .read_to_string(&mut s)
                .ok()
                .and_then(|_| s.trim().parse().ok());
            Err(Error::Busy { pid })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(std::io::Error::new(
            e.kind(),
            format!("locking {}: {e}", root.join(LOCK).display()),
        )
        .into()),
    }
}

/// Whether another process holds the lock (read-only; for doctor).
pub(crate) fn is_held(root: &Root) -> bool {
    root.open_rw(LOCK)
        .ok()
        .flatten()
        .is_some_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}
