//! The fuzz target's seed corpus and crash reproducers, replayed as tests;
//! the ignored generator writes the seeds (real signed manifests).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltapack_manifest::fuzzing::{fuzz_key, verify_manifest};
use deltapack_manifest::*;

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/{sub}/manifest_verify"))
}

fn seeds() -> Vec<Vec<u8>> {
    let v = |s: &str| Version::parse(s).unwrap();
    let art = |p: &str, n: u8| Artifact {
        path: p.into(),
        size: 1000 + u64::from(n),
        blake3: format!("{n:02x}").repeat(32),
    };
    let mut m = Manifest::empty();
    m.sequence = 7;
    m.issued = 1_800_000_000;
    m.expires = 1_802_592_000;
    let mut out = vec![sign(&m, &[fuzz_key()]).unwrap()];
    for (i, ver) in ["1.0.0", "1.1.0", "2.0.0-beta.1+build.5"]
        .into_iter()
        .enumerate()
    {
        let deltas = (0..i)
            .map(|j| Delta {
                from: m.releases[j].version.clone(),
                artifact: art(&format!("pkg/linux/{ver}/from-{j}.dpk"), (10 * i + j) as u8),
            })
            .collect();
        m.releases.push(Release {
            version: v(ver),
            released: 1_800_000_000 + i as u64,
            notes: format!("notes {i} with \"quotes\" and \\ and ünïcode"),
            min_delta_version: (i == 2).then(|| v("1.0.0")),
            yanked: (i == 1).then(|| "bad".to_string()),
            carry: Vec::new(),
            platforms: BTreeMap::from([(
                "linux".to_string(),
                Build {
                    tree: TreeRef {
                        digest: "ab".repeat(32),
                        files: 3,
                        bytes: 12345,
                    },
                    full: art(&format!("pkg/linux/{ver}/full.dpk"), i as u8),
                    deltas,
                    no_delta_from: vec![],
                },
            )]),
        });
        let channel = if i == 2 { "beta" } else { "stable" };
        m.channels
            .entry(channel.into())
            .or_default()
            .releases
            .push(ChannelRelease {
                version: v(ver),
                rollout: Rollout {
                    percent: 50,
                    salt: "0011223344556677".into(),
                    paused: i == 0,
                },
            });
        out.push(sign(&m, &[fuzz_key()]).unwrap());
    }
    out.push(sign(&m, &[fuzz_key(), SecretKey::from_seed([1; 32])]).unwrap());
    out
}

#[test]
#[ignore = "writes fuzz/corpus/manifest_verify; run by hand after a format change"]
fn write_fuzz_seeds() {
    let dir = fuzz_dir("corpus");
    fs_err::create_dir_all(&dir).unwrap();
    for (i, s) in seeds().into_iter().enumerate() {
        fs_err::write(dir.join(format!("seed-{i}.json")), s).unwrap();
    }
}

#[test]
fn replay_corpus_and_regressions() {
    for sub in ["corpus", "regressions"] {
        let dir = fuzz_dir(sub);
        let rd = fs_err::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}: the committed fuzz inputs are missing"));
        let mut valid = 0;
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !p.is_file() || name.starts_with('.') {
                continue;
            }
            let ok = verify_manifest(&fs_err::read(&p).unwrap());
            if name.starts_with("seed-") {
                assert!(ok, "{}: a valid seed does not verify", p.display());
                valid += 1;
            }
        }
        if sub == "corpus" {
            assert_eq!(valid, seeds().len(), "the seed corpus is incomplete");
        }
    }
    // The seeds verify (so the fuzzer starts past the signature check).
    let keys = [fuzz_key().public()];
    for s in seeds() {
        Verifier::new(&keys).ignore_expiry().verify(&s).unwrap();
    }
}
