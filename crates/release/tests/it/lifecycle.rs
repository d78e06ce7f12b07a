//! promote, rollout and yank change the manifest as specified, keep it
//! signed and bump its sequence.

use std::path::Path;

use deltapack_apply::Applier;
use deltapack_release::{Change, Error, RolloutChange, verify_repo};

use crate::fixture::*;

fn ok(repo: &Path) {
    let r = verify_repo(repo, &[key(1).public()], Some(NOW), &|_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
}

#[test]
fn promote_rollout_and_yank() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, work) = (dir.path().join("repo"), dir.path().join("work"));
    publish(&repo, &work, 2, "stable");
    let (given, _) = inputs(&work, 2);
    let mut beta = new_release(2, "beta", given);
    beta.rollout_percent = 100;
    let s = packager(&repo).release(&beta, None, &|_| {}).unwrap();
    assert_eq!(
        s.changes,
        vec![
            Change::Released {
                version: version(2),
                platforms: PLATFORMS.map(String::from).to_vec(),
            },
            Change::ChannelCreated {
                channel: "beta".into()
            },
            Change::Offered {
                channel: "beta".into(),
                version: version(2),
                percent: 100
            },
        ]
    );
    let m = manifest(&repo);
    assert_eq!(m.channels["beta"].releases.len(), 1);
    assert!(
        m.releases[2].platforms["linux-x86_64"].deltas.is_empty(),
        "nothing earlier on beta"
    );
    let seq = m.sequence;

    // promote: beta -> stable at 10%, adding deltas from stable's versions
    // and rebuilding nothing else.
    let before_full =
        fs_err::read(repo.join(&m.releases[2].platforms["linux-x86_64"].full.path)).unwrap();
    let e = packager(&repo)
        .promote(&version(2), Some("canary"), "stable", 10, &|_| {})
        .unwrap_err();
    assert!(matches!(e, Error::NotOnChannel { .. }), "{e}");
    let s = packager(&repo)
        .promote(&version(2), Some("beta"), "stable", 10, &|_| {})
        .unwrap();
    assert!(
        s.built.iter().all(|b| b.path.contains("/from-")),
        "{:?}",
        s.built
    );
    assert_eq!(
        s.changes,
        vec![Change::Offered {
            channel: "stable".into(),
            version: version(2),
            percent: 10
        }]
    );
    let m = manifest(&repo);
    assert_eq!(m.sequence, seq + 1);
    assert_eq!(
        s.manifest.map(|m| (m.sequence, m.written)),
        Some((seq + 1, true))
    );
    let stable = &m.channels["stable"].releases;
    assert_eq!(
        stable.iter().map(|c| c.version.clone()).collect::<Vec<_>>(),
        (0..3).map(version).collect::<Vec<_>>()
    );
    assert_eq!(stable[2].rollout.percent, 10);
    assert_eq!(m.channels["beta"].releases[0].rollout.percent, 100);
    assert_ne!(stable[2].rollout.salt, stable[1].rollout.salt);
    let b = &m.releases[2].platforms["linux-x86_64"];
    let mut from: Vec<_> = b.deltas.iter().map(|d| d.from.clone()).collect();
    from.extend(b.no_delta_from.iter().cloned());
    from.sort();
    assert_eq!(from, vec![version(0), version(1)]);
    assert_eq!(fs_err::read(repo.join(&b.full.path)).unwrap(), before_full);
    ok(&repo);

    // rollout: raise, pause, resume, and errors.
    packager(&repo)
        .rollout("stable", None, RolloutChange::Percent(50))
        .unwrap();
    let r = &manifest(&repo).channels["stable"].releases[2].rollout;
    assert_eq!((r.percent, r.paused), (50, false));
    let included = (0..1000u32)
        .filter(|i| r.includes(&i.to_le_bytes()))
        .count();
    assert!((400..600).contains(&included), "{included}");
    let s = packager(&repo)
        .rollout("stable", Some(&version(2)), RolloutChange::Pause)
        .unwrap();
    assert_eq!(
        s.changes,
        vec![Change::Rollout {
            channel: "stable".into(),
            version: version(2),
            percent_before: 50,
            percent: 50,
            paused_before: false,
            paused: true
        }]
    );
    assert_eq!(
        s.changes[0].to_string(),
        "channel stable: 1.2.0 rollout paused at 50%"
    );
    let r = manifest(&repo).channels["stable"].releases[2]
        .rollout
        .clone();
    assert!(r.paused && r.percent == 50 && !r.includes(b"anyone"));
    packager(&repo)
        .rollout("stable", None, RolloutChange::Resume)
        .unwrap();
    assert!(
        !manifest(&repo).channels["stable"].releases[2]
            .rollout
            .paused
    );
    assert!(matches!(
        packager(&repo).rollout("nightly", None, RolloutChange::Pause),
        Err(Error::UnknownChannel { .. })
    ));
    assert!(matches!(
        packager(&repo).rollout("beta", Some(&version(0)), RolloutChange::Pause),
        Err(Error::NotOnChannel { .. })
    ));
    assert_eq!(manifest(&repo).sequence, seq + 4);
    ok(&repo);

    // yank the newest: installs on it are offered 1.1.0, through a delta
    // built from 1.2.0 to 1.1.0.
    let s = packager(&repo)
        .yank(&version(2), Some("crashes on start"), &|_| {})
        .unwrap();
    assert_eq!(
        s.changes,
        vec![Change::Yanked {
            version: version(2),
            reason: "crashes on start".into()
        }]
    );
    let m = manifest(&repo);
    assert_eq!(m.releases[2].yanked.as_deref(), Some("crashes on start"));
    for p in PLATFORMS {
        let good = &m.releases[1].platforms[p];
        let down = good.deltas.iter().find(|d| d.from == version(2));
        let dropped = good.no_delta_from.contains(&version(2));
        assert!(down.is_some() || dropped, "{p}");
        if let Some(d) = down {
            assert!(s.built.iter().any(|b| b.path == d.artifact.path));
            let out = dir.path().join(format!("down-{p}"));
            let pkg = fs_err::File::open(repo.join(&d.artifact.path)).unwrap();
            Applier::new()
                .apply(Some(&work.join(format!("trees/2/{p}"))), pkg, &out, &|_| {})
                .unwrap();
            assert_eq!(digest(&out), good.tree.digest);
        }
    }
    ok(&repo);
    let (given, _) = inputs(&work, 2);
    assert!(matches!(
        packager(&repo).release(&new_release(2, "beta", given), None, &|_| {}),
        Err(Error::Yanked { .. })
    ));
    assert!(matches!(
        packager(&repo).promote(&version(2), None, "canary", 100, &|_| {}),
        Err(Error::Yanked { .. })
    ));
    let s = packager(&repo).yank(&version(2), None, &|_| {}).unwrap();
    assert_eq!(
        s.changes,
        vec![Change::Restored {
            version: version(2)
        }]
    );
    assert!(manifest(&repo).releases[2].yanked.is_none());
    assert!(matches!(
        packager(&repo).yank(&version(7), Some("x"), &|_| {}),
        Err(Error::UnknownVersion { .. })
    ));
    ok(&repo);
}

#[test]
fn names_and_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let input = example(1);
    for (platform, channel) in [
        ("../x", "stable"),
        ("linux", "a b"),
        ("$(reboot)", "stable"),
    ] {
        let r = new_release(0, channel, vec![(platform.into(), input.clone())]);
        assert!(
            matches!(
                packager(&repo).release(&r, None, &|_| {}),
                Err(Error::InvalidName { .. })
            ),
            "{platform} {channel}"
        );
    }
    let twice = new_release(
        0,
        "stable",
        vec![("a".into(), input.clone()), ("a".into(), input.clone())],
    );
    assert!(matches!(
        packager(&repo).release(&twice, None, &|_| {}),
        Err(Error::Usage(_))
    ));
    let ok = new_release(0, "stable", vec![("a".into(), input.clone())]);
    assert!(matches!(
        deltapack_release::Packager::new(&repo)
            .init(true)
            .release(&ok, None, &|_| {}),
        Err(Error::NoKeys)
    ));
    assert!(matches!(
        packager(&repo).release(
            &ok,
            Some(deltapack_release::Shard { index: 2, count: 2 }),
            &|_| {}
        ),
        Err(Error::Usage(_))
    ));
    assert!(!repo.join("manifest.json").exists());
}

/// A directory with no manifest is a repository only on purpose: without
/// `init` every command refuses it and writes nothing; `init` where a
/// repository already is refuses too and leaves its manifest alone.
#[test]
fn a_repository_is_started_only_with_init() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let r = new_release(0, "stable", vec![("linux-x86_64".into(), example(1))]);
    let strict = || {
        deltapack_release::Packager::new(&repo)
            .keys(vec![key(1)])
            .now(NOW)
    };
    match strict().release(&r, None, &|_| {}) {
        Err(Error::NoManifest { path }) => assert_eq!(path, repo.join("manifest.json")),
        other => panic!("{other:?}"),
    }
    assert!(!repo.exists(), "nothing written");
    for e in [
        strict()
            .promote(&version(0), None, "beta", 100, &|_| {})
            .unwrap_err(),
        strict().refresh().unwrap_err(),
        strict()
            .yank(&version(0), Some("bad"), &|_| {})
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::NoManifest { .. }), "{e}");
    }
    assert!(!repo.exists(), "nothing written");

    strict().init(true).release(&r, None, &|_| {}).unwrap();
    let first = fs_err::read(repo.join("manifest.json")).unwrap();
    let again = new_release(1, "stable", vec![("linux-x86_64".into(), example(2))]);
    match strict().init(true).release(&again, None, &|_| {}) {
        Err(Error::AlreadyARepository { path, sequence }) => {
            assert_eq!((path, sequence), (repo.join("manifest.json"), 1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fs_err::read(repo.join("manifest.json")).unwrap(), first);
    let s = strict().release(&again, None, &|_| {}).unwrap();
    assert_eq!(s.manifest.map(|m| m.sequence), Some(2));
    ok(&repo);
}
