//! Signing and verification of manifest files: each way a manifest can be
//! wrong gets its exact error.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use deltapack_manifest::*;
use proptest::prelude::*;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn sample() -> Manifest {
    let v = |s: &str| Version::parse(s).unwrap();
    let art = |p: &str| Artifact {
        path: p.into(),
        size: 10,
        blake3: "ab".repeat(32),
    };
    let build = Build {
        tree: TreeRef {
            digest: "cd".repeat(32),
            files: 1,
            bytes: 5,
        },
        full: art("pkg/linux/1.1.0/full.dpk"),
        deltas: vec![Delta {
            from: v("1.0.0"),
            artifact: art("pkg/linux/1.1.0/from-1.0.0.dpk"),
        }],
        no_delta_from: vec![],
    };
    let mut m = Manifest::empty();
    m.sequence = 3;
    m.issued = 1_000;
    m.expires = 2_000;
    m.releases.push(Release {
        version: v("1.1.0"),
        released: 900,
        notes: "fixes".into(),
        min_delta_version: None,
        yanked: None,
        carry: Vec::new(),
        platforms: BTreeMap::from([("linux".to_string(), build)]),
    });
    m.channels.insert(
        "stable".into(),
        Channel {
            releases: vec![ChannelRelease {
                version: v("1.1.0"),
                rollout: Rollout {
                    percent: 50,
                    salt: "00ff".into(),
                    paused: false,
                },
            }],
        },
    );
    m
}

fn verify(bytes: &[u8], keys: &[PublicKey]) -> Result<VerifiedManifest, Error> {
    Verifier::new(keys).now(1_500).verify(bytes)
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let m = sample();
    let a = sign(&m, &[key(1)]).unwrap();
    assert_eq!(
        a,
        sign(&m, &[key(1)]).unwrap(),
        "ed25519 signing is deterministic"
    );
    let v = verify(&a, &[key(1).public()]).unwrap();
    assert_eq!(v.manifest(), &m);
    assert_eq!(v.signed_by(), key(1).public().id());
}

#[test]
fn wrong_key_missing_signature_and_tampering() {
    let bytes = sign(&sample(), &[key(1)]).unwrap();
    assert!(matches!(
        verify(&bytes, &[key(2).public()]),
        Err(Error::UntrustedKeys { found }) if found == vec![key(1).public().id()]
    ));
    let text = String::from_utf8(bytes.clone()).unwrap();
    let start = text.find("\"signatures\":[").unwrap() + 14;
    let end = text.find("],\"signed\"").unwrap();
    let unsigned = format!("{}{}", &text[..start], &text[end..]);
    assert!(matches!(
        verify(unsigned.as_bytes(), &[key(1).public()]),
        Err(Error::MissingSignature)
    ));
    let no_field = text.replace(&text[1..end + 2], "");
    assert!(matches!(
        verify(no_field.as_bytes(), &[key(1).public()]),
        Err(Error::Json {
            part: "envelope",
            ..
        })
    ));
    // Change the rollout from 50% to 90%: the signature no longer holds.
    let tampered = text.replace("\"percent\":50", "\"percent\":90");
    assert_ne!(tampered, text);
    assert!(matches!(
        verify(tampered.as_bytes(), &[key(1).public()]),
        Err(Error::BadSignature { key: id }) if id == key(1).public().id()
    ));
    // Whitespace inside the signed value is signed too.
    let spaced = text.replace("\"sequence\":3", "\"sequence\": 3");
    assert!(matches!(
        verify(spaced.as_bytes(), &[key(1).public()]),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn every_single_byte_change_is_refused() {
    let bytes = sign(&sample(), &[key(1)]).unwrap();
    let keys = [key(1).public()];
    for i in 0..bytes.len() - 1 {
        for flip in [0x01u8, 0x20] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            if let Ok(v) = verify(&b, &keys) {
                // Only bytes outside the signed value (the signature's key id
                // case, say) could be harmless; the manifest must be intact.
                assert_eq!(v.manifest(), &sample(), "byte {i} flip {flip:#x}");
            }
        }
    }
}

#[test]
fn rotation_with_two_signatures() {
    let m = sample();
    let both = sign(&m, &[key(1), key(2)]).unwrap();
    assert_eq!(verify(&both, &[key(1).public()]).unwrap().manifest(), &m);
    assert_eq!(verify(&both, &[key(2).public()]).unwrap().manifest(), &m);
    // An app that embeds both keys during the transition accepts either.
    let only_new = sign(&m, &[key(2)]).unwrap();
    let app = [key(1).public(), key(2).public()];
    assert_eq!(
        verify(&only_new, &app).unwrap().signed_by(),
        key(2).public().id()
    );
    // A forged second signature under a trusted id fails closed even if
    // another one is valid for an untrusted key.
    let text = String::from_utf8(sign(&m, &[key(3)]).unwrap()).unwrap();
    let forged = text.replace(&key(3).public().id(), &key(1).public().id());
    assert!(matches!(
        verify(forged.as_bytes(), &[key(1).public()]),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn expiry_size_format_and_rules() {
    let bytes = sign(&sample(), &[key(1)]).unwrap();
    let keys = [key(1).public()];
    assert!(matches!(
        Verifier::new(&keys).now(2_000).verify(&bytes),
        Err(Error::Expired {
            expires: 2_000,
            now: 2_000
        })
    ));
    assert!(
        Verifier::new(&keys)
            .now(5_000)
            .ignore_expiry()
            .verify(&bytes)
            .is_ok()
    );
    assert!(matches!(
        Verifier::new(&keys).max_size(100).verify(&bytes),
        Err(Error::TooLarge { limit: 100, .. })
    ));
    let mut m = sample();
    m.format = 2;
    assert!(matches!(
        sign(&m, &[key(1)]),
        Err(Error::UnsupportedFormat { found: 2 })
    ));
    let mut m = sample();
    m.channels.get_mut("stable").unwrap().releases[0].version = Version::new(9, 9, 9);
    assert!(matches!(sign(&m, &[key(1)]), Err(Error::Invalid { what }) if what.contains("9.9.9")));
    let mut m = sample();
    m.releases[0].platforms.get_mut("linux").unwrap().full.path = "../../etc/passwd".into();
    assert!(matches!(sign(&m, &[key(1)]), Err(Error::Invalid { what }) if what.contains("path")));
    let mut m = sample();
    let b = m.releases[0].platforms.remove("linux").unwrap();
    m.releases[0].platforms.insert("$(reboot)".into(), b);
    assert!(matches!(sign(&m, &[key(1)]), Err(Error::Invalid { .. })));
    assert!(matches!(sign(&sample(), &[]), Err(Error::Key(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = verify(&bytes, &[key(1).public()]);
    }

    /// Random bytes never get past the envelope; mutations of a real
    /// signed manifest do, and whatever still verifies is the manifest
    /// that was signed.
    #[test]
    fn mutations_of_a_signed_manifest_verify_only_as_signed(
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..4)
    ) {
        let m = sample();
        let good = sign(&m, &[key(1)]).unwrap();
        let keys = [key(1).public()];
        let verifier = Verifier::new(&keys).ignore_expiry();
        prop_assert_eq!(verifier.verify(&good).unwrap().into_manifest(), m.clone());
        let mut bad = good.clone();
        for (at, x) in flips {
            let n = bad.len();
            bad[at % n] ^= x;
        }
        if let Ok(v) = verifier.verify(&bad) {
            prop_assert_eq!(v.into_manifest(), m);
        }
    }
}
