//! ADVERSARIAL.md rows 1-13 and 32: every bad package gets a specific
//! error, nothing appears at the output path, no staging is left, and the
//! base is unchanged (row 32 changes it on purpose, mid-apply); hostile
//! modes are masked.

use deltapack_apply::{Applier, Error};
use deltapack_format::{DecodeError, Limits, Node, Op, STREAMS, Section, StreamId};

use crate::craft::*;
use crate::harness::*;

fn example_package() -> Vec<u8> {
    diff(&example(1), &example(2))
}

/// Row 1: truncated at every offset.
#[test]
fn truncated_at_every_offset() {
    let s = Scratch::new();
    let pkg = example_package();
    for n in 0..pkg.len() {
        let err = apply_fails(Some(&example(1)), &pkg[..n], &s.path("out"));
        assert!(
            matches!(err, Error::Decode(DecodeError::Truncated { .. })),
            "prefix of {n} bytes: expected Truncated, got {err:?}"
        );
    }
    // Each section reports itself.
    let sections: Vec<Section> = [10, 60, pkg.len() - 1]
        .iter()
        .map(
            |&n| match apply(Some(&example(1)), &pkg[..n], &s.path("out")) {
                Err(Error::Decode(DecodeError::Truncated { section, .. })) => section,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        sections,
        [Section::Prologue, Section::Header, Section::Payload]
    );
}

/// Row 2: a flipped bit anywhere is an error, never a panic or a wrong tree.
#[test]
fn bit_flips_anywhere_are_caught() {
    let s = Scratch::new();
    let pkg = example_package();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..pkg.len() {
        let mut bad = pkg.clone();
        bad[i] ^= 1 << (i % 8);
        let err = apply_fails(Some(&example(1)), &bad, &s.path("out"));
        let name = format!("{err:?}");
        *kinds
            .entry(name.split([' ', '(', '{']).next().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    // The last line of defence is the package hash; most flips are caught
    // earlier with a more specific error.
    assert!(kinds.len() > 2, "{kinds:?}");
}

/// Row 3: lengths and offsets that overflow or point outside.
#[test]
fn oversized_lengths_and_bad_seeks() {
    let s = Scratch::new();
    let base = noise(1, 10_000);
    let target = noise(2, 100);
    let old = s.write("old", &base);
    let bsdiff = |ctrl_bytes: Vec<u8>, extra: Vec<u8>| {
        let mut st: [Vec<u8>; STREAMS] = Default::default();
        st[StreamId::Ctrl.index()] = ctrl_bytes;
        st[StreamId::Diff.index()] = vec![1; 10];
        st[StreamId::Extra.index()] = extra;
        stored_file_package(&base, &target, Op::Bsdiff { source: 0 }, st)
    };
    let corrupt = |pkg: Vec<u8>, what: &str| match apply_fails(Some(&old), &pkg, &s.path("out")) {
        Error::CorruptPatch {
            codec: "bsdiff",
            what: w,
            ..
        } => assert!(w.contains(what), "{w}"),
        other => panic!("{what}: {other:?}"),
    };
    corrupt(bsdiff(ctrl(u64::MAX, 0, 0), vec![]), "overruns");
    corrupt(bsdiff(ctrl(50, u64::MAX - 10, 0), vec![]), "overruns");
    corrupt(
        bsdiff(ctrl(10, 0, -1_000_000), vec![]),
        "reads 10 bytes at base offset -1000000",
    );
    corrupt(bsdiff(ctrl(10, 0, 20_000), vec![]), "of a 10000-byte file");
    corrupt(
        bsdiff([ctrl(10, 0, 100), ctrl(10, 0, i64::MAX)].concat(), vec![]),
        "overflow",
    );
    corrupt(bsdiff(ctrl(0, 0, 0), vec![]), "overruns");
    // A record longer than the limit.
    let mut st: [Vec<u8>; STREAMS] = Default::default();
    st[StreamId::Ctrl.index()] = ctrl(0, 100, 0);
    st[StreamId::Extra.index()] = target.clone();
    let mut pkg = stored_file_package(&base, &target, Op::Bsdiff { source: 0 }, st);
    let at = pkg.len() - target.len() - 1; // the extra record's length byte
    assert_eq!(pkg[at], 100);
    let mut limits = Limits::default();
    limits.max_record_len = 50;
    let err = Applier::new()
        .limits(limits)
        .apply(Some(&old), &pkg[..], &s.path("out"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::LengthExceedsLimit {
                what: "record length",
                value: 100,
                ..
            })
        ),
        "{err:?}"
    );
    // The same package applies with default limits.
    apply(Some(&old), &pkg, &s.path("ok")).unwrap();
    pkg.clear();
    // A prologue declaring a 4 GiB header.
    let mut pkg = example_package();
    pkg[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        apply_fails(Some(&example(1)), &pkg, &s.path("out")),
        Error::Decode(DecodeError::LengthExceedsLimit {
            what: "compressed header length",
            ..
        })
    ));
}

/// Row 4: absurd counts fail before anything is allocated for them.
#[test]
fn huge_counts() {
    let s = Scratch::new();
    let (mut h, payload) = full_header(vec![("a", literal(b"x"))], b"x");
    h.entries[0].node = literal(b"x");
    let raw = h.encode();
    // The entry count is the varint just before the (only) path: 1 -> 2^32.
    let pos = raw.windows(4).rposition(|w| w == [1, 0, 1, b'a']).unwrap();
    let mut count = Vec::new();
    deltapack_format::reader::put_varint(&mut count, 1 << 32);
    let bad = [&raw[..pos], &count[..], &raw[pos + 1..]].concat();
    let err = apply_fails(None, &seal_raw(&bad, &payload), &s.path("out"));
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::LengthExceedsLimit {
                what: "entry count",
                ..
            })
        ),
        "{err:?}"
    );
    // Without a limit, the count is checked against the bytes that remain.
    let mut limits = Limits::default();
    limits.max_entries = u64::MAX;
    let err = Applier::new()
        .limits(limits)
        .apply(None, &seal_raw(&bad, &payload)[..], &s.path("out"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::Truncated {
                section: Section::Header,
                ..
            })
        ),
        "{err:?}"
    );
    // With a tight limit the same count is a limit error.
    let mut limits = Limits::default();
    limits.max_entries = 1000;
    let err = Applier::new()
        .limits(limits)
        .apply(None, &seal_raw(&bad, &payload)[..], &s.path("out"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::LengthExceedsLimit {
                what: "entry count",
                ..
            })
        ),
        "{err:?}"
    );
    // Total output beyond the limit.
    let big = Node::File(deltapack_format::FileEntry {
        mode: 0o644,
        size: 1 << 50,
        hash: [0; 8],
        op: Op::Literal,
        blocks: vec![],
    });
    let (h, payload) = full_header(vec![("a", big)], b"");
    let err = apply_fails(None, &seal_raw(&h.encode(), &payload), &s.path("out"));
    assert!(
        matches!(err, Error::Decode(DecodeError::LengthExceedsLimit { .. })),
        "{err:?}"
    );
    // Too deep a path.
    let deep = vec!["d"; 70].join("/");
    let (h, payload) = full_header(vec![("p", literal(b"x"))], b"x");
    let raw = replace_path(&h.encode(), "p", deep.as_bytes());
    let err = apply_fails(None, &seal_raw(&raw, &payload), &s.path("out"));
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::UnsafePath {
                reason: "path too deep",
                ..
            })
        ),
        "{err:?}"
    );
}

/// Row 5: decompression bombs.
#[test]
fn decompression_bombs() {
    let s = Scratch::new();
    // A data stream that inflates far past its declared size.
    let declared = 1024usize;
    let mut c = zstd::bulk::Compressor::new(19).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(20))
        .unwrap();
    let bomb = c.compress(&vec![0u8; 10 << 20]).unwrap();
    let (mut h, _) = full_header(
        vec![("a", literal(&vec![0u8; declared]))],
        &vec![0u8; declared],
    );
    h.streams[0] = deltapack_format::StreamInfo {
        compression: deltapack_format::Compression::Zstd,
        window_log: 20,
        raw_len: declared as u64,
    };
    let mut bufs: [Vec<u8>; STREAMS] = Default::default();
    bufs[0] = bomb;
    let payload = records(&bufs);
    h.payload_len = payload.len() as u64;
    let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
    assert!(
        matches!(&err, Error::Stream { stream: StreamId::Data, what } if what.contains("longer than declared")),
        "{err:?}"
    );
    // A frame asking for a 1 GiB window when the header allows 1 MiB.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(30))
        .unwrap();
    std::io::Write::write_all(&mut enc, &vec![0u8; declared]).unwrap();
    bufs[0] = enc.finish().unwrap();
    let payload = records(&bufs);
    h.payload_len = payload.len() as u64;
    let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
    assert!(
        matches!(
            err,
            Error::Stream {
                stream: StreamId::Data,
                ..
            }
        ),
        "{err:?}"
    );
    // A header that inflates past its declared size.
    let (h, payload) = full_header(vec![("a", literal(b"x"))], b"x");
    let mut pkg = seal(&h, &payload);
    let declared = u32::from_le_bytes(pkg[16..20].try_into().unwrap());
    pkg[16..20].copy_from_slice(&(declared - 10).to_le_bytes());
    assert!(matches!(
        apply_fails(None, &pkg, &s.path("out")),
        Error::Decode(DecodeError::HeaderDecompress { .. })
    ));
}

/// Row 6: unknown magic, version, flags, compression, operation.
#[test]
fn unknown_versions_and_codecs() {
    let s = Scratch::new();
    let pkg = example_package();
    let with = |at: usize, bytes: &[u8]| {
        let mut p = pkg.clone();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        apply_fails(Some(&example(1)), &p, &s.path("out"))
    };
    assert!(matches!(
        with(0, b"PK\x03\x04"),
        Error::Decode(DecodeError::BadMagic { .. })
    ));
    assert!(matches!(
        with(8, &[2, 0]),
        Error::Decode(DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));
    assert!(matches!(
        with(10, &[0, 1]),
        Error::Decode(DecodeError::UnsupportedFlags { found: 256 })
    ));
    // Compression 7 in the stream table, operation 9 in the header: each
    // is an `UnknownValue` naming the field.
    let p = split(&pkg);
    let unknown = |raw: &[u8]| match apply_fails(
        Some(&example(1)),
        &seal_raw(raw, &p.payload),
        &s.path("out"),
    ) {
        Error::Decode(DecodeError::UnknownValue { what, value, .. }) => (what, value),
        other => panic!("{other:?}"),
    };
    let mut h2 = p.header.clone();
    h2.streams[1] = deltapack_format::StreamInfo {
        compression: deltapack_format::Compression::Zstd,
        window_log: 20,
        raw_len: 7,
    };
    let mut raw = h2.encode();
    let at = raw.windows(3).position(|w| w == [1, 20, 7]).unwrap();
    raw[at] = 7;
    assert_eq!(unknown(&raw), ("compression", 7));
    // Operations are one byte each, right after the symlink targets; the
    // run of op bytes is found by its known values.
    let ops: Vec<u8> = p
        .header
        .entries
        .iter()
        .filter_map(|e| match &e.node {
            Node::File(f) => Some(match f.op {
                Op::Copy { .. } => 0,
                Op::Literal => 1,
                Op::Bsdiff { .. } => 2,
                _ => 3,
            }),
            _ => None,
        })
        .collect();
    let mut raw = p.header.encode();
    let at = raw
        .windows(ops.len())
        .position(|w| w == ops.as_slice())
        .unwrap();
    raw[at] = 9;
    assert_eq!(unknown(&raw), ("operation", 9));
}

/// Row 7: a byte after the end.
#[test]
fn trailing_data() {
    let s = Scratch::new();
    let mut pkg = example_package();
    pkg.push(0);
    let err = apply_fails(Some(&example(1)), &pkg, &s.path("out"));
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::TrailingData {
                section: Section::Payload,
                count: 1
            })
        ),
        "{err:?}"
    );
    // And in the header.
    let p = split(&example_package());
    let mut raw = p.header.encode();
    raw.push(0);
    let err = apply_fails(
        Some(&example(1)),
        &seal_raw(&raw, &p.payload),
        &s.path("out"),
    );
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::TrailingData {
                section: Section::Header,
                count: 1
            })
        ),
        "{err:?}"
    );
}

/// Row 8: duplicates and conflicts.
#[test]
fn duplicate_and_conflicting_entries() {
    let s = Scratch::new();
    let dup = |a: &str, b: &[u8]| {
        let (h, payload) = full_header(
            vec![("aaaa", literal(b"x")), ("bbbb", literal(b"y"))],
            b"xy",
        );
        let raw = replace_path(&h.encode(), "bbbb", b);
        let raw = replace_path(&raw, "aaaa", a.as_bytes());
        apply_fails(None, &seal_raw(&raw, &payload), &s.path("out"))
    };
    assert!(matches!(
        dup("same", b"same"),
        Error::Decode(DecodeError::DuplicatePath { .. })
    ));
    assert!(matches!(
        dup("README", b"readme"),
        Error::Decode(DecodeError::DuplicatePath { .. })
    ));
    assert!(matches!(
        dup("cafe\u{301}", "caf\u{e9}".as_bytes()),
        Error::Decode(DecodeError::DuplicatePath { .. })
    ));
    assert!(matches!(
        dup("b", b"a"),
        Error::Decode(DecodeError::Unsorted {
            what: "entries",
            ..
        })
    ));
    // A file with an entry below it.
    let (h, payload) = full_header(
        vec![("f", literal(b"x")), ("f/inner", literal(b"y"))],
        b"xy",
    );
    let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
    assert!(
        matches!(err, Error::Decode(DecodeError::Inconsistent { .. })),
        "{err:?}"
    );
    // An entry whose parent directory does not exist.
    let (h, payload) = full_header(vec![("nodir/f", literal(b"x"))], b"x");
    let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    // An entry that turns a base file into a directory without removing it.
    s.write("old/x", "file");
    s.write("new/y", "other");
    let p = split(&diff(&s.path("old"), &s.path("new")));
    let mut h = p.header.clone();
    h.removals.clear();
    h.entries.insert(
        0,
        deltapack_format::Entry {
            path: rp("x"),
            node: Node::Dir { mode: 0o755 },
        },
    );
    h.entries.sort_by(|a, b| a.path.cmp(&b.path));
    let err = apply_fails(Some(&s.path("old")), &seal(&h, &p.payload), &s.path("out"));
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
}

/// Row 9: path traversal, refused at decode, never skipped.
#[test]
fn path_traversal() {
    let s = Scratch::new();
    let canary = s.write("canary", "do not touch");
    let root = s.mkdir("root");
    let bad: &[&[u8]] = &[
        b"../x",
        b"a/../../x",
        b"/etc/x",
        b"C:\\x",
        b"C:x",
        b"\\\\server\\share",
        b"\\\\?\\C:\\x",
        b"a\\b",
        b"a\0b",
        b"a\nb",
        b".",
        b"..",
        b"CON",
        b"nul.txt",
        b"x.",
        b"x ",
        b"a//b",
        b"a/",
        b"\xef\xbf\xbd",
    ];
    for raw_path in bad {
        let (h, payload) = full_header(vec![("placeholder", literal(b"x"))], b"x");
        let raw = replace_path(&h.encode(), "placeholder", raw_path);
        let err = apply_fails(None, &seal_raw(&raw, &payload), &root.join("out"));
        assert!(
            matches!(err, Error::Decode(DecodeError::UnsafePath { .. })),
            "{:?}: {err:?}",
            String::from_utf8_lossy(raw_path)
        );
    }
    // Empty and non-UTF-8 names.
    let (h, payload) = full_header(vec![("placeholder", literal(b"x"))], b"x");
    let err = apply_fails(
        None,
        &seal_raw(&replace_path(&h.encode(), "placeholder", b""), &payload),
        &root.join("out"),
    );
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::UnsafePath {
                reason: "empty path",
                ..
            })
        ),
        "{err:?}"
    );
    let err = apply_fails(
        None,
        &seal_raw(
            &replace_path(&h.encode(), "placeholder", b"\xff\xfe"),
            &payload,
        ),
        &root.join("out"),
    );
    assert!(
        matches!(
            err,
            Error::Decode(DecodeError::InvalidUtf8 { what: "path", .. })
        ),
        "{err:?}"
    );
    assert_eq!(fs_err::read(&canary).unwrap(), b"do not touch");
    assert_eq!(
        snapshot(&s.path("")).len(),
        2,
        "only the canary and the root exist"
    );
}

/// Row 10: symlinks that escape, or that a later entry would write through.
#[cfg(unix)]
#[test]
fn symlink_escapes() {
    let s = Scratch::new();
    let canary = s.write("canary", "do not touch");
    let link = |target: &str| Node::Symlink {
        target: target.to_owned(),
    };
    for (entries, what) in [
        (vec![("link", link("../../etc"))], "parent escape"),
        (vec![("link", link("/etc/passwd"))], "absolute"),
        (
            vec![
                ("d", Node::Dir { mode: 0o755 }),
                ("d/esc", link("up/..")),
                ("d/up", link("..")),
            ],
            "chained",
        ),
    ] {
        let (h, payload) = full_header(entries, b"");
        let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
        assert!(
            matches!(err, Error::SymlinkEscape { .. }),
            "{what}: {err:?}"
        );
    }
    // A file written "through" a symlink entry is refused at decode.
    let (h, payload) = full_header(vec![("a", link("../..")), ("a/x", literal(b"x"))], b"x");
    let err = apply_fails(None, &seal(&h, &payload), &s.path("out"));
    assert!(
        matches!(err, Error::Decode(DecodeError::Inconsistent { .. })),
        "{err:?}"
    );
    // An escaping symlink already in the base is not carried into the target.
    s.write("old/file", "x");
    s.symlink("old/evil", "../../../etc");
    let tree = deltapack_tree::Tree::scan(&s.path("old")).unwrap();
    let (mut h, payload) = full_header(vec![], b"");
    h.base = Some(tree.id());
    h.target = tree.id();
    let err = apply_fails(Some(&s.path("old")), &seal(&h, &payload), &s.path("out"));
    assert!(matches!(err, Error::SymlinkEscape { .. }), "{err:?}");
    assert_eq!(fs_err::read(&canary).unwrap(), b"do not touch");
}

/// Row 12: the wrong base.
#[test]
fn wrong_base() {
    let s = Scratch::new();
    let pkg = example_package();
    let copy = |name: &str| {
        let dst = s.path(name);
        for (p, snap) in snapshot(&example(1)) {
            match snap {
                Snap::Dir { .. } => {
                    fs_err::create_dir_all(dst.join(&p)).unwrap();
                }
                Snap::File { .. } => {
                    fs_err::create_dir_all(dst.join(&p).parent().unwrap()).unwrap();
                    fs_err::copy(example(1).join(&p), dst.join(&p)).unwrap();
                }
                Snap::Symlink { .. } => unreachable!(),
            }
        }
        dst
    };
    // One byte changed in a file the package reads.
    let b = copy("edited");
    let mut data = fs_err::read(b.join("bin/sample-app")).unwrap();
    data[1000] ^= 1;
    fs_err::write(b.join("bin/sample-app"), &data).unwrap();
    match apply_fails(Some(&b), &pkg, &s.path("out")) {
        Error::BaseMismatch { path, reason } => {
            assert_eq!(path, "bin/sample-app");
            assert!(reason.contains("contents differ"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A file the package reads is missing.
    let b = copy("missing");
    fs_err::remove_file(b.join("share/config.json")).unwrap();
    assert!(
        matches!(apply_fails(Some(&b), &pkg, &s.path("out")), Error::BaseMismatch { path, .. } if path == "share/config.json")
    );
    // A file the package does not read was changed, or one was added.
    let b = copy("unrelated");
    fs_err::write(b.join("share/locale/fr/messages.po"), "edited by the user").unwrap();
    assert!(matches!(
        apply_fails(Some(&b), &pkg, &s.path("out")),
        Error::BaseTreeMismatch { .. }
    ));
    let b = copy("added");
    fs_err::write(b.join("stray.log"), "x").unwrap();
    match apply_fails(Some(&b), &pkg, &s.path("out")) {
        Error::BaseTreeMismatch {
            expected_files,
            found_files,
            ..
        } => assert_eq!(found_files, expected_files + 1),
        other => panic!("{other:?}"),
    }
    // The wrong version entirely, a file instead of a directory, no base.
    assert!(matches!(
        apply_fails(Some(&example(2)), &pkg, &s.path("out")),
        Error::BaseMismatch { .. }
    ));
    let f = s.write("a-file", "x");
    assert!(matches!(
        apply_fails(Some(&f), &pkg, &s.path("out")),
        Error::BaseKind { .. }
    ));
    assert!(matches!(
        apply_fails(None, &pkg, &s.path("out")),
        Error::BaseRequired { .. }
    ));
}

/// Row 13: a patch that applies but produces the wrong bytes.
#[test]
fn wrong_output_is_never_installed() {
    let s = Scratch::new();
    let p = split(&example_package());
    let file_index = p
        .header
        .entries
        .iter()
        .position(|e| e.path.as_str() == "bin/sample-app")
        .unwrap();
    // Whole-file hash.
    let mut h = p.header.clone();
    if let Node::File(f) = &mut h.entries[file_index].node {
        f.hash[0] ^= 1;
    }
    match apply_fails(Some(&example(1)), &seal(&h, &p.payload), &s.path("out")) {
        Error::HashMismatch { path, block } => {
            assert_eq!(path, "bin/sample-app");
            assert_eq!(block, None);
        }
        other => panic!("{other:?}"),
    }
    // A block hash, with small blocks.
    let pkg = diff_with(
        deltapack_diff::Differ::new().block_log(12),
        Some(&example(1)),
        &example(2),
    );
    let p = split(&pkg);
    let mut h = p.header.clone();
    if let Node::File(f) = &mut h.entries[file_index].node {
        f.blocks[3][0] ^= 1;
    }
    assert!(matches!(
        apply_fails(Some(&example(1)), &seal(&h, &p.payload), &s.path("out")),
        Error::HashMismatch { block: Some(3), .. }
    ));
    // The tree digest.
    let mut h = p.header.clone();
    h.target.digest[5] ^= 1;
    assert!(matches!(
        apply_fails(Some(&example(1)), &seal(&h, &p.payload), &s.path("out")),
        Error::TargetMismatch { .. }
    ));
}

#[test]
fn existing_output_is_left_alone() {
    let s = Scratch::new();
    let out = s.write("out/precious", "keep me");
    let err = apply(Some(&example(1)), &example_package(), &s.path("out")).unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }));
    assert_eq!(fs_err::read(out).unwrap(), b"keep me");
}

/// Offsets beyond 4 GiB: a bsdiff control reading near the end of a sparse
/// 4.1 GiB base file.
#[cfg(unix)]
#[test]
fn offsets_beyond_4_gib() {
    let s = Scratch::new();
    let size: u64 = (4 << 30) + 4096;
    let old = s.path("old");
    {
        let f = fs_err::File::create(&old).unwrap();
        f.set_len(size).unwrap();
        use std::os::unix::fs::FileExt;
        f.file().write_all_at(b"far away", size - 100).unwrap();
    }
    let mut full = vec![0u8; 0];
    // Read 8 bytes at offset size-100 (delta = size-100 since new_pos = 0), then 2 literal bytes.
    let target = b"far away!!".to_vec();
    let mut st: [Vec<u8>; STREAMS] = Default::default();
    st[StreamId::Ctrl.index()] = ctrl(8, 2, (size - 100) as i64);
    st[StreamId::Diff.index()] = vec![0; 8];
    st[StreamId::Zrun.index()] = vec![0];
    st[StreamId::Extra.index()] = b"!!".to_vec();
    // Build the header by hand: hashing a 4 GiB sparse file is the cost.
    let (h_size, h_hash) = deltapack_tree::hash_file(&old).unwrap();
    full.extend_from_slice(&h_hash);
    let mut d = deltapack_format::TreeDigester::new();
    d.add(
        "",
        deltapack_format::DigestNode::File {
            executable: false,
            size: h_size,
            hash: &h_hash,
        },
    );
    let pkg = {
        let tmp = stored_file_package(b"", &target, Op::Bsdiff { source: 0 }, st);
        let mut p = split(&tmp);
        p.header.base = Some(d.finish());
        p.header.sources[0].size = h_size;
        p.header.sources[0].hash8.copy_from_slice(&h_hash[..8]);
        seal(&p.header, &p.payload)
    };
    apply(Some(&old), &pkg, &s.path("out")).unwrap();
    assert_eq!(fs_err::read(s.path("out")).unwrap(), target);
}

/// Exact permission bits of a path, special bits included.
#[cfg(unix)]
fn exact_mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs_err::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Exact modes of every node under `root` (the root itself under "").
#[cfg(unix)]
fn exact_modes(root: &std::path::Path) -> std::collections::BTreeMap<String, u32> {
    let mut out: std::collections::BTreeMap<String, u32> = snapshot(root)
        .into_keys()
        .map(|p| {
            let m = exact_mode(&root.join(&p));
            (p, m)
        })
        .collect();
    out.insert(String::new(), exact_mode(root));
    out
}

/// The mode a package header gives `path`.
fn header_mode(h: &deltapack_format::Header, path: &str) -> u32 {
    match &h
        .entries
        .iter()
        .find(|e| e.path.as_str() == path)
        .unwrap()
        .node
    {
        Node::Dir { mode } => *mode,
        Node::File(f) => f.mode,
        Node::Symlink { .. } => panic!("{path} is a symlink"),
    }
}

/// Row 11: setuid, setgid, sticky and world-writable modes in a new tree
/// never reach the output. The scanner keeps permission bits only
/// (`MODE_MASK`, 0o777), so the diff writes no special bit; the decoder
/// refuses a header that claims one (`HostileMode`); and the applier masks
/// what is left with 0o755, so nothing it writes is group- or
/// world-writable.
#[cfg(unix)]
#[test]
fn hostile_modes_are_masked() {
    let s = Scratch::new();
    s.write("old/bin/sgid", noise(40, 50_000));
    s.write("old/bin/sticky", noise(41, 20_000));
    // New: a setuid file (literal), a setgid edit of a base file (bsdiff),
    // a sticky, world-writable file with the base's bytes (copy), a
    // world-writable file, a sticky world-writable directory, a setgid
    // directory, a world-writable directory.
    s.write("new/bin/suid", noise(42, 10_000));
    let mut edited = noise(40, 50_000);
    edited[100] ^= 1;
    s.write("new/bin/sgid", &edited);
    s.write("new/bin/sticky", noise(41, 20_000));
    s.write("new/open/world.txt", "anyone may write\n");
    s.mkdir("new/tmp");
    s.mkdir("new/shared");
    let hostile = [
        ("bin/suid", 0o4755),
        ("bin/sgid", 0o2755),
        ("bin/sticky", 0o1777),
        ("open/world.txt", 0o666),
        ("open", 0o777),
        ("tmp", 0o1777),
        ("shared", 0o2775),
    ];
    for (p, m) in hostile {
        s.chmod(&format!("new/{p}"), m);
        assert_eq!(exact_mode(&s.path(&format!("new/{p}"))), m, "{p}: chmod");
    }
    let (old, new) = (s.path("old"), s.path("new"));
    let pkg = diff(&old, &new);
    // The package carries permission bits only: the special bits are gone,
    // world-write is still there (the applier's mask deals with it).
    let h = split(&pkg).header;
    for (p, m) in hostile {
        assert_eq!(header_mode(&h, p), m & 0o777, "{p} in the header");
    }
    let ops: Vec<(&str, &str)> = ["bin/suid", "bin/sgid", "bin/sticky"]
        .iter()
        .map(|p| {
            let Node::File(f) = &h
                .entries
                .iter()
                .find(|e| e.path.as_str() == *p)
                .unwrap()
                .node
            else {
                panic!("{p}")
            };
            (*p, f.op.name())
        })
        .collect();
    // New bytes, a patch against the base (whichever codec is smaller), a
    // mode change of the base's bytes.
    assert_eq!(ops[0], ("bin/suid", "literal"));
    assert!(matches!(ops[1].1, "bsdiff" | "zstd-ref"), "{ops:?}");
    assert_eq!(ops[2], ("bin/sticky", "copy"));
    let want: std::collections::BTreeMap<String, u32> = [
        ("", 0o755),
        ("bin", 0o755),
        ("bin/sgid", 0o755),
        ("bin/sticky", 0o755),
        ("bin/suid", 0o755),
        ("open", 0o755),
        ("open/world.txt", 0o644),
        ("shared", 0o755),
        ("tmp", 0o755),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m))
    .collect();
    // Delta and full package alike.
    let full = diff_with(deltapack_diff::Differ::new(), None, &new);
    for (name, base, package) in [("delta", Some(&old), &pkg), ("full", None, &full)] {
        let out = s.path(&format!("out-{name}"));
        let report = apply(base.map(|b| b.as_path()), package, &out).unwrap();
        assert_eq!(exact_modes(&out), want, "{name}");
        // The round trip still verifies: same bytes, same tree identity.
        assert_eq!(snapshot(&out), snapshot(&new), "{name}");
        let id = deltapack_tree::Tree::scan(&out).unwrap().id();
        assert_eq!(Some(id), report.target, "{name}");
        assert_eq!(id, deltapack_tree::Tree::scan(&new).unwrap().id(), "{name}");
        let v = Applier::new()
            .verify(&package[..], base.map(|b| b.as_path()), &|_| {})
            .unwrap();
        assert!(v.full, "{name}");
    }
    // A header that claims the special bits itself (the package hash is
    // recomputed by `seal`, so it is the decoder that refuses it).
    let p = split(&pkg);
    for (path, mode) in [("bin/suid", 0o4755), ("bin/sgid", 0o2755), ("tmp", 0o1777)] {
        let mut h = p.header.clone();
        let e = h
            .entries
            .iter_mut()
            .find(|e| e.path.as_str() == path)
            .unwrap();
        match &mut e.node {
            Node::Dir { mode: m } => *m = mode,
            Node::File(f) => f.mode = mode,
            Node::Symlink { .. } => unreachable!(),
        }
        match apply_fails(Some(&old), &seal(&h, &p.payload), &s.path("out-crafted")) {
            Error::Decode(DecodeError::HostileMode { path: got, mode: m }) => {
                assert_eq!((got.as_str(), m), (path, u64::from(mode)));
            }
            other => panic!("{path} {mode:#o}: {other:?}"),
        }
    }
    // World-writable is within the format's bits: a header that claims
    // 0o777 on a file and a directory applies, masked.
    let mut h = p.header.clone();
    for e in &mut h.entries {
        match &mut e.node {
            Node::File(f) if e.path.as_str() == "bin/suid" => f.mode = 0o777,
            Node::Dir { mode } if e.path.as_str() == "shared" => *mode = 0o777,
            _ => {}
        }
    }
    let out = s.path("out-world");
    apply(Some(&old), &seal(&h, &p.payload), &out).unwrap();
    assert_eq!(exact_modes(&out), want);
}

/// A package reader that runs `action` once, just before it hands out
/// byte `at` of the package (never a read that straddles it).
struct MutateAt<'a> {
    data: &'a [u8],
    pos: usize,
    at: usize,
    action: Option<Box<dyn FnOnce() + 'a>>,
}

impl std::io::Read for MutateAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.at
            && let Some(f) = self.action.take()
        {
            f();
        }
        let end = if self.pos < self.at {
            self.at
        } else {
            self.data.len()
        };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Whether an error is the one a case expects.
type Expect = fn(&Error) -> bool;

/// Overwrites bytes of a file in place (same size, same inode).
fn overwrite(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs_err::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Row 32: a base file changes after the applier verified the base but
/// before it is done reading it (the running app rewrites a file). The
/// package reader flips base bytes when the applier asks for the first
/// payload byte: the prologue and header have been read, the base has been
/// scanned and hashed (a change before that is `BaseMismatch`), and no
/// target byte has been produced. Each kind of base read catches it: a
/// bsdiff source by the hash of the output block holding the changed
/// byte, a copy source by the output's file hash, and a file carried over
/// unchanged by re-hashing the copy (`BaseChanged`).
#[test]
fn base_changed_during_apply_is_caught() {
    let s = Scratch::new();
    let big = noise(50, 1 << 20);
    // Substitutions only, so base offsets are target offsets.
    let mut big_new = big.clone();
    for i in (0..big_new.len()).step_by(4099) {
        big_new[i] ^= 0x5a;
    }
    let kept = noise(51, 300_000);
    let moved = noise(52, 200_000);
    let files = [
        ("big.bin", &big),
        ("kept.bin", &kept),
        ("moved.bin", &moved),
    ];
    let base = |name: &str| {
        for (p, data) in files {
            s.write(&format!("{name}/{p}"), data);
        }
        s.path(name)
    };
    let old = base("old");
    s.write("new/big.bin", &big_new);
    s.write("new/kept.bin", &kept);
    s.write("new/renamed.bin", &moved);
    // 64 KiB blocks; no patch-from, so base files are read while the
    // payload streams in (patch-from reads its reference before).
    let differ = deltapack_diff::Differ::new().block_log(16).zstd_ref_max(0);
    let pkg = diff_with(differ, Some(&old), &s.path("new"));
    let p = split(&pkg);
    let payload_at = pkg.len() - p.payload.len();
    let op = |path: &str| {
        p.header.entries.iter().find_map(|e| match &e.node {
            Node::File(f) if e.path.as_str() == path => Some((f.op.name(), f.blocks.len())),
            _ => None,
        })
    };
    assert_eq!(op("big.bin"), Some(("bsdiff", 16)));
    // A copy has no block hashes: its bytes are checked by the file hash.
    assert_eq!(op("renamed.bin"), Some(("copy", 0)));
    assert_eq!(op("kept.bin"), None, "carried over");

    // The reader itself changes nothing: with no mutation the apply works.
    let b = base("base-untouched");
    let reader = MutateAt {
        data: &pkg,
        pos: 0,
        at: payload_at,
        action: Some(Box::new(|| {})),
    };
    let out = s.path("out-untouched");
    Applier::new()
        .sync(false)
        .apply(Some(&b), reader, &out, &|_| {})
        .unwrap();
    assert_eq!(snapshot(&out), snapshot(&s.path("new")));

    // (base file, offset flipped, the error).
    let cases: [(&str, u64, Expect); 3] = [
        (
            "big.bin",
            600_000,
            |e| matches!(e, Error::HashMismatch { path, block: Some(9) } if path == "big.bin"),
        ),
        (
            "moved.bin",
            70_000,
            |e| matches!(e, Error::HashMismatch { path, block: None } if path == "renamed.bin"),
        ),
        (
            "kept.bin",
            123,
            |e| matches!(e, Error::BaseChanged { path } if path == "kept.bin"),
        ),
    ];
    for (file, offset, expected) in cases {
        let name = format!("base-{file}");
        let b = base(&name);
        let before = snapshot(&b);
        let target = b.join(file);
        let original = fs_err::read(&target).unwrap();
        let mut changed = original.clone();
        changed[offset as usize] ^= 0xff;
        let reader = MutateAt {
            data: &pkg,
            pos: 0,
            at: payload_at,
            action: Some(Box::new(|| {
                overwrite(&target, offset, &[changed[offset as usize]]);
            })),
        };
        let out = s.path(&format!("out-{file}"));
        let err = Applier::new()
            .sync(false)
            .apply(Some(&b), reader, &out, &|_| {})
            .unwrap_err();
        assert!(expected(&err), "{file}: {err:?}");
        assert!(fs_err::symlink_metadata(&out).is_err(), "{file}: output");
        let out_name = format!("out-{file}");
        assert_eq!(debris(&s.path(""), &out_name), Vec::<String>::new());
        // The base is as it was, apart from the deliberate change.
        assert_eq!(fs_err::read(&target).unwrap(), changed, "{file}");
        fs_err::write(&target, &original).unwrap();
        assert_eq!(snapshot(&b), before, "{file}");
    }
}

/// Row 19 at the applier: a header that is not the one the caller expects
/// (from a signed manifest) is refused before the base is read or a byte
/// is written, and before the payload is read.
#[test]
fn an_unexpected_header_is_refused_before_anything_is_written() {
    use deltapack_apply::{Expected, HeaderField};
    let s = Scratch::new();
    let pkg = example_package();
    let header = Applier::new().read_header(&mut pkg.as_slice()).unwrap();
    let digest = header.target.digest;
    let good = Expected {
        platform: Some(header.platform.clone()),
        from_version: Some(header.from_version.clone()),
        to_version: Some(header.to_version.clone()),
        target: Some(digest),
    };
    let mut wrong_digest = digest;
    wrong_digest[0] ^= 1;
    for (field, bad) in [
        (
            HeaderField::Platform,
            Expected {
                platform: Some("windows-x86_64".into()),
                ..good.clone()
            },
        ),
        (
            HeaderField::FromVersion,
            Expected {
                from_version: Some("0.9.0".into()),
                ..good.clone()
            },
        ),
        (
            HeaderField::ToVersion,
            Expected {
                to_version: Some("9.9.9".into()),
                ..good.clone()
            },
        ),
        (
            HeaderField::Target,
            Expected {
                target: Some(wrong_digest),
                ..good.clone()
            },
        ),
    ] {
        // The base given is the wrong one too: the header is checked first.
        let out = s.path("out");
        let mut read = 0usize;
        let counting = CountingReader {
            inner: pkg.as_slice(),
            read: &mut read,
        };
        let err = Applier::new()
            .sync(false)
            .expect(bad)
            .apply(Some(&example(2)), counting, &out, &|_| {})
            .unwrap_err();
        match err {
            Error::Unexpected { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field:?}: {other:?}"),
        }
        assert!(fs_err::symlink_metadata(&out).is_err(), "{field:?}");
        assert_eq!(debris(out.parent().unwrap(), "out"), Vec::<String>::new());
        let prefix = pkg.len() as u64 - header.payload_len;
        assert!(
            read as u64 <= prefix + 64 * 1024,
            "{field:?}: read {read} of {} bytes",
            pkg.len()
        );
    }
    // The right expectation applies.
    Applier::new()
        .sync(false)
        .expect(good)
        .apply(Some(&example(1)), pkg.as_slice(), &s.path("ok"), &|_| {})
        .unwrap();
}

/// Counts the bytes the applier pulls.
struct CountingReader<'a> {
    inner: &'a [u8],
    read: &'a mut usize,
}

impl std::io::Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.read += n;
        Ok(n)
    }
}

/// Row 12 with an app that has run: files it added beside its code (a
/// `__pycache__/`, a log) are not the release's. Given the release's paths,
/// the applier ignores them — not checked, not carried into the new
/// version — and still refuses a base whose release files changed.
#[test]
fn files_an_app_added_are_not_part_of_the_base() {
    let s = Scratch::new();
    let pkg = example_package();
    let fresh = s.path("v1");
    let listed = {
        let out = s.path("listed");
        let r = Applier::new()
            .sync(false)
            .apply(
                None,
                diff_with(deltapack_diff::Differ::new(), None, &example(1)).as_slice(),
                &out,
                &|_| {},
            )
            .unwrap();
        fs_err::rename(&out, &fresh).unwrap();
        r.paths
            .into_iter()
            .collect::<std::collections::BTreeSet<String>>()
    };
    assert!(listed.contains("bin/sample-app"), "{listed:?}");
    // The app ran: it wrote bytecode and a log, and a socket-like oddity.
    fs_err::create_dir_all(fresh.join("__pycache__")).unwrap();
    fs_err::write(fresh.join("__pycache__/app.cpython-311.pyc"), "bytecode").unwrap();
    fs_err::write(fresh.join("share/app.log"), "a log line\n").unwrap();
    // Without the list the base is another tree; with it, the delta applies.
    assert!(matches!(
        apply_fails(Some(&fresh), &pkg, &s.path("out0")),
        Error::BaseTreeMismatch { .. }
    ));
    let out = s.path("out");
    Applier::new()
        .sync(false)
        .base_paths(listed.clone())
        .apply(Some(&fresh), &pkg[..], &out, &|_| {})
        .unwrap();
    assert_eq!(
        snapshot(&out),
        snapshot(&example(2)),
        "nothing extra carried over"
    );
    assert!(
        fresh.join("__pycache__/app.cpython-311.pyc").exists(),
        "the base is untouched"
    );
    // A release file changed: refused as before.
    let mut data = fs_err::read(fresh.join("share/config.json")).unwrap();
    data.push(b' ');
    fs_err::write(fresh.join("share/config.json"), data).unwrap();
    let err = Applier::new()
        .sync(false)
        .base_paths(listed.clone())
        .apply(Some(&fresh), &pkg[..], &s.path("out2"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BaseMismatch { .. } | Error::BaseTreeMismatch { .. }
        ),
        "{err:?}"
    );
    // A release file removed: refused too.
    fs_err::remove_file(fresh.join("share/config.json")).unwrap();
    let err = Applier::new()
        .sync(false)
        .base_paths(listed)
        .apply(Some(&fresh), &pkg[..], &s.path("out3"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BaseMismatch { .. } | Error::BaseTreeMismatch { .. }
        ),
        "{err:?}"
    );
}
