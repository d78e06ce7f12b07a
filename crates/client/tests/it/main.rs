//! The update client end to end: a real repository (built by the release
//! packager from the shipped sample app) served over loopback HTTP by
//! `deltapack-serve`, and a real install root on disk. Every test checks the
//! installed tree's digest against the manifest.
#![cfg(unix)]
#![allow(clippy::unwrap_used, unreachable_pub)]

mod clock;
mod config;
mod faulty;
mod fixture;
mod local_files;
mod strategies;
mod update;
