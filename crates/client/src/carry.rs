//! App data across versions. A release may declare paths of app data
//! inside the install (`Release::carry`: `instance`, `logs`); before the
//! switch, their files are copied from the installed version into the new
//! one. Files in a version that are neither its release's nor carried (a
//! database written next to the code, logs, caches) are never deleted
//! without being listed: the update that leaves them records them, and
//! `status`, `doctor` and the pruning that removes their version name them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deltapack_fs::{Kind, Root};
use serde::{Deserialize, Serialize};

use crate::Error;

/// How many paths a list of unknown files names.
const NAMED: usize = 20;

/// Files of a version's directory that its release did not ship.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// How many.
    pub count: u64,
    /// The first of them (at most 20), `/`-separated, sorted.
    pub paths: Vec<String>,
}

impl Unknown {
    fn of(mut all: Vec<String>) -> Option<Unknown> {
        if all.is_empty() {
            return None;
        }
        all.sort();
        let count = all.len() as u64;
        all.truncate(NAMED);
        Some(Unknown { count, paths: all })
    }
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} files not from the release: ", self.count)?;
        f.write_str(&self.paths.join(", "))?;
        if self.count > self.paths.len() as u64 {
            write!(f, ", …")?;
        }
        Ok(())
    }
}

/// Every entry under `rel` in `root` that is not a directory (links not
/// followed), as (`/`-separated path, relative path, kind).
fn entries(root: &Root, rel: &Path, out: &mut Vec<(String, PathBuf, Kind)>) -> Result<(), Error> {
    for (name, kind) in root.list(rel)? {
        let p = rel.join(&name);
        if kind == Kind::Dir {
            entries(root, &p, out)?;
        } else {
            out.push((slashed(&p), p, kind));
        }
    }
    Ok(())
}

fn slashed(p: &Path) -> String {
    p.iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Files under `dir` that are not among `release` (the release's paths)
/// nor `carried`; `None` when there are none, or when `dir` is not a
/// directory.
pub(crate) fn unknown(
    dir: &Path,
    release: &BTreeSet<String>,
    carried: &BTreeSet<String>,
) -> Result<Option<Unknown>, Error> {
    if !fs_err::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let mut all = Vec::new();
    entries(&Root::new(dir.to_owned()), Path::new(""), &mut all)?;
    Ok(Unknown::of(
        all.into_iter()
            .map(|(s, _, _)| s)
            .filter(|s| !release.contains(s) && !carried.contains(s))
            .collect(),
    ))
}

/// Copies the files under each of `carry` from the version at `from` into
/// the new version at `to`, except the new release's own files (`keep`:
/// a release file always comes from the release). Links and special
/// files are not carried. Returns the paths copied. Each copy is atomic
/// and durable; run again after a kill, it copies again.
pub(crate) fn carry(
    from: &Path,
    to: &Path,
    carry: &[String],
    keep: &BTreeSet<String>,
) -> Result<BTreeSet<String>, Error> {
    let (src, dst) = (Root::new(from.to_owned()), Root::new(to.to_owned()));
    let mut copied = BTreeSet::new();
    for c in carry {
        let rel = PathBuf::from_iter(c.split('/'));
        let found = match src.kind(&rel) {
            Ok(k) => k,
            // A parent that is a link or a file: nothing to carry there.
            Err(deltapack_fs::Error::Link { .. } | deltapack_fs::Error::NotADirectory { .. }) => {
                None
            }
            Err(e) => return Err(e.into()),
        };
        let mut files = Vec::new();
        match found {
            Some(Kind::Dir) => entries(&src, &rel, &mut files)?,
            Some(k) => files.push((c.clone(), rel, k)),
            None => {}
        }
        for (s, rel, kind) in files {
            if kind != Kind::File || keep.contains(&s) {
                continue;
            }
            dst.copy_in(&src.join(&rel), &rel)?;
            copied.insert(s);
        }
    }
    Ok(copied)
}
