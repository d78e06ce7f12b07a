//! `deltapack inspect`: the header and the payload's make-up, as text or
//! JSON.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use deltapack_format::{
    Header, Limits, Node, Op, RecordHeader, STREAMS, Section, StreamId, reader::Reader,
};
use deltapack_tree::hex;
use serde_json::{Value, json};

/// Compressed bytes and records per stream, by reading the payload.
fn tally(r: &mut dyn Read) -> Result<[(u64, u64); STREAMS]> {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)?;
    let mut out = [(0u64, 0u64); STREAMS];
    let mut rd = Reader::new(&rest, Section::Payload);
    while rd.remaining() > 0 {
        let h = RecordHeader::decode(&mut rd, Limits::default().max_record_len)?;
        rd.take(h.len as usize)?;
        out[h.stream.index()].0 += h.len;
        out[h.stream.index()].1 += 1;
    }
    Ok(out)
}

fn op_json(h: &Header, op: &Op) -> Value {
    let src = |i: u32| h.sources.get(i as usize).map(|s| s.path.to_string());
    match op {
        Op::Copy { source } => json!({"op": "copy", "source": src(*source)}),
        Op::Literal => json!({"op": "literal"}),
        Op::Bsdiff { source } => json!({"op": "bsdiff", "source": src(*source)}),
        Op::ZstdRef { source } => json!({"op": "zstd-ref", "source": src(*source)}),
        Op::BsdiffX86 { source } => json!({"op": "bsdiff-x86", "source": src(*source)}),
        Op::BsdiffExe { source } => json!({"op": "bsdiff-exe", "source": src(*source)}),
        _ => json!({"op": "unknown"}),
    }
}

pub(crate) fn inspect(patch: &Path, json_out: bool) -> Result<()> {
    let mut r = crate::open_package(patch)?;
    let applier = deltapack_apply::Applier::new();
    let h = applier
        .read_header(&mut r)
        .with_context(|| format!("inspecting {}", patch.display()))?;
    let counts = tally(&mut r).with_context(|| format!("inspecting {}", patch.display()))?;
    let tree = |t: &deltapack_format::TreeId| json!({"digest": hex(&t.digest), "files": t.files, "bytes": t.bytes});
    let streams: Vec<Value> = StreamId::ALL
        .iter()
        .map(|id| {
            let (compressed, records) = counts[id.index()];
            match h.streams.get(id.index()) {
                Some(s) => json!({"stream": id.name(), "compression": s.compression.name(), "window_log": s.window_log,
                                  "raw_bytes": s.raw_len, "compressed_bytes": compressed, "records": records}),
                None => json!({"stream": id.name(), "compressed_bytes": compressed, "records": records}),
            }
        })
        .collect();
    let entries: Vec<Value> = h
        .entries
        .iter()
        .map(|e| match &e.node {
            Node::Dir { mode } => json!({"path": e.path.as_str(), "kind": "dir", "mode": format!("{mode:o}")}),
            Node::Symlink { target } => json!({"path": e.path.as_str(), "kind": "symlink", "target": target}),
            Node::File(f) => {
                let mut v = json!({"path": e.path.as_str(), "kind": "file", "mode": format!("{:o}", f.mode), "size": f.size,
                                   "hash16": hex(&f.hash), "blocks": f.blocks.len()});
                if let (Some(o), Value::Object(m)) = (op_json(&h, &f.op).as_object(), &mut v) {
                    m.extend(o.clone());
                }
                v
            }
        })
        .collect();
    let doc = json!({
        "root": if h.root == deltapack_format::RootKind::File { "file" } else { "dir" },
        "kind": if h.is_full() { "full" } else { "delta" },
        "platform": h.platform, "from_version": h.from_version, "to_version": h.to_version,
        "block_size": h.block_size(),
        "base": h.base.as_ref().map(tree), "target": tree(&h.target),
        "payload_bytes": h.payload_len,
        "streams": streams,
        "sources": h.sources.iter().map(|s| json!({"path": s.path.as_str(), "size": s.size, "hash8": hex(&s.hash8)})).collect::<Vec<_>>(),
        "removals": h.removals.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "entries": entries,
    });
    if json_out {
        out!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    out!(
        "{} package, {} root",
        doc["kind"].as_str().unwrap_or(""),
        doc["root"].as_str().unwrap_or("")
    );
    if !h.platform.is_empty() || !h.to_version.is_empty() {
        out!(
            "platform {:?}, {:?} -> {:?}",
            h.platform,
            h.from_version,
            h.to_version
        );
    }
    if let Some(b) = &h.base {
        out!(
            "base    {} ({} files, {} bytes)",
            hex(&b.digest),
            b.files,
            b.bytes
        );
    }
    out!(
        "target  {} ({} files, {} bytes)",
        hex(&h.target.digest),
        h.target.files,
        h.target.bytes
    );
    out!(
        "payload {} bytes, blocks of {} bytes",
        h.payload_len,
        h.block_size()
    );
    out!("streams:");
    for s in &streams {
        out!(
            "  {:6} {:7} raw {:>12} compressed {:>12} in {} records",
            s["stream"].as_str().unwrap_or(""),
            s["compression"].as_str().unwrap_or("-"),
            s["raw_bytes"]
                .as_u64()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            s["compressed_bytes"],
            s["records"]
        );
    }
    out!(
        "{} sources, {} removals, {} entries:",
        h.sources.len(),
        h.removals.len(),
        h.entries.len()
    );
    for r in &h.removals {
        out!("  - {r}");
    }
    for e in &h.entries {
        match &e.node {
            Node::Dir { mode } => out!("  d {:o} {}/", mode, e.path),
            Node::Symlink { target } => out!("  l {} -> {target}", e.path),
            Node::File(f) => {
                let how = match f.op {
                    Op::Copy { source }
                    | Op::Bsdiff { source }
                    | Op::ZstdRef { source }
                    | Op::BsdiffX86 { source }
                    | Op::BsdiffExe { source } => {
                        format!("{} from {}", f.op.name(), h.sources[source as usize].path)
                    }
                    _ => f.op.name().to_owned(),
                };
                out!(
                    "  f {:o} {:>10} {} {} ({how})",
                    f.mode,
                    f.size,
                    hex(&f.hash),
                    e.path
                );
            }
        }
    }
    Ok(())
}
