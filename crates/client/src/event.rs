//! [`Event`]: progress of an updater call, for a front end to render (the
//! library never prints).

use deltapack_manifest::Version;
use serde::Serialize;

/// Progress of an updater call. Serialized (for bindings and `--json`) as
/// an object with a `kind` (`checking`, `downloading`, …) and the fields.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Fetching and verifying the manifest.
    Checking,
    /// Bytes of a package downloaded so far.
    Downloading {
        /// Repository path of the package.
        path: String,
        /// Bytes on disk.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// A package is downloaded and hash-checked.
    Downloaded {
        /// Repository path.
        path: String,
        /// Bytes fetched now (0 if it was already there).
        bytes: u64,
    },
    /// Rebuilding a version.
    Applying {
        /// The version being rebuilt.
        to: Version,
    },
    /// A delta failed; the full bundle is used instead.
    Fallback {
        /// Why (the delta's error, rendered with its causes).
        reason: String,
    },
    /// `current` now points at this version.
    Installed {
        /// The version.
        version: Version,
    },
}
