//! Payload streams and the records that carry them.
//!
//! The payload is a sequence of records `[stream id: u8][len: varint][bytes]`.
//! Each compressed stream is one continuous compressed sequence, cut into
//! chunks at flush points so that the applier can decode all streams side by
//! side while reading the package front to back with bounded buffering.

use crate::DecodeError;
use crate::reader::{Reader, Section};

/// The payload streams, in the order of their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StreamId {
    /// File contents stored whole (new files, full bundles).
    Data = 0,
    /// bsdiff control triples.
    Ctrl = 1,
    /// bsdiff difference data, zero runs: pairs of varints
    /// (zero bytes, non-zero bytes).
    Zrun = 2,
    /// bsdiff difference data: the bytes of the non-zero runs.
    Diff = 3,
    /// bsdiff extra (literal) data.
    Extra = 4,
    /// The patch-from stream: one zstd frame holding the contents of every
    /// zstd-ref file, decoded with the concatenated reference files as
    /// prefix.
    Ref = 5,
}

/// Number of streams (all are listed in the header's stream table).
pub const STREAMS: usize = 6;

impl StreamId {
    /// All streams.
    pub const ALL: [StreamId; 6] = [
        StreamId::Data,
        StreamId::Ctrl,
        StreamId::Zrun,
        StreamId::Diff,
        StreamId::Extra,
        StreamId::Ref,
    ];

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            StreamId::Data => "data",
            StreamId::Ctrl => "ctrl",
            StreamId::Zrun => "zrun",
            StreamId::Diff => "diff",
            StreamId::Extra => "extra",
            StreamId::Ref => "ref",
        }
    }

    /// The stream with id `v`.
    pub fn from_u8(v: u8) -> Option<StreamId> {
        StreamId::ALL.get(usize::from(v)).copied()
    }

    /// Index in [`StreamId::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed.
    Stored = 0,
    /// One zstd frame (flushed at chunk boundaries).
    Zstd = 1,
    /// Raw LZMA2 (no container), sync-flushed at chunk boundaries.
    Lzma2 = 2,
}

impl Compression {
    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Stored => "stored",
            Compression::Zstd => "zstd",
            Compression::Lzma2 => "lzma2",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Compression> {
        match v {
            0 => Some(Compression::Stored),
            1 => Some(Compression::Zstd),
            2 => Some(Compression::Lzma2),
            _ => None,
        }
    }
}

/// A compressed stream as the header declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// Compression method.
    pub compression: Compression,
    /// log2 of the window (zstd) or dictionary (LZMA2) size; 0 when stored.
    pub window_log: u8,
    /// Exact decompressed length of the whole stream.
    pub raw_len: u64,
}

impl StreamInfo {
    /// An empty stored stream.
    pub const EMPTY: StreamInfo = StreamInfo {
        compression: Compression::Stored,
        window_log: 0,
        raw_len: 0,
    };
}

/// Smallest and largest window logs a stream may declare.
pub const WINDOW_LOG_MIN: u8 = 12;

/// The header of one payload record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Which stream the bytes belong to.
    pub stream: StreamId,
    /// Number of bytes that follow.
    pub len: u64,
}

impl RecordHeader {
    /// Longest encoded record header.
    pub const MAX_LEN: usize = 11;

    /// Encodes the header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.stream as u8);
        crate::reader::put_varint(out, self.len);
    }

    /// Decodes a record header from the start of `r`. `max_len` bounds the
    /// record length; a zero length is rejected.
    pub fn decode(r: &mut Reader<'_>, max_len: u64) -> Result<RecordHeader, DecodeError> {
        let offset = r.offset();
        let id = r.u8()?;
        let stream = StreamId::from_u8(id).ok_or(DecodeError::UnknownValue {
            what: "stream id",
            value: u64::from(id),
            section: Section::Payload,
            offset,
        })?;
        let len = r.varint_max("record length", max_len)?;
        if len == 0 {
            return Err(DecodeError::Inconsistent {
                what: format!("empty record at payload byte {offset}"),
            });
        }
        Ok(RecordHeader { stream, len })
    }
}
