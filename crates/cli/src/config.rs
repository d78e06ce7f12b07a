//! `deltapack config`: read and change the update client's TOML settings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltapack_client::Config;

/// Which config file: given, or the app's default one.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ConfigFile {
    /// Config file (default: the app's `update.toml` in the platform config dir).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The app these settings belong to: selects the default config file
    /// and state directory, so that two apps never share them.
    #[arg(
        long,
        env = "DELTAPACK_APP",
        value_name = "ID",
        default_value = "deltapack"
    )]
    pub(crate) app: String,
}

impl ConfigFile {
    /// The config file to use.
    pub(crate) fn path(&self) -> Result<PathBuf> {
        match &self.config {
            Some(p) => Ok(p.clone()),
            None => {
                deltapack_manifest::check_name(&self.app)
                    .map_err(|why| anyhow::anyhow!("app id {:?}: {why}", self.app))?;
                Config::default_path(&self.app)
                    .context("no config directory (set HOME or pass --config)")
            }
        }
    }

    /// The settings in it: a file named with --config must exist.
    pub(crate) fn load(&self) -> Result<Config> {
        let path = self.path()?;
        if self.config.is_some() && !path.exists() {
            anyhow::bail!(
                "{} does not exist (create it with `deltapack config set KEY VALUE --config {}`)",
                path.display(),
                path.display()
            );
        }
        Ok(Config::load(&path)?)
    }
}

/// The `config` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the config file's path.
    Path {
        #[command(flatten)]
        file: ConfigFile,
    },
    /// Print every setting (TOML, or JSON with --json).
    Show {
        #[command(flatten)]
        file: ConfigFile,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print one setting.
    Get {
        /// One of the setting names (see `config show`).
        key: String,
        #[command(flatten)]
        file: ConfigFile,
    },
    /// Change one setting (lists are comma-separated).
    Set {
        /// The setting.
        key: String,
        /// Its new value.
        value: String,
        #[command(flatten)]
        file: ConfigFile,
    },
}

/// Runs one `config` subcommand.
pub(crate) fn run(cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Path { file } => {
            out!("{}", file.path()?.display());
        }
        ConfigCommand::Show { file, json } => {
            let c = Config::load(&file.path()?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                // Valid TOML: what `config show > update.toml` gives back.
                out!("{}", c.to_toml()?.trim_end());
            }
        }
        ConfigCommand::Get { key, file } => {
            let c = Config::load(&file.path()?)?;
            out!("{}", c.get(&key)?);
        }
        ConfigCommand::Set { key, value, file } => {
            let path = file.path()?;
            let mut c = Config::load(&path)?;
            c.set(&key, &value)?;
            c.save(&path)?;
            out!("{key} = {}", c.get(&key)?);
        }
    }
    Ok(())
}
