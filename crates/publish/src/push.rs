//! `push`: a repository directory to its remote, artifacts first and the
//! manifest last (see the crate docs for the rules).

use std::collections::BTreeSet;
use std::path::Path;

use deltapack_manifest::{MAX_MANIFEST_SIZE, Manifest, PublicKey, Verifier};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::local::Local;
use crate::{Error, Event, MANIFEST, Remote};

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Also remove objects that neither the new nor the previously
    /// published manifest names.
    pub prune: bool,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
    /// Read and hash every remote object whose size matches, instead of
    /// trusting the BLAKE3 a cloud store's metadata records (to repair a
    /// bucket something else wrote into).
    pub rehash: bool,
    /// The time to check the new manifest's expiry against (Unix seconds;
    /// default: the clock).
    pub now: Option<u64>,
}

/// A file a push uploaded (or, in a dry run, would upload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uploaded {
    /// Its repository path.
    pub path: String,
    /// Its size.
    pub bytes: u64,
}

/// What a push did (the `--json` output of `deltapack publish`).
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The remote.
    pub remote: String,
    /// Artifacts uploaded (or to upload, in a dry run), then the manifest
    /// if it changed.
    pub uploaded: Vec<Uploaded>,
    /// Artifacts the remote already had, same size and BLAKE3.
    pub unchanged: usize,
    /// Objects removed by `prune` (or to remove, in a dry run).
    pub pruned: Vec<String>,
    /// The published manifest's sequence before the push (`None`: the
    /// remote had none).
    pub previous_sequence: Option<u64>,
    /// Its sequence after.
    pub sequence: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl Remote {
    /// Publishes the repository directory `repo`; `keys` are the public
    /// keys its installs trust.
    pub fn push(
        &self,
        repo: &Path,
        keys: &[PublicKey],
        opts: &PushOptions,
        progress: &dyn Fn(Event),
    ) -> Result<Pushed, Error> {
        self.runtime
            .block_on(self.push_async(repo, keys, opts, progress))
    }

    async fn push_async(
        &self,
        repo: &Path,
        keys: &[PublicKey],
        opts: &PushOptions,
        progress: &dyn Fn(Event),
    ) -> Result<Pushed, Error> {
        progress(Event::Comparing);
        let manifest_path = repo.join(MANIFEST);
        let bytes = match fs_err::read(&manifest_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoManifest {
                    path: manifest_path,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let now = opts.now.unwrap_or_else(deltapack_manifest::unix_now);
        let new = Verifier::new(keys)
            .now(now)
            .verify(&bytes)
            .map_err(|source| Error::Manifest {
                place: manifest_path.display().to_string(),
                source,
            })?
            .into_manifest();
        let old_bytes = self.read(MANIFEST, MAX_MANIFEST_SIZE as u64).await?;
        let old = match &old_bytes {
            Some(b) => Some(
                Verifier::new(keys)
                    .ignore_expiry()
                    .verify(b)
                    .map_err(|source| Error::Manifest {
                        place: format!("the manifest at {}", self.url()),
                        source,
                    })?
                    .into_manifest(),
            ),
            None => None,
        };
        if let Some(o) = &old {
            if o.sequence > new.sequence {
                return Err(Error::RemoteAhead {
                    remote: self.url().to_owned(),
                    remote_sequence: o.sequence,
                    local_sequence: new.sequence,
                });
            }
            if o.sequence == new.sequence && old_bytes.as_deref() != Some(&bytes[..]) {
                return Err(Error::Diverged {
                    remote: self.url().to_owned(),
                    sequence: o.sequence,
                });
            }
        }

        // What must be uploaded; every artifact is accounted for before
        // the first byte is written.
        let mut uploads = Vec::new();
        let mut unchanged = 0;
        for a in new.artifacts() {
            if self.holds(&a.path, a.size, &a.blake3, opts.rehash).await? {
                unchanged += 1;
                continue;
            }
            let problem = match crate::local::state(&repo.join(&a.path), a.size, &a.blake3)? {
                Local::Same => None,
                Local::Missing => Some("missing from the repository directory"),
                Local::OtherSize => {
                    Some("its size in the repository directory differs from the manifest's")
                }
                Local::OtherHash => {
                    Some("its BLAKE3 in the repository directory differs from the manifest's")
                }
            };
            if let Some(problem) = problem {
                return Err(Error::MissingArtifact {
                    path: a.path.clone(),
                    problem,
                });
            }
            uploads.push((
                Uploaded {
                    path: a.path.clone(),
                    bytes: a.size,
                },
                a.blake3.clone(),
            ));
        }
        let manifest_changes = old_bytes.as_deref() != Some(&bytes[..]);
        let pruned = if opts.prune {
            self.unnamed(&new, old.as_ref()).await?
        } else {
            Vec::new()
        };
        let mut report = Pushed {
            remote: self.url().to_owned(),
            uploaded: uploads.iter().map(|(u, _)| u.clone()).collect(),
            unchanged,
            pruned: pruned.clone(),
            previous_sequence: old.as_ref().map(|o| o.sequence),
            sequence: new.sequence,
            dry_run: opts.dry_run,
        };
        if manifest_changes {
            report.uploaded.push(Uploaded {
                path: MANIFEST.into(),
                bytes: bytes.len() as u64,
            });
        }
        if opts.dry_run {
            return Ok(report);
        }
        for (u, blake3) in &uploads {
            progress(Event::Uploading {
                path: u.path.clone(),
                bytes: u.bytes,
            });
            self.upload(&u.path, &repo.join(&u.path), blake3).await?;
        }
        // Last, in one put: clients see the new manifest only once every
        // file it names is there.
        if manifest_changes {
            progress(Event::Uploading {
                path: MANIFEST.into(),
                bytes: bytes.len() as u64,
            });
            self.put(MANIFEST, bytes.clone(), None).await?;
        }
        for p in &pruned {
            progress(Event::Pruning { path: p.clone() });
            match self.store.delete(&self.path(p)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error("removing", p)(e)),
            }
        }
        Ok(report)
    }

    /// Objects under the prefix that neither manifest names (nor the
    /// manifest itself), sorted.
    async fn unnamed(&self, new: &Manifest, old: Option<&Manifest>) -> Result<Vec<String>, Error> {
        let named: BTreeSet<&str> = new
            .artifacts()
            .chain(old.into_iter().flat_map(Manifest::artifacts))
            .map(|a| a.path.as_str())
            .chain([MANIFEST])
            .collect();
        let depth = self.prefix.parts().count();
        let mut listing = self.store.list((depth > 0).then_some(&self.prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(self.store_error("listing", ""))?;
            let rel: Vec<String> = meta
                .location
                .parts()
                .skip(depth)
                .map(|p| p.as_ref().to_owned())
                .collect();
            let rel = rel.join("/");
            if !named.contains(rel.as_str()) {
                out.push(rel);
            }
        }
        out.sort();
        Ok(out)
    }
}
