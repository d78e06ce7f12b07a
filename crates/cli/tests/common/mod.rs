//! Helpers shared by the CLI test files: the real binary, the sample app,
//! keys, releases, a served repository, tree digests.
#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The `deltapack` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deltapack"))
}

/// Version `v` of the shipped sample app.
pub fn example(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/example/v{v}"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must exit 1; returns stdout and stderr.
pub fn fails(cmd: &mut Command) -> (String, String) {
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `deltapack keygen -o <dir>/k`; returns the path without extension.
pub fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("k");
    ok(bin().arg("keygen").arg("-o").arg(&key));
    key
}

/// `--init` for the first release into `repo` (a directory with no
/// manifest yet), nothing afterwards.
pub fn init_flag(repo: impl AsRef<Path>) -> &'static [&'static str] {
    if repo.as_ref().join("manifest.json").exists() {
        &[]
    } else {
        &["--init"]
    }
}

/// `deltapack release` of one platform's tree.
pub fn release(repo: &Path, key: &Path, version: &str, channel: &str, platform: &str, tree: &Path) {
    ok(bin()
        .args(["release", "--level", "3", "--repo"])
        .arg(repo)
        .args(init_flag(repo))
        .args(["--version", version, "--channel", channel, "--key"])
        .arg(key.with_extension("key"))
        .arg(format!("--platform={platform}={}", tree.display())));
}

/// A `deltapack serve` process and its URL; killed on drop.
pub struct Served(pub Child, pub String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `repo` on a free loopback port (no request log).
pub fn serve(repo: &Path) -> Served {
    serve_with(
        repo,
        &["--addr", "127.0.0.1:0", "--quiet"],
        Stdio::inherit(),
    )
}

/// Serves `repo` with these `serve` arguments, its stderr as given.
pub fn serve_with(repo: &Path, args: &[&str], stderr: Stdio) -> Served {
    let mut child = bin()
        .arg("serve")
        .arg(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8];
    while stdout.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let url = String::from_utf8(line)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    Served(child, url)
}

/// Tree digest of a directory (following a `current` symlink), if it is
/// a readable tree.
pub fn digest(dir: &Path) -> Option<String> {
    let real = dir.canonicalize().ok()?;
    let id = deltapack_tree::Tree::scan(&real).ok()?.id();
    Some(deltapack_tree::hex(&id.digest))
}
