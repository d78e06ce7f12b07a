//! The TOML settings: strict reading, typed errors, round trip, and an
//! updater built from them.

use deltapack_client::{Config, Error};

use crate::fixture::*;

#[test]
fn settings_round_trip_and_are_checked() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("cfg/update.toml");
    let mut c = Config::load(&path).unwrap();
    assert_eq!(c, Config::default(), "a missing file gives the defaults");
    c.set("repository", "https://updates.example.com/app/")
        .unwrap();
    c.set("public_keys", &key().public().to_text()).unwrap();
    c.set("platform", "linux-x86_64").unwrap();
    c.set("channel", "beta").unwrap();
    c.set("auto_install", "true").unwrap();
    c.set("check_interval_hours", "6").unwrap();
    c.set("allow_hosts", "a.example.com, b.example.com")
        .unwrap();
    c.save(&path).unwrap();
    let back = Config::load(&path).unwrap();
    assert_eq!(back, c);
    assert_eq!(
        back.get("allow_hosts").unwrap(),
        "a.example.com,b.example.com"
    );
    for (k, v) in [
        ("channel", "a b"),
        ("platform", "../x"),
        ("public_keys", "ed25519:00"),
        ("auto_install", "yes"),
        ("keep_versions", "-1"),
    ] {
        assert!(
            matches!(c.set(k, v), Err(Error::InvalidSetting { .. })),
            "{k}={v}"
        );
    }
    assert!(matches!(
        c.set("colour", "x"),
        Err(Error::UnknownSetting { .. })
    ));
    assert!(matches!(c.get("colour"), Err(Error::UnknownSetting { .. })));
    // Strict reading: unknown keys, wrong types and huge files name the problem.
    for (text, needle) in [
        ("colour = 1\n", "colour"),
        ("keep_versions = \"two\"\n", "keep_versions"),
        ("channel = \n", "line 1"),
    ] {
        fs_err::write(&path, text).unwrap();
        match Config::load(&path) {
            Err(Error::State { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    fs_err::write(&path, "#".repeat(70_000)).unwrap();
    assert!(matches!(Config::load(&path), Err(Error::State { .. })));
    // Scheduling.
    assert!(c.check_due(None, 100));
    assert!(!c.check_due(Some(100), 100 + 5 * 3600));
    assert!(c.check_due(Some(100), 100 + 6 * 3600));
    assert!(
        c.check_due(Some(1000), 10),
        "a clock that went back checks again"
    );
}

#[test]
fn an_updater_from_settings_updates() {
    let (r, _t, root) = installed(5, "1.0.0");
    let c = config_for(&r, &root);
    let u = c.builder().unwrap().now(NOW + 10).build().unwrap();
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

#[test]
fn scheduled_ticks_respect_interval_and_auto_settings() {
    use deltapack_client::Tick;
    let (r, _t, root) = installed(5, "1.0.0");
    let mut c = config_for(&r, &root);
    c.set("check_interval_hours", "6").unwrap();
    c.set("auto_install", "false").unwrap();
    let at = |c: &Config, secs: u64| c.builder().unwrap().now(secs).build().unwrap();
    // install() checked at NOW + 10: not due again for 6 hours.
    assert!(matches!(
        at(&c, NOW + 3600).scheduled(&c, &|_| {}).unwrap(),
        Tick::NotDue { next_check } if next_check == NOW + 10 + 6 * 3600
    ));
    let later = NOW + 7 * 3600;
    assert!(
        matches!(at(&c, later).scheduled(&c, &|_| {}).unwrap(), Tick::Downloaded { update: u } if u.version == v("1.2.0"))
    );
    assert_eq!(
        current_digest(&root),
        manifest_digest(&r, "1.0.0"),
        "auto_install is off"
    );
    c.set("auto_install", "true").unwrap();
    let much_later = later + 7 * 3600;
    assert!(
        matches!(at(&c, much_later).scheduled(&c, &|_| {}).unwrap(), Tick::Installed { version } if version == v("1.2.0"))
    );
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert!(matches!(
        at(&c, much_later + 7 * 3600)
            .scheduled(&c, &|_| {})
            .unwrap(),
        Tick::UpToDate
    ));
}
