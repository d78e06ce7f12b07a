//! Recognising executables and choosing where the `bsdiff-exe` codec
//! looks for references (see `deltapack_format::exe`).
//!
//! [`Candidates::of`] reads the section and segment tables of an old and a
//! new ELF, PE or Mach-O file (x86-64 or arm64) with `object` and gives the layout
//! without scans: both files' segments, and where each old section went
//! (sections paired by name). Its code sections are always scanned; its
//! other sections are candidates for each data scan kind. Which kind pays
//! depends on what the section holds (pointers, PC-relative unwind
//! offsets, offsets from the section's start, or none of these), so
//! [`Candidates::layout`] measures each kind on the patch's own
//! equivalences and keeps, per section, the one that makes the most old
//! bytes equal to the new ones, if any does. Nothing here is specific to a
//! compiler or a program: the measurement decides.
//!
//! Anything else (another architecture, a file that does not parse, old
//! and new of different kinds) has no candidates and gets the generic
//! codecs.

use deltapack_format::arm64;
use deltapack_format::exe::{self, Arch, Layout, Move, Predictor, Scan, ScanKind, Segment};
use deltapack_format::reloc::Equivalence;
use object::{Architecture, Object, ObjectSection, ObjectSegment, SectionFlags, SectionKind};

use rayon::prelude::*;

use crate::bsdiff::Block;

/// A scan kind is kept for a section when it makes at least this many
/// more bytes right than wrong (a scan costs a few header bytes, and a
/// handful of lucky bytes is noise).
const MIN_GAIN: i64 = 16;

/// What the two files' headers say, before any scan is chosen.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    base: Layout,
    /// Code sections of the old file: file ranges.
    code: Vec<(u64, u64)>,
    /// Other file-backed sections of the old file: file range and address.
    data: Vec<(u64, u64, u64)>,
    /// Code sections of the new file.
    new_code: Vec<(u64, u64)>,
}

/// A section of a file: file range (if any), address, size, name, and
/// whether it holds code.
struct Section {
    file: Option<(u64, u64)>,
    va: u64,
    size: u64,
    name: String,
    code: bool,
}

/// The sections that are loaded, but thread-local ones: their addresses
/// are templates, which code reaches through offsets, not addresses.
fn sections(file: &object::File<'_>, len: u64) -> Vec<Section> {
    file.sections()
        .filter(|s| s.address() != 0 || s.kind() == SectionKind::Text)
        .filter(|s| !matches!(s.kind(), SectionKind::Tls | SectionKind::UninitializedTls))
        .map(|s| Section {
            file: s
                .file_range()
                .filter(|&(o, l)| l > 0 && o.checked_add(l).is_some_and(|e| e <= len)),
            va: s.address(),
            size: s.size(),
            name: s.name().unwrap_or("").to_owned(),
            code: s.kind() == SectionKind::Text || has_instructions(s.flags()),
        })
        .collect()
}

/// The loaded segments with file bytes, sorted by file offset and
/// disjoint (a segment overlapping the one before it is left out).
fn segments(file: &object::File<'_>, len: u64) -> Vec<Segment> {
    let mut segs: Vec<Segment> = file
        .segments()
        .filter_map(|s| {
            let (file_off, flen) = s.file_range();
            let end = file_off.checked_add(flen)?;
            (flen > 0 && end <= len && s.address().checked_add(flen).is_some()).then_some(Segment {
                file_off,
                len: flen,
                va: s.address(),
            })
        })
        .collect();
    segs.sort_by_key(|s| s.file_off);
    let mut out: Vec<Segment> = Vec::with_capacity(segs.len());
    for s in segs {
        match out.last() {
            Some(p) if s.file_off < p.file_off + p.len => {}
            _ => out.push(s),
        }
    }
    out.truncate(exe::MAX_SEGMENTS);
    out
}

impl Candidates {
    /// The candidates for diffing `old` against `new`, if both are
    /// executables or libraries with code, of the same container and
    /// architecture (x86-64 or arm64).
    pub(crate) fn of(old: &[u8], new: &[u8]) -> Option<Candidates> {
        let fo = object::File::parse(old).ok()?;
        let fnew = object::File::parse(new).ok()?;
        let arch = match fo.architecture() {
            Architecture::X86_64 => Arch::X86_64,
            Architecture::Aarch64 => Arch::Arm64,
            _ => return None,
        };
        if fnew.architecture() != fo.architecture() || fo.format() != fnew.format() {
            return None;
        }
        let (olen, nlen) = (old.len() as u64, new.len() as u64);
        let old_secs = sections(&fo, olen);
        let new_secs = sections(&fnew, nlen);
        let base_old = segments(&fo, olen);
        let base_new = segments(&fnew, nlen);
        if base_old.is_empty() || base_new.is_empty() {
            return None;
        }
        // Pair sections by name (the n-th of a name with the n-th).
        let mut moves = Vec::new();
        for (i, s) in old_secs.iter().enumerate() {
            let nth = old_secs[..i].iter().filter(|o| o.name == s.name).count();
            if let Some(n) = new_secs.iter().filter(|n| n.name == s.name).nth(nth)
                && s.size > 0
            {
                moves.push(Move {
                    old_va: s.va,
                    len: s.size,
                    new_va: n.va,
                });
            }
        }
        moves.sort_by_key(|m| (m.old_va, m.len));
        // Disjoint, and neighbours that moved by the same amount merged
        // into one (the gap between them moved the same way too).
        let mut disjoint: Vec<Move> = Vec::with_capacity(moves.len());
        for m in moves {
            let fits = m.new_va.checked_add(m.len).is_some()
                && m.old_va.checked_add(m.len).is_some()
                && disjoint.last().is_none_or(|p| m.old_va >= p.old_va + p.len);
            if !fits {
                continue;
            }
            match disjoint.last_mut() {
                Some(p) if p.new_va.wrapping_sub(p.old_va) == m.new_va.wrapping_sub(m.old_va) => {
                    p.len = m.old_va + m.len - p.old_va;
                }
                _ => disjoint.push(m),
            }
        }
        disjoint.truncate(exe::MAX_MOVES);
        let mut code: Vec<(u64, u64)> = Vec::new();
        let mut data = Vec::new();
        for s in &old_secs {
            if let Some((off, len)) = s.file {
                if s.code {
                    code.push((off, off + len));
                } else {
                    data.push((off, off + len, s.va));
                }
            }
        }
        code.sort_unstable();
        let mut new_code: Vec<(u64, u64)> = new_secs
            .iter()
            .filter(|s| s.code)
            .filter_map(|s| s.file.map(|(o, l)| (o, o + l)))
            .collect();
        new_code.sort_unstable();
        if code.is_empty() || new_code.is_empty() {
            return None;
        }
        data.sort_unstable();
        let base = Layout {
            arch,
            old: base_old,
            new: base_new,
            moves: disjoint,
            scans: Vec::new(),
        };
        // Built to pass; a file odd enough to defeat that gets the
        // generic codecs rather than a package the applier refuses.
        base.check(olen, nlen).ok()?;
        Some(Candidates {
            base,
            code,
            data,
            new_code,
        })
    }

    /// `old` with every reference predicted through `layout` and the
    /// equivalences of `blocks`, each old byte taken to where the longest
    /// equivalence that holds it puts it (bytes no equivalence holds stay
    /// as they are).
    pub(crate) fn predicted_old(&self, old: &[u8], layout: &Layout, blocks: &[Block]) -> Vec<u8> {
        let eqs = equivalences(blocks);
        let mut by_len: Vec<Equivalence> = eqs.clone();
        by_len.sort_by_key(|e| (e.len, e.old_pos, e.new_pos));
        let p = Predictor::new(layout.clone(), eqs);
        let mut out = old.to_vec();
        let mut buf = Vec::new();
        // Shortest first, so that the longest equivalence over a byte
        // writes it last.
        for e in by_len {
            let r = e.old_pos as usize..(e.old_pos + e.len) as usize;
            buf.clear();
            buf.extend_from_slice(&old[r.clone()]);
            p.predict(&mut buf, e.old_pos, e.new_pos);
            out[r].copy_from_slice(&buf);
        }
        out
    }

    /// Copies of `old` and `new` for matching, with every reference in
    /// code replaced by a label of its target: a hash of the target's
    /// first bytes (themselves with references zeroed), or zero when the
    /// target has no file bytes. Code that moved but still refers to the
    /// same things then reads the same in both, so the matcher finds it.
    pub(crate) fn normalized(&self, old: &[u8], new: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let arch = self.base.arch;
        rayon::join(
            || normalize(old, arch, &self.code, &self.base.old),
            || normalize(new, arch, &self.new_code, &self.base.new),
        )
    }

    /// The layout for a patch made of `blocks`: the scan kind that gains
    /// most on each section, where one gains at least [`MIN_GAIN`] bytes.
    pub(crate) fn layout(&self, old: &[u8], new: &[u8], blocks: &[Block]) -> Layout {
        let eqs = equivalences(blocks);
        // The sections, clipped to be disjoint (sections may overlap or
        // nest in odd files): (start, end, address or None for code).
        let mut ranges: Vec<(u64, u64, Option<u64>)> =
            self.code.iter().map(|&(a, b)| (a, b, None)).collect();
        ranges.extend(self.data.iter().map(|&(a, b, va)| (a, b, Some(va))));
        ranges.sort_unstable();
        let mut sections: Vec<(u64, u64, Option<u64>)> = Vec::with_capacity(ranges.len());
        for (start, end, va) in ranges {
            let start = sections.last().map_or(start, |p| start.max(p.1));
            if start < end {
                sections.push((start, end, va));
            }
        }
        // Each kind over every section it may hold, measured in one pass
        // per kind (in parallel).
        let kinds: [fn(u64) -> ScanKind; 4] = [
            |_| ScanKind::Code,
            |_| ScanKind::Abs64,
            |_| ScanKind::Rel32,
            |va| ScanKind::Rel32From { base: va },
        ];
        let per_kind: Vec<Vec<(usize, Scan, i64)>> = kinds
            .par_iter()
            .enumerate()
            .map(|(k, kind)| {
                let scans: Vec<(usize, Scan)> = sections
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.2.is_none() == (k == 0))
                    .map(|(i, &(start, end, va))| {
                        let kind = kind(va.unwrap_or(0));
                        (i, Scan { kind, start, end })
                    })
                    .collect();
                let gains = self.gains(&scans, &eqs, old, new, blocks);
                scans
                    .into_iter()
                    .zip(gains)
                    .map(|((i, s), g)| (i, s, g))
                    .collect()
            })
            .collect();
        let mut best: Vec<Option<(i64, Scan)>> = vec![None; sections.len()];
        for (i, scan, g) in per_kind.into_iter().flatten() {
            if g >= MIN_GAIN && best[i].is_none_or(|(bg, _)| g > bg) {
                best[i] = Some((g, scan));
            }
        }
        let mut scans: Vec<Scan> = best.into_iter().flatten().map(|(_, s)| s).collect();
        // Past the bound (no real file comes near it), the first ones.
        scans.truncate(exe::MAX_SCANS);
        let layout = Layout {
            scans,
            ..self.base.clone()
        };
        debug_assert_eq!(
            layout.check(old.len() as u64, new.len() as u64),
            Ok(()),
            "scans come from checked sections"
        );
        layout
    }

    /// For each of `scans` (sorted, disjoint, of one kind), how many more
    /// bytes of the new file it predicts right than plain bsdiff does
    /// (wrongly predicted bytes count against it).
    fn gains(
        &self,
        scans: &[(usize, Scan)],
        eqs: &[Equivalence],
        old: &[u8],
        new: &[u8],
        blocks: &[Block],
    ) -> Vec<i64> {
        let mut gains = vec![0i64; scans.len()];
        if scans.is_empty() {
            return gains;
        }
        let p = Predictor::new(
            Layout {
                scans: scans.iter().map(|&(_, s)| s).collect(),
                ..self.base.clone()
            },
            eqs.to_vec(),
        );
        let mut out = Vec::new();
        for b in blocks {
            let (o, len) = (b.old_pos as u64, b.add_len as u64);
            let first = scans.partition_point(|(_, s)| s.end <= o);
            if scans.get(first).is_none_or(|(_, s)| s.start >= o + len) {
                continue;
            }
            let src = &old[b.old_pos..b.old_pos + b.add_len];
            out.clear();
            out.extend_from_slice(src);
            p.predict(&mut out, o, b.new_pos as u64);
            let target = &new[b.new_pos..b.new_pos + b.add_len];
            for (j, (_, s)) in scans.iter().enumerate().skip(first) {
                if s.start >= o + len {
                    break;
                }
                let lo = (s.start.max(o) - o) as usize;
                let hi = (s.end.min(o + len) - o) as usize;
                for ((a, b), t) in src[lo..hi].iter().zip(&out[lo..hi]).zip(&target[lo..hi]) {
                    gains[j] += i64::from(b == t) - i64::from(a == t);
                }
            }
        }
        gains
    }
}

/// The equivalences of a patch: its add regions.
pub(crate) fn equivalences(blocks: &[Block]) -> Vec<Equivalence> {
    blocks
        .iter()
        .filter(|b| b.add_len > 0)
        .map(|b| Equivalence {
            old_pos: b.old_pos as u64,
            new_pos: b.new_pos as u64,
            len: b.add_len as u64,
        })
        .collect()
}

/// Bytes of a target that make its label.
const LABEL_BYTES: usize = 16;

/// The bits of one reference: the little-endian 4 bytes at `at`, the
/// bits of `mask` in them.
#[derive(Clone, Copy)]
struct Site {
    at: usize,
    mask: u32,
}

/// One reference in code: where its bits are (two sites for an arm64
/// `ADRP` pair) and its target's file offset, if it has one.
struct Reference {
    sites: [Option<Site>; 2],
    target: Option<u64>,
}

/// Every reference in the `code` ranges of `data`.
fn references(data: &[u8], arch: Arch, code: &[(u64, u64)], segs: &[Segment]) -> Vec<Reference> {
    let mut by_va = segs.to_vec();
    by_va.sort_by_key(|s| s.va);
    let target_off = |t: i128| {
        u64::try_from(t)
            .ok()
            .and_then(|t| exe::va_to_off(&by_va, t))
    };
    let va = |off: usize| exe::off_to_va(segs, off as u64).map(i128::from);
    let mut refs = Vec::new();
    for &(a, b) in code {
        let (a, b) = (a as usize, b as usize);
        match arch {
            Arch::X86_64 => {
                let mut i = a;
                while let Some(insn) = deltapack_format::x86::decode(&data[i..b]) {
                    if let Some(r) = insn.rel32 {
                        let d = i + r;
                        let v = i128::from(i32::from_le_bytes([
                            data[d],
                            data[d + 1],
                            data[d + 2],
                            data[d + 3],
                        ]));
                        refs.push(Reference {
                            sites: [Some(Site { at: d, mask: !0 }), None],
                            target: va(i + insn.len).and_then(|end| target_off(end + v)),
                        });
                    }
                    i += insn.len;
                }
            }
            Arch::Arm64 => {
                let mut p = a;
                while p + 4 <= b {
                    let w = arm64::word(&data[p..]);
                    let pc = va(p);
                    match arm64::reference(w) {
                        Some(arm64::Ref::Pc(rel)) => refs.push(Reference {
                            sites: [
                                Some(Site {
                                    at: p,
                                    mask: imm_mask(w),
                                }),
                                None,
                            ],
                            target: pc.and_then(|pc| target_off(pc + i128::from(rel))),
                        }),
                        Some(arm64::Ref::Page(rel, reg)) => {
                            let pair = (1..=arm64::PAIR_WINDOW)
                                .map(|j| p + 4 * j)
                                .take_while(|&q| q + 4 <= b)
                                .find_map(|q| {
                                    Some((q, arm64::low12(arm64::word(&data[q..]), reg)?))
                                });
                            if let Some((q, (lo, _))) = pair {
                                refs.push(Reference {
                                    sites: [
                                        Some(Site {
                                            at: p,
                                            mask: imm_mask(w),
                                        }),
                                        Some(Site {
                                            at: q,
                                            mask: 0xFFF << 10,
                                        }),
                                    ],
                                    target: pc.and_then(|pc| {
                                        target_off((pc & !0xFFF) + i128::from(rel) + i128::from(lo))
                                    }),
                                });
                            }
                        }
                        None => {}
                    }
                    p += 4;
                }
            }
        }
    }
    refs
}

/// The immediate bits of an arm64 instruction that holds a reference.
fn imm_mask(w: u32) -> u32 {
    if w & 0x7C00_0000 == 0x1400_0000 {
        0x03FF_FFFF
    } else if w & 0x1F00_0000 == 0x1000_0000 {
        0x7_FFFF << 5 | 3 << 29
    } else {
        0x7_FFFF << 5
    }
}

fn normalize(data: &[u8], arch: Arch, code: &[(u64, u64)], segs: &[Segment]) -> Vec<u8> {
    let refs = references(data, arch, code, segs);
    let get =
        |d: &[u8], s: Site| u32::from_le_bytes([d[s.at], d[s.at + 1], d[s.at + 2], d[s.at + 3]]);
    let put = |d: &mut [u8], s: Site, bits: u32| {
        let w = get(d, s) & !s.mask | bits & s.mask;
        d[s.at..s.at + 4].copy_from_slice(&w.to_le_bytes());
    };
    let mut zeroed = data.to_vec();
    for s in refs.iter().flat_map(|r| r.sites).flatten() {
        put(&mut zeroed, s, 0);
    }
    let mut out = zeroed.clone();
    for r in &refs {
        if let Some(t) = r.target {
            let t = t as usize;
            let end = (t + LABEL_BYTES).min(zeroed.len());
            let h = blake3::hash(&zeroed[t..end]);
            let b = h.as_bytes();
            let label = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for s in r.sites.iter().flatten() {
                put(&mut out, *s, label);
            }
        }
    }
    out
}

/// Mach-O marks stub sections (`__stubs`, `__stub_helper`) as holding
/// instructions without giving them the text kind.
fn has_instructions(flags: SectionFlags) -> bool {
    const S_ATTR_PURE_INSTRUCTIONS: u32 = 0x8000_0000;
    const S_ATTR_SOME_INSTRUCTIONS: u32 = 0x0000_0400;
    matches!(flags, SectionFlags::MachO { flags } if flags & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/exe");
        fs_err::read(dir.join(name)).unwrap()
    }

    #[test]
    fn executables_of_each_container_and_architecture_have_candidates() {
        let me = fs_err::read(std::env::current_exe().unwrap()).unwrap();
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            let c = Candidates::of(&me, &me).expect("an x86-64 test binary has code");
            assert!(c.code.iter().map(|(a, b)| b - a).sum::<u64>() > 4096);
            assert!(!c.base.old.is_empty() && c.base.old == c.base.new);
            let l = Layout {
                scans: c
                    .code
                    .iter()
                    .map(|&(start, end)| Scan {
                        kind: ScanKind::Code,
                        start,
                        end,
                    })
                    .collect(),
                ..c.base.clone()
            };
            assert_eq!(l.check(me.len() as u64, me.len() as u64), Ok(()));
        }
        let text = b"just some text, not a program";
        assert!(Candidates::of(text, text).is_none());
        assert!(Candidates::of(&[], &[]).is_none());
        // Real PE and Mach-O files, x86-64 and arm64; old and new must be
        // of one container and architecture.
        for (old, new, arch) in [
            (
                "pe-x86_64-3.0.2.pyd",
                "pe-x86_64-3.0.3.pyd",
                Some(Arch::X86_64),
            ),
            (
                "pe-arm64-3.0.3.pyd",
                "pe-arm64-3.0.4.pyd",
                Some(Arch::Arm64),
            ),
            (
                "macho-x86_64-3.0.2.so",
                "macho-x86_64-3.0.3.so",
                Some(Arch::X86_64),
            ),
            (
                "macho-arm64-3.0.2.so",
                "macho-arm64-3.0.3.so",
                Some(Arch::Arm64),
            ),
            (
                "elf-aarch64-3.0.2.so",
                "elf-aarch64-3.0.3.so",
                Some(Arch::Arm64),
            ),
            ("pe-x86_64-3.0.2.pyd", "macho-x86_64-3.0.3.so", None),
            ("macho-x86_64-3.0.2.so", "macho-arm64-3.0.3.so", None),
        ] {
            let (o, n) = (
                testdata(&format!("markupsafe/{old}")),
                testdata(&format!("markupsafe/{new}")),
            );
            let c = Candidates::of(&o, &n);
            assert_eq!(c.as_ref().map(|c| c.base.arch), arch, "{old} -> {new}");
            if let Some(c) = c {
                let l = c.layout(&o, &n, &[]);
                assert_eq!(l.check(o.len() as u64, n.len() as u64), Ok(()), "{old}");
                assert!(
                    c.code.iter().map(|(a, b)| b - a).sum::<u64>() > 1000,
                    "{old}"
                );
            }
        }
    }

    #[test]
    fn code_that_moved_normalizes_to_the_same_bytes() {
        // Two "files" of one code segment at address 0x1000: a call and a
        // RIP-relative load of the same targets (same contents), from
        // different places to different places.
        let target = [0x55u8, 0x48, 0x89, 0xE5, 0x5D, 0xC3, 0xCC, 0xCC];
        let mut a = vec![0x90u8; 0x200];
        let mut b = vec![0x90u8; 0x200];
        let put = |f: &mut Vec<u8>, at: usize, to: usize| {
            f[to..to + 8].copy_from_slice(&target);
            f[at] = 0xE8;
            let rel = (to as i64 - (at as i64 + 5)) as i32;
            f[at + 1..at + 5].copy_from_slice(&rel.to_le_bytes());
            f[at + 5..at + 8].copy_from_slice(&[0x48, 0x8D, 0x05]);
            let rel = (to as i64 - (at as i64 + 12)) as i32;
            f[at + 8..at + 12].copy_from_slice(&rel.to_le_bytes());
        };
        put(&mut a, 0x10, 0x100);
        put(&mut b, 0x30, 0x180);
        let seg = [Segment {
            file_off: 0,
            len: 0x200,
            va: 0x1000,
        }];
        let (na, nb) = (
            normalize(&a, Arch::X86_64, &[(0, 0x200)], &seg),
            normalize(&b, Arch::X86_64, &[(0, 0x200)], &seg),
        );
        assert_eq!(na[0x10..0x1C], nb[0x30..0x3C]);
        assert_ne!(a[0x10..0x1C], b[0x30..0x3C]);
        // Only reference bytes change.
        assert_eq!(na[..0x11], a[..0x11]);
        assert_eq!(na[0x15..0x18], a[0x15..0x18]);
        assert_eq!(na[0x1C..], a[0x1C..]);
    }

    #[test]
    fn arm64_code_that_moved_normalizes_to_the_same_bytes() {
        // A bl and an adrp + add pair to the same targets (same contents),
        // from and to different places.
        let target = [0xFD, 0x7B, 0xBF, 0xA9, 0xFD, 0x03, 0x00, 0x91];
        let mut a = vec![0u8; 0x400];
        let mut b = vec![0u8; 0x400];
        let put = |f: &mut Vec<u8>, at: usize, to: usize| {
            f[to..to + 8].copy_from_slice(&target);
            let w =
                |f: &mut Vec<u8>, k: usize, w: u32| f[k..k + 4].copy_from_slice(&w.to_le_bytes());
            let bl = arm64::with_reference(0x9400_0000, to as i64 - at as i64).unwrap();
            w(f, at, bl);
            let page = (to as i64 & !0xFFF) - ((at as i64 + 4) & !0xFFF);
            w(f, at + 4, arm64::with_reference(0x9000_0001, page).unwrap());
            w(f, at + 8, 0x9100_0021 | ((to as u32 & 0xFFF) << 10));
        };
        put(&mut a, 0x10, 0x100);
        put(&mut b, 0x30, 0x180);
        let seg = [Segment {
            file_off: 0,
            len: 0x400,
            va: 0,
        }];
        let (na, nb) = (
            normalize(&a, Arch::Arm64, &[(0, 0x400)], &seg),
            normalize(&b, Arch::Arm64, &[(0, 0x400)], &seg),
        );
        assert_eq!(na[0x10..0x1C], nb[0x30..0x3C]);
        assert_ne!(a[0x10..0x1C], b[0x30..0x3C]);
        // Only the immediate bits change.
        for (k, mask) in [
            (0x10, 0x03FF_FFFFu32),
            (0x14, 0x7_FFFF << 5 | 3 << 29),
            (0x18, 0xFFF << 10),
        ] {
            let (x, y) = (arm64::word(&a[k..]), arm64::word(&na[k..]));
            assert_eq!(x & !mask, y & !mask, "{k:#x}");
        }
    }

    #[test]
    fn the_layout_scans_code_and_the_tables_that_pay() {
        the_layout_scans(
            "dispatch-v1",
            "dispatch-v2",
            &[".rela.dyn", ".eh_frame_hdr", ".eh_frame"],
        );
        // In the arm64 build the writable segment did not move, so its
        // pointers and their relocations need no prediction.
        the_layout_scans(
            "dispatch-arm64-v1",
            "dispatch-arm64-v2",
            &[".eh_frame_hdr", ".eh_frame", ".data.rel.ro"],
        );
    }

    /// old -> new with the encoder's first-pass blocks: code is scanned,
    /// and so are the `tables`.
    fn the_layout_scans(old: &str, new: &str, tables: &[&str]) {
        let (old, new) = (testdata(old), testdata(new));
        let c = Candidates::of(&old, &new).unwrap();
        let (on, nn) = c.normalized(&old, &new);
        let blocks = crate::bsdiff::diff_blocks(&on, &nn, &crate::sa::Libsais, 1 << 20).unwrap();
        let l = c.layout(&old, &new, &blocks);
        assert_eq!(l.check(old.len() as u64, new.len() as u64), Ok(()));
        let file = object::File::parse(&*old).unwrap();
        let range = |name: &str| {
            let s = file.section_by_name(name).unwrap();
            let (o, n) = s.file_range().unwrap();
            (o, o + n)
        };
        let kind_over = |r: (u64, u64)| {
            l.scans
                .iter()
                .find(|s| s.start <= r.0 && r.1 <= s.end)
                .map(|s| s.kind)
        };
        assert_eq!(
            kind_over(range(".text")),
            Some(ScanKind::Code),
            "{:?}",
            l.scans
        );
        for t in tables {
            assert!(kind_over(range(t)).is_some(), "{t}: {:?}", l.scans);
        }
        // The prediction is worth it: fewer old bytes differ from the new
        // ones once predicted.
        let eqs = equivalences(&blocks);
        let p = Predictor::new(l, eqs);
        let (mut raw, mut predicted) = (0, 0);
        for b in &blocks {
            let mut buf = old[b.old_pos..b.old_pos + b.add_len].to_vec();
            p.predict(&mut buf, b.old_pos as u64, b.new_pos as u64);
            let n = &new[b.new_pos..b.new_pos + b.add_len];
            raw += n
                .iter()
                .zip(&old[b.old_pos..])
                .filter(|(x, y)| x != y)
                .count();
            predicted += n.iter().zip(&buf).filter(|(x, y)| x != y).count();
        }
        assert!(
            predicted * 10 < raw * 6,
            "{predicted} bytes differ predicted, {raw} raw"
        );
    }
}
