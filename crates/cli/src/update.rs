//! `deltapack update …`: the update client on the command line. Parsing,
//! progress bars and printing only; the work is in `deltapack-client`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use deltapack_client::{Event, Updater, Version};

/// Where the install and its repository are.
#[derive(clap::Args)]
pub(crate) struct ClientOpts {
    /// The install root (holds `current`, `versions/` and `.deltapack/`).
    #[arg(long)]
    install_dir: PathBuf,
    /// The repository: https://…, http://127.0.0.1:… (loopback only), or a directory.
    #[arg(long)]
    repo: String,
    /// Trusted public key (text or .pub file); repeatable.
    #[arg(long = "pub", value_name = "KEY|FILE", required = true)]
    pubs: Vec<String>,
    /// This install's platform, as named in the repository.
    #[arg(long)]
    platform: String,
    /// Channel to follow.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// The `update` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum UpdateCommand {
    /// Is there an update? Prints the version and the bytes of the path.
    Check {
        #[command(flatten)]
        opts: ClientOpts,
        /// Ignore the staged rollout (a person asked).
        #[arg(long)]
        manual: bool,
    },
    /// Download the update's packages (resumable).
    Download {
        #[command(flatten)]
        opts: ClientOpts,
        /// Ignore the staged rollout.
        #[arg(long)]
        manual: bool,
    },
    /// Download, rebuild, verify and switch to the update.
    Install {
        #[command(flatten)]
        opts: ClientOpts,
        /// Ignore the staged rollout.
        #[arg(long)]
        manual: bool,
        /// Install this version (e.g. a downgrade or a first install).
        #[arg(long = "to", value_name = "VERSION")]
        to: Option<String>,
    },
    /// Switch back to the previous version.
    Rollback {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The installed version, versions kept, last check.
    Status {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// What was installed when, and how.
    History {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Record an app launch (run at start-up): a new version that has not
    /// reported healthy within its launches is rolled back.
    Launched {
        #[command(flatten)]
        opts: ClientOpts,
        /// Launches a new version gets before it is rolled back.
        #[arg(long, default_value_t = 3)]
        health_launches: u32,
    },
    /// The running version works: end its probation.
    Healthy {
        #[command(flatten)]
        opts: ClientOpts,
    },
}

fn updater(o: &ClientOpts) -> Result<Updater> {
    builder(o)?.build().map_err(Into::into)
}

fn builder(o: &ClientOpts) -> Result<deltapack_client::UpdaterBuilder> {
    let mut b = Updater::builder()
        .repository(o.repo.clone())
        .platform(o.platform.clone())
        .channel(o.channel.clone())
        .install_dir(&o.install_dir);
    for p in &o.pubs {
        b = b.public_key(crate::release::read_public(p)?);
    }
    Ok(b)
}

/// A progress bar for downloads, messages for the other phases.
struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new() -> Progress {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Progress { bar }
    }

    fn event(&self, e: Event) {
        match e {
            Event::Checking => self.bar.set_message("checking"),
            Event::Downloading { done, total, .. } => {
                self.bar.set_message("downloading");
                self.bar.set_length(total);
                self.bar.set_position(done);
            }
            Event::Applying { to } => self.bar.set_message(format!("rebuilding {to}")),
            Event::Fallback { reason } => {
                self.bar
                    .suspend(|| eprintln!("delta failed ({reason}); using the full bundle"));
            }
            _ => {}
        }
    }
}

/// Runs one `update` subcommand.
pub(crate) fn run(cmd: UpdateCommand) -> Result<()> {
    let start = Instant::now();
    let p = Progress::new();
    let progress = |e: Event| p.event(e);
    match cmd {
        UpdateCommand::Check { opts, manual } => {
            let u = updater(&opts)?;
            let found = u.check_with(manual, &progress)?;
            p.bar.finish_and_clear();
            if opts.json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "update": found }))?
                );
            } else {
                match found {
                    None => out!("up to date"),
                    Some(up) => {
                        let steps: Vec<String> = up
                            .path
                            .steps
                            .iter()
                            .map(|s| match &s.from {
                                Some(f) => format!("delta {f}->{}", s.to),
                                None => format!("full {}", s.to),
                            })
                            .collect();
                        out!(
                            "update {} -> {}: {} bytes via {} (full bundle {} bytes)",
                            up.from
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "nothing".into()),
                            up.version,
                            up.download_bytes,
                            steps.join(", "),
                            up.full_bytes
                        );
                    }
                }
            }
        }
        UpdateCommand::Download { opts, manual } => {
            let u = updater(&opts)?;
            let Some(up) = u.check_with(manual, &progress)? else {
                p.bar.finish_and_clear();
                out!("up to date");
                return Ok(());
            };
            u.download(&up, &progress)?;
            p.bar.finish_and_clear();
            out!("downloaded {} ({} bytes)", up.version, up.download_bytes);
        }
        UpdateCommand::Install { opts, manual, to } => {
            let u = updater(&opts)?;
            let up = match to {
                Some(v) => Some(u.check_version(
                    &Version::parse(&v).with_context(|| format!("{v:?} is not a version"))?,
                )?),
                None => u.check_with(manual, &progress)?,
            };
            let Some(up) = up else {
                p.bar.finish_and_clear();
                out!("up to date");
                return Ok(());
            };
            let d = u.download(&up, &progress)?;
            let s = u.apply(&d, &progress)?;
            u.install(&s, &progress)?;
            p.bar.finish_and_clear();
            let h = u.history()?;
            let last = h.last();
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&last)?);
            } else {
                out!(
                    "installed {} via {} ({} bytes downloaded{}) in {:.2}s",
                    up.version,
                    s.steps().join(", "),
                    last.map_or(0, |e| e.bytes),
                    s.fallback().map(|f| format!("; {f}")).unwrap_or_default(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
        UpdateCommand::Rollback { opts } => {
            let v = updater(&opts)?.rollback()?;
            out!("rolled back to {v}");
        }
        UpdateCommand::Status { opts } => {
            let u = updater(&opts)?;
            // What a killed updater left is finished or undone first (as an
            // app does at start-up); another updater at work is fine.
            let recovered = match u.recover() {
                Ok(r) => r,
                Err(deltapack_client::Error::Busy) => deltapack_client::Recovery::default(),
                Err(e) => return Err(e.into()),
            };
            if !opts.json {
                if let Some(f) = &recovered.finished {
                    out!("finished an interrupted install: {f}");
                }
                if let Some(f) = &recovered.undone {
                    out!("undid an interrupted install: {f}");
                }
            }
            let s = u.status()?;
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                out!(
                    "current: {}",
                    s.current
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "none".into())
                );
                let kept: Vec<String> = s.installed.iter().map(Version::to_string).collect();
                out!("installed: {}", kept.join(", "));
                out!("channel: {}  platform: {}", s.channel, s.platform);
                out!("last manifest sequence: {}", s.last_sequence);
            }
        }
        UpdateCommand::Launched {
            opts,
            health_launches,
        } => {
            let u = builder(&opts)?.health_launches(health_launches).build()?;
            let l = u.launched()?;
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&l)?);
            } else {
                match l {
                    deltapack_client::Launch::Healthy => out!("healthy"),
                    deltapack_client::Launch::OnProbation { launches } => {
                        out!("on probation: launch {launches} of {health_launches}");
                    }
                    deltapack_client::Launch::RolledBack { from, to } => {
                        out!("{from} never reported healthy: rolled back to {to}");
                    }
                }
            }
        }
        UpdateCommand::Healthy { opts } => {
            updater(&opts)?.mark_healthy()?;
            out!("marked healthy");
        }
        UpdateCommand::History { opts } => {
            let h = updater(&opts)?.history()?;
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                for e in h {
                    out!(
                        "{} {:8} {} -> {} {} {} bytes {}{}",
                        e.time,
                        e.action,
                        e.from.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                        e.to,
                        e.result,
                        e.bytes,
                        e.path.join(", "),
                        e.note.map(|n| format!(" ({n})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
