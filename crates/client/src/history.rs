//! The update history, `<state>/history.jsonl`: append-only JSON lines,
//! each synced after it is written. A torn last line (a crash mid-append)
//! is skipped when reading and ended before the next append, so every
//! earlier line survives. Only the last [`MAX_READ`] bytes are read.

use std::io::{Read, Seek, SeekFrom, Write};

use deltapack_fs::Root;
use deltapack_manifest::Version;
use serde::{Deserialize, Serialize};

use crate::Error;

const FILE: &str = "history.jsonl";
/// How much of the history's tail is read.
const MAX_READ: u64 = 8 << 20;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The first install.
    Install,
    /// An update (or a downgrade asked for).
    Update,
    /// A rollback asked for.
    Rollback,
    /// A rollback of a version that never reported healthy.
    AutoRollback,
    /// A version removed after an install (`from`; `to` is the version
    /// current then): pruning beyond `keep_versions`.
    Prune,
}

impl Action {
    /// The name in the JSON (`install`, `update`, `rollback`,
    /// `auto-rollback`, `prune`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Update => "update",
            Action::Rollback => "rollback",
            Action::AutoRollback => "auto-rollback",
            Action::Prune => "prune",
        }
    }

    /// Whether the entry is a rollback of either kind.
    pub fn is_rollback(self) -> bool {
        matches!(self, Action::Rollback | Action::AutoRollback)
    }

    /// Whether the entry is a switch from one version to another (not a
    /// prune).
    pub fn is_switch(self) -> bool {
        self != Action::Prune
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Failed; the version before stayed.
    Failed,
    /// Killed before the switch; the version before stayed.
    Interrupted,
}

impl Outcome {
    /// The name in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How an update reached its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it finished (Unix seconds).
    pub time: u64,
    /// What it was.
    pub action: Action,
    /// Version before.
    pub from: Option<Version>,
    /// Version after (or attempted).
    pub to: Version,
    /// The packages applied, e.g. `delta 1.0.0->1.1.0`, `full 1.2.0`.
    pub path: Vec<String>,
    /// Bytes of the packages it was built from (downloaded then, or by an
    /// earlier `download`); 0 when nothing was needed (a kept version).
    pub bytes: u64,
    /// How it ended.
    pub result: Outcome,
    /// Why it failed, or why a fallback was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Files of app data copied from `from` into `to` (the release's
    /// `carry` paths).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub carried: u64,
    /// Files not from the release: those an update left behind in `from`
    /// (they stay there until it is pruned), or those a prune removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<crate::Unknown>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Appends one entry and syncs it.
pub(crate) fn append(root: &Root, e: &HistoryEntry) -> Result<(), Error> {
    let mut line = serde_json::to_vec(e).map_err(|err| Error::State {
        path: root.join(FILE),
        reason: err.to_string(),
    })?;
    line.push(b'\n');
    let mut f = root.open_append(FILE)?;
    let io = |e: std::io::Error| {
        Error::from(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", root.join(FILE).display()),
        ))
    };
    // A crash mid-append can leave a torn last line: end it first, so this
    // entry is not glued to it (readers skip the torn one).
    if f.metadata().map_err(io)?.len() > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::End(-1)).map_err(io)?;
        f.read_exact(&mut last).map_err(io)?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    f.write_all(&line).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Reads the history (its last [`MAX_READ`] bytes); unreadable lines are
/// skipped.
pub(crate) fn read(root: &Root) -> Result<Vec<HistoryEntry>, Error> {
    let Some(mut f) = root.open_read(FILE)? else {
        return Ok(Vec::new());
    };
    let io = |e: std::io::Error| {
        Error::from(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", root.join(FILE).display()),
        ))
    };
    let len = f.metadata().map_err(io)?.len();
    let from = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut text = Vec::new();
    f.take(MAX_READ).read_to_end(&mut text).map_err(io)?;
    if from > 0 {
        // The first line is probably cut: start after it.
        let cut = text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| i + 1);
        text.drain(..cut);
    }
    Ok(parse(&text))
}

/// Parses history lines; unreadable ones (a torn append) are skipped.
pub(crate) fn parse(text: &[u8]) -> Vec<HistoryEntry> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}
