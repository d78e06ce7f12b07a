//! Where a repository's files come from: the [`Source`] seam.
//!
//! The updater asks a source for one file at a time, whole or from an
//! offset, and checks everything that comes back itself: the status, the
//! `Content-Range` of a resumed download, that no more than the declared
//! size arrives, the minimum rate and the deadline, and in the end the size
//! and BLAKE3 that the signed manifest gives. A source moves bytes and is
//! never trusted with anything else.
//!
//! Two sources are built in: [`HttpSource`] (ureq over rustls, with the
//! URL rules of [`crate::UrlRule`]) and [`DirSource`] (a directory on this
//! machine). An app with its own HTTP stack — custom headers, an
//! `Authorization` token, a corporate proxy — implements [`Source`] and hands
//! it to [`crate::UpdaterBuilder::source`]; every check above still applies.
//! A source should honour [`Request::idle_timeout`] and
//! [`Request::deadline`]: the updater enforces the minimum rate and the
//! deadline between reads, but cannot interrupt a read that never returns.

mod dir;
mod http;

use std::io::Read;
use std::time::{Duration, Instant};

pub use dir::DirSource;
pub use http::HttpSource;
pub(crate) use http::parse_repository;

/// A repository's files, fetched one at a time.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A readable address of `path`, for messages (`https://…/manifest.json`).
    fn describe(&self, path: &str) -> String;

    /// Starts fetching `req.path`. An HTTP error status is a [`Response`]
    /// with that status, not an error; [`SourceError`] is for a transfer
    /// that could not happen (no connection, a timeout, a reset).
    fn get(&self, req: &Request) -> Result<Response, SourceError>;
}

/// A shared source (the app keeps a handle, say to count requests).
impl<S: Source + ?Sized> Source for std::sync::Arc<S> {
    fn describe(&self, path: &str) -> String {
        (**self).describe(path)
    }

    fn get(&self, req: &Request) -> Result<Response, SourceError> {
        (**self).get(req)
    }
}

/// One fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    /// The file, relative to the repository root (`manifest.json`,
    /// `pkg/linux-x86_64/1.2.0/full.dpk`): a path the signed manifest
    /// gave, checked to be plain relative ASCII.
    pub path: String,
    /// Send the bytes from this offset on (HTTP `Range: bytes=N-`); 0 asks
    /// for the whole file.
    pub offset: u64,
    /// Longest wait for the response to start, or for any one read of its
    /// body.
    pub idle_timeout: Duration,
    /// When the whole exchange, body included, must be over.
    pub deadline: Instant,
}

/// What a source answered.
#[non_exhaustive]
pub struct Response {
    /// The HTTP status (200 whole file, 206 partial, 404 missing, …).
    pub status: u16,
    /// The `Content-Range` header of a 206.
    pub content_range: Option<String>,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// The body.
    pub body: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_range", &self.content_range)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: Box<dyn Read + Send>) -> Response {
        Response {
            status,
            content_range: None,
            location: None,
            body,
        }
    }

    /// With a `Content-Range` header.
    pub fn content_range(mut self, v: impl Into<String>) -> Response {
        self.content_range = Some(v.into());
        self
    }

    /// With a `Location` header.
    pub fn location(mut self, v: impl Into<String>) -> Response {
        self.location = Some(v.into());
        self
    }
}

/// A fetch that could not happen.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct SourceError {
    kind: SourceErrorKind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SourceError {
    /// An error of `kind`, caused by `source`.
    pub fn new(
        kind: SourceErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SourceError {
        SourceError {
            kind,
            source: Some(source.into()),
        }
    }

    /// An error of `kind` with no further cause.
    pub fn bare(kind: SourceErrorKind) -> SourceError {
        SourceError { kind, source: None }
    }

    /// What went wrong.
    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    pub(crate) fn into_source(self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        self.source
    }
}

/// What kind of failure a [`SourceError`] is; the first three are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// No connection could be made (DNS, refused, unreachable).
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// The connection broke during the exchange.
    Reset,
    /// Anything else (a protocol error, a TLS failure): not retried.
    Other,
}

impl SourceErrorKind {
    /// Whether another attempt may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            SourceErrorKind::Connect | SourceErrorKind::Timeout | SourceErrorKind::Reset
        )
    }

    /// The kind of an I/O error from a body read.
    pub fn of_io(e: &std::io::Error) -> SourceErrorKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::TimedOut | K::WouldBlock => SourceErrorKind::Timeout,
            K::ConnectionRefused
            | K::NotConnected
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable => SourceErrorKind::Connect,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NetworkDown => SourceErrorKind::Reset,
            _ => SourceErrorKind::Other,
        }
    }
}

impl std::fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceErrorKind::Connect => {
                "could not connect (is the repository URL right? is the server up?)"
            }
            SourceErrorKind::Timeout => "timed out",
            SourceErrorKind::Reset => "connection broken",
            SourceErrorKind::Other => "failed",
        })
    }
}
