//! What a newcomer's first mistakes get from the real binary: an unknown
//! channel or platform is an error that lists the valid ones (and the
//! closest), never "up to date"; "up to date" says what holds a newer
//! version back; a check shows the release notes.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Fx {
    _t: tempfile::TempDir,
    base: PathBuf,
    repo: PathBuf,
    key: PathBuf,
    cfg: PathBuf,
}

/// 1.0.0 and 1.1.0 (with notes) on stable for linux; 1.0.0 installed.
fn fixture(rollout: &str) -> Fx {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let key = keygen(&base);
    let repo = base.join("repo");
    release(&repo, &key, "1.0.0", "stable", "linux", &example(1));
    let notes = base.join("notes.md");
    fs_err::write(&notes, "Faster start.\n\n- fixes the crash on resume\n").unwrap();
    ok(bin()
        .args(["release", "--level", "3", "--repo"])
        .arg(&repo)
        .args(init_flag(&repo))
        .args(["--version", "1.1.0", "--channel", "stable", "--key"])
        .arg(key.with_extension("key"))
        .arg(format!("--platform=linux={}", example(2).display()))
        .arg("--notes")
        .arg(&notes)
        .args(["--rollout", rollout]));
    let cfg = base.join("update.toml");
    ok(bin()
        .args(["config", "set", "channel", "stable", "--config"])
        .arg(&cfg));
    let fx = Fx {
        _t: t,
        base,
        repo,
        key,
        cfg,
    };
    ok(&mut fx.client("linux", &["install", "--to", "1.0.0"]));
    fx
}

impl Fx {
    fn client(&self, platform: &str, args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(self.base.join("app"))
            .arg("--repo")
            .arg(&self.repo)
            .args(["--platform", platform, "--pub"])
            .arg(self.key.with_extension("pub"));
        c
    }

    fn doctor(&self, extra: &[&str]) -> Command {
        let mut c = bin();
        c.arg("doctor")
            .arg("--config")
            .arg(&self.cfg)
            .arg("--install-dir")
            .arg(self.base.join("app"))
            .arg("--repo")
            .arg(&self.repo)
            .args(["--platform", "linux", "--pub"])
            .arg(self.key.with_extension("pub"))
            .args(extra);
        c
    }
}

fn config_text(p: &Path) -> String {
    fs_err::read_to_string(p).unwrap()
}

#[test]
fn an_unknown_channel_or_platform_is_an_error_naming_the_valid_ones() {
    let fx = fixture("100");
    let (_, err) = fails(&mut fx.client("linux", &["check", "--channel", "stabel"]));
    assert!(
        err.contains(r#"channel "stabel" is not in the repository (did you mean "stable"?); its channels: stable"#),
        "{err}"
    );
    let (_, err) = fails(&mut fx.client("linx", &["check"]));
    assert!(
        err.contains(r#"platform "linx" has no build in the repository (did you mean "linux"?); its platforms: linux"#),
        "{err}"
    );
    // Nothing close: no suggestion, the list all the same.
    let (_, err) = fails(&mut fx.client("linux", &["install", "--channel", "nightly-canary"]));
    assert!(
        err.contains(r#"channel "nightly-canary" is not in the repository; its channels: stable"#),
        "{err}"
    );
    // `update channel` refuses it and saves nothing.
    let before = config_text(&fx.cfg);
    let (_, err) = fails(&mut fx.client("linux", &["channel", "nosuch"]));
    assert!(err.contains("its channels: stable"), "{err}");
    assert_eq!(config_text(&fx.cfg), before);
    // doctor fails on it.
    let out = run(&mut fx.doctor(&["--channel", "stabel"]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[FAIL] channel") && text.contains("did you mean"),
        "{text}"
    );
    assert!(fx.doctor(&[]).status().unwrap().success());
}

#[test]
fn up_to_date_says_what_holds_a_newer_version_back() {
    // Rolled out to no install yet: held back by the rollout.
    let fx = fixture("0");
    let out = ok(&mut fx.client("linux", &["check"]));
    assert!(
        out.contains("up to date for this install: 1.1.0 is rolled out to 0% of installs (this install is not in it yet); `deltapack update install --manual` installs it now"),
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client("linux", &["check", "--json"]))).unwrap();
    assert_eq!(j["held"]["by"], "rollout");
    assert_eq!(j["held"]["version"], "1.1.0");
    let out = ok(&mut fx.client("linux", &["install"]));
    assert!(out.contains("rolled out to 0%"), "{out}");
    // A manual check offers it, with its notes.
    let out = ok(&mut fx.client("linux", &["check", "--manual"]));
    assert!(out.contains("update 1.0.0 -> 1.1.0"), "{out}");
    assert!(
        out.contains("release notes for 1.1.0:\nFaster start.\n\n- fixes the crash on resume"),
        "{out}"
    );
    // Installed, then rolled back: refused, and the command that clears it.
    ok(&mut fx.client("linux", &["install", "--manual"]));
    ok(&mut fx.client("linux", &["rollback"]));
    let out = ok(&mut fx.client("linux", &["check", "--manual"]));
    assert!(
        out.contains("up to date for this install: 1.1.0 is refused here (rolled back from); `deltapack update allow 1.1.0` offers it again"),
        "{out}"
    );
    // Truly up to date: nothing more to say.
    ok(&mut fx.client("linux", &["allow", "1.1.0"]));
    ok(&mut fx.client("linux", &["install", "--manual"]));
    assert_eq!(ok(&mut fx.client("linux", &["check"])).trim(), "up to date");
}

#[test]
fn promote_starts_no_channel_by_a_typo_and_lifetimes_that_cannot_work_are_refused() {
    let fx = fixture("100");
    let promote = |extra: &[&str]| {
        let mut c = bin();
        c.args(["promote", "1.1.0", "--repo"])
            .arg(&fx.repo)
            .arg("--key")
            .arg(fx.key.with_extension("key"))
            .args(extra);
        c
    };
    let manifest = || fs_err::read(fx.repo.join("manifest.json")).unwrap();
    let before = manifest();
    let (_, err) = fails(&mut promote(&["--to", "stabel"]));
    assert!(
        err.contains(r#"channel "stabel" does not exist in"#)
            && err.contains(r#"(did you mean "stable"?); its channels: stable. To start a new channel, pass --create-channel"#),
        "{err}"
    );
    assert_eq!(manifest(), before, "nothing signed");
    ok(&mut promote(&["--to", "beta", "--create-channel"]));
    let out = ok(&mut fx.client("linux", &["check", "--channel", "beta"]));
    assert!(out.contains("1.1.0"), "{out}");
    // A manifest that expires at once cannot work; a short life warns.
    let out = run(&mut promote(&["--to", "beta", "--expires-in-days", "0"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 is not in 1..=3650"), "{err}");
    let out = run(&mut promote(&["--to", "beta", "--expires-in-days", "2"]));
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "warning: --expires-in-days 2: every client refuses this manifest after 2 day(s)"
        ),
        "{err}"
    );
}

#[test]
fn a_wrong_repository_path_starts_nothing_and_the_real_one_is_checked_by_doctor() {
    let fx = fixture("100");
    let typo = fx.base.join("repos");
    let release = |repo: &Path, extra: &[&str]| {
        let mut c = bin();
        c.args(["release", "--level", "3", "--repo"])
            .arg(repo)
            .args(["--version", "1.2.0", "--key"])
            .arg(fx.key.with_extension("key"))
            .arg(format!("--platform=linux={}", example(3).display()))
            .args(extra);
        c
    };
    let (_, err) = fails(&mut release(&typo, &[]));
    assert_eq!(
        err.trim(),
        format!(
            "deltapack: error: {}/manifest.json does not exist: this is not an update repository yet. Check the path, or pass --init to start a new repository here",
            typo.display()
        )
    );
    assert!(!typo.exists(), "nothing written");
    let (_, err) = fails(&mut release(&fx.repo, &["--init"]));
    assert!(
        err.contains("manifest.json exists (sequence 2): this is already an update repository; --init only starts new ones, drop it"),
        "{err}"
    );
    // A repository started again elsewhere (--init) and pointed at by the
    // install: doctor fails and says why; check refuses and says why.
    ok(&mut release(&typo, &["--init"]));
    let mut c = fx.doctor(&[]);
    let idx = c.get_args().position(|a| a == "--repo").unwrap() + 1;
    let mut args: Vec<_> = c.get_args().map(ToOwned::to_owned).collect();
    args[idx] = typo.clone().into_os_string();
    c = bin();
    c.args(&args);
    let (out, _) = fails(&mut c);
    assert!(
        out.contains("[FAIL] repository the repository's manifest is at sequence 1, but this install already accepted sequence 2"),
        "{out}"
    );
    assert!(
        out.contains("a release --init into another directory?"),
        "{out}"
    );
}

#[test]
fn publisher_commands_say_what_changed_and_json_has_the_documented_fields() {
    let fx = fixture("100");
    let cmd = |args: &[&str]| {
        let mut c = bin();
        c.args(args)
            .arg("--repo")
            .arg(&fx.repo)
            .arg("--key")
            .arg(fx.key.with_extension("key"));
        c
    };
    let out = ok(&mut cmd(&["rollout", "--percent", "40"]));
    assert!(
        out.contains("channel stable: 1.1.0 rollout 100% -> 40%\n"),
        "{out}"
    );
    assert!(
        out.contains("manifest.json: sequence 3, ") && out.contains(" kB, signed, expires 20"),
        "{out}"
    );
    assert!(
        out.contains("(in 29 days)") || out.contains("(in 30 days)"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&mut cmd(&["rollout", "--pause", "--json"]))).unwrap();
    assert_eq!(
        v["changes"],
        serde_json::json!([{
            "change": "rollout", "channel": "stable", "version": "1.1.0",
            "percent_before": 40, "percent": 40, "paused_before": false, "paused": true
        }])
    );
    assert_eq!(v["manifest"]["sequence"], 4);
    assert_eq!(v["manifest"]["written"], true);
    assert!(v["manifest"]["expires"].as_u64().unwrap() > v["manifest"]["issued"].as_u64().unwrap());
    assert_eq!(v["built"], serde_json::json!([]));
    let v: serde_json::Value = serde_json::from_str(&ok(&mut cmd(&[
        "yank", "1.1.0", "--reason", "crash", "--json",
    ])))
    .unwrap();
    assert_eq!(
        v["changes"],
        serde_json::json!([{"change": "yanked", "version": "1.1.0", "reason": "crash"}])
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&mut cmd(&[
        "release",
        "--version",
        "1.2.0",
        "--level",
        "3",
        &format!("--platform=linux={}", example(3).display()),
        "--json",
    ])))
    .unwrap();
    let built: Vec<&str> = v["built"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].as_str().unwrap())
        .collect();
    assert!(built.contains(&"pkg/linux/1.2.0/full.dpk"), "{v}");
    assert!(v["built"][0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["changes"][0]["change"], "released");
    assert_eq!(v["changes"][0]["platforms"], serde_json::json!(["linux"]));
    assert_eq!(v["changes"][1]["change"], "offered");
    // Options that do not apply to a command are not offered by it.
    for (command, absent) in [
        (
            "rollout",
            &["--level", "--deltas", "--no-exe", "--no-mtimes"][..],
        ),
        ("yank", &["--deltas", "--rollout"][..]),
        ("repo refresh", &["--level", "--deltas", "--no-exe"][..]),
    ] {
        let help = ok(bin().args(command.split(' ')).arg("--help"));
        for a in absent {
            assert!(!help.contains(a), "{command} --help offers {a}:\n{help}");
        }
        assert!(help.contains("--json"), "{command}");
    }
    let help = ok(bin().args(["promote", "--help"]));
    assert!(
        help.contains("--deltas") && help.contains("--level"),
        "{help}"
    );
}

#[test]
fn every_client_command_answers_json_and_progress_can_be_json_lines() {
    let fx = fixture("100");
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&ok(&mut fx.client("linux", &a))).unwrap()
    };
    // Progress as JSON lines on stderr, the document on stdout.
    let out = run(&mut fx.client("linux", &["install", "--json", "--progress", "json"]));
    assert!(out.status.success(), "{out:?}");
    let kinds: Vec<String> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    for k in ["checking", "downloading", "applying", "installed"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["installed"]["to"], "1.1.0");
    assert_eq!(v["installed"]["action"], "update");
    assert!(v["installed"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["held"], serde_json::Value::Null);
    // Up to date: the same document with nothing installed.
    let v = json(&["install"]);
    assert_eq!(v["installed"], serde_json::Value::Null);
    let v = json(&["download"]);
    assert_eq!(v["downloaded"], serde_json::Value::Null);
    assert_eq!(
        json(&["launched"]),
        serde_json::json!({"kind": "on_probation", "launches": 1})
    );
    assert_eq!(json(&["healthy"]), serde_json::json!({"healthy": "1.1.0"}));
    assert_eq!(json(&["launched"]), serde_json::json!({"kind": "healthy"}));
    assert_eq!(
        json(&["rollback"]),
        serde_json::json!({"rolled_back_to": "1.0.0"})
    );
    assert_eq!(
        json(&["allow", "1.1.0"]),
        serde_json::json!({"version": "1.1.0", "was_refused": true})
    );
    let v = json(&["channel", "stable"]);
    assert_eq!(v["channel"], "stable");
    assert_eq!(v["current"], "1.0.0");
    assert_eq!(v["available"], "1.1.0");
    let v = json(&["status"]);
    assert_eq!(v["current"], "1.0.0");
    assert!(v["last_check"].as_u64().is_some());
    assert!(v["runs_from"].as_str().unwrap().ends_with("current"));
    // `none` draws nothing at all.
    let out = run(&mut fx.client("linux", &["install", "--progress", "none"]));
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    // Repository commands stream their build events the same way.
    let out = run(bin()
        .args(["release", "--level", "3", "--repo"])
        .arg(&fx.repo)
        .args(["--version", "1.2.0", "--key"])
        .arg(fx.key.with_extension("key"))
        .arg(format!("--platform=linux={}", example(3).display()))
        .args(["--progress", "json", "--json"]));
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "building" && l["job"] == "pkg/linux/1.2.0/full.dpk"),
        "{lines:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["sequence"], 3);
}

#[test]
fn status_history_inspect_and_inputs_say_what_they_know_in_human_terms() {
    let fx = fixture("0");
    // Held back by a rollout at 0%: status says so from the last check.
    ok(&mut fx.client("linux", &["check"]));
    let out = ok(&mut fx.client("linux", &["status"]));
    assert!(
        out.contains("last check: 20") && out.contains("(now)"),
        "{out}"
    );
    assert!(
        out.contains(
            "at the last check: up to date for this install: 1.1.0 is rolled out to 0% of installs"
        ),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client("linux", &["status", "--json"]))).unwrap();
    assert_eq!(
        v["at_last_check"],
        serde_json::json!({"available": null, "held": {"by": "rollout", "version": "1.1.0", "percent": 0, "paused": false}})
    );
    // A first install reads as one, with its size.
    let out = ok(&mut fx.client("linux", &["history"]));
    let first = out.lines().next().unwrap();
    assert!(
        first.contains(" install       1.0.0 ok via full 1.0.0 (") && first.ends_with(" kB)"),
        "{out}"
    );
    // inspect names the file that is not a package.
    let not = fx.base.join("notes.txt");
    fs_err::write(&not, "hello\n").unwrap();
    let (_, err) = fails(bin().arg("inspect").arg(&not));
    assert_eq!(
        err.trim(),
        format!(
            "deltapack: error: inspecting {}: bad package: not a deltapack package: its first bytes are 68 65 6c 6c 6f 0a 00 00, a package's are 89 44 50 4b 0d 0a 1a 0a",
            not.display()
        )
    );
    // A build output that cannot be read is named with its platform.
    let missing = fx.base.join("dist/linux.tar.gz");
    let (_, err) = fails(
        bin()
            .args(["release", "--repo"])
            .arg(&fx.repo)
            .args(["--version", "1.2.0", "--key"])
            .arg(fx.key.with_extension("key"))
            .arg(format!("--platform=linux={}", missing.display())),
    );
    assert!(
        err.starts_with(&format!(
            "deltapack: error: --platform linux={}: cannot read this build output: ",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn engine_commands_answer_json_and_the_cache_keeps_nothing_used() {
    let fx = fixture("100");
    // A separate download, then the install: the history counts the
    // packages' bytes, and the cache is empty once they are used.
    let d: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client("linux", &["download", "--json"]))).unwrap();
    let want = d["downloaded"]["download_bytes"].as_u64().unwrap();
    assert!(want > 0);
    let cache = fx.base.join("app/.deltapack/downloads");
    assert_eq!(fs_err::read_dir(&cache).unwrap().count(), 1);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&mut fx.client("linux", &["install", "--json"]))).unwrap();
    assert_eq!(v["installed"]["bytes"].as_u64(), Some(want));
    assert_eq!(fs_err::read_dir(&cache).unwrap().count(), 0);

    let k: serde_json::Value = serde_json::from_str(&ok(bin()
        .args(["keygen", "--json", "-o"])
        .arg(fx.base.join("second"))))
    .unwrap();
    assert!(k["public_key"].as_str().unwrap().starts_with("ed25519:"));
    assert!(
        k["secret_key_file"]
            .as_str()
            .unwrap()
            .ends_with("second.key")
    );
    let pkg = fx.base.join("d.dpk");
    let v: serde_json::Value = serde_json::from_str(&ok(bin()
        .arg("diff")
        .arg(example(1))
        .arg(example(2))
        .arg("-o")
        .arg(&pkg)
        .args(["--level", "3", "--json"])))
    .unwrap();
    assert_eq!(
        v["bytes"].as_u64(),
        Some(fs_err::metadata(&pkg).unwrap().len())
    );
    assert!(v["target_bytes"].as_u64().unwrap() > v["bytes"].as_u64().unwrap());
    let out = fx.base.join("rebuilt");
    let v: serde_json::Value = serde_json::from_str(&ok(bin()
        .arg("apply")
        .arg(example(1))
        .arg(&pkg)
        .arg("-o")
        .arg(&out)
        .arg("--json")))
    .unwrap();
    assert_eq!(
        v["target"]["digest"].as_str().map(str::to_owned),
        digest(&example(2))
    );
    assert_eq!(digest(&out), digest(&example(2)));
}
