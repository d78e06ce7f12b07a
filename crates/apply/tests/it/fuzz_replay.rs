//! Fuzz inputs as ordinary tests: the committed seed corpus and every crash
//! reproducer under `fuzz/regressions/<target>/` run through the same entry
//! points as the fuzz targets, on every `cargo test`.

use std::path::{Path, PathBuf};

use deltapack_diff::Differ;

use crate::harness::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs_err::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn replay_corpus_and_regressions() {
    let mut n = 0;
    for sub in ["corpus", "regressions"] {
        for f in files(&fuzz_dir().join(sub).join("package_decoder")) {
            deltapack_format::fuzzing::decode_package(&fs_err::read(&f).unwrap());
            n += 1;
        }
        for f in files(&fuzz_dir().join(sub).join("apply_package")) {
            deltapack_apply::fuzzing::verify_against_fixed_base(&fs_err::read(&f).unwrap());
            n += 1;
        }
    }
    assert!(n >= 4, "the seed corpus is missing ({n} files)");
}

/// The seeds are real packages made against the fuzz target's fixed base.
/// Regenerate with `cargo test -p deltapack-apply --test it -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let s = Scratch::new();
    let base = s.mkdir("base");
    deltapack_apply::fuzzing::write_fixed_base(&base).unwrap();
    let files = deltapack_apply::fuzzing::fixed_base_files();
    // A new version: edits in every file, one new, one removed, one moved.
    for (p, data) in &files {
        let mut d = data.clone();
        if !d.is_empty() {
            let mid = d.len() / 2;
            d[mid] ^= 0x55;
            d.extend_from_slice(b"appended");
        }
        if *p != "d/empty" {
            s.write(&format!("new/{p}"), &d);
        }
    }
    s.write("new/moved/c.bin", &files[1].1);
    s.write("new/new.txt", "brand new file\n".repeat(20));
    let pkgs = [
        (
            "delta-level9",
            diff_with(Differ::new(), Some(&base), &s.path("new")),
        ),
        (
            "delta-level2",
            diff_with(Differ::new().level(2), Some(&base), &s.path("new")),
        ),
        ("full", diff_with(Differ::new(), None, &s.path("new"))),
    ];
    for target in ["package_decoder", "apply_package"] {
        let dir = fuzz_dir().join("corpus").join(target);
        fs_err::create_dir_all(&dir).unwrap();
        for (name, p) in &pkgs {
            fs_err::write(dir.join(format!("seed-{name}.dpk")), p).unwrap();
        }
    }
    // Single-file seeds for the decoder.
    let one = s.write("one.bin", &files[0].1);
    let mut two_data = files[0].1.clone();
    two_data.splice(100..100, *b"xyz");
    let two = s.write("two.bin", &two_data);
    let p = diff_with(Differ::new(), Some(&one), &two);
    fs_err::write(fuzz_dir().join("corpus/package_decoder/seed-file.dpk"), p).unwrap();
}
