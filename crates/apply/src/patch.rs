//! Rebuilding one file: the codec decoders (bsdiff, zstd patch-from,
//! literal, copy), each writing into a [`FileSink`].

use std::io::Read;

use deltapack_format::exe::{Layout, Predictor};
use deltapack_format::{Op, StreamId, reloc};

use crate::Error;
use crate::base::BaseFile;
use crate::decoder::StreamDecoder;
use crate::payload::Payload;
use crate::sink::FileSink;

const PIECE: usize = 64 * 1024;

/// The decoders of all streams and the payload they read from.
pub(crate) struct Streams<'p, R> {
    pub(crate) payload: Payload<R>,
    pub(crate) dec: Vec<StreamDecoder<'p>>,
}

impl<'p, R: Read> Streams<'p, R> {
    pub(crate) fn new(payload: Payload<R>, dec: Vec<StreamDecoder<'p>>) -> Self {
        Streams { payload, dec }
    }

    /// Checks every stream was consumed exactly, then the payload.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        for d in &mut self.dec {
            d.finish(&mut self.payload)?;
        }
        self.payload.finish()
    }

    fn d(&mut self, id: StreamId) -> (&mut StreamDecoder<'p>, &mut Payload<R>) {
        (&mut self.dec[id.index()], &mut self.payload)
    }
}

/// Rebuilds one file with its op's codec. `source` opens a base file by
/// its index in the header's sources.
pub(crate) fn rebuild<R: Read>(
    op: Op,
    s: &mut Streams<'_, R>,
    source: &dyn Fn(u32) -> Result<BaseFile, Error>,
    sink: &mut FileSink<'_>,
    path: &str,
) -> Result<(), Error> {
    match op {
        Op::Literal => whole(s, StreamId::Data, sink),
        Op::ZstdRef { .. } => whole(s, StreamId::Ref, sink),
        Op::Copy { source: i } => copy(&mut source(i)?, sink),
        Op::Bsdiff { source: i } => bsdiff(s, &mut source(i)?, sink, path),
        Op::BsdiffX86 { source: i } => predicted(s, &mut source(i)?, sink, path, Codec::X86),
        Op::BsdiffExe { source: i } => predicted(s, &mut source(i)?, sink, path, Codec::Exe),
        _ => Err(Error::Conflict {
            what: format!("unsupported operation for {path:?}"),
        }),
    }
}

/// Whole-file bytes from the data stream (stored files) or the ref stream
/// (patch-from files, whose reference is the decoder's prefix).
pub(crate) fn whole<R: Read>(
    s: &mut Streams<'_, R>,
    id: StreamId,
    sink: &mut FileSink<'_>,
) -> Result<(), Error> {
    while sink.remaining() > 0 {
        let max = sink.remaining().min(PIECE as u64) as usize;
        let (d, p) = s.d(id);
        let chunk = d.chunk(p, max)?;
        sink.write(chunk)?;
    }
    Ok(())
}

/// Bytes of a base file.
pub(crate) fn copy(base: &mut BaseFile, sink: &mut FileSink<'_>) -> Result<(), Error> {
    let mut pos = 0;
    while pos < base.size() {
        let chunk = base.at(pos, PIECE)?;
        let n = chunk.len();
        sink.write(chunk)?;
        pos += n as u64;
    }
    Ok(())
}

/// Zero runs of this length in the diff stream are followed by an excess
/// count in the zrun stream (see the diff crate's `rle` module).
const RUN: u32 = 8;

/// Zero-run state of the difference stream within one file.
#[derive(Default)]
struct ZeroRuns {
    /// Consecutive zeros just read from the diff stream.
    zeros: u32,
    /// Zeros still owed from the last excess count.
    excess: u64,
}

/// A bsdiff patch: controls from ctrl, difference bytes from zrun + diff,
/// literal bytes from extra, old bytes from the base file.
pub(crate) fn bsdiff<R: Read>(
    s: &mut Streams<'_, R>,
    base: &mut BaseFile,
    sink: &mut FileSink<'_>,
    path: &str,
) -> Result<(), Error> {
    let corrupt = |what: String| Error::CorruptPatch {
        path: path.to_owned(),
        codec: "bsdiff",
        what,
    };
    let size = sink.remaining();
    let old_size = base.size();
    let mut out_pos: u64 = 0;
    let mut offset: i64 = 0;
    let mut runs = ZeroRuns::default();
    let mut diff = vec![0u8; PIECE];
    while out_pos < size {
        let c = next_control(s, size, out_pos, &mut offset, old_size, &corrupt)?;
        if c.add > 0 {
            let mut done = 0u64;
            while done < c.add {
                let want = (c.add - done).min(PIECE as u64) as usize;
                let n = {
                    let old = base.at(c.old_pos + done, want)?;
                    let n = old.len();
                    diff[..n].copy_from_slice(old);
                    n
                };
                apply_diff(s, &mut runs, &mut diff[..n])?;
                sink.write(&diff[..n])?;
                done += n as u64;
            }
        }
        copy_extra(s, c.extra, sink)?;
        out_pos += c.add + c.extra;
    }
    if runs.excess != 0 {
        return Err(corrupt(
            "a zero run continues past the end of the file".into(),
        ));
    }
    Ok(())
}

/// One bsdiff control, checked: `add` old bytes at `old_pos` plus
/// difference bytes, then `extra` literal bytes.
#[derive(Debug, Clone, Copy)]
struct Control {
    add: u64,
    extra: u64,
    old_pos: u64,
}

/// Reads and checks the next control (FORMAT.md §6.1).
fn next_control<R: Read>(
    s: &mut Streams<'_, R>,
    size: u64,
    out_pos: u64,
    offset: &mut i64,
    old_size: u64,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<Control, Error> {
    let (add, extra, delta) = {
        let (d, p) = s.d(StreamId::Ctrl);
        (d.varint(p)?, d.varint(p)?, d.svarint(p)?)
    };
    let step = add
        .checked_add(extra)
        .filter(|&n| n > 0 && n <= size - out_pos);
    if step.is_none() {
        return Err(corrupt(format!(
            "control (add {add}, extra {extra}) at output byte {out_pos} overruns the {size}-byte file"
        )));
    }
    if add == 0 {
        return Ok(Control {
            add,
            extra,
            old_pos: 0,
        });
    }
    *offset = offset
        .checked_add(delta)
        .ok_or_else(|| corrupt(format!("seek overflow at output byte {out_pos}")))?;
    let old_pos = (out_pos as i64)
        .checked_add(*offset)
        .filter(|&p| p >= 0)
        .map(|p| p as u64);
    match old_pos {
        Some(p) if p.checked_add(add).is_some_and(|e| e <= old_size) => Ok(Control {
            add,
            extra,
            old_pos: p,
        }),
        _ => Err(corrupt(format!(
            "reads {add} bytes at base offset {} of a {old_size}-byte file",
            out_pos as i128 + *offset as i128
        ))),
    }
}

/// Writes the next `extra` bytes of the extra stream.
fn copy_extra<R: Read>(
    s: &mut Streams<'_, R>,
    extra: u64,
    sink: &mut FileSink<'_>,
) -> Result<(), Error> {
    let mut done = 0u64;
    while done < extra {
        let want = (extra - done).min(PIECE as u64) as usize;
        let (d, p) = s.d(StreamId::Extra);
        let chunk = d.chunk(p, want)?;
        done += chunk.len() as u64;
        sink.write(chunk)?;
    }
    Ok(())
}

/// The two bsdiff codecs whose old bytes are corrected before the
/// difference bytes are added.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codec {
    /// `bsdiff-x86` (FORMAT.md §6.3): branches in code ranges.
    X86,
    /// `bsdiff-exe` (FORMAT.md §6.4): references found through a layout.
    Exe,
}

/// What corrects the old bytes of an add region.
enum Corrector {
    X86(reloc::Relocator),
    Exe(Predictor),
}

/// A bsdiff patch whose old bytes are corrected first (`bsdiff-x86`,
/// FORMAT.md §6.3, or `bsdiff-exe`, §6.4): the ctrl stream starts with
/// the old file's code ranges or the files' layout, and all of the file's
/// controls are read before the first byte is written, since a reference
/// may target bytes that a later control moves.
///
/// Memory: the equivalences of at most [`reloc::MAX_CONTROLS`] controls
/// (28 bytes each for `bsdiff-exe`, so at most 3.5 MiB; 48 for
/// `bsdiff-x86`), the layout (under 40 KiB) and one add region of at most
/// [`reloc::MAX_REGION`] bytes.
pub(crate) fn predicted<R: Read>(
    s: &mut Streams<'_, R>,
    base: &mut BaseFile,
    sink: &mut FileSink<'_>,
    path: &str,
    codec: Codec,
) -> Result<(), Error> {
    let corrupt = |what: String| Error::CorruptPatch {
        path: path.to_owned(),
        codec: match codec {
            Codec::X86 => "bsdiff-x86",
            Codec::Exe => "bsdiff-exe",
        },
        what,
    };
    let size = sink.remaining();
    let old_size = base.size();
    let head = match codec {
        Codec::X86 => Head::Ranges(code_ranges(s, old_size, &corrupt)?),
        Codec::Exe => {
            let layout = {
                let (d, p) = s.d(StreamId::Ctrl);
                Layout::read(|| d.varint(p))?.map_err(&corrupt)?
            };
            layout.check(old_size, size).map_err(&corrupt)?;
            Head::Layout(layout)
        }
    };
    // Only the equivalences are kept: the controls are where they start,
    // with literal (extra) bytes filling the gaps between them.
    let mut eqs = Vec::new();
    let (mut out_pos, mut offset, mut count) = (0u64, 0i64, 0usize);
    while out_pos < size {
        if count == reloc::MAX_CONTROLS {
            return Err(corrupt(format!(
                "more than {} controls",
                reloc::MAX_CONTROLS
            )));
        }
        count += 1;
        let c = next_control(s, size, out_pos, &mut offset, old_size, &corrupt)?;
        if c.add > reloc::MAX_REGION || c.extra > reloc::MAX_REGION {
            return Err(corrupt(format!(
                "a region at output byte {out_pos} is longer than {} bytes",
                reloc::MAX_REGION
            )));
        }
        if c.add > 0 {
            eqs.push(reloc::Equivalence {
                old_pos: c.old_pos,
                new_pos: out_pos,
                len: c.add,
            });
        }
        out_pos += c.add + c.extra;
    }
    let (corrector, in_order) = match head {
        Head::Ranges(ranges) => {
            let r = reloc::Relocator::new(ranges, eqs.clone());
            (Corrector::X86(r), eqs)
        }
        Head::Layout(layout) => (Corrector::Exe(Predictor::new(layout, eqs)), Vec::new()),
    };
    let eqs = match &corrector {
        Corrector::X86(_) => &in_order[..],
        Corrector::Exe(p) => p.equivalences(),
    };
    let mut runs = ZeroRuns::default();
    let mut buf = Vec::new();
    out_pos = 0;
    for e in eqs {
        copy_extra(s, e.new_pos - out_pos, sink)?;
        buf.clear();
        while (buf.len() as u64) < e.len {
            let want = (e.len - buf.len() as u64).min(PIECE as u64) as usize;
            let chunk = base.at(e.old_pos + buf.len() as u64, want)?;
            buf.extend_from_slice(chunk);
        }
        match &corrector {
            Corrector::X86(r) => r.predict(&mut buf, e.old_pos, e.new_pos),
            Corrector::Exe(p) => p.predict(&mut buf, e.old_pos, e.new_pos),
        }
        apply_diff(s, &mut runs, &mut buf)?;
        sink.write(&buf)?;
        out_pos = e.new_pos + e.len;
    }
    copy_extra(s, size - out_pos, sink)?;
    if runs.excess != 0 {
        return Err(corrupt(
            "a zero run continues past the end of the file".into(),
        ));
    }
    Ok(())
}

/// The head of a corrected file's controls.
enum Head {
    Ranges(Vec<(u64, u64)>),
    Layout(Layout),
}

/// The code ranges at the start of a `bsdiff-x86` file's controls.
fn code_ranges<R: Read>(
    s: &mut Streams<'_, R>,
    old_size: u64,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<Vec<(u64, u64)>, Error> {
    let (d, p) = s.d(StreamId::Ctrl);
    let n = d.varint(p)?;
    if n > reloc::MAX_RANGES as u64 {
        return Err(corrupt(format!(
            "{n} code ranges, at most {}",
            reloc::MAX_RANGES
        )));
    }
    let mut ranges = Vec::with_capacity(n as usize);
    let mut prev = 0u64;
    for _ in 0..n {
        let (gap, len) = (d.varint(p)?, d.varint(p)?);
        let start = prev.checked_add(gap);
        let end = start.and_then(|a| a.checked_add(len));
        let (Some(a), Some(b)) = (start, end) else {
            return Err(corrupt("a code range overflows".into()));
        };
        ranges.push((a, b));
        prev = b;
    }
    reloc::check_ranges(&ranges, old_size).map_err(corrupt)?;
    Ok(ranges)
}

/// Adds the next `buf.len()` difference bytes to `buf` (which holds old bytes).
fn apply_diff<R: Read>(
    s: &mut Streams<'_, R>,
    runs: &mut ZeroRuns,
    buf: &mut [u8],
) -> Result<(), Error> {
    let mut i = 0;
    while i < buf.len() {
        if runs.excess > 0 {
            let k = runs.excess.min((buf.len() - i) as u64) as usize;
            runs.excess -= k as u64;
            i += k;
            continue;
        }
        let (d, p) = s.d(StreamId::Diff);
        let avail = d.peek(p)?;
        let want = avail.len().min(buf.len() - i);
        let mut k = 0;
        let mut hit = false;
        while k < want {
            let v = avail[k];
            buf[i + k] = buf[i + k].wrapping_add(v);
            k += 1;
            if v == 0 {
                runs.zeros += 1;
                if runs.zeros == RUN {
                    runs.zeros = 0;
                    hit = true;
                    break;
                }
            } else {
                runs.zeros = 0;
            }
        }
        d.consume(k);
        i += k;
        if hit {
            let (z, p) = s.d(StreamId::Zrun);
            runs.excess = z.varint(p)?;
        }
    }
    Ok(())
}
