//! Format skew: a signed manifest written by this format version lives in
//! testdata/compat and is read on every run, so a change to the manifest
//! format cannot silently break clients in the field. The same manifest
//! must also still be written byte for byte the same (a changed writer is
//! a format change: bump `FORMAT`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use deltapack_manifest::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/compat/manifest-v1.json")
}

fn key() -> SecretKey {
    SecretKey::from_seed([0x11; 32])
}

/// Every field of format 1 in use at least once.
fn sample() -> Manifest {
    let v = |s: &str| Version::parse(s).unwrap();
    let art = |p: &str, n: u8| Artifact {
        path: p.into(),
        size: 1000 + u64::from(n),
        blake3: format!("{n:02x}").repeat(32),
    };
    let build = |ver: &str, n: u8, deltas: Vec<Delta>, skip: Vec<Version>| Build {
        tree: TreeRef {
            digest: format!("{:02x}", n + 100).repeat(32),
            files: 7,
            bytes: 85_607 + u64::from(n),
        },
        full: art(&format!("pkg/linux-x86_64/{ver}/full.dpk"), n),
        deltas,
        no_delta_from: skip,
    };
    let mut m = Manifest::empty();
    m.sequence = 12;
    m.issued = 1_795_000_000;
    m.expires = 1_797_592_000;
    m.releases = vec![
        Release {
            version: v("1.0.0"),
            released: 1_790_000_000,
            notes: String::new(),
            min_delta_version: None,
            yanked: None,
            carry: Vec::new(),
            platforms: BTreeMap::from([("linux-x86_64".into(), build("1.0.0", 1, vec![], vec![]))]),
        },
        Release {
            version: v("1.1.0"),
            released: 1_791_000_000,
            notes: "Faster.\n\n- \"quoted\" & ünïcode".into(),
            min_delta_version: None,
            yanked: Some("crashes on start".into()),
            carry: Vec::new(),
            platforms: BTreeMap::from([(
                "linux-x86_64".into(),
                build(
                    "1.1.0",
                    2,
                    vec![Delta {
                        from: v("1.0.0"),
                        artifact: art("pkg/linux-x86_64/1.1.0/from-1.0.0.dpk", 3),
                    }],
                    vec![],
                ),
            )]),
        },
        Release {
            version: v("2.0.0-beta.1+build.7"),
            released: 1_792_000_000,
            notes: "Beta.".into(),
            min_delta_version: Some(v("1.1.0")),
            yanked: None,
            carry: Vec::new(),
            platforms: BTreeMap::from([(
                "linux-x86_64".into(),
                build(
                    "2.0.0-beta.1_build.7",
                    4,
                    vec![Delta {
                        from: v("1.1.0"),
                        artifact: art("pkg/linux-x86_64/2.0.0-beta.1_build.7/from-1.1.0.dpk", 5),
                    }],
                    vec![v("1.0.0")],
                ),
            )]),
        },
    ];
    let entry = |ver: &str, percent: u8, paused: bool| ChannelRelease {
        version: v(ver),
        rollout: Rollout {
            percent,
            salt: format!("salt-{ver}").replace(['.', '+', '-'], ""),
            paused,
        },
    };
    m.channels.insert(
        "stable".into(),
        Channel {
            releases: vec![entry("1.0.0", 100, false), entry("1.1.0", 20, true)],
        },
    );
    m.channels.insert(
        "beta".into(),
        Channel {
            releases: vec![entry("2.0.0-beta.1+build.7", 50, false)],
        },
    );
    m
}

#[test]
#[ignore = "writes testdata/compat/manifest-v1.json; only for a new format version"]
fn write_compat_fixture() {
    fs_err::write(fixture(), sign(&sample(), &[key()]).unwrap()).unwrap();
}

#[test]
fn format_1_manifest_fixture_reads_and_writes_the_same() {
    let bytes = fs_err::read(fixture()).unwrap();
    let keys = [key().public()];
    let m = Verifier::new(&keys)
        .ignore_expiry()
        .verify(&bytes)
        .unwrap()
        .into_manifest();
    assert_eq!(m, sample());
    assert_eq!(m.format, 1);
    let beta = m
        .release(&Version::parse("2.0.0-beta.1+build.7").unwrap())
        .unwrap();
    assert_eq!(beta.platforms["linux-x86_64"].no_delta_from.len(), 1);
    assert!(m.channels["stable"].releases[1].rollout.paused);
    assert_eq!(
        sign(&m, &[key()]).unwrap(),
        bytes,
        "the writer changed: bump FORMAT"
    );
}
