//! Block selection: drop aligned regions that cost more to describe than
//! they save, folding them into the literal (extra) data around them.
//!
//! The scan takes any exact match that beats the running alignment; in code
//! that changed a lot this yields many short matches far away in the old
//! file, each paying a control triple with a large seek. A rough cost model
//! (bytes after entropy coding) decides which blocks are worth their
//! control data.

use super::scan::Block;

/// Cost model, in 1/64 byte units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CostModel {
    /// One literal byte in the extra stream.
    pub(crate) literal: i64,
    /// One mismatching byte in the diff stream.
    pub(crate) mismatch: i64,
    /// One matching (zero) byte in the diff stream.
    pub(crate) matched: i64,
    /// Fixed part of a control triple.
    pub(crate) ctrl_fixed: i64,
    /// Each varint byte of the control triple.
    pub(crate) ctrl_byte: i64,
    /// Minimum saving for a block to be kept.
    pub(crate) threshold: i64,
}

impl Default for CostModel {
    fn default() -> Self {
        // A mismatch costs twice a literal, so a block is worth keeping
        // when at least half of its bytes match (bsdiff's own criterion)
        // and the rest pays for its control triple (about one byte plus
        // one per varint byte). Tuned on the corpus, where the optimum is
        // flat around these values.
        CostModel {
            literal: 16,
            mismatch: 32,
            matched: 1,
            ctrl_fixed: 40,
            ctrl_byte: 64,
            threshold: 0,
        }
    }
}

fn varint_len(v: u64) -> i64 {
    (64 - v.leading_zeros()).max(1).div_ceil(7) as i64
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Drops blocks whose aligned region does not pay for its control data.
pub(crate) fn select(old: &[u8], new: &[u8], blocks: Vec<Block>, m: CostModel) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    let mut last_off: i64 = 0;
    for b in blocks {
        if b.add_len == 0 {
            match out.last_mut() {
                Some(prev) => prev.extra_len += b.extra_len,
                None => out.push(b),
            }
            continue;
        }
        let off = b.old_pos as i64 - b.new_pos as i64;
        let matched = new[b.new_pos..b.new_pos + b.add_len]
            .iter()
            .zip(&old[b.old_pos..b.old_pos + b.add_len])
            .filter(|(a, b)| a == b)
            .count() as i64;
        let mism = b.add_len as i64 - matched;
        let ctrl = m.ctrl_fixed
            + m.ctrl_byte * (varint_len(b.add_len as u64) + varint_len(zigzag(off - last_off)) + 1);
        let as_match = matched * m.matched + mism * m.mismatch + ctrl;
        let as_literal = b.add_len as i64 * m.literal;
        let keep = out.is_empty() || as_literal - as_match > m.threshold;
        if keep {
            last_off = off;
            out.push(b);
        } else if let Some(prev) = out.last_mut() {
            prev.extra_len += b.add_len + b.extra_len;
        }
    }
    out
}

/// Re-extends each block's aligned region into the literal data that
/// follows it (and the next block's region backwards into the same gap),
/// where the alignment still agrees on more than half of the bytes.
pub(crate) fn reextend(old: &[u8], new: &[u8], blocks: &mut [Block]) {
    for i in 0..blocks.len() {
        let b = blocks[i];
        if b.extra_len == 0 {
            continue;
        }
        let gap_start = b.new_pos + b.add_len;
        let gap_end = gap_start + b.extra_len;
        // Forward extension of this block.
        let mut lenf = 0usize;
        if b.add_len > 0 {
            let (mut s, mut best) = (0i64, 0i64);
            let mut k = 0usize;
            while gap_start + k < gap_end && b.old_pos + b.add_len + k < old.len() {
                if old[b.old_pos + b.add_len + k] == new[gap_start + k] {
                    s += 1;
                }
                k += 1;
                if s * 2 - k as i64 > best {
                    best = s * 2 - k as i64;
                    lenf = k;
                }
            }
        }
        // Backward extension of the next block.
        let mut lenb = 0usize;
        if let Some(nb) = blocks.get(i + 1).copied()
            && nb.add_len > 0
        {
            let (mut s, mut best) = (0i64, 0i64);
            let mut k = 1usize;
            while gap_end >= gap_start + k && nb.old_pos >= k {
                if old[nb.old_pos - k] == new[gap_end - k] {
                    s += 1;
                }
                if s * 2 - k as i64 > best {
                    best = s * 2 - k as i64;
                    lenb = k;
                }
                k += 1;
            }
        }
        if lenf + lenb > b.extra_len {
            // Overlap: split where the forward alignment stops winning.
            let overlap = lenf + lenb - b.extra_len;
            let start = gap_end - lenb;
            let (mut s, mut ss, mut lens) = (0i64, 0i64, 0usize);
            for k in 0..overlap {
                let p = start + k;
                if new[p] == old[b.old_pos + (p - b.new_pos)] {
                    s += 1;
                }
                if new[p] == old[blocks[i + 1].old_pos - lenb + k] {
                    s -= 1;
                }
                if s > ss {
                    ss = s;
                    lens = k + 1;
                }
            }
            lenf = lenf + lens - overlap;
            lenb -= lens;
        }
        blocks[i].add_len += lenf;
        blocks[i].extra_len -= lenf + lenb;
        if lenb > 0 {
            let nb = &mut blocks[i + 1];
            nb.new_pos -= lenb;
            nb.old_pos -= lenb;
            nb.add_len += lenb;
        }
    }
}
