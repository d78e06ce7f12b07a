//! Clock skew (ADVERSARIAL row 18): the install persists the latest time it
//! knows has passed (`time_floor` in `.deltapack/state.json`) and checks
//! manifest expiry against `max(clock, floor)`, so a clock stepped back does
//! not revive an expired manifest, and an untrusted far-future manifest
//! cannot push the floor.

use std::path::{Path, PathBuf};

use deltapack_client::{Error, Level};
use deltapack_manifest::Error as ManifestError;

use crate::fixture::*;

const DAY: u64 = 86_400;

/// What is installed: where `current` points, the digest of every version
/// tree on disk, and the packages downloaded.
fn snapshot(root: &Path) -> (PathBuf, String, Vec<String>) {
    let link = fs_err::read_link(root.join("current")).unwrap();
    let versions = deltapack_tree::Tree::scan(&root.join("versions"))
        .unwrap()
        .id();
    let mut downloads: Vec<String> = match fs_err::read_dir(root.join(".deltapack/downloads")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    downloads.sort();
    (link, deltapack_tree::hex(&versions.digest), downloads)
}

/// The persisted time floor (absent: `None`).
fn floor(root: &Path) -> Option<u64> {
    let bytes = fs_err::read(root.join(".deltapack/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v.get("time_floor").map(|t| t.as_u64().unwrap())
}

fn expired(e: &Error, expires: u64, now: u64) -> bool {
    matches!(e, Error::Manifest { source: ManifestError::Expired { expires: x, now: n }, .. } if *x == expires && *n == now)
}

#[test]
fn a_clock_stepped_back_does_not_revive_an_expired_manifest() {
    // The manifest is issued at NOW and expires at NOW + 30 days.
    let (r, _t, root) = installed(5, "1.0.0");
    let before = snapshot(&root);

    // Day 1: accepted (an update is on offer).
    let day1 = r.updater(&root).now(NOW + DAY).build().unwrap();
    assert_eq!(day1.check().unwrap().unwrap().version, v("1.2.0"));
    assert_eq!(floor(&root), Some(NOW + DAY));

    // Day 40: the manifest has expired (frozen repository).
    let day40 = r.updater(&root).now(NOW + 40 * DAY).build().unwrap();
    let e = day40.check().unwrap_err();
    assert!(expired(&e, NOW + 30 * DAY, NOW + 40 * DAY), "{e:?}");
    assert_eq!(floor(&root), Some(NOW + 40 * DAY), "the clock was seen");

    // The clock is stepped back to day 1: still expired, judged at day 40.
    let back = r.updater(&root).now(NOW + DAY).build().unwrap();
    let e = back.check().unwrap_err();
    assert!(expired(&e, NOW + 30 * DAY, NOW + 40 * DAY), "{e:?}");
    let e = back.update(true, &|_| {}).unwrap_err();
    assert!(expired(&e, NOW + 30 * DAY, NOW + 40 * DAY), "{e:?}");
    assert_eq!(floor(&root), Some(NOW + 40 * DAY), "never lowered");
    // Doctor says why: the clock is behind the floor, and the manifest is
    // expired at the floor.
    let checks = back.diagnose();
    let clock = checks.iter().find(|c| c.name == "clock").unwrap();
    assert_eq!(clock.level, Level::Warn);
    assert!(
        clock.detail.contains(&(NOW + 40 * DAY).to_string()),
        "{clock:?}"
    );
    let repo_check = checks.iter().find(|c| c.name == "repository").unwrap();
    assert_eq!(repo_check.level, Level::Fail);
    assert!(repo_check.detail.contains("expired"), "{repo_check:?}");
    assert!(!day40.diagnose().iter().any(|c| c.name == "clock"));
    assert_eq!(snapshot(&root), before, "the install is untouched");
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.0.0"));

    // The publisher re-signs on day 41: the client, still at day 1, accepts
    // it, and its issue time (signed) raises the floor.
    r.packager().now(NOW + 41 * DAY).refresh().unwrap();
    assert_eq!(back.check().unwrap().unwrap().version, v("1.2.0"));
    assert_eq!(floor(&root), Some(NOW + 41 * DAY));
    assert_eq!(back.update(true, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(current_digest(&root), manifest_digest(&r, "1.2.0"));
}

#[test]
fn a_signed_issue_time_raises_the_floor() {
    let (r, _t, root) = installed(5, "1.0.0");
    let u = r.updater(&root).now(NOW + DAY).build().unwrap();
    // Re-signed on day 20 (the client's clock is at day 1): accepted, and
    // the floor is day 20.
    r.packager().now(NOW + 20 * DAY).refresh().unwrap();
    u.check().unwrap().unwrap();
    assert_eq!(floor(&root), Some(NOW + 20 * DAY));
    // A later sequence that was issued on day 2 and expired on day 12 (a
    // stale re-sign held back and replayed): refused although the clock
    // (day 1) is before its expiry.
    let before = snapshot(&root);
    r.packager()
        .now(NOW + 2 * DAY)
        .expires_in(10 * DAY)
        .refresh()
        .unwrap();
    let e = u.check().unwrap_err();
    assert!(expired(&e, NOW + 12 * DAY, NOW + 20 * DAY), "{e:?}");
    assert_eq!(floor(&root), Some(NOW + 20 * DAY));
    assert_eq!(snapshot(&root), before);
}

#[test]
fn an_untrusted_far_future_manifest_does_not_move_the_floor() {
    let (r, _t, root) = installed(5, "1.0.0");
    let before = snapshot(&root);
    let genuine = fs_err::read(r.path().join("manifest.json")).unwrap();
    let keys = [key().public()];
    let mut m = deltapack_manifest::Verifier::new(&keys)
        .ignore_expiry()
        .verify(&genuine)
        .unwrap()
        .into_manifest();
    // Issued in 1000 days, signed by a key the client does not trust.
    m.sequence += 10;
    m.issued = NOW + 1000 * DAY;
    m.expires = NOW + 1030 * DAY;
    let other = deltapack_manifest::SecretKey::from_seed([9; 32]);
    let forged = deltapack_manifest::sign(&m, &[other]).unwrap();
    fs_err::write(r.path().join("manifest.json"), &forged).unwrap();
    let u = r.updater(&root).now(NOW + DAY).build().unwrap();
    let e = u.check().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Manifest {
                source: ManifestError::UntrustedKeys { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(floor(&root), Some(NOW + DAY), "only the clock was seen");
    // The same forgery with its signature re-labelled as the trusted key.
    let relabelled =
        String::from_utf8(forged)
            .unwrap()
            .replacen(&other_id(), &key().public().id(), 1);
    fs_err::write(r.path().join("manifest.json"), relabelled).unwrap();
    let e = u.check().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Manifest {
                source: ManifestError::BadSignature { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(floor(&root), Some(NOW + DAY));
    assert_eq!(snapshot(&root), before);
    // The genuine manifest still verifies at the real time.
    fs_err::write(r.path().join("manifest.json"), &genuine).unwrap();
    assert_eq!(u.check().unwrap().unwrap().version, v("1.2.0"));
    assert_eq!(
        floor(&root),
        Some(NOW + DAY),
        "issued NOW is below the clock"
    );
}

fn other_id() -> String {
    deltapack_manifest::SecretKey::from_seed([9; 32])
        .public()
        .id()
}

#[test]
fn a_state_file_without_the_floor_still_parses() {
    let (r, _t, root) = installed(5, "1.0.0");
    let state = root.join(".deltapack/state.json");
    let sequence = serde_json::from_slice::<serde_json::Value>(&fs_err::read(&state).unwrap())
        .unwrap()["last_sequence"]
        .as_u64()
        .unwrap();
    // As written before `time_floor` existed.
    let old = format!(
        r#"{{
  "install_id": "e86e90796b3c7dc969216e2894553a8c",
  "last_sequence": {sequence},
  "last_check": {},
  "refused": ["1.1.0"],
  "pending": null,
  "failures": {{}}
}}"#,
        NOW + 10
    );
    fs_err::write(&state, &old).unwrap();
    deltapack_client::fuzzing::local_state(old.as_bytes());
    let u = r.updater(&root).now(NOW + DAY).build().unwrap();
    let s = u.status().unwrap();
    assert_eq!(s.last_sequence, sequence);
    assert_eq!(s.last_check, Some(NOW + 10));
    assert_eq!(
        s.refused
            .iter()
            .map(|r| r.version.clone())
            .collect::<Vec<_>>(),
        [v("1.1.0")]
    );
    assert_eq!(floor(&root), None);
    // A check works and writes the floor.
    assert_eq!(u.check().unwrap().unwrap().version, v("1.2.0"));
    assert_eq!(floor(&root), Some(NOW + DAY));
    assert_eq!(u.status().unwrap().refused[0].version, v("1.1.0"));
}
