//! An x86-64 instruction length decoder that also reports an
//! instruction's 32-bit relative reference, for the `bsdiff-exe` op
//! (docs/FORMAT.md §6.4).
//!
//! The codec needs two facts about each instruction of old code: where it
//! ends (so that a linear sweep stays on instruction boundaries), and
//! whether it holds a 4-byte displacement relative to the next
//! instruction: `call`/`jmp rel32`, `jcc rel32`, and any operand
//! addressed `[rip + disp32]`. It never needs the operation itself, so
//! this is a table of opcode shapes (ModRM or not, which immediate), not
//! a disassembler. The tables are part of the format: encoder and applier
//! must agree on every byte sequence, including invalid ones, so they
//! change only together with a new op.
//!
//! Lengths follow the Intel SDM for 64-bit mode, with two choices made for
//! byte sequences a compiler does not emit: an opcode invalid in 64-bit
//! mode is one byte long, and an instruction longer than 15 bytes decodes
//! as one byte. `E8`/`E9`/`0F 8x` take a 4-byte displacement whatever the
//! operand-size prefix (as Intel processors do).

/// Longest x86 instruction.
const MAX_LEN: usize = 15;

/// One decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes (1..=15).
    pub len: usize,
    /// Offset, from the instruction's start, of a 4-byte displacement
    /// relative to the instruction's end, if it has one.
    pub rel32: Option<usize>,
}

/// The immediate an opcode takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Imm {
    None,
    /// 1 byte.
    B,
    /// 2 bytes.
    W,
    /// 2 bytes with an operand-size prefix, else 4.
    Z,
    /// 8 bytes with REX.W, else like [`Imm::Z`] (`mov r, imm`).
    V,
    /// 2 + 1 bytes (`enter`).
    WB,
    /// An 8-byte address, 4 with an address-size prefix (`mov` moffs).
    Moffs,
    /// A 4-byte displacement relative to the next instruction.
    Rel32,
    /// `F6`/`F7`: an immediate (B or Z) only for ModRM.reg 0 and 1.
    Group3(bool),
}

/// Shape of an opcode: whether a ModRM byte follows, and the immediate.
#[derive(Clone, Copy)]
struct Shape {
    modrm: bool,
    imm: Imm,
}

const fn s(modrm: bool, imm: Imm) -> Shape {
    Shape { modrm, imm }
}

/// The one-byte opcode map (prefixes and escapes are handled before it is
/// consulted; their entries here are never used).
fn one_byte(op: u8) -> Shape {
    use Imm::*;
    match op {
        // ALU ops: r/m forms, then AL/eAX with an immediate.
        0x00..=0x3F => match op & 7 {
            0..=3 => s(true, None),
            4 => s(false, B),
            5 => s(false, Z),
            _ => s(false, None), // invalid in 64-bit mode, or a prefix
        },
        0x40..=0x62 => s(false, None), // REX, push/pop, invalid 60-62
        0x63 => s(true, None),
        0x64..=0x67 => s(false, None),
        0x68 => s(false, Z),
        0x69 => s(true, Z),
        0x6A => s(false, B),
        0x6B => s(true, B),
        0x6C..=0x6F => s(false, None),
        0x70..=0x7F => s(false, B),
        0x80 | 0x82 | 0x83 => s(true, B),
        0x81 => s(true, Z),
        0x84..=0x8F => s(true, None),
        0x90..=0x9F => s(false, None),
        0xA0..=0xA3 => s(false, Moffs),
        0xA4..=0xA7 => s(false, None),
        0xA8 => s(false, B),
        0xA9 => s(false, Z),
        0xAA..=0xAF => s(false, None),
        0xB0..=0xB7 => s(false, B),
        0xB8..=0xBF => s(false, V),
        0xC0 | 0xC1 => s(true, B),
        0xC2 => s(false, W),
        0xC3 => s(false, None),
        0xC4 | 0xC5 => s(false, None), // VEX, handled before
        0xC6 => s(true, B),
        0xC7 => s(true, Z),
        0xC8 => s(false, WB),
        0xC9 => s(false, None),
        0xCA => s(false, W),
        0xCB | 0xCC => s(false, None),
        0xCD => s(false, B),
        0xCE | 0xCF => s(false, None),
        0xD0..=0xD3 => s(true, None),
        0xD4..=0xD7 => s(false, None),
        0xD8..=0xDF => s(true, None),
        0xE0..=0xE7 => s(false, B),
        0xE8 | 0xE9 => s(false, Rel32),
        0xEA => s(false, None),
        0xEB => s(false, B),
        0xEC..=0xF5 => s(false, None),
        0xF6 => s(true, Group3(false)),
        0xF7 => s(true, Group3(true)),
        0xF8..=0xFD => s(false, None),
        0xFE | 0xFF => s(true, None),
    }
}

/// The two-byte opcode map `0F xx` (`0F 38` and `0F 3A` are escapes).
fn two_byte(op: u8) -> Shape {
    use Imm::*;
    match op {
        0x00..=0x03 => s(true, None),
        0x04..=0x0C => s(false, None),
        0x0D => s(true, None),
        0x0E => s(false, None),
        0x0F => s(true, B), // 3DNow!: the opcode is a trailing byte
        0x10..=0x23 => s(true, None),
        0x24..=0x27 => s(false, None),
        0x28..=0x2F => s(true, None),
        0x30..=0x3F => s(false, None),
        0x40..=0x6F => s(true, None),
        0x70..=0x73 => s(true, B),
        0x74..=0x76 => s(true, None),
        0x77 => s(false, None),
        0x78 | 0x79 => s(true, None),
        0x7A | 0x7B => s(false, None),
        0x7C..=0x7F => s(true, None),
        0x80..=0x8F => s(false, Rel32),
        0x90..=0x9F => s(true, None),
        0xA0..=0xA2 => s(false, None),
        0xA3 => s(true, None),
        0xA4 => s(true, B),
        0xA5 => s(true, None),
        0xA6..=0xAA => s(false, None),
        0xAB => s(true, None),
        0xAC => s(true, B),
        0xAD..=0xB9 => s(true, None),
        0xBA => s(true, B),
        0xBB..=0xC1 => s(true, None),
        0xC2 => s(true, B),
        0xC3 => s(true, None),
        0xC4..=0xC6 => s(true, B),
        0xC7 => s(true, None),
        0xC8..=0xCF => s(false, None),
        0xD0..=0xFF => s(true, None),
    }
}

/// Shape of `op` in opcode map `map` (1 = `0F`, 2 = `0F 38`, 3 = `0F 3A`;
/// VEX and EVEX maps 5 and 6 are shaped like 1 and 2, XOP map 8 like 3
/// and XOP map 10 takes a 4-byte immediate).
fn in_map(map: u8, op: u8) -> Shape {
    match map {
        1 | 5 => two_byte(op),
        2 | 6 | 9 => s(true, Imm::None),
        3 | 8 => s(true, Imm::B),
        10 => s(true, Imm::Z),
        _ => s(true, Imm::None),
    }
}

/// Decodes the instruction at the start of `code` (64-bit mode). Returns
/// `None` when `code` ends before the instruction does.
pub fn decode(code: &[u8]) -> Option<Insn> {
    let one = Insn {
        len: 1,
        rel32: None,
    };
    let mut i = 0;
    let mut opsize16 = false;
    let mut addr32 = false;
    let mut rex_w = false;
    // Legacy prefixes, then at most one REX directly before the opcode.
    loop {
        match *code.get(i)? {
            0x66 => opsize16 = true,
            0x67 => addr32 = true,
            0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0xF0 | 0xF2 | 0xF3 => {}
            _ => break,
        }
        i += 1;
        if i >= MAX_LEN {
            return Some(one);
        }
    }
    if let 0x40..=0x4F = *code.get(i)? {
        rex_w = code[i] & 8 != 0;
        i += 1;
    }
    let b0 = *code.get(i)?;
    let shape = match b0 {
        0x0F => {
            let b1 = *code.get(i + 1)?;
            match b1 {
                0x38 => {
                    i += 3;
                    in_map(2, 0)
                }
                0x3A => {
                    i += 3;
                    in_map(3, 0)
                }
                _ => {
                    i += 2;
                    two_byte(b1)
                }
            }
        }
        // VEX (2- and 3-byte) and EVEX: the map is in the prefix; a ModRM
        // byte always follows the opcode, but for vzeroupper/vzeroall.
        0xC5 => {
            let op = *code.get(i + 2)?;
            i += 3;
            if op == 0x77 {
                s(false, Imm::None)
            } else {
                in_map(1, op)
            }
        }
        0xC4 => {
            let map = *code.get(i + 1)? & 0x1F;
            rex_w = *code.get(i + 2)? & 0x80 != 0;
            let op = *code.get(i + 3)?;
            i += 4;
            if map == 1 && op == 0x77 {
                s(false, Imm::None)
            } else {
                in_map(map, op)
            }
        }
        0x62 => {
            let map = *code.get(i + 1)? & 0x07;
            let op = *code.get(i + 4)?;
            i += 5;
            s(true, in_map(map, op).imm)
        }
        // XOP (AMD) when the map field is 8 or more, else `pop r/m`.
        0x8F if *code.get(i + 1)? & 0x1F >= 8 => {
            let map = code[i + 1] & 0x1F;
            let op = *code.get(i + 3)?;
            i += 4;
            let _ = op;
            in_map(map, 0)
        }
        _ => {
            i += 1;
            one_byte(b0)
        }
    };
    let mut rel32 = None;
    let mut reg = 0;
    if shape.modrm {
        let m = *code.get(i)?;
        i += 1;
        reg = (m >> 3) & 7;
        let (md, rm) = (m >> 6, m & 7);
        if md != 3 && rm == 4 {
            let sib = *code.get(i)?;
            i += 1;
            if md == 0 && sib & 7 == 5 {
                i += 4;
            }
        }
        match md {
            0 if rm == 5 => {
                rel32 = Some(i);
                i += 4;
            }
            1 => i += 1,
            2 => i += 4,
            _ => {}
        }
    }
    let z = if opsize16 { 2 } else { 4 };
    i += match shape.imm {
        Imm::None => 0,
        Imm::B => 1,
        Imm::W => 2,
        Imm::Z => z,
        Imm::V if rex_w => 8,
        Imm::V => z,
        Imm::WB => 3,
        Imm::Moffs if addr32 => 4,
        Imm::Moffs => 8,
        Imm::Rel32 => {
            rel32 = Some(i);
            4
        }
        Imm::Group3(wide) if reg <= 1 => {
            if wide {
                z
            } else {
                1
            }
        }
        Imm::Group3(_) => 0,
    };
    if i > MAX_LEN {
        return Some(one);
    }
    if i > code.len() {
        return None;
    }
    Some(Insn { len: i, rel32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(bytes: &[u8]) -> (usize, Option<usize>) {
        let i = decode(bytes).expect("complete");
        (i.len, i.rel32)
    }

    #[test]
    fn lengths_and_references_of_common_instructions() {
        // Checked against objdump.
        let cases: &[(&[u8], usize, Option<usize>)] = &[
            (&[0xE8, 1, 2, 3, 4], 5, Some(1)),                    // call rel32
            (&[0xE9, 1, 2, 3, 4], 5, Some(1)),                    // jmp rel32
            (&[0x0F, 0x84, 1, 2, 3, 4], 6, Some(2)),              // je rel32
            (&[0xEB, 0x10], 2, None),                             // jmp rel8
            (&[0x48, 0x8D, 0x05, 1, 2, 3, 4], 7, Some(3)),        // lea rax,[rip+d]
            (&[0x48, 0x8B, 0x0D, 1, 2, 3, 4], 7, Some(3)),        // mov rcx,[rip+d]
            (&[0xFF, 0x15, 1, 2, 3, 4], 6, Some(2)),              // call [rip+d]
            (&[0xFF, 0x25, 1, 2, 3, 4], 6, Some(2)),              // jmp [rip+d]
            (&[0xC7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8], 10, Some(2)), // mov dword [rip+d], imm32
            (&[0x80, 0x3D, 1, 2, 3, 4, 9], 7, Some(2)),           // cmp byte [rip+d], imm8
            (&[0x66, 0x0F, 0x6F, 0x05, 1, 2, 3, 4], 8, Some(4)),  // movdqa xmm0,[rip+d]
            (&[0xC5, 0xF9, 0x6F, 0x05, 1, 2, 3, 4], 8, Some(4)),  // vmovdqa xmm0,[rip+d]
            (&[0xC4, 0xE2, 0x79, 0x18, 0x05, 1, 2, 3, 4], 9, Some(5)), // vbroadcastss
            (&[0x48, 0x89, 0xE5], 3, None),                       // mov rbp,rsp
            (&[0x48, 0x8B, 0x44, 0x24, 0x08], 5, None),           // mov rax,[rsp+8]
            (&[0x48, 0x8B, 0x04, 0x25, 1, 2, 3, 4], 8, None),     // mov rax,[abs32] (SIB)
            (&[0x48, 0xB8, 1, 2, 3, 4, 5, 6, 7, 8], 10, None),    // movabs rax, imm64
            (&[0xB8, 1, 2, 3, 4], 5, None),                       // mov eax, imm32
            (&[0x66, 0xB8, 1, 2], 4, None),                       // mov ax, imm16
            (&[0xF7, 0xC1, 1, 2, 3, 4], 6, None),                 // test ecx, imm32
            (&[0xF7, 0xD9], 2, None),                             // neg ecx
            (&[0x66, 0x0F, 0x1F, 0x44, 0, 0], 6, None),           // nopw
            (&[0x0F, 0x3A, 0x0F, 0xC1, 8], 5, None),              // palignr
            (&[0x0F, 0x38, 0x00, 0xC1], 4, None),                 // pshufb
            (&[0xC5, 0xF8, 0x77], 3, None),                       // vzeroupper
            (
                &[0x62, 0xF1, 0x7C, 0x48, 0x10, 0x05, 1, 2, 3, 4],
                10,
                Some(6),
            ), // vmovups zmm0,[rip+d]
            (&[0xF3, 0x0F, 0x1E, 0xFA], 4, None),                 // endbr64
            (&[0xC8, 1, 2, 3], 4, None),                          // enter
            (&[0x48, 0xA1, 1, 2, 3, 4, 5, 6, 7, 8], 10, None),    // movabs rax, moffs
            (&[0xCC], 1, None),                                   // int3
        ];
        for &(bytes, len, rel) in cases {
            assert_eq!(d(bytes), (len, rel), "{bytes:02x?}");
        }
    }

    #[test]
    fn truncated_and_overlong_input() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0xE8, 1, 2]), None);
        assert_eq!(decode(&[0x48]), None);
        // 15 prefixes and an opcode: too long, decodes as one byte.
        let mut v = vec![0x66u8; 15];
        v.push(0x90);
        assert_eq!(d(&v), (1, None));
        // Every byte sequence decodes to something (or runs out).
        for a in 0..=255u8 {
            for b in [0u8, 0x05, 0x44, 0xFF] {
                let v = [
                    a, b, 0x05, 0x24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                ];
                let i = decode(&v).expect("long enough");
                assert!((1..=MAX_LEN).contains(&i.len));
                if let Some(r) = i.rel32 {
                    assert!(r + 4 <= i.len);
                }
            }
        }
    }

    proptest::proptest! {
        /// Any bytes decode to an instruction of 1..=15 bytes whose
        /// reference lies inside it, or run out.
        #[test]
        fn any_bytes_decode(code in proptest::collection::vec(proptest::num::u8::ANY, 0..32)) {
            match decode(&code) {
                Some(i) => {
                    proptest::prop_assert!((1..=MAX_LEN).contains(&i.len));
                    proptest::prop_assert!(i.len <= code.len());
                    if let Some(r) = i.rel32 {
                        proptest::prop_assert!(r + 4 <= i.len);
                    }
                }
                None => proptest::prop_assert!(code.len() < MAX_LEN),
            }
        }
    }
}
