//! Publishing a deltapack update repository to where apps fetch it, and
//! pulling it back, in the order that keeps every client safe.
//!
//! [`Remote::push`] copies a repository directory (made by `deltapack
//! release`) to an object store:
//!
//! - the new manifest must verify under the trusted keys and not be
//!   expired, and must be newer than the one published (a remote that is
//!   ahead or has diverged is refused: pull first);
//! - every file the new manifest names is uploaded unless the remote
//!   already has it with the same size and BLAKE3, and a file that is
//!   neither at the remote nor in the directory with the manifest's size
//!   and hash stops the push before anything is written;
//! - artifacts go first, the manifest last in one put, so a client never
//!   sees a manifest naming a file that is not there yet; an upload that
//!   fails halfway leaves the published manifest as it was, and a rerun
//!   uploads only what is still missing;
//! - with `prune`, objects that neither the new nor the previously
//!   published manifest names are removed (never one a live manifest
//!   names);
//! - object stores (S3, GCS, Azure) get `Cache-Control: no-cache` on the
//!   manifest and `immutable` on artifacts, and each artifact's BLAKE3 in
//!   its metadata, so the next push compares by asking for headers, not by
//!   downloading the repository.
//!
//! [`Remote::pull`] fetches a published repository into a directory (all
//! of it, or the manifest and full bundles a release run builds from), each
//! file checked against the verified manifest, so that CI can extend a
//! repository without keeping state between runs.
//!
//! The stores are the Apache Arrow project's `object_store`: S3 and every
//! S3-compatible service (`s3://`), GCS (`gs://`), Azure (`az://`) and
//! local directories (`file://`), behind one [`Remote`]; TLS is rustls on
//! ring, as in the client. The calls are synchronous (a small runtime runs
//! them), and nothing here prints: progress is reported as [`Event`]s.
#![forbid(unsafe_code)]

mod aws;
mod local;
mod pull;
mod push;
mod remote;
mod tls;

pub use pull::{PullOptions, Pulled};
pub use push::{PushOptions, Pushed, Uploaded};
pub use remote::{Kind, Remote};

use serde::Serialize;

/// Progress of a push or a pull (in JSON, tagged by `kind`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Comparing the directory with the remote.
    Comparing,
    /// Uploading a file.
    Uploading {
        /// Its repository path.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// Downloading a file.
    Downloading {
        /// Its repository path.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// Removing an object no manifest names.
    Pruning {
        /// Its repository path.
        path: String,
    },
}

/// Why a push or a pull stopped. Nothing published is changed by a push
/// that fails before its manifest upload; a pull writes its manifest last.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The destination or source is not a URL this build can publish to.
    #[error("{url}: {reason}")]
    Url {
        /// What was given.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The object store refused or failed an operation.
    #[error("{operation} {path} at {remote}")]
    Store {
        /// What was being done (`uploading`, `listing`, ...).
        operation: &'static str,
        /// The repository path.
        path: String,
        /// The remote.
        remote: String,
        /// The store's error (boxed: it is large).
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A write into the directory broke a file-system rule (a link where
    /// a file or directory should be).
    #[error(transparent)]
    Fs(#[from] deltapack_fs::Error),
    /// A manifest does not verify under the trusted keys (or has expired,
    /// for one about to be published).
    #[error("{place}")]
    Manifest {
        /// Which manifest (`repo/manifest.json`, `the remote's manifest`).
        place: String,
        /// Why.
        #[source]
        source: deltapack_manifest::Error,
    },
    /// The directory has no manifest to publish.
    #[error("{} does not exist: nothing to publish (run deltapack release first)", path.display())]
    NoManifest {
        /// The manifest path looked for.
        path: std::path::PathBuf,
    },
    /// The remote has no manifest to pull.
    #[error(
        "{remote} has no manifest.json: nothing to pull (a new repository starts with `deltapack release --init`)"
    )]
    NothingToPull {
        /// The remote.
        remote: String,
    },
    /// The published manifest is newer than the one to publish.
    #[error(
        "{remote} is at manifest sequence {remote_sequence}, ahead of this directory's {local_sequence}: \
         pull it first (deltapack repo pull), then release into the pulled directory"
    )]
    RemoteAhead {
        /// The remote.
        remote: String,
        /// Its sequence.
        remote_sequence: u64,
        /// The directory's.
        local_sequence: u64,
    },
    /// The same sequence number with other content: two runs signed
    /// different manifests from the same base.
    #[error(
        "{remote} has a different manifest at the same sequence {sequence}: two releases were made from \
         one base; pull, release again, then publish"
    )]
    Diverged {
        /// The remote.
        remote: String,
        /// The sequence both have.
        sequence: u64,
    },
    /// The directory being pulled into holds a newer manifest.
    #[error(
        "{} is at manifest sequence {local_sequence}, ahead of the remote's {remote_sequence}: publish it instead of pulling",
        path.display()
    )]
    LocalAhead {
        /// The local manifest.
        path: std::path::PathBuf,
        /// Its sequence.
        local_sequence: u64,
        /// The remote's.
        remote_sequence: u64,
    },
    /// A file the manifest names is neither at the remote nor in the
    /// directory as the manifest describes it.
    #[error(
        "{path}: {problem}; it is not at the remote either, so the manifest cannot be published \
         (deltapack repo verify names what is wrong)"
    )]
    MissingArtifact {
        /// The repository path.
        path: String,
        /// What is wrong with the local copy.
        problem: &'static str,
    },
    /// An object is larger than the manifest (or the manifest bound)
    /// allows; reading stopped there.
    #[error("{path} at {remote} is larger than the {max} bytes it may have")]
    TooLarge {
        /// The repository path.
        path: String,
        /// The remote.
        remote: String,
        /// The bound.
        max: u64,
    },
    /// A downloaded file is not the one the manifest names.
    #[error("{path} at {remote} does not match the manifest's size and BLAKE3")]
    DamagedRemote {
        /// The repository path.
        path: String,
        /// The remote.
        remote: String,
    },
    /// An AWS shared credentials or config file has a line that is neither
    /// a `[section]` nor a `key = value`.
    #[error("{}:{line}: not a [section] or a key = value line", path.display())]
    AwsConfig {
        /// The file.
        path: std::path::PathBuf,
        /// The line (from 1).
        line: usize,
    },
    /// The runtime for the store's calls could not be started.
    #[error("cannot start the runtime for the object store")]
    Runtime(#[source] std::io::Error),
}

/// The manifest's name at the repository root.
pub(crate) const MANIFEST: &str = "manifest.json";
