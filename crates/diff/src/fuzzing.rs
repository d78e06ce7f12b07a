//! Encoder entry points for the fuzz targets in `fuzz/` (and for replaying
//! their findings as ordinary tests).
//!
//! The round-trip oracle of the `codec_round_trip` target lives in
//! `deltapack_apply::fuzzing` (the applier cannot depend on the encoder);
//! it calls [`encode`] to make the package it applies.

use std::path::Path;

use deltapack_format::exe::Arch;

use crate::encode::ForceCodec;
use crate::{Differ, Error};

/// Diffs the file `old` against the file `new` into package bytes, with the
/// settings `variant` selects:
///
/// - bits 0-1: the codec: 0 = whichever is smallest (the real choice),
///   1 = stored whole, 2 = bsdiff (with bit 4: bsdiff-exe predicting
///   references with every scan kind, a quarter of the old file each, as
///   x86-64 code, or with bit 5 as arm64), 3 = zstd patch-from;
/// - bit 2: stream compression LZMA2 (level 6) instead of zstd (level 1);
/// - bit 3: 4 KiB hash blocks instead of 1 MiB.
///
/// Forcing a codec changes only which one is picked: every codec must
/// rebuild any file exactly, whether or not it would have been the
/// smallest. The patch-from codec runs at zstd level 1, for speed.
pub fn encode(old: &Path, new: &Path, variant: u8) -> Result<Vec<u8>, Error> {
    let mut d = Differ::new()
        .level(if variant & 4 != 0 { 6 } else { 1 })
        .block_log(if variant & 8 != 0 { 12 } else { 20 });
    d.settings.force = match variant & 3 {
        1 => Some(ForceCodec::Literal),
        2 if variant & 16 != 0 => Some(ForceCodec::BsdiffExe(if variant & 32 != 0 {
            Arch::Arm64
        } else {
            Arch::X86_64
        })),
        2 => Some(ForceCodec::Bsdiff),
        3 => Some(ForceCodec::ZstdRef),
        _ => None,
    };
    d.settings.zstd_ref_level = 1;
    // On the calling thread: handing the small jobs of a tiny diff to
    // worker threads costs more than the diff, the more so on a machine
    // busy with other fuzzers (the output is the same whatever the threads).
    thread_local! {
        static POOL: Option<rayon::ThreadPool> = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .build()
            .ok();
    }
    POOL.with(|pool| match pool {
        Some(p) => p.install(|| d.diff(Some(old), new, &|_| {})),
        None => d.diff(Some(old), new, &|_| {}),
    })
    .map(|p| p.to_bytes())
}
