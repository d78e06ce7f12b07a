//! [`Limits`]: every bound the decoder and applier enforce on untrusted input.

/// Bounds on what a package may declare. Defaults suit application trees of
/// up to a million files and files of up to 64 GiB; tighten them for
/// constrained clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Compressed and decompressed header size (default 64 MiB).
    pub max_header_bytes: u32,
    /// Entries, sources and removals, each (default 1,000,000).
    pub max_entries: u64,
    /// Bytes in one path (default 4096).
    pub max_path_len: usize,
    /// Components in one path (default 64).
    pub max_path_depth: usize,
    /// Bytes in a version, platform or symlink target string (default 4096).
    pub max_string_len: u64,
    /// Size of one file (default 64 GiB).
    pub max_file_size: u64,
    /// Sum of the sizes of all files in a tree (default 1 TiB).
    pub max_total_size: u64,
    /// Largest compression window (zstd window log / LZMA2 dictionary log)
    /// a stream may ask for; bounds decoder memory (default 24 = 16 MiB).
    pub max_window_log: u8,
    /// Bytes in one payload record (default 4 MiB).
    pub max_record_len: u64,
    /// Compressed bytes buffered for streams other than the one being read
    /// (default 32 MiB).
    pub max_pending_bytes: u64,
    /// Largest base file the zstd patch-from codec may load as its reference
    /// (default 8 MiB).
    pub max_ref_prefix: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 << 20,
            max_entries: 1_000_000,
            max_path_len: 4096,
            max_path_depth: 64,
            max_string_len: 4096,
            max_file_size: 64 << 30,
            max_total_size: 1 << 40,
            max_window_log: 24,
            max_record_len: 4 << 20,
            max_pending_bytes: 32 << 20,
            max_ref_prefix: 8 << 20,
        }
    }
}
