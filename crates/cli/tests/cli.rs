//! The `deltapack` binary end to end: real processes, real files, exit
//! codes and messages.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A temp dir holding `u.dpk`, the example's v1 -> v2 package.
fn example_package() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("u.dpk");
    ok(bin()
        .arg("diff")
        .arg(example(1))
        .arg(example(2))
        .arg("-o")
        .arg(&pkg));
    (t, pkg)
}

fn tree_eq(a: &Path, b: &Path) -> bool {
    Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn diff_inspect_verify_apply() {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("u.dpk");
    let out = ok(bin()
        .args(["diff", "--to-version", "1.1.0", "--from-version", "1.0.0"])
        .arg(example(1))
        .arg(example(2))
        .arg("-o")
        .arg(&pkg));
    assert!(out.contains("bytes"), "{out}");
    let text = ok(bin().arg("inspect").arg(&pkg));
    assert!(
        text.contains("bin/sample-app (bsdiff from bin/sample-app)"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(bin().arg("inspect").arg("--json").arg(&pkg))).unwrap();
    assert_eq!(json["to_version"], "1.1.0");
    assert_eq!(json["kind"], "delta");
    assert!(
        json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "share/licenses/LICENSE" && e["op"] == "copy")
    );
    let v: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["verify", "--json"])
        .arg(&pkg)
        .arg("--base")
        .arg(example(1))))
    .unwrap();
    assert_eq!(v["full"], true);
    ok(bin()
        .arg("apply")
        .arg(example(1))
        .arg(&pkg)
        .arg("-o")
        .arg(t.path().join("v2")));
    assert!(tree_eq(&t.path().join("v2"), &example(2)));
}

#[test]
fn apply_reads_stdin_and_pack_makes_full_packages() {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("full.dpk");
    ok(bin().arg("pack").arg(example(2)).arg("-o").arg(&pkg));
    let f = fs_err::File::open(&pkg).unwrap().into_file();
    let out = bin()
        .args(["apply", "-", "-o"])
        .arg(t.path().join("v2"))
        .stdin(Stdio::from(f))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree_eq(&t.path().join("v2"), &example(2)));
}

#[test]
fn errors_are_one_line_with_the_cause_and_exit_non_zero() {
    let (t, pkg) = example_package();
    // Wrong base: names the file.
    let out = run(bin()
        .arg("apply")
        .arg(example(2))
        .arg(&pkg)
        .arg("-o")
        .arg(t.path().join("x")));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("deltapack: error: applying"), "{err}");
    assert!(err.contains("does not match the package"), "{err}");
    assert!(!t.path().join("x").exists());
    // Missing package file: names the path.
    let out = run(bin().arg("inspect").arg(t.path().join("nope.dpk")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.dpk"));
    // Not a package.
    let out = run(bin()
        .arg("verify")
        .arg(example(1).join("share/config.json")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a deltapack package"));
    // A damaged package: the cause is said once.
    let mut bytes = fs_err::read(&pkg).unwrap();
    bytes[8] = 9;
    fs_err::write(t.path().join("bad.dpk"), &bytes).unwrap();
    let out = run(bin().arg("verify").arg(t.path().join("bad.dpk")));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.matches("unsupported package format version 9").count(),
        1,
        "{err}"
    );
    // Usage errors are clap's (exit 2).
    let out = run(bin().arg("diff").arg(example(1)));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let (_dir, pkg) = example_package();
    let mut child = bin()
        .arg("inspect")
        .arg(&pkg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn executables_get_the_relocating_codec_unless_told_not_to() {
    let t = tempfile::tempdir().unwrap();
    let exe = |v: u32| example(1).join(format!("../../exe/callgraph-v{v}"));
    for (flag, op) in [(None, "bsdiff-exe"), (Some("--no-exe"), "bsdiff")] {
        let pkg = t.path().join(format!("{op}.dpk"));
        let mut c = bin();
        c.arg("diff")
            .args(flag)
            .arg(exe(1))
            .arg(exe(2))
            .arg("-o")
            .arg(&pkg);
        ok(&mut c);
        let json = ok(bin().arg("inspect").arg("--json").arg(&pkg));
        assert!(json.contains(&format!("\"op\": \"{op}\"")), "{json}");
        let out = t.path().join(format!("{op}.out"));
        ok(bin().arg("apply").arg(exe(1)).arg(&pkg).arg("-o").arg(&out));
        assert_eq!(fs_err::read(&out).unwrap(), fs_err::read(exe(2)).unwrap());
    }
}

#[test]
fn keygen_writes_both_keys_whole_into_a_new_directory_and_never_overwrites() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("keys/release");
    ok(bin().arg("keygen").arg("-o").arg(&base));
    let secret = fs_err::read_to_string(base.with_extension("key")).unwrap();
    let public = fs_err::read_to_string(base.with_extension("pub")).unwrap();
    assert!(public.trim().starts_with("ed25519:"), "{public}");
    assert!(!secret.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(base.with_extension("key")), 0o600);
        assert_eq!(mode(base.with_extension("pub")), 0o644);
    }
    let (_, err) = fails(bin().arg("keygen").arg("-o").arg(&base));
    assert!(err.contains("refusing to overwrite a key"), "{err}");
    assert_eq!(
        fs_err::read_to_string(base.with_extension("key")).unwrap(),
        secret
    );
    // Nothing else was left in the directory (no temporaries).
    assert_eq!(fs_err::read_dir(t.path().join("keys")).unwrap().count(), 2);
}
