//! `diagnose`: checks an install and its repository and says what to do
//! about each problem. Read-only: it takes no lock and changes nothing.

use serde::Serialize;

use crate::Error;
use crate::state::Health;
use crate::updater::{Updater, refused_list};

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken: updates will fail until it is fixed.
    Fail,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// The outcome.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do (empty when fine).
    pub advice: String,
}

/// Below this much free space doctor warns whatever the app's size.
const MIN_ROOM: u64 = 1 << 20;

/// Room an update needs: a second copy of the app and its full bundle, as
/// the manifest accepted last says for the installed version, else the size
/// of the files at the app's path (twice).
fn room_needed(u: &Updater, current: Option<&deltapack_manifest::Version>) -> u64 {
    let from_manifest = current.and_then(|v| {
        let m = u.accepted_manifest().ok()?;
        let b = m.release(v)?.platforms.get(u.platform_name())?.clone();
        Some(b.tree.bytes.saturating_add(b.full.size))
    });
    from_manifest
        .unwrap_or_else(|| files_bytes(&u.strategy.runs_from()).saturating_mul(2))
        .max(MIN_ROOM)
}

/// Bytes of the regular files under `path` (or of `path`), links not
/// followed; an unreadable entry counts as empty.
fn files_bytes(path: &std::path::Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(md) = fs_err::symlink_metadata(&p) else {
            continue;
        };
        if md.is_file() {
            total = total.saturating_add(md.len());
        } else if md.is_dir()
            && let Ok(rd) = fs_err::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
    total
}

/// How far the clock may lag the time floor before doctor warns.
const CLOCK_SLACK: u64 = 3600;

fn check(name: &'static str, level: Level, detail: String, advice: &str) -> Check {
    Check {
        name,
        level,
        detail,
        advice: advice.to_owned(),
    }
}

pub(crate) fn diagnose(u: &Updater) -> Vec<Check> {
    let mut out = Vec::new();
    let store = &u.store;
    // Layout and the installed version.
    let current = u.current();
    match &current {
        Ok(Some(v)) => out.push(check(
            "install",
            Level::Ok,
            format!("{} runs {v}", u.strategy.runs_from().display()),
            "",
        )),
        Ok(None) => out.push(check(
            "install",
            Level::Warn,
            format!("nothing installed at {}", u.strategy.location().display()),
            "install a version: deltapack update install --to VERSION",
        )),
        Err(e @ crate::Error::Unidentified { .. }) => out.push(check(
            "install",
            Level::Warn,
            e.full_message(),
            "the next `deltapack update check` identifies it by its tree digest",
        )),
        Err(e) => out.push(check(
            "install",
            Level::Fail,
            e.full_message(),
            "deltapack doctor --fix puts the `current` link back, keeping every file; or reinstall: deltapack update install --to VERSION",
        )),
    }
    out.push(if crate::lock::is_held(&store.root) {
        check(
            "lock",
            Level::Warn,
            "another updater is running".into(),
            "wait for it to finish",
        )
    } else {
        check("lock", Level::Ok, "free".into(), "")
    });
    out.push(if crate::recover::pending(store).unwrap_or(false) {
        check(
            "journal",
            Level::Warn,
            "an install was interrupted".into(),
            "run any update command (or `deltapack update status`) to finish or undo it",
        )
    } else {
        check("journal", Level::Ok, "no interrupted install".into(), "")
    });
    out.push(match crate::lock::access(&store.root, &u.strategy.space_dir()) {
        crate::lock::Access::Writable => check(
            "access",
            Level::Ok,
            "this user can write the install".into(),
            "",
        ),
        crate::lock::Access::Denied(at) => check(
            "access",
            Level::Warn,
            format!("this user cannot write {}", at.display()),
            "status, check and launches work; run installs, rollbacks and `update healthy` as the install's owner",
        ),
        crate::lock::Access::ReadOnlyFs(at) => check(
            "access",
            Level::Fail,
            format!("{} is on a read-only file system", at.display()),
            "remount it read-write (or install the app elsewhere) to update it",
        ),
    });
    let need = room_needed(u, current.as_ref().ok().and_then(Option::as_ref));
    match fs4::available_space(u.strategy.space_dir()) {
        Ok(free) if free < need => out.push(check(
            "disk",
            Level::Warn,
            format!(
                "{} free, an update of this app needs about {}",
                human(free),
                human(need)
            ),
            "free disk space: an update needs room for a second copy of the app and its download",
        )),
        Ok(free) => out.push(check(
            "disk",
            Level::Ok,
            format!(
                "{} free (an update needs about {})",
                human(free),
                human(need)
            ),
            "",
        )),
        Err(e) => out.push(check(
            "disk",
            Level::Warn,
            e.to_string(),
            "check the install directory",
        )),
    }
    out.push(match crate::state::health(&store.root) {
        Health::Good => match u.state() {
            Ok(st) => check(
                "state",
                Level::Ok,
                format!("last manifest sequence {}", st.last_sequence),
                "",
            ),
            Err(e) => check(
                "state",
                Level::Fail,
                e.full_message(),
                "deltapack doctor --fix",
            ),
        },
        Health::Damaged(why) => check(
            "state",
            Level::Warn,
            format!("{why}; the other copy (backup) is used"),
            "deltapack doctor --fix rewrites both copies (the next update does too)",
        ),
        Health::Broken(why) => check(
            "state",
            Level::Fail,
            format!("state.json and its backup are unreadable: {why}"),
            "deltapack doctor --fix rebuilds it (never lowering the replay protection)",
        ),
    });
    if let Ok(status) = u.status() {
        for l in &status.leftovers {
            out.push(check(
                "cleanup",
                Level::Warn,
                format!("could not be removed: {l}"),
                "retried at each start; remove it by hand if it stays (check its owner and attributes)",
            ));
        }
        for u in &status.unknown_files {
            let (detail, advice) = if status.current.as_ref() == Some(&u.version) {
                (
                    format!("the running version {} holds {}", u.version, u.files),
                    "they stay behind in this version at the next update unless its release carries them (deltapack release --carry PATH); keep app data outside the install",
                )
            } else {
                (
                    format!("{} ({}) holds {}", u.version, u.path.display(), u.files),
                    "they are removed with this version when it is pruned: move what you need out of it",
                )
            };
            out.push(check("data", Level::Warn, detail, advice));
        }
        for r in &status.in_use {
            out.push(check(
                "in use",
                Level::Ok,
                format!(
                    "{} is kept while processes run from it ({:?})",
                    r.version, r.pids
                ),
                "",
            ));
        }
    }
    if let Ok(st) = u.state() {
        for r in refused_list(&st.refused) {
            out.push(Check {
                name: "refused",
                level: Level::Warn,
                detail: format!(
                    "{} is not offered: {}{}",
                    r.version,
                    r.reason,
                    r.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                ),
                advice: format!("to offer it again: {}", r.clear_with),
            });
        }
    }
    // The clock against the latest time this install knows has passed. The
    // floor includes the publisher's signed `issued` times, so a clock an
    // hour or less behind it is ordinary skew between two machines.
    let (clock, floor) = u.clock_and_floor();
    if clock.saturating_add(CLOCK_SLACK) < floor {
        out.push(check(
            "clock",
            Level::Warn,
            format!("the system clock ({clock}) is behind the latest trusted time ({floor})"),
            "fix the system clock; manifest expiry is checked against the later time",
        ));
    }
    // Repository, key and the installed tree against the manifest.
    match u.verified_manifest() {
        Ok(m) => {
            if let Err(e) = u.validate(&m) {
                out.push(check(
                    "channel",
                    Level::Fail,
                    e.to_string(),
                    "set one the repository has: deltapack config set channel NAME (or platform)",
                ));
            }
            let days = m.expires.saturating_sub(clock.max(floor)) / 86_400;
            out.push(check(
                "repository",
                if days < 3 { Level::Warn } else { Level::Ok },
                format!(
                    "manifest sequence {}, signature valid, expires in {days} days",
                    m.sequence
                ),
                if days < 3 {
                    "the publisher must re-sign (deltapack repo refresh)"
                } else {
                    ""
                },
            ));
            if let Ok(Some(v)) = &current {
                let want = m
                    .release(v)
                    .and_then(|r| r.platforms.get(u.platform_name()))
                    .map(|b| b.tree.digest.clone());
                let at = u.strategy.tree(v, Some(v));
                let got = match store.read_paths(v) {
                    Ok(Some(paths)) if u.strategy.holds_trees() => {
                        deltapack_tree::Tree::scan_only(&at, &paths)
                    }
                    _ => deltapack_tree::Tree::scan(&at),
                }
                .map(|t| deltapack_tree::hex(&t.id().digest));
                match (want, got) {
                    (Some(w), Ok(g)) if w == g => out.push(check(
                        "integrity",
                        Level::Ok,
                        format!("{v} matches the manifest's tree digest"),
                        "",
                    )),
                    (Some(_), _) => out.push(check(
                        "integrity",
                        Level::Warn,
                        format!("installed files of {v} differ from the release"),
                        "the next update rebuilds from the full bundle instead of a delta; nothing to do unless the app misbehaves",
                    )),
                    (None, _) => out.push(check(
                        "integrity",
                        Level::Warn,
                        format!("{v} is not in the repository for this platform"),
                        "check the platform and channel settings",
                    )),
                }
            }
        }
        Err(Error::Rollback { have, offered }) => out.push(check(
            "repository",
            Level::Fail,
            format!(
                "the repository's manifest is at sequence {offered}, but this install already accepted sequence {have}: it refuses the older one (replay protection), so it gets no updates"
            ),
            "the repository was replaced or started again (a release --init into another directory?), or a mirror or cache serves an old copy: publish from the repository this install came from, or purge the cache",
        )),
        Err(e) => out.push(check(
            "repository",
            Level::Fail,
            e.full_message(),
            "check the repository URL, the network, and that the public key is the publisher's",
        )),
    }
    out
}

/// A size as a person reads it (`75.8 GB`).
fn human(bytes: u64) -> impl std::fmt::Display {
    bytesize::ByteSize(bytes).display().si()
}
