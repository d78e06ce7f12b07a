//! Check, plan, download, apply, install, fall back, roll back; refusals.

use deltapack_client::{Error, Event};
use deltapack_manifest::Error as ManifestError;
use deltapack_release::RolloutChange;

use crate::fixture::*;

#[test]
fn update_through_one_delta_then_roll_back() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().expect("an update");
    assert_eq!(up.version, v("1.2.0"));
    assert_eq!(up.from, Some(v("1.0.0")));
    assert_eq!(up.notes, "notes 1.2.0");
    assert_eq!(up.path.steps.len(), 1, "{:?}", up.path);
    assert_eq!(up.path.steps[0].from, Some(v("1.0.0")));
    assert!(up.download_bytes < up.full_bytes / 2);
    let events = std::sync::Mutex::new(Vec::new());
    let d = u
        .download(&up, &|e| events.lock().unwrap().push(format!("{e:?}")))
        .unwrap();
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("Downloading"))
    );
    let s = u.apply(&d, &|_| {}).unwrap();
    assert!(s.fallback().is_none());
    assert_eq!(s.steps(), ["delta 1.0.0->1.2.0"]);
    // Not switched yet: the old version still runs.
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert!(u.check().unwrap().is_none(), "up to date");
    assert!(matches!(
        u.check_version(&v("1.2.0")),
        Err(Error::AlreadyInstalled { .. })
    ));
    let h = u.history().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[1].action.as_str(), h[1].result.as_str()),
        ("update", "ok")
    );
    assert_eq!(h[1].bytes, up.download_bytes);
    let st = u.status().unwrap();
    assert_eq!(st.current, Some(v("1.2.0")));
    assert_eq!(st.installed, vec![v("1.0.0"), v("1.2.0")]);
    assert!(st.last_sequence >= 3);
    serde_json::to_string(&st).unwrap();

    // A crash mid-append leaves a torn last line: every earlier entry
    // survives, and appending goes on after it.
    use std::io::Write as _;
    let mut f = fs_err::OpenOptions::new()
        .append(true)
        .open(root.join(".deltapack/history.jsonl"))
        .unwrap();
    f.write_all(b"{\"time\":17,\"action\":\"upd").unwrap();
    drop(f);
    assert_eq!(u.history().unwrap().len(), 2);

    assert_eq!(u.rollback().unwrap(), v("1.0.0"));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    let h = u.history().unwrap();
    assert_eq!(
        h.len(),
        3,
        "the rollback is recorded after the torn line: {h:?}"
    );
    assert_eq!(h[2].action.as_str(), "rollback");
    let next = u.check().unwrap().unwrap();
    assert_eq!(
        next.version,
        v("1.1.0"),
        "1.2.0, rolled back from, is not offered again"
    );
    assert!(matches!(u.rollback(), Err(Error::NoRollbackTarget)));
}

#[test]
fn update_through_a_chain_of_deltas() {
    let (r, _t, root) = installed(1, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    let hops: Vec<_> = up.path.steps.iter().map(|s| s.to.to_string()).collect();
    assert_eq!(hops, ["1.1.0", "1.2.0"], "{:?}", up.path);
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    let h = u.history().unwrap();
    assert_eq!(h[1].path, ["delta 1.0.0->1.1.0", "delta 1.1.0->1.2.0"]);
}

#[test]
fn modified_base_falls_back_to_the_full_bundle() {
    let (r, _t, root) = installed(5, "1.0.0");
    // A user (or an antivirus) changed an installed file.
    fs_err::write(root.join("versions/1.0.0/share/config.json"), "{}").unwrap();
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    assert!(!up.path.is_full());
    let fallbacks = std::sync::Mutex::new(0);
    let d = u.download(&up, &|_| {}).unwrap();
    let s = u
        .apply(&d, &|e| {
            if matches!(e, Event::Fallback { .. }) {
                *fallbacks.lock().unwrap() += 1;
            }
        })
        .unwrap();
    assert_eq!(*fallbacks.lock().unwrap(), 1);
    assert!(
        s.fallback().unwrap().contains("config.json"),
        "{:?}",
        s.fallback()
    );
    assert_eq!(s.steps(), ["full 1.2.0"]);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    let h = u.history().unwrap();
    assert!(h[1].note.as_deref().unwrap().contains("full bundle"));
}

#[test]
fn untrusted_expired_tampered_and_replayed_manifests_are_refused() {
    let r = repo(5);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    let other = deltapack_manifest::SecretKey::from_seed([9; 32]);
    let u = deltapack_client::Updater::builder()
        .repository(r.server.url())
        .public_key(other.public())
        .platform(PLATFORM)
        .install_dir(&root)
        .now(NOW + 10)
        .build()
        .unwrap();
    assert!(matches!(
        u.check(),
        Err(Error::Manifest {
            source: ManifestError::UntrustedKeys { .. },
            ..
        })
    ));
    // Another install whose clock is a year on: expired. (Not `root`: an
    // install that has seen that time keeps it as its time floor and would
    // refuse the manifest below too, see `clock.rs`.)
    let late = r
        .updater(&t.path().join("late"))
        .now(NOW + 365 * 86_400)
        .build()
        .unwrap();
    assert!(matches!(
        late.check(),
        Err(Error::Manifest {
            source: ManifestError::Expired { .. },
            ..
        })
    ));

    let u = r.updater(&root).build().unwrap();
    let old = fs_err::read(r.path().join("manifest.json")).unwrap();
    u.check().unwrap();
    // A newer manifest is accepted; then the old one (a replay) is not.
    r.packager().refresh().unwrap();
    u.check().unwrap();
    let newer = fs_err::read(r.path().join("manifest.json")).unwrap();
    fs_err::write(r.path().join("manifest.json"), &old).unwrap();
    assert!(matches!(u.check(), Err(Error::Rollback { .. })));
    let text = String::from_utf8(newer)
        .unwrap()
        .replacen("notes 1.2.0", "notes 6.6.6", 1);
    fs_err::write(r.path().join("manifest.json"), text).unwrap();
    assert!(matches!(
        u.check(),
        Err(Error::Manifest {
            source: ManifestError::BadSignature { .. },
            ..
        })
    ));
    assert!(!root.join("current").exists(), "nothing was installed");
}

#[test]
fn staged_rollout_and_yank() {
    let (r, _t, root) = installed(5, "1.1.0");
    r.packager()
        .rollout("stable", None, RolloutChange::Percent(0))
        .unwrap();
    let u = r.updater(&root).build().unwrap();
    assert!(u.check().unwrap().is_none(), "0% rollout offers nothing");
    let manual = u.check_with(true, &|_| {}).unwrap().unwrap();
    assert_eq!(
        manual.version,
        v("1.2.0"),
        "a manual check skips the rollout"
    );
    r.packager()
        .rollout("stable", None, RolloutChange::Percent(100))
        .unwrap();
    u.update(false, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    // 1.2.0 turns out bad: installs on it are offered 1.1.0 again.
    r.packager()
        .yank(&v("1.2.0"), Some("bad"), &|_| {})
        .unwrap();
    let down = u.check().unwrap().unwrap();
    assert_eq!(down.version, v("1.1.0"));
    assert!(
        !down.path.is_full(),
        "through the downgrade delta: {:?}",
        down.path
    );
    let s = {
        let d = u.download(&down, &|_| {}).unwrap();
        u.apply(&d, &|_| {}).unwrap()
    };
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.1.0"));
}

#[test]
fn downloads_resume_and_damaged_parts_are_discarded() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    let a = &up.path.steps[0].artifact;
    let bytes = fs_err::read(r.path().join(&a.path)).unwrap();
    let dl = root.join(".deltapack/downloads");
    let part = dl.join(format!("{}.part", a.blake3));
    // Half of it arrived before the connection dropped.
    fs_err::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let fetched = std::sync::Mutex::new(0);
    u.download(&up, &|e| {
        if let Event::Downloaded { bytes, .. } = e {
            *fetched.lock().unwrap() = bytes;
        }
    })
    .unwrap();
    assert_eq!(
        *fetched.lock().unwrap(),
        (bytes.len() - bytes.len() / 2) as u64,
        "resumed"
    );
    let done = dl.join(format!("{}.dpk", a.blake3));
    assert_eq!(fs_err::read(&done).unwrap(), bytes);
    // A part file with wrong bytes (left by a misbehaving server): the
    // hash check after the resume catches it, the part is discarded, and
    // the package is downloaded once more from zero.
    fs_err::remove_file(&done).unwrap();
    let mut wrong = bytes[..bytes.len() / 2].to_vec();
    wrong[10] ^= 0xff;
    fs_err::write(&part, &wrong).unwrap();
    let d = u.download(&up, &|_| {}).unwrap();
    assert!(d.fallback().is_none());
    assert!(!part.exists());
    assert_eq!(fs_err::read(&done).unwrap(), bytes);
}

#[test]
fn one_updater_at_a_time_and_transport_rules() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    let hold = |name: &str| {
        let path = root.join(".deltapack").join(name);
        fs_err::write(&path, "4242").unwrap();
        let f = fs_err::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .into_parts()
            .0;
        f.try_lock().unwrap();
        f
    };
    // Another updater changing the install: no apply, no install...
    let lock = hold("lock");
    let e = u.download_and_apply(&up, &|_| {}).unwrap_err();
    assert!(matches!(e, Error::Busy { pid: Some(4242) }), "{e:?}");
    assert!(e.to_string().contains("pid 4242"), "{e}");
    // ...but a download goes on: it has its own lock.
    u.download(&up, &|_| {}).unwrap();
    drop(lock);
    let downloading = hold("downloads.lock");
    assert!(matches!(
        u.download(&up, &|_| {}),
        Err(Error::Busy { pid: Some(4242) })
    ));
    drop(downloading);
    u.download(&up, &|_| {}).unwrap();
    for bad in ["http://updates.example.com/", "ftp://x/"] {
        let e = deltapack_client::Updater::builder()
            .repository(bad)
            .public_key(key().public())
            .platform(PLATFORM)
            .install_dir(&root)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Repository { .. }), "{bad}");
    }
    // A local directory works as a repository too.
    let t2 = tempfile::tempdir().unwrap();
    let local = deltapack_client::Updater::builder()
        .repository(r.path().to_str().unwrap())
        .public_key(key().public())
        .platform(PLATFORM)
        .install_dir(t2.path())
        .now(NOW + 10)
        .build()
        .unwrap();
    assert_eq!(local.update(true, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(t2.path()), manifest_digest(&r, "1.2.0"));
}

#[test]
fn a_version_that_never_reports_healthy_is_rolled_back() {
    use deltapack_client::Launch;
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).health_launches(2).build().unwrap();
    assert_eq!(
        u.launched().unwrap(),
        Launch::Healthy,
        "a first install is not on probation"
    );
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(u.launched().unwrap(), Launch::OnProbation { launches: 1 });
    assert_eq!(u.launched().unwrap(), Launch::OnProbation { launches: 2 });
    let p = u.status().unwrap().on_probation.unwrap();
    assert_eq!((p.version, p.launches), (v("1.2.0"), 2));
    assert_eq!(
        u.launched().unwrap(),
        Launch::RolledBack {
            from: v("1.2.0"),
            to: v("1.0.0")
        }
    );
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    assert_eq!(
        u.history().unwrap().last().unwrap().action.as_str(),
        "auto-rollback"
    );
    // The bad version is not offered again; the next good one is, and
    // once it reports healthy it stays.
    let next = u.check().unwrap().unwrap();
    assert_eq!(next.version, v("1.1.0"));
    u.update(false, &|_| {}).unwrap();
    assert_eq!(u.launched().unwrap(), Launch::OnProbation { launches: 1 });
    u.mark_healthy().unwrap();
    for _ in 0..5 {
        assert_eq!(u.launched().unwrap(), Launch::Healthy);
    }
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.1.0"));
}

#[test]
fn an_interrupted_install_is_finished_or_undone() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    let s = u
        .apply(&u.download(&up, &|_| {}).unwrap(), &|_| {})
        .unwrap();
    // Killed after the journal, before the switch: undone.
    let journal = serde_json::json!({"entry": {
        "time": 1, "action": "update", "from": "1.0.0", "to": "1.2.0",
        "path": ["delta 1.0.0->1.2.0"], "bytes": 5, "result": "ok"}});
    fs_err::write(root.join(".deltapack/journal.json"), journal.to_string()).unwrap();
    fs_err::create_dir_all(root.join("versions/.1.2.0.dpk-abc123/bin")).unwrap();
    let rec = u.recover().unwrap();
    assert_eq!(rec.undone.as_deref(), Some("1.0.0 -> 1.2.0"));
    assert_eq!(rec.removed, ["versions/.1.2.0.dpk-abc123"]);
    assert_eq!(
        u.history().unwrap().last().unwrap().result.as_str(),
        "interrupted"
    );
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    // Killed after the switch, before the record: finished.
    fs_err::write(root.join(".deltapack/journal.json"), journal.to_string()).unwrap();
    std::os::unix::fs::symlink("versions/1.2.0", root.join(".current-x.tmp")).unwrap();
    fs_err::rename(root.join(".current-x.tmp"), root.join("current")).unwrap();
    let rec = u.recover().unwrap();
    assert_eq!(rec.finished.as_deref(), Some("1.0.0 -> 1.2.0"));
    let last = u.history().unwrap().last().unwrap().clone();
    assert_eq!((last.to, last.result.as_str()), (v("1.2.0"), "ok"));
    assert!(u.recover().unwrap().is_empty());
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    drop(s);
}

#[test]
fn old_versions_are_pruned_beyond_the_ones_kept() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).keep_versions(1).build().unwrap();
    let up = u.check_version(&v("1.1.0")).unwrap();
    u.install(
        &u.apply(&u.download(&up, &|_| {}).unwrap(), &|_| {})
            .unwrap(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(u.status().unwrap().installed, vec![v("1.0.0"), v("1.1.0")]);
    u.update(false, &|_| {}).unwrap();
    // Current plus one previous.
    assert_eq!(u.status().unwrap().installed, vec![v("1.1.0"), v("1.2.0")]);
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
    assert_eq!(u.rollback().unwrap(), v("1.1.0"));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.1.0"));
}

#[test]
fn corrupt_copies_on_the_server_are_never_held_against_the_release() {
    let (r, _t, root) = installed(5, "1.0.0");
    // The server's copy of every 1.2.0 package is corrupt (a bad mirror).
    let dir = r.path().join("pkg/linux-x86_64/1.2.0");
    let mut good = Vec::new();
    for entry in fs_err::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let b = fs_err::read(&p).unwrap();
        let mut bad = b.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        fs_err::write(&p, bad).unwrap();
        good.push((p, b));
    }
    let u = r.updater(&root).build().unwrap();
    for attempt in 0..4 {
        assert_eq!(
            u.check().unwrap().unwrap().version,
            v("1.2.0"),
            "attempt {attempt}: still offered"
        );
        let e = u.update(false, &|_| {}).unwrap_err();
        assert!(matches!(e, Error::ArtifactHash { .. }), "{e:?}");
        assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    }
    assert!(u.status().unwrap().refused.is_empty());
    let h = u.history().unwrap();
    let last = h.last().unwrap();
    assert_eq!(last.result.as_str(), "failed");
    let note = last.note.as_deref().unwrap();
    assert!(
        note.starts_with("delta failed: ") && note.contains("the full bundle failed too"),
        "{note}"
    );
    // The mirror is fixed: the newest release installs.
    for (p, b) in good {
        fs_err::write(p, b).unwrap();
    }
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

/// Re-signs the repository's manifest after `edit`.
fn resign(r: &Repo, edit: impl FnOnce(&mut deltapack_manifest::Manifest)) {
    let bytes = fs_err::read(r.path().join("manifest.json")).unwrap();
    let keys = [key().public()];
    let mut m = deltapack_manifest::Verifier::new(&keys)
        .ignore_expiry()
        .verify(&bytes)
        .unwrap()
        .into_manifest();
    edit(&mut m);
    m.sequence += 1;
    fs_err::write(
        r.path().join("manifest.json"),
        deltapack_manifest::sign(&m, &[key()]).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_verified_full_bundle_that_never_installs_is_refused_after_three_attempts() {
    let (r, _t, root) = installed(5, "1.0.0");
    // A signed manifest whose 1.2.0 packages are 1.1.0's full bundle (their
    // size and hash are right for that file): the bytes verify, the header
    // is not 1.2.0's. This is the publisher's mistake, not the network's.
    resign(&r, |m| {
        let other = m.release(&v("1.1.0")).unwrap().platforms[PLATFORM]
            .full
            .clone();
        let copy = |name: &str| {
            fs_err::copy(r.path().join(&other.path), r.path().join(name)).unwrap();
            deltapack_manifest::Artifact {
                path: name.into(),
                ..other.clone()
            }
        };
        let full = copy("pkg/copy-full.dpk");
        let b = m
            .release_mut(&v("1.2.0"))
            .unwrap()
            .platforms
            .get_mut(PLATFORM)
            .unwrap();
        b.full = full;
        for (i, d) in b.deltas.iter_mut().enumerate() {
            d.artifact = copy(&format!("pkg/copy-{i}.dpk"));
        }
    });
    let u = r.updater(&root).build().unwrap();
    for attempt in 0..3 {
        assert_eq!(
            u.check().unwrap().unwrap().version,
            v("1.2.0"),
            "attempt {attempt}"
        );
        let e = u.update(false, &|_| {}).unwrap_err();
        assert!(
            matches!(
                e,
                Error::WrongPackage {
                    field: deltapack_client::HeaderField::ToVersion,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));
    }
    // No update loop: 1.2.0 is refused, with the reason and the way out.
    let st = u.status().unwrap();
    assert_eq!(st.refused.len(), 1);
    let refused = &st.refused[0];
    assert_eq!(refused.version, v("1.2.0"));
    assert_eq!(refused.reason, deltapack_client::RefusalReason::Broken);
    assert_eq!(refused.clear_with, "deltapack update allow 1.2.0");
    assert!(
        refused
            .detail
            .as_deref()
            .unwrap()
            .contains("target version")
    );
    assert_eq!(u.check().unwrap().unwrap().version, v("1.1.0"));
    assert!(
        u.diagnose()
            .iter()
            .any(|c| c.name == "refused" && c.advice.contains("allow 1.2.0"))
    );
    // Allowed again, it is offered again.
    assert!(u.allow(&v("1.2.0")).unwrap());
    assert!(!u.allow(&v("1.2.0")).unwrap());
    assert_eq!(u.check().unwrap().unwrap().version, v("1.2.0"));
}

#[test]
fn a_package_for_another_version_is_refused_and_the_full_bundle_used() {
    let (r, _t, root) = installed(5, "1.0.0");
    // A signed manifest whose 1.0.0 -> 1.2.0 entry names the 1.0.0 -> 1.1.0
    // package (right size and hash for that file): mix-and-match.
    let copy = "pkg/copy.dpk";
    resign(&r, |m| {
        let other = m.release(&v("1.1.0")).unwrap().platforms[PLATFORM].deltas[0]
            .artifact
            .clone();
        fs_err::copy(r.path().join(&other.path), r.path().join(copy)).unwrap();
        let target = m.release_mut(&v("1.2.0")).unwrap();
        let d = target.platforms.get_mut(PLATFORM).unwrap();
        d.deltas[0].artifact = deltapack_manifest::Artifact {
            path: copy.into(),
            ..other
        };
    });
    let u = r.updater(&root).build().unwrap();
    let up = u.check().unwrap().unwrap();
    assert_eq!(up.path.steps[0].artifact.path, copy);
    let s = u
        .apply(&u.download(&up, &|_| {}).unwrap(), &|_| {})
        .unwrap();
    let why = s.fallback().unwrap();
    assert!(
        why.contains("not the package the manifest describes"),
        "{why}"
    );
    assert_eq!(s.steps(), ["full 1.2.0"]);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

/// The cache holds only what a later install can use: after an install,
/// the packages it used (and those of older versions) are gone, a
/// downloaded newer update stays; the history records the bytes of the
/// packages used even when an earlier `download` fetched them.
#[test]
fn the_download_cache_keeps_only_what_a_later_install_can_use() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    let cached = || -> Vec<String> {
        let mut v: Vec<String> = match fs_err::read_dir(root.join(".deltapack/downloads")) {
            Ok(d) => d
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    };
    // The newest update downloaded in the background, then 1.1.0
    // installed on purpose.
    let newest = u.check().unwrap().unwrap();
    u.download(&newest, &|_| {}).unwrap();
    let to_11 = u.check_version(&v("1.1.0")).unwrap();
    let d = u.download(&to_11, &|_| {}).unwrap();
    let s = u.apply(&d, &|_| {}).unwrap();
    u.install(&s, &|_| {}).unwrap();
    let h = u.history().unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.to.clone(), last.bytes),
        (v("1.1.0"), to_11.download_bytes)
    );
    assert!(last.bytes > 0);
    let want: Vec<String> = newest
        .path
        .steps
        .iter()
        .map(|s| format!("{}.dpk", s.artifact.blake3))
        .collect();
    assert_eq!(cached(), want, "only 1.2.0's download is left");
    // Installing it: its packages are counted although fetched earlier,
    // and the cache is empty afterwards.
    let up = u.check().unwrap().unwrap();
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    assert_eq!(s.bytes(), up.download_bytes);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(cached(), Vec::<String>::new());
    // A part left by an interrupted download of a version now older goes
    // at the next install too.
    let part = root.join(".deltapack/downloads/0000.part");
    fs_err::write(&part, b"stale").unwrap();
    let back = u.check_version(&v("1.1.0")).unwrap();
    let s = u.download_and_apply(&back, &|_| {}).unwrap();
    u.install(&s, &|_| {}).unwrap();
    assert!(!part.exists());
}
