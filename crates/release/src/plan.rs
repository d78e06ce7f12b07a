//! Which packages a repository needs: pure functions of the manifest.
//!
//! A build of version `V` on platform `p` needs a full bundle, and a delta
//! from each of the last `K` versions before `V` on each channel that offers
//! `V` and has a build for `p` (yanked versions count: installs may be on
//! them). A base older than the release's `min_delta_version`, or listed in
//! `no_delta_from`, gets no delta. What the repository already holds intact
//! is never rebuilt.

use std::path::Path;

use deltapack_manifest::{Build, Manifest, Version};

use crate::{Error, layout};

/// One package to build: a full bundle (`from: None`) or a delta.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Job {
    pub(crate) platform: String,
    pub(crate) to: Version,
    pub(crate) from: Option<Version>,
}

impl Job {
    /// The job's repository path.
    pub(crate) fn path(&self) -> String {
        match &self.from {
            None => layout::full_path(&self.platform, &self.to),
            Some(f) => layout::delta_path(&self.platform, f, &self.to),
        }
    }
}

/// The last `k` versions before `to` on `channel` that have a build for
/// `platform`, newest first.
pub(crate) fn bases(
    m: &Manifest,
    channel: &str,
    to: &Version,
    platform: &str,
    k: usize,
) -> Vec<Version> {
    let Some(c) = m.channels.get(channel) else {
        return Vec::new();
    };
    c.releases
        .iter()
        .rev()
        .map(|cr| &cr.version)
        .filter(|v| *v < to)
        .filter(|v| {
            m.release(v)
                .is_some_and(|r| r.platforms.contains_key(platform))
        })
        .take(k)
        .cloned()
        .collect()
}

/// The jobs that give `to` on `platform` a full bundle and deltas from
/// `bases`, leaving out what `existing` already has intact in `root`.
pub(crate) fn jobs_for(
    root: &Path,
    platform: &str,
    to: &Version,
    bases: &[Version],
    min_delta: Option<&Version>,
    existing: Option<&Build>,
) -> Result<Vec<Job>, Error> {
    let mut jobs = Vec::new();
    let full_ok = match existing {
        Some(b) => layout::intact(root, &b.full)?,
        None => false,
    };
    if !full_ok {
        jobs.push(Job {
            platform: platform.to_owned(),
            to: to.clone(),
            from: None,
        });
    }
    for base in bases {
        if min_delta.is_some_and(|min| base < min) {
            continue;
        }
        if let Some(b) = existing {
            if b.no_delta_from.contains(base) {
                continue;
            }
            if let Some(d) = b.deltas.iter().find(|d| &d.from == base)
                && layout::intact(root, &d.artifact)?
            {
                continue;
            }
        }
        jobs.push(Job {
            platform: platform.to_owned(),
            to: to.clone(),
            from: Some(base.clone()),
        });
    }
    Ok(jobs)
}

/// This shard's part of `jobs` (sorted first, so every shard agrees).
pub(crate) fn shard(mut jobs: Vec<Job>, index: u32, count: u32) -> Vec<Job> {
    jobs.sort();
    jobs.into_iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64) % u64::from(count) == u64::from(index))
        .map(|(_, j)| j)
        .collect()
}
