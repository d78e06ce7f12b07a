//! Content sketches for finding the most similar old file: the bottom-k
//! hashes of all 8-byte windows (a MinHash), so that two files sharing
//! much of their content share many sketch values.

use std::path::Path;

/// Files larger than this are not sketched (they are matched by path).
const MAX_SKETCH_FILE: u64 = 64 << 20;

/// A bottom-k MinHash sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sketch(Vec<u64>);

impl Sketch {
    /// Number of hashes kept.
    pub(crate) const K: usize = 64;

    /// Sketch of a byte string (`None` if shorter than one window).
    pub(crate) fn of(data: &[u8]) -> Option<Sketch> {
        if data.len() < 8 {
            return None;
        }
        let mut hs: Vec<u64> = data
            .windows(8)
            .map(|w| {
                let mut x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
                x ^= x >> 31;
                x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x ^= x >> 29;
                x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
            })
            .collect();
        hs.sort_unstable();
        hs.dedup();
        hs.truncate(Self::K);
        Some(Sketch(hs))
    }

    /// Sketch of a file's contents.
    pub(crate) fn of_file(path: &Path) -> Result<Option<Sketch>, crate::Error> {
        let len = fs_err::metadata(path)?.len();
        if len > MAX_SKETCH_FILE {
            return Ok(None);
        }
        Ok(Sketch::of(&fs_err::read(path)?))
    }

    /// Number of the k smallest hashes of the union that both share.
    pub(crate) fn similarity(&self, other: &Sketch) -> u32 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut seen, mut common) = (0, 0, 0, 0);
        while seen < Self::K && i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    common += 1;
                    i += 1;
                    j += 1;
                }
            }
            seen += 1;
        }
        common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_files_score_higher() {
        let base: Vec<u8> = (0..20000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut edited = base.clone();
        edited[5000..5100].fill(7);
        let other: Vec<u8> = (0..20000u32)
            .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
            .collect();
        let (a, b, c) = (
            Sketch::of(&base).unwrap(),
            Sketch::of(&edited).unwrap(),
            Sketch::of(&other).unwrap(),
        );
        assert!(a.similarity(&b) > 40, "{}", a.similarity(&b));
        assert!(a.similarity(&c) < 5, "{}", a.similarity(&c));
        assert_eq!(a.similarity(&a), Sketch::K as u32);
    }
}
