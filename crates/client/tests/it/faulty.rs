//! A loopback HTTP server that misbehaves on demand (hand-written on
//! purpose: it must break HTTP in ways a real server never would), and the
//! client surviving each fault without installing unverified bytes.

use std::time::Duration;

use deltapack_client::{Error, Updater};
use deltapack_hostile::{Fault, Hostile, Rule};

use crate::fixture::*;

/// Sets one fault on every package request.
fn packages(f: &Hostile, fault: Fault) {
    f.set(vec![Rule::always(".dpk", fault)]);
}

/// Sets one fault on the next package request only.
fn once(f: &Hostile, fault: Fault) {
    f.set(vec![Rule::times(".dpk", fault, 1)]);
}

/// The `Range` headers the server saw.
fn ranges(f: &Hostile) -> Vec<String> {
    f.requests().into_iter().filter_map(|r| r.range).collect()
}

/// An updater of `root` against the hostile server, retrying quickly.
fn builder(f: &Hostile, root: &std::path::Path) -> deltapack_client::UpdaterBuilder {
    Updater::builder()
        .repository(f.url())
        .public_key(key().public())
        .platform(PLATFORM)
        .install_dir(root)
        .retries(3, Duration::from_millis(5))
        .now(NOW + 10)
}

fn updater(f: &Hostile, root: &std::path::Path) -> Updater {
    builder(f, root).build().unwrap()
}

#[test]
fn network_faults_never_install_unverified_bytes() {
    let r = repo(5);
    let f = Hostile::serve(r.path()).unwrap();
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
    once(&f, Fault::DropAfter(size / 3));
    u.download(&up, &|_| {}).unwrap();
    assert_eq!(ranges(&f), [format!("bytes={}-", size / 3)]);

    // 200 to a Range request: the Range was asked for, ignored, and the
    // file restarted from zero (not appended to the half on disk).
    clear();
    let part = dl.join(format!("{}.part", up.path.steps[0].artifact.blake3));
    let kept = dl.join(format!("{}.dpk", up.path.steps[0].artifact.blake3));
    fs_err::create_dir_all(&dl).unwrap();
    let bytes = fs_err::read(r.path().join(&up.path.steps[0].artifact.path)).unwrap();
    fs_err::write(&part, &bytes[..size / 2]).unwrap();
    packages(&f, Fault::IgnoreRange);
    f.clear_log();
    let d = u.download(&up, &|_| {}).unwrap();
    assert!(d.fallback().is_none());
    assert_eq!(ranges(&f), [format!("bytes={}-", size / 2)]);
    assert_eq!(fs_err::read(&kept).unwrap(), bytes);

    // A wrong Content-Range is an error, not a shifted file: the delta is
    // given up and the full bundle (nothing of it on disk, so no Range)
    // downloaded instead.
    clear();
    fs_err::create_dir_all(&dl).unwrap();
    fs_err::write(&part, &bytes[..size / 2]).unwrap();
    packages(&f, Fault::WrongRange);
    let d = u.download(&up, &|_| {}).unwrap();
    assert!(d.path().is_full());
    let why = d.fallback().unwrap();
    assert!(why.contains("server sent Content-Range"), "{why}");
    assert!(!part.exists(), "the bad part was not kept");

    // More than declared.
    clear();
    packages(&f, Fault::TooMuch);
    assert!(matches!(
        u.download(&up, &|_| {}),
        Err(Error::TooLarge { .. })
    ));

    // A reset mid-body: the retry resumes where the bytes stopped.
    clear();
    f.clear_log();
    once(&f, Fault::ResetAfter(size / 4));
    u.download(&up, &|_| {}).unwrap();
    let seen = ranges(&f);
    assert_eq!(seen.len(), 1, "one resume: {seen:?}");

    // Content-Length lies, every time. Short: each answer is a true
    // prefix of what was asked, so the client resumes until it has every
    // byte or runs out of retries. Long: the connection ends at the real
    // end. Either way, what it keeps is verified.
    for lie in [Fault::ShortLength, Fault::LongLength] {
        clear();
        packages(&f, lie.clone());
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
    packages(&f, Fault::HtmlPage);
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
    f.honest();
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

#[test]
fn streamed_apply_falls_back_to_a_resumed_download() {
    let r = repo(5);
    let f = Hostile::serve(r.path()).unwrap();
    let t = tempfile::tempdir().unwrap();
    // Streamed and uninterrupted: applied as it arrives, package kept
    // until the install.
    let root = t.path().join("a");
    install(&r, &root, "1.0.0");
    let u = updater(&f, &root);
    let up = u.check().unwrap().unwrap();
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    let kept = root.join(format!(
        ".deltapack/downloads/{}.dpk",
        up.path.steps[0].artifact.blake3
    ));
    assert_eq!(fs_err::metadata(&kept).unwrap().len(), up.download_bytes);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert!(!kept.exists(), "used, so pruned after the install");
    assert!(ranges(&f).is_empty(), "one request, no resume");
    // The connection drops mid-stream: the update resumes and completes.
    let root = t.path().join("b");
    install(&r, &root, "1.0.0");
    let u = updater(&f, &root);
    let up = u.check().unwrap().unwrap();
    once(&f, Fault::DropAfter(up.download_bytes as usize / 3));
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert_eq!(
        ranges(&f).len(),
        1,
        "the rest was fetched with a Range request"
    );
    let e = u.history().unwrap();
    assert_eq!(e.last().unwrap().result.as_str(), "ok");
}

#[test]
fn a_stalled_transfer_is_detected_and_resumed() {
    let r = repo(5);
    let f = Hostile::serve(r.path()).unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, "1.0.0");
    let u = builder(&f, &root)
        .retries(3, Duration::from_millis(5))
        .timeouts(Duration::from_secs(1), Duration::from_millis(300))
        .min_rate(1 << 20)
        .build()
        .unwrap();
    let up = u.check().unwrap().unwrap();
    once(&f, Fault::Stall(Duration::from_secs(3)));
    let start = std::time::Instant::now();
    let d = u.download(&up, &|_| {}).unwrap();
    assert_eq!(d.fallback(), None);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        ranges(&f).len(),
        1,
        "resumed after the stall: {:?}",
        f.requests()
    );
}

#[test]
fn a_package_download_budget_follows_its_declared_size() {
    let r = repo(5);
    let f = Hostile::serve(r.path()).unwrap();
    let t = tempfile::tempdir().unwrap();
    // Nothing installed: the path is the full bundle (11 KB).
    let root = t.path().join("app");
    // Grace 1 s, then at least 2 KiB/s on average.
    let u = builder(&f, &root)
        .retries(1, Duration::from_millis(5))
        .timeouts(Duration::from_secs(1), Duration::from_secs(1))
        .min_rate(2 << 10)
        .build()
        .unwrap();
    let up = u.check_version(&v("1.2.0")).unwrap();
    assert!(up.path.is_full());
    assert!(up.download_bytes > 8 << 10, "{}", up.download_bytes);
    // A slow but steady server (twice the minimum rate) is not cut off,
    // though the package takes well past the grace period.
    packages(&f, Fault::Drip(4 << 10));
    let start = std::time::Instant::now();
    u.download(&up, &|_| {}).unwrap();
    let took = start.elapsed();
    eprintln!("{} bytes at 4 KiB/s in {took:?}", up.download_bytes);
    assert!(took > Duration::from_secs(2), "{took:?}");
    // A drip far below it loses each attempt soon after the grace period.
    let _ = fs_err::remove_dir_all(root.join(".deltapack/downloads"));
    packages(&f, Fault::Drip(256));
    let start = std::time::Instant::now();
    let e = u.download(&up, &|_| {}).unwrap_err();
    let took = start.elapsed();
    eprintln!("drip at 256 B/s given up in {took:?}: {}", e.full_message());
    assert!(
        matches!(
            e,
            Error::Network {
                cause: deltapack_client::Transfer::Stalled { .. },
                attempts: 2,
                ..
            }
        ),
        "{e:?}"
    );
    // Two attempts of about 1.2 s; at the old rule (budget from the size
    // at the minimum rate) each would have lasted the whole 45 s drip.
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// One hostile behaviour for the property below.
fn hostile_rule(kind: u8, target: u8) -> Rule {
    let suffix = match target % 4 {
        0 => ".dpk",
        1 => "full.dpk",
        2 => "from-1.0.0.dpk",
        _ => "manifest.json",
    };
    let fault = match kind % 11 {
        0 => Fault::Corrupt,
        1 => Fault::Status(404),
        2 => Fault::Status(503),
        3 => Fault::TooMuch,
        4 => Fault::HtmlPage,
        5 => Fault::DropAfter(200),
        6 => Fault::ResetAfter(100),
        7 => Fault::CorruptThenDrop(300),
        8 => Fault::WrongRange,
        9 => Fault::ShortLength,
        _ => Fault::Redirect(302, "http://127.0.0.1:9/".into()),
    };
    Rule::always(suffix, fault)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever a hostile server did before, the next update against an
    /// honest one ends on the newest version: nothing a bad network does
    /// sticks (no refusal, no poisoned cache, no half-made tree).
    #[test]
    fn after_any_hostile_run_an_honest_server_gets_the_newest_version(
        runs in proptest::collection::vec(
            proptest::collection::vec((0u8..11, 0u8..4), 1..3),
            1..4,
        )
    ) {
        let r = repo(5);
        let f = Hostile::serve(r.path()).unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("app");
        install(&r, &root, "1.0.0");
        let u = builder(&f, &root)
            .retries(1, Duration::from_millis(1))
            .timeouts(Duration::from_secs(1), Duration::from_millis(500))
            .build()
            .unwrap();
        for rules in &runs {
            f.set(rules.iter().map(|&(k, t)| hostile_rule(k, t)).collect());
            let before = current_digest(&root);
            match u.update(false, &|_| {}) {
                Ok(_) => proptest::prop_assert_eq!(
                    current_digest(&root),
                    manifest_digest(&r, "1.2.0")
                ),
                // Whole: the version before, untouched.
                Err(_) => proptest::prop_assert_eq!(current_digest(&root), before),
            }
        }
        f.honest();
        let st = u.status().unwrap();
        proptest::prop_assert!(st.refused.is_empty(), "{:?}", st.refused);
        let _ = u.update(false, &|_| {}).unwrap();
        proptest::prop_assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    }
}

/// An app's own transport: files from memory, with a switch to misbehave.
#[derive(Debug)]
struct Memory {
    files: std::collections::BTreeMap<String, Vec<u8>>,
    extra: std::sync::atomic::AtomicBool,
    asked: std::sync::Mutex<Vec<String>>,
}

impl deltapack_client::Source for Memory {
    fn describe(&self, path: &str) -> String {
        format!("memory:{path}")
    }

    fn get(
        &self,
        req: &deltapack_client::Request,
    ) -> Result<deltapack_client::Response, deltapack_client::SourceError> {
        self.asked.lock().unwrap().push(req.path.clone());
        let Some(b) = self.files.get(&req.path) else {
            return Ok(deltapack_client::Response::new(
                404,
                Box::new(std::io::empty()),
            ));
        };
        let len = b.len();
        let mut b = b[req.offset as usize..].to_vec();
        if self.extra.load(std::sync::atomic::Ordering::SeqCst) && req.path.ends_with(".dpk") {
            b.extend_from_slice(b"trailing bytes the manifest never declared");
        }
        let body = Box::new(std::io::Cursor::new(b));
        Ok(if req.offset == 0 {
            deltapack_client::Response::new(200, body)
        } else {
            deltapack_client::Response::new(206, body).content_range(format!(
                "bytes {}-{}/{len}",
                req.offset,
                len - 1
            ))
        })
    }
}

#[test]
fn an_apps_own_source_is_held_to_the_same_rules() {
    let r = repo(5);
    let mut files = std::collections::BTreeMap::new();
    let base = r.path();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&base).unwrap().to_str().unwrap().to_owned();
                files.insert(rel, fs_err::read(&p).unwrap());
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, "1.0.0");
    let memory = std::sync::Arc::new(Memory {
        files,
        extra: std::sync::atomic::AtomicBool::new(true),
        asked: std::sync::Mutex::default(),
    });
    let u = Updater::builder()
        .source(memory.clone())
        .public_key(key().public())
        .platform(PLATFORM)
        .install_dir(&root)
        .retries(1, Duration::from_millis(1))
        .now(NOW + 10)
        .build()
        .unwrap();
    // More bytes than the manifest declares: refused, delta and full alike.
    let e = u.update(false, &|_| {}).unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { url, .. } if url == "memory:pkg/linux-x86_64/1.2.0/full.dpk"),
        "{e:?}"
    );
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    memory
        .extra
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert!(
        memory
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "manifest.json")
    );
}
