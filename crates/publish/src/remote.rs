//! A repository's place in an object store: the store, the prefix the
//! repository lives under, and the small operations push and pull share
//! (read a manifest, hash an object, put a file with the right headers).

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::{Path as StorePath, PathPart};
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
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
    kind: Kind,
    pub(crate) runtime: Arc<tokio::runtime::Runtime>,
}

/// What kind of store a remote is: it decides which attributes an upload
/// carries and how an object is compared with an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A local directory: no attributes; an object is compared by reading
    /// it (a local read).
    Directory,
    /// An object store over HTTP (S3, GCS, Azure): `Cache-Control` on
    /// every object and the BLAKE3 in the object's metadata, so that a
    /// push compares an object by asking for its headers instead of
    /// downloading it.
    Cloud,
}

/// The metadata key an artifact's BLAKE3 is stored under
/// (`x-amz-meta-blake3` on S3).
const BLAKE3_KEY: &str = "blake3";

impl Remote {
    /// The remote a URL names:
    ///
    /// - `s3://bucket/prefix`: any S3-compatible store; region, endpoint
    ///   (`AWS_ENDPOINT_URL`) and credentials come from the usual `AWS_*`
    ///   environment variables, and from `~/.aws/credentials` and
    ///   `~/.aws/config` (profile `AWS_PROFILE`, else `default`) for what
    ///   the environment leaves out. An `http://` endpoint is allowed
    ///   because it was named explicitly (a local MinIO, say);
    /// - `gs://bucket/prefix`: Google Cloud Storage (`GOOGLE_*` variables,
    ///   or the machine's service account);
    /// - `az://container/prefix`: Azure Blob Storage (`AZURE_*` variables;
    ///   `AZURE_STORAGE_ACCOUNT_NAME` names the account);
    /// - `file:///srv/updates/app` or a plain directory path (created if
    ///   missing).
    pub fn parse(url: &str) -> Result<Remote, Error> {
        let bad = |reason| Error::Url {
            url: url.to_owned(),
            reason,
        };
        let opening = |e| Error::Store {
            operation: "opening",
            path: String::new(),
            remote: url.to_owned(),
            source: Box::new(e),
        };
        let parsed = url::Url::parse(url);
        let cloud = match &parsed {
            Ok(u) if ["s3", "gs", "az"].contains(&u.scheme()) => Some(u),
            _ => None,
        };
        if let Some(u) = cloud {
            let bucket = match u.host_str() {
                Some(b) if !b.is_empty() => b,
                _ => return Err(bad("no bucket (s3://bucket/prefix)")),
            };
            if !u.username().is_empty() || u.password().is_some() || u.port().is_some() {
                return Err(bad(
                    "credentials and endpoints come from the environment, not the URL",
                ));
            }
            if u.query().is_some() || u.fragment().is_some() {
                return Err(bad("no query or fragment (s3://bucket/prefix)"));
            }
            let prefix = StorePath::from_url_path(u.path())
                .map_err(|_| bad("the prefix is not a valid object path"))?;
            crate::tls::install_provider();
            let store: Arc<dyn ObjectStore> = match u.scheme() {
                "s3" => Arc::new(crate::aws::builder(bucket)?.build().map_err(opening)?),
                "gs" => Arc::new(
                    object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(bucket)
                        .build()
                        .map_err(opening)?,
                ),
                _ => Arc::new(
                    object_store::azure::MicrosoftAzureBuilder::from_env()
                        .with_container_name(bucket)
                        .build()
                        .map_err(opening)?,
                ),
            };
            return Remote::new(store, prefix, url, Kind::Cloud);
        }
        let dir = match parsed {
            Ok(u) if u.scheme() == "file" => u
                .to_file_path()
                .map_err(|()| bad("not a local path (file:///absolute/path)"))?,
            Ok(u) if ["http", "https"].contains(&u.scheme()) => {
                return Err(bad(
                    "publish to the store behind the address (s3://, gs://, az://) or to a directory (file://)",
                ));
            }
            Ok(u) if u.scheme().len() > 1 => {
                return Err(bad("unknown scheme (use s3://, gs://, az:// or file://)"));
            }
            // No scheme (or a Windows drive letter): a directory path.
            _ => std::path::PathBuf::from(url),
        };
        fs_err::create_dir_all(&dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(opening)?;
        Remote::new(Arc::new(store), StorePath::default(), url, Kind::Directory)
    }

    /// A remote on any object store (`prefix` is where the repository's
    /// root is in it).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: StorePath,
        url: &str,
        kind: Kind,
    ) -> Result<Remote, Error> {
        // Time and I/O drivers: the HTTP stores time out and retry.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Remote {
            store,
            prefix,
            url: url.to_owned(),
            kind,
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

    /// Whether the object at `rel` is `size` bytes with this BLAKE3. On a
    /// cloud store the BLAKE3 recorded in the object's metadata at upload
    /// is trusted unless `rehash`; an object without one (uploaded by
    /// another tool), and every object of a directory, is read and hashed.
    pub(crate) async fn holds(
        &self,
        rel: &str,
        size: u64,
        blake3: &str,
        rehash: bool,
    ) -> Result<bool, Error> {
        let path = self.path(rel);
        let head = match self
            .store
            .get_opts(&path, GetOptions::default().with_head(true))
            .await
        {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.store_error("checking", rel)(e)),
        };
        if head.meta.size != size {
            return Ok(false);
        }
        if self.kind == Kind::Cloud && !rehash {
            let recorded = head
                .attributes
                .get(&Attribute::Metadata(BLAKE3_KEY.into()))
                .map(|v| v.as_ref().to_owned());
            if let Some(recorded) = recorded {
                return Ok(recorded == blake3);
            }
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

    /// The attributes of an upload: for an artifact (`blake3` given),
    /// immutable and its BLAKE3; for the manifest, `no-cache` (none on a
    /// directory, which takes none).
    fn attributes(&self, blake3: Option<&str>) -> Attributes {
        if self.kind == Kind::Directory {
            return Attributes::new();
        }
        match blake3 {
            Some(hash) => Attributes::from_iter([
                (
                    Attribute::CacheControl,
                    "public, max-age=31536000, immutable".to_owned(),
                ),
                (Attribute::Metadata(BLAKE3_KEY.into()), hash.to_owned()),
            ]),
            None => Attributes::from_iter([(Attribute::CacheControl, "no-cache")]),
        }
    }

    /// Puts `bytes` as `rel` in one request (the manifest: exactly the
    /// bytes that were verified; `blake3` for an artifact).
    pub(crate) async fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        blake3: Option<&str>,
    ) -> Result<(), Error> {
        let opts = PutOptions {
            attributes: self.attributes(blake3),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.path(rel), PutPayload::from(bytes), opts)
            .await
            .map_err(self.store_error("uploading", rel))?;
        Ok(())
    }

    /// Uploads the local file `from` as artifact `rel` (whose BLAKE3 is
    /// `blake3`): one put up to [`PART`] bytes, a multipart upload above
    /// (aborted if it fails).
    pub(crate) async fn upload(
        &self,
        rel: &str,
        from: &std::path::Path,
        blake3: &str,
    ) -> Result<(), Error> {
        use std::io::Read;
        let path = self.path(rel);
        let mut file = fs_err::File::open(from)?;
        let len = file.metadata()?.len();
        if len <= PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)?;
            return self.put(rel, buf, Some(blake3)).await;
        }
        let attributes = self.attributes(Some(blake3));
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
