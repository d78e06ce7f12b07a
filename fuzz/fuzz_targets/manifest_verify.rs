//! Fuzzes manifest parsing and signature verification, with a re-sign
//! oracle (seeds are real signed manifests, so mutations reach the parser
//! behind the signature check only through the unsigned parts; the unit
//! tests sign malformed bodies to cover the rest).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_manifest::fuzzing::verify_manifest(data);
});
