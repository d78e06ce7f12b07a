//! Push and pull against a real directory store: what lands where and in
//! which order, what a rerun does, and that nothing a live manifest names
//! is ever removed or left missing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltapack_manifest::{SecretKey, Version};
use deltapack_publish::{Error, Event, PullOptions, PushOptions, Remote};
use deltapack_release::{NewRelease, Packager};

const NOW: u64 = 1_800_000_000;

fn key() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn example(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/example/v{v}"))
}

/// Releases 1.(n-1).0 into `repo` from one of the sample app's versions.
fn release(repo: &Path, n: u32) {
    Packager::new(repo)
        .init(!repo.join("manifest.json").exists())
        .keys(vec![key()])
        .now(NOW)
        .level(3)
        .release(
            &NewRelease {
                version: Version::new(1, u64::from(n - 1), 0),
                channel: "stable".into(),
                platforms: vec![("linux".into(), example((n - 1) % 3 + 1))],
                notes: String::new(),
                min_delta_version: None,
                carry: Vec::new(),
                rollout_percent: 100,
            },
            None,
            &|_| {},
        )
        .unwrap();
}

/// Every file under `dir`, by `/`-separated path, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs_err::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs_err::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn push(
    remote: &Remote,
    repo: &Path,
    opts: &PushOptions,
) -> Result<deltapack_publish::Pushed, Error> {
    let opts = PushOptions {
        now: Some(NOW),
        ..opts.clone()
    };
    remote.push(repo, &[key().public()], &opts, &|_| {})
}

#[test]
fn push_uploads_what_is_missing_and_the_manifest_last() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let bucket = t.path().join("bucket");
    let remote = Remote::parse(&format!("file://{}", bucket.display())).unwrap();
    release(&repo, 1);
    release(&repo, 2);

    // The manifest is the last upload.
    let order = std::sync::Mutex::new(Vec::new());
    let pushed = remote
        .push(
            &repo,
            &[key().public()],
            &PushOptions {
                now: Some(NOW),
                ..PushOptions::default()
            },
            &|e| {
                if let Event::Uploading { path, .. } = e {
                    order.lock().unwrap().push(path);
                }
            },
        )
        .unwrap();
    let order = order.into_inner().unwrap();
    assert_eq!(order.last().map(String::as_str), Some("manifest.json"));
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!((pushed.previous_sequence, pushed.sequence), (None, 2));
    assert_eq!(files(&bucket), files(&repo), "the bucket is the repository");

    // A rerun uploads nothing; a dry run of the next release lists it.
    let again = push(&remote, &repo, &PushOptions::default()).unwrap();
    assert!(
        again.uploaded.is_empty() && again.unchanged == 3,
        "{again:?}"
    );
    release(&repo, 3);
    let before = files(&bucket);
    let dry = push(
        &remote,
        &repo,
        &PushOptions {
            dry_run: true,
            ..PushOptions::default()
        },
    )
    .unwrap();
    assert_eq!(dry.uploaded.len(), 4, "{dry:?}"); // full, two deltas, manifest
    assert_eq!(files(&bucket), before, "a dry run writes nothing");
    push(&remote, &repo, &PushOptions::default()).unwrap();
    assert_eq!(files(&bucket), files(&repo));
}

#[test]
fn pull_then_release_then_push_extends_the_remote_without_local_state() {
    let t = tempfile::tempdir().unwrap();
    let first = t.path().join("first");
    let bucket = t.path().join("bucket");
    let remote = Remote::parse(bucket.to_str().unwrap()).unwrap();
    release(&first, 1);
    release(&first, 2);
    push(&remote, &first, &PushOptions::default()).unwrap();

    // A fresh CI run: manifest and full bundles only, then a release, then
    // a push that needs the deltas it did not pull to be at the remote.
    let ci = t.path().join("ci");
    let pulled = remote
        .pull(
            &ci,
            &[key().public()],
            &PullOptions { bundles_only: true },
            &|_| {},
        )
        .unwrap();
    assert_eq!(pulled.sequence, 2);
    assert_eq!(
        pulled.downloaded.len(),
        3,
        "two full bundles and the manifest"
    );
    assert!(!files(&ci).keys().any(|p| p.contains("from-")));
    release(&ci, 3);
    let pushed = push(&remote, &ci, &PushOptions::default()).unwrap();
    assert_eq!((pushed.previous_sequence, pushed.sequence), (Some(2), 3));

    // Everything, pulled into another directory: the same repository.
    let all = t.path().join("all");
    remote
        .pull(&all, &[key().public()], &PullOptions::default(), &|_| {})
        .unwrap();
    assert_eq!(files(&all), files(&bucket));
    let r = deltapack_release::verify_repo(&all, &[key().public()], Some(NOW), &|_| {}).unwrap();
    assert!(r.ok() && r.deltas_applied == 3, "{:?}", r.problems);

    // The remote is ahead of the first directory now: refused, unchanged.
    let before = files(&bucket);
    match push(&remote, &first, &PushOptions::default()) {
        Err(Error::RemoteAhead {
            remote_sequence: 3,
            local_sequence: 2,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Another release from the same base: the same sequence, diverged.
    release(&first, 4);
    assert!(matches!(
        push(&remote, &first, &PushOptions::default()),
        Err(Error::Diverged { sequence: 3, .. })
    ));
    assert_eq!(files(&bucket), before);
    // Pulling into a directory that is ahead is refused, and changes it not.
    release(&first, 5);
    let mine = files(&first);
    match remote.pull(&first, &[key().public()], &PullOptions::default(), &|_| {}) {
        Err(Error::LocalAhead {
            local_sequence: 4,
            remote_sequence: 3,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(files(&first), mine);
}

#[test]
fn a_push_that_cannot_complete_leaves_the_published_manifest_and_a_rerun_finishes() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let bucket = t.path().join("bucket");
    let remote = Remote::parse(bucket.to_str().unwrap()).unwrap();
    release(&repo, 1);
    push(&remote, &repo, &PushOptions::default()).unwrap();
    release(&repo, 2);
    let published = fs_err::read(bucket.join("manifest.json")).unwrap();

    // A file the manifest names is damaged locally and absent remotely:
    // nothing is written at all.
    let delta = "pkg/linux/1.1.0/from-1.0.0.dpk";
    let good = fs_err::read(repo.join(delta)).unwrap();
    fs_err::write(repo.join(delta), b"damaged").unwrap();
    let before = files(&bucket);
    match push(&remote, &repo, &PushOptions::default()) {
        Err(Error::MissingArtifact { path, problem }) => {
            assert_eq!(path, delta);
            assert!(problem.contains("size"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(files(&bucket), before);
    fs_err::write(repo.join(delta), &good).unwrap();

    // The store fails halfway: the full bundle is uploaded, then a
    // directory stands where the delta must go (which stops root too).
    // The old manifest stays published, and clients keep what it names.
    let blocker = bucket.join(delta);
    fs_err::create_dir_all(blocker.join("in-the-way")).unwrap();
    let e = push(&remote, &repo, &PushOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::Store { operation: "uploading", ref path, .. } if path == delta),
        "{e}"
    );
    assert!(bucket.join("pkg/linux/1.1.0/full.dpk").exists(), "halfway");
    assert_eq!(
        fs_err::read(bucket.join("manifest.json")).unwrap(),
        published
    );
    let full = "pkg/linux/1.0.0/full.dpk";
    assert_eq!(
        files(&bucket)[full],
        files(&repo)[full],
        "what it names is intact"
    );
    fs_err::remove_dir_all(&blocker).unwrap();
    let done = push(&remote, &repo, &PushOptions::default()).unwrap();
    assert_eq!(done.sequence, 2);
    assert_eq!(files(&bucket), files(&repo));
}

#[test]
fn prune_removes_only_what_no_manifest_names() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let bucket = t.path().join("bucket");
    let remote = Remote::parse(bucket.to_str().unwrap()).unwrap();
    release(&repo, 1);
    release(&repo, 2);
    push(&remote, &repo, &PushOptions::default()).unwrap();
    fs_err::create_dir_all(bucket.join("shards")).unwrap();
    fs_err::write(bucket.join("shards/left-over.json"), b"{}").unwrap();
    fs_err::write(bucket.join("pkg/linux/old.dpk"), b"x").unwrap();
    let named = "pkg/linux/1.1.0/from-1.0.0.dpk";
    release(&repo, 3);
    let pushed = push(
        &remote,
        &repo,
        &PushOptions {
            prune: true,
            ..PushOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        pushed.pruned,
        vec![
            "pkg/linux/old.dpk".to_owned(),
            "shards/left-over.json".to_owned()
        ]
    );
    assert!(bucket.join(named).exists(), "named by a manifest");
    assert!(!bucket.join("shards/left-over.json").exists());
    let r = deltapack_release::verify_repo(&bucket, &[key().public()], Some(NOW), &|_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
}

#[test]
fn urls_that_cannot_be_published_to_are_named() {
    for (url, why) in [
        (
            "https://cdn.example.com/app",
            "publish to the store behind the address",
        ),
        ("s3:///app", "no bucket"),
        (
            "s3://key:secret@bucket/app",
            "come from the environment, not the URL",
        ),
        ("s3://bucket/app?x=1", "no query or fragment"),
        ("ftp://host/x", "unknown scheme"),
    ] {
        match Remote::parse(url) {
            Err(e @ Error::Url { .. }) => assert!(e.to_string().contains(why), "{e}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn a_remote_file_larger_or_other_than_the_manifest_says_is_refused_by_pull() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let bucket = t.path().join("bucket");
    let remote = Remote::parse(bucket.to_str().unwrap()).unwrap();
    release(&repo, 1);
    push(&remote, &repo, &PushOptions::default()).unwrap();
    let full = "pkg/linux/1.0.0/full.dpk";
    let good = fs_err::read(bucket.join(full)).unwrap();
    // Larger: reading stops at the manifest's size.
    let mut big = good.clone();
    big.extend(std::iter::repeat_n(0u8, 1 << 20));
    fs_err::write(bucket.join(full), &big).unwrap();
    let into = t.path().join("into");
    match remote.pull(&into, &[key().public()], &PullOptions::default(), &|_| {}) {
        Err(Error::TooLarge { path, max, .. }) => {
            assert_eq!((path.as_str(), max), (full, good.len() as u64));
        }
        other => panic!("{other:?}"),
    }
    // Same size, other bytes.
    let mut other = good.clone();
    other[0] ^= 1;
    fs_err::write(bucket.join(full), &other).unwrap();
    assert!(matches!(
        remote.pull(&into, &[key().public()], &PullOptions::default(), &|_| {}),
        Err(Error::DamagedRemote { .. })
    ));
    assert!(!into.join(full).exists() && !into.join("manifest.json").exists());
}
