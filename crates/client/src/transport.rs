//! Moving a repository file from a [`Source`] to this machine under rules
//! that no source is trusted to keep:
//!
//! - never more than the declared size: a manifest's bound, an artifact's
//!   `size` ([`Error::TooLarge`]);
//! - a resumed download (`Range: bytes=N-`) must get a `206` with exactly
//!   the `Content-Range` asked for ([`Error::BadRange`]); a `200` restarts
//!   the file from zero;
//! - a redirect is reported, never followed ([`Error::Redirect`]);
//! - the minimum rate: once the read timeout has passed since an attempt
//!   began, the bytes received must keep up with `min_rate` (default
//!   8 KiB/s) on average, or the attempt is stalled. A server that drips
//!   or goes silent loses the attempt, whatever it declared;
//! - deadlines for the whole operation, retries included: a manifest check
//!   gives up after `check_timeout` (default 45 s); a package download's
//!   time follows its declared size (one read timeout and one connect
//!   timeout per attempt plus the size at the minimum rate);
//! - transient failures (no connection, a timeout, a reset, a stall, a
//!   body cut short, 5xx, 408, 429) are retried with exponential backoff and
//!   jitter while time remains; everything else fails at once.
//!
//! The private [`Failure`] is one attempt's outcome and decides what is
//! retried; callers get a public [`Error`].

use std::io::Read;
use std::time::{Duration, Instant};

use crate::error::{Error, Transfer};
use crate::source::{Request, Source, SourceError};

/// Network settings.
#[derive(Debug, Clone)]
pub(crate) struct NetConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) check_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) allowed_hosts: Vec<String>,
    /// Slowest transfer accepted, bytes per second.
    pub(crate) min_rate: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            check_timeout: Duration::from_secs(45),
            retries: 4,
            backoff: Duration::from_millis(250),
            allowed_hosts: Vec::new(),
            min_rate: 8 * 1024,
        }
    }
}

/// Where downloaded bytes go (the download cache's `.part` file).
pub(crate) trait PartSink {
    /// Bytes kept so far.
    fn len(&self) -> u64;
    /// Drops every byte kept.
    fn restart(&mut self) -> Result<(), Error>;
    /// Keeps more bytes.
    fn append(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Makes the bytes kept durable.
    fn sync(&mut self) -> Result<(), Error>;
}

/// What a download did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Bytes fetched by this call.
    pub(crate) bytes: u64,
    /// Whether the result continues bytes fetched before (an earlier run's
    /// `.part`, or an attempt resumed with `Range`).
    pub(crate) resumed: bool,
}

/// One attempt's failure; decides what is retried.
#[derive(Debug)]
enum Failure {
    Source(SourceError),
    Read(std::io::Error),
    Status(u16),
    Redirect {
        status: u16,
        location: Option<String>,
    },
    Unexpected(u16),
    TooLarge,
    BadRange {
        expected: String,
        found: String,
    },
    Stalled {
        bytes: u64,
        secs: u64,
    },
    Deadline,
    Cut {
        got: u64,
    },
    Local(Error),
}

impl Failure {
    /// What went wrong, for a message (a stream's I/O error).
    fn describe(&self, size: u64) -> String {
        match self {
            Failure::TooLarge => format!("more than the {size} bytes declared"),
            Failure::Stalled { bytes, secs } => Transfer::Stalled {
                bytes: *bytes,
                secs: *secs,
            }
            .to_string(),
            Failure::Deadline => "the time allowed ran out".into(),
            other => format!("{other:?}"),
        }
    }

    fn transient(&self) -> bool {
        match self {
            Failure::Source(e) => e.kind().is_transient(),
            Failure::Read(e) => crate::source::SourceErrorKind::of_io(e).is_transient(),
            Failure::Status(s) => retry_status(*s),
            // An attempt's time ran out; `retrying` stops at the
            // operation's deadline.
            Failure::Stalled { .. } | Failure::Cut { .. } | Failure::Deadline => true,
            _ => false,
        }
    }

    fn into_error(self, t: &Transport, path: &str, size: u64, attempts: u32, secs: u64) -> Error {
        let url = t.source.describe(path);
        let net = |cause, source| Error::Network {
            url: url.clone(),
            cause,
            attempts,
            source,
        };
        match self {
            Failure::Source(e) => {
                let kind = e.kind();
                net(Transfer::Source(kind), e.into_source())
            }
            Failure::Read(e) => net(
                Transfer::Source(crate::source::SourceErrorKind::of_io(&e)),
                Some(Box::new(e)),
            ),
            Failure::Status(s) if retry_status(s) => net(Transfer::Status(s), None),
            Failure::Status(status) => Error::HttpStatus { url, status },
            Failure::Redirect { status, location } => Error::Redirect {
                url,
                status,
                location,
            },
            Failure::Unexpected(s) => net(Transfer::Unexpected(s), None),
            Failure::TooLarge => Error::TooLarge { url, limit: size },
            Failure::BadRange { expected, found } => Error::BadRange {
                url,
                expected,
                found,
            },
            Failure::Stalled { bytes, secs } => net(Transfer::Stalled { bytes, secs }, None),
            Failure::Deadline => net(Transfer::Deadline { secs }, None),
            Failure::Cut { got } => net(
                Transfer::Cut {
                    got,
                    expected: size,
                },
                None,
            ),
            Failure::Local(e) => e,
        }
    }
}

/// The longest any budget runs.
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// `now + d`, saturating at a year from now.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(YEAR)).unwrap_or(now)
}

/// Statuses worth another try.
fn retry_status(s: u16) -> bool {
    matches!(s, 500..=599 | 408 | 429)
}

/// The status of a response that is not the file: an error, or a
/// redirect to report.
fn refuse_status(status: u16, location: Option<String>) -> Failure {
    if (300..400).contains(&status) {
        Failure::Redirect { status, location }
    } else if (200..300).contains(&status) {
        Failure::Unexpected(status)
    } else {
        Failure::Status(status)
    }
}

/// The minimum rate and the deadline, checked between reads.
struct Meter {
    start: Instant,
    grace: Duration,
    min_rate: u64,
    deadline: Instant,
}

impl Meter {
    fn check(&self, got: u64) -> Result<(), Failure> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Failure::Deadline);
        }
        let t = now.saturating_duration_since(self.start);
        if t > self.grace {
            let owed = self.min_rate as f64 * (t - self.grace).as_secs_f64();
            if (got as f64) < owed {
                return Err(Failure::Stalled {
                    bytes: got,
                    secs: t.as_secs(),
                });
            }
        }
        Ok(())
    }
}

/// Where [`pump`] hands each chunk, with the bytes so far.
type ChunkSink<'a> = dyn FnMut(&[u8], u64) -> Result<(), Error> + 'a;

/// Reads `body` to its end in chunks, at most `limit` bytes, handing each
/// chunk to `sink`; the meter is checked after every read.
fn pump(
    body: &mut dyn Read,
    limit: u64,
    meter: &Meter,
    sink: &mut ChunkSink<'_>,
) -> Result<u64, Failure> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                meter.check(got)?;
                continue;
            }
            Err(e) => {
                // A read cut off by the deadline is the deadline's doing.
                meter.check(got)?;
                return Err(Failure::Read(e));
            }
        };
        if n == 0 {
            return Ok(got);
        }
        if got.saturating_add(n as u64) > limit {
            return Err(Failure::TooLarge);
        }
        got += n as u64;
        sink(&buf[..n], got).map_err(Failure::Local)?;
        if got < limit {
            meter.check(got)?;
        }
    }
}

/// Up to half of `base`, from the OS random source.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
    base.mul_f64(frac / 2.0)
}

/// A repository reached through one source, with the rules above.
pub(crate) struct Transport {
    source: Box<dyn Source>,
    net: NetConfig,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({:?})", self.source)
    }
}

impl Transport {
    pub(crate) fn new(source: Box<dyn Source>, net: NetConfig) -> Transport {
        Transport { source, net }
    }

    /// A readable address of a repository file.
    pub(crate) fn describe(&self, path: &str) -> String {
        self.source.describe(path)
    }

    /// How long a download of `size` bytes may take, retries included.
    fn download_budget(&self, size: u64) -> Duration {
        let per_try = self.net.read_timeout + self.net.connect_timeout;
        per_try.saturating_mul(self.net.retries.saturating_add(1)) + self.rate_time(size)
    }

    /// `bytes` at the minimum rate.
    fn rate_time(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.net.min_rate.max(1) as f64)
    }

    /// Runs `attempt` until it succeeds, fails for good, or no time is left
    /// for another try before `deadline`.
    fn retrying<T>(
        &self,
        path: &str,
        size: u64,
        deadline: Instant,
        budget: Duration,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Error> {
        let mut n: u32 = 0;
        loop {
            n += 1;
            let f = match attempt() {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            let base = self.net.backoff.saturating_mul(1 << (n - 1).min(10));
            let wait = base + jitter(base);
            let again = f.transient() && n <= self.net.retries && Instant::now() + wait < deadline;
            if !again {
                return Err(f.into_error(self, path, size, n, budget.as_secs()));
            }
            std::thread::sleep(wait);
        }
    }

    fn request(&self, path: &str, offset: u64, deadline: Instant) -> Request {
        Request {
            path: path.to_owned(),
            offset,
            idle_timeout: self.net.read_timeout,
            deadline,
        }
    }

    fn meter(&self, deadline: Instant) -> Meter {
        Meter {
            start: Instant::now(),
            grace: self.net.read_timeout,
            min_rate: self.net.min_rate,
            deadline,
        }
    }

    /// Fetches a small file whole (the manifest), reading at most `max`
    /// bytes, within the check timeout.
    pub(crate) fn fetch(&self, path: &str, max: u64) -> Result<Vec<u8>, Error> {
        let budget = self.net.check_timeout;
        let deadline = after(budget);
        self.retrying(path, max, deadline, budget, || {
            let resp = self
                .source
                .get(&self.request(path, 0, deadline))
                .map_err(Failure::Source)?;
            if resp.status != 200 {
                return Err(refuse_status(resp.status, resp.location));
            }
            let mut out = Vec::new();
            let mut body = resp.body;
            pump(&mut body, max, &self.meter(deadline), &mut |chunk, _| {
                out.extend_from_slice(chunk);
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// Downloads `size` bytes of `path` into `part`, continuing what it
    /// holds; reports progress through `on_bytes(done)`.
    pub(crate) fn download(
        &self,
        path: &str,
        size: u64,
        part: &mut dyn PartSink,
        on_bytes: &dyn Fn(u64),
    ) -> Result<Fetched, Error> {
        let budget = self.download_budget(size);
        let deadline = after(budget);
        let mut fetched = 0u64;
        let mut resumed = part.len() > 0 && part.len() <= size;
        let result = self.retrying(path, size, deadline, budget, || {
            let mut have = part.len();
            if have > size {
                part.restart().map_err(Failure::Local)?;
                have = 0;
            }
            if have == size {
                return Ok(());
            }
            let attempt_deadline = deadline.min(after(
                self.net
                    .read_timeout
                    .saturating_add(self.rate_time(size - have)),
            ));
            let resp = self
                .source
                .get(&self.request(path, have, attempt_deadline))
                .map_err(Failure::Source)?;
            let start = match resp.status {
                206 if have > 0 => {
                    let want = format!("bytes {have}-{}/{size}", size - 1);
                    let found = resp.content_range.clone().unwrap_or_default();
                    if found != want {
                        return Err(Failure::BadRange {
                            expected: want,
                            found,
                        });
                    }
                    resumed = true;
                    have
                }
                200 => {
                    if have > 0 {
                        part.restart().map_err(Failure::Local)?;
                    }
                    resumed = false;
                    0
                }
                // The part is not a prefix of what the server has: start over.
                416 if have > 0 => {
                    part.restart().map_err(Failure::Local)?;
                    resumed = false;
                    return Err(Failure::Cut { got: 0 });
                }
                s => return Err(refuse_status(s, resp.location)),
            };
            let mut body = resp.body;
            let got = pump(
                &mut body,
                size - start,
                &self.meter(attempt_deadline),
                &mut |chunk, got| {
                    part.append(chunk)?;
                    on_bytes(start + got);
                    Ok(())
                },
            );
            let got = match got {
                Ok(g) => g,
                Err(f) => {
                    // Keep what arrived for the next attempt.
                    part.sync().map_err(Failure::Local)?;
                    return Err(f);
                }
            };
            fetched += got;
            part.sync().map_err(Failure::Local)?;
            if start + got < size {
                return Err(Failure::Cut { got: start + got });
            }
            Ok(())
        });
        result.map(|()| Fetched {
            bytes: fetched,
            resumed,
        })
    }

    /// Starts a streamed download of `path` (one attempt, from zero): the
    /// body as a reader that keeps every rule, for the applier to consume
    /// while it arrives.
    pub(crate) fn stream(&self, path: &str, size: u64) -> Result<Stream, Error> {
        let budget = self
            .net
            .read_timeout
            .saturating_add(self.net.connect_timeout)
            .saturating_add(self.rate_time(size));
        let deadline = after(budget);
        let fail = |f: Failure| f.into_error(self, path, size, 1, budget.as_secs());
        let resp = self
            .source
            .get(&self.request(path, 0, deadline))
            .map_err(|e| fail(Failure::Source(e)))?;
        if resp.status != 200 {
            return Err(fail(refuse_status(resp.status, resp.location)));
        }
        Ok(Stream {
            body: resp.body,
            meter: self.meter(deadline),
            limit: size,
            got: 0,
        })
    }
}

/// A response body read under the rules (see [`Transport::stream`]). A
/// rule broken is an I/O error of kind `Other` whose message says which.
pub(crate) struct Stream {
    body: Box<dyn Read + Send>,
    meter: Meter,
    limit: u64,
    got: u64,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.limit;
        let broken = move |f: Failure| std::io::Error::other(f.describe(size));
        let n = match self.body.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.meter.check(self.got).map_err(broken)?;
                return Err(e);
            }
        };
        if self.got.saturating_add(n as u64) > self.limit {
            return Err(broken(Failure::TooLarge));
        }
        self.got += n as u64;
        if n > 0 && self.got < self.limit {
            self.meter.check(self.got).map_err(broken)?;
        }
        Ok(n)
    }
}
