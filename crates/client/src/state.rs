//! What an install remembers between runs: `<state>/state.json`, kept
//! twice.
//!
//! The state is small and replaced atomically (a fresh temporary, synced,
//! renamed over the file, the directory synced), and every save writes it
//! twice: `state.json`, then `state.backup.json`. A crash leaves each copy
//! whole (old or new). If `state.json` is later found unreadable (a user
//! edit, a restore gone wrong, a bad disk sector), the backup is used and
//! the next save rewrites both; `doctor` reports it. If both are
//! unreadable, commands fail with [`Error::State`] until `doctor --fix`
//! ([`repair`]) rebuilds the state from what it can salvage.
//!
//! The anti-rollback part of the state never goes down by recovery: the
//! highest manifest sequence accepted and the *time floor* (the latest time
//! this install knows has passed) are taken as the maximum of every copy
//! that still yields the number, and the floor also from the history. The
//! floor only ever rises otherwise too, from two sources:
//!
//! - the clock reading at every manifest check, whatever the check's
//!   outcome (a check that found the manifest expired still saw the time);
//! - the `issued` time of a manifest, but only once it has been verified
//!   under a trusted key and accepted (not a rollback). An attacker cannot
//!   raise the floor with a forged far-future `issued`; the publisher can,
//!   since it signs it, and that is accepted.
//!
//! Manifest expiry is checked against `max(clock, floor)`, so stepping the
//! system clock back cannot make an expired (replayed or frozen) manifest
//! valid again. A floor pushed far ahead by a wrong local clock makes every
//! manifest look expired until the publisher's manifests expire after it;
//! doctor reports a clock behind the floor.
//!
//! State files of older clients parse: a missing floor is 0, `refused` as a
//! plain list means "rolled back", and their `failures` counts (which also
//! counted network and mirror failures) are dropped.

use std::collections::BTreeMap;

use deltapack_fs::Root;
use deltapack_manifest::Version;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Bound on a state file (it holds a handful of fields).
const MAX_STATE: u64 = 1 << 20;
const PRIMARY: &str = "state.json";
const BACKUP: &str = "state.backup.json";

/// Why a version is not offered any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    /// The user rolled back from it.
    RolledBack,
    /// It never reported healthy and was rolled back automatically.
    AutoRollback,
    /// Its full bundle verified against the manifest and still could not
    /// be installed, three times.
    Broken,
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusalReason::RolledBack => "rolled back from",
            RefusalReason::AutoRollback => "never reported healthy (rolled back automatically)",
            RefusalReason::Broken => "its verified full bundle cannot be installed",
        })
    }
}

/// A refused version: why, since when, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// When (Unix seconds; 0 if a state file of an older client did not
    /// say).
    #[serde(default)]
    pub time: u64,
    /// The last error, for `Broken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Persistent state of one install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct State {
    /// Random id of this install (hex), for staged rollout buckets.
    pub(crate) install_id: String,
    /// Highest manifest sequence accepted: older manifests are refused.
    pub(crate) last_sequence: u64,
    /// When the last manifest was accepted (Unix seconds).
    pub(crate) last_check: Option<u64>,
    /// Versions not offered again, and why.
    pub(crate) refused: BTreeMap<Version, Refusal>,
    /// An installed version not yet confirmed healthy.
    pub(crate) pending: Option<Pending>,
    /// Versions whose verified full bundle failed to install, and how
    /// often (see [`crate::policy`]).
    pub(crate) broken: BTreeMap<Version, u32>,
    /// Latest time known to have passed (Unix seconds; 0 = none yet).
    /// Never lowered; see the module docs.
    pub(crate) time_floor: u64,
    /// The version at an executable's or a bundle's path and what the path
    /// held then (a versions install's `current` link is its own record).
    pub(crate) current: Option<crate::strategy::Installed>,
    /// Where this state directory is and which directory it is (path and
    /// identity): when either changes, the install was copied or moved,
    /// and it draws a new install id (a fleet cloned from one image must
    /// not share one rollout bucket).
    pub(crate) bound: Option<Binding>,
}

/// See [`State::bound`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Binding {
    /// The state directory's absolute path.
    pub(crate) path: String,
    /// Its identity.
    pub(crate) identity: crate::strategy::IdentityRecord,
}

/// Attempts after which a version whose verified full bundle keeps failing
/// is refused.
pub(crate) const MAX_BROKEN: u32 = 3;

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

/// `refused` as this client writes it, or as a list (older clients).
#[derive(Deserialize)]
#[serde(untagged)]
enum RefusedCompat {
    Map(BTreeMap<Version, Refusal>),
    List(Vec<Version>),
}

impl Default for RefusedCompat {
    fn default() -> Self {
        RefusedCompat::Map(BTreeMap::new())
    }
}

/// The file's form.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    install_id: String,
    last_sequence: u64,
    last_check: Option<u64>,
    refused: RefusedCompat,
    pending: Option<Pending>,
    broken: BTreeMap<Version, u32>,
    /// Older clients' attempt counts: read and dropped.
    failures: Option<serde::de::IgnoredAny>,
    time_floor: u64,
    current: Option<crate::strategy::Installed>,
    bound: Option<Binding>,
}

impl State {
    /// The time to check manifest expiry against: the clock, unless it is
    /// behind the floor (stepped back), then the floor.
    pub(crate) fn trusted_now(&self, clock: u64) -> u64 {
        clock.max(self.time_floor)
    }

    /// A new state with a fresh install id.
    fn fresh() -> Result<State, Error> {
        Ok(State {
            install_id: new_install_id()?,
            ..State::default()
        })
    }

    /// Binds the state to where it is; a copied or moved install (the
    /// binding differs) draws a new install id. Returns whether anything
    /// changed.
    pub(crate) fn bind(&mut self, root: &Root) -> Result<bool, Error> {
        let path = std::path::absolute(root.path())
            .map_err(Error::from)?
            .to_string_lossy()
            .into_owned();
        let Some(identity) = root.identity("").ok().flatten() else {
            return Ok(false);
        };
        let now = Binding {
            path,
            identity: identity.into(),
        };
        if self.bound.as_ref() == Some(&now) {
            return Ok(false);
        }
        if self.bound.is_some() {
            self.install_id = new_install_id()?;
        }
        self.bound = Some(now);
        Ok(true)
    }

    /// Parses a state file's bytes (bounded, strict).
    pub(crate) fn parse(bytes: &[u8]) -> Result<State, String> {
        if bytes.len() as u64 > MAX_STATE {
            return Err(format!("over {MAX_STATE} bytes"));
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let _ = raw.failures;
        Ok(State {
            install_id: raw.install_id,
            last_sequence: raw.last_sequence,
            last_check: raw.last_check,
            refused: match raw.refused {
                RefusedCompat::Map(m) => m,
                RefusedCompat::List(l) => l
                    .into_iter()
                    .map(|v| {
                        (
                            v,
                            Refusal {
                                reason: RefusalReason::RolledBack,
                                time: 0,
                                detail: None,
                            },
                        )
                    })
                    .collect(),
            },
            pending: raw.pending,
            broken: raw.broken,
            time_floor: raw.time_floor,
            current: raw.current,
            bound: raw.bound,
        })
    }

    /// Reads the state: `state.json`, or its backup when it is missing or
    /// unreadable, or a new state when neither exists. The anti-rollback
    /// numbers are the highest either copy still yields (a restored older
    /// `state.json` cannot lower them); when a copy is there but neither
    /// reads, it is an error, never a fresh state.
    pub(crate) fn load(root: &Root) -> Result<State, Error> {
        let read = |rel: &str| -> Result<Option<Copy>, Error> {
            match root.read(rel, MAX_STATE) {
                Ok(Some(b)) => {
                    let parsed = State::parse(&b);
                    Ok(Some((b, parsed)))
                }
                Ok(None) => Ok(None),
                Err(deltapack_fs::Error::TooLarge { .. }) => {
                    Ok(Some((Vec::new(), Err(format!("over {MAX_STATE} bytes")))))
                }
                Err(e) => Err(e.into()),
            }
        };
        let (primary, backup) = (read(PRIMARY)?, read(BACKUP)?);
        let salvage = |c: &Option<Copy>| match c {
            Some((_, Ok(st))) => Salvage {
                last_sequence: st.last_sequence,
                time_floor: st.time_floor,
                install_id: Some(st.install_id.clone()),
            },
            Some((bytes, Err(_))) => Salvage::from_bytes(bytes),
            None => Salvage::default(),
        };
        let mut st = match (&primary, &backup) {
            (None, None) => return State::fresh(),
            (Some((_, Ok(st))), _) | (_, Some((_, Ok(st)))) => st.clone(),
            (Some((_, Err(why))), _) | (None, Some((_, Err(why)))) => {
                return Err(Error::State {
                    path: root.join(PRIMARY),
                    reason: format!(
                        "{why} (and no readable copy beside it); run `deltapack doctor --fix` to rebuild it"
                    ),
                });
            }
        };
        st.raise_to(&salvage(&primary));
        st.raise_to(&salvage(&backup));
        Ok(st)
    }

    /// Replaces both copies atomically (the caller holds the lock).
    pub(crate) fn save(&self, root: &Root) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::State {
            path: root.join(PRIMARY),
            reason: e.to_string(),
        })?;
        root.write_atomic(PRIMARY, &json)?;
        root.write_atomic(BACKUP, &json)?;
        Ok(())
    }

    /// Raises the anti-rollback numbers to what a salvage found.
    fn raise_to(&mut self, s: &Salvage) {
        self.last_sequence = self.last_sequence.max(s.last_sequence);
        self.time_floor = self.time_floor.max(s.time_floor);
        if self.install_id.is_empty()
            && let Some(id) = &s.install_id
        {
            self.install_id = id.clone();
        }
    }
}

/// 16 random bytes in hex.
fn new_install_id() -> Result<String, Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(deltapack_tree::hex(&id))
}

/// One copy of the state file: its bytes, and what they parse to.
type Copy = (Vec<u8>, Result<State, String>);

/// Numbers read leniently out of a state file that does not parse.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Salvage {
    last_sequence: u64,
    time_floor: u64,
    install_id: Option<String>,
}

impl Salvage {
    /// Reads `"key": number` and `"install_id": "hex"` wherever they
    /// still stand, whole or not (a torn or hand-edited file).
    fn from_bytes(bytes: &[u8]) -> Salvage {
        let text = String::from_utf8_lossy(bytes);
        let num = |k: &str| {
            value_after(&text, k)
                .map(|v| {
                    v.bytes()
                        .take_while(u8::is_ascii_digit)
                        .collect::<Vec<u8>>()
                })
                .and_then(|d| std::str::from_utf8(&d).ok()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let install_id = value_after(&text, "install_id")
            .and_then(|v| v.strip_prefix('"'))
            .and_then(|v| v.get(..32))
            .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        Salvage {
            last_sequence: num("last_sequence"),
            time_floor: num("time_floor").max(num("last_check")),
            install_id,
        }
    }
}

/// The text after `"key"` and its colon, spaces skipped.
fn value_after<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

/// How the two copies look (for doctor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// `state.json` reads (or neither copy exists yet).
    Good,
    /// One copy is missing or unreadable; the other is used.
    Damaged(String),
    /// Neither copy reads.
    Broken(String),
}

/// Checks both copies without changing anything.
pub(crate) fn health(root: &Root) -> Health {
    let read = |rel| match root.read(rel, MAX_STATE) {
        Ok(Some(b)) => Some(State::parse(&b).map(drop)),
        Ok(None) => None,
        Err(e) => Some(Err(e.to_string())),
    };
    match (read(PRIMARY), read(BACKUP)) {
        (Some(Ok(())), Some(Ok(())) | None) | (None, None) => Health::Good,
        (Some(Ok(())), Some(Err(why))) => Health::Damaged(format!("state.backup.json: {why}")),
        (None, Some(Ok(()))) => Health::Damaged("state.json is missing".into()),
        (Some(Err(why)), Some(Ok(()))) => Health::Damaged(format!("state.json: {why}")),
        (Some(Err(why)), _) | (None, Some(Err(why))) => Health::Broken(why),
    }
}

/// What a repair ([`crate::Updater::repair`]) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// Whether anything needed repair.
    pub repaired: bool,
    /// The manifest sequence kept (replays below it stay refused).
    pub last_sequence: u64,
    /// The time floor kept (never lowered).
    pub time_floor: u64,
    /// What was done to the app's path, if it needed repair (a `current`
    /// that was not the link the updater writes).
    pub current: Option<String>,
}

/// Rebuilds an unreadable state from whatever both copies still yield,
/// the history's times and the clock, and writes both copies. Never lowers
/// the sequence or the floor; keeps the install id when one survives.
pub(crate) fn repair(root: &Root, clock: u64, history_max: u64) -> Result<Repair, Error> {
    let mut st = match health(root) {
        Health::Good => {
            let st = State::load(root)?;
            return Ok(Repair {
                repaired: false,
                last_sequence: st.last_sequence,
                time_floor: st.time_floor,
                current: None,
            });
        }
        Health::Damaged(_) => State::load(root)?,
        Health::Broken(_) => State::fresh()?,
    };
    for rel in [PRIMARY, BACKUP] {
        if let Ok(Some(b)) = root.read(rel, MAX_STATE) {
            let s = match State::parse(&b) {
                Ok(good) => Salvage {
                    last_sequence: good.last_sequence,
                    time_floor: good.time_floor,
                    install_id: Some(good.install_id),
                },
                Err(_) => Salvage::from_bytes(&b),
            };
            st.raise_to(&s);
        }
    }
    st.time_floor = st.time_floor.max(history_max).max(clock);
    st.save(root)?;
    Ok(Repair {
        repaired: true,
        last_sequence: st.last_sequence,
        time_floor: st.time_floor,
        current: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn older_files_parse_and_lose_their_failure_counts() {
        let st = State::parse(
            br#"{"install_id":"ab","last_sequence":4,"last_check":9,"refused":["1.1.0"],
                "pending":null,"failures":{"1.2.0":3}}"#,
        )
        .unwrap();
        assert_eq!(st.last_sequence, 4);
        assert_eq!(st.time_floor, 0);
        assert_eq!(
            st.refused
                .get(&Version::parse("1.1.0").unwrap())
                .unwrap()
                .reason,
            RefusalReason::RolledBack
        );
        assert!(st.broken.is_empty());
        assert!(State::parse(br#"{"colour":1}"#).is_err());
    }

    #[test]
    fn a_corrupt_copy_falls_back_and_never_lowers_the_floor() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let mut st = State::fresh().unwrap();
        st.last_sequence = 7;
        st.time_floor = 1_000;
        st.save(&root).unwrap();
        // The primary is damaged, but its numbers are higher than the
        // backup's (it was written after): they are kept.
        fs_err::write(
            t.path().join(PRIMARY),
            br#"{"install_id": 5, "last_sequence": 9, "time_floor": 2000, "bogus": true}"#,
        )
        .unwrap();
        let got = State::load(&root).unwrap();
        assert_eq!((got.last_sequence, got.time_floor), (9, 2_000));
        assert_eq!(got.install_id, st.install_id);
        assert!(matches!(health(&root), Health::Damaged(_)));
        // Neither copy reads (one missing, one garbage): an error, never a
        // fresh state that would accept older manifests.
        fs_err::remove_file(t.path().join(PRIMARY)).unwrap();
        fs_err::write(t.path().join(BACKUP), b"garbage").unwrap();
        assert!(matches!(State::load(&root), Err(Error::State { .. })));
        // A restored older state.json cannot lower the numbers the other
        // copy holds.
        let mut older = st.clone();
        older.last_sequence = 2;
        older.time_floor = 10;
        older.save(&root).unwrap();
        let mut newer = st.clone();
        newer.last_sequence = 9;
        newer.time_floor = 2_000;
        fs_err::write(t.path().join(BACKUP), serde_json::to_vec(&newer).unwrap()).unwrap();
        let got = State::load(&root).unwrap();
        assert_eq!((got.last_sequence, got.time_floor), (9, 2_000));
        fs_err::write(
            t.path().join(PRIMARY),
            br#"{"install_id": 5, "last_sequence": 9, "time_floor": 2000, "bogus": true}"#,
        )
        .unwrap();
        // Both gone bad: a typed error until repaired.
        fs_err::write(t.path().join(BACKUP), b"garbage").unwrap();
        assert!(matches!(State::load(&root), Err(Error::State { .. })));
        let r = repair(&root, 1_500, 2_500).unwrap();
        assert!(r.repaired);
        assert_eq!((r.last_sequence, r.time_floor), (9, 2_500));
        assert_eq!(health(&root), Health::Good);
        let again = repair(&root, 0, 0).unwrap();
        assert!(!again.repaired);
        assert_eq!(again.time_floor, 2_500, "never lowered");
    }
}
