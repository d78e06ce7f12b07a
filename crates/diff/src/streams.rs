//! The raw (uncompressed) payload streams of a package, filled file by file
//! in entry order, with cut points roughly every [`SEGMENT`] bytes of
//! target output.
//!
//! Cuts bound how much the applier must buffer: between two cuts, every
//! stream's chunk is written before the next segment starts, so the
//! applier never holds more than about one segment of compressed data for
//! streams it is not reading yet.

use deltapack_format::exe::{Layout, Predictor};
use deltapack_format::reader::{put_varint, zigzag};
use deltapack_format::{STREAMS, StreamId};

use crate::bsdiff::{Block, rle};

/// Target bytes between cuts.
pub(crate) const SEGMENT: u64 = 1 << 20;

/// Offsets of every stream at a cut.
pub(crate) type Cut = [usize; STREAMS];

/// Raw stream contents and their cut points.
#[derive(Debug, Default)]
pub(crate) struct RawStreams {
    /// Indexed by [`StreamId`].
    pub(crate) bufs: [Vec<u8>; STREAMS],
    pub(crate) cuts: Vec<Cut>,
    since_cut: u64,
}

impl RawStreams {
    fn cut(&mut self) {
        let c: Cut = std::array::from_fn(|i| self.bufs[i].len());
        if self.cuts.last() != Some(&c) {
            self.cuts.push(c);
        }
        self.since_cut = 0;
    }

    fn account(&mut self, n: u64) -> bool {
        self.since_cut += n;
        self.since_cut >= SEGMENT
    }

    /// Appends a whole file to the data stream (stored files) or the ref
    /// stream (patch-from files).
    pub(crate) fn push_whole(&mut self, id: StreamId, data: &[u8]) {
        for piece in data.chunks(SEGMENT as usize) {
            self.bufs[id.index()].extend_from_slice(piece);
            if self.account(piece.len() as u64) {
                self.cut();
            }
        }
    }

    /// Appends a bsdiff patch. With `cuts`, cuts may fall between blocks.
    /// With a `layout`, it is a `bsdiff-exe` patch (FORMAT.md §6.4): the
    /// layout and every control go first, all in the file's first segment
    /// (the applier reads them all before it writes), and the difference
    /// bytes are taken against old bytes with their references predicted.
    pub(crate) fn push_bsdiff(
        &mut self,
        old: &[u8],
        new: &[u8],
        blocks: &[Block],
        cuts: bool,
        layout: Option<&Layout>,
    ) {
        let mut diff: Vec<u8> = Vec::new();
        let predictor = layout.map(|layout| {
            let ctrl = &mut self.bufs[StreamId::Ctrl.index()];
            layout.encode(ctrl);
            let mut offset = 0;
            for b in blocks {
                put_control(ctrl, b, &mut offset);
            }
            Predictor::new(layout.clone(), crate::exe::equivalences(blocks))
        });
        let mut last_offset: i64 = 0;
        let mut buf = Vec::new();
        // Cuts inside this file: offsets of ctrl and extra, and the position
        // in this file's difference bytes.
        let mut pending: Vec<(usize, usize, usize)> = Vec::new();
        for b in blocks {
            let old_bytes = &old[b.old_pos..b.old_pos + b.add_len];
            let old_bytes = match &predictor {
                Some(p) => {
                    buf.clear();
                    buf.extend_from_slice(old_bytes);
                    p.predict(&mut buf, b.old_pos as u64, b.new_pos as u64);
                    &buf[..]
                }
                None => {
                    put_control(&mut self.bufs[StreamId::Ctrl.index()], b, &mut last_offset);
                    old_bytes
                }
            };
            diff.extend(
                new[b.new_pos..b.new_pos + b.add_len]
                    .iter()
                    .zip(old_bytes)
                    .map(|(n, o)| n.wrapping_sub(*o)),
            );
            let e = b.new_pos + b.add_len;
            self.bufs[StreamId::Extra.index()].extend_from_slice(&new[e..e + b.extra_len]);
            if self.account((b.add_len + b.extra_len) as u64) && cuts {
                pending.push((
                    self.bufs[StreamId::Ctrl.index()].len(),
                    diff.len(),
                    self.bufs[StreamId::Extra.index()].len(),
                ));
                self.since_cut = 0;
            }
        }
        let marks: Vec<usize> = pending.iter().map(|p| p.1).collect();
        let [data, _, zrun, vals, _, refs] = &mut self.bufs;
        let at = rle::encode(&diff, &marks, vals, zrun);
        for ((c, _, e), (d, z)) in pending.into_iter().zip(at) {
            let cut: Cut = [data.len(), c, z, d, e, refs.len()];
            if self.cuts.last() != Some(&cut) {
                self.cuts.push(cut);
            }
        }
    }
}

/// Appends one control triple; `last_offset` is the alignment so far.
fn put_control(ctrl: &mut Vec<u8>, b: &Block, last_offset: &mut i64) {
    put_varint(ctrl, b.add_len as u64);
    put_varint(ctrl, b.extra_len as u64);
    let delta = if b.add_len == 0 {
        0
    } else {
        let offset = b.old_pos as i64 - b.new_pos as i64;
        let d = offset - *last_offset;
        *last_offset = offset;
        d
    };
    put_varint(ctrl, zigzag(delta));
}
