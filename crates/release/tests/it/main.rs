//! Integration tests of the release packager over real repositories on
//! disk, built from the shipped sample app (a real ELF executable) in
//! several versions and three platforms (a directory, a .tar.gz and a .zip).
#![allow(clippy::unwrap_used, unreachable_pub)]

mod archives;
mod fixture;
mod lifecycle;
mod repository;
