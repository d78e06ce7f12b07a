//! The streaming, verifying applier of deltapack packages.
//!
//! [`Applier::apply`] reads a package from any [`Read`] (a file, stdin, an
//! HTTP body) without storing it first. Before writing anything it checks
//! that the base is exactly the tree the package was made against; then it
//! rebuilds the target into a staging location beside the output, checks
//! every block as it is produced, every file, and the whole tree's digest,
//! and only then moves the result into place with one rename. A failed
//! apply leaves nothing at the output path and removes its staging.
//!
//! Memory stays bounded whatever the file sizes: base files are read
//! through small buffers, streams are decoded incrementally, and the only
//! whole-file buffer is the (size-limited) reference of the patch-from codec.
//!
//! ```no_run
//! use std::path::Path;
//! let package = std::fs::File::open("update.dpk")?;
//! let report = deltapack_apply::Applier::new()
//!     .apply(Some(Path::new("v1.0.0")), package, Path::new("v1.0.1"), &|_| {})?;
//! println!("rebuilt {} files", report.files);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod base;
mod decoder;
mod error;
mod expected;
pub mod fuzzing;
mod patch;
mod payload;
mod sink;
mod staging;
mod target;

use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use deltapack_format::{
    DecodeError, Header, Limits, Node, PROLOGUE_LEN, Prologue, STREAMS, Section, StreamId,
    StreamInfo, TreeId, decode_header,
};
use deltapack_tree::{NodeKind, hex};

pub use base::{VerifiedBase, verify_base};
pub use error::{Error, HeaderField};
pub use expected::Expected;

use crate::base::BaseFile;
use crate::decoder::StreamDecoder;
use crate::patch::Streams;
use crate::payload::Payload;
use crate::sink::FileSink;
use crate::staging::Staging;
use crate::target::Target;

/// Progress events, for a front end to render. The library never prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The header is read.
    Header {
        /// Bytes of target files the package rebuilds.
        bytes: u64,
    },
    /// Hashing the base tree.
    VerifyingBase,
    /// Target bytes produced so far.
    Progress {
        /// Bytes done.
        done: u64,
    },
    /// Checking the tree and moving it into place.
    Finishing,
}

/// What an apply or verify did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The package header.
    pub header: Header,
    /// Identity of the rebuilt (or verified) target.
    pub target: Option<TreeId>,
    /// Files rebuilt from the package.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Whether the base was verified.
    pub base_verified: bool,
    /// Whether every target byte was rebuilt and checked (false for a
    /// structural check of a delta without its base).
    pub full: bool,
    /// Every path of the rebuilt target (empty for a structural check):
    /// what [`Applier::base_paths`] takes when this version is the next
    /// base.
    pub paths: Vec<String>,
}

/// Applies and verifies packages.
#[derive(Debug, Clone)]
pub struct Applier {
    limits: Limits,
    sync: bool,
    expected: Expected,
    base_paths: Option<std::collections::BTreeSet<String>>,
}

impl Default for Applier {
    fn default() -> Self {
        Self::new()
    }
}

impl Applier {
    /// Default limits; files and directories are synced before the final
    /// rename.
    pub fn new() -> Self {
        Applier {
            limits: Limits::default(),
            sync: true,
            expected: Expected::default(),
            base_paths: None,
        }
    }

    /// The paths that make up the base (the release's own files, as a
    /// previous apply reported them in [`Report::paths`]): anything else in
    /// the base directory is ignored — neither checked nor carried into the
    /// new version — so files an app or its runtime added next to its code
    /// do not make a delta fail. The listed paths are verified as always.
    pub fn base_paths(mut self, paths: std::collections::BTreeSet<String>) -> Self {
        self.base_paths = Some(paths);
        self
    }

    /// What the package must be (from a signed manifest): checked against
    /// its header before anything is written ([`Error::Unexpected`]).
    pub fn expect(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// Bounds on what a package may declare.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether to fsync the rebuilt tree before moving it into place
    /// (default true).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Reads and checks the prologue and header (the package hash can only
    /// be checked once the payload has been read, by apply or verify).
    pub fn read_header(&self, r: &mut impl Read) -> Result<Header, Error> {
        Ok(self.read_prefix(r)?.header)
    }

    fn read_prefix(&self, r: &mut impl Read) -> Result<Prefix, Error> {
        let mut pro = [0u8; PROLOGUE_LEN];
        let n = read_full(r, &mut pro)?;
        let p = Prologue::decode(&pro[..n], &self.limits)?;
        let mut compressed = vec![0u8; p.header_len as usize];
        let n = read_full(r, &mut compressed)?;
        if n < compressed.len() {
            return Err(DecodeError::Truncated {
                section: Section::Header,
                offset: n as u64,
            }
            .into());
        }
        let header = decode_header(&p, &compressed, &self.limits)?;
        self.expected.check(&header)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&compressed);
        Ok(Prefix {
            header,
            hasher,
            hash: p.package_hash,
        })
    }

    fn payload<R: Read>(&self, prefix: &Prefix, package: R) -> Payload<BufReader<R>> {
        Payload::new(
            BufReader::with_capacity(64 * 1024, package),
            prefix.header.payload_len,
            prefix.hasher.clone(),
            prefix.hash,
            &self.limits,
        )
    }

    /// Rebuilds the package's target from `base` into `output`, which must
    /// not exist.
    pub fn apply(
        &self,
        base: Option<&Path>,
        mut package: impl Read,
        output: &Path,
        progress: &dyn Fn(Event),
    ) -> Result<Report, Error> {
        if fs_err::symlink_metadata(output).is_ok() {
            return Err(Error::OutputExists {
                path: output.to_owned(),
            });
        }
        let prefix = self.read_prefix(&mut package)?;
        let header = &prefix.header;
        progress(Event::Header {
            bytes: rebuilt_bytes(header),
        });
        let vb = self.base_for(header, base, progress)?;
        let mut target = target::compose(header, vb.as_ref())?;
        let staging = Staging::create(output, header.root)?;
        let (files, bytes) = self.rebuild(
            &prefix,
            vb.as_ref(),
            &mut target,
            package,
            Some(&staging),
            progress,
        )?;
        progress(Event::Finishing);
        if let Some(vb) = &vb {
            staging.carry_over(vb, &target, self.sync)?;
        }
        staging.make_symlinks(&target)?;
        let id = check_target(header, &target)?;
        staging.finish(&target, prefix.header.mtimes.as_ref(), output, self.sync)?;
        Ok(Report {
            header: prefix.header,
            target: Some(id),
            files,
            bytes,
            base_verified: vb.is_some(),
            full: true,
            paths: target.paths(),
        })
    }

    /// Checks a package without writing anything. With the base (or for a
    /// full package) every target byte is rebuilt in memory-bounded
    /// streaming fashion and checked; without the base, a delta package is
    /// checked structurally: header, framing, payload hash, and that every
    /// stream decodes to its declared length.
    pub fn verify(
        &self,
        mut package: impl Read,
        base: Option<&Path>,
        progress: &dyn Fn(Event),
    ) -> Result<Report, Error> {
        let prefix = self.read_prefix(&mut package)?;
        let header = &prefix.header;
        progress(Event::Header {
            bytes: rebuilt_bytes(header),
        });
        if header.base.is_some() && base.is_none() {
            self.check_structure(&prefix, package)?;
            return Ok(Report {
                header: prefix.header,
                target: None,
                files: 0,
                bytes: 0,
                base_verified: false,
                full: false,
                paths: Vec::new(),
            });
        }
        let vb = self.base_for(header, base, progress)?;
        let mut target = target::compose(header, vb.as_ref())?;
        let (files, bytes) =
            self.rebuild(&prefix, vb.as_ref(), &mut target, package, None, progress)?;
        progress(Event::Finishing);
        let id = check_target(header, &target)?;
        Ok(Report {
            header: prefix.header,
            target: Some(id),
            files,
            bytes,
            base_verified: vb.is_some(),
            full: true,
            paths: target.paths(),
        })
    }

    fn base_for(
        &self,
        header: &Header,
        base: Option<&Path>,
        progress: &dyn Fn(Event),
    ) -> Result<Option<VerifiedBase>, Error> {
        if header.base.is_none() {
            return Ok(None);
        }
        let Some(base) = base else {
            return Err(Error::BaseRequired {
                from: header.from_version.clone(),
            });
        };
        progress(Event::VerifyingBase);
        base::verify_base_of(header, base, self.base_paths.as_ref()).map(Some)
    }

    /// The ref stream's prefix: the reference files concatenated.
    fn ref_prefix(&self, header: &Header, vb: Option<&VerifiedBase>) -> Result<Vec<u8>, Error> {
        let mut prefix = Vec::new();
        for i in header.ref_sources() {
            let src = &header.sources[i as usize];
            let vb = vb.ok_or(Error::BaseRequired {
                from: header.from_version.clone(),
            })?;
            let data = BaseFile::open(&vb.fs_path(&src.path), src.size)?.read_all()?;
            if data.len() as u64 != src.size {
                return Err(Error::BaseChanged {
                    path: src.path.to_string(),
                });
            }
            prefix.extend_from_slice(&data);
        }
        Ok(prefix)
    }

    /// Rebuilds every file entry, in order, into the staging (or nowhere).
    fn rebuild(
        &self,
        prefix: &Prefix,
        vb: Option<&VerifiedBase>,
        target: &mut Target,
        package: impl Read,
        staging: Option<&Staging>,
        progress: &dyn Fn(Event),
    ) -> Result<(u64, u64), Error> {
        let header = &prefix.header;
        let ref_prefix = self.ref_prefix(header, vb)?;
        let payload = self.payload(prefix, package);
        let mut streams = Streams::new(
            payload,
            decoders(&header.streams, &self.limits, Some(&ref_prefix))?,
        );
        if let Some(s) = staging {
            s.make_dirs(target)?;
        }
        let (mut files, mut bytes) = (0u64, 0u64);
        for e in &header.entries {
            let Node::File(f) = &e.node else { continue };
            let path = e.path.as_str();
            let out = match staging {
                Some(s) => Some(s.create_file(&e.path, f.mode)?),
                None => None,
            };
            let mut sink = FileSink::new(path, out, f, header.block_size());
            let source = |i: u32| -> Result<BaseFile, Error> {
                let src = &header.sources[i as usize];
                let vb = vb.ok_or(Error::BaseRequired {
                    from: header.from_version.clone(),
                })?;
                BaseFile::open(&vb.fs_path(&src.path), src.size)
            };
            patch::rebuild(f.op, &mut streams, &source, &mut sink, path)?;
            let hash = sink.finish(self.sync && staging.is_some())?;
            if let Some(NodeKind::File { hash: h, .. }) =
                target.nodes.get_mut(&e.path).map(|n| &mut n.kind)
            {
                *h = hash;
            }
            files += 1;
            bytes += f.size;
            progress(Event::Progress { done: bytes });
        }
        streams.finish()?;
        Ok((files, bytes))
    }

    /// Structural check of a delta without its base: every stream but the
    /// ref stream (which needs the base as prefix) is decoded to its end.
    fn check_structure(&self, prefix: &Prefix, package: impl Read) -> Result<(), Error> {
        check_streams(
            &prefix.header.streams,
            &self.limits,
            self.payload(prefix, package),
        )
    }
}

/// A decoder for each stream the header declares; `ref_prefix` is the ref
/// stream's reference prefix (`None` when the base is not at hand).
pub(crate) fn decoders<'p>(
    streams: &[StreamInfo; STREAMS],
    limits: &Limits,
    ref_prefix: Option<&'p [u8]>,
) -> Result<Vec<StreamDecoder<'p>>, Error> {
    (0..STREAMS)
        .map(|i| {
            let id = StreamId::ALL[i];
            StreamDecoder::new(
                id,
                &streams[i],
                limits,
                ref_prefix.filter(|_| id == StreamId::Ref),
            )
        })
        .collect()
}

/// The structural check of [`Applier::verify`] without the base: every
/// stream but the ref stream (which needs the base as prefix) is decoded
/// to its end, in package order.
pub(crate) fn check_streams<R: Read>(
    streams: &[StreamInfo; STREAMS],
    limits: &Limits,
    mut payload: Payload<R>,
) -> Result<(), Error> {
    let mut dec = decoders(streams, limits, None)?;
    let mut ref_bytes = 0u64;
    while let Some((id, chunk)) = payload.next_any()? {
        if id == StreamId::Ref {
            ref_bytes += chunk.len() as u64;
            continue;
        }
        let d = &mut dec[id.index()];
        d.feed(chunk);
        d.discard_available()?;
    }
    if streams[StreamId::Ref.index()].raw_len > 0 && ref_bytes == 0 {
        return Err(Error::stream(StreamId::Ref, "is missing"));
    }
    for (i, d) in dec.iter_mut().enumerate() {
        if StreamId::ALL[i] != StreamId::Ref {
            d.finish(&mut payload)?;
        }
    }
    payload.finish()
}

/// The decoded start of a package and the hash state after it.
struct Prefix {
    header: Header,
    hasher: blake3::Hasher,
    hash: [u8; 32],
}

/// Sum of the sizes of the files the package rebuilds.
fn rebuilt_bytes(h: &Header) -> u64 {
    h.entries
        .iter()
        .map(|e| {
            if let Node::File(f) = &e.node {
                f.size
            } else {
                0
            }
        })
        .sum()
}

fn check_target(header: &Header, target: &Target) -> Result<TreeId, Error> {
    let id = target.id(header.root);
    if id != header.target {
        return Err(Error::TargetMismatch {
            expected: hex(&header.target.digest),
            found: hex(&id.digest),
        });
    }
    Ok(id)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}
