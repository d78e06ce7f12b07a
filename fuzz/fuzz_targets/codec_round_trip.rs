//! Round-trip oracle for the codecs: old and new files cut from the input
//! are diffed by the real encoder with each codec (stored, bsdiff, zstd
//! patch-from, or the encoder's own choice) and stream compression, and the
//! applier must rebuild the new file byte for byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_apply::fuzzing::codec_round_trip(data, deltapack_diff::fuzzing::encode);
});
