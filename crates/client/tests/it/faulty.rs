//! A loopback HTTP server that misbehaves on demand (hand-written on
//! purpose: it must break HTTP in ways a real server never would), and the
//! client surviving each fault without installing unverified bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use deltapack_client::{Error, Updater};

use crate::fixture::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Close the connection after this many body bytes (once).
    DropAfter(usize),
    /// Ignore Range and answer 200 with the whole file.
    IgnoreRange,
    /// Answer a Range request with a wrong Content-Range.
    WrongRange,
    /// Send extra bytes after the file.
    TooMuch,
    /// An HTML error page with status 200.
    HtmlPage,
    /// Send a third of the body, then hold the connection open (once).
    Stall,
    /// Send this many body bytes, then reset the connection (RST, once).
    ResetAfter(usize),
    /// Declare a Content-Length of half the file, send all of it (always).
    ShortLength,
    /// Declare a Content-Length 4 KiB over the file, send the file and
    /// close (always).
    LongLength,
}

struct Faulty {
    url: String,
    fault: Arc<Mutex<Fault>>,
    ranges: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(root: PathBuf) -> Faulty {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fault = Arc::new(Mutex::new(Fault::None));
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (f, rs, st) = (fault.clone(), ranges.clone(), stop.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(500) {
            if st.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let mut range = None;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse::<usize>().ok();
                    rs.lock().unwrap().push(h.trim().to_owned());
                }
            }
            let Ok(data) = fs_err::read(root.join(&path)) else {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let fault = if path.ends_with(".dpk") {
                *f.lock().unwrap()
            } else {
                Fault::None
            };
            let mut body: Vec<u8> = data.clone();
            let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", data.len());
            match (fault, range) {
                (Fault::HtmlPage, _) => {
                    body = b"<html>503 maintenance</html>".to_vec();
                    head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len());
                }
                (Fault::IgnoreRange, _) | (_, None) => {}
                (Fault::WrongRange, Some(from)) => {
                    body = data[from..].to_vec();
                    head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{}\r\nContent-Length: {}\r\n",
                        body.len() - 1,
                        data.len(),
                        body.len()
                    );
                }
                (_, Some(from)) => {
                    body = data[from..].to_vec();
                    head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\nContent-Length: {}\r\n",
                        data.len() - 1,
                        data.len(),
                        body.len()
                    );
                }
            }
            // The lies change only the Content-Length header.
            let lie = match fault {
                Fault::ShortLength => Some(body.len() / 2),
                Fault::LongLength => Some(body.len() + 4096),
                _ => None,
            };
            if let Some(n) = lie {
                let cut = head.find("Content-Length:").unwrap();
                head = format!("{}Content-Length: {n}\r\n", &head[..cut]);
            }
            if fault == Fault::TooMuch {
                body.extend_from_slice(&[0u8; 4096]);
                head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len());
            }
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(b"Connection: close\r\n\r\n");
            if fault == Fault::Stall {
                let _ = s.write_all(&body[..body.len() / 3]);
                *f.lock().unwrap() = Fault::None;
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(3));
                    drop(s);
                });
                continue;
            }
            if let Fault::ResetAfter(n) = fault {
                let _ = s.write_all(&body[..n.min(body.len())]);
                *f.lock().unwrap() = Fault::None;
                let sock = socket2::Socket::from(s);
                let _ = sock.set_linger(Some(std::time::Duration::ZERO));
                drop(sock);
                continue;
            }
            if let Fault::DropAfter(n) = fault {
                let _ = s.write_all(&body[..n.min(body.len())]);
                *f.lock().unwrap() = Fault::None;
                let _ = s.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let _ = s.write_all(&body);
            let mut sink = [0u8; 16];
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = s.read(&mut sink);
        }
    });
    Faulty {
        url: format!("http://{addr}/"),
        fault,
        ranges,
        stop,
        addr,
    }
}

fn updater(f: &Faulty, root: &std::path::Path) -> Updater {
    Updater::builder()
        .repository(f.url.clone())
        .public_key(key().public())
        .platform(PLATFORM)
        .install_dir(root)
        .retries(3, std::time::Duration::from_millis(5))
        .now(NOW + 10)
        .build()
        .unwrap()
}

#[test]
fn network_faults_never_install_unverified_bytes() {
    let r = repo(5);
    let f = serve(r.path());
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, "1.0.0");
    let u = updater(&f, &root);
    let up = u.check().unwrap().unwrap();
    let size = up.download_bytes as usize;
    let dl = root.join(".deltapack/downloads");
    let clear = || {
        let _ = fs_err::remove_dir_all(&dl);
    };

    // The connection drops mid-body: the retry resumes with Range.
    *f.fault.lock().unwrap() = Fault::DropAfter(size / 3);
    u.download(&up, &|_| {}).unwrap();
    assert_eq!(
        f.ranges.lock().unwrap().as_slice(),
        [format!("range: bytes={}-", size / 3)]
    );

    // 200 to a Range request: the file restarts from zero and is right.
    clear();
    *f.fault.lock().unwrap() = Fault::DropAfter(size / 2);
    let _ = u.download(&up, &|_| {});
    clear();
    let part = dl.join(format!("{}.part", up.path.steps[0].artifact.blake3));
    fs_err::create_dir_all(&dl).unwrap();
    let bytes = fs_err::read(r.path().join(&up.path.steps[0].artifact.path)).unwrap();
    fs_err::write(&part, &bytes[..size / 2]).unwrap();
    *f.fault.lock().unwrap() = Fault::IgnoreRange;
    u.download(&up, &|_| {}).unwrap();

    // A wrong Content-Range is an error, not a shifted file.
    clear();
    fs_err::create_dir_all(&dl).unwrap();
    fs_err::write(&part, &bytes[..size / 2]).unwrap();
    *f.fault.lock().unwrap() = Fault::WrongRange;
    assert!(matches!(
        u.download(&up, &|_| {}),
        Err(Error::BadRange { .. })
    ));

    // More than declared.
    clear();
    *f.fault.lock().unwrap() = Fault::TooMuch;
    assert!(matches!(
        u.download(&up, &|_| {}),
        Err(Error::TooLarge { .. })
    ));

    // A reset mid-body: the retry resumes where the bytes stopped.
    clear();
    f.ranges.lock().unwrap().clear();
    *f.fault.lock().unwrap() = Fault::ResetAfter(size / 4);
    u.download(&up, &|_| {}).unwrap();
    let ranges = f.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 1, "one resume: {ranges:?}");

    // Content-Length lies, every time. Short: each answer is a true
    // prefix of what was asked, so the client resumes until it has every
    // byte or runs out of retries. Long: the connection ends at the real
    // end. Either way, what it keeps is verified.
    for lie in [Fault::ShortLength, Fault::LongLength] {
        clear();
        *f.fault.lock().unwrap() = lie;
        match u.download(&up, &|_| {}) {
            Ok(_) => {
                let kept = dl.join(format!("{}.dpk", up.path.steps[0].artifact.blake3));
                assert_eq!(fs_err::read(kept).unwrap(), bytes, "{lie:?}");
            }
            Err(e) => assert!(matches!(e, Error::Network { .. }), "{lie:?}: {e:?}"),
        }
    }
    assert_eq!(
        current_digest(&root),
        manifest_digest(&r, "1.0.0"),
        "nothing installed"
    );

    // An HTML error page with 200: caught by the size/hash check.
    clear();
    *f.fault.lock().unwrap() = Fault::HtmlPage;
    assert!(matches!(
        u.download(&up, &|_| {}),
        Err(Error::ArtifactHash { .. } | Error::Network { .. })
    ));
    assert_eq!(
        current_digest(&root),
        manifest_digest(&r, "1.0.0"),
        "nothing installed"
    );

    // Healthy again: the update goes through.
    clear();
    *f.fault.lock().unwrap() = Fault::None;
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

#[test]
fn streamed_apply_falls_back_to_a_resumed_download() {
    let r = repo(5);
    let f = serve(r.path());
    let t = tempfile::tempdir().unwrap();
    // Streamed and uninterrupted: applied as it arrives, package kept.
    let root = t.path().join("a");
    install(&r, &root, "1.0.0");
    let u = updater(&f, &root);
    let up = u.check().unwrap().unwrap();
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    let kept = root.join(format!(
        ".deltapack/downloads/{}.dpk",
        up.path.steps[0].artifact.blake3
    ));
    assert_eq!(fs_err::metadata(&kept).unwrap().len(), up.download_bytes);
    assert!(
        f.ranges.lock().unwrap().is_empty(),
        "one request, no resume"
    );
    // The connection drops mid-stream: the update resumes and completes.
    let root = t.path().join("b");
    install(&r, &root, "1.0.0");
    let u = updater(&f, &root);
    let up = u.check().unwrap().unwrap();
    *f.fault.lock().unwrap() = Fault::DropAfter(up.download_bytes as usize / 3);
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert_eq!(
        f.ranges.lock().unwrap().len(),
        1,
        "the rest was fetched with a Range request"
    );
    let e = u.history().unwrap();
    assert_eq!(e.last().unwrap().result, "ok");
}

#[test]
fn a_stalled_transfer_is_detected_and_resumed() {
    let r = repo(5);
    let f = serve(r.path());
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, "1.0.0");
    let u = Updater::builder()
        .repository(f.url.clone())
        .public_key(key().public())
        .platform(PLATFORM)
        .install_dir(&root)
        .retries(3, std::time::Duration::from_millis(5))
        .timeouts(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(300),
        )
        .min_rate(1 << 20)
        .now(NOW + 10)
        .build()
        .unwrap();
    let up = u.check().unwrap().unwrap();
    *f.fault.lock().unwrap() = Fault::Stall;
    let start = std::time::Instant::now();
    u.download(&up, &|_| {}).unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(f.ranges.lock().unwrap().len(), 1, "resumed after the stall");
}
