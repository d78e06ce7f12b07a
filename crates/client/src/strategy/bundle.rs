//! The bundle install: a directory at a fixed path that the OS, a dock or
//! a desktop file launches (`/opt/foo`, `/Applications/Foo.app`, an
//! AppImage directory).
//!
//! ```text
//! <parent>/<name>/                          the app, as released
//! <parent>/.<name>.deltapack/new-<v>/       version v built beside it (same file system)
//! <parent>/.<name>.deltapack/versions/<v>/  previous versions, for rollback
//! ```
//!
//! The switch swaps the new tree and the app's directory in one atomic step
//! (Linux `renameat2(RENAME_EXCHANGE)`, macOS `renamex_np(RENAME_SWAP)`);
//! the old tree, now where the new one was, is then renamed to
//! `versions/<old>`. Where no such call exists (Windows, some network file
//! systems) it is two renames — the app's directory to `versions/<old>`,
//! the new tree to the app's path — and a kill between them is finished by
//! the next start. What the app's path holds is recorded by identity
//! (device and inode; volume serial and file index on Windows), so a kill
//! at any point is resolved by looking at it.

use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Version;

use super::{Current, IdentityRecord, SwitchRecord, file_name, identity_at, parent};
use crate::Error;
use crate::state::State;
use crate::store::Store;

/// A bundle install.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    path: PathBuf,
    parent: Root,
    name: String,
    /// `.<name>.deltapack`, beside the bundle.
    side: PathBuf,
}

impl Bundle {
    pub(crate) fn new(path: PathBuf) -> Result<Bundle, Error> {
        let name = file_name(&path)?;
        Ok(Bundle {
            parent: Root::new(parent(&path)),
            side: PathBuf::from(format!(".{name}.deltapack")),
            name,
            path,
        })
    }

    fn staged_rel(&self, v: &Version) -> PathBuf {
        self.side.join(format!("new-{v}"))
    }

    fn kept_rel(&self, v: &Version) -> PathBuf {
        self.side.join("versions").join(v.to_string())
    }

    pub(crate) fn location(&self) -> &Path {
        &self.path
    }

    pub(crate) fn runs_from(&self) -> PathBuf {
        self.path.clone()
    }

    pub(crate) fn prepare(&self) -> Result<(), Error> {
        self.parent.ensure()?;
        self.parent.dir(self.side.join("versions"))?;
        Ok(())
    }

    pub(crate) fn refuse_links(&self) -> Result<(), Error> {
        for rel in [
            PathBuf::from(&self.name),
            self.side.clone(),
            self.side.join("versions"),
        ] {
            if self.parent.kind(&rel)? == Some(Kind::Link) {
                return Err(deltapack_fs::Error::Link {
                    path: self.parent.join(rel),
                }
                .into());
            }
        }
        Ok(())
    }

    pub(crate) fn current(&self, st: &State) -> Result<Current, Error> {
        let Some(now) = identity_at(&self.parent, &self.name)? else {
            return Ok(Current::None);
        };
        Ok(match &st.current {
            Some(rec) if rec.identity == now => Current::Known(rec.version.clone()),
            _ => Current::Unknown,
        })
    }

    pub(crate) fn kept(&self) -> Result<Vec<Version>, Error> {
        let mut v: Vec<Version> = self
            .parent
            .list(self.side.join("versions"))?
            .into_iter()
            .filter(|(_, k)| *k == Kind::Dir)
            .filter_map(|(n, _)| n.to_str().and_then(|s| Version::parse(s).ok()))
            .collect();
        v.sort();
        Ok(v)
    }

    pub(crate) fn tree(&self, v: &Version, current: Option<&Version>) -> PathBuf {
        if current == Some(v) {
            self.path.clone()
        } else {
            self.parent.join(self.kept_rel(v))
        }
    }

    pub(crate) fn staged(&self, v: &Version) -> Result<PathBuf, Error> {
        self.parent.dir(&self.side)?;
        Ok(self.parent.join(self.staged_rel(v)))
    }

    pub(crate) fn is_staged(&self, v: &Version) -> Result<bool, Error> {
        Ok(self.parent.kind(self.staged_rel(v))? == Some(Kind::Dir))
    }

    pub(crate) fn unstage(&self, v: &Version) -> Result<(), Error> {
        self.parent.remove_all(self.staged_rel(v))?;
        Ok(())
    }

    pub(crate) fn plan(
        &self,
        _store: &Store,
        to: &Version,
        _from: Option<&Version>,
    ) -> Result<SwitchRecord, Error> {
        let source = if self.parent.kind(self.staged_rel(to))? == Some(Kind::Dir) {
            self.staged_rel(to)
        } else if self.parent.kind(self.kept_rel(to))? == Some(Kind::Dir) {
            // A rollback swaps the kept tree in directly.
            self.kept_rel(to)
        } else {
            return Err(Error::Layout {
                reason: format!("version {to} is neither staged nor kept"),
            });
        };
        Ok(SwitchRecord {
            proof: identity_at(&self.parent, &source)?,
            source: Some(source.to_string_lossy().into_owned()),
        })
    }

    fn source(rec: &SwitchRecord) -> Result<PathBuf, Error> {
        rec.source
            .as_ref()
            .map(PathBuf::from)
            .ok_or_else(|| Error::Layout {
                reason: "a bundle switch without a source".into(),
            })
    }

    pub(crate) fn commit(
        &self,
        store: &Store,
        rec: &SwitchRecord,
        _to: &Version,
        from: Option<&Version>,
    ) -> Result<(), Error> {
        let source = Self::source(rec)?;
        let name = PathBuf::from(&self.name);
        if self.parent.kind(&name)?.is_none() {
            self.parent.rename(&source, &name)?;
            self.parent.sync("")?;
            return Ok(());
        }
        match self.parent.exchange(&source, &name) {
            Ok(()) => {
                self.parent.sync("")?;
                self.parent.sync(&self.side)?;
            }
            Err(deltapack_fs::Error::Io(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // Two renames; a kill between them is finished by `switched`.
                let away = self.away(from);
                self.parent.remove_all(&away)?;
                self.parent.rename(&name, &away)?;
                self.parent.rename(&source, &name)?;
                self.parent.sync("")?;
                self.parent.sync(&self.side)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.finish(store, rec, from)
    }

    /// Where the version being left goes.
    fn away(&self, from: Option<&Version>) -> PathBuf {
        match from {
            Some(v) => self.kept_rel(v),
            None => self.side.join("replaced"),
        }
    }

    pub(crate) fn switched(
        &self,
        _st: &State,
        rec: &SwitchRecord,
        _to: &Version,
    ) -> Result<bool, Error> {
        let source = Self::source(rec)?;
        let now = identity_at(&self.parent, &self.name)?;
        if now.is_none() && self.parent.kind(&source)? == Some(Kind::Dir) {
            // Killed between the two renames: the app's path is empty;
            // finish the switch.
            self.parent.rename(&source, &self.name)?;
            self.parent.sync("")?;
            return Ok(true);
        }
        Ok(match &rec.proof {
            Some(p) => now.as_ref() == Some(p),
            // No identity to compare: the source is gone only if moved in.
            None => now.is_some() && self.parent.kind(&source)?.is_none(),
        })
    }

    /// After the switch: what is left at the source is the old tree; it
    /// goes where kept versions go.
    pub(crate) fn finish(
        &self,
        _store: &Store,
        rec: &SwitchRecord,
        from: Option<&Version>,
    ) -> Result<(), Error> {
        let source = Self::source(rec)?;
        if self.parent.kind(&source)? == Some(Kind::Dir) {
            let away = self.away(from);
            if away != source {
                self.parent.remove_all(&away)?;
                self.parent.rename(&source, &away)?;
                self.parent.sync(self.side.join("versions"))?;
            }
        }
        // A tree replaced without a known version is not kept.
        self.parent.remove_all(self.side.join("replaced"))?;
        Ok(())
    }

    pub(crate) fn identity(&self) -> Result<Option<IdentityRecord>, Error> {
        identity_at(&self.parent, &self.name)
    }

    pub(crate) fn remove(
        &self,
        _store: &Store,
        v: &Version,
        current: Option<&Version>,
    ) -> Result<(), Error> {
        if current == Some(v) {
            return Ok(());
        }
        let trash = self.side.join(format!("trash-{v}"));
        self.parent.remove_all(&trash)?;
        if self.parent.kind(self.kept_rel(v))?.is_some() {
            self.parent.rename(self.kept_rel(v), &trash)?;
            self.parent.sync(self.side.join("versions"))?;
            self.parent.remove_all(&trash)?;
        }
        Ok(())
    }

    /// Applier staging and trees half deleted.
    pub(crate) fn cleanup(&self, c: &mut super::Cleanup) {
        c.sweep(&self.parent, &self.side, |n| {
            (n.starts_with(".new-") && n.contains(".dpk-")) || n.starts_with("trash-")
        });
    }
}
