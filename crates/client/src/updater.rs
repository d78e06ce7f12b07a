//! [`Updater`]: check, download, apply, install, roll back.

use std::collections::BTreeSet;
use std::path::PathBuf;

use deltapack_apply::Applier;
use deltapack_manifest::{Manifest, PublicKey, Verifier, Version};
use serde::Serialize;

use crate::install::Layout;
use crate::plan::{self, Path as UpdatePath, Step, Want};
use crate::state::{self, HistoryEntry, State};
use crate::transport::{Location, NetConfig, Transport};
use crate::{Error, Event};

/// Name of the manifest at the repository root.
const MANIFEST: &str = "manifest.json";

/// Builds an [`Updater`].
#[derive(Debug, Clone)]
pub struct UpdaterBuilder {
    repository: Option<String>,
    keys: Vec<PublicKey>,
    channel: String,
    platform: Option<String>,
    install_dir: Option<PathBuf>,
    keep: usize,
    net: NetConfig,
    now: Option<u64>,
    health_launches: u32,
}

impl UpdaterBuilder {
    /// The repository: `https://…/`, `http://127.0.0.1:…/` (loopback only),
    /// `file:///…` or a directory path.
    pub fn repository(mut self, url: impl Into<String>) -> Self {
        self.repository = Some(url.into());
        self
    }

    /// A trusted public key (`ed25519:…`); add several during a rotation.
    pub fn public_key(mut self, key: PublicKey) -> Self {
        self.keys.push(key);
        self
    }

    /// The channel to follow (default `stable`).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// This install's platform name, as in the repository.
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = Some(platform.into());
        self
    }

    /// The install root (see [`crate::install`] for its layout).
    pub fn install_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.install_dir = Some(dir.into());
        self
    }

    /// Previous versions kept for rollback (default 2).
    pub fn keep_versions(mut self, n: usize) -> Self {
        self.keep = n;
        self
    }

    /// Only these hosts may serve the repository.
    pub fn allow_hosts(mut self, hosts: Vec<String>) -> Self {
        self.net.allowed_hosts = hosts;
        self
    }

    /// Retries of a failed transfer, and the first backoff delay (doubled
    /// each time, plus jitter).
    pub fn retries(mut self, n: u32, first_backoff: std::time::Duration) -> Self {
        self.net.retries = n;
        self.net.backoff = first_backoff;
        self
    }

    /// Connect and read (stall) timeouts.
    pub fn timeouts(mut self, connect: std::time::Duration, read: std::time::Duration) -> Self {
        self.net.connect_timeout = connect;
        self.net.read_timeout = read;
        self
    }

    /// Launches a new version gets to call [`Updater::mark_healthy`]
    /// before [`Updater::launched`] rolls it back (default 3; 0 disables
    /// automatic rollback).
    pub fn health_launches(mut self, n: u32) -> Self {
        self.health_launches = n;
        self
    }

    /// Slowest transfer accepted before a download counts as stalled and is
    /// retried (bytes per second; default 8 KiB/s).
    pub fn min_rate(mut self, bytes_per_sec: u64) -> Self {
        self.net.min_rate = bytes_per_sec;
        self
    }

    /// The clock reading to use (tests; default: the system clock). Expiry
    /// is checked against the later of it and the install's persisted time
    /// floor (see `state.rs`).
    pub fn now(mut self, t: u64) -> Self {
        self.now = Some(t);
        self
    }

    /// Checks the settings and builds the updater.
    pub fn build(self) -> Result<Updater, Error> {
        let repo = self
            .repository
            .ok_or(Error::Config("a repository is required"))?;
        if self.keys.is_empty() {
            return Err(Error::Config("at least one public key is required"));
        }
        let platform = self
            .platform
            .ok_or(Error::Config("a platform is required"))?;
        let root = self
            .install_dir
            .ok_or(Error::Config("an install directory is required"))?;
        deltapack_manifest::check_name(&self.channel)
            .map_err(|_| Error::Config("invalid channel name"))?;
        let loc = Location::parse(&repo, &self.net)?;
        Ok(Updater {
            transport: Transport::new(loc, self.net),
            keys: self.keys,
            channel: self.channel,
            platform,
            layout: Layout { root },
            keep: self.keep,
            now: self.now,
            health_launches: self.health_launches,
        })
    }
}

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
    /// Bytes of the installed version's files (disk space it needs).
    pub tree_bytes: u64,
    #[serde(skip)]
    manifest: Manifest,
}

/// Packages of an update on disk, hash-checked.
#[derive(Debug, Clone)]
pub struct Downloaded {
    update: Update,
    files: Vec<PathBuf>,
    bytes: u64,
}

impl Downloaded {
    /// The update.
    pub fn update(&self) -> &Update {
        &self.update
    }
}

/// A rebuilt, verified version waiting to be switched to.
#[derive(Debug, Clone)]
pub struct Staged {
    update: Update,
    steps: Vec<String>,
    bytes: u64,
    note: Option<String>,
}

impl Staged {
    /// Why a fallback to the full bundle was taken, if it was.
    pub fn fallback(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The packages applied, e.g. `delta 1.0.0->1.1.0`.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }
}

/// What `status` reports (serialisable for dashboards).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The install root.
    pub install_dir: PathBuf,
    /// The running version.
    pub current: Option<Version>,
    /// Versions on disk.
    pub installed: Vec<Version>,
    /// The channel followed.
    pub channel: String,
    /// The platform.
    pub platform: String,
    /// Last accepted manifest sequence.
    pub last_sequence: u64,
    /// When a manifest was last accepted (Unix seconds).
    pub last_check: Option<u64>,
    /// Versions refused after a rollback.
    pub refused: Vec<Version>,
    /// A new version on probation, with its launches so far.
    pub on_probation: Option<(Version, u32)>,
}

/// Updates one install root from one repository.
#[derive(Debug)]
pub struct Updater {
    transport: Transport,
    keys: Vec<PublicKey>,
    channel: String,
    platform: String,
    layout: Layout,
    keep: usize,
    now: Option<u64>,
    health_launches: u32,
}

/// What [`Updater::scheduled`] did.
#[derive(Debug, Clone, Serialize)]
pub enum Tick {
    /// The interval has not passed; the next check is due at this time
    /// (Unix seconds).
    NotDue {
        /// When.
        next_check: u64,
    },
    /// Checked: nothing new.
    UpToDate,
    /// An update exists; `auto_download` is off.
    Available(Update),
    /// Downloaded; `auto_install` is off.
    Downloaded(Update),
    /// Installed.
    Installed(Version),
}

/// What [`Updater::launched`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Launch {
    /// Nothing is on probation.
    Healthy,
    /// The current version is on probation: this was launch `n`.
    OnProbation {
        /// Launches so far, this one included.
        launches: u32,
    },
    /// The new version never reported healthy: rolled back to `to`.
    RolledBack {
        /// The version left (and refused from now on).
        from: Version,
        /// The version now current.
        to: Version,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({:?})", self.location())
    }
}

/// Held while an updater changes the install; released on drop.
struct Lock {
    _file: std::fs::File,
}

impl Updater {
    /// Starts building an updater.
    pub fn builder() -> UpdaterBuilder {
        UpdaterBuilder {
            repository: None,
            keys: Vec::new(),
            channel: "stable".into(),
            platform: None,
            install_dir: None,
            keep: 2,
            net: NetConfig::default(),
            now: None,
            health_launches: 3,
        }
    }

    /// Takes the install's OS file lock (released when the file closes).
    fn lock_file(&self) -> Result<std::fs::File, Error> {
        fs_err::create_dir_all(self.layout.meta())?;
        let f = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.layout.meta().join("lock"))?;
        let mut file = f.into_parts().0;
        match file.try_lock() {
            Ok(()) => {
                // The holder's pid, for the message another updater gets.
                // Best effort: the lock is the OS's (released when the
                // process dies, whatever the file says), so a full disk
                // here fails the update later, at a step that matters.
                use std::io::{Seek, Write};
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
                    .and_then(|_| write!(file, "{}", std::process::id()));
                Ok(file)
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = fs_err::read_to_string(self.layout.meta().join("lock"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                Err(Error::Busy { pid })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(std::io::Error::new(
                e.kind(),
                format!("locking {}: {e}", self.layout.meta().join("lock").display()),
            )
            .into()),
        }
    }

    /// Takes the lock and deals first with whatever a killed updater left.
    fn lock(&self) -> Result<Lock, Error> {
        let file = self.lock_file()?;
        crate::recover::recover(&self.layout)?;
        Ok(Lock { _file: file })
    }

    fn now(&self) -> u64 {
        self.now.unwrap_or_else(deltapack_manifest::unix_now)
    }

    /// Fetches and verifies the manifest, and refuses one older than the
    /// last accepted. Expiry is checked against `max(clock, time floor)`;
    /// the clock reading raises the floor whatever the outcome, and the
    /// manifest's `issued` time raises it once the manifest is accepted
    /// (see [`crate::state`]).
    fn manifest(&self, progress: &dyn Fn(Event)) -> Result<Manifest, Error> {
        progress(Event::Checking);
        let bytes = self.fetch_manifest()?;
        let _lock = self.lock()?;
        let meta = self.layout.meta();
        let mut st = State::load(&meta)?;
        let clock = self.now();
        let now = st.trusted_now(clock);
        if clock > st.time_floor {
            st.time_floor = clock;
            st.save(&meta)?;
        }
        let m = self.verify_manifest(&bytes, now)?;
        if m.sequence < st.last_sequence {
            return Err(Error::Rollback {
                have: st.last_sequence,
                offered: m.sequence,
            });
        }
        st.last_sequence = m.sequence;
        st.last_check = Some(clock);
        // Signed by a trusted key: its issue time is the publisher's word.
        st.time_floor = st.time_floor.max(m.issued);
        st.save(&meta)?;
        Ok(m)
    }

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
        let st = State::load(&self.layout.meta())?;
        let current = self.layout.current()?;
        let refused = st.refused_now();
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
    /// first install), ignoring rollout and yanks.
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
        let path =
            plan::cheapest(&m, &self.platform, current.as_ref(), target).ok_or_else(|| {
                Error::NotAvailable {
                    version: target.to_string(),
                    platform: self.platform.clone(),
                }
            })?;
        let r = m.release(target).ok_or_else(|| Error::NotAvailable {
            version: target.to_string(),
            platform: self.platform.clone(),
        })?;
        let build = r.platforms.get(&self.platform);
        let full_bytes = build.map_or(0, |b| b.full.size);
        let tree_bytes = build.map_or(0, |b| b.tree.bytes);
        Ok(Update {
            from: current,
            version: target.clone(),
            notes: r.notes.clone(),
            download_bytes: path.bytes(),
            full_bytes,
            tree_bytes,
            path,
            manifest: m,
        })
    }

    /// Fails early, before anything is written, when the disk cannot hold
    /// `needed` more bytes (plus a 1% margin).
    fn check_space(&self, needed: u64) -> Result<(), Error> {
        fs_err::create_dir_all(&self.layout.root)?;
        let available = fs4::available_space(&self.layout.root)?;
        let needed = needed.saturating_add(needed / 100);
        if available < needed {
            return Err(Error::NoSpace {
                path: self.layout.root.clone(),
                needed,
                available,
            });
        }
        Ok(())
    }

    /// Downloads the update's packages (resuming, retrying, hash-checked).
    pub fn download(&self, u: &Update, progress: &dyn Fn(Event)) -> Result<Downloaded, Error> {
        let _lock = self.lock()?;
        self.check_space(u.download_bytes)?;
        let mut files = Vec::new();
        let mut bytes = 0;
        for s in &u.path.steps {
            let before = fs_err::metadata(
                self.layout
                    .downloads()
                    .join(format!("{}.dpk", s.artifact.blake3)),
            )
            .is_ok();
            files.push(
                self.transport
                    .download(&s.artifact, &self.layout.downloads(), progress)
                    .map_err(|e| self.failed(u, e))?,
            );
            if !before {
                bytes += s.artifact.size;
            }
        }
        Ok(Downloaded {
            update: u.clone(),
            files,
            bytes,
        })
    }

    /// Rebuilds the new version beside the current one and verifies it.
    /// If a delta does not apply (the installed tree was modified, say),
    /// the full bundle is downloaded and used instead; the reason is kept.
    pub fn apply(&self, d: &Downloaded, progress: &dyn Fn(Event)) -> Result<Staged, Error> {
        self.apply_inner(d, progress)
            .map_err(|e| self.failed(&d.update, e))
    }

    /// Records a failed attempt at `u` when the package itself is at fault
    /// (not the network, the disk or another updater), and passes `e` on.
    fn failed(&self, u: &Update, e: Error) -> Error {
        if e.blames_package() {
            let record = || -> Result<(), Error> {
                let mut st = State::load(&self.layout.meta())?;
                *st.failures.entry(u.version.clone()).or_insert(0) += 1;
                st.save(&self.layout.meta())?;
                state::append_history(
                    &self.layout.meta(),
                    &HistoryEntry {
                        time: self.now(),
                        action: "update".into(),
                        from: u.from.clone(),
                        to: u.version.clone(),
                        path: Vec::new(),
                        bytes: 0,
                        result: "failed".into(),
                        note: Some(e.to_string()),
                    },
                )
            };
            // The failure being reported matters more than its record.
            let _ = record();
        }
        e
    }

    fn apply_inner(&self, d: &Downloaded, progress: &dyn Fn(Event)) -> Result<Staged, Error> {
        let _lock = self.lock()?;
        self.layout.create()?;
        let u = &d.update;
        let out = self.layout.version_dir(&u.version);
        if out.exists() {
            // Left by an earlier install or an interrupted run: keep it only
            // if it is exactly the target.
            if self.tree_matches(&u.manifest, &u.version, &out)? {
                return Ok(Staged {
                    update: u.clone(),
                    steps: vec![format!("reuse {}", u.version)],
                    bytes: d.bytes,
                    note: None,
                });
            }
            self.layout.remove(&u.version)?;
        }
        self.check_space(u.tree_bytes)?;
        match self.apply_steps(&u.manifest, &u.path.steps, &d.files, progress) {
            Ok(steps) => Ok(Staged {
                update: u.clone(),
                steps,
                bytes: d.bytes,
                note: None,
            }),
            Err(e) if !u.path.is_full() && e.blames_package() => {
                let reason = e.to_string();
                progress(Event::Fallback {
                    reason: reason.clone(),
                });
                let full = plan::cheapest(&u.manifest, &self.platform, None, &u.version)
                    .ok_or_else(|| Error::NotAvailable {
                        version: u.version.to_string(),
                        platform: self.platform.clone(),
                    })?;
                let file = self.transport.download(
                    &full.steps[0].artifact,
                    &self.layout.downloads(),
                    progress,
                )?;
                let steps = self.apply_steps(&u.manifest, &full.steps, &[file], progress)?;
                Ok(Staged {
                    update: u.clone(),
                    steps,
                    bytes: d.bytes + full.bytes(),
                    note: Some(format!("delta failed, used the full bundle: {reason}")),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn tree_matches(
        &self,
        m: &Manifest,
        v: &Version,
        dir: &std::path::Path,
    ) -> Result<bool, Error> {
        let Some(b) = m.release(v).and_then(|r| r.platforms.get(&self.platform)) else {
            return Ok(false);
        };
        let id = deltapack_tree::Tree::scan(dir).map(|t| t.id());
        Ok(id.is_ok_and(|id| deltapack_tree::hex(&id.digest) == b.tree.digest))
    }

    fn apply_steps(
        &self,
        m: &Manifest,
        steps: &[Step],
        files: &[PathBuf],
        progress: &dyn Fn(Event),
    ) -> Result<Vec<String>, Error> {
        let sources: Vec<Option<&PathBuf>> = files.iter().map(Some).collect();
        self.apply_sources(m, steps, &sources, progress)
    }

    /// Applies the steps in order; a step without a file is downloaded and
    /// applied at once (streamed), its package kept for later.
    fn apply_sources(
        &self,
        m: &Manifest,
        steps: &[Step],
        files: &[Option<&PathBuf>],
        progress: &dyn Fn(Event),
    ) -> Result<Vec<String>, Error> {
        let scratch = self.layout.scratch();
        let _ = fs_err::remove_dir_all(&scratch);
        fs_err::create_dir_all(&scratch)?;
        let mut base = self.layout.current()?.map(|v| self.layout.version_dir(&v));
        let mut done = Vec::new();
        for (i, (s, file)) in steps.iter().zip(files.iter().copied()).enumerate() {
            progress(Event::Applying { to: s.to.clone() });
            let last = i + 1 == steps.len();
            let out = if last {
                self.layout.version_dir(&s.to)
            } else {
                scratch.join(s.to.to_string())
            };
            let base_dir = s.from.as_ref().and(base.as_deref());
            // A local I/O failure (disk full, EIO) is not the package's.
            let apply_err = |source| match source {
                deltapack_apply::Error::Io(e) => Error::from(e),
                source => Error::Apply {
                    package: s.artifact.path.clone(),
                    source,
                },
            };
            let report = match file {
                Some(file) => {
                    let pkg = std::io::BufReader::new(fs_err::File::open(file)?);
                    Applier::new()
                        .apply(base_dir, pkg, &out, &|_| {})
                        .map_err(apply_err)?
                }
                None => {
                    let mut stream =
                        self.transport
                            .stream(&s.artifact, &self.layout.downloads(), progress)?;
                    let report = Applier::new()
                        .apply(base_dir, &mut stream, &out, &|_| {})
                        .map_err(apply_err);
                    match report.and_then(|r| stream.finish().map(|_| r)) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = fs_err::remove_dir_all(&out);
                            return Err(e);
                        }
                    }
                }
            };
            // The header must be the package the manifest promised
            // (mix-and-match), and the tree the manifest's.
            let h = &report.header;
            let from = s.from.as_ref().map(Version::to_string).unwrap_or_default();
            let tree = m
                .release(&s.to)
                .and_then(|r| r.platforms.get(&self.platform))
                .map(|b| b.tree.digest.clone())
                .unwrap_or_default();
            let got = report
                .target
                .map(|t| deltapack_tree::hex(&t.digest))
                .unwrap_or_default();
            if h.platform != self.platform
                || h.to_version != s.to.to_string()
                || h.from_version != from
                || got != tree
            {
                let _ = fs_err::remove_dir_all(&out);
                return Err(Error::WrongPackage {
                    package: s.artifact.path.clone(),
                });
            }
            done.push(match &s.from {
                Some(f) => format!("delta {f}->{}", s.to),
                None => format!("full {}", s.to),
            });
            base = Some(out);
        }
        let _ = fs_err::remove_dir_all(&scratch);
        Ok(done)
    }

    /// Switches `current` to the staged version atomically, records it,
    /// and prunes versions beyond the ones kept. A journal written before
    /// the switch lets the next start finish or undo an install that was
    /// killed half way ([`Updater::recover`]).
    pub fn install(&self, s: &Staged, progress: &dyn Fn(Event)) -> Result<(), Error> {
        let _lock = self.lock()?;
        let from = self.layout.current()?;
        let entry = HistoryEntry {
            time: self.now(),
            action: if from.is_some() { "update" } else { "install" }.into(),
            from: from.clone(),
            to: s.update.version.clone(),
            path: s.steps.clone(),
            bytes: s.bytes,
            result: "ok".into(),
            note: s.note.clone(),
        };
        crate::recover::begin(&self.layout, &entry)?;
        // Probation first: if the switch happens, the new version must prove
        // itself; if it does not, a stale probation names a version that is
        // not current and is ignored.
        let mut st = State::load(&self.layout.meta())?;
        st.failures.remove(&s.update.version);
        if self.health_launches > 0 && from.is_some() {
            st.pending = Some(state::Pending {
                version: s.update.version.clone(),
                launches: 0,
            });
        }
        st.save(&self.layout.meta())?;
        self.layout.switch(&s.update.version)?;
        state::append_history(&self.layout.meta(), &entry)?;
        crate::recover::end(&self.layout)?;
        progress(Event::Installed {
            version: s.update.version.clone(),
        });
        self.prune()
    }

    /// Check, download, apply and install in one call (`manual` ignores
    /// the staged rollout). Returns the version installed, if any.
    pub fn update(&self, manual: bool, progress: &dyn Fn(Event)) -> Result<Option<Version>, Error> {
        let Some(u) = self.check_with(manual, progress)? else {
            return Ok(None);
        };
        let s = self.download_and_apply(&u, progress)?;
        self.install(&s, progress)?;
        Ok(Some(u.version))
    }

    /// One background tick, for a timer or the app's idle loop: checks only
    /// when `config.check_interval_hours` have passed since the last check,
    /// and downloads and installs as far as `auto_download` and
    /// `auto_install` allow. Respects the staged rollout.
    pub fn scheduled(
        &self,
        config: &crate::Config,
        progress: &dyn Fn(Event),
    ) -> Result<Tick, Error> {
        let st = State::load(&self.layout.meta())?;
        let now = self.now();
        if !config.check_due(st.last_check, now) {
            let next_check = st
                .last_check
                .unwrap_or(now)
                .saturating_add(config.check_interval_hours.saturating_mul(3600));
            return Ok(Tick::NotDue { next_check });
        }
        let Some(u) = self.check_with(false, progress)? else {
            return Ok(Tick::UpToDate);
        };
        if !config.auto_download {
            return Ok(Tick::Available(u));
        }
        if !config.auto_install {
            self.download(&u, progress)?;
            return Ok(Tick::Downloaded(u));
        }
        let s = self.download_and_apply(&u, progress)?;
        self.install(&s, progress)?;
        Ok(Tick::Installed(u.version))
    }

    /// [`download`](Updater::download) then [`apply`](Updater::apply), but
    /// packages not yet on disk are applied while they arrive (each is
    /// still kept, and checked against its size and BLAKE3 at the end). If
    /// streaming fails for any reason, the update continues the ordinary
    /// way: resumed download, then apply, with the full-bundle fallback.
    pub fn download_and_apply(
        &self,
        u: &Update,
        progress: &dyn Fn(Event),
    ) -> Result<Staged, Error> {
        let streamed = {
            let _lock = self.lock()?;
            self.layout.create()?;
            self.check_space(u.download_bytes.saturating_add(u.tree_bytes))?;
            let dl = self.layout.downloads();
            let fresh = !self.layout.version_dir(&u.version).exists()
                && u.path.steps.iter().all(|s| {
                    !dl.join(format!("{}.dpk", s.artifact.blake3)).exists()
                        && !dl.join(format!("{}.part", s.artifact.blake3)).exists()
                });
            if fresh {
                let none: Vec<Option<&PathBuf>> = vec![None; u.path.steps.len()];
                self.apply_sources(&u.manifest, &u.path.steps, &none, progress)
                    .map(|steps| Staged {
                        update: u.clone(),
                        steps,
                        bytes: u.download_bytes,
                        note: None,
                    })
                    .ok()
            } else {
                None
            }
        };
        match streamed {
            Some(s) => Ok(s),
            None => {
                let d = self.download(u, progress)?;
                self.apply(&d, progress)
            }
        }
    }

    fn prune(&self) -> Result<(), Error> {
        let current = self.layout.current()?;
        let mut keep: BTreeSet<Version> = current.iter().cloned().collect();
        // The most recent versions switched away from, newest first.
        for e in state::read_history(&self.layout.meta())?.iter().rev() {
            if keep.len() > self.keep {
                break;
            }
            if let Some(f) = &e.from {
                keep.insert(f.clone());
            }
        }
        for v in self.layout.installed()? {
            if !keep.contains(&v) {
                self.layout.remove(&v)?;
            }
        }
        Ok(())
    }

    /// Switches back to the version installed before the current one; the
    /// version left is not offered again until a newer one appears.
    pub fn rollback(&self) -> Result<Version, Error> {
        let _lock = self.lock()?;
        self.rollback_locked("rollback", None)
    }

    fn rollback_locked(&self, action: &str, note: Option<String>) -> Result<Version, Error> {
        let current = self.layout.current()?.ok_or(Error::NothingInstalled)?;
        let history = state::read_history(&self.layout.meta())?;
        let installed = self.layout.installed()?;
        let target = history
            .iter()
            .rev()
            .filter(|e| e.result == "ok" && e.to == current && !e.action.ends_with("rollback"))
            .find_map(|e| e.from.clone())
            .filter(|v| installed.contains(v))
            .ok_or(Error::NoRollbackTarget)?;
        self.layout.switch(&target)?;
        let mut st = State::load(&self.layout.meta())?;
        st.refused.insert(current.clone());
        st.pending = None;
        st.save(&self.layout.meta())?;
        state::append_history(
            &self.layout.meta(),
            &HistoryEntry {
                time: self.now(),
                action: action.into(),
                from: Some(current),
                to: target.clone(),
                path: Vec::new(),
                bytes: 0,
                result: "ok".into(),
                note,
            },
        )?;
        Ok(target)
    }

    /// The running version works: ends its probation.
    pub fn mark_healthy(&self) -> Result<(), Error> {
        let _lock = self.lock()?;
        let mut st = State::load(&self.layout.meta())?;
        if st.pending.take().is_some() {
            st.save(&self.layout.meta())?;
        }
        Ok(())
    }

    /// Call at every app start. Finishes interrupted installs; if the
    /// current version is on probation and has been launched the allowed
    /// number of times without [`mark_healthy`](Updater::mark_healthy), rolls
    /// back to the previous version and refuses this one until a newer one
    /// appears.
    pub fn launched(&self) -> Result<Launch, Error> {
        let _lock = self.lock()?;
        let current = self.layout.current()?;
        let mut st = State::load(&self.layout.meta())?;
        let Some(p) = st.pending.clone() else {
            return Ok(Launch::Healthy);
        };
        if current.as_ref() != Some(&p.version) {
            st.pending = None;
            st.save(&self.layout.meta())?;
            return Ok(Launch::Healthy);
        }
        if p.launches >= self.health_launches {
            let note = format!(
                "{} launches without mark_healthy: rolled back automatically",
                p.launches
            );
            let to = self.rollback_locked("auto-rollback", Some(note))?;
            return Ok(Launch::RolledBack {
                from: p.version,
                to,
            });
        }
        let launches = p.launches + 1;
        st.pending = Some(state::Pending {
            version: p.version,
            launches,
        });
        st.save(&self.layout.meta())?;
        Ok(Launch::OnProbation { launches })
    }

    /// Finishes or undoes an install that was interrupted (a kill, a power
    /// loss) and removes what it left behind. Every other call that changes
    /// the install does this first; apps may call it at start-up.
    pub fn recover(&self) -> Result<crate::Recovery, Error> {
        let _file = self.lock_file()?;
        crate::recover::recover(&self.layout)
    }

    /// Checks the install and the repository; read-only.
    pub fn diagnose(&self) -> Vec<crate::Check> {
        crate::doctor::diagnose(self, &self.layout)
    }

    /// The manifest, verified (expiry against the clock, or the persisted
    /// time floor if the clock is behind it), without touching the
    /// install's state.
    pub(crate) fn verified_manifest(&self) -> Result<Manifest, Error> {
        let bytes = self.fetch_manifest()?;
        let (clock, floor) = self.clock_and_floor();
        self.verify_manifest(&bytes, clock.max(floor))
    }

    /// The clock and the persisted time floor, read-only (floor 0 if the
    /// state file is absent or unreadable; doctor reports the latter on
    /// its own).
    pub(crate) fn clock_and_floor(&self) -> (u64, u64) {
        let floor = State::load(&self.layout.meta()).map_or(0, |st| st.time_floor);
        (self.now(), floor)
    }

    fn fetch_manifest(&self) -> Result<Vec<u8>, Error> {
        self.transport
            .fetch(MANIFEST, deltapack_manifest::MAX_MANIFEST_SIZE as u64)
    }

    fn verify_manifest(&self, bytes: &[u8], now: u64) -> Result<Manifest, Error> {
        Ok(Verifier::new(&self.keys)
            .now(now)
            .verify(bytes)
            .map_err(Error::Manifest)?
            .into_manifest())
    }

    pub(crate) fn platform_name(&self) -> &str {
        &self.platform
    }

    /// The update history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        state::read_history(&self.layout.meta())
    }

    /// The install's state.
    pub fn status(&self) -> Result<Status, Error> {
        let st = State::load(&self.layout.meta())?;
        Ok(Status {
            install_dir: self.layout.root.clone(),
            current: self.layout.current()?,
            installed: self.layout.installed()?,
            channel: self.channel.clone(),
            platform: self.platform.clone(),
            last_sequence: st.last_sequence,
            last_check: st.last_check,
            refused: st.refused.into_iter().collect(),
            on_probation: st.pending.map(|p| (p.version, p.launches)),
        })
    }
}
