//! What a command changed in the manifest, for the people and scripts
//! that run it: computed by comparing the manifest before and after, so
//! every command reports the same way and none can forget a change.

use deltapack_manifest::{Manifest, Version};
use serde::Serialize;

/// One change a command made to the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A version is now published for these platforms (all of them for a
    /// new version; the new ones for a version completed by a later run).
    Released {
        /// The version.
        version: Version,
        /// Its newly published platforms.
        platforms: Vec<String>,
    },
    /// A channel that did not exist before.
    ChannelCreated {
        /// The channel.
        channel: String,
    },
    /// A channel offers a version it did not offer before.
    Offered {
        /// The channel.
        channel: String,
        /// The version.
        version: Version,
        /// Its staged-rollout percentage there.
        percent: u8,
    },
    /// A release's staged rollout on a channel changed.
    Rollout {
        /// The channel.
        channel: String,
        /// The version.
        version: Version,
        /// The percentage before.
        percent_before: u8,
        /// The percentage now.
        percent: u8,
        /// Whether it was paused before.
        paused_before: bool,
        /// Whether it is paused now.
        paused: bool,
    },
    /// A release was withdrawn.
    Yanked {
        /// The version.
        version: Version,
        /// Why (shown to operators).
        reason: String,
    },
    /// A withdrawn release was restored.
    Restored {
        /// The version.
        version: Version,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Released { version, platforms } => {
                write!(f, "released {version} for {}", platforms.join(", "))
            }
            Change::ChannelCreated { channel } => write!(f, "channel {channel}: created"),
            Change::Offered {
                channel,
                version,
                percent,
            } => write!(
                f,
                "channel {channel}: offers {version} to {percent}% of installs"
            ),
            Change::Rollout {
                channel,
                version,
                percent_before,
                percent,
                paused_before,
                paused,
            } => {
                write!(f, "channel {channel}: {version} rollout ")?;
                match (paused_before, paused) {
                    (false, true) => write!(f, "paused at {percent}%"),
                    (true, false) if percent == percent_before => {
                        write!(f, "resumed at {percent}%")
                    }
                    (true, false) => write!(f, "resumed, {percent_before}% -> {percent}%"),
                    _ => write!(f, "{percent_before}% -> {percent}%"),
                }
            }
            Change::Yanked { version, reason } => write!(f, "yanked {version}: {reason}"),
            Change::Restored { version } => write!(f, "restored {version}"),
        }
    }
}

/// The changes from `before` to `after`, in a fixed order: releases, then
/// channels by name, then yanks.
pub(crate) fn between(before: &Manifest, after: &Manifest) -> Vec<Change> {
    let mut out = Vec::new();
    for r in &after.releases {
        let old = before.release(&r.version);
        let platforms: Vec<String> = r
            .platforms
            .keys()
            .filter(|p| old.is_none_or(|o| !o.platforms.contains_key(*p)))
            .cloned()
            .collect();
        if !platforms.is_empty() {
            out.push(Change::Released {
                version: r.version.clone(),
                platforms,
            });
        }
    }
    for (name, c) in &after.channels {
        let old = before.channels.get(name);
        if old.is_none() {
            out.push(Change::ChannelCreated {
                channel: name.clone(),
            });
        }
        for cr in &c.releases {
            let prior = old.and_then(|o| o.releases.iter().find(|p| p.version == cr.version));
            match prior {
                None => out.push(Change::Offered {
                    channel: name.clone(),
                    version: cr.version.clone(),
                    percent: cr.rollout.percent,
                }),
                Some(p)
                    if (p.rollout.percent, p.rollout.paused)
                        != (cr.rollout.percent, cr.rollout.paused) =>
                {
                    out.push(Change::Rollout {
                        channel: name.clone(),
                        version: cr.version.clone(),
                        percent_before: p.rollout.percent,
                        percent: cr.rollout.percent,
                        paused_before: p.rollout.paused,
                        paused: cr.rollout.paused,
                    });
                }
                Some(_) => {}
            }
        }
    }
    for r in &after.releases {
        let was = before.release(&r.version).and_then(|o| o.yanked.as_ref());
        match (was, &r.yanked) {
            (None, Some(reason)) => out.push(Change::Yanked {
                version: r.version.clone(),
                reason: reason.clone(),
            }),
            (Some(_), None) => out.push(Change::Restored {
                version: r.version.clone(),
            }),
            _ => {}
        }
    }
    out
}
