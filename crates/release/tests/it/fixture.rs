//! Versions of a small real app, packed three ways, and helpers to look at
//! repositories.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use deltapack_manifest::{Manifest, PublicKey, SecretKey, Verifier, Version};
use deltapack_release::{NewRelease, Packager};

/// The platforms every test release has, and how each is handed over.
pub const PLATFORMS: [&str; 3] = ["linux-x86_64", "macos-aarch64", "windows-x86_64"];

/// A fixed clock, so manifests are reproducible.
pub const NOW: u64 = 1_800_000_000;

pub fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

pub fn example(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/example/v{v}"))
}

pub fn version(i: usize) -> Version {
    Version::new(1, i as u64, 0)
}

fn copy_tree(src: &Path, dst: &Path) {
    fs_err::create_dir_all(dst).unwrap();
    for e in fs_err::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            fs_err::copy(e.path(), &to).unwrap();
        }
    }
}

/// The tree of version `i` for `platform`: the sample app with code
/// inserted in the middle of the executable (every later offset moves),
/// a version file, a file added at version 3 and a locale dropped at 4.
pub fn make_tree(dst: &Path, i: usize, platform: &str) {
    copy_tree(&example(if i < 2 { 1 } else { 2 }), dst);
    let bin = dst.join("bin/sample-app");
    let mut code = fs_err::read(&bin).unwrap();
    let at = code.len() / 3;
    let inserted: Vec<u8> = (0..i * 4096).map(|k| (k * 7 + i) as u8).collect();
    code.splice(at..at, inserted);
    code[100] = i as u8;
    fs_err::write(&bin, &code).unwrap();
    fs_err::write(
        dst.join("share/VERSION"),
        format!("{} for {platform}\n", version(i)),
    )
    .unwrap();
    if i >= 3 {
        fs_err::write(dst.join("share/new-feature.txt"), "new in 1.3\n".repeat(50)).unwrap();
    }
    if i >= 4 {
        fs_err::remove_dir_all(dst.join("share/locale/fr")).unwrap();
    }
}

/// Writes `dir` as a .tar.gz.
pub fn tar_gz(dir: &Path, out: &Path) {
    let f = fs_err::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

/// Writes `dir` as a .zip with Unix modes.
pub fn zip(dir: &Path, out: &Path) {
    fn walk(root: &Path, rel: &str, w: &mut zip::ZipWriter<fs_err::File>) {
        let mut entries: Vec<_> = fs_err::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(root, &path, w);
            } else {
                #[cfg(unix)]
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    e.metadata().unwrap().permissions().mode()
                };
                #[cfg(not(unix))]
                let mode = 0o644;
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(mode);
                w.start_file(path.as_str(), opts).unwrap();
                w.write_all(&fs_err::read(e.path()).unwrap()).unwrap();
            }
        }
    }
    let mut w = zip::ZipWriter::new(fs_err::File::create(out).unwrap());
    walk(dir, "", &mut w);
    w.finish().unwrap();
}

/// Build outputs of version `i` under `work`: Linux as a directory, macOS
/// as a .tar.gz, Windows as a .zip. Returns them with the plain trees.
pub fn inputs(work: &Path, i: usize) -> (Vec<(String, PathBuf)>, BTreeMap<String, PathBuf>) {
    // Tests run in parallel over one shared work directory: make each tree
    // and archive once, under a lock, so no test reads one half-written.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut given = Vec::new();
    let mut trees = BTreeMap::new();
    for p in PLATFORMS {
        let tree = work.join(format!("trees/{i}/{p}"));
        if !tree.exists() {
            make_tree(&tree, i, p);
        }
        let input = match p {
            "linux-x86_64" => tree.clone(),
            "macos-aarch64" => {
                let a = work.join(format!("trees/{i}/{p}.tar.gz"));
                if !a.exists() {
                    tar_gz(&tree, &a);
                }
                a
            }
            _ => {
                let a = work.join(format!("trees/{i}/{p}.zip"));
                if !a.exists() {
                    zip(&tree, &a);
                }
                a
            }
        };
        given.push((p.to_string(), input));
        trees.insert(p.to_string(), tree);
    }
    (given, trees)
}

/// Reproducible, as `SOURCE_DATE_EPOCH` makes a run: fixed times, and no
/// file time after a fixed epoch (the inputs are written at each run).
///
/// The tests start repositories where they need one (a directory with no
/// manifest yet gets `init`); the rule itself is tested in `lifecycle`.
pub fn packager(repo: &Path) -> Packager {
    Packager::new(repo)
        .init(!repo.join("manifest.json").exists())
        .keys(vec![key(1)])
        .now(NOW)
        .clamp_mtime(Some(EPOCH))
}

/// The `SOURCE_DATE_EPOCH` of the tests' runs (before any input was written).
pub const EPOCH: u64 = 1_700_000_000;

pub fn new_release(i: usize, channel: &str, platforms: Vec<(String, PathBuf)>) -> NewRelease {
    NewRelease {
        version: version(i),
        channel: channel.into(),
        platforms,
        notes: format!("Release {}", version(i)),
        min_delta_version: None,
        carry: Vec::new(),
        rollout_percent: 100,
    }
}

/// Publishes versions `0..n` on `channel`.
pub fn publish(repo: &Path, work: &Path, n: usize, channel: &str) {
    for i in 0..n {
        let (given, _) = inputs(work, i);
        packager(repo)
            .release(&new_release(i, channel, given), None, &|_| {})
            .unwrap();
    }
}

/// The verified manifest of a repository.
pub fn manifest(repo: &Path) -> Manifest {
    let bytes = fs_err::read(repo.join("manifest.json")).unwrap();
    let keys: Vec<PublicKey> = vec![key(1).public()];
    Verifier::new(&keys)
        .now(NOW)
        .verify(&bytes)
        .unwrap()
        .into_manifest()
}

/// Every file of a directory tree with its bytes.
pub fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs_err::read_dir(root.join(rel)) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path, fs_err::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

/// Copies a repository.
pub fn copy_repo(src: &Path, dst: &Path) {
    copy_tree(src, dst);
}

/// Tree digest of a directory on disk, as the manifest writes it.
pub fn digest(dir: &Path) -> String {
    let id = deltapack_tree::Tree::scan(dir).unwrap().id();
    deltapack_tree::hex(&id.digest)
}
