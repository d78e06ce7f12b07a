//! Per-file encoding: for a file planned as a delta, try the codecs that
//! fit and keep the smallest; compute the file's block hashes.

use std::path::Path;

use deltapack_format::exe::{Arch, Layout, Scan, ScanKind, Segment};
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
    /// bsdiff; with a `layout` (where references are), `bsdiff-exe`.
    Bsdiff {
        source: RelPath,
        old: Input,
        blocks: Vec<Block>,
        layout: Option<Layout>,
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
    /// `bsdiff-exe` for this architecture, with every scan kind over a
    /// quarter of the old file each ([`any_layout`]).
    BsdiffExe(Arch),
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

/// Tries bsdiff (predicting references when the files are executables),
/// zstd patch-from (when both files are small enough for the applier to
/// hold) and storing, and keeps the smallest. Sizes are estimated with
/// standalone zstd frames, minus their fixed overhead.
fn choose(src: &RelPath, old: Input, new: &[u8], s: &Settings) -> Result<Encoding, Error> {
    if s.force == Some(ForceCodec::Literal) {
        return Ok(Encoding::Literal);
    }
    let level = if new.len() <= 1 << 20 { 19 } else { 3 };
    let exe = if s.executables && s.force.is_none() {
        crate::exe::Candidates::of(&old, new)
    } else {
        None
    };
    let (blocks, layout, exe_size) = match &exe {
        Some(c) => {
            let (blocks, layout, size) = exe_blocks(c, &old, new, s, level)?;
            (blocks, layout, Some(size))
        }
        None => (
            bsdiff::diff_blocks(&old, new, s.sorter(), SEGMENT as usize)?,
            None,
            None,
        ),
    };
    let bsdiff = |old, blocks, layout| Encoding::Bsdiff {
        source: src.clone(),
        old,
        blocks,
        layout,
    };
    match s.force {
        Some(ForceCodec::Bsdiff) => return Ok(bsdiff(old, blocks, None)),
        Some(ForceCodec::BsdiffExe(arch)) if relocatable(&blocks) && !old.is_empty() => {
            let layout = any_layout(arch, old.len() as u64, new.len() as u64);
            return Ok(bsdiff(old, blocks, Some(layout)));
        }
        Some(ForceCodec::BsdiffExe(_)) => return Ok(bsdiff(old, blocks, None)),
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
    let ref_eligible = (old.len() + new.len()) as u64 <= s.zstd_ref_max;
    // A large file that bsdiff mostly matches: storing it whole cannot win
    // and patch-from is not allowed, so bsdiff it is (its variants were
    // compared already).
    let extra: usize = blocks.iter().map(|b| b.extra_len).sum();
    if !ref_eligible && extra < new.len() / 2 {
        return Ok(bsdiff(old, blocks, layout));
    }
    let bsdiff_size = match exe_size {
        Some(size) => size,
        None => estimate(&old, new, &blocks, None, level)?,
    };
    let literal_size = est(new, level)?;
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
        bsdiff(old, blocks, layout)
    })
}

/// The bsdiff blocks for an executable, the layout to predict its
/// references with (if that is smaller than plain bsdiff on the same
/// blocks), and the estimated size.
///
/// Matching runs twice. First on copies of both files whose references
/// are replaced by labels of their targets (`Candidates::normalized`), so
/// that moved code which still refers to the same things matches whole;
/// the scans are chosen on those equivalences. Then on the old file with
/// every reference predicted through them (`Candidates::predicted_old`)
/// against the real new file: there a reference matches exactly when the
/// codec will predict it right, so the second pass aligns on what the
/// codec can reproduce. The smallest of the first pass with its layout,
/// the second with its own layout, and the second without one wins.
fn exe_blocks(
    c: &crate::exe::Candidates,
    old: &[u8],
    new: &[u8],
    s: &Settings,
    level: i32,
) -> Result<(Vec<Block>, Option<Layout>, usize), Error> {
    let first = {
        let (old_n, new_n) = c.normalized(old, new);
        bsdiff::diff_blocks(&old_n, &new_n, s.sorter(), SEGMENT as usize)?
    };
    if !relocatable(&first) {
        let blocks = bsdiff::diff_blocks(old, new, s.sorter(), SEGMENT as usize)?;
        let size = estimate(old, new, &blocks, None, level)?;
        return Ok((blocks, None, size));
    }
    let first_layout = c.layout(old, new, &first);
    let second = {
        let predicted = c.predicted_old(old, &first_layout, &first);
        bsdiff::diff_blocks(&predicted, new, s.sorter(), SEGMENT as usize)?
    };
    let second_layout = relocatable(&second).then(|| c.layout(old, new, &second));
    // The three candidates, estimated side by side.
    let ((a, b), c3) = rayon::join(
        || {
            rayon::join(
                || estimate(old, new, &first, Some(&first_layout), level),
                || estimate(old, new, &second, None, level),
            )
        },
        || {
            second_layout
                .as_ref()
                .map(|l| estimate(old, new, &second, Some(l), level))
        },
    );
    let (first_size, plain_size, second_size) = (a?, b?, c3.transpose()?);
    Ok(match second_size {
        Some(size) if size < first_size.min(plain_size) => (second, second_layout, size),
        _ if plain_size < first_size => (second, None, plain_size),
        _ => (first, Some(first_layout), first_size),
    })
}

/// Estimated size of a bsdiff patch: each raw stream compressed alone.
fn estimate(
    old: &[u8],
    new: &[u8],
    blocks: &[Block],
    layout: Option<&Layout>,
    level: i32,
) -> Result<usize, Error> {
    let mut scratch = RawStreams::default();
    scratch.push_bsdiff(old, new, blocks, false, layout);
    scratch.bufs.iter().map(|b| est(b, level)).sum()
}

/// Estimated compressed size of `d`: a zstd frame at `level`, less its
/// fixed overhead.
fn est(d: &[u8], level: i32) -> Result<usize, Error> {
    if d.is_empty() {
        return Ok(0);
    }
    zstd::bulk::compress(d, level)
        .map(|v| v.len().saturating_sub(FRAME_OVERHEAD).max(1))
        .map_err(|e| Error::Compress {
            stream_codec: "zstd",
            cause: e,
        })
}

/// A layout for any pair of files (fuzzing): each file one segment at
/// address 0, and the old file's four quarters scanned as code, pointers,
/// relative and base-relative offsets.
fn any_layout(arch: Arch, old_len: u64, new_len: u64) -> Layout {
    let q = old_len / 4;
    let kinds = [
        ScanKind::Code,
        ScanKind::Abs64,
        ScanKind::Rel32,
        ScanKind::Rel32From { base: q },
    ];
    let scans = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| Scan {
            kind,
            start: q * i as u64,
            end: if i == 3 { old_len } else { q * (i as u64 + 1) },
        })
        .filter(|s| s.end > s.start)
        .collect();
    let seg = |len| {
        (len > 0).then_some(Segment {
            file_off: 0,
            len,
            va: 0,
        })
    };
    Layout {
        arch,
        old: seg(old_len).into_iter().collect(),
        new: seg(new_len).into_iter().collect(),
        moves: Vec::new(),
        scans,
    }
}

/// Whether the applier can hold every control of this patch and each of
/// its regions (the `bsdiff-exe` bounds).
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
