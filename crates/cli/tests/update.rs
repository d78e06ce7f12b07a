//! `deltapack update …` on the real binary against a repository served on
//! loopback by `deltapack serve`: first install, update through a delta,
//! status and history (JSON), rollback; the tree on disk is checked.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn install_update_status_history_rollback() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let key = t.path().join("k");
    ok(bin().arg("keygen").arg("-o").arg(&key));
    for (v, tree) in [("1.0.0", 1), ("1.1.0", 2)] {
        ok(bin()
            .args(["release", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", v, "--key"])
            .arg(key.with_extension("key"))
            .arg(format!("--platform=linux={}", example(tree).display())));
    }
    let served = serve(&repo);
    let root = t.path().join("app");
    let client = |args: &[&str]| {
        let mut c = bin();
        c.args(["update"])
            .args(args)
            .arg("--install-dir")
            .arg(&root)
            .args(["--repo", &served.1, "--platform", "linux", "--pub"])
            .arg(key.with_extension("pub"));
        c
    };
    let out = ok(&mut client(&["install", "--to", "1.0.0"]));
    assert!(out.contains("installed 1.0.0 via full 1.0.0"), "{out}");
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(1)).unwrap()
    );
    let out = ok(&mut client(&["check"]));
    assert!(out.starts_with("update 1.0.0 -> 1.1.0"), "{out}");
    assert!(out.contains("delta 1.0.0->1.1.0"), "{out}");
    let out = ok(&mut client(&["install"]));
    assert!(
        out.contains("installed 1.1.0 via delta 1.0.0->1.1.0"),
        "{out}"
    );
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(2)).unwrap()
    );
    assert_eq!(ok(&mut client(&["check"])).trim(), "up to date");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&mut client(&["status", "--json"]))).unwrap();
    assert_eq!(status["current"], "1.1.0");
    let history: serde_json::Value =
        serde_json::from_str(&ok(&mut client(&["history", "--json"]))).unwrap();
    assert_eq!(history[1]["path"][0], "delta 1.0.0->1.1.0");
    let out = ok(&mut client(&["rollback"]));
    assert_eq!(out.trim(), "rolled back to 1.0.0");
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(1)).unwrap()
    );
}

#[test]
fn config_file_and_channel_switch_with_downgrade() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let key = t.path().join("k");
    ok(bin().arg("keygen").arg("-o").arg(&key));
    for (v, tree, channel) in [("1.0.0", 1, "stable"), ("2.0.0-beta.1", 2, "beta")] {
        ok(bin()
            .args(["release", "--repo"])
            .arg(&repo)
            .args(init_flag(&repo))
            .args(["--version", v, "--channel", channel, "--key"])
            .arg(key.with_extension("key"))
            .arg(format!("--platform=linux={}", example(tree).display())));
    }
    let served = serve(&repo);
    let root = t.path().join("app");
    let cfg = t.path().join("update.toml");
    let config = |args: &[&str]| {
        let mut c = bin();
        c.arg("config").args(args).arg("--config").arg(&cfg);
        c
    };
    ok(&mut config(&["set", "repository", &served.1]));
    let pubkey = fs_err::read_to_string(key.with_extension("pub")).unwrap();
    ok(&mut config(&["set", "public_keys", pubkey.trim()]));
    ok(&mut config(&["set", "platform", "linux"]));
    ok(&mut config(&["set", "install_dir", root.to_str().unwrap()]));
    ok(&mut config(&["set", "channel", "beta"]));
    assert_eq!(ok(&mut config(&["get", "channel"])).trim(), "beta");
    let out = bin()
        .arg("config")
        .args(["set", "colour", "red", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting"));

    // No flags: everything comes from the config file.
    let update = |args: &[&str]| {
        let mut c = bin();
        c.arg("update").args(args).arg("--config").arg(&cfg);
        c
    };
    let out = ok(&mut update(&["install"]));
    assert!(out.contains("installed 2.0.0-beta.1"), "{out}");
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(2)).unwrap()
    );
    // Leaving beta for stable, whose newest is older: asked first.
    let out = ok(&mut update(&["channel", "stable"]));
    assert!(out.contains("pass --allow-downgrade"), "{out}");
    assert_eq!(ok(&mut config(&["get", "channel"])).trim(), "stable");
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(2)).unwrap()
    );
    let out = ok(&mut update(&["channel", "stable", "--allow-downgrade"]));
    assert!(out.contains("downgraded 2.0.0-beta.1 -> 1.0.0"), "{out}");
    assert_eq!(
        digest(&root.join("current")).unwrap(),
        digest(&example(1)).unwrap()
    );
}

#[test]
fn doctor_reports_and_advises() {
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
        .arg(format!("--platform=linux={}", example(1).display())));
    let root = t.path().join("app");
    let cfg = t.path().join("empty.toml");
    fs_err::write(&cfg, "").unwrap();
    let doctor = |repo_arg: &str| {
        let mut c = bin();
        c.arg("doctor")
            .arg("--config")
            .arg(&cfg)
            .arg("--install-dir")
            .arg(&root)
            .args(["--repo", repo_arg, "--platform", "linux", "--pub"])
            .arg(key.with_extension("pub"));
        c
    };
    let repo_s = repo.to_str().unwrap();
    let out = ok(&mut doctor(repo_s));
    assert!(
        out.contains("[warn] install") && out.contains("nothing installed"),
        "{out}"
    );
    assert!(out.contains("[ok  ] repository"), "{out}");
    ok(bin()
        .args(["update", "install", "--to", "1.0.0", "--config"])
        .arg(&cfg)
        .arg("--install-dir")
        .arg(&root)
        .args(["--repo", repo_s, "--platform", "linux", "--pub"])
        .arg(key.with_extension("pub")));
    let out = ok(&mut doctor(repo_s));
    assert!(out.contains("[ok  ] integrity"), "{out}");
    fs_err::write(root.join("versions/1.0.0/share/LICENSE"), "changed").unwrap();
    fs_err::write(root.join(".deltapack/journal.json"), "{").unwrap();
    let out = ok(&mut doctor(repo_s));
    assert!(out.contains("[warn] integrity"), "{out}");
    assert!(out.contains("[warn] journal"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(doctor(repo_s).arg("--json"))).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "integrity" && c["level"] == "warn")
    );
    // An unreachable repository is a failure with advice, exit 1.
    let out = doctor("http://127.0.0.1:9/").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[FAIL] repository") && text.contains("->"),
        "{text}"
    );
}

#[test]
fn each_app_has_its_own_config_and_a_missing_config_file_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let env = |c: &mut std::process::Command| {
        c.env("XDG_CONFIG_HOME", t.path().join("config"))
            .env("HOME", t.path());
    };
    let config = |args: &[&str]| {
        let mut c = bin();
        c.arg("config").args(args);
        env(&mut c);
        c
    };
    ok(&mut config(&["set", "channel", "beta", "--app", "one"]));
    ok(&mut config(&["set", "channel", "canary", "--app", "two"]));
    assert_eq!(
        ok(&mut config(&["get", "channel", "--app", "one"])).trim(),
        "beta"
    );
    assert_eq!(
        ok(&mut config(&["get", "channel", "--app", "two"])).trim(),
        "canary"
    );
    let one = ok(&mut config(&["path", "--app", "one"]));
    let two = ok(&mut config(&["path", "--app", "two"]));
    assert_ne!(one, two);
    assert!(one.trim().ends_with("one/update.toml"), "{one}");
    // `config show` prints the file's TOML: it reads back as the same settings.
    let shown = ok(&mut config(&["show", "--app", "one"]));
    let parsed = deltapack_client::Config::parse(shown.as_bytes()).unwrap();
    assert_eq!(parsed.channel, "beta");
    // DELTAPACK_APP selects it too.
    let mut c = config(&["get", "channel"]);
    c.env("DELTAPACK_APP", "two");
    assert_eq!(ok(&mut c).trim(), "canary");
    // A config file named on the command line must exist.
    let mut c = bin();
    c.args(["update", "status", "--config"])
        .arg(t.path().join("typo.toml"))
        .args(["--install-dir"])
        .arg(t.path().join("app"));
    let (_, err) = fails(&mut c);
    assert!(err.contains("typo.toml does not exist"), "{err}");
}
