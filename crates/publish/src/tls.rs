//! The TLS provider of the object stores' HTTP client.
//!
//! `object_store` speaks HTTP through reqwest and rustls. rustls is built
//! here with ring (as ureq is in the client), not aws-lc-rs, whose C build
//! needs cmake and does not cross-compile to Windows with mingw; reqwest is
//! built without a provider of its own, so the process-wide default must be
//! set before the first store is opened.

/// Makes ring the process's rustls provider, unless one is already set
/// (by this call earlier, or by the application).
pub(crate) fn install_provider() {
    // An error only says a provider is already installed: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
