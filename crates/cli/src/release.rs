//! The repository commands: `keygen`, `release`, `promote`, `rollout`,
//! `yank`, `repo verify|merge|refresh|show` and `serve`. Argument parsing
//! and printing only; the work is in `deltapack-release`,
//! `deltapack-manifest` and `deltapack-serve`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use deltapack_manifest::{PublicKey, SecretKey, Version};
use deltapack_release::{Event, NewRelease, Packager, RolloutChange, Shard, Summary};

use crate::units::{Bytes, When};

/// Options shared by the commands that change a repository.
#[derive(clap::Args)]
pub(crate) struct SignOpts {
    /// The repository directory.
    #[arg(long)]
    repo: PathBuf,
    /// Secret key file (repeat to sign with several during a rotation), or
    /// `env:VAR` to read the key text from an environment variable.
    #[arg(long = "key", value_name = "FILE|env:VAR")]
    keys: Vec<String>,
    /// Public key (text or .pub file) trusted for the existing manifest
    /// when no secret key is given (shard runs).
    #[arg(long = "pub", value_name = "KEY|FILE")]
    pubs: Vec<String>,
    /// Days until the new manifest expires (1 to 3650; clients refuse
    /// it afterwards until it is re-signed with `repo refresh`).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    expires_in_days: u64,
    /// Machine-readable output: what was built and what changed
    /// (docs/JSON.md).
    #[arg(long)]
    json: bool,
}

/// Options of the commands that build packages.
#[derive(clap::Args)]
pub(crate) struct BuildOpts {
    /// Diff level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u8).range(1..=9))]
    level: u8,
    /// Deltas use the generic codecs only, no executable-aware `bsdiff-exe`
    /// (for update clients older than it, which would otherwise take the
    /// full bundle).
    #[arg(long)]
    no_exe: bool,
    /// Packages do not record files' modification times (for update
    /// clients older than that field, which cannot read such packages).
    #[arg(long)]
    no_mtimes: bool,
    /// How progress is shown on stderr: messages, JSON lines (one event
    /// per line, docs/JSON.md), or nothing.
    #[arg(long, value_enum, default_value_t = crate::progress::Mode::Bar)]
    progress: crate::progress::Mode,
}

impl SignOpts {
    /// The packager of a command that builds packages too.
    fn builder(&self, need_key: bool, b: &BuildOpts) -> Result<Packager> {
        Ok(self
            .packager(need_key)?
            .level(b.level)
            .executables(!b.no_exe)
            .mtimes(!b.no_mtimes))
    }

    fn packager(&self, need_key: bool) -> Result<Packager> {
        let mut keys = Vec::new();
        for k in &self.keys {
            keys.push(read_secret(k, &self.repo)?);
        }
        if need_key && keys.is_empty() {
            bail!("this command signs the manifest: pass --key FILE (or --key env:VAR)");
        }
        let pubs = self
            .pubs
            .iter()
            .map(|p| read_public(p))
            .collect::<Result<Vec<_>>>()?;
        if self.expires_in_days < MIN_SANE_DAYS {
            eprintln!(
                "warning: --expires-in-days {}: every client refuses this manifest after {} day(s) unless it is re-signed (deltapack repo refresh); {MIN_SANE_DAYS} or more leaves room for a missed run",
                self.expires_in_days, self.expires_in_days
            );
        }
        let mut p = Packager::new(&self.repo)
            .keys(keys)
            .trust(pubs)
            .expires_in(self.expires_in_days.saturating_mul(86_400));
        // Reproducible builds: the release date and manifest times follow
        // SOURCE_DATE_EPOCH when it is set, and no file time is later.
        if let Some(t) = source_date_epoch() {
            p = p.now(t).clamp_mtime(Some(t));
        }
        Ok(p)
    }
}

fn read_secret(spec: &str, repo: &Path) -> Result<SecretKey> {
    let text = if let Some(var) = spec.strip_prefix("env:") {
        std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?
    } else {
        let path = Path::new(spec);
        if let (Ok(k), Ok(r)) = (fs_err::canonicalize(path), fs_err::canonicalize(repo))
            && k.starts_with(&r)
        {
            bail!(
                "refusing to use {}: a secret key inside the repository would be published",
                path.display()
            );
        }
        fs_err::read_to_string(path)?
    };
    SecretKey::from_text(&text).with_context(|| format!("reading secret key {spec}"))
}

/// A public key given as text, or the path of a `.pub` file.
pub(crate) fn read_public(spec: &str) -> Result<PublicKey> {
    let text = if spec.starts_with("ed25519:") {
        spec.to_owned()
    } else {
        fs_err::read_to_string(spec)?
    };
    PublicKey::from_text(&text).with_context(|| format!("reading public key {spec}"))
}

impl BuildOpts {
    /// The progress callback `--progress` asks for.
    fn progress(&self) -> impl Fn(Event) + Sync + use<> {
        let mode = self.progress;
        move |e: Event| match mode {
            crate::progress::Mode::Bar => progress(e),
            crate::progress::Mode::Json => crate::progress::json_line(&e),
            crate::progress::Mode::None => {}
        }
    }
}

fn progress(e: Event) {
    match e {
        Event::Building { job } => eprintln!("building {job}"),
        Event::Restoring { platform, version } => {
            eprintln!("restoring {platform} {version} from its full bundle");
        }
        _ => {}
    }
}

/// Prints what a repository command did: for people, the packages built,
/// every change to the manifest and the manifest's new state; with
/// `--json`, the [`Summary`] (docs/JSON.md).
fn report(s: &Summary, start: Instant, json: bool) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        v["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for b in &s.built {
        if !s.dropped.contains(&b.path) {
            out!("built {}: {}", b.path, Bytes(b.bytes));
        }
    }
    for path in &s.dropped {
        out!("dropped {path}: not clearly smaller than the full bundle");
    }
    for c in &s.changes {
        out!("{c}");
    }
    if let Some(r) = &s.shard_record {
        out!("shard record {r}: run `deltapack repo merge` once every shard is done");
    }
    if let Some(m) = s.manifest {
        if m.written {
            out!(
                "manifest.json: sequence {}, {}, signed, expires {}",
                m.sequence,
                Bytes(m.bytes),
                When(m.expires)
            );
        } else {
            out!(
                "manifest.json: unchanged (sequence {}, expires {})",
                m.sequence,
                When(m.expires)
            );
        }
    }
    out!("done in {:.2}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// `keygen`: writes NAME.key (secret, mode 0600) and NAME.pub.
pub(crate) fn keygen(out: &Path, json: bool) -> Result<()> {
    let key = SecretKey::generate()?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for p in [&secret, &public] {
        if fs_err::symlink_metadata(p).is_ok() {
            bail!("{} exists; refusing to overwrite a key", p.display());
        }
    }
    use std::io::Write;
    // The secret is readable by its owner only; both are written whole,
    // into a directory created if missing.
    crate::write_file(&secret, Some(0o600), |f| {
        f.write_all(key.to_text().as_bytes())
    })?;
    crate::write_file(&public, Some(0o644), |f| {
        writeln!(f, "{}", key.public().to_text())
    })?;
    if json {
        let v = serde_json::json!({
            "secret_key_file": secret,
            "public_key_file": public,
            "public_key": key.public().to_text(),
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    out!(
        "secret key: {} (keep it out of the repository)",
        secret.display()
    );
    out!("public key: {} (embed this in the app)", public.display());
    out!("{}", key.public().to_text());
    Ok(())
}

/// `release`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn release(
    opts: &SignOpts,
    build: &BuildOpts,
    deltas: usize,
    init: bool,
    version: &str,
    channel: &str,
    platforms: &[String],
    notes: Option<&Path>,
    min_delta_version: Option<&str>,
    carry: &[String],
    rollout: u8,
    shard: Option<&str>,
    shard_out: Option<&Path>,
) -> Result<()> {
    let start = Instant::now();
    let shard = shard.map(parse_shard).transpose()?;
    let sharded = shard.is_some_and(|s| s.count > 1);
    let mut p = opts.builder(!sharded, build)?.deltas(deltas).init(init);
    if let Some(dir) = shard_out {
        p = p.shard_output(dir);
    }
    let platforms = platforms
        .iter()
        .map(|s| {
            let (name, path) = s
                .split_once('=')
                .with_context(|| format!("--platform {s:?}: expected NAME=PATH"))?;
            Ok((name.to_owned(), PathBuf::from(path)))
        })
        .collect::<Result<Vec<_>>>()?;
    let notes = match notes {
        Some(p) => fs_err::read_to_string(p)?,
        None => String::new(),
    };
    let r = NewRelease {
        version: parse_version(version)?,
        channel: channel.to_owned(),
        platforms,
        notes,
        min_delta_version: min_delta_version.map(parse_version).transpose()?,
        carry: carry
            .iter()
            .map(|c| {
                let c = c.trim_end_matches('/');
                deltapack_manifest::check_data_path(c)
                    .map(|()| c.to_owned())
                    .map_err(|why| anyhow::anyhow!("--carry {c:?}: {why}"))
            })
            .collect::<Result<_>>()?,
        rollout_percent: rollout,
    };
    let s = p.release(&r, shard, &build.progress())?;
    report(&s, start, opts.json)
}

fn parse_shard(s: &str) -> Result<Shard> {
    let (i, n) = s
        .split_once('/')
        .context("--shard: expected I/N, e.g. 0/4")?;
    Ok(Shard {
        index: i.parse().context("--shard: I is not a number")?,
        count: n.parse().context("--shard: N is not a number")?,
    })
}

fn parse_version(s: &str) -> Result<Version> {
    Version::parse(s).with_context(|| format!("{s:?} is not a semantic version (like 1.4.0)"))
}

/// Below this manifest lifetime (days), `--expires-in-days` warns.
const MIN_SANE_DAYS: u64 = 7;

/// `promote`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn promote(
    opts: &SignOpts,
    build: &BuildOpts,
    deltas: usize,
    version: &str,
    from: Option<&str>,
    to: &str,
    rollout: u8,
    create_channel: bool,
) -> Result<()> {
    let start = Instant::now();
    let p = opts.builder(true, build)?.deltas(deltas);
    // A channel is started on purpose, never by a typo.
    let m = p.load()?;
    if !create_channel && !m.channels.contains_key(to) {
        let known: Vec<&str> = m.channels.keys().map(String::as_str).collect();
        let hint = deltapack_manifest::closest_name(to, known.iter().copied())
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        bail!(
            "channel {to:?} does not exist in {}{hint}; its channels: {}. To start a new channel, pass --create-channel",
            p.root().display(),
            known.join(", ")
        );
    }
    let s = p.promote(
        &parse_version(version)?,
        from,
        to,
        rollout,
        &build.progress(),
    )?;
    report(&s, start, opts.json)
}

/// `rollout`.
pub(crate) fn rollout(
    opts: &SignOpts,
    channel: &str,
    version: Option<&str>,
    change: RolloutChange,
) -> Result<()> {
    let start = Instant::now();
    let v = version.map(parse_version).transpose()?;
    let s = opts.packager(true)?.rollout(channel, v.as_ref(), change)?;
    report(&s, start, opts.json)
}

/// `yank`.
pub(crate) fn yank(
    opts: &SignOpts,
    build: &BuildOpts,
    version: &str,
    reason: &str,
    undo: bool,
) -> Result<()> {
    let start = Instant::now();
    let v = parse_version(version)?;
    let reason = (!undo).then_some(reason);
    let s = opts
        .builder(true, build)?
        .yank(&v, reason, &build.progress())?;
    report(&s, start, opts.json)
}

/// `repo merge`.
pub(crate) fn merge(opts: &SignOpts, init: bool, shards: &[PathBuf]) -> Result<()> {
    let start = Instant::now();
    let s = opts.packager(true)?.init(init).merge(shards)?;
    report(&s, start, opts.json)
}

/// `repo refresh`.
pub(crate) fn refresh(opts: &SignOpts) -> Result<()> {
    let start = Instant::now();
    let s = opts.packager(true)?.refresh()?;
    report(&s, start, opts.json)
}

/// `repo verify`: exit status 1 when anything is wrong.
pub(crate) fn verify(repo: &Path, pubs: &[String], json: bool) -> Result<()> {
    let start = Instant::now();
    if pubs.is_empty() {
        bail!("pass the public key(s) the app trusts: --pub KEY|FILE");
    }
    let keys = pubs
        .iter()
        .map(|p| read_public(p))
        .collect::<Result<Vec<_>>>()?;
    let r = deltapack_release::verify_repo(repo, &keys, None, &|_| {})?;
    if json {
        let problems: Vec<_> = r
            .problems
            .iter()
            .map(|p| serde_json::json!({"path": p.path, "problem": p.defect.to_string()}))
            .collect();
        let v = serde_json::json!({
            "ok": r.ok(),
            "artifacts": r.artifacts,
            "deltas_applied": r.deltas_applied,
            "bytes": r.bytes,
            "problems": problems,
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for p in &r.problems {
            out!("{}: {}", p.path, p.defect);
        }
        out!(
            "{}: {} artifacts ({} bytes), {} deltas applied to their bases, {} problems, {:.2}s",
            if r.ok() { "OK" } else { "FAILED" },
            r.artifacts,
            r.bytes,
            r.deltas_applied,
            r.problems.len(),
            start.elapsed().as_secs_f64()
        );
    }
    if !r.ok() {
        bail!("repository verification failed");
    }
    Ok(())
}

/// `repo show`: the manifest, verified, as pretty JSON.
pub(crate) fn show(repo: &Path, pubs: &[String]) -> Result<()> {
    let keys = pubs
        .iter()
        .map(|p| read_public(p))
        .collect::<Result<Vec<_>>>()?;
    let path = repo.join(deltapack_release::layout::MANIFEST);
    let bytes = fs_err::read(&path)?;
    let v = deltapack_manifest::Verifier::new(&keys)
        .ignore_expiry()
        .verify(&bytes)
        .with_context(|| format!("verifying {}", path.display()))?;
    out!("{}", serde_json::to_string_pretty(v.manifest())?);
    Ok(())
}

/// `serve`: runs in the foreground until killed, logging each request
/// on stderr unless `quiet`.
pub(crate) fn serve(repo: &Path, addr: &str, quiet: bool) -> Result<()> {
    use std::net::ToSocketAddrs;
    // A name with several addresses (localhost: ::1 and 127.0.0.1) is
    // served on the first that binds; IPv4 is tried first, as most URLs
    // typed for it mean.
    let mut order = addr
        .to_socket_addrs()
        .with_context(|| format!("--addr {addr:?}: expected HOST:PORT (like localhost:8080)"))?
        .collect::<Vec<_>>();
    order.sort_by_key(|a| !a.is_ipv4());
    let mut server = deltapack_serve::Server::new(repo);
    if !quiet {
        server = server.on_request(|l| {
            eprintln!(
                "{} {}{} {} {}",
                l.method,
                l.path,
                l.range
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                l.status,
                l.bytes.map_or_else(|| "-".into(), |b| Bytes(b).to_string())
            );
        });
    }
    let mut last = None;
    for a in order {
        match server.clone().bind(a) {
            Ok(running) => {
                out!("serving {} at {}", repo.display(), running.url());
                std::io::Write::flush(&mut std::io::stdout())?;
                running.wait()?;
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("--addr {addr:?}: the name has no address"),
    }
}

/// `SOURCE_DATE_EPOCH`, when it is set to a number of seconds.
pub(crate) fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
