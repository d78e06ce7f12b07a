//! Getting an update's new version built beside the old one: download its
//! packages (or stream them into the applier as they arrive), rebuild and
//! verify, and — by [`crate::policy`] — fall back to the full bundle when a
//! delta fails for any reason that is not this machine's.
//!
//! Each package is bound to the signed manifest twice: its bytes by size
//! and BLAKE3 (the download cache), and its header — platform, base
//! version, target version, target tree digest — by the applier's
//! [`deltapack_apply::Expected`], checked before the first byte is
//! written.

use std::path::PathBuf;

use deltapack_apply::{Applier, Expected};
use deltapack_manifest::{Manifest, Version};

use crate::downloads::Cache;
use crate::history::{self, Action, HistoryEntry, Outcome};
use crate::plan::{Path as UpdatePath, Step};
use crate::policy::{self, Failed};
use crate::{Error, Event, Update, Updater};

/// Packages of an update on disk, hash-checked.
#[derive(Debug, Clone)]
pub struct Downloaded {
    update: Update,
    path: UpdatePath,
    files: Vec<PathBuf>,
    bytes: u64,
    note: Option<String>,
}

impl Downloaded {
    /// The update.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The packages downloaded (the full bundle after a fallback).
    pub fn path(&self) -> &UpdatePath {
        &self.path
    }

    /// Why a fallback to the full bundle was taken, if it was.
    pub fn fallback(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

/// A rebuilt, verified version waiting to be switched to.
#[derive(Debug, Clone)]
pub struct Staged {
    pub(crate) update: Update,
    pub(crate) steps: Vec<String>,
    pub(crate) bytes: u64,
    pub(crate) note: Option<String>,
}

impl Staged {
    /// Why a fallback to the full bundle was taken, if it was.
    pub fn fallback(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The packages applied, e.g. `delta 1.0.0->1.1.0`.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    /// Bytes of the packages it was built from (downloaded by this run or
    /// by an earlier [`Updater::download`]).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// One path rebuilt: the steps applied and the bytes of their packages.
struct Built {
    steps: Vec<String>,
    bytes: u64,
}

/// Where each step's package comes from.
enum Sources<'a> {
    /// Files on disk, hash-checked.
    Files(&'a [PathBuf]),
    /// Streamed from the repository into the applier (nothing on disk yet).
    Streamed,
}

fn step_name(s: &Step) -> String {
    s.to_string()
}

/// How a fallback note begins.
const FALLBACK: &str = "delta failed, used the full bundle: ";

fn fallback_note(reason: &str) -> String {
    format!("{FALLBACK}{reason}")
}

impl Updater {
    /// Downloads the update's packages (resuming, retrying, hash-checked).
    /// If a delta cannot be downloaded intact, the full bundle is
    /// downloaded instead ([`Downloaded::fallback`] says why).
    ///
    /// It takes the download cache's own lock, not the install's, so the
    /// fast calls an app makes at start (`launched`, `check`, `status`) are
    /// not blocked by a download running in the background.
    pub fn download(&self, u: &Update, progress: &dyn Fn(Event)) -> Result<Downloaded, Error> {
        let _lock = self.downloads_lock()?;
        self.check_space(u.download_bytes)?;
        let first = self.fetch_path(&u.path, progress);
        let reason = match first {
            Ok((files, bytes)) => {
                return Ok(Downloaded {
                    update: u.clone(),
                    path: u.path.clone(),
                    files,
                    bytes,
                    note: None,
                });
            }
            Err(f) if u.path.is_full() || !policy::falls_back(&f.error) => {
                return Err(self.give_up(u, None, f));
            }
            Err(f) => f.error.full_message(),
        };
        progress(Event::Fallback {
            reason: reason.clone(),
        });
        let full = match self
            .full_path(u)
            .and_then(|full| self.check_space(full.bytes()).map(|()| full))
        {
            Ok(f) => f,
            Err(e) => return Err(self.give_up(u, Some(reason), e.into())),
        };
        match self.fetch_path(&full, progress) {
            Ok((files, bytes)) => Ok(Downloaded {
                update: u.clone(),
                path: full,
                files,
                bytes,
                note: Some(fallback_note(&reason)),
            }),
            Err(f) => Err(self.give_up(u, Some(reason), f)),
        }
    }

    /// Rebuilds the new version beside the current one and verifies it.
    /// If a delta does not apply (the installed tree was modified, say),
    /// the full bundle is downloaded and used instead; the reason is kept.
    pub fn apply(&self, d: &Downloaded, progress: &dyn Fn(Event)) -> Result<Staged, Error> {
        let _lock = self.lock()?;
        let _downloads = self.downloads_lock()?;
        let u = &d.update;
        if let Some(s) = self.reuse(u, d.bytes)? {
            return Ok(s);
        }
        self.check_space(u.tree_bytes)?;
        let first = self
            .apply_sources(
                &u.manifest,
                &d.path.steps,
                Sources::Files(&d.files),
                progress,
            )
            .map(|steps| Built {
                steps,
                bytes: d.bytes,
            });
        self.with_fallback(u, &d.path, first, d.note.clone(), progress)
    }

    /// [`download`](Updater::download) then [`apply`](Updater::apply), but
    /// packages not yet on disk are applied while they arrive (each is
    /// still kept, and checked against its size and BLAKE3 at the end). If
    /// streaming fails for any reason, the same packages are downloaded
    /// the ordinary way (resuming what arrived) and applied; if a delta
    /// still fails, the full bundle is used.
    pub fn download_and_apply(
        &self,
        u: &Update,
        progress: &dyn Fn(Event),
    ) -> Result<Staged, Error> {
        let _lock = self.lock()?;
        let _downloads = self.downloads_lock()?;
        if let Some(s) = self.reuse(u, 0)? {
            return Ok(s);
        }
        self.check_space(u.download_bytes.saturating_add(u.tree_bytes))?;
        let first = self.build_path(u, &u.path, progress);
        self.with_fallback(u, &u.path, first, None, progress)
    }

    /// The policy around one attempt at `tried`: its result, or after a
    /// delta failed for a reason that is not local, the full bundle's.
    fn with_fallback(
        &self,
        u: &Update,
        tried: &UpdatePath,
        first: Result<Built, Failed>,
        note: Option<String>,
        progress: &dyn Fn(Event),
    ) -> Result<Staged, Error> {
        let reason = match first {
            Ok(b) => {
                return Ok(Staged {
                    update: u.clone(),
                    steps: b.steps,
                    bytes: b.bytes,
                    note,
                });
            }
            Err(f) if tried.is_full() || !policy::falls_back(&f.error) => {
                // A full bundle downloaded after a delta failed: that
                // reason is part of the story.
                let earlier = note
                    .as_deref()
                    .and_then(|n| n.strip_prefix(FALLBACK))
                    .map(str::to_owned);
                return Err(self.give_up(u, earlier, f));
            }
            Err(f) => f.error.full_message(),
        };
        progress(Event::Fallback {
            reason: reason.clone(),
        });
        let full = match self.full_path(u).and_then(|full| {
            self.check_space(full.bytes().saturating_add(u.tree_bytes))
                .map(|()| full)
        }) {
            Ok(f) => f,
            Err(e) => return Err(self.give_up(u, Some(reason), e.into())),
        };
        match self.build_path(u, &full, progress) {
            Ok(b) => Ok(Staged {
                update: u.clone(),
                steps: b.steps,
                bytes: b.bytes,
                note: Some(fallback_note(&reason)),
            }),
            Err(f) => Err(self.give_up(u, Some(reason), f)),
        }
    }

    /// Ends a failed update: records it (best effort), counts it against
    /// the release if the policy says so, and returns the error.
    fn give_up(&self, u: &Update, delta_failed: Option<String>, f: Failed) -> Error {
        let record = || -> Result<(), Error> {
            let detail = f.error.full_message();
            if policy::against_release(&f) {
                let mut st = self.state()?;
                policy::count_broken(&mut st, &u.version, detail.clone(), self.now());
                st.save(&self.store.root)?;
            }
            let note = match &delta_failed {
                Some(d) => format!("delta failed: {d}; the full bundle failed too: {detail}"),
                None => detail,
            };
            history::append(
                &self.store.root,
                &HistoryEntry {
                    time: self.now(),
                    action: if u.from.is_some() {
                        Action::Update
                    } else {
                        Action::Install
                    },
                    from: u.from.clone(),
                    to: u.version.clone(),
                    path: Vec::new(),
                    bytes: 0,
                    result: Outcome::Failed,
                    note: Some(note),
                    carried: 0,
                    unknown: None,
                },
            )
        };
        // The failure being reported matters more than its record.
        if !matches!(f.error, Error::Busy { .. }) {
            let _ = record();
        }
        f.error
    }

    /// The target as an earlier run staged it, or as it is kept from
    /// before (a downgrade, a reinstall), if it is exactly the release:
    /// then nothing is downloaded. A staged copy that is not is removed.
    fn reuse(&self, u: &Update, bytes: u64) -> Result<Option<Staged>, Error> {
        let current = self.current()?;
        let at = if self.strategy.is_staged(&u.version)? {
            self.strategy.staged(&u.version)?
        } else if self.strategy.kept()?.contains(&u.version) {
            self.strategy.tree(&u.version, current.as_ref())
        } else {
            return Ok(None);
        };
        if self.tree_matches(&u.manifest, &u.version, &at)? {
            return Ok(Some(Staged {
                update: u.clone(),
                steps: vec![format!("reuse {}", u.version)],
                bytes,
                note: None,
            }));
        }
        if self.strategy.is_staged(&u.version)? {
            self.strategy.unstage(&u.version)?;
        }
        Ok(None)
    }

    /// Whether the tree at `at` is version `v` as released (its recorded
    /// paths only, when they were recorded).
    fn tree_matches(&self, m: &Manifest, v: &Version, at: &std::path::Path) -> Result<bool, Error> {
        let Some(b) = m.release(v).and_then(|r| r.platforms.get(&self.platform)) else {
            return Ok(false);
        };
        let tree = match self.store.read_paths(v)? {
            Some(paths) if self.strategy.holds_trees() => {
                deltapack_tree::Tree::scan_only(at, &paths)
            }
            _ => deltapack_tree::Tree::scan(at),
        };
        Ok(tree.is_ok_and(|t| deltapack_tree::hex(&t.id().digest) == b.tree.digest))
    }

    /// Fails early, before anything is written, when the disk cannot hold
    /// `needed` more bytes (plus a 1% margin).
    fn check_space(&self, needed: u64) -> Result<(), Error> {
        let dir = self.strategy.space_dir();
        let available = fs4::available_space(&dir)?;
        let needed = needed.saturating_add(needed / 100);
        if available < needed {
            return Err(Error::NoSpace {
                path: dir,
                needed,
                available,
            });
        }
        Ok(())
    }

    /// Downloads every package of `path` into the cache (those an earlier
    /// run downloaded are reused). Returns the files and the bytes of the
    /// packages, however much of them this call fetched: what the update
    /// cost, as its history records.
    fn fetch_path(
        &self,
        path: &UpdatePath,
        progress: &dyn Fn(Event),
    ) -> Result<(Vec<PathBuf>, u64), Failed> {
        let cache = Cache::new(&self.store.root);
        let mut files = Vec::new();
        for s in &path.steps {
            let (file, _fetched_now) = cache.fetch(&self.transport, &s.artifact, progress)?;
            files.push(file);
        }
        Ok((files, path.bytes()))
    }

    /// Builds `path`: streamed when nothing of it is on disk yet, and the
    /// ordinary way (download, then apply) otherwise or when streaming
    /// failed.
    fn build_path(
        &self,
        u: &Update,
        path: &UpdatePath,
        progress: &dyn Fn(Event),
    ) -> Result<Built, Failed> {
        let cache = Cache::new(&self.store.root);
        let mut fresh = true;
        for s in &path.steps {
            fresh &= cache.is_fresh(&s.artifact)?;
        }
        if fresh
            && let Ok(steps) =
                self.apply_sources(&u.manifest, &path.steps, Sources::Streamed, progress)
        {
            return Ok(Built {
                steps,
                bytes: path.bytes(),
            });
        }
        let (files, bytes) = self.fetch_path(path, progress)?;
        let steps =
            self.apply_sources(&u.manifest, &path.steps, Sources::Files(&files), progress)?;
        Ok(Built { steps, bytes })
    }

    /// What the manifest says step `s`'s package must be.
    fn expected(&self, m: &Manifest, s: &Step) -> Expected {
        let target = m
            .release(&s.to)
            .and_then(|r| r.platforms.get(&self.platform))
            .and_then(|b| b.tree.digest_bytes());
        Expected {
            platform: Some(self.platform.clone()),
            from_version: Some(s.from.as_ref().map(Version::to_string).unwrap_or_default()),
            to_version: Some(s.to.to_string()),
            // A manifest always has a digest; `[0; 32]` would match nothing.
            target: Some(target.unwrap_or([0; 32])),
        }
    }

    /// Applies the steps in order, each on the previous one's output (the
    /// first on the current version, restricted to its release paths). A
    /// failure of a package whose bytes are checked against the manifest's
    /// BLAKE3 as they are read is marked verified.
    fn apply_sources(
        &self,
        m: &Manifest,
        steps: &[Step],
        sources: Sources<'_>,
        progress: &dyn Fn(Event),
    ) -> Result<Vec<String>, Failed> {
        self.store
            .root
            .remove_all(crate::store::SCRATCH)
            .map_err(Error::from)?;
        let scratch = self.store.scratch_dir()?;
        let current = self.current()?;
        let mut base = current.as_ref().map(|v| self.strategy.tree(v, Some(v)));
        let mut base_paths = match &current {
            Some(v) if self.strategy.holds_trees() => self.store.read_paths(v)?,
            _ => None,
        };
        let mut done = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            progress(Event::Applying { to: s.to.clone() });
            let last = i + 1 == steps.len();
            let out = if last {
                self.strategy.staged(&s.to)?
            } else {
                scratch.join(s.to.to_string())
            };
            let base_dir = s.from.as_ref().and(base.as_deref());
            let mut applier = Applier::new().expect(self.expected(m, s));
            if s.from.is_some()
                && let Some(paths) = base_paths.take()
            {
                applier = applier.base_paths(paths);
            }
            let package = s.artifact.path.clone();
            let apply_err = |source| policy::apply_error(&package, source);
            let report = match &sources {
                Sources::Files(files) => {
                    let file = files.get(i).ok_or(Error::Config("a package is missing"))?;
                    let rel = file.strip_prefix(self.store.path()).unwrap_or(file);
                    let f = self
                        .store
                        .root
                        .open_read(rel)?
                        .ok_or_else(|| Error::ArtifactHash {
                            url: file.display().to_string(),
                        })?;
                    let mut pkg = Checked::new(std::io::BufReader::new(f));
                    match applier.apply(base_dir, &mut pkg, &out, &|_| {}) {
                        Ok(r) => r,
                        Err(source) => {
                            // Only bytes that are the signed ones count
                            // against the release.
                            let verified = pkg.finish_matches(&s.artifact);
                            return Err(Failed {
                                error: apply_err(source),
                                verified,
                            });
                        }
                    }
                }
                Sources::Streamed => {
                    let cache = Cache::new(&self.store.root);
                    let mut stream = cache.stream(&self.transport, &s.artifact, progress)?;
                    let report = applier
                        .apply(base_dir, &mut stream, &out, &|_| {})
                        .map_err(apply_err);
                    match report.and_then(|r| cache.finish(stream).map(|_| r)) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = if last {
                                self.strategy.unstage(&s.to)
                            } else {
                                self.store
                                    .root
                                    .remove_all(
                                        std::path::Path::new(crate::store::SCRATCH)
                                            .join(s.to.to_string()),
                                    )
                                    .map(drop)
                                    .map_err(Error::from)
                            };
                            return Err(e.into());
                        }
                    }
                }
            };
            if last && let Some(id) = &report.target {
                let paths = if self.strategy.holds_trees() {
                    report.paths.clone()
                } else {
                    Vec::new()
                };
                self.store.write_tree(
                    &s.to,
                    &crate::store::TreeRecord {
                        digest: deltapack_tree::hex(&id.digest),
                        paths,
                    },
                )?;
            }
            done.push(step_name(s));
            base = Some(out);
        }
        // Best effort: recovery removes scratch at the next start.
        let _ = self.store.root.remove_all(crate::store::SCRATCH);
        Ok(done)
    }
}

/// A package read from the cache, hashed as the applier reads it.
struct Checked<R> {
    inner: R,
    hasher: blake3::Hasher,
    read: u64,
}

impl<R: std::io::Read> Checked<R> {
    fn new(inner: R) -> Checked<R> {
        Checked {
            inner,
            hasher: blake3::Hasher::new(),
            read: 0,
        }
    }

    /// Reads what the applier left and says whether the whole file is the
    /// artifact the manifest describes.
    fn finish_matches(&mut self, a: &deltapack_manifest::Artifact) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match std::io::Read::read(self, &mut buf) {
                Ok(0) => break,
                Ok(_) if self.read <= a.size => {}
                Ok(_) | Err(_) => return false,
            }
        }
        self.read == a.size && self.hasher.finalize().to_hex().as_str() == a.blake3
    }
}

impl<R: std::io::Read> std::io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
