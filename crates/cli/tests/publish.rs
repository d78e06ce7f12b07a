//! `deltapack publish` and `deltapack repo pull` on the real binary: a
//! repository published to a directory store, served from there to an
//! install that updates through a delta; a rerun uploads nothing; a dry
//! run changes nothing; JSON has the documented fields.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn a_published_repository_updates_an_install_and_a_rerun_uploads_nothing() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let repo = base.join("repo");
    let bucket = base.join("bucket");
    let url = format!("file://{}", bucket.display());
    let pubkey = key.with_extension("pub");
    release(&repo, &key, "1.0.0", "stable", "linux", &example(1));
    let publish = |extra: &[&str]| {
        let mut c = bin();
        c.arg("publish")
            .arg(&repo)
            .args(["--to", &url, "--pub"])
            .arg(&pubkey)
            .args(extra);
        c
    };
    let out = ok(&mut publish(&[]));
    assert!(out.contains("uploaded manifest.json ("), "{out}");
    assert!(
        out.contains("manifest sequence 1 (new repository); 2 files (")
            && out.ends_with("0 unchanged\n"),
        "{out}"
    );
    release(&repo, &key, "1.1.0", "stable", "linux", &example(2));
    let before = fs_err::read(bucket.join("manifest.json")).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&mut publish(&["--dry-run", "--json"]))).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["previous_sequence"], 1);
    assert_eq!(v["sequence"], 2);
    assert_eq!(v["unchanged"], 1);
    let paths: Vec<&str> = v["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "pkg/linux/1.1.0/full.dpk",
            "pkg/linux/1.1.0/from-1.0.0.dpk",
            "manifest.json"
        ]
    );
    assert_eq!(fs_err::read(bucket.join("manifest.json")).unwrap(), before);
    let out = ok(&mut publish(&[]));
    assert!(out.contains("manifest sequence 1 -> 2; 3 files"), "{out}");
    let out = ok(&mut publish(&[]));
    assert!(
        out.contains("already at manifest sequence 2; 0 files (0 B) uploaded, 3 unchanged"),
        "{out}"
    );

    // The bucket, served, updates an install through the delta.
    let served = serve(&bucket);
    let app = base.join("app");
    let client = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .args(["--repo", &served.1, "--pub"])
            .arg(&pubkey)
            .args(["--platform", "linux", "--install-dir"])
            .arg(&app);
        c
    };
    ok(&mut client(&["install", "--to", "1.0.0"]));
    let out = ok(&mut client(&["install"]));
    assert!(
        out.contains("installed 1.1.0 via delta 1.0.0->1.1.0"),
        "{out}"
    );
    assert_eq!(digest(&app.join("current")), digest(&example(2)));

    // Pulled back (bundles only): what the next release needs.
    let ci = base.join("ci");
    let v: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["repo", "pull", &url, "--bundles-only", "--json", "--repo"])
        .arg(&ci)
        .arg("--pub")
        .arg(&pubkey)))
    .unwrap();
    assert_eq!(v["sequence"], 2);
    assert_eq!(v["downloaded"].as_array().unwrap().len(), 3);
    assert!(!ci.join("pkg/linux/1.1.0/from-1.0.0.dpk").exists());
    // A remote that is ahead is refused, naming the fix.
    let stale = base.join("stale");
    fs_err::create_dir_all(&stale).unwrap();
    fs_err::write(stale.join("manifest.json"), &before).unwrap();
    let (_, err) = fails(
        bin()
            .arg("publish")
            .arg(&stale)
            .args(["--to", &url, "--pub"])
            .arg(&pubkey),
    );
    assert!(
        err.contains("is at manifest sequence 2, ahead of this directory's 1: pull it first"),
        "{err}"
    );
}
