//! [`UpdaterBuilder`]: the settings of an [`Updater`], checked once.

use std::path::PathBuf;
use std::time::Duration;

use deltapack_manifest::PublicKey;

use deltapack_manifest::Version;

use crate::source::{Source, parse_repository};
use crate::store::Store;
use crate::strategy::{Bundle, Executable, Strategy, Versions};
use crate::transport::{NetConfig, Transport};
use crate::{Error, Updater};

/// Builds an [`Updater`].
#[derive(Debug)]
pub struct UpdaterBuilder {
    repository: Option<String>,
    source: Option<Box<dyn Source>>,
    keys: Vec<PublicKey>,
    channel: String,
    platform: Option<String>,
    install_dir: Option<PathBuf>,
    executable: Option<PathBuf>,
    bundle: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    current_version: Option<Version>,
    keep: usize,
    net: NetConfig,
    now: Option<u64>,
    health_launches: u32,
}

impl Default for UpdaterBuilder {
    fn default() -> Self {
        UpdaterBuilder {
            repository: None,
            source: None,
            keys: Vec::new(),
            channel: "stable".into(),
            platform: None,
            install_dir: None,
            executable: None,
            bundle: None,
            state_dir: None,
            current_version: None,
            keep: 2,
            net: NetConfig::default(),
            now: None,
            health_launches: 3,
        }
    }
}

impl UpdaterBuilder {
    /// The repository: `https://…/`, `http://127.0.0.1:…/` (loopback only),
    /// `file:///…` or a directory path.
    pub fn repository(mut self, url: impl Into<String>) -> Self {
        self.repository = Some(url.into());
        self
    }

    /// Fetch the repository's files through the app's own [`Source`] (its
    /// HTTP stack, headers, auth, proxy) instead of a URL. Every check of
    /// the transport rules still applies to what it returns.
    pub fn source(mut self, source: impl Source + 'static) -> Self {
        self.source = Some(Box::new(source));
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

    /// Install as `versions/<v>/` plus a `current` link under this root
    /// (see the crate docs for the layout). One of `install_dir`,
    /// [`executable`](Self::executable) and [`bundle`](Self::bundle).
    pub fn install_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.install_dir = Some(dir.into());
        self
    }

    /// Keep this one executable file current, replacing it in place (a CLI
    /// that updates itself; see [`current_executable`](Self::current_executable)).
    /// Its state lives in [`state_dir`](Self::state_dir).
    pub fn executable(mut self, file: impl Into<PathBuf>) -> Self {
        self.executable = Some(file.into());
        self
    }

    /// Keep the running program's own executable current
    /// (`std::env::current_exe()`), with [`current_version`](Self::current_version)
    /// saying which version it is: `mytool update` in a few lines.
    pub fn current_executable(self) -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(Error::from)?;
        Ok(self.executable(exe))
    }

    /// Keep this directory at a fixed path current (`/opt/foo`,
    /// `Foo.app`), swapping it whole. Its state lives in
    /// [`state_dir`](Self::state_dir).
    pub fn bundle(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bundle = Some(dir.into());
        self
    }

    /// Where the updater keeps its state, history and downloads (default:
    /// `<root>/.deltapack` for `install_dir`; for an executable or a
    /// bundle, `deltapack/<name>-<hash of its path>` in the platform's
    /// local data directory).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The version the installed app says it is (an executable built with
    /// its version inside, a bundle put there by an installer). Used once,
    /// when the updater meets an install it did not make: otherwise that
    /// install is identified by its tree digest in the manifest.
    pub fn current_version(mut self, v: Version) -> Self {
        self.current_version = Some(v);
        self
    }

    /// Previous versions kept for rollback (default 2, at least 1: the
    /// version left is the rollback target, and may still be running).
    pub fn keep_versions(mut self, n: usize) -> Self {
        self.keep = n;
        self
    }

    /// Only these hosts may serve the repository (a URL repository).
    pub fn allow_hosts(mut self, hosts: Vec<String>) -> Self {
        self.net.allowed_hosts = hosts;
        self
    }

    /// Retries of a failed transfer, and the first backoff delay (doubled
    /// each time, plus jitter).
    pub fn retries(mut self, n: u32, first_backoff: Duration) -> Self {
        self.net.retries = n;
        self.net.backoff = first_backoff;
        self
    }

    /// Connect and read timeouts. The read timeout bounds the wait for a
    /// response and for each read of a body, and is the grace period before
    /// the minimum rate applies.
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.net.connect_timeout = connect;
        self.net.read_timeout = read;
        self
    }

    /// The longest a manifest check may take, retries included (default
    /// 45 s).
    pub fn check_timeout(mut self, d: Duration) -> Self {
        self.net.check_timeout = d;
        self
    }

    /// Launches a new version gets to call [`Updater::mark_healthy`]
    /// before [`Updater::launched`] rolls it back (default 3; 0 disables
    /// automatic rollback).
    pub fn health_launches(mut self, n: u32) -> Self {
        self.health_launches = n;
        self
    }

    /// Slowest transfer accepted once the read timeout has passed, before a
    /// download counts as stalled and is retried (bytes per second;
    /// default 8 KiB/s).
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

    /// Builds an updater for the calls that read or change only the
    /// install and its state — `status`, `history`, `launched`,
    /// `mark_healthy`, `rollback`, `allow`, `recover`, `repair` — without a
    /// repository, key or platform (an app's start-up, a dashboard, a user
    /// without the settings). A call that needs the repository returns
    /// [`Error::Config`].
    pub fn build_local(mut self) -> Result<Updater, Error> {
        let local = self.repository.is_none() && self.source.is_none();
        if local {
            self.source = Some(Box::new(crate::source::DirSource::new(
                "(no repository configured)",
            )));
        }
        if self.platform.is_none() {
            self.platform = Some(String::new());
        }
        let mut u = self.build_with(false)?;
        u.local_only = local || u.keys.is_empty();
        Ok(u)
    }

    /// Checks the settings and builds the updater.
    pub fn build(self) -> Result<Updater, Error> {
        self.build_with(true)
    }

    fn build_with(self, need_keys: bool) -> Result<Updater, Error> {
        if need_keys && self.keys.is_empty() {
            return Err(Error::Config("at least one public key is required"));
        }
        if self.keep == 0 {
            return Err(Error::Config(
                "keep_versions must be at least 1: the version left is the rollback target and may still be running",
            ));
        }
        let platform = self
            .platform
            .ok_or(Error::Config("a platform is required"))?;
        let (strategy, store) = match (self.install_dir, self.executable, self.bundle) {
            (Some(dir), None, None) => {
                let v = Versions::new(dir);
                let store = self.state_dir.unwrap_or_else(|| v.store_path());
                (Strategy::Versions(v), store)
            }
            (None, Some(file), None) => {
                let store = match self.state_dir {
                    Some(d) => d,
                    None => default_state_dir(&file)?,
                };
                (Strategy::Executable(Executable::new(file, &store)?), store)
            }
            (None, None, Some(dir)) => {
                let store = match self.state_dir {
                    Some(d) => d,
                    None => default_state_dir(&dir)?,
                };
                (Strategy::Bundle(Bundle::new(dir)?), store)
            }
            (None, None, None) => {
                return Err(Error::Config(
                    "an install location is required (install_dir, executable or bundle)",
                ));
            }
            _ => {
                return Err(Error::Config(
                    "give one install location: install_dir, executable or bundle",
                ));
            }
        };
        deltapack_manifest::check_name(&self.channel)
            .map_err(|_| Error::Config("invalid channel name"))?;
        let source = match (self.source, self.repository) {
            (Some(s), _) => s,
            (None, Some(url)) => {
                parse_repository(&url, &self.net.allowed_hosts, self.net.connect_timeout)?
                    .into_source()
            }
            (None, None) => return Err(Error::Config("a repository is required")),
        };
        Ok(Updater {
            transport: Transport::new(source, self.net),
            keys: self.keys,
            channel: self.channel,
            platform,
            store: Store::new(store),
            strategy,
            current_hint: self.current_version,
            local_only: false,
            keep: self.keep,
            now: self.now,
            health_launches: self.health_launches,
        })
    }
}

/// `<local data dir>/deltapack/<name>-<8 hex of the absolute path>`: one
/// state directory per install location, so that two apps (or two copies)
/// never share one.
fn default_state_dir(location: &std::path::Path) -> Result<PathBuf, Error> {
    let abs = std::path::absolute(location).map_err(Error::from)?;
    let name = crate::strategy::file_name(&abs)?;
    let hash = blake3::hash(abs.as_os_str().as_encoded_bytes()).to_hex();
    let base = directories::BaseDirs::new().ok_or(Error::Config(
        "no home directory for the default state directory: set state_dir",
    ))?;
    Ok(base
        .data_local_dir()
        .join("deltapack")
        .join(format!("{name}-{}", &hash[..8])))
}
