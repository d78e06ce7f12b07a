//! Building packages: old versions are rebuilt from their full bundles into
//! a temporary directory, then every job diffs in parallel (rayon across
//! jobs, and the diff engine's own parallelism inside each).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use deltapack_apply::Applier;
use deltapack_diff::Differ;
use deltapack_manifest::{Artifact, Manifest, Version};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::plan::Job;
use crate::{Error, Event, layout};

/// A package a job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Built {
    #[serde(flatten)]
    pub(crate) job: Job,
    pub(crate) artifact: Artifact,
}

/// Trees of (platform, version) on disk: inputs of the new version, and
/// older versions rebuilt from their full bundles.
pub(crate) struct Trees {
    dir: tempfile::TempDir,
    paths: HashMap<(String, Version), PathBuf>,
}

impl Trees {
    pub(crate) fn new() -> Result<Self, Error> {
        Ok(Trees {
            dir: tempfile::Builder::new()
                .prefix("deltapack-trees-")
                .tempdir()?,
            paths: HashMap::new(),
        })
    }

    /// Registers a tree that is already on disk.
    pub(crate) fn insert(&mut self, platform: &str, v: &Version, path: PathBuf) {
        self.paths.insert((platform.to_owned(), v.clone()), path);
    }

    pub(crate) fn get(&self, platform: &str, v: &Version) -> Result<&Path, Error> {
        self.paths
            .get(&(platform.to_owned(), v.clone()))
            .map(PathBuf::as_path)
            .ok_or_else(|| Error::Internal(format!("tree {platform} {v} was not prepared")))
    }

    /// Rebuilds every tree the jobs need that is not registered yet, from
    /// the repository's full bundles, and checks each against the
    /// manifest's tree digest.
    pub(crate) fn materialize(
        &mut self,
        root: &Path,
        m: &Manifest,
        jobs: &[Job],
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<(), Error> {
        let needed: BTreeSet<(String, Version)> = jobs
            .iter()
            .flat_map(|j| {
                let mut v = vec![(j.platform.clone(), j.to.clone())];
                v.extend(j.from.iter().map(|f| (j.platform.clone(), f.clone())));
                v
            })
            .filter(|k| !self.paths.contains_key(k))
            .collect();
        let base = self.dir.path().to_owned();
        let needed: Vec<(String, Version)> = needed.into_iter().collect();
        let done: Vec<((String, Version), PathBuf)> = needed
            .into_par_iter()
            .enumerate()
            .map(|(i, (p, v))| {
                let build = m
                    .release(&v)
                    .and_then(|r| r.platforms.get(&p))
                    .ok_or_else(|| Error::UnknownBuild {
                        version: v.to_string(),
                        platform: p.clone(),
                    })?;
                progress(Event::Restoring {
                    platform: p.clone(),
                    version: v.clone(),
                });
                let pkg = layout::local(root, &build.full.path);
                if !layout::intact(root, &build.full)? {
                    return Err(Error::DamagedArtifact {
                        path: build.full.path.clone(),
                    });
                }
                let out = base.join(i.to_string());
                let file = fs_err::File::open(&pkg)?;
                let report = Applier::new()
                    .sync(false)
                    .apply(None, std::io::BufReader::new(file), &out, &|_| {})
                    .map_err(|source| Error::Apply {
                        path: build.full.path.clone(),
                        source,
                    })?;
                let got = report
                    .target
                    .map(|t| deltapack_tree::hex(&t.digest))
                    .unwrap_or_default();
                if got != build.tree.digest {
                    return Err(Error::DamagedArtifact {
                        path: build.full.path.clone(),
                    });
                }
                Ok(((p, v), out))
            })
            .collect::<Result<_, Error>>()?;
        self.paths.extend(done);
        Ok(())
    }
}

/// Runs the jobs in parallel and writes their packages into the repository.
/// `differ` carries the settings every job shares (level, codecs).
pub(crate) fn run(
    root: &Path,
    jobs: &[Job],
    trees: &Trees,
    differ: &Differ,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Built>, Error> {
    jobs.par_iter()
        .map(|job| {
            progress(Event::Building { job: job.path() });
            let new = trees.get(&job.platform, &job.to)?;
            let old = job
                .from
                .as_ref()
                .map(|f| trees.get(&job.platform, f))
                .transpose()?;
            let pkg = differ
                .clone()
                .platform(job.platform.as_str())
                .from_version(
                    job.from
                        .as_ref()
                        .map(Version::to_string)
                        .unwrap_or_default(),
                )
                .to_version(job.to.to_string())
                .diff(old, new, &|_| {})
                .map_err(|source| Error::Diff {
                    job: job.path(),
                    source,
                })?;
            let artifact = layout::write_artifact(root, &job.path(), &pkg.to_bytes())?;
            progress(Event::Built {
                job: job.path(),
                size: artifact.size,
            });
            Ok(Built {
                job: job.clone(),
                artifact,
            })
        })
        .collect()
}
