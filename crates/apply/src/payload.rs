//! Reading the payload from a byte stream: records are demultiplexed into
//! per-stream chunk queues, the payload is hashed as it passes, and every
//! length is checked against the limits and the declared payload size
//! before anything is allocated.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};

use deltapack_format::reader::Reader;
use deltapack_format::{DecodeError, Limits, RecordHeader, STREAMS, Section, StreamId};

use crate::Error;

/// The payload of a package being read front to back.
pub(crate) struct Payload<R> {
    inner: R,
    /// Payload bytes not yet read.
    remaining: u64,
    /// Offset within the payload.
    offset: u64,
    hasher: blake3::Hasher,
    expected_hash: [u8; 32],
    pending: [VecDeque<Vec<u8>>; STREAMS],
    pending_bytes: u64,
    limits: Limits,
}

impl<R: Read> Payload<R> {
    /// `hasher` has already absorbed the compressed header; `hash` is the
    /// package hash from the prologue.
    pub(crate) fn new(
        inner: R,
        len: u64,
        hasher: blake3::Hasher,
        hash: [u8; 32],
        limits: &Limits,
    ) -> Self {
        Payload {
            inner,
            remaining: len,
            offset: 0,
            hasher,
            expected_hash: hash,
            pending: Default::default(),
            pending_bytes: 0,
            limits: limits.clone(),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if (buf.len() as u64) > self.remaining {
            return Err(DecodeError::Truncated {
                section: Section::Payload,
                offset: self.offset + self.remaining,
            }
            .into());
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(DecodeError::Truncated {
                    section: Section::Payload,
                    offset: self.offset,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        self.hasher.update(buf);
        self.remaining -= buf.len() as u64;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn read_record(&mut self) -> Result<(StreamId, Vec<u8>), Error> {
        let start = self.offset;
        let mut head = [0u8; RecordHeader::MAX_LEN];
        self.read_exact(&mut head[..1])?;
        let mut n = 1;
        loop {
            self.read_exact(&mut head[n..n + 1])?;
            n += 1;
            if head[n - 1] & 0x80 == 0 || n == RecordHeader::MAX_LEN {
                break;
            }
        }
        let mut r = Reader::new(&head[..n], Section::Payload);
        let h = RecordHeader::decode(&mut r, self.limits.max_record_len)
            .map_err(|e| shift(e, start))?;
        if h.len > self.remaining {
            return Err(DecodeError::Truncated {
                section: Section::Payload,
                offset: self.offset + self.remaining,
            }
            .into());
        }
        let mut bytes = vec![0u8; h.len as usize];
        self.read_exact(&mut bytes)?;
        Ok((h.stream, bytes))
    }

    /// The next chunk of `stream`, or `None` if the payload holds no more.
    pub(crate) fn next_chunk(&mut self, stream: StreamId) -> Result<Option<Vec<u8>>, Error> {
        if let Some(c) = self.pending[stream.index()].pop_front() {
            self.pending_bytes -= c.len() as u64;
            return Ok(Some(c));
        }
        while self.remaining > 0 {
            let (id, bytes) = self.read_record()?;
            if id == stream {
                return Ok(Some(bytes));
            }
            self.pending_bytes += bytes.len() as u64;
            if self.pending_bytes > self.limits.max_pending_bytes {
                return Err(Error::PendingLimit {
                    limit: self.limits.max_pending_bytes,
                });
            }
            self.pending[id.index()].push_back(bytes);
        }
        Ok(None)
    }

    /// Reads the next record whatever its stream (for structural checks).
    pub(crate) fn next_any(&mut self) -> Result<Option<(StreamId, Vec<u8>)>, Error> {
        for id in StreamId::ALL {
            if let Some(c) = self.pending[id.index()].pop_front() {
                self.pending_bytes -= c.len() as u64;
                return Ok(Some((id, c)));
            }
        }
        if self.remaining == 0 {
            return Ok(None);
        }
        self.read_record().map(Some)
    }

    /// Whether unread chunks remain for `stream`.
    pub(crate) fn has_more(&mut self, stream: StreamId) -> Result<bool, Error> {
        match self.next_chunk(stream)? {
            Some(c) => {
                self.pending_bytes += c.len() as u64;
                self.pending[stream.index()].push_front(c);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Checks that the whole payload was consumed, hashes right, and is the
    /// end of the input.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        for id in StreamId::ALL {
            if !self.pending[id.index()].is_empty() {
                return Err(Error::stream(
                    id,
                    "holds more data than the package's files use",
                ));
            }
        }
        if self.remaining > 0 {
            // Some stream still has records nobody read.
            let (id, _) = self.read_record()?;
            return Err(Error::stream(
                id,
                "holds more data than the package's files use",
            ));
        }
        if *self.hasher.finalize().as_bytes() != self.expected_hash {
            return Err(Error::PackageHashMismatch);
        }
        let mut extra = [0u8; 1];
        loop {
            match self.inner.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(DecodeError::TrailingData {
                        section: Section::Payload,
                        count: 1,
                    }
                    .into());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Moves an offset reported relative to a record header to the payload.
fn shift(e: DecodeError, by: u64) -> DecodeError {
    match e {
        DecodeError::Truncated { section, offset } => DecodeError::Truncated {
            section,
            offset: offset + by,
        },
        DecodeError::BadVarint { section, offset } => DecodeError::BadVarint {
            section,
            offset: offset + by,
        },
        DecodeError::UnknownValue {
            what,
            value,
            section,
            offset,
        } => DecodeError::UnknownValue {
            what,
            value,
            section,
            offset: offset + by,
        },
        DecodeError::LengthExceedsLimit {
            what,
            value,
            limit,
            section,
            offset,
        } => DecodeError::LengthExceedsLimit {
            what,
            value,
            limit,
            section,
            offset: offset + by,
        },
        other => other,
    }
}
