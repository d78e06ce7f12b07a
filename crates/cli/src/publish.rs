//! `publish` and `repo pull`: argument handling and printing; the work is
//! in `deltapack-publish`.

use std::path::Path;

use anyhow::Result;
use deltapack_publish::{Event, PullOptions, PushOptions, Remote};

use crate::progress::Mode;
use crate::units::Bytes;

fn keys(pubs: &[String]) -> Result<Vec<deltapack_manifest::PublicKey>> {
    pubs.iter()
        .map(|p| crate::release::read_public(p))
        .collect()
}

fn progress(mode: Mode) -> impl Fn(Event) {
    move |e: Event| match mode {
        Mode::Json => crate::progress::json_line(&e),
        Mode::None => {}
        Mode::Bar => match e {
            Event::Uploading { path, bytes } => eprintln!("uploading {path} ({})", Bytes(bytes)),
            Event::Downloading { path, bytes } => {
                eprintln!("downloading {path} ({})", Bytes(bytes));
            }
            Event::Pruning { path } => eprintln!("removing {path}"),
            _ => {}
        },
    }
}

/// `publish REPO --to URL`.
pub(crate) fn push(
    repo: &Path,
    to: &str,
    pubs: &[String],
    opts: &PushOptions,
    json: bool,
    mode: Mode,
) -> Result<()> {
    let remote = Remote::parse(to)?;
    let p = remote.push(repo, &keys(pubs)?, opts, &progress(mode))?;
    if json {
        out!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let verb = if p.dry_run {
        "would upload"
    } else {
        "uploaded"
    };
    for u in &p.uploaded {
        out!("{verb} {} ({})", u.path, Bytes(u.bytes));
    }
    for r in &p.pruned {
        out!("{} {r}", if p.dry_run { "would remove" } else { "removed" });
    }
    let total: u64 = p.uploaded.iter().map(|u| u.bytes).sum();
    let state = match p.previous_sequence {
        Some(s) if s == p.sequence => format!("already at manifest sequence {s}"),
        Some(s) => format!("manifest sequence {s} -> {}", p.sequence),
        None => format!("manifest sequence {} (new repository)", p.sequence),
    };
    out!(
        "{}: {state}; {} files ({}) {verb}, {} unchanged{}",
        p.remote,
        p.uploaded.len(),
        Bytes(total),
        p.unchanged,
        if p.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `repo pull URL --repo DIR`.
pub(crate) fn pull(
    from: &str,
    repo: &Path,
    pubs: &[String],
    bundles_only: bool,
    json: bool,
) -> Result<()> {
    let remote = Remote::parse(from)?;
    let p = remote.pull(
        repo,
        &keys(pubs)?,
        &PullOptions { bundles_only },
        &progress(Mode::Bar),
    )?;
    if json {
        out!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let total: u64 = p.downloaded.iter().map(|u| u.bytes).sum();
    out!(
        "{} -> {}: manifest sequence {}; {} files ({}) downloaded, {} unchanged",
        p.remote,
        repo.display(),
        p.sequence,
        p.downloaded.len(),
        Bytes(total),
        p.unchanged
    );
    Ok(())
}
