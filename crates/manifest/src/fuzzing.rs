//! Entry points for the fuzz targets in `fuzz/` (and for replaying their
//! findings as ordinary tests).

use crate::{SecretKey, Verifier, sign};

/// The key the fuzz seeds are signed with (a fixed, public test key).
pub fn fuzz_key() -> SecretKey {
    SecretKey::from_seed([0x5e; 32])
}

/// Verifies arbitrary bytes as a manifest file under [`fuzz_key`]. Whatever
/// verifies must check, re-sign and verify again to the same manifest.
/// Returns whether it verified (a replayed valid seed must).
pub fn verify_manifest(data: &[u8]) -> bool {
    let key = fuzz_key();
    let keys = [key.public()];
    let v = Verifier::new(&keys).ignore_expiry();
    let Ok(m) = v.verify(data) else {
        return false;
    };
    let m = m.into_manifest();
    let again = sign(&m, &[key]).and_then(|b| v.verify(&b));
    assert_eq!(
        again.map(|a| a.into_manifest()).as_ref().ok(),
        Some(&m),
        "verify -> sign -> verify changed the manifest"
    );
    true
}
