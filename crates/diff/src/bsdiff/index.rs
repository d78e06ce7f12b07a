//! Longest-match search over the old file: a suffix array plus a table of
//! two-byte buckets that narrows every binary search to suffixes sharing the
//! first two bytes of the pattern.

use crate::sa::SuffixArray;

/// Number of two-byte keys: for every first byte, one key for the suffix of
/// length one and 256 for the second byte.
const KEYS: usize = 256 * 257;

/// A searchable index of the old file.
pub(crate) struct MatchIndex<'a> {
    old: &'a [u8],
    sa: SuffixArray,
    /// `bucket[k]..bucket[k + 1]` is the rank range of suffixes with key `k`.
    bucket: Vec<u64>,
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
    pub(crate) fn new(old: &'a [u8], sa: SuffixArray) -> Self {
        debug_assert_eq!(old.len(), sa.len());
        let mut count = vec![0u64; KEYS + 1];
        for pos in 0..old.len() {
            count[key(old, pos) + 1] += 1;
        }
        for k in 0..KEYS {
            count[k + 1] += count[k];
        }
        MatchIndex {
            old,
            sa,
            bucket: count,
        }
    }

    pub(crate) fn old(&self) -> &'a [u8] {
        self.old
    }

    /// The longest prefix of `pat` that occurs in the old file: `(old_pos, len)`.
    /// Matches shorter than two bytes are reported as length 0.
    ///
    /// A binary search within the two-byte bucket that never compares bytes
    /// it already knows: every suffix between two bounds shares at least the
    /// smaller of their common prefixes with the pattern.
    #[inline]
    pub(crate) fn longest_match(&self, pat: &[u8]) -> (usize, usize) {
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
