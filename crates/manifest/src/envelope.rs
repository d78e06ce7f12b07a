//! The signed envelope around a manifest, and the only way to get a
//! [`VerifiedManifest`].
//!
//! On disk a manifest is one JSON object:
//! `{"signatures":[{"key":ID,"sig":HEX}],"signed":{…manifest…}}`. Each
//! signature is ed25519 over `"deltapack manifest v1\0"` followed by the
//! exact bytes of the `signed` value as they appear in the file (kept
//! verbatim with `serde_json`'s `RawValue`), so there is no canonical-JSON
//! step to get wrong. Several signatures may be present: during a key
//! rotation the packager signs with the old and the new key, and a client
//! that trusts either accepts the manifest.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::keys::{hex, unhex};
use crate::{Error, Manifest, PublicKey, SecretKey};

const CONTEXT: &[u8] = b"deltapack manifest v1\0";

/// Default bound on the size of a manifest file.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    signatures: Vec<Signature>,
    #[serde(borrow)]
    signed: &'a RawValue,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signature {
    key: String,
    sig: String,
}

/// Signs `manifest` with every key in `keys` and returns the file bytes.
/// The manifest must pass [`Manifest::check`].
pub fn sign(manifest: &Manifest, keys: &[SecretKey]) -> Result<Vec<u8>, Error> {
    if keys.is_empty() {
        return Err(Error::Key("at least one signing key is needed"));
    }
    manifest.check()?;
    let body = serde_json::to_string(manifest).map_err(|e| Error::Json {
        part: "manifest",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let msg = message(body.as_bytes());
    let signatures = keys
        .iter()
        .map(|k| Signature {
            key: k.public().id(),
            sig: hex(&k.sign(&msg)),
        })
        .collect();
    let raw = RawValue::from_string(body).map_err(|e| Error::Json {
        part: "manifest",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let env = Envelope {
        signatures,
        signed: &raw,
    };
    let mut out = serde_json::to_vec(&env).map_err(|e| Error::Json {
        part: "envelope",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(out)
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + body.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(body);
    m
}

/// A manifest whose signature, structure and expiry have been checked.
/// Only [`Verifier::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    manifest: Manifest,
    signed_by: String,
}

impl VerifiedManifest {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Id of the trusted key whose signature was accepted.
    pub fn signed_by(&self) -> &str {
        &self.signed_by
    }

    /// The manifest, giving up the proof.
    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }
}

/// Checks manifest files against a set of trusted public keys.
#[derive(Debug, Clone)]
pub struct Verifier<'k> {
    keys: &'k [PublicKey],
    now: Option<u64>,
    check_expiry: bool,
    max_size: usize,
}

impl<'k> Verifier<'k> {
    /// A verifier trusting `keys` (any one valid signature suffices).
    pub fn new(keys: &'k [PublicKey]) -> Self {
        Verifier {
            keys,
            now: None,
            check_expiry: true,
            max_size: MAX_MANIFEST_SIZE,
        }
    }

    /// The time (Unix seconds) to compare the expiry with; default: the
    /// system clock when `verify` runs.
    pub fn now(mut self, now: u64) -> Self {
        self.now = Some(now);
        self
    }

    /// Skips the expiry check. Only the packager does this, when it
    /// re-signs its own repository.
    pub fn ignore_expiry(mut self) -> Self {
        self.check_expiry = false;
        self
    }

    /// Largest manifest file accepted (default 4 MiB).
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Verifies a manifest file.
    pub fn verify(&self, bytes: &[u8]) -> Result<VerifiedManifest, Error> {
        if bytes.len() > self.max_size {
            return Err(Error::TooLarge {
                size: bytes.len() as u64,
                limit: self.max_size as u64,
            });
        }
        let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| Error::Json {
            part: "envelope",
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if env.signatures.is_empty() {
            return Err(Error::MissingSignature);
        }
        let msg = message(env.signed.get().as_bytes());
        let mut tried = None;
        let mut signed_by = None;
        'keys: for key in self.keys {
            let id = key.id();
            for s in env.signatures.iter().filter(|s| s.key == id) {
                tried = Some(id.clone());
                if unhex::<64>(&s.sig).is_some_and(|sig| key.verify(&msg, &sig)) {
                    signed_by = Some(id);
                    break 'keys;
                }
            }
        }
        let Some(signed_by) = signed_by else {
            return Err(match tried {
                Some(key) => Error::BadSignature { key },
                None => Error::UntrustedKeys {
                    found: env.signatures.iter().map(|s| s.key.clone()).collect(),
                },
            });
        };
        let manifest: Manifest =
            serde_json::from_str(env.signed.get()).map_err(|e| Error::Json {
                part: "manifest",
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        manifest.check()?;
        if self.check_expiry {
            let now = self.now.unwrap_or_else(unix_now);
            if now >= manifest.expires {
                return Err(Error::Expired {
                    expires: manifest.expires,
                    now,
                });
            }
        }
        Ok(VerifiedManifest {
            manifest,
            signed_by,
        })
    }
}

/// The system clock in Unix seconds (0 if it is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs an arbitrary body, as a key holder gone astray could.
    fn sign_raw(body: &str, key: &SecretKey) -> Vec<u8> {
        let sig = hex(&key.sign(&message(body.as_bytes())));
        format!(
            "{{\"signatures\":[{{\"key\":\"{}\",\"sig\":\"{sig}\"}}],\"signed\":{body}}}",
            key.public().id()
        )
        .into_bytes()
    }

    #[test]
    fn signed_but_malformed_bodies_are_refused() {
        let key = SecretKey::from_seed([4; 32]);
        let keys = [key.public()];
        let v = Verifier::new(&keys).now(10);
        let ok = r#"{"format":1,"sequence":1,"issued":1,"expires":99,"channels":{},"releases":[]}"#;
        assert!(v.verify(&sign_raw(ok, &key)).is_ok());
        let extra = ok.replace("\"sequence\":1", "\"sequence\":1,\"admin\":true");
        assert!(matches!(
            v.verify(&sign_raw(&extra, &key)),
            Err(Error::Json {
                part: "manifest",
                ..
            })
        ));
        let neg = ok.replace("\"sequence\":1", "\"sequence\":-1");
        assert!(matches!(
            v.verify(&sign_raw(&neg, &key)),
            Err(Error::Json {
                part: "manifest",
                ..
            })
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            v.verify(&sign_raw(&deep, &key)),
            Err(Error::Json { .. })
        ));
        let format2 = ok.replace("\"format\":1", "\"format\":2");
        assert!(matches!(
            v.verify(&sign_raw(&format2, &key)),
            Err(Error::UnsupportedFormat { found: 2 })
        ));
    }
}
