//! Round trips through the real diff engine: files, trees, real executables,
//! full packages, levels, determinism, streaming.

use std::io::Read;

use deltapack_diff::Differ;
use deltapack_format::{Limits, Node, Op, decode_prefix};

use crate::harness::*;

fn ops(pkg: &[u8]) -> Vec<(String, &'static str)> {
    let (_, h, _) = decode_prefix(pkg, &Limits::default()).unwrap();
    h.entries
        .iter()
        .map(|e| {
            let k = match &e.node {
                Node::Dir { .. } => "dir",
                Node::Symlink { .. } => "symlink",
                Node::File(f) => f.op.name(),
            };
            (e.path.to_string(), k)
        })
        .collect()
}

#[test]
fn single_file_edits() {
    let s = Scratch::new();
    let base = noise(1, 200_000);
    let mut edited = base.clone();
    edited.splice(1000..1000, b"inserted".iter().copied());
    edited.drain(50_000..50_500);
    for i in (100_000..150_000).step_by(333) {
        edited[i] = edited[i].wrapping_add(3);
    }
    edited.extend_from_slice(&noise(2, 3000));
    let old = s.write("old.bin", &base);
    let new = s.write("new.bin", &edited);
    let (pkg, report) = round_trip(&old, &new, &s.path("out.bin"));
    assert!(pkg.len() < 20_000, "package of {} bytes", pkg.len());
    assert_eq!(report.files, 1);
    assert_eq!(report.bytes, edited.len() as u64);
}

#[test]
fn file_with_its_head_removed_round_trips_through_bsdiff() {
    // Found by the codec_decoder fuzz target: a new file that starts with
    // bytes from further into the old one made the encoder write an empty
    // first control, which the applier rightly rejects.
    let s = Scratch::new();
    let base = noise(6, 300_000);
    let old = s.write("old.bin", &base);
    let new = s.write("new.bin", &base[1000..]);
    let pkg = diff_with(Differ::new().zstd_ref_max(0), Some(&old), &new);
    assert_eq!(ops(&pkg)[0].1, "bsdiff");
    let out = s.path("out.bin");
    apply(Some(&old), &pkg, &out).unwrap();
    assert_eq!(fs_err::read(&out).unwrap(), base[1000..]);
}

#[test]
fn single_file_edge_cases() {
    let s = Scratch::new();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![], vec![]),
        (vec![], b"now something".to_vec()),
        (b"something".to_vec(), vec![]),
        (b"x".to_vec(), b"y".to_vec()),
        (noise(3, 5000), noise(3, 5000)),
        (noise(4, 5000), noise(5, 7000)),
    ];
    for (i, (a, b)) in cases.iter().enumerate() {
        let old = s.write(&format!("o{i}"), a);
        let new = s.write(&format!("n{i}"), b);
        round_trip(&old, &new, &s.path(&format!("r{i}")));
    }
}

#[cfg(unix)]
#[test]
fn tree_changes_of_every_kind() {
    let s = Scratch::new();
    // Old tree.
    s.write("old/keep.txt", "unchanged\n");
    s.write(
        "old/edit.txt",
        "line one\nline two\nline three\n".repeat(50),
    );
    s.write("old/moved/src.bin", noise(10, 30_000));
    s.write("old/copied.bin", noise(11, 20_000));
    s.write("old/gone.txt", "bye\n");
    s.write("old/gone-dir/a/b.txt", "deep\n");
    s.write("old/mode.sh", "#!/bin/sh\necho hi\n".repeat(10));
    s.write("old/becomes-dir", "I am a file\n");
    s.write("old/was-dir/inner.txt", "inside\n");
    s.write("old/empty-file", "");
    s.mkdir("old/empty-dir");
    s.symlink("old/link", "keep.txt");
    s.symlink("old/link-changes", "keep.txt");
    s.write("old/link-becomes-file", "x");
    // New tree.
    s.write("new/keep.txt", "unchanged\n");
    s.write("new/edit.txt", "line one\nline 2\nline three\n".repeat(50));
    s.write("new/elsewhere/renamed.bin", noise(10, 30_000));
    s.write("new/copied.bin", noise(11, 20_000));
    s.write("new/copy-of-copied.bin", noise(11, 20_000));
    s.write("new/mode.sh", "#!/bin/sh\necho hi\n".repeat(10));
    s.chmod("new/mode.sh", 0o755);
    s.write("new/becomes-dir/now-inside.txt", "was a file\n");
    s.write("new/was-dir", "now a file\n");
    s.write("new/empty-file", "");
    s.write("new/new-empty-file", "");
    s.mkdir("new/empty-dir");
    s.mkdir("new/new-empty-dir/nested");
    s.symlink("new/link", "keep.txt");
    s.symlink("new/link-changes", "edit.txt");
    s.symlink("new/link-becomes-file", "keep.txt");
    s.symlink("new/elsewhere/up", "../keep.txt");
    let (pkg, _) = round_trip(&s.path("old"), &s.path("new"), &s.path("out"));
    let ops = ops(&pkg);
    let op = |p: &str| ops.iter().find(|(q, _)| q == p).map(|(_, o)| *o);
    assert_eq!(op("keep.txt"), None, "unchanged files cost nothing");
    assert_eq!(op("link"), None);
    assert_eq!(
        op("elsewhere/renamed.bin"),
        Some("copy"),
        "renames are found by hash"
    );
    assert_eq!(op("copy-of-copied.bin"), Some("copy"));
    assert_eq!(
        op("mode.sh"),
        Some("copy"),
        "a mode change copies the same bytes"
    );
    assert_eq!(op("new-empty-dir/nested"), Some("dir"));
    assert_eq!(op("link-changes"), Some("symlink"));
}

#[test]
fn unchanged_tree_gives_an_empty_package() {
    let s = Scratch::new();
    for (i, name) in ["a", "b/c", "b/d/e"].iter().enumerate() {
        s.write(&format!("old/{name}"), noise(i as u64, 1000 * (i + 1)));
        s.write(&format!("new/{name}"), noise(i as u64, 1000 * (i + 1)));
    }
    let (pkg, report) = round_trip(&s.path("old"), &s.path("new"), &s.path("out"));
    assert!(ops(&pkg).is_empty());
    assert_eq!(report.files, 0);
    assert!(pkg.len() < 250, "{} bytes", pkg.len());
}

#[test]
fn thousands_of_unchanged_files_cost_nothing() {
    let s = Scratch::new();
    for i in 0..2000 {
        let body = format!("file {i}\n").repeat(20);
        s.write(&format!("old/d{}/f{i}.txt", i % 40), &body);
        let body = if i == 777 {
            format!("file {i} changed\n").repeat(20)
        } else {
            body
        };
        s.write(&format!("new/d{}/f{i}.txt", i % 40), &body);
    }
    let (pkg, _) = round_trip(&s.path("old"), &s.path("new"), &s.path("out"));
    assert_eq!(ops(&pkg).len(), 1);
    assert!(
        pkg.len() < 300,
        "package of {} bytes for one changed file among 2000",
        pkg.len()
    );
}

#[test]
fn real_executables() {
    let s = Scratch::new();
    // The shipped sample app, two versions of a real x86-64 program.
    let (pkg, _) = round_trip(&example(1), &example(2), &s.path("example"));
    assert!(pkg.len() < 4000, "example package of {} bytes", pkg.len());
    // This test binary against a version of itself with code shifted.
    let exe = fs_err::read(std::env::current_exe().unwrap()).unwrap();
    let mut shifted = exe.clone();
    shifted.splice(exe.len() / 3..exe.len() / 3, noise(7, 4096));
    shifted.truncate(exe.len() - 10_000);
    let old = s.write("exe.old", &exe);
    let new = s.write("exe.new", &shifted);
    let (pkg, _) = round_trip(&old, &new, &s.path("exe.out"));
    assert!(
        pkg.len() < exe.len() / 20,
        "{} bytes for a {}-byte executable",
        pkg.len(),
        exe.len()
    );
}

#[test]
fn full_packages_need_no_base() {
    let s = Scratch::new();
    let pkg = diff_with(Differ::new(), None, &example(2));
    let (_, h, _) = decode_prefix(&pkg, &Limits::default()).unwrap();
    assert!(h.is_full());
    assert!(
        h.entries
            .iter()
            .all(|e| !matches!(&e.node, Node::File(f) if f.op != Op::Literal))
    );
    apply(None, &pkg, &s.path("out")).unwrap();
    assert_eq!(snapshot(&s.path("out")), snapshot(&example(2)));
    // verify rebuilds a full package completely.
    let r = deltapack_apply::Applier::new()
        .verify(&pkg[..], None, &|_| {})
        .unwrap();
    assert!(r.full);
}

#[test]
fn every_level_round_trips() {
    let s = Scratch::new();
    for level in [1, 3, 5, 6, 9] {
        let pkg = diff_with(Differ::new().level(level), Some(&example(1)), &example(2));
        let out = s.path(&format!("out{level}"));
        apply(Some(&example(1)), &pkg, &out).unwrap();
        assert_eq!(snapshot(&out), snapshot(&example(2)), "level {level}");
    }
}

#[test]
fn output_is_deterministic_whatever_the_thread_count() {
    let one = diff_with(Differ::new().threads(1), Some(&example(1)), &example(2));
    let two = diff_with(Differ::new().threads(2), Some(&example(1)), &example(2));
    let again = diff_with(Differ::new().threads(3), Some(&example(1)), &example(2));
    assert_eq!(one, two);
    assert_eq!(one, again);
}

/// A reader that hands out one byte at a time.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn applies_from_a_trickling_stream() {
    let s = Scratch::new();
    let pkg = diff(&example(1), &example(2));
    deltapack_apply::Applier::new()
        .sync(true)
        .apply(Some(&example(1)), Trickle(&pkg), &s.path("out"), &|_| {})
        .unwrap();
    assert_eq!(snapshot(&s.path("out")), snapshot(&example(2)));
}

#[test]
fn verify_with_and_without_base() {
    let pkg = diff(&example(1), &example(2));
    let a = deltapack_apply::Applier::new();
    let r = a.verify(&pkg[..], None, &|_| {}).unwrap();
    assert!(!r.full && !r.base_verified);
    let r = a.verify(&pkg[..], Some(&example(1)), &|_| {}).unwrap();
    assert!(r.full && r.base_verified);
    assert_eq!(r.target.unwrap(), r.header.target);
}

#[test]
fn large_file_spans_many_blocks_and_segments() {
    let s = Scratch::new();
    // 6 MiB, with 4 KiB blocks: many block hashes and many payload segments.
    let base = noise(20, 6 << 20);
    let mut new = base.clone();
    for i in (0..new.len()).step_by(100_003) {
        new[i] ^= 0xff;
    }
    new.splice(3 << 20..3 << 20, noise(21, 70_000));
    let old = s.write("old", &base);
    let newp = s.write("new", &new);
    let pkg = diff_with(Differ::new().block_log(12).level(6), Some(&old), &newp);
    let (_, h, _) = decode_prefix(&pkg, &Limits::default()).unwrap();
    let Node::File(f) = &h.entries[0].node else {
        panic!()
    };
    assert_eq!(f.blocks.len(), new.len().div_ceil(4096));
    apply(Some(&old), &pkg, &s.path("out")).unwrap();
    assert_eq!(fs_err::read(s.path("out")).unwrap(), new);
}
