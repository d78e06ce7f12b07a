//! Read-only access to input files: small files are read into memory,
//! large ones are memory-mapped.
//!
//! This is the only module in deltapack-diff with `unsafe` code.

use std::ops::Deref;
use std::path::Path;

/// Files up to this size are read rather than mapped.
const READ_LIMIT: u64 = 256 * 1024;

/// The bytes of an input file.
#[derive(Debug)]
pub(crate) enum Input {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Owned(v) => v,
            Input::Mapped(m) => m,
        }
    }
}

impl Input {
    /// Opens `path` for reading. `expected_len` is the size seen when the
    /// tree was scanned; a different size means the file changed under us.
    pub(crate) fn open(path: &Path, expected_len: u64) -> Result<Input, crate::Error> {
        if expected_len <= READ_LIMIT {
            let v = fs_err::read(path)?;
            return check(Input::Owned(v), path, expected_len);
        }
        let f = fs_err::File::open(path)?;
        let m = map(f.file()).map_err(|e| {
            crate::Error::Io(std::io::Error::new(
                e.kind(),
                format!("mapping {}: {e}", path.display()),
            ))
        })?;
        check(Input::Mapped(m), path, expected_len)
    }
}

fn check(i: Input, path: &Path, expected_len: u64) -> Result<Input, crate::Error> {
    if i.len() as u64 != expected_len {
        return Err(crate::Error::ChangedDuringDiff {
            path: path.to_owned(),
        });
    }
    Ok(i)
}

/// Maps a file read-only.
#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates or rewrites the file while it is mapped, reads may
    // see the new bytes or fault with SIGBUS: the worst case is a crash or a
    // package built from mixed contents. Mixed contents cannot go unnoticed:
    // the package carries hashes of the new tree taken from a separate read,
    // and the applier verifies every block it writes against them.
    unsafe { memmap2::Mmap::map(file) }
}
