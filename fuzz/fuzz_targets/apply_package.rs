//! Fuzzes the streaming applier: arbitrary packages against a fixed base.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_apply::fuzzing::verify_against_fixed_base(data);
});
