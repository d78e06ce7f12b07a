//! The atomic swap of two paths, where the OS has one: Linux
//! `renameat2(RENAME_EXCHANGE)` and its macOS twin `renamex_np(RENAME_SWAP)`.
//! The macOS function cannot be compiled here (no macOS SDK); it mirrors
//! the Linux one, which the tests exercise. Elsewhere the swap is
//! `Unsupported` and callers use two renames under a journal.

use std::path::Path;

/// Swaps `a` and `b` atomically.
#[cfg(target_os = "linux")]
pub(crate) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers come from live `CString`s (NUL-terminated,
    // valid for the call); AT_FDCWD makes them ordinary paths; the call
    // reads them and touches no Rust memory.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // Old kernels and some file systems (overlayfs before 5.x, NFS).
        if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) {
            Err(std::io::Error::new(std::io::ErrorKind::Unsupported, e))
        } else {
            Err(e)
        }
    }
}

/// Swaps `a` and `b` atomically (untested here: no macOS SDK).
#[cfg(target_os = "macos")]
pub(crate) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: as for Linux: two live NUL-terminated paths, read by the call.
    #[allow(unsafe_code)]
    let r = unsafe { libc::renamex_np(ca.as_ptr(), cb.as_ptr(), libc::RENAME_SWAP) };
    if r == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EINVAL)) {
            Err(std::io::Error::new(std::io::ErrorKind::Unsupported, e))
        } else {
            Err(e)
        }
    }
}

/// No atomic swap here.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no atomic swap of two paths on this OS",
    ))
}
