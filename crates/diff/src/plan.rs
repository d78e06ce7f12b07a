//! Tree matching: decide, for every path of the new tree, whether it is
//! unchanged (costs nothing), copied from a base file with the same
//! contents, rebuilt from a similar base file, or stored whole; and which
//! base paths go away.

use std::collections::HashMap;

use deltapack_format::{RelPath, RootKind};
use deltapack_tree::{NodeKind, Tree, TreeNode};

use crate::Error;
use crate::similarity::Sketch;

/// Files smaller than this are stored rather than copied from another path:
/// naming the source costs about as much as the bytes.
const MIN_COPY: u64 = 64;

/// What to do for one target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilePlan {
    /// Same contents as this base file.
    Copy(RelPath),
    /// Rebuild from this base file with a delta codec (or store whole if
    /// that turns out smaller).
    Delta(RelPath),
    /// Store the contents.
    Literal,
}

/// What a target path becomes.
#[derive(Debug, Clone)]
pub(crate) enum PlannedNode {
    Dir {
        mode: u32,
    },
    Symlink {
        target: String,
    },
    File {
        mode: u32,
        size: u64,
        hash: [u8; 32],
        plan: FilePlan,
    },
}

/// One target path that differs from the base.
#[derive(Debug, Clone)]
pub(crate) struct PlannedEntry {
    pub(crate) path: RelPath,
    pub(crate) node: PlannedNode,
}

/// The whole plan.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) removals: Vec<RelPath>,
    pub(crate) entries: Vec<PlannedEntry>,
}

fn kind_tag(k: &NodeKind) -> u8 {
    match k {
        NodeKind::Dir { .. } => 0,
        NodeKind::File { .. } => 1,
        NodeKind::Symlink { .. } => 2,
    }
}

fn extension(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(_, e)| e)
}

/// Matches `new` against `old` (`None` for a full package).
pub(crate) fn plan(old: Option<&Tree>, new: &Tree) -> Result<Plan, Error> {
    let links: HashMap<&str, &str> = new
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Symlink { target } => Some((n.path.as_str(), target.as_str())),
            _ => None,
        })
        .collect();
    let link_target = |p: &str| links.get(p).map(|t| (*t).to_owned());
    for (p, t) in &links {
        if !deltapack_tree::symlink_stays_inside(p, t, &link_target) {
            return Err(Error::UnsafeSymlink {
                path: (*p).to_owned(),
                target: (*t).to_owned(),
            });
        }
    }
    let Some(old) = old else {
        let entries = new
            .nodes
            .iter()
            .map(|n| PlannedEntry {
                path: n.path.clone(),
                node: planned(n, FilePlan::Literal),
            })
            .collect();
        return Ok(Plan {
            removals: Vec::new(),
            entries,
        });
    };

    if new.root == RootKind::File {
        let n = &new.nodes[0];
        let o = &old.nodes[0];
        let plan = match (&n.kind, &o.kind) {
            (NodeKind::File { hash, .. }, NodeKind::File { hash: oh, .. }) if hash == oh => {
                FilePlan::Copy(o.path.clone())
            }
            _ => FilePlan::Delta(o.path.clone()),
        };
        return Ok(Plan {
            removals: Vec::new(),
            entries: vec![PlannedEntry {
                path: n.path.clone(),
                node: planned(n, plan),
            }],
        });
    }

    let by_path: HashMap<&str, &TreeNode> =
        old.nodes.iter().map(|n| (n.path.as_str(), n)).collect();
    let mut by_hash: HashMap<[u8; 32], &TreeNode> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<&TreeNode>> = HashMap::new();
    let mut by_ext: HashMap<&str, Vec<&TreeNode>> = HashMap::new();
    for n in &old.nodes {
        if let NodeKind::File { hash, size, .. } = &n.kind {
            by_hash.entry(*hash).or_insert(n);
            by_name.entry(n.path.file_name()).or_default().push(n);
            if *size > 0 {
                by_ext
                    .entry(extension(n.path.file_name()))
                    .or_default()
                    .push(n);
            }
        }
    }
    let mut sketches = SketchCache {
        old,
        cache: HashMap::new(),
    };

    let mut entries = Vec::new();
    for n in &new.nodes {
        let prev = by_path.get(n.path.as_str()).copied();
        let same_kind = prev.filter(|p| kind_tag(&p.kind) == kind_tag(&n.kind));
        let entry = match (&n.kind, same_kind.map(|p| &p.kind)) {
            (NodeKind::Dir { mode }, Some(NodeKind::Dir { mode: m })) if m == mode => None,
            (NodeKind::Dir { .. }, _) => Some(planned(n, FilePlan::Literal)),
            (NodeKind::Symlink { target }, Some(NodeKind::Symlink { target: t }))
                if t == target =>
            {
                None
            }
            (NodeKind::Symlink { .. }, _) => Some(planned(n, FilePlan::Literal)),
            (
                NodeKind::File { mode, hash, .. },
                Some(NodeKind::File {
                    mode: m, hash: h, ..
                }),
            ) if h == hash => (m != mode).then(|| planned(n, FilePlan::Copy(n.path.clone()))),
            (NodeKind::File { size, hash, .. }, same) => {
                let plan = if *size == 0 {
                    FilePlan::Literal
                } else if let Some(src) = by_hash.get(hash).filter(|_| *size >= MIN_COPY) {
                    FilePlan::Copy(src.path.clone())
                } else if same.is_some() {
                    FilePlan::Delta(n.path.clone())
                } else {
                    match similar(n, &new.fs_path(&n.path), &by_name, &by_ext, &mut sketches)? {
                        Some(p) => FilePlan::Delta(p),
                        None => FilePlan::Literal,
                    }
                };
                Some(planned(n, plan))
            }
        };
        if let Some(node) = entry {
            entries.push(PlannedEntry {
                path: n.path.clone(),
                node,
            });
        }
    }

    // Removals: base paths that are gone or change kind, as the smallest set
    // of subtree roots.
    let new_kinds: HashMap<&str, u8> = new
        .nodes
        .iter()
        .map(|n| (n.path.as_str(), kind_tag(&n.kind)))
        .collect();
    let mut removals: Vec<RelPath> = Vec::new();
    for o in &old.nodes {
        if removals.last().is_some_and(|r| r.is_ancestor_of(&o.path)) {
            continue;
        }
        if new_kinds.get(o.path.as_str()) != Some(&kind_tag(&o.kind)) {
            removals.push(o.path.clone());
        }
    }
    Ok(Plan { removals, entries })
}

fn planned(n: &TreeNode, plan: FilePlan) -> PlannedNode {
    match &n.kind {
        NodeKind::Dir { mode } => PlannedNode::Dir { mode: *mode },
        NodeKind::Symlink { target } => PlannedNode::Symlink {
            target: target.clone(),
        },
        NodeKind::File { mode, size, hash } => PlannedNode::File {
            mode: *mode,
            size: *size,
            hash: *hash,
            plan,
        },
    }
}

struct SketchCache<'a> {
    old: &'a Tree,
    cache: HashMap<RelPath, Option<Sketch>>,
}

impl SketchCache<'_> {
    fn get(&mut self, n: &TreeNode) -> Result<Option<Sketch>, Error> {
        if let Some(s) = self.cache.get(&n.path) {
            return Ok(s.clone());
        }
        let s = Sketch::of_file(&self.old.fs_path(&n.path))?;
        self.cache.insert(n.path.clone(), s.clone());
        Ok(s)
    }
}

/// Most similar base file for a new file with no base under its own path:
/// among files with the same name, else among files with the same
/// extension and a size within a factor of two, by content sketch.
fn similar(
    n: &TreeNode,
    fs_path: &std::path::Path,
    by_name: &HashMap<&str, Vec<&TreeNode>>,
    by_ext: &HashMap<&str, Vec<&TreeNode>>,
    sketches: &mut SketchCache<'_>,
) -> Result<Option<RelPath>, Error> {
    let NodeKind::File { size, .. } = n.kind else {
        return Ok(None);
    };
    let name = n.path.file_name();
    let named = by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
    let sized: Vec<&TreeNode>;
    let candidates: &[&TreeNode] = if !named.is_empty() {
        named
    } else {
        let all = by_ext
            .get(extension(name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut c: Vec<&TreeNode> = all
            .iter()
            .copied()
            .filter(|o| matches!(o.kind, NodeKind::File { size: s, .. } if s <= size.saturating_mul(2) && size <= s.saturating_mul(2)))
            .collect();
        // Closest sizes first; bound the work per file.
        c.sort_by_key(|o| match o.kind {
            NodeKind::File { size: s, .. } => (s.abs_diff(size), o.path.clone()),
            _ => (u64::MAX, o.path.clone()),
        });
        c.truncate(64);
        sized = c;
        &sized
    };
    if candidates.is_empty() {
        return Ok(None);
    }
    let Some(mine) = Sketch::of_file(fs_path)? else {
        return Ok(None);
    };
    let mut best: Option<(u32, &RelPath)> = None;
    for c in candidates {
        if let Some(s) = sketches.get(c)? {
            let sim = mine.similarity(&s);
            if best.is_none_or(|(b, _)| sim > b) {
                best = Some((sim, &c.path));
            }
        }
    }
    // Same name: take the best even if weakly similar; otherwise require
    // a real resemblance.
    let threshold = if named.is_empty() {
        Sketch::K as u32 / 8
    } else {
        1
    };
    Ok(best
        .filter(|(s, _)| *s >= threshold)
        .map(|(_, p)| p.clone()))
}
