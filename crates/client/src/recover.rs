//! Finishing or undoing what a killed updater left behind.
//!
//! Every change to an install is ordered so that the `current` symlink is
//! the only switch and it is flipped by one rename (see [`crate::install`]).
//! Before the flip, `install` writes `.deltapack/journal.json` naming the
//! change (from, to, packages, bytes); after the flip and the history
//! record, it deletes the journal. On the next start, [`recover`] looks at
//! the journal and at `current`:
//!
//! - `current` is the journal's target: the flip happened, the record may
//!   not have: append it, prune, delete the journal (finish);
//! - otherwise the flip did not happen: record the attempt as interrupted
//!   and delete the journal (undo; the rebuilt version directory is whole
//!   and is reused by the next attempt).
//!
//! It also removes debris that is never in use once no updater runs:
//! applier staging directories (`versions/.<v>.dpk-*`), a half-made
//! `current` symlink (`.current-*.tmp`), the scratch directory (chain
//! intermediates, trees being deleted) and the state file's temporaries.

use std::path::Path;

use deltapack_fs::Kind;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::history::{self, HistoryEntry, Outcome};
use crate::layout::{Layout, META};

const JOURNAL: &str = ".deltapack/journal.json";

/// What an interrupted install was doing (the journal's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub(crate) entry: HistoryEntry,
}

/// What a recovery ([`crate::Updater::recover`]) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// An interrupted install that had switched and was finished.
    pub finished: Option<String>,
    /// An interrupted install that had not switched and was undone.
    pub undone: Option<String>,
    /// Debris removed (paths relative to the install root).
    pub removed: Vec<String>,
}

impl Recovery {
    /// Whether anything was found.
    pub fn is_empty(&self) -> bool {
        self.finished.is_none() && self.undone.is_none() && self.removed.is_empty()
    }
}

/// Parses a journal's bytes.
pub(crate) fn parse_journal(bytes: &[u8]) -> Result<Journal, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Writes the journal durably (before the switch).
pub(crate) fn begin(l: &Layout, entry: &HistoryEntry) -> Result<(), Error> {
    let j = Journal {
        entry: entry.clone(),
    };
    let bytes = serde_json::to_vec(&j).map_err(|e| Error::State {
        path: l.root.join(JOURNAL),
        reason: e.to_string(),
    })?;
    Ok(l.root.write_atomic(JOURNAL, &bytes)?)
}

/// Deletes the journal (after the switch and the record).
pub(crate) fn end(l: &Layout) -> Result<(), Error> {
    l.root.remove_file(JOURNAL)?;
    Ok(l.root.sync(META)?)
}

/// Whether an install was interrupted (a journal is there).
pub(crate) fn pending(l: &Layout) -> Result<bool, Error> {
    Ok(l.root.kind(JOURNAL)?.is_some())
}

/// Finishes or undoes an interrupted install and removes debris. The
/// caller holds the install lock.
pub(crate) fn recover(l: &Layout) -> Result<Recovery, Error> {
    let mut r = Recovery::default();
    if let Some(bytes) = l.root.read(JOURNAL, 1 << 20).or_else(|e| match e {
        // Bigger than any journal written: unreadable, undo.
        deltapack_fs::Error::TooLarge { .. } => Ok(Some(Vec::new())),
        e => Err(e),
    })? {
        let current = l.current()?;
        match parse_journal(&bytes) {
            Ok(j) if current.as_ref() == Some(&j.entry.to) => {
                history::append(&l.root, &j.entry)?;
                r.finished = Some(format!("{} -> {}", fmt(&j.entry.from), j.entry.to));
            }
            Ok(j) => {
                let mut e = j.entry.clone();
                e.result = Outcome::Interrupted;
                e.note = Some("killed before the switch; the old version stayed".into());
                history::append(&l.root, &e)?;
                r.undone = Some(format!("{} -> {}", fmt(&j.entry.from), j.entry.to));
            }
            // A torn journal was written before the switch could start.
            Err(_) => r.undone = Some("unreadable journal".into()),
        }
        end(l)?;
    }
    for rel in ["versions", "", META] {
        for (name, kind) in l.root.list(rel)? {
            let name = name.to_string_lossy().into_owned();
            let debris = match rel {
                "versions" => name.starts_with('.') && name.contains(".dpk-"),
                "" => name.starts_with(".current-") && name.ends_with(".tmp"),
                _ => {
                    deltapack_fs::is_temporary(&name)
                        || name.starts_with(".state-")
                        || name == "journal.json.tmp"
                        || (name == "tmp" && kind != Kind::File)
                }
            };
            if !debris {
                continue;
            }
            let at = Path::new(rel).join(&name);
            l.root.remove_all(&at)?;
            r.removed.push(at.to_string_lossy().into_owned());
        }
    }
    Ok(r)
}

fn fmt(v: &Option<deltapack_manifest::Version>) -> String {
    v.as_ref()
        .map_or_else(|| "nothing".into(), ToString::to_string)
}
