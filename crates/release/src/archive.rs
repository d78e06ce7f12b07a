//! Unpacks a platform's build archive (`.tar.gz`, `.tgz`, `.tar.zst`,
//! `.zip`) into a directory, safely.
//!
//! Archives are build outputs, but they pass through CI caches and artifact
//! stores, so they are unpacked as if hostile: every entry name must be a
//! portable relative path (the same [`RelPath`] rules as packages), nothing
//! is written through a symlink or outside the directory, symlinks must
//! resolve inside the tree, hard links must name an earlier file, device
//! nodes and FIFOs are refused, and duplicate names are an error rather than
//! a silent overwrite. Modes keep only the executable bit, as packages do.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use deltapack_format::RelPath;

use crate::Error;

/// The archive kinds the packager reads, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    TarGz,
    TarZst,
    Zip,
}

impl Kind {
    /// The kind of archive a file name says it is, if any.
    pub(crate) fn of(path: &Path) -> Option<Kind> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Kind::TarGz)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Kind::TarZst)
        } else if name.ends_with(".zip") {
            Some(Kind::Zip)
        } else {
            None
        }
    }
}

/// Unpacks `archive` into the existing empty directory `dest`.
pub(crate) fn unpack(archive: &Path, kind: Kind, dest: &Path) -> Result<(), Error> {
    let file = fs_err::File::open(archive)?;
    let mut out = Unpacker::new(archive, dest);
    match kind {
        Kind::TarGz => out.tar(flate2::read::GzDecoder::new(file)),
        Kind::TarZst => out.tar(zstd::stream::read::Decoder::new(file)?),
        Kind::Zip => out.zip(file.into_parts().0),
    }
}

struct Unpacker<'a> {
    archive: &'a Path,
    dest: &'a Path,
    /// Every path written so far, with the symlink target for links.
    seen: HashMap<String, Option<String>>,
    dirs: HashSet<String>,
}

impl<'a> Unpacker<'a> {
    fn new(archive: &'a Path, dest: &'a Path) -> Self {
        Unpacker {
            archive,
            dest,
            seen: HashMap::new(),
            dirs: HashSet::new(),
        }
    }

    fn bad(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::Archive {
            path: self.archive.to_owned(),
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    /// Checks an entry name and makes its parent directories; returns the
    /// normalised name and where it goes on disk.
    fn place(&mut self, raw: &str, is_dir: bool) -> Result<Option<(String, PathBuf)>, Error> {
        let trimmed = raw.strip_prefix("./").unwrap_or(raw);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if trimmed.is_empty() || trimmed == "." {
            return Ok(None);
        }
        let rel = RelPath::parse(trimmed, 4096, 64)
            .map_err(|e| self.bad(raw, format!("unsafe entry name: {e}")))?;
        let name = rel.as_str().to_owned();
        let mut prefix = String::new();
        for c in rel.components() {
            if !prefix.is_empty() {
                if self.seen.get(&prefix).is_some_and(|t| t.is_some()) {
                    return Err(self.bad(raw, format!("would be written through symlink {prefix}")));
                }
                if self.seen.contains_key(&prefix) && !self.dirs.contains(&prefix) {
                    return Err(self.bad(raw, format!("its parent {prefix} is a file")));
                }
                if self.dirs.insert(prefix.clone()) {
                    self.seen.insert(prefix.clone(), None);
                    fs_err::create_dir_all(self.dest.join(&prefix))?;
                }
                prefix.push('/');
            }
            prefix.push_str(c);
        }
        if self.seen.contains_key(&name) {
            if is_dir && self.dirs.contains(&name) {
                return Ok(Some((name.clone(), self.dest.join(&name))));
            }
            return Err(self.bad(raw, "appears twice"));
        }
        self.seen.insert(name.clone(), None);
        if is_dir {
            self.dirs.insert(name.clone());
        }
        Ok(Some((name.clone(), self.dest.join(&name))))
    }

    fn dir(&mut self, raw: &str) -> Result<(), Error> {
        if let Some((_, path)) = self.place(raw, true)? {
            fs_err::create_dir_all(path)?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        raw: &str,
        mode: u32,
        mtime: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<(), Error> {
        let Some((_, path)) = self.place(raw, false)? else {
            return Err(self.bad(raw, "a file entry needs a name"));
        };
        let mut f = fs_err::File::create(&path)?;
        io::copy(data, &mut f)?;
        drop(f);
        set_exec(&path, mode & 0o111 != 0)?;
        // The archive's time, so that packages record the build's.
        if let Some(t) = mtime.and_then(|t| i64::try_from(t).ok()) {
            let ft = filetime::FileTime::from_unix_time(t, 0);
            filetime::set_file_mtime(&path, ft)?;
        }
        Ok(())
    }

    fn symlink(&mut self, raw: &str, target: &str) -> Result<(), Error> {
        let Some((name, path)) = self.place(raw, false)? else {
            return Err(self.bad(raw, "a symlink entry needs a name"));
        };
        let inside = deltapack_tree::symlink_stays_inside(&name, target, &|p| {
            self.seen.get(p).cloned().flatten()
        });
        if !inside {
            return Err(self.bad(raw, format!("symlink target {target:?} leaves the tree")));
        }
        self.seen.insert(name, Some(target.to_owned()));
        make_symlink(target, &path).map_err(|e| self.bad(raw, format!("symlink: {e}")))
    }

    fn hardlink(&mut self, raw: &str, target: &str) -> Result<(), Error> {
        let t = target.strip_prefix("./").unwrap_or(target);
        let known_file = self.seen.get(t).is_some_and(|l| l.is_none()) && !self.dirs.contains(t);
        if !known_file {
            return Err(self.bad(raw, format!("hard link to {target:?}, not an earlier file")));
        }
        let src = self.dest.join(t);
        let Some((_, path)) = self.place(raw, false)? else {
            return Err(self.bad(raw, "a link entry needs a name"));
        };
        fs_err::copy(src, path)?;
        Ok(())
    }

    fn tar(&mut self, reader: impl Read) -> Result<(), Error> {
        let mut ar = tar::Archive::new(reader);
        let entries = ar.entries().map_err(|e| self.bad("", e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.bad("", e.to_string()))?;
            let raw = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| self.bad("", "entry name is not UTF-8"))?;
            let kind = entry.header().entry_type();
            let link = || -> Result<String, Error> {
                let l = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.bad(&raw, "link without a target"))?;
                String::from_utf8(l.into_owned())
                    .map_err(|_| self.bad(&raw, "link target is not UTF-8"))
            };
            match kind {
                tar::EntryType::Directory => self.dir(&raw)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mode = entry.header().mode().unwrap_or(0o644);
                    let mtime = entry.header().mtime().ok();
                    self.file(&raw, mode, mtime, &mut entry)?;
                }
                tar::EntryType::Symlink => {
                    let t = link()?;
                    self.symlink(&raw, &t)?;
                }
                tar::EntryType::Link => {
                    let t = link()?;
                    self.hardlink(&raw, &t)?;
                }
                // Metadata records of pax and GNU tar carry nothing we keep.
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
                other => {
                    return Err(self.bad(&raw, format!("unsupported entry type {other:?}")));
                }
            }
        }
        Ok(())
    }

    fn zip(&mut self, file: std::fs::File) -> Result<(), Error> {
        let mut ar = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|e| self.bad("", e.to_string()))?;
        for i in 0..ar.len() {
            let mut entry = ar.by_index(i).map_err(|e| self.bad("", e.to_string()))?;
            let raw = entry
                .name()
                .map_err(|e| self.bad("", format!("entry name: {e}")))?
                .into_owned();
            if entry.is_dir() {
                self.dir(&raw)?;
            } else if entry.is_symlink() {
                let mut t = String::new();
                entry
                    .by_ref()
                    .take(4096)
                    .read_to_string(&mut t)
                    .map_err(|_| self.bad(&raw, "symlink target is not UTF-8"))?;
                self.symlink(&raw, &t)?;
            } else {
                let mode = entry.unix_mode().unwrap_or(0o644);
                // Zip times are local times without a zone: not kept (the
                // unpack time stands, clamped by SOURCE_DATE_EPOCH).
                self.file(&raw, mode, None, &mut entry)?;
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn set_exec(path: &Path, exec: bool) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if exec { 0o755 } else { 0o644 };
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_exec(_path: &Path, _exec: bool) -> Result<(), Error> {
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &str, path: &Path) -> io::Result<()> {
    fs_err::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _path: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symlinks in archives are not supported on this platform",
    ))
}
