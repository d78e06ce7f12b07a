//! The switch: [`Updater::install`] makes a staged version current with one
//! atomic change under a journal (see [`crate::recover`]), records it,
//! puts it on probation, and prunes versions beyond the ones kept. A
//! rollback goes through the same [`Updater::switch_to`].

use std::collections::BTreeSet;

use deltapack_manifest::Version;

use crate::history::{self, Action, HistoryEntry, Outcome};
use crate::recover::Journal;
use crate::state::Pending;
use crate::{Error, Event, Staged, Updater, policy};

impl Updater {
    /// Switches to the staged version atomically, records it, and prunes
    /// versions beyond the ones kept. A journal written before the switch
    /// lets the next start finish or undo an install that was killed half
    /// way ([`Updater::recover`]).
    pub fn install(&self, s: &Staged, progress: &dyn Fn(Event)) -> Result<(), Error> {
        let _lock = self.lock()?;
        let from = self.current()?;
        let entry = HistoryEntry {
            time: self.now(),
            action: if from.is_some() {
                Action::Update
            } else {
                Action::Install
            },
            from: from.clone(),
            to: s.update.version.clone(),
            path: s.steps.clone(),
            bytes: s.bytes,
            result: Outcome::Ok,
            note: s.note.clone(),
        };
        // Probation first: if the switch happens, the new version must prove
        // itself; if it does not, a stale probation names a version that is
        // not current and is ignored.
        let mut st = self.state()?;
        policy::forgive(&mut st, &s.update.version);
        if self.health_launches > 0 && from.is_some() {
            st.pending = Some(Pending {
                version: s.update.version.clone(),
                launches: 0,
            });
        }
        st.save(&self.store.root)?;
        self.switch_to(&entry)?;
        progress(Event::Installed {
            version: s.update.version.clone(),
        });
        // Best effort: a version that cannot be removed now is removed at
        // a later install; the switch has happened.
        let _ = self.prune();
        Ok(())
    }

    /// The journaled switch from `entry.from` to `entry.to`: the strategy's
    /// preparations, the journal, the one atomic change, the record.
    pub(crate) fn switch_to(&self, entry: &HistoryEntry) -> Result<(), Error> {
        let rec = self
            .strategy
            .plan(&self.store, &entry.to, entry.from.as_ref())?;
        crate::recover::begin(
            &self.store,
            &Journal {
                entry: entry.clone(),
                switch: Some(rec.clone()),
            },
        )?;
        if let Err(e) = self
            .strategy
            .commit(&self.store, &rec, &entry.to, entry.from.as_ref())
        {
            // Failed, not killed: if nothing changed, say so now rather
            // than leave the journal to a recovery that would record an
            // interruption.
            if !self.strategy.switched(&self.state()?, &rec, &entry.to)? {
                crate::recover::end(&self.store)?;
                let mut failed = entry.clone();
                failed.result = Outcome::Failed;
                failed.note = Some(format!("the switch failed: {}", e.full_message()));
                let _ = history::append(&self.store.root, &failed);
            }
            return Err(e);
        }
        crate::recover::record_switch(&self.store, &self.strategy, entry)?;
        crate::recover::end(&self.store)
    }

    /// Removes versions other than the current one and the `keep` most
    /// recently switched away from, with their recorded paths — except a
    /// version a live process still runs from (see [`crate::in_use`]),
    /// which waits for a later install.
    pub(crate) fn prune(&self) -> Result<(), Error> {
        let current = self.current()?;
        let mut keep: BTreeSet<Version> = current.iter().cloned().collect();
        // The most recent versions switched away from, newest first.
        for e in history::read(&self.store.root)?.iter().rev() {
            if keep.len() > self.keep {
                break;
            }
            if let Some(f) = &e.from {
                keep.insert(f.clone());
            }
        }
        for v in self.strategy.kept()? {
            if keep.contains(&v) {
                continue;
            }
            let at = self.strategy.tree(&v, current.as_ref());
            if !crate::in_use::processes_in(&at).is_empty() {
                continue;
            }
            self.strategy.remove(&self.store, &v, current.as_ref())?;
            self.store.remove_tree(&v)?;
        }
        Ok(())
    }
}
