//! Choosing what to install and the cheapest way to get there: pure
//! functions of a verified manifest.
//!
//! The target is the newest release on the channel that is not yanked, is
//! in the install's rollout bucket (unless the check is manual), is not
//! paused, has a build for the platform, and is newer than the current
//! version. An install on a yanked release is offered the newest good
//! release even if it is older. The path is the cheapest by download size
//! among the full bundle and every chain of deltas (Dijkstra over the
//! versions that have a build for the platform), honouring each target's
//! `min_delta_version`.

use std::collections::{BTreeMap, BTreeSet};

use deltapack_manifest::{Artifact, Manifest, Version};
use serde::Serialize;

/// One download-and-apply step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The base version (`None` for the full bundle).
    pub from: Option<Version>,
    /// The version this step produces.
    pub to: Version,
    /// The package.
    pub artifact: Artifact,
}

impl std::fmt::Display for Step {
    /// `delta 1.0.0->1.1.0` or `full 1.1.0`, as history entries name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(from) => write!(f, "delta {from}->{}", self.to),
            None => write!(f, "full {}", self.to),
        }
    }
}

/// How the target is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Path {
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl Path {
    /// Bytes to download.
    pub fn bytes(&self) -> u64 {
        self.steps
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.artifact.size))
    }

    /// Whether the path is the full bundle.
    pub fn is_full(&self) -> bool {
        self.steps.len() == 1 && self.steps[0].from.is_none()
    }
}

/// How a version was reached: bytes so far, hops, and the last edge.
type Reached<'m> = (u64, usize, Option<(&'m Version, &'m Artifact)>);

/// Longest chain of deltas considered.
const MAX_CHAIN: usize = 8;

/// What a check may offer.
pub(crate) struct Want<'a> {
    pub(crate) channel: &'a str,
    pub(crate) platform: &'a str,
    pub(crate) current: Option<&'a Version>,
    pub(crate) install_id: &'a [u8],
    pub(crate) ignore_rollout: bool,
    /// Versions this install refuses (rolled back as unhealthy).
    pub(crate) refused: &'a BTreeSet<Version>,
}

/// The version to offer, if any.
pub(crate) fn target(m: &Manifest, w: &Want<'_>) -> Option<Version> {
    let channel = m.channels.get(w.channel)?;
    let current_yanked = w
        .current
        .and_then(|c| m.release(c))
        .is_some_and(|r| r.yanked.is_some());
    channel
        .releases
        .iter()
        .rev()
        .filter(|cr| {
            let Some(r) = m.release(&cr.version) else {
                return false;
            };
            r.yanked.is_none()
                && r.platforms.contains_key(w.platform)
                && !w.refused.contains(&cr.version)
                && (w.ignore_rollout || cr.rollout.includes(w.install_id))
                && (!cr.rollout.paused || w.ignore_rollout)
        })
        .map(|cr| cr.version.clone())
        .find(|v| match w.current {
            None => true,
            Some(c) if current_yanked => v != c,
            Some(c) => v > c,
        })
}

/// The cheapest path from `from` (or nothing installed) to `to`.
pub(crate) fn cheapest(
    m: &Manifest,
    platform: &str,
    from: Option<&Version>,
    to: &Version,
) -> Option<Path> {
    let build = m.release(to)?.platforms.get(platform)?;
    let full = Path {
        steps: vec![Step {
            from: None,
            to: to.clone(),
            artifact: build.full.clone(),
        }],
    };
    let Some(from) = from else {
        return Some(full);
    };
    // Edges: base -> target, for every delta whose target allows the base.
    let mut edges: BTreeMap<&Version, Vec<(&Version, &Artifact)>> = BTreeMap::new();
    for r in &m.releases {
        let Some(b) = r.platforms.get(platform) else {
            continue;
        };
        for d in &b.deltas {
            if r.min_delta_version
                .as_ref()
                .is_some_and(|min| &d.from < min)
            {
                continue;
            }
            edges
                .entry(&d.from)
                .or_default()
                .push((&r.version, &d.artifact));
        }
    }
    // Dijkstra by bytes, bounded by chain length.
    let mut best: BTreeMap<&Version, Reached<'_>> = BTreeMap::new();
    let mut todo: BTreeSet<(u64, &Version)> = BTreeSet::new();
    best.insert(from, (0, 0, None));
    todo.insert((0, from));
    while let Some((cost, v)) = todo.pop_first() {
        if v == to {
            break;
        }
        let hops = best.get(v).map_or(0, |b| b.1);
        if hops >= MAX_CHAIN {
            continue;
        }
        for (next, art) in edges.get(v).into_iter().flatten() {
            // Sizes come from the manifest: never let them wrap.
            let c = cost.saturating_add(art.size);
            if best.get(next).is_none_or(|b| c < b.0) {
                if let Some(old) = best.get(next) {
                    todo.remove(&(old.0, *next));
                }
                best.insert(next, (c, hops + 1, Some((v, art))));
                todo.insert((c, next));
            }
        }
    }
    let Some(&(cost, _, _)) = best.get(to) else {
        return Some(full);
    };
    if cost >= build.full.size {
        return Some(full);
    }
    let mut steps = Vec::new();
    let mut at = to;
    while let Some((_, _, Some((prev, art)))) = best.get(at) {
        steps.push(Step {
            from: Some((*prev).clone()),
            to: at.clone(),
            artifact: (*art).clone(),
        });
        at = prev;
    }
    steps.reverse();
    Some(Path { steps })
}
