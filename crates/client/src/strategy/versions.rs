//! The versions install: versions side by side and an atomically switched
//! `current` pointer (Unix).
//!
//! ```text
//! <root>/current -> versions/<version>     relative symlink, the only switch
//! <root>/versions/<version>/               one complete tree per version
//! <root>/.deltapack/                       the state directory (see `store.rs`)
//! ```
//!
//! A version directory appears only by the applier's final rename (the tree
//! is complete and verified before it has its name), and `current` changes
//! only by renaming a new symlink over it, then syncing the directory: after
//! a crash at any point, `current` names a whole old or a whole new version.
//! The symlink is the truth about what is installed.
//!
//! Every path below the root is reached through [`deltapack_fs::Root`], so
//! a link planted in place of `versions/`, `.deltapack/` or any file the
//! client writes is an error naming it. A version directory that is a link
//! is not a version.
//!
//! On Windows, where links need privileges, `current` is a small file
//! holding the version (`1.2.0`), replaced by `MoveFileExW`
//! (`MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH`, in
//! [`deltapack_fs::Root::write_atomic`]); the app is started through
//! `deltapack-launcher` (copied to `<root>/<app>.exe`), which reads it and
//! runs `versions/<v>/<app>.exe`. A version whose files are in use is not
//! deleted: pruning retries it at a later install.

use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use deltapack_manifest::Version;

use super::{Current, IdentityRecord, SwitchRecord};
use crate::Error;
use crate::state::State;
use crate::store::{SCRATCH, Store};

/// The state directory's name under the root.
pub(crate) const META: &str = ".deltapack";
const VERSIONS: &str = "versions";
const CURRENT: &str = "current";

/// A versions install.
#[derive(Debug, Clone)]
pub(crate) struct Versions {
    pub(crate) root: Root,
}

fn version_rel(v: &Version) -> PathBuf {
    Path::new(VERSIONS).join(v.to_string())
}

impl Versions {
    pub(crate) fn new(root: PathBuf) -> Versions {
        Versions {
            root: Root::new(root),
        }
    }

    /// The state directory inside the root.
    pub(crate) fn store_path(&self) -> PathBuf {
        self.root.join(META)
    }

    pub(crate) fn location(&self) -> &Path {
        self.root.path()
    }

    /// `<root>/current` (a link to the version) on Unix; the current
    /// version's directory on Windows (where `current` is a file).
    pub(crate) fn runs_from(&self) -> PathBuf {
        #[cfg(windows)]
        if let Ok(Some(p)) = self.pointer() {
            return self.root.join(p);
        }
        self.root.join(CURRENT)
    }

    pub(crate) fn prepare(&self) -> Result<(), Error> {
        self.root.ensure()?;
        // The state directory is reached through the root: it may not be
        // a link either.
        self.root.dir(META)?;
        Ok(())
    }

    pub(crate) fn refuse_links(&self) -> Result<(), Error> {
        for rel in [META, VERSIONS] {
            if self.root.kind(rel)? == Some(Kind::Link) {
                return Err(deltapack_fs::Error::Link {
                    path: self.root.join(rel),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Whether version `v`'s directory is a real directory.
    fn has(&self, v: &Version) -> Result<bool, Error> {
        Ok(self.root.kind(version_rel(v))? == Some(Kind::Dir))
    }

    /// Reads the `current` file (Windows).
    #[cfg(windows)]
    fn pointer(&self) -> Result<Option<PathBuf>, Error> {
        let Some(bytes) = self.root.read(CURRENT, 64).map_err(|e| match e {
            deltapack_fs::Error::TooLarge { path, .. } => Error::Layout {
                reason: format!("{} is not a version", path.display()),
            },
            e => e.into(),
        })?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        Ok(Some(Path::new(VERSIONS).join(text)))
    }

    /// Reads the `current` link (Unix).
    #[cfg(not(windows))]
    fn pointer(&self) -> Result<Option<PathBuf>, Error> {
        match self.root.read_link(CURRENT) {
            Ok(t) => Ok(t),
            Err(deltapack_fs::Error::NotAFile { path }) => Err(Error::BrokenCurrent {
                path,
                reason: "not a symbolic link".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn current(&self, _st: &State) -> Result<Current, Error> {
        let Some(target) = self.pointer()? else {
            return Ok(Current::None);
        };
        let name = target
            .strip_prefix(VERSIONS)
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|s| Version::parse(s).ok())
            .ok_or_else(|| Error::BrokenCurrent {
                path: self.root.join(CURRENT),
                reason: format!("points at {}, not at versions/<version>", target.display()),
            })?;
        if !self.has(&name)? {
            return Err(Error::BrokenCurrent {
                path: self.root.join(CURRENT),
                reason: format!("points at version {name}, which is not installed"),
            });
        }
        Ok(Current::Known(name))
    }

    /// Versions present on disk (real directories named by a version),
    /// oldest first.
    fn installed(&self) -> Result<Vec<Version>, Error> {
        let mut v: Vec<Version> = self
            .root
            .list(VERSIONS)?
            .into_iter()
            .filter(|(_, k)| *k == Kind::Dir)
            .filter_map(|(n, _)| n.to_str().and_then(|s| Version::parse(s).ok()))
            .collect();
        v.sort();
        Ok(v)
    }

    pub(crate) fn kept(&self) -> Result<Vec<Version>, Error> {
        let current = match self.current(&State::default())? {
            Current::Known(v) => Some(v),
            _ => None,
        };
        Ok(self
            .installed()?
            .into_iter()
            .filter(|v| Some(v) != current.as_ref())
            .collect())
    }

    pub(crate) fn tree(&self, v: &Version, _current: Option<&Version>) -> PathBuf {
        self.root.join(version_rel(v))
    }

    pub(crate) fn staged(&self, v: &Version) -> Result<PathBuf, Error> {
        self.root.dir(VERSIONS)?;
        Ok(self.root.join(version_rel(v)))
    }

    pub(crate) fn is_staged(&self, v: &Version) -> Result<bool, Error> {
        self.has(v)
    }

    pub(crate) fn unstage(&self, v: &Version) -> Result<(), Error> {
        self.remove_dir(v)
    }

    pub(crate) fn plan(
        &self,
        _store: &Store,
        to: &Version,
        _from: Option<&Version>,
    ) -> Result<SwitchRecord, Error> {
        if !self.has(to)? {
            return Err(Error::Layout {
                reason: format!("version {to} is not installed"),
            });
        }
        Ok(SwitchRecord {
            proof: None,
            source: Some(version_rel(to).to_string_lossy().into_owned()),
        })
    }

    /// Points `current` at `to` atomically and durably.
    pub(crate) fn commit(
        &self,
        _store: &Store,
        _rec: &SwitchRecord,
        to: &Version,
        _from: Option<&Version>,
    ) -> Result<(), Error> {
        #[cfg(windows)]
        let done = Ok(self
            .root
            .write_atomic(CURRENT, format!("{to}\n").as_bytes())?);
        #[cfg(not(windows))]
        let done = self.switch_link(to);
        done
    }

    #[cfg(not(windows))]
    fn switch_link(&self, to: &Version) -> Result<(), Error> {
        let tmp = format!(".current-{to}.tmp");
        self.root.remove_file(&tmp)?;
        self.symlink(&version_rel(to), &tmp)?;
        self.root.rename(&tmp, CURRENT)?;
        self.root.sync("")?;
        Ok(())
    }

    pub(crate) fn switched(
        &self,
        st: &State,
        _rec: &SwitchRecord,
        to: &Version,
    ) -> Result<bool, Error> {
        Ok(self.current(st)? == Current::Known(to.clone()))
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
        Ok(None)
    }

    #[cfg(unix)]
    fn symlink(&self, target: &Path, rel: &str) -> Result<(), Error> {
        Ok(self.root.symlink(target, rel)?)
    }

    #[cfg(not(any(unix, windows)))]
    fn symlink(&self, _target: &Path, _rel: &str) -> Result<(), Error> {
        Err(Error::Layout {
            reason: "the current-version switch needs symlinks on this OS".into(),
        })
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
        self.remove_dir(v)
    }

    /// Renames a version directory away, then deletes it, so a crash never
    /// leaves a half-deleted tree under a version's name.
    fn remove_dir(&self, v: &Version) -> Result<(), Error> {
        if !self.has(v)? {
            return Ok(());
        }
        self.root.dir(Path::new(META).join(SCRATCH))?;
        let trash = Path::new(META).join(SCRATCH).join(format!("trash-{v}"));
        self.root.remove_all(&trash)?;
        self.root.rename(version_rel(v), &trash)?;
        self.root.sync(VERSIONS)?;
        self.root.remove_all(&trash)?;
        Ok(())
    }

    /// Applier staging (`versions/.<v>.dpk-*`), half-made `current`
    /// links (`.current-*.tmp`) and the temporaries of a `current` file.
    pub(crate) fn cleanup(&self, c: &mut super::Cleanup) {
        c.sweep(&self.root, Path::new(VERSIONS), |n| {
            n.starts_with('.') && n.contains(".dpk-")
        });
        c.sweep(&self.root, Path::new(""), |n| {
            (n.starts_with(".current-") && n.ends_with(".tmp")) || deltapack_fs::is_temporary(n)
        });
    }
}

/// What `current` holds when it is not the canonical link.
#[cfg(not(windows))]
impl Versions {
    /// Makes `current` the canonical relative link `versions/<v>` again,
    /// keeping every file: a link written another way (absolute,
    /// `./versions/X`, a trailing slash) or dangling is pointed at the
    /// version it meant, else the recorded one, else the newest installed;
    /// a real directory (a backup restored with `cp -rL`) becomes
    /// `versions/<v>` when it holds version `v`'s release files unchanged
    /// (the version's old directory is moved aside), and is otherwise moved
    /// aside to `current.restored-<time>`. Returns what was done, or `None`
    /// when `current` was fine.
    pub(crate) fn repair(
        &self,
        st: &State,
        store: &Store,
        now: u64,
    ) -> Result<Option<String>, Error> {
        let kind = self.root.kind(CURRENT)?;
        if kind.is_none() || self.current(st).is_ok() {
            return Ok(None);
        }
        let recorded = st.current.as_ref().map(|r| r.version.clone());
        let installed = self.installed()?;
        let fallback = recorded
            .clone()
            .filter(|v| installed.contains(v))
            .or_else(|| installed.last().cloned());
        let none = || {
            Error::Layout {
            reason: "current is broken and no version is installed: reinstall with `deltapack update install --to VERSION`".into(),
        }
        };
        if kind == Some(Kind::Link) {
            let target = self.root.read_link(CURRENT)?.unwrap_or_default();
            let meant = self
                .meant(&target)
                .filter(|v| installed.contains(v))
                .or(fallback)
                .ok_or_else(none)?;
            self.switch_link(&meant)?;
            return Ok(Some(format!(
                "current pointed at {}: now at versions/{meant}",
                target.display()
            )));
        }
        // A directory (or a file) in place of the link: what the app has
        // been running from, so nothing in it is deleted.
        let held = installed
            .iter()
            .rev()
            .find(|v| self.holds(store, v).unwrap_or(false))
            .cloned();
        let aside = format!("current.restored-{now}");
        let done = match (held, kind) {
            (Some(v), Some(Kind::Dir)) => {
                let old = format!("versions-{v}.restored-{now}");
                self.root.rename(version_rel(&v), &old)?;
                self.root.rename(CURRENT, version_rel(&v))?;
                self.root.sync(VERSIONS)?;
                self.switch_link(&v)?;
                format!(
                    "current was a directory holding {v}: it is versions/{v} now; the earlier versions/{v} is kept at {old}"
                )
            }
            _ => {
                let v = fallback.ok_or_else(none)?;
                self.root.rename(CURRENT, &aside)?;
                self.switch_link(&v)?;
                format!(
                    "current was not a link to a version: moved aside to {aside} (kept); now at versions/{v}"
                )
            }
        };
        Ok(Some(done))
    }

    /// The version a link target names, however it is written.
    fn meant(&self, target: &Path) -> Option<Version> {
        let rel = if target.is_absolute() {
            let root = fs_err::canonicalize(self.root.path()).ok()?;
            let t = target
                .strip_prefix(self.root.path())
                .ok()
                .map(Path::to_owned);
            t.or_else(|| target.strip_prefix(&root).ok().map(Path::to_owned))?
        } else {
            target.to_owned()
        };
        let mut parts = rel
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir));
        match (parts.next(), parts.next(), parts.next()) {
            (
                Some(std::path::Component::Normal(d)),
                Some(std::path::Component::Normal(v)),
                None,
            ) if d == VERSIONS => Version::parse(v.to_str()?).ok(),
            _ => None,
        }
    }

    /// Whether the directory `current` holds version `v`'s release files
    /// unchanged (other files may be there too).
    fn holds(&self, store: &Store, v: &Version) -> Result<bool, Error> {
        let Some(rec) = store.read_tree(v)? else {
            return Ok(false);
        };
        let at = self.root.join(CURRENT);
        let tree = if rec.paths.is_empty() {
            deltapack_tree::Tree::scan(&at)
        } else {
            deltapack_tree::Tree::scan_only(&at, &rec.paths.iter().cloned().collect())
        };
        Ok(tree.is_ok_and(|t| deltapack_tree::hex(&t.id().digest) == rec.digest))
    }
}
