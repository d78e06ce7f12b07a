//! Rollback and probation: [`Updater::rollback`] switches back to the
//! version installed before the current one; after an update the new
//! version is on probation, and [`Updater::launched`] rolls it back if it
//! has been launched `health_launches` times without
//! [`Updater::mark_healthy`]. A version left by a rollback is refused (see
//! [`crate::policy`]).

use deltapack_manifest::Version;
use serde::Serialize;

use crate::history::{self, Action, HistoryEntry, Outcome};
use crate::state::{Pending, RefusalReason};
use crate::{Error, Updater, policy};

/// What [`Updater::launched`] decided (in JSON, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Launch {
    /// Nothing is on probation.
    Healthy,
    /// The current version is on probation: this was launch `n`.
    OnProbation {
        /// Launches so far, this one included.
        launches: u32,
    },
    /// The current version is on probation, but this user cannot write the
    /// install ([`Error::ReadOnly`]): the launch was not counted.
    Unrecorded {
        /// Launches counted so far.
        launches: u32,
    },
    /// The new version never reported healthy: rolled back to `to`.
    RolledBack {
        /// The version left (and refused from now on).
        from: Version,
        /// The version now current.
        to: Version,
    },
}

impl Updater {
    /// Switches back to the version installed before the current one; the
    /// version left is not offered again until a newer one appears.
    pub fn rollback(&self) -> Result<Version, Error> {
        let _lock = self.lock()?;
        self.rollback_locked(Action::Rollback, None)
    }

    fn rollback_locked(&self, action: Action, note: Option<String>) -> Result<Version, Error> {
        let current = self.current()?.ok_or(Error::NothingInstalled)?;
        let history = history::read(&self.store.root)?;
        let kept = self.strategy.kept()?;
        let target = history
            .iter()
            .rev()
            .filter(|e| {
                e.result == Outcome::Ok
                    && e.to == current
                    && e.action.is_switch()
                    && !e.action.is_rollback()
            })
            .find_map(|e| e.from.clone())
            .filter(|v| kept.contains(v))
            .ok_or(Error::NoRollbackTarget)?;
        // The refusal first, so that a kill after the switch cannot bring
        // the version back; probation stays until the switch happened (a
        // kill before it lets the next launch roll back again).
        let mut st = self.state()?;
        let reason = match action {
            Action::AutoRollback => RefusalReason::AutoRollback,
            _ => RefusalReason::RolledBack,
        };
        policy::refuse(&mut st, &current, reason, self.now());
        st.save(&self.store.root)?;
        self.switch_to(&HistoryEntry {
            time: self.now(),
            action,
            from: Some(current),
            to: target.clone(),
            path: Vec::new(),
            bytes: 0,
            result: Outcome::Ok,
            note,
            carried: 0,
            unknown: None,
        })?;
        let mut st = self.state()?;
        st.pending = None;
        st.save(&self.store.root)?;
        Ok(target)
    }

    /// The running version works: ends its probation.
    pub fn mark_healthy(&self) -> Result<(), Error> {
        // Nothing to end needs no lock (nor the right to write).
        if self.state()?.pending.is_none() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut st = self.state()?;
        if st.pending.take().is_some() {
            st.save(&self.store.root)?;
        }
        Ok(())
    }

    /// Call at every app start. Finishes interrupted installs; if the
    /// current version is on probation and has been launched the allowed
    /// number of times without [`mark_healthy`](Updater::mark_healthy), rolls
    /// back to the previous version and refuses this one until a newer one
    /// appears.
    pub fn launched(&self) -> Result<Launch, Error> {
        let _lock = match self.lock() {
            Ok(l) => l,
            // A user who cannot write the install (a system-wide one) runs
            // the app all the same; what probation there is stays as it is.
            Err(Error::ReadOnly { .. }) => {
                return Ok(match self.state()?.pending {
                    None => Launch::Healthy,
                    Some(p) => Launch::Unrecorded {
                        launches: p.launches,
                    },
                });
            }
            Err(e) => return Err(e),
        };
        let current = self.current()?;
        let mut st = self.state()?;
        let Some(p) = st.pending.clone() else {
            return Ok(Launch::Healthy);
        };
        if current.as_ref() != Some(&p.version) {
            st.pending = None;
            st.save(&self.store.root)?;
            return Ok(Launch::Healthy);
        }
        if p.launches >= self.health_launches {
            let note = format!(
                "{} launches without mark_healthy: rolled back automatically",
                p.launches
            );
            let to = self.rollback_locked(Action::AutoRollback, Some(note))?;
            return Ok(Launch::RolledBack {
                from: p.version,
                to,
            });
        }
        let launches = p.launches + 1;
        st.pending = Some(Pending {
            version: p.version,
            launches,
        });
        st.save(&self.store.root)?;
        Ok(Launch::OnProbation { launches })
    }
}
