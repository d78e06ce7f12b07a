//! The client's promises on the real binary against a misbehaving loopback
//! server (`deltapack-hostile`): every delta failure ends in the full
//! bundle; nothing a bad network does sticks; a resumed `.part` cannot
//! poison the next attempt; no write follows a planted link; the URL check
//! decides on the host that is asked; a slow server cannot hold a check;
//! each cause is printed once; a corrupt state file is recoverable.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use deltapack_hostile::{Fault, Hostile, Rule};

/// A repository of `versions` (1.0.0 from example v1, then v2, v3), served
/// by a hostile server, and an install of 1.0.0 to copy for each case.
struct Fx {
    t: tempfile::TempDir,
    repo: PathBuf,
    key: PathBuf,
    server: Hostile,
    template: PathBuf,
    /// Tree digests of the versions, in order.
    digests: Vec<String>,
    /// A config file with short network timeouts.
    cfg: PathBuf,
}

const VERSIONS: [&str; 3] = ["1.0.0", "1.1.0", "1.2.0"];

fn fixture(n: usize) -> Fx {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let repo = base.join("repo");
    let key = keygen(&base);
    let mut digests = Vec::new();
    for (i, v) in VERSIONS.iter().take(n).enumerate() {
        release(&repo, &key, v, "stable", "linux", &example(i as u32 + 1));
        digests.push(digest(&example(i as u32 + 1)).unwrap());
    }
    let server = Hostile::serve(&repo).unwrap();
    let cfg = base.join("update.toml");
    for (k, v) in [
        ("retries", "2"),
        ("read_timeout_secs", "2"),
        ("check_timeout_secs", "10"),
    ] {
        ok(bin().args(["config", "set", k, v, "--config"]).arg(&cfg));
    }
    let fx = Fx {
        template: base.join("template"),
        t,
        repo,
        key,
        server,
        digests,
        cfg,
    };
    let out = fx.run(&fx.template, &["install", "--to", "1.0.0"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fx.current(&fx.template), fx.digests[0]);
    fx
}

impl Fx {
    fn base(&self) -> PathBuf {
        self.t.path().canonicalize().unwrap()
    }

    /// A fresh copy of the 1.0.0 install.
    fn fresh(&self, name: &str) -> PathBuf {
        let root = self.base().join(name);
        let _ = fs_err::remove_dir_all(&root);
        ok(Command::new("cp").arg("-a").arg(&self.template).arg(&root));
        root
    }

    fn client(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(root)
            .args(["--repo", &self.server.url(), "--platform", "linux", "--pub"])
            .arg(self.key.with_extension("pub"));
        c
    }

    /// `deltapack doctor [--fix]` on `root`.
    fn doctor(&self, root: &Path, fix: bool) -> Output {
        let mut c = bin();
        c.arg("doctor")
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(root)
            .args(["--repo", &self.server.url(), "--platform", "linux", "--pub"])
            .arg(self.key.with_extension("pub"));
        if fix {
            c.arg("--fix");
        }
        c.output().unwrap()
    }

    fn run(&self, root: &Path, args: &[&str]) -> Output {
        self.client(root, args).output().unwrap()
    }

    fn current(&self, root: &Path) -> String {
        digest(&root.join("current")).unwrap_or_default()
    }

    /// The last history entry, as JSON.
    fn last(&self, root: &Path) -> serde_json::Value {
        let out = ok(&mut self.client(root, &["history", "--json"]));
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        h.as_array().unwrap().last().unwrap().clone()
    }

    fn state(&self, root: &Path) -> serde_json::Value {
        serde_json::from_slice(&fs_err::read(root.join(".deltapack/state.json")).unwrap()).unwrap()
    }

    /// Re-signs the manifest after `edit` (the publisher's key).
    fn resign(&self, edit: impl FnOnce(&mut deltapack_manifest::Manifest, &Path)) {
        let secret = deltapack_manifest::SecretKey::from_text(
            fs_err::read_to_string(self.key.with_extension("key"))
                .unwrap()
                .trim(),
        )
        .unwrap();
        let bytes = fs_err::read(self.repo.join("manifest.json")).unwrap();
        let keys = [secret.public()];
        let mut m = deltapack_manifest::Verifier::new(&keys)
            .verify(&bytes)
            .unwrap()
            .into_manifest();
        edit(&mut m, &self.repo);
        m.sequence += 1;
        fs_err::write(
            self.repo.join("manifest.json"),
            deltapack_manifest::sign(&m, &[secret]).unwrap(),
        )
        .unwrap();
    }
}

/// The stderr of a run that must fail with exit 1.
fn failed(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_repeated_cause(&err);
    err
}

/// Each cause is printed once: no `: `-separated segment of the error
/// line is repeated, and none contains the next one whole.
fn assert_no_repeated_cause(err: &str) {
    let line = err.lines().last().unwrap_or("");
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            assert!(
                a.len() < 12 || a != b,
                "cause printed twice ({a:?}) in {line:?}"
            );
        }
    }
}

/// The delta of 1.0.0 -> 1.1.0 in the repository.
const DELTA: &str = "pkg/linux/1.1.0/from-1.0.0.dpk";

#[test]
fn every_delta_failure_ends_in_the_full_bundle() {
    let fx = fixture(2);
    assert!(
        fx.repo.join(DELTA).exists(),
        "the repository layout changed"
    );
    let cases: Vec<(&str, Fault, &str)> = vec![
        ("corrupt bytes", Fault::Corrupt, "BLAKE3"),
        ("404", Fault::Status(404), "HTTP 404"),
        ("410", Fault::Status(410), "HTTP 410"),
        ("403", Fault::Status(403), "HTTP 403"),
        ("more than declared", Fault::TooMuch, "larger than"),
        ("an HTML page", Fault::HtmlPage, "connection ended"),
        ("cut every time", Fault::DropAfter(100), "connection broken"),
        (
            "a redirect",
            Fault::Redirect(302, "http://elsewhere.example/x".into()),
            "redirects are not followed",
        ),
    ];
    for (what, fault, reason) in cases {
        let root = fx.fresh("case");
        fx.server.set(vec![Rule::always("from-1.0.0.dpk", fault)]);
        let out = fx.run(&root, &["install"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {err}");
        assert_eq!(fx.current(&root), fx.digests[1], "{what}");
        let last = fx.last(&root);
        assert_eq!(last["result"], "ok", "{what}");
        assert_eq!(last["path"], serde_json::json!(["full 1.1.0"]), "{what}");
        let note = last["note"].as_str().unwrap();
        assert!(
            note.starts_with("delta failed, used the full bundle: ") && note.contains(reason),
            "{what}: {note}"
        );
        assert!(err.contains("using the full bundle"), "{what}: {err}");
        assert_eq!(fx.state(&root)["refused"], serde_json::json!({}), "{what}");
    }
    fx.server.honest();

    // The base was changed by the user: the delta cannot apply.
    let root = fx.fresh("base");
    fs_err::write(root.join("versions/1.0.0/share/config.json"), "{}").unwrap();
    ok(&mut fx.client(&root, &["install"]));
    assert_eq!(fx.current(&root), fx.digests[1]);
    let note = fx.last(&root)["note"].as_str().unwrap().to_owned();
    assert!(note.contains("config.json"), "{note}");

    // Signed but wrong: the delta entry names another package (its header
    // says another base), and then a delta whose bytes match the manifest
    // but do not apply. Both found before or while applying, both fall back.
    let full_100 = fx.repo.join("pkg/linux/1.0.0/full.dpk");
    let mut broken = fs_err::read(fx.repo.join(DELTA)).unwrap();
    let at = broken.len() - 40;
    broken[at] ^= 0x40;
    for (what, bytes, reason) in [
        (
            "header",
            fs_err::read(&full_100).unwrap(),
            "not the package the manifest describes",
        ),
        ("apply", broken, "applying"),
    ] {
        let name = format!("pkg/linux/1.1.0/{what}.dpk");
        fs_err::write(fx.repo.join(&name), &bytes).unwrap();
        fx.resign(|m, _| {
            let v = deltapack_manifest::Version::parse("1.1.0").unwrap();
            let d = &mut m
                .release_mut(&v)
                .unwrap()
                .platforms
                .get_mut("linux")
                .unwrap()
                .deltas[0];
            d.artifact = deltapack_manifest::Artifact {
                path: name.clone(),
                size: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
            };
        });
        let root = fx.fresh(what);
        let out = fx.run(&root, &["install"]);
        assert!(out.status.success(), "{what}: {out:?}");
        assert_eq!(fx.current(&root), fx.digests[1], "{what}");
        let last = fx.last(&root);
        assert_eq!(last["path"], serde_json::json!(["full 1.1.0"]), "{what}");
        let note = last["note"].as_str().unwrap();
        assert!(note.contains(reason), "{what}: {note}");
    }

    // The full bundle fails too: only then does the update fail, with both
    // reasons recorded and the install untouched.
    let root = fx.fresh("both");
    fx.server
        .set(vec![Rule::always(".dpk", Fault::Status(404))]);
    let err = failed(&fx.run(&root, &["install"]));
    assert!(err.contains("full.dpk: HTTP 404"), "{err}");
    assert_eq!(fx.current(&root), fx.digests[0]);
    let last = fx.last(&root);
    assert_eq!(last["result"], "failed");
    let note = last["note"].as_str().unwrap();
    assert!(
        note.contains("delta failed: ") && note.contains("the full bundle failed too"),
        "{note}"
    );
    fx.server.honest();
}

#[test]
fn a_bad_mirror_never_makes_the_client_skip_the_newest_release() {
    let fx = fixture(3);
    let root = fx.fresh("mirror");
    fx.server.set(vec![Rule::always(".dpk", Fault::Corrupt)]);
    for attempt in 0..3 {
        let err = failed(&fx.run(&root, &["install"]));
        assert!(
            err.contains("does not match the manifest's BLAKE3"),
            "{attempt}: {err}"
        );
        assert_eq!(fx.current(&root), fx.digests[0]);
    }
    let st = fx.state(&root);
    assert_eq!(st["broken"], serde_json::json!({}));
    assert_eq!(st["refused"], serde_json::json!({}));
    let status = ok(&mut fx.client(&root, &["status"]));
    assert!(!status.contains("refused"), "{status}");
    fx.server.honest();
    let check = ok(&mut fx.client(&root, &["check", "--manual"]));
    assert!(check.starts_with("update 1.0.0 -> 1.2.0"), "{check}");
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(out.contains("installed 1.2.0"), "{out}");
    assert_eq!(fx.current(&root), fx.digests[2]);

    // Evidence against the release itself does count: 1.2.0's packages are
    // re-signed as 1.1.0's full bundle (bytes verify, header is not 1.2.0).
    let root = fx.fresh("broken");
    fx.resign(|m, repo| {
        let v11 = deltapack_manifest::Version::parse("1.1.0").unwrap();
        let v12 = deltapack_manifest::Version::parse("1.2.0").unwrap();
        let other = m.release(&v11).unwrap().platforms["linux"].full.clone();
        let copy = |name: &str| {
            fs_err::copy(repo.join(&other.path), repo.join(name)).unwrap();
            deltapack_manifest::Artifact {
                path: name.into(),
                ..other.clone()
            }
        };
        let full = copy("pkg/copy-full.dpk");
        let b = m
            .release_mut(&v12)
            .unwrap()
            .platforms
            .get_mut("linux")
            .unwrap();
        b.full = full;
        for (i, d) in b.deltas.iter_mut().enumerate() {
            d.artifact = copy(&format!("pkg/copy-{i}.dpk"));
        }
    });
    for _ in 0..3 {
        let err = failed(&fx.run(&root, &["install"]));
        assert!(err.contains("target version"), "{err}");
    }
    let status = ok(&mut fx.client(&root, &["status"]));
    assert!(
        status.contains("refused: 1.2.0: its verified full bundle cannot be installed")
            && status.contains("deltapack update allow 1.2.0"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client(&root, &["status", "--json"]))).unwrap();
    assert_eq!(json["refused"][0]["version"], "1.2.0");
    assert_eq!(json["refused"][0]["reason"], "broken");
    assert_eq!(
        json["refused"][0]["clear_with"],
        "deltapack update allow 1.2.0"
    );
    let out = fx.doctor(&root, false);
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.contains("[warn] refused") && out.contains("deltapack update allow 1.2.0"),
        "{out}"
    );
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(
        out.contains("installed 1.1.0"),
        "the next good version: {out}"
    );
    let out = ok(&mut fx.client(&root, &["allow", "1.2.0"]));
    assert_eq!(out.trim(), "1.2.0 will be offered again");
    let check = ok(&mut fx.client(&root, &["check"]));
    assert!(check.starts_with("update 1.1.0 -> 1.2.0"), "{check}");
}

#[test]
fn a_part_left_by_a_misbehaving_server_does_not_poison_the_next_attempt() {
    let fx = fixture(2);
    let size = fs_err::metadata(fx.repo.join(DELTA)).unwrap().len() as usize;
    let root = fx.fresh("part");
    // Bad bytes, then the connection drops: the streamed apply fails and a
    // `.part` with a wrong prefix is left; the resume continues it.
    fx.server.set(vec![Rule::times(
        "from-1.0.0.dpk",
        Fault::CorruptThenDrop(size / 2),
        1,
    )]);
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(out.contains("via delta 1.0.0->1.1.0"), "{out}");
    assert_eq!(fx.current(&root), fx.digests[1]);
    let last = fx.last(&root);
    assert!(last["note"].is_null(), "{last}");
    let delta: Vec<_> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == DELTA)
        .collect();
    // The streamed attempt, the resume from the bad prefix, the fresh
    // download from zero.
    assert_eq!(delta.len(), 3, "{delta:?}");
    assert!(
        delta[0].range.is_none() && delta[1].range.is_some(),
        "{delta:?}"
    );
    assert_eq!(delta[2].range, None);
    let st = fx.state(&root);
    assert_eq!(st["broken"], serde_json::json!({}));
}

#[test]
fn no_write_follows_a_planted_link() {
    let fx = fixture(2);
    let hash = {
        let bytes = fs_err::read(fx.repo.join(DELTA)).unwrap();
        blake3::hash(&bytes).to_hex().to_string()
    };
    let outside = fx.base().join("outside");
    let canary = outside.join("canary");
    let reset_outside = || {
        let _ = fs_err::remove_dir_all(&outside);
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(&canary, "canary").unwrap();
    };
    let part = format!(".deltapack/downloads/{hash}.part");
    let cases: Vec<(String, PathBuf)> = vec![
        (part.clone(), canary.clone()),
        (part.clone(), outside.join("created-through-a-link")),
        (".deltapack/history.jsonl".into(), canary.clone()),
        (".deltapack/lock".into(), canary.clone()),
        (".deltapack/downloads".into(), outside.clone()),
        (".deltapack/tmp".into(), outside.clone()),
        ("versions".into(), outside.clone()),
    ];
    for (at, to) in cases {
        reset_outside();
        if at == "versions" {
            // A copy of the real versions, so that `current` still resolves.
            ok(Command::new("cp")
                .arg("-a")
                .arg(fx.template.join("versions/1.0.0"))
                .arg(outside.join("1.0.0")));
        }
        let before = digest(&outside).unwrap();
        let root = fx.fresh("link");
        let planted = root.join(&at);
        if planted.is_dir() {
            fs_err::remove_dir_all(&planted).unwrap();
        } else {
            let _ = fs_err::remove_file(&planted);
        }
        fs_err::create_dir_all(planted.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&to, &planted).unwrap();
        let err = failed(&fx.run(&root, &["install"]));
        assert!(
            err.contains(&planted.display().to_string()) && err.contains("symbolic link"),
            "{at}: {err}"
        );
        assert_eq!(digest(&outside).unwrap(), before, "{at}: written through");
        assert!(!outside.join("created-through-a-link").exists(), "{at}");
        assert_eq!(fs_err::read_to_string(&canary).unwrap(), "canary", "{at}");
        assert_eq!(fx.current(&root), fx.digests[0], "{at}");
        let versions: Vec<_> = fs_err::read_dir(fx.template.join("versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(versions.len(), 1, "{at}: the template was touched");
        // Removing the link is the fix.
        fs_err::remove_file(&planted).unwrap();
        if at == "versions" {
            ok(Command::new("cp")
                .arg("-a")
                .arg(fx.template.join("versions"))
                .arg(&planted));
        }
        ok(&mut fx.client(&root, &["install"]));
        assert_eq!(fx.current(&root), fx.digests[1], "{at}: after the fix");
    }
    // The config file: saving replaces a link with a file, never writes
    // through it.
    reset_outside();
    let cfg = fx.base().join("linked.toml");
    std::os::unix::fs::symlink(&canary, &cfg).unwrap();
    let out = bin()
        .args(["config", "set", "channel", "beta", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    // The canary is not TOML: reading it fails, and nothing is written.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    fs_err::write(&canary, "channel = \"stable\"\n").unwrap();
    ok(bin()
        .args(["config", "set", "channel", "beta", "--config"])
        .arg(&cfg));
    assert_eq!(
        fs_err::read_to_string(&canary).unwrap(),
        "channel = \"stable\"\n"
    );
    assert!(
        !fs_err::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fs_err::read_to_string(&cfg).unwrap().contains("beta"));
}

#[test]
fn the_url_check_decides_on_the_host_that_is_asked() {
    let fx = fixture(1);
    fx.server.clear_log();
    let port = fx.server.addr().port();
    let root = fx.base().join("url");
    let check = |repo: &str, allow: Option<&str>| {
        let cfg = fx.base().join("url.toml");
        fs_err::write(&cfg, "").unwrap();
        if let Some(a) = allow {
            ok(bin()
                .args(["config", "set", "allow_hosts", a, "--config"])
                .arg(&cfg));
        }
        let mut c = bin();
        c.args(["update", "check", "--config"])
            .arg(&cfg)
            .arg("--install-dir")
            .arg(&root)
            .args(["--repo", repo, "--platform", "linux", "--pub"])
            .arg(fx.key.with_extension("pub"));
        c.output().unwrap()
    };
    for (repo, allow, why) in [
        (
            format!("http://evil.example?@127.0.0.1:{port}/"),
            None,
            "cannot have a query",
        ),
        (
            format!("http://evil.example?@127.0.0.1:{port}/"),
            Some("127.0.0.1"),
            "cannot have a query",
        ),
        (
            format!("http://evil.example#@127.0.0.1:{port}/"),
            Some("127.0.0.1"),
            "cannot have a query",
        ),
        (
            format!("http://127.0.0.1:{port}@evil.example/"),
            Some("127.0.0.1"),
            "credentials",
        ),
        (
            "http://evil.example/".to_owned(),
            None,
            "plain http is allowed only for loopback",
        ),
        (
            format!("http://localhost:{port}/"),
            Some("127.0.0.1"),
            "not in the allowlist",
        ),
    ] {
        let err = failed(&check(&repo, allow));
        assert!(err.contains(why), "{repo}: {err}");
    }
    assert!(
        fx.server.requests().is_empty(),
        "{:?}",
        fx.server.requests()
    );
    let out = check(&format!("http://127.0.0.1:{port}/"), Some("127.0.0.1"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fx.server.requests().len(), 1);
}

/// `update check` with default network settings against a server that
/// misbehaves on the manifest; returns the error and the time taken.
fn check_with_defaults(fault: Fault) -> (String, Duration) {
    let fx = fixture(1);
    fx.server.set(vec![Rule::always("manifest.json", fault)]);
    let root = fx.base().join("slow");
    // Default settings: an empty config file.
    fs_err::write(fx.base().join("defaults.toml"), "").unwrap();
    let start = Instant::now();
    let out = bin()
        .args(["update", "check", "--config"])
        .arg(fx.base().join("defaults.toml"))
        .arg("--install-dir")
        .arg(&root)
        .args(["--repo", &fx.server.url(), "--platform", "linux", "--pub"])
        .arg(fx.key.with_extension("pub"))
        .output()
        .unwrap();
    let took = start.elapsed();
    (failed(&out), took)
}

#[test]
fn a_dripping_server_cannot_hold_a_check_for_more_than_a_minute() {
    let (err, took) = check_with_defaults(Fault::Drip(1));
    eprintln!("drip at 1 B/s: gave up in {took:?}: {err}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        err.contains("manifest.json") && err.contains("gave up after"),
        "{err}"
    );
}

#[test]
fn a_silent_server_cannot_hold_a_check_for_more_than_a_minute() {
    let (err, took) = check_with_defaults(Fault::Silent(Duration::from_secs(300)));
    eprintln!("silent: gave up in {took:?}: {err}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        err.contains("manifest.json") && err.contains("timed out"),
        "{err}"
    );
}

#[test]
fn a_corrupt_state_file_is_recovered_without_lowering_the_replay_protection() {
    let fx = fixture(2);
    let root = fx.fresh("state");
    ok(&mut fx.client(&root, &["check"]));
    let seq = fx.state(&root)["last_sequence"].as_u64().unwrap();
    let floor = fx.state(&root)["time_floor"].as_u64().unwrap();
    let old_manifest = fs_err::read(fx.repo.join("manifest.json")).unwrap();
    // A newer manifest is accepted; the old one becomes a replay.
    fx.resign(|_, _| {});
    ok(&mut fx.client(&root, &["check"]));
    let seq = seq.max(fx.state(&root)["last_sequence"].as_u64().unwrap());
    assert!(seq > 1);
    let doctor = |fix: bool| fx.doctor(&root, fix);
    // One copy damaged: the other is used, doctor says so, updates go on.
    let state = root.join(".deltapack/state.json");
    fs_err::write(&state, "{ not json").unwrap();
    let out = doctor(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("[warn] state") && text.contains("backup"),
        "{text}"
    );
    ok(&mut fx.client(&root, &["check"]));
    // Both damaged: a typed error naming the file and the fix.
    fs_err::write(&state, "{ not json").unwrap();
    fs_err::write(root.join(".deltapack/state.backup.json"), "garbage").unwrap();
    let err = failed(&fx.run(&root, &["check"]));
    assert!(
        err.contains(".deltapack/state.json") && err.contains("deltapack doctor --fix"),
        "{err}"
    );
    let out = doctor(false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[FAIL] state"));
    // A primary that still has its numbers: the repair keeps them.
    fs_err::write(
        &state,
        format!("{{\"last_sequence\": {seq}, \"time_floor\": {floor}, \"broken\": 7"),
    )
    .unwrap();
    let out = doctor(true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("rebuilt the state: manifest sequence"),
        "{text}"
    );
    let st = fx.state(&root);
    assert_eq!(st["last_sequence"].as_u64().unwrap(), seq);
    assert!(st["time_floor"].as_u64().unwrap() >= floor, "never lowered");
    // The replay is still refused after the repair.
    let newer = fs_err::read(fx.repo.join("manifest.json")).unwrap();
    fs_err::write(fx.repo.join("manifest.json"), &old_manifest).unwrap();
    let err = failed(&fx.run(&root, &["check"]));
    assert!(err.contains("is older than the last accepted"), "{err}");
    fs_err::write(fx.repo.join("manifest.json"), newer).unwrap();
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(out.contains("installed 1.1.0"), "{out}");
}

#[test]
fn errors_print_each_cause_once() {
    let fx = fixture(1);
    let root = fx.base().join("msg");
    let other_dir = fx.base().join("other");
    fs_err::create_dir_all(&other_dir).unwrap();
    let other = keygen(&other_dir);
    // Untrusted key; nothing listening; a missing manifest.
    let mut c = bin();
    c.args(["update", "check", "--config"])
        .arg(&fx.cfg)
        .arg("--install-dir")
        .arg(&root)
        .args(["--repo", &fx.server.url(), "--platform", "linux", "--pub"])
        .arg(other.with_extension("pub"));
    let err = failed(&c.output().unwrap());
    assert!(
        err.contains("refusing the manifest at") && err.contains("untrusted keys"),
        "{err}"
    );
    assert_eq!(err.matches("untrusted keys").count(), 1, "{err}");
    let mut c = bin();
    c.args(["update", "check", "--config"])
        .arg(&fx.cfg)
        .arg("--install-dir")
        .arg(&root)
        .args([
            "--repo",
            "http://127.0.0.1:9/",
            "--platform",
            "linux",
            "--pub",
        ])
        .arg(fx.key.with_extension("pub"));
    let err = failed(&c.output().unwrap());
    assert!(err.contains("could not connect"), "{err}");
    fx.server
        .set(vec![Rule::always("manifest.json", Fault::Status(404))]);
    let err = failed(&fx.run(&root, &["check"]));
    assert!(err.contains("manifest.json: HTTP 404 Not Found"), "{err}");
}

#[test]
fn a_background_download_does_not_block_what_an_app_does_at_start() {
    let fx = fixture(2);
    let root = fx.fresh("bg");
    // A slow download (1 KiB/s: about a second and a half).
    fx.server
        .set(vec![Rule::always("from-1.0.0.dpk", Fault::Drip(1024))]);
    let mut download = fx.client(&root, &["download"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(download.try_wait().unwrap().is_none(), "still downloading");
    for args in [&["launched"][..], &["check"], &["status"], &["healthy"]] {
        let out = fx.run(&root, args);
        assert!(out.status.success(), "{args:?} while downloading: {out:?}");
    }
    assert!(download.wait().unwrap().success());
    fx.server.honest();
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(out.contains("via delta 1.0.0->1.1.0"), "{out}");
}
