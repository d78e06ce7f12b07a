//! The client library end to end: publish three versions of the sample app
//! into a repository, serve it on loopback, install 1.0.0, update to 1.2.0
//! and roll back. Run with `cargo run -p deltapack-client --example update_demo`.
#![allow(clippy::print_stdout)]

use std::path::Path;

use deltapack_client::{Event, Updater};
use deltapack_manifest::{SecretKey, Version};
use deltapack_release::{NewRelease, Packager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    let key = SecretKey::generate()?;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/example");
    for (n, v) in [(1, "1.0.0"), (2, "1.1.0"), (3, "1.2.0")] {
        Packager::new(&repo)
            .init(n == 1)
            .keys(vec![key.clone()])
            .deltas(1)
            .release(
                &NewRelease {
                    version: Version::parse(v)?,
                    channel: "stable".into(),
                    platforms: vec![("linux-x86_64".into(), example.join(format!("v{n}")))],
                    notes: format!("Release {v}"),
                    min_delta_version: None,
                    carry: Vec::new(),
                    rollout_percent: 100,
                },
                None,
                &|_| {},
            )?;
    }
    let server = deltapack_serve::Server::new(&repo).bind("127.0.0.1:0".parse()?)?;
    println!("repository served at {}", server.url());

    let updater = Updater::builder()
        .repository(server.url())
        .public_key(key.public())
        .platform("linux-x86_64")
        .install_dir(work.path().join("app"))
        .build()?;
    let progress = |e: Event| {
        if let Event::Downloaded { path, bytes } = e {
            println!("  downloaded {path} ({bytes} bytes)");
        }
    };
    // First install: a specific version, from its full bundle.
    let first = updater.check_version(&Version::new(1, 0, 0))?;
    let staged = updater.apply(&updater.download(&first, &progress)?, &progress)?;
    updater.install(&staged, &progress)?;
    println!("installed {}", first.version);

    if let Some(update) = updater.check()? {
        println!(
            "update to {}: {} bytes (full bundle {}), notes: {}",
            update.version, update.download_bytes, update.full_bytes, update.notes
        );
        let staged = updater.apply(&updater.download(&update, &progress)?, &progress)?;
        updater.install(&staged, &progress)?;
        println!(
            "installed {} via {}",
            update.version,
            staged.steps().join(", ")
        );
    }
    println!("rolled back to {}", updater.rollback()?);
    for e in updater.history()? {
        let from = e
            .from
            .map_or_else(|| "nothing".to_string(), |v| v.to_string());
        println!("history: {} {from} -> {} {}", e.action, e.to, e.result);
    }
    Ok(())
}
