//! Entry points for the fuzz targets in `fuzz/` (and for replaying their
//! findings as ordinary tests).

use std::path::Path;
use std::sync::OnceLock;

use crate::Applier;

/// Deterministic pseudo-random bytes.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The files of the fixed base tree: `(path, contents)`.
pub fn fixed_base_files() -> Vec<(&'static str, Vec<u8>)> {
    let text: Vec<u8> = (0..400)
        .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
        .collect();
    vec![
        ("a.bin", noise(1, 64 * 1024)),
        ("d/c.bin", noise(2, 5000)),
        ("d/empty", Vec::new()),
        ("text.txt", text),
    ]
}

/// Writes the fixed base tree under `root` (which must exist).
pub fn write_fixed_base(root: &Path) -> std::io::Result<()> {
    for (p, data) in fixed_base_files() {
        let p = root.join(p);
        if let Some(parent) = p.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(p, data)?;
    }
    Ok(())
}

static BASE: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();

/// Verifies arbitrary bytes as a package, with and without the fixed base.
/// Must never panic; an `Ok` with the base means every byte was checked.
pub fn verify_against_fixed_base(data: &[u8]) {
    let base = BASE.get_or_init(|| {
        let d = tempfile::tempdir().ok()?;
        write_fixed_base(d.path()).ok()?;
        Some(d)
    });
    let applier = Applier::new();
    if let Some(b) = base {
        let _ = applier.verify(data, Some(b.path()), &|_| {});
    }
    let _ = applier.verify(data, None, &|_| {});
}
