//! `deltapack update …`: the update client on the command line. Parsing,
//! progress bars and printing only; the work is in `deltapack-client`.

use std::path::PathBuf;
use std::time::Instant;

use crate::units::{Bytes, Utc, When};
use anyhow::{Context, Result, bail};
use deltapack_client::{Config, Event, Updater, Version};

/// Where the install and its repository are: flags override the config
/// file (`deltapack config`).
#[derive(clap::Args)]
pub(crate) struct ClientOpts {
    #[command(flatten)]
    file: crate::config::ConfigFile,
    /// A versions install: the root holding `current`, `versions/` and
    /// `.deltapack/`.
    #[arg(long, conflicts_with_all = ["executable", "bundle"])]
    install_dir: Option<PathBuf>,
    /// An executable install: this one file is replaced in place (a CLI
    /// that updates itself).
    #[arg(long, value_name = "FILE", conflicts_with = "bundle")]
    executable: Option<PathBuf>,
    /// A bundle install: this directory at a fixed path is swapped whole
    /// (`/opt/foo`, `Foo.app`).
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Where the updater keeps its state (default: `<install-dir>/.deltapack`,
    /// or for an executable or a bundle the platform's local data dir).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The repository: https://…, http://127.0.0.1:… (loopback only), or a directory.
    #[arg(long)]
    repo: Option<String>,
    /// Trusted public key (text or .pub file); repeatable.
    #[arg(long = "pub", value_name = "KEY|FILE")]
    pubs: Vec<String>,
    /// This install's platform, as named in the repository.
    #[arg(long)]
    platform: Option<String>,
    /// Channel to follow.
    #[arg(long)]
    channel: Option<String>,
    /// Machine-readable output (docs/JSON.md).
    #[arg(long)]
    json: bool,
    /// How progress is shown on stderr: a bar on a terminal, JSON lines
    /// (one event per line, docs/JSON.md), or nothing.
    #[arg(long, value_enum, default_value_t = crate::progress::Mode::Bar)]
    progress: crate::progress::Mode,
}

impl ClientOpts {
    fn config_path(&self) -> Result<PathBuf> {
        self.file.path()
    }

    /// The config file with the flags applied.
    fn settings(&self) -> Result<Config> {
        let mut c = self.file.load()?;
        // A location given as a flag replaces the configured one.
        if self.install_dir.is_some() || self.executable.is_some() || self.bundle.is_some() {
            c.install_dir = self.install_dir.clone().unwrap_or_default();
            c.executable = self.executable.clone().unwrap_or_default();
            c.bundle = self.bundle.clone().unwrap_or_default();
        }
        if let Some(d) = &self.state_dir {
            c.state_dir = d.clone();
        }
        if let Some(r) = &self.repo {
            c.repository = r.clone();
        }
        if !self.pubs.is_empty() {
            c.public_keys = self
                .pubs
                .iter()
                .map(|p| crate::release::read_public(p).map(|k| k.to_text()))
                .collect::<Result<_>>()?;
        }
        if let Some(p) = &self.platform {
            c.platform = p.clone();
        }
        if let Some(ch) = &self.channel {
            c.channel = ch.clone();
        }
        Ok(c)
    }
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
        /// Launches a new version gets before it is rolled back (default:
        /// the config's health_launches, 3).
        #[arg(long)]
        health_launches: Option<u32>,
    },
    /// One background tick (for a timer): check if the interval has
    /// passed, then download and install as the config's auto_download and
    /// auto_install allow.
    Scheduled {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The running version works: end its probation.
    Healthy {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Offer a refused version again (one rolled back from, or whose full
    /// bundle kept failing to install); `status` lists them.
    Allow {
        /// The version.
        #[arg(id = "allowed_version", value_name = "VERSION")]
        version: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Follow another channel (saved in the config) and show what it
    /// offers; leaving for an older version needs --allow-downgrade.
    Channel {
        /// The channel (e.g. stable, beta, canary).
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
        /// Install the new channel's newest version now, even if older.
        #[arg(long)]
        allow_downgrade: bool,
    },
}

impl UpdateCommand {
    fn opts(&self) -> &ClientOpts {
        match self {
            UpdateCommand::Check { opts, .. }
            | UpdateCommand::Download { opts, .. }
            | UpdateCommand::Install { opts, .. }
            | UpdateCommand::Rollback { opts }
            | UpdateCommand::Status { opts }
            | UpdateCommand::History { opts }
            | UpdateCommand::Launched { opts, .. }
            | UpdateCommand::Scheduled { opts }
            | UpdateCommand::Healthy { opts }
            | UpdateCommand::Allow { opts, .. }
            | UpdateCommand::Channel { opts, .. } => opts,
        }
    }
}

fn updater(o: &ClientOpts) -> Result<Updater> {
    builder(o)?.build().map_err(Into::into)
}

/// An updater for commands that only read or change the install: the
/// repository, key and platform may be missing.
fn local_updater(o: &ClientOpts) -> Result<Updater> {
    let c = o.settings()?;
    if [&c.install_dir, &c.executable, &c.bundle]
        .iter()
        .all(|p| p.as_os_str().is_empty())
    {
        bail!(
            "set the install location with --install-dir, --executable or --bundle \
             (or `deltapack config set install_dir|executable|bundle`)"
        );
    }
    Ok(c.local_builder()?.build_local()?)
}

fn builder(o: &ClientOpts) -> Result<deltapack_client::UpdaterBuilder> {
    let c = o.settings()?;
    // Every missing setting is named at once, with its flag.
    let mut missing = Vec::new();
    if c.repository.is_empty() {
        missing.push("repository (--repo)");
    }
    if c.public_keys.is_empty() {
        missing.push("public_keys (--pub)");
    }
    if c.platform.is_empty() {
        missing.push("platform (--platform)");
    }
    if [&c.install_dir, &c.executable, &c.bundle]
        .iter()
        .all(|p| p.as_os_str().is_empty())
    {
        missing.push("install_dir, executable or bundle (--install-dir, --executable, --bundle)");
    }
    if !missing.is_empty() {
        bail!(
            "missing settings: {}; pass the flags or set them once with `deltapack config set KEY VALUE` ({})",
            missing.join("; "),
            o.config_path()?.display()
        );
    }
    Ok(c.builder()?)
}

/// A progress bar for downloads and messages for the other phases, or
/// the events as JSON lines, or nothing.
struct Progress {
    bar: indicatif::ProgressBar,
    mode: crate::progress::Mode,
}

impl Progress {
    fn new(mode: crate::progress::Mode) -> Progress {
        let target = match mode {
            crate::progress::Mode::Bar => indicatif::ProgressDrawTarget::stderr(),
            _ => indicatif::ProgressDrawTarget::hidden(),
        };
        let bar = indicatif::ProgressBar::with_draw_target(None, target);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Progress { bar, mode }
    }

    fn event(&self, e: Event) {
        match self.mode {
            crate::progress::Mode::Bar => {}
            crate::progress::Mode::Json => return crate::progress::json_line(&e),
            crate::progress::Mode::None => return,
        }
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

/// "up to date", and what holds a newer version back, with the command
/// that changes it.
fn up_to_date(held: Option<&deltapack_client::Held>) -> String {
    match held {
        None => "up to date".into(),
        Some(deltapack_client::Held::Rollout {
            version,
            percent,
            paused,
        }) => format!(
            "up to date for this install: {version} is {} (this install is not in it yet); `deltapack update install --manual` installs it now",
            if *paused {
                format!("rolled out to {percent}% of installs, paused")
            } else {
                format!("rolled out to {percent}% of installs")
            }
        ),
        Some(deltapack_client::Held::Refused {
            version,
            reason,
            clear_with,
        }) => format!(
            "up to date for this install: {version} is refused here ({reason}); `{clear_with}` offers it again"
        ),
    }
}

/// Prints a JSON document on stdout.
fn json(v: &impl serde::Serialize) -> Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs one `update` subcommand.
pub(crate) fn run(cmd: UpdateCommand) -> Result<()> {
    let start = Instant::now();
    let p = Progress::new(cmd.opts().progress);
    let progress = |e: Event| p.event(e);
    match cmd {
        UpdateCommand::Check { opts, manual } => {
            let u = updater(&opts)?;
            let found = u.check_explained(manual, &progress)?;
            p.bar.finish_and_clear();
            if opts.json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "update": found.update, "held": found.held })
                    )?
                );
            } else {
                match found.update {
                    None => out!("{}", up_to_date(found.held.as_ref())),
                    Some(up) => {
                        let steps: Vec<String> =
                            up.path.steps.iter().map(ToString::to_string).collect();
                        out!(
                            "update {} -> {}: {} via {} (full bundle {})",
                            up.from
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "nothing".into()),
                            up.version,
                            Bytes(up.download_bytes),
                            steps.join(", "),
                            Bytes(up.full_bytes)
                        );
                        if !up.notes.trim().is_empty() {
                            out!(
                                "\nrelease notes for {}:\n{}",
                                up.version,
                                up.notes.trim_end()
                            );
                        }
                    }
                }
            }
        }
        UpdateCommand::Download { opts, manual } => {
            let u = updater(&opts)?;
            let found = u.check_explained(manual, &progress)?;
            let Some(up) = found.update else {
                p.bar.finish_and_clear();
                if opts.json {
                    json(&serde_json::json!({ "downloaded": null, "held": found.held }))?;
                } else {
                    out!("{}", up_to_date(found.held.as_ref()));
                }
                return Ok(());
            };
            u.download(&up, &progress)?;
            p.bar.finish_and_clear();
            if opts.json {
                json(&serde_json::json!({ "downloaded": up, "held": null }))?;
            } else {
                out!("downloaded {} ({})", up.version, Bytes(up.download_bytes));
            }
        }
        UpdateCommand::Install { opts, manual, to } => {
            let u = updater(&opts)?;
            let mut held = None;
            let up = match to {
                Some(v) => Some(u.check_version(
                    &Version::parse(&v).with_context(|| format!("{v:?} is not a version"))?,
                )?),
                None => match u.check_explained(manual, &progress) {
                    Ok(found) => {
                        held = found.held;
                        found.update
                    }
                    // No network: what was downloaded, against the
                    // manifest accepted then.
                    Err(e) if e.is_transport() => match u.check_offline(manual) {
                        Ok(Some(up)) => {
                            p.bar.suspend(|| {
                                eprintln!(
                                    "the repository cannot be reached ({}); installing the downloaded {}",
                                    e.full_message(),
                                    up.version
                                );
                            });
                            Some(up)
                        }
                        _ => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                },
            };
            let Some(up) = up else {
                p.bar.finish_and_clear();
                if opts.json {
                    json(&serde_json::json!({ "installed": null, "held": held }))?;
                } else {
                    out!("{}", up_to_date(held.as_ref()));
                }
                return Ok(());
            };
            let s = u.download_and_apply(&up, &progress)?;
            u.install(&s, &progress)?;
            p.bar.finish_and_clear();
            let h = u.history()?;
            let last = h.iter().rev().find(|e| e.action.is_switch());
            if opts.json {
                json(&serde_json::json!({ "installed": last, "held": null }))?;
            } else {
                out!(
                    "installed {} via {} ({} downloaded{}) in {:.2}s",
                    up.version,
                    s.steps().join(", "),
                    Bytes(last.map_or(0, |e| e.bytes)),
                    s.fallback().map(|f| format!("; {f}")).unwrap_or_default(),
                    start.elapsed().as_secs_f64()
                );
                if let Some(e) = last.filter(|e| e.carried > 0) {
                    out!("carried {} data files into {}", e.carried, e.to);
                }
                if let Some((e, unknown)) = last.and_then(|e| e.unknown.as_ref().map(|u| (e, u))) {
                    let from = e.from.as_ref().map(|v| v.to_string()).unwrap_or_default();
                    out!(
                        "left in {from}: {unknown} (removed with {from} when it is pruned; `deltapack release --carry PATH` carries app data)"
                    );
                }
            }
        }
        UpdateCommand::Rollback { opts } => {
            let v = local_updater(&opts)?.rollback()?;
            if opts.json {
                json(&serde_json::json!({ "rolled_back_to": v }))?;
            } else {
                out!("rolled back to {v}");
            }
        }
        UpdateCommand::Status { opts } => {
            // With the keys set, the manifest kept from the last check can
            // be read (what it offered); without them, the local view.
            let u = match updater(&opts) {
                Ok(u) => u,
                Err(_) => local_updater(&opts)?,
            };
            // What a killed updater left is finished or undone first (as an
            // app does at start-up); another updater at work is fine.
            let recovered = match u.recover() {
                Ok(r) => r,
                Err(
                    deltapack_client::Error::Busy { .. } | deltapack_client::Error::ReadOnly { .. },
                ) => deltapack_client::Recovery::default(),
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
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "none".into())
                );
                let kept: Vec<String> = s.installed.iter().map(Version::to_string).collect();
                out!("installed: {}", kept.join(", "));
                out!("runs from: {}", s.runs_from.display());
                out!("channel: {}  platform: {}", s.channel, s.platform);
                out!(
                    "last check: {}; manifest sequence {}",
                    s.last_check
                        .map_or_else(|| "never".to_owned(), |t| When(t).to_string()),
                    s.last_sequence
                );
                match &s.at_last_check {
                    Some(deltapack_client::AtLastCheck {
                        available: Some(v), ..
                    }) => out!(
                        "at the last check: {v} was available (`deltapack update install` installs it)"
                    ),
                    Some(c) => out!("at the last check: {}", up_to_date(c.held.as_ref())),
                    None => {}
                }
                if let Some(p) = &s.on_probation {
                    out!(
                        "on probation: {} (launch {}; `deltapack update healthy` ends it)",
                        p.version,
                        p.launches
                    );
                }
                for r in &s.in_use {
                    out!(
                        "in use: {} (kept while processes {:?} run from it)",
                        r.version,
                        r.pids
                    );
                }
                for l in &s.leftovers {
                    out!("left behind: {l} (removal retried at each start)");
                }
                for u in &s.unknown_files {
                    let fate = if s.current.as_ref() == Some(&u.version) {
                        "stay in this version at the next update unless its release carries them"
                    } else {
                        "removed with this version when it is pruned"
                    };
                    out!(
                        "not from the release: {} ({}) holds {} ({fate})",
                        u.version,
                        u.path.display(),
                        u.files
                    );
                }
                for r in &s.refused {
                    out!(
                        "refused: {}: {}{} (to offer it again: {})",
                        r.version,
                        r.reason,
                        r.detail
                            .as_ref()
                            .map(|d| format!("; {d}"))
                            .unwrap_or_default(),
                        r.clear_with
                    );
                }
            }
        }
        UpdateCommand::Launched {
            opts,
            health_launches,
        } => {
            let c = opts.settings()?;
            let health_launches = health_launches.unwrap_or(c.health_launches);
            let u = match builder(&opts) {
                Ok(b) => b.health_launches(health_launches).build()?,
                Err(_) => c
                    .local_builder()?
                    .health_launches(health_launches)
                    .build_local()?,
            };
            let l = u.launched()?;
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&l)?);
            } else {
                match l {
                    deltapack_client::Launch::Healthy => out!("healthy"),
                    deltapack_client::Launch::OnProbation { launches } => {
                        out!("on probation: launch {launches} of {health_launches}");
                    }
                    deltapack_client::Launch::Unrecorded { launches } => {
                        out!(
                            "on probation: launch not counted ({launches} of {health_launches} so far): this user cannot write the install"
                        );
                    }
                    deltapack_client::Launch::RolledBack { from, to } => {
                        out!("{from} never reported healthy: rolled back to {to}");
                    }
                }
            }
        }
        UpdateCommand::Channel {
            name,
            opts,
            allow_downgrade,
        } => {
            let path = opts.config_path()?;
            let mut c = Config::load(&path)?;
            c.set("channel", &name)?;
            let as_json = opts.json;
            let mut o = opts;
            o.channel = Some(name.clone());
            let u = updater(&o)?;
            let found = u.check_with(true, &progress);
            // A channel the repository does not have is refused, unsaved.
            if let Err(e @ deltapack_client::Error::UnknownChannel { .. }) = found {
                return Err(e.into());
            }
            c.save(&path)?;
            let found = found?;
            p.bar.finish_and_clear();
            let current = u.status()?.current;
            // Nothing newer: is the channel's newest older than us?
            let newest = u.newest_on_channel()?;
            let older = match (&current, &newest) {
                (Some(cur), Some(n)) if found.is_none() && n < cur => Some(n.clone()),
                _ => None,
            };
            let mut downgraded = None;
            if let (Some(n), true) = (&older, allow_downgrade) {
                let up = u.check_version(n)?;
                let d = u.download(&up, &progress)?;
                let s = u.apply(&d, &progress)?;
                u.install(&s, &progress)?;
                p.bar.finish_and_clear();
                downgraded = Some(n.clone());
            }
            if as_json {
                json(&serde_json::json!({
                    "channel": name,
                    "current": current,
                    "newest": newest,
                    "available": found.as_ref().map(|up| &up.version),
                    "downgraded_to": downgraded,
                }))?;
            } else if let Some(up) = &found {
                out!("channel {name}: {} is available", up.version);
            } else if let (Some(n), Some(cur)) = (&downgraded, &current) {
                out!("channel {name}: downgraded {cur} -> {n}");
            } else if let (Some(n), Some(cur)) = (&older, &current) {
                out!(
                    "channel {name}: its newest version {n} is older than {cur}; \
                     pass --allow-downgrade to install it"
                );
            } else {
                out!("channel {name}: up to date");
            }
        }
        UpdateCommand::Scheduled { opts } => {
            let c = opts.settings()?;
            let u = updater(&opts)?;
            let tick = u.scheduled(&c, &progress)?;
            p.bar.finish_and_clear();
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&tick)?);
            } else {
                match tick {
                    deltapack_client::Tick::NotDue { next_check } => {
                        out!("not due; next check at {}", Utc(next_check));
                    }
                    deltapack_client::Tick::UpToDate => out!("up to date"),
                    deltapack_client::Tick::Available { update: u } => {
                        out!("{} is available", u.version);
                    }
                    deltapack_client::Tick::Downloaded { update: u } => {
                        out!("{} is downloaded, to install on request", u.version);
                    }
                    deltapack_client::Tick::Installed { version } => out!("installed {version}"),
                }
            }
        }
        UpdateCommand::Allow { version, opts } => {
            let v = Version::parse(&version)
                .with_context(|| format!("{version:?} is not a version"))?;
            let allowed = local_updater(&opts)?.allow(&v)?;
            if opts.json {
                json(&serde_json::json!({ "version": v, "was_refused": allowed }))?;
            } else if allowed {
                out!("{v} will be offered again");
            } else {
                out!("{v} was not refused");
            }
        }
        UpdateCommand::Healthy { opts } => {
            let u = local_updater(&opts)?;
            u.mark_healthy()?;
            if opts.json {
                json(&serde_json::json!({ "healthy": u.status()?.current }))?;
            } else {
                out!("marked healthy");
            }
        }
        UpdateCommand::History { opts } => {
            let h = local_updater(&opts)?.history()?;
            if opts.json {
                out!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                for e in h {
                    let from = e
                        .from
                        .as_ref()
                        .map_or_else(|| "-".into(), ToString::to_string);
                    if e.action == deltapack_client::Action::Prune {
                        out!(
                            "{} {:13} removed {from}{}",
                            Utc(e.time),
                            e.action,
                            e.unknown
                                .map(|u| format!(" with its {u}"))
                                .unwrap_or_default()
                        );
                        continue;
                    }
                    let versions = match &e.from {
                        Some(f) => format!("{f} -> {}", e.to),
                        None => e.to.to_string(),
                    };
                    let via = if e.path.is_empty() {
                        String::new()
                    } else {
                        format!(" via {} ({})", e.path.join(", "), Bytes(e.bytes))
                    };
                    out!(
                        "{} {:13} {versions} {}{via}{}{}{}",
                        Utc(e.time),
                        e.action,
                        e.result.as_str(),
                        e.note.map(|n| format!(" ({n})")).unwrap_or_default(),
                        if e.carried > 0 {
                            format!("; carried {} data files", e.carried)
                        } else {
                            String::new()
                        },
                        e.unknown
                            .map(|u| format!("; left in {from}: {u}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `doctor`: checks the install, lock, journal, disk, key and repository,
/// and says what to do. Exit status 1 when something is broken.
pub(crate) fn doctor(opts: ClientOpts, fix: bool) -> Result<()> {
    use deltapack_client::{Check, Level};
    let path = opts.config_path()?;
    if fix {
        let r = updater(&opts)?.repair()?;
        if r.repaired {
            out!(
                "rebuilt the state: manifest sequence {}, time floor {} (never lowered)",
                r.last_sequence,
                Utc(r.time_floor)
            );
        } else {
            out!("the state is readable: nothing to repair");
        }
        if let Some(c) = &r.current {
            out!("repaired the install: {c}");
        }
    }
    let mut checks = vec![Check {
        name: "config",
        level: Level::Ok,
        detail: path.display().to_string(),
        advice: String::new(),
    }];
    match updater(&opts) {
        Ok(u) => checks.extend(u.diagnose()),
        Err(e) => {
            checks[0].level = Level::Fail;
            checks[0].detail = format!("{e:#}");
            checks[0].advice = "fix the settings with `deltapack config set` or flags".into();
        }
    }
    if opts.json {
        out!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            out!("[{tag}] {:10} {}", c.name, c.detail);
            if !c.advice.is_empty() {
                out!("       {:10} -> {}", "", c.advice);
            }
        }
    }
    if checks.iter().any(|c| c.level == Level::Fail) {
        bail!("doctor found problems");
    }
    Ok(())
}
