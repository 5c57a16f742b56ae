//! Storage: the only module that knows about locations. A location given on the command line
//! becomes a [`Store`] with one small blocking API, so that feeds, reports and publishing never
//! know whether they read a laptop folder or a bucket:
//!
//! - a plain path or `file:///path`: the local disk, through `std::fs` (names kept exactly as
//!   they are on disk; writes go to a temporary file renamed into place);
//! - `s3://bucket/prefix`, `az://container/prefix`, `abfs[s]://container@account.dfs.core.windows.net/prefix`,
//!   `gs://bucket/prefix`: `object_store`, configured from the standard `AWS_*`,
//!   `AZURE_STORAGE_*`/`AZURE_*` and `GOOGLE_*` environment variables, with retries and
//!   exponential backoff on transient errors and multipart uploads for large files.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
    WriteMultipart,
};

use crate::error::{Error, Result};

/// Files at least this large are uploaded in parts.
const MULTIPART_THRESHOLD: usize = 16 << 20;

/// One file found under a store's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Path relative to the store's prefix, `/`-separated (e.g. `transactions/2026-09-01.csv`).
    pub(crate) path: String,
    pub(crate) size: u64,
}

/// The version of an object as seen by [`Store::version`], for a conditional update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version(Option<UpdateVersion>);

#[derive(Clone)]
enum Backend {
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>),
}

/// A location (folder or bucket prefix) that files are read from or written to.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Human-readable form of the location, for messages.
    display: String,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("incentives-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.display)
    }
}

/// Retries with exponential backoff: transient errors (5xx, timeouts, refused connections)
/// are retried for up to `INCENTIVES_RETRY_TIMEOUT_SECS` (default two minutes) before a run fails.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        // The time limit governs, not the count: jittered backoffs can spend ten tries in two
        // seconds, less than a restarting server needs.
        max_retries: 100,
        retry_timeout: Duration::from_secs(
            std::env::var("INCENTIVES_RETRY_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120),
        ),
    }
}

/// Decodes `%XX` escapes (a `file://` URL path; an export folder name back to its partner id).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An object path from a `/`-separated relative path, kept as written (no re-encoding).
fn object_path(rel: &str) -> Result<Path> {
    Path::parse(rel).map_err(|e| Error::ObjectStore {
        action: "making an object path of",
        location: format!("'{rel}'"),
        source: e.into(),
    })
}

impl Store {
    /// Opens an existing location for reading.
    pub fn open(uri: &str) -> Result<Store> {
        Self::from_uri(uri, false)
    }

    /// Opens a location for writing, creating a local folder when it does not exist.
    pub(crate) fn create(uri: &str) -> Result<Store> {
        Self::from_uri(uri, true)
    }

    fn from_uri(uri: &str, create: bool) -> Result<Store> {
        let local = match uri.split_once("://") {
            Some(("file", rest)) => percent_decode(rest),
            Some((scheme, rest)) => return Self::remote(uri, scheme, rest),
            None => uri.to_string(),
        };
        let dir = FsPath::new(&local);
        if create {
            std::fs::create_dir_all(dir).map_err(Error::io("cannot create folder", format!("'{local}'")))?;
        } else if !dir.is_dir() {
            let kind =
                if dir.exists() { std::io::ErrorKind::NotADirectory } else { std::io::ErrorKind::NotFound };
            return Err(Error::Io {
                action: "opening",
                path: format!("'{uri}'"),
                source: std::io::Error::new(kind, "not a folder"),
            });
        }
        Ok(Store {
            backend: Backend::Local(dir.to_path_buf()),
            display: local.trim_end_matches('/').to_string(),
        })
    }

    /// An object-store location: `scheme://authority/prefix`.
    fn remote(uri: &str, scheme: &str, rest: &str) -> Result<Store> {
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        let base = format!("{scheme}://{authority}");
        let bad = |e: object_store::Error| Error::config(format!("location '{uri}': {e}"));
        let inner: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(&base)
                    .with_retry(retry())
                    .build()
                    .map_err(bad)?,
            ),
            "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(&base)
                    .with_retry(retry())
                    .build()
                    .map_err(bad)?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(&base)
                    .with_retry(retry())
                    .build()
                    .map_err(bad)?,
            ),
            other => {
                return Err(Error::config(format!(
                    "location '{uri}': unknown scheme '{other}://' (use a path, file://, s3://, az://, abfs[s]:// or gs://)"
                )));
            }
        };
        let inner: Arc<dyn ObjectStore> =
            if prefix.is_empty() { inner } else { Arc::new(PrefixStore::new(inner, object_path(prefix)?)) };
        Ok(Store { backend: Backend::Remote(inner), display: uri.trim_end_matches('/').to_string() })
    }

    /// The folder on the local disk, if the location is one.
    pub(crate) fn local_root(&self) -> Option<&FsPath> {
        match &self.backend {
            Backend::Local(p) => Some(p),
            Backend::Remote(_) => None,
        }
    }

    /// Where `rel` is, for messages.
    pub(crate) fn display(&self, rel: &str) -> String {
        if rel.is_empty() { self.display.clone() } else { format!("{}/{}", self.display, rel) }
    }

    fn remote_error(&self, action: &'static str, rel: &str, source: object_store::Error) -> Error {
        Error::ObjectStore { action, location: self.display(rel), source }
    }

    /// Every file under `rel` (recursively), sorted by path.
    pub(crate) fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let mut out = match &self.backend {
            Backend::Local(root) => {
                let mut out = Vec::new();
                list_local(root, &root.join(rel), &mut out)
                    .map_err(Error::io("listing", self.display(rel)))?;
                out
            }
            Backend::Remote(store) => {
                let prefix = if rel.is_empty() { None } else { Some(object_path(rel)?) };
                let store = store.clone();
                let metas: Vec<object_store::ObjectMeta> = runtime()
                    .block_on(async move { store.list(prefix.as_ref()).try_collect().await })
                    .map_err(|e| self.remote_error("listing", rel, e))?;
                metas.into_iter().map(|m| Entry { path: m.location.to_string(), size: m.size }).collect()
            }
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The whole content of `rel`.
    pub(crate) fn get(&self, rel: &str) -> Result<Bytes> {
        match &self.backend {
            Backend::Local(root) => std::fs::read(root.join(rel))
                .map(Bytes::from)
                .map_err(|e| Error::unreadable_from(self.display(rel), e)),
            Backend::Remote(store) => {
                let (store, path) = (store.clone(), object_path(rel)?);
                runtime()
                    .block_on(async move { store.get(&path).await?.bytes().await })
                    .map_err(|e| Error::unreadable_from(self.display(rel), e))
            }
        }
    }

    /// The content of `rel`, or `None` when there is no such file.
    pub(crate) fn get_if_exists(&self, rel: &str) -> Result<Option<(Bytes, Version)>> {
        match &self.backend {
            Backend::Local(root) => match std::fs::read(root.join(rel)) {
                Ok(b) => Ok(Some((Bytes::from(b), Version(None)))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("reading", self.display(rel))(e)),
            },
            Backend::Remote(store) => {
                let (store, path) = (store.clone(), object_path(rel)?);
                let got = runtime().block_on(async move {
                    let r = store.get(&path).await?;
                    let v = UpdateVersion { e_tag: r.meta.e_tag.clone(), version: r.meta.version.clone() };
                    Ok::<_, object_store::Error>((r.bytes().await?, v))
                });
                match got {
                    Ok((b, v)) => Ok(Some((b, Version(Some(v))))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.remote_error("reading", rel, e)),
                }
            }
        }
    }

    /// Writes `bytes` to `rel`, replacing it; readers see the old or the new content, never a
    /// part (a local temporary file renamed into place; an object store's atomic put).
    pub(crate) fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.put_mode(rel, bytes, PutMode::Overwrite).map(|_| ())
    }

    /// Creates `rel` only if it does not exist; `Ok(false)` when it already does.
    pub(crate) fn create_new(&self, rel: &str, bytes: &[u8]) -> Result<bool> {
        self.put_mode(rel, bytes, PutMode::Create)
    }

    /// Writes `rel` only if it is still at `seen` (or still absent, for `None`): a conditional
    /// put, so that two writers cannot silently overwrite each other. `Ok(false)` when it
    /// changed meanwhile.
    pub(crate) fn put_if_unchanged(&self, rel: &str, bytes: &[u8], seen: Option<&Version>) -> Result<bool> {
        match (&self.backend, seen) {
            (_, None) => self.create_new(rel, bytes),
            (Backend::Local(_), Some(_)) => self.put(rel, bytes).map(|_| true),
            (Backend::Remote(_), Some(Version(v))) => match v {
                Some(v) if v.e_tag.is_some() || v.version.is_some() => {
                    self.put_mode(rel, bytes, PutMode::Update(v.clone()))
                }
                _ => self.put(rel, bytes).map(|_| true),
            },
        }
    }

    fn put_mode(&self, rel: &str, bytes: &[u8], mode: PutMode) -> Result<bool> {
        match &self.backend {
            Backend::Local(root) => {
                let path = root.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(Error::io("cannot create the folder of", self.display(rel)))?;
                }
                if matches!(mode, PutMode::Create) {
                    use std::io::Write;
                    return match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                        Ok(mut f) => {
                            f.write_all(bytes).map(|_| true).map_err(Error::io("writing", self.display(rel)))
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                        Err(e) => Err(Error::io("creating", self.display(rel))(e)),
                    };
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
                std::fs::write(&tmp, bytes).map_err(Error::io("writing", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .map_err(Error::io("cannot move into place", self.display(rel)))?;
                Ok(true)
            }
            Backend::Remote(store) => {
                let (store, path) = (store.clone(), object_path(rel)?);
                let payload = Bytes::copy_from_slice(bytes);
                let result = runtime().block_on(async move {
                    if matches!(mode, PutMode::Overwrite) && payload.len() >= MULTIPART_THRESHOLD {
                        let upload = store.put_multipart(&path).await?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
                        w.put(payload);
                        w.finish().await
                    } else {
                        store.put_opts(&path, PutPayload::from(payload), PutOptions::from(mode)).await
                    }
                });
                match result {
                    Ok(_) => Ok(true),
                    Err(
                        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                    ) => Ok(false),
                    Err(e) => Err(self.remote_error("writing", rel, e)),
                }
            }
        }
    }

    /// Copies `from` to `to` within the store (server-side for object stores).
    pub(crate) fn copy(&self, from: &str, to: &str) -> Result<()> {
        match &self.backend {
            Backend::Local(root) => {
                let bytes =
                    std::fs::read(root.join(from)).map_err(Error::io("reading", self.display(from)))?;
                self.put(to, &bytes)
            }
            Backend::Remote(store) => {
                let (store, f, t) = (store.clone(), object_path(from)?, object_path(to)?);
                runtime()
                    .block_on(async move { store.copy(&f, &t).await })
                    .map_err(|e| self.remote_error("copying to", to, e))
            }
        }
    }

    /// Deletes `rel`; a missing file is not an error.
    pub(crate) fn delete(&self, rel: &str) -> Result<()> {
        match &self.backend {
            Backend::Local(root) => match std::fs::remove_file(root.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("deleting", self.display(rel))(e))
                }
                _ => Ok(()),
            },
            Backend::Remote(store) => {
                let (store, path) = (store.clone(), object_path(rel)?);
                match runtime().block_on(async move { store.delete(&path).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.remote_error("deleting", rel, e)),
                }
            }
        }
    }
}

/// Lists regular files below `dir` (following links to folders), as paths relative to `root`.
fn list_local(root: &FsPath, dir: &FsPath, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let path = e.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            list_local(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).expect("below the root");
            let rel: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(Entry { path: rel.join("/"), size: meta.len() });
        }
    }
    Ok(())
}

/// A blocking reader over an object's byte stream.
struct StreamReader {
    stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            use futures::StreamExt;
            match runtime().block_on(self.stream.next()) {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

impl Store {
    /// `rel` as a stream of bytes (CSV, gzip): read once, front to back, never buffered whole.
    pub(crate) fn reader(&self, rel: &str) -> Result<Box<dyn std::io::Read + Send>> {
        match &self.backend {
            Backend::Local(root) => Ok(Box::new(
                std::fs::File::open(root.join(rel))
                    .map_err(|e| Error::unreadable_from(self.display(rel), e))?,
            )),
            Backend::Remote(store) => {
                let (store, path) = (store.clone(), object_path(rel)?);
                let stream = runtime()
                    .block_on(async move { store.get(&path).await.map(|r| r.into_stream()) })
                    .map_err(|e| Error::unreadable_from(self.display(rel), e))?;
                Ok(Box::new(StreamReader { stream, current: Bytes::new() }))
            }
        }
    }

    /// `rel` read whole, once (parquet, whose footer comes last): a local file around the page
    /// cache where the file system allows it, an object in one request.
    pub(crate) fn read_whole(&self, rel: &str) -> Result<Bytes> {
        match &self.backend {
            Backend::Local(root) => crate::direct_io::read_whole(&root.join(rel))
                .map_err(|e| Error::unreadable_from(self.display(rel), e)),
            Backend::Remote(_) => self.get(rel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lists_local_files_with_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        store.put("a/b.csv", b"x,y\n").unwrap();
        store.put("a/c/d-é%2F~#.csv", b"1").unwrap();
        assert_eq!(store.get("a/b.csv").unwrap().as_ref(), b"x,y\n");
        let listed: Vec<String> = store.list("a").unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["a/b.csv", "a/c/d-é%2F~#.csv"]);
        assert_eq!(store.get("a/c/d-é%2F~#.csv").unwrap().as_ref(), b"1");
        assert!(dir.path().join("a/c/d-é%2F~#.csv").exists(), "names are kept exactly");
        assert!(!store.create_new("a/b.csv", b"z").unwrap());
        assert!(store.create_new("a/new.csv", b"z").unwrap());
        store.delete("a/new.csv").unwrap();
        store.delete("a/new.csv").unwrap();
        assert_eq!(store.get_if_exists("a/new.csv").unwrap(), None);
    }

    #[test]
    fn file_urls_are_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("with space");
        std::fs::create_dir(&sub).unwrap();
        let url = format!("file://{}", sub.to_str().unwrap().replace(' ', "%20"));
        assert!(Store::open(&url).is_ok());
    }

    #[test]
    fn unknown_scheme_is_a_configuration_error() {
        let err = Store::open("ftp://host/x").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[test]
    fn missing_input_folder_is_named() {
        let err = Store::open("/definitely/not/here").unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }

    #[test]
    fn cloud_urls_are_understood_without_contacting_anything() {
        // GCS has no emulator in reach here: its URLs are checked for configuration only.
        let gs = Store::open("gs://bucket/some/prefix").unwrap();
        assert_eq!(gs.display("x.csv"), "gs://bucket/some/prefix/x.csv");
        assert!(gs.local_root().is_none());
        assert!(matches!(Store::open("gs://"), Err(Error::Config(_))), "a bucket is required");
        let s3 = Store::open("s3://bucket/some/prefix/").unwrap();
        assert_eq!(s3.display("x.csv"), "s3://bucket/some/prefix/x.csv");
        let az = Store::open("abfss://container@account.dfs.core.windows.net/p").unwrap();
        assert_eq!(az.display(""), "abfss://container@account.dfs.core.windows.net/p");
        let err = Store::open("abfss://container@account.example.com/p").unwrap_err();
        assert!(err.to_string().contains("abfss://container@account.example.com/p"), "{err}");
    }
}
