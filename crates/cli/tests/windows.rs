//! Windows, run under Wine here (`.ci/run`) and natively elsewhere: the
//! versions layout started through `deltapack-launcher` (a `current` file,
//! no symlink), the executable strategy (a running `.exe` replaces
//! itself), and files in use, injected through the fs fault seam
//! (`DELTAPACK_FS_FAULTS`, since Wine does not model sharing violations).
//!
//! The launcher and the example must be built first (`.ci/run` does):
//! `cargo build --target x86_64-pc-windows-gnu -p deltapack-launcher -p deltapack-cli --examples`.
#![cfg(windows)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A program built beside `deltapack.exe` (a stripped copy preferred).
fn built(rel: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_deltapack")).parent().unwrap();
    let stripped = dir.join(rel.replace(".exe", "-stripped.exe"));
    if stripped.exists() {
        return stripped;
    }
    let p = dir.join(rel);
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build --target x86_64-pc-windows-gnu \
         -p deltapack-launcher -p deltapack-cli --examples)",
        p.display()
    );
    p
}

/// A copy of the example whose version marker says `version`.
fn app_version(version: &str, out: &Path) {
    let mut bytes = fs_err::read(built("examples/selfupdate.exe")).unwrap();
    let marker = b"DELTAPACK-EXAMPLE-VERSION:";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the version marker");
    let field = &mut bytes[at + marker.len()..at + marker.len() + 22];
    field.fill(0);
    field[..version.len()].copy_from_slice(version.as_bytes());
    fs_err::create_dir_all(out.parent().unwrap()).unwrap();
    fs_err::write(out, bytes).unwrap();
}

struct Fx {
    _t: tempfile::TempDir,
    work: PathBuf,
    repo: PathBuf,
    key: PathBuf,
}

/// A repository (a directory) of 1.0.0 and 1.1.0: trees holding `app.exe`
/// and a data file, or (`single`) the executable alone.
fn fixture(single: bool) -> Fx {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().to_owned();
    let key = keygen(&work);
    let repo = work.join("repo");
    for (i, v) in ["1.0.0", "1.1.0"].into_iter().enumerate() {
        let tree = work.join(format!("build-{v}"));
        app_version(v, &tree.join("app.exe"));
        let input = if single {
            tree.join("app.exe")
        } else {
            fs_err::write(
                tree.join("data.txt"),
                format!("data of {v}\n").repeat(100 + i),
            )
            .unwrap();
            tree
        };
        release(&repo, &key, v, "stable", "windows", &input);
    }
    Fx {
        _t: t,
        work,
        repo,
        key,
    }
}

impl Fx {
    fn update(&self, location: &[&std::ffi::OsStr], args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .args(location)
            .arg("--repo")
            .arg(&self.repo)
            .args(["--platform", "windows", "--pub"])
            .arg(self.key.with_extension("pub"));
        c
    }
}

fn run(exe: &Path, args: &[&str]) -> String {
    ok(Command::new(exe).args(args)).trim().to_owned()
}

#[test]
fn a_versions_install_is_switched_by_its_current_file_and_started_by_the_launcher() {
    let fx = fixture(false);
    let root = fx.work.join("app");
    let loc = ["--install-dir".as_ref(), root.as_os_str()];
    let out = ok(&mut fx.update(&loc, &["install", "--to", "1.0.0"]));
    assert!(out.contains("installed 1.0.0"), "{out}");
    assert_eq!(
        fs_err::read_to_string(root.join("current")).unwrap(),
        "1.0.0\n"
    );
    // The app's installer puts the launcher where shortcuts point.
    let launcher = root.join("app.exe");
    fs_err::copy(built("deltapack-launcher.exe"), &launcher).unwrap();
    assert_eq!(run(&launcher, &["--version"]), "1.0.0");

    let out = ok(&mut fx.update(&loc, &["install"]));
    assert!(out.contains("via delta 1.0.0->1.1.0"), "{out}");
    assert_eq!(
        fs_err::read_to_string(root.join("current")).unwrap(),
        "1.1.0\n"
    );
    assert_eq!(run(&launcher, &["--version"]), "1.1.0");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.update(&loc, &["status", "--json"]))).unwrap();
    assert_eq!(status["kind"], "versions");
    assert_eq!(status["current"], "1.1.0");
    assert!(
        status["runs_from"].as_str().unwrap().ends_with("1.1.0"),
        "{status}"
    );

    assert_eq!(
        ok(&mut fx.update(&loc, &["rollback"])).trim(),
        "rolled back to 1.0.0"
    );
    assert_eq!(run(&launcher, &["--version"]), "1.0.0");

    // The current file held open by a scanner, briefly: retried, then done.
    let out = ok(fx
        .update(&loc, &["install", "--to", "1.1.0"])
        .env("DELTAPACK_FS_FAULTS", "rename=current:4"));
    assert!(out.contains("installed 1.1.0"), "{out}");
    assert_eq!(run(&launcher, &["--version"]), "1.1.0");
    // Held for good: a typed error, the version before still whole.
    let (_, err) = fails(
        fx.update(&loc, &["install", "--to", "1.0.0"])
            .env("DELTAPACK_FS_FAULTS", "rename=current:1000"),
    );
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(
        fs_err::read_to_string(root.join("current")).unwrap(),
        "1.1.0\n"
    );
    assert_eq!(run(&launcher, &["--version"]), "1.1.0");
    ok(&mut fx.update(&loc, &["status"]));
    assert!(!root.join(".deltapack/journal.json").exists());
}

#[test]
fn a_running_exe_replaces_itself() {
    let fx = fixture(true);
    let tool = fx.work.join("bin/tool.exe");
    fs_err::create_dir_all(tool.parent().unwrap()).unwrap();
    fs_err::copy(fx.work.join("build-1.0.0/app.exe"), &tool).unwrap();
    let state = fx.work.join("state");
    let tool_run = |args: &[&str]| {
        let mut c = Command::new(&tool);
        c.args(args);
        if args[0] != "--version" {
            c.arg("--repo")
                .arg(&fx.repo)
                .args(["--platform", "windows", "--pub"])
                .arg(fx.key.with_extension("pub"))
                .arg("--state-dir")
                .arg(&state);
        }
        ok(&mut c).trim().to_owned()
    };
    assert_eq!(tool_run(&["--version"]), "1.0.0");
    // The running .exe is moved aside and the new one moved in.
    assert_eq!(tool_run(&["update"]), "updated 1.0.0 -> 1.1.0");
    assert_eq!(tool_run(&["--version"]), "1.1.0");
    // The next start removes the old one (no longer running).
    assert_eq!(tool_run(&["update"]), "1.1.0 is up to date");
    let left: Vec<String> = fs_err::read_dir(tool.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["tool.exe"], "the old exe was cleaned up");
    assert_eq!(tool_run(&["rollback"]), "rolled back to 1.0.0");
    assert_eq!(tool_run(&["--version"]), "1.0.0");
}

#[test]
fn a_bundle_is_switched_by_two_renames_and_rolled_back() {
    let fx = fixture(false);
    let app = fx.work.join("Programs/App");
    let state = fx.work.join("state");
    let loc = [
        "--bundle".as_ref(),
        app.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ];
    ok(&mut fx.update(&loc, &["install", "--to", "1.0.0"]));
    assert_eq!(run(&app.join("app.exe"), &["--version"]), "1.0.0");
    let out = ok(&mut fx.update(&loc, &["install"]));
    assert!(out.contains("via delta 1.0.0->1.1.0"), "{out}");
    assert_eq!(run(&app.join("app.exe"), &["--version"]), "1.1.0");
    assert!(
        fx.work
            .join("Programs/.App.deltapack/versions/1.0.0/app.exe")
            .exists(),
        "the previous tree is kept beside it"
    );
    assert_eq!(
        ok(&mut fx.update(&loc, &["rollback"])).trim(),
        "rolled back to 1.0.0"
    );
    assert_eq!(run(&app.join("app.exe"), &["--version"]), "1.0.0");
}
