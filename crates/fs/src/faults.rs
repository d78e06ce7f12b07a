//! A fault seam that works on every OS: `DELTAPACK_FS_FAULTS` makes chosen
//! renames and removals fail as if another process held the file (a
//! Windows sharing violation: an antivirus scanner, an Explorer window,
//! the app still running), so that the retry and its typed error can be
//! tested where the OS does not produce them on demand (Wine does not
//! model sharing violations faithfully; Linux has none).
//!
//! ```text
//! DELTAPACK_FS_FAULTS=rename=current:3,remove=versions/1.0.0:100
//! ```
//!
//! Each rule is `OP=SUFFIX:COUNT`: the next COUNT operations OP (`rename`,
//! judged by its destination, or `remove`) on a path ending in SUFFIX fail
//! with a sharing violation (`ERROR_SHARING_VIOLATION` on Windows,
//! `ErrorKind::ResourceBusy` elsewhere). Unset, it costs one check of an
//! already-read empty list.

use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

/// An operation the seam can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Rename,
    Remove,
}

struct Rule {
    op: Op,
    suffix: String,
    left: u32,
}

fn rules() -> &'static Mutex<Vec<Rule>> {
    static RULES: OnceLock<Mutex<Vec<Rule>>> = OnceLock::new();
    RULES.get_or_init(|| {
        let spec = std::env::var("DELTAPACK_FS_FAULTS").unwrap_or_default();
        let rules = spec
            .split(',')
            .filter_map(|r| {
                let (op, rest) = r.split_once('=')?;
                let (suffix, n) = rest.rsplit_once(':')?;
                let op = match op.trim() {
                    "rename" => Op::Rename,
                    "remove" => Op::Remove,
                    _ => return None,
                };
                Some(Rule {
                    op,
                    suffix: suffix.replace('\\', "/"),
                    left: n.trim().parse().ok()?,
                })
            })
            .collect();
        Mutex::new(rules)
    })
}

/// The error to fail `op` on `path` with, if a rule says so.
pub(crate) fn check(op: Op, path: &Path) -> Option<std::io::Error> {
    let mut rules = rules().lock().unwrap_or_else(PoisonError::into_inner);
    if rules.is_empty() {
        return None;
    }
    let p = path.to_string_lossy().replace('\\', "/");
    let r = rules
        .iter_mut()
        .find(|r| r.op == op && r.left > 0 && p.ends_with(&r.suffix))?;
    r.left -= 1;
    Some(sharing_violation())
}

/// What the OS says when another process holds a file.
fn sharing_violation() -> std::io::Error {
    #[cfg(windows)]
    {
        // ERROR_SHARING_VIOLATION
        std::io::Error::from_raw_os_error(32)
    }
    #[cfg(not(windows))]
    {
        std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            "injected: the file is in use by another process",
        )
    }
}

/// Whether `e` says another process holds the file (worth a retry).
pub(crate) fn in_use(e: &std::io::Error) -> bool {
    // ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION:
    // what Windows gives while a file is open elsewhere or being scanned.
    (cfg!(windows) && matches!(e.raw_os_error(), Some(5 | 32 | 33)))
        || e.kind() == std::io::ErrorKind::ResourceBusy
}
