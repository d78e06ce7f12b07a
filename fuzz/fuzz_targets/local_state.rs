//! Fuzzes the readers of an install's local files (state, config, history,
//! journal), with serialise/parse round-trip oracles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_client::fuzzing::local_state(data);
});
