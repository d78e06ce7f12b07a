//! The executable-aware codecs on real x86-64 code: `bsdiff-exe`
//! (FORMAT.md §6.4), which the encoder writes, and `bsdiff-x86` (§6.3),
//! which it wrote before and readers still apply.
//!
//! Real binaries: `testdata/exe/callgraph-v1` and `-v2` (400 functions
//! calling each other, v2 inserting two near the start: a real compiler
//! and linker moved the code), v1 "relinked" here with code inserted at the
//! start of `.text` so that every branch across it changes, and
//! `dispatch-v1`/`-v2` (strings, globals, a function pointer table with
//! its dynamic relocations, jump tables and unwind tables, all moved).
//! Round trips when everything moved, when nothing did, and hostile
//! controls and layouts.

use deltapack_format::exe::{Arch, Layout, Move, Scan, ScanKind, Segment};
use deltapack_format::reader::put_varint;
use deltapack_format::{Op, STREAMS, StreamId, reloc};

use deltapack_diff::Differ;

use crate::craft::*;
use crate::harness::*;
use deltapack_apply::Error;

/// `[start, end)` of the executable sections of a 64-bit little-endian
/// ELF file (a minimal reader: the test's own view, independent of the
/// encoder's).
fn elf_code(b: &[u8]) -> Vec<(usize, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&b[..4], b"\x7fELF");
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    (0..shnum)
        .filter_map(|i| {
            let o = shoff + i * shentsize;
            let (typ, flags) = (
                u32::from_le_bytes(b[o + 4..o + 8].try_into().unwrap()),
                u64_at(o + 8),
            );
            (typ == 1 && flags & 4 != 0).then(|| (u64_at(o + 24), u64_at(o + 24) + u64_at(o + 32)))
        })
        .collect()
}

/// Every 4-byte relative reference in `code` ranges of `b` (calls, jumps
/// and RIP-relative operands, found by the format's instruction decoder):
/// (displacement offset, end of the instruction, target). In this test's
/// binaries code is mapped at its file offset, so offsets are addresses.
fn references(b: &[u8], code: &[(usize, usize)]) -> Vec<(usize, usize, i64)> {
    let mut out = Vec::new();
    for &(a, e) in code {
        let mut i = a;
        while let Some(insn) = deltapack_format::x86::decode(&b[i..e]) {
            if let Some(r) = insn.rel32 {
                let d = i + r;
                let rel = i32::from_le_bytes(b[d..d + 4].try_into().unwrap()) as i64;
                out.push((d, i + insn.len, (i + insn.len) as i64 + rel));
            }
            i += insn.len;
        }
    }
    out
}

/// `old` with `n` bytes of new code inserted at `at`, as a linker would
/// lay it out: the code after `at` moves (the page padding at the end of
/// the code segment shrinks, so nothing after it moves), and every
/// reference across the insertion is fixed up.
fn relink(old: &[u8], at: usize, n: usize) -> Vec<u8> {
    let code = elf_code(old);
    let code_end = code.iter().map(|c| c.1).max().unwrap();
    let pad_end = code_end.next_multiple_of(4096);
    assert!(
        old[pad_end - n..pad_end].iter().all(|&b| b == 0),
        "no room for {n} bytes before {pad_end:#x}"
    );
    let mut new = old[..at].to_vec();
    new.extend((0..n).map(|k| [0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0x90][k % 7]));
    new.extend_from_slice(&old[at..pad_end - n]);
    new.extend_from_slice(&old[pad_end..]);
    let moved = |p: i64| {
        if p >= at as i64 && p < pad_end as i64 {
            p + n as i64
        } else {
            p
        }
    };
    for (d, end, t) in references(old, &code) {
        let rel = moved(t) - moved(end as i64);
        let d2 = moved(d as i64) as usize;
        new[d2..d2 + 4].copy_from_slice(&(rel as i32).to_le_bytes());
    }
    new
}

fn op_of(pkg: &[u8]) -> Op {
    let parts = split(pkg);
    match &parts.header.entries[0].node {
        deltapack_format::Node::File(f) => f.op,
        other => panic!("{other:?}"),
    }
}

fn testdata_exe(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/exe")
        .join(name)
}

fn callgraph(v: u32) -> std::path::PathBuf {
    testdata_exe(&format!("callgraph-v{v}"))
}

fn forced_plain(old: &std::path::Path, new: &std::path::Path) -> Vec<u8> {
    // Variant 2|4: bsdiff forced, LZMA2: the generic codec on the same pair.
    deltapack_diff::fuzzing::encode(old, new, 2 | 4).unwrap()
}

/// Round trip of `old` -> `new`: must pick bsdiff-exe and be at most
/// `percent`% of the plain bsdiff package. Returns both sizes.
fn relocates(
    s: &Scratch,
    name: &str,
    old: &std::path::Path,
    new: &std::path::Path,
    percent: usize,
) -> (usize, usize) {
    let (pkg, _) = round_trip(old, new, &s.path(name));
    assert!(
        matches!(op_of(&pkg), Op::BsdiffExe { .. }),
        "{name}: {:?}",
        op_of(&pkg)
    );
    let plain = forced_plain(old, new);
    assert!(
        pkg.len() * 100 <= plain.len() * percent,
        "{name}: bsdiff-exe {} bytes, plain bsdiff {}",
        pkg.len(),
        plain.len()
    );
    (pkg.len(), plain.len())
}

#[test]
fn a_real_rebuild_relocates_and_beats_plain_bsdiff() {
    let s = Scratch::new();
    relocates(&s, "v2", &callgraph(1), &callgraph(2), 90);
}

#[test]
fn moved_data_tables_and_unwind_records_are_predicted() {
    // dispatch v2 adds code, strings and table entries: .text, .rodata,
    // .eh_frame, .data.rel.ro and the dynamic relocations all move, each
    // by its own amount.
    let s = Scratch::new();
    let (exe, plain) = relocates(
        &s,
        "dispatch",
        &testdata_exe("dispatch-v1"),
        &testdata_exe("dispatch-v2"),
        80,
    );
    eprintln!("dispatch: bsdiff-exe {exe} bytes, plain bsdiff {plain}");
}

#[test]
fn arm64_code_is_predicted() {
    // The same program built for arm64 (ELF): bl, adrp pairs, literal
    // loads, and the data tables as on x86-64.
    let s = Scratch::new();
    let (exe, plain) = relocates(
        &s,
        "dispatch-arm64",
        &testdata_exe("dispatch-arm64-v1"),
        &testdata_exe("dispatch-arm64-v2"),
        85,
    );
    eprintln!("dispatch-arm64: bsdiff-exe {exe} bytes, plain bsdiff {plain}");
}

#[test]
fn moved_code_relocates_and_beats_plain_bsdiff() {
    let s = Scratch::new();
    let app = fs_err::read(callgraph(1)).unwrap();
    let code = elf_code(&app);
    let text = *code.iter().max_by_key(|(a, e)| e - a).unwrap();
    let n = references(&app, &code).len();
    assert!(n > 500, "callgraph has {n} references");
    // Code inserted mid-.text: every branch across it changes.
    let half = s.write("half.new", relink(&app, (text.0 + text.1) / 2, 96));
    relocates(&s, "half", &callgraph(1), &half, 90);
    // Inserted at the start of .text: everything moved by the same
    // amount, so only branches to and from the PLT change. Whichever codec
    // wins, it must round-trip and be no worse than plain bsdiff.
    let all = s.write("all.new", relink(&app, text.0, 96));
    let (pkg, _) = round_trip(&callgraph(1), &all, &s.path("all-out"));
    assert!(pkg.len() <= forced_plain(&callgraph(1), &all).len());
}

#[test]
fn nothing_moved_and_data_only_changes_round_trip() {
    let s = Scratch::new();
    let app = fs_err::read(callgraph(1)).unwrap();
    let old = s.write("old", &app);
    // Identical: nothing to patch.
    round_trip(&old, &old, &s.path("same"));
    // A few bytes of data changed, code untouched.
    let mut data = app.clone();
    let n = data.len();
    for k in (n - 3000..n - 2000).step_by(97) {
        data[k] ^= 0x5a;
    }
    let new = s.write("new", &data);
    round_trip(&old, &new, &s.path("out"));
    // The real upgrade of the sample app (v1 -> v2), whichever codec wins.
    round_trip(
        &example(1).join("bin/sample-app"),
        &example(2).join("bin/sample-app"),
        &s.path("v2"),
    );
}

#[test]
fn forced_relocation_round_trips_on_any_bytes() {
    let s = Scratch::new();
    // Not code at all: relocation misfires everywhere, the difference
    // bytes correct it.
    for seed in 0..4u64 {
        let a = noise(seed, 50_000);
        let mut b = a.clone();
        b.splice(20_000..20_000, noise(seed + 10, 700));
        b.truncate(45_000);
        let old = s.write(&format!("o{seed}"), &a);
        let new = s.write(&format!("n{seed}"), &b);
        // As x86-64 code, and as arm64 code.
        for variant in [2 | 16, 2 | 16 | 32] {
            let pkg = deltapack_diff::fuzzing::encode(&old, &new, variant).unwrap();
            assert!(matches!(op_of(&pkg), Op::BsdiffExe { .. }));
            let out = s.path(&format!("out{seed}-{variant}"));
            apply(Some(&old), &pkg, &out).unwrap();
            assert_eq!(fs_err::read(&out).unwrap(), b);
        }
    }
}

/// Ranges header plus controls, as the ctrl stream of a bsdiff-x86 file.
fn x86_ctrl(ranges: &[(u64, u64)], controls: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    put_varint(&mut v, ranges.len() as u64);
    let mut prev = 0;
    for &(a, b) in ranges {
        put_varint(&mut v, a.wrapping_sub(prev));
        put_varint(&mut v, b.wrapping_sub(a));
        prev = b;
    }
    v.extend(controls.concat());
    v
}

#[test]
fn hostile_relocation_controls_are_refused() {
    let s = Scratch::new();
    let base = noise(1, 10_000);
    let target = noise(2, 100);
    let old = s.write("old", &base);
    let pkg = |ctrl_bytes: Vec<u8>| {
        let mut st: [Vec<u8>; STREAMS] = Default::default();
        st[StreamId::Ctrl.index()] = ctrl_bytes;
        st[StreamId::Diff.index()] = vec![1; 100];
        st[StreamId::Extra.index()] = target.clone();
        stored_file_package(&base, &target, Op::BsdiffX86 { source: 0 }, st)
    };
    let refused = |ctrl_bytes: Vec<u8>, what: &str| match apply_fails(
        Some(&old),
        &pkg(ctrl_bytes),
        &s.path("out"),
    ) {
        Error::CorruptPatch {
            codec: "bsdiff-x86",
            what: w,
            ..
        } => assert!(w.contains(what), "{what}: {w}"),
        other => panic!("{what}: {other:?}"),
    };
    let ok_ctrl = [ctrl(0, 100, 0)];
    refused(
        x86_ctrl(&vec![(0, 1); reloc::MAX_RANGES + 1], &ok_ctrl),
        "code ranges",
    );
    refused(
        x86_ctrl(&[(0, 20_000)], &ok_ctrl),
        "past the 10000-byte base",
    );
    refused(x86_ctrl(&[(50, 50)], &ok_ctrl), "empty");
    // Ranges are coded as gaps, so they cannot overlap; a gap past the
    // end of the address space overflows.
    refused(x86_ctrl(&[(0, 10), (5, 20)], &ok_ctrl), "overflows");
    refused(
        x86_ctrl(&[(0, u64::MAX)], &ok_ctrl),
        "past the 10000-byte base",
    );
    refused(x86_ctrl(&[(0, 100)], &[ctrl(0, 0, 0)]), "overruns");
    refused(
        x86_ctrl(&[(0, 100)], &[ctrl(10, 0, 20_000)]),
        "of a 10000-byte file",
    );
    // A control list with no end in sight is refused at the bound, not
    // held: 100 output bytes cannot take more controls than bytes, and a
    // region longer than the bound is refused before any byte is read.
    let base_big = noise(3, 3 << 20);
    let target_big = noise(4, 2 << 20);
    let old_big = s.write("old_big", &base_big);
    let mut st: [Vec<u8>; STREAMS] = Default::default();
    st[StreamId::Ctrl.index()] = x86_ctrl(&[(0, 1000)], &[ctrl(2 << 20, 0, 0)]);
    let p = stored_file_package(&base_big, &target_big, Op::BsdiffX86 { source: 0 }, st);
    match apply_fails(Some(&old_big), &p, &s.path("out")) {
        Error::CorruptPatch { what, .. } => assert!(what.contains("longer than"), "{what}"),
        other => panic!("{other:?}"),
    }
}

/// Real consecutive releases of one library (MarkupSafe 3.0.2 -> 3.0.3,
/// 3.0.3 -> 3.0.4 for Windows arm64; see testdata/exe/README.md) in each
/// container and architecture: every
/// pair round-trips and is no larger than with the generic codecs; x86-64
/// PE gets bsdiff-exe and beats plain bsdiff. (The arm64 pairs change little code: whatever
/// codec is smallest wins there.)
#[test]
fn real_pe_and_mach_o_and_arm64_releases_round_trip() {
    let s = Scratch::new();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/exe/markupsafe");
    for (kind, ext, from, to) in [
        ("pe-x86_64", "pyd", "3.0.2", "3.0.3"),
        ("pe-arm64", "pyd", "3.0.3", "3.0.4"),
        ("macho-x86_64", "so", "3.0.2", "3.0.3"),
        ("macho-arm64", "so", "3.0.2", "3.0.3"),
        ("elf-aarch64", "so", "3.0.2", "3.0.3"),
    ] {
        let old = dir.join(format!("{kind}-{from}.{ext}"));
        let new = dir.join(format!("{kind}-{to}.{ext}"));
        let (pkg, _) = round_trip(&old, &new, &s.path(kind));
        let op = op_of(&pkg);
        let generic = diff_with(Differ::new().executables(false), Some(&old), &new);
        assert!(
            pkg.len() <= generic.len(),
            "{kind}: {} > {}",
            pkg.len(),
            generic.len()
        );
        if kind == "pe-x86_64" {
            assert!(matches!(op, Op::BsdiffExe { .. }), "{kind}: {op:?}");
            assert!(pkg.len() < forced_plain(&old, &new).len(), "{kind}");
        }
    }
}

/// A layout and controls, as the ctrl stream of a bsdiff-exe file.
fn exe_ctrl(layout: &Layout, controls: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    layout.encode(&mut v);
    v.extend(controls.concat());
    v
}

#[test]
fn hostile_layouts_are_refused() {
    let s = Scratch::new();
    let base = noise(1, 10_000);
    let target = noise(2, 100);
    let old = s.write("old", &base);
    let refused = |ctrl_bytes: Vec<u8>, what: &str| {
        let mut st: [Vec<u8>; STREAMS] = Default::default();
        st[StreamId::Ctrl.index()] = ctrl_bytes;
        st[StreamId::Diff.index()] = vec![1; 100];
        st[StreamId::Extra.index()] = target.clone();
        let pkg = stored_file_package(&base, &target, Op::BsdiffExe { source: 0 }, st);
        match apply_fails(Some(&old), &pkg, &s.path("out")) {
            Error::CorruptPatch {
                codec: "bsdiff-exe",
                what: w,
                ..
            } => assert!(w.contains(what), "{what}: {w}"),
            other => panic!("{what}: {other:?}"),
        }
    };
    let seg = |file_off, len, va| Segment { file_off, len, va };
    let good = Layout {
        arch: Arch::X86_64,
        old: vec![seg(0, 10_000, 0x1000)],
        new: vec![seg(0, 100, 0x1000)],
        moves: vec![Move {
            old_va: 0x9000,
            len: 0x100,
            new_va: 0x9100,
        }],
        scans: vec![Scan {
            kind: ScanKind::Code,
            start: 0,
            end: 10_000,
        }],
    };
    let ok_ctrl = [ctrl(0, 100, 0)];
    // The good layout applies (the output is the extra bytes).
    {
        let mut st: [Vec<u8>; STREAMS] = Default::default();
        st[StreamId::Ctrl.index()] = exe_ctrl(&good, &ok_ctrl);
        st[StreamId::Extra.index()] = target.clone();
        let pkg = stored_file_package(&base, &target, Op::BsdiffExe { source: 0 }, st);
        apply(Some(&old), &pkg, &s.path("good")).unwrap();
        assert_eq!(fs_err::read(s.path("good")).unwrap(), target);
    }
    let with = |f: &dyn Fn(&mut Layout)| {
        let mut l = good.clone();
        f(&mut l);
        exe_ctrl(&l, &ok_ctrl)
    };
    refused(
        with(&|l| l.old = vec![seg(0, 10_001, 0)]),
        "past the 10000-byte file",
    );
    refused(
        with(&|l| l.new = vec![seg(50, 51, 0)]),
        "past the 100-byte file",
    );
    refused(with(&|l| l.old = vec![seg(0, 0, 0)]), "empty");
    refused(
        with(&|l| l.old = vec![seg(0, 10, u64::MAX - 5)]),
        "overflows",
    );
    refused(
        with(&|l| l.old = vec![seg(0, 1, 0); deltapack_format::exe::MAX_SEGMENTS + 1]),
        "segments, at most",
    );
    refused(
        with(&|l| {
            l.scans = vec![Scan {
                kind: ScanKind::Abs64,
                start: 9_000,
                end: 10_001,
            }]
        }),
        "past the 10000-byte base",
    );
    refused(
        with(&|l| {
            l.moves[0].new_va = u64::MAX - 1;
        }),
        "overflows",
    );
    refused(
        with(&|l| {
            l.scans = vec![
                Scan {
                    kind: ScanKind::Rel32,
                    start: 0,
                    end: 1,
                };
                deltapack_format::exe::MAX_SCANS + 1
            ]
        }),
        "scan ranges, at most",
    );
    // Hand-written bytes for what `Layout::encode` cannot write: an
    // unknown architecture, an unknown scan kind, gaps that overflow.
    let raw = |v: &[u64]| {
        let mut b = Vec::new();
        for &x in v {
            put_varint(&mut b, x);
        }
        b.extend(ok_ctrl.concat());
        b
    };
    refused(raw(&[7]), "unknown architecture 7");
    refused(raw(&[1, 0, 0, 0, 1, 9, 0, 1]), "unknown scan kind 9");
    refused(raw(&[1, 1, u64::MAX, 2, 0]), "overflows");
    refused(raw(&[1, 0, 0, 1, u64::MAX, 2, 0]), "overflows");
    // Controls are checked as for bsdiff-x86.
    refused(exe_ctrl(&good, &[ctrl(0, 0, 0)]), "overruns");
    refused(
        exe_ctrl(&good, &[ctrl(10, 0, 20_000)]),
        "of a 10000-byte file",
    );
}

/// The executable-aware encoder (its scans, labels and predictions) gives
/// the same bytes whatever the thread count, x86-64 and arm64 alike.
#[test]
fn exe_packages_do_not_depend_on_the_thread_count() {
    for pair in ["dispatch", "dispatch-arm64"] {
        let (old, new) = (
            testdata_exe(&format!("{pair}-v1")),
            testdata_exe(&format!("{pair}-v2")),
        );
        let one = diff_with(Differ::new().threads(1), Some(&old), &new);
        let two = diff_with(Differ::new().threads(2), Some(&old), &new);
        assert!(
            matches!(op_of(&one), Op::BsdiffExe { .. }),
            "{pair}: {:?}",
            op_of(&one)
        );
        assert_eq!(one, two, "{pair}");
    }
}
