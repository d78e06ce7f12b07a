//! `repo verify`: checks that a repository is whole and every package does
//! what the manifest says. The signature must verify (or nothing else is
//! looked at); then every artifact is checked for presence, size and
//! BLAKE3; every package's header must name its platform and versions and
//! bind the manifest's tree digests; every full bundle is rebuilt in memory
//! and must give its tree; every delta is applied to its base (rebuilt from
//! the base's full bundle) and must give the target's digest. Problems are
//! collected, not stopped at, so one run lists them all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deltapack_apply::Applier;
use deltapack_manifest::{Artifact, Build, Manifest, PublicKey, Verifier, Version};
use rayon::prelude::*;

use crate::{Error, Event, layout};

/// What is wrong with one repository file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Defect {
    /// The manifest has expired: clients refuse it until it is re-signed.
    #[error("manifest expired at {expires} (now {now}); run `deltapack repo refresh`")]
    Expired {
        /// Expiry (Unix seconds).
        expires: u64,
        /// The time compared with.
        now: u64,
    },
    /// The file is absent.
    #[error("missing")]
    Missing,
    /// The file's size differs from the manifest's.
    #[error("size is {found}, manifest says {expected}")]
    Size {
        /// Per the manifest.
        expected: u64,
        /// On disk.
        found: u64,
    },
    /// The file's BLAKE3 differs from the manifest's.
    #[error("BLAKE3 is {found}, manifest says {expected}")]
    Hash {
        /// Per the manifest.
        expected: String,
        /// On disk.
        found: String,
    },
    /// The package header disagrees with the manifest entry.
    #[error("package header {field} is {found:?}, manifest says {expected:?}")]
    Header {
        /// Which field.
        field: &'static str,
        /// Per the manifest.
        expected: String,
        /// In the package.
        found: String,
    },
    /// The package does not decode or apply.
    #[error("package does not apply: {0}")]
    Package(deltapack_apply::Error),
    /// The delta's base could not be rebuilt (its full bundle is damaged).
    #[error("base {0} could not be rebuilt from its full bundle")]
    Base(String),
    /// A file under `pkg/` that the manifest does not list (harmless, but
    /// usually a leftover).
    #[error("not listed in the manifest")]
    Unlisted,
}

/// One problem found.
#[derive(Debug)]
pub struct Problem {
    /// Repository path of the file.
    pub path: String,
    /// What is wrong.
    pub defect: Defect,
}

/// The outcome of [`verify_repo`].
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Artifacts checked.
    pub artifacts: usize,
    /// Deltas applied to their bases.
    pub deltas_applied: usize,
    /// Bytes of packages read.
    pub bytes: u64,
    /// Everything wrong (empty when the repository is whole); unlisted
    /// files are included but do not make the repository invalid.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether every listed artifact is correct and the manifest is current.
    pub fn ok(&self) -> bool {
        self.problems
            .iter()
            .all(|p| matches!(p.defect, Defect::Unlisted))
    }
}

struct Check<'a> {
    platform: &'a str,
    to: &'a Version,
    from: Option<&'a Version>,
    artifact: &'a Artifact,
    build: &'a Build,
}

/// Verifies the repository at `root` against trusted public keys.
pub fn verify_repo(
    root: &Path,
    keys: &[PublicKey],
    now: Option<u64>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<VerifyReport, Error> {
    let path = root.join(layout::MANIFEST);
    let bytes = fs_err::read(&path)?;
    let verifier = Verifier::new(keys).ignore_expiry();
    let m = verifier
        .verify(&bytes)
        .map_err(|source| Error::Manifest {
            path: path.clone(),
            source,
        })?
        .into_manifest();
    let mut report = VerifyReport::default();
    let now = now.unwrap_or_else(deltapack_manifest::unix_now);
    if now >= m.expires {
        report.problems.push(Problem {
            path: layout::MANIFEST.into(),
            defect: Defect::Expired {
                expires: m.expires,
                now,
            },
        });
    }
    let mut checks = Vec::new();
    for r in &m.releases {
        for (p, b) in &r.platforms {
            checks.push(Check {
                platform: p,
                to: &r.version,
                from: None,
                artifact: &b.full,
                build: b,
            });
            for d in &b.deltas {
                checks.push(Check {
                    platform: p,
                    to: &r.version,
                    from: Some(&d.from),
                    artifact: &d.artifact,
                    build: b,
                });
            }
        }
    }
    report.artifacts = checks.len();
    let scratch = tempfile::Builder::new()
        .prefix("deltapack-verify-")
        .tempdir()?;
    // Full bundles first: deltas need their bases rebuilt from them.
    let (fulls, deltas): (Vec<_>, Vec<_>) = checks.iter().partition(|c| c.from.is_none());
    let full_results: Vec<(Option<PathBuf>, Vec<Problem>, u64)> = fulls
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            progress(Event::Verifying {
                path: c.artifact.path.clone(),
            });
            let out = scratch.path().join(format!("t{i}"));
            check_one(root, &m, c, None, Some(&out))
        })
        .collect();
    let mut bases = std::collections::HashMap::new();
    for (c, (tree, problems, bytes)) in fulls.iter().zip(full_results) {
        report.bytes += bytes;
        if let Some(t) = tree {
            bases.insert((c.platform, c.to), t);
        }
        report.problems.extend(problems);
    }
    let delta_results: Vec<(bool, Vec<Problem>, u64)> = deltas
        .par_iter()
        .map(|c| {
            progress(Event::Verifying {
                path: c.artifact.path.clone(),
            });
            let from = c.from.unwrap_or(c.to);
            match bases.get(&(c.platform, from)) {
                Some(base) => {
                    let (_, p, b) = check_one(root, &m, c, Some(base), None);
                    (true, p, b)
                }
                None => (
                    false,
                    vec![Problem {
                        path: c.artifact.path.clone(),
                        defect: Defect::Base(format!("{} {from}", c.platform)),
                    }],
                    0,
                ),
            }
        })
        .collect();
    for (applied, problems, bytes) in delta_results {
        report.deltas_applied += usize::from(applied && problems.is_empty());
        report.bytes += bytes;
        report.problems.extend(problems);
    }
    let listed: BTreeSet<&str> = checks.iter().map(|c| c.artifact.path.as_str()).collect();
    let mut on_disk = Vec::new();
    list_files(&root.join("pkg"), "pkg", &mut on_disk)?;
    for f in on_disk {
        if !listed.contains(f.as_str()) {
            report.problems.push(Problem {
                path: f,
                defect: Defect::Unlisted,
            });
        }
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// Checks one artifact; a full bundle is rebuilt into `out` (and the path
/// returned) so deltas can use it as their base.
fn check_one(
    root: &Path,
    m: &Manifest,
    c: &Check<'_>,
    base: Option<&Path>,
    out: Option<&Path>,
) -> (Option<PathBuf>, Vec<Problem>, u64) {
    let problem = |defect| {
        (
            None,
            vec![Problem {
                path: c.artifact.path.clone(),
                defect,
            }],
            0,
        )
    };
    match layout::measure(root, &c.artifact.path) {
        Ok(None) => return problem(Defect::Missing),
        Err(Error::Io(e)) => return problem(Defect::Package(deltapack_apply::Error::Io(e))),
        Err(_) => return problem(Defect::Missing),
        Ok(Some((size, _))) if size != c.artifact.size => {
            return problem(Defect::Size {
                expected: c.artifact.size,
                found: size,
            });
        }
        Ok(Some((_, hash))) if hash != c.artifact.blake3 => {
            return problem(Defect::Hash {
                expected: c.artifact.blake3.clone(),
                found: hash,
            });
        }
        Ok(Some(_)) => {}
    }
    let open =
        || fs_err::File::open(layout::local(root, &c.artifact.path)).map(std::io::BufReader::new);
    let applier = Applier::new().sync(false);
    let header = match open()
        .map_err(deltapack_apply::Error::Io)
        .and_then(|mut f| applier.read_header(&mut f))
    {
        Ok(h) => h,
        Err(e) => return problem(Defect::Package(e)),
    };
    let from_tree = c
        .from
        .and_then(|f| m.release(f))
        .and_then(|r| r.platforms.get(c.platform))
        .map(|b| b.tree.digest.clone());
    let hex = |id: &deltapack_format::TreeId| deltapack_tree::hex(&id.digest);
    let fields: [(&'static str, String, String); 5] = [
        ("platform", c.platform.to_owned(), header.platform.clone()),
        ("to_version", c.to.to_string(), header.to_version.clone()),
        (
            "from_version",
            c.from.map(Version::to_string).unwrap_or_default(),
            header.from_version.clone(),
        ),
        (
            "target tree",
            c.build.tree.digest.clone(),
            hex(&header.target),
        ),
        (
            "base tree",
            from_tree.unwrap_or_default(),
            header.base.as_ref().map(hex).unwrap_or_default(),
        ),
    ];
    for (field, expected, found) in fields {
        if expected != found {
            return problem(Defect::Header {
                field,
                expected,
                found,
            });
        }
    }
    let result = match (out, open()) {
        (_, Err(e)) => Err(deltapack_apply::Error::Io(e)),
        (Some(out), Ok(f)) => applier.apply(None, f, out, &|_| {}),
        (None, Ok(f)) => applier.verify(f, base, &|_| {}),
    };
    match result {
        Err(e) => problem(Defect::Package(e)),
        Ok(_) => (out.map(Path::to_owned), Vec::new(), c.artifact.size),
    }
}

fn list_files(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
    let entries = match fs_err::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        if e.file_type()?.is_dir() {
            list_files(&e.path(), &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}
