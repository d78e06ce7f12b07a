//! Format skew: packages written by earlier releases must keep applying.
//! `testdata/compat/` holds fixtures of every released format version.

use std::path::{Path, PathBuf};

use deltapack_diff::Differ;

use crate::harness::*;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

fn compat(name: &str) -> PathBuf {
    testdata("compat").join(name)
}

fn fixtures() -> Vec<(&'static str, Option<PathBuf>, PathBuf)> {
    vec![
        ("v1-example-delta.dpk", Some(example(1)), example(2)),
        ("v1-example-full.dpk", None, example(2)),
        (
            "v1-file-delta.dpk",
            Some(example(1).join("bin/sample-app")),
            example(2).join("bin/sample-app"),
        ),
        // Op 4 (bsdiff-x86), added within format 1.
        (
            "v1-x86-delta.dpk",
            Some(testdata("exe/callgraph-v1")),
            testdata("exe/callgraph-v2"),
        ),
        // Op 5 (bsdiff-exe), added within format 1.
        (
            "v1-exe-delta.dpk",
            Some(testdata("exe/dispatch-v1")),
            testdata("exe/dispatch-v2"),
        ),
    ]
}

#[test]
fn format_version_1_fixtures_apply() {
    let s = Scratch::new();
    for (name, base, target) in fixtures() {
        let pkg = fs_err::read(compat(name)).unwrap();
        let out = s.path(name);
        apply(base.as_deref(), &pkg, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(snapshot(&out), snapshot(&target), "{name}");
    }
}

/// Writes the fixtures that do not exist yet (a released one is never
/// rewritten): `cargo test -p deltapack-apply --test it -- --ignored
/// write_compat_fixtures`.
#[test]
#[ignore]
fn write_compat_fixtures() {
    for (name, base, target) in fixtures() {
        if compat(name).exists() {
            continue;
        }
        let pkg = Differ::new()
            .diff(base.as_deref(), &target, &|_| {})
            .unwrap()
            .to_bytes();
        fs_err::write(compat(name), pkg).unwrap();
    }
}
