//! Where things live in a repository, and how files get there.
//!
//! ```text
//! manifest.json                         the signed manifest
//! pkg/<platform>/<version>/full.dpk     full bundle
//! pkg/<platform>/<version>/from-<v>.dpk delta from version <v>
//! shards/<version>-<i>-of-<n>.json      unmerged shard output (transient)
//! ```
//!
//! Names are built only from checked platform names and semver versions
//! (`+` becomes `_`, which some object stores would read as a space). Every
//! file is written to a temporary name beside its final one, synced, and
//! renamed, so an interrupted run never leaves a half-written artifact or
//! manifest under a name a client could fetch.

use std::path::{Path, PathBuf};

use deltapack_manifest::{Artifact, Version};

use crate::Error;

/// The manifest's file name at the repository root.
pub const MANIFEST: &str = "manifest.json";
/// Directory of unmerged shard outputs.
pub const SHARDS: &str = "shards";

fn file_version(v: &Version) -> String {
    v.to_string().replace('+', "_")
}

/// Repository path of a full bundle.
pub(crate) fn full_path(platform: &str, v: &Version) -> String {
    format!("pkg/{platform}/{}/full.dpk", file_version(v))
}

/// Repository path of a delta package.
pub(crate) fn delta_path(platform: &str, from: &Version, to: &Version) -> String {
    format!(
        "pkg/{platform}/{}/from-{}.dpk",
        file_version(to),
        file_version(from)
    )
}

/// Repository path of a shard's record.
pub(crate) fn shard_path(v: &Version, index: u32, count: u32) -> String {
    format!("{SHARDS}/{}-{index}-of-{count}.json", file_version(v))
}

/// The local path of a repository path.
pub(crate) fn local(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_owned(), |p, c| p.join(c))
}

/// Writes `bytes` to `rel` under `root` atomically and durably (through
/// `deltapack-fs`: a fresh temporary, synced, renamed over the file, the
/// directory synced; nothing below the repository root is followed through
/// a link). Published files are readable by whatever serves them (0644).
pub(crate) fn write_atomic(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), Error> {
    let rel_path = rel.split('/').fold(PathBuf::new(), |p, c| p.join(c));
    deltapack_fs::Root::new(root)
        .write_atomic_with(&rel_path, Some(0o644), |f| {
            std::io::Write::write_all(f, bytes)
        })
        .map_err(|e| match e {
            deltapack_fs::Error::Io(io) => Error::Io(io),
            other => Error::Fs(other),
        })
}

/// Writes a package and describes it as an artifact.
pub(crate) fn write_artifact(root: &Path, rel: &str, bytes: &[u8]) -> Result<Artifact, Error> {
    write_atomic(root, rel, bytes)?;
    Ok(Artifact {
        path: rel.to_owned(),
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// Size and BLAKE3 (hex) of a repository file, or `None` if it is absent.
pub(crate) fn measure(root: &Path, rel: &str) -> Result<Option<(u64, String)>, Error> {
    let path = local(root, rel);
    match fs_err::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
        Ok(m) if !m.is_file() => return Ok(None),
        Ok(_) => {}
    }
    let (size, hash) = deltapack_tree::hash_file(&path)?;
    Ok(Some((size, deltapack_tree::hex(&hash))))
}

/// Whether the file an artifact names is present with its size and hash.
pub(crate) fn intact(root: &Path, a: &Artifact) -> Result<bool, Error> {
    Ok(measure(root, &a.path)?.is_some_and(|(size, hash)| size == a.size && hash == a.blake3))
}
