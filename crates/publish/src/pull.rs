//! `pull`: a published repository into a local directory, every file
//! checked against the verified manifest, the manifest written last.

use std::path::Path;

use deltapack_manifest::{PublicKey, Verifier};
use serde::Serialize;

use crate::{Error, Event, MANIFEST, Remote};

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Only the manifest and the full bundles: what `deltapack release`
    /// needs to build the next version's deltas (older versions are
    /// rebuilt from their full bundles), without every delta.
    pub bundles_only: bool,
}

/// What a pull did (the `--json` output of `deltapack repo pull`).
#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    /// The remote.
    pub remote: String,
    /// Files downloaded (the manifest last).
    pub downloaded: Vec<crate::Uploaded>,
    /// Files the directory already had, same size and BLAKE3.
    pub unchanged: usize,
    /// The manifest's sequence.
    pub sequence: u64,
}

impl Remote {
    /// Fetches the published repository into `repo` (created if missing);
    /// `keys` are the public keys its installs trust.
    pub fn pull(
        &self,
        repo: &Path,
        keys: &[PublicKey],
        opts: &PullOptions,
        progress: &dyn Fn(Event),
    ) -> Result<Pulled, Error> {
        self.runtime
            .block_on(self.pull_async(repo, keys, opts, progress))
    }

    async fn pull_async(
        &self,
        repo: &Path,
        keys: &[PublicKey],
        opts: &PullOptions,
        progress: &dyn Fn(Event),
    ) -> Result<Pulled, Error> {
        progress(Event::Comparing);
        let bytes = self
            .read(MANIFEST, deltapack_manifest::MAX_MANIFEST_SIZE as u64)
            .await?
            .ok_or_else(|| Error::NothingToPull {
                remote: self.url().to_owned(),
            })?;
        let m = Verifier::new(keys)
            .ignore_expiry()
            .verify(&bytes)
            .map_err(|source| Error::Manifest {
                place: format!("the manifest at {}", self.url()),
                source,
            })?
            .into_manifest();
        let local_manifest = repo.join(MANIFEST);
        if let Ok(local) = fs_err::read(&local_manifest)
            && let Ok(l) = Verifier::new(keys).ignore_expiry().verify(&local)
            && l.manifest().sequence > m.sequence
        {
            return Err(Error::LocalAhead {
                path: local_manifest,
                local_sequence: l.manifest().sequence,
                remote_sequence: m.sequence,
            });
        }
        let fulls: std::collections::BTreeSet<&str> = m
            .releases
            .iter()
            .flat_map(|r| r.platforms.values())
            .map(|b| b.full.path.as_str())
            .collect();
        // Writes never follow a link planted in the directory, and a name
        // never holds a partial file.
        let root = deltapack_fs::Root::new(repo);
        let mut report = Pulled {
            remote: self.url().to_owned(),
            downloaded: Vec::new(),
            unchanged: 0,
            sequence: m.sequence,
        };
        for a in m.artifacts() {
            if opts.bundles_only && !fulls.contains(a.path.as_str()) {
                continue;
            }
            deltapack_manifest::check_path(&a.path).map_err(|_| Error::DamagedRemote {
                path: a.path.clone(),
                remote: self.url().to_owned(),
            })?;
            let dest = repo.join(&a.path);
            if crate::local::state(&dest, a.size, &a.blake3)? == crate::local::Local::Same {
                report.unchanged += 1;
                continue;
            }
            progress(Event::Downloading {
                path: a.path.clone(),
                bytes: a.size,
            });
            let body = self
                .read(&a.path, a.size)
                .await?
                .filter(|b| {
                    b.len() as u64 == a.size && blake3::hash(b).to_hex().as_str() == a.blake3
                })
                .ok_or_else(|| Error::DamagedRemote {
                    path: a.path.clone(),
                    remote: self.url().to_owned(),
                })?;
            root.write_atomic(&a.path, &body)?;
            report.downloaded.push(crate::Uploaded {
                path: a.path.clone(),
                bytes: a.size,
            });
        }
        // Last: a directory with the new manifest has every file it names.
        root.write_atomic(MANIFEST, &bytes)?;
        report.downloaded.push(crate::Uploaded {
            path: MANIFEST.into(),
            bytes: bytes.len() as u64,
        });
        Ok(report)
    }
}
