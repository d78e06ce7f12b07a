//! Diff and apply throughput on inputs that need no download: the shipped
//! sample app, and a synthetic 8 MiB executable-like pair (code moved,
//! pointers changed). Criterion reports bytes of new data per second. A
//! failing step panics: an error path is never what is timed.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use deltapack_apply::Applier;
use deltapack_diff::Differ;

fn example(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../testdata/example/v{v}"))
}

/// An old/new pair shaped like two builds of one program: the new one has
/// a block inserted and little-endian "pointers" every 64 bytes shifted.
fn synthetic(dir: &Path, len: usize) -> (PathBuf, PathBuf) {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let old: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 32) as u8
        })
        .collect();
    let mut new = old.clone();
    for i in (0..len - 8).step_by(64) {
        let v = u32::from_le_bytes(new[i..i + 4].try_into().unwrap_or([0; 4])).wrapping_add(0x1000);
        new[i..i + 4].copy_from_slice(&v.to_le_bytes());
    }
    new.splice(len / 2..len / 2, old[..4096].iter().copied());
    let (o, n) = (dir.join("old.bin"), dir.join("new.bin"));
    fs_err::write(&o, old).expect("writing the synthetic old file");
    fs_err::write(&n, new).expect("writing the synthetic new file");
    (o, n)
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (so, sn) = synthetic(tmp.path(), 8 << 20);
    let pairs = [
        ("sample-app", example(1), example(2)),
        ("synthetic-8MiB", so, sn),
    ];
    let mut g = c.benchmark_group("diff");
    g.sample_size(10);
    for (name, old, new) in &pairs {
        let bytes = deltapack_tree::Tree::scan(new)
            .expect("scanning the new version")
            .id()
            .bytes;
        g.throughput(Throughput::Bytes(bytes));
        for level in [2u8, 9] {
            g.bench_with_input(
                BenchmarkId::new(*name, format!("level{level}")),
                &level,
                |b, &level| {
                    b.iter(|| {
                        black_box(
                            Differ::new()
                                .level(level)
                                .diff(Some(old), new, &|_| {})
                                .expect("diff")
                                .len(),
                        )
                    })
                },
            );
        }
    }
    g.finish();
    let mut g = c.benchmark_group("apply");
    g.sample_size(20);
    for (name, old, new) in &pairs {
        let pkg = Differ::new()
            .diff(Some(old), new, &|_| {})
            .expect("diff")
            .to_bytes();
        g.throughput(Throughput::Bytes(
            deltapack_tree::Tree::scan(new)
                .expect("scanning the new version")
                .id()
                .bytes,
        ));
        g.bench_function(*name, |b| {
            // Verify rebuilds every byte without writing files, so the
            // numbers are not those of the disk.
            b.iter(|| {
                black_box(
                    Applier::new()
                        .verify(&pkg[..], Some(old), &|_| {})
                        .expect("verify")
                        .bytes,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
