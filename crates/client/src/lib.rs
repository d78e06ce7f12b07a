//! The deltapack update client: keeps an installed app current from a
//! signed static repository (made by `deltapack-release`).
//!
//! [`Updater`] checks the repository (only a manifest signed by an embedded
//! key, not expired and not older than the last one accepted is used),
//! picks the newest eligible version and the cheapest path to it (a delta,
//! a chain of deltas, or the full bundle), downloads with resume and
//! retries, rebuilds the new version beside the running one while the
//! applier verifies every block, and switches to it with one atomic rename.
//! Any failure of a delta that is not this machine's (its download, its
//! bytes, its header, the base, the apply) falls back to the full bundle
//! (see the `policy` module's rules, in docs/CLIENT.md). Versions are kept
//! side by side for [`Updater::rollback`]. The library never prints:
//! progress arrives as [`Event`]s. The repository can be a URL, a
//! directory, or the app's own [`Source`] (its HTTP stack).
//!
//! The install root:
//!
//! ```text
//! <root>/current -> versions/<version>     relative symlink, the only switch
//! <root>/versions/<version>/               one complete tree per version
//! <root>/.deltapack/state.json             install id, last sequence, time floor, refusals (and state.backup.json)
//! <root>/.deltapack/history.jsonl          append-only update history
//! <root>/.deltapack/downloads/<blake3>.dpk packages, named by their hash
//! <root>/.deltapack/lock                   held while an updater runs
//! ```
//!
//! Nothing under the root is ever opened through a link.
//!
//! ```no_run
//! use deltapack_client::Updater;
//! use deltapack_client::PublicKey;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let updater = Updater::builder()
//!     .repository("https://updates.example.com/myapp/")
//!     .public_key(PublicKey::from_text("ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")?)
//!     .channel("stable")
//!     .platform("linux-x86_64")
//!     .install_dir("/opt/myapp")
//!     .build()?;
//! if let Some(update) = updater.check()? {
//!     let from = update.from.as_ref().map(|v| v.to_string()).unwrap_or_default();
//!     println!("{from} -> {}: {} bytes", update.version, update.download_bytes);
//!     let downloaded = updater.download(&update, &|_event| {})?;
//!     let staged = updater.apply(&downloaded, &|_event| {})?;
//!     updater.install(&staged, &|_event| {})?;
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod acquire;
mod builder;
mod carry;
mod check;
mod config;
mod doctor;
mod downloads;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod history;
mod in_use;
mod install;
mod lock;
mod plan;
mod policy;
mod recover;
mod source;
mod state;
mod store;
mod strategy;
mod transport;
mod trust;
mod updater;

pub use acquire::{Downloaded, Staged};
pub use builder::UpdaterBuilder;
pub use carry::Unknown;
pub use check::{AtLastCheck, Checked, Held, Update};
pub use config::{Config, KEYS as CONFIG_KEYS};
pub use deltapack_manifest::{PublicKey, Version};
pub use doctor::{Check, Level};
pub use error::{Error, ErrorKind, HeaderField, Transfer, UrlRule};
pub use event::Event;
pub use health::Launch;
pub use history::{Action, HistoryEntry, Outcome};
pub use plan::{Path, Step};
pub use recover::Recovery;
pub use source::{DirSource, HttpSource, Request, Response, Source, SourceError, SourceErrorKind};
pub use state::{Refusal, RefusalReason, Repair};
pub use strategy::InstallKind;
pub use updater::{InUse, Probation, Refused, Status, Tick, UnknownFiles, Updater};
