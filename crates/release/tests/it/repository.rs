//! A repository of 5 versions x 3 platforms: every package applies, the
//! repository verifies, reruns are byte-identical and build nothing, shards
//! merge to the same bytes as one run, and tampering is named exactly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deltapack_apply::Applier;
use deltapack_manifest::{Error as ManifestError, sign};
use deltapack_release::{Defect, Error, Shard, verify_repo};

use crate::fixture::*;

/// One 5-version repository shared by the read-only tests (and copied by
/// the others); `work` keeps the plain trees of every version.
struct Shared {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    work: PathBuf,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let work = dir.path().join("work");
        publish(&repo, &work, 5, "stable");
        Shared {
            _dir: dir,
            repo,
            work,
        }
    })
}

fn verify(repo: &Path) -> deltapack_release::VerifyReport {
    verify_repo(repo, &[key(1).public()], Some(NOW), &|_| {}).unwrap()
}

#[test]
fn every_package_rebuilds_its_version() {
    let s = shared();
    let m = manifest(&s.repo);
    assert_eq!(m.releases.len(), 5);
    assert_eq!(m.channels["stable"].releases.len(), 5);
    let mut deltas = 0;
    for (i, r) in m.releases.iter().enumerate() {
        assert_eq!(r.version, version(i));
        assert_eq!(r.notes, format!("Release {}", version(i)));
        assert_eq!(r.platforms.len(), 3);
        for p in PLATFORMS {
            let b = &r.platforms[p];
            let tree = s.work.join(format!("trees/{i}/{p}"));
            assert_eq!(b.tree.digest, digest(&tree), "{p} {i}");
            // Every earlier version (K = 5) has a delta or a recorded reason
            // for not having one.
            let mut bases: Vec<_> = b.deltas.iter().map(|d| d.from.clone()).collect();
            bases.extend(b.no_delta_from.iter().cloned());
            bases.sort();
            assert_eq!(bases, (0..i).map(version).collect::<Vec<_>>(), "{p} {i}");
            let out = tempfile::tempdir().unwrap();
            let full = s.repo.join(&b.full.path);
            Applier::new()
                .apply(
                    None,
                    fs_err::File::open(full).unwrap(),
                    &out.path().join("f"),
                    &|_| {},
                )
                .unwrap();
            assert_eq!(digest(&out.path().join("f")), b.tree.digest);
            for d in &b.deltas {
                deltas += 1;
                let j = d.from.minor as usize;
                let base = s.work.join(format!("trees/{j}/{p}"));
                let pkg = fs_err::File::open(s.repo.join(&d.artifact.path)).unwrap();
                let o = out.path().join(format!("d{j}"));
                Applier::new().apply(Some(&base), pkg, &o, &|_| {}).unwrap();
                assert_eq!(digest(&o), b.tree.digest, "{}", d.artifact.path);
                assert!(d.artifact.size * 10 <= b.full.size * 9);
            }
        }
    }
    assert!(deltas >= 20, "most deltas are worth keeping: {deltas}");
    let report = verify(&s.repo);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.deltas_applied, deltas);
    assert_eq!(report.artifacts, deltas + 15);
    let size = fs_err::metadata(s.repo.join("manifest.json"))
        .unwrap()
        .len();
    assert!(size < 24 * 1024, "manifest of 5 x 3 builds is {size} bytes");
}

#[test]
fn rerun_builds_nothing_and_changes_nothing() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let before = files(&repo);
    let (given, _) = inputs(&s.work, 4);
    let summary = packager(&repo)
        .now(NOW + 999)
        .release(&new_release(4, "stable", given), None, &|_| {})
        .unwrap();
    assert!(summary.built.is_empty(), "{:?}", summary.built);
    assert_eq!(
        files(&repo),
        before,
        "a rerun must not touch the repository"
    );
}

#[test]
fn rebuilt_packages_replace_damaged_ones() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let before = files(&repo);
    let m = manifest(&repo);
    let victim = m.releases[4].platforms["linux-x86_64"].deltas[0]
        .artifact
        .path
        .clone();
    fs_err::write(repo.join(&victim), b"garbage").unwrap();
    let (given, _) = inputs(&s.work, 4);
    let summary = packager(&repo)
        .release(&new_release(4, "stable", given), None, &|_| {})
        .unwrap();
    let built: Vec<_> = summary.built.iter().map(|b| b.path.clone()).collect();
    assert_eq!(built, vec![victim]);
    assert_eq!(
        files(&repo),
        before,
        "deterministic rebuild restores the same bytes"
    );
}

#[test]
fn independent_runs_and_shards_give_identical_bytes() {
    let s = shared();
    let expected = files(&s.repo);
    // A second run from scratch, on another machine's worth of temp dirs.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again");
    publish(&again, &s.work, 5, "stable");
    assert_eq!(files(&again), expected, "two runs, same bytes");

    // Versions 0-3 in one run, then version 4 split over 3 shards that run
    // in separate copies (CI matrix jobs) and are merged.
    let base = dir.path().join("base");
    publish(&base, &s.work, 4, "stable");
    // Shard 0 runs in its own copy of the repository; shards 1 and 2 write
    // only what they build into an output directory (`--out`).
    let mut shard_dirs = Vec::new();
    for index in 0..3 {
        let (given, _) = inputs(&s.work, 4);
        let mut p = deltapack_release::Packager::new(&base)
            .trust(vec![key(1).public()])
            .now(NOW)
            .clamp_mtime(Some(EPOCH));
        let out = if index == 0 {
            let copy = dir.path().join("shard0");
            copy_repo(&base, &copy);
            p = deltapack_release::Packager::new(&copy)
                .trust(vec![key(1).public()])
                .now(NOW)
                .clamp_mtime(Some(EPOCH));
            copy
        } else {
            let out = dir.path().join(format!("out{index}"));
            p = p.shard_output(&out);
            out
        };
        let summary = p
            .release(
                &new_release(4, "stable", given),
                Some(Shard { index, count: 3 }),
                &|_| {},
            )
            .unwrap();
        assert!(summary.manifest.is_none(), "shards do not sign");
        assert!(summary.shard_record.is_some());
        shard_dirs.push(out);
    }
    assert!(
        !base.join("shards").exists(),
        "--out keeps the repository untouched"
    );
    // Merging with a shard missing is refused.
    let partial = dir.path().join("partial");
    copy_repo(&base, &partial);
    let e = packager(&partial).merge(&shard_dirs[..2]).unwrap_err();
    assert!(
        matches!(e, Error::Shard(ref m) if m.contains("of 3")),
        "{e}"
    );
    packager(&base).merge(&shard_dirs).unwrap();
    assert_eq!(files(&base), expected, "shards + merge == one run");
}

#[test]
fn tampered_artifacts_are_named_with_their_defect() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let m = manifest(&repo);
    let b = &m.releases[3].platforms["macos-aarch64"];
    let flipped = b.deltas[1].artifact.path.clone();
    let truncated = b.deltas[0].artifact.path.clone();
    let deleted = m.releases[2].platforms["windows-x86_64"].deltas[0]
        .artifact
        .path
        .clone();
    let full = m.releases[1].platforms["linux-x86_64"].full.path.clone();
    let mut bytes = fs_err::read(repo.join(&flipped)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs_err::write(repo.join(&flipped), bytes).unwrap();
    let bytes = fs_err::read(repo.join(&truncated)).unwrap();
    fs_err::write(repo.join(&truncated), &bytes[..bytes.len() - 1]).unwrap();
    fs_err::remove_file(repo.join(&deleted)).unwrap();
    let mut bytes = fs_err::read(repo.join(&full)).unwrap();
    bytes[60] ^= 1;
    fs_err::write(repo.join(&full), bytes).unwrap();
    fs_err::write(repo.join("pkg/stray.dpk"), b"x").unwrap();

    let r = verify(&repo);
    assert!(!r.ok());
    let find = |path: &str| {
        r.problems
            .iter()
            .filter(|p| p.path == path)
            .map(|p| &p.defect)
            .collect::<Vec<_>>()
    };
    assert!(matches!(find(&flipped)[..], [Defect::Hash { .. }]));
    assert!(
        matches!(find(&truncated)[..], [Defect::Size { expected, found }] if *found + 1 == *expected)
    );
    assert!(matches!(find(&deleted)[..], [Defect::Missing]));
    assert!(matches!(find(&full)[..], [Defect::Hash { .. }]));
    assert!(matches!(find("pkg/stray.dpk")[..], [Defect::Unlisted]));
    // Deltas from the damaged full bundle's version cannot be checked.
    let from_1 = r
        .problems
        .iter()
        .filter(|p| matches!(&p.defect, Defect::Base(b) if b == "linux-x86_64 1.1.0"))
        .count();
    assert_eq!(from_1, 3, "{:?}", r.problems);
    assert_eq!(r.problems.len(), 5 + from_1, "{:?}", r.problems);
}

#[test]
fn manifest_tampering_and_wrong_keys_fail_closed() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let path = repo.join("manifest.json");
    let original = fs_err::read_to_string(&path).unwrap();
    let manifest_error =
        |repo: &Path| match verify_repo(repo, &[key(1).public()], Some(NOW), &|_| {}) {
            Err(Error::Manifest { source, .. }) => source,
            other => panic!("expected a manifest error, got {other:?}"),
        };
    // One changed byte in the signed part.
    let tampered = original.replacen("\"percent\":100", "\"percent\":10", 1);
    fs_err::write(&path, &tampered).unwrap();
    assert!(matches!(
        manifest_error(&repo),
        ManifestError::BadSignature { .. }
    ));
    // No signature.
    let start = original.find("[{").unwrap();
    let end = original.find("}],").unwrap() + 2;
    fs_err::write(
        &path,
        format!("{}[]{}", &original[..start], &original[end..]),
    )
    .unwrap();
    assert!(matches!(
        manifest_error(&repo),
        ManifestError::MissingSignature
    ));
    // Signed by someone else.
    let mut m = manifest(&s.repo);
    m.channels.get_mut("stable").unwrap().releases[4]
        .rollout
        .percent = 1;
    fs_err::write(&path, sign(&m, &[key(9)]).unwrap()).unwrap();
    assert!(matches!(
        manifest_error(&repo),
        ManifestError::UntrustedKeys { .. }
    ));
    // ... and the packager will not extend such a repository either.
    let (given, _) = inputs(&s.work, 4);
    let e = packager(&repo)
        .release(&new_release(4, "stable", given), None, &|_| {})
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Manifest {
            source: ManifestError::UntrustedKeys { .. },
            ..
        }
    ));
    fs_err::write(&path, &original).unwrap();
    // A signed manifest pointing the Linux 1.4 delta at the macOS package
    // (a mix-and-match): hashes match, the header does not.
    let mut m = manifest(&s.repo);
    let mac = m.releases[4].platforms["macos-aarch64"].deltas[0]
        .artifact
        .clone();
    m.releases[4]
        .platforms
        .get_mut("linux-x86_64")
        .unwrap()
        .deltas[0]
        .artifact = deltapack_manifest::Artifact { ..mac.clone() };
    // Paths must be unique, so move the macOS entry to a copy of the file.
    let copy = "pkg/copy.dpk";
    fs_err::copy(repo.join(&mac.path), repo.join(copy)).unwrap();
    m.releases[4]
        .platforms
        .get_mut("linux-x86_64")
        .unwrap()
        .deltas[0]
        .artifact
        .path = copy.into();
    fs_err::write(&path, sign(&m, &[key(1)]).unwrap()).unwrap();
    let r = verify(&repo);
    let real: Vec<_> = r
        .problems
        .iter()
        .filter(|p| !matches!(p.defect, Defect::Unlisted))
        .collect();
    assert!(
        matches!(&real[..], [p] if p.path == copy
            && matches!(&p.defect, Defect::Header { field: "platform", .. })),
        "{:?}",
        r.problems
    );
    // An expired manifest is reported (clients would refuse it).
    fs_err::write(&path, &original).unwrap();
    fs_err::remove_file(repo.join(copy)).unwrap();
    let expires = manifest(&repo).expires;
    let r = verify_repo(&repo, &[key(1).public()], Some(expires), &|_| {}).unwrap();
    assert!(matches!(&r.problems[..], [p] if matches!(p.defect, Defect::Expired { .. })));
}

#[test]
fn key_rotation() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let old_seq = manifest(&repo).sequence;
    // Transition: sign with the old and the new key.
    deltapack_release::Packager::new(&repo)
        .keys(vec![key(1), key(2)])
        .now(NOW)
        .refresh()
        .unwrap();
    let new_only = |repo: &Path, k: u8| verify_repo(repo, &[key(k).public()], Some(NOW), &|_| {});
    assert!(new_only(&repo, 1).unwrap().ok());
    assert!(new_only(&repo, 2).unwrap().ok());
    // After the transition, the new key alone can extend the repository.
    deltapack_release::Packager::new(&repo)
        .keys(vec![key(2)])
        .now(NOW)
        .refresh()
        .unwrap();
    assert!(new_only(&repo, 2).unwrap().ok());
    assert!(matches!(
        new_only(&repo, 1),
        Err(Error::Manifest {
            source: ManifestError::UntrustedKeys { .. },
            ..
        })
    ));
    let bytes = fs_err::read(repo.join("manifest.json")).unwrap();
    let keys = [key(2).public()];
    let m = deltapack_manifest::Verifier::new(&keys)
        .now(NOW)
        .verify(&bytes)
        .unwrap();
    assert_eq!(m.manifest().sequence, old_seq + 2);
}

#[test]
fn same_version_with_other_content_is_refused() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_repo(&s.repo, &repo);
    let before = files(&repo);
    let (mut given, _) = inputs(&s.work, 4);
    given[0].1 = s.work.join("trees/3/linux-x86_64");
    let e = packager(&repo)
        .release(&new_release(4, "stable", given), None, &|_| {})
        .unwrap_err();
    assert!(
        matches!(&e, Error::VersionConflict { version, platform } if version == "1.4.0" && platform == "linux-x86_64"),
        "{e}"
    );
    assert_eq!(files(&repo), before);
}

#[test]
fn deltas_not_clearly_smaller_are_dropped_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let noise = |seed: u64| {
        let mut x = seed;
        (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
    };
    for (i, seed) in [(0, 1u64), (1, 2)] {
        let f = dir.path().join(format!("app{i}.bin"));
        fs_err::write(&f, noise(seed)).unwrap();
        packager(&repo)
            .release(
                &new_release(i, "stable", vec![("any".into(), f)]),
                None,
                &|_| {},
            )
            .unwrap();
    }
    let m = manifest(&repo);
    let b = &m.releases[1].platforms["any"];
    assert!(b.deltas.is_empty());
    assert_eq!(b.no_delta_from, vec![version(0)]);
    assert!(!repo.join("pkg/any/1.1.0/from-1.0.0.dpk").exists());
    // Not retried on the next run.
    let summary = packager(&repo)
        .release(
            &new_release(
                1,
                "stable",
                vec![("any".into(), dir.path().join("app1.bin"))],
            ),
            None,
            &|_| {},
        )
        .unwrap();
    assert!(summary.built.is_empty());
    assert!(verify(&repo).ok());
}

#[test]
fn a_shard_record_pointing_outside_its_place_is_refused() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("repo");
    publish(&base, &s.work, 1, "stable");
    let out = dir.path().join("out");
    let (given, _) = inputs(&s.work, 1);
    let p = deltapack_release::Packager::new(&base)
        .trust(vec![key(1).public()])
        .now(NOW)
        .shard_output(&out);
    for index in 0..2 {
        p.release(
            &new_release(1, "stable", given.clone()),
            Some(Shard { index, count: 2 }),
            &|_| {},
        )
        .unwrap();
    }
    let record = out.join("shards/1.1.0-0-of-2.json");
    let text = fs_err::read_to_string(&record).unwrap();
    let m = manifest(&base);
    let first =
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["built"][0]["artifact"]["path"]
            .as_str()
            .unwrap()
            .to_owned();
    let evil = text.replace(&first, "pkg/../../evil.dpk");
    fs_err::write(&record, evil).unwrap();
    let before = files(&base);
    let e = packager(&base)
        .merge(std::slice::from_ref(&out))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Shard(m) if m.contains("not where its job belongs")),
        "{e}"
    );
    assert!(!dir.path().join("evil.dpk").exists());
    assert_eq!(files(&base), before, "nothing copied or signed");
    assert_eq!(manifest(&base), m);
}

#[test]
fn executable_deltas_use_the_executable_codec_unless_told_not_to() {
    // Two releases of a real x86-64 program: by default its delta is
    // bsdiff-exe; with `executables(false)` it is plain bsdiff, which
    // clients older than bsdiff-exe can apply. Both repositories verify.
    let dir = tempfile::tempdir().unwrap();
    let exe = |v: u32| example(1).join(format!("../../exe/callgraph-v{}", v + 1));
    for (on, op) in [(true, "bsdiff-exe"), (false, "bsdiff")] {
        let repo = dir.path().join(op);
        for i in 0..2 {
            packager(&repo)
                .executables(on)
                .release(
                    &new_release(i, "stable", vec![("linux-x86_64".into(), exe(i as u32))]),
                    None,
                    &|_| {},
                )
                .unwrap();
        }
        let pkg = fs_err::read(repo.join(format!(
            "pkg/linux-x86_64/{}/from-{}.dpk",
            version(1),
            version(0)
        )))
        .unwrap();
        let (_, header, _) =
            deltapack_format::decode_prefix(&pkg, &deltapack_format::Limits::default()).unwrap();
        let ops: Vec<&str> = header
            .entries
            .iter()
            .filter_map(|e| match &e.node {
                deltapack_format::Node::File(f) => Some(f.op.name()),
                _ => None,
            })
            .collect();
        assert_eq!(ops, vec![op], "executables({on})");
        assert!(verify(&repo).ok(), "executables({on})");
    }
}
