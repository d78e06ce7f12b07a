//! The native half of the `deltapack` npm package: `deltapack_client`'s
//! `Updater` for Node. Every long call is an `AsyncTask` that runs on the
//! libuv thread pool (Electron's main process never blocks) and resolves a
//! Promise; progress events reach an optional callback through a
//! thread-safe function, as plain objects. Errors carry the client's
//! stable code and family in their message (`code\0kind\0message`), which
//! `index.js` turns into `Error` objects with `code` and `kind` fields.

use std::sync::Arc;

use deltapack_client as dc;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// A progress callback: called with one event object, errors ignored.
type Progress = ThreadsafeFunction<serde_json::Value, (), serde_json::Value, Status, false>;

/// The JS error for a client error (decoded by `index.js`).
fn js_err(e: &dc::Error) -> Error {
    let kind = serde_json::to_value(e.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Error::new(
        Status::GenericFailure,
        format!("{}\0{kind}\0{}", e.code(), e.full_message()),
    )
}

/// A JS error for a bad argument, in the same form.
fn config_err(message: String) -> Error {
    Error::new(Status::InvalidArg, format!("config\0config\0{message}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::from_reason(e.to_string()))
}

fn version(v: &str) -> Result<dc::Version> {
    dc::Version::parse(v).map_err(|e| config_err(format!("version {v:?}: {e}")))
}

/// Sends each event to the callback, if there is one (never waiting for
/// the JS thread).
fn emitter(progress: Option<Arc<Progress>>) -> impl Fn(dc::Event) + Send + Sync {
    move |e: dc::Event| {
        if let (Some(cb), Ok(v)) = (&progress, serde_json::to_value(&e)) {
            let _ = cb.call(v, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// Everything the Rust builder takes, as one object.
#[napi(object)]
pub struct UpdaterOptions {
    /// Repository URL (or directory). Without it only local calls work.
    pub repository: Option<String>,
    /// The text of the publisher's `.pub` file.
    pub public_key: Option<String>,
    /// Channel (default `stable`).
    pub channel: Option<String>,
    /// Platform name as published (`linux-x86_64`, ...).
    pub platform: Option<String>,
    /// A versions install (`<dir>/current -> versions/<v>`).
    pub install_dir: Option<String>,
    /// One executable replaced in place.
    pub executable: Option<String>,
    /// A directory at a fixed path, swapped whole.
    pub bundle: Option<String>,
    /// Where the updater keeps its state (executable and bundle).
    pub state_dir: Option<String>,
    /// The version the app says it is (to adopt an install).
    pub current_version: Option<String>,
    /// Previous versions kept for rollback (at least 1).
    pub keep_versions: Option<u32>,
    /// Launches without `markHealthy` before an automatic rollback.
    pub health_launches: Option<u32>,
    /// Hosts redirects may go to.
    pub allow_hosts: Option<Vec<String>>,
}

/// An update on offer, from `check()`.
#[napi]
pub struct Update {
    inner: dc::Update,
}

#[napi]
impl Update {
    /// The version offered.
    #[napi(getter)]
    pub fn version(&self) -> String {
        self.inner.version.to_string()
    }
    /// The installed version (`null` for a first install).
    #[napi(getter)]
    pub fn from_version(&self) -> Option<String> {
        self.inner.from.as_ref().map(ToString::to_string)
    }
    /// Release notes (Markdown).
    #[napi(getter)]
    pub fn notes(&self) -> String {
        self.inner.notes.clone()
    }
    /// Bytes to download.
    #[napi(getter)]
    pub fn download_bytes(&self) -> f64 {
        self.inner.download_bytes as f64
    }
    /// Bytes of the full bundle.
    #[napi(getter)]
    pub fn full_bytes(&self) -> f64 {
        self.inner.full_bytes as f64
    }
    /// The packages on the way, e.g. `["delta 1.0.0->1.1.0"]`.
    #[napi(getter)]
    pub fn steps(&self) -> Vec<String> {
        self.inner
            .path
            .steps
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// Packages on disk, hash-checked, from `download()`.
#[napi]
pub struct Downloaded {
    inner: dc::Downloaded,
}

/// A rebuilt, verified version waiting for `install()`.
#[napi]
pub struct Staged {
    inner: dc::Staged,
}

#[napi]
impl Staged {
    /// The packages applied.
    #[napi(getter)]
    pub fn steps(&self) -> Vec<String> {
        self.inner.steps().to_vec()
    }
    /// Why the full bundle was used instead of a delta, if it was.
    #[napi(getter)]
    pub fn fallback(&self) -> Option<String> {
        self.inner.fallback().map(str::to_owned)
    }
}

/// What an async call runs on the libuv pool.
type Run<T> =
    Box<dyn FnOnce(&dc::Updater, &dyn Fn(dc::Event)) -> std::result::Result<T, dc::Error> + Send>;

/// One async call: the updater, the work, the progress callback.
pub struct Call<T> {
    updater: Arc<dc::Updater>,
    run: Option<Run<T>>,
    progress: Option<Arc<Progress>>,
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Call<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> Result<T> {
        let emit = emitter(self.progress.clone());
        let run = self
            .run
            .take()
            .ok_or_else(|| Error::from_reason("the call ran twice"))?;
        run(&self.updater, &emit).map_err(|e| js_err(&e))
    }

    fn resolve(&mut self, _env: Env, output: T) -> Result<T> {
        Ok(output)
    }
}

/// A JSON value as a Task result (plain data for JS).
pub struct Json(serde_json::Value);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: forwards the environment napi handed to this call.
        unsafe { serde_json::Value::to_napi_value(env, val.0) }
    }
}

fn json<T: serde::Serialize>(v: T) -> Json {
    Json(serde_json::to_value(v).unwrap_or_default())
}

/// Keeps one install current from one signed repository.
#[napi]
pub struct Updater {
    inner: Arc<dc::Updater>,
}

#[napi]
impl Updater {
    /// Builds an updater; throws on a bad option.
    #[napi(constructor)]
    pub fn new(options: UpdaterOptions) -> Result<Self> {
        let o = options;
        let mut b = dc::Updater::builder().channel(o.channel.unwrap_or_else(|| "stable".into()));
        let places = [&o.install_dir, &o.executable, &o.bundle]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if places != 1 {
            return Err(config_err(
                "give exactly one of installDir, executable and bundle".into(),
            ));
        }
        if let Some(d) = o.install_dir {
            b = b.install_dir(d);
        }
        if let Some(f) = o.executable {
            b = b.executable(f);
        }
        if let Some(d) = o.bundle {
            b = b.bundle(d);
        }
        if let Some(d) = o.state_dir {
            b = b.state_dir(d);
        }
        if let Some(v) = o.current_version {
            b = b.current_version(version(&v)?);
        }
        if let Some(n) = o.keep_versions {
            b = b.keep_versions(n as usize);
        }
        if let Some(n) = o.health_launches {
            b = b.health_launches(n);
        }
        if let Some(h) = o.allow_hosts {
            b = b.allow_hosts(h);
        }
        if let Some(p) = o.platform {
            b = b.platform(p);
        }
        if let Some(k) = o.public_key {
            let key =
                dc::PublicKey::from_text(&k).map_err(|e| config_err(format!("publicKey: {e}")))?;
            b = b.public_key(key);
        }
        let u = match o.repository {
            Some(r) => b.repository(r).build(),
            None => b.build_local(),
        };
        u.map(|u| Updater { inner: Arc::new(u) })
            .map_err(|e| js_err(&e))
    }

    fn call<T: ToNapiValue + TypeName + Send + 'static>(
        &self,
        progress: Option<Progress>,
        run: impl FnOnce(&dc::Updater, &dyn Fn(dc::Event)) -> std::result::Result<T, dc::Error>
        + Send
        + 'static,
    ) -> AsyncTask<Call<T>> {
        AsyncTask::new(Call {
            updater: self.inner.clone(),
            run: Some(Box::new(run)),
            progress: progress.map(Arc::new),
        })
    }

    /// The newest eligible version and the cheapest way to it, or `null`.
    #[napi(ts_return_type = "Promise<Update | null>")]
    pub fn check(&self, manual: Option<bool>) -> AsyncTask<Call<Option<Update>>> {
        let manual = manual.unwrap_or(false);
        self.call(None, move |u, p| {
            Ok(u.check_with(manual, p)?.map(|inner| Update { inner }))
        })
    }

    /// An update to a specific version (a first install, a downgrade).
    #[napi(ts_return_type = "Promise<Update>")]
    pub fn check_version(&self, v: String) -> Result<AsyncTask<Call<Update>>> {
        let v = version(&v)?;
        Ok(self.call(None, move |u, _| {
            Ok(Update {
                inner: u.check_version(&v)?,
            })
        }))
    }

    /// Downloads the update's packages.
    #[napi(ts_return_type = "Promise<Downloaded>")]
    pub fn download(
        &self,
        update: &Update,
        on_progress: Option<Progress>,
    ) -> AsyncTask<Call<Downloaded>> {
        let up = update.inner.clone();
        self.call(on_progress, move |u, p| {
            Ok(Downloaded {
                inner: u.download(&up, p)?,
            })
        })
    }

    /// Rebuilds the new version beside the running one, verified.
    #[napi(ts_return_type = "Promise<Staged>")]
    pub fn apply(
        &self,
        downloaded: &Downloaded,
        on_progress: Option<Progress>,
    ) -> AsyncTask<Call<Staged>> {
        let d = downloaded.inner.clone();
        self.call(on_progress, move |u, p| {
            Ok(Staged {
                inner: u.apply(&d, p)?,
            })
        })
    }

    /// Switches to the staged version atomically.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn install(&self, staged: &Staged, on_progress: Option<Progress>) -> AsyncTask<Call<()>> {
        let s = staged.inner.clone();
        self.call(on_progress, move |u, p| u.install(&s, p))
    }

    /// Check, download, apply and install; the version installed or `null`.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn update(
        &self,
        on_progress: Option<Progress>,
        manual: Option<bool>,
    ) -> AsyncTask<Call<Option<String>>> {
        let manual = manual.unwrap_or(false);
        self.call(on_progress, move |u, p| {
            Ok(u.update(manual, p)?.map(|v| v.to_string()))
        })
    }

    /// Installs a version (first install, downgrade); the steps applied.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn install_version(
        &self,
        v: String,
        on_progress: Option<Progress>,
    ) -> Result<AsyncTask<Call<Vec<String>>>> {
        let v = version(&v)?;
        Ok(self.call(on_progress, move |u, p| {
            let up = u.check_version(&v)?;
            let s = u.download_and_apply(&up, p)?;
            u.install(&s, p)?;
            Ok(s.steps().to_vec())
        }))
    }

    /// Switches back to the previous version; the version now current.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn rollback(&self) -> AsyncTask<Call<String>> {
        self.call(None, |u, _| Ok(u.rollback()?.to_string()))
    }

    /// Call at every app start (probation, automatic rollback).
    #[napi(
        ts_return_type = "Promise<{ kind: string; launches?: number; from?: string; to?: string }>"
    )]
    pub fn launched(&self) -> AsyncTask<Call<Json>> {
        self.call(None, |u, _| {
            // Tagged by `kind`, as `update launched --json`.
            Ok(json(&u.launched()?))
        })
    }

    /// The running version works: ends its probation.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn mark_healthy(&self) -> AsyncTask<Call<()>> {
        self.call(None, |u, _| u.mark_healthy())
    }

    /// Finishes or undoes an install a kill interrupted.
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn recover(&self) -> AsyncTask<Call<Json>> {
        self.call(None, |u, _| Ok(json(u.recover()?)))
    }

    /// The install's state, as `deltapack update status --json` prints it.
    #[napi]
    pub fn status(&self) -> Result<serde_json::Value> {
        to_json(&self.inner.status().map_err(|e| js_err(&e))?)
    }

    /// The update history, oldest first, as `update history --json`.
    #[napi]
    pub fn history(&self) -> Result<serde_json::Value> {
        to_json(&self.inner.history().map_err(|e| js_err(&e))?)
    }
}
