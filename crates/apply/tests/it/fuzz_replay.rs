//! Fuzz inputs as ordinary tests: the committed seed corpus and every crash
//! reproducer under `fuzz/regressions/<target>/` run through the same entry
//! points as the fuzz targets, on every `cargo test`.

use std::path::{Path, PathBuf};

use deltapack_diff::Differ;

use crate::harness::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The inputs of one target under `fuzz/<sub>/<target>/`, placeholders
/// (`.keep`) left out. The directory must exist, and a target's committed
/// corpus must not be empty: a replay of nothing would pass.
fn inputs(sub: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(sub).join(target);
    let rd = fs_err::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}: the committed fuzz inputs are missing"));
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    if sub == "corpus" {
        assert!(!v.is_empty(), "{}: the seed corpus is empty", dir.display());
    }
    v
}

/// Whether a corpus file is one of the valid seeds the `write_*` tests
/// made (the rest were found by the fuzzer and may be anything).
fn is_valid_seed(p: &Path) -> bool {
    p.file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("seed-")
}

#[test]
fn replay_corpus_and_regressions() {
    for sub in ["corpus", "regressions"] {
        let mut valid = 0;
        for f in inputs(sub, "package_decoder") {
            let ok = deltapack_format::fuzzing::decode_package(&fs_err::read(&f).unwrap());
            if is_valid_seed(&f) {
                assert!(ok, "{}: a valid seed does not decode", f.display());
                valid += 1;
            }
        }
        for f in inputs(sub, "apply_package") {
            let r = deltapack_apply::fuzzing::verify_against_fixed_base(&fs_err::read(&f).unwrap());
            if is_valid_seed(&f) {
                assert_eq!(r, Ok(()), "{}: a valid seed does not verify", f.display());
                valid += 1;
            }
        }
        for f in inputs(sub, "codec_decoder") {
            let r = deltapack_apply::fuzzing::decode_codec(&fs_err::read(&f).unwrap());
            if is_valid_seed(&f) {
                assert_eq!(r, Ok(()), "{}: a valid seed does not decode", f.display());
                valid += 1;
            }
        }
        for f in inputs(sub, "codec_round_trip") {
            let ran = deltapack_apply::fuzzing::codec_round_trip(
                &fs_err::read(&f).unwrap(),
                deltapack_diff::fuzzing::encode,
            );
            if is_valid_seed(&f) {
                assert!(ran, "{}: a seed did not run", f.display());
                valid += 1;
            }
        }
        if sub == "corpus" {
            // 4 + 3 package seeds, 30-odd codec seeds, 10 round-trip seeds.
            assert!(valid >= 40, "only {valid} valid seeds replayed");
        }
    }
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

/// A new version of `old`: a changed byte, an inserted line, a removed
/// range and appended noise.
fn edited(old: &[u8], seed: u64) -> Vec<u8> {
    let mut v = old.to_vec();
    let n = v.len();
    if n > 0 {
        v[n / 3] ^= 0x55;
    }
    v.splice(n / 2..n / 2, *b"an inserted line\n");
    v.drain(n / 5..(n / 5 + 40).min(n));
    v.extend_from_slice(&noise(seed, 300));
    v
}

/// Seeds of the `codec_decoder` and `codec_round_trip` targets: packages
/// the real encoder made against the decoder target's fixed old file with
/// each codec, re-laid as decoder inputs; and old/new pairs.
/// Regenerate with
/// `cargo test -p deltapack-apply --test it -- --ignored write_codec_seeds`.
/// The encoder variants the codec seeds are made with (see
/// `deltapack_diff::fuzzing::encode`): codec in bits 0-1 (auto, literal,
/// bsdiff, patch-from), bit 2 LZMA2 streams, bit 3 4 KiB hash blocks,
/// bit 4 with bsdiff: bsdiff-exe, as x86-64 code or (bit 5) arm64.
const SEED_VARIANTS: [u8; 9] = [
    0,
    1,
    2,
    3,
    4 | 2,
    4 | 3 | 8,
    16 | 2,
    16 | 4 | 2,
    32 | 16 | 2,
];

#[test]
#[ignore]
fn write_codec_seeds() {
    use deltapack_apply::fuzzing::{codec_input_from_package, codec_old_file};
    let s = Scratch::new();
    let old = codec_old_file();
    let old_file = s.write("old", &old);
    let old_dir = s.mkdir("old_dir");
    s.write("old_dir/a", &old);
    let mut news: Vec<(&str, PathBuf)> = vec![
        ("edited", s.write("edited", edited(&old, 1))),
        (
            "other",
            s.write("other", "something else entirely\n".repeat(40)),
        ),
        ("empty", s.write("empty", b"")),
        ("prefix", s.write("prefix", &old[..old.len() / 2])),
    ];
    // A tree: one file per op (bsdiff or patch-from, literal, and a
    // second delta against the same source).
    s.write("new_dir/a", edited(&old, 2));
    s.write("new_dir/b", "a new file\n".repeat(30));
    s.write("new_dir/c", edited(&old[2000..], 3));
    news.push(("tree", s.path("new_dir")));

    let dir = fuzz_dir().join("corpus/codec_decoder");
    fs_err::create_dir_all(&dir).unwrap();
    // (The `-x86-` seeds are bsdiff-x86 files, from before the encoder
    // wrote bsdiff-exe instead.)
    for (name, new) in &news {
        let base = if *name == "tree" { &old_dir } else { &old_file };
        for variant in SEED_VARIANTS {
            if *name == "empty" && variant > 3 {
                continue;
            }
            let package = deltapack_diff::fuzzing::encode(base, new, variant).unwrap();
            // Two seeds for the structural check of a verify without base.
            let structural = matches!((*name, variant), ("edited", 2) | ("tree", 6));
            let input = codec_input_from_package(&package, structural).unwrap();
            fs_err::write(dir.join(format!("seed-{name}-v{variant}")), input).unwrap();
        }
    }
    for f in inputs("corpus", "codec_decoder") {
        let r = deltapack_apply::fuzzing::decode_codec(&fs_err::read(&f).unwrap());
        assert_eq!(r, Ok(()), "{}", f.display());
    }

    // Round trips: [variant][flags][split u16 le][bytes].
    let dir = fuzz_dir().join("corpus/codec_round_trip");
    fs_err::create_dir_all(&dir).unwrap();
    let text: Vec<u8> = old[..3000].to_vec();
    let script: Vec<u8> = [
        [0u8, 10, 0, 7],
        [1, 200, 1, 12],
        [2, 0, 4, 9],
        [3, 100, 2, 20],
        [1, 80, 11, 3],
    ]
    .concat();
    let split = (text.len() as u16).to_le_bytes();
    for variant in SEED_VARIANTS {
        let edits = [&[variant, 1, split[0], split[1]][..], &text, &script].concat();
        fs_err::write(dir.join(format!("seed-edits-v{variant}")), edits).unwrap();
    }
    let halves = [&[2u8, 0, split[0], split[1]][..], &text, &edited(&text, 4)].concat();
    fs_err::write(dir.join("seed-halves-v2"), halves).unwrap();
    for f in inputs("corpus", "codec_round_trip") {
        assert!(deltapack_apply::fuzzing::codec_round_trip(
            &fs_err::read(&f).unwrap(),
            deltapack_diff::fuzzing::encode,
        ));
    }
}
