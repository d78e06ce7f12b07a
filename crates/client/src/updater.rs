//! [`Updater`]: one install kept current from one repository. The steps
//! live in their own files (`trust`, `check`, `acquire`, `install`,
//! `health`); this one holds the type, the composed flows ([`Updater::update`],
//! [`Updater::scheduled`]) and what reads the install's state.

use std::path::PathBuf;

use deltapack_manifest::{PublicKey, Version};
use serde::Serialize;

use crate::history::{self, HistoryEntry};
use crate::layout::Layout;
use crate::lock::{self, Lock};
use crate::state::{Refusal, RefusalReason, Repair, State};
use crate::transport::Transport;
use crate::{Error, Event, Update, UpdaterBuilder};

/// Keeps one install current from one repository.
#[derive(Debug)]
pub struct Updater {
    pub(crate) transport: Transport,
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) channel: String,
    pub(crate) platform: String,
    pub(crate) layout: Layout,
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
    /// The install root.
    pub install_dir: PathBuf,
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
    /// Versions not offered, why, and how to clear each.
    pub refused: Vec<Refused>,
    /// The version on probation, if any.
    pub on_probation: Option<Probation>,
}

/// What [`Updater::scheduled`] did.
#[derive(Debug, Clone, Serialize)]
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
    Available(Update),
    /// Downloaded; `auto_install` is off.
    Downloaded(Update),
    /// Installed.
    Installed(Version),
}

impl Updater {
    /// Starts building an updater.
    pub fn builder() -> UpdaterBuilder {
        UpdaterBuilder::default()
    }

    /// Takes the lock and deals first with whatever a killed updater left.
    pub(crate) fn lock(&self) -> Result<Lock, Error> {
        let l = lock::acquire(&self.layout.root)?;
        self.layout.refuse_links()?;
        crate::recover::recover(&self.layout)?;
        Ok(l)
    }

    pub(crate) fn now(&self) -> u64 {
        self.now.unwrap_or_else(deltapack_manifest::unix_now)
    }

    pub(crate) fn state(&self) -> Result<State, Error> {
        State::load(&self.layout.root)
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
            return Ok(Tick::Available(u));
        }
        if !config.auto_install {
            self.download(&u, progress)?;
            return Ok(Tick::Downloaded(u));
        }
        let s = self.download_and_apply(&u, progress)?;
        self.install(&s, progress)?;
        Ok(Tick::Installed(u.version))
    }

    /// Finishes or undoes an install that was interrupted (a kill, a power
    /// loss) and removes what it left behind. Every other call that changes
    /// the install does this first; apps may call it at start-up.
    pub fn recover(&self) -> Result<crate::Recovery, Error> {
        let _lock = lock::acquire(&self.layout.root)?;
        crate::recover::recover(&self.layout)
    }

    /// Checks the install and the repository; read-only.
    pub fn diagnose(&self) -> Vec<crate::Check> {
        crate::doctor::diagnose(self, &self.layout)
    }

    /// Rebuilds an unreadable state file from what both of its copies, the
    /// history and the clock still say (`deltapack doctor --fix`). Never
    /// lowers the manifest sequence or the time floor.
    pub fn repair(&self) -> Result<Repair, Error> {
        let _lock = lock::acquire(&self.layout.root)?;
        let history_max = history::read(&self.layout.root)
            .map(|h| h.iter().map(|e| e.time).max().unwrap_or(0))
            .unwrap_or(0);
        crate::state::repair(&self.layout.root, self.now(), history_max)
    }

    /// Offers a refused version again (`deltapack update allow VERSION`).
    /// Returns whether it was refused.
    pub fn allow(&self, v: &Version) -> Result<bool, Error> {
        let _lock = self.lock()?;
        let mut st = self.state()?;
        let was = st.refused.remove(v).is_some() | st.broken.remove(v).is_some();
        if was {
            st.save(&self.layout.root)?;
        }
        Ok(was)
    }

    /// The update history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        history::read(&self.layout.root)
    }

    /// The install's state.
    pub fn status(&self) -> Result<Status, Error> {
        let st = self.state()?;
        Ok(Status {
            install_dir: self.layout.path().to_owned(),
            current: self.layout.current()?,
            installed: self.layout.installed()?,
            channel: self.channel.clone(),
            platform: self.platform.clone(),
            last_sequence: st.last_sequence,
            last_check: st.last_check,
            refused: refused_list(&st.refused),
            on_probation: st.pending.map(|p| Probation {
                version: p.version,
                launches: p.launches,
            }),
        })
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
