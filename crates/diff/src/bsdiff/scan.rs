//! The bsdiff scan: walk the new file, find long matches in the old file
//! through the suffix array, and extend each match forwards and backwards
//! into an approximate match (a region where new and old mostly agree, whose
//! byte-wise difference is mostly zeros and compresses well).

use super::index::MatchIndex;

/// One step of the patch: `add_len` bytes of new at `new_pos` are old bytes
/// at `old_pos` plus a difference, then `extra_len` bytes are literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) new_pos: usize,
    pub(crate) old_pos: usize,
    pub(crate) add_len: usize,
    pub(crate) extra_len: usize,
}

/// Tuning knobs of the scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanParams {
    /// A new match must beat the running alignment by more than this many
    /// bytes to be taken.
    pub(crate) mismatch: usize,
    /// Above this match length, an untaken match is skipped in big steps
    /// (guards against quadratic time on repetitive data).
    pub(crate) long_match: usize,
}

impl Default for ScanParams {
    fn default() -> Self {
        ScanParams {
            mismatch: 8,
            long_match: 64,
        }
    }
}

/// Scans `new[range]` against the index and returns blocks covering exactly
/// that range, in order.
pub(crate) fn scan(
    index: &MatchIndex<'_>,
    new: &[u8],
    start: usize,
    end: usize,
    params: ScanParams,
) -> Vec<Block> {
    let old = index.old();
    let oldsize = old.len() as isize;
    let mut blocks = Vec::new();

    let mut scan = start;
    let mut len = 0usize;
    let mut pos = 0usize;
    let mut lastscan = start;
    let mut lastpos = 0usize;
    let mut lastoffset: isize = 0;

    // Positions in `new[from..to]` where the alignment `off` matches old.
    let count_same = |from: usize, to: usize, off: isize| -> usize {
        let lo = (from as isize).max(-off).max(0) as usize;
        let hi = (to as isize).min(oldsize - off).max(lo as isize) as usize;
        if lo >= hi {
            return 0;
        }
        let o = (lo as isize + off) as usize;
        new[lo..hi]
            .iter()
            .zip(&old[o..o + (hi - lo)])
            .filter(|(a, b)| a == b)
            .count()
    };

    while scan < end {
        let mut oldscore = 0usize;
        scan += len;
        let mut scsc = scan;
        while scan < end {
            let hint = usize::try_from(scan as isize + lastoffset).ok();
            let (p, l) = index.longest_match(&new[scan..end], hint);
            pos = p;
            len = l;
            if scsc < scan + len {
                oldscore += count_same(scsc, scan + len, lastoffset);
                scsc = scan + len;
            }
            if (len == oldscore && len != 0) || len > oldscore + params.mismatch {
                break;
            }
            // Not good enough: move on. Long matches that do not beat the
            // running alignment are skipped by more than one byte.
            let step = if len > params.long_match {
                len - params.long_match / 2
            } else {
                1
            };
            oldscore = oldscore.saturating_sub(count_same(scan, scan + step, lastoffset));
            scan += step;
        }

        if len != oldscore || scan >= end {
            let scan_end = scan.min(end);
            // Extend the previous match forwards.
            let (mut s, mut sf, mut lenf) = (0isize, 0isize, 0usize);
            let mut i = 0usize;
            while lastscan + i < scan_end && lastpos + i < old.len() {
                if old[lastpos + i] == new[lastscan + i] {
                    s += 1;
                }
                i += 1;
                if s * 2 - i as isize > sf * 2 - lenf as isize {
                    sf = s;
                    lenf = i;
                }
            }
            // Extend the new match backwards.
            let mut lenb = 0usize;
            if scan < end {
                let (mut s, mut sb) = (0isize, 0isize);
                let mut i = 1usize;
                while scan >= lastscan + i && pos >= i {
                    if old[pos - i] == new[scan - i] {
                        s += 1;
                    }
                    if s * 2 - i as isize > sb * 2 - lenb as isize {
                        sb = s;
                        lenb = i;
                    }
                    i += 1;
                }
            }
            // Resolve an overlap between the two extensions.
            if lastscan + lenf > scan_end - lenb {
                let overlap = (lastscan + lenf) - (scan_end - lenb);
                let (mut s, mut ss, mut lens) = (0isize, 0isize, 0usize);
                for i in 0..overlap {
                    if new[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i] {
                        s += 1;
                    }
                    if new[scan_end - lenb + i] == old[pos - lenb + i] {
                        s -= 1;
                    }
                    if s > ss {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf = lenf + lens - overlap;
                lenb -= lens;
            }
            blocks.push(Block {
                new_pos: lastscan,
                old_pos: lastpos,
                add_len: lenf,
                extra_len: (scan_end - lenb) - (lastscan + lenf),
            });
            lastscan = scan_end - lenb;
            lastpos = pos - lenb;
            lastoffset = pos as isize - scan as isize;
        }
    }
    if lastscan < end {
        blocks.push(Block {
            new_pos: lastscan,
            old_pos: lastpos,
            add_len: 0,
            extra_len: end - lastscan,
        });
    }
    blocks
}
