//! The switch: [`Updater::install`] makes a staged version current with one
//! atomic rename under a journal (see [`crate::recover`]), records it, puts
//! it on probation, and prunes versions beyond the ones kept.

use std::collections::BTreeSet;

use deltapack_manifest::Version;

use crate::history::{self, Action, HistoryEntry, Outcome};
use crate::state::Pending;
use crate::{Error, Event, Staged, Updater, policy};

impl Updater {
    /// Switches `current` to the staged version atomically, records it,
    /// and prunes versions beyond the ones kept. A journal written before
    /// the switch lets the next start finish or undo an install that was
    /// killed half way ([`Updater::recover`]).
    pub fn install(&self, s: &Staged, progress: &dyn Fn(Event)) -> Result<(), Error> {
        let _lock = self.lock()?;
        let from = self.layout.current()?;
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
        crate::recover::begin(&self.layout, &entry)?;
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
        st.save(&self.layout.root)?;
        self.layout.switch(&s.update.version)?;
        history::append(&self.layout.root, &entry)?;
        crate::recover::end(&self.layout)?;
        progress(Event::Installed {
            version: s.update.version.clone(),
        });
        self.prune()
    }

    /// Removes versions other than the current one and the `keep` most
    /// recently switched away from.
    fn prune(&self) -> Result<(), Error> {
        let current = self.layout.current()?;
        let mut keep: BTreeSet<Version> = current.iter().cloned().collect();
        // The most recent versions switched away from, newest first.
        for e in history::read(&self.layout.root)?.iter().rev() {
            if keep.len() > self.keep {
                break;
            }
            if let Some(f) = &e.from {
                keep.insert(f.clone());
            }
        }
        for v in self.layout.installed()? {
            if !keep.contains(&v) {
                self.layout.remove(&v)?;
            }
        }
        Ok(())
    }
}
