//! Decoding one compressed payload stream incrementally, pulling chunks
//! from the [`Payload`] as needed, never producing more than the header
//! declares, and checking at the end that it produced exactly that much.

use std::io::Read;

use deltapack_format::reader::{Reader, unzigzag};
use deltapack_format::{Compression, Limits, Section, StreamId, StreamInfo};
use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};
use zstd::stream::raw::{Decoder as ZDecoder, InBuffer, Operation, OutBuffer};

use crate::Error;
use crate::payload::Payload;

const OUT_BUF: usize = 64 * 1024;

enum Engine<'p> {
    Stored,
    Zstd(Box<ZDecoder<'p>>),
    Lzma(Box<Stream>),
}

/// One stream's decoder state. `'p` is the lifetime of the reference
/// prefix of the ref stream.
pub(crate) struct StreamDecoder<'p> {
    id: StreamId,
    engine: Engine<'p>,
    input: Vec<u8>,
    in_pos: usize,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    produced: u64,
    declared: u64,
    ended: bool,
}

impl<'p> StreamDecoder<'p> {
    /// A decoder for stream `id`; `prefix` is the reference prefix (only
    /// for the ref stream).
    pub(crate) fn new(
        id: StreamId,
        info: &StreamInfo,
        limits: &Limits,
        prefix: Option<&'p [u8]>,
    ) -> Result<Self, Error> {
        let engine = match info.compression {
            Compression::Stored => Engine::Stored,
            Compression::Zstd => {
                let d = match prefix {
                    Some(p) => ZDecoder::with_ref_prefix(p),
                    None => ZDecoder::new(),
                };
                let mut d = d.map_err(|e| Error::stream(id, e.to_string()))?;
                d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(u32::from(
                    info.window_log.min(limits.max_window_log),
                )))
                .map_err(|e| Error::stream(id, e.to_string()))?;
                Engine::Zstd(Box::new(d))
            }
            Compression::Lzma2 => {
                let mut opts =
                    LzmaOptions::new_preset(6).map_err(|e| Error::stream(id, e.to_string()))?;
                opts.dict_size(1u32 << info.window_log.min(limits.max_window_log));
                let mut f = Filters::new();
                f.lzma2(&opts);
                Engine::Lzma(Box::new(
                    Stream::new_raw_decoder(&f).map_err(|e| Error::stream(id, e.to_string()))?,
                ))
            }
            _ => return Err(Error::stream(id, "unsupported compression")),
        };
        Ok(StreamDecoder {
            id,
            engine,
            input: Vec::new(),
            in_pos: 0,
            out: if info.raw_len > 0 {
                vec![0u8; OUT_BUF]
            } else {
                Vec::new()
            },
            out_pos: 0,
            out_len: 0,
            produced: 0,
            declared: info.raw_len,
            ended: false,
        })
    }

    /// Runs the engine once on the buffered input into `out[..cap]`;
    /// returns (consumed, produced).
    fn step(&mut self, cap: usize) -> Result<(usize, usize), Error> {
        let id = self.id;
        let input = &self.input[self.in_pos..];
        let out = &mut self.out[..cap];
        match &mut self.engine {
            Engine::Stored => {
                let n = input.len().min(out.len());
                out[..n].copy_from_slice(&input[..n]);
                Ok((n, n))
            }
            Engine::Zstd(d) => {
                let mut ib = InBuffer::around(input);
                let mut ob = OutBuffer::around(out);
                let hint = d
                    .run(&mut ib, &mut ob)
                    .map_err(|e| Error::stream(id, format!("zstd: {e}")))?;
                if hint == 0 {
                    self.ended = true;
                }
                Ok((ib.pos(), ob.pos()))
            }
            Engine::Lzma(s) => {
                let (i0, o0) = (s.total_in(), s.total_out());
                let status = s
                    .process(input, out, Action::Run)
                    .map_err(|e| Error::stream(id, format!("lzma2: {e}")))?;
                if status == Status::StreamEnd {
                    self.ended = true;
                }
                Ok(((s.total_in() - i0) as usize, (s.total_out() - o0) as usize))
            }
        }
    }

    /// Refills the output buffer. Fails if the stream cannot produce more.
    fn fill<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<(), Error> {
        let left = self.declared - self.produced;
        if left == 0 {
            return Err(Error::stream(
                self.id,
                format!(
                    "ended after its declared {} bytes but more were needed",
                    self.declared
                ),
            ));
        }
        let cap = (left.min(OUT_BUF as u64)) as usize;
        loop {
            if self.ended {
                return Err(Error::stream(
                    self.id,
                    format!(
                        "compressed data ended after {} of {} bytes",
                        self.produced, self.declared
                    ),
                ));
            }
            // Run the engine even on empty input: it may hold output back.
            let (consumed, produced) = self.step(cap)?;
            self.in_pos += consumed;
            if produced > 0 {
                self.out_pos = 0;
                self.out_len = produced;
                self.produced += produced as u64;
                return Ok(());
            }
            if self.in_pos < self.input.len() {
                if consumed == 0 {
                    return Err(Error::stream(self.id, "decoder made no progress"));
                }
                continue;
            }
            match payload.next_chunk(self.id)? {
                Some(c) => {
                    self.input = c;
                    self.in_pos = 0;
                }
                None => {
                    return Err(Error::stream(
                        self.id,
                        format!(
                            "truncated after {} of {} bytes",
                            self.produced, self.declared
                        ),
                    ));
                }
            }
        }
    }

    /// Reads up to `buf.len()` bytes (at least one).
    pub(crate) fn read<R: Read>(
        &mut self,
        payload: &mut Payload<R>,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        if self.out_pos == self.out_len {
            self.fill(payload)?;
        }
        let n = buf.len().min(self.out_len - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }

    /// Borrows up to `max` decoded bytes (at least one).
    pub(crate) fn chunk<R: Read>(
        &mut self,
        payload: &mut Payload<R>,
        max: usize,
    ) -> Result<&[u8], Error> {
        if self.out_pos == self.out_len {
            self.fill(payload)?;
        }
        let n = max.min(self.out_len - self.out_pos);
        let s = &self.out[self.out_pos..self.out_pos + n];
        self.out_pos += n;
        Ok(s)
    }

    /// The decoded bytes available now (at least one), without consuming them.
    pub(crate) fn peek<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<&[u8], Error> {
        if self.out_pos == self.out_len {
            self.fill(payload)?;
        }
        Ok(&self.out[self.out_pos..self.out_len])
    }

    /// Consumes `n` bytes returned by [`Self::peek`].
    pub(crate) fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out_len);
    }

    /// Reads exactly `buf.len()` bytes.
    pub(crate) fn read_exact<R: Read>(
        &mut self,
        payload: &mut Payload<R>,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        let mut done = 0;
        while done < buf.len() {
            done += self.read(payload, &mut buf[done..])?;
        }
        Ok(())
    }

    fn byte<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<u8, Error> {
        let mut b = [0u8; 1];
        self.read_exact(payload, &mut b)?;
        Ok(b[0])
    }

    /// Reads a canonical unsigned varint.
    pub(crate) fn varint<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<u64, Error> {
        // Gather the varint's bytes (it may straddle refills), then decode
        // them with the format's one varint reader.
        let mut buf = [0u8; 10];
        let mut n = 0;
        while n < buf.len() {
            buf[n] = self.byte(payload)?;
            n += 1;
            if buf[n - 1] & 0x80 == 0 {
                break;
            }
        }
        let at = self.produced - (self.out_len - self.out_pos) as u64 - n as u64;
        Reader::new(&buf[..n], Section::Stream(self.id))
            .varint()
            .map_err(|_| Error::stream(self.id, format!("malformed varint at decoded byte {at}")))
    }

    /// Reads a zigzag-coded signed varint.
    pub(crate) fn svarint<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<i64, Error> {
        self.varint(payload).map(unzigzag)
    }

    /// Checks that all declared bytes were consumed and the compressed
    /// stream ends exactly there.
    pub(crate) fn finish<R: Read>(&mut self, payload: &mut Payload<R>) -> Result<(), Error> {
        let used = self.produced - (self.out_len - self.out_pos) as u64;
        if used != self.declared {
            return Err(Error::stream(
                self.id,
                format!(
                    "declares {} bytes but the package's files use {used}",
                    self.declared
                ),
            ));
        }
        if self.declared == 0 || matches!(self.engine, Engine::Stored) {
            if self.in_pos < self.input.len() || payload.has_more(self.id)? {
                return Err(Error::stream(self.id, "longer than declared"));
            }
            return Ok(());
        }
        loop {
            if self.ended {
                if self.in_pos < self.input.len() || payload.has_more(self.id)? {
                    return Err(Error::stream(
                        self.id,
                        "data after the end of the compressed stream",
                    ));
                }
                return Ok(());
            }
            let (consumed, produced) = self.step(1)?;
            self.in_pos += consumed;
            if produced > 0 {
                return Err(Error::stream(self.id, "longer than declared"));
            }
            if self.ended {
                continue;
            }
            if self.in_pos < self.input.len() {
                if consumed == 0 {
                    return Err(Error::stream(self.id, "decoder made no progress"));
                }
                continue;
            }
            match payload.next_chunk(self.id)? {
                Some(c) => {
                    self.input = c;
                    self.in_pos = 0;
                }
                None => {
                    return Err(Error::stream(
                        self.id,
                        "compressed stream is not terminated",
                    ));
                }
            }
        }
    }
}

impl StreamDecoder<'_> {
    /// Appends a chunk of compressed input (structural verification, where
    /// records are fed in package order rather than pulled).
    pub(crate) fn feed(&mut self, chunk: Vec<u8>) {
        if self.in_pos == self.input.len() {
            self.input = chunk;
        } else {
            self.input.drain(..self.in_pos);
            self.input.extend_from_slice(&chunk);
        }
        self.in_pos = 0;
    }

    /// Decodes everything the buffered input yields, discarding it.
    pub(crate) fn discard_available(&mut self) -> Result<(), Error> {
        loop {
            let left = self.declared - self.produced;
            let cap = left.min(OUT_BUF as u64) as usize;
            if cap == 0 {
                return Ok(());
            }
            if self.ended {
                return if self.in_pos < self.input.len() {
                    Err(Error::stream(
                        self.id,
                        "data after the end of the compressed stream",
                    ))
                } else {
                    Ok(())
                };
            }
            let (consumed, produced) = self.step(cap)?;
            self.in_pos += consumed;
            self.produced += produced as u64;
            self.out_pos = 0;
            self.out_len = 0;
            if consumed == 0 && produced == 0 {
                return Ok(());
            }
        }
    }
}
