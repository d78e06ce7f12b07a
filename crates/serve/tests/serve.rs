//! End-to-end tests of the file server: a real server on 127.0.0.1:0 and a
//! minimal HTTP/1.1 client written on `std::net::TcpStream`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deltapack_serve::{Error, Running, Server};

const DATA_LEN: usize = 1000;
const BIG_LEN: usize = 2 * 1024 * 1024;
const CANARY: &[u8] = b"CANARY-outside-the-root-must-never-be-served";

/// Deterministic, non-repeating-looking content.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: Vec<u8>,
    server: Running,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs_err::create_dir(&root).unwrap();
        fs_err::write(dir.path().join("secret"), CANARY).unwrap();
        let data = pattern(DATA_LEN, 1);
        fs_err::write(root.join("data.bin"), &data).unwrap();
        fs_err::write(root.join("index.json"), br#"{"versions":[]}"#).unwrap();
        fs_err::write(root.join("update.dpk"), b"DPK").unwrap();
        fs_err::write(root.join("blob.zzunknownzz"), b"?").unwrap();
        fs_err::create_dir(root.join("sub")).unwrap();
        fs_err::write(root.join("sub").join("index.html"), b"<html>").unwrap();
        fs_err::write(root.join("sub").join("inner.bin"), b"inner").unwrap();
        let server = start(&root);
        Fixture {
            _dir: dir,
            root,
            data,
            server,
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.server.local_addr(), method, path, headers)
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers)
    }
}

fn loopback0() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn start(root: &Path) -> Running {
    Server::new(root).bind(loopback0()).unwrap()
}

#[derive(Debug)]
struct Response {
    status: u16,
    /// Header names in lower case.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn content_length(&self) -> usize {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

/// Sends one request with `Connection: close` and reads the response to
/// the end of the stream. `path` goes into the request line as it is.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body,
    }
}

#[test]
fn full_get_returns_exact_bytes_and_length() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.content_length(), DATA_LEN);
    assert_eq!(res.body, f.data);
    assert_eq!(res.header("accept-ranges"), Some("bytes"));
    assert!(res.header("content-range").is_none());
}

#[test]
fn closed_range_returns_206_with_content_range() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(res.status, 206);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 10-19/{DATA_LEN}").as_str())
    );
    assert_eq!(res.content_length(), 10);
    assert_eq!(res.body, &f.data[10..20]);
    assert_eq!(res.header("accept-ranges"), Some("bytes"));
}

#[test]
fn range_past_the_end_is_clamped() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", "bytes=990-5000")]);
    assert_eq!(res.status, 206);
    let last = DATA_LEN - 1;
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 990-{last}/{DATA_LEN}").as_str())
    );
    assert_eq!(res.body, &f.data[990..]);
}

#[test]
fn open_ended_range() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", "bytes=100-")]);
    assert_eq!(res.status, 206);
    let last = DATA_LEN - 1;
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 100-{last}/{DATA_LEN}").as_str())
    );
    assert_eq!(res.content_length(), DATA_LEN - 100);
    assert_eq!(res.body, &f.data[100..]);
}

#[test]
fn suffix_range() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", "bytes=-5")]);
    assert_eq!(res.status, 206);
    let (first, last) = (DATA_LEN - 5, DATA_LEN - 1);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes {first}-{last}/{DATA_LEN}").as_str())
    );
    assert_eq!(res.content_length(), 5);
    assert_eq!(res.body, &f.data[DATA_LEN - 5..]);
}

#[test]
fn unsatisfiable_range_returns_416() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", &format!("bytes={DATA_LEN}-"))]);
    assert_eq!(res.status, 416);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes */{DATA_LEN}").as_str())
    );
    assert!(res.body.is_empty());
}

#[test]
fn multi_range_is_answered_with_the_whole_file() {
    let f = Fixture::new();
    let res = f.get("/data.bin", &[("Range", "bytes=0-1,10-19")]);
    assert_eq!(res.status, 200);
    assert!(res.header("content-range").is_none());
    assert_eq!(res.body, f.data);
}

#[test]
fn if_range_is_answered_with_the_whole_file() {
    let f = Fixture::new();
    let res = f.get(
        "/data.bin",
        &[("Range", "bytes=10-19"), ("If-Range", "\"stale-etag\"")],
    );
    assert_eq!(res.status, 200);
    assert!(res.header("content-range").is_none());
    assert_eq!(res.body, f.data);
}

#[test]
fn head_returns_length_without_body() {
    let f = Fixture::new();
    let res = f.request("HEAD", "/data.bin", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.content_length(), DATA_LEN);
    assert_eq!(res.header("accept-ranges"), Some("bytes"));
    assert!(res.body.is_empty());

    let res = f.request("HEAD", "/data.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(res.status, 206);
    assert_eq!(res.content_length(), 10);
    assert!(res.body.is_empty());
}

#[test]
fn other_methods_are_refused() {
    let f = Fixture::new();
    for method in ["POST", "PUT", "DELETE"] {
        let res = f.request(method, "/data.bin", &[("Content-Length", "0")]);
        assert_eq!(res.status, 405, "{method}");
    }
    assert_eq!(fs_err::read(f.root.join("data.bin")).unwrap(), f.data);
}

#[test]
fn missing_file_is_404() {
    let f = Fixture::new();
    assert_eq!(f.get("/nope.dpk", &[]).status, 404);
    assert_eq!(f.get("/sub/nope", &[]).status, 404);
    assert_eq!(f.get("/data.bin/below", &[]).status, 404);
}

#[test]
fn path_traversal_never_serves_outside_the_root() {
    let f = Fixture::new();
    for path in [
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/sub/../../secret",
        "/sub/%2e%2e/%2e%2e/secret",
        "/..%2fsecret",
        "/%2e%2e%2fsecret",
        "/..%5csecret",
        "//secret",
        "/./../secret",
    ] {
        let res = f.get(path, &[]);
        assert_ne!(res.status, 200, "{path}");
        assert!(
            !res.body.windows(CANARY.len()).any(|w| w == CANARY),
            "{path} leaked the canary"
        );
    }
    // Inside the root, `..` is refused as well rather than resolved.
    assert_eq!(f.get("/sub/../data.bin", &[]).status, 404);
    // Files in subdirectories are served.
    assert_eq!(f.get("/sub/inner.bin", &[]).body, b"inner");
}

#[test]
fn directories_are_404_without_listing() {
    let f = Fixture::new();
    for path in ["/", "/sub", "/sub/"] {
        let res = f.get(path, &[]);
        assert_eq!(res.status, 404, "{path}");
        assert!(res.body.is_empty(), "{path}");
        assert!(res.header("location").is_none(), "{path}");
    }
}

#[test]
fn content_types() {
    let f = Fixture::new();
    let json = f.get("/index.json", &[]);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.body, br#"{"versions":[]}"#);
    for path in ["/update.dpk", "/blob.zzunknownzz", "/data.bin"] {
        let res = f.get(path, &[]);
        assert_eq!(
            res.header("content-type"),
            Some("application/octet-stream"),
            "{path}"
        );
    }
}

#[test]
fn large_file_is_served_whole() {
    let f = Fixture::new();
    let big = pattern(BIG_LEN, 7);
    fs_err::write(f.root.join("big.dpk"), &big).unwrap();
    let res = f.get("/big.dpk", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.content_length(), BIG_LEN);
    assert!(res.body == big, "2 MiB body differs");

    let start = BIG_LEN - 100_000;
    let res = f.get("/big.dpk", &[("Range", &format!("bytes={start}-"))]);
    assert_eq!(res.status, 206);
    assert!(res.body == big[start..], "tail range differs");
}

#[test]
fn files_are_read_at_request_time() {
    let f = Fixture::new();
    assert_eq!(f.get("/late.json", &[]).status, 404);
    fs_err::write(f.root.join("late.json"), b"[1]").unwrap();
    assert_eq!(f.get("/late.json", &[]).body, b"[1]");
    fs_err::write(f.root.join("late.json"), b"[1,2]").unwrap();
    let res = f.get("/late.json", &[]);
    assert_eq!(res.body, b"[1,2]");
    assert_eq!(res.content_length(), 5);
}

#[test]
fn url_names_the_bound_port() {
    let f = Fixture::new();
    let addr = f.server.local_addr();
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0);
    assert_eq!(f.server.url(), format!("http://127.0.0.1:{}/", addr.port()));
}

/// Waits (bounded) until nothing accepts connections on `addr`.
fn assert_stops_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Err(_) => return,
            Ok(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(_) => panic!("{addr} still accepts connections"),
        }
    }
}

#[test]
fn dropping_running_stops_the_server() {
    let f = Fixture::new();
    let addr = f.server.local_addr();
    assert_eq!(f.get("/data.bin", &[]).status, 200);
    // An idle open connection must not keep the drop waiting.
    let _idle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    drop(f.server);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_stops_listening(addr);
}

#[test]
fn shutdown_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.local_addr();
    server.shutdown();
    assert_stops_listening(addr);
}

#[test]
fn root_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    match Server::new(&missing).bind(loopback0()) {
        Err(Error::RootMissing { path }) => assert_eq!(path, missing),
        other => panic!("expected RootMissing, got {other:?}"),
    }
    let file = dir.path().join("file");
    fs_err::write(&file, b"x").unwrap();
    match Server::new(&file).bind(loopback0()) {
        Err(Error::RootNotDirectory { path }) => assert_eq!(path, file),
        other => panic!("expected RootNotDirectory, got {other:?}"),
    }
}

#[test]
fn address_in_use_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind(loopback0()).unwrap();
    let addr = taken.local_addr().unwrap();
    match Server::new(dir.path()).bind(addr) {
        Err(err @ Error::Bind { .. }) => {
            let Error::Bind { addr: got, source } = &err else {
                unreachable!()
            };
            assert_eq!(*got, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            assert!(err.to_string().contains(&addr.to_string()));
            assert!(std::error::Error::source(&err).is_some());
        }
        other => panic!("expected Bind, got {other:?}"),
    }
}

#[test]
fn dropping_does_not_wait_for_stalled_clients() {
    let f = Fixture::new();
    let addr = f.server.local_addr();
    // A response far larger than the socket buffers, never read.
    let huge = vec![7u8; 64 * 1024 * 1024];
    fs_err::write(f.root.join("huge.bin"), &huge).unwrap();
    let mut reader = TcpStream::connect(addr).unwrap();
    reader
        .write_all(format!("GET /huge.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut first = [0u8; 1];
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    reader.read_exact(&mut first).unwrap();
    // A request that never finishes its headers.
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.write_all(b"GET /data.bin HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let started = Instant::now();
    drop(f.server);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    assert_stops_listening(addr);
}

#[test]
fn every_answered_request_is_reported_to_the_log_callback() {
    let f = Fixture::new();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    let server = Server::new(&f.root)
        .on_request(move |l| sink.lock().unwrap().push(l.clone()))
        .bind(loopback0())
        .unwrap();
    let addr = server.local_addr();
    assert_eq!(
        request(addr, "GET", "/data.bin", &[("Range", "bytes=0-99")]).status,
        206
    );
    assert_eq!(request(addr, "HEAD", "/index.json", &[]).status, 200);
    assert_eq!(request(addr, "GET", "/missing.dpk", &[]).status, 404);
    server.shutdown();
    let log = log.lock().unwrap();
    let short: Vec<_> = log
        .iter()
        .map(|l| {
            (
                l.method.as_str(),
                l.path.as_str(),
                l.range.as_deref(),
                l.status,
            )
        })
        .collect();
    assert_eq!(
        short,
        vec![
            ("GET", "/data.bin", Some("bytes=0-99"), 206),
            ("HEAD", "/index.json", None, 200),
            ("GET", "/missing.dpk", None, 404),
        ]
    );
    assert_eq!(log[0].bytes, Some(100));
    assert_eq!(log[1].bytes, Some(15));
}
