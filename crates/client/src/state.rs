//! What an install remembers between runs (`.deltapack/state.json`) and
//! its update history (`.deltapack/history.jsonl`).
//!
//! The state file is small and replaced atomically (write, sync, rename,
//! sync the directory). The history is append-only JSON lines, each synced
//! after it is written; a torn last line (a crash mid-append) is skipped
//! when reading, and every earlier line survives.
//!
//! The state also keeps a *time floor* ([`State::time_floor`]): the latest
//! time this install knows has passed. Manifest expiry is checked against
//! `max(clock, floor)`, so stepping the system clock back cannot make an
//! expired (replayed or frozen) manifest valid again. The floor only ever
//! rises, from two sources:
//!
//! - the clock reading at every manifest check, whatever the check's
//!   outcome (a check that found the manifest expired still saw the time);
//! - the `issued` time of a manifest, but only once it has been verified
//!   under a trusted key and accepted (not a rollback). An attacker cannot
//!   raise the floor with a forged far-future `issued`; the publisher can,
//!   since it signs it, and that is accepted: a publisher that signs a
//!   wrong time is trusted anyway.
//!
//! A floor pushed far ahead by a wrong local clock makes every manifest
//! look expired until the publisher's manifests expire after it; an
//! administrator can then reset the field in `state.json` (doctor reports a
//! clock behind the floor). State files written before the field existed
//! parse with a floor of 0.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use deltapack_manifest::Version;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::install::replace_file;

/// Bound on the state file (it holds a handful of fields).
const MAX_STATE: u64 = 1 << 20;

/// Persistent state of one install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct State {
    /// Random id of this install (hex), for staged rollout buckets.
    pub(crate) install_id: String,
    /// Highest manifest sequence accepted: older manifests are refused.
    pub(crate) last_sequence: u64,
    /// When the last manifest was accepted (Unix seconds).
    pub(crate) last_check: Option<u64>,
    /// Versions rolled back as unhealthy: not offered again.
    pub(crate) refused: BTreeSet<Version>,
    /// An installed version not yet confirmed healthy.
    pub(crate) pending: Option<Pending>,
    /// Failed attempts per version whose package did not download intact
    /// or apply; after [`MAX_FAILURES`] the version is not offered again
    /// (no update loop), until a newer one appears.
    pub(crate) failures: std::collections::BTreeMap<Version, u32>,
    /// Latest time known to have passed (Unix seconds; 0 = none yet): the
    /// highest clock reading at a check and the `issued` time of every
    /// manifest accepted. Never lowered; see the module docs.
    pub(crate) time_floor: u64,
}

/// Attempts after which a version whose package keeps failing is skipped.
pub(crate) const MAX_FAILURES: u32 = 3;

impl State {
    /// The time to check manifest expiry against: the clock, unless it is
    /// behind the floor (stepped back), then the floor.
    pub(crate) fn trusted_now(&self, clock: u64) -> u64 {
        clock.max(self.time_floor)
    }

    /// Versions not to offer: rolled back from, or failing every time.
    pub(crate) fn refused_now(&self) -> BTreeSet<Version> {
        let mut r = self.refused.clone();
        r.extend(
            self.failures
                .iter()
                .filter(|(_, n)| **n >= MAX_FAILURES)
                .map(|(v, _)| v.clone()),
        );
        r
    }
}

/// A new version on probation: it must call `mark_healthy` before it has
/// been launched `limit` times, or the next launch rolls back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pending {
    /// The version on probation.
    pub(crate) version: Version,
    /// Launches seen so far.
    pub(crate) launches: u32,
}

impl State {
    /// Reads the state, or a new one (with a fresh install id) if absent.
    pub(crate) fn load(meta: &Path) -> Result<State, Error> {
        let path = meta.join("state.json");
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut id = [0u8; 16];
                getrandom::fill(&mut id)
                    .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
                return Ok(State {
                    install_id: deltapack_tree::hex(&id),
                    ..State::default()
                });
            }
            Err(e) => return Err(e.into()),
        };
        State::parse(&bytes).map_err(|reason| Error::State { path, reason })
    }

    /// Parses a state file's bytes (bounded, strict).
    pub(crate) fn parse(bytes: &[u8]) -> Result<State, String> {
        if bytes.len() as u64 > MAX_STATE {
            return Err(format!("over {MAX_STATE} bytes"));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Replaces the state file atomically.
    pub(crate) fn save(&self, meta: &Path) -> Result<(), Error> {
        fs_err::create_dir_all(meta)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::State {
            path: meta.join("state.json"),
            reason: e.to_string(),
        })?;
        // Callers hold the install lock, so one temporary name is enough
        // (recovery removes a left-over `.state-*`).
        replace_file(&meta.join("state.json"), &meta.join(".state-new"), &json)
    }
}

/// How an update reached its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it finished (Unix seconds).
    pub time: u64,
    /// What it was: `update`, `rollback`, `install`.
    pub action: String,
    /// Version before.
    pub from: Option<Version>,
    /// Version after (or attempted).
    pub to: Version,
    /// The packages applied, e.g. `delta 1.0.0->1.1.0`, `full 1.2.0`.
    pub path: Vec<String>,
    /// Bytes downloaded.
    pub bytes: u64,
    /// `ok` or `failed`.
    pub result: String,
    /// Why it failed, or why a fallback was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Appends one entry and syncs it.
pub(crate) fn append_history(meta: &Path, e: &HistoryEntry) -> Result<(), Error> {
    fs_err::create_dir_all(meta)?;
    let mut line = serde_json::to_vec(e).map_err(|err| Error::State {
        path: meta.join("history.jsonl"),
        reason: err.to_string(),
    })?;
    line.push(b'\n');
    let mut f = fs_err::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(meta.join("history.jsonl"))?;
    // A crash mid-append can leave a torn last line: end it first, so this
    // entry is not glued to it (readers skip the torn one).
    if f.metadata()?.len() > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8];
        f.seek(SeekFrom::End(-1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    f.write_all(&line)?;
    f.sync_all()?;
    Ok(())
}

/// Reads the history; unreadable lines (a torn append) are skipped.
pub(crate) fn read_history(meta: &Path) -> Result<Vec<HistoryEntry>, Error> {
    let text = match fs_err::read(meta.join("history.jsonl")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(parse_history(&text))
}

/// Parses history lines; unreadable ones (a torn append) are skipped.
pub(crate) fn parse_history(text: &[u8]) -> Vec<HistoryEntry> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}
