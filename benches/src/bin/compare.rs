//! The comparison harness: deltapack against the other delta tools
//! installed on this machine, on the corpus pairs (`../shared/corpus/fetch.sh`).
//!
//! Every tool runs as its own process under `/usr/bin/time` (wall time and
//! peak RSS); every rebuilt output is compared byte for byte with the new
//! version. Directory pairs are given to the other tools as deterministic
//! tars. The table reports each figure and its ratio to deltapack's.
//!
//! ```text
//! cargo run --release -p deltapack-benches --bin compare -- [--pairs ruff-patch,...] [--tools ...] [--repeat N] [--json out.json]
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Compare deltapack with other delta tools on the corpus pairs")]
struct Args {
    /// Directory holding `<pair>/{old,new}` (default: $DELTAPACK_CORPUS_CACHE/corpus or ~/.cache/deltapack-corpus/corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Comma-separated pair names (default: all).
    #[arg(long, value_delimiter = ',')]
    pairs: Vec<String>,
    /// Comma-separated tool names (default: all available).
    #[arg(long, value_delimiter = ',')]
    tools: Vec<String>,
    /// Runs per measurement; the fastest is kept.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Also write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The deltapack binary (default: build target/release/deltapack).
    #[arg(long)]
    deltapack: Option<PathBuf>,
}

/// Builds the command line of one step from three paths.
type Step = Box<dyn Fn(&Path, &Path, &Path) -> Command>;

/// A delta tool: how to diff (old, new, patch) and apply (old, patch, out).
struct Tool {
    name: &'static str,
    /// Whether it takes directory trees itself (else it gets tars).
    trees: bool,
    diff: Step,
    apply: Step,
}

fn cmd(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new(program);
    for a in args {
        c.arg(a);
    }
    c
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

fn have_hdiffpatch() -> bool {
    Command::new("python3")
        .args(["-c", "import hdiffpatch"])
        .status()
        .is_ok_and(|s| s.success())
}

fn tools(deltapack: PathBuf) -> (Vec<Tool>, Vec<String>) {
    let mut t = Vec::new();
    let mut missing = Vec::new();
    // deltapack as shipped, and with its generic codecs only (`--no-exe`),
    // which shows what the executable-aware codec gains on each pair.
    for (name, extra) in [("deltapack", None), ("deltapack-generic", Some("--no-exe"))] {
        let dp = deltapack.clone();
        let dp2 = deltapack.clone();
        t.push(Tool {
            name,
            trees: true,
            diff: Box::new(move |o, n, p| {
                let mut c = cmd(dp.to_str().unwrap_or("deltapack"), &[&"diff"]);
                c.args(extra).arg(o).arg(n).arg("-o").arg(p);
                c
            }),
            apply: Box::new(move |o, p, out| {
                cmd(
                    dp2.to_str().unwrap_or("deltapack"),
                    &[&"apply", &"--no-sync", &o, &p, &"-o", &out],
                )
            }),
        });
    }
    if have("bsdiff") && have("bspatch") {
        t.push(Tool {
            name: "bsdiff",
            trees: false,
            diff: Box::new(|o, n, p| cmd("bsdiff", &[&o, &n, &p])),
            apply: Box::new(|o, p, out| cmd("bspatch", &[&o, &out, &p])),
        });
    } else {
        missing.push("bsdiff (apt-get install bsdiff)".to_owned());
    }
    if have("xdelta3") {
        t.push(Tool {
            name: "xdelta3-lzma",
            trees: false,
            diff: Box::new(|o, n, p| {
                cmd(
                    "xdelta3",
                    &[&"-e", &"-9", &"-S", &"lzma", &"-f", &"-s", &o, &n, &p],
                )
            }),
            apply: Box::new(|o, p, out| cmd("xdelta3", &[&"-d", &"-f", &"-s", &o, &p, &out])),
        });
    } else {
        missing.push("xdelta3 (apt-get install xdelta3)".to_owned());
    }
    if have("zstd") {
        for (name, level) in [
            ("zstd-19", &["-19"][..]),
            ("zstd-22", &["--ultra", "-22"][..]),
        ] {
            let level: Vec<String> = level.iter().map(|s| s.to_string()).collect();
            let l2 = level.clone();
            t.push(Tool {
                name,
                trees: false,
                diff: Box::new(move |o, n, p| {
                    let mut c = cmd("zstd", &[&"-q", &"-f", &"--long=31"]);
                    c.args(&level)
                        .arg(format!("--patch-from={}", o.display()))
                        .arg(n)
                        .arg("-o")
                        .arg(p);
                    c
                }),
                apply: Box::new(move |o, p, out| {
                    let _ = &l2;
                    let mut c = cmd("zstd", &[&"-q", &"-d", &"-f", &"--long=31"]);
                    c.arg(format!("--patch-from={}", o.display()))
                        .arg(p)
                        .arg("-o")
                        .arg(out);
                    c
                }),
            });
        }
    } else {
        missing.push("zstd (apt-get install zstd)".to_owned());
    }
    if have_hdiffpatch() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hdiff.py");
        for (name, codec) in [("hdiffpatch-lzma2", "lzma2"), ("hdiffpatch-zstd", "zstd")] {
            let (s1, s2) = (script.clone(), script.clone());
            t.push(Tool {
                name,
                trees: false,
                diff: Box::new(move |o, n, p| cmd("python3", &[&s1, &"diff", &o, &n, &p, &codec])),
                apply: Box::new(move |o, p, out| cmd("python3", &[&s2, &"apply", &o, &p, &out])),
            });
        }
    } else {
        missing.push("HDiffPatch (pip install hdiffpatch)".to_owned());
    }
    (t, missing)
}

/// Wall seconds and peak RSS in MiB of one run.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    secs: f64,
    rss_mib: Option<f64>,
}

fn measure(mut c: Command, repeat: usize, prepare: &dyn Fn()) -> Result<Run> {
    let time = Path::new("/usr/bin/time");
    let mut best: Option<Run> = None;
    for _ in 0..repeat.max(1) {
        prepare();
        let tmp = tempfile::NamedTempFile::new()?;
        let run = if time.exists() {
            let mut t = Command::new(time);
            t.arg("-f")
                .arg("%e %M")
                .arg("-o")
                .arg(tmp.path())
                .arg(c.get_program())
                .args(c.get_args());
            let st = t.output()?;
            if !st.status.success() {
                bail!("{:?} failed: {}", c, String::from_utf8_lossy(&st.stderr));
            }
            let s = fs_err::read_to_string(tmp.path())?;
            let last = s.lines().last().unwrap_or("");
            let mut it = last.split_whitespace();
            let secs: f64 = it.next().unwrap_or("0").parse().unwrap_or(0.0);
            let kb: f64 = it.next().unwrap_or("0").parse().unwrap_or(0.0);
            Run {
                secs,
                rss_mib: Some(kb / 1024.0),
            }
        } else {
            let start = std::time::Instant::now();
            let st = c.output()?;
            if !st.status.success() {
                bail!("{:?} failed: {}", c, String::from_utf8_lossy(&st.stderr));
            }
            Run {
                secs: start.elapsed().as_secs_f64(),
                rss_mib: None,
            }
        };
        best = Some(match best {
            Some(b) if b.secs <= run.secs => b,
            _ => run,
        });
    }
    best.context("no run")
}

fn tar(dir: &Path, out: &Path) -> Result<()> {
    let st = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()?;
    if !st.success() {
        bail!("tar of {} failed", dir.display());
    }
    Ok(())
}

/// Whether two files hold the same bytes, or two trees the same paths,
/// kinds, executable bits, contents and link targets.
fn same(a: &Path, b: &Path) -> Result<bool> {
    if a.is_file() && b.is_file() {
        return Ok(deltapack_tree::hash_file(a)? == deltapack_tree::hash_file(b)?);
    }
    Ok(deltapack_tree::Tree::scan(a)?.id() == deltapack_tree::Tree::scan(b)?.id())
}

struct Row {
    tool: &'static str,
    patch: u64,
    diff: Run,
    apply: Run,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let corpus = args.corpus.clone().unwrap_or_else(|| {
        let base = std::env::var_os("DELTAPACK_CORPUS_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(|c| PathBuf::from(c).join("deltapack-corpus"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deltapack-corpus"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("corpus")
    });
    let deltapack = match &args.deltapack {
        Some(p) => p.clone(),
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let st = Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "-p", "deltapack-cli"])
                .current_dir(&root)
                .status()?;
            if !st.success() {
                bail!("building deltapack failed");
            }
            root.join("target/release/deltapack")
        }
    };
    let (mut all, missing) = tools(deltapack);
    for m in &missing {
        eprintln!("note: skipping {m}: not installed");
    }
    if !args.tools.is_empty() {
        all.retain(|t| t.name == "deltapack" || args.tools.iter().any(|n| n == t.name));
    }
    let mut pairs: Vec<String> = fs_err::read_dir(&corpus)
        .with_context(|| {
            format!(
                "no corpus at {} (run ../shared/corpus/fetch.sh)",
                corpus.display()
            )
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("old").exists() && e.path().join("new").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    pairs.sort();
    if !args.pairs.is_empty() {
        pairs.retain(|p| args.pairs.contains(p));
    }
    let work = tempfile::tempdir()?;
    let mut json = Vec::new();
    for pair in &pairs {
        let (old, new) = (corpus.join(pair).join("old"), corpus.join(pair).join("new"));
        let is_tree = old.is_dir();
        let (old_tar, new_tar) = (
            work.path().join(format!("{pair}.old.tar")),
            work.path().join(format!("{pair}.new.tar")),
        );
        if is_tree {
            tar(&old, &old_tar)?;
            tar(&new, &new_tar)?;
        }
        let mut rows: Vec<Row> = Vec::new();
        for t in &all {
            let (o, n) = if is_tree && !t.trees {
                (old_tar.as_path(), new_tar.as_path())
            } else {
                (old.as_path(), new.as_path())
            };
            let patch = work.path().join(format!("{pair}.{}.patch", t.name));
            let out = work.path().join(format!("{pair}.{}.out", t.name));
            eprintln!("{pair}: {} ...", t.name);
            let d = measure((t.diff)(o, n, &patch), args.repeat, &|| {
                let _ = fs_err::remove_file(&patch);
            });
            let d = match d {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("  {}: diff failed: {e:#}", t.name);
                    continue;
                }
            };
            let size = fs_err::metadata(&patch)?.len();
            let a = measure((t.apply)(o, &patch, &out), args.repeat, &|| {
                if out.is_dir() {
                    let _ = fs_err::remove_dir_all(&out);
                } else {
                    let _ = fs_err::remove_file(&out);
                }
            })?;
            if !same(&out, n)? {
                bail!(
                    "{}: the output of {} differs from the new version",
                    pair,
                    t.name
                );
            }
            rows.push(Row {
                tool: t.name,
                patch: size,
                diff: d,
                apply: a,
            });
        }
        print_table(pair, &rows);
        for r in &rows {
            json.push(serde_json::json!({
                "pair": pair, "tool": r.tool, "patch_bytes": r.patch,
                "diff_s": r.diff.secs, "diff_rss_mib": r.diff.rss_mib,
                "apply_s": r.apply.secs, "apply_rss_mib": r.apply.rss_mib,
            }));
        }
    }
    if let Some(p) = &args.json {
        fs_err::write(p, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn ratio(v: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}x", v / base)
    } else {
        "-".into()
    }
}

fn print_table(pair: &str, rows: &[Row]) {
    let Some(dp) = rows.iter().find(|r| r.tool == "deltapack") else {
        return;
    };
    println!("\n### {pair} (every output checked byte for byte; ratios are tool / deltapack)\n");
    println!(
        "| tool | patch bytes | ratio | diff s | ratio | diff MiB | apply s | ratio | apply MiB |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mib = |r: Option<f64>| r.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into());
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {} | {:.3} | {} | {} |",
            r.tool,
            r.patch,
            ratio(r.patch as f64, dp.patch as f64),
            r.diff.secs,
            ratio(r.diff.secs, dp.diff.secs),
            mib(r.diff.rss_mib),
            r.apply.secs,
            ratio(r.apply.secs, dp.apply.secs),
            mib(r.apply.rss_mib),
        );
    }
}
