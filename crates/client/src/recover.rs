//! Finishing or undoing what a killed updater left behind.
//!
//! Every switch (an install or a rollback) is ordered around a journal,
//! `<state>/journal.json`: the strategy first does what can be done before
//! the switch ([`crate::strategy::Strategy::plan`]), the journal is
//! written with the change (from, to, packages) and the proof of the
//! switch, the strategy makes its one atomic change, the state and history
//! are recorded, and the journal is deleted. On the next start, [`recover`]
//! reads the journal and asks the strategy whether the change happened
//! (`current` names the target; the app's path holds the proof's object):
//!
//! - it did: finish the strategy's tidying, record the version and the
//!   history entry, delete the journal;
//! - it did not: record the attempt as interrupted and delete the journal
//!   (the staged version is whole and is reused by the next attempt).
//!
//! It also removes debris that is never in use once no updater runs:
//! applier staging, half-made links and temporaries, the scratch directory
//! (chain intermediates, trees being deleted).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::history::{self, HistoryEntry, Outcome};
use crate::state::State;
use crate::store::{SCRATCH, Store};
use crate::strategy::{Installed, Strategy, SwitchRecord};

const JOURNAL: &str = "journal.json";

/// What an interrupted switch was doing (the journal's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub(crate) entry: HistoryEntry,
    /// How the strategy switches (absent in journals of older clients,
    /// which only had the versions install).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) switch: Option<SwitchRecord>,
}

/// What a recovery ([`crate::Updater::recover`]) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// An interrupted install that had switched and was finished.
    pub finished: Option<String>,
    /// An interrupted install that had not switched and was undone.
    pub undone: Option<String>,
    /// Debris removed (paths relative to where it was).
    pub removed: Vec<String>,
    /// Debris that could not be removed now (the path and why): left for
    /// a later start, never a reason to fail.
    pub left: Vec<String>,
}

impl Recovery {
    /// Whether anything was found.
    pub fn is_empty(&self) -> bool {
        self.finished.is_none()
            && self.undone.is_none()
            && self.removed.is_empty()
            && self.left.is_empty()
    }
}

/// Parses a journal's bytes.
pub(crate) fn parse_journal(bytes: &[u8]) -> Result<Journal, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Writes the journal durably (before the switch).
pub(crate) fn begin(store: &Store, j: &Journal) -> Result<(), Error> {
    let bytes = serde_json::to_vec(j).map_err(|e| Error::State {
        path: store.root.join(JOURNAL),
        reason: e.to_string(),
    })?;
    Ok(store.root.write_atomic(JOURNAL, &bytes)?)
}

/// Deletes the journal (after the switch and the record).
pub(crate) fn end(store: &Store) -> Result<(), Error> {
    store.root.remove_file(JOURNAL)?;
    Ok(store.root.sync("")?)
}

/// Whether a switch was interrupted (a journal is there).
pub(crate) fn pending(store: &Store) -> Result<bool, Error> {
    Ok(store.root.kind(JOURNAL)?.is_some())
}

/// Records that the switch to `entry.to` happened: the version at the
/// app's path (executable and bundle installs), then the history entry
/// (once: a kill after it was appended does not append it again).
pub(crate) fn record_switch(
    store: &Store,
    strategy: &Strategy,
    entry: &HistoryEntry,
) -> Result<(), Error> {
    if let Some(identity) = strategy.identity()? {
        let mut st = State::load(&store.root)?;
        st.current = Some(Installed {
            version: entry.to.clone(),
            identity,
        });
        st.save(&store.root)?;
    }
    if history::read(&store.root)?.last() == Some(entry) {
        return Ok(());
    }
    history::append(&store.root, entry)
}

/// Finishes or undoes an interrupted switch and removes debris. The
/// caller holds the install lock.
pub(crate) fn recover(store: &Store, strategy: &Strategy) -> Result<Recovery, Error> {
    let mut r = Recovery::default();
    let journal = store.root.read(JOURNAL, 1 << 20).or_else(|e| match e {
        // Bigger than any journal written: unreadable, undo.
        deltapack_fs::Error::TooLarge { .. } => Ok(Some(Vec::new())),
        e => Err(e),
    })?;
    if let Some(bytes) = journal {
        match parse_journal(&bytes) {
            Ok(j) => {
                let st = State::load(&store.root)?;
                let rec = j.switch.clone().unwrap_or(SwitchRecord {
                    proof: None,
                    source: None,
                });
                if strategy.switched(&st, &rec, &j.entry.to)? {
                    strategy.finish(store, &rec, j.entry.from.as_ref())?;
                    record_switch(store, strategy, &j.entry)?;
                    r.finished = Some(format!("{} -> {}", fmt(&j.entry.from), j.entry.to));
                } else {
                    let mut e = j.entry.clone();
                    e.result = Outcome::Interrupted;
                    e.note = Some("killed before the switch; the old version stayed".into());
                    history::append(&store.root, &e)?;
                    r.undone = Some(format!("{} -> {}", fmt(&j.entry.from), j.entry.to));
                }
            }
            // A torn journal was written before the switch could start.
            Err(_) => r.undone = Some("unreadable journal".into()),
        }
        end(store)?;
    }
    let mut c = crate::strategy::Cleanup::default();
    c.sweep(&store.root, std::path::Path::new(""), |name| {
        deltapack_fs::is_temporary(name)
            || name.starts_with(".state-")
            || name == "journal.json.tmp"
            || name == SCRATCH
    });
    strategy.cleanup(&mut c);
    r.removed = c.removed;
    r.left = c.left;
    Ok(r)
}

/// What a previous cleanup could not remove and is still there (for
/// `status` and `doctor`), found without removing anything.
pub(crate) fn leftovers(store: &Store) -> Vec<String> {
    let trash = store
        .root
        .list(SCRATCH)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| store.root.join(SCRATCH).join(n).display().to_string());
    trash.collect()
}

fn fmt(v: &Option<deltapack_manifest::Version>) -> String {
    v.as_ref()
        .map_or_else(|| "nothing".into(), ToString::to_string)
}
