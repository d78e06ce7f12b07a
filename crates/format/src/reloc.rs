//! Reference relocation for moved machine code: the shared core of the
//! `bsdiff-x86` op (docs/FORMAT.md §6.3), run identically by the encoder
//! and the applier.
//!
//! Between two releases of a program, code moves, and every call or jump
//! whose target moved by a different amount than the instruction itself
//! changes its relative displacement. A plain bsdiff pays a difference byte
//! for each. But the patch already knows how the file moved: its add
//! regions are equivalences, "old bytes at `o` became new bytes at `n`".
//! Before adding difference bytes to an add region, both sides rewrite
//! every x86-64 `call rel32`, `jmp rel32` and `jcc rel32` displacement in
//! it (inside the declared code ranges of the old file) so that it points
//! where its old target went in the new file. When the prediction is right,
//! the difference bytes are zeros. When it is wrong, the difference bytes
//! correct it; the output is the same either way, and every block is still
//! hash-checked.
//!
//! Nothing here reads input the caller has not bounded: the caller checks
//! ranges and equivalences against the old file's size first.

/// Most code ranges one file may declare.
pub const MAX_RANGES: usize = 64;
/// Most controls (add regions plus literal runs) of one `bsdiff-x86` file:
/// the applier holds them all, 48 bytes each with their equivalences.
pub const MAX_CONTROLS: usize = 1 << 17;
/// Longest add or extra region of one control in a `bsdiff-x86` file (the
/// applier holds one add region whole while relocating it).
pub const MAX_REGION: u64 = 1 << 20;
/// How many equivalences before the nearest one [`Relocator`] (and
/// `exe::Predictor`) looks at to find one that holds a target.
pub(crate) const LOOK_BACK: usize = 8;

/// One add region of a patch: `len` old bytes at `old_pos` became the new
/// bytes at `new_pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Equivalence {
    /// Offset in the old file.
    pub old_pos: u64,
    /// Offset in the new file.
    pub new_pos: u64,
    /// Length.
    pub len: u64,
}

/// Relocates branch displacements in add regions of one file.
#[derive(Debug, Clone)]
pub struct Relocator {
    /// Code ranges `[start, end)` of the old file, sorted, disjoint.
    ranges: Vec<(u64, u64)>,
    /// Equivalences sorted by old then new offset.
    by_old: Vec<Equivalence>,
}

impl Relocator {
    /// `ranges` must be sorted and disjoint (the applier checks what a
    /// package declares); `eqs` in any order.
    pub fn new(ranges: Vec<(u64, u64)>, mut eqs: Vec<Equivalence>) -> Self {
        eqs.retain(|e| e.len > 0);
        eqs.sort_by_key(|e| (e.old_pos, e.new_pos));
        Relocator {
            ranges,
            by_old: eqs,
        }
    }

    /// Where old offset `t` went in the new file: through the equivalence
    /// that starts last at or before `t` and holds it (looking back a few).
    fn map(&self, t: u64) -> Option<u64> {
        let end = self.by_old.partition_point(|e| e.old_pos <= t);
        self.by_old[end.saturating_sub(LOOK_BACK)..end]
            .iter()
            .rev()
            .find(|e| t - e.old_pos < e.len)
            .map(|e| e.new_pos + (t - e.old_pos))
    }

    fn in_code(&self, t: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= t);
        self.ranges.get(i).is_some_and(|r| r.0 <= t)
    }

    /// Rewrites, in `buf` (the old bytes at `old_pos`, about to become the
    /// new bytes at `new_pos`), every rel32 branch displacement that lies
    /// in a code range and targets code, to point where its target went.
    ///
    /// The scan is a linear sweep from the start of each code range's part
    /// of `buf`: `E8` and `E9` take the next 4 bytes as a displacement,
    /// `0F 80`..`0F 8F` the 4 after those, and the sweep resumes after the
    /// displacement. Only displacement bytes change, and only after the
    /// sweep has passed them, so the encoder and the applier (which see the
    /// same old bytes) rewrite the same places.
    pub fn predict(&self, buf: &mut [u8], old_pos: u64, new_pos: u64) {
        let len = buf.len() as u64;
        let Some(buf_end) = old_pos.checked_add(len) else {
            return;
        };
        for &(a, b) in &self.ranges {
            let lo = a.max(old_pos);
            let hi = b.min(buf_end);
            let mut i = lo;
            while i.saturating_add(5) <= hi {
                let k = (i - old_pos) as usize;
                let j = match buf[k] {
                    0xE8 | 0xE9 => i + 1,
                    0x0F if i + 6 <= hi && (0x80..=0x8F).contains(&buf[k + 1]) => i + 2,
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let kj = (j - old_pos) as usize;
                let mut d = [0u8; 4];
                d.copy_from_slice(&buf[kj..kj + 4]);
                let rel = i64::from(i32::from_le_bytes(d));
                let target = (j as i64).checked_add(4 + rel);
                if let Some(t) = target.filter(|&t| t >= 0).map(|t| t as u64)
                    && self.in_code(t)
                    && let Some(t_new) = self.map(t)
                {
                    let at_new = new_pos + (j - old_pos) + 4;
                    if let Ok(v) = i32::try_from(t_new as i64 - at_new as i64) {
                        buf[kj..kj + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                i = j + 4;
            }
        }
    }
}

/// Checks declared code ranges against the old file: at most
/// [`MAX_RANGES`], each non-empty, sorted, disjoint, inside `old_size`.
pub fn check_ranges(ranges: &[(u64, u64)], old_size: u64) -> Result<(), String> {
    if ranges.len() > MAX_RANGES {
        return Err(format!(
            "{} code ranges, at most {MAX_RANGES}",
            ranges.len()
        ));
    }
    let mut prev = 0;
    for &(a, b) in ranges {
        if a < prev || b <= a || b > old_size {
            return Err(format!(
                "code range {a}..{b} is empty, out of order or past the {old_size}-byte base"
            ));
        }
        prev = b;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at: u64, target: u64) -> [u8; 5] {
        let rel = (target as i64 - (at as i64 + 5)) as i32;
        let mut c = [0xE8, 0, 0, 0, 0];
        c[1..].copy_from_slice(&rel.to_le_bytes());
        c
    }

    #[test]
    fn a_call_into_moved_code_is_relocated() {
        // Old: a call at 0 to 100. New: the code at 100 moved to 164, the
        // call stayed.
        let mut old = [0x90u8; 200];
        old[..5].copy_from_slice(&call(0, 100));
        let eqs = vec![
            Equivalence {
                old_pos: 0,
                new_pos: 0,
                len: 100,
            },
            Equivalence {
                old_pos: 100,
                new_pos: 164,
                len: 100,
            },
        ];
        let r = Relocator::new(vec![(0, 200)], eqs);
        let mut buf = old[..100].to_vec();
        r.predict(&mut buf, 0, 0);
        assert_eq!(&buf[..5], &call(0, 164));
        // A call out of code, or to a target no equivalence holds, stays.
        let r = Relocator::new(vec![(0, 50)], vec![]);
        let mut buf = old[..100].to_vec();
        r.predict(&mut buf, 0, 0);
        assert_eq!(buf, old[..100]);
    }

    #[test]
    fn jcc_and_the_sweep_skip_displacements() {
        // 0F 84 rel32 (je) whose displacement bytes contain E8: the sweep
        // must not read it as a call.
        let mut old = [0x90u8; 64];
        old[0] = 0x0F;
        old[1] = 0x84;
        old[2..6].copy_from_slice(&(0xE8i32).to_le_bytes());
        let eqs = vec![Equivalence {
            old_pos: 0,
            new_pos: 10,
            len: 64,
        }];
        let r = Relocator::new(vec![(0, 64)], eqs);
        let mut buf = old;
        r.predict(&mut buf, 0, 10);
        // The whole block moved by 10, target outside (6 + 0xE8 > 64): as is.
        assert_eq!(buf, old);
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_ranges(&[(0, 10), (10, 20)], 20).is_ok());
        assert!(check_ranges(&[(0, 10), (5, 20)], 20).is_err());
        assert!(check_ranges(&[(0, 0)], 20).is_err());
        assert!(check_ranges(&[(0, 21)], 20).is_err());
        assert!(check_ranges(&vec![(0, 1); MAX_RANGES + 1], 20).is_err());
    }
}
