//! Recognising executables: the code ranges of an x86-64 ELF, PE or
//! Mach-O file, which the `bsdiff-x86` codec relocates branches in (see
//! `deltapack_format::reloc`). Anything else (another architecture, a
//! file that does not parse) has no code ranges and gets the generic
//! codecs.

use deltapack_format::reloc::MAX_RANGES;
use object::{Architecture, Object, ObjectSection, SectionFlags, SectionKind};

/// File ranges `[start, end)` of the executable sections of `data`, sorted
/// and disjoint, if it is an x86-64 executable or library with code.
pub(crate) fn x86_64_code_ranges(data: &[u8]) -> Option<Vec<(u64, u64)>> {
    let file = object::File::parse(data).ok()?;
    if file.architecture() != Architecture::X86_64 {
        return None;
    }
    let mut ranges: Vec<(u64, u64)> = file
        .sections()
        .filter(|s| s.kind() == SectionKind::Text || has_instructions(s.flags()))
        .filter_map(|s| s.file_range())
        .filter(|&(off, len)| {
            len > 0 && off.checked_add(len).is_some_and(|e| e <= data.len() as u64)
        })
        .map(|(off, len)| (off, off + len))
        .collect();
    ranges.sort_unstable();
    // Merge overlaps and neighbours, then the closest pairs until few
    // enough are left.
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    while merged.len() > MAX_RANGES {
        let i = (1..merged.len())
            .min_by_key(|&i| merged[i].0 - merged[i - 1].1)
            .unwrap_or(1);
        merged[i - 1].1 = merged[i].1;
        merged.remove(i);
    }
    (!merged.is_empty()).then_some(merged)
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

    #[test]
    fn this_test_binary_has_code_and_text_does_not() {
        let exe = fs_err::read(std::env::current_exe().unwrap()).unwrap();
        let r = x86_64_code_ranges(&exe);
        if cfg!(all(
            target_arch = "x86_64",
            any(
                target_os = "linux",
                target_os = "windows",
                target_os = "macos"
            )
        )) {
            let r = r.expect("an x86-64 test binary has code");
            assert!(r.iter().map(|(a, b)| b - a).sum::<u64>() > 4096);
            assert!(deltapack_format::reloc::check_ranges(&r, exe.len() as u64).is_ok());
        }
        assert_eq!(x86_64_code_ranges(b"just some text, not a program"), None);
        // Real x86-64 PE and Mach-O files have code; arm64 ones are not
        // ours (yet): no ranges, so the generic codecs take them.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/exe/markupsafe");
        for (name, x86) in [
            ("pe-x86_64-3.0.2.pyd", true),
            ("macho-x86_64-3.0.2.so", true),
            ("macho-arm64-3.0.2.so", false),
            ("elf-aarch64-3.0.2.so", false),
        ] {
            let data = fs_err::read(dir.join(name)).unwrap();
            let r = x86_64_code_ranges(&data);
            assert_eq!(r.is_some(), x86, "{name}: {r:?}");
            if let Some(r) = r {
                assert!(deltapack_format::reloc::check_ranges(&r, data.len() as u64).is_ok());
                assert!(
                    r.iter().map(|(a, b)| b - a).sum::<u64>() > 1000,
                    "{name}: {r:?}"
                );
            }
        }
        assert_eq!(x86_64_code_ranges(&[]), None);
    }
}
