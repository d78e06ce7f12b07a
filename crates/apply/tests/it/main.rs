//! Integration tests of the applier: round trips through the real diff
//! engine, and every bad input the engine core must survive.

// Helpers are shared between the test modules of this one binary.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod adversarial;
mod compat;
mod craft;
mod exe;
mod fuzz_replay;
mod harness;
mod mtimes;
mod props;
mod roundtrip;
