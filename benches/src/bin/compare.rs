//! The comparison harness: deltapack against the other delta tools, on the
//! corpus pairs (`../shared/corpus/fetch.sh`).
//!
//! Every tool asked for gets a row: its figures, `failed: <reason>` when a
//! step failed or its output differed from the new version, or `missing`
//! with how to install it. Each tool runs as its own process. A figure is
//! the median of `--runs` runs (default 5), interleaved across tools so
//! that a noisy moment on the machine is shared rather than borne by one
//! tool; min and max are given beside it. Wall time is measured around the
//! process (nanosecond clock, shown in ms), CPU time (user + system) from
//! the kernel's accounting of waited-for children, peak RSS by
//! `/usr/bin/time` (GNU time). A figure that cannot be read is an error,
//! never a zero. Every rebuilt output is compared byte for byte with the
//! new version. Directory pairs are given to the other tools as
//! deterministic tars.
//!
//! HDiffPatch is its command-line tools `hdiffz`/`hpatchz` when they are on
//! `PATH` (or `--hdiffpatch DIR`), rows `hdiffz-lzma2` and `hdiffz-zstd`;
//! the PyPI wrapper (`pip install hdiffpatch`) is a separate tool,
//! `hdiffpatch-py-*`, whose times include Python's start-up and its reading
//! of whole files.
//!
//! ```text
//! cargo run --release -p deltapack-benches --bin compare -- [--pairs ruff-patch,...] [--tools deltapack,hdiffz-lzma2,...] [--runs N] [--json out.json]
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

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
    /// Comma-separated tool names (default: every tool the harness knows;
    /// deltapack is always measured, as the base of the ratios).
    #[arg(long, value_delimiter = ',')]
    tools: Vec<String>,
    /// Runs per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Also write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The deltapack binary (default: build target/release/deltapack).
    #[arg(long)]
    deltapack: Option<PathBuf>,
    /// Directory holding `hdiffz` and `hpatchz` (default: `PATH`).
    #[arg(long)]
    hdiffpatch: Option<PathBuf>,
}

/// Builds the command line of one step from three paths.
type Step = Box<dyn Fn(&Path, &Path, &Path) -> Command>;

/// A delta tool: how to diff (old, new, patch) and apply (old, patch, out),
/// or why it cannot run here.
struct Tool {
    name: &'static str,
    /// Whether it takes directory trees itself (else it gets tars).
    trees: bool,
    run: Result<(Step, Step), String>,
}

fn cmd(program: impl AsRef<std::ffi::OsStr>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new(program);
    for a in args {
        c.arg(a);
    }
    c
}

/// The program's path on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn have_python_module(m: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {m}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every tool the harness knows, available or not.
fn tools(deltapack: &Path, hdiff_dir: Option<&Path>) -> Vec<Tool> {
    let mut t = Vec::new();
    // deltapack as shipped, and with its generic codecs only (`--no-exe`),
    // which shows what the executable-aware codec gains on each pair.
    for (name, extra) in [("deltapack", None), ("deltapack-generic", Some("--no-exe"))] {
        let (dp, dp2) = (deltapack.to_owned(), deltapack.to_owned());
        t.push(Tool {
            name,
            trees: true,
            run: Ok((
                Box::new(move |o, n, p| {
                    let mut c = cmd(&dp, &[&"diff"]);
                    c.args(extra).arg(o).arg(n).arg("-o").arg(p);
                    c
                }),
                Box::new(move |o, p, out| {
                    cmd(&dp2, &[&"apply", &"--no-sync", &o, &p, &"-o", &out])
                }),
            )),
        });
    }
    let need = |programs: &[&str], hint: &str| -> Result<(), String> {
        match programs.iter().find(|p| which(p).is_none()) {
            Some(p) => Err(format!("{p} not found ({hint})")),
            None => Ok(()),
        }
    };
    t.push(Tool {
        name: "bsdiff",
        trees: false,
        run: need(&["bsdiff", "bspatch"], "apt-get install bsdiff").map(|()| {
            (
                Box::new(|o: &Path, n: &Path, p: &Path| cmd("bsdiff", &[&o, &n, &p])) as Step,
                Box::new(|o: &Path, p: &Path, out: &Path| cmd("bspatch", &[&o, &out, &p])) as Step,
            )
        }),
    });
    t.push(Tool {
        name: "xdelta3-lzma",
        trees: false,
        run: need(&["xdelta3"], "apt-get install xdelta3").map(|()| {
            (
                Box::new(|o: &Path, n: &Path, p: &Path| {
                    cmd(
                        "xdelta3",
                        &[&"-e", &"-9", &"-S", &"lzma", &"-f", &"-s", &o, &n, &p],
                    )
                }) as Step,
                Box::new(|o: &Path, p: &Path, out: &Path| {
                    cmd("xdelta3", &[&"-d", &"-f", &"-s", &o, &p, &out])
                }) as Step,
            )
        }),
    });
    for (name, level) in [
        ("zstd-19", &["-19"][..]),
        ("zstd-22", &["--ultra", "-22"][..]),
    ] {
        let level: Vec<String> = level.iter().map(|s| (*s).to_owned()).collect();
        t.push(Tool {
            name,
            trees: false,
            run: need(&["zstd"], "apt-get install zstd").map(|()| {
                (
                    Box::new(move |o: &Path, n: &Path, p: &Path| {
                        let mut c = cmd("zstd", &[&"-q", &"-f", &"--long=31"]);
                        c.args(&level)
                            .arg(format!("--patch-from={}", o.display()))
                            .arg(n)
                            .arg("-o")
                            .arg(p);
                        c
                    }) as Step,
                    Box::new(|o: &Path, p: &Path, out: &Path| {
                        let mut c = cmd("zstd", &[&"-q", &"-d", &"-f", &"--long=31"]);
                        c.arg(format!("--patch-from={}", o.display()))
                            .arg(p)
                            .arg("-o")
                            .arg(out);
                        c
                    }) as Step,
                )
            }),
        });
    }
    // HDiffPatch's own command-line tools (v4.12.0 built from source; see
    // benches/RESULTS.md), with the settings of the published comparisons.
    let hdiffz = hdiff_dir.map_or_else(|| which("hdiffz"), |d| Some(d.join("hdiffz")));
    let hpatchz = hdiff_dir.map_or_else(|| which("hpatchz"), |d| Some(d.join("hpatchz")));
    for (name, codec) in [
        ("hdiffz-lzma2", "-c-lzma2-9-16m"),
        ("hdiffz-zstd", "-c-zstd-21-24"),
    ] {
        let run = match (&hdiffz, &hpatchz) {
            (Some(d), Some(p)) if d.is_file() && p.is_file() => {
                let (d, p) = (d.clone(), p.clone());
                Ok((
                    Box::new(move |o: &Path, n: &Path, out: &Path| {
                        cmd(&d, &[&"-m", &"-SD", &codec, &"-d", &"-f", &o, &n, &out])
                    }) as Step,
                    Box::new(move |o: &Path, patch: &Path, out: &Path| {
                        cmd(&p, &[&"-f", &o, &patch, &out])
                    }) as Step,
                ))
            }
            _ => Err("hdiffz/hpatchz not found (build HDiffPatch v4.12.0, see benches/RESULTS.md; or --hdiffpatch DIR)".to_owned()),
        };
        t.push(Tool {
            name,
            trees: false,
            run,
        });
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hdiff.py");
    let py = have_python_module("hdiffpatch");
    for (name, codec) in [
        ("hdiffpatch-py-lzma2", "lzma2"),
        ("hdiffpatch-py-zstd", "zstd"),
    ] {
        let (s1, s2) = (script.clone(), script.clone());
        t.push(Tool {
            name,
            trees: false,
            run: if py {
                Ok((
                    Box::new(move |o: &Path, n: &Path, p: &Path| {
                        cmd("python3", &[&s1, &"diff", &o, &n, &p, &codec])
                    }) as Step,
                    Box::new(move |o: &Path, p: &Path, out: &Path| {
                        cmd("python3", &[&s2, &"apply", &o, &p, &out])
                    }) as Step,
                ))
            } else {
                Err("the hdiffpatch module is missing (pip install hdiffpatch)".to_owned())
            },
        });
    }
    t
}

/// One run of one step.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall_ms: f64,
    cpu_ms: f64,
    rss_mib: Option<f64>,
}

/// CPU time of this process's waited-for children so far, in ms.
fn children_cpu_ms() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Runs `c` once; `Err` says why the run does not count.
fn run_once(c: &Command, time: Option<&Path>) -> Result<Sample> {
    let rss_file = tempfile::NamedTempFile::new()?;
    let mut run = match time {
        Some(t) => {
            let mut r = Command::new(t);
            r.arg("-f")
                .arg("%M")
                .arg("-o")
                .arg(rss_file.path())
                .arg(c.get_program())
                .args(c.get_args());
            r
        }
        None => {
            let mut r = Command::new(c.get_program());
            r.args(c.get_args());
            r
        }
    };
    let cpu0 = children_cpu_ms();
    let start = Instant::now();
    let out = run
        .output()
        .with_context(|| format!("starting {:?}", c.get_program()))?;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let cpu_ms = children_cpu_ms() - cpu0;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{}: {}",
            out.status,
            err.lines().last().unwrap_or("").trim()
        );
    }
    let rss_mib = match time {
        Some(_) => {
            let s = fs_err::read_to_string(rss_file.path())?;
            let kb: f64 = s
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .with_context(|| format!("unreadable /usr/bin/time output {s:?}"))?;
            Some(kb / 1024.0)
        }
        None => None,
    };
    Ok(Sample {
        wall_ms,
        cpu_ms,
        rss_mib,
    })
}

/// Median, min and max.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        median,
        min: v[0],
        max: v[n - 1],
    }
}

/// The figures of one step.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Figures {
    wall_ms: Spread,
    cpu_ms: Spread,
    /// Peak RSS, the largest over the runs.
    rss_mib: Option<f64>,
}

fn figures(samples: &[Sample]) -> Figures {
    Figures {
        wall_ms: spread(samples.iter().map(|s| s.wall_ms).collect()),
        cpu_ms: spread(samples.iter().map(|s| s.cpu_ms).collect()),
        rss_mib: samples.iter().filter_map(|s| s.rss_mib).reduce(f64::max),
    }
}

/// A tool's row for one pair.
enum Outcome {
    Measured {
        patch: u64,
        diff: Figures,
        apply: Figures,
    },
    Failed(String),
    Missing(String),
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

fn remove(p: &Path) {
    if p.is_dir() {
        let _ = fs_err::remove_dir_all(p);
    } else {
        let _ = fs_err::remove_file(p);
    }
}

/// Where one tool's runs on one pair stand.
struct Job<'t> {
    tool: &'t Tool,
    old: PathBuf,
    new: PathBuf,
    patch: PathBuf,
    out: PathBuf,
    diff: Vec<Sample>,
    apply: Vec<Sample>,
    failed: Option<String>,
}

fn default_corpus() -> PathBuf {
    let base = std::env::var_os("DELTAPACK_CORPUS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("deltapack-corpus"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deltapack-corpus"))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("corpus")
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let corpus = args.corpus.clone().unwrap_or_else(default_corpus);
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
    let mut all = tools(&deltapack, args.hdiffpatch.as_deref());
    if !args.tools.is_empty() {
        let known: Vec<&str> = all.iter().map(|t| t.name).collect();
        for n in &args.tools {
            if !known.contains(&n.as_str()) {
                bail!("unknown tool {n:?}; the tools are {}", known.join(", "));
            }
        }
        all.retain(|t| t.name == "deltapack" || args.tools.iter().any(|n| n == t.name));
    }
    let time = Path::new("/usr/bin/time");
    let time = if time.exists() {
        Some(time)
    } else {
        eprintln!("note: /usr/bin/time (GNU time) is missing: no peak RSS figures");
        None
    };
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
        for p in &args.pairs {
            if !pairs.contains(p) {
                bail!("no pair {p:?} in {}", corpus.display());
            }
        }
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
        let mut jobs: Vec<Job<'_>> = all
            .iter()
            .map(|t| {
                let (o, n) = if is_tree && !t.trees {
                    (old_tar.clone(), new_tar.clone())
                } else {
                    (old.clone(), new.clone())
                };
                Job {
                    tool: t,
                    old: o,
                    new: n,
                    patch: work.path().join(format!("{pair}.{}.patch", t.name)),
                    out: work.path().join(format!("{pair}.{}.out", t.name)),
                    diff: Vec::new(),
                    apply: Vec::new(),
                    failed: None,
                }
            })
            .collect();
        // Diff runs, interleaved: run i of every tool before run i + 1 of
        // any, starting each round at another tool.
        for round in 0..args.runs {
            eprintln!("{pair}: diff round {}/{}", round + 1, args.runs);
            let n = jobs.len();
            for k in 0..n {
                let j = &mut jobs[(k + round) % n];
                let Ok((diff, _)) = &j.tool.run else { continue };
                if j.failed.is_some() {
                    continue;
                }
                remove(&j.patch);
                match run_once(&diff(&j.old, &j.new, &j.patch), time) {
                    Ok(s) => j.diff.push(s),
                    Err(e) => j.failed = Some(format!("diff: {e:#}")),
                }
            }
        }
        for round in 0..args.runs {
            eprintln!("{pair}: apply round {}/{}", round + 1, args.runs);
            let n = jobs.len();
            for k in 0..n {
                let j = &mut jobs[(k + round) % n];
                let Ok((_, apply)) = &j.tool.run else {
                    continue;
                };
                if j.failed.is_some() {
                    continue;
                }
                remove(&j.out);
                match run_once(&apply(&j.old, &j.patch, &j.out), time) {
                    Ok(s) => j.apply.push(s),
                    Err(e) => j.failed = Some(format!("apply: {e:#}")),
                }
                if round == 0 && j.failed.is_none() {
                    match same(&j.out, &j.new) {
                        Ok(true) => {}
                        Ok(false) => {
                            j.failed = Some("its output differs from the new version".into());
                        }
                        Err(e) => j.failed = Some(format!("reading its output: {e:#}")),
                    }
                }
            }
        }
        let rows: Vec<(&str, Outcome)> = jobs
            .iter()
            .map(|j| {
                let outcome = match (&j.tool.run, &j.failed) {
                    (Err(why), _) => Outcome::Missing(why.clone()),
                    (_, Some(why)) => Outcome::Failed(why.clone()),
                    (Ok(_), None) => match fs_err::metadata(&j.patch) {
                        Ok(m) => Outcome::Measured {
                            patch: m.len(),
                            diff: figures(&j.diff),
                            apply: figures(&j.apply),
                        },
                        Err(e) => Outcome::Failed(format!("no patch file: {e}")),
                    },
                };
                (j.tool.name, outcome)
            })
            .collect();
        print_table(pair, &rows, args.runs);
        for (tool, o) in &rows {
            json.push(match o {
                Outcome::Measured { patch, diff, apply } => serde_json::json!({
                    "pair": pair, "tool": tool, "patch_bytes": patch,
                    "diff": diff, "apply": apply, "runs": args.runs,
                }),
                Outcome::Failed(why) => {
                    serde_json::json!({"pair": pair, "tool": tool, "failed": why})
                }
                Outcome::Missing(why) => {
                    serde_json::json!({"pair": pair, "tool": tool, "missing": why})
                }
            });
        }
    }
    if let Some(p) = &args.json {
        fs_err::write(p, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn ratio(v: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}x", v / b),
        _ => "-".into(),
    }
}

fn ms(s: &Spread) -> String {
    format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
}

fn print_table(pair: &str, rows: &[(&str, Outcome)], runs: usize) {
    let base = rows.iter().find_map(|(t, o)| match o {
        Outcome::Measured { patch, diff, apply } if *t == "deltapack" => Some((
            *patch as f64,
            diff.wall_ms.median,
            diff.cpu_ms.median,
            apply.wall_ms.median,
        )),
        _ => None,
    });
    println!(
        "\n### {pair}\n\nMedians of {runs} interleaved runs (min–max), ms; outputs checked byte for byte; \
         ratios are tool / deltapack{}.\n",
        if base.is_none() {
            " (deltapack has no figures: no ratios)"
        } else {
            ""
        }
    );
    println!(
        "| tool | patch bytes | ratio | diff wall ms | ratio | diff CPU ms | ratio | diff MiB | apply wall ms | ratio | apply MiB |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mib = |r: Option<f64>| r.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into());
    for (tool, o) in rows {
        match o {
            Outcome::Measured { patch, diff, apply } => println!(
                "| {tool} | {patch} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                ratio(*patch as f64, base.map(|b| b.0)),
                ms(&diff.wall_ms),
                ratio(diff.wall_ms.median, base.map(|b| b.1)),
                ms(&diff.cpu_ms),
                ratio(diff.cpu_ms.median, base.map(|b| b.2)),
                mib(diff.rss_mib),
                ms(&apply.wall_ms),
                ratio(apply.wall_ms.median, base.map(|b| b.3)),
                mib(apply.rss_mib),
            ),
            Outcome::Failed(why) => {
                println!("| {tool} | failed: {} |||||||||", why.replace('|', "/"))
            }
            Outcome::Missing(why) => {
                println!("| {tool} | missing: {} |||||||||", why.replace('|', "/"))
            }
        }
    }
}
