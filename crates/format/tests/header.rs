//! Header encoding round trips, and the decoder on arbitrary bytes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use deltapack_format::*;
use proptest::prelude::*;

fn rp(s: &str) -> RelPath {
    RelPath::parse(s, 4096, 64).unwrap()
}

fn paths(max: usize) -> impl Strategy<Value = Vec<RelPath>> {
    let comp = prop_oneof![
        Just("a"),
        Just("b.txt"),
        Just("ü"),
        Just("dir"),
        Just("z-1")
    ];
    proptest::collection::btree_set(
        proptest::collection::vec(comp, 1..4).prop_map(|v| v.join("/")),
        0..max,
    )
    .prop_map(|s| {
        let mut v: Vec<RelPath> = s.iter().map(|p| rp(p)).collect();
        v.sort();
        v
    })
}

#[derive(Debug, Clone)]
struct Spec {
    sources: Vec<(RelPath, u64, [u8; 8])>,
    entries: Vec<RelPath>,
    picks: Vec<(u8, u32, u64, [u8; 8], u32)>,
    removals: Vec<RelPath>,
    block_log: u8,
    file_root: bool,
    has_base: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        paths(6),
        proptest::collection::vec((0u64..5000, any::<[u8; 8]>()), 6),
        paths(10),
        proptest::collection::vec(
            (
                0u8..4,
                any::<u32>(),
                0u64..300_000,
                any::<[u8; 8]>(),
                0u32..0o777,
            ),
            10,
        ),
        paths(4),
        12u8..20,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(sp, meta, entries, picks, removals, block_log, file_root, has_base)| Spec {
                sources: sp
                    .into_iter()
                    .zip(meta)
                    .map(|(p, (s, h))| (p, s, h))
                    .collect(),
                entries,
                picks,
                removals,
                block_log,
                file_root,
                has_base,
            },
        )
}

/// Builds a valid header from a spec.
fn build(s: &Spec) -> Header {
    let has_base = s.has_base && !s.sources.is_empty();
    let sources: Vec<Source> = if has_base {
        s.sources
            .iter()
            .map(|(p, size, h)| Source {
                path: p.clone(),
                size: *size,
                hash8: *h,
            })
            .collect()
    } else {
        vec![]
    };
    let mut entries = Vec::new();
    let (mut data, mut refs) = (0u64, 0u64);
    let mut prev: Option<RelPath> = None;
    let names: Vec<RelPath> = if s.file_root {
        s.entries.iter().take(1).cloned().collect()
    } else {
        s.entries.clone()
    };
    let all: BTreeSet<&RelPath> = names.iter().collect();
    for (i, p) in names.iter().enumerate() {
        let (kind, src, size, hash, mode) = s.picks[i % s.picks.len()];
        let parent_of_next = all.iter().any(|q| p.is_ancestor_of(q));
        let node = if parent_of_next || (!s.file_root && kind == 3 && i % 2 == 0) {
            Node::Dir { mode }
        } else if !s.file_root && kind == 3 {
            Node::Symlink {
                target: "x/../y".into(),
            }
        } else {
            let op = match (kind, sources.len()) {
                (_, 0) | (0, _) => Op::Literal,
                (1, n) => Op::Copy {
                    source: src % n as u32,
                },
                (2, n) => Op::Bsdiff {
                    source: src % n as u32,
                },
                (_, n) => Op::ZstdRef {
                    source: src % n as u32,
                },
            };
            let size = match op {
                Op::Copy { source } => sources[source as usize].size,
                _ => size,
            };
            let (hash, blocks) = match op {
                Op::Copy { source } => (sources[source as usize].hash8, vec![]),
                _ => (
                    hash,
                    (0..block_count(size, s.block_log))
                        .map(|b| [b as u8; 8])
                        .collect(),
                ),
            };
            match op {
                Op::Literal => data += size,
                Op::ZstdRef { .. } => refs += size,
                _ => {}
            }
            Node::File(FileEntry {
                mode,
                size,
                hash,
                op,
                blocks,
            })
        };
        prev = Some(p.clone());
        entries.push(Entry {
            path: p.clone(),
            node,
        });
    }
    let _ = prev;
    if s.file_root && !matches!(entries.first().map(|e| &e.node), Some(Node::File(_))) {
        entries.clear();
    }
    let mut streams = [StreamInfo::EMPTY; STREAMS];
    streams[0] = StreamInfo {
        compression: Compression::Stored,
        window_log: 0,
        raw_len: data,
    };
    streams[1] = StreamInfo {
        compression: Compression::Lzma2,
        window_log: 20,
        raw_len: 77,
    };
    streams[5] = if refs > 0 {
        StreamInfo {
            compression: Compression::Zstd,
            window_log: 22,
            raw_len: refs,
        }
    } else {
        StreamInfo::EMPTY
    };
    Header {
        root: if s.file_root {
            RootKind::File
        } else {
            RootKind::Dir
        },
        platform: "linux-x86_64".into(),
        from_version: if has_base {
            "1.0.0".into()
        } else {
            String::new()
        },
        to_version: "1.0.1".into(),
        block_log: s.block_log,
        base: has_base.then_some(TreeId {
            digest: [1; 32],
            files: 3,
            bytes: 99,
        }),
        target: TreeId {
            digest: [2; 32],
            files: 4,
            bytes: 100,
        },
        streams,
        payload_len: 12345,
        sources,
        removals: if has_base && !s.file_root {
            s.removals
                .iter()
                .filter(|r| !s.removals.iter().any(|q| q.is_ancestor_of(r)))
                .cloned()
                .collect()
        } else {
            vec![]
        },
        entries,
        // Half the specs carry modification times.
        mtimes: s.block_log.is_multiple_of(2).then(|| {
            Mtimes::of(&[
                1_700_000_000,
                1_700_000_005,
                1_700_000_000,
                u64::from(s.block_log),
            ])
        }),
    }
}

/// The raw header of `h` with its mtimes section replaced by `section`.
fn with_mtimes_section(h: &Header, section: &[u8]) -> Vec<u8> {
    let mut h = h.clone();
    h.mtimes = None;
    let mut raw = h.encode();
    raw[0] |= 4;
    raw.extend_from_slice(section);
    raw
}

#[test]
fn hostile_mtimes_are_refused() {
    let h = build(&Spec {
        sources: vec![],
        entries: vec![rp("a")],
        picks: vec![(0, 0, 10, [3; 8], 0o644)],
        removals: vec![],
        block_log: 21,
        file_root: false,
        has_base: false,
    });
    let good = with_mtimes_section(&h, &[2, 5, 1, 2, 0, 1]);
    let d = Header::decode(&good, &Limits::default()).unwrap();
    assert_eq!(
        d.mtimes,
        Some(Mtimes {
            times: vec![5, 6],
            index: vec![0, 1]
        })
    );
    for (what, section) in [
        ("no times", &[0u8, 0][..]),
        ("not increasing", &[2, 5, 0, 1, 0][..]),
        ("index out of range", &[1, 5, 1, 1][..]),
        ("truncated", &[3, 5][..]),
        (
            "over the maximum",
            &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0][..],
        ),
    ] {
        let raw = with_mtimes_section(&h, section);
        assert!(Header::decode(&raw, &Limits::default()).is_err(), "{what}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(s in spec()) {
        let h = build(&s);
        let raw = h.encode();
        match Header::decode(&raw, &Limits::default()) {
            Ok(d) => prop_assert_eq!(d, h),
            // Specs that break a cross-field rule must be rejected as such.
            Err(DecodeError::Inconsistent { .. }) | Err(DecodeError::DuplicatePath { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
    }

    #[test]
    fn decoder_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Header::decode(&bytes, &Limits::default());
        let _ = decode_prefix(&bytes, &Limits::default());
        fuzzing::decode_package(&bytes);
    }

    #[test]
    fn decoder_survives_mutations_of_valid_headers(s in spec(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut raw = build(&s).encode();
        for (at, x) in flips {
            if !raw.is_empty() {
                let n = raw.len();
                raw[at % n] ^= x;
            }
        }
        let _ = Header::decode(&raw, &Limits::default());
    }

    /// Random bytes rarely pass the prologue's magic; a real package prefix
    /// does, and its mutations reach every later check without a panic.
    #[test]
    fn prefix_decoder_survives_mutations_of_valid_packages(
        s in spec(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
    ) {
        let mut h = build(&s);
        h.payload_len = 5;
        let Ok(prefix) = encode_prefix(&h, &[7u8; 5]) else {
            return Ok(());
        };
        if Header::decode(&h.encode(), &Limits::default()).is_ok() {
            prop_assert!(fuzzing::decode_package(&prefix), "a valid prefix must decode");
        }
        let mut raw = prefix.clone();
        for (at, x) in flips {
            let n = raw.len();
            raw[at % n] ^= x;
        }
        let _ = decode_prefix(&raw, &Limits::default());
        fuzzing::decode_package(&raw);
    }
}

#[test]
fn full_prefix_round_trip_and_truncation() {
    let h = build(&Spec {
        sources: vec![],
        entries: vec![rp("a"), rp("b")],
        picks: vec![(0, 0, 10, [3; 8], 0o644)],
        removals: vec![],
        block_log: 20,
        file_root: false,
        has_base: false,
    });
    let payload = vec![7u8; 5];
    let mut h = h;
    h.payload_len = 5;
    let prefix = encode_prefix(&h, &payload).unwrap();
    let (p, d, at) = decode_prefix(&prefix, &Limits::default()).unwrap();
    assert_eq!(d, h);
    assert_eq!(at, prefix.len());
    assert_eq!(p.header_len as usize + PROLOGUE_LEN, prefix.len());
    for n in 0..prefix.len() {
        assert!(
            matches!(
                decode_prefix(&prefix[..n], &Limits::default()),
                Err(DecodeError::Truncated { .. })
            ),
            "{n}"
        );
    }
}
