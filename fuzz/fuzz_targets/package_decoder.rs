//! Fuzzes the package prologue and header decoder, with a re-encode oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_format::fuzzing::decode_package(data);
});
