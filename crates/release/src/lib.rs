//! The deltapack release packager: turns a new version's build outputs
//! (one per platform) into a static update repository of full bundles,
//! deltas from recent versions, and a signed manifest.
//!
//! [`Packager`] holds every command that changes a repository (release,
//! promote, rollout, yank, refresh, merge of shards); [`verify_repo`]
//! checks one. The repository needs no other state: older versions are
//! rebuilt from their own full bundles when a delta needs them. The layout
//! is in [`layout`] and `docs/REPOSITORY.md`.
//!
//! ```no_run
//! use deltapack_release::{NewRelease, Packager};
//! use deltapack_manifest::{SecretKey, Version};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SecretKey::from_text(&std::fs::read_to_string("release.key")?)?;
//! // The first release into a new directory adds `.init(true)`.
//! let summary = Packager::new("repo").keys(vec![key]).release(
//!     &NewRelease {
//!         version: Version::parse("1.4.0")?,
//!         channel: "stable".into(),
//!         platforms: vec![("linux-x86_64".into(), "dist/linux".into())],
//!         notes: "Faster start-up.".into(),
//!         min_delta_version: None,
//!         carry: Vec::new(),
//!         rollout_percent: 100,
//!     },
//!     None,
//!     &|_event| {},
//! )?;
//! println!("{} packages built", summary.built.len());
//! for change in &summary.changes {
//!     println!("{change}");
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod archive;
mod assemble;
mod build;
mod changes;
mod input;
pub mod layout;
mod packager;
mod plan;
mod verify;

use std::path::PathBuf;

pub use changes::Change;
pub use deltapack_manifest::Version;
pub use packager::{
    BuiltPackage, DEFAULT_DELTAS, DEFAULT_EXPIRES_IN, NewRelease, Packager, RolloutChange, Shard,
    Signed, Summary,
};
pub use verify::{Defect, Problem, VerifyReport, verify_repo};

/// Progress of a packager command (in JSON, tagged by `kind`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Reading (and unpacking) a platform's build output.
    Reading {
        /// The platform.
        platform: String,
    },
    /// Rebuilding an older version from its full bundle.
    Restoring {
        /// The platform.
        platform: String,
        /// The version.
        version: Version,
    },
    /// Building a package.
    Building {
        /// Its repository path.
        job: String,
    },
    /// A package is written.
    Built {
        /// Its repository path.
        job: String,
        /// Its size.
        size: u64,
    },
    /// Checking an artifact.
    Verifying {
        /// Its repository path.
        path: String,
    },
}

/// Why a packager command failed. Nothing it wrote is referenced by the
/// published manifest until the final, atomic manifest write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system error (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A link or another file-system rule broken below the repository root.
    #[error(transparent)]
    Fs(deltapack_fs::Error),
    /// The manifest does not verify or is malformed.
    #[error("{}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: deltapack_manifest::Error,
    },
    /// The repository has no manifest and the packager was not told to
    /// start one.
    #[error(
        "{} does not exist: this is not an update repository yet. \
         Check the path, or pass --init to start a new repository here",
        path.display()
    )]
    NoManifest {
        /// The manifest path looked for.
        path: PathBuf,
    },
    /// The packager was told to start a repository where one exists.
    #[error(
        "{} exists (sequence {sequence}): this is already an update repository; \
         --init only starts new ones, drop it",
        path.display()
    )]
    AlreadyARepository {
        /// The existing manifest.
        path: PathBuf,
        /// Its sequence number.
        sequence: u64,
    },
    /// No signing key (or trusted key, for shards) was given.
    #[error("a signing key (--key) or a trusted public key (--pub) is needed")]
    NoKeys,
    /// A build output could not be read.
    #[error(transparent)]
    Tree(#[from] deltapack_tree::Error),
    /// An archive entry is unsafe or unsupported.
    #[error("{}: entry {entry:?}: {reason}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// The entry name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A platform's build output could not be read (missing, unreadable,
    /// or an archive that is damaged or unsafe).
    #[error("--platform {platform}={}: cannot read this build output", path.display())]
    Input {
        /// The platform.
        platform: String,
        /// The build output given for it.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A channel or platform name that cannot be used.
    #[error("{what} name {name:?} {reason}")]
    InvalidName {
        /// `channel` or `platform`.
        what: &'static str,
        /// The name.
        name: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// Inconsistent or out-of-range options.
    #[error("{0}")]
    Usage(String),
    /// The version is already published with a different tree.
    #[error(
        "version {version} is already published for {platform} with different content; \
         publish a new version instead"
    )]
    VersionConflict {
        /// The version.
        version: String,
        /// The platform.
        platform: String,
    },
    /// No such release.
    #[error("version {version} is not in the repository")]
    UnknownVersion {
        /// The version.
        version: String,
    },
    /// No build of a version for a platform.
    #[error("version {version} has no build for {platform}")]
    UnknownBuild {
        /// The version.
        version: String,
        /// The platform.
        platform: String,
    },
    /// No such channel.
    #[error("channel {channel} does not exist")]
    UnknownChannel {
        /// The channel.
        channel: String,
    },
    /// The release is not on that channel.
    #[error("version {version} is not on channel {channel}")]
    NotOnChannel {
        /// The version.
        version: String,
        /// The channel.
        channel: String,
    },
    /// The release is yanked.
    #[error("version {version} is yanked; restore it with `deltapack yank --undo` first")]
    Yanked {
        /// The version.
        version: String,
    },
    /// A repository file differs from what the manifest or a shard record
    /// says.
    #[error("{path} is missing or damaged (size or BLAKE3 differ)")]
    DamagedArtifact {
        /// The file.
        path: String,
    },
    /// Diffing failed.
    #[error("building {job}")]
    Diff {
        /// The package being built.
        job: String,
        /// Why.
        #[source]
        source: deltapack_diff::Error,
    },
    /// Applying a package (to rebuild an older version) failed.
    #[error("applying {path}")]
    Apply {
        /// The package.
        path: String,
        /// Why.
        #[source]
        source: deltapack_apply::Error,
    },
    /// Shard records are missing, inconsistent or unreadable.
    #[error("shards: {0}")]
    Shard(String),
    /// A bug: a state the packager should never reach.
    #[error("internal error: {0}")]
    Internal(String),
}
