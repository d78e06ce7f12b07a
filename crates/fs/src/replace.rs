//! The Windows calls std does not offer, each in one small function: the
//! rename that replaces its destination (one `rename(2)` on Unix, atomic,
//! the directory synced by the caller; on Windows
//! `MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`, which
//! does not return before the move is on disk), and a file's identity
//! (volume serial and file index).

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

/// A file's or directory's volume serial number and file index: its
/// identity on NTFS, kept across renames (Windows).
#[cfg(windows)]
pub(crate) fn file_id(p: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::windows::fs::OpenOptionsExt;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
        GetFileInformationByHandle,
    };
    // No access asked: metadata only; backup semantics to open a directory.
    #[allow(clippy::disallowed_methods)]
    let f = std::fs::OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(p)?;
    let mut info: BY_HANDLE_FILE_INFORMATION = BY_HANDLE_FILE_INFORMATION {
        dwFileAttributes: 0,
        ftCreationTime: windows_sys::Win32::Foundation::FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        },
        ftLastAccessTime: windows_sys::Win32::Foundation::FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        },
        ftLastWriteTime: windows_sys::Win32::Foundation::FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        },
        dwVolumeSerialNumber: 0,
        nFileSizeHigh: 0,
        nFileSizeLow: 0,
        nNumberOfLinks: 0,
        nFileIndexHigh: 0,
        nFileIndexLow: 0,
    };
    // SAFETY: the handle is open for the whole call (`f` lives to the end
    // of the function) and `info` is a valid, writable struct of the type
    // the call fills in.
    #[allow(unsafe_code)]
    let ok = unsafe { GetFileInformationByHandle(f.as_raw_handle() as _, &mut info) };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        u64::from(info.dwVolumeSerialNumber),
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    ))
}
