//! A small static HTTP file server for a deltapack update repository.
//!
//! It is meant for loopback use and small self-hosting: point it at a
//! repository directory (manifests and `.dpk` packages) and clients can
//! fetch files over plain HTTP/1.1, including resumed and partial downloads
//! through `Range` requests. The HTTP work is done by well-kept crates:
//! `hyper` through `axum` for the protocol, and `tower-http`'s `ServeDir`
//! for the files, which answers `GET` and `HEAD`, single byte ranges
//! (`206 Partial Content` with `Content-Range`, `416 Range Not Satisfiable`
//! when a range cannot be met), conditional requests (`ETag`,
//! `Last-Modified`), and rejects paths that try to leave the root.
//!
//! What this crate adds on top:
//!
//! - no directory listings and no `index.html`: a directory answers `404`;
//! - a request that asks for several ranges at once is answered with the
//!   whole file (`200`), which HTTP allows, rather than with a multipart
//!   body;
//! - a request with `If-Range` is answered with the whole file: `ServeDir`
//!   does not evaluate `If-Range`, and ignoring `Range` is always a correct
//!   answer, while sending a range of a file that has since changed is not;
//! - files are opened at request time, so a file replaced on disk is served
//!   in its new form from the next request on (nothing is cached in memory).
//!
//! `Content-Type` is guessed from the extension: `application/json` for
//! `.json`, and `application/octet-stream` for `.dpk` and anything unknown.
//! Symbolic links inside the root are followed, like most static servers
//! do; the root is the operator's own directory.
//!
//! The server runs on its own thread with a single-threaded Tokio runtime,
//! so callers need no async code. The library never prints: a caller that
//! wants a request log passes [`Server::on_request`] a callback, which
//! gets every answered request as a [`Logged`].
//!
//! ```no_run
//! use std::net::{Ipv4Addr, SocketAddr};
//! let running = deltapack_serve::Server::new("repo")
//!     .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
//! let url = running.url(); // e.g. "http://127.0.0.1:40123/"
//! # let _ = url;
//! running.shutdown();
//! # Ok::<(), deltapack_serve::Error>(())
//! ```
#![forbid(unsafe_code)]

use std::future::IntoFuture;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use tokio::sync::watch;
use tower_http::services::ServeDir;

/// How long a stop waits for requests in flight to finish before the
/// remaining connections are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How long the runtime waits for blocking file reads when it is torn down.
const RUNTIME_TEARDOWN: Duration = Duration::from_millis(500);

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory to serve does not exist.
    #[error("serve root {} does not exist", path.display())]
    RootMissing {
        /// The root as given.
        path: PathBuf,
    },
    /// The path to serve exists but is not a directory.
    #[error("serve root {} is not a directory", path.display())]
    RootNotDirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// The root could not be examined (for example, permission denied).
    #[error("cannot access serve root {}", path.display())]
    RootAccess {
        /// The root as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The listening socket could not be set up (address in use, no
    /// permission for the port, address not available...).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server's async runtime could not be built.
    #[error("cannot build the server's async runtime")]
    Runtime(#[source] io::Error),
    /// The server's thread could not be started.
    #[error("cannot start the server thread")]
    Spawn(#[source] io::Error),
    /// The server stopped because of an I/O error.
    #[error("the server failed")]
    Serve(#[source] io::Error),
    /// The server's thread panicked.
    #[error("the server thread panicked")]
    Panicked,
}

/// One answered request, as [`Server::on_request`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The method (`GET`, `HEAD`).
    pub method: String,
    /// The path asked for (without the query).
    pub path: String,
    /// The `Range` header, if the request had one.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
    /// The body's length as announced (`Content-Length`), if it was.
    pub bytes: Option<u64>,
}

/// A callback that is given every answered request.
pub type OnRequest = std::sync::Arc<dyn Fn(&Logged) + Send + Sync>;

/// A static file server for one directory, not yet listening.
///
/// Build it with [`Server::new`] and start it with [`Server::bind`].
#[derive(Clone)]
pub struct Server {
    root: PathBuf,
    on_request: Option<OnRequest>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("root", &self.root)
            .field("on_request", &self.on_request.is_some())
            .finish()
    }
}

impl Server {
    /// A server for the files under `root`. Nothing is checked until
    /// [`Server::bind`].
    pub fn new(root: impl Into<PathBuf>) -> Server {
        Server {
            root: root.into(),
            on_request: None,
        }
    }

    /// Calls `f` with every request once it is answered (a request log).
    /// It runs on the server's thread: keep it short.
    pub fn on_request(mut self, f: impl Fn(&Logged) + Send + Sync + 'static) -> Server {
        self.on_request = Some(std::sync::Arc::new(f));
        self
    }

    /// Checks the root, binds `addr` and starts serving on a background
    /// thread.
    ///
    /// Binding happens before this returns, so a port of `0` picks a free
    /// port (see [`Running::local_addr`]) and errors such as an address
    /// already in use are returned here. The root is resolved to an
    /// absolute path now, so a later change of the working directory does
    /// not move it.
    pub fn bind(self, addr: SocketAddr) -> Result<Running, Error> {
        let root = resolve_root(&self.root)?;

        let bind_error = |source| Error::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = std_listener.local_addr().map_err(bind_error)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        // Registering the socket with the runtime's reactor needs the
        // runtime's context; doing it here keeps its errors synchronous.
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_error)?
        };

        let (stop_tx, stop_rx) = watch::channel(false);
        let app = router(&root, self.on_request);
        let thread = std::thread::Builder::new()
            .name("deltapack-serve".to_owned())
            .spawn(move || {
                let result = runtime.block_on(serve(listener, app, stop_rx));
                // Connections still open after the grace period are dropped
                // with the runtime; do not wait long for blocking file reads.
                runtime.shutdown_timeout(RUNTIME_TEARDOWN);
                result.map_err(Error::Serve)
            })
            .map_err(Error::Spawn)?;

        Ok(Running {
            local_addr,
            stop: stop_tx,
            thread: Some(thread),
        })
    }
}

/// A server that is listening and serving on its background thread.
///
/// Dropping it stops the server like [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Running {
    /// The address the server listens on, with the actual port when port
    /// `0` was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of the served directory, such as
    /// `http://127.0.0.1:8080/`. When the server listens on an unspecified
    /// address (`0.0.0.0` or `::`), the URL names the loopback address of
    /// the same family, which is one that clients can connect to.
    pub fn url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// Stops the server and waits for its thread to end.
    ///
    /// The listening socket is closed at once; requests in flight get a
    /// short grace period to finish, after which their connections are cut.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Blocks until the server stops, which it does only on an error: this
    /// is for a foreground server that runs until the process is ended.
    pub fn wait(mut self) -> Result<(), Error> {
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Err(Error::Panicked)),
            None => Ok(()),
        }
    }

    fn stop_and_join(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The receiver is gone only if the thread has already ended.
            let _ = self.stop.send(true);
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Checks that `root` is an existing directory and makes it absolute.
fn resolve_root(root: &Path) -> Result<PathBuf, Error> {
    let access_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::RootMissing {
                path: root.to_owned(),
            }
        } else {
            Error::RootAccess {
                path: root.to_owned(),
                source,
            }
        }
    };
    // The typed error names the path, which is what the workspace's
    // "use fs-err" rule is for; fs-err would name it a second time.
    #[expect(
        clippy::disallowed_methods,
        reason = "the error variant names the path"
    )]
    let metadata = std::fs::metadata(root).map_err(access_error)?;
    if !metadata.is_dir() {
        return Err(Error::RootNotDirectory {
            path: root.to_owned(),
        });
    }
    std::fs::canonicalize(root).map_err(access_error)
}

/// The HTTP application: `ServeDir` for every path, with `If-Range`
/// requests turned into whole-file requests, and every answer reported to
/// `on_request`.
fn router(root: &Path, on_request: Option<OnRequest>) -> Router {
    let files = ServeDir::new(root)
        .append_index_html_on_directories(false)
        .redirect_to_trailing_slash(false)
        .ignore_multi_range_requests(true);
    let app = Router::new()
        .fallback_service(files)
        .layer(axum::middleware::map_request(ignore_range_with_if_range));
    match on_request {
        Some(f) => app.layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| {
                let f = f.clone();
                async move { log_request(request, next, &*f).await }
            },
        )),
        None => app,
    }
}

/// Answers `request` and reports it (the outermost layer, so the `Range`
/// reported is the one the client sent).
async fn log_request(
    request: Request,
    next: axum::middleware::Next,
    f: &(dyn Fn(&Logged) + Send + Sync),
) -> axum::response::Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let range = request
        .headers()
        .get(header::RANGE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let response = next.run(request).await;
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    f(&Logged {
        method,
        path,
        range,
        status: response.status().as_u16(),
        bytes,
    });
    response
}

/// Drops `Range` from a request that also carries `If-Range`.
///
/// `ServeDir` does not evaluate `If-Range`, so it would send a range of the
/// current file even when the client's copy is of an older one. Answering
/// with the whole file is always allowed (RFC 9110, section 14.2).
async fn ignore_range_with_if_range(mut request: Request) -> Request {
    if request.headers().contains_key(header::IF_RANGE) {
        request.headers_mut().remove(header::RANGE);
    }
    request
}

/// Serves until a stop is asked for, then lets requests in flight finish
/// for at most [`SHUTDOWN_GRACE`].
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut graceful_stop = stop.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // An error means the sender is gone, which is also a stop.
            let _ = graceful_stop.wait_for(|stop| *stop).await;
        })
        .into_future();
    let mut hard_stop = stop;
    let deadline = async move {
        let _ = hard_stop.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => Ok(()),
    }
}
