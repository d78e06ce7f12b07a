//! Shared test harness: a temp dir per test, tree builders, a snapshot of a
//! tree on disk (kinds, modes, content hashes, link targets), and diff/apply
//! helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltapack_apply::{Applier, Error, Report};
use deltapack_diff::Differ;

/// A temp dir that lives as long as the test.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.dir.path().to_owned()
        } else {
            self.dir.path().join(rel)
        }
    }

    /// Writes a file, creating parents.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(&p, data).unwrap();
        p
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        fs_err::create_dir_all(&p).unwrap();
        p
    }

    #[cfg(unix)]
    pub fn symlink(&self, rel: &str, target: &str) {
        let p = self.path(rel);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    #[cfg(unix)]
    pub fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// What a node of a tree looks like, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snap {
    Dir { mode: u32 },
    File { mode: u32, hash: String, size: u64 },
    Symlink { target: String },
}

#[cfg(unix)]
fn mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o755
}

#[cfg(not(unix))]
fn mode(_m: &std::fs::Metadata) -> u32 {
    0
}

/// Every node under `root` (or the file `root` itself, under "").
pub fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, Snap>) {
        let p = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(rel)
        };
        let m = fs_err::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            let t = fs_err::read_link(&p).unwrap();
            out.insert(
                rel.to_owned(),
                Snap::Symlink {
                    target: t.to_string_lossy().into_owned(),
                },
            );
        } else if m.is_dir() {
            if !rel.is_empty() {
                out.insert(rel.to_owned(), Snap::Dir { mode: mode(&m) });
            }
            let mut names: Vec<String> = fs_err::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let child = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                walk(root, &child, out);
            }
        } else {
            let data = fs_err::read(&p).unwrap();
            out.insert(
                rel.to_owned(),
                Snap::File {
                    mode: mode(&m),
                    hash: blake3::hash(&data).to_hex().to_string(),
                    size: data.len() as u64,
                },
            );
        }
    }
    if fs_err::symlink_metadata(root).is_ok() {
        walk(root, "", &mut out);
    }
    out
}

/// Entries of a directory whose names start with `prefix` (staging debris).
pub fn debris(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!(".{name}.dpk-");
    fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Diffs with the default (smallest) settings.
pub fn diff(old: &Path, new: &Path) -> Vec<u8> {
    diff_with(Differ::new(), Some(old), new)
}

pub fn diff_with(d: Differ, old: Option<&Path>, new: &Path) -> Vec<u8> {
    d.diff(old, new, &|_| {}).unwrap().to_bytes()
}

pub fn apply(old: Option<&Path>, package: &[u8], out: &Path) -> Result<Report, Error> {
    Applier::new().sync(false).apply(old, package, out, &|_| {})
}

/// Applies `package` expecting failure; checks nothing was created at
/// `out`, no staging is left beside it, and `base` is untouched.
pub fn apply_fails(base: Option<&Path>, package: &[u8], out: &Path) -> Error {
    let before = base.map(snapshot);
    let err = match apply(base, package, out) {
        Ok(_) => panic!("apply succeeded but should have failed"),
        Err(e) => e,
    };
    assert!(
        fs_err::symlink_metadata(out).is_err(),
        "output {} was created",
        out.display()
    );
    let parent = out.parent().unwrap();
    let name = out.file_name().unwrap().to_string_lossy();
    assert_eq!(
        debris(parent, &name),
        Vec::<String>::new(),
        "staging left behind"
    );
    if let (Some(b), Some(before)) = (base, before) {
        assert_eq!(snapshot(b), before, "base changed");
    }
    err
}

/// Diff, apply, compare trees.
pub fn round_trip(old: &Path, new: &Path, out: &Path) -> (Vec<u8>, Report) {
    let pkg = diff(old, new);
    let report = apply(Some(old), &pkg, out).unwrap();
    assert_eq!(snapshot(out), snapshot(new), "rebuilt tree differs");
    (pkg, report)
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// The example trees shipped in testdata.
pub fn example(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/example/v{version}"))
}
