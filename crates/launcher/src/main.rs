//! `deltapack-launcher`: how an app in a versions install is started where
//! the `current` pointer cannot be a symlink (Windows).
//!
//! Copy it to `<root>/<app>.exe` (the path shortcuts and the Start menu
//! point at). It reads `<root>/current` — the version, as the updater
//! wrote it with one `MoveFileExW` — and runs `<root>/versions/<v>/<app>.exe`
//! with the same arguments, standard streams and working directory, and
//! exits with its exit code. The version text is checked before it becomes
//! part of a path: only a plain version name (`1.2.0-beta.1+build.5`),
//! never a separator or `..`. It links nothing but std and starts in a
//! millisecond, so it adds nothing a user notices.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The longest `current` file read.
const MAX_CURRENT: u64 = 64;

/// The version in `current`, if it is a plain version name.
fn version(text: &str) -> Option<&str> {
    let v = text.trim();
    let plain = !v.is_empty()
        && v.len() < 64
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b));
    (plain && !v.contains("..")).then_some(v)
}

/// The program to run: `<root>/versions/<v>/<name>`.
fn target(me: &Path) -> Result<PathBuf, String> {
    let root = me.parent().ok_or("the launcher has no directory")?;
    let name = me.file_name().ok_or("the launcher has no file name")?;
    let current = root.join("current");
    let mut text = String::new();
    let f = fs_err::File::open(&current).map_err(|e| e.to_string())?;
    std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_CURRENT), &mut text)
        .map_err(|e| e.to_string())?;
    let v =
        version(&text).ok_or_else(|| format!("{} does not hold a version", current.display()))?;
    Ok(root.join("versions").join(v).join(name))
}

fn main() -> ExitCode {
    let run = || -> Result<ExitCode, String> {
        let me = std::env::current_exe().map_err(|e| format!("locating the launcher: {e}"))?;
        let exe = target(&me)?;
        let status = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .status()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        Ok(match status.code() {
            Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
            None => ExitCode::FAILURE,
        })
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("deltapack-launcher: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_plain_versions_become_paths() {
        for ok in ["1.2.0", "1.2.0\r\n", " 2.0.0-beta.1+build.5 "] {
            assert!(version(ok).is_some(), "{ok:?}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "1.0/../..",
            "a\\b",
            "C:x",
            ".hidden",
            "1 2",
            "x".repeat(80).as_str(),
        ] {
            assert_eq!(version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_target_is_the_current_versions_program() {
        let t = tempfile::tempdir().unwrap();
        let t = t.path();
        let me = t.join("app.exe");
        fs_err::write(t.join("current"), "1.2.0\n").unwrap();
        assert_eq!(
            target(&me),
            Ok(t.join("versions").join("1.2.0").join("app.exe"))
        );
        fs_err::write(t.join("current"), "../../evil\n").unwrap();
        assert!(target(&me).is_err());
    }
}
