//! The deltapack update client: keeps an installed app current from a
//! signed static repository (made by `deltapack-release`).
//!
//! [`Updater`] checks the repository (only a manifest signed by an embedded
//! key, not expired and not older than the last one accepted is used),
//! picks the newest eligible version and the cheapest path to it (a delta,
//! a chain of deltas, or the full bundle), downloads with resume and
//! retries, rebuilds the new version beside the running one while the
//! applier verifies every block, and switches to it with one atomic rename.
//! A delta that does not apply falls back to the full bundle. Versions are
//! kept side by side for [`Updater::rollback`]. The library never prints:
//! progress arrives as [`Event`]s.
//!
//! ```no_run
//! use deltapack_client::Updater;
//! use deltapack_manifest::PublicKey;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let updater = Updater::builder()
//!     .repository("https://updates.example.com/myapp/")
//!     .public_key(PublicKey::from_text("ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")?)
//!     .channel("stable")
//!     .platform("linux-x86_64")
//!     .install_dir("/opt/myapp")
//!     .build()?;
//! if let Some(update) = updater.check()? {
//!     let from = update.from.as_ref().map(|v| v.to_string()).unwrap_or_default();
//!     println!("{from} -> {}: {} bytes", update.version, update.download_bytes);
//!     let downloaded = updater.download(&update, &|_event| {})?;
//!     let staged = updater.apply(&downloaded, &|_event| {})?;
//!     updater.install(&staged, &|_event| {})?;
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod doctor;
pub mod fuzzing;
pub mod install;
mod plan;
mod recover;
mod state;
mod transport;
mod updater;

use std::path::PathBuf;

pub use config::{Config, KEYS as CONFIG_KEYS};
pub use deltapack_manifest::Version;
pub use doctor::{Check, Level};
pub use plan::{Path, Step};
pub use recover::Recovery;
pub use state::HistoryEntry;
pub use updater::{Downloaded, Launch, Staged, Status, Tick, Update, Updater, UpdaterBuilder};

/// Progress of an updater call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Fetching and verifying the manifest.
    Checking,
    /// Bytes of a package downloaded so far.
    Downloading {
        /// Repository path of the package.
        path: String,
        /// Bytes on disk.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// A package is downloaded and hash-checked.
    Downloaded {
        /// Repository path.
        path: String,
        /// Bytes fetched now (0 if it was already there).
        bytes: u64,
    },
    /// Rebuilding a version.
    Applying {
        /// The version being rebuilt.
        to: Version,
    },
    /// A delta failed; the full bundle is used instead.
    Fallback {
        /// Why.
        reason: String,
    },
    /// `current` now points at this version.
    Installed {
        /// The version.
        version: Version,
    },
}

/// Why an updater call failed. The installed version is untouched unless
/// the call was `install` or `rollback` and it returned `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is missing or invalid.
    #[error("updater configuration: {0}")]
    Config(&'static str),
    /// The repository address breaks a transport rule.
    #[error("repository {url}: {reason}")]
    Repository {
        /// The address.
        url: String,
        /// The rule broken.
        reason: String,
    },
    /// A transfer failed (after retries).
    #[error("fetching {url}: {reason}")]
    Network {
        /// What was fetched.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("fetching {url}: HTTP {status}")]
    HttpStatus {
        /// What was fetched.
        url: String,
        /// The status.
        status: u16,
    },
    /// The server sent more than declared.
    #[error("{url} is larger than the {limit} bytes declared")]
    TooLarge {
        /// What was fetched.
        url: String,
        /// The declared size.
        limit: u64,
    },
    /// A resumed download got a different range than it asked for.
    #[error("{url}: asked for {expected:?}, server sent Content-Range {found:?}")]
    BadRange {
        /// What was fetched.
        url: String,
        /// The range asked for.
        expected: String,
        /// The range the server claimed.
        found: String,
    },
    /// A downloaded artifact's BLAKE3 differs from the manifest's.
    #[error("{url}: content does not match the manifest's BLAKE3 (deleted)")]
    ArtifactHash {
        /// What was fetched.
        url: String,
    },
    /// The manifest was refused.
    #[error("manifest: {0}")]
    Manifest(#[source] deltapack_manifest::Error),
    /// The manifest is older than one accepted before (replay/rollback).
    #[error("manifest sequence {offered} is older than the last accepted ({have})")]
    Rollback {
        /// Last accepted sequence.
        have: u64,
        /// The sequence offered.
        offered: u64,
    },
    /// No build of that version for this platform.
    #[error("version {version} is not available for {platform}")]
    NotAvailable {
        /// The version.
        version: String,
        /// The platform.
        platform: String,
    },
    /// A package does not apply.
    #[error("applying {package}: {source}")]
    Apply {
        /// Repository path of the package.
        package: String,
        /// Why.
        #[source]
        source: deltapack_apply::Error,
    },
    /// A package is not the one the manifest describes (platform, versions
    /// or resulting tree differ).
    #[error("{package} is not the package the manifest describes")]
    WrongPackage {
        /// Repository path of the package.
        package: String,
    },
    /// Another updater holds the install's lock.
    #[error("another updater{} is working on this install", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        /// The process holding the lock, if it wrote its pid.
        pid: Option<u32>,
    },
    /// The version asked for is the one installed.
    #[error("version {version} is already installed")]
    AlreadyInstalled {
        /// The version.
        version: String,
    },
    /// Nothing is installed.
    #[error("nothing is installed")]
    NothingInstalled,
    /// No earlier version to roll back to.
    #[error("no earlier version is kept to roll back to")]
    NoRollbackTarget,
    /// The install root is not laid out as expected.
    #[error("install layout: {reason}")]
    Layout {
        /// What is wrong.
        reason: String,
    },
    /// The state file is unreadable.
    #[error("{}: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No such setting.
    #[error("unknown setting {key:?}")]
    UnknownSetting {
        /// The key.
        key: String,
    },
    /// A setting's value is invalid.
    #[error("setting {key}: {reason}")]
    InvalidSetting {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Not enough free disk space to stage the update.
    #[error("{needed} bytes are needed in {}, {available} are free", path.display())]
    NoSpace {
        /// The install root.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The disk filled up while writing (ENOSPC). The old version is
    /// untouched; free space and retry.
    #[error("disk full: {source}")]
    DiskFull {
        /// The failed operation (names the path).
        #[source]
        source: std::io::Error,
    },
    /// A file-system error.
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            Error::DiskFull { source: e }
        } else {
            Error::Io(e)
        }
    }
}

impl Error {
    /// Whether the package is at fault (it does not apply, is not the one
    /// the manifest describes, or its bytes are wrong), as opposed to the
    /// network, the disk or another updater. Only such failures count
    /// towards skipping a version, and only they fall back to the full
    /// bundle.
    pub fn blames_package(&self) -> bool {
        matches!(
            self,
            Error::Apply { .. } | Error::WrongPackage { .. } | Error::ArtifactHash { .. }
        )
    }
}
