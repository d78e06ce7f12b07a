//! Reference prediction for executables: the shared core of the
//! `bsdiff-exe` op (docs/FORMAT.md §6.4), run identically by the encoder
//! and the applier.
//!
//! Between two releases code and data move, and every reference whose
//! target moved by a different amount than the reference itself changes:
//! call and jump displacements, RIP-relative operands, absolute pointers
//! (in data, and in the dynamic relocation table), PC-relative offsets in
//! unwind tables. The patch already says how the file moved: each add
//! region of a bsdiff patch is an equivalence, "old bytes at `o` became
//! new bytes at `n`". So before the difference bytes of an add region are
//! added, both sides find the references in its old bytes and rewrite
//! each to point where its old target went:
//!
//! 1. the target's old virtual address (VA) is turned into an old file
//!    offset through the old file's [`Segment`]s,
//! 2. that offset goes through the equivalence that holds it to a new
//!    file offset, and that through the new file's segments to a new VA;
//! 3. a target with no file bytes (`.bss`) or in no equivalence goes
//!    through the [`Move`]s instead: address ranges (sections) and where
//!    they went.
//!
//! Where references are looked for is the [`Scan`] list: code ranges
//! (x86-64 decoded instruction by instruction, see [`crate::x86`]; arm64
//! word by word, see [`crate::arm64`]), and ranges of aligned 8-byte
//! absolute or 4-byte relative values. A right prediction
//! costs zero difference bytes, a wrong one is corrected by them: the
//! output is the same either way and every block is still hash-checked.
//! The encoder builds the [`Layout`] from the two files' headers; the
//! applier parses no container.
//!
//! Nothing here reads input the caller has not bounded: [`Layout::check`]
//! checks a layout against the old and new sizes, and the equivalences
//! come from controls the caller checked.

use crate::reader::unzigzag;
use crate::reloc::{Equivalence, LOOK_BACK};
use crate::{arm64, x86};

/// Most segments per file in a layout.
pub const MAX_SEGMENTS: usize = 64;
/// Most moves in a layout.
pub const MAX_MOVES: usize = 1024;
/// Most scan ranges in a layout.
pub const MAX_SCANS: usize = 256;

/// The instruction set of a file's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64.
    X86_64,
    /// arm64 (AArch64).
    Arm64,
}

impl Arch {
    fn code(self) -> u64 {
        match self {
            Arch::X86_64 => 1,
            Arch::Arm64 => 2,
        }
    }
}

/// File bytes `[file_off, file_off + len)` are mapped at `va`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the file.
    pub file_off: u64,
    /// Length in the file.
    pub len: u64,
    /// Virtual address of the first byte.
    pub va: u64,
}

/// Old addresses `[old_va, old_va + len)` went to `new_va` onwards: the
/// fallback for targets without file bytes or outside every equivalence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// First old address.
    pub old_va: u64,
    /// Length of the range.
    pub len: u64,
    /// Where the first address went.
    pub new_va: u64,
}

/// What kind of references a scan range holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanKind {
    /// Machine code of the layout's architecture.
    Code,
    /// Little-endian 8-byte absolute addresses, every 8 bytes from the
    /// range's start.
    Abs64,
    /// Little-endian signed 4-byte offsets relative to their own address,
    /// every 4 bytes from the range's start.
    Rel32,
    /// Little-endian signed 4-byte offsets relative to the old address
    /// `base` (whose new address is found like any target's), every 4
    /// bytes from the range's start.
    Rel32From {
        /// The old address the offsets count from.
        base: u64,
    },
}

impl ScanKind {
    fn code(self) -> u64 {
        match self {
            ScanKind::Code => 0,
            ScanKind::Abs64 => 1,
            ScanKind::Rel32 => 2,
            ScanKind::Rel32From { .. } => 3,
        }
    }
}

/// A range `[start, end)` of the old file to look for references in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// What it holds.
    pub kind: ScanKind,
    /// First old file offset.
    pub start: u64,
    /// One past the last.
    pub end: u64,
}

/// Everything the predictor knows about the two files besides the
/// equivalences: written at the start of a `bsdiff-exe` file's controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Instruction set of the code scans.
    pub arch: Arch,
    /// The old file's segments, sorted by file offset, disjoint.
    pub old: Vec<Segment>,
    /// The new file's segments, likewise.
    pub new: Vec<Segment>,
    /// Sorted by old address, disjoint.
    pub moves: Vec<Move>,
    /// Sorted by start, disjoint.
    pub scans: Vec<Scan>,
}

impl Layout {
    /// Appends the layout as FORMAT.md §6.4 lays it out. A layout that
    /// [`Layout::check`] refuses (out of order, overflowing) is written
    /// with wrapped gaps, which a reader refuses too.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::reader::{put_varint, zigzag};
        put_varint(out, self.arch.code());
        for segs in [&self.old, &self.new] {
            put_varint(out, segs.len() as u64);
            let mut prev = 0;
            for s in segs {
                put_varint(out, s.file_off.wrapping_sub(prev));
                put_varint(out, s.len);
                put_varint(out, zigzag(s.va.wrapping_sub(s.file_off) as i64));
                prev = s.file_off.wrapping_add(s.len);
            }
        }
        put_varint(out, self.moves.len() as u64);
        let mut prev = 0;
        for m in &self.moves {
            put_varint(out, m.old_va.wrapping_sub(prev));
            put_varint(out, m.len);
            put_varint(out, zigzag(m.new_va.wrapping_sub(m.old_va) as i64));
            prev = m.old_va.wrapping_add(m.len);
        }
        put_varint(out, self.scans.len() as u64);
        let mut prev = 0;
        for s in &self.scans {
            put_varint(out, s.kind.code());
            put_varint(out, s.start.wrapping_sub(prev));
            put_varint(out, s.end.wrapping_sub(s.start));
            if let ScanKind::Rel32From { base } = s.kind {
                put_varint(out, base);
            }
            prev = s.end;
        }
    }

    /// Reads a layout, taking varints from `next`. The outer error is
    /// `next`'s; the inner one says what is wrong with the layout. The
    /// result still needs [`Layout::check`].
    pub fn read<E>(mut next: impl FnMut() -> Result<u64, E>) -> Result<Result<Layout, String>, E> {
        let arch = match next()? {
            1 => Arch::X86_64,
            2 => Arch::Arm64,
            a => return Ok(Err(format!("unknown architecture {a}"))),
        };
        let mut both = [Vec::new(), Vec::new()];
        for segs in &mut both {
            let n = next()?;
            if n > MAX_SEGMENTS as u64 {
                return Ok(Err(format!("{n} segments, at most {MAX_SEGMENTS}")));
            }
            let mut prev = 0u64;
            for _ in 0..n {
                let (gap, len, delta) = (next()?, next()?, unzigzag(next()?));
                let Some(file_off) = prev.checked_add(gap) else {
                    return Ok(Err("a segment's offset overflows".into()));
                };
                let Some(end) = file_off.checked_add(len) else {
                    return Ok(Err("a segment's end overflows".into()));
                };
                let Some(va) = file_off.checked_add_signed(delta) else {
                    return Ok(Err("a segment's address overflows".into()));
                };
                segs.push(Segment { file_off, len, va });
                prev = end;
            }
        }
        let [old, new] = both;
        let n = next()?;
        if n > MAX_MOVES as u64 {
            return Ok(Err(format!("{n} moves, at most {MAX_MOVES}")));
        }
        let mut moves = Vec::with_capacity(n as usize);
        let mut prev = 0u64;
        for _ in 0..n {
            let (gap, len, shift) = (next()?, next()?, unzigzag(next()?));
            let Some((old_va, end, new_va)) = prev
                .checked_add(gap)
                .and_then(|a| Some((a, a.checked_add(len)?, a.checked_add_signed(shift)?)))
            else {
                return Ok(Err("a move overflows".into()));
            };
            moves.push(Move {
                old_va,
                len,
                new_va,
            });
            prev = end;
        }
        let n = next()?;
        if n > MAX_SCANS as u64 {
            return Ok(Err(format!("{n} scan ranges, at most {MAX_SCANS}")));
        }
        let mut scans = Vec::with_capacity(n as usize);
        let mut prev = 0u64;
        for _ in 0..n {
            let kind = next()?;
            let (gap, len) = (next()?, next()?);
            let kind = match kind {
                0 => ScanKind::Code,
                1 => ScanKind::Abs64,
                2 => ScanKind::Rel32,
                3 => ScanKind::Rel32From { base: next()? },
                k => return Ok(Err(format!("unknown scan kind {k}"))),
            };
            let Some((start, end)) = prev
                .checked_add(gap)
                .and_then(|a| Some((a, a.checked_add(len)?)))
            else {
                return Ok(Err("a scan range overflows".into()));
            };
            scans.push(Scan { kind, start, end });
            prev = end;
        }
        Ok(Ok(Layout {
            arch,
            old,
            new,
            moves,
            scans,
        }))
    }

    /// Checks a layout against the files: at most the stated counts, every
    /// list sorted and disjoint, every range non-empty and free of
    /// overflow, segments inside their file, scans inside the old file.
    /// (A decoded layout is sorted and disjoint by its encoding; one built
    /// in memory is checked for that too.)
    pub fn check(&self, old_size: u64, new_size: u64) -> Result<(), String> {
        for (segs, size, which) in [(&self.old, old_size, "old"), (&self.new, new_size, "new")] {
            if segs.len() > MAX_SEGMENTS {
                return Err(format!("{} {which} segments", segs.len()));
            }
            let mut prev = 0;
            for s in segs {
                let end = s.file_off.checked_add(s.len);
                if s.len == 0
                    || s.file_off < prev
                    || end.is_none_or(|e| e > size)
                    || s.va.checked_add(s.len).is_none()
                {
                    return Err(format!(
                        "{which} segment at file offset {} ({} bytes at address {:#x}) is empty, \
                         out of order, past the {size}-byte file or overflows",
                        s.file_off, s.len, s.va
                    ));
                }
                prev = s.file_off + s.len;
            }
        }
        let mut prev = 0;
        for m in &self.moves {
            let end = m.old_va.checked_add(m.len);
            if m.len == 0
                || m.old_va < prev
                || end.is_none()
                || m.new_va.checked_add(m.len).is_none()
            {
                return Err(format!(
                    "move of {} bytes from address {:#x} is empty, out of order or overflows",
                    m.len, m.old_va
                ));
            }
            prev = m.old_va + m.len;
        }
        if self.moves.len() > MAX_MOVES || self.scans.len() > MAX_SCANS {
            return Err("too many moves or scan ranges".into());
        }
        let mut prev = 0;
        for s in &self.scans {
            if s.end <= s.start || s.start < prev || s.end > old_size {
                return Err(format!(
                    "scan range {}..{} is empty, out of order or past the {old_size}-byte base",
                    s.start, s.end
                ));
            }
            prev = s.end;
        }
        Ok(())
    }
}

/// The address of file offset `off` in `segs` (sorted by file offset).
pub fn off_to_va(segs: &[Segment], off: u64) -> Option<u64> {
    let i = segs.partition_point(|s| s.file_off + s.len <= off);
    let s = segs.get(i)?;
    (s.file_off <= off).then(|| s.va + (off - s.file_off))
}

/// The file offset of address `va` in `segs`, if it has file bytes.
pub fn va_to_off(segs: &[Segment], va: u64) -> Option<u64> {
    segs.iter()
        .find(|s| s.va <= va && va - s.va < s.len)
        .map(|s| s.file_off + (va - s.va))
}

/// Predicts the new form of references in add regions of one file.
///
/// It holds the file's equivalences once, in the order given (for the
/// applier, the order of its controls, which it walks again to write the
/// file), and their indices in old-offset order: 28 bytes each.
#[derive(Debug, Clone)]
pub struct Predictor {
    layout: Layout,
    /// The non-empty equivalences, in the order given.
    eqs: Vec<Equivalence>,
    /// Indices into `eqs`, sorted by old then new offset.
    by_old: Vec<u32>,
    /// Old segments sorted by address, for target lookups.
    old_by_va: Vec<Segment>,
}

impl Predictor {
    /// A predictor for a layout that passed [`Layout::check`] and the
    /// file's equivalences (at most `u32::MAX`; the format allows far
    /// fewer, see [`crate::reloc::MAX_CONTROLS`]).
    pub fn new(layout: Layout, mut eqs: Vec<Equivalence>) -> Self {
        eqs.retain(|e| e.len > 0);
        eqs.truncate(u32::MAX as usize);
        let mut by_old: Vec<u32> = (0..eqs.len() as u32).collect();
        by_old.sort_by_key(|&i| (eqs[i as usize].old_pos, eqs[i as usize].new_pos));
        let mut old_by_va = layout.old.clone();
        old_by_va.sort_by_key(|s| (s.va, s.file_off));
        Predictor {
            layout,
            eqs,
            by_old,
            old_by_va,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The non-empty equivalences, in the order they were given.
    pub fn equivalences(&self) -> &[Equivalence] {
        &self.eqs
    }

    /// Where old offset `o` went: among the up to [`LOOK_BACK`]
    /// equivalences with the largest old offsets at or before `o`, the
    /// last one (in old, then new offset order) that holds it.
    fn map_off(&self, o: u64) -> Option<u64> {
        let eq = |i: u32| &self.eqs[i as usize];
        let end = self.by_old.partition_point(|&i| eq(i).old_pos <= o);
        self.by_old[end.saturating_sub(LOOK_BACK)..end]
            .iter()
            .rev()
            .map(|&i| eq(i))
            .find(|e| o - e.old_pos < e.len)
            .map(|e| e.new_pos + (o - e.old_pos))
    }

    /// Where old address `t` went: through the segments and the
    /// equivalence that holds it, else through the move that holds it.
    fn map_va(&self, t: u64) -> Option<u64> {
        let via_file = va_to_off(&self.old_by_va, t)
            .and_then(|o| self.map_off(o))
            .and_then(|n| off_to_va(&self.layout.new, n));
        via_file.or_else(|| {
            let i = self.layout.moves.partition_point(|m| m.old_va <= t);
            let m = self.layout.moves.get(i.checked_sub(1)?)?;
            (t - m.old_va < m.len).then(|| m.new_va + (t - m.old_va))
        })
    }

    /// Rewrites, in `buf` (the old bytes at `old_pos`, about to become the
    /// new bytes at `new_pos`), every reference to point where its target
    /// went. The steps are a fixed sequence of reads and writes of `buf`
    /// (an x86-64 instruction is decoded whole before its displacement is
    /// rewritten and the sweep goes on after it; only an arm64 pair writes
    /// ahead, into a word that is not a reference itself), so the encoder
    /// and the applier, starting from the same old bytes, make the same
    /// predictions.
    pub fn predict(&self, buf: &mut [u8], old_pos: u64, new_pos: u64) {
        let Some(end) = old_pos.checked_add(buf.len() as u64) else {
            return;
        };
        let first = self.layout.scans.partition_point(|s| s.end <= old_pos);
        for s in &self.layout.scans[first..] {
            if s.start >= end {
                break;
            }
            let lo = s.start.max(old_pos);
            let hi = s.end.min(end);
            let at = |p: u64| (p - old_pos) as usize;
            match s.kind {
                ScanKind::Code if self.layout.arch == Arch::X86_64 => {
                    let mut i = lo;
                    while i < hi {
                        let Some(insn) = x86::decode(&buf[at(i)..at(hi)]) else {
                            break;
                        };
                        if let Some(r) = insn.rel32 {
                            let d = at(i) + r;
                            let next = insn.len as u64;
                            self.rel32(buf, d, i, next, old_pos, new_pos, None);
                        }
                        i += insn.len as u64;
                    }
                }
                ScanKind::Code => {
                    let mut p = lo + (s.start.wrapping_sub(lo) & 3);
                    while p + 4 <= hi {
                        self.arm64(&mut buf[at(p)..at(hi)], p, new_pos + (p - old_pos));
                        p += 4;
                    }
                }
                ScanKind::Abs64 => {
                    let mut p = lo + (s.start.wrapping_sub(lo) & 7);
                    while p + 8 <= hi {
                        let k = at(p);
                        let v = u64::from_le_bytes(le(&buf[k..k + 8]));
                        if let Some(t) = self.map_va(v) {
                            buf[k..k + 8].copy_from_slice(&t.to_le_bytes());
                        }
                        p += 8;
                    }
                }
                ScanKind::Rel32 | ScanKind::Rel32From { .. } => {
                    let base = match s.kind {
                        ScanKind::Rel32From { base } => match self.map_va(base) {
                            Some(nb) => Some((base, nb)),
                            None => continue,
                        },
                        _ => None,
                    };
                    let mut p = lo + (s.start.wrapping_sub(lo) & 3);
                    while p + 4 <= hi {
                        self.rel32(buf, at(p), p, 0, old_pos, new_pos, base);
                        p += 4;
                    }
                }
            }
        }
    }

    /// The arm64 instruction at the start of `code` (old offset `p`, new
    /// offset `p_new`; `code` runs to the end of the scanned part of the
    /// region): a PC-relative reference, or an `ADRP` and the first of
    /// the next [`arm64::PAIR_WINDOW`] instructions that takes its
    /// register as base, rewritten together.
    fn arm64(&self, code: &mut [u8], p: u64, p_new: u64) {
        let w = arm64::word(code);
        let Some(r) = arm64::reference(w) else {
            return;
        };
        let (Some(pc), Some(pc_new)) = (
            off_to_va(&self.layout.old, p),
            off_to_va(&self.layout.new, p_new),
        ) else {
            return;
        };
        let (pc, pc_new) = (i128::from(pc), i128::from(pc_new));
        let target = |t: i128| u64::try_from(t).ok().and_then(|t| self.map_va(t));
        match r {
            arm64::Ref::Pc(rel) => {
                if let Some(t) = target(pc + i128::from(rel))
                    && let Ok(rel) = i64::try_from(i128::from(t) - pc_new)
                    && let Some(w) = arm64::with_reference(w, rel)
                {
                    code[..4].copy_from_slice(&w.to_le_bytes());
                }
            }
            arm64::Ref::Page(rel, reg) => {
                let page = (pc & !0xFFF) + i128::from(rel);
                let pair = (1..=arm64::PAIR_WINDOW)
                    .map(|j| 4 * j)
                    .take_while(|&k| k + 4 <= code.len())
                    .find_map(|k| Some((k, arm64::low12(arm64::word(&code[k..]), reg)?)));
                let Some((k, (lo, scale))) = pair else {
                    return;
                };
                let Some(t) = target(page + i128::from(lo)) else {
                    return;
                };
                let page_rel = (i128::from(t) & !0xFFF) - (pc_new & !0xFFF);
                if let Ok(page_rel) = i64::try_from(page_rel)
                    && let Some(w) = arm64::with_reference(w, page_rel)
                    && let Some(w2) = arm64::with_low12(arm64::word(&code[k..]), t & 0xFFF, scale)
                {
                    code[..4].copy_from_slice(&w.to_le_bytes());
                    code[k..k + 4].copy_from_slice(&w2.to_le_bytes());
                }
            }
        }
    }

    /// One 4-byte relative reference at `buf[d..d + 4]`: relative to the
    /// address of old offset `from` plus `extra` (x86: the instruction's
    /// start plus its length), or to `base` (old, new) when given.
    #[allow(clippy::too_many_arguments)]
    fn rel32(
        &self,
        buf: &mut [u8],
        d: usize,
        from: u64,
        extra: u64,
        old_pos: u64,
        new_pos: u64,
        base: Option<(u64, u64)>,
    ) {
        let Some(bytes) = buf.get(d..d + 4) else {
            return;
        };
        // In 128 bits, nothing here can overflow.
        let v = i128::from(i32::from_le_bytes(le(bytes)));
        let (b_old, b_new) = match base {
            Some((a, b)) => (i128::from(a), i128::from(b)),
            None => {
                let new_from = new_pos + (from - old_pos);
                let (Some(a), Some(b)) = (
                    off_to_va(&self.layout.old, from),
                    off_to_va(&self.layout.new, new_from),
                ) else {
                    return;
                };
                (
                    i128::from(a) + i128::from(extra),
                    i128::from(b) + i128::from(extra),
                )
            }
        };
        let Ok(t) = u64::try_from(b_old + v) else {
            return;
        };
        if let Some(t_new) = self.map_va(t)
            && let Ok(nv) = i32::try_from(i128::from(t_new) - b_new)
        {
            buf[d..d + 4].copy_from_slice(&nv.to_le_bytes());
        }
    }
}

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Old: code at file 0x000..0x100 mapped at 0x1000, data at
    /// 0x100..0x200 mapped at 0x3000. New: code grew by 0x10, so data is
    /// at file 0x110, and its address moved to 0x3100.
    fn layout(scans: Vec<Scan>) -> Layout {
        Layout {
            arch: Arch::X86_64,
            old: vec![
                Segment {
                    file_off: 0,
                    len: 0x100,
                    va: 0x1000,
                },
                Segment {
                    file_off: 0x100,
                    len: 0x100,
                    va: 0x3000,
                },
            ],
            new: vec![
                Segment {
                    file_off: 0,
                    len: 0x110,
                    va: 0x1000,
                },
                Segment {
                    file_off: 0x110,
                    len: 0x100,
                    va: 0x3100,
                },
            ],
            moves: vec![Move {
                old_va: 0x5000,
                len: 0x100,
                new_va: 0x5200,
            }],
            scans,
        }
    }

    fn eqs() -> Vec<Equivalence> {
        vec![
            Equivalence {
                old_pos: 0,
                new_pos: 0,
                len: 0x80,
            },
            Equivalence {
                old_pos: 0x80,
                new_pos: 0x90,
                len: 0x170,
            },
        ]
    }

    #[test]
    fn rip_relative_and_call_targets_follow_their_moves() {
        // lea rax,[rip+d] at 0x10 to data 0x3040 (file 0x140, now 0x150,
        // address 0x3140); call at 0x20 to code 0x1090 (file 0x90, now
        // 0xA0, address 0x10A0); mov to .bss 0x5008 (now 0x5208).
        let mut old = vec![0x90u8; 0x80];
        let lea_end = 0x1000 + 0x10 + 7;
        old[0x10..0x13].copy_from_slice(&[0x48, 0x8D, 0x05]);
        old[0x13..0x17].copy_from_slice(&(0x3040i32 - lea_end).to_le_bytes());
        old[0x20] = 0xE8;
        old[0x21..0x25].copy_from_slice(&(0x1090i32 - 0x1025).to_le_bytes());
        old[0x30..0x32].copy_from_slice(&[0x8B, 0x05]);
        old[0x32..0x36].copy_from_slice(&(0x5008i32 - 0x1036).to_le_bytes());
        let l = layout(vec![Scan {
            kind: ScanKind::Code,
            start: 0,
            end: 0x100,
        }]);
        assert_eq!(l.check(0x200, 0x210), Ok(()));
        let p = Predictor::new(l, eqs());
        let mut out = old.clone();
        p.predict(&mut out, 0, 0);
        let rel = |at: usize| i32::from_le_bytes(le(&out[at..at + 4]));
        assert_eq!(rel(0x13), 0x3140 - lea_end);
        assert_eq!(rel(0x21), 0x10A0 - 0x1025);
        assert_eq!(rel(0x32), 0x5208 - 0x1036);
        // Nothing else changed.
        let mut same = out.clone();
        same[0x13..0x17].copy_from_slice(&old[0x13..0x17]);
        same[0x21..0x25].copy_from_slice(&old[0x21..0x25]);
        same[0x32..0x36].copy_from_slice(&old[0x32..0x36]);
        assert_eq!(same, old);
    }

    #[test]
    fn pointers_and_table_offsets_follow_their_targets() {
        // Data at old file 0x100 (address 0x3000), as an equivalence to new
        // 0x110 (address 0x3100): a pointer to code 0x1090 (now 0x10A0),
        // a PC-relative offset to 0x1090, and an offset from 0x3000 to 0x3040.
        let mut old = vec![0u8; 0x100];
        old[0..8].copy_from_slice(&0x1090u64.to_le_bytes());
        old[8..12].copy_from_slice(&(0x1090i32 - 0x3008).to_le_bytes());
        old[16..20].copy_from_slice(&0x40i32.to_le_bytes());
        let l = layout(vec![
            Scan {
                kind: ScanKind::Abs64,
                start: 0x100,
                end: 0x108,
            },
            Scan {
                kind: ScanKind::Rel32,
                start: 0x108,
                end: 0x10C,
            },
            Scan {
                kind: ScanKind::Rel32From { base: 0x3000 },
                start: 0x110,
                end: 0x114,
            },
        ]);
        assert_eq!(l.check(0x200, 0x210), Ok(()));
        let p = Predictor::new(l, eqs());
        let mut out = old.clone();
        p.predict(&mut out, 0x100, 0x110);
        assert_eq!(u64::from_le_bytes(le(&out[0..8])), 0x10A0);
        assert_eq!(i32::from_le_bytes(le(&out[8..12])), 0x10A0 - 0x3108);
        // Base 0x3000 went to 0x3100, target 0x3040 to 0x3140.
        assert_eq!(i32::from_le_bytes(le(&out[16..20])), 0x40);
        // An unmapped pointer stays as it is.
        let mut junk = vec![0xFFu8; 8];
        let copy = junk.clone();
        p.predict(&mut junk, 0x100, 0x110);
        assert_eq!(junk, copy);
    }

    #[test]
    fn arm64_branches_literals_and_adrp_pairs_follow_their_moves() {
        // The layout of the x86 tests, arm64 code: a bl at 0x10 to code
        // 0x1090 (now 0x10A0), an adrp x1 + add x1 pair at 0x20 naming data
        // 0x3040 (now 0x3140), an adrp x2 + ldr x3, [x2, #8] pair at 0x30
        // naming 0x5008 in .bss (now 0x5208, through the move), and an ldr
        // literal at 0x40 to 0x1088 (now 0x1098).
        let mut l = layout(vec![Scan {
            kind: ScanKind::Code,
            start: 0,
            end: 0x100,
        }]);
        l.arch = Arch::Arm64;
        let mut old = vec![0u8; 0x80];
        let put = |b: &mut [u8], at: usize, w: u32| b[at..at + 4].copy_from_slice(&w.to_le_bytes());
        let bl = arm64::with_reference(0x9400_0000, 0x1090 - 0x1010).unwrap();
        put(&mut old, 0x10, bl);
        let adrp1 = arm64::with_reference(0x9000_0001, 0x3000 - 0x1000).unwrap();
        put(&mut old, 0x20, adrp1);
        put(&mut old, 0x24, 0x9100_0021 | 0x40 << 10); // add x1, x1, #0x40
        let adrp2 = arm64::with_reference(0x9000_0002, 0x5000 - 0x1000).unwrap();
        put(&mut old, 0x30, adrp2);
        put(&mut old, 0x34, 0xD503_201F); // nop
        put(&mut old, 0x38, 0xF940_0443); // ldr x3, [x2, #8]
        let lit = arm64::with_reference(0x5800_0004, 0x1088 - 0x1040).unwrap();
        put(&mut old, 0x40, lit);
        assert_eq!(l.check(0x200, 0x210), Ok(()));
        let p = Predictor::new(l, eqs());
        let mut out = old.clone();
        p.predict(&mut out, 0, 0);
        let w = |at: usize| arm64::word(&out[at..]);
        assert_eq!(
            arm64::reference(w(0x10)),
            Some(arm64::Ref::Pc(0x10A0 - 0x1010))
        );
        assert_eq!(
            arm64::reference(w(0x20)),
            Some(arm64::Ref::Page(0x3000 - 0x1000, 1))
        );
        assert_eq!(arm64::low12(w(0x24), 1), Some((0x140, 0)));
        assert_eq!(
            arm64::reference(w(0x30)),
            Some(arm64::Ref::Page(0x5000 - 0x1000, 2))
        );
        assert_eq!(arm64::low12(w(0x38), 2), Some((0x208, 3)));
        assert_eq!(
            arm64::reference(w(0x40)),
            Some(arm64::Ref::Pc(0x1098 - 0x1040))
        );
        // Nothing else changed.
        let mut same = out.clone();
        for at in [0x10, 0x20, 0x24, 0x30, 0x38, 0x40] {
            same[at..at + 4].copy_from_slice(&old[at..at + 4]);
        }
        assert_eq!(same, old);
    }

    #[test]
    fn layouts_round_trip_and_bad_ones_are_refused() {
        let l = layout(vec![
            Scan {
                kind: ScanKind::Code,
                start: 0,
                end: 0x100,
            },
            Scan {
                kind: ScanKind::Rel32From { base: 0x3000 },
                start: 0x100,
                end: 0x140,
            },
        ]);
        let mut bytes = Vec::new();
        l.encode(&mut bytes);
        let mut r = crate::reader::Reader::new(&bytes, crate::Section::Header);
        let back = Layout::read(|| r.varint()).unwrap().unwrap();
        assert_eq!(back, l);
        assert_eq!(r.remaining(), 0);
        assert_eq!(back.check(0x200, 0x210), Ok(()));
        assert!(back.check(0x1FF, 0x210).is_err());
        assert!(back.check(0x200, 0x200).is_err());
        let mut bad = l.clone();
        bad.scans[1].start = 0x80;
        assert!(bad.check(0x200, 0x210).is_err());
        let mut bad = l.clone();
        bad.old[0].va = u64::MAX;
        assert!(bad.check(0x200, 0x210).is_err());
        // Unknown architecture and kind.
        let mut r = crate::reader::Reader::new(&[9], crate::Section::Header);
        assert!(Layout::read(|| r.varint()).unwrap().is_err());
        let mut r = crate::reader::Reader::new(&[1, 0, 0, 0, 1, 7, 0, 1], crate::Section::Header);
        assert!(Layout::read(|| r.varint()).unwrap().is_err());
        // Running out of input is the reader's error.
        let mut r = crate::reader::Reader::new(&[1, 3], crate::Section::Header);
        assert!(Layout::read(|| r.varint()).is_err());
    }

    proptest::proptest! {
        /// Any layout that passes the check, any equivalences inside the
        /// files and any bytes: prediction never panics and never changes
        /// the length. (That encoder and applier predict alike is shown by
        /// every bsdiff-exe round trip, and that the encoder's output does
        /// not depend on threads by
        /// `apply/tests/it/roundtrip.rs::output_is_deterministic_whatever_the_thread_count`.)
        #[test]
        fn prediction_is_total(
            segs in proptest::collection::vec((0u64..64, 1u64..64, proptest::num::u64::ANY), 0..4),
            moves in proptest::collection::vec((0u64..1 << 20, 1u64..1 << 16, proptest::num::u64::ANY), 0..4),
            scans in proptest::collection::vec((0u64..4, 0u64..32, 1u64..64, proptest::num::u64::ANY), 0..6),
            eqs in proptest::collection::vec((0u64..256, 0u64..256, 1u64..64), 0..8),
            buf in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            at in (0u64..256, 0u64..256),
            arm in proptest::bool::ANY,
        ) {
            let mk = |v: &[(u64, u64, u64)]| {
                let mut prev = 0;
                v.iter().map(|&(gap, len, va)| {
                    let s = Segment { file_off: prev + gap, len, va: va % (u64::MAX - len) };
                    prev = s.file_off + len;
                    s
                }).collect::<Vec<_>>()
            };
            let mut prev = 0u64;
            let moves = moves.iter().map(|&(gap, len, new_va)| {
                let m = Move { old_va: prev + gap, len, new_va: new_va % (u64::MAX - len) };
                prev = m.old_va + len;
                m
            }).collect();
            let mut prev = 0u64;
            let scans = scans.iter().map(|&(k, gap, len, base)| {
                let kind = match k {
                    0 => ScanKind::Code,
                    1 => ScanKind::Abs64,
                    2 => ScanKind::Rel32,
                    _ => ScanKind::Rel32From { base },
                };
                let s = Scan { kind, start: prev + gap, end: prev + gap + len };
                prev = s.end;
                s
            }).collect();
            let arch = if arm { Arch::Arm64 } else { Arch::X86_64 };
            let l = Layout { arch, old: mk(&segs), new: mk(&segs), moves, scans };
            let size = 1 << 12;
            if l.check(size, size).is_ok() {
                let eqs = eqs.iter().map(|&(o, n, len)| Equivalence { old_pos: o, new_pos: n, len }).collect();
                let p = Predictor::new(l, eqs);
                let (o, n) = at;
                let mut a = buf.clone();
                p.predict(&mut a, o, n);
                proptest::prop_assert_eq!(a.len(), buf.len());
            }
        }
    }
}
