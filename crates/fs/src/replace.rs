//! The rename that replaces its destination: one `rename(2)` on Unix
//! (atomic; the directory is synced by the caller), and on Windows
//! `MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`, which
//! does not return before the move is on disk.

use std::path::Path;

/// Renames `from` to `to`, replacing `to`.
#[cfg(not(windows))]
pub(crate) fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::rename(from, to)
}

/// Renames `from` to `to`, replacing `to`, write-through.
#[cfg(windows)]
pub(crate) fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{
        MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW,
    };
    let wide = |p: &Path| -> Vec<u16> {
        p.as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect()
    };
    let (a, b) = (wide(from), wide(to));
    // SAFETY: `a` and `b` are NUL-terminated UTF-16 strings that live
    // until the call returns; MoveFileExW only reads them.
    #[allow(unsafe_code)]
    let ok = unsafe {
        MoveFileExW(
            a.as_ptr(),
            b.as_ptr(),
            MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
        )
    };
    if ok != 0 {
        Ok(())
    } else {
        // The raw OS error is kept: the caller tells "in use" by it.
        Err(std::io::Error::last_os_error())
    }
}
