//! Fuzzes the per-file codec decoders (stored, bsdiff, zstd patch-from,
//! copy) and the stream decoders under them on their own, past the package
//! header and hash, against a fixed old file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltapack_apply::fuzzing::decode_codec(data);
});
