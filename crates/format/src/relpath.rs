//! [`RelPath`]: the one type that decides whether a path from a package is
//! safe to create under an install root.
//!
//! A `RelPath` is relative, normalised, `/`-separated UTF-8 that is valid on
//! Linux, macOS and Windows alike. Every path that comes out of a package
//! goes through [`RelPath::parse`]; there is no other constructor, so holding
//! one means the checks passed.

use std::cmp::Ordering;
use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::DecodeError;

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that Windows does not allow in file names.
const FORBIDDEN: &[char] = &['\\', ':', '*', '?', '"', '<', '>', '|'];

/// A safe, normalised, relative path inside a tree.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// Checks `raw` and wraps it. `max_len` and `max_depth` come from
    /// [`Limits`](crate::Limits).
    pub fn parse(raw: &str, max_len: usize, max_depth: usize) -> Result<RelPath, DecodeError> {
        let bad = |reason: &'static str| DecodeError::UnsafePath {
            raw: raw.to_owned(),
            reason,
        };
        if raw.is_empty() {
            return Err(bad("empty path"));
        }
        if raw.len() > max_len {
            return Err(bad("path too long"));
        }
        if raw.starts_with('/') {
            return Err(bad("absolute path"));
        }
        let mut depth = 0;
        for comp in raw.split('/') {
            depth += 1;
            check_component(comp).map_err(bad)?;
        }
        if depth > max_depth {
            return Err(bad("path too deep"));
        }
        Ok(RelPath(raw.to_owned()))
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.split('/')
    }

    /// The parent path, or `None` at top level.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_owned()))
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(self.0.as_str(), |(_, n)| n)
    }

    /// Whether `self` is a proper ancestor of `other`.
    pub fn is_ancestor_of(&self, other: &RelPath) -> bool {
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0.as_bytes()[self.0.len()] == b'/'
    }

    /// The key under which two paths collide on a case-insensitive or
    /// normalising file system (macOS, Windows): NFC, then lower case.
    pub fn fold_key(&self) -> String {
        self.0.nfc().collect::<String>().to_lowercase()
    }

    /// Canonical tree order: component by component, each compared by
    /// bytes. A directory sorts directly before its contents.
    pub fn tree_cmp(&self, other: &RelPath) -> Ordering {
        tree_cmp_str(&self.0, &other.0)
    }
}

/// [`RelPath::tree_cmp`] on plain strings.
pub fn tree_cmp_str(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty component (leading, trailing or doubled '/')");
    }
    if c == "." || c == ".." {
        return Err("'.' or '..' component");
    }
    if c.chars().any(|ch| ch.is_control()) {
        return Err("control character");
    }
    if c.contains('\u{FFFD}') {
        return Err("U+FFFD replacement character (lossy name)");
    }
    if c.contains(FORBIDDEN) {
        return Err("character not allowed on Windows (\\ : * ? \" < > |)");
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return Err("trailing dot or space");
    }
    let stem = c.split('.').next().unwrap_or(c).trim_end_matches(' ');
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err("reserved device name on Windows");
    }
    Ok(())
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialOrd for RelPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RelPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.tree_cmp(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RelPath, DecodeError> {
        RelPath::parse(s, 4096, 64)
    }

    #[test]
    fn good_paths() {
        for p in [
            "a",
            "a/b",
            "a.b/c.d",
            "dir/sub/file.txt",
            ".hidden",
            "a..b",
            "ünïcödé/名前",
            "x y/z",
            "icon.d/x",
        ] {
            assert_eq!(parse(p).unwrap().as_str(), p, "{p}");
        }
    }

    #[test]
    fn bad_paths() {
        let table: &[(&str, &str)] = &[
            ("", "empty path"),
            ("/etc/passwd", "absolute path"),
            ("../x", "'.' or '..' component"),
            ("a/../../x", "'.' or '..' component"),
            ("a/./b", "'.' or '..' component"),
            (".", "'.' or '..' component"),
            ("a//b", "empty component (leading, trailing or doubled '/')"),
            ("a/", "empty component (leading, trailing or doubled '/')"),
            (
                "C:\\x",
                "character not allowed on Windows (\\ : * ? \" < > |)",
            ),
            (
                "C:x",
                "character not allowed on Windows (\\ : * ? \" < > |)",
            ),
            (
                "\\\\server\\share",
                "character not allowed on Windows (\\ : * ? \" < > |)",
            ),
            (
                "\\\\?\\C:\\x",
                "character not allowed on Windows (\\ : * ? \" < > |)",
            ),
            (
                "a\\b",
                "character not allowed on Windows (\\ : * ? \" < > |)",
            ),
            ("a\0b", "control character"),
            ("a\nb", "control character"),
            ("a\u{7f}", "control character"),
            (
                "bad\u{FFFD}name",
                "U+FFFD replacement character (lossy name)",
            ),
            ("CON", "reserved device name on Windows"),
            ("dir/nul.txt", "reserved device name on Windows"),
            ("Lpt1", "reserved device name on Windows"),
            ("file.", "trailing dot or space"),
            ("file ", "trailing dot or space"),
            ("dir./x", "trailing dot or space"),
        ];
        for (raw, reason) in table {
            match parse(raw) {
                Err(DecodeError::UnsafePath {
                    raw: r,
                    reason: got,
                }) => {
                    assert_eq!(&r, raw);
                    assert_eq!(&got, reason, "{raw:?}");
                }
                other => panic!("{raw:?}: expected UnsafePath, got {other:?}"),
            }
        }
    }

    #[test]
    fn limits() {
        assert!(RelPath::parse("a/b/c", 4096, 2).is_err());
        assert!(RelPath::parse("abcdef", 5, 64).is_err());
    }

    #[test]
    fn tree_order_puts_directories_before_contents() {
        let mut v: Vec<RelPath> = ["a.b", "a/b", "a", "a/b/c", "b", "a-"]
            .iter()
            .map(|s| parse(s).unwrap())
            .collect();
        v.sort();
        let s: Vec<&str> = v.iter().map(|p| p.as_str()).collect();
        assert_eq!(s, ["a", "a/b", "a/b/c", "a-", "a.b", "b"]);
    }

    #[test]
    fn fold_key_catches_case_and_normalisation_twins() {
        let nfc = parse("caf\u{e9}").unwrap();
        let nfd = parse("cafe\u{301}").unwrap();
        assert_eq!(nfc.fold_key(), nfd.fold_key());
        assert_eq!(
            parse("README").unwrap().fold_key(),
            parse("readme").unwrap().fold_key()
        );
    }

    #[test]
    fn ancestry() {
        let a = parse("a").unwrap();
        assert!(a.is_ancestor_of(&parse("a/b").unwrap()));
        assert!(!a.is_ancestor_of(&parse("ab").unwrap()));
        assert!(!a.is_ancestor_of(&a));
        assert_eq!(parse("a/b/c").unwrap().parent().unwrap().as_str(), "a/b");
        assert_eq!(parse("a/b/c").unwrap().file_name(), "c");
    }
}
