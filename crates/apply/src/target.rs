//! The target tree: the base minus removals, with the package's entries laid
//! over it. Checked before anything is written: removals must exist, an
//! entry may not change a base path's kind without removing it first, every
//! parent must be a directory, no two paths may collide on case-insensitive
//! file systems, and no symlink may resolve outside the tree.

use std::collections::{BTreeMap, HashMap};

use deltapack_format::{DecodeError, Header, Node, RelPath, RootKind, TreeDigester, TreeId};
use deltapack_tree::{NodeKind, digest_node};

use crate::Error;
use crate::base::VerifiedBase;

/// Where a target node comes from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Carried over unchanged from the base.
    Base,
    /// An entry of the package.
    Entry,
}

/// One node of the target tree.
#[derive(Debug, Clone)]
pub(crate) struct TargetNode {
    pub(crate) kind: NodeKind,
    pub(crate) origin: Origin,
}

/// The whole target, in tree order.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) nodes: BTreeMap<RelPath, TargetNode>,
}

impl Target {
    /// Every regular file, in tree order.
    pub(crate) fn files(&self) -> impl Iterator<Item = &RelPath> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n.kind, NodeKind::File { .. }))
            .map(|(p, _)| p)
    }

    /// Every path, in tree order.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.nodes.keys().map(|p| p.as_str().to_owned()).collect()
    }
}

fn tag(k: &NodeKind) -> u8 {
    match k {
        NodeKind::Dir { .. } => 0,
        NodeKind::File { .. } => 1,
        NodeKind::Symlink { .. } => 2,
    }
}

/// Composes and checks the target. File hashes of entries are filled in
/// later, as the files are rebuilt.
pub(crate) fn compose(header: &Header, base: Option<&VerifiedBase>) -> Result<Target, Error> {
    let mut nodes: BTreeMap<RelPath, TargetNode> = BTreeMap::new();
    if header.root == RootKind::Dir
        && let Some(b) = base
    {
        for r in &header.removals {
            if b.node(r).is_none() {
                return Err(Error::Conflict {
                    what: format!("removal {r:?} is not in the base"),
                });
            }
        }
        let mut removed = header.removals.iter().peekable();
        for n in &b.tree().nodes {
            // Removals and nodes are both in tree order.
            while removed
                .peek()
                .is_some_and(|r| **r < n.path && !r.is_ancestor_of(&n.path))
            {
                removed.next();
            }
            if removed
                .peek()
                .is_some_and(|r| **r == n.path || r.is_ancestor_of(&n.path))
            {
                continue;
            }
            nodes.insert(
                n.path.clone(),
                TargetNode {
                    kind: n.kind.clone(),
                    origin: Origin::Base,
                },
            );
        }
    }
    for e in &header.entries {
        let kind = match &e.node {
            Node::Dir { mode } => NodeKind::Dir { mode: *mode },
            Node::Symlink { target } => NodeKind::Symlink {
                target: target.clone(),
            },
            Node::File(f) => NodeKind::File {
                mode: f.mode,
                size: f.size,
                hash: [0; 32],
            },
        };
        if let Some(prev) = nodes.get(&e.path)
            && tag(&prev.kind) != tag(&kind)
        {
            return Err(Error::Conflict {
                what: format!(
                    "entry {:?} would replace a base {} without removing it",
                    e.path,
                    kind_name(&prev.kind)
                ),
            });
        }
        if header.root == RootKind::Dir
            && let Some(parent) = e.path.parent()
        {
            match nodes.get(&parent).map(|n| &n.kind) {
                Some(NodeKind::Dir { .. }) => {}
                Some(k) => {
                    return Err(Error::Conflict {
                        what: format!("entry {:?} lies inside {} {parent:?}", e.path, kind_name(k)),
                    });
                }
                None => {
                    return Err(Error::Conflict {
                        what: format!("parent directory of {:?} does not exist", e.path),
                    });
                }
            }
        }
        nodes.insert(
            e.path.clone(),
            TargetNode {
                kind,
                origin: Origin::Entry,
            },
        );
    }
    let mut folded: HashMap<String, &RelPath> = HashMap::with_capacity(nodes.len());
    for p in nodes.keys() {
        if let Some(other) = folded.insert(p.fold_key(), p) {
            return Err(DecodeError::DuplicatePath {
                path: p.to_string(),
                other: other.to_string(),
            }
            .into());
        }
    }
    let t = Target { nodes };
    for (p, n) in &t.nodes {
        if let NodeKind::Symlink { target } = &n.kind {
            t.check_symlink(p, target)?;
        }
    }
    if let Some(m) = &header.mtimes {
        let files = t.files().count();
        if m.index.len() != files {
            return Err(Error::Conflict {
                what: format!(
                    "the package has modification times for {} files, its target has {files}",
                    m.index.len()
                ),
            });
        }
    }
    Ok(t)
}

fn kind_name(k: &NodeKind) -> &'static str {
    match k {
        NodeKind::Dir { .. } => "directory",
        NodeKind::File { .. } => "file",
        NodeKind::Symlink { .. } => "symlink",
    }
}

impl Target {
    /// A symlink must be relative, and resolving it (through other symlinks
    /// of the tree) must stay inside the tree.
    fn check_symlink(&self, path: &RelPath, target: &str) -> Result<(), Error> {
        let link_target = |p: &str| -> Option<String> {
            let p = RelPath::parse(p, usize::MAX, usize::MAX).ok()?;
            match &self.nodes.get(&p)?.kind {
                NodeKind::Symlink { target } => Some(target.clone()),
                _ => None,
            }
        };
        if deltapack_tree::symlink_stays_inside(path.as_str(), target, &link_target) {
            Ok(())
        } else {
            Err(Error::SymlinkEscape {
                path: path.to_string(),
                target: target.to_owned(),
            })
        }
    }

    /// The digest of the tree, once every file hash is known.
    pub(crate) fn id(&self, root: RootKind) -> TreeId {
        let mut d = TreeDigester::new();
        for (p, n) in &self.nodes {
            let path = if root == RootKind::File {
                ""
            } else {
                p.as_str()
            };
            d.add(path, digest_node(&n.kind));
        }
        d.finish()
    }
}
