//! The executable and bundle installs on the real binaries: a CLI tool
//! (`examples/selfupdate.rs`) that replaces its own file while it runs and
//! rolls back; a bundle at a fixed path through `deltapack update`; and
//! `kill -9` at many points of an update of each, which must leave the
//! app's path holding exactly the old or the new version.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The example binary, built by `cargo test` with the other targets (or
/// here, when only this test target was asked for).
fn selfupdate() -> PathBuf {
    let deps = Path::new(env!("CARGO_BIN_EXE_deltapack")).parent().unwrap();
    let exe = deps.join("examples/selfupdate");
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--example", "selfupdate", "-p", "deltapack-cli"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the example");
    }
    exe
}

/// A copy of `bin` whose version marker says `version`, without its debug
/// information (a test build carries ~80 MB of it; releases ship stripped).
fn with_version(bin: &Path, version: &str, out: &Path) {
    fs_err::create_dir_all(out.parent().unwrap()).unwrap();
    let stripped = out.with_extension("stripped");
    let did = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(bin)
        .status()
        .is_ok_and(|s| s.success());
    let mut bytes = fs_err::read(if did { &stripped } else { bin }).unwrap();
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
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(out, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_cli_tool_updates_itself_and_rolls_back() {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().canonicalize().unwrap();
    let key = keygen(&work);
    let repo = work.join("repo");
    for v in ["1.0.0", "1.1.0"] {
        let build = work.join(format!("build-{v}/selfupdate"));
        with_version(&selfupdate(), v, &build);
        release(&repo, &key, v, "stable", "linux", &build);
    }
    let served = serve(&repo);
    // The user installed 1.0.0 by hand (as a download or a package would).
    let tool = work.join("bin/selfupdate");
    fs_err::create_dir_all(tool.parent().unwrap()).unwrap();
    fs_err::copy(work.join("build-1.0.0/selfupdate"), &tool).unwrap();
    let state = work.join("state");
    let run = |args: &[&str]| {
        let mut c = Command::new(&tool);
        c.args(args);
        if args[0] != "--version" {
            c.args(["--repo", &served.1, "--platform", "linux", "--pub"])
                .arg(key.with_extension("pub"))
                .arg("--state-dir")
                .arg(&state);
        }
        ok(&mut c).trim().to_owned()
    };
    assert_eq!(run(&["--version"]), "1.0.0");
    // The running 1.0.0 replaces its own file.
    assert_eq!(run(&["update"]), "updated 1.0.0 -> 1.1.0");
    assert_eq!(
        run(&["--version"]),
        "1.1.0",
        "the next run is the new version"
    );
    assert_eq!(run(&["update"]), "1.1.0 is up to date");
    let history: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["update", "history", "--json", "--executable"])
        .arg(&tool)
        .arg("--state-dir")
        .arg(&state)
        .args(["--repo", &served.1, "--platform", "linux", "--pub"])
        .arg(key.with_extension("pub"))))
    .unwrap();
    assert_eq!(
        history[0]["path"],
        serde_json::json!(["delta 1.0.0->1.1.0"])
    );
    let status: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["update", "status", "--json", "--executable"])
        .arg(&tool)
        .arg("--state-dir")
        .arg(&state)
        .args(["--repo", &served.1, "--platform", "linux", "--pub"])
        .arg(key.with_extension("pub"))))
    .unwrap();
    assert_eq!(status["kind"], "executable");
    assert_eq!(status["runs_from"], tool.display().to_string());
    assert_eq!(status["current"], "1.1.0");
    // And back.
    assert_eq!(run(&["rollback"]), "rolled back to 1.0.0");
    assert_eq!(run(&["--version"]), "1.0.0");
    assert_eq!(
        fs_err::read(&tool).unwrap(),
        fs_err::read(work.join("build-1.0.0/selfupdate")).unwrap()
    );
}

/// `deltapack update ARGS` for a location (`--bundle DIR` or
/// `--executable FILE`) with its state in `state`.
fn client(
    location: &[&std::ffi::OsStr],
    state: &Path,
    url: &str,
    key: &Path,
    args: &[&str],
) -> Command {
    let mut c = bin();
    c.arg("update")
        .args(args)
        .args(location)
        .arg("--state-dir")
        .arg(state)
        .args(["--repo", url, "--platform", "linux", "--pub"])
        .arg(key.with_extension("pub"));
    c
}

#[test]
fn a_bundle_at_a_fixed_path_installs_updates_and_rolls_back() {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().canonicalize().unwrap();
    let key = keygen(&work);
    let repo = work.join("repo");
    for (v, tree) in [("1.0.0", 1), ("1.1.0", 2)] {
        release(&repo, &key, v, "stable", "linux", &example(tree));
    }
    let served = serve(&repo);
    let app = work.join("opt/app");
    let state = work.join("state");
    let loc = ["--bundle".as_ref(), app.as_os_str()];
    let c = |args: &[&str]| client(&loc, &state, &served.1, &key, args);
    let out = ok(&mut c(&["install", "--to", "1.0.0"]));
    assert!(out.contains("installed 1.0.0 via full 1.0.0"), "{out}");
    assert_eq!(digest(&app), digest(&example(1)));
    let out = ok(&mut c(&["install"]));
    assert!(out.contains("via delta 1.0.0->1.1.0"), "{out}");
    assert_eq!(digest(&app), digest(&example(2)));
    let status: serde_json::Value =
        serde_json::from_str(&ok(&mut c(&["status", "--json"]))).unwrap();
    assert_eq!(status["kind"], "bundle");
    assert_eq!(status["runs_from"], app.display().to_string());
    assert_eq!(status["installed"], serde_json::json!(["1.0.0", "1.1.0"]));
    assert_eq!(ok(&mut c(&["rollback"])).trim(), "rolled back to 1.0.0");
    assert_eq!(digest(&app), digest(&example(1)));
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `kill -9` of `deltapack update install` for a location, at random
/// moments and whenever a journal shows: the app's path holds the old or
/// the new version, whole, after every kill; the next start recovers; a
/// retry finishes.
#[allow(clippy::print_stderr)] // the figures docs/CLIENT.md quotes
fn kill_points(kind: &str) {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().canonicalize().unwrap();
    let key = keygen(&work);
    let repo = work.join("repo");
    // Builds big enough to be killed while they are applied.
    let mut want = Vec::new();
    for (i, v) in ["1.0.0", "1.1.0"].into_iter().enumerate() {
        let mut blob = noise(7, 6 << 20);
        if i == 1 {
            for k in 0..64 {
                let at = k * 90_000;
                blob.splice(at..at, noise(k as u64 + 100, 2000));
            }
        }
        let build = work.join(format!("build{i}"));
        let input = if kind == "bundle" {
            ok(Command::new("cp").arg("-a").arg(example(1)).arg(&build));
            fs_err::write(build.join("share/blob.bin"), blob).unwrap();
            build.clone()
        } else {
            fs_err::create_dir_all(&build).unwrap();
            fs_err::write(build.join("tool"), blob).unwrap();
            build.join("tool")
        };
        want.push(digest(&input).unwrap());
        release(&repo, &key, v, "stable", "linux", &input);
    }
    let served = serve(&repo);
    let flag = if kind == "bundle" {
        "--bundle"
    } else {
        "--executable"
    };
    let app_of = |root: &Path| {
        if kind == "bundle" {
            root.join("opt/app")
        } else {
            root.join("bin/tool")
        }
    };
    let run = |root: &Path, args: &[&str]| {
        let app = app_of(root);
        let mut c = client(
            &[flag.as_ref(), app.as_os_str()],
            &root.join("state"),
            &served.1,
            &key,
            args,
        );
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let template = work.join("template");
    assert!(
        run(&template, &["install", "--to", "1.0.0"])
            .status()
            .unwrap()
            .success()
    );
    let fresh = || {
        let root = work.join("k");
        let _ = fs_err::remove_dir_all(&root);
        ok(Command::new("cp").arg("-a").arg(&template).arg(&root));
        root
    };
    let timed = fresh();
    let start = Instant::now();
    assert!(run(&timed, &["install"]).status().unwrap().success());
    let total = start.elapsed();
    assert_eq!(digest(&app_of(&timed)).as_ref(), Some(&want[1]));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let (mut old, mut new, mut in_switch) = (0, 0, 0);
    for i in 0..50 {
        let root = fresh();
        let mut child = run(&root, &["install"]).spawn().unwrap();
        if i < 40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x >> 11) as f64 / (1u64 << 53) as f64;
            std::thread::sleep(total.mul_f64(1.5 * at));
        } else {
            // Kill as soon as the journal shows: inside the switch.
            let journal = root.join("state/journal.json");
            let t0 = Instant::now();
            while !journal.exists()
                && child.try_wait().unwrap().is_none()
                && t0.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_micros(100));
            }
            in_switch += usize::from(journal.exists());
        }
        let _ = child.kill();
        let _ = child.wait();
        match digest(&app_of(&root)) {
            Some(d) if d == want[0] => old += 1,
            Some(d) if d == want[1] => new += 1,
            other => panic!("{kind}: kill {i} left {other:?} at the app's path"),
        }
        let st = run(&root, &["status"])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{kind}: kill {i}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert!(
            !root.join("state/journal.json").exists(),
            "{kind}: kill {i}"
        );
        assert!(
            run(&root, &["install"]).status().unwrap().success(),
            "{kind}: retry {i}"
        );
        assert_eq!(
            digest(&app_of(&root)).as_ref(),
            Some(&want[1]),
            "{kind}: kill {i}"
        );
        // Nothing left beside the app but what the strategy keeps.
        for e in fs_err::read_dir(app_of(&root).parent().unwrap()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(
                ["app", "tool", ".app.deltapack"].contains(&name.as_str()),
                "{kind}: kill {i} left {name}"
            );
        }
    }
    eprintln!(
        "{kind}: 50 kills over {total:?}: {old} old, {new} new, {in_switch} inside the switch"
    );
    assert!(old > 0 && new > 0, "{kind}: both sides of the switch");
    assert!(in_switch > 0, "{kind}: no kill landed inside the switch");
}

#[test]
fn kill_at_many_points_of_an_executable_update_leaves_a_whole_file() {
    kill_points("executable");
}

#[test]
fn kill_at_many_points_of_a_bundle_update_leaves_a_whole_tree() {
    kill_points("bundle");
}
