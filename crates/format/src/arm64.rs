//! The arm64 (AArch64) instructions that hold references, for the
//! `bsdiff-exe` op (docs/FORMAT.md §6.4.2).
//!
//! Instructions are 4 bytes, little-endian, 4-aligned, so a sweep needs no
//! length decoder; what it needs is which instructions refer to an
//! address, where their immediate is, and how to re-encode it:
//!
//! - `B` and `BL`: a 26-bit word offset from the instruction;
//! - `LDR` (literal, the integer and SIMD forms) and `ADR`: a 19-bit word
//!   or 21-bit byte offset;
//! - `ADRP`: the 4 KiB page of the target, as a 21-bit page offset from
//!   the instruction's page; the low 12 bits come from a later `ADD`
//!   (immediate) or load/store (unsigned offset) that takes the `ADRP`'s
//!   register as its base: the pair names one address.
//!
//! Conditional branches, `CBZ` and `TBZ` are left alone: their targets are
//! in the same function, which moves with them. Like [`crate::x86`], these
//! encodings are part of the format.

/// How far after an `ADRP` its `ADD` or load/store is looked for, in
/// instructions.
pub const PAIR_WINDOW: usize = 8;

/// A reference held by one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    /// `B`/`BL`/`LDR` literal/`ADR`: the target is the instruction's
    /// address plus this many bytes.
    Pc(i64),
    /// `ADRP`: the target page is the instruction's page plus this many
    /// bytes (a multiple of 4096); the register it writes.
    Page(i64, u32),
}

/// The instruction word at the start of `b` (which must hold 4 bytes).
pub fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn sext(v: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    (i64::from(v) << shift) >> shift
}

/// The reference `w` holds, if any.
pub fn reference(w: u32) -> Option<Ref> {
    if w & 0x7C00_0000 == 0x1400_0000 {
        // B (bit 31 = 0) and BL (1): imm26 words.
        Some(Ref::Pc(sext(w & 0x03FF_FFFF, 26) * 4))
    } else if w & 0x3B00_0000 == 0x1800_0000 {
        // LDR (literal), every size, integer and SIMD, and PRFM (literal):
        // imm19 words.
        Some(Ref::Pc(sext((w >> 5) & 0x7_FFFF, 19) * 4))
    } else if w & 0x1F00_0000 == 0x1000_0000 {
        // ADR (bit 31 = 0) and ADRP (1): immhi:immlo, bytes or pages.
        let imm = sext(((w >> 5) & 0x7_FFFF) << 2 | (w >> 29) & 3, 21);
        Some(if w & 0x8000_0000 == 0 {
            Ref::Pc(imm)
        } else {
            Ref::Page(imm << 12, w & 31)
        })
    } else {
        None
    }
}

/// `w` with its reference re-encoded to `rel` (bytes, or page bytes for
/// `ADRP`), if `rel` is representable; `w` must hold a reference.
pub fn with_reference(w: u32, rel: i64) -> Option<u32> {
    let fits = |v: i64, bits: u32| v >= -(1 << (bits - 1)) && v < 1 << (bits - 1);
    if w & 0x7C00_0000 == 0x1400_0000 {
        let v = rel / 4;
        (rel % 4 == 0 && fits(v, 26)).then_some(w & !0x03FF_FFFF | (v as u32 & 0x03FF_FFFF))
    } else if w & 0x3B00_0000 == 0x1800_0000 {
        let v = rel / 4;
        (rel % 4 == 0 && fits(v, 19)).then_some(w & !(0x7_FFFF << 5) | (v as u32 & 0x7_FFFF) << 5)
    } else if w & 0x1F00_0000 == 0x1000_0000 {
        let v = if w & 0x8000_0000 == 0 {
            rel
        } else if rel % 4096 == 0 {
            rel / 4096
        } else {
            return None;
        };
        fits(v, 21).then(|| {
            let v = v as u32 & 0x1F_FFFF;
            w & !(0x7_FFFF << 5 | 3 << 29) | (v >> 2) << 5 | (v & 3) << 29
        })
    } else {
        None
    }
}

/// If `w` takes the low 12 bits of an address from base register `reg`
/// (`ADD` immediate, or a load/store with an unsigned offset): those bits,
/// and the scale its immediate counts in (log2 bytes).
pub fn low12(w: u32, reg: u32) -> Option<(u64, u32)> {
    if (w >> 5) & 31 != reg {
        return None;
    }
    if w & 0xFFC0_0000 == 0x9100_0000 {
        // ADD Xd, Xn, #imm12 (64-bit, unshifted).
        Some((u64::from((w >> 10) & 0xFFF), 0))
    } else if w & 0x3B00_0000 == 0x3900_0000 {
        // LDR/STR (unsigned offset): size in bits 31:30; with V (bit 26)
        // and opc bit 1 (bit 23) at size 0, a 128-bit access.
        let size = w >> 30;
        let scale = if w & (1 << 26) != 0 && w & (1 << 23) != 0 && size == 0 {
            4
        } else {
            size
        };
        Some((u64::from((w >> 10) & 0xFFF) << scale, scale))
    } else {
        None
    }
}

/// `w` (a [`low12`] instruction with scale `scale`) with its low 12 bits
/// set to `lo`, if `lo` is a multiple of the scale.
pub fn with_low12(w: u32, lo: u64, scale: u32) -> Option<u32> {
    (lo & ((1 << scale) - 1) == 0 && lo < 4096)
        .then(|| w & !(0xFFF << 10) | ((lo >> scale) as u32 & 0xFFF) << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_decode_and_reencode() {
        // Encodings checked against GNU as (aarch64-linux-gnu).
        let cases: &[(u32, Ref)] = &[
            (0x9400_0010, Ref::Pc(0x40)),       // bl .+0x40
            (0x97FF_FFFF, Ref::Pc(-4)),         // bl .-4
            (0x1400_0002, Ref::Pc(8)),          // b .+8
            (0x5800_0040, Ref::Pc(8)),          // ldr x0, .+8
            (0x1800_0041, Ref::Pc(8)),          // ldr w1, .+8
            (0x9800_0040, Ref::Pc(8)),          // ldrsw x0, .+8
            (0x9C00_0040, Ref::Pc(8)),          // ldr q0, .+8
            (0x1000_0040, Ref::Pc(8)),          // adr x0, .+8
            (0x3000_0000, Ref::Pc(1)),          // adr x0, .+1
            (0x9000_0001, Ref::Page(0, 1)),     // adrp x1, .
            (0xB000_0001, Ref::Page(4096, 1)),  // adrp x1, .+0x1000
            (0xF0FF_FFE2, Ref::Page(-4096, 2)), // adrp x2, .-0x1000
        ];
        for &(w, r) in cases {
            assert_eq!(reference(w), Some(r), "{w:#010x}");
            let rel = match r {
                Ref::Pc(v) | Ref::Page(v, _) => v,
            };
            assert_eq!(with_reference(w, rel), Some(w), "{w:#010x}");
        }
        // Re-encoding moves the target and keeps everything else.
        let w = with_reference(0x9400_0010, -0x1000).unwrap();
        assert_eq!(reference(w), Some(Ref::Pc(-0x1000)));
        assert_eq!(w & 0xFC00_0000, 0x9400_0000);
        let w = with_reference(0x9000_0001, 0x12_3000).unwrap();
        assert_eq!(reference(w), Some(Ref::Page(0x12_3000, 1)));
        // Out of range or misaligned: no encoding.
        assert_eq!(with_reference(0x9400_0010, 1 << 28), None);
        assert_eq!(with_reference(0x9400_0010, 2), None);
        assert_eq!(with_reference(0x9000_0001, 100), None);
        // Not references: add, ret, nop, b.cond, cbz.
        for w in [
            0x9100_4000u32,
            0xD65F_03C0,
            0xD503_201F,
            0x5400_0040,
            0xB400_0040,
        ] {
            assert_eq!(reference(w), None, "{w:#010x}");
        }
    }

    #[test]
    fn low_bits_of_adrp_pairs() {
        // add x1, x1, #0x123
        assert_eq!(low12(0x9104_8C21, 1), Some((0x123, 0)));
        assert_eq!(low12(0x9104_8C21, 2), None);
        // ldr x0, [x1, #0x10] (scaled by 8), ldr w0, [x1, #4], ldrb w0, [x1, #3]
        assert_eq!(low12(0xF940_0820, 1), Some((0x10, 3)));
        assert_eq!(low12(0xB940_0420, 1), Some((4, 2)));
        assert_eq!(low12(0x3940_0C20, 1), Some((3, 0)));
        // ldr q0, [x1, #0x20] (scaled by 16)
        assert_eq!(low12(0x3DC0_0820, 1), Some((0x20, 4)));
        let w = with_low12(0xF940_0820, 0x18, 3).unwrap();
        assert_eq!(low12(w, 1), Some((0x18, 3)));
        assert_eq!(with_low12(0xF940_0820, 0x14, 3), None);
        assert_eq!(with_low12(0x9104_8C21, 4096, 0), None);
    }
}
