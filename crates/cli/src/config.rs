//! `deltapack config`: read and change the update client's TOML settings.

use std::path::PathBuf;

use anyhow::Result;
use deltapack_client::{CONFIG_KEYS, Config};

/// The `config` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the config file's path.
    Path {
        /// Config file (default: the platform config dir).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print every setting (TOML, or JSON with --json).
    Show {
        /// Config file (default: the platform config dir).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print one setting.
    Get {
        /// One of the setting names (see `config show`).
        key: String,
        /// Config file (default: the platform config dir).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Change one setting (lists are comma-separated).
    Set {
        /// The setting.
        key: String,
        /// Its new value.
        value: String,
        /// Config file (default: the platform config dir).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs one `config` subcommand.
pub(crate) fn run(cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Path { config } => {
            out!(
                "{}",
                crate::update::config_path(config.as_deref())?.display()
            );
        }
        ConfigCommand::Show { config, json } => {
            let c = Config::load(&crate::update::config_path(config.as_deref())?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                for k in CONFIG_KEYS {
                    out!("{k} = {}", c.get(k)?);
                }
            }
        }
        ConfigCommand::Get { key, config } => {
            let c = Config::load(&crate::update::config_path(config.as_deref())?)?;
            out!("{}", c.get(&key)?);
        }
        ConfigCommand::Set { key, value, config } => {
            let path = crate::update::config_path(config.as_deref())?;
            let mut c = Config::load(&path)?;
            c.set(&key, &value)?;
            c.save(&path)?;
            out!("{key} = {}", c.get(&key)?);
        }
    }
    Ok(())
}
