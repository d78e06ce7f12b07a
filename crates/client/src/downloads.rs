//! The download cache: `<state>/downloads/<blake3>.dpk` (complete, size
//! and BLAKE3 checked against the signed manifest) and `<blake3>.part` (a
//! download under way, resumed by the next attempt).
//!
//! Files are named by their hash, so a resume only ever continues the same
//! artifact. Every file is opened through [`deltapack_fs::Root`]: a link
//! planted at a cache path is an error, never written through. A finished
//! file whose hash is wrong is deleted; if it had been resumed (bytes from
//! an earlier attempt or run, which a misbehaving server may have sent),
//! the package is downloaded once more from zero before the hash failure is
//! reported.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Artifact;

use crate::transport::{PartSink, Stream, Transport};
use crate::{Error, Event};

/// The cache directory, relative to the install root.
pub(crate) const DIR: &str = "downloads";

/// The download cache of one install.
pub(crate) struct Cache<'a> {
    root: &'a Root,
}

fn done_rel(a: &Artifact) -> PathBuf {
    Path::new(DIR).join(format!("{}.dpk", a.blake3))
}

fn part_rel(a: &Artifact) -> PathBuf {
    Path::new(DIR).join(format!("{}.part", a.blake3))
}

/// A `.part` file as the transport's sink.
struct Part {
    file: std::fs::File,
    len: u64,
    path: PathBuf,
}

impl Part {
    fn io(&self, e: std::io::Error) -> Error {
        Error::from(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", self.path.display()),
        ))
    }
}

impl PartSink for Part {
    fn len(&self) -> u64 {
        self.len
    }

    fn restart(&mut self) -> Result<(), Error> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(std::io::SeekFrom::Start(0)).map(drop))
            .map_err(|e| self.io(e))?;
        self.len = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|e| self.io(e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.file.sync_all().map_err(|e| self.io(e))
    }
}

impl<'a> Cache<'a> {
    pub(crate) fn new(root: &'a Root) -> Cache<'a> {
        Cache { root }
    }

    /// Removes every cached package and part whose BLAKE3 is not in
    /// `keep`, best effort: a file that cannot be removed now is tried
    /// again after the next install. Returns how many were removed.
    pub(crate) fn retain(&self, keep: &std::collections::BTreeSet<&str>) -> usize {
        let Ok(entries) = self.root.list(DIR) else {
            return 0;
        };
        let mut removed = 0;
        for (name, kind) in entries {
            let name = name.to_string_lossy();
            let hash = name
                .strip_suffix(".dpk")
                .or_else(|| name.strip_suffix(".part"))
                .unwrap_or(&name);
            if kind == Kind::Dir || keep.contains(hash) {
                continue;
            }
            if self
                .root
                .remove_file(Path::new(DIR).join(name.as_ref()))
                .unwrap_or(false)
            {
                removed += 1;
            }
        }
        removed
    }

    /// Whether nothing of `a` is in the cache yet (no file and no part; a
    /// link counts as something, and is refused when it is opened).
    pub(crate) fn is_fresh(&self, a: &Artifact) -> Result<bool, Error> {
        Ok(self.root.kind(done_rel(a))?.is_none() && self.root.kind(part_rel(a))?.is_none())
    }

    /// Whether `a` is complete in the cache.
    pub(crate) fn has(&self, a: &Artifact) -> Result<bool, Error> {
        Ok(self.root.kind(done_rel(a))? == Some(Kind::File))
    }

    /// Size and BLAKE3 of a cache file, read without following links.
    fn matches(&self, rel: &Path, a: &Artifact) -> Result<bool, Error> {
        let Some(mut f) = self.root.open_read(rel)? else {
            return Ok(false);
        };
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).map_err(|e| {
                Error::from(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.root.join(rel).display()),
                ))
            })?;
            if k == 0 {
                break;
            }
            n += k as u64;
            if n > a.size {
                return Ok(false);
            }
            h.update(&buf[..k]);
        }
        Ok(n == a.size && h.finalize().to_hex().as_str() == a.blake3)
    }

    fn open_part(&self, a: &Artifact) -> Result<Part, Error> {
        let rel = part_rel(a);
        let path = self.root.join(&rel);
        let file = match self.root.open_rw(&rel)? {
            Some(mut f) => {
                f.seek(std::io::SeekFrom::End(0)).map_err(Error::from)?;
                f
            }
            None => self.root.create_new(&rel)?,
        };
        let len = file.metadata().map_err(Error::from)?.len();
        Ok(Part { file, len, path })
    }

    /// The package on disk, downloading (or resuming) it first if needed.
    /// Returns its path and the bytes fetched now.
    pub(crate) fn fetch(
        &self,
        t: &Transport,
        a: &Artifact,
        progress: &dyn Fn(Event),
    ) -> Result<(PathBuf, u64), Error> {
        let done = done_rel(a);
        if self.has(a)? {
            if self.matches(&done, a)? {
                progress(Event::Downloaded {
                    path: a.path.clone(),
                    bytes: 0,
                });
                return Ok((self.root.join(&done), 0));
            }
            self.root.remove_file(&done)?;
        }
        self.root.dir(DIR)?;
        let on_bytes = |done: u64| {
            progress(Event::Downloading {
                path: a.path.clone(),
                done,
                total: a.size,
            });
        };
        let mut part = self.open_part(a)?;
        let got = t.download(&a.path, a.size, &mut part, &on_bytes);
        drop(part);
        let mut got = match got {
            Ok(g) => g,
            // The server does not resume as asked: the next attempt starts
            // from zero rather than trust this part again.
            Err(e @ Error::BadRange { .. }) => {
                self.root.remove_file(part_rel(a))?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if !self.matches(&part_rel(a), a)? {
            self.root.remove_file(part_rel(a))?;
            if !got.resumed {
                return Err(Error::ArtifactHash {
                    url: t.describe(&a.path),
                });
            }
            // Resumed bytes may be what was wrong: once more from zero.
            let mut part = self.open_part(a)?;
            let again = t.download(&a.path, a.size, &mut part, &on_bytes)?;
            drop(part);
            got.bytes += again.bytes;
            if !self.matches(&part_rel(a), a)? {
                self.root.remove_file(part_rel(a))?;
                return Err(Error::ArtifactHash {
                    url: t.describe(&a.path),
                });
            }
        }
        self.root.rename(part_rel(a), &done)?;
        self.root.sync(DIR)?;
        progress(Event::Downloaded {
            path: a.path.clone(),
            bytes: got.bytes,
        });
        Ok((self.root.join(&done), got.bytes))
    }

    /// Starts a streamed download of `a` (only when [`Cache::is_fresh`]):
    /// reading it yields the body and also writes it to the `.part` file,
    /// hashing as it goes.
    pub(crate) fn stream<'p>(
        &self,
        t: &Transport,
        a: &'p Artifact,
        progress: &'p dyn Fn(Event),
    ) -> Result<StreamDownload<'p>, Error> {
        self.root.dir(DIR)?;
        let body = t.stream(&a.path, a.size)?;
        let part = self.root.create_new(part_rel(a))?;
        Ok(StreamDownload {
            body,
            part,
            part_rel: part_rel(a),
            hasher: blake3::Hasher::new(),
            got: 0,
            artifact: a,
            url: t.describe(&a.path),
            progress,
        })
    }

    /// Ends a streamed download: reads whatever the applier left, checks
    /// length and hash, and keeps the package as `<blake3>.dpk`.
    pub(crate) fn finish(&self, mut s: StreamDownload<'_>) -> Result<PathBuf, Error> {
        let mut rest = [0u8; 4096];
        loop {
            match s.read(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::Network {
                        url: s.url.clone(),
                        cause: crate::error::Transfer::Source(
                            crate::source::SourceErrorKind::of_io(&e),
                        ),
                        attempts: 1,
                        source: Some(Box::new(e)),
                    });
                }
            }
        }
        s.part.sync_all().map_err(Error::from)?;
        if s.got != s.artifact.size || s.hasher.finalize().to_hex().as_str() != s.artifact.blake3 {
            self.root.remove_file(&s.part_rel)?;
            return Err(Error::ArtifactHash { url: s.url });
        }
        let done = done_rel(s.artifact);
        self.root.rename(&s.part_rel, &done)?;
        self.root.sync(DIR)?;
        (s.progress)(Event::Downloaded {
            path: s.artifact.path.clone(),
            bytes: s.got,
        });
        Ok(self.root.join(done))
    }
}

/// A package being downloaded while it is applied (see [`Cache::stream`]).
pub(crate) struct StreamDownload<'a> {
    body: Stream,
    part: std::fs::File,
    part_rel: PathBuf,
    hasher: blake3::Hasher,
    got: u64,
    artifact: &'a Artifact,
    url: String,
    progress: &'a dyn Fn(Event),
}

impl Read for StreamDownload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.body.read(buf)?;
        self.part.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.got += n as u64;
        (self.progress)(Event::Downloading {
            path: self.artifact.path.clone(),
            done: self.got,
            total: self.artifact.size,
        });
        Ok(n)
    }
}
