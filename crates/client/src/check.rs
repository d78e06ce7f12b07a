//! Checking for an update: the newest eligible version (see [`crate::plan`])
//! and the cheapest way to it, as an [`Update`].

use std::collections::BTreeSet;

use deltapack_manifest::{Manifest, Version};
use serde::Serialize;

use crate::plan::{self, Path as UpdatePath, Want};
use crate::strategy::{Current, Installed};
use crate::{Error, Event, Updater};

/// An update on offer.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    /// The installed version (`None` for a first install).
    pub from: Option<Version>,
    /// The version offered.
    pub version: Version,
    /// Its release notes.
    pub notes: String,
    /// The cheapest way there.
    pub path: UpdatePath,
    /// Bytes to download.
    pub download_bytes: u64,
    /// Bytes of the full bundle, for comparison.
    pub full_bytes: u64,
    /// Bytes of the new version's files (disk space it needs).
    pub tree_bytes: u64,
    #[serde(skip)]
    pub(crate) manifest: Manifest,
}

/// What [`Updater::check_explained`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The update on offer, if any.
    pub update: Option<Update>,
    /// With no update: a newer version of the channel that this install
    /// is not offered, and why.
    pub held: Option<Held>,
}

/// What the manifest accepted at the last check offered this install
/// ([`Status::at_last_check`](crate::Status::at_last_check)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtLastCheck {
    /// The version it offered, if any.
    pub available: Option<Version>,
    /// With none offered: a newer version held back, and by what.
    pub held: Option<Held>,
}

/// Why a newer version is not offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Held {
    /// The staged rollout has not reached this install (or is paused); a
    /// manual check (`--manual`) installs it now.
    Rollout {
        /// The version.
        version: Version,
        /// The share of installs it is offered to.
        percent: u8,
        /// Whether the rollout is paused.
        paused: bool,
    },
    /// This install refused it (a rollback, a broken full bundle).
    Refused {
        /// The version.
        version: Version,
        /// Why.
        reason: crate::RefusalReason,
        /// The command that offers it again.
        clear_with: String,
    },
}

/// The entry of `known` closest to `given`, if it is close (a typo).
fn closest(given: &str, known: &[String]) -> Option<String> {
    deltapack_manifest::closest_name(given, known.iter().map(String::as_str)).map(str::to_owned)
}

impl Updater {
    /// The newest eligible version and the cheapest way to it, if there
    /// is an update. Respects the staged rollout.
    pub fn check(&self) -> Result<Option<Update>, Error> {
        self.check_with(false, &|_| {})
    }

    /// Like [`check`](Updater::check); `manual` ignores the staged
    /// rollout (a user asked).
    pub fn check_with(
        &self,
        manual: bool,
        progress: &dyn Fn(Event),
    ) -> Result<Option<Update>, Error> {
        self.check_explained(manual, progress).map(|c| c.update)
    }

    /// [`check_with`](Updater::check_with), and when there is no update,
    /// what a newer version on the channel is held back by, if one is.
    pub fn check_explained(
        &self,
        manual: bool,
        progress: &dyn Fn(Event),
    ) -> Result<Checked, Error> {
        let m = self.manifest(progress)?;
        self.validate(&m)?;
        let current = self.identified(&m)?;
        let st = self.state()?;
        let refused = st.refused.keys().cloned().collect();
        if let Some(target) = self.planned(&m, current.as_ref(), &st, manual, &refused) {
            return Ok(Checked {
                update: Some(self.offer(m, current, &target)?),
                held: None,
            });
        }
        let held = self.held(&m, current.as_ref(), &st);
        Ok(Checked { update: None, held })
    }

    /// What the manifest accepted at the last check offers this install,
    /// read without the network (for `status`); `None` before any check.
    pub(crate) fn at_last_check(&self) -> Option<AtLastCheck> {
        let m = self.accepted_manifest().ok()?;
        let current = self.current().ok()?;
        let st = self.state().ok()?;
        let refused = st.refused.keys().cloned().collect();
        let available = self.planned(&m, current.as_ref(), &st, false, &refused);
        let held = match available {
            Some(_) => None,
            None => self.held(&m, current.as_ref(), &st),
        };
        Some(AtLastCheck { available, held })
    }

    /// With nothing on offer: the newer version that would be without the
    /// rollout and the refusals, and what holds it back.
    fn held(
        &self,
        m: &Manifest,
        current: Option<&Version>,
        st: &crate::state::State,
    ) -> Option<Held> {
        self.planned(m, current, st, true, &BTreeSet::new())
            .map(|v| match st.refused.get(&v) {
                Some(r) => Held::Refused {
                    clear_with: format!("deltapack update allow {v}"),
                    version: v,
                    reason: r.reason,
                },
                None => {
                    let cr = m
                        .channels
                        .get(&self.channel)
                        .and_then(|c| c.releases.iter().find(|cr| cr.version == v));
                    Held::Rollout {
                        percent: cr.map_or(0, |cr| cr.rollout.percent),
                        paused: cr.is_some_and(|cr| cr.rollout.paused),
                        version: v,
                    }
                }
            })
    }

    /// The version `m` offers this install (see [`plan::target`]).
    fn planned(
        &self,
        m: &Manifest,
        current: Option<&Version>,
        st: &crate::state::State,
        ignore_rollout: bool,
        refused: &BTreeSet<Version>,
    ) -> Option<Version> {
        plan::target(
            m,
            &Want {
                channel: &self.channel,
                platform: &self.platform,
                current,
                install_id: st.install_id.as_bytes(),
                ignore_rollout,
                refused,
            },
        )
    }

    /// Refuses a channel or platform the repository does not have, naming
    /// the ones it has (and the closest).
    pub(crate) fn validate(&self, m: &Manifest) -> Result<(), Error> {
        if !m.channels.contains_key(&self.channel) {
            let known: Vec<String> = m.channels.keys().cloned().collect();
            return Err(Error::UnknownChannel {
                suggestion: closest(&self.channel, &known),
                channel: self.channel.clone(),
                known,
            });
        }
        let platforms: BTreeSet<&String> =
            m.releases.iter().flat_map(|r| r.platforms.keys()).collect();
        if !m.releases.is_empty() && !platforms.contains(&self.platform) {
            let known: Vec<String> = platforms.into_iter().cloned().collect();
            return Err(Error::UnknownPlatform {
                suggestion: closest(&self.platform, &known),
                platform: self.platform.clone(),
                known,
            });
        }
        Ok(())
    }

    /// [`check_with`](Updater::check_with) without the network: against
    /// the manifest accepted at the last check, and only an update whose
    /// packages are all downloaded already (`download` earlier, then no
    /// network). `Ok(None)` when there is nothing to install.
    pub fn check_offline(&self, manual: bool) -> Result<Option<Update>, Error> {
        let m = self.accepted_manifest()?;
        self.validate(&m)?;
        let current = self.identified(&m)?;
        let st = self.state()?;
        let refused = st.refused.keys().cloned().collect();
        let Some(target) = self.planned(&m, current.as_ref(), &st, manual, &refused) else {
            return Ok(None);
        };
        let mut u = self.offer(m, current, &target)?;
        let cache = crate::downloads::Cache::new(&self.store.root);
        let cached = |p: &UpdatePath| -> Result<bool, Error> {
            for s in &p.steps {
                if !cache.has(&s.artifact)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        if !cached(&u.path)? {
            // The download may have taken the full bundle (a delta failed).
            let full = self.full_path(&u)?;
            if !cached(&full)? {
                return Err(Error::NotDownloaded {
                    version: u.version.to_string(),
                });
            }
            u.download_bytes = full.bytes();
            u.path = full;
        }
        Ok(Some(u))
    }

    /// The newest good (not yanked) version on the channel with a build for
    /// this platform, whatever is installed.
    pub fn newest_on_channel(&self) -> Result<Option<Version>, Error> {
        let m = self.manifest(&|_| {})?;
        self.validate(&m)?;
        Ok(m.channels.get(&self.channel).and_then(|c| {
            c.releases
                .iter()
                .rev()
                .map(|cr| &cr.version)
                .find(|v| {
                    m.release(v).is_some_and(|r| {
                        r.yanked.is_none() && r.platforms.contains_key(&self.platform)
                    })
                })
                .cloned()
        }))
    }

    /// An update to a specific version (channel switch, downgrade, or a
    /// first install), ignoring rollout, yanks and refusals.
    pub fn check_version(&self, v: &Version) -> Result<Update, Error> {
        let m = self.manifest(&|_| {})?;
        self.validate(&m)?;
        let current = self.identified(&m)?;
        self.offer(m, current, v)
    }

    fn offer(
        &self,
        m: Manifest,
        current: Option<Version>,
        target: &Version,
    ) -> Result<Update, Error> {
        if current.as_ref() == Some(target) {
            return Err(Error::AlreadyInstalled {
                version: target.to_string(),
            });
        }
        let not_available = || Error::NotAvailable {
            version: target.to_string(),
            platform: self.platform.clone(),
        };
        let path = plan::cheapest(&m, &self.platform, current.as_ref(), target)
            .ok_or_else(not_available)?;
        let r = m.release(target).ok_or_else(not_available)?;
        let build = r.platforms.get(&self.platform);
        Ok(Update {
            from: current,
            version: target.clone(),
            notes: r.notes.clone(),
            download_bytes: path.bytes(),
            full_bytes: build.map_or(0, |b| b.full.size),
            tree_bytes: build.map_or(0, |b| b.tree.bytes),
            path,
            manifest: m,
        })
    }

    /// The version at the app's path. An executable or a bundle this
    /// updater did not install (put there by the app's installer) is
    /// identified once, by its tree digest among the manifest's releases
    /// or else by the version the app says it is, and recorded.
    pub(crate) fn identified(&self, m: &Manifest) -> Result<Option<Version>, Error> {
        match self.strategy.current(&self.state()?)? {
            Current::None => return Ok(None),
            Current::Known(v) => return Ok(Some(v)),
            Current::Unknown => {}
        }
        let _lock = self.lock()?;
        let mut st = self.state()?;
        if let Current::Known(v) = self.strategy.current(&st)? {
            return Ok(Some(v));
        }
        let path = self.strategy.runs_from();
        let tree = deltapack_tree::Tree::scan(&path).ok();
        let digest = tree.as_ref().map(|t| deltapack_tree::hex(&t.id().digest));
        let listed = m
            .releases
            .iter()
            .find(|r| {
                r.platforms
                    .get(&self.platform)
                    .is_some_and(|b| Some(&b.tree.digest) == digest.as_ref())
            })
            .map(|r| r.version.clone());
        if let (Some(v), Some(t), Some(d)) = (&listed, &tree, &digest) {
            // Exactly the release: its paths are the base of the next delta.
            let paths = if self.strategy.holds_trees() {
                t.nodes.iter().map(|n| n.path.as_str().to_owned()).collect()
            } else {
                Vec::new()
            };
            self.store.write_tree(
                v,
                &crate::store::TreeRecord {
                    digest: d.clone(),
                    paths,
                },
            )?;
        }
        let version = listed
            .or_else(|| self.current_hint.clone())
            .ok_or(Error::Unidentified { path: path.clone() })?;
        let identity = self
            .strategy
            .identity()?
            .ok_or(Error::Unidentified { path })?;
        st.current = Some(Installed {
            version: version.clone(),
            identity,
        });
        st.save(&self.store.root)?;
        Ok(Some(version))
    }

    /// The full bundle of `u`'s version.
    pub(crate) fn full_path(&self, u: &Update) -> Result<UpdatePath, Error> {
        plan::cheapest(&u.manifest, &self.platform, None, &u.version).ok_or_else(|| {
            Error::NotAvailable {
                version: u.version.to_string(),
                platform: self.platform.clone(),
            }
        })
    }
}
