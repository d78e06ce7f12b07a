//! [`HttpSource`]: a repository over HTTP(S) with ureq, and the rules a
//! repository address must follow.
//!
//! The address is parsed once into an `http::Uri` (the type ureq itself
//! sends), and the policy — `https` only, plain `http` only to a loopback
//! address, the host allowlist, no credentials, no query — is decided on
//! that value. Every request URI is then built from the same scheme and
//! authority, so the host that was checked is the host that is asked. As a
//! second opinion the address is also parsed by the `url` crate (WHATWG
//! rules, as browsers read it); if the two parsers disagree on the host, the
//! address is refused.
//!
//! Redirects are not followed: a 3xx comes back as a response, and the
//! updater reports it ([`crate::Error::Redirect`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::http::uri::{Authority, Scheme};

use super::{DirSource, Request, Response, Source, SourceError, SourceErrorKind};
use crate::error::{Error, UrlRule};

/// A repository served over HTTP(S).
#[derive(Clone)]
pub struct HttpSource {
    scheme: Scheme,
    authority: Authority,
    /// The base path, ending in `/`.
    base: String,
    agent: ureq::Agent,
    connect_timeout: Duration,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HttpSource({}://{}{})",
            self.scheme, self.authority, self.base
        )
    }
}

/// A parsed repository address.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A directory on this machine.
    Dir(PathBuf),
    /// An HTTP(S) repository.
    Http(HttpSource),
}

impl Parsed {
    pub(crate) fn into_source(self) -> Box<dyn Source> {
        match self {
            Parsed::Dir(d) => Box::new(DirSource::new(d)),
            Parsed::Http(h) => Box::new(h),
        }
    }
}

/// Parses a repository address: a directory path, a `file://` URL, or an
/// `http(s)://` URL that passes the rules (see the module docs).
pub(crate) fn parse_repository(
    s: &str,
    allow_hosts: &[String],
    connect_timeout: Duration,
) -> Result<Parsed, Error> {
    let refuse = |rule| Error::Repository {
        url: s.to_owned(),
        rule,
    };
    if !s.contains("://") {
        return Ok(Parsed::Dir(PathBuf::from(s)));
    }
    let whatwg = url::Url::parse(s).map_err(|_| refuse(UrlRule::Invalid))?;
    if whatwg.scheme() == "file" {
        return whatwg
            .to_file_path()
            .map(Parsed::Dir)
            .map_err(|()| refuse(UrlRule::Invalid));
    }
    HttpSource::parse(s, allow_hosts, connect_timeout).map(Parsed::Http)
}

/// `host` without IPv6 brackets, lower-cased.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

impl HttpSource {
    /// Parses `url` and applies the rules: `https`, or `http` to a
    /// loopback address; a host on `allow_hosts` unless it is empty; no
    /// user name, password, query or fragment.
    pub fn parse(
        url: &str,
        allow_hosts: &[String],
        connect_timeout: Duration,
    ) -> Result<HttpSource, Error> {
        let refuse = |rule| Error::Repository {
            url: url.to_owned(),
            rule,
        };
        let uri: Uri = url.parse().map_err(|_| refuse(UrlRule::Invalid))?;
        let scheme = uri.scheme().cloned().ok_or(refuse(UrlRule::Invalid))?;
        let authority = uri.authority().cloned().ok_or(refuse(UrlRule::NoHost))?;
        if authority.as_str().contains('@') {
            return Err(refuse(UrlRule::Credentials));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(refuse(UrlRule::Query));
        }
        let host = bare_host(authority.host());
        if host.is_empty() {
            return Err(refuse(UrlRule::NoHost));
        }
        // The second opinion: a WHATWG parser must see the same host.
        let whatwg = url::Url::parse(url).map_err(|_| refuse(UrlRule::Invalid))?;
        if whatwg.host_str().map(bare_host).as_deref() != Some(host.as_str()) {
            return Err(refuse(UrlRule::Invalid));
        }
        match scheme.as_str().to_ascii_lowercase().as_str() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => return Err(refuse(UrlRule::PlainHttp)),
            _ => return Err(refuse(UrlRule::Scheme)),
        }
        if !allow_hosts.is_empty() && !allow_hosts.iter().any(|h| bare_host(h) == host) {
            return Err(refuse(UrlRule::NotAllowed));
        }
        let mut base = uri.path().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("deltapack/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(HttpSource {
            scheme,
            authority,
            base,
            agent,
            connect_timeout,
        })
    }

    /// The host requests go to (as checked by the rules).
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// The URI of a repository file, built from the checked scheme and
    /// authority.
    fn uri(&self, path: &str) -> Result<Uri, SourceError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path}", self.base))
            .build()
            .map_err(|e| SourceError::new(SourceErrorKind::Other, e))
    }
}

fn kind_of(e: &ureq::Error) -> SourceErrorKind {
    match e {
        ureq::Error::Timeout(_) => SourceErrorKind::Timeout,
        ureq::Error::Io(io) => SourceErrorKind::of_io(io),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => SourceErrorKind::Connect,
        _ => SourceErrorKind::Other,
    }
}

/// A ureq body whose read errors carry their kind: ureq wraps its own
/// errors (a timeout, say) in `io::ErrorKind::Other`.
struct Body(ureq::BodyReader<'static>);

impl std::io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let kind = match e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
                Some(u) => match kind_of(u) {
                    SourceErrorKind::Timeout => std::io::ErrorKind::TimedOut,
                    SourceErrorKind::Connect => std::io::ErrorKind::ConnectionRefused,
                    SourceErrorKind::Reset => std::io::ErrorKind::ConnectionReset,
                    _ => e.kind(),
                },
                None => e.kind(),
            };
            std::io::Error::new(kind, e)
        })
    }
}

impl Source for HttpSource {
    fn describe(&self, path: &str) -> String {
        format!("{}://{}{}{path}", self.scheme, self.authority, self.base)
    }

    fn get(&self, req: &Request) -> Result<Response, SourceError> {
        let left = req.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SourceError::bare(SourceErrorKind::Timeout));
        }
        let mut r = self
            .agent
            .get(self.uri(&req.path)?)
            .config()
            .timeout_global(Some(left))
            .timeout_connect(Some(self.connect_timeout.min(left)))
            .timeout_recv_response(Some(req.idle_timeout.min(left)))
            .timeout_per_read(Some(req.idle_timeout.min(left)))
            .build();
        if req.offset > 0 {
            r = r.header("Range", format!("bytes={}-", req.offset));
        }
        let resp = r.call().map_err(|e| SourceError::new(kind_of(&e), e))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, range, location) = (
            resp.status().as_u16(),
            header("content-range"),
            header("location"),
        );
        Ok(Response {
            status,
            content_range: range,
            location,
            body: Box::new(Body(resp.into_body().into_reader())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, allow: &[&str]) -> Result<Parsed, Error> {
        let allow: Vec<String> = allow.iter().map(|h| (*h).to_owned()).collect();
        parse_repository(s, &allow, Duration::from_secs(1))
    }

    fn rule(s: &str, allow: &[&str]) -> Option<UrlRule> {
        match parse(s, allow) {
            Ok(_) => None,
            Err(Error::Repository { rule, .. }) => Some(rule),
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    #[test]
    fn transport_rules() {
        for ok in [
            "https://updates.example.com/app",
            "HTTPS://Updates.Example.com/app/",
            "http://127.0.0.1:8080/",
            "http://localhost/x",
            "http://[::1]:9/",
            if cfg!(windows) {
                "file:///C:/srv/repo"
            } else {
                "file:///srv/repo"
            },
            "/srv/repo",
            "repo",
        ] {
            assert_eq!(rule(ok, &[]), None, "{ok}");
        }
        for (bad, why) in [
            ("http://updates.example.com/", UrlRule::PlainHttp),
            ("http://10.0.0.1/", UrlRule::PlainHttp),
            ("ftp://x/", UrlRule::Scheme),
            ("https:///nohost", UrlRule::Invalid),
            ("http://127.0.0.1.evil.com/", UrlRule::PlainHttp),
            // The host is evil.example: what follows `?` is the query.
            ("http://evil.example?@127.0.0.1/", UrlRule::Query),
            ("http://evil.example#@127.0.0.1/", UrlRule::Query),
            ("http://evil.example\\@127.0.0.1/", UrlRule::Invalid),
            ("http://user:pw@127.0.0.1/", UrlRule::Credentials),
            ("http://127.0.0.1@evil.example/", UrlRule::Credentials),
            ("https://cdn.example.com/a?x=1", UrlRule::Query),
            ("http://127.0.0.1:99999/", UrlRule::Invalid),
        ] {
            assert_eq!(rule(bad, &[]), Some(why), "{bad}");
        }
        let only = ["cdn.example.com"];
        assert_eq!(rule("https://cdn.example.com/a", &only), None);
        assert_eq!(rule("https://CDN.example.com/a", &only), None);
        assert_eq!(
            rule("https://other.example.com/a", &only),
            Some(UrlRule::NotAllowed)
        );
        // The allowlist and the loopback rule are decided on the host the
        // request goes to.
        assert_eq!(
            rule("https://evil.example?@cdn.example.com/", &only),
            Some(UrlRule::Query)
        );
        assert_eq!(
            rule("http://127.0.0.1:1/", &["127.0.0.1"]),
            None,
            "loopback and allowed"
        );
    }

    #[test]
    fn requests_go_to_the_checked_host() {
        let Parsed::Http(h) = parse("https://cdn.example.com:8443/app", &[]).unwrap() else {
            panic!("not http");
        };
        let u = h.uri("pkg/linux/1.0.0/full.dpk").unwrap();
        assert_eq!(u.host(), Some("cdn.example.com"));
        assert_eq!(u.port_u16(), Some(8443));
        assert_eq!(u.path(), "/app/pkg/linux/1.0.0/full.dpk");
        assert_eq!(
            h.describe("manifest.json"),
            "https://cdn.example.com:8443/app/manifest.json"
        );
        assert_eq!(h.host(), "cdn.example.com");
    }
}
