//! Storage: the only module that knows about locations. A location given on the command line
//! (a plain path or a `file://` URL today) becomes a [`Store`]: an `object_store` plus a
//! prefix, with a small blocking facade, so that feeds and reports never know whether they
//! read a laptop folder or a bucket.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};

/// One file found under a store's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the store's prefix, `/`-separated (e.g. `transactions/2026-09-01.csv`).
    pub path: String,
    pub size: u64,
}

/// A location (folder or bucket prefix) that files are read from or written to.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Human-readable form of the location, for messages.
    display: String,
    /// The folder, when the location is on the local disk.
    local: Option<std::path::PathBuf>,
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

impl Store {
    /// Opens an existing location for reading.
    pub fn open(uri: &str) -> Result<Store> {
        Self::from_uri(uri, false)
    }

    /// Opens a location for writing, creating a local folder when it does not exist.
    pub fn create(uri: &str) -> Result<Store> {
        Self::from_uri(uri, true)
    }

    fn from_uri(uri: &str, create: bool) -> Result<Store> {
        let local = if let Some(rest) = uri.strip_prefix("file://") {
            rest.to_string()
        } else if let Some((scheme, _)) = uri.split_once("://") {
            return Err(Error::config(format!(
                "location '{uri}': the '{scheme}://' scheme is not supported by this build \
                 (supported: a local path or file:///path)"
            )));
        } else {
            uri.to_string()
        };
        let dir = std::path::Path::new(&local);
        if create {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("cannot create folder '{local}': {e}")))?;
        } else if !dir.is_dir() {
            return Err(Error::Storage(format!("'{uri}' is not a folder")));
        }
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::Storage(format!("cannot open '{uri}': {e}")))?;
        Ok(Store {
            inner: Arc::new(fs),
            display: local.trim_end_matches('/').to_string(),
            local: Some(dir.to_path_buf()),
        })
    }

    /// The folder on the local disk, if the location is one.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// Where `rel` is, for messages.
    pub fn display(&self, rel: &str) -> String {
        format!("{}/{}", self.display, rel)
    }

    /// Every file under `rel` (recursively), sorted by path.
    pub fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let prefix = Path::from(rel);
        let store = self.inner.clone();
        let metas: Vec<object_store::ObjectMeta> = runtime()
            .block_on(async move { store.list(Some(&prefix)).try_collect().await })
            .map_err(|e| Error::Storage(format!("listing {}: {e}", self.display(rel))))?;
        let mut out: Vec<Entry> =
            metas.into_iter().map(|m| Entry { path: m.location.to_string(), size: m.size }).collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The whole content of `rel`.
    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let path = Path::from(rel);
        let store = self.inner.clone();
        runtime()
            .block_on(async move { store.get(&path).await?.bytes().await })
            .map_err(|e| Error::unreadable(rel, format!("cannot read: {e}")))
    }

    /// Writes `bytes` to `rel` (atomically on a local disk: a temporary file then a rename).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let path = Path::from(rel);
        let store = self.inner.clone();
        runtime()
            .block_on(async move { store.put(&path, PutPayload::from(bytes)).await })
            .map(|_| ())
            .map_err(|e| Error::Write { path: self.display(rel), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lists_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        store.put("a/b.csv", b"x,y\n".to_vec()).unwrap();
        store.put("a/c/d.csv", b"1".to_vec()).unwrap();
        assert_eq!(store.get("a/b.csv").unwrap().as_ref(), b"x,y\n");
        let listed: Vec<String> = store.list("a").unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["a/b.csv", "a/c/d.csv"]);
    }

    #[test]
    fn unsupported_scheme_is_a_configuration_error() {
        let err = Store::open("ftp://host/x").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[test]
    fn missing_input_folder_is_named() {
        let err = Store::open("/definitely/not/here").unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
