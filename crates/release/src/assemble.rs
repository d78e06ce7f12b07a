//! Folding built packages and release metadata into the manifest. A single
//! run and a merge of shards go through the same steps, so they give the
//! same manifest.

use std::collections::BTreeMap;
use std::path::Path;

use deltapack_manifest::{
    Build, ChannelRelease, Delta, Manifest, Release, Rollout, TreeRef, Version,
};
use serde::{Deserialize, Serialize};

use crate::build::Built;
use crate::{Error, layout};

/// What one `release` run (or one shard of it) produced. Shards write it to
/// `shards/`; a merge reads them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) version: Version,
    pub(crate) channel: String,
    pub(crate) shard: [u32; 2],
    pub(crate) released: u64,
    pub(crate) notes: String,
    pub(crate) min_delta_version: Option<Version>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) carry: Vec<String>,
    pub(crate) rollout_percent: u8,
    pub(crate) trees: BTreeMap<String, TreeRef>,
    pub(crate) built: Vec<Built>,
}

impl Record {
    /// The fields every shard of one release must agree on.
    pub(crate) fn same_release(&self, other: &Record) -> bool {
        self.version == other.version
            && self.channel == other.channel
            && self.shard[1] == other.shard[1]
            && self.notes == other.notes
            && self.min_delta_version == other.min_delta_version
            && self.carry == other.carry
            && self.rollout_percent == other.rollout_percent
            && self.trees == other.trees
    }
}

/// A delta is kept only if it is at most this share of the full bundle
/// (in tenths): clearly smaller, or clients would be better off with the
/// full bundle and its simpler failure modes.
const KEEP_DELTA_TENTHS: u64 = 9;

/// The rollout salt of a release on a channel: derived, so reruns and
/// shards agree, and different for every release.
pub(crate) fn salt(channel: &str, v: &Version) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"deltapack rollout salt\0");
    h.update(channel.as_bytes());
    h.update(b"\0");
    h.update(v.to_string().as_bytes());
    h.finalize().to_hex()[..16].to_string()
}

/// Adds a release run's metadata and its full bundles.
pub(crate) fn add_release(m: &mut Manifest, rec: &Record) -> Result<(), Error> {
    let pos = m.releases.binary_search_by(|r| r.version.cmp(&rec.version));
    let i = match pos {
        Ok(i) => i,
        Err(i) => {
            m.releases.insert(
                i,
                Release {
                    version: rec.version.clone(),
                    released: rec.released,
                    notes: String::new(),
                    min_delta_version: None,
                    yanked: None,
                    carry: Vec::new(),
                    platforms: BTreeMap::new(),
                },
            );
            i
        }
    };
    let rel = &mut m.releases[i];
    if !rec.notes.is_empty() {
        rel.notes.clone_from(&rec.notes);
    }
    if rec.min_delta_version.is_some() {
        rel.min_delta_version.clone_from(&rec.min_delta_version);
    }
    if !rec.carry.is_empty() {
        rel.carry.clone_from(&rec.carry);
    }
    for (p, tree) in &rec.trees {
        let full = rec
            .built
            .iter()
            .find(|b| &b.job.platform == p && b.job.from.is_none() && b.job.to == rec.version)
            .map(|b| b.artifact.clone());
        match (rel.platforms.get_mut(p), full) {
            (Some(b), Some(full)) => {
                b.tree = tree.clone();
                b.full = full;
            }
            (Some(_), None) => {}
            (None, Some(full)) => {
                rel.platforms.insert(
                    p.clone(),
                    Build {
                        tree: tree.clone(),
                        full,
                        deltas: Vec::new(),
                        no_delta_from: Vec::new(),
                    },
                );
            }
            (None, None) => {
                return Err(Error::Shard(format!(
                    "no shard built the full bundle of {} for {p}",
                    rec.version
                )));
            }
        }
    }
    Ok(())
}

/// Adds built deltas to their builds, dropping (and deleting) those not
/// clearly smaller than the target's full bundle. Returns the paths dropped.
pub(crate) fn add_deltas(
    m: &mut Manifest,
    root: &Path,
    built: &[Built],
) -> Result<Vec<String>, Error> {
    let mut dropped = Vec::new();
    for b in built {
        let Some(from) = &b.job.from else { continue };
        let build = m
            .release_mut(&b.job.to)
            .and_then(|r| r.platforms.get_mut(&b.job.platform))
            .ok_or_else(|| Error::UnknownBuild {
                version: b.job.to.to_string(),
                platform: b.job.platform.clone(),
            })?;
        build.deltas.retain(|d| &d.from != from);
        if b.artifact.size * 10 > build.full.size * KEEP_DELTA_TENTHS {
            if let Err(e) = fs_err::remove_file(layout::local(root, &b.artifact.path))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(e.into());
            }
            if let Err(i) = build.no_delta_from.binary_search(from) {
                build.no_delta_from.insert(i, from.clone());
            }
            dropped.push(b.artifact.path.clone());
        } else {
            let i = build
                .deltas
                .binary_search_by(|d| d.from.cmp(from))
                .unwrap_or_else(|i| i);
            build.deltas.insert(
                i,
                Delta {
                    from: from.clone(),
                    artifact: b.artifact.clone(),
                },
            );
        }
    }
    Ok(dropped)
}

/// Puts a release on a channel (if it is not there yet) at `percent`.
pub(crate) fn offer(m: &mut Manifest, channel: &str, v: &Version, percent: u8) {
    let c = m.channels.entry(channel.to_owned()).or_default();
    if let Err(i) = c.releases.binary_search_by(|cr| cr.version.cmp(v)) {
        c.releases.insert(
            i,
            ChannelRelease {
                version: v.clone(),
                rollout: Rollout {
                    percent,
                    salt: salt(channel, v),
                    paused: false,
                },
            },
        );
    }
}
