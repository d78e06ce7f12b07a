//! [`Error`]: why an updater call failed, with typed fields, and the two
//! questions the updater asks of every failure ([`Error::is_local`]: is it
//! this machine's, so that the full bundle would fail the same way?).
//!
//! Messages render each cause once: a variant that has a `source` does not
//! repeat it in its own text, so `{:#}` (anyhow) or walking
//! [`std::error::Error::source`] prints the chain without duplicates.

use std::path::PathBuf;

pub use deltapack_apply::HeaderField;

use crate::source::SourceErrorKind;

/// Why an updater call failed. The installed version is untouched unless
/// the call was `install` or `rollback` and it returned `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is missing or invalid.
    #[error("updater configuration: {0}")]
    Config(&'static str),
    /// The repository address breaks a transport rule.
    #[error("repository {url}: {rule}")]
    Repository {
        /// The address as given.
        url: String,
        /// The rule broken.
        rule: UrlRule,
    },
    /// A transfer failed (after retries, or when its time ran out).
    #[error("fetching {url}: {cause} ({attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Network {
        /// What was fetched.
        url: String,
        /// Why the last attempt failed.
        cause: Transfer,
        /// Attempts made.
        attempts: u32,
        /// The underlying error, if the source gave one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The server answered with an error status that retrying cannot fix.
    #[error("fetching {url}: HTTP {status}{}", reason_phrase(*status))]
    HttpStatus {
        /// What was fetched.
        url: String,
        /// The status.
        status: u16,
    },
    /// The server answered with a redirect. Redirects are not followed:
    /// every host the client talks to must be one the repository URL names.
    #[error(
        "fetching {url}: HTTP {status} redirects to {}; redirects are not followed, so that no byte comes from a host the app was not set up to trust: point the repository at the final address",
        location.as_deref().unwrap_or("nowhere")
    )]
    Redirect {
        /// What was fetched.
        url: String,
        /// The status (301, 302, 307, …).
        status: u16,
        /// Where it pointed.
        location: Option<String>,
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
    /// A downloaded artifact's size or BLAKE3 differs from the manifest's.
    #[error("{url}: content does not match the manifest's BLAKE3 (deleted)")]
    ArtifactHash {
        /// What was fetched.
        url: String,
    },
    /// The manifest was refused.
    #[error("refusing the manifest at {url}")]
    Manifest {
        /// Where it came from.
        url: String,
        /// Why.
        #[source]
        source: deltapack_manifest::Error,
    },
    /// The manifest is older than one accepted before (replay/rollback).
    #[error(
        "manifest sequence {offered} is older than the last accepted ({have}): the repository \
         was replaced or started again, or a mirror serves an old copy"
    )]
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
    #[error("applying {package}")]
    Apply {
        /// Repository path of the package.
        package: String,
        /// Why.
        #[source]
        source: deltapack_apply::Error,
    },
    /// A package is not the one the manifest describes (platform, versions
    /// or resulting tree differ). Found from its header, before anything
    /// is written.
    #[error(
        "{package} is not the package the manifest describes: its {} is {found:?}, expected {expected:?}",
        field.name()
    )]
    WrongPackage {
        /// Repository path of the package.
        package: String,
        /// The header field that differs.
        field: HeaderField,
        /// What the manifest says.
        expected: String,
        /// What the package says.
        found: String,
    },
    /// This user cannot write the install's state (an install owned by
    /// another user, a read-only file system): reading works, changing the
    /// install needs its owner.
    #[error(
        "{} cannot be written by this user (or the file system is read-only): status, check and launches work; installing, rollback and ending probation need the install's owner",
        path.display()
    )]
    ReadOnly {
        /// The state directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another updater holds the install's lock.
    #[error("another updater{} is working on this install", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        /// The process holding the lock, if it wrote its pid.
        pid: Option<u32>,
    },
    /// The channel is not one of the repository's.
    #[error(
        "channel {channel:?} is not in the repository{}; its channels: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default(),
        known.join(", ")
    )]
    UnknownChannel {
        /// The channel asked for.
        channel: String,
        /// The repository's channels.
        known: Vec<String>,
        /// The closest of them, if one is close.
        suggestion: Option<String>,
    },
    /// No release of the repository has a build for the platform.
    #[error(
        "platform {platform:?} has no build in the repository{}; its platforms: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default(),
        known.join(", ")
    )]
    UnknownPlatform {
        /// The platform asked for.
        platform: String,
        /// The platforms the repository has builds for.
        known: Vec<String>,
        /// The closest of them, if one is close.
        suggestion: Option<String>,
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
    /// An offline install was asked for, but the update's packages are not
    /// all downloaded.
    #[error("the packages of {version} are not downloaded: download them while online first")]
    NotDownloaded {
        /// The version.
        version: String,
    },
    /// The app's path holds something this updater did not install and
    /// the repository does not list (its tree digest matches no release).
    #[error(
        "{} holds a version this updater did not install and the repository does not list; \
         say which version it is (UpdaterBuilder::current_version) or install one over it \
         (deltapack update install --to VERSION)",
        path.display()
    )]
    Unidentified {
        /// The app's path.
        path: PathBuf,
    },
    /// No earlier version to roll back to.
    #[error("no earlier version is kept to roll back to")]
    NoRollbackTarget,
    /// `current` is not the relative link to a version directory that the
    /// updater writes (a restored backup, a link made by hand).
    #[error(
        "{}: {reason}; `deltapack doctor --fix` repairs it, keeping every file",
        path.display()
    )]
    BrokenCurrent {
        /// The `current` path.
        path: PathBuf,
        /// What is there instead.
        reason: String,
    },
    /// The install root is not laid out as expected.
    #[error("install layout: {reason}")]
    Layout {
        /// What is wrong.
        reason: String,
    },
    /// A local file (state, config) is unreadable.
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
    #[error(
        "{} are needed in {}, {} are free",
        bytesize::ByteSize(*needed).display().si(),
        path.display(),
        bytesize::ByteSize(*available).display().si()
    )]
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
    #[error("disk full")]
    DiskFull {
        /// The failed operation (names the path).
        #[source]
        source: std::io::Error,
    },
    /// A link where the client writes, or another file-system rule broken
    /// under the install root (nothing outside it was touched).
    #[error(transparent)]
    Fs(deltapack_fs::Error),
    /// A file-system error.
    #[error(transparent)]
    Io(std::io::Error),
}

/// The rule a repository address breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlRule {
    /// It does not parse as a URL.
    Invalid,
    /// It has no host.
    NoHost,
    /// Plain `http://` to a host that is not a loopback address.
    PlainHttp,
    /// A scheme other than `https`, `http` (loopback) or `file`.
    Scheme,
    /// The host is not on the allowlist.
    NotAllowed,
    /// It carries a user name or password.
    Credentials,
    /// It has a query or a fragment (a repository is a directory).
    Query,
}

impl std::fmt::Display for UrlRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UrlRule::Invalid => "not a valid URL",
            UrlRule::NoHost => "no host",
            UrlRule::PlainHttp => "plain http is allowed only for loopback addresses",
            UrlRule::Scheme => "only https://, http:// (loopback) and file:// are supported",
            UrlRule::NotAllowed => "host is not in the allowlist (allow_hosts)",
            UrlRule::Credentials => {
                "credentials in the URL are not supported (give the updater a Source that adds them)"
            }
            UrlRule::Query => "a repository URL cannot have a query or a fragment",
        })
    }
}

/// Why the last attempt of a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// The source failed: no connection, a timeout, a reset.
    Source(SourceErrorKind),
    /// Slower than the minimum rate.
    Stalled {
        /// Bytes received in this attempt.
        bytes: u64,
        /// Seconds the attempt lasted.
        secs: u64,
    },
    /// The connection ended before the declared size.
    Cut {
        /// Bytes on hand.
        got: u64,
        /// Bytes declared.
        expected: u64,
    },
    /// The time allowed for the whole transfer, retries included, ran out.
    Deadline {
        /// The time allowed, in seconds.
        secs: u64,
    },
    /// A status worth retrying (5xx, 408, 429), every time.
    Status(u16),
    /// A status that makes no sense for the request (206 to a request for
    /// the whole file, say).
    Unexpected(u16),
}

impl std::fmt::Display for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transfer::Source(k) => write!(f, "{k}"),
            Transfer::Stalled { bytes, secs } => write!(
                f,
                "stalled: {bytes} bytes in {secs} s is below the minimum rate"
            ),
            Transfer::Cut { got, expected } => {
                write!(f, "connection ended after {got} of {expected} bytes")
            }
            Transfer::Deadline { secs } => write!(f, "gave up after {secs} s"),
            Transfer::Status(s) => write!(f, "HTTP {s}{}", reason_phrase(*s)),
            Transfer::Unexpected(s) => write!(f, "unexpected HTTP status {s}"),
        }
    }
}

/// ` Not Found` for 404, and so on (empty for unknown codes).
fn reason_phrase(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
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

impl From<deltapack_fs::Error> for Error {
    fn from(e: deltapack_fs::Error) -> Self {
        match e {
            deltapack_fs::Error::Io(io) => Error::from(io),
            other => Error::Fs(other),
        }
    }
}

/// The family of an [`Error`], for bindings and apps that handle
/// families rather than variants (the Python exception hierarchy and the
/// Node `category` follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is missing or invalid (builder, config file, URL rules).
    Config,
    /// The repository could not be reached or answered wrongly.
    Network,
    /// The manifest was refused: signature, expiry, or a replay.
    Signature,
    /// A package or its bytes are not what the manifest says, or do not
    /// apply.
    Package,
    /// What was asked is not possible: no such version, nothing to roll
    /// back to, already installed, not downloaded.
    Unavailable,
    /// The install on disk is not as expected (a layout, a link, state).
    Layout,
    /// Another updater is working, or this user may not write the install.
    Busy,
    /// The disk is full, or an I/O operation failed.
    Io,
}

impl Error {
    /// A stable name for the variant (`network`, `artifact_hash`, …), the
    /// same in every binding.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Repository { .. } => "repository",
            Error::Network { .. } => "network",
            Error::HttpStatus { .. } => "http_status",
            Error::Redirect { .. } => "redirect",
            Error::TooLarge { .. } => "too_large",
            Error::BadRange { .. } => "bad_range",
            Error::ArtifactHash { .. } => "artifact_hash",
            Error::Manifest { .. } => "manifest",
            Error::Rollback { .. } => "rollback",
            Error::NotAvailable { .. } => "not_available",
            Error::Apply { .. } => "apply",
            Error::WrongPackage { .. } => "wrong_package",
            Error::ReadOnly { .. } => "read_only",
            Error::Busy { .. } => "busy",
            Error::UnknownChannel { .. } => "unknown_channel",
            Error::UnknownPlatform { .. } => "unknown_platform",
            Error::AlreadyInstalled { .. } => "already_installed",
            Error::NothingInstalled => "nothing_installed",
            Error::NotDownloaded { .. } => "not_downloaded",
            Error::Unidentified { .. } => "unidentified",
            Error::NoRollbackTarget => "no_rollback_target",
            Error::BrokenCurrent { .. } => "broken_current",
            Error::Layout { .. } => "layout",
            Error::State { .. } => "state",
            Error::UnknownSetting { .. } => "unknown_setting",
            Error::InvalidSetting { .. } => "invalid_setting",
            Error::NoSpace { .. } => "no_space",
            Error::DiskFull { .. } => "disk_full",
            Error::Fs(_) => "fs",
            Error::Io(_) => "io",
        }
    }

    /// The variant's family.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_)
            | Error::Repository { .. }
            | Error::UnknownSetting { .. }
            | Error::InvalidSetting { .. }
            | Error::UnknownChannel { .. }
            | Error::UnknownPlatform { .. } => ErrorKind::Config,
            Error::Network { .. }
            | Error::HttpStatus { .. }
            | Error::Redirect { .. }
            | Error::TooLarge { .. }
            | Error::BadRange { .. } => ErrorKind::Network,
            Error::Manifest { .. } | Error::Rollback { .. } => ErrorKind::Signature,
            Error::ArtifactHash { .. } | Error::Apply { .. } | Error::WrongPackage { .. } => {
                ErrorKind::Package
            }
            Error::NotAvailable { .. }
            | Error::AlreadyInstalled { .. }
            | Error::NothingInstalled
            | Error::NotDownloaded { .. }
            | Error::NoRollbackTarget => ErrorKind::Unavailable,
            Error::Unidentified { .. }
            | Error::BrokenCurrent { .. }
            | Error::Layout { .. }
            | Error::State { .. }
            | Error::Fs(_) => ErrorKind::Layout,
            Error::ReadOnly { .. } | Error::Busy { .. } => ErrorKind::Busy,
            Error::NoSpace { .. } | Error::DiskFull { .. } | Error::Io(_) => ErrorKind::Io,
        }
    }

    /// Whether the repository could not be reached or did not answer as it
    /// should (so that what is on this machine may do instead).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Network { .. } | Error::HttpStatus { .. } | Error::Redirect { .. }
        )
    }

    /// The message with every cause after it, each once (`a: b: c`), for
    /// logs, bindings and history notes.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = c.source();
        }
        out
    }

    /// Whether the failure is this machine's (a full disk, a planted link,
    /// another updater, unreadable local state, a bad setting), so that
    /// trying the full bundle instead of a delta would fail the same way.
    /// Everything else that goes wrong with a delta (its download, its
    /// bytes, its header, the base, the apply, even a local read error of
    /// the base) is followed by the full bundle.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Error::DiskFull { .. }
                | Error::NoSpace { .. }
                | Error::Fs(_)
                | Error::Busy { .. }
                | Error::ReadOnly { .. }
                | Error::State { .. }
                | Error::Config(_)
                | Error::UnknownChannel { .. }
                | Error::UnknownPlatform { .. }
                | Error::Layout { .. }
                | Error::BrokenCurrent { .. }
                | Error::Unidentified { .. }
        )
    }
}
