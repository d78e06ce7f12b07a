//! The package writer: turns a plan and its encoded files into header and
//! payload bytes.

use std::collections::{BTreeMap, HashMap};

use deltapack_format::{
    Entry, FileEntry, Header, Node, Op, RecordHeader, RelPath, STREAMS, Source, StreamId,
    StreamInfo, encode_prefix,
};
use deltapack_tree::{NodeKind, Tree};
use rayon::prelude::*;

use crate::compress::{self, Method};
use crate::encode::{EncodedFile, Encoding};
use crate::plan::{PlannedEntry, PlannedNode};
use crate::streams::RawStreams;
use crate::{Error, Package, Settings};

/// Largest record the writer emits.
const RECORD_MAX: usize = 1 << 20;

/// Window caps (log2) per stream: a larger dictionary for whole files,
/// small ones for the bsdiff streams, where measurements show no gain
/// beyond 1-2 MiB and the applier keeps all of them at once.
const WINDOW_CAP: [u8; STREAMS] = [22, 20, 21, 21, 21, 23];

pub(crate) struct Parts<'a> {
    pub(crate) old: Option<&'a Tree>,
    pub(crate) new: &'a Tree,
    pub(crate) removals: Vec<RelPath>,
    pub(crate) entries: Vec<PlannedEntry>,
    pub(crate) files: Vec<Option<EncodedFile>>,
}

/// Keeps the ref stream within the applier's memory budget: files are
/// admitted in entry order while prefix plus data fit `budget`; the rest
/// fall back to bsdiff.
fn admit_ref_files(files: &mut [Option<EncodedFile>], budget: u64) {
    let mut prefix: HashMap<RelPath, u64> = HashMap::new();
    let mut used = 0u64;
    for f in files.iter_mut().flatten() {
        let Encoding::ZstdRef { source, old, .. } = &f.encoding else {
            continue;
        };
        let extra_prefix = if prefix.contains_key(source) {
            0
        } else {
            old.len() as u64
        };
        let need = used + extra_prefix + f.new.len() as u64;
        if need <= budget {
            prefix.insert(source.clone(), old.len() as u64);
            used = need;
            continue;
        }
        let enc = std::mem::replace(&mut f.encoding, Encoding::Literal);
        if let Encoding::ZstdRef {
            source,
            old,
            blocks,
        } = enc
        {
            f.encoding = Encoding::Bsdiff {
                source,
                old,
                blocks,
                layout: None,
            };
        }
    }
}

pub(crate) fn write(parts: Parts<'_>, s: &Settings) -> Result<Package, Error> {
    let Parts {
        old,
        new,
        removals,
        entries,
        mut files,
    } = parts;
    admit_ref_files(&mut files, s.zstd_ref_max);

    // Sources: every base file an op reads, in tree order.
    let mut source_index: BTreeMap<RelPath, u32> = BTreeMap::new();
    for f in files.iter().flatten() {
        match &f.encoding {
            Encoding::Copy(p)
            | Encoding::Bsdiff { source: p, .. }
            | Encoding::ZstdRef { source: p, .. } => {
                source_index.insert(p.clone(), 0);
            }
            Encoding::Literal => {}
        }
    }
    let old_nodes: HashMap<&RelPath, &NodeKind> = old
        .map(|t| t.nodes.iter().map(|n| (&n.path, &n.kind)).collect())
        .unwrap_or_default();
    let mut sources = Vec::with_capacity(source_index.len());
    for (i, (p, idx)) in source_index.iter_mut().enumerate() {
        *idx = i as u32;
        let Some(NodeKind::File { size, hash, .. }) = old_nodes.get(p).copied() else {
            return Err(Error::Internal("source is not a base file"));
        };
        let mut hash8 = [0u8; 8];
        hash8.copy_from_slice(&hash[..8]);
        sources.push(Source {
            path: p.clone(),
            size: *size,
            hash8,
        });
    }

    // Streams, in entry order; the ref prefix in order of first use.
    let mut raw = RawStreams::default();
    let mut prefix: Vec<u8> = Vec::new();
    let mut in_prefix: HashMap<&RelPath, ()> = HashMap::new();
    let mut header_entries = Vec::with_capacity(entries.len());
    for (e, f) in entries.iter().zip(&files) {
        let node = match (&e.node, f) {
            (PlannedNode::Dir { mode }, _) => Node::Dir { mode: *mode },
            (PlannedNode::Symlink { target }, _) => Node::Symlink {
                target: target.clone(),
            },
            (
                PlannedNode::File {
                    mode, size, hash, ..
                },
                Some(f),
            ) => {
                let src = |p: &RelPath| {
                    source_index
                        .get(p)
                        .copied()
                        .ok_or(Error::Internal("unindexed source"))
                };
                let op = match &f.encoding {
                    Encoding::Copy(p) => Op::Copy { source: src(p)? },
                    Encoding::Literal => {
                        raw.push_whole(StreamId::Data, &f.new);
                        Op::Literal
                    }
                    Encoding::Bsdiff {
                        source,
                        old,
                        blocks,
                        layout,
                    } => {
                        raw.push_bsdiff(old, &f.new, blocks, true, layout.as_ref());
                        let source = src(source)?;
                        match layout {
                            Some(_) => Op::BsdiffExe { source },
                            None => Op::Bsdiff { source },
                        }
                    }
                    Encoding::ZstdRef { source, old, .. } => {
                        if in_prefix.insert(source, ()).is_none() {
                            prefix.extend_from_slice(old);
                        }
                        raw.push_whole(StreamId::Ref, &f.new);
                        Op::ZstdRef {
                            source: src(source)?,
                        }
                    }
                };
                let mut h = [0u8; 8];
                h.copy_from_slice(&hash[..8]);
                // A copy is checked against its source's hash only.
                let blocks = if matches!(op, Op::Copy { .. }) {
                    Vec::new()
                } else {
                    f.blocks.clone()
                };
                Node::File(FileEntry {
                    mode: *mode,
                    size: *size,
                    hash: h,
                    op,
                    blocks,
                })
            }
            (PlannedNode::File { .. }, None) => {
                return Err(Error::Internal("file entry without encoding"));
            }
        };
        header_entries.push(Entry {
            path: e.path.clone(),
            node,
        });
    }

    // Compress the streams side by side.
    let method = s.method();
    let cuts: Vec<Vec<usize>> = (0..STREAMS)
        .map(|i| raw.cuts.iter().map(|c| c[i]).collect())
        .collect();
    let compressed: Vec<(StreamInfo, Vec<Vec<u8>>)> = (0..STREAMS)
        .into_par_iter()
        .map(|i| {
            let m = if StreamId::ALL[i] == StreamId::Ref {
                Method::ZstdRef {
                    level: s.zstd_ref_level,
                    prefix: &prefix,
                }
            } else {
                method
            };
            compress::compress(&raw.bufs[i], &cuts[i], m, WINDOW_CAP[i])
        })
        .collect::<Result<_, _>>()?;

    // Interleave: segment by segment, every stream's chunk.
    let mut payload = Vec::new();
    for seg in 0..=raw.cuts.len() {
        for (i, (_, chunks)) in compressed.iter().enumerate() {
            for piece in chunks[seg].chunks(RECORD_MAX) {
                RecordHeader {
                    stream: StreamId::ALL[i],
                    len: piece.len() as u64,
                }
                .encode(&mut payload);
                payload.extend_from_slice(piece);
            }
        }
    }
    let mut streams = [StreamInfo::EMPTY; STREAMS];
    for (i, (info, _)) in compressed.iter().enumerate() {
        streams[i] = *info;
    }

    let header = Header {
        root: new.root,
        platform: s.platform.clone(),
        from_version: if old.is_some() {
            s.from_version.clone()
        } else {
            String::new()
        },
        to_version: s.to_version.clone(),
        block_log: s.block_log,
        base: old.map(Tree::id),
        target: new.id(),
        streams,
        payload_len: payload.len() as u64,
        sources,
        removals,
        entries: header_entries,
        mtimes: if s.mtimes {
            mtimes_of(new, s.clamp_mtime)
        } else {
            None
        },
    };
    let prefix = encode_prefix(&header, &payload).map_err(|e| Error::Compress {
        stream_codec: "zstd",
        cause: e,
    })?;
    Ok(Package {
        header,
        prefix,
        payload,
    })
}

/// The new tree's file times, clamped to `clamp` and to [`MAX_MTIME`];
/// `None` when a file has none (the applier then leaves times alone).
fn mtimes_of(new: &Tree, clamp: Option<u64>) -> Option<deltapack_format::Mtimes> {
    let times = new
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::File { .. }))
        .map(|n| {
            n.mtime.map(|t| {
                t.min(clamp.unwrap_or(u64::MAX))
                    .min(deltapack_format::MAX_MTIME)
            })
        })
        .collect::<Option<Vec<u64>>>()?;
    (!times.is_empty()).then(|| deltapack_format::Mtimes::of(&times))
}
