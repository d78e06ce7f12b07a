//! A repository's place in an object store: the store, the prefix the
//! repository lives under, and the small operations push and pull share
//! (read a manifest, hash an object, put a file with the right headers).

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::{Path as StorePath, PathPart};
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};

use crate::Error;

/// Files up to this size are uploaded in one put; larger ones in parts of
/// this size, so memory stays bounded whatever the package.
const PART: usize = 8 << 20;

/// Where a repository is published.
#[derive(Debug, Clone)]
pub struct Remote {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: StorePath,
    url: String,
    /// Whether the store takes attributes (`Cache-Control`); a local
    /// directory does not.
    attributes: bool,
    pub(crate) runtime: Arc<tokio::runtime::Runtime>,
}

impl Remote {
    /// The remote a URL names: `file:///srv/updates/app` (or a plain
    /// directory path). The directory is created if it is missing.
    pub fn parse(url: &str) -> Result<Remote, Error> {
        let bad = |reason| Error::Url {
            url: url.to_owned(),
            reason,
        };
        let dir = match url::Url::parse(url) {
            Ok(u) if u.scheme() == "file" => u
                .to_file_path()
                .map_err(|()| bad("not a local path (file:///absolute/path)"))?,
            Ok(u) if ["s3", "gs", "az", "abfs", "https"].contains(&u.scheme()) => {
                return Err(bad(
                    "this build publishes to local directories (file://) only; object stores come next",
                ));
            }
            Ok(u) if u.scheme().len() > 1 => return Err(bad("unknown scheme (use file://)")),
            // No scheme (or a Windows drive letter): a directory path.
            _ => std::path::PathBuf::from(url),
        };
        fs_err::create_dir_all(&dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
            Error::Store {
                operation: "opening",
                path: String::new(),
                remote: url.to_owned(),
                source: Box::new(e),
            }
        })?;
        Remote::new(Arc::new(store), StorePath::default(), url, false)
    }

    /// A remote on any object store (`prefix` is where the repository's
    /// root is in it; `attributes`: whether it takes `Cache-Control`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: StorePath,
        url: &str,
        attributes: bool,
    ) -> Result<Remote, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Remote {
            store,
            prefix,
            url: url.to_owned(),
            attributes,
            runtime: Arc::new(runtime),
        })
    }

    /// The URL it was made from (for messages).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store path of a repository path (`pkg/linux/1.0.0/full.dpk`).
    pub(crate) fn path(&self, rel: &str) -> StorePath {
        self.prefix
            .parts()
            .chain(rel.split('/').map(PathPart::from))
            .collect()
    }

    pub(crate) fn store_error(
        &self,
        operation: &'static str,
        rel: &str,
    ) -> impl FnOnce(object_store::Error) -> Error + use<> {
        let (path, remote) = (rel.to_owned(), self.url.clone());
        move |source| Error::Store {
            operation,
            path,
            remote,
            source: Box::new(source),
        }
    }

    /// An object's bytes, or `None` if it does not exist; one larger
    /// than `max` is [`Error::TooLarge`], found while reading, so a remote
    /// that sends more than it should never makes this allocate more.
    pub(crate) async fn read(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
        let r = match self.store.get(&self.path(rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error("reading", rel)(e)),
        };
        let too_large = || Error::TooLarge {
            path: rel.to_owned(),
            remote: self.url.clone(),
            max,
        };
        if r.meta.size > max {
            return Err(too_large());
        }
        let mut out = Vec::with_capacity(usize::try_from(r.meta.size).unwrap_or(0));
        let mut stream = r.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.store_error("reading", rel))?;
            if out.len() as u64 + chunk.len() as u64 > max {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// Whether the object at `rel` is `size` bytes with this BLAKE3 (read
    /// and hashed: what is there, not what a listing claims).
    pub(crate) async fn holds(&self, rel: &str, size: u64, blake3: &str) -> Result<bool, Error> {
        let path = self.path(rel);
        let meta = match self.store.head(&path).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.store_error("checking", rel)(e)),
        };
        if meta.size != size {
            return Ok(false);
        }
        let mut stream = self
            .store
            .get(&path)
            .await
            .map_err(self.store_error("reading", rel))?
            .into_stream();
        let mut h = blake3::Hasher::new();
        while let Some(chunk) = stream.next().await {
            h.update(&chunk.map_err(self.store_error("reading", rel))?);
        }
        Ok(h.finalize().to_hex().as_str() == blake3)
    }

    /// The attributes of an upload: immutable for artifacts, `no-cache`
    /// for the manifest (none for a store that takes none).
    fn attributes(&self, immutable: bool) -> Attributes {
        let cache = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        if self.attributes {
            Attributes::from_iter([(Attribute::CacheControl, cache)])
        } else {
            Attributes::new()
        }
    }

    /// Puts `bytes` as `rel` in one request (the manifest: exactly the
    /// bytes that were verified).
    pub(crate) async fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        immutable: bool,
    ) -> Result<(), Error> {
        let opts = PutOptions {
            attributes: self.attributes(immutable),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.path(rel), PutPayload::from(bytes), opts)
            .await
            .map_err(self.store_error("uploading", rel))?;
        Ok(())
    }

    /// Uploads the local file `from` as artifact `rel`: one put up to
    /// [`PART`] bytes, a multipart upload above (aborted if it fails).
    pub(crate) async fn upload(&self, rel: &str, from: &std::path::Path) -> Result<(), Error> {
        use std::io::Read;
        let path = self.path(rel);
        let mut file = fs_err::File::open(from)?;
        let len = file.metadata()?.len();
        if len <= PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)?;
            return self.put(rel, buf, true).await;
        }
        let attributes = self.attributes(true);
        let opts = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let upload = self
            .store
            .put_multipart_opts(&path, opts)
            .await
            .map_err(self.store_error("uploading", rel))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = w.wait_for_capacity(2).await {
                let _ = w.abort().await;
                return Err(self.store_error("uploading", rel)(e));
            }
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .map_err(self.store_error("uploading", rel))?;
        Ok(())
    }
}
