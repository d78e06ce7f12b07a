//! Where rebuilt file bytes go: hashed block by block as they are produced
//! (failing at the first bad block), and written to a staged file or, when
//! only verifying, nowhere.

use std::io::Write;

use deltapack_format::{FileEntry, Hash8};

use crate::Error;

/// Hashes and writes one target file.
pub(crate) struct FileSink<'a> {
    path: &'a str,
    out: Option<std::io::BufWriter<fs_err::File>>,
    expected: &'a FileEntry,
    block_size: u64,
    full: blake3::Hasher,
    block: blake3::Hasher,
    block_index: u64,
    in_block: u64,
    written: u64,
}

fn h8(h: &blake3::Hash) -> Hash8 {
    let mut o = [0u8; 8];
    o.copy_from_slice(&h.as_bytes()[..8]);
    o
}

impl<'a> FileSink<'a> {
    pub(crate) fn new(
        path: &'a str,
        out: Option<fs_err::File>,
        expected: &'a FileEntry,
        block_size: u64,
    ) -> Self {
        FileSink {
            path,
            out: out.map(|f| std::io::BufWriter::with_capacity(64 * 1024, f)),
            expected,
            block_size,
            full: blake3::Hasher::new(),
            block: blake3::Hasher::new(),
            block_index: 0,
            in_block: 0,
            written: 0,
        }
    }

    fn mismatch(&self, block: Option<u64>) -> Error {
        Error::HashMismatch {
            path: self.path.to_owned(),
            block,
        }
    }

    /// Bytes still expected.
    pub(crate) fn remaining(&self) -> u64 {
        self.expected.size - self.written
    }

    /// Appends bytes, checking each completed block.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        if data.len() as u64 > self.remaining() {
            return Err(Error::CorruptPatch {
                path: self.path.to_owned(),
                codec: self.expected.op.name(),
                what: format!(
                    "produces more than the declared {} bytes",
                    self.expected.size
                ),
            });
        }
        self.full.update(data);
        if let Some(o) = &mut self.out {
            o.write_all(data)?;
        }
        self.written += data.len() as u64;
        if self.expected.blocks.is_empty() {
            return Ok(());
        }
        while !data.is_empty() {
            let take = ((self.block_size - self.in_block) as usize).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take as u64;
            data = &data[take..];
            if self.in_block == self.block_size {
                self.end_block()?;
            }
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), Error> {
        let got = h8(&self.block.finalize());
        let want = self.expected.blocks.get(self.block_index as usize);
        if want != Some(&got) {
            return Err(self.mismatch(Some(self.block_index)));
        }
        self.block.reset();
        self.block_index += 1;
        self.in_block = 0;
        Ok(())
    }

    /// Checks the size and hashes; flushes and syncs the file if asked.
    /// Returns the full BLAKE3 of the contents.
    pub(crate) fn finish(mut self, sync: bool) -> Result<[u8; 32], Error> {
        if self.written != self.expected.size {
            return Err(Error::CorruptPatch {
                path: self.path.to_owned(),
                codec: self.expected.op.name(),
                what: format!("produced {} of {} bytes", self.written, self.expected.size),
            });
        }
        if self.in_block > 0 {
            self.end_block()?;
        }
        let full = self.full.finalize();
        if h8(&full) != self.expected.hash {
            return Err(self.mismatch(None));
        }
        if let Some(o) = self.out.take() {
            let f = o.into_inner().map_err(|e| e.into_error())?;
            if sync {
                f.sync_all()?;
            }
        }
        Ok(*full.as_bytes())
    }
}
