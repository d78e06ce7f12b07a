//! Getting bytes from a repository: the manifest and artifacts, over HTTP(S)
//! or from a local directory (`file://` URL or plain path).
//!
//! Rules, whatever the transport:
//! - never read more than the declared size (a manifest's bound, an
//!   artifact's `size`): a server that sends more gets `TooLarge`;
//! - HTTPS only, except loopback addresses and local directories; an
//!   optional host allowlist;
//! - downloads resume from a `.part` file with a `Range` request. A `206`
//!   must carry the exact `Content-Range` asked for (`BadRange` otherwise); a
//!   `200` restarts the file from zero. The finished file's size and BLAKE3
//!   must match the manifest, or it is deleted;
//! - transient failures (connect, timeout, reset, 5xx) are retried with
//!   exponential backoff and jitter. Stalls count as one: the response must
//!   start within the read timeout, and a body must arrive within the read
//!   timeout plus its length at the minimum rate (default 8 KiB/s), so a
//!   server that stops sending cannot hang an update.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use deltapack_manifest::Artifact;

use crate::{Error, Event};

/// Where the repository is.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A directory on this machine.
    Dir(PathBuf),
    /// An `http(s)://` base URL, ending in `/`.
    Http(String),
}

/// Network settings.
#[derive(Debug, Clone)]
pub(crate) struct NetConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
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
            retries: 4,
            backoff: Duration::from_millis(250),
            allowed_hosts: Vec::new(),
            min_rate: 8 * 1024,
        }
    }
}

impl Location {
    /// Parses a repository address and applies the transport rules.
    pub(crate) fn parse(s: &str, net: &NetConfig) -> Result<Location, Error> {
        let refuse = |why: &str| Error::Repository {
            url: s.to_owned(),
            reason: why.to_owned(),
        };
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Location::Dir(PathBuf::from(path)));
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => return Ok(Location::Dir(PathBuf::from(s))),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let host = host_of(authority);
        if host.is_empty() {
            return Err(refuse("no host"));
        }
        match scheme.as_str() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => return Err(refuse("plain http is allowed only for loopback addresses")),
            _ => {
                return Err(refuse(
                    "only https://, http:// (loopback) and file:// are supported",
                ));
            }
        }
        if !net.allowed_hosts.is_empty() && !net.allowed_hosts.iter().any(|h| h == &host) {
            return Err(refuse("host is not in the allowlist"));
        }
        let mut base = s.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(Location::Http(base))
    }

    /// A human-readable address of a repository file.
    pub(crate) fn describe(&self, rel: &str) -> String {
        match self {
            Location::Dir(d) => d.join(rel).display().to_string(),
            Location::Http(base) => format!("{base}{rel}"),
        }
    }
}

fn host_of(authority: &str) -> String {
    let after_user = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = after_user.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_ascii_lowercase();
    }
    after_user
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// A client for one repository.
pub(crate) struct Transport {
    loc: Location,
    net: NetConfig,
    agent: ureq::Agent,
}

/// Whether an error is worth another try.
fn transient(e: &Error) -> bool {
    matches!(e, Error::Network { .. })
}

impl Transport {
    pub(crate) fn new(loc: Location, net: NetConfig) -> Transport {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(net.connect_timeout))
            .timeout_recv_response(Some(net.read_timeout))
            .timeout_recv_body(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Transport { loc, net, agent }
    }

    pub(crate) fn location(&self) -> &Location {
        &self.loc
    }

    /// A GET of `url` whose body must arrive within the read timeout plus
    /// `bytes` at the minimum rate (the stall detector).
    fn get(&self, url: String, bytes: u64) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let budget = self.net.read_timeout
            + Duration::from_secs_f64(bytes as f64 / self.net.min_rate.max(1) as f64);
        self.agent
            .get(url)
            .config()
            .timeout_recv_body(Some(budget))
            .build()
    }

    /// Fetches a small file whole (the manifest), reading at most `max`.
    pub(crate) fn fetch(&self, rel: &str, max: u64) -> Result<Vec<u8>, Error> {
        self.with_retries(|| self.fetch_once(rel, max))
    }

    fn fetch_once(&self, rel: &str, max: u64) -> Result<Vec<u8>, Error> {
        let what = self.loc.describe(rel);
        let mut out = Vec::new();
        match &self.loc {
            Location::Dir(d) => {
                let f = fs_err::File::open(d.join(rel)).map_err(|e| Error::Network {
                    url: what.clone(),
                    reason: e.to_string(),
                })?;
                f.take(max + 1).read_to_end(&mut out)?;
            }
            Location::Http(base) => {
                let resp = self
                    .get(format!("{base}{rel}"), max)
                    .call()
                    .map_err(|e| net_error(&what, &e))?;
                status_ok(&what, resp.status().as_u16(), false)?;
                let mut body = resp.into_body();
                body.as_reader()
                    .take(max + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| Error::Network {
                        url: what.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        if out.len() as u64 > max {
            return Err(Error::TooLarge {
                url: what,
                limit: max,
            });
        }
        Ok(out)
    }

    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            match f() {
                Err(e) if transient(&e) && attempt < self.net.retries => {
                    let base = self.net.backoff.saturating_mul(1 << attempt.min(10));
                    std::thread::sleep(base + jitter(base));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Downloads an artifact into `dir` as `<blake3>.dpk`, resuming a
    /// previous `.part`, and checks its size and hash. Returns the path.
    pub(crate) fn download(
        &self,
        a: &Artifact,
        dir: &Path,
        progress: &dyn Fn(Event),
    ) -> Result<PathBuf, Error> {
        let done = dir.join(format!("{}.dpk", a.blake3));
        if fs_err::metadata(&done).is_ok_and(|m| m.len() == a.size) && hash_ok(&done, a)? {
            progress(Event::Downloaded {
                path: a.path.clone(),
                bytes: 0,
            });
            return Ok(done);
        }
        fs_err::create_dir_all(dir)?;
        let part = dir.join(format!("{}.part", a.blake3));
        let fetched = self.with_retries(|| self.download_once(a, &part, progress))?;
        if !hash_ok(&part, a)? {
            fs_err::remove_file(&part)?;
            return Err(Error::ArtifactHash {
                url: self.loc.describe(&a.path),
            });
        }
        fs_err::rename(&part, &done)?;
        progress(Event::Downloaded {
            path: a.path.clone(),
            bytes: fetched,
        });
        Ok(done)
    }

    /// One attempt; returns the bytes fetched in this attempt.
    fn download_once(
        &self,
        a: &Artifact,
        part: &Path,
        progress: &dyn Fn(Event),
    ) -> Result<u64, Error> {
        let what = self.loc.describe(&a.path);
        let have = fs_err::metadata(part).map_or(0, |m| m.len());
        let have = if have > a.size { 0 } else { have };
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(part)?;
        file.set_len(have)?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(have))?;
        if have == a.size {
            return Ok(0);
        }
        let net = |e: std::io::Error| Error::Network {
            url: what.clone(),
            reason: e.to_string(),
        };
        let (mut reader, start): (Box<dyn Read>, u64) = match &self.loc {
            Location::Dir(d) => {
                let mut f = fs_err::File::open(d.join(&a.path)).map_err(net)?;
                f.seek(std::io::SeekFrom::Start(have)).map_err(net)?;
                (Box::new(f), have)
            }
            Location::Http(base) => {
                let mut req = self.get(format!("{base}{}", a.path), a.size - have);
                if have > 0 {
                    req = req.header("Range", format!("bytes={have}-"));
                }
                let resp = req.call().map_err(|e| net_error(&what, &e))?;
                let status = resp.status().as_u16();
                let start = match status {
                    206 if have > 0 => {
                        let cr = resp
                            .headers()
                            .get("content-range")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        let want = format!("bytes {have}-{}/{}", a.size - 1, a.size);
                        if cr != want {
                            return Err(Error::BadRange {
                                url: what,
                                expected: want,
                                found: cr.to_owned(),
                            });
                        }
                        have
                    }
                    200 => 0,
                    _ => {
                        status_ok(&what, status, true)?;
                        return Err(Error::Network {
                            url: what,
                            reason: format!("unexpected HTTP status {status}"),
                        });
                    }
                };
                (Box::new(resp.into_body().into_reader()), start)
            }
        };
        if start != have {
            file.set_len(0)?;
            file.seek(std::io::SeekFrom::Start(0))?;
        }
        let limit = a.size - start;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(net)?;
            if n == 0 {
                break;
            }
            if got + n as u64 > limit {
                file.write_all(&buf[..(limit - got) as usize])?;
                return Err(Error::TooLarge {
                    url: what,
                    limit: a.size,
                });
            }
            file.write_all(&buf[..n])?;
            got += n as u64;
            progress(Event::Downloading {
                path: a.path.clone(),
                done: start + got,
                total: a.size,
            });
        }
        file.sync_all()?;
        if start + got < a.size {
            return Err(Error::Network {
                url: what,
                reason: format!("connection ended after {} of {} bytes", start + got, a.size),
            });
        }
        Ok(got)
    }
}

fn status_ok(url: &str, status: u16, _resume: bool) -> Result<(), Error> {
    match status {
        200..=299 => Ok(()),
        500..=599 | 408 | 429 => Err(Error::Network {
            url: url.to_owned(),
            reason: format!("HTTP {status}"),
        }),
        _ => Err(Error::HttpStatus {
            url: url.to_owned(),
            status,
        }),
    }
}

fn net_error(url: &str, e: &ureq::Error) -> Error {
    Error::Network {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

fn hash_ok(path: &Path, a: &Artifact) -> Result<bool, Error> {
    let (size, hash) = deltapack_tree::hash_file(path).map_err(|e| match e {
        deltapack_tree::Error::Io(io) => Error::from(io),
        other => Error::Io(std::io::Error::other(other.to_string())),
    })?;
    Ok(size == a.size && deltapack_tree::hex(&hash) == a.blake3)
}

/// Up to half of `base`, from the OS random source.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
    base.mul_f64(frac / 2.0)
}

/// A package being downloaded while it is applied: reading it yields the
/// body and also writes it to `<blake3>.part`, hashing as it goes. After
/// the applier is done, [`StreamDownload::finish`] checks that exactly the
/// declared bytes arrived with the declared hash and keeps the file.
pub(crate) struct StreamDownload<'a> {
    body: Box<dyn Read + 'a>,
    part: fs_err::File,
    part_path: PathBuf,
    done_path: PathBuf,
    hasher: blake3::Hasher,
    got: u64,
    artifact: &'a Artifact,
    url: String,
    progress: &'a dyn Fn(Event),
}

impl Read for StreamDownload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.body.read(buf)?;
        if self.got + n as u64 > self.artifact.size {
            return Err(std::io::Error::other(format!(
                "{} is larger than the {} bytes declared",
                self.url, self.artifact.size
            )));
        }
        self.part.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.got += n as u64;
        (self.progress)(Event::Downloading {
            path: self.artifact.path.clone(),
            done: self.got,
            total: self.artifact.size,
        });
        Ok(n)
    }
}

impl StreamDownload<'_> {
    /// Reads whatever the applier left, checks length and hash, and keeps
    /// the package as `<blake3>.dpk`.
    pub(crate) fn finish(mut self) -> Result<PathBuf, Error> {
        let mut rest = [0u8; 4096];
        loop {
            match self.read(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::Network {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        self.part.sync_all()?;
        if self.got != self.artifact.size
            || self.hasher.finalize().to_hex().as_str() != self.artifact.blake3
        {
            let _ = fs_err::remove_file(&self.part_path);
            return Err(Error::ArtifactHash { url: self.url });
        }
        fs_err::rename(&self.part_path, &self.done_path)?;
        (self.progress)(Event::Downloaded {
            path: self.artifact.path.clone(),
            bytes: self.got,
        });
        Ok(self.done_path)
    }
}

impl Transport {
    /// Starts a streamed download of `a` (only when nothing of it is on
    /// disk yet: resumes go through [`Transport::download`]).
    pub(crate) fn stream<'a>(
        &'a self,
        a: &'a Artifact,
        dir: &Path,
        progress: &'a dyn Fn(Event),
    ) -> Result<StreamDownload<'a>, Error> {
        fs_err::create_dir_all(dir)?;
        let url = self.loc.describe(&a.path);
        let net = |e: std::io::Error| Error::Network {
            url: url.clone(),
            reason: e.to_string(),
        };
        let body: Box<dyn Read + 'a> = match &self.loc {
            Location::Dir(d) => Box::new(fs_err::File::open(d.join(&a.path)).map_err(net)?),
            Location::Http(base) => {
                let resp = self
                    .get(format!("{base}{}", a.path), a.size)
                    .call()
                    .map_err(|e| net_error(&url, &e))?;
                let status = resp.status().as_u16();
                if status != 200 {
                    status_ok(&url, status, false)?;
                    return Err(Error::Network {
                        url,
                        reason: format!("unexpected HTTP status {status}"),
                    });
                }
                Box::new(resp.into_body().into_reader())
            }
        };
        let part_path = dir.join(format!("{}.part", a.blake3));
        let part = fs_err::File::create(&part_path)?;
        Ok(StreamDownload {
            body,
            part,
            part_path,
            done_path: dir.join(format!("{}.dpk", a.blake3)),
            hasher: blake3::Hasher::new(),
            got: 0,
            artifact: a,
            url,
            progress,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_rules() {
        let net = NetConfig::default();
        for ok in [
            "https://updates.example.com/app",
            "http://127.0.0.1:8080/",
            "http://localhost/x",
            "http://[::1]:9/",
            "file:///srv/repo",
            "/srv/repo",
        ] {
            assert!(Location::parse(ok, &net).is_ok(), "{ok}");
        }
        for bad in [
            "http://updates.example.com/",
            "http://10.0.0.1/",
            "ftp://x/",
            "https:///nohost",
            "http://127.0.0.1.evil.com/",
        ] {
            assert!(
                matches!(Location::parse(bad, &net), Err(Error::Repository { .. })),
                "{bad}"
            );
        }
        let only = NetConfig {
            allowed_hosts: vec!["cdn.example.com".into()],
            ..NetConfig::default()
        };
        assert!(Location::parse("https://cdn.example.com/a", &only).is_ok());
        assert!(Location::parse("https://other.example.com/a", &only).is_err());
    }
}
