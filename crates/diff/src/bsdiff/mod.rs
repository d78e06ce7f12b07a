//! The bsdiff-family codec: suffix-array matching with approximate
//! extension, a cost-based pass that drops blocks which do not pay for
//! their control data, and separate control, difference and extra streams.
//!
//! The difference stream is zero-run coded (see [`rle`]) before entropy
//! coding: in executables most of it is zeros, and taking the runs out makes
//! LZMA2 ten times faster on it at the same size.

pub(crate) mod index;
pub(crate) mod rle;
pub(crate) mod scan;
pub(crate) mod select;

use rayon::prelude::*;

use crate::Error;
use crate::sa::SuffixSorter;
use index::MatchIndex;
pub(crate) use scan::Block;
use scan::ScanParams;

/// The new file is scanned in pieces of this size in parallel. The size is
/// fixed (not derived from the thread count) so that output is the same
/// whatever the number of threads.
const SCAN_CHUNK: usize = 1 << 20;

/// Finds the blocks of a bsdiff patch from `old` to `new`. No block is
/// empty (the format requires every control to make progress), and none
/// has an add or extra region longer than `max_run`.
pub(crate) fn diff_blocks(
    old: &[u8],
    new: &[u8],
    sorter: &dyn SuffixSorter,
    max_run: usize,
) -> Result<Vec<Block>, Error> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    if old.is_empty() {
        return Ok(split_long(
            vec![Block {
                new_pos: 0,
                old_pos: 0,
                add_len: 0,
                extra_len: new.len(),
            }],
            max_run,
        ));
    }
    let index = MatchIndex::build(old, sorter)?;
    let starts: Vec<usize> = (0..new.len()).step_by(SCAN_CHUNK).collect();
    let parts: Vec<Vec<Block>> = starts
        .par_iter()
        .map(|&s| {
            scan::scan(
                &index,
                new,
                s,
                (s + SCAN_CHUNK).min(new.len()),
                ScanParams::default(),
            )
        })
        .collect();
    let all: Vec<Block> = parts.into_iter().flatten().collect();
    let mut blocks = select::select(old, new, all, select::CostModel::default());
    select::reextend(old, new, &mut blocks);
    // The scan emits an empty block when a match starts right where the
    // last one ended (always when new starts with bytes from elsewhere in
    // old), and re-extension can empty a leading literal block.
    blocks.retain(|b| b.add_len + b.extra_len > 0);
    Ok(split_long(blocks, max_run))
}

/// Splits blocks so that no add or extra region exceeds `max_run` bytes.
fn split_long(blocks: Vec<Block>, max_run: usize) -> Vec<Block> {
    let max_run = max_run.max(1);
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        let mut b = b;
        while b.add_len > max_run {
            out.push(Block {
                extra_len: 0,
                add_len: max_run,
                ..b
            });
            b.new_pos += max_run;
            b.old_pos += max_run;
            b.add_len -= max_run;
        }
        while b.extra_len > max_run {
            out.push(Block {
                extra_len: max_run,
                ..b
            });
            b.new_pos += b.add_len + max_run;
            b.old_pos += b.add_len;
            b.extra_len -= max_run;
            b.add_len = 0;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cover(old: &[u8], new: &[u8], blocks: &[Block]) {
        let mut pos = 0;
        for b in blocks {
            assert_eq!(b.new_pos, pos);
            assert!(b.add_len + b.extra_len > 0, "empty block {b:?}");
            assert!(b.old_pos + b.add_len <= old.len());
            pos += b.add_len + b.extra_len;
        }
        assert_eq!(pos, new.len());
    }

    #[test]
    fn blocks_cover_new_exactly() {
        let old: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let mut new = old.clone();
        new.splice(500..500, b"inserted bytes here".iter().copied());
        new.drain(20_000..21_000);
        for i in (30_000..60_000).step_by(97) {
            new[i] ^= 0x55;
        }
        let blocks = diff_blocks(&old, &new, &crate::sa::Libsais, 1000).unwrap();
        check_cover(&old, &new, &blocks);
        assert!(
            blocks
                .iter()
                .all(|b| b.add_len <= 1000 && b.extra_len <= 1000)
        );
        let copied: usize = blocks.iter().map(|b| b.add_len).sum();
        assert!(copied > 90_000, "{copied}");
    }

    #[test]
    fn no_empty_blocks_when_new_starts_elsewhere_in_old() {
        // Found by the codec_decoder fuzz target: a new file starting with
        // bytes from further into the old one (its head removed) gave an
        // empty first control, which the format forbids.
        let old: Vec<u8> = (0..300)
            .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
            .collect();
        let mut noisy = b"fresh start ".to_vec();
        noisy.extend_from_slice(&old[150..]);
        for new in [&old[150..], &old[5000..], &noisy[..]] {
            let blocks = diff_blocks(&old, new, &crate::sa::Libsais, 1 << 20).unwrap();
            check_cover(&old, new, &blocks);
        }
    }

    #[test]
    fn pathological_repetitions_finish() {
        // mendsley/bsdiff#12: long runs diffed against themselves.
        let mut a = vec![b'A'; 1 << 20];
        a.push(b'B');
        a.extend(std::iter::repeat_n(b'A', 1 << 20));
        a.push(b'C');
        let blocks = diff_blocks(&a, &a, &crate::sa::Libsais, 1 << 20).unwrap();
        check_cover(&a, &a, &blocks);
        // Zeros with scattered edits.
        let old = vec![0u8; 4 << 20];
        let mut new = old.clone();
        for i in 0..100 {
            new[i * 40_000 + 7] = i as u8 + 1;
        }
        let blocks = diff_blocks(&old, &new, &crate::sa::Libsais, 1 << 20).unwrap();
        check_cover(&old, &new, &blocks);
    }
}
