//! Rebuilding one file: the codec decoders (bsdiff, zstd patch-from,
//! literal, copy), each writing into a [`FileSink`].

use std::io::Read;

use deltapack_format::{Op, StreamId};

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
        if add > 0 {
            offset = offset
                .checked_add(delta)
                .ok_or_else(|| corrupt(format!("seek overflow at output byte {out_pos}")))?;
            let old_pos = (out_pos as i64)
                .checked_add(offset)
                .filter(|&p| p >= 0)
                .map(|p| p as u64);
            let old_pos = match old_pos {
                Some(p) if p.checked_add(add).is_some_and(|e| e <= old_size) => p,
                _ => {
                    return Err(corrupt(format!(
                        "reads {add} bytes at base offset {} of a {old_size}-byte file",
                        out_pos as i128 + offset as i128
                    )));
                }
            };
            let mut done = 0u64;
            while done < add {
                let want = (add - done).min(PIECE as u64) as usize;
                let n = {
                    let old = base.at(old_pos + done, want)?;
                    let n = old.len();
                    diff[..n].copy_from_slice(old);
                    n
                };
                apply_diff(s, &mut runs, &mut diff[..n])?;
                sink.write(&diff[..n])?;
                done += n as u64;
            }
        }
        let mut done = 0u64;
        while done < extra {
            let want = (extra - done).min(PIECE as u64) as usize;
            let (d, p) = s.d(StreamId::Extra);
            let chunk = d.chunk(p, want)?;
            done += chunk.len() as u64;
            sink.write(chunk)?;
        }
        out_pos += add + extra;
    }
    if runs.excess != 0 {
        return Err(corrupt(
            "a zero run continues past the end of the file".into(),
        ));
    }
    Ok(())
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
