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

mod inspect;
mod progress;

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
        } => {
            let (old, patch) = match args.as_slice() {
                [patch] => (None, patch),
                [old, patch] => (Some(old.as_path()), patch),
                _ => bail!("expected OLD PATCH or PATCH"),
            };
            apply(old, patch, &output, !no_sync)
        }
        Command::Inspect { patch, json } => inspect::inspect(&patch, json),
        Command::Verify { patch, base, json } => verify(&patch, base.as_deref(), json),
    }
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
        .to_version(o.to_version.clone());
    if let Some(t) = o.threads {
        d = d.threads(t);
    }
    let bar = progress::Bar::new();
    let pkg = d
        .diff(old, new, &|e| bar.diff_event(e))
        .with_context(|| format!("diffing {}", new.display()))?;
    bar.finish();
    let mut f = fs_err::File::create(output)?;
    pkg.write_to(&mut f)
        .with_context(|| format!("writing {}", output.display()))?;
    f.sync_all()?;
    let new_bytes = pkg.header.target.bytes;
    out!(
        "{}: {} bytes ({:.2}% of the {} bytes of {}), header {} bytes, {} entries, {:.2}s",
        output.display(),
        pkg.len(),
        100.0 * pkg.len() as f64 / new_bytes.max(1) as f64,
        new_bytes,
        new.display(),
        pkg.header_len(),
        pkg.header.entries.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn apply(old: Option<&Path>, patch: &Path, output: &Path, sync: bool) -> Result<()> {
    let start = Instant::now();
    let package = open_package(patch)?;
    let bar = progress::Bar::new();
    let report = deltapack_apply::Applier::new()
        .sync(sync)
        .apply(old, package, output, &|e| bar.apply_event(e))
        .with_context(|| format!("applying {}", patch.display()))?;
    bar.finish();
    let id = report.target.unwrap_or(report.header.target);
    out!(
        "{}: rebuilt {} files ({} bytes), tree of {} files / {} bytes verified, digest {}, {:.2}s",
        output.display(),
        report.files,
        report.bytes,
        id.files,
        id.bytes,
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
