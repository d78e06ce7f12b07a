//! Per-file encoding: for a file planned as a delta, try the codecs that
//! fit and keep the smallest; compute the file's block hashes.

use std::path::Path;

use deltapack_format::{Hash8, RelPath, reloc};

use crate::bsdiff::{self, Block};
use crate::input::Input;
use crate::plan::FilePlan;
use crate::streams::{RawStreams, SEGMENT};
use crate::{Error, Settings};

/// How one target file will be rebuilt.
#[derive(Debug)]
pub(crate) enum Encoding {
    Copy(RelPath),
    Literal,
    /// bsdiff; with `reloc` (the old file's code ranges), `bsdiff-x86`.
    Bsdiff {
        source: RelPath,
        old: Input,
        blocks: Vec<Block>,
        reloc: Option<Vec<(u64, u64)>>,
    },
    /// Patch-from in the shared ref stream; `blocks` is the bsdiff fallback
    /// for when the ref stream is full.
    ZstdRef {
        source: RelPath,
        old: Input,
        blocks: Vec<Block>,
    },
}

/// A codec to use whatever its size (fuzzing: every codec must rebuild any
/// file exactly, not only the files it wins on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForceCodec {
    Literal,
    Bsdiff,
    ZstdRef,
    /// `bsdiff-x86` with the whole old file as one code range.
    BsdiffX86,
}

/// A target file ready to be written into the package.
#[derive(Debug)]
pub(crate) struct EncodedFile {
    pub(crate) new: Input,
    pub(crate) blocks: Vec<Hash8>,
    pub(crate) encoding: Encoding,
}

/// Truncates a BLAKE3 hash to 8 bytes.
pub(crate) fn hash8(h: &blake3::Hash) -> Hash8 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// Encodes one file. `new_path`/`old_path` are where to read the contents.
pub(crate) fn encode_file(
    plan: &FilePlan,
    new_path: &Path,
    size: u64,
    hash: &[u8; 32],
    old_path: Option<(&Path, u64)>,
    s: &Settings,
) -> Result<EncodedFile, Error> {
    let new = Input::open(new_path, size)?;
    // Hash what we encode: if the file changed since the scan, stop here
    // rather than ship a package whose hashes describe other bytes.
    let (full, blocks) = block_hashes(&new, s.block_log);
    if full.as_bytes() != hash {
        return Err(Error::ChangedDuringDiff {
            path: new_path.to_owned(),
        });
    }
    let encoding = match (plan, old_path) {
        (FilePlan::Copy(p), _) => Encoding::Copy(p.clone()),
        (FilePlan::Literal, _) | (FilePlan::Delta(_), None) => Encoding::Literal,
        (FilePlan::Delta(src), Some((old_path, old_size))) => {
            let old = Input::open(old_path, old_size)?;
            choose(src, old, &new, s)?
        }
    };
    Ok(EncodedFile {
        new,
        blocks,
        encoding,
    })
}

fn block_hashes(data: &[u8], block_log: u8) -> (blake3::Hash, Vec<Hash8>) {
    let full = if data.len() >= 1 << 20 {
        let mut h = blake3::Hasher::new();
        h.update_rayon(data);
        h.finalize()
    } else {
        blake3::hash(data)
    };
    let block = 1usize << block_log;
    let blocks = if data.len() > block {
        data.chunks(block)
            .map(|c| hash8(&blake3::hash(c)))
            .collect()
    } else {
        Vec::new()
    };
    (full, blocks)
}

/// Per-frame overhead of a standalone zstd frame, subtracted from size
/// estimates: in the package every stream is one shared frame.
const FRAME_OVERHEAD: usize = 9;

/// Tries bsdiff (relocating branches when the old file is x86-64 code),
/// zstd patch-from (when both files are small enough for the applier to
/// hold) and storing, and keeps the smallest. Sizes are estimated with
/// standalone zstd frames, minus their fixed overhead.
fn choose(src: &RelPath, old: Input, new: &[u8], s: &Settings) -> Result<Encoding, Error> {
    if s.force == Some(ForceCodec::Literal) {
        return Ok(Encoding::Literal);
    }
    let blocks = bsdiff::diff_blocks(&old, new, s.sorter(), SEGMENT as usize)?;
    let bsdiff = |old, blocks, reloc| Encoding::Bsdiff {
        source: src.clone(),
        old,
        blocks,
        reloc,
    };
    match s.force {
        Some(ForceCodec::Bsdiff) => return Ok(bsdiff(old, blocks, None)),
        Some(ForceCodec::BsdiffX86) if relocatable(&blocks) && !old.is_empty() => {
            let whole = vec![(0, old.len() as u64)];
            return Ok(bsdiff(old, blocks, Some(whole)));
        }
        Some(ForceCodec::BsdiffX86) => return Ok(bsdiff(old, blocks, None)),
        // The package writer still falls back to bsdiff past the ref budget.
        Some(ForceCodec::ZstdRef) => {
            return Ok(Encoding::ZstdRef {
                source: src.clone(),
                old,
                blocks,
            });
        }
        Some(ForceCodec::Literal) | None => {}
    }
    let level = if new.len() <= 1 << 20 { 19 } else { 3 };
    let est = |d: &[u8]| -> Result<usize, Error> {
        if d.is_empty() {
            return Ok(0);
        }
        zstd::bulk::compress(d, level)
            .map(|v| v.len().saturating_sub(FRAME_OVERHEAD).max(1))
            .map_err(|e| Error::Compress {
                stream_codec: "zstd",
                cause: e,
            })
    };
    let est_bsdiff = |reloc: Option<&[(u64, u64)]>| -> Result<usize, Error> {
        let mut scratch = RawStreams::default();
        scratch.push_bsdiff(&old, new, &blocks, false, reloc);
        scratch.bufs.iter().map(|b| est(b)).sum()
    };
    let code = if s.executables && relocatable(&blocks) {
        crate::exe::x86_64_code_ranges(&old)
    } else {
        None
    };
    let ref_eligible = (old.len() + new.len()) as u64 <= s.zstd_ref_max;
    // A large file that bsdiff mostly matches: storing it whole cannot win
    // and patch-from is not allowed, so only bsdiff variants compete (and
    // without code, there is nothing to estimate).
    let extra: usize = blocks.iter().map(|b| b.extra_len).sum();
    let bsdiff_only = !ref_eligible && extra < new.len() / 2;
    if bsdiff_only && code.is_none() {
        return Ok(bsdiff(old, blocks, None));
    }
    // Plain or relocating bsdiff, whichever is smaller.
    let plain = est_bsdiff(None)?;
    let (bsdiff_size, reloc) = match code {
        Some(ranges) => {
            let x86 = est_bsdiff(Some(&ranges))?;
            if x86 < plain {
                (x86, Some(ranges))
            } else {
                (plain, None)
            }
        }
        None => (plain, None),
    };
    if bsdiff_only {
        return Ok(bsdiff(old, blocks, reloc));
    }
    let literal_size = est(new)?;
    let ref_size = if ref_eligible {
        zstd_ref(&old, new, s.zstd_ref_level)?
            .len()
            .saturating_sub(FRAME_OVERHEAD)
    } else {
        usize::MAX
    };
    Ok(if literal_size < bsdiff_size.min(ref_size) {
        Encoding::Literal
    } else if ref_size < bsdiff_size {
        Encoding::ZstdRef {
            source: src.clone(),
            old,
            blocks,
        }
    } else {
        bsdiff(old, blocks, reloc)
    })
}

/// Whether the applier can hold every control of this patch and each of
/// its regions (the `bsdiff-x86` bounds).
fn relocatable(blocks: &[Block]) -> bool {
    blocks.len() <= reloc::MAX_CONTROLS
        && blocks.iter().all(|b| {
            b.add_len as u64 <= reloc::MAX_REGION && b.extra_len as u64 <= reloc::MAX_REGION
        })
}

/// A zstd frame of `new` compressed with `old` as reference prefix and
/// long-distance matching, its window just large enough for both.
pub(crate) fn zstd_ref(old: &[u8], new: &[u8], level: i32) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    use zstd::zstd_safe::CParameter;
    let io = |e: std::io::Error| Error::Compress {
        stream_codec: "zstd",
        cause: e,
    };
    let wlog = crate::compress::window_log_for((old.len() + new.len()) as u64, 27).max(10);
    let mut enc =
        zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), level, old).map_err(io)?;
    enc.set_parameter(CParameter::WindowLog(u32::from(wlog)))
        .map_err(io)?;
    enc.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .map_err(io)?;
    enc.set_parameter(CParameter::ChecksumFlag(false))
        .map_err(io)?;
    enc.set_pledged_src_size(Some(new.len() as u64))
        .map_err(io)?;
    enc.write_all(new).map_err(io)?;
    enc.finish().map_err(io)
}
