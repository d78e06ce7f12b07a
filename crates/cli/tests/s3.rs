//! `deltapack publish` to a real S3-compatible server on loopback (moto's
//! `moto_server`, a separate process speaking the S3 REST protocol), and
//! clients updating from that bucket over HTTP.
//!
//! The server is `$DELTAPACK_MOTO_SERVER`, else `moto_server` on `PATH`
//! (`pip install 'moto[server]'`; `.ci/run` installs it). Without one these
//! tests say so and pass, unless `DELTAPACK_REQUIRE_S3` is set (CI sets it),
//! when a missing server fails them.
//!
//! Credentials, region and endpoint come from a profile in AWS shared
//! files written by the test (`AWS_PROFILE`, `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`), so the files are read as the AWS tools
//! read them; no `AWS_*` key is in the environment.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BUCKET: &str = "updates";
const PREFIX: &str = "app/stable";

/// Response headers, names lower-cased.
type Headers = Vec<(String, String)>;

/// A running `moto_server`; killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DELTAPACK_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

impl Moto {
    /// Starts the server with an empty bucket, or `None` (skip) if there is
    /// no server and none is required.
    fn start() -> Option<Moto> {
        let Some(bin) = moto_binary() else {
            assert!(
                std::env::var_os("DELTAPACK_REQUIRE_S3").is_none(),
                "DELTAPACK_REQUIRE_S3 is set but there is no moto_server \
                 (set DELTAPACK_MOTO_SERVER or put it on PATH)"
            );
            eprintln!("skipped: no moto_server (pip install 'moto[server]')");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let moto = Moto { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, _, _) = moto.http("PUT", &format!("/{BUCKET}"), &[], b"");
        assert_eq!(status, 200, "creating the bucket");
        // Readable by anyone, as an update bucket is; writable by anyone
        // too, only so the test can damage an object behind publish's back.
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket","s3:PutObject"],"Resource":["arn:aws:s3:::{BUCKET}","arn:aws:s3:::{BUCKET}/*"]}}]}}"#
        );
        let (status, _, body) =
            moto.http("PUT", &format!("/{BUCKET}?policy"), &[], policy.as_bytes());
        assert!(
            status == 200 || status == 204,
            "setting the bucket policy: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket's prefix as clients fetch it.
    fn repo_url(&self) -> String {
        format!("{}/{BUCKET}/{PREFIX}/", self.endpoint())
    }

    /// One unsigned HTTP/1.1 request (moto does not check signatures):
    /// status, lower-cased headers, body.
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Headers, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // A server that stops answering fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut hs = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            hs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let mut body = Vec::new();
        r.read_to_end(&mut body).unwrap();
        (status, hs, body)
    }

    /// An object's body and headers (`None`: not found).
    fn get(&self, rel: &str) -> Option<(Headers, Vec<u8>)> {
        let (status, h, b) = self.http("GET", &format!("/{BUCKET}/{PREFIX}/{rel}"), &[], b"");
        (status == 200).then_some((h, b))
    }

    /// The keys under the prefix, relative to it, sorted.
    fn list(&self) -> Vec<String> {
        let (status, _, body) = self.http(
            "GET",
            &format!("/{BUCKET}?list-type=2&prefix={PREFIX}/"),
            &[],
            b"",
        );
        assert_eq!(status, 200);
        let xml = String::from_utf8(body).unwrap();
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap())
            .map(|k| k.strip_prefix(&format!("{PREFIX}/")).unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    }
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A scratch directory with a key pair and AWS shared files naming the
/// server under the profile `ci`.
struct Site {
    _dir: tempfile::TempDir,
    base: PathBuf,
    key: PathBuf,
    repo: PathBuf,
}

impl Site {
    /// Publishing to the S3 endpoint `endpoint`.
    fn new(endpoint: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let key = keygen(&base);
        fs_err::write(
            base.join("aws-credentials"),
            "[default]\naws_access_key_id = wrong\n\n[ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        )
        .unwrap();
        fs_err::write(
            base.join("aws-config"),
            format!("[profile ci]\nregion = us-east-1\nendpoint_url = {endpoint}\n"),
        )
        .unwrap();
        Site {
            _dir: dir,
            repo: base.join("repo"),
            base,
            key,
        }
    }

    fn pubkey(&self) -> PathBuf {
        self.key.with_extension("pub")
    }

    /// `deltapack` with only the test's AWS settings.
    fn aws(&self) -> Command {
        let mut c = bin();
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env("AWS_PROFILE", "ci")
            .env("AWS_CONFIG_FILE", self.base.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.base.join("aws-credentials"),
            );
        c
    }

    fn publish(&self, extra: &[&str]) -> Command {
        let mut c = self.aws();
        c.arg("publish")
            .arg(&self.repo)
            .args(["--to", &format!("s3://{BUCKET}/{PREFIX}"), "--pub"])
            .arg(self.pubkey())
            .args(extra);
        c
    }

    fn publish_json(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&mut self.publish(&args))).unwrap()
    }

    fn client(&self, repo_url: &str, args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .args(["--repo", repo_url, "--pub"])
            .arg(self.pubkey())
            .args(["--platform", "linux", "--install-dir"])
            .arg(self.base.join("app"));
        c
    }

    fn release(&self, version: &str, tree: &Path) {
        release(&self.repo, &self.key, version, "stable", "linux", tree);
    }
}

fn paths(v: &serde_json::Value) -> Vec<&str> {
    v["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap())
        .collect()
}

#[test]
fn two_releases_published_to_s3_update_an_install_through_a_delta() {
    let Some(moto) = Moto::start() else { return };
    let site = Site::new(&moto.endpoint());
    site.release("1.0.0", &example(1));
    let v = site.publish_json(&[]);
    assert_eq!(paths(&v), ["pkg/linux/1.0.0/full.dpk", "manifest.json"]);
    assert_eq!(v["previous_sequence"], serde_json::Value::Null);
    site.release("1.1.0", &example(2));
    let v = site.publish_json(&[]);
    assert_eq!(
        paths(&v),
        [
            "pkg/linux/1.1.0/full.dpk",
            "pkg/linux/1.1.0/from-1.0.0.dpk",
            "manifest.json"
        ]
    );
    assert_eq!(
        (v["previous_sequence"].clone(), v["unchanged"].clone()),
        (1.into(), 1.into())
    );

    // The bucket holds exactly the repository, byte for byte, with the
    // caching each object needs and each artifact's BLAKE3 recorded.
    assert_eq!(
        moto.list(),
        [
            "manifest.json",
            "pkg/linux/1.0.0/full.dpk",
            "pkg/linux/1.1.0/from-1.0.0.dpk",
            "pkg/linux/1.1.0/full.dpk",
        ]
    );
    let (h, body) = moto.get("manifest.json").unwrap();
    assert_eq!(body, fs_err::read(site.repo.join("manifest.json")).unwrap());
    assert_eq!(header(&h, "cache-control"), Some("no-cache"));
    assert_eq!(header(&h, "x-amz-meta-blake3"), None);
    for rel in [
        "pkg/linux/1.0.0/full.dpk",
        "pkg/linux/1.1.0/from-1.0.0.dpk",
        "pkg/linux/1.1.0/full.dpk",
    ] {
        let (h, body) = moto.get(rel).unwrap();
        assert_eq!(body, fs_err::read(site.repo.join(rel)).unwrap(), "{rel}");
        assert_eq!(
            header(&h, "cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{rel}"
        );
        let hash = blake3::hash(&body).to_hex().to_string();
        assert_eq!(
            header(&h, "x-amz-meta-blake3"),
            Some(hash.as_str()),
            "{rel}"
        );
    }

    // A rerun uploads nothing.
    let v = site.publish_json(&[]);
    assert_eq!(paths(&v), Vec::<&str>::new());
    assert_eq!(v["unchanged"], 3);

    // Clients fetch the bucket over plain HTTP and update through the delta.
    let url = moto.repo_url();
    ok(&mut site.client(&url, &["install", "--to", "1.0.0"]));
    let out = ok(&mut site.client(&url, &["install"]));
    assert!(
        out.contains("installed 1.1.0 via delta 1.0.0->1.1.0"),
        "{out}"
    );
    assert_eq!(digest(&site.base.join("app/current")), digest(&example(2)));

    // Pulled back from the bucket into a fresh directory: what CI needs.
    let ci = site.base.join("ci");
    let v: serde_json::Value = serde_json::from_str(&ok(site
        .aws()
        .args(["repo", "pull", &format!("s3://{BUCKET}/{PREFIX}")])
        .args(["--bundles-only", "--json", "--repo"])
        .arg(&ci)
        .arg("--pub")
        .arg(site.pubkey())))
    .unwrap();
    assert_eq!(v["sequence"], 2);
    assert_eq!(
        fs_err::read(ci.join("pkg/linux/1.1.0/full.dpk")).unwrap(),
        fs_err::read(site.repo.join("pkg/linux/1.1.0/full.dpk")).unwrap()
    );
    assert!(!ci.join("pkg/linux/1.1.0/from-1.0.0.dpk").exists());

    // An object damaged in the bucket behind deltapack's back (same size,
    // the old metadata) is trusted by a plain push and repaired by
    // --rehash, which reads every object.
    let rel = "pkg/linux/1.1.0/from-1.0.0.dpk";
    let (h, mut body) = moto.get(rel).unwrap();
    let mid = body.len() / 2;
    body[mid] ^= 0xff;
    let meta = header(&h, "x-amz-meta-blake3").unwrap().to_owned();
    let (status, _, _) = moto.http(
        "PUT",
        &format!("/{BUCKET}/{PREFIX}/{rel}"),
        &[("x-amz-meta-blake3", &meta)],
        &body,
    );
    assert_eq!(status, 200);
    assert_eq!(site.publish_json(&[])["unchanged"], 3);
    let v = site.publish_json(&["--rehash"]);
    assert_eq!(paths(&v), [rel]);
    assert_eq!(v["unchanged"], 2);
    assert_eq!(
        moto.get(rel).unwrap().1,
        fs_err::read(site.repo.join(rel)).unwrap()
    );
}

/// A loopback TCP proxy to `port` that watches what clients send and,
/// before forwarding the first chunk in which `trip` appears, calls
/// `on_trip` (which kills the client) and drops the connection: that
/// request never reaches the server.
fn tripwire(port: u16, trip: &'static str, on_trip: Box<dyn Fn() + Send + Sync>) -> u16 {
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap().port();
    let on_trip: Arc<dyn Fn() + Send + Sync> = Arc::from(on_trip);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut down) = conn else { continue };
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut up_r, mut down_w) = (up.try_clone().unwrap(), down.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_r, &mut down_w);
                let _ = down_w.shutdown(std::net::Shutdown::Both);
            });
            let on_trip = on_trip.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                // The tail of the previous chunk, so a split match is seen.
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match down.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&buf[..n]);
                    if window.windows(trip.len()).any(|w| w == trip.as_bytes()) {
                        on_trip();
                        break;
                    }
                    tail = window[window.len().saturating_sub(trip.len())..].to_vec();
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = up.shutdown(std::net::Shutdown::Both);
                let _ = down.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    local
}

#[test]
fn an_s3_publish_killed_halfway_leaves_clients_on_the_old_manifest_and_a_rerun_completes_it() {
    use std::sync::{Arc, Mutex};
    let Some(moto) = Moto::start() else { return };
    // Publishing goes through a tripwire that kills the publishing
    // process (SIGKILL) when it starts to upload the delta: the full
    // bundle before it is uploaded, the delta and the manifest are not.
    let victim: Arc<Mutex<Option<Child>>> = Arc::default();
    let v2 = victim.clone();
    let proxy = tripwire(
        moto.port,
        "PUT /updates/app/stable/pkg/linux/1.1.0/from-1.0.0.dpk",
        Box::new(move || {
            if let Some(c) = v2.lock().unwrap().as_mut() {
                let _ = c.kill();
            }
        }),
    );
    let site = Site::new(&format!("http://127.0.0.1:{proxy}"));
    site.release("1.0.0", &example(1));
    ok(&mut site.publish(&[]));
    let url = moto.repo_url();
    ok(&mut site.client(&url, &["install"]));
    let old = moto.get("manifest.json").unwrap().1;
    site.release("1.1.0", &example(2));

    let child = site
        .publish(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    *victim.lock().unwrap() = Some(child);
    let status = loop {
        if let Some(s) = victim.lock().unwrap().as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "publish was not killed: {status:?}");

    // The published manifest is the old one, and clients see no update.
    assert_eq!(moto.get("manifest.json").unwrap().1, old);
    assert_eq!(
        moto.list(),
        [
            "manifest.json",
            "pkg/linux/1.0.0/full.dpk",
            "pkg/linux/1.1.0/full.dpk"
        ]
    );
    let out = ok(&mut site.client(&url, &["check"]));
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(digest(&site.base.join("app/current")), digest(&example(1)));

    // A rerun (straight to the server) uploads only what is missing, the
    // manifest last, and clients update through the delta.
    fs_err::write(
        site.base.join("aws-config"),
        format!(
            "[profile ci]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let v = site.publish_json(&[]);
    assert_eq!(v["unchanged"], 2);
    assert_eq!(
        paths(&v),
        ["pkg/linux/1.1.0/from-1.0.0.dpk", "manifest.json"]
    );
    let out = ok(&mut site.client(&url, &["install"]));
    assert!(
        out.contains("installed 1.1.0 via delta 1.0.0->1.1.0"),
        "{out}"
    );
    assert_eq!(digest(&site.base.join("app/current")), digest(&example(2)));
}

#[test]
fn a_bundle_over_the_part_size_goes_up_in_parts_with_its_headers() {
    let Some(moto) = Moto::start() else { return };
    let site = Site::new(&moto.endpoint());
    // 20 MiB that do not compress: the bundle is over two 8 MiB parts.
    let tree = site.base.join("big");
    fs_err::create_dir_all(&tree).unwrap();
    let mut bytes = Vec::with_capacity(20 << 20);
    let mut h = blake3::Hasher::new();
    h.update(b"incompressible");
    h.finalize_xof().fill({
        bytes.resize(20 << 20, 0);
        &mut bytes
    });
    fs_err::write(tree.join("blob.bin"), &bytes).unwrap();
    site.release("1.0.0", &tree);
    let rel = "pkg/linux/1.0.0/full.dpk";
    let local = fs_err::read(site.repo.join(rel)).unwrap();
    assert!(local.len() > 16 << 20, "{}", local.len());
    let v = site.publish_json(&[]);
    assert_eq!(paths(&v), [rel, "manifest.json"]);
    let (h, body) = moto.get(rel).unwrap();
    assert!(body == local, "the bucket's bundle differs");
    let hash = blake3::hash(&local).to_hex().to_string();
    assert_eq!(header(&h, "x-amz-meta-blake3"), Some(hash.as_str()));
    assert_eq!(
        header(&h, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // A multipart object's ETag is not an MD5 of its bytes ("...-N").
    assert!(
        header(&h, "etag").is_some_and(|e| e.contains('-')),
        "{:?}",
        header(&h, "etag")
    );
}
