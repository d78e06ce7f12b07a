//! A local copy of an artifact against what the manifest says it is.

use std::path::Path;

use crate::Error;

/// How a local file compares with an artifact of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Local {
    /// The same size and BLAKE3.
    Same,
    /// No such file.
    Missing,
    /// Another size.
    OtherSize,
    /// The size, but another BLAKE3.
    OtherHash,
}

/// Compares the file at `path` with an artifact of `size` bytes and this
/// BLAKE3 (read and hashed only when the size matches).
pub(crate) fn state(path: &Path, size: u64, blake3: &str) -> Result<Local, Error> {
    let mut f = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Local::Missing),
        Err(e) => return Err(e.into()),
    };
    if f.metadata()?.len() != size {
        return Ok(Local::OtherSize);
    }
    let mut h = blake3::Hasher::new();
    h.update_reader(&mut f)?;
    Ok(if h.finalize().to_hex().as_str() == blake3 {
        Local::Same
    } else {
        Local::OtherHash
    })
}
