//! The signed deltapack repository manifest.
//!
//! A release repository is a directory of static files: `.dpk` packages and
//! one `manifest.json` that tells clients what exists. This crate owns the
//! manifest: its data model ([`Manifest`]), its structural rules
//! ([`Manifest::check`]), ed25519 keys ([`SecretKey`], [`PublicKey`]), signing
//! ([`sign`]) and verification ([`Verifier`]), which is the only way to get a
//! [`VerifiedManifest`]. The packager (`deltapack-release`) writes manifests;
//! the update client reads them. Nothing here touches the file system or the
//! network.
//!
//! ```
//! use deltapack_manifest::{sign, Manifest, SecretKey, Verifier};
//! let key = SecretKey::from_seed([1; 32]);
//! let mut m = Manifest::empty();
//! m.sequence = 1;
//! m.issued = 1_000;
//! m.expires = 2_000;
//! let bytes = sign(&m, &[key.clone()])?;
//! let trusted = [key.public()];
//! let v = Verifier::new(&trusted).now(1_500).verify(&bytes)?;
//! assert_eq!(v.manifest().sequence, 1);
//! # Ok::<(), deltapack_manifest::Error>(())
//! ```

#![forbid(unsafe_code)]

mod envelope;
pub mod fuzzing;
mod keys;
mod model;

pub use envelope::{MAX_MANIFEST_SIZE, VerifiedManifest, Verifier, sign, unix_now};
pub use keys::{PublicKey, SecretKey};
pub use model::{
    Artifact, Build, Channel, ChannelRelease, Delta, FORMAT, MAX_CARRY, Manifest, Release, Rollout,
    TreeRef, bucket, check_data_path, check_name, check_path, closest_name,
};
pub use semver::Version;

/// Why a manifest or key was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is larger than the verifier accepts.
    #[error("manifest is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not valid JSON of the expected shape.
    #[error("manifest {part} is malformed at line {line}, column {column}: {message}")]
    Json {
        /// `envelope` or `manifest`.
        part: &'static str,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A manifest format this version does not read.
    #[error("manifest format {found} is not supported (this build reads format {FORMAT})")]
    UnsupportedFormat {
        /// The format found.
        found: u32,
    },
    /// A rule of the manifest is broken.
    #[error("invalid manifest: {what}")]
    Invalid {
        /// What is wrong, and where.
        what: String,
    },
    /// The envelope has no signatures.
    #[error("manifest is not signed")]
    MissingSignature,
    /// A signature by a trusted key does not verify.
    #[error("manifest signature by key {key} does not verify (tampered or corrupt)")]
    BadSignature {
        /// The key id.
        key: String,
    },
    /// No signature is by a trusted key.
    #[error("manifest is signed only by untrusted keys {found:?}")]
    UntrustedKeys {
        /// Key ids of the signatures present.
        found: Vec<String>,
    },
    /// The manifest has expired.
    #[error(
        "manifest expired at {} (now {}); the repository must be re-signed",
        rfc3339(*expires),
        rfc3339(*now)
    )]
    Expired {
        /// Expiry (Unix seconds).
        expires: u64,
        /// The time compared with.
        now: u64,
    },
    /// A key is malformed, or none was given.
    #[error("key: {0}")]
    Key(&'static str),
}

/// Unix seconds as RFC 3339 (`2027-01-15T08:00:00Z`), for messages.
fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| format!("{secs} (Unix seconds)"), |t| t.to_string())
}
