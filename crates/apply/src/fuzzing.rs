//! Entry points for the fuzz targets in `fuzz/` (and for replaying their
//! findings as ordinary tests).
//!
//! - [`verify_against_fixed_base`]: whole packages (`apply_package`).
//! - [`decode_codec`]: the per-file codecs on their own (`codec_decoder`):
//!   arbitrary stream declarations and payload records go straight into the
//!   codec decoders, past the package header and hash.
//! - [`codec_round_trip`]: what the real encoder makes with each codec must
//!   rebuild the new file byte for byte (`codec_round_trip`; the encoder is
//!   passed in, as this crate cannot depend on it).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deltapack_format::reader::{Reader, put_varint};
use deltapack_format::{
    Compression, FileEntry, Limits, Node, Op, STREAMS, Section, StreamInfo, WINDOW_LOG_MIN,
    decode_prefix,
};

use crate::base::BaseFile;
use crate::payload::Payload;
use crate::sink::FileSink;
use crate::{Applier, Error, patch};

/// Deterministic pseudo-random bytes.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The files of the fixed base tree: `(path, contents)`.
pub fn fixed_base_files() -> Vec<(&'static str, Vec<u8>)> {
    let text: Vec<u8> = (0..400)
        .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
        .collect();
    vec![
        ("a.bin", noise(1, 64 * 1024)),
        ("d/c.bin", noise(2, 5000)),
        ("d/empty", Vec::new()),
        ("text.txt", text),
    ]
}

/// Writes the fixed base tree under `root` (which must exist).
pub fn write_fixed_base(root: &Path) -> std::io::Result<()> {
    for (p, data) in fixed_base_files() {
        let p = root.join(p);
        if let Some(parent) = p.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(p, data)?;
    }
    Ok(())
}

static BASE: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();

/// Verifies arbitrary bytes as a package, with and without the fixed base.
/// Must never panic; an `Ok` with the base means every byte was checked.
/// Returns the outcome with the base (a replayed valid seed must be `Ok`).
pub fn verify_against_fixed_base(data: &[u8]) -> Result<(), String> {
    let base = BASE.get_or_init(|| {
        let d = tempfile::tempdir().ok()?;
        write_fixed_base(d.path()).ok()?;
        Some(d)
    });
    let applier = Applier::new();
    let without = applier.verify(data, None, &|_| {});
    let Some(b) = base else {
        return Err("the fixed base could not be written".into());
    };
    let with = applier.verify(data, Some(b.path()), &|_| {});
    if with.is_ok() && without.is_err() {
        return Err(format!(
            "verifies with the base but not structurally: {}",
            without.err().map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    with.map(drop).map_err(|e| e.to_string())
}

/// Largest file a [`decode_codec`] input may declare (bounds the work of
/// one run: every codec produces at least one byte per step).
const CODEC_FILE_MAX: u64 = 128 << 10;

/// Most files one [`decode_codec`] input may declare.
const CODEC_FILES_MAX: u8 = 4;

/// Largest stream length a structural-check input may declare (that check
/// decodes every stream to its declared end).
const CODEC_STREAM_MAX: u64 = 1 << 20;

/// Bytes of a [`codec_round_trip`] input used for the two files.
const ROUND_TRIP_MAX: usize = 64 << 10;

/// Most edits a [`codec_round_trip`] script applies.
const ROUND_TRIP_EDITS: usize = 64;

/// The old file of the `codec_decoder` target: 300 lines of text, then
/// 4 KiB of noise (13 kB).
pub fn codec_old_file() -> Vec<u8> {
    let mut v: Vec<u8> = (0..300)
        .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
        .collect();
    v.extend(noise(3, 4096));
    v
}

/// [`codec_old_file`] on disk (base files are read from files) and in
/// memory (the patch-from codec's reference prefix).
struct CodecBase {
    _dir: tempfile::TempDir,
    path: PathBuf,
    data: Vec<u8>,
}

static CODEC_BASE: OnceLock<Option<CodecBase>> = OnceLock::new();

fn codec_base() -> Option<&'static CodecBase> {
    CODEC_BASE
        .get_or_init(|| {
            let dir = tempfile::tempdir().ok()?;
            let path = dir.path().join("old");
            let data = codec_old_file();
            fs_err::write(&path, &data).ok()?;
            Some(CodecBase {
                _dir: dir,
                path,
                data,
            })
        })
        .as_ref()
}

/// A [`decode_codec`] input, parsed.
struct CodecInput<'a> {
    /// Run the structural check instead of rebuilding files.
    structural: bool,
    streams: [StreamInfo; STREAMS],
    /// Op and size of each file to rebuild.
    files: Vec<(Op, u64)>,
    /// Payload records.
    payload: &'a [u8],
}

fn op_code(op: Op) -> Option<u8> {
    match op {
        Op::Literal => Some(0),
        Op::ZstdRef { .. } => Some(1),
        Op::Bsdiff { .. } => Some(2),
        Op::Copy { .. } => Some(3),
        Op::BsdiffX86 { .. } => Some(4),
        Op::BsdiffExe { .. } => Some(5),
        _ => None,
    }
}

impl<'a> CodecInput<'a> {
    /// Every byte string parses up to where it ends; stream declarations
    /// are mapped into what a header can declare.
    fn parse(data: &'a [u8], limits: &Limits) -> Option<Self> {
        let mut r = Reader::new(data, Section::Payload);
        let flags = r.u8().ok()?;
        let mut streams = [StreamInfo::EMPTY; STREAMS];
        let windows = limits.max_window_log.saturating_sub(WINDOW_LOG_MIN) + 1;
        for s in &mut streams {
            let c = r.u8().ok()?;
            let w = r.u8().ok()?;
            let raw_len = r.varint().ok()?.min(limits.max_total_size);
            let compression = match c % 3 {
                0 => Compression::Stored,
                1 => Compression::Zstd,
                _ => Compression::Lzma2,
            };
            let window_log = match compression {
                Compression::Stored => 0,
                _ => WINDOW_LOG_MIN + w % windows,
            };
            *s = StreamInfo {
                compression,
                window_log,
                raw_len,
            };
        }
        let n = r.u8().ok()? % (CODEC_FILES_MAX + 1);
        let mut files = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let op = match r.u8().ok()? % 6 {
                0 => Op::Literal,
                1 => Op::ZstdRef { source: 0 },
                2 => Op::Bsdiff { source: 0 },
                3 => Op::Copy { source: 0 },
                4 => Op::BsdiffX86 { source: 0 },
                _ => Op::BsdiffExe { source: 0 },
            };
            files.push((op, r.varint().ok()?.min(CODEC_FILE_MAX)));
        }
        let payload = r.take(r.remaining()).ok()?;
        Some(CodecInput {
            structural: flags & 1 != 0,
            streams,
            files,
            payload,
        })
    }
}

/// Re-lays a package made against [`codec_old_file`] (by the real encoder)
/// as a [`decode_codec`] input: its stream table, its files' ops and
/// sizes, its payload. `None` if it does not fit (more than 4 files, or
/// files over 128 KiB). For making seeds.
pub fn codec_input_from_package(package: &[u8], structural: bool) -> Option<Vec<u8>> {
    let (_, header, at) = decode_prefix(package, &Limits::default()).ok()?;
    let mut out = vec![u8::from(structural)];
    for s in &header.streams {
        out.push(s.compression as u8);
        out.push(s.window_log.saturating_sub(WINDOW_LOG_MIN));
        put_varint(&mut out, s.raw_len);
    }
    let files: Vec<&FileEntry> = header
        .entries
        .iter()
        .filter_map(|e| match &e.node {
            Node::File(f) => Some(f),
            _ => None,
        })
        .collect();
    if files.len() > usize::from(CODEC_FILES_MAX) || files.iter().any(|f| f.size > CODEC_FILE_MAX) {
        return None;
    }
    out.push(files.len() as u8);
    for f in files {
        out.push(op_code(f.op)?);
        put_varint(&mut out, f.size);
    }
    out.extend_from_slice(package.get(at..)?);
    Some(out)
}

/// Decodes arbitrary bytes with the per-file codecs against the fixed old
/// file [`codec_old_file`], without a package around them (so without the
/// header decode and package hash in the way). Must never panic, allocate
/// without bound or hang. The input (varints as in the format):
///
/// ```text
/// flags: u8                 bit 0: the structural check of a verify
///                           without base, instead of rebuilding files
/// 6 x stream                data, ctrl, zrun, diff, extra, ref:
///     compression: u8       % 3: stored, zstd, lzma2
///     window: u8            log = 12 + window % 13 (0 when stored)
///     raw_len: varint
/// files: u8                 % 5
/// files x
///     op: u8                % 4: literal (data), zstd patch-from (ref),
///                           bsdiff (ctrl, zrun, diff, extra), copy
///     size: varint          at most 128 KiB
/// payload                   records, to the end
/// ```
///
/// Files are rebuilt in order, as by the applier, until one fails; the
/// file hashes are not known, so a hash mismatch does not stop the run.
/// Returns the first failure (a replayed valid seed must be `Ok`).
pub fn decode_codec(data: &[u8]) -> Result<(), String> {
    let limits = Limits::default();
    let Some(base) = codec_base() else {
        return Err("the old file could not be written".into());
    };
    let Some(input) = CodecInput::parse(data, &limits) else {
        return Err("not a codec input".into());
    };
    let payload = Payload::new(
        input.payload,
        input.payload.len() as u64,
        blake3::Hasher::new(),
        [0; 32],
        &limits,
    );
    if input.structural {
        let mut streams = input.streams;
        for s in &mut streams {
            s.raw_len = s.raw_len.min(CODEC_STREAM_MAX);
        }
        return no_package_hash(crate::check_streams(&streams, &limits, payload));
    }
    let dec =
        crate::decoders(&input.streams, &limits, Some(&base.data)).map_err(|e| e.to_string())?;
    let mut streams = patch::Streams::new(payload, dec);
    let source = |_: u32| BaseFile::open(&base.path, base.data.len() as u64);
    for (op, size) in input.files {
        let entry = FileEntry {
            mode: 0o644,
            size,
            hash: [0; 8],
            op,
            blocks: Vec::new(),
        };
        let mut sink = FileSink::new("fuzz", None, &entry, 1 << 12);
        patch::rebuild(op, &mut streams, &source, &mut sink, "fuzz").map_err(|e| e.to_string())?;
        // The input carries no file hashes: a mismatch is expected.
        match sink.finish(false) {
            Ok(_) | Err(Error::HashMismatch { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    no_package_hash(streams.finish())
}

/// A codec input has no package around it, so no package hash: its
/// mismatch at the end is expected; any other failure is reported.
fn no_package_hash(r: Result<(), Error>) -> Result<(), String> {
    match r {
        Ok(()) | Err(Error::PackageHashMismatch) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A new file made from `old` by the edits in `script`, 4 bytes each
/// (`[op, pos lo, pos hi, arg]`; at most 64): change a byte, insert a run,
/// delete a range, duplicate a range elsewhere.
fn edit(old: &[u8], script: &[u8]) -> Vec<u8> {
    let mut v = old.to_vec();
    for e in script.chunks_exact(4).take(ROUND_TRIP_EDITS) {
        let pos = usize::from(u16::from_le_bytes([e[1], e[2]])) % (v.len() + 1);
        let arg = usize::from(e[3]);
        match e[0] % 4 {
            0 => {
                if let Some(b) = v.get_mut(pos) {
                    *b = b.wrapping_add(e[3] | 1);
                }
            }
            1 => {
                v.splice(pos..pos, std::iter::repeat_n(e[3], arg % 32 + 1));
            }
            2 => {
                let end = (pos + arg * 4 + 1).min(v.len());
                v.drain(pos..end);
            }
            _ => {
                let end = (pos + arg * 16 + 1).min(v.len());
                let piece = v[pos..end].to_vec();
                let at = (pos * 31 + arg) % (v.len() + 1);
                v.splice(at..at, piece);
            }
        }
        if v.len() > ROUND_TRIP_MAX {
            v.truncate(ROUND_TRIP_MAX);
        }
    }
    v
}

/// Round-trip oracle for the codecs: splits the input into an old and a
/// new file, encodes them with `encode` (the real encoder; its `variant`
/// argument selects the codec and stream compression, see
/// `deltapack_diff::fuzzing::encode`), applies the package to the old file
/// and checks the result is the new file byte for byte. Panics if the
/// encoder fails, the applier rejects the package, or the bytes differ;
/// returns whether the round trip ran (inputs under 4 bytes do not).
/// The input:
///
/// ```text
/// variant: u8               passed to `encode`
/// flags: u8                 bit 0: new = old with the edits the tail
///                           describes (see `edit`); else new = the tail
/// split: u16 le             old = rest[..split % (rest.len() + 1)]
/// rest                      at most 64 KiB are used
/// ```
pub fn codec_round_trip<E: Display>(
    data: &[u8],
    encode: impl Fn(&Path, &Path, u8) -> Result<Vec<u8>, E>,
) -> bool {
    let [variant, flags, s0, s1, rest @ ..] = data else {
        return false;
    };
    let rest = &rest[..rest.len().min(ROUND_TRIP_MAX)];
    let split = usize::from(u16::from_le_bytes([*s0, *s1])) % (rest.len() + 1);
    let (old, tail) = rest.split_at(split);
    let new = if flags & 1 != 0 {
        edit(old, tail)
    } else {
        tail.to_vec()
    };
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let (old_path, new_path, out) = (
        dir.path().join("old"),
        dir.path().join("new"),
        dir.path().join("out"),
    );
    if fs_err::write(&old_path, old).is_err() || fs_err::write(&new_path, &new).is_err() {
        return false;
    }
    let what = format!(
        "old {} bytes, new {} bytes, variant {variant}",
        old.len(),
        new.len()
    );
    let package = match encode(&old_path, &new_path, *variant) {
        Ok(p) => p,
        Err(e) => panic!("the encoder failed ({what}): {e}"),
    };
    let applier = Applier::new().sync(false);
    if let Err(e) = applier.verify(&package[..], None, &|_| {}) {
        panic!("the structural check rejects the encoder's package ({what}): {e}");
    }
    if let Err(e) = applier.apply(Some(&old_path), &package[..], &out, &|_| {}) {
        panic!("the applier rejects the encoder's package ({what}): {e}");
    }
    let got = match fs_err::read(&out) {
        Ok(g) => g,
        Err(e) => panic!("cannot read the rebuilt file ({what}): {e}"),
    };
    if got != new {
        let at = got.iter().zip(&new).take_while(|(a, b)| a == b).count();
        panic!(
            "rebuilt {} bytes that differ from the new file from byte {at} ({what})",
            got.len()
        );
    }
    true
}
