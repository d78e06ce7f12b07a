//! Compression of payload streams, cut into chunks at flush points.
//!
//! Each stream is one continuous zstd frame or raw LZMA2 stream, so that
//! every chunk benefits from everything compressed before it; a flush at
//! each cut makes the bytes up to that point decodable without anything
//! that follows, which is what lets the applier interleave streams while
//! reading the package front to back.

use deltapack_format::{Compression, StreamInfo, WINDOW_LOG_MIN};
use liblzma::stream::{Action, Filters, LzmaOptions, Stream};

use crate::Error;

/// How to compress one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method<'a> {
    Zstd {
        level: i32,
    },
    /// zstd with a reference prefix and long-distance matching.
    ZstdRef {
        level: i32,
        prefix: &'a [u8],
    },
    Lzma2 {
        preset: u32,
        nice_len: u32,
    },
}

/// Smallest window that holds `len` bytes, within `[WINDOW_LOG_MIN, cap]`.
pub(crate) fn window_log_for(len: u64, cap: u8) -> u8 {
    let need = 64 - len.saturating_sub(1).leading_zeros();
    (need as u8).clamp(WINDOW_LOG_MIN, cap)
}

/// Compresses `raw`, flushing at every offset in `cuts` (ascending, each at
/// most `raw.len()`). Returns the stream description and one chunk per cut
/// plus a final chunk after the last cut.
pub(crate) fn compress(
    raw: &[u8],
    cuts: &[usize],
    method: Method<'_>,
    cap: u8,
) -> Result<(StreamInfo, Vec<Vec<u8>>), Error> {
    if raw.is_empty() {
        return Ok((StreamInfo::EMPTY, vec![Vec::new(); cuts.len() + 1]));
    }
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(raw.len());
    let (window_log, chunks) = match method {
        Method::Zstd { level } => {
            let w = window_log_for(raw.len() as u64, cap);
            (w, zstd_chunks(raw, &bounds, level, w, None)?)
        }
        Method::ZstdRef { level, prefix } => {
            // The window must reach from the end of the data back to the
            // start of the prefix.
            let w = window_log_for((prefix.len() + raw.len()) as u64, cap);
            (w, zstd_chunks(raw, &bounds, level, w, Some(prefix))?)
        }
        Method::Lzma2 { preset, nice_len } => {
            let w = window_log_for(raw.len() as u64, cap);
            (w, lzma_chunks(raw, &bounds, preset, nice_len, w)?)
        }
    };
    let compression = match method {
        Method::Zstd { .. } | Method::ZstdRef { .. } => Compression::Zstd,
        Method::Lzma2 { .. } => Compression::Lzma2,
    };
    // Tiny or incompressible streams are cheaper stored (a compressed
    // stream has a few bytes of framing). The ref stream needs its prefix,
    // so it stays compressed.
    let packed: usize = chunks.iter().map(Vec::len).sum();
    if packed >= raw.len() && !matches!(method, Method::ZstdRef { .. }) {
        let mut start = 0;
        let stored = bounds
            .iter()
            .map(|&end| {
                let c = raw[start..end].to_vec();
                start = end;
                c
            })
            .collect();
        return Ok((
            StreamInfo {
                compression: Compression::Stored,
                window_log: 0,
                raw_len: raw.len() as u64,
            },
            stored,
        ));
    }
    Ok((
        StreamInfo {
            compression,
            window_log,
            raw_len: raw.len() as u64,
        },
        chunks,
    ))
}

fn zstd_chunks(
    raw: &[u8],
    bounds: &[usize],
    level: i32,
    window_log: u8,
    prefix: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, Error> {
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};
    use zstd::zstd_safe::CParameter;
    let io = |e: std::io::Error| Error::Compress {
        stream_codec: "zstd",
        cause: e,
    };
    let mut enc = match prefix {
        Some(p) => {
            let mut e = Encoder::with_ref_prefix(level, p).map_err(io)?;
            e.set_parameter(CParameter::EnableLongDistanceMatching(true))
                .map_err(io)?;
            e
        }
        None => Encoder::new(level).map_err(io)?,
    };
    enc.set_parameter(CParameter::WindowLog(u32::from(window_log)))
        .map_err(io)?;
    enc.set_pledged_src_size(Some(raw.len() as u64))
        .map_err(io)?;
    let mut chunks = Vec::with_capacity(bounds.len());
    let mut start = 0;
    let mut buf = vec![0u8; 1 << 17];
    for (i, &end) in bounds.iter().enumerate() {
        let mut chunk = Vec::new();
        let mut input = InBuffer::around(&raw[start..end]);
        while input.pos < input.src.len() {
            let mut out = OutBuffer::around(&mut buf[..]);
            enc.run(&mut input, &mut out).map_err(io)?;
            let n = out.pos();
            chunk.extend_from_slice(&buf[..n]);
        }
        let last = i + 1 == bounds.len();
        loop {
            let mut out = OutBuffer::around(&mut buf[..]);
            let left = if last {
                enc.finish(&mut out, true)
            } else {
                enc.flush(&mut out)
            }
            .map_err(io)?;
            let n = out.pos();
            chunk.extend_from_slice(&buf[..n]);
            if left == 0 {
                break;
            }
        }
        chunks.push(chunk);
        start = end;
    }
    Ok(chunks)
}

/// LZMA2 options for a preset with an explicit dictionary and match length.
pub(crate) fn lzma_filters(preset: u32, nice_len: u32, window_log: u8) -> Result<Filters, Error> {
    let mut opts = LzmaOptions::new_preset(preset).map_err(|e| Error::Compress {
        stream_codec: "lzma2",
        cause: e.into(),
    })?;
    opts.dict_size(1u32 << window_log);
    if nice_len > 0 {
        opts.nice_len(nice_len);
    }
    let mut f = Filters::new();
    f.lzma2(&opts);
    Ok(f)
}

fn lzma_chunks(
    raw: &[u8],
    bounds: &[usize],
    preset: u32,
    nice_len: u32,
    window_log: u8,
) -> Result<Vec<Vec<u8>>, Error> {
    let err = |e: liblzma::stream::Error| Error::Compress {
        stream_codec: "lzma2",
        cause: e.into(),
    };
    let filters = lzma_filters(preset, nice_len, window_log)?;
    let mut s = Stream::new_raw_encoder(&filters).map_err(err)?;
    let mut chunks = Vec::with_capacity(bounds.len());
    let mut start = 0;
    for (i, &end) in bounds.iter().enumerate() {
        let mut chunk: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut input = &raw[start..end];
        let last = i + 1 == bounds.len();
        // Feed the input, then flush (or finish) until the encoder is done.
        while !input.is_empty() {
            if chunk.capacity() - chunk.len() < 4096 {
                chunk.reserve(64 * 1024);
            }
            let before = s.total_in();
            s.process_vec(input, &mut chunk, Action::Run).map_err(err)?;
            input = &input[(s.total_in() - before) as usize..];
        }
        let action = if last {
            Action::Finish
        } else {
            Action::SyncFlush
        };
        loop {
            if chunk.capacity() - chunk.len() < 4096 {
                chunk.reserve(64 * 1024);
            }
            let status = s.process_vec(&[], &mut chunk, action).map_err(err)?;
            if status == liblzma::stream::Status::StreamEnd {
                break;
            }
        }
        chunks.push(chunk);
        start = end;
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_log_bounds() {
        assert_eq!(window_log_for(1, 20), 12);
        assert_eq!(window_log_for(4096, 20), 12);
        assert_eq!(window_log_for(4097, 20), 13);
        assert_eq!(window_log_for(1 << 30, 20), 20);
    }
}
