//! Building packages by hand, to feed the applier what the diff engine
//! never writes.

use deltapack_format::{
    DigestNode, Entry, FileEntry, Header, Limits, Op, RecordHeader, RelPath, RootKind, STREAMS,
    Source, StreamId, StreamInfo, TreeDigester, TreeId, decode_prefix, encode_prefix,
};

/// A package taken apart.
pub struct Parts {
    pub header: Header,
    pub payload: Vec<u8>,
}

pub fn split(pkg: &[u8]) -> Parts {
    let (_, header, at) = decode_prefix(pkg, &Limits::default()).unwrap();
    Parts {
        header,
        payload: pkg[at..].to_vec(),
    }
}

/// Re-encodes a (possibly edited) header with a payload, with a correct
/// package hash, so that only the edit is wrong.
pub fn seal(header: &Header, payload: &[u8]) -> Vec<u8> {
    let mut out = encode_prefix(header, payload).unwrap();
    out.extend_from_slice(payload);
    out
}

/// Like [`seal`], from raw (uncompressed) header bytes.
pub fn seal_raw(raw: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = deltapack_format::encode_prefix_raw(raw, payload).unwrap();
    out.extend_from_slice(payload);
    out
}

/// One record per non-empty stream, in stream order.
pub fn records(streams: &[Vec<u8>; STREAMS]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        if !s.is_empty() {
            RecordHeader {
                stream: StreamId::ALL[i],
                len: s.len() as u64,
            }
            .encode(&mut out);
            out.extend_from_slice(s);
        }
    }
    out
}

pub fn h8(data: &[u8]) -> [u8; 8] {
    blake3::hash(data).as_bytes()[..8].try_into().unwrap()
}

pub fn file_id(data: &[u8]) -> TreeId {
    let mut d = TreeDigester::new();
    d.add(
        "",
        DigestNode::File {
            executable: false,
            size: data.len() as u64,
            hash: blake3::hash(data).as_bytes(),
        },
    );
    d.finish()
}

pub fn rp(s: &str) -> RelPath {
    RelPath::parse(s, 4096, 64).unwrap()
}

/// A single-file package with hand-written, stored streams: `base` is the
/// old file, `target` what the package claims to produce.
pub fn stored_file_package(
    base: &[u8],
    target: &[u8],
    op: Op,
    streams: [Vec<u8>; STREAMS],
) -> Vec<u8> {
    let blocks = if target.len() > 1 << 20 {
        target.chunks(1 << 20).map(h8).collect()
    } else {
        vec![]
    };
    let infos: [StreamInfo; STREAMS] = std::array::from_fn(|i| StreamInfo {
        compression: deltapack_format::Compression::Stored,
        window_log: 0,
        raw_len: streams[i].len() as u64,
    });
    let payload = records(&streams);
    let header = Header {
        root: RootKind::File,
        platform: String::new(),
        from_version: "1".into(),
        to_version: "2".into(),
        block_log: 20,
        base: Some(file_id(base)),
        target: file_id(target),
        streams: infos,
        payload_len: payload.len() as u64,
        sources: vec![Source {
            path: rp("old"),
            size: base.len() as u64,
            hash8: h8(base),
        }],
        removals: vec![],
        entries: vec![Entry {
            path: rp("new"),
            node: deltapack_format::Node::File(FileEntry {
                mode: 0o644,
                size: target.len() as u64,
                hash: h8(target),
                op,
                blocks,
            }),
        }],
        mtimes: None,
    };
    seal(&header, &payload)
}

/// A control triple of the bsdiff codec.
pub fn ctrl(add: u64, extra: u64, delta: i64) -> Vec<u8> {
    let mut v = Vec::new();
    deltapack_format::reader::put_varint(&mut v, add);
    deltapack_format::reader::put_varint(&mut v, extra);
    deltapack_format::reader::put_varint(&mut v, deltapack_format::reader::zigzag(delta));
    v
}

/// Replaces one front-coded path `old` (written with no shared prefix) in a
/// raw header by the raw bytes `new`.
pub fn replace_path(raw: &[u8], old: &str, new: &[u8]) -> Vec<u8> {
    let mut pat = vec![0u8];
    deltapack_format::reader::put_varint(&mut pat, old.len() as u64);
    pat.extend_from_slice(old.as_bytes());
    let at = raw
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .expect("placeholder path in header");
    let mut rep = vec![0u8];
    deltapack_format::reader::put_varint(&mut rep, new.len() as u64);
    rep.extend_from_slice(new);
    [&raw[..at], &rep[..], &raw[at + pat.len()..]].concat()
}

/// A full package holding the given entries (paths may be placeholders to
/// be replaced in the raw header) with literal contents.
pub fn full_header(entries: Vec<(&str, deltapack_format::Node)>, data: &[u8]) -> (Header, Vec<u8>) {
    let mut streams = [StreamInfo::EMPTY; STREAMS];
    streams[0] = StreamInfo {
        compression: deltapack_format::Compression::Stored,
        window_log: 0,
        raw_len: data.len() as u64,
    };
    let mut bufs: [Vec<u8>; STREAMS] = Default::default();
    bufs[0] = data.to_vec();
    let payload = records(&bufs);
    let header = Header {
        root: RootKind::Dir,
        platform: String::new(),
        from_version: String::new(),
        to_version: "1".into(),
        block_log: 20,
        base: None,
        target: TreeId {
            digest: [0; 32],
            files: 0,
            bytes: 0,
        },
        streams,
        payload_len: payload.len() as u64,
        sources: vec![],
        removals: vec![],
        entries: entries
            .into_iter()
            .map(|(p, node)| Entry { path: rp(p), node })
            .collect(),
        mtimes: None,
    };
    (header, payload)
}

/// A literal file node for [`full_header`].
pub fn literal(data: &[u8]) -> deltapack_format::Node {
    deltapack_format::Node::File(FileEntry {
        mode: 0o644,
        size: data.len() as u64,
        hash: h8(data),
        op: Op::Literal,
        blocks: vec![],
    })
}
