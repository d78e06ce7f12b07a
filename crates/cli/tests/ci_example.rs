//! The documented release workflow works: docs/examples/release-ci.sh, the
//! script every step of github-actions-release.yml runs, makes three
//! releases (packaging in two shards, as the workflow's matrix jobs do, each
//! in a fresh checkout) into a local directory standing in for the bucket;
//! the result verifies and an app updates from it. Unix only (bash).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/release-ci.sh")
}

/// One job of the workflow: a fresh working directory holding what the
/// job's checkout and downloads give it (release.pub, builds, shards).
fn job(base: &Path, name: &str, bucket: &Path, key: &Path) -> (PathBuf, Command) {
    let dir = base.join(name);
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::copy(key.with_extension("pub"), dir.join("release.pub")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deltapack")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.arg(script())
        .current_dir(&dir)
        .env("PATH", path)
        .env("BUCKET", bucket)
        .env(
            "DELTAPACK_RELEASE_KEY",
            fs_err::read_to_string(key.with_extension("key")).unwrap(),
        )
        .env_remove("INIT");
    (dir, c)
}

/// The three jobs of one tag: two package shards, then publish.
fn release(base: &Path, bucket: &Path, key: &Path, version: &str, tree: u32, init: bool) {
    let shards = base.join(format!("publish-{version}/shards"));
    for i in 0..2 {
        let (dir, mut c) = job(base, &format!("package-{version}-{i}"), bucket, key);
        fs_err::write(dir.join("CHANGELOG-latest.md"), format!("{version}\n")).unwrap();
        c.args(["package", &format!("{i}/2")])
            .env("VERSION", version)
            .env(
                "PLATFORMS",
                format!(
                    "linux={} other={}",
                    example(tree).display(),
                    example(tree).display()
                ),
            );
        if init {
            c.env("INIT", "1");
        }
        ok(&mut c);
        // The workflow uploads out/ as the shard's artifact.
        let dst = shards.join(format!("shard-{i}"));
        fs_err::create_dir_all(dst.parent().unwrap()).unwrap();
        fs_err::rename(dir.join("out"), dst).unwrap();
    }
    let (_, mut c) = job(base, &format!("publish-{version}"), bucket, key);
    c.arg("publish");
    if init {
        c.env("INIT", "1");
    }
    ok(&mut c);
}

#[test]
fn the_documented_workflow_makes_a_repository_that_verifies_and_updates() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let bucket = base.join("bucket");

    // Without INIT, an empty bucket is refused, naming the fix.
    let (_, mut c) = job(&base, "no-init", &bucket, &key);
    c.args(["package", "0/2"])
        .env("VERSION", "1.0.0")
        .env("PLATFORMS", format!("linux={}", example(1).display()));
    let (_, err) = fails(&mut c);
    assert!(err.contains("holds no manifest.json"), "{err}");
    assert!(err.contains("INIT=1"), "{err}");

    release(&base, &bucket, &key, "1.0.0", 1, true);
    release(&base, &bucket, &key, "1.1.0", 2, false);
    // The third release is the one a publish job that did not fetch the
    // earlier deltas would fail to verify.
    release(&base, &bucket, &key, "1.2.0", 3, false);
    let out = ok(bin()
        .args(["repo", "verify"])
        .arg(&bucket)
        .arg("--pub")
        .arg(key.with_extension("pub")));
    assert!(out.starts_with("OK: 12 artifacts"), "{out}");
    assert!(
        bucket.join("pkg/linux/1.2.0/from-1.0.0.dpk").exists(),
        "the third release has its deltas"
    );

    // A second --init where the repository is: refused, bucket unchanged.
    let before = fs_err::read(bucket.join("manifest.json")).unwrap();
    let (dir, mut c) = job(&base, "re-init", &bucket, &key);
    c.args(["package", "0/2"])
        .env("INIT", "1")
        .env("VERSION", "1.3.0")
        .env("PLATFORMS", format!("linux={}", example(1).display()));
    let (_, err) = fails(&mut c);
    assert!(err.contains("already an update repository"), "{err}");
    assert!(!dir.join("out").exists());
    assert_eq!(fs_err::read(bucket.join("manifest.json")).unwrap(), before);

    // The weekly refresh re-signs; an app installs 1.0.0 and updates
    // through the delta.
    let (_, mut c) = job(&base, "refresh", &bucket, &key);
    ok(c.arg("refresh"));
    let m: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["repo", "show"])
        .arg(&bucket)
        .arg("--pub")
        .arg(key.with_extension("pub"))))
    .unwrap();
    assert_eq!(m["sequence"], 4);
    let app = base.join("app");
    let client = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--repo")
            .arg(&bucket)
            .arg("--pub")
            .arg(key.with_extension("pub"))
            .args(["--platform", "linux", "--install-dir"])
            .arg(&app);
        c
    };
    ok(&mut client(&["install", "--to", "1.0.0"]));
    let out = ok(&mut client(&["install"]));
    assert!(out.contains("installed 1.2.0 via delta 1.0.0"), "{out}");
    assert_eq!(digest(&app.join("current")), digest(&example(3)));
}
