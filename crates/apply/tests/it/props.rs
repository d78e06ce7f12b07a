//! Property tests: random inputs and random edits round trip through every
//! codec and through trees.

use proptest::prelude::*;

use deltapack_diff::Differ;

use crate::harness::*;

/// An edit applied to a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Flip(usize, u8),
    Move(usize, usize, usize),
    Append(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), 0usize..2000).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        (any::<usize>(), any::<usize>(), 1usize..3000).prop_map(|(a, b, n)| Edit::Move(a, b, n)),
        proptest::collection::vec(any::<u8>(), 0..500).prop_map(Edit::Append),
    ]
}

fn apply_edits(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = v.len();
        match e {
            Edit::Insert(at, bytes) => {
                let at = if n == 0 { 0 } else { at % (n + 1) };
                v.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(at, len) if n > 0 => {
                let at = at % n;
                let end = (at + len).min(n);
                v.drain(at..end);
            }
            Edit::Flip(at, x) if n > 0 => v[at % n] ^= x | 1,
            Edit::Move(from, to, len) if n > 0 => {
                let from = from % n;
                let end = (from + len).min(n);
                let chunk: Vec<u8> = v.drain(from..end).collect();
                let to = to % (v.len() + 1);
                v.splice(to..to, chunk);
            }
            Edit::Append(bytes) => v.extend_from_slice(bytes),
            _ => {}
        }
    }
    v
}

/// Old data: random bytes, or text-like, or mostly zeros, or empty/tiny.
fn base() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<u64>(), 0usize..40_000).prop_map(|(s, n)| noise(s, n)),
        (any::<u64>(), 0usize..20_000).prop_map(|(s, n)| noise(s, n)
            .iter()
            .map(|b| b"abcde \n"[(*b % 7) as usize])
            .collect()),
        (any::<u64>(), 0usize..50_000).prop_map(|(s, n)| noise(s, n)
            .iter()
            .map(|b| if *b < 8 { *b } else { 0 })
            .collect()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ]
}

fn file_round_trip(old: &[u8], new: &[u8], level: u8) -> Result<(), TestCaseError> {
    let s = Scratch::new();
    let o = s.write("old", old);
    let n = s.write("new", new);
    let pkg = diff_with(Differ::new().level(level), Some(&o), &n);
    apply(Some(&o), &pkg, &s.path("out")).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(fs_err::read(s.path("out")).unwrap(), new);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Fast level (zstd streams), every codec the chooser picks.
    #[test]
    fn files_round_trip_fast(old in base(), edits in proptest::collection::vec(edit(), 0..8)) {
        let new = apply_edits(old.clone(), &edits);
        file_round_trip(&old, &new, 2)?;
    }

    /// Default level (LZMA2 streams).
    #[test]
    fn files_round_trip_best(old in base(), edits in proptest::collection::vec(edit(), 0..8)) {
        let new = apply_edits(old.clone(), &edits);
        file_round_trip(&old, &new, 9)?;
    }

    /// Unrelated old and new.
    #[test]
    fn unrelated_files_round_trip(old in base(), new in base()) {
        file_round_trip(&old, &new, 9)?;
    }
}

/// A small random tree: paths from a tiny alphabet so that renames,
/// collisions of files and directories, and moves happen often.
#[derive(Debug, Clone)]
enum TreeNode {
    File(Vec<u8>, bool),
    Dir,
    Link(String),
}

fn tree() -> impl Strategy<Value = Vec<(String, TreeNode)>> {
    let name = prop_oneof![Just("a"), Just("b"), Just("c.txt"), Just("d.bin")];
    let path = proptest::collection::vec(name, 1..4).prop_map(|v| v.join("/"));
    let node = prop_oneof![
        4 => (base(), any::<bool>()).prop_map(|(d, x)| TreeNode::File(d, x)),
        1 => Just(TreeNode::Dir),
        1 => prop_oneof![Just("a"), Just("c.txt"), Just("../a")].prop_map(|t| TreeNode::Link(t.to_owned())),
    ];
    proptest::collection::vec((path, node), 0..10)
}

/// Materialises a random tree, skipping nodes that collide with earlier ones.
fn build(s: &Scratch, root: &str, nodes: &[(String, TreeNode)]) {
    s.mkdir(root);
    for (p, n) in nodes {
        let full = s.path(&format!("{root}/{p}"));
        // Parents must be (or become) directories.
        let mut ok = true;
        let mut anc = full.parent();
        while let Some(a) = anc {
            if a == s.path(root) {
                break;
            }
            if let Ok(m) = fs_err::symlink_metadata(a)
                && !m.is_dir()
            {
                ok = false;
            }
            anc = a.parent();
        }
        if !ok || fs_err::symlink_metadata(&full).is_ok() {
            continue;
        }
        fs_err::create_dir_all(full.parent().unwrap()).unwrap();
        match n {
            TreeNode::File(d, exec) => {
                fs_err::write(&full, d).unwrap();
                #[cfg(unix)]
                if *exec {
                    use std::os::unix::fs::PermissionsExt;
                    fs_err::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).unwrap();
                }
                let _ = exec;
            }
            TreeNode::Dir => fs_err::create_dir_all(&full).unwrap(),
            TreeNode::Link(t) => {
                // Only links that stay inside the tree.
                let depth = p.matches('/').count();
                if t.starts_with("..") && depth == 0 {
                    continue;
                }
                #[cfg(unix)]
                std::os::unix::fs::symlink(t, &full).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn trees_round_trip(old in tree(), new in tree(), keep in proptest::collection::vec(any::<bool>(), 10)) {
        let s = Scratch::new();
        // Let the new tree share part of the old one, so that unchanged
        // files, renames and edits all occur.
        let mut new_nodes: Vec<(String, TreeNode)> =
            old.iter().zip(&keep).filter(|(_, k)| **k).map(|(n, _)| n.clone()).collect();
        new_nodes.extend(new);
        build(&s, "old", &old);
        build(&s, "new", &new_nodes);
        let pkg = diff_with(Differ::new().level(2), Some(&s.path("old")), &s.path("new"));
        apply(Some(&s.path("old")), &pkg, &s.path("out")).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(snapshot(&s.path("out")), snapshot(&s.path("new")));
    }
}
