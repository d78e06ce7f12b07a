//! A served repository of three versions and helpers.

use std::path::{Path, PathBuf};

use deltapack_client::{Updater, UpdaterBuilder};
use deltapack_manifest::{SecretKey, Version};
use deltapack_release::{NewRelease, Packager};

pub const PLATFORM: &str = "linux-x86_64";
pub const NOW: u64 = 1_800_000_000;

pub fn key() -> SecretKey {
    SecretKey::from_seed([3; 32])
}

pub fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn example(n: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/example/v{n}"))
}

fn copy_tree(src: &Path, dst: &Path) {
    fs_err::create_dir_all(dst).unwrap();
    for e in fs_err::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst.join(e.file_name()));
        } else {
            fs_err::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// Version `i` (0, 1, 2) of the sample app: v1, v2, and v2 with code
/// inserted in the executable and a new file.
pub fn tree(work: &Path, i: usize) -> PathBuf {
    let dst = work.join(format!("tree{i}"));
    if dst.exists() {
        return dst;
    }
    copy_tree(&example(if i == 0 { 1 } else { 2 }), &dst);
    if i == 2 {
        let bin = dst.join("bin/sample-app");
        let mut code = fs_err::read(&bin).unwrap();
        let at = code.len() / 2;
        code.splice(at..at, (0..8192u32).map(|k| (k * 13) as u8));
        fs_err::write(&bin, code).unwrap();
        fs_err::write(dst.join("share/NEW.txt"), "new in 1.2\n".repeat(40)).unwrap();
    }
    dst
}

pub struct Repo {
    pub dir: tempfile::TempDir,
    pub server: deltapack_serve::Running,
}

impl Repo {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn packager(&self) -> Packager {
        Packager::new(self.path()).keys(vec![key()]).now(NOW)
    }

    pub fn updater(&self, install: &Path) -> UpdaterBuilder {
        Updater::builder()
            .repository(self.server.url())
            .public_key(key().public())
            .platform(PLATFORM)
            .install_dir(install)
            .retries(2, std::time::Duration::from_millis(10))
            .now(NOW + 10)
    }
}

/// Versions 1.0.0, 1.1.0, 1.2.0 on stable, with deltas from the last `k`.
pub fn repo(k: usize) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let work = dir.path().join("work");
    for (i, ver) in ["1.0.0", "1.1.0", "1.2.0"].into_iter().enumerate() {
        Packager::new(&repo)
            .init(i == 0)
            .keys(vec![key()])
            .now(NOW)
            .deltas(k)
            .release(
                &NewRelease {
                    version: v(ver),
                    channel: "stable".into(),
                    platforms: vec![(PLATFORM.into(), tree(&work, i))],
                    notes: format!("notes {ver}"),
                    min_delta_version: None,
                    carry: Vec::new(),
                    rollout_percent: 100,
                },
                None,
                &|_| {},
            )
            .unwrap();
    }
    let server = deltapack_serve::Server::new(&repo)
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    Repo { dir, server }
}

/// Digest of the tree `current` points at.
pub fn current_digest(install: &Path) -> String {
    let id = deltapack_tree::Tree::scan(&install.join("current").canonicalize().unwrap())
        .unwrap()
        .id();
    deltapack_tree::hex(&id.digest)
}

/// The manifest's tree digest of a version.
pub fn manifest_digest(repo: &Repo, ver: &str) -> String {
    let bytes = fs_err::read(repo.path().join("manifest.json")).unwrap();
    let keys = [key().public()];
    let m = deltapack_manifest::Verifier::new(&keys)
        .ignore_expiry()
        .verify(&bytes)
        .unwrap()
        .into_manifest();
    m.release(&v(ver)).unwrap().platforms[PLATFORM]
        .tree
        .digest
        .clone()
}

/// Installs `ver` from its full bundle.
pub fn install(repo: &Repo, install: &Path, ver: &str) {
    let u = repo.updater(install).build().unwrap();
    let up = u.check_version(&v(ver)).unwrap();
    assert!(up.path.is_full());
    let d = u.download(&up, &|_| {}).unwrap();
    let s = u.apply(&d, &|_| {}).unwrap();
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(current_digest(install), manifest_digest(repo, ver));
}

/// A served 3-version repository (deltas from the last `k`) and an install
/// root under a temp dir with `ver` installed.
pub fn installed(k: usize, ver: &str) -> (Repo, tempfile::TempDir, PathBuf) {
    let r = repo(k);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, ver);
    (r, t, root)
}

/// Settings that point at `r` and install into `root`.
pub fn config_for(r: &Repo, root: &Path) -> deltapack_client::Config {
    let mut c = deltapack_client::Config::default();
    c.set("repository", &r.server.url()).unwrap();
    c.set("public_keys", &key().public().to_text()).unwrap();
    c.set("platform", PLATFORM).unwrap();
    c.set("install_dir", root.to_str().unwrap()).unwrap();
    c
}
