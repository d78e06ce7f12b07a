//! [`Updater`]: one install kept current from one repository. The steps
//! live in their own files (`trust`, `check`, `acquire`, `install`,
//! `health`); this one holds the type, the composed flows ([`Updater::update`],
//! [`Updater::scheduled`]) and what reads the install's state.

use std::path::PathBuf;

use deltapack_manifest::{PublicKey, Version};
use serde::Serialize;

use crate::history::{self, HistoryEntry};
use crate::lock::{self, Lock};
use crate::state::{Refusal, RefusalReason, Repair, State};
use crate::store::Store;
use crate::strategy::{Current, InstallKind, Strategy};
use crate::transport::Transport;
use crate::{Error, Event, Update, UpdaterBuilder};

/// Keeps one install current from one repository.
#[derive(Debug)]
pub struct Updater {
    pub(crate) transport: Transport,
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) channel: String,
    pub(crate) platform: String,
    pub(crate) store: Store,
    pub(crate) strategy: Strategy,
    /// The version the app says it is (see `UpdaterBuilder::current_version`).
    pub(crate) current_hint: Option<Version>,
    /// Built for local calls only (see `UpdaterBuilder::build_local`).
    pub(crate) local_only: bool,
    pub(crate) keep: usize,
    pub(crate) now: Option<u64>,
    pub(crate) health_launches: u32,
}

/// A version this install does not take, and the command that clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The version.
    pub version: Version,
    /// Why.
    pub reason: RefusalReason,
    /// Since when (Unix seconds; 0 if unknown).
    pub since: u64,
    /// The last error, for a broken release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The command that clears the refusal.
    pub clear_with: String,
}

/// A version on probation after an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probation {
    /// The version.
    pub version: Version,
    /// Launches seen so far.
    pub launches: u32,
}

/// What `status` reports (serialisable for dashboards).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The kind of install.
    pub kind: InstallKind,
    /// The install location: the root, the executable or the bundle.
    pub install_dir: PathBuf,
    /// The path the app runs from (`<root>/current`, the executable, the
    /// bundle).
    pub runs_from: PathBuf,
    /// Where the updater keeps its state.
    pub state_dir: PathBuf,
    /// This install's random id (its staged-rollout bucket); a copied or
    /// moved install draws a new one at its next check.
    pub install_id: String,
    /// The running version.
    pub current: Option<Version>,
    /// Versions on disk.
    pub installed: Vec<Version>,
    /// The channel followed.
    pub channel: String,
    /// The platform.
    pub platform: String,
    /// Last manifest sequence accepted.
    pub last_sequence: u64,
    /// When the repository was last checked (Unix seconds).
    pub last_check: Option<u64>,
    /// What the manifest accepted at that check offered this install:
    /// an update, or a newer version held back by the staged rollout or a
    /// refusal (`None` before the first check).
    pub at_last_check: Option<crate::check::AtLastCheck>,
    /// Versions not offered, why, and how to clear each.
    pub refused: Vec<Refused>,
    /// The version on probation, if any.
    pub on_probation: Option<Probation>,
    /// Kept versions that live processes still run from (not pruned
    /// until they stop; Linux).
    pub in_use: Vec<InUse>,
    /// What an earlier cleanup could not remove (retried at each start).
    pub leftovers: Vec<String>,
    /// Versions on disk holding files their release did not ship (app
    /// data, logs, caches): the current one's stay behind at the next
    /// update unless its release carries them; a kept one's go when it
    /// is pruned.
    pub unknown_files: Vec<UnknownFiles>,
}

/// Files in one version that its release did not ship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownFiles {
    /// The version.
    pub version: Version,
    /// Where its files are.
    pub path: PathBuf,
    /// The files.
    #[serde(flatten)]
    pub files: crate::Unknown,
}

/// A kept version that processes still run from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InUse {
    /// The version.
    pub version: Version,
    /// The processes.
    pub pids: Vec<u32>,
}

/// What [`Updater::scheduled`] did (in JSON, tagged by `kind`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tick {
    /// The interval has not passed; the next check is due at this time
    /// (Unix seconds).
    NotDue {
        /// When.
        next_check: u64,
    },
    /// Checked: nothing new.
    UpToDate,
    /// An update exists; `auto_download` is off.
    Available {
        /// The update.
        update: Update,
    },
    /// Downloaded; `auto_install` is off.
    Downloaded {
        /// The update.
        update: Update,
    },
    /// Installed.
    Installed {
        /// The version now current.
        version: Version,
    },
}

impl Updater {
    /// Starts building an updater.
    pub fn builder() -> UpdaterBuilder {
        UpdaterBuilder::default()
    }

    /// Takes the lock and deals first with whatever a killed updater left.
    pub(crate) fn lock(&self) -> Result<Lock, Error> {
        self.prepare()?;
        let l = lock::acquire(&self.store.root)?;
        self.store.refuse_links()?;
        self.strategy.refuse_links()?;
        crate::recover::recover(&self.store, &self.strategy)?;
        self.reidentify()?;
        Ok(l)
    }

    /// Makes the install's directories, or says this user cannot.
    fn prepare(&self) -> Result<(), Error> {
        self.strategy
            .prepare()
            .map_err(|e| lock::read_only(&self.store.root, e))
    }

    /// The download cache's lock: one downloader at a time, without the
    /// install's lock (see [`Updater::download`]).
    pub(crate) fn downloads_lock(&self) -> Result<deltapack_fs::Lock, Error> {
        self.prepare()?;
        let l = lock::take(&self.store.root, "downloads.lock")?;
        self.store.refuse_links()?;
        Ok(l)
    }

    /// The version the app's path holds; an install this updater did not
    /// make (or no longer recognises) is an error until a check identifies
    /// it ([`Updater::check`] does).
    pub(crate) fn current(&self) -> Result<Option<Version>, Error> {
        let st = self.state()?;
        match self.strategy.current(&st)? {
            Current::None => Ok(None),
            Current::Known(v) => Ok(Some(v)),
            Current::Unknown => match self.same_as_recorded(&st)? {
                Some(v) => Ok(Some(v)),
                None => Err(Error::Unidentified {
                    path: self.strategy.runs_from(),
                }),
            },
        }
    }

    /// The recorded version, if the app's path holds it though the object
    /// there changed (a copy, a restored backup): compared by tree digest.
    fn same_as_recorded(&self, st: &State) -> Result<Option<Version>, Error> {
        let Some(rec) = &st.current else {
            return Ok(None);
        };
        let Some(tree) = self.store.read_tree(&rec.version)? else {
            return Ok(None);
        };
        let at = self.strategy.runs_from();
        let scanned = if tree.paths.is_empty() {
            deltapack_tree::Tree::scan(&at)
        } else {
            deltapack_tree::Tree::scan_only(&at, &tree.paths.iter().cloned().collect())
        };
        Ok(scanned
            .ok()
            .filter(|t| deltapack_tree::hex(&t.id().digest) == tree.digest)
            .map(|_| rec.version.clone()))
    }

    /// Records the app path's new identity when it holds the recorded
    /// version under another (the caller holds the lock).
    fn reidentify(&self) -> Result<(), Error> {
        let mut st = self.state()?;
        if self.strategy.current(&st)? == Current::Unknown
            && self.same_as_recorded(&st)?.is_some()
            && let (Some(rec), Some(identity)) = (&mut st.current, self.strategy.identity()?)
        {
            rec.identity = identity;
            st.save(&self.store.root)?;
        }
        Ok(())
    }

    pub(crate) fn now(&self) -> u64 {
        self.now.unwrap_or_else(deltapack_manifest::unix_now)
    }

    pub(crate) fn state(&self) -> Result<State, Error> {
        State::load(&self.store.root)
    }

    pub(crate) fn platform_name(&self) -> &str {
        &self.platform
    }

    /// Check, download, apply and install in one call (`manual` ignores
    /// the staged rollout). Returns the version installed, if any.
    pub fn update(&self, manual: bool, progress: &dyn Fn(Event)) -> Result<Option<Version>, Error> {
        let Some(u) = self.check_with(manual, progress)? else {
            return Ok(None);
        };
        let s = self.download_and_apply(&u, progress)?;
        self.install(&s, progress)?;
        Ok(Some(u.version))
    }

    /// One background tick, for a timer or the app's idle loop: checks only
    /// when `config.check_interval_hours` have passed since the last check,
    /// and downloads and installs as far as `auto_download` and
    /// `auto_install` allow. Respects the staged rollout.
    pub fn scheduled(
        &self,
        config: &crate::Config,
        progress: &dyn Fn(Event),
    ) -> Result<Tick, Error> {
        let st = self.state()?;
        let now = self.now();
        if !config.check_due(st.last_check, now) {
            let next_check = st
                .last_check
                .unwrap_or(now)
                .saturating_add(config.check_interval_hours.saturating_mul(3600));
            return Ok(Tick::NotDue { next_check });
        }
        let Some(u) = self.check_with(false, progress)? else {
            return Ok(Tick::UpToDate);
        };
        if !config.auto_download {
            return Ok(Tick::Available { update: u });
        }
        if !config.auto_install {
            self.download(&u, progress)?;
            return Ok(Tick::Downloaded { update: u });
        }
        let s = self.download_and_apply(&u, progress)?;
        self.install(&s, progress)?;
        Ok(Tick::Installed { version: u.version })
    }

    /// Finishes or undoes an install that was interrupted (a kill, a power
    /// loss) and removes what it left behind. Every other call that changes
    /// the install does this first; apps may call it at start-up.
    pub fn recover(&self) -> Result<crate::Recovery, Error> {
        self.prepare()?;
        let _lock = lock::acquire(&self.store.root)?;
        crate::recover::recover(&self.store, &self.strategy)
    }

    /// Checks the install and the repository; read-only.
    pub fn diagnose(&self) -> Vec<crate::Check> {
        crate::doctor::diagnose(self)
    }

    /// Rebuilds an unreadable state file from what both of its copies, the
    /// history and the clock still say (`deltapack doctor --fix`), never
    /// lowering the manifest sequence or the time floor; then puts back a
    /// `current` that is not the link the updater writes, keeping every
    /// file (see [`Repair::current`](crate::Repair)).
    pub fn repair(&self) -> Result<Repair, Error> {
        let _lock = lock::acquire(&self.store.root)?;
        let history_max = history::read(&self.store.root)
            .map(|h| h.iter().map(|e| e.time).max().unwrap_or(0))
            .unwrap_or(0);
        let mut r = crate::state::repair(&self.store.root, self.now(), history_max)?;
        let st = self.state()?;
        r.current = self.strategy.repair(&st, &self.store, self.now())?;
        if r.current.is_some() {
            crate::recover::recover(&self.store, &self.strategy)?;
        }
        Ok(r)
    }

    /// Offers a refused version again (`deltapack update allow VERSION`).
    /// Returns whether it was refused.
    pub fn allow(&self, v: &Version) -> Result<bool, Error> {
        let _lock = self.lock()?;
        let mut st = self.state()?;
        let was = st.refused.remove(v).is_some() | st.broken.remove(v).is_some();
        if was {
            st.save(&self.store.root)?;
        }
        Ok(was)
    }

    /// The update history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        history::read(&self.store.root)
    }

    /// The install's state.
    pub fn status(&self) -> Result<Status, Error> {
        let st = self.state()?;
        let current = self.current()?;
        let mut installed = self.strategy.kept()?;
        installed.extend(current.clone());
        installed.sort();
        let unknown_files = self.unknown_files(&installed, current.as_ref())?;
        Ok(Status {
            kind: self.strategy.kind(),
            install_dir: self.strategy.location().to_owned(),
            runs_from: self.strategy.runs_from(),
            state_dir: self.store.path().to_owned(),
            install_id: st.install_id.clone(),
            current: current.clone(),
            installed,
            channel: self.channel.clone(),
            platform: self.platform.clone(),
            last_sequence: st.last_sequence,
            last_check: st.last_check,
            at_last_check: self.at_last_check(),
            refused: refused_list(&st.refused),
            on_probation: st.pending.map(|p| Probation {
                version: p.version,
                launches: p.launches,
            }),
            in_use: self
                .strategy
                .kept()?
                .into_iter()
                .filter_map(|v| {
                    let pids =
                        crate::in_use::processes_in(&self.strategy.tree(&v, current.as_ref()));
                    (!pids.is_empty()).then_some(InUse { version: v, pids })
                })
                .collect(),
            leftovers: crate::recover::leftovers(&self.store),
            unknown_files,
        })
    }

    /// [`Status::unknown_files`].
    fn unknown_files(
        &self,
        installed: &[Version],
        current: Option<&Version>,
    ) -> Result<Vec<UnknownFiles>, Error> {
        let mut out = Vec::new();
        if !self.strategy.holds_trees() {
            return Ok(out);
        }
        for v in installed {
            let Some(paths) = self.store.read_paths(v)? else {
                continue;
            };
            let path = self.strategy.tree(v, current);
            if let Some(files) =
                crate::carry::unknown(&path, &paths, &std::collections::BTreeSet::new())?
            {
                out.push(UnknownFiles {
                    version: v.clone(),
                    path,
                    files,
                });
            }
        }
        Ok(out)
    }
}

/// The refusals with the command that clears each.
pub(crate) fn refused_list(r: &std::collections::BTreeMap<Version, Refusal>) -> Vec<Refused> {
    r.iter()
        .map(|(v, why)| Refused {
            version: v.clone(),
            reason: why.reason,
            since: why.time,
            detail: why.detail.clone(),
            clear_with: format!("deltapack update allow {v}"),
        })
        .collect()
}
