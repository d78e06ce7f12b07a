//! `deltapack._deltapack`: the deltapack update client for Python.
//!
//! A thin layer over `deltapack_client::Updater`: every long call releases
//! the GIL (`Python::detach`) while the Rust client works, progress events
//! reach the Python callback with the GIL held, plain data (status,
//! history, events) crosses as dicts and lists through its JSON form, and
//! every client error becomes an exception of the hierarchy under
//! `deltapack.Error`, carrying the variant's stable `code`.

use std::path::PathBuf;
use std::sync::Mutex;

use deltapack_client as dc;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    deltapack,
    Error,
    PyException,
    "Any deltapack failure; `code` names the variant."
);
create_exception!(
    deltapack,
    ConfigError,
    Error,
    "A setting is missing or invalid."
);
create_exception!(
    deltapack,
    NetworkError,
    Error,
    "The repository could not be reached or answered wrongly."
);
create_exception!(
    deltapack,
    SignatureError,
    Error,
    "The manifest was refused: signature, expiry, or a replay (rollback/freeze)."
);
create_exception!(
    deltapack,
    PackageError,
    Error,
    "A package is not what the manifest says, or does not apply."
);
create_exception!(
    deltapack,
    UnavailableError,
    Error,
    "No such version, nothing to roll back to, already installed, not downloaded."
);
create_exception!(
    deltapack,
    LayoutError,
    Error,
    "The install on disk is not as expected."
);
create_exception!(
    deltapack,
    BusyError,
    Error,
    "Another updater is working, or this user may not write the install."
);
create_exception!(
    deltapack,
    DiskError,
    Error,
    "The disk is full, or an I/O operation failed."
);

/// The Python exception for a client error: its family's class, with
/// `code` (the variant) and `message` (the message with its causes).
fn to_py(e: dc::Error) -> PyErr {
    let message = e.full_message();
    let err = match e.kind() {
        dc::ErrorKind::Config => ConfigError::new_err(message.clone()),
        dc::ErrorKind::Network => NetworkError::new_err(message.clone()),
        dc::ErrorKind::Signature => SignatureError::new_err(message.clone()),
        dc::ErrorKind::Package => PackageError::new_err(message.clone()),
        dc::ErrorKind::Unavailable => UnavailableError::new_err(message.clone()),
        dc::ErrorKind::Layout => LayoutError::new_err(message.clone()),
        dc::ErrorKind::Busy => BusyError::new_err(message.clone()),
        _ => DiskError::new_err(message.clone()),
    };
    Python::attach(|py| {
        let v = err.value(py);
        // Setting attributes on a fresh exception cannot fail in practice;
        // if it did, the exception without them is still raised.
        let _ = v.setattr("code", e.code());
        let _ = v.setattr("message", message);
    });
    err
}

/// A JSON-serialisable value as Python data (dicts, lists, str, int).
fn to_python<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Calls `f` without the GIL, handing progress events to `progress` (a
/// Python callable taking one dict) with the GIL held. An exception the
/// callback raises is re-raised once the call returns (the call itself
/// runs to its end: stopping an install half way is never safe).
fn with_progress<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    f: impl FnOnce(&dyn Fn(dc::Event)) -> Result<T, dc::Error> + Send,
) -> PyResult<T> {
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let out = py.detach(|| {
        let emit = |e: dc::Event| {
            let Some(cb) = &progress else { return };
            Python::attach(|py| {
                let res = to_python(py, &e).and_then(|ev| cb.call1(py, (ev,)).map(|_| ()));
                if let Err(err) = res
                    && let Ok(mut slot) = raised.lock()
                    && slot.is_none()
                {
                    *slot = Some(err);
                }
            });
        };
        f(&emit)
    });
    if let Some(err) = raised.lock().ok().and_then(|mut s| s.take()) {
        return Err(err);
    }
    out.map_err(to_py)
}

/// An update on offer (from `check()`).
#[pyclass(frozen, module = "deltapack")]
struct Update(dc::Update);

#[pymethods]
impl Update {
    /// The version offered.
    #[getter]
    fn version(&self) -> String {
        self.0.version.to_string()
    }
    /// The installed version, or None for a first install.
    #[getter(from_version)]
    fn installed(&self) -> Option<String> {
        self.0.from.as_ref().map(ToString::to_string)
    }
    /// Its release notes (Markdown).
    #[getter]
    fn notes(&self) -> String {
        self.0.notes.clone()
    }
    /// Bytes to download.
    #[getter]
    fn download_bytes(&self) -> u64 {
        self.0.download_bytes
    }
    /// Bytes of the full bundle, for comparison.
    #[getter]
    fn full_bytes(&self) -> u64 {
        self.0.full_bytes
    }
    /// The packages on the way, e.g. `["delta 1.0.0->1.1.0"]`.
    #[getter]
    fn steps(&self) -> Vec<String> {
        self.0.path.steps.iter().map(|s| s.to_string()).collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "<deltapack.Update {} -> {} ({} bytes)>",
            self.installed().unwrap_or_else(|| "-".into()),
            self.0.version,
            self.0.download_bytes
        )
    }
}

/// Packages of an update on disk, hash-checked (from `download()`).
#[pyclass(frozen, module = "deltapack")]
struct Downloaded(dc::Downloaded);

/// A rebuilt, verified version waiting to be switched to (from `apply()`).
#[pyclass(frozen, module = "deltapack")]
struct Staged(dc::Staged);

#[pymethods]
impl Staged {
    /// The packages applied, e.g. `["delta 1.0.0->1.1.0"]`.
    #[getter]
    fn steps(&self) -> Vec<String> {
        self.0.steps().to_vec()
    }
    /// Why the full bundle was used instead of a delta, if it was.
    #[getter]
    fn fallback(&self) -> Option<String> {
        self.0.fallback().map(str::to_owned)
    }
}

/// Keeps one install current from one signed repository.
#[pyclass(frozen, module = "deltapack")]
struct Updater(dc::Updater);

fn version(v: &str) -> PyResult<dc::Version> {
    dc::Version::parse(v).map_err(|e| PyValueError::new_err(format!("version {v:?}: {e}")))
}

#[pymethods]
impl Updater {
    /// Builds an updater. `public_key` is the text of the publisher's
    /// `.pub` file. Give one of `install_dir` (versions side by side),
    /// `executable` (one file replaced in place) or `bundle` (a directory
    /// at a fixed path). Without `repository`, only local calls work
    /// (status, history, launched, mark_healthy, rollback).
    #[new]
    #[pyo3(signature = (
        *, repository=None, public_key=None, channel="stable", platform=None,
        install_dir=None, executable=None, bundle=None, state_dir=None,
        current_version=None, keep_versions=None, health_launches=None,
        allow_hosts=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        repository: Option<String>,
        public_key: Option<&str>,
        channel: &str,
        platform: Option<String>,
        install_dir: Option<PathBuf>,
        executable: Option<PathBuf>,
        bundle: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        current_version: Option<&str>,
        keep_versions: Option<usize>,
        health_launches: Option<u32>,
        allow_hosts: Option<Vec<String>>,
    ) -> PyResult<Updater> {
        let mut b = dc::Updater::builder().channel(channel);
        let places = [&install_dir, &executable, &bundle]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if places != 1 {
            return Err(ConfigError::new_err(
                "give exactly one of install_dir, executable and bundle",
            ));
        }
        if let Some(d) = install_dir {
            b = b.install_dir(d);
        }
        if let Some(f) = executable {
            b = b.executable(f);
        }
        if let Some(d) = bundle {
            b = b.bundle(d);
        }
        if let Some(d) = state_dir {
            b = b.state_dir(d);
        }
        if let Some(v) = current_version {
            b = b.current_version(version(v)?);
        }
        if let Some(n) = keep_versions {
            b = b.keep_versions(n);
        }
        if let Some(n) = health_launches {
            b = b.health_launches(n);
        }
        if let Some(h) = allow_hosts {
            b = b.allow_hosts(h);
        }
        if let Some(p) = platform {
            b = b.platform(p);
        }
        if let Some(k) = public_key {
            let key = dc::PublicKey::from_text(k)
                .map_err(|e| ConfigError::new_err(format!("public_key: {e}")))?;
            b = b.public_key(key);
        }
        let u = match repository {
            Some(r) => b.repository(r).build(),
            None => b.build_local(),
        };
        u.map(Updater).map_err(to_py)
    }

    /// The newest eligible version and the cheapest way to it, or None.
    /// `manual` ignores the staged rollout (a user asked).
    #[pyo3(signature = (*, manual=false))]
    fn check(&self, py: Python<'_>, manual: bool) -> PyResult<Option<Update>> {
        with_progress(py, None, |p| self.0.check_with(manual, p)).map(|u| u.map(Update))
    }

    /// An update to a specific version (a first install, a downgrade),
    /// ignoring rollout, yanks and refusals.
    fn check_version(&self, py: Python<'_>, version_: &str) -> PyResult<Update> {
        let v = version(version_)?;
        with_progress(py, None, |_| self.0.check_version(&v)).map(Update)
    }

    /// Downloads the update's packages (resuming, retrying, hash-checked).
    #[pyo3(signature = (update, *, progress=None))]
    fn download(
        &self,
        py: Python<'_>,
        update: &Update,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Downloaded> {
        with_progress(py, progress, |p| self.0.download(&update.0, p)).map(Downloaded)
    }

    /// Rebuilds the new version beside the running one, verifying it (the
    /// full bundle is used when a delta cannot be).
    #[pyo3(signature = (downloaded, *, progress=None))]
    fn apply(
        &self,
        py: Python<'_>,
        downloaded: &Downloaded,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Staged> {
        with_progress(py, progress, |p| self.0.apply(&downloaded.0, p)).map(Staged)
    }

    /// Switches to the staged version atomically.
    #[pyo3(signature = (staged, *, progress=None))]
    fn install(
        &self,
        py: Python<'_>,
        staged: &Staged,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        with_progress(py, progress, |p| self.0.install(&staged.0, p))
    }

    /// Check, download, apply and install in one call. Returns the version
    /// installed, or None when up to date.
    #[pyo3(signature = (*, progress=None, manual=false))]
    fn update(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        manual: bool,
    ) -> PyResult<Option<String>> {
        with_progress(py, progress, |p| self.0.update(manual, p)).map(|v| v.map(|v| v.to_string()))
    }

    /// Installs `version_` (a first install, a downgrade), through the
    /// cheapest path. Returns the steps applied.
    #[pyo3(signature = (version_, *, progress=None))]
    fn install_version(
        &self,
        py: Python<'_>,
        version_: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Vec<String>> {
        let v = version(version_)?;
        with_progress(py, progress, |p| {
            let u = self.0.check_version(&v)?;
            let s = self.0.download_and_apply(&u, p)?;
            self.0.install(&s, p)?;
            Ok(s.steps().to_vec())
        })
    }

    /// Switches back to the version installed before; returns it.
    fn rollback(&self, py: Python<'_>) -> PyResult<String> {
        with_progress(py, None, |_| self.0.rollback()).map(|v| v.to_string())
    }

    /// Call at every app start: counts a launch of a version on probation
    /// and rolls back one that never reported healthy. Returns a dict with
    /// `kind` (`healthy`, `on_probation`, `unrecorded`, `rolled_back`).
    fn launched(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = with_progress(py, None, |_| self.0.launched())?;
        // Tagged by `kind`, as `update launched --json`.
        to_python(py, &l)
    }

    /// The running version works: ends its probation.
    fn mark_healthy(&self, py: Python<'_>) -> PyResult<()> {
        with_progress(py, None, |_| self.0.mark_healthy())
    }

    /// Finishes or undoes an install a kill interrupted.
    fn recover(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let r = with_progress(py, None, |_| self.0.recover())?;
        to_python(py, &r)
    }

    /// The install's state, as the CLI's `update status --json` gives it
    /// (`current`, `installed`, `runs_from`, `on_probation`, …).
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = with_progress(py, None, |_| self.0.status())?;
        to_python(py, &s)
    }

    /// The update history, oldest first, as the CLI's `update history
    /// --json` gives it.
    fn history(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let h = with_progress(py, None, |_| self.0.history())?;
        to_python(py, &h)
    }
}

#[pymodule]
fn _deltapack(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Updater>()?;
    m.add_class::<Update>()?;
    m.add_class::<Downloaded>()?;
    m.add_class::<Staged>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("SignatureError", py.get_type::<SignatureError>())?;
    m.add("PackageError", py.get_type::<PackageError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add("LayoutError", py.get_type::<LayoutError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add("DiskError", py.get_type::<DiskError>())?;
    Ok(())
}
