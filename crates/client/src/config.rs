//! The updater's settings as a TOML file in the platform's config
//! directory, read strictly (unknown keys, wrong types and files over
//! 64 KiB are errors that name the line), written atomically.
//!
//! ```toml
//! repository = "https://updates.example.com/myapp/"
//! public_keys = ["ed25519:…"]
//! platform = "linux-x86_64"
//! install_dir = "/opt/myapp"          # or: executable = "…/bin/mytool", or bundle = "/opt/foo"
//! state_dir = ""                       # default: <install_dir>/.deltapack, or the local data dir
//! channel = "stable"
//! check_interval_hours = 24
//! auto_download = true
//! auto_install = false
//! keep_versions = 2
//! health_launches = 3
//! allow_hosts = ["updates.example.com"]
//! retries = 4                  # network: attempts after the first
//! connect_timeout_secs = 10
//! read_timeout_secs = 30       # response wait, each read, grace before min_rate
//! check_timeout_secs = 45      # a whole manifest check, retries included
//! min_rate = 8192              # bytes/s below which a transfer is stalled
//! ```

use std::path::{Path, PathBuf};

use deltapack_manifest::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Error, UpdaterBuilder};

const MAX_CONFIG: u64 = 64 * 1024;

/// Updater settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Repository address.
    pub repository: String,
    /// Trusted public keys (`ed25519:…`).
    pub public_keys: Vec<String>,
    /// Platform name in the repository.
    pub platform: String,
    /// Install root of a versions install.
    pub install_dir: PathBuf,
    /// The executable of an executable install.
    pub executable: PathBuf,
    /// The directory of a bundle install.
    pub bundle: PathBuf,
    /// Where the updater keeps its state (empty: the default).
    pub state_dir: PathBuf,
    /// Channel followed.
    pub channel: String,
    /// Hours between background checks.
    pub check_interval_hours: u64,
    /// Download updates in the background when found.
    pub auto_download: bool,
    /// Install downloaded updates without asking.
    pub auto_install: bool,
    /// Previous versions kept for rollback.
    pub keep_versions: usize,
    /// Launches a new version gets to report healthy.
    pub health_launches: u32,
    /// Hosts allowed to serve the repository (empty: any HTTPS host).
    pub allow_hosts: Vec<String>,
    /// Retries of a failed transfer.
    pub retries: u32,
    /// Connect timeout, seconds.
    pub connect_timeout_secs: u64,
    /// Response and read timeout, seconds (also the grace period before
    /// the minimum rate applies).
    pub read_timeout_secs: u64,
    /// Longest a manifest check may take, retries included, seconds.
    pub check_timeout_secs: u64,
    /// Slowest transfer accepted, bytes per second.
    pub min_rate: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            repository: String::new(),
            public_keys: Vec::new(),
            platform: String::new(),
            install_dir: PathBuf::new(),
            executable: PathBuf::new(),
            bundle: PathBuf::new(),
            state_dir: PathBuf::new(),
            channel: "stable".into(),
            check_interval_hours: 24,
            auto_download: true,
            auto_install: false,
            keep_versions: 2,
            health_launches: 3,
            allow_hosts: Vec::new(),
            retries: 4,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            check_timeout_secs: 45,
            min_rate: 8 * 1024,
        }
    }
}

/// The keys `get` and `set` accept.
pub const KEYS: [&str; 19] = [
    "repository",
    "public_keys",
    "platform",
    "install_dir",
    "executable",
    "bundle",
    "state_dir",
    "channel",
    "check_interval_hours",
    "auto_download",
    "auto_install",
    "keep_versions",
    "health_launches",
    "allow_hosts",
    "retries",
    "connect_timeout_secs",
    "read_timeout_secs",
    "check_timeout_secs",
    "min_rate",
];

impl Config {
    /// Where an app's config lives: `update.toml` in the app's directory
    /// of the platform's config dir (`$XDG_CONFIG_HOME/<app>/` or
    /// `~/.config/<app>/` on Linux, `~/Library/Application Support/<app>/`
    /// on macOS, `%APPDATA%\<app>\config\` on Windows), by the
    /// `directories` crate. Each app id has its own file.
    pub fn default_path(app: &str) -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", app).map(|d| d.config_dir().join("update.toml"))
    }

    /// Reads a config file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let bad = |reason: String| Error::State {
            path: path.to_owned(),
            reason,
        };
        let text = match fs_err::File::open(path) {
            Ok(f) => {
                let mut t = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_CONFIG + 1), &mut t)?;
                t
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e.into()),
        };
        Config::parse(&text).map_err(bad)
    }

    /// Parses a config file's bytes (bounded, strict).
    pub fn parse(bytes: &[u8]) -> Result<Config, String> {
        if bytes.len() as u64 > MAX_CONFIG {
            return Err(format!("over {MAX_CONFIG} bytes"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())
    }

    /// Writes the config atomically (a fresh temporary, synced, renamed over
    /// the file, the directory synced; a link at the path is replaced, never
    /// written through).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| Error::State {
            path: path.to_owned(),
            reason: "not a file name".into(),
        })?;
        let text = toml::to_string_pretty(self).map_err(|e| Error::State {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let root = deltapack_fs::Root::new(dir);
        root.ensure()?;
        root.write_atomic(name, text.as_bytes())?;
        Ok(())
    }

    /// The settings as TOML text (what [`Config::save`] writes).
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string_pretty(self).map_err(|e| Error::InvalidSetting {
            key: "(all)".into(),
            reason: e.to_string(),
        })
    }

    /// One setting as text (lists joined with `,`).
    pub fn get(&self, key: &str) -> Result<String, Error> {
        Ok(match key {
            "repository" => self.repository.clone(),
            "public_keys" => self.public_keys.join(","),
            "platform" => self.platform.clone(),
            "install_dir" => self.install_dir.display().to_string(),
            "executable" => self.executable.display().to_string(),
            "bundle" => self.bundle.display().to_string(),
            "state_dir" => self.state_dir.display().to_string(),
            "channel" => self.channel.clone(),
            "check_interval_hours" => self.check_interval_hours.to_string(),
            "auto_download" => self.auto_download.to_string(),
            "auto_install" => self.auto_install.to_string(),
            "keep_versions" => self.keep_versions.to_string(),
            "health_launches" => self.health_launches.to_string(),
            "allow_hosts" => self.allow_hosts.join(","),
            "retries" => self.retries.to_string(),
            "connect_timeout_secs" => self.connect_timeout_secs.to_string(),
            "read_timeout_secs" => self.read_timeout_secs.to_string(),
            "check_timeout_secs" => self.check_timeout_secs.to_string(),
            "min_rate" => self.min_rate.to_string(),
            _ => {
                return Err(Error::UnknownSetting {
                    key: key.to_owned(),
                });
            }
        })
    }

    /// Changes one setting from text, checking it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let invalid = |why: &str| Error::InvalidSetting {
            key: key.to_owned(),
            reason: why.to_owned(),
        };
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let number = |v: &str| v.parse::<u64>().map_err(|_| invalid("expected a number"));
        let positive = |n: u64| {
            if n == 0 {
                Err(invalid("must be at least 1"))
            } else {
                Ok(n)
            }
        };
        let boolean = |v: &str| {
            v.parse::<bool>()
                .map_err(|_| invalid("expected true or false"))
        };
        match key {
            "repository" => self.repository = value.to_owned(),
            "public_keys" => {
                let keys = list(value);
                for k in &keys {
                    PublicKey::from_text(k).map_err(|e| invalid(&e.to_string()))?;
                }
                self.public_keys = keys;
            }
            "platform" => {
                deltapack_manifest::check_name(value).map_err(invalid)?;
                self.platform = value.to_owned();
            }
            "install_dir" => self.install_dir = PathBuf::from(value),
            "executable" => self.executable = PathBuf::from(value),
            "bundle" => self.bundle = PathBuf::from(value),
            "state_dir" => self.state_dir = PathBuf::from(value),
            "channel" => {
                deltapack_manifest::check_name(value).map_err(invalid)?;
                self.channel = value.to_owned();
            }
            "check_interval_hours" => self.check_interval_hours = number(value)?,
            "auto_download" => self.auto_download = boolean(value)?,
            "auto_install" => self.auto_install = boolean(value)?,
            "keep_versions" => {
                let n = positive(number(value)?).map_err(|_| {
                    invalid("must be at least 1 (the version left is the rollback target)")
                })?;
                self.keep_versions = usize::try_from(n).map_err(|_| invalid("too large"))?;
            }
            "health_launches" => {
                self.health_launches =
                    u32::try_from(number(value)?).map_err(|_| invalid("too large"))?;
            }
            "allow_hosts" => self.allow_hosts = list(value),
            "retries" => {
                self.retries = u32::try_from(number(value)?).map_err(|_| invalid("too large"))?;
            }
            "connect_timeout_secs" => self.connect_timeout_secs = positive(number(value)?)?,
            "read_timeout_secs" => self.read_timeout_secs = positive(number(value)?)?,
            "check_timeout_secs" => self.check_timeout_secs = positive(number(value)?)?,
            "min_rate" => self.min_rate = number(value)?,
            _ => {
                return Err(Error::UnknownSetting {
                    key: key.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// An updater builder with the local settings only (install location,
    /// state, history and health settings; no repository, key or
    /// platform): for [`UpdaterBuilder::build_local`].
    pub fn local_builder(&self) -> Result<UpdaterBuilder, Error> {
        let mut b = crate::Updater::builder()
            .keep_versions(self.keep_versions)
            .health_launches(self.health_launches);
        if !self.platform.is_empty() {
            b = b.platform(self.platform.clone());
        }
        Ok(self.locate(b))
    }

    /// The install location and state directory settings on `b`.
    fn locate(&self, mut b: UpdaterBuilder) -> UpdaterBuilder {
        let given = |p: &PathBuf| !p.as_os_str().is_empty();
        if given(&self.install_dir) {
            b = b.install_dir(self.install_dir.clone());
        }
        if given(&self.executable) {
            b = b.executable(self.executable.clone());
        }
        if given(&self.bundle) {
            b = b.bundle(self.bundle.clone());
        }
        if given(&self.state_dir) {
            b = b.state_dir(self.state_dir.clone());
        }
        b
    }

    /// An updater builder with these settings.
    pub fn builder(&self) -> Result<UpdaterBuilder, Error> {
        let mut b = crate::Updater::builder()
            .repository(self.repository.clone())
            .channel(self.channel.clone())
            .platform(self.platform.clone())
            .keep_versions(self.keep_versions)
            .health_launches(self.health_launches)
            .allow_hosts(self.allow_hosts.clone())
            .retries(self.retries, std::time::Duration::from_millis(250))
            .timeouts(
                std::time::Duration::from_secs(self.connect_timeout_secs.max(1)),
                std::time::Duration::from_secs(self.read_timeout_secs.max(1)),
            )
            .check_timeout(std::time::Duration::from_secs(
                self.check_timeout_secs.max(1),
            ))
            .min_rate(self.min_rate);
        b = self.locate(b);
        for k in &self.public_keys {
            b = b.public_key(PublicKey::from_text(k).map_err(|e| Error::InvalidSetting {
                key: "public_keys".into(),
                reason: e.to_string(),
            })?);
        }
        Ok(b)
    }

    /// Whether a background check is due: never checked, or the interval
    /// has passed since `last_check` (Unix seconds), or the clock went
    /// backwards.
    pub fn check_due(&self, last_check: Option<u64>, now: u64) -> bool {
        match last_check {
            None => true,
            Some(t) if t > now => true,
            Some(t) => now - t >= self.check_interval_hours.saturating_mul(3600),
        }
    }
}
