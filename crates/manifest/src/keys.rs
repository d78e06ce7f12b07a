//! Ed25519 signing keys and their text forms.
//!
//! A public key is the text `ed25519:<64 hex digits>`: that string is what
//! an app embeds. A secret key file holds `ed25519-secret:<64 hex digits>`
//! (the 32-byte seed) and a newline; it belongs in the release pipeline's
//! secret store, never in the repository. A key id (the first 16 hex digits
//! of BLAKE3 of the public key) labels signatures so that a verifier knows
//! which of its keys to try.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::Error;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// A public key that verifies manifest signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// A secret key that signs manifests.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_text())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(id {})", self.public().id())
    }
}

impl PublicKey {
    /// Parses `ed25519:<64 hex digits>` (surrounding whitespace allowed).
    pub fn from_text(s: &str) -> Result<Self, Error> {
        let hex = s
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or(Error::Key("a public key starts with \"ed25519:\""))?;
        let bytes = unhex32(hex).ok_or(Error::Key("a public key has 64 hex digits"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| Error::Key("not a valid ed25519 public key"))
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", hex(self.0.as_bytes()))
    }

    /// Key id: the first 16 hex digits of BLAKE3 of the key bytes.
    pub fn id(&self) -> String {
        hex(&blake3::hash(self.0.as_bytes()).as_bytes()[..8])
    }

    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| Error::Key("the OS random source failed"))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// A key from a 32-byte seed (tests and deterministic fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// Parses a secret key file's text.
    pub fn from_text(s: &str) -> Result<Self, Error> {
        let hex = s
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(Error::Key("a secret key starts with \"ed25519-secret:\""))?;
        let seed = unhex32(hex).ok_or(Error::Key("a secret key has 64 hex digits"))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The secret key file's text (with a trailing newline).
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", hex(self.0.as_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Decodes exactly `N` bytes of hex (either case).
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let d = |c: u8| (c as char).to_digit(16);
        *o = (d(pair[0])? * 16 + d(pair[1])?) as u8;
    }
    Some(out)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    unhex::<32>(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let k = SecretKey::from_seed([7; 32]);
        let back = SecretKey::from_text(&k.to_text()).map(|k| k.public());
        assert_eq!(back.ok(), Some(k.public()));
        let p = PublicKey::from_text(&k.public().to_text()).ok();
        assert_eq!(p, Some(k.public()));
        assert_eq!(k.public().id().len(), 16);
        for bad in [
            "",
            "ed25519:",
            "ed25519:zz",
            "rsa:00",
            &"ed25519:".repeat(3),
        ] {
            assert!(
                matches!(PublicKey::from_text(bad), Err(Error::Key(_))),
                "{bad}"
            );
        }
        assert!(SecretKey::from_text(&k.public().to_text()).is_err());
        assert_ne!(
            SecretKey::generate().map(|k| k.public()).ok(),
            SecretKey::generate().map(|k| k.public()).ok()
        );
    }
}
