//! Checking for an update: the newest eligible version (see [`crate::plan`])
//! and the cheapest way to it, as an [`Update`].

use deltapack_manifest::{Manifest, Version};
use serde::Serialize;

use crate::plan::{self, Path as UpdatePath, Want};
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
        let m = self.manifest(progress)?;
        let st = self.state()?;
        let current = self.layout.current()?;
        let refused = st.refused.keys().cloned().collect();
        let want = Want {
            channel: &self.channel,
            platform: &self.platform,
            current: current.as_ref(),
            install_id: st.install_id.as_bytes(),
            ignore_rollout: manual,
            refused: &refused,
        };
        let Some(target) = plan::target(&m, &want) else {
            return Ok(None);
        };
        self.offer(m, current, &target).map(Some)
    }

    /// The newest good (not yanked) version on the channel with a build for
    /// this platform, whatever is installed.
    pub fn newest_on_channel(&self) -> Result<Option<Version>, Error> {
        let m = self.manifest(&|_| {})?;
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
        let current = self.layout.current()?;
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
