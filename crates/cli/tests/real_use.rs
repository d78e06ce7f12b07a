//! An install that is really used, on the real binary: a file the updater
//! cannot remove never blocks the next command; a version a running
//! process uses is not pruned; a switch that fails is recorded as failed.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

struct Fx {
    t: tempfile::TempDir,
    repo: PathBuf,
    key: PathBuf,
    cfg: PathBuf,
}

/// A repository of 1.0.0, 1.1.0, 1.2.0 (examples v1..v3) and an install of
/// 1.0.0 at `<t>/app` that keeps one previous version.
fn fixture() -> (Fx, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let repo = base.join("repo");
    for (i, v) in ["1.0.0", "1.1.0", "1.2.0"].into_iter().enumerate() {
        release(&repo, &key, v, "stable", "linux", &example(i as u32 + 1));
    }
    let cfg = base.join("update.toml");
    ok(bin()
        .args(["config", "set", "keep_versions", "1", "--config"])
        .arg(&cfg));
    let fx = Fx { t, repo, key, cfg };
    let root = base.join("app");
    ok(&mut fx.client(&root, &["install", "--to", "1.0.0"]));
    (fx, root)
}

impl Fx {
    fn client(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(root)
            .arg("--repo")
            .arg(&self.repo)
            .args(["--platform", "linux", "--pub"])
            .arg(self.key.with_extension("pub"));
        c
    }

    /// `deltapack doctor` on the install at `root`.
    fn doctor(&self, root: &Path) -> Command {
        let mut c = bin();
        c.arg("doctor")
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(root)
            .arg("--repo")
            .arg(&self.repo)
            .args(["--platform", "linux", "--pub"])
            .arg(self.key.with_extension("pub"));
        c
    }

    fn status(&self, root: &Path) -> serde_json::Value {
        serde_json::from_str(&ok(&mut self.client(root, &["status", "--json"]))).unwrap()
    }
}

fn versions(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs_err::read_dir(root.join("versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn a_file_the_updater_cannot_remove_never_blocks_the_next_command() {
    let (fx, root) = fixture();
    ok(&mut fx.client(&root, &["install", "--to", "1.1.0"]));
    // 1.0.0 is pruned at the next install, and cannot be deleted (a file
    // the app once wrote as another user, an immutable file: here the fs
    // fault seam makes every removal of it fail).
    let stuck = "remove=trash-1.0.0:100000,remove=.deltapack/tmp:100000";
    let out = ok(fx
        .client(&root, &["install"])
        .env("DELTAPACK_FS_FAULTS", stuck));
    assert!(out.contains("installed 1.2.0"), "{out}");
    assert_eq!(digest(&root.join("current")), digest(&example(3)));
    // Every command still works, and says what was left.
    for args in [
        &["status"][..],
        &["launched"],
        &["healthy"],
        &["check"],
        &["history"],
    ] {
        let out = fx
            .client(&root, args)
            .env("DELTAPACK_FS_FAULTS", stuck)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let out = ok(fx
        .client(&root, &["status"])
        .env("DELTAPACK_FS_FAULTS", stuck));
    assert!(
        out.contains("left behind:") && out.contains("trash-1.0.0"),
        "{out}"
    );
    let out = ok(fx.doctor(&root).env("DELTAPACK_FS_FAULTS", stuck));
    assert!(out.contains("[warn] cleanup"), "{out}");
    // Once it can be removed, the next start does.
    ok(&mut fx.client(&root, &["status"]));
    assert_eq!(fx.status(&root)["leftovers"], serde_json::json!([]));
    assert!(!root.join(".deltapack/tmp").exists());
    drop(fx.t);
}

#[test]
fn a_version_a_running_process_uses_is_not_pruned() {
    let (fx, root) = fixture();
    // A service started from 1.0.0 keeps running after the updates.
    let mut service = Command::new("sleep")
        .arg("60")
        .current_dir(root.join("versions/1.0.0"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ok(&mut fx.client(&root, &["install", "--to", "1.1.0"]));
    ok(&mut fx.client(&root, &["install"]));
    assert_eq!(
        versions(&root),
        ["1.0.0", "1.1.0", "1.2.0"],
        "1.0.0 is in use"
    );
    let st = fx.status(&root);
    assert_eq!(st["in_use"][0]["version"], "1.0.0");
    assert_eq!(st["in_use"][0]["pids"][0], service.id());
    assert!(
        fs_err::read_link(format!("/proc/{}/cwd", service.id()))
            .unwrap()
            .exists(),
        "its working directory is still there"
    );
    service.kill().unwrap();
    service.wait().unwrap();
    // Once it has stopped, the next install prunes it.
    release(&fx.repo, &fx.key, "1.3.0", "stable", "linux", &example(1));
    ok(&mut fx.client(&root, &["install"]));
    assert_eq!(versions(&root), ["1.2.0", "1.3.0"]);
    // Keeping no previous version is refused: it is the rollback target
    // and may still run.
    let (_, err) = fails(
        bin()
            .args(["config", "set", "keep_versions", "0", "--config"])
            .arg(&fx.cfg),
    );
    assert!(err.contains("at least 1"), "{err}");
}

#[test]
fn a_switch_that_fails_is_recorded_as_failed_not_as_a_kill() {
    let (fx, root) = fixture();
    let (_, err) = fails(
        fx.client(&root, &["install"])
            .env("DELTAPACK_FS_FAULTS", "rename=current:100000"),
    );
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(digest(&root.join("current")), digest(&example(1)));
    assert!(!root.join(".deltapack/journal.json").exists());
    let h: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client(&root, &["history", "--json"]))).unwrap();
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["result"], "failed");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .starts_with("the switch failed"),
        "{last}"
    );
    // The version built is reused by the next attempt.
    let out = ok(&mut fx.client(&root, &["install"]));
    assert!(out.contains("via reuse 1.2.0"), "{out}");
}

#[test]
fn a_copied_install_draws_its_own_install_id() {
    let (fx, root) = fixture();
    ok(&mut fx.client(&root, &["check"]));
    let id = fx.status(&root)["install_id"].clone();
    // A fleet cloned from one image: the copy is another install.
    let copy = root.with_file_name("copy");
    ok(Command::new("cp").arg("-a").arg(&root).arg(&copy));
    assert_eq!(fx.status(&copy)["install_id"], id, "not checked yet");
    ok(&mut fx.client(&copy, &["check"]));
    let copied = fx.status(&copy)["install_id"].clone();
    assert_ne!(copied, id);
    assert_eq!(copied.as_str().unwrap().len(), 32);
    // The original keeps its id; the copy keeps its new one.
    ok(&mut fx.client(&root, &["check"]));
    ok(&mut fx.client(&copy, &["check"]));
    assert_eq!(fx.status(&root)["install_id"], id);
    assert_eq!(fx.status(&copy)["install_id"], copied);
}

#[test]
fn local_commands_need_no_repository_and_launched_follows_the_config() {
    let (fx, root) = fixture();
    ok(bin()
        .args(["config", "set", "health_launches", "1", "--config"])
        .arg(&fx.cfg));
    ok(&mut fx.client(&root, &["install"]));
    // Only the install location: what an app's start-up has.
    let local = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&fx.cfg)
            .arg("--install-dir")
            .arg(&root);
        c
    };
    let st: serde_json::Value =
        serde_json::from_str(&ok(&mut local(&["status", "--json"]))).unwrap();
    assert_eq!(st["current"], "1.2.0");
    ok(&mut local(&["history"]));
    // health_launches = 1 from the config: the second launch rolls back.
    assert!(ok(&mut local(&["launched"])).contains("launch 1 of 1"));
    let out = ok(&mut local(&["launched"]));
    assert!(out.contains("rolled back to 1.0.0"), "{out}");
    assert_eq!(digest(&root.join("current")), digest(&example(1)));
    // A check needs the repository, and says so.
    let (_, err) = fails(&mut local(&["check"]));
    // Every missing setting is named at once.
    assert!(
        err.contains(
            "missing settings: repository (--repo); public_keys (--pub); platform (--platform); pass the flags or set them once with `deltapack config set KEY VALUE`"
        ),
        "{err}"
    );
}

#[test]
fn a_downloaded_update_installs_offline() {
    let (fx, root) = fixture();
    let served = serve(&fx.repo);
    let online = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&fx.cfg)
            .arg("--install-dir")
            .arg(&root)
            .args(["--repo", &served.1, "--platform", "linux", "--pub"])
            .arg(fx.key.with_extension("pub"));
        c
    };
    let out = ok(&mut online(&["download"]));
    assert!(out.contains("downloaded 1.2.0"), "{out}");
    let url = served.1.clone();
    drop(served);
    // The network is gone: the check fails, the downloaded update installs.
    let mut c = bin();
    c.arg("update")
        .arg("install")
        .arg("--config")
        .arg(&fx.cfg)
        .arg("--install-dir")
        .arg(&root)
        .args(["--repo", &url, "--platform", "linux", "--pub"])
        .arg(fx.key.with_extension("pub"));
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("installing the downloaded 1.2.0"), "{err}");
    assert_eq!(digest(&root.join("current")), digest(&example(3)));
    // Nothing downloaded and no network: the network's error, as it was.
    let (_, err) = fails(
        bin()
            .args(["update", "install", "--to", "1.1.0", "--config"])
            .arg(&fx.cfg)
            .arg("--install-dir")
            .arg(&root)
            .args(["--repo", &url, "--platform", "linux", "--pub"])
            .arg(fx.key.with_extension("pub")),
    );
    assert!(err.contains("could not connect"), "{err}");
}

/// `cmd` run by a user who does not own the install: as root, through
/// `setpriv` as `nobody`; otherwise as this user, with the install made
/// read-only (`chmod -R a-w`, undone by the returned guard's drop).
struct OtherUser {
    root: bool,
    locked: Vec<PathBuf>,
}

impl OtherUser {
    fn new(paths: &[&Path]) -> OtherUser {
        let uid = ok(Command::new("id").arg("-u"));
        let root = uid.trim() == "0";
        if !root {
            for p in paths {
                ok(Command::new("chmod").arg("-R").arg("a-w").arg(p));
            }
        }
        OtherUser {
            root,
            locked: paths.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    fn run(&self, cmd: &Command) -> Command {
        if !self.root {
            let mut c = Command::new(cmd.get_program());
            c.args(cmd.get_args());
            return c;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        if !self.root {
            for p in &self.locked {
                let _ = Command::new("chmod").arg("-R").arg("u+w").arg(p).status();
            }
        }
    }
}

#[test]
fn a_user_who_does_not_own_the_install_can_read_check_and_launch() {
    let (fx, root) = fixture();
    ok(&mut fx.client(&root, &["install", "--to", "1.1.0"]));
    // Everyone may read the fixture (a system-wide install in /opt).
    ok(Command::new("chmod").arg("a+rx").arg(fx.t.path()));
    let state = root.join(".deltapack/state.json");
    let before = fs_err::read(&state).unwrap();
    let other = OtherUser::new(&[&root]);
    let st: serde_json::Value =
        serde_json::from_str(&ok(&mut other.run(&fx.client(&root, &["status", "--json"]))))
            .unwrap();
    assert_eq!(st["current"], "1.1.0");
    assert_eq!(st["on_probation"]["version"], "1.1.0");
    ok(&mut other.run(&fx.client(&root, &["history"])));
    let out = ok(&mut other.run(&fx.client(&root, &["check"])));
    assert!(out.contains("1.2.0"), "{out}");
    let out = ok(&mut other.run(&fx.client(&root, &["launched"])));
    assert!(out.contains("launch not counted"), "{out}");
    // What changes the install says who can do it, and changes nothing.
    for args in [&["healthy"][..], &["install"], &["rollback"]] {
        let (_, err) = fails(&mut other.run(&fx.client(&root, args)));
        assert!(
            err.contains("cannot be written by this user"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(digest(&root.join("current")), digest(&example(2)));
    assert_eq!(fs_err::read(&state).unwrap(), before);
    let out = ok(&mut other.run(&fx.doctor(&root)));
    assert!(out.contains("[warn] access"), "{out}");
    // Once the owner ends probation, the user's calls have nothing to write.
    drop(other);
    ok(&mut fx.client(&root, &["healthy"]));
    let other = OtherUser::new(&[&root]);
    ok(&mut other.run(&fx.client(&root, &["healthy"])));
    let out = ok(&mut other.run(&fx.client(&root, &["launched"])));
    assert!(out.contains("healthy"), "{out}");
}

#[test]
fn doctor_fix_puts_back_a_current_that_is_not_the_link_it_writes() {
    use std::os::unix::fs::symlink;
    let doctor_fix = |fx: &Fx, root: &Path| ok(fx.doctor(root).arg("--fix"));
    type Break = fn(&Path);
    let cases: [(&str, Break); 5] = [
        ("absolute link", |r| {
            fs_err::remove_file(r.join("current")).unwrap();
            symlink(r.join("versions/1.1.0"), r.join("current")).unwrap();
        }),
        ("./versions/X", |r| {
            fs_err::remove_file(r.join("current")).unwrap();
            symlink("./versions/1.1.0", r.join("current")).unwrap();
        }),
        ("dangling link", |r| {
            fs_err::remove_file(r.join("current")).unwrap();
            symlink("versions/9.9.9", r.join("current")).unwrap();
        }),
        // A backup restored with `cp -rL`; the app wrote data since.
        ("restored directory", |r| {
            fs_err::remove_file(r.join("current")).unwrap();
            ok(Command::new("cp")
                .arg("-r")
                .arg(r.join("versions/1.1.0"))
                .arg(r.join("current")));
            fs_err::create_dir(r.join("current/instance")).unwrap();
            fs_err::write(r.join("current/instance/app.db"), b"user data").unwrap();
        }),
        // A directory that is no version at all.
        ("foreign directory", |r| {
            fs_err::remove_file(r.join("current")).unwrap();
            fs_err::create_dir(r.join("current")).unwrap();
            fs_err::write(r.join("current/notes.txt"), b"mine").unwrap();
        }),
    ];
    for (name, break_it) in cases {
        let (fx, root) = fixture();
        ok(&mut fx.client(&root, &["install", "--to", "1.1.0"]));
        break_it(&root);
        let (_, err) = fails(&mut fx.client(&root, &["status"]));
        assert!(err.contains("doctor --fix"), "{name}: {err}");
        let out = doctor_fix(&fx, &root);
        assert!(out.contains("repaired the install"), "{name}: {out}");
        assert_eq!(
            fs_err::read_link(root.join("current")).unwrap(),
            Path::new("versions/1.1.0"),
            "{name}"
        );
        assert_eq!(fx.status(&root)["current"], "1.1.0", "{name}");
        let aside = |pattern: &str| -> Vec<PathBuf> {
            fs_err::read_dir(&root)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(pattern))
                .collect()
        };
        // Every file the user had is still there.
        match name {
            "restored directory" => {
                // The directory the app ran from is the version now, its
                // data with it; the version's earlier copy is kept aside.
                assert_eq!(
                    fs_err::read(root.join("current/instance/app.db")).unwrap(),
                    b"user data"
                );
                let old = aside("versions-1.1.0.restored-");
                assert_eq!(old.len(), 1, "{old:?}");
                assert_eq!(digest(&old[0]), digest(&example(2)));
            }
            "foreign directory" => {
                let moved = aside("current.restored-");
                assert_eq!(moved.len(), 1, "{moved:?}");
                assert_eq!(fs_err::read(moved[0].join("notes.txt")).unwrap(), b"mine");
                assert_eq!(digest(&root.join("current")), digest(&example(2)));
            }
            _ => assert_eq!(digest(&root.join("current")), digest(&example(2)), "{name}"),
        }
        // And updates go on.
        ok(&mut fx.client(&root, &["install"]));
        assert_eq!(digest(&root.join("current")), digest(&example(3)), "{name}");
        // Nothing left to repair.
        assert!(!doctor_fix(&fx, &root).contains("repaired the install"));
    }
}

/// Permission bits of every entry under `dir`, by relative path.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs_err::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, md.permissions().mode() & 0o7777));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn modes_come_from_the_release_whatever_the_umask_or_the_base() {
    use std::os::unix::fs::PermissionsExt;
    let (fx, _) = fixture();
    let base = fx.t.path().canonicalize().unwrap();
    // The modes of a full-bundle install made under the usual umask.
    let reference = base.join("reference");
    ok(&mut fx.client(&reference, &["install", "--to", "1.1.0"]));
    let want = modes(&reference.join("versions/1.1.0"));
    assert!(!want.is_empty());
    // An install made under `umask 077`...
    let under_077 = |cmd: Command| {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 077 && exec \"$@\"", "sh"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    };
    let root = base.join("private");
    ok(&mut under_077(
        fx.client(&root, &["install", "--to", "1.0.0"]),
    ));
    for dir in ["", "versions", ".deltapack"] {
        let m = fs_err::metadata(root.join(dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o755, "{dir:?}");
    }
    let m = fs_err::metadata(root.join(".deltapack/state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(m & 0o777, 0o644);
    // A delta installed under `umask 077` gives the release's modes...
    let out = ok(&mut under_077(
        fx.client(&root, &["install", "--to", "1.1.0"]),
    ));
    assert!(out.contains("via delta"), "{out}");
    assert_eq!(modes(&root.join("versions/1.1.0")), want);
    // ...and so does an update from a base whose files a restore left
    // private (0600, directories 0700): modes are part of the release's
    // tree, so that base is not the release and the full bundle is used.
    for (rel, _) in modes(&root.join("versions/1.1.0")) {
        let p = root.join("versions/1.1.0").join(&rel);
        let private = if p.is_dir() { 0o700 } else { 0o600 };
        fs_err::set_permissions(&p, std::fs::Permissions::from_mode(private)).unwrap();
    }
    let want = modes(&reference.join("versions/1.1.0"));
    ok(&mut fx.client(&reference, &["install", "--to", "1.2.0"]));
    let want3 = modes(&reference.join("versions/1.2.0"));
    let out = ok(&mut under_077(
        fx.client(&root, &["install", "--to", "1.2.0"]),
    ));
    assert!(out.contains("used the full bundle"), "{out}");
    assert_eq!(modes(&root.join("versions/1.2.0")), want3);
    assert_ne!(
        modes(&root.join("versions/1.1.0")),
        want,
        "the base was private"
    );
    assert_eq!(digest(&root.join("current")), digest(&example(3)));
}

/// Version `v` of a small Python app that keeps a SQLite database in
/// `instance/` and a log in `logs/` next to its code, as the Flask
/// tutorial does, and imports a module (so Python writes `__pycache__`).
fn python_app(dir: &Path, v: u32) -> PathBuf {
    let root = dir.join(format!("pyapp-v{v}"));
    fs_err::create_dir_all(&root).unwrap();
    fs_err::write(
        root.join("helper.py"),
        format!("VERSION = '1.{}.0'\n", v - 1),
    )
    .unwrap();
    fs_err::write(
        root.join("app.py"),
        r#"import os, sqlite3, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helper
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, "instance"), exist_ok=True)
os.makedirs(os.path.join(here, "logs"), exist_ok=True)
db = sqlite3.connect(os.path.join(here, "instance", "app.db"))
db.execute("create table if not exists runs (version text)")
db.execute("insert into runs values (?)", (helper.VERSION,))
db.commit()
n = db.execute("select count(*) from runs").fetchone()[0]
with open(os.path.join(here, "logs", "app.log"), "a") as log:
    log.write(f"run {n} on {helper.VERSION}\n")
print(n)
"#,
    )
    .unwrap();
    root
}

#[test]
fn app_data_carries_over_when_the_release_says_so_and_is_never_lost_unlisted() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let repo = base.join("repo");
    for (v, version, carry) in [
        (1, "1.0.0", &[][..]),
        (2, "1.1.0", &["instance", "logs"][..]),
        (3, "1.2.0", &["instance"][..]),
    ] {
        let mut c = bin();
        c.args(["release", "--level", "3", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", version, "--channel", "stable", "--key"])
            .arg(key.with_extension("key"))
            .arg(format!(
                "--platform=linux={}",
                python_app(&base, v).display()
            ));
        for p in carry {
            c.args(["--carry", p]);
        }
        ok(&mut c);
    }
    let cfg = base.join("update.toml");
    ok(bin()
        .args(["config", "set", "keep_versions", "1", "--config"])
        .arg(&cfg));
    let root = base.join("app");
    let client = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .arg("--install-dir")
            .arg(&root)
            .arg("--repo")
            .arg(&repo)
            .args(["--platform", "linux", "--pub"])
            .arg(key.with_extension("pub"));
        c
    };
    let run_app = || -> String {
        // As users run it: Python writes its bytecode beside the modules.
        let out = ok(Command::new("python3")
            .arg(root.join("current/app.py"))
            .env_remove("PYTHONDONTWRITEBYTECODE"));
        out.trim().to_owned()
    };
    ok(&mut client(&["install", "--to", "1.0.0"]));
    assert_eq!(run_app(), "1");
    // The data is named before any update: status and doctor.
    let st: serde_json::Value =
        serde_json::from_str(&ok(&mut client(&["status", "--json"]))).unwrap();
    let unknown = &st["unknown_files"][0];
    assert_eq!(unknown["version"], "1.0.0");
    let paths: Vec<&str> = unknown["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(paths.contains(&"instance/app.db"), "{paths:?}");
    assert!(paths.contains(&"logs/app.log"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("__pycache__/helper")),
        "{paths:?}"
    );
    let mut doctor = bin();
    doctor
        .args(["doctor", "--config"])
        .arg(&cfg)
        .arg("--install-dir")
        .arg(&root)
        .arg("--repo")
        .arg(&repo)
        .args(["--platform", "linux", "--pub"])
        .arg(key.with_extension("pub"));
    let out = ok(&mut doctor);
    assert!(
        out.contains("[warn] data") && out.contains("instance/app.db"),
        "{out}"
    );

    // 1.1.0 carries instance/ and logs/: the database goes on, through a
    // delta (the files Python and the app added are not the base).
    let out = ok(&mut client(&["install", "--to", "1.1.0"]));
    assert!(out.contains("installed 1.1.0 via delta"), "{out}");
    assert!(out.contains("carried 2 data files"), "{out}");
    assert!(
        out.contains("left in 1.0.0: 1 files not from the release: __pycache__/helper"),
        "{out}"
    );
    assert_eq!(run_app(), "2");
    let h: serde_json::Value =
        serde_json::from_str(&ok(&mut client(&["history", "--json"]))).unwrap();
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["carried"], 2);
    assert_eq!(last["unknown"]["count"], 1);

    // 1.2.0 carries only instance/: the log stays in 1.1.0, said so; 1.0.0
    // is pruned, and the history names what it held.
    let out = ok(&mut client(&["install"]));
    assert!(
        out.contains("left in 1.1.0") && out.contains("logs/app.log"),
        "{out}"
    );
    assert_eq!(run_app(), "3");
    assert!(!root.join("versions/1.0.0").exists());
    let h: serde_json::Value =
        serde_json::from_str(&ok(&mut client(&["history", "--json"]))).unwrap();
    let prune = h
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "prune")
        .expect("a prune entry");
    assert_eq!(prune["from"], "1.0.0");
    let pruned: Vec<&str> = prune["unknown"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pruned.contains(&"instance/app.db"), "{pruned:?}");
    // Rollback still goes to 1.1.0 (a prune is not a switch).
    let out = ok(&mut client(&["rollback"]));
    assert!(out.contains("rolled back to 1.1.0"), "{out}");
    // A carry path that could leave the install is refused at release.
    let (_, err) = fails(
        bin()
            .args(["release", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", "1.3.0", "--channel", "stable", "--key"])
            .arg(key.with_extension("key"))
            .arg(format!(
                "--platform=linux={}",
                python_app(&base, 3).display()
            ))
            .args(["--carry", "../etc"]),
    );
    assert!(err.contains("--carry \"../etc\""), "{err}");
}

/// A Python app whose release ships its bytecode, compiled against the
/// build's source times (as `pip` and Briefcase builds do).
fn compiled_app(dir: &Path, name: &str, v: u32) -> PathBuf {
    let root = dir.join(name);
    fs_err::create_dir_all(&root).unwrap();
    fs_err::write(root.join("helper.py"), "VALUE = 42\n").unwrap();
    fs_err::write(root.join("app.py"), format!("VERSION = {v}\n")).unwrap();
    // Built a day ago: an install's own clock never matches by chance.
    let built = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    for f in ["helper.py", "app.py"] {
        fs_err::File::options()
            .write(true)
            .open(root.join(f))
            .unwrap()
            .set_modified(built)
            .unwrap();
    }
    ok(Command::new("python3")
        .args(["-m", "py_compile"])
        .arg(root.join("helper.py"))
        .arg(root.join("app.py"))
        .env_remove("SOURCE_DATE_EPOCH"));
    root
}

/// The bytes of every `.pyc` under `dir`, by path.
fn bytecode(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = fs_err::read_dir(dir.join("__pycache__"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = fs_err::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn installed_files_keep_the_build_times_so_shipped_bytecode_stays_valid() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let import = |dir: &Path| {
        ok(Command::new("python3")
            .args([
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import helper, app",
            ])
            .arg(dir)
            .env_remove("PYTHONDONTWRITEBYTECODE"));
    };
    let setup = |name: &str, extra: &[&str], env: Option<(&str, &str)>| {
        let repo = base.join(format!("repo-{name}"));
        for v in [1, 2] {
            let tree = compiled_app(&base, &format!("{name}-v{v}"), v);
            let mut c = bin();
            c.args(["release", "--level", "3", "--repo"])
                .arg(&repo)
                .args(init_flag(&repo))
                .args([
                    "--version",
                    &format!("1.{}.0", v - 1),
                    "--channel",
                    "stable",
                ])
                .arg("--key")
                .arg(key.with_extension("key"))
                .arg(format!("--platform=linux={}", tree.display()))
                .args(extra);
            if let Some((k, val)) = env {
                c.env(k, val);
            }
            ok(&mut c);
        }
        let root = base.join(format!("app-{name}"));
        let key = key.clone();
        let (root2, repo2) = (root.clone(), repo.clone());
        let client = move |args: &[&str]| {
            let (root, repo) = (&root2, &repo2);
            let mut c = bin();
            c.arg("update")
                .args(args)
                .arg("--install-dir")
                .arg(root)
                .arg("--repo")
                .arg(repo)
                .args(["--platform", "linux", "--pub"])
                .arg(key.with_extension("pub"));
            c
        };
        ok(&mut client(&["install", "--to", "1.0.0"]));
        (root, client)
    };
    // With times: Python finds its bytecode valid and rewrites nothing,
    // after the first install and after a delta update.
    let (root, client) = setup("times", &[], None);
    let shipped = bytecode(&root.join("current"));
    import(&root.join("current"));
    assert_eq!(bytecode(&root.join("current")), shipped);
    let out = ok(&mut client(&["install"]));
    assert!(out.contains("via delta"), "{out}");
    let shipped = bytecode(&root.join("current"));
    import(&root.join("current"));
    assert_eq!(bytecode(&root.join("current")), shipped, "after a delta");
    // Without (`--no-mtimes`, as before): every module is stale.
    let (root, _) = setup("none", &["--no-mtimes"], None);
    let shipped = bytecode(&root.join("current"));
    import(&root.join("current"));
    assert_ne!(bytecode(&root.join("current")), shipped, "recompiled");
    // SOURCE_DATE_EPOCH (two days ago, before the files were written): no
    // time after it.
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2 * 86_400;
    let (root, _) = setup("sde", &[], Some(("SOURCE_DATE_EPOCH", &epoch.to_string())));
    for f in ["helper.py", "app.py"] {
        let m = fs_err::metadata(root.join("current").join(f))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            m.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            epoch
        );
    }
}
