//! [`Packager`]: every command that changes a repository. Each one reads
//! and verifies the current manifest, builds what is missing, folds it in,
//! and writes a newly signed manifest last, so a failure at any step leaves
//! the published manifest as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltapack_diff::Differ;
use deltapack_manifest::{Manifest, PublicKey, SecretKey, Verifier, Version, check_name, sign};
use rayon::prelude::*;
use serde::Serialize;

use crate::assemble::{self, Record};
use crate::build::{self, Built, Trees};
use crate::changes::{self, Change};
use crate::input::Input;
use crate::plan::{self, Job};
use crate::{Error, Event, layout};

/// Default number of earlier versions that get a delta to a new one.
pub const DEFAULT_DELTAS: usize = 5;
/// Default manifest lifetime: 30 days.
pub const DEFAULT_EXPIRES_IN: u64 = 30 * 24 * 3600;

/// A new version to publish.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// The version.
    pub version: Version,
    /// The channel it goes to.
    pub channel: String,
    /// Build output per platform: a directory, a single file, or an
    /// archive (`.tar.gz`, `.tgz`, `.tar.zst`, `.zip`).
    pub platforms: Vec<(String, PathBuf)>,
    /// Release notes.
    pub notes: String,
    /// Installs older than this take the full bundle.
    pub min_delta_version: Option<Version>,
    /// App data inside the install that carries over into this version
    /// (`Release::carry`; empty: what an earlier run said, else nothing).
    pub carry: Vec<String>,
    /// Initial rollout percentage (default 100).
    pub rollout_percent: u8,
}

/// One shard of a release split across machines: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// How `rollout` changes a release's rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutChange {
    /// Set the percentage (raise or lower); also resumes.
    Percent(u8),
    /// Stop offering the release to installs not already on it.
    Pause,
    /// Offer it again at its percentage.
    Resume,
}

/// What a command did (also the `--json` output of the repository
/// commands; docs/JSON.md has the schema).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Packages written.
    pub built: Vec<BuiltPackage>,
    /// Deltas dropped because they were not clearly smaller than the full
    /// bundle.
    pub dropped: Vec<String>,
    /// What changed in the manifest.
    pub changes: Vec<Change>,
    /// The manifest after the command (none for a shard run, which does
    /// not sign).
    pub manifest: Option<Signed>,
    /// Where a shard's record was written (shard runs only).
    pub shard_record: Option<String>,
}

/// A package a command wrote into the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltPackage {
    /// Its path in the repository.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The repository's manifest after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signed {
    /// Its sequence number.
    pub sequence: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was signed (Unix seconds).
    pub issued: u64,
    /// When clients start refusing it (Unix seconds).
    pub expires: u64,
    /// Whether this command wrote it (false for a rerun that changed
    /// nothing, which leaves the signed file as it was).
    pub written: bool,
}

/// Changes a repository: release, promote, rollout, yank, refresh, merge.
#[derive(Debug, Clone)]
pub struct Packager {
    root: PathBuf,
    keys: Vec<SecretKey>,
    trusted: Vec<PublicKey>,
    deltas: usize,
    level: u8,
    executables: bool,
    mtimes: bool,
    clamp_mtime: Option<u64>,
    expires_in: u64,
    now: Option<u64>,
    shard_out: Option<PathBuf>,
    init: bool,
}

impl Packager {
    /// A packager for the repository directory `root` (created if absent;
    /// a new repository also needs [`init`](Packager::init)).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Packager {
            root: root.into(),
            keys: Vec::new(),
            trusted: Vec::new(),
            deltas: DEFAULT_DELTAS,
            level: 9,
            executables: true,
            mtimes: true,
            clamp_mtime: None,
            expires_in: DEFAULT_EXPIRES_IN,
            now: None,
            shard_out: None,
            init: false,
        }
    }

    /// Starts a new repository: the root must not hold a manifest yet.
    /// Without it, a root with no manifest is an error
    /// ([`Error::NoManifest`]), so that a mistyped or empty directory is
    /// never silently made a second repository at sequence 1, which every
    /// install of the real one would refuse.
    pub fn init(mut self, on: bool) -> Self {
        self.init = on;
        self
    }

    /// Where a shard run writes its packages and record (laid out like a
    /// repository; default: the repository itself). Lets a CI job upload
    /// just what it built.
    pub fn shard_output(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shard_out = Some(dir.into());
        self
    }

    /// Signing keys. Each signs the manifest; the existing manifest must
    /// carry a valid signature by one of them (or by a [`trust`]ed key).
    ///
    /// [`trust`]: Packager::trust
    pub fn keys(mut self, keys: Vec<SecretKey>) -> Self {
        self.keys = keys;
        self
    }

    /// Extra public keys the existing manifest may be signed with (shards,
    /// which do not sign, need one of these or a signing key).
    pub fn trust(mut self, keys: Vec<PublicKey>) -> Self {
        self.trusted = keys;
        self
    }

    /// How many earlier versions of a channel get a delta (default 5).
    pub fn deltas(mut self, k: usize) -> Self {
        self.deltas = k;
        self
    }

    /// Diff level 1..=9 (default 9, smallest).
    pub fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }

    /// Whether deltas may use the executable-aware codec (default: yes,
    /// where it is smaller). Off, every delta built by this packager uses
    /// the generic codecs only, which update clients older than that codec
    /// can apply (they fall back to the full bundle otherwise).
    pub fn executables(mut self, on: bool) -> Self {
        self.executables = on;
        self
    }

    /// Whether packages record every file's modification time (default:
    /// yes), so that installed files keep the build's times and caches
    /// keyed on them (Python's bytecode) stay valid. Update clients older
    /// than that field of the format cannot read such packages, full
    /// bundles included: turn it off while many of them are installed.
    pub fn mtimes(mut self, on: bool) -> Self {
        self.mtimes = on;
        self
    }

    /// Records no modification time later than `t` (Unix seconds), as
    /// reproducible builds do with `SOURCE_DATE_EPOCH`.
    pub fn clamp_mtime(mut self, t: Option<u64>) -> Self {
        self.clamp_mtime = t;
        self
    }

    /// The diff settings every package of a run shares.
    fn differ(&self) -> Differ {
        Differ::new()
            .level(self.level)
            .executables(self.executables)
            .mtimes(self.mtimes)
            .clamp_mtime(self.clamp_mtime)
    }

    /// Manifest lifetime in seconds (default 30 days).
    pub fn expires_in(mut self, secs: u64) -> Self {
        self.expires_in = secs;
        self
    }

    /// The time to record (Unix seconds; default: the clock). Fixing it
    /// makes the manifest reproducible too.
    pub fn now(mut self, t: u64) -> Self {
        self.now = Some(t);
        self
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn time(&self) -> u64 {
        self.now.unwrap_or_else(deltapack_manifest::unix_now)
    }

    /// Reads and verifies the current manifest (an empty one when
    /// [`init`](Packager::init) starts the repository). Expiry is not
    /// checked: re-signing is how it is renewed.
    pub fn load(&self) -> Result<Manifest, Error> {
        let path = self.root.join(layout::MANIFEST);
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.init => {
                return Ok(Manifest::empty());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoManifest { path });
            }
            Err(e) => return Err(e.into()),
        };
        let mut trusted: Vec<PublicKey> = self.keys.iter().map(SecretKey::public).collect();
        trusted.extend(self.trusted.iter().cloned());
        if trusted.is_empty() {
            return Err(Error::NoKeys);
        }
        let m = Verifier::new(&trusted)
            .ignore_expiry()
            .verify(&bytes)
            .map_err(|source| Error::Manifest {
                path: path.clone(),
                source,
            })?
            .into_manifest();
        if self.init {
            return Err(Error::AlreadyARepository {
                path,
                sequence: m.sequence,
            });
        }
        Ok(m)
    }

    /// Signs and writes `m` as the next manifest, unless it says nothing
    /// new: a rerun that changes nothing leaves the signed file as it is.
    fn save_if_changed(
        &self,
        summary: &mut Summary,
        before: &Manifest,
        m: Manifest,
    ) -> Result<(), Error> {
        if before.sequence > 0 && &m == before {
            if self.keys.is_empty() {
                return Err(Error::NoKeys);
            }
            let bytes = fs_err::metadata(self.root.join(layout::MANIFEST))?.len();
            summary.manifest = Some(Signed {
                sequence: m.sequence,
                bytes,
                issued: m.issued,
                expires: m.expires,
                written: false,
            });
            return Ok(());
        }
        self.save(summary, before, m)
    }

    /// Signs and writes `m` as the next manifest, and records in `summary`
    /// what changed since `before`.
    fn save(&self, summary: &mut Summary, before: &Manifest, m: Manifest) -> Result<(), Error> {
        summary.changes = changes::between(before, &m);
        summary.manifest = Some(self.sign_and_write(m)?);
        Ok(())
    }

    fn sign_and_write(&self, mut m: Manifest) -> Result<Signed, Error> {
        if self.keys.is_empty() {
            return Err(Error::NoKeys);
        }
        let now = self.time();
        m.sequence += 1;
        m.issued = now;
        m.expires = now.saturating_add(self.expires_in.max(1));
        let bytes = sign(&m, &self.keys).map_err(|source| Error::Manifest {
            path: self.root.join(layout::MANIFEST),
            source,
        })?;
        layout::write_atomic(&self.root, layout::MANIFEST, &bytes)?;
        Ok(Signed {
            sequence: m.sequence,
            bytes: bytes.len() as u64,
            issued: m.issued,
            expires: m.expires,
            written: true,
        })
    }

    /// Publishes a new version (or completes one whose earlier run was
    /// interrupted): full bundles, deltas from the channel's last versions,
    /// and the signed manifest. With a shard, builds only its share of the
    /// packages and writes a record for [`merge`](Packager::merge).
    pub fn release(
        &self,
        r: &NewRelease,
        shard: Option<Shard>,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Summary, Error> {
        name(&r.channel, "channel")?;
        if r.platforms.is_empty() {
            return Err(Error::Usage("a release needs at least one platform".into()));
        }
        if r.rollout_percent > 100 {
            return Err(Error::Usage("rollout percentage is over 100".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (p, _) in &r.platforms {
            name(p, "platform")?;
            if !seen.insert(p) {
                return Err(Error::Usage(format!("platform {p} is given twice")));
            }
        }
        if let Some(s) = shard
            && (s.count == 0 || s.index >= s.count)
        {
            return Err(Error::Usage(format!(
                "shard {}/{} is out of range",
                s.index, s.count
            )));
        }
        let sharded = shard.is_some_and(|s| s.count > 1);
        if self.shard_out.is_some() && !sharded {
            return Err(Error::Usage(
                "a shard output directory needs --shard I/N".into(),
            ));
        }
        let out = match &self.shard_out {
            Some(dir) if sharded => dir.as_path(),
            _ => self.root.as_path(),
        };
        let m = self.load()?;
        let inputs: Vec<(String, Input)> = r
            .platforms
            .par_iter()
            .map(|(p, path)| {
                progress(Event::Reading {
                    platform: p.clone(),
                });
                Input::open(path)
                    .map(|i| (p.clone(), i))
                    .map_err(|source| Error::Input {
                        platform: p.clone(),
                        path: path.clone(),
                        source: Box::new(source),
                    })
            })
            .collect::<Result<_, Error>>()?;
        let existing = m.release(&r.version);
        if let Some(rel) = existing {
            if rel.yanked.is_some() {
                return Err(Error::Yanked {
                    version: r.version.to_string(),
                });
            }
            for (p, input) in &inputs {
                if rel.platforms.get(p).is_some_and(|b| b.tree != input.tree) {
                    return Err(Error::VersionConflict {
                        version: r.version.to_string(),
                        platform: p.clone(),
                    });
                }
            }
        }
        let mut jobs = Vec::new();
        let min_delta = r
            .min_delta_version
            .as_ref()
            .or(existing.and_then(|e| e.min_delta_version.as_ref()));
        for (p, _) in &inputs {
            let bases = plan::bases(&m, &r.channel, &r.version, p, self.deltas);
            let build = existing.and_then(|e| e.platforms.get(p));
            jobs.extend(plan::jobs_for(
                &self.root, p, &r.version, &bases, min_delta, build,
            )?);
        }
        let jobs = match shard {
            Some(s) => plan::shard(jobs, s.index, s.count),
            None => jobs,
        };
        let mut trees = Trees::new()?;
        for (p, input) in &inputs {
            trees.insert(p, &r.version, input.root.clone());
        }
        trees.materialize(&self.root, &m, &jobs, progress)?;
        let built = build::run(out, &jobs, &trees, &self.differ(), progress)?;
        let record = Record {
            version: r.version.clone(),
            channel: r.channel.clone(),
            shard: shard.map_or([0, 1], |s| [s.index, s.count]),
            released: existing.map_or_else(|| self.time(), |e| e.released),
            notes: r.notes.clone(),
            min_delta_version: r.min_delta_version.clone(),
            carry: r.carry.clone(),
            rollout_percent: r.rollout_percent,
            trees: inputs
                .iter()
                .map(|(p, i)| (p.clone(), i.tree.clone()))
                .collect(),
            built,
        };
        let mut summary = summary_of(&record.built);
        if let Some(s) = shard.filter(|s| s.count > 1) {
            let rel = layout::shard_path(&r.version, s.index, s.count);
            let json = serde_json::to_vec_pretty(&record)
                .map_err(|e| Error::Internal(format!("shard record: {e}")))?;
            layout::write_atomic(out, &rel, &json)?;
            summary.shard_record = Some(rel);
            return Ok(summary);
        }
        let (folded, dropped) = self.fold(m.clone(), &[record])?;
        summary.dropped = dropped;
        self.save_if_changed(&mut summary, &m, folded)?;
        Ok(summary)
    }

    fn fold(&self, mut m: Manifest, records: &[Record]) -> Result<(Manifest, Vec<String>), Error> {
        let mut dropped = Vec::new();
        for rec in records {
            assemble::add_release(&mut m, rec)?;
            dropped.extend(assemble::add_deltas(&mut m, &self.root, &rec.built)?);
            assemble::offer(&mut m, &rec.channel, &rec.version, rec.rollout_percent);
        }
        Ok((m, dropped))
    }

    /// Joins shard records into the manifest. `from` lists shard output
    /// directories to copy in first (each laid out like a repository);
    /// records already in this repository's `shards/` are used too. Every
    /// shard of a release must be present; merged records are removed.
    pub fn merge(&self, from: &[PathBuf]) -> Result<Summary, Error> {
        for dir in from {
            self.copy_shard_dir(dir)?;
        }
        let dir = self.root.join(layout::SHARDS);
        let mut records: BTreeMap<Version, Vec<(PathBuf, Record)>> = BTreeMap::new();
        let listing = match fs_err::read_dir(&dir) {
            Ok(l) => l.collect::<Result<Vec<_>, _>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for entry in listing {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let rec = read_record(&path)?;
            records
                .entry(rec.version.clone())
                .or_default()
                .push((path, rec));
        }
        if records.is_empty() {
            return Err(Error::Shard("no shard records to merge".into()));
        }
        let mut joined = Vec::new();
        let mut files = Vec::new();
        for (v, mut recs) in records {
            recs.sort_by_key(|(_, r)| r.shard);
            let first = recs[0].1.clone();
            let count = first.shard[1];
            let have: Vec<u32> = recs.iter().map(|(_, r)| r.shard[0]).collect();
            if have != (0..count).collect::<Vec<_>>() {
                return Err(Error::Shard(format!(
                    "release {v}: have shards {have:?} of {count}"
                )));
            }
            let mut all = first.clone();
            all.built.clear();
            all.shard = [0, 1];
            for (path, r) in recs {
                if !r.same_release(&first) {
                    return Err(Error::Shard(format!(
                        "{} describes release {v} differently from shard 0",
                        path.display()
                    )));
                }
                for b in &r.built {
                    if !layout::intact(&self.root, &b.artifact)? {
                        return Err(Error::DamagedArtifact {
                            path: b.artifact.path.clone(),
                        });
                    }
                }
                all.released = all.released.min(r.released);
                all.built.extend(r.built);
                files.push(path);
            }
            all.built.sort_by(|a, b| a.job.cmp(&b.job));
            joined.push(all);
        }
        let before = self.load()?;
        let mut summary = Summary::default();
        for r in &joined {
            summary.built.extend(summary_of(&r.built).built);
        }
        let (m, dropped) = self.fold(before.clone(), &joined)?;
        summary.dropped = dropped;
        self.save(&mut summary, &before, m)?;
        for f in files {
            fs_err::remove_file(f)?;
        }
        let _ = fs_err::remove_dir(&dir);
        Ok(summary)
    }

    fn copy_shard_dir(&self, dir: &Path) -> Result<(), Error> {
        let shards = dir.join(layout::SHARDS);
        for entry in fs_err::read_dir(&shards)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let rec = read_record(&path)?;
            for b in &rec.built {
                let src = layout::local(dir, &b.artifact.path);
                if !layout::intact(dir, &b.artifact)? {
                    return Err(Error::DamagedArtifact {
                        path: src.display().to_string(),
                    });
                }
                let bytes = fs_err::read(&src)?;
                layout::write_atomic(&self.root, &b.artifact.path, &bytes)?;
            }
            let name = layout::shard_path(&rec.version, rec.shard[0], rec.shard[1]);
            layout::write_atomic(&self.root, &name, &fs_err::read(&path)?)?;
        }
        Ok(())
    }

    /// Offers an existing release on another channel, without rebuilding
    /// it; deltas from that channel's last versions are added where
    /// missing. `from`, if given, must be a channel that offers it.
    pub fn promote(
        &self,
        version: &Version,
        from: Option<&str>,
        to: &str,
        percent: u8,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Summary, Error> {
        name(to, "channel")?;
        let before = self.load()?;
        let mut m = before.clone();
        let rel = m.release(version).ok_or_else(|| Error::UnknownVersion {
            version: version.to_string(),
        })?;
        if rel.yanked.is_some() {
            return Err(Error::Yanked {
                version: version.to_string(),
            });
        }
        if let Some(f) = from
            && !on_channel(&m, f, version)
        {
            return Err(Error::NotOnChannel {
                version: version.to_string(),
                channel: f.to_owned(),
            });
        }
        let mut jobs = Vec::new();
        for (p, b) in &rel.platforms {
            let bases = plan::bases(&m, to, version, p, self.deltas);
            let min = rel.min_delta_version.as_ref();
            jobs.extend(
                plan::jobs_for(&self.root, p, version, &bases, min, Some(b))?
                    .into_iter()
                    .filter(|j| j.from.is_some()),
            );
        }
        let built = self.build_between(&m, &jobs, progress)?;
        let mut summary = summary_of(&built);
        summary.dropped = assemble::add_deltas(&mut m, &self.root, &built)?;
        assemble::offer(&mut m, to, version, percent);
        if let Some(cr) = channel_release(&mut m, to, version) {
            cr.rollout.percent = percent.min(100);
        }
        self.save(&mut summary, &before, m)?;
        Ok(summary)
    }

    fn build_between(
        &self,
        m: &Manifest,
        jobs: &[Job],
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Vec<Built>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut trees = Trees::new()?;
        trees.materialize(&self.root, m, jobs, progress)?;
        build::run(&self.root, jobs, &trees, &self.differ(), progress)
    }

    /// Changes the rollout of `version` (default: the channel's newest) on
    /// `channel`.
    pub fn rollout(
        &self,
        channel: &str,
        version: Option<&Version>,
        change: RolloutChange,
    ) -> Result<Summary, Error> {
        let before = self.load()?;
        let mut m = before.clone();
        let v = match version {
            Some(v) => v.clone(),
            None => m
                .channels
                .get(channel)
                .and_then(|c| c.releases.last())
                .map(|cr| cr.version.clone())
                .ok_or_else(|| Error::UnknownChannel {
                    channel: channel.to_owned(),
                })?,
        };
        let cr = channel_release(&mut m, channel, &v).ok_or_else(|| Error::NotOnChannel {
            version: v.to_string(),
            channel: channel.to_owned(),
        })?;
        match change {
            RolloutChange::Percent(p) if p > 100 => {
                return Err(Error::Usage("rollout percentage is over 100".into()));
            }
            RolloutChange::Percent(p) => {
                cr.rollout.percent = p;
                cr.rollout.paused = false;
            }
            RolloutChange::Pause => cr.rollout.paused = true,
            RolloutChange::Resume => cr.rollout.paused = false,
        }
        let mut summary = Summary::default();
        self.save(&mut summary, &before, m)?;
        Ok(summary)
    }

    /// Withdraws a release (`reason` is shown to operators), or restores it
    /// with `reason: None`. Installs on a yanked release are offered the
    /// newest good version of their channel, even if it is older: deltas
    /// from the yanked version to that one are built here.
    pub fn yank(
        &self,
        version: &Version,
        reason: Option<&str>,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Summary, Error> {
        let before = self.load()?;
        let mut m = before.clone();
        let rel = m
            .release_mut(version)
            .ok_or_else(|| Error::UnknownVersion {
                version: version.to_string(),
            })?;
        rel.yanked = reason.map(|r| {
            if r.is_empty() {
                "yanked".into()
            } else {
                r.to_owned()
            }
        });
        let mut jobs = Vec::new();
        if reason.is_some() {
            for c in m.channels.values() {
                if !c.releases.iter().any(|cr| &cr.version == version) {
                    continue;
                }
                let good = c
                    .releases
                    .iter()
                    .rev()
                    .map(|cr| &cr.version)
                    .find(|v| m.release(v).is_some_and(|r| r.yanked.is_none()));
                let (Some(good), Some(bad)) = (good, m.release(version)) else {
                    continue;
                };
                let Some(target) = m.release(good).filter(|_| good < version) else {
                    continue;
                };
                for (p, b) in &target.platforms {
                    if bad.platforms.contains_key(p) {
                        let from = [version.clone()];
                        jobs.extend(
                            plan::jobs_for(&self.root, p, good, &from, None, Some(b))?
                                .into_iter()
                                .filter(|j| j.from.is_some()),
                        );
                    }
                }
            }
            jobs.sort();
            jobs.dedup();
        }
        let built = self.build_between(&m, &jobs, progress)?;
        let mut summary = summary_of(&built);
        summary.dropped = assemble::add_deltas(&mut m, &self.root, &built)?;
        self.save(&mut summary, &before, m)?;
        Ok(summary)
    }

    /// Re-signs the manifest unchanged but for a new sequence number and
    /// expiry (run on a schedule so clients never see it expire).
    pub fn refresh(&self) -> Result<Summary, Error> {
        let m = self.load()?;
        let mut summary = Summary::default();
        self.save(&mut summary, &m, m.clone())?;
        Ok(summary)
    }
}

fn name(n: &str, what: &'static str) -> Result<(), Error> {
    check_name(n).map_err(|reason| Error::InvalidName {
        what,
        name: n.to_owned(),
        reason,
    })
}

fn on_channel(m: &Manifest, channel: &str, v: &Version) -> bool {
    m.channels
        .get(channel)
        .is_some_and(|c| c.releases.iter().any(|cr| &cr.version == v))
}

fn channel_release<'m>(
    m: &'m mut Manifest,
    channel: &str,
    v: &Version,
) -> Option<&'m mut deltapack_manifest::ChannelRelease> {
    m.channels
        .get_mut(channel)?
        .releases
        .iter_mut()
        .find(|cr| &cr.version == v)
}

/// Reads a shard record. Records travel between CI jobs, so they are
/// checked like any input: every artifact must sit exactly at the path its
/// job names (built only from checked names), or the merge would copy and
/// write wherever a damaged record said.
fn read_record(path: &Path) -> Result<Record, Error> {
    let bytes = fs_err::read(path)?;
    let rec: Record = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Shard(format!("{}: {e}", path.display())))?;
    name(&rec.channel, "channel")?;
    for b in &rec.built {
        name(&b.job.platform, "platform")?;
        if b.artifact.path != b.job.path() {
            return Err(Error::Shard(format!(
                "{}: artifact path {:?} is not where its job belongs ({:?})",
                path.display(),
                b.artifact.path,
                b.job.path()
            )));
        }
    }
    for p in rec.trees.keys() {
        name(p, "platform")?;
    }
    Ok(rec)
}

fn summary_of(built: &[Built]) -> Summary {
    Summary {
        built: built
            .iter()
            .map(|b| BuiltPackage {
                path: b.artifact.path.clone(),
                bytes: b.artifact.size,
            })
            .collect(),
        ..Summary::default()
    }
}
