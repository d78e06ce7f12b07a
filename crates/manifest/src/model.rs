//! The manifest's data model and the structural rules every manifest obeys.
//!
//! A repository has one manifest. It lists releases once (with their builds
//! per platform: tree identity, full bundle, deltas) and, per channel, which
//! releases the channel offers and how far each is rolled out. Maps are
//! `BTreeMap`s and releases are kept sorted by version, so one manifest has
//! one JSON text: the same repository state always gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The manifest format this crate reads and writes.
pub const FORMAT: u32 = 1;

/// The whole repository state that clients act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format; always [`FORMAT`].
    pub format: u32,
    /// Monotonic sequence number: every signed change increments it, and a
    /// client refuses a manifest older than the last one it accepted.
    pub sequence: u64,
    /// When this manifest was signed (Unix seconds).
    pub issued: u64,
    /// After this time (Unix seconds) clients refuse the manifest.
    pub expires: u64,
    /// Channels by name (`stable`, `beta`, ...).
    pub channels: BTreeMap<String, Channel>,
    /// Every release, sorted by version.
    pub releases: Vec<Release>,
}

/// The releases one channel offers, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Releases on the channel, sorted by version.
    pub releases: Vec<ChannelRelease>,
}

/// A release as offered on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRelease {
    /// The release's version.
    pub version: Version,
    /// How far the release is rolled out on this channel.
    pub rollout: Rollout,
}

/// Staged rollout of one release on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Percentage of installs (0..=100) offered the release.
    pub percent: u8,
    /// Per-release salt (hex), so that each release picks a different first
    /// group of installs.
    pub salt: String,
    /// A paused rollout offers the release to no install that is not
    /// already on it; `percent` is kept for when it resumes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Rollout {
    /// Whether an install with this stable id is in the rollout: its bucket
    /// is `BLAKE3(salt ‖ 0 ‖ install_id)` modulo 10 000, compared with
    /// `percent × 100`. Manual checks may ignore the rollout.
    pub fn includes(&self, install_id: &[u8]) -> bool {
        !self.paused && bucket(&self.salt, install_id) < u32::from(self.percent) * 100
    }
}

/// The rollout bucket (0..10 000) of an install for a salt.
pub fn bucket(salt: &str, install_id: &[u8]) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    h.update(&[0]);
    h.update(install_id);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    (u64::from_le_bytes(b) % 10_000) as u32
}

/// One version of the app, on every platform it was built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The version.
    pub version: Version,
    /// Release date (Unix seconds).
    pub released: u64,
    /// Release notes (Markdown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Installs older than this take the full bundle, never a delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delta_version: Option<Version>,
    /// Why the release was withdrawn; a yanked release is offered to nobody
    /// and installs on it are offered the newest good version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<String>,
    /// App data inside the install that carries over into this version:
    /// `/`-separated paths relative to the install (files or directories,
    /// e.g. `instance`, `logs`), whose files the client copies from the
    /// installed version into this one when it updates (see
    /// docs/CLIENT.md). Clients older than this field refuse a manifest
    /// that uses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry: Vec<String>,
    /// Builds by platform name.
    pub platforms: BTreeMap<String, Build>,
}

/// A release's build for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// Identity of the installed tree.
    pub tree: TreeRef,
    /// The full bundle (a `.dpk` without a base).
    pub full: Artifact,
    /// Delta packages to this build, by base version, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<Delta>,
    /// Base versions for which no delta is offered on purpose (it was not
    /// clearly smaller than the full bundle); the packager does not retry
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_delta_from: Vec<Version>,
}

/// Identity of a tree: the deltapack tree digest with its file count and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeRef {
    /// Tree digest (64 hex digits).
    pub digest: String,
    /// Number of regular files.
    pub files: u64,
    /// Sum of file sizes.
    pub bytes: u64,
}

impl TreeRef {
    /// The digest's 32 bytes (`None` if it is not 64 hex digits, which a
    /// checked manifest never has).
    pub fn digest_bytes(&self) -> Option<[u8; 32]> {
        crate::keys::unhex::<32>(&self.digest)
    }
}

/// A file in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Path relative to the repository root (`/`-separated, URL-safe).
    pub path: String,
    /// Size in bytes; a client never reads more.
    pub size: u64,
    /// BLAKE3 of the file (64 hex digits).
    pub blake3: String,
}

/// A delta package from one base version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// The base version.
    pub from: Version,
    /// The package.
    #[serde(flatten)]
    pub artifact: Artifact,
}

impl Manifest {
    /// An empty manifest (sequence 0: the first signed one is 1).
    pub fn empty() -> Self {
        Manifest {
            format: FORMAT,
            sequence: 0,
            issued: 0,
            expires: 0,
            channels: BTreeMap::new(),
            releases: Vec::new(),
        }
    }

    /// Every file the manifest names (full bundles and deltas of every
    /// release and platform), in manifest order.
    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.releases
            .iter()
            .flat_map(|r| r.platforms.values())
            .flat_map(|b| std::iter::once(&b.full).chain(b.deltas.iter().map(|d| &d.artifact)))
    }

    /// The release with this version.
    pub fn release(&self, v: &Version) -> Option<&Release> {
        self.releases
            .binary_search_by(|r| r.version.cmp(v))
            .ok()
            .map(|i| &self.releases[i])
    }

    /// The release with this version, mutably.
    pub fn release_mut(&mut self, v: &Version) -> Option<&mut Release> {
        match self.releases.binary_search_by(|r| r.version.cmp(v)) {
            Ok(i) => Some(&mut self.releases[i]),
            Err(_) => None,
        }
    }

    /// Checks every rule a manifest must follow (beyond its JSON shape):
    /// names, versions in order and unique, channels naming existing
    /// releases, artifacts with safe paths and well-formed hashes. Errors
    /// name the offending field.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Invalid { what });
        if self.format != FORMAT {
            return Err(Error::UnsupportedFormat { found: self.format });
        }
        if self.expires <= self.issued && self.sequence > 0 {
            return bad(format!(
                "expires ({}) is not after issued ({})",
                self.expires, self.issued
            ));
        }
        for w in self.releases.windows(2) {
            if w[0].version >= w[1].version {
                return bad(format!(
                    "releases: {} is listed after {} (must be sorted and unique)",
                    w[1].version, w[0].version
                ));
            }
        }
        let mut paths = BTreeSet::new();
        for r in &self.releases {
            let at = |f: &str| format!("release {}: {f}", r.version);
            if r.notes.len() > 64 * 1024 {
                return bad(at("notes are over 64 KiB"));
            }
            if r.platforms.is_empty() {
                return bad(at("no platforms"));
            }
            if r.carry.len() > MAX_CARRY {
                return bad(at(&format!("carry lists over {MAX_CARRY} paths")));
            }
            for c in &r.carry {
                if let Err(why) = check_data_path(c) {
                    return bad(at(&format!("carry path {c:?} {why}")));
                }
            }
            for (p, b) in &r.platforms {
                if let Err(why) = check_name(p) {
                    return bad(at(&format!("platform name {p:?} {why}")));
                }
                let at = |f: &str| format!("release {} platform {p}: {f}", r.version);
                check_hex(&b.tree.digest).map_err(|why| Error::Invalid {
                    what: at(&format!("tree digest {why}")),
                })?;
                let mut arts = vec![("full bundle".to_string(), &b.full)];
                for w in b.deltas.windows(2) {
                    if w[0].from >= w[1].from {
                        return bad(at("deltas are not sorted by base version"));
                    }
                }
                for d in &b.deltas {
                    if d.from == r.version {
                        return bad(at("delta from the version itself"));
                    }
                    arts.push((format!("delta from {}", d.from), &d.artifact));
                }
                for (what, a) in arts {
                    if let Err(why) = check_path(&a.path) {
                        return bad(at(&format!("{what} path {:?} {why}", a.path)));
                    }
                    check_hex(&a.blake3).map_err(|why| Error::Invalid {
                        what: at(&format!("{what} blake3 {why}")),
                    })?;
                    if a.size == 0 {
                        return bad(at(&format!("{what} has size 0")));
                    }
                    if !paths.insert(a.path.as_str()) {
                        return bad(at(&format!("{what} path {:?} is used twice", a.path)));
                    }
                }
            }
        }
        for (name, c) in &self.channels {
            if let Err(why) = check_name(name) {
                return bad(format!("channel name {name:?} {why}"));
            }
            for w in c.releases.windows(2) {
                if w[0].version >= w[1].version {
                    return bad(format!("channel {name}: versions not sorted and unique"));
                }
            }
            for cr in &c.releases {
                if self.release(&cr.version).is_none() {
                    return bad(format!(
                        "channel {name}: version {} is not a release",
                        cr.version
                    ));
                }
                if cr.rollout.percent > 100 {
                    return bad(format!(
                        "channel {name} version {}: rollout {}% is over 100",
                        cr.version, cr.rollout.percent
                    ));
                }
                if cr.rollout.salt.is_empty() || cr.rollout.salt.len() > 64 {
                    return bad(format!(
                        "channel {name} version {}: salt must be 1..=64 characters",
                        cr.version
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks a channel or platform name: 1..=64 characters from
/// `[A-Za-z0-9._-]`, not starting with `.` or `-`. Names become path
/// components, so nothing else is allowed.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1..=64 characters");
    }
    if name.starts_with(['.', '-']) {
        return Err("must not start with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("may only contain ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Checks an artifact path: `/`-separated components that each pass
/// [`check_name`], plus `+` (from version strings); at most 255 bytes.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > 255 {
        return Err("must be 1..=255 characters");
    }
    for c in path.split('/') {
        check_name(&c.replace('+', "_")).map_err(|_| {
            "must be relative, '/'-separated names of ASCII letters, digits, '.', '_', '-', '+'"
        })?;
    }
    Ok(())
}

/// The entry of `known` closest to a mistyped channel or platform name
/// `given`, if one is close enough to be what was meant ("stabel" →
/// "stable"), for "did you mean" messages.
pub fn closest_name<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(given, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Most data paths one release may carry over.
pub const MAX_CARRY: usize = 64;

/// Checks a path of app data inside an install (`Release::carry`):
/// 1..=255 bytes of `/`-separated components, none empty, `.` or `..`,
/// no backslash, `:` or control characters (so it means the same on every OS
/// and stays inside the install).
pub fn check_data_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > 255 {
        return Err("must be 1..=255 bytes");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == ':')
    {
        return Err("must not contain control characters, '\\' or ':'");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must be a relative path of names (no empty, '.' or '..' parts)");
    }
    Ok(())
}

fn check_hex(s: &str) -> Result<(), &'static str> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("must be 64 lowercase hex digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for ok in ["stable", "linux-x86_64", "macos-aarch64", "v1.2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".hidden", "-x", "a/b", "a b", "..", "ü", "$(x)", "'q'", "%VAR%",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("pkg/linux/1.0.0+b1/full.dpk").is_ok());
        for bad in ["/abs", "a//b", "a/../b", "a/./b", "a\\b", "a/", ""] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        for ok in ["instance", "logs", ".config/app", "data/db.sqlite", "ü/x y"] {
            assert!(check_data_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/etc", "../x", "a/../b", "a/./b", ".", "a//b", "a/", "a\\b", "C:x", "a\nb",
        ] {
            assert!(check_data_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_data_path(&"a".repeat(256)).is_err());
    }

    #[test]
    fn buckets_spread_and_differ_by_salt() {
        let mut counts = [0u32; 10];
        let mut same = 0;
        for i in 0..10_000u32 {
            let id = i.to_le_bytes();
            let b = bucket("aa", &id);
            counts[(b / 1000) as usize] += 1;
            same += u32::from(b / 1000 == bucket("bb", &id) / 1000);
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
        assert!(same < 1300, "salts must reshuffle installs: {same}");
        let r = Rollout {
            percent: 0,
            salt: "aa".into(),
            paused: false,
        };
        assert!(!r.includes(b"x"));
        let all = Rollout { percent: 100, ..r };
        assert!(all.includes(b"x"));
        let paused = Rollout {
            paused: true,
            ..all
        };
        assert!(!paused.includes(b"x"));
    }
}
