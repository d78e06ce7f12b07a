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
