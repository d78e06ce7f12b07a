//! `kill -9` of a real `deltapack update install` process at points spread
//! over its whole run (download, rebuild, switch, record, prune). After
//! every kill, `current` must name a whole old or a whole new version
//! (never a mix), the next start must clean up, and a retry must finish
//! the update.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use std::time::Instant;

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

/// The sample app plus a 6 MiB data file, so an install takes long enough
/// to be killed at many points.
fn make_tree(dst: &Path, v: u32) {
    ok(Command::new("cp").arg("-a").arg(example(v)).arg(dst));
    let mut blob = noise(7, 6 << 20);
    if v == 2 {
        for k in 0..64 {
            let at = k * 90_000;
            blob.splice(at..at, noise(k as u64 + 100, 2000));
        }
    }
    fs_err::create_dir_all(dst.join("data")).unwrap();
    fs_err::write(dst.join("data/blob.bin"), blob).unwrap();
}

/// A repository of two versions of the big sample tree; returns the temp
/// dir, the repository, the key and the two tree digests.
fn two_versions() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Vec<String>,
) {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let key = keygen(t.path());
    let mut want = Vec::new();
    for (v, ver) in [(1, "1.0.0"), (2, "1.1.0")] {
        let tree = t.path().join(format!("tree{v}"));
        make_tree(&tree, v);
        want.push(digest(&tree).unwrap());
        release(&repo, &key, ver, "stable", "linux", &tree);
    }
    (t, repo, key, want)
}

/// Where a killed update stood, read from what it left on disk.
fn phase(root: &Path, new: &str) -> &'static str {
    let has = |dir: &str, pred: &dyn Fn(&str) -> bool| {
        fs_err::read_dir(root.join(dir))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| pred(&e.file_name().to_string_lossy()))))
    };
    if digest(&root.join("current")).as_deref() == Some(new) {
        if root.join(".deltapack/journal.json").exists() {
            "4 swapped, not yet recorded"
        } else {
            "5 recorded / cleanup / exited"
        }
    } else if root.join(".deltapack/journal.json").exists() {
        "3 swap"
    } else if has("versions", &|n| n.starts_with('.') && n.contains(".dpk-")) {
        "2 apply"
    } else if has(".deltapack/downloads", &|n| n.ends_with(".part")) {
        "1 download"
    } else if has("versions", &|n| n == "1.1.0") {
        "2 apply"
    } else {
        "0 start"
    }
}

#[test]
fn kill_at_many_points_never_leaves_a_mixed_tree() {
    let (t, repo, key, want) = two_versions();
    let server = serve(&repo);
    let url = server.1.clone();
    let client = |root: &Path, args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--install-dir")
            .arg(root)
            .args(["--repo", &url, "--platform", "linux", "--pub"])
            .arg(key.with_extension("pub"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // The starting point: 1.0.0 installed.
    let template = t.path().join("template");
    assert!(
        client(&template, &["install", "--to", "1.0.0"])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(digest(&template.join("current")).as_ref(), Some(&want[0]));
    let fresh = |name: &str| {
        let root = t.path().join(name);
        let _ = fs_err::remove_dir_all(&root);
        ok(Command::new("cp").arg("-a").arg(&template).arg(&root));
        root
    };
    // How long an uninterrupted update takes.
    let timed = fresh("timed");
    let start = Instant::now();
    assert!(client(&timed, &["install"]).status().unwrap().success());
    let total = start.elapsed();
    assert_eq!(digest(&timed.join("current")).as_ref(), Some(&want[1]));

    // CI kills at 60 points; `DELTAPACK_KILL_POINTS=520` is the long run.
    // Either prints its tally (kill points, live kills by phase, old / new
    // / mixed) with `-- --nocapture`; no figure is quoted elsewhere.
    let points: u32 = std::env::var("DELTAPACK_KILL_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut t = Tally::default();
    // A random moment in 0..150% of an uninterrupted run (runs vary with
    // the machine's load), so the end is covered too.
    for _ in 0..points {
        let at = 1.5 * random();
        t.kill_at(at, total, &fresh, &client, &want);
    }
    // A phase the random moments missed (the switch lasts a few ms) is
    // caught by watching for what it leaves on disk, then killing at once.
    for want_phase in [1, 2, 3] {
        for _ in 0..20 {
            if t.live_in(want_phase) > 0 {
                break;
            }
            t.kill_when(want_phase, &fresh, &client, &want);
        }
    }
    // And one after the switch, where a kill must leave the new version.
    for _ in 0..20 {
        if t.new > 0 {
            break;
        }
        t.kill_when(5, &fresh, &client, &want);
    }
    drop(server);
    eprintln!(
        "{} kill points over {:.0} ms: {} landed in a running process; {} old, {} new, {} mixed; \
         live kills by phase {:?}",
        t.kills.len(),
        total.as_secs_f64() * 1000.0,
        t.kills.iter().filter(|k| k.live).count(),
        t.old,
        t.new,
        t.mixed,
        t.phases
    );
    assert_eq!(t.mixed, 0);
    assert!(
        t.old > 0 && t.new > 0,
        "the kills must land on both sides of the switch"
    );
    // A fair share of the kills must hit the work itself, not the start-up
    // or a process that had already exited.
    let working = (1..=3).map(|p| t.live_in(p)).sum::<usize>();
    assert!(
        working * 4 >= t.kills.len(),
        "only {working} of {} kills landed in the download, apply or switch: {:?}",
        t.kills.len(),
        t.phases
    );
    for (phase, name) in [(1, "download"), (2, "apply"), (3, "switch")] {
        assert!(
            t.live_in(phase) > 0,
            "no kill landed in the {name} phase: {:?}",
            t.phases
        );
    }
}

/// One kill and where it landed.
struct Kill {
    /// When, as a share of an uninterrupted run (NaN: when a phase showed).
    #[allow(dead_code)]
    at: f64,
    /// Whether the process was still running (killed by the signal, not
    /// already exited).
    live: bool,
    /// The phase it left, 0 (start) to 5 (recorded or exited).
    phase: u8,
}

#[derive(Default)]
struct Tally {
    kills: Vec<Kill>,
    phases: std::collections::BTreeMap<&'static str, u32>,
    old: u32,
    new: u32,
    mixed: u32,
}

impl Tally {
    /// Live kills in `phase` (3 counts the swap, before and after the
    /// rename of `current`).
    fn live_in(&self, phase: u8) -> usize {
        self.kills
            .iter()
            .filter(|k| k.live && (k.phase == phase || (phase == 3 && k.phase == 4)))
            .count()
    }

    /// Starts an update and kills it as soon as `phase` shows on disk
    /// (polling), or when it has exited.
    fn kill_when(
        &mut self,
        phase: u8,
        fresh: &dyn Fn(&str) -> std::path::PathBuf,
        client: &dyn Fn(&Path, &[&str]) -> Command,
        want: &[String],
    ) {
        let root = fresh("k");
        let child = client(&root, &["install"]).spawn().unwrap();
        let seen = |root: &Path| self::phase(root, &want[1]).as_bytes()[0] - b'0';
        self.finish_kill(f64::NAN, child, &root, want, client, |c| {
            let start = Instant::now();
            while c.try_wait().unwrap().is_none() && start.elapsed().as_secs() < 30 {
                let p = seen(&root);
                if p == phase || (phase == 3 && p == 4) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
    }

    fn kill_at(
        &mut self,
        at: f64,
        total: std::time::Duration,
        fresh: &dyn Fn(&str) -> std::path::PathBuf,
        client: &dyn Fn(&Path, &[&str]) -> Command,
        want: &[String],
    ) {
        let root = fresh("k");
        let child = client(&root, &["install"]).spawn().unwrap();
        self.finish_kill(at, child, &root, want, client, |_| {
            std::thread::sleep(total.mul_f64(at));
        });
    }

    /// Waits as `wait` says, kills, and checks what the kill left: a whole
    /// version, cleaned up by the next start, finished by a retry.
    fn finish_kill(
        &mut self,
        at: f64,
        mut child: std::process::Child,
        root: &Path,
        want: &[String],
        client: &dyn Fn(&Path, &[&str]) -> Command,
        wait: impl FnOnce(&mut std::process::Child),
    ) {
        use std::os::unix::process::ExitStatusExt;
        let i = self.kills.len();
        wait(&mut child);
        let sent = child.kill();
        let status = child.wait().unwrap();
        // Killed by our signal, not exited on its own first.
        let live = sent.is_ok() && status.signal() == Some(9);
        if !live {
            assert!(
                status.success(),
                "kill {i}: the update failed on its own: {status}"
            );
        }
        let name = phase(root, &want[1]);
        *self.phases.entry(name).or_insert(0) += u32::from(live);
        let phase = name.as_bytes()[0] - b'0';
        self.kills.push(Kill { at, live, phase });
        match digest(&root.join("current")) {
            Some(d) if d == want[0] => self.old += 1,
            Some(d) if d == want[1] => self.new += 1,
            _ => self.mixed += 1,
        }
        // The next start cleans up; a retry finishes the update.
        assert!(client(root, &["status"]).status().unwrap().success());
        for e in fs_err::read_dir(root.join("versions")).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.starts_with('.'), "debris left after recovery: {name}");
        }
        assert!(!root.join(".deltapack/journal.json").exists());
        assert!(
            client(root, &["install"]).status().unwrap().success(),
            "retry after kill {i}"
        );
        assert_eq!(
            digest(&root.join("current")).as_ref(),
            Some(&want[1]),
            "kill {i}"
        );
    }
}

#[test]
fn two_updaters_at_once_leave_one_whole_version() {
    let (t, repo, key, want) = two_versions();
    let root = t.path().join("app");
    let client = |args: &[&str]| {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--install-dir")
            .arg(&root)
            .args([
                "--repo",
                repo.to_str().unwrap(),
                "--platform",
                "linux",
                "--pub",
            ])
            .arg(key.with_extension("pub"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    assert!(
        client(&["install", "--to", "1.0.0"])
            .status()
            .unwrap()
            .success()
    );
    for round in 0..5 {
        let kids: Vec<_> = (0..2)
            .map(|_| client(&["install"]).spawn().unwrap())
            .collect();
        let outs: Vec<_> = kids
            .into_iter()
            .map(|k| k.wait_with_output().unwrap())
            .collect();
        for o in &outs {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success() || err.contains("another updater"),
                "round {round}: {err}"
            );
        }
        assert!(outs.iter().any(|o| o.status.success()), "round {round}");
        assert_eq!(digest(&root.join("current")).as_ref(), Some(&want[1]));
        // Back to 1.0.0 for the next round.
        assert!(
            client(&["install", "--to", "1.0.0"])
                .status()
                .unwrap()
                .success()
        );
        assert_eq!(digest(&root.join("current")).as_ref(), Some(&want[0]));
    }
}
