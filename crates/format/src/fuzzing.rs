//! Entry points for the fuzz targets in `fuzz/` (and for replaying their
//! findings as ordinary tests).

use crate::{Header, Limits, decode_prefix};

/// Decodes arbitrary bytes as a package prefix. Whatever decodes must
/// re-encode to a header that decodes to the same value. Returns whether
/// it decoded (a replayed valid seed must).
pub fn decode_package(data: &[u8]) -> bool {
    let limits = Limits::default();
    let Ok((_, header, _)) = decode_prefix(data, &limits) else {
        return false;
    };
    let again = Header::decode(&header.encode(), &limits);
    assert_eq!(
        again.as_ref(),
        Ok(&header),
        "decode -> encode -> decode changed the header"
    );
    true
}
