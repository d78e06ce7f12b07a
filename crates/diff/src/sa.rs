//! Suffix-array construction behind a small trait.
//!
//! The bsdiff-family codec needs the suffix array of the old file. Two
//! constructions are available: [`Libsais`] (C, the fastest measured, single
//! threaded so it never fights rayon for cores) and [`DivSufSort`] (pure
//! Rust, about 1.8x slower, 32-bit only).
//!
//! **Index width and very large files.** Files below 2 GiB get 32-bit
//! indices: the array costs 4 bytes per byte of old file (a 30 MB binary
//! needs 120 MB). From 2 GiB, libsais builds 64-bit indices (8 bytes per
//! byte), which works as long as the machine has about 10x the old file in
//! memory. Beyond that the plan is to partition: sort the old file in
//! overlapping windows of at most 2 GiB (each with 32-bit indices), search
//! each window's array for every match, and keep the longest, so memory is
//! bounded by the window rather than the file; bidiff's `sacapart` does the
//! same. The rest of the pipeline is already 64-bit clean: block positions
//! are `usize`, controls are varints, and the applier reads the base with
//! 64-bit offsets through a small buffer (tested against a sparse 4 GiB
//! base).

use crate::Error;

/// A suffix array over a text, with 32-bit indices where the text allows.
#[derive(Debug)]
pub enum SuffixArray {
    /// Indices for texts shorter than `i32::MAX` bytes.
    I32(Vec<i32>),
    /// Indices for larger texts.
    I64(Vec<i64>),
}

impl SuffixArray {
    /// Number of suffixes (equals the text length).
    pub fn len(&self) -> usize {
        match self {
            SuffixArray::I32(v) => v.len(),
            SuffixArray::I64(v) => v.len(),
        }
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text position of the suffix of rank `rank`.
    #[inline]
    pub fn at(&self, rank: usize) -> usize {
        // Values come from the constructor and lie in 0..len, so the casts
        // are lossless.
        match self {
            SuffixArray::I32(v) => v[rank] as usize,
            SuffixArray::I64(v) => v[rank] as usize,
        }
    }
}

/// Builds suffix arrays.
pub trait SuffixSorter: Sync {
    /// Sorts the suffixes of `text`.
    fn sort(&self, text: &[u8]) -> Result<SuffixArray, Error>;
}

/// libsais, single threaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Libsais;

impl SuffixSorter for Libsais {
    fn sort(&self, text: &[u8]) -> Result<SuffixArray, Error> {
        if text.len() < i32::MAX as usize {
            let sa = libsais::SuffixArrayConstruction::for_text(text)
                .in_owned_buffer32()
                .single_threaded()
                .run()
                .map_err(|e| Error::SuffixArray {
                    len: text.len(),
                    reason: format!("{e:?}"),
                })?
                .into_vec();
            Ok(SuffixArray::I32(sa))
        } else {
            let sa = libsais::SuffixArrayConstruction::for_text(text)
                .in_owned_buffer64()
                .single_threaded()
                .run()
                .map_err(|e| Error::SuffixArray {
                    len: text.len(),
                    reason: format!("{e:?}"),
                })?
                .into_vec();
            Ok(SuffixArray::I64(sa))
        }
    }
}

/// divsufsort, pure Rust (texts below 2 GiB only).
#[derive(Debug, Default, Clone, Copy)]
pub struct DivSufSort;

impl SuffixSorter for DivSufSort {
    fn sort(&self, text: &[u8]) -> Result<SuffixArray, Error> {
        if text.len() >= i32::MAX as usize {
            return Err(Error::SuffixArray {
                len: text.len(),
                reason: "divsufsort indexes at most 2 GiB; use libsais".into(),
            });
        }
        let mut sa = vec![0i32; text.len()];
        divsufsort::sort_in_place(text, &mut sa);
        Ok(SuffixArray::I32(sa))
    }
}
