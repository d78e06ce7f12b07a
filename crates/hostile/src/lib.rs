//! A loopback HTTP/1.1 server for tests that misbehaves on demand.
//!
//! It is hand-written on purpose: it must break HTTP in ways a real server
//! never would (lie in `Content-Length`, answer a `Range` request with the
//! wrong `Content-Range`, drip one byte a second, reset the connection
//! mid-body, go silent). It serves the files of a directory; [`Rule`]s
//! pick which requests misbehave and how, and every request is logged.
//! Each connection is handled on its own thread, so a dripping or silent
//! answer never holds up the others.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How an answer misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An honest answer.
    None,
    /// Close the connection after this many body bytes.
    DropAfter(usize),
    /// Send this many body bytes, then reset the connection (RST).
    ResetAfter(usize),
    /// Ignore `Range` and answer 200 with the whole file.
    IgnoreRange,
    /// Answer a `Range` request with a wrong `Content-Range`.
    WrongRange,
    /// Send 4 KiB more than the file.
    TooMuch,
    /// An HTML error page with status 200.
    HtmlPage,
    /// Declare a `Content-Length` of half the body, send all of it.
    ShortLength,
    /// Declare a `Content-Length` 4 KiB over the body, send the body, close.
    LongLength,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer with this redirect status and `Location`.
    Redirect(u16, String),
    /// Flip one byte in the middle of the body (a bad CDN node).
    Corrupt,
    /// Flip a byte early in the body, send this many bytes, then close.
    CorruptThenDrop(usize),
    /// Send the body at this many bytes per second.
    Drip(u64),
    /// Send a third of the body, then hold the connection open this long.
    Stall(Duration),
    /// Accept the connection, read the request, never answer (for this long).
    Silent(Duration),
}

/// Which requests a [`Rule`] applies to: those whose path ends with
/// `suffix` (`""` matches every request, `".dpk"` every package).
#[derive(Debug, Clone)]
pub struct Rule {
    /// The path suffix.
    pub suffix: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests it applies to (`None`: all).
    pub times: Option<u32>,
}

impl Rule {
    /// A rule for every request ending in `suffix`.
    pub fn always(suffix: &str, fault: Fault) -> Rule {
        Rule {
            suffix: suffix.to_owned(),
            fault,
            times: None,
        }
    }

    /// A rule for the next `n` requests ending in `suffix`.
    pub fn times(suffix: &str, fault: Fault, n: u32) -> Rule {
        Rule {
            suffix: suffix.to_owned(),
            fault,
            times: Some(n),
        }
    }
}

/// One request seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The path, without the leading `/`.
    pub path: String,
    /// The `Range` header's value, if any (`bytes=N-`).
    pub range: Option<String>,
    /// The fault applied.
    pub fault: Fault,
}

/// A running server; stopped on drop.
pub struct Hostile {
    url: String,
    addr: SocketAddr,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hostile {
    /// Serves the files under `root` on a free loopback port.
    pub fn serve(root: impl Into<PathBuf>) -> std::io::Result<Hostile> {
        let root = root.into();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, l, st) = (rules.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = conn else { continue };
                let (root, r, l) = (root.clone(), r.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = answer(s, &root, &r, &l);
                });
            }
        });
        Ok(Hostile {
            url: format!("http://{addr}/"),
            addr,
            rules,
            log,
            stop,
        })
    }

    /// The base URL (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rules (the first matching rule with uses left wins).
    pub fn set(&self, rules: Vec<Rule>) {
        *lock(&self.rules) = rules;
    }

    /// No more faults.
    pub fn honest(&self) {
        self.set(Vec::new());
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.log).clone()
    }

    /// Forgets the requests seen.
    pub fn clear_log(&self) {
        lock(&self.log).clear();
    }
}

/// The fault for `path`, using up one of its rule's uses.
fn pick(rules: &Mutex<Vec<Rule>>, path: &str) -> Fault {
    let mut rules = lock(rules);
    for r in rules.iter_mut() {
        if !path.ends_with(&r.suffix) {
            continue;
        }
        match &mut r.times {
            Some(0) => continue,
            Some(n) => *n -= 1,
            None => {}
        }
        return r.fault.clone();
    }
    Fault::None
}

fn answer(
    mut s: TcpStream,
    root: &std::path::Path,
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<Logged>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            range = Some(v.trim().to_owned());
        }
    }
    let fault = pick(rules, &path);
    lock(log).push(Logged {
        path: path.clone(),
        range: range.clone(),
        fault: fault.clone(),
    });
    if let Fault::Silent(d) = fault {
        std::thread::sleep(d);
        return Ok(());
    }
    if let Fault::Status(code) = fault {
        return write!(
            s,
            "HTTP/1.1 {code} Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    if let Fault::Redirect(code, to) = &fault {
        return write!(
            s,
            "HTTP/1.1 {code} Moved\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    // Only plain relative paths are served.
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return write!(
            s,
            "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let Ok(data) = fs_err::read(root.join(&path)) else {
        return write!(
            s,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let from = range
        .as_deref()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
    let mut body = data.clone();
    let mut status = "200 OK".to_owned();
    let mut content_range = None;
    match (&fault, from) {
        (Fault::HtmlPage, _) => body = b"<html>503 maintenance</html>".to_vec(),
        (Fault::IgnoreRange, _) | (_, None) => {}
        (_, Some(f)) if f >= data.len() => {
            return write!(
                s,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        (Fault::WrongRange, Some(f)) => {
            body = data[f..].to_vec();
            status = "206 Partial Content".into();
            content_range = Some(format!("bytes 0-{}/{}", body.len() - 1, data.len()));
        }
        (_, Some(f)) => {
            body = data[f..].to_vec();
            status = "206 Partial Content".into();
            content_range = Some(format!("bytes {f}-{}/{}", data.len() - 1, data.len()));
        }
    }
    match fault {
        Fault::Corrupt if !body.is_empty() => {
            let mid = body.len() / 2;
            body[mid] ^= 0x55;
        }
        Fault::CorruptThenDrop(_) if body.len() > 16 => body[16] ^= 0x55,
        Fault::TooMuch => body.extend_from_slice(&[0u8; 4096]),
        _ => {}
    }
    let length = match fault {
        Fault::ShortLength => body.len() / 2,
        Fault::LongLength => body.len() + 4096,
        _ => body.len(),
    };
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\n");
    if let Some(cr) = content_range {
        head.push_str(&format!("Content-Range: {cr}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    match fault {
        Fault::DropAfter(n) | Fault::CorruptThenDrop(n) => {
            s.write_all(&body[..n.min(body.len())])?;
            s.flush()?;
            s.shutdown(std::net::Shutdown::Both)
        }
        Fault::ResetAfter(n) => {
            s.write_all(&body[..n.min(body.len())])?;
            let sock = socket2::Socket::from(s);
            sock.set_linger(Some(Duration::ZERO))?;
            drop(sock);
            Ok(())
        }
        Fault::Stall(hold) => {
            s.write_all(&body[..body.len() / 3])?;
            s.flush()?;
            std::thread::sleep(hold);
            Ok(())
        }
        Fault::Drip(rate) => {
            let rate = rate.max(1);
            let chunk = (rate / 10).max(1);
            let pause = Duration::from_millis(chunk * 1000 / rate);
            for c in body.chunks(chunk as usize) {
                s.write_all(c)?;
                s.flush()?;
                std::thread::sleep(pause);
            }
            Ok(())
        }
        _ => {
            s.write_all(&body)?;
            let _ = s.shutdown(std::net::Shutdown::Write);
            // Let the client read everything before the socket closes.
            let mut sink = [0u8; 16];
            let _ = s.read(&mut sink);
            Ok(())
        }
    }
}
