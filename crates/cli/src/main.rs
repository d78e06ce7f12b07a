//! `deltapack`: binary delta packages for software updates.
//!
//! A thin command-line layer over the deltapack crates: it parses
//! arguments, renders progress on stderr, and prints results on stdout.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The binary is the one place that prints.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

/// `println!` that reports a closed stdout as an error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod config;
mod inspect;
mod progress;
mod publish;
mod release;
mod units;
mod update;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Binary delta packages for software updates.
#[derive(Parser)]
#[command(name = "deltapack", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a package that rebuilds NEW from OLD (files or directories).
    Diff {
        /// The old version (file or directory).
        old: PathBuf,
        /// The new version (same kind as OLD).
        new: PathBuf,
        /// Where to write the package.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        opts: DiffOpts,
    },
    /// Make a full package (no base) of NEW.
    Pack {
        /// The version to pack (file or directory).
        new: PathBuf,
        /// Where to write the package.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        opts: DiffOpts,
    },
    /// Rebuild the target of a package: `apply OLD PATCH -o NEW`, or
    /// `apply PATCH -o NEW` for a full package. PATCH `-` reads stdin.
    Apply {
        /// OLD and PATCH, or just PATCH for a full package.
        #[arg(num_args = 1..=2, required = true, value_names = ["OLD", "PATCH"])]
        args: Vec<PathBuf>,
        /// Where to create the new version (must not exist).
        #[arg(short, long)]
        output: PathBuf,
        /// Skip fsync before the final rename (faster, not crash-safe).
        #[arg(long)]
        no_sync: bool,
        /// Machine-readable output (docs/JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Show what a package contains.
    Inspect {
        /// The package (`-` for stdin).
        patch: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check a package's integrity, and with --base that it applies.
    Verify {
        /// The package (`-` for stdin).
        patch: PathBuf,
        /// The old version to check the package against.
        #[arg(long)]
        base: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write a new ed25519 signing key pair: NAME.key (secret) and NAME.pub.
    Keygen {
        /// Path without extension (e.g. `release` gives release.key and release.pub).
        #[arg(short, long, default_value = "release")]
        output: PathBuf,
        /// Machine-readable output (docs/JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Publish a version into an update repository: full bundles, deltas from
    /// the channel's last versions, and a signed manifest.
    #[command(disable_version_flag = true)]
    Release {
        #[command(flatten)]
        opts: release::SignOpts,
        #[command(flatten)]
        build: release::BuildOpts,
        /// Earlier versions of the channel that get a delta.
        #[arg(long, default_value_t = deltapack_release::DEFAULT_DELTAS)]
        deltas: usize,
        /// Start a new repository in `--repo` (it must not hold one yet).
        /// Without it, a directory with no manifest is an error, so a wrong
        /// path never starts a second repository.
        #[arg(long)]
        init: bool,
        /// The version (semver).
        #[arg(long = "version", id = "release_version", value_name = "VERSION")]
        version: String,
        /// The channel.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// NAME=PATH: a platform's build output (directory, file, .tar.gz,
        /// .tar.zst or .zip). Repeat for each platform.
        #[arg(long = "platform", required = true, value_name = "NAME=PATH")]
        platforms: Vec<String>,
        /// Release notes file (Markdown).
        #[arg(long)]
        notes: Option<PathBuf>,
        /// Installs older than this get the full bundle, not a delta.
        #[arg(long)]
        min_delta_version: Option<String>,
        /// App data inside the install that carries over into this version
        /// when clients update (a file or directory, relative to the
        /// install: `instance`, `logs`). Repeat for each path.
        #[arg(long = "carry", value_name = "PATH")]
        carry: Vec<String>,
        /// Initial staged-rollout percentage.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
        rollout: u8,
        /// Build only shard I of N of the packages (for CI matrices); join
        /// the shards with `repo merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// With --shard: write the shard's packages and record here instead
        /// of into the repository, so a CI job uploads only what it built.
        #[arg(long, requires = "shard", value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Offer an existing release on another channel (e.g. beta to stable)
    /// without rebuilding it.
    Promote {
        #[command(flatten)]
        opts: release::SignOpts,
        #[command(flatten)]
        build: release::BuildOpts,
        /// Earlier versions of the channel that get a delta.
        #[arg(long, default_value_t = deltapack_release::DEFAULT_DELTAS)]
        deltas: usize,
        /// The version.
        #[arg(id = "release_version", value_name = "VERSION")]
        version: String,
        /// The channel it must already be on.
        #[arg(long)]
        from: Option<String>,
        /// The channel to offer it on.
        #[arg(long)]
        to: String,
        /// Staged-rollout percentage on the new channel.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
        rollout: u8,
        /// Start `--to` as a new channel (without it, a channel the
        /// repository does not have is an error).
        #[arg(long)]
        create_channel: bool,
    },
    /// Raise, lower, pause or resume a release's staged rollout.
    #[command(disable_version_flag = true)]
    Rollout {
        #[command(flatten)]
        opts: release::SignOpts,
        /// The channel.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// The version (default: the channel's newest).
        #[arg(long = "version", id = "release_version", value_name = "VERSION")]
        version: Option<String>,
        /// New percentage (0-100).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100),
              required_unless_present_any = ["pause", "resume"])]
        percent: Option<u8>,
        /// Stop offering it to installs not on it yet.
        #[arg(long, conflicts_with_all = ["percent", "resume"])]
        pause: bool,
        /// Offer it again at its percentage.
        #[arg(long, conflicts_with = "percent")]
        resume: bool,
    },
    /// Withdraw a bad release; installs on it are offered the newest good one.
    Yank {
        #[command(flatten)]
        opts: release::SignOpts,
        #[command(flatten)]
        build: release::BuildOpts,
        /// The version.
        #[arg(id = "release_version", value_name = "VERSION")]
        version: String,
        /// Why (shown to operators).
        #[arg(long, default_value = "")]
        reason: String,
        /// Restore a yanked release.
        #[arg(long)]
        undo: bool,
    },
    /// Copy a repository directory to where apps fetch it: artifacts
    /// first, the manifest last; only what is missing or different.
    Publish {
        /// The repository directory.
        repo: PathBuf,
        /// Where: s3://bucket/prefix (any S3-compatible store; AWS_*
        /// variables and ~/.aws files), gs://bucket/prefix,
        /// az://container/prefix, or file:///path (or a directory path).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Public key (text or .pub file) the installs trust; the manifest
        /// must verify under it.
        #[arg(long = "pub", value_name = "KEY|FILE", required = true)]
        pubs: Vec<String>,
        /// Also remove objects neither the new nor the published manifest
        /// names.
        #[arg(long)]
        prune: bool,
        /// Say what would be uploaded and removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Read and hash every remote object of the right size instead of
        /// trusting the BLAKE3 recorded in its metadata (to repair a
        /// bucket something else wrote into).
        #[arg(long)]
        rehash: bool,
        /// Machine-readable output (docs/JSON.md).
        #[arg(long)]
        json: bool,
        /// How progress is shown on stderr: messages, JSON lines, or nothing.
        #[arg(long, value_enum, default_value_t = progress::Mode::Bar)]
        progress: progress::Mode,
    },
    /// Repository maintenance.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Keep an installed app current: check, download, install, roll back.
    #[command(subcommand)]
    Update(update::UpdateCommand),
    /// Read and change the update client's settings (TOML).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Check the install, lock, journal, disk, key and repository, and say
    /// what to do about each problem.
    Doctor {
        #[command(flatten)]
        opts: update::ClientOpts,
        /// First repair what can be repaired safely: rebuild an unreadable
        /// state file from its copies, the history and the clock (the
        /// replay protection is never lowered).
        #[arg(long)]
        fix: bool,
    },
    /// Serve a directory over HTTP (with Range support) for testing and
    /// small self-hosting.
    Serve {
        /// The repository directory.
        repo: PathBuf,
        /// Address to listen on: HOST:PORT, the host a name
        /// (`localhost:8080`) or an IP address; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Do not log requests (by default each is one line on stderr:
        /// method, path, range, status, bytes).
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Check every artifact, the signature, and that every delta applies.
    Verify {
        /// The repository directory.
        repo: PathBuf,
        /// Trusted public key (text or .pub file); repeatable.
        #[arg(long = "pub", value_name = "KEY|FILE")]
        pubs: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Join shard outputs (directories) into the repository and sign.
    Merge {
        #[command(flatten)]
        opts: release::SignOpts,
        /// The shards are the first release of a new repository (as
        /// `release --init`).
        #[arg(long)]
        init: bool,
        /// Shard output directories to copy in first.
        shards: Vec<PathBuf>,
    },
    /// Re-sign the manifest with a new expiry (run on a schedule).
    Refresh {
        #[command(flatten)]
        opts: release::SignOpts,
    },
    /// Fetch a published repository into a directory (to release the next
    /// version into it without keeping state between CI runs).
    Pull {
        /// Where it is published: s3://bucket/prefix, gs://bucket/prefix,
        /// az://container/prefix, or file:///path (or a directory path).
        from: String,
        /// The directory to fetch into (created if missing).
        #[arg(long)]
        repo: PathBuf,
        /// Public key (text or .pub file) the installs trust.
        #[arg(long = "pub", value_name = "KEY|FILE", required = true)]
        pubs: Vec<String>,
        /// Only the manifest and the full bundles: all `release` needs.
        #[arg(long)]
        bundles_only: bool,
        /// Machine-readable output (docs/JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Print the verified manifest as JSON.
    Show {
        /// The repository directory.
        repo: PathBuf,
        /// Trusted public key (text or .pub file); repeatable.
        #[arg(long = "pub", value_name = "KEY|FILE", required = true)]
        pubs: Vec<String>,
    },
}

#[derive(clap::Args)]
struct DiffOpts {
    /// Worker threads (default: all cores). Output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u8).range(1..=9))]
    level: u8,
    /// Platform name to record (e.g. linux-x86_64).
    #[arg(long, default_value = "")]
    platform: String,
    /// Version of OLD to record.
    #[arg(long, default_value = "")]
    from_version: String,
    /// Version of NEW to record.
    #[arg(long, default_value = "")]
    to_version: String,
    /// Generic codecs only: no executable-aware `bsdiff-exe` (for readers
    /// older than it, or to compare).
    #[arg(long)]
    no_exe: bool,
    /// Record every file's modification time (clamped to
    /// SOURCE_DATE_EPOCH when it is set); readers from before that field
    /// of the format cannot read the package.
    #[arg(long)]
    mtimes: bool,
    /// Machine-readable output (docs/JSON.md).
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // A reader that stopped listening (`deltapack inspect x | head`) is
        // not an error.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("deltapack: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Diff {
            old,
            new,
            output,
            opts,
        } => diff(Some(&old), &new, &output, &opts),
        Command::Pack { new, output, opts } => diff(None, &new, &output, &opts),
        Command::Apply {
            args,
            output,
            no_sync,
            json,
        } => {
            let (old, patch) = match args.as_slice() {
                [patch] => (None, patch),
                [old, patch] => (Some(old.as_path()), patch),
                _ => bail!("expected OLD PATCH or PATCH"),
            };
            apply(old, patch, &output, !no_sync, json)
        }
        Command::Inspect { patch, json } => inspect::inspect(&patch, json),
        Command::Verify { patch, base, json } => verify(&patch, base.as_deref(), json),
        Command::Keygen { output, json } => release::keygen(&output, json),
        Command::Release {
            opts,
            build,
            deltas,
            init,
            version,
            channel,
            platforms,
            notes,
            min_delta_version,
            carry,
            rollout,
            shard,
            out,
        } => release::release(
            &opts,
            &build,
            deltas,
            init,
            &version,
            &channel,
            &platforms,
            notes.as_deref(),
            min_delta_version.as_deref(),
            &carry,
            rollout,
            shard.as_deref(),
            out.as_deref(),
        ),
        Command::Promote {
            opts,
            build,
            deltas,
            version,
            from,
            to,
            rollout,
            create_channel,
        } => release::promote(
            &opts,
            &build,
            deltas,
            &version,
            from.as_deref(),
            &to,
            rollout,
            create_channel,
        ),
        Command::Rollout {
            opts,
            channel,
            version,
            percent,
            pause,
            resume,
        } => {
            let change = match (percent, pause, resume) {
                (Some(p), _, _) => deltapack_release::RolloutChange::Percent(p),
                (None, true, _) => deltapack_release::RolloutChange::Pause,
                _ => deltapack_release::RolloutChange::Resume,
            };
            release::rollout(&opts, &channel, version.as_deref(), change)
        }
        Command::Yank {
            opts,
            build,
            version,
            reason,
            undo,
        } => release::yank(&opts, &build, &version, &reason, undo),
        Command::Repo(RepoCommand::Verify { repo, pubs, json }) => {
            release::verify(&repo, &pubs, json)
        }
        Command::Repo(RepoCommand::Merge { opts, init, shards }) => {
            release::merge(&opts, init, &shards)
        }
        Command::Repo(RepoCommand::Refresh { opts }) => release::refresh(&opts),
        Command::Repo(RepoCommand::Show { repo, pubs }) => release::show(&repo, &pubs),
        Command::Publish {
            repo,
            to,
            pubs,
            prune,
            dry_run,
            rehash,
            json,
            progress,
        } => publish::push(
            &repo,
            &to,
            &pubs,
            &deltapack_publish::PushOptions {
                prune,
                dry_run,
                rehash,
                now: None,
            },
            json,
            progress,
        ),
        Command::Repo(RepoCommand::Pull {
            from,
            repo,
            pubs,
            bundles_only,
            json,
        }) => publish::pull(&from, &repo, &pubs, bundles_only, json),
        Command::Serve { repo, addr, quiet } => release::serve(&repo, &addr, quiet),
        Command::Update(cmd) => update::run(cmd),
        Command::Config(cmd) => config::run(cmd),
        Command::Doctor { opts, fix } => update::doctor(opts, fix),
    }
}

/// Replaces the file at `path` atomically and durably with what `write`
/// writes (through `deltapack-fs`; its directory is created if missing).
pub(crate) fn write_file(
    path: &Path,
    mode: Option<u32>,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let root = deltapack_fs::Root::new(dir);
    root.ensure()?;
    root.write_atomic_with(name, mode, write)?;
    Ok(())
}

/// Opens a package path, `-` meaning stdin.
pub(crate) fn open_package(p: &Path) -> Result<Box<dyn Read>> {
    if p == Path::new("-") {
        Ok(Box::new(std::io::stdin().lock()))
    } else {
        Ok(Box::new(fs_err::File::open(p)?))
    }
}

fn diff(old: Option<&Path>, new: &Path, output: &Path, o: &DiffOpts) -> Result<()> {
    let start = Instant::now();
    let mut d = deltapack_diff::Differ::new()
        .level(o.level)
        .platform(o.platform.clone())
        .from_version(o.from_version.clone())
        .to_version(o.to_version.clone())
        .executables(!o.no_exe)
        .mtimes(o.mtimes)
        .clamp_mtime(release::source_date_epoch());
    if let Some(t) = o.threads {
        d = d.threads(t);
    }
    let bar = progress::Bar::new();
    let pkg = d
        .diff(old, new, &|e| bar.diff_event(e))
        .with_context(|| format!("diffing {}", new.display()))?;
    bar.finish();
    // Atomically: a package is never seen half-written under its name.
    write_file(output, Some(0o644), |f| pkg.write_to(f).map(drop))
        .with_context(|| format!("writing {}", output.display()))?;
    let new_bytes = pkg.header.target.bytes;
    if o.json {
        let v = serde_json::json!({
            "output": output,
            "bytes": pkg.len(),
            "target_bytes": new_bytes,
            "header_bytes": pkg.header_len(),
            "entries": pkg.header.entries.len(),
            "seconds": start.elapsed().as_secs_f64(),
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    out!(
        "{}: {} ({} bytes, {:.2}% of the {} of {}), header {} bytes, {} entries, {:.2}s",
        output.display(),
        units::Bytes(pkg.len()),
        pkg.len(),
        100.0 * pkg.len() as f64 / new_bytes.max(1) as f64,
        units::Bytes(new_bytes),
        new.display(),
        pkg.header_len(),
        pkg.header.entries.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn apply(old: Option<&Path>, patch: &Path, output: &Path, sync: bool, json: bool) -> Result<()> {
    let start = Instant::now();
    let package = open_package(patch)?;
    let bar = progress::Bar::new();
    let report = deltapack_apply::Applier::new()
        .sync(sync)
        .apply(old, package, output, &|e| bar.apply_event(e))
        .with_context(|| format!("applying {}", patch.display()))?;
    bar.finish();
    let id = report.target.unwrap_or(report.header.target);
    if json {
        let v = serde_json::json!({
            "output": output,
            "files_rebuilt": report.files,
            "bytes_rebuilt": report.bytes,
            "target": { "files": id.files, "bytes": id.bytes, "digest": deltapack_tree::hex(&id.digest) },
            "seconds": start.elapsed().as_secs_f64(),
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    out!(
        "{}: rebuilt {} files ({}), tree of {} files / {} verified, digest {}, {:.2}s",
        output.display(),
        report.files,
        units::Bytes(report.bytes),
        id.files,
        units::Bytes(id.bytes),
        deltapack_tree::hex(&id.digest),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn verify(patch: &Path, base: Option<&Path>, json: bool) -> Result<()> {
    let package = open_package(patch)?;
    let bar = progress::Bar::new();
    let report = deltapack_apply::Applier::new()
        .verify(package, base, &|e| bar.apply_event(e))
        .with_context(|| format!("verifying {}", patch.display()))?;
    bar.finish();
    let what = if report.full {
        if report.base_verified {
            "applies to the base; every block and the target digest verified"
        } else {
            "full package; every block and the target digest verified"
        }
    } else {
        "package intact (header, payload hash, streams); pass --base to check that it applies"
    };
    if json {
        let v = serde_json::json!({
            "ok": true,
            "full": report.full,
            "base_verified": report.base_verified,
            "target_digest": deltapack_tree::hex(&report.header.target.digest),
            "files_rebuilt": report.files,
            "bytes_rebuilt": report.bytes,
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!("{}: OK: {what}", patch.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
