//! Longest-match search over the old file: a suffix array plus a table of
//! two-byte buckets that narrows every binary search to suffixes sharing the
//! first two bytes of the pattern, and a Bloom filter of the old file's
//! 8-byte strings that answers "no match of 8 bytes or more" without
//! touching the suffix array.
//!
//! The binary search is bound by memory latency (every step reads a random
//! entry of the array and a random place of the old file); in new code,
//! where most positions match nothing useful, the filter turns most searches
//! into one cache line read. It is what HDiffPatch's `big_cache_match` does.

use crate::Error;
use crate::sa::{SuffixArray, SuffixSorter};

/// Number of two-byte keys: for every first byte, one key for the suffix of
/// length one and 256 for the second byte.
const KEYS: usize = 256 * 257;

/// Length of the strings the Bloom filter holds.
pub(crate) const GRAM: usize = 8;

/// A searchable index of the old file.
pub(crate) struct MatchIndex<'a> {
    old: &'a [u8],
    sa: SuffixArray,
    /// `bucket[k]..bucket[k + 1]` is the rank range of suffixes with key `k`.
    bucket: Vec<u64>,
    /// Bloom filter of every 8-byte string of `old`: 8 bits per byte of
    /// old, two probes (about 5% false positives).
    bloom: Vec<u64>,
    bloom_bits: u64,
}

/// `bucket[k]` is the number of suffixes whose key is below `k`.
fn buckets(old: &[u8]) -> Vec<u64> {
    let mut count = vec![0u64; KEYS + 1];
    for pos in 0..old.len() {
        count[key(old, pos) + 1] += 1;
    }
    for k in 0..KEYS {
        count[k + 1] += count[k];
    }
    count
}

/// The Bloom filter of all 8-byte strings of `old`, and its size in bits.
fn bloom(old: &[u8]) -> (Vec<u64>, u64) {
    let bits = (old.len().max(64) * 8) as u64;
    let mut bloom = vec![0u64; bits.div_ceil(64) as usize];
    for w in old.windows(GRAM) {
        for bit in probes(w, bits) {
            bloom[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    (bloom, bits)
}

/// The two filter bits of the 8-byte string at the start of `b`.
#[inline]
fn probes(b: &[u8], bits: u64) -> [u64; 2] {
    let mut x = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    // Map each half of the hash onto 0..bits without a modulo.
    let reduce = |h: u64| ((u128::from(h) * u128::from(bits)) >> 64) as u64;
    [
        reduce(x),
        reduce(x.rotate_left(32).wrapping_mul(0xBF58_476D_1CE4_E5B9)),
    ]
}

#[inline]
fn key(text: &[u8], pos: usize) -> usize {
    let a = text[pos] as usize;
    match text.get(pos + 1) {
        Some(&b) => a * 257 + 1 + b as usize,
        None => a * 257,
    }
}

impl<'a> MatchIndex<'a> {
    /// Builds the index. The suffix array (the slow, serial part) is sorted
    /// while the bucket table and the filter are filled on another thread.
    pub(crate) fn build(old: &'a [u8], sorter: &dyn SuffixSorter) -> Result<Self, Error> {
        let (sa, (bucket, (bloom, bloom_bits))) =
            rayon::join(|| sorter.sort(old), || (buckets(old), bloom(old)));
        let sa = sa?;
        debug_assert_eq!(old.len(), sa.len());
        Ok(MatchIndex {
            old,
            sa,
            bucket,
            bloom,
            bloom_bits,
        })
    }

    /// False if no 8-byte string of old equals `pat[..8]`.
    #[inline]
    fn may_contain(&self, pat: &[u8]) -> bool {
        probes(pat, self.bloom_bits)
            .iter()
            .all(|&bit| self.bloom[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    pub(crate) fn old(&self) -> &'a [u8] {
        self.old
    }

    /// The longest prefix of `pat` that occurs in the old file: `(old_pos, len)`.
    /// When no match reaches 8 bytes, the result is the match at `hint` (the
    /// old position under the running alignment), which may be shorter
    /// than the longest: the scan never takes a match that short, it only
    /// uses it to step over an exact continuation.
    ///
    /// Matches shorter than two bytes are reported as length 0.
    ///
    /// A binary search within the two-byte bucket that never compares bytes
    /// it already knows: every suffix between two bounds shares at least the
    /// smaller of their common prefixes with the pattern.
    #[inline]
    pub(crate) fn longest_match(&self, pat: &[u8], hint: Option<usize>) -> (usize, usize) {
        if pat.len() >= GRAM && !self.may_contain(pat) {
            return match hint.filter(|&h| h < self.old.len()) {
                Some(h) => match common_prefix(&self.old[h..], pat) {
                    n if n >= 2 => (h, n),
                    _ => (0, 0),
                },
                None => (0, 0),
            };
        }
        if pat.len() < 2 {
            return (0, 0);
        }
        let k = key(pat, 0);
        let (first, last) = (self.bucket[k] as usize, self.bucket[k + 1] as usize);
        if first == last {
            return (0, 0);
        }
        // Common prefix of the pattern with the suffix just below `lo` and
        // with the one at `hi`; every suffix in the bucket shares 2 bytes.
        let (mut lo, mut hi) = (first, last);
        let (mut llcp, mut rlcp) = (2usize, 2usize);
        let (mut lset, mut rset) = (false, false);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let pos = self.sa.at(mid);
            let s = &self.old[pos..];
            let skip = llcp.min(rlcp);
            let l = skip + common_prefix(&s[skip.min(s.len())..], &pat[skip..]);
            if l == pat.len() || (l < s.len() && s[l] > pat[l]) {
                hi = mid;
                rlcp = l;
                rset = true;
            } else {
                lo = mid + 1;
                llcp = l;
                lset = true;
            }
        }
        let mut best = (0usize, 0usize);
        if lo > first {
            let pos = self.sa.at(lo - 1);
            let n = if lset {
                llcp
            } else {
                2 + common_prefix(&self.old[pos + 2..], &pat[2..])
            };
            best = (pos, n);
        }
        if lo < last {
            let pos = self.sa.at(lo);
            let n = if rset {
                rlcp
            } else {
                2 + common_prefix(&self.old[pos + 2..], &pat[2..])
            };
            if n > best.1 {
                best = (pos, n);
            }
        }
        best
    }
}

/// Length of the common prefix of two slices.
#[inline]
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_longest(old: &[u8], pat: &[u8]) -> usize {
        (0..old.len())
            .map(|i| common_prefix(&old[i..], pat))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn matches_are_real_and_long_ones_are_longest() {
        let mut x: u32 = 7;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        // Small alphabet: many partial matches of every length.
        let old: Vec<u8> = (0..3000).map(|_| (rnd() % 4) as u8).collect();
        let idx = MatchIndex::build(&old, &crate::sa::Libsais).unwrap();
        for _ in 0..400 {
            let start = (rnd() as usize) % old.len();
            let mut pat: Vec<u8> = old[start..(start + 40).min(old.len())].to_vec();
            let cut = (rnd() as usize) % (pat.len() + 1);
            pat.truncate(cut);
            pat.extend((0..(rnd() % 20)).map(|_| (rnd() % 5) as u8));
            let hint = Some((rnd() as usize) % old.len());
            let (pos, len) = idx.longest_match(&pat, hint);
            assert_eq!(
                &old[pos..pos + len],
                &pat[..len],
                "reported match is not a match"
            );
            let best = naive_longest(&old, &pat);
            if best >= GRAM {
                assert_eq!(len, best);
            } else {
                assert!(len <= best);
            }
        }
    }
}
