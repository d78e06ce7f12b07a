//! A command-line tool that updates itself with deltapack — the few lines
//! an app adds to get `mytool update`:
//!
//! ```text
//! selfupdate --version
//! selfupdate update   --repo URL --pub KEY.pub --platform NAME [--state-dir DIR]
//! selfupdate rollback --repo URL --pub KEY.pub --platform NAME [--state-dir DIR]
//! ```
//!
//! The running process replaces its own file (`Updater::current_executable`);
//! the next run is the new version. Its version is the marker below, which
//! a release pipeline (and `crates/cli/tests/strategies.rs`) sets in the
//! built binary.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

use std::process::ExitCode;

use deltapack_client::{PublicKey, Updater, Version};

/// The version, as `DELTAPACK-EXAMPLE-VERSION:<semver>` padded with NULs.
static VERSION: [u8; 48] = *b"DELTAPACK-EXAMPLE-VERSION:1.0.0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn version() -> String {
    let marker = std::hint::black_box(&VERSION);
    let text = String::from_utf8_lossy(&marker[26..]);
    text.trim_end_matches('\0').to_owned()
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("--version") => return Ok(version()),
        Some("update" | "rollback") => {}
        _ => return Err("usage: selfupdate --version | update | rollback ...".into()),
    }
    let key = fs_err::read_to_string(flag("--pub").ok_or("--pub is required")?)?;
    let mut b = Updater::builder()
        .repository(flag("--repo").ok_or("--repo is required")?)
        .public_key(PublicKey::from_text(key.trim())?)
        .platform(flag("--platform").ok_or("--platform is required")?)
        .current_executable()?
        .current_version(Version::parse(&version())?);
    if let Some(d) = flag("--state-dir") {
        b = b.state_dir(d);
    }
    let updater = b.build()?;
    if args[0] == "rollback" {
        return Ok(format!("rolled back to {}", updater.rollback()?));
    }
    Ok(match updater.update(true, &|_| {})? {
        Some(v) => format!("updated {} -> {v}", version()),
        None => format!("{} is up to date", version()),
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The error and each of its causes, once.
            let mut msg = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                msg.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("selfupdate: {msg}");
            ExitCode::FAILURE
        }
    }
}
