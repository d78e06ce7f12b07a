//! Whether a live process still runs from a version's files, so that
//! pruning never deletes what something executes (its code, its working
//! directory, a library it mapped). A long-running service started from the
//! previous version keeps running after an update; its version is pruned
//! at a later install, once nothing uses it.
//!
//! On Linux: any process whose `exe`, `cwd` or a mapped file
//! (`/proc/<pid>/maps`) is inside the directory. Elsewhere there is no such
//! view without privileges; the version is pruned as before (documented
//! in docs/CLIENT.md).

use std::path::Path;

/// The pids of processes that run from inside `dir` (a version's tree).
pub(crate) fn processes_in(dir: &Path) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        linux::processes_in(dir)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Vec::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};

    /// Bound on the maps read per process (a huge process is still read
    /// in full up to this many lines).
    const MAX_MAPS: usize = 1 << 16;

    pub(super) fn processes_in(dir: &Path) -> Vec<u32> {
        let Ok(dir) = fs_err::canonicalize(dir) else {
            return Vec::new();
        };
        let Ok(procs) = fs_err::read_dir("/proc") else {
            return Vec::new();
        };
        let me = std::process::id();
        let mut out = Vec::new();
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let base = PathBuf::from("/proc").join(pid.to_string());
            let inside = |l: PathBuf| l.starts_with(&dir);
            let linked = ["exe", "cwd"]
                .iter()
                .any(|l| fs_err::read_link(base.join(l)).is_ok_and(inside));
            if linked || maps_inside(&base.join("maps"), &dir) {
                out.push(pid);
            }
        }
        out
    }

    fn maps_inside(maps: &Path, dir: &Path) -> bool {
        let Ok(f) = fs_err::File::open(maps) else {
            return false;
        };
        BufReader::new(f)
            .lines()
            .take(MAX_MAPS)
            .map_while(Result::ok)
            .any(|line| {
                line.split_whitespace()
                    .nth(5)
                    .is_some_and(|p| Path::new(p).starts_with(dir))
            })
    }
}
