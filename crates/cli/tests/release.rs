//! The repository commands of the real binary: keygen, release (twice, the
//! second time with a delta), repo verify (passing, then failing on a
//! tampered artifact), lifecycle verbs, key hygiene, and serve answering a
//! Range request for an artifact.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

use common::*;

/// Fixes the release date and manifest times (SOURCE_DATE_EPOCH) to now,
/// rounded, so the test can check them and the manifest is not expired.
fn epoch() -> u64 {
    deltapack_manifest::unix_now() / 1000 * 1000
}

fn bin_at(t: u64) -> Command {
    let mut c = bin();
    c.env("SOURCE_DATE_EPOCH", t.to_string());
    c
}

#[test]
fn keygen_release_verify_and_lifecycle() {
    let t0 = epoch();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let key = t.path().join("k");
    let out = ok(bin_at(t0).arg("keygen").arg("-o").arg(&key));
    let public = fs_err::read_to_string(key.with_extension("pub")).unwrap();
    assert!(out.contains(public.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(key.with_extension("key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "secret key must not be readable by others");
    }
    let (_, err) = fails(bin_at(t0).arg("keygen").arg("-o").arg(&key));
    assert!(err.contains("refusing to overwrite"), "{err}");

    let notes = t.path().join("notes.md");
    fs_err::write(&notes, "Faster.\n").unwrap();
    let release = |v: &str, tree: PathBuf| {
        let mut c = bin_at(t0);
        c.args(["release", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", v, "--channel", "stable", "--key"])
            .arg(key.with_extension("key"))
            .arg("--notes")
            .arg(&notes)
            .arg(format!("--platform=linux-x86_64={}", tree.display()));
        c
    };
    ok(&mut release("1.0.0", example(1)));
    let out = ok(&mut release("1.1.0", example(2)));
    assert!(
        out.contains("built pkg/linux-x86_64/1.1.0/from-1.0.0.dpk"),
        "{out}"
    );
    assert!(out.contains("sequence 2"), "{out}");
    let again = ok(&mut release("1.1.0", example(2)));
    assert!(!again.contains("built"), "a rerun builds nothing: {again}");

    let pubkey = key.with_extension("pub");
    let out = ok(bin_at(t0)
        .args(["repo", "verify"])
        .arg(&repo)
        .arg("--pub")
        .arg(&pubkey));
    assert!(out.starts_with("OK: 3 artifacts"), "{out}");
    let out = ok(bin_at(t0)
        .args(["repo", "verify", "--json"])
        .arg(&repo)
        .arg("--pub")
        .arg(public.trim()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["deltas_applied"], 1);

    let show = ok(bin_at(t0)
        .args(["repo", "show"])
        .arg(&repo)
        .arg("--pub")
        .arg(&pubkey));
    let m: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(m["releases"][1]["notes"], "Faster.\n");
    assert_eq!(m["issued"], t0);

    // Lifecycle verbs keep the manifest signed.
    let signed = |c: &mut Command| {
        c.arg("--repo")
            .arg(&repo)
            .arg("--key")
            .arg(key.with_extension("key"));
    };
    let mut c = bin_at(t0);
    c.args(["rollout", "--channel", "stable", "--percent", "25"]);
    signed(&mut c);
    ok(&mut c);
    let mut c = bin_at(t0);
    c.args([
        "promote",
        "1.1.0",
        "--from",
        "stable",
        "--to",
        "beta",
        "--create-channel",
    ]);
    signed(&mut c);
    ok(&mut c);
    let mut c = bin_at(t0);
    c.args(["yank", "1.1.0", "--reason", "bad build"]);
    signed(&mut c);
    let out = ok(&mut c);
    assert!(
        out.contains("built pkg/linux-x86_64/1.0.0/from-1.1.0.dpk"),
        "{out}"
    );
    let show = ok(bin_at(t0)
        .args(["repo", "show"])
        .arg(&repo)
        .arg("--pub")
        .arg(&pubkey));
    let m: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(m["releases"][1]["yanked"], "bad build");
    assert_eq!(
        m["channels"]["stable"]["releases"][1]["rollout"]["percent"],
        25
    );
    assert_eq!(m["channels"]["beta"]["releases"][0]["version"], "1.1.0");
    assert_eq!(m["sequence"], 5);
    ok(bin_at(t0)
        .args(["repo", "verify"])
        .arg(&repo)
        .arg("--pub")
        .arg(&pubkey));

    // Tamper with the delta: verify names it and exits 1.
    let delta = repo.join("pkg/linux-x86_64/1.1.0/from-1.0.0.dpk");
    let mut bytes = fs_err::read(&delta).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    fs_err::write(&delta, bytes).unwrap();
    let (out, err) = fails(
        bin_at(t0)
            .args(["repo", "verify"])
            .arg(&repo)
            .arg("--pub")
            .arg(&pubkey),
    );
    assert!(
        out.contains("pkg/linux-x86_64/1.1.0/from-1.0.0.dpk: BLAKE3 is"),
        "{out}"
    );
    assert!(err.contains("verification failed"), "{err}");

    // Wrong public key.
    let other = t.path().join("other");
    ok(bin_at(t0).arg("keygen").arg("-o").arg(&other));
    let (_, err) = fails(
        bin_at(t0)
            .args(["repo", "verify"])
            .arg(&repo)
            .arg("--pub")
            .arg(other.with_extension("pub")),
    );
    assert!(err.contains("untrusted keys"), "{err}");
}

#[test]
fn secret_keys_inside_the_repository_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    fs_err::create_dir_all(&repo).unwrap();
    ok(bin().arg("keygen").arg("-o").arg(repo.join("oops")));
    let (_, err) = fails(
        bin()
            .args(["release", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", "1.0.0", "--key"])
            .arg(repo.join("oops.key"))
            .arg(format!("--platform=p={}", example(1).display())),
    );
    assert!(err.contains("inside the repository"), "{err}");
    // From the environment, as CI secrets are handed over.
    let text = fs_err::read_to_string(repo.join("oops.key")).unwrap();
    fs_err::remove_file(repo.join("oops.key")).unwrap();
    ok(bin()
        .env("RELEASE_KEY", text)
        .args(["release", "--repo"])
        .arg(&repo)
        .args(init_flag(&repo))
        .args(["--version", "1.0.0", "--key", "env:RELEASE_KEY"])
        .arg(format!("--platform=p={}", example(1).display())));
    assert!(repo.join("manifest.json").exists());
}

#[test]
fn serve_answers_range_requests() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let key = t.path().join("k");
    ok(bin().arg("keygen").arg("-o").arg(&key));
    ok(bin()
        .args(["release", "--repo"])
        .arg(&repo)
        .args(init_flag(&repo))
        .args(["--version", "1.0.0", "--key"])
        .arg(key.with_extension("key"))
        .arg(format!("--platform=p={}", example(1).display())));
    // A host name is accepted; each request is logged on stderr.
    let mut served = serve_with(
        &repo,
        &["--addr", "localhost:0"],
        std::process::Stdio::piped(),
    );
    let url = served.1.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let full = fs_err::read(repo.join("pkg/p/1.0.0/full.dpk")).unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /pkg/p/1.0.0/full.dpk HTTP/1.1\r\nHost: x\r\nRange: bytes=10-109\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let mut log = served.0.stderr.take().unwrap();
    drop(served);
    let mut logged = String::new();
    log.read_to_string(&mut logged).unwrap();
    assert_eq!(
        logged,
        "GET /pkg/p/1.0.0/full.dpk (bytes=10-109) 206 100 B\n"
    );
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(
        head.contains(&format!("content-range: bytes 10-109/{}", full.len())),
        "{head}"
    );
    assert_eq!(&resp[split + 4..], &full[10..110]);
}

#[test]
fn release_no_exe_keeps_deltas_to_the_generic_codecs() {
    let t0 = epoch();
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("k");
    ok(bin_at(t0).arg("keygen").arg("-o").arg(&key));
    let exe = |v: u32| example(1).join(format!("../../exe/callgraph-v{v}"));
    for (flag, op) in [(None, "bsdiff-exe"), (Some("--no-exe"), "bsdiff")] {
        let repo = t.path().join(op);
        for (v, version) in [(1, "1.0.0"), (2, "1.1.0")] {
            let mut c = bin_at(t0);
            c.args(["release", "--repo"])
                .arg(&repo)
                .args(init_flag(&repo))
                .args(["--version", version, "--channel", "stable", "--key"])
                .arg(key.with_extension("key"))
                .args(flag)
                .arg(format!("--platform=linux-x86_64={}", exe(v).display()));
            ok(&mut c);
        }
        let delta = repo.join("pkg/linux-x86_64/1.1.0/from-1.0.0.dpk");
        let json = ok(bin().arg("inspect").arg("--json").arg(&delta));
        assert!(
            json.contains(&format!("\"op\": \"{op}\"")),
            "{flag:?}: {json}"
        );
    }
}
