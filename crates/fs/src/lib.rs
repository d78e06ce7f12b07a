//! The one place where deltapack's client touches the file system under an
//! install root or a state directory.
//!
//! A [`Root`] is a directory the caller trusts as given: configuration
//! names it, and it may itself be reached through links (an administrator's
//! choice). Below it nothing is ever followed. Every operation takes a
//! path relative to the root, checks each directory on the way with
//! `symlink_metadata` (a link or a non-directory is a typed error naming
//! it), and opens the last component with no-follow semantics (`O_NOFOLLOW`
//! on Unix, `FILE_FLAG_OPEN_REPARSE_POINT` plus a check of what was opened
//! on Windows); new files are created with `create_new`. A link planted
//! where the client writes (a download cache writable by others, a
//! `versions/` replaced by a link to another directory) is therefore
//! [`Error::Link`], and nothing outside the root is touched.
//!
//! It also owns the durable write ([`Root::write_atomic`]: a fresh
//! temporary beside the file, synced, renamed over it, the directory
//! synced), [`sync_dir`], the atomic swap of two directories
//! ([`Root::exchange`]: `renameat2(RENAME_EXCHANGE)` on Linux,
//! `renamex_np(RENAME_SWAP)` on macOS, in `swap.rs`), durable copies and
//! [`Identity`] (what an object on disk is, across renames).
//!
//! What it does not defend against: a process that can write a directory
//! below the root and swaps it for a link between the check and the open
//! (the checks are by path, not by directory handle). Such a process can
//! already change what the app runs.
#![deny(unsafe_code)]

mod faults;
mod replace;
mod swap;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Why a file-system operation under a root failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A symbolic link (or a Windows junction) where the client writes.
    #[error(
        "{} is a symbolic link: deltapack never opens files under the install through links (remove it)",
        path.display()
    )]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a directory where a directory must be.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a regular file where a file must be.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file the client would write into has other hard links: writing
    /// would change those too (a link planted to another file).
    #[error(
        "{} has {links} hard links: deltapack never writes into a file linked elsewhere (remove it)",
        path.display()
    )]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// A file is larger than its reader allows.
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// Another process holds the file (a Windows sharing violation: the
    /// app still running, an antivirus scan, an Explorer window); retried
    /// with backoff before this is returned. Nothing was changed.
    #[error(
        "{} is in use by another process (tried {attempts} times over a few seconds): close the app and retry",
        path.display()
    )]
    InUse {
        /// The file or directory.
        path: PathBuf,
        /// Attempts made.
        attempts: u32,
    },
    /// Another process holds the lock.
    #[error("{} is locked by another process{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder, if it wrote its pid.
        pid: Option<u32>,
    },
    /// A path given by the program is not a plain relative path (a bug in
    /// the caller, reported rather than followed).
    #[error("{} is not a plain relative path", path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
    },
    /// An I/O error; its message names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What a directory entry is, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (or junction).
    Link,
    /// Anything else (a FIFO, a device, a socket).
    Other,
}

impl Kind {
    fn of(t: std::fs::FileType) -> Kind {
        if t.is_symlink() {
            Kind::Link
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

/// What an object on disk is, whatever its name: on Unix its device and
/// inode, on Windows its volume serial and file index (kept across renames,
/// so a switch can be told to have happened from what the path now holds);
/// elsewhere a file's BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Device and inode numbers.
    Inode {
        /// The device.
        dev: u64,
        /// The inode.
        ino: u64,
    },
    /// A file's contents.
    Blake3(String),
}

/// A trusted directory under which nothing is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

/// The components of a plain relative path (`a/b/c`, no `.`, `..`, root
/// or prefix).
fn parts(rel: &Path) -> Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            _ => {
                return Err(Error::BadPath {
                    path: rel.to_owned(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::BadPath {
            path: rel.to_owned(),
        });
    }
    Ok(out)
}

fn not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Options that never follow a link at the last component (and never
/// block on a FIFO planted where a file should be: it is refused after the
/// open as not a regular file).
fn no_follow(o: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, not its target
        // (what was opened is checked afterwards).
        o.custom_flags(0x0020_0000);
    }
    o
}

/// Whether an open failed because the last component is a link.
fn is_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

impl Root {
    /// A root at `path` (nothing is read or created yet).
    pub fn new(path: impl Into<PathBuf>) -> Root {
        Root { path: path.into() }
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full path of `rel` (for messages, and for handing a directory
    /// checked with [`Root::dir`] to code that writes only new entries in
    /// it).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates the root directory if it is missing (its parents as given,
    /// links included: the root is trusted).
    /// Directories it creates are readable by everyone (`0755`), whatever
    /// the umask: an install made under `umask 077` must still run for
    /// the other users of the machine.
    pub fn ensure(&self) -> Result<()> {
        if fs_err::metadata(&self.path).is_err() {
            let missing: Vec<&Path> = self
                .path
                .ancestors()
                .take_while(|a| !a.as_os_str().is_empty() && fs_err::metadata(a).is_err())
                .collect();
            for dir in missing.into_iter().rev() {
                match make_dir(dir) {
                    // Made meanwhile by another thread or process ensuring
                    // the same root: what it is gets checked below.
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    r => r?,
                }
            }
        }
        if !fs_err::metadata(&self.path)?.is_dir() {
            return Err(Error::NotADirectory {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Walks to the parent of `rel`, checking every directory on the way
    /// (creating missing ones when `create`). Returns the full path of
    /// `rel`, or `None` when a parent is missing and `create` is false.
    fn walk(&self, rel: &Path, create: bool) -> Result<Option<PathBuf>> {
        let comps = parts(rel)?;
        match fs_err::metadata(&self.path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::NotADirectory {
                    path: self.path.clone(),
                });
            }
            Err(e) if not_found(&e) && create => self.ensure()?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut p = self.path.clone();
        let (last, dirs) = comps.split_last().ok_or_else(|| Error::BadPath {
            path: rel.to_owned(),
        })?;
        for c in dirs {
            p.push(c);
            if !self.step_dir(&p, create)? {
                return Ok(None);
            }
        }
        p.push(last);
        Ok(Some(p))
    }

    /// Checks that `p` is a real directory; creates it when missing and
    /// `create`. Returns whether it exists now.
    fn step_dir(&self, p: &Path, create: bool) -> Result<bool> {
        match fs_err::symlink_metadata(p) {
            Ok(m) => match Kind::of(m.file_type()) {
                Kind::Dir => Ok(true),
                Kind::Link => Err(Error::Link { path: p.to_owned() }),
                _ => Err(Error::NotADirectory { path: p.to_owned() }),
            },
            Err(e) if not_found(&e) && create => {
                match make_dir(p) {
                    Ok(()) => Ok(true),
                    // Created by someone else meanwhile: check what it is.
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        self.step_dir(p, false)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// What `rel` is, without following it (`None` if it or a parent is
    /// missing). A parent that is a link is an error.
    pub fn kind(&self, rel: impl AsRef<Path>) -> Result<Option<Kind>> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(None);
        };
        match fs_err::symlink_metadata(&p) {
            Ok(m) => Ok(Some(Kind::of(m.file_type()))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes sure `rel` is a real directory below the root, creating it and
    /// its parents when missing. Returns its full path.
    pub fn dir(&self, rel: impl AsRef<Path>) -> Result<PathBuf> {
        let rel = rel.as_ref();
        let p = self
            .walk(rel, true)?
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        self.step_dir(&p, true)?;
        Ok(p)
    }

    /// The full path of `rel` if it is a real directory (`None` if it or a
    /// parent is missing; a link or a file is an error).
    pub fn existing_dir(&self, rel: impl AsRef<Path>) -> Result<Option<PathBuf>> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(None);
        };
        Ok(self.step_dir(&p, false)?.then_some(p))
    }

    /// Entries of the directory `rel` (the root itself for an empty path)
    /// with their kinds, sorted by name (empty if it is missing).
    pub fn list(&self, rel: impl AsRef<Path>) -> Result<Vec<(OsString, Kind)>> {
        let rel = rel.as_ref();
        let dir = if rel.as_os_str().is_empty() {
            match fs_err::metadata(&self.path) {
                Ok(_) => Some(self.path.clone()),
                Err(e) if not_found(&e) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            self.existing_dir(rel)?
        };
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in fs_err::read_dir(&dir)? {
            let e = e?;
            out.push((e.file_name(), Kind::of(e.file_type()?)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Opens `p` with `o` (no-follow added) and checks that it is a regular
    /// file; one opened for writing must have no other hard link.
    fn open_at(p: &Path, o: &mut std::fs::OpenOptions, writing: bool) -> Result<std::fs::File> {
        let f = Self::open_file(p, o)?;
        #[cfg(not(unix))]
        let _ = writing;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = f.metadata().map_err(|e| annotate(e, p))?;
            if writing && m.nlink() > 1 {
                return Err(Error::HardLinked {
                    path: p.to_owned(),
                    links: m.nlink(),
                });
            }
        }
        Ok(f)
    }

    fn open_file(p: &Path, o: &mut std::fs::OpenOptions) -> Result<std::fs::File> {
        // std's own open: the raw OS error must survive to tell ELOOP (a
        // link) from the rest; `annotate` names the path instead.
        #[allow(clippy::disallowed_methods)]
        let f = match no_follow(o).open(p) {
            Ok(f) => f,
            Err(e) if is_loop(&e) => return Err(Error::Link { path: p.to_owned() }),
            Err(e) => return Err(annotate(e, p).into()),
        };
        match Kind::of(f.metadata().map_err(|e| annotate(e, p))?.file_type()) {
            Kind::File => Ok(f),
            Kind::Link => Err(Error::Link { path: p.to_owned() }),
            _ => Err(Error::NotAFile { path: p.to_owned() }),
        }
    }

    /// Creates a new file (an existing entry, a link included, is an
    /// error); missing parents are created.
    pub fn create_new(&self, rel: impl AsRef<Path>) -> Result<std::fs::File> {
        let rel = rel.as_ref();
        let p = self
            .walk(rel, true)?
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        if fs_err::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Link { path: p });
        }
        Self::open_at(
            &p,
            std::fs::OpenOptions::new().write(true).create_new(true),
            true,
        )
    }

    /// Opens an existing regular file for reading and writing (`None` if it
    /// is missing).
    pub fn open_rw(&self, rel: impl AsRef<Path>) -> Result<Option<std::fs::File>> {
        self.open_existing(
            rel,
            std::fs::OpenOptions::new().read(true).write(true),
            true,
        )
    }

    /// Opens an existing regular file for reading (`None` if it is
    /// missing).
    pub fn open_read(&self, rel: impl AsRef<Path>) -> Result<Option<std::fs::File>> {
        self.open_existing(rel, std::fs::OpenOptions::new().read(true), false)
    }

    fn open_existing(
        &self,
        rel: impl AsRef<Path>,
        o: &mut std::fs::OpenOptions,
        writing: bool,
    ) -> Result<Option<std::fs::File>> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(None);
        };
        match Self::open_at(&p, o, writing) {
            Ok(f) => Ok(Some(f)),
            Err(Error::Io(e)) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens a file for reading and appending, creating it if missing.
    pub fn open_append(&self, rel: impl AsRef<Path>) -> Result<std::fs::File> {
        let rel = rel.as_ref();
        let p = self
            .walk(rel, true)?
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        Self::open_at(
            &p,
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true),
            true,
        )
    }

    /// Opens a file for writing without truncating it, creating it if
    /// missing (a lock file).
    pub fn open_or_create(&self, rel: impl AsRef<Path>) -> Result<std::fs::File> {
        let rel = rel.as_ref();
        let p = self
            .walk(rel, true)?
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        Self::open_at(
            &p,
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            true,
        )
    }

    /// Reads a whole file of at most `max` bytes (`None` if it is missing).
    pub fn read(&self, rel: impl AsRef<Path>, max: u64) -> Result<Option<Vec<u8>>> {
        let rel = rel.as_ref();
        let Some(f) = self.open_read(rel)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        f.take(max.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| annotate(e, &self.join(rel)))?;
        if out.len() as u64 > max {
            return Err(Error::TooLarge {
                path: self.join(rel),
                limit: max,
            });
        }
        Ok(Some(out))
    }

    /// Replaces `rel` with `bytes` atomically and durably: a fresh temporary
    /// beside it (`.<name>.tmp-<random>`, created new), synced, renamed over
    /// it, then the directory synced. After a crash `rel` holds the old or
    /// the new bytes; a temporary may be left (see [`is_temporary`]).
    /// The file is readable by everyone (`0644`), whatever the umask
    /// (use [`Root::write_atomic_with`] for another mode).
    pub fn write_atomic(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
        self.write_atomic_with(rel, Some(0o644), |f| f.write_all(bytes))
    }

    /// [`Root::write_atomic`] of what `write` writes, the file given `mode`
    /// (Unix permission bits; a temporary is private until then, so a
    /// published file must say who may read it).
    pub fn write_atomic_with(
        &self,
        rel: impl AsRef<Path>,
        mode: Option<u32>,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let rel = rel.as_ref();
        let name = rel
            .file_name()
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        let tmp = rel.with_file_name(temporary_name(name)?);
        let mut f = self.create_new(&tmp)?;
        let full_tmp = self.join(&tmp);
        let written = write(&mut f)
            .and_then(|()| set_mode(&f, mode))
            .and_then(|()| f.sync_all())
            .map_err(|e| annotate(e, &full_tmp));
        drop(f);
        let done = written
            .map_err(Error::from)
            .and_then(|()| self.rename(&tmp, rel));
        if done.is_err() {
            let _ = fs_err::remove_file(&full_tmp);
        }
        done?;
        sync_dir(self.join(rel).parent().unwrap_or(&self.path))
    }

    /// Renames `from` to `to` (both below the root; `to`'s parents must
    /// exist). A rename never follows a link at either end: a link at `to`
    /// is replaced, not written through.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let a = self
            .walk(from, false)?
            .ok_or_else(|| missing(&self.join(from)))?;
        let b = self
            .walk(to, false)?
            .ok_or_else(|| missing(&self.join(to)))?;
        retry_in_use(&b, faults::Op::Rename, || replace::rename(&a, &b))
            .map_err(|e| e.annotated(&a))
    }

    /// Removes a file or a link (never what a link points at). Returns
    /// whether something was there.
    pub fn remove_file(&self, rel: impl AsRef<Path>) -> Result<bool> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(false);
        };
        match retry_in_use(&p, faults::Op::Remove, || fs_err::remove_file(&p)) {
            Ok(()) => Ok(true),
            Err(Error::Io(e)) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes a directory tree without following links inside it (a link
    /// at `rel` itself is removed as a link). Returns whether something was
    /// there.
    pub fn remove_all(&self, rel: impl AsRef<Path>) -> Result<bool> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(false);
        };
        let m = match fs_err::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if not_found(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        retry_in_use(&p, faults::Op::Remove, || {
            if !m.is_dir() {
                return fs_err::remove_file(&p);
            }
            match fs_err::remove_dir_all(&p) {
                // A release may ship read-only directories: make them
                // writable (not following links) and try once more.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && cfg!(unix) => {
                    make_writable(&p);
                    fs_err::remove_dir_all(&p)
                }
                r => r,
            }
        })?;
        Ok(true)
    }

    /// Creates a symbolic link at `rel` (which must not exist) pointing at
    /// `target`.
    #[cfg(unix)]
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let p = self
            .walk(rel, true)?
            .ok_or_else(|| Error::BadPath { path: rel.into() })?;
        fs_err::os::unix::fs::symlink(target.as_ref(), &p)?;
        Ok(())
    }

    /// Reads the link at `rel` (`None` if missing; anything but a link is
    /// an error naming what it is).
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<Option<PathBuf>> {
        let Some(p) = self.walk(rel.as_ref(), false)? else {
            return Ok(None);
        };
        match fs_err::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => Ok(Some(fs_err::read_link(&p)?)),
            Ok(m) if m.is_dir() => Err(Error::NotAFile { path: p }),
            Ok(_) => Err(Error::NotAFile { path: p }),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Swaps two directories (or files) below the root in one atomic step:
    /// afterwards `a` holds what `b` held and the other way round. Fails
    /// with `ErrorKind::Unsupported` where the file system or OS has no such
    /// call (the caller then uses two renames under its journal).
    pub fn exchange(&self, a: impl AsRef<Path>, b: impl AsRef<Path>) -> Result<()> {
        let (a, b) = (a.as_ref(), b.as_ref());
        let pa = self.walk(a, false)?.ok_or_else(|| missing(&self.join(a)))?;
        let pb = self.walk(b, false)?.ok_or_else(|| missing(&self.join(b)))?;
        swap::exchange(&pa, &pb).map_err(|e| annotate(e, &pa).into())
    }

    /// What `rel` is on disk (not following it; the root itself, which
    /// is trusted, for an empty path): see [`Identity`].
    pub fn identity(&self, rel: impl AsRef<Path>) -> Result<Option<Identity>> {
        let rel = rel.as_ref();
        let p = if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            let Some(p) = self.walk(rel, false)? else {
                return Ok(None);
            };
            p
        };
        let m = match fs_err::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Some(Identity::Inode {
                dev: m.dev(),
                ino: m.ino(),
            }))
        }
        #[cfg(windows)]
        {
            let _ = m;
            let (dev, ino) = replace::file_id(&p).map_err(|e| annotate(e, &p))?;
            Ok(Some(Identity::Inode { dev, ino }))
        }
        #[cfg(not(any(unix, windows)))]
        {
            if !m.is_file() {
                return Ok(None);
            }
            let mut f = Self::open_at(&p, std::fs::OpenOptions::new().read(true), false)?;
            let mut h = blake3::Hasher::new();
            std::io::copy(&mut f, &mut h).map_err(|e| annotate(e, &p))?;
            Ok(Some(Identity::Blake3(h.finalize().to_hex().to_string())))
        }
    }

    /// Copies the regular file `from` (not followed) to `to` below the
    /// root, durably and atomically (replacing what `to` held): written to a
    /// temporary beside `to`, synced, renamed, the directory synced. `from` may be outside the root (it is
    /// read, never written).
    pub fn copy_in(&self, from: &Path, to: impl AsRef<Path>) -> Result<()> {
        let to = to.as_ref();
        let name = to
            .file_name()
            .ok_or_else(|| Error::BadPath { path: to.into() })?;
        let tmp = to.with_file_name(temporary_name(name)?);
        let mut src = Self::open_at(from, std::fs::OpenOptions::new().read(true), false)?;
        let mode = src.metadata().map_err(|e| annotate(e, from))?.permissions();
        let mut dst = self.create_new(&tmp)?;
        let full_tmp = self.join(&tmp);
        let copied = std::io::copy(&mut src, &mut dst)
            .and_then(|_| dst.set_permissions(mode))
            .and_then(|()| dst.sync_all())
            .map_err(|e| annotate(e, &full_tmp));
        drop(dst);
        let done = copied
            .map_err(Error::from)
            .and_then(|()| self.rename(&tmp, to));
        if done.is_err() {
            let _ = fs_err::remove_file(&full_tmp);
        }
        done?;
        sync_dir(self.join(to).parent().unwrap_or(&self.path))
    }

    /// Syncs the directory `rel` (or the root for an empty path).
    pub fn sync(&self, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        if rel.as_os_str().is_empty() {
            return sync_dir(&self.path);
        }
        let p = self
            .existing_dir(rel)?
            .ok_or_else(|| missing(&self.join(rel)))?;
        sync_dir(p)
    }
}

/// Creates one directory, `0755` whatever the umask (the mode is set on
/// it after creation; an existing directory is an `AlreadyExists` error).
fn make_dir(p: &Path) -> Result<()> {
    fs_err::create_dir(p)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Sets Unix permission bits on an open file (nothing elsewhere).
fn set_mode(f: &std::fs::File, mode: Option<u32>) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    #[cfg(not(unix))]
    let _ = (f, mode);
    Ok(())
}

/// An OS lock on a file, held until it is dropped (or the process dies,
/// whatever the file says).
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

impl Root {
    /// Takes the exclusive lock on `rel` (created if missing) without
    /// waiting, and writes this process's pid into it (best effort: a full
    /// disk must not fail a lock); [`Error::Locked`] names the holder.
    pub fn lock(&self, rel: impl AsRef<Path>) -> Result<Lock> {
        use std::io::{Seek, SeekFrom};
        let rel = rel.as_ref();
        let mut file = self.open_or_create(rel)?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.seek(SeekFrom::Start(0)))
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
                Err(Error::Locked {
                    path: self.join(rel),
                    pid,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(annotate(e, &self.join(rel)).into()),
        }
    }

    /// Whether another process holds the lock on `rel` (read-only).
    pub fn is_locked(&self, rel: impl AsRef<Path>) -> bool {
        self.open_rw(rel)
            .ok()
            .flatten()
            .is_some_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
    }
}

/// Attempts of an operation that meets a file in use.
const IN_USE_ATTEMPTS: u32 = 12;

/// Runs `f`, retrying with backoff (10 ms doubling to 0.5 s, about 3 s in
/// all) while another process holds `path`; then [`Error::InUse`].
fn retry_in_use<T>(
    path: &Path,
    op: faults::Op,
    mut f: impl FnMut() -> std::io::Result<T>,
) -> Result<T> {
    let mut delay = std::time::Duration::from_millis(10);
    for attempt in 1..=IN_USE_ATTEMPTS {
        let r = match faults::check(op, path) {
            Some(e) => Err(e),
            None => f(),
        };
        match r {
            Ok(v) => return Ok(v),
            Err(e) if faults::in_use(&e) && attempt < IN_USE_ATTEMPTS => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(500));
            }
            // Access denied may be a real permission error: reported as
            // it is once the retries are spent.
            Err(e) if faults::in_use(&e) && e.raw_os_error() != Some(5) => {
                return Err(Error::InUse {
                    path: path.to_owned(),
                    attempts: attempt,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::InUse {
        path: path.to_owned(),
        attempts: IN_USE_ATTEMPTS,
    })
}

impl Error {
    /// An I/O error with `p` in its message (unless it names it already).
    fn annotated(self, p: &Path) -> Error {
        match self {
            Error::Io(e) if !e.to_string().contains(&p.display().to_string()) => {
                Error::Io(annotate(e, p))
            }
            other => other,
        }
    }
}

/// Gives the owner write access to every directory of the tree at `p`
/// (links are not followed), so that it can be removed.
fn make_writable(p: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(m) = fs_err::symlink_metadata(p) else {
            return;
        };
        if !m.is_dir() {
            return;
        }
        let mode = m.permissions().mode() | 0o700;
        let _ = fs_err::set_permissions(p, std::fs::Permissions::from_mode(mode));
        if let Ok(rd) = fs_err::read_dir(p) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = p;
    }
}

/// `.<name>.tmp-<8 random hex>`: the temporaries of [`Root::write_atomic`].
fn temporary_name(name: &OsStr) -> Result<OsString> {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(
        ".tmp-{:02x}{:02x}{:02x}{:02x}",
        r[0], r[1], r[2], r[3]
    ));
    Ok(s)
}

/// Whether a directory entry is a temporary left by an interrupted
/// [`Root::write_atomic`] (safe to delete when no writer runs).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

fn missing(p: &Path) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{}: not found", p.display()),
    ))
}

/// An I/O error with the path in its message.
fn annotate(e: std::io::Error, p: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Syncs a directory so that renames and creations in it survive a power
/// loss. A no-op where directories cannot be synced (Windows, where
/// `MOVEFILE_WRITE_THROUGH` does that job).
pub fn sync_dir(dir: impl AsRef<Path>) -> Result<()> {
    #[cfg(unix)]
    fs_err::File::open(dir.as_ref())?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Release builds packages in parallel and each one ensures the
    /// repository: threads racing to create the same missing root (and its
    /// missing parents) must all succeed.
    #[test]
    fn racing_ensures_of_one_root_all_succeed() {
        for _ in 0..20 {
            let t = tempfile::tempdir().unwrap();
            let path = t.path().join("a/b/repo");
            let barrier = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Root::new(path.clone()).ensure()
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap().unwrap();
                }
            });
            assert!(path.is_dir());
        }
    }

    #[cfg(unix)]
    #[test]
    fn planted_links_are_refused_and_nothing_outside_is_touched() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().join("root"));
        root.ensure().unwrap();
        let outside = t.path().join("outside");
        fs_err::create_dir(&outside).unwrap();
        fs_err::write(outside.join("canary"), "canary").unwrap();
        // A link at the file itself.
        root.dir("cache").unwrap();
        std::os::unix::fs::symlink(outside.join("canary"), root.join("cache/x.part")).unwrap();
        assert!(matches!(
            root.create_new("cache/x.part"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.open_rw("cache/x.part"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.open_append("cache/x.part"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.open_or_create("cache/x.part"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.read("cache/x.part", 100),
            Err(Error::Link { .. })
        ));
        // A dangling link is refused too, and not created through.
        std::os::unix::fs::symlink(outside.join("new"), root.join("cache/y.part")).unwrap();
        assert!(matches!(
            root.create_new("cache/y.part"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.open_append("cache/y.part"),
            Err(Error::Link { .. })
        ));
        // A link in place of a directory.
        std::os::unix::fs::symlink(&outside, root.join("versions")).unwrap();
        assert!(matches!(root.dir("versions"), Err(Error::Link { .. })));
        assert!(matches!(
            root.create_new("versions/a"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(
            root.write_atomic("versions/s.json", b"x"),
            Err(Error::Link { .. })
        ));
        assert!(matches!(root.list("versions"), Err(Error::Link { .. })));
        // Removing a link removes the link only.
        assert!(root.remove_all("versions").unwrap());
        assert!(root.remove_file("cache/x.part").unwrap());
        assert_eq!(
            fs_err::read_to_string(outside.join("canary")).unwrap(),
            "canary"
        );
        assert_eq!(fs_err::read_dir(&outside).unwrap().count(), 1);
        // A hard link to a file outside is not written into.
        fs_err::hard_link(outside.join("canary"), root.join("cache/h.part")).unwrap();
        assert!(matches!(
            root.open_rw("cache/h.part"),
            Err(Error::HardLinked { links: 2, .. })
        ));
        assert!(matches!(
            root.open_append("cache/h.part"),
            Err(Error::HardLinked { .. })
        ));
        assert!(
            root.read("cache/h.part", 100).is_ok(),
            "reading is harmless"
        );
        assert!(root.remove_file("cache/h.part").unwrap());
        // A FIFO where a file should be: refused at once, never waited on.
        assert!(
            std::process::Command::new("mkfifo")
                .arg(root.join("cache/fifo"))
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            root.read("cache/fifo", 100),
            Err(Error::NotAFile { .. })
        ));
        assert!(matches!(
            root.open_or_create("cache/fifo"),
            Err(Error::NotAFile { .. } | Error::Io(_))
        ));
        // A read-only tree is removed all the same.
        root.write_atomic("ro/d/f", b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for d in ["ro/d", "ro"] {
            fs_err::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        assert!(root.remove_all("ro").unwrap());
        assert_eq!(root.kind("ro").unwrap(), None);
        // Bad relative paths are refused.
        for bad in ["../x", "/etc/x", "a/../b", ""] {
            assert!(
                matches!(root.kind(bad), Err(Error::BadPath { .. })),
                "{bad}"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_trees_atomically_and_identities_follow() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        root.write_atomic("a/x", b"old").unwrap();
        root.write_atomic("b/x", b"new").unwrap();
        let (ia, ib) = (root.identity("a").unwrap(), root.identity("b").unwrap());
        assert_ne!(ia, ib);
        root.exchange("a", "b").unwrap();
        assert_eq!(root.read("a/x", 9).unwrap().unwrap(), b"new");
        assert_eq!(root.read("b/x", 9).unwrap().unwrap(), b"old");
        assert_eq!(
            root.identity("a").unwrap(),
            ib,
            "the object moved, not its bytes"
        );
        assert!(matches!(root.exchange("a", "none"), Err(Error::Io(_))));
        // Copies are durable and keep the mode.
        root.copy_in(&t.path().join("a/x"), "c/y").unwrap();
        assert_eq!(root.read("c/y", 9).unwrap().unwrap(), b"new");
        root.copy_in(&t.path().join("b/x"), "c/y").unwrap();
        assert_eq!(root.read("c/y", 9).unwrap().unwrap(), b"old");
        assert_eq!(root.list("c").unwrap().len(), 1, "no temporary left");
    }

    #[test]
    fn a_file_in_use_is_retried_then_a_typed_error() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        root.write_atomic("a", b"1").unwrap();
        root.write_atomic("b", b"2").unwrap();
        let start = std::time::Instant::now();
        // Nothing injected: plain success.
        root.rename("a", "c").unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(faults::in_use(&std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            "busy"
        )));
        assert!(!faults::in_use(&std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "gone"
        )));
        let mut n = 0;
        let r: Result<()> = retry_in_use(Path::new("x"), faults::Op::Rename, || {
            n += 1;
            if n < 4 {
                Err(std::io::Error::new(
                    std::io::ErrorKind::ResourceBusy,
                    "busy",
                ))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(n, 4, "retried until it went through");
        let r: Result<()> = retry_in_use(Path::new("x"), faults::Op::Rename, || {
            Err(std::io::Error::new(
                std::io::ErrorKind::ResourceBusy,
                "busy",
            ))
        });
        assert!(matches!(r, Err(Error::InUse { attempts: 12, .. })), "{r:?}");
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        root.write_atomic("meta/state.json", b"one").unwrap();
        root.write_atomic("meta/state.json", b"two").unwrap();
        assert_eq!(root.read("meta/state.json", 10).unwrap().unwrap(), b"two");
        assert!(matches!(
            root.read("meta/state.json", 2),
            Err(Error::TooLarge { limit: 2, .. })
        ));
        assert_eq!(root.read("meta/none", 10).unwrap(), None);
        let names: Vec<_> = root.list("meta").unwrap();
        assert_eq!(names, [(OsString::from("state.json"), Kind::File)]);
        assert!(is_temporary(".state.json.tmp-0a1b2c3d"));
        assert!(!is_temporary("state.json"));
        // create_new never replaces.
        assert!(matches!(
            root.create_new("meta/state.json"),
            Err(Error::Io(_))
        ));
        let mut f = root.open_append("meta/log").unwrap();
        f.write_all(b"a").unwrap();
        drop(f);
        root.rename("meta/log", "meta/log2").unwrap();
        assert_eq!(root.kind("meta/log2").unwrap(), Some(Kind::File));
        assert_eq!(root.kind("meta/log").unwrap(), None);
        assert_eq!(root.kind("nope/deeper").unwrap(), None);
    }
}
