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
        let mut entry = HistoryEntry {
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
            carried: 0,
            unknown: None,
        };
        if let Some(f) = &from {
            self.carry_data(f, &s.update, &mut entry)?;
        }
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
        self.prune_downloads(&s.update.manifest, &s.update.version);
        Ok(())
    }

    /// Empties the download cache of what no later install can use: every
    /// package but those of releases newer than `installed` (a background
    /// download of the next update stays). Skipped while another process
    /// downloads.
    fn prune_downloads(&self, m: &deltapack_manifest::Manifest, installed: &Version) {
        let Ok(_downloads) = self.downloads_lock() else {
            return;
        };
        let keep: BTreeSet<&str> = m
            .releases
            .iter()
            .filter(|r| &r.version > installed)
            .filter_map(|r| r.platforms.get(self.platform_name()))
            .flat_map(|b| {
                std::iter::once(b.full.blake3.as_str())
                    .chain(b.deltas.iter().map(|d| d.artifact.blake3.as_str()))
            })
            .collect();
        crate::downloads::Cache::new(&self.store.root).retain(&keep);
    }

    /// Copies the new release's `carry` paths from the installed version
    /// `from` into the staged one, and records in `entry` what stays
    /// behind in `from` (files neither its release's nor carried).
    fn carry_data(
        &self,
        from: &Version,
        u: &crate::Update,
        entry: &mut HistoryEntry,
    ) -> Result<(), Error> {
        if !self.strategy.holds_trees() {
            return Ok(());
        }
        let (Some(old_paths), Some(new_paths)) = (
            self.store.read_paths(from)?,
            self.store.read_paths(&u.version)?,
        ) else {
            return Ok(());
        };
        let carry = u
            .manifest
            .release(&u.version)
            .map(|r| r.carry.clone())
            .unwrap_or_default();
        let old_dir = self.strategy.tree(from, Some(from));
        let new_dir = self.strategy.tree(&u.version, Some(from));
        let carried = crate::carry::carry(&old_dir, &new_dir, &carry, &new_paths)?;
        entry.carried = carried.len() as u64;
        entry.unknown = crate::carry::unknown(&old_dir, &old_paths, &carried)?;
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
            if let (true, Some(f)) = (e.action.is_switch(), &e.from) {
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
            // What it holds beyond its release is named before it goes.
            let unknown = match (&current, self.store.read_paths(&v)?) {
                (Some(_), Some(paths)) if self.strategy.holds_trees() => {
                    crate::carry::unknown(&at, &paths, &BTreeSet::new())?
                }
                _ => None,
            };
            self.strategy.remove(&self.store, &v, current.as_ref())?;
            self.store.remove_tree(&v)?;
            if let Some(cur) = &current {
                history::append(
                    &self.store.root,
                    &HistoryEntry {
                        time: self.now(),
                        action: Action::Prune,
                        from: Some(v.clone()),
                        to: cur.clone(),
                        path: Vec::new(),
                        bytes: 0,
                        result: Outcome::Ok,
                        note: None,
                        carried: 0,
                        unknown,
                    },
                )?;
            }
        }
        Ok(())
    }
}
