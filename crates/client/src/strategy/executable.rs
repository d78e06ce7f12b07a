//! The executable install: one file replaced in place, for a command-line
//! tool that updates itself (`mytool update`).
//!
//! ```text
//! <dir>/<name>                 the executable, as released (a single-file package)
//! <dir>/.<name>.new-<v>        version v staged beside it (same file system)
//! <state>/kept/<v>             previous versions, for rollback
//! ```
//!
//! The switch renames the staged file over the executable (Unix: one
//! `rename`, atomic, allowed while it runs). On Windows a running `.exe`
//! can be renamed but not replaced: it is moved aside to
//! `.<name>.old-<v>`, the new one moved in, and the aside copy deleted at a
//! later start. The previous version is first kept in the state directory
//! (a durable copy). What the path
//! holds is recorded by identity (device and inode on Unix, volume serial
//! and file index on Windows), so a kill at any point is resolved by
//! looking at it.

use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Version;

use super::{Current, IdentityRecord, SwitchRecord, file_name, identity_at, parent};
use crate::Error;
use crate::state::State;
use crate::store::{KEPT, Store};

/// An executable install.
#[derive(Debug, Clone)]
pub(crate) struct Executable {
    path: PathBuf,
    dir: Root,
    name: String,
    /// The state directory, where previous versions are kept.
    store: Root,
}

fn kept_rel(v: &Version) -> PathBuf {
    Path::new(KEPT).join(v.to_string())
}

impl Executable {
    pub(crate) fn new(path: PathBuf, store: &Path) -> Result<Executable, Error> {
        let name = file_name(&path)?;
        Ok(Executable {
            dir: Root::new(parent(&path)),
            name,
            path,
            store: Root::new(store),
        })
    }

    fn staged_name(&self, v: &Version) -> String {
        format!(".{}.new-{v}", self.name)
    }

    pub(crate) fn location(&self) -> &Path {
        &self.path
    }

    pub(crate) fn runs_from(&self) -> PathBuf {
        self.path.clone()
    }

    pub(crate) fn prepare(&self) -> Result<(), Error> {
        self.dir.ensure()?;
        Ok(())
    }

    pub(crate) fn refuse_links(&self) -> Result<(), Error> {
        match self.dir.kind(&self.name)? {
            Some(Kind::Link) => Err(deltapack_fs::Error::Link {
                path: self.path.clone(),
            }
            .into()),
            Some(Kind::File) | None => Ok(()),
            Some(_) => Err(deltapack_fs::Error::NotAFile {
                path: self.path.clone(),
            }
            .into()),
        }
    }

    pub(crate) fn current(&self, st: &State) -> Result<Current, Error> {
        let Some(now) = identity_at(&self.dir, &self.name)? else {
            return Ok(Current::None);
        };
        Ok(match &st.current {
            Some(rec) if rec.identity == now => Current::Known(rec.version.clone()),
            _ => Current::Unknown,
        })
    }

    pub(crate) fn kept(&self) -> Result<Vec<Version>, Error> {
        let mut v: Vec<Version> = self
            .store
            .list(KEPT)?
            .into_iter()
            .filter(|(_, k)| *k == Kind::File)
            .filter_map(|(n, _)| n.to_str().and_then(|s| Version::parse(s).ok()))
            .collect();
        v.sort();
        Ok(v)
    }

    pub(crate) fn tree(&self, v: &Version, current: Option<&Version>) -> PathBuf {
        if current == Some(v) {
            self.path.clone()
        } else {
            self.store.join(kept_rel(v))
        }
    }

    pub(crate) fn staged(&self, v: &Version) -> Result<PathBuf, Error> {
        self.dir.ensure()?;
        Ok(self.dir.join(self.staged_name(v)))
    }

    pub(crate) fn is_staged(&self, v: &Version) -> Result<bool, Error> {
        Ok(self.dir.kind(self.staged_name(v))? == Some(Kind::File))
    }

    pub(crate) fn unstage(&self, v: &Version) -> Result<(), Error> {
        self.dir.remove_file(self.staged_name(v))?;
        Ok(())
    }

    pub(crate) fn plan(
        &self,
        _store: &Store,
        to: &Version,
        from: Option<&Version>,
    ) -> Result<SwitchRecord, Error> {
        // Keep the version being left, for rollback (a durable copy).
        if let Some(from) = from
            && self.dir.kind(&self.name)? == Some(Kind::File)
            && self.store.kind(kept_rel(from))?.is_none()
        {
            self.store.dir(KEPT)?;
            self.store.copy_in(&self.path, kept_rel(from))?;
        }
        // The new version beside the executable: staged by the applier, or
        // copied from where it was kept (a rollback).
        let staged = self.staged_name(to);
        if self.dir.kind(&staged)? != Some(Kind::File) {
            if self.store.kind(kept_rel(to))? != Some(Kind::File) {
                return Err(Error::Layout {
                    reason: format!("version {to} is neither staged nor kept"),
                });
            }
            self.dir.copy_in(&self.store.join(kept_rel(to)), &staged)?;
        }
        Ok(SwitchRecord {
            proof: identity_at(&self.dir, &staged)?,
            source: Some(staged),
        })
    }

    pub(crate) fn commit(
        &self,
        _store: &Store,
        rec: &SwitchRecord,
        to: &Version,
        from: Option<&Version>,
    ) -> Result<(), Error> {
        let staged = self.staged_name(to);
        #[cfg(windows)]
        if self.dir.kind(&self.name)?.is_some() {
            // A running .exe can be renamed, not replaced.
            let aside = format!(
                ".{}.old-{}",
                self.name,
                from.map_or_else(|| "unknown".to_owned(), ToString::to_string)
            );
            self.dir.remove_file(&aside)?;
            self.dir.rename(&self.name, &aside)?;
        }
        let _ = (rec, from);
        self.dir.rename(&staged, &self.name)?;
        self.dir.sync("")?;
        Ok(())
    }

    pub(crate) fn switched(
        &self,
        _st: &State,
        rec: &SwitchRecord,
        _to: &Version,
    ) -> Result<bool, Error> {
        let source = rec.source.as_deref().unwrap_or("");
        let now = identity_at(&self.dir, &self.name)?;
        if now.is_none() && !source.is_empty() && self.dir.kind(source)? == Some(Kind::File) {
            // Killed between moving the old one aside and moving the new
            // one in (Windows): finish the second rename.
            self.dir.rename(source, &self.name)?;
            self.dir.sync("")?;
            return Ok(true);
        }
        Ok(rec.proof.is_some() && now == rec.proof)
    }

    pub(crate) fn finish(
        &self,
        _store: &Store,
        _rec: &SwitchRecord,
        _from: Option<&Version>,
    ) -> Result<(), Error> {
        Ok(())
    }

    pub(crate) fn identity(&self) -> Result<Option<IdentityRecord>, Error> {
        identity_at(&self.dir, &self.name)
    }

    pub(crate) fn remove(
        &self,
        _store: &Store,
        v: &Version,
        _current: Option<&Version>,
    ) -> Result<(), Error> {
        self.store.remove_file(kept_rel(v))?;
        Ok(())
    }

    /// Applier staging beside the executable, and (on Windows) old
    /// executables moved aside, once they are not running.
    pub(crate) fn cleanup(&self, c: &mut super::Cleanup) {
        let staging = format!("..{}.new-", self.name);
        let aside = format!(".{}.old-", self.name);
        let mut later = super::Cleanup::default();
        later.sweep(&self.dir, Path::new(""), |n| {
            (n.starts_with(&staging) && n.contains(".dpk-")) || n.starts_with(&aside)
        });
        c.removed.append(&mut later.removed);
        // An old .exe that still runs cannot be deleted yet: not worth a
        // report, it goes at a later start.
        c.left
            .extend(later.left.into_iter().filter(|l| !l.contains(&aside)));
    }
}
