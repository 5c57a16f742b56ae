//! An object store prefix (S3, Azure Blob, GCS) through `object_store`, behind a blocking API:
//! each call runs on a small Tokio runtime of the process's own. Transient errors are retried
//! with exponential backoff; large files are uploaded in parts.
//!
//! Publishing (an object store has no rename): the staged objects are copied to their final
//! keys, final keys of the date the run no longer produces are deleted, and the manifest is
//! written last with a conditional put (it must still be the version seen when the run
//! started), which is the commit. The manifest names the immutable staging prefix it was
//! published from (`published_from`), so a reader that follows the manifest reads a complete
//! run even while the next one is copying.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig, UpdateVersion,
    WriteMultipart,
};
use rayon::prelude::*;

use super::{Backend, Entry, PutMode, ReadAt, SmallFiles, StagedRun, Version};
use crate::error::{Error, Result};

/// Files at least this large are uploaded in parts.
const MULTIPART_THRESHOLD: usize = 16 << 20;

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

/// An object path from a `/`-separated relative path, kept as written (no re-encoding).
fn object_path(rel: &str) -> Result<Path> {
    Path::parse(rel).map_err(|e| Error::ObjectStore {
        action: "making an object path of",
        location: format!("'{rel}'"),
        source: e.into(),
    })
}

/// An object store prefix.
#[derive(Clone)]
pub(super) struct Remote {
    inner: Arc<dyn ObjectStore>,
    display: String,
}

impl Remote {
    /// The location `uri` (`scheme://authority/prefix`, already split at `://`).
    pub(super) fn open(uri: &str, scheme: &str, rest: &str, display: &str) -> Result<Remote> {
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
        Ok(Remote { inner, display: display.to_string() })
    }

    fn display(&self, rel: &str) -> String {
        super::display(&self.display, rel)
    }

    fn error(&self, action: &'static str, rel: &str, source: object_store::Error) -> Error {
        Error::ObjectStore { action, location: self.display(rel), source }
    }
}

impl Backend for Remote {
    fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let prefix = if rel.is_empty() { None } else { Some(object_path(rel)?) };
        let store = self.inner.clone();
        let metas: Vec<object_store::ObjectMeta> = runtime()
            .block_on(async move { store.list(prefix.as_ref()).try_collect().await })
            .map_err(|e| self.error("listing", rel, e))?;
        Ok(metas
            .into_iter()
            .map(|m| Entry { path: m.location.to_string(), size: m.size, problem: None })
            .collect())
    }

    fn children(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = if rel.is_empty() { None } else { Some(object_path(rel)?) };
        let store = self.inner.clone();
        let listed = runtime()
            .block_on(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map_err(|e| self.error("listing", rel, e))?;
        Ok(listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect())
    }

    fn get(&self, rel: &str) -> Result<Bytes> {
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        runtime()
            .block_on(async move { store.get(&path).await?.bytes().await })
            .map_err(|e| Error::unreadable_from(self.display(rel), e))
    }

    fn get_if_exists(&self, rel: &str) -> Result<Option<(Bytes, Version)>> {
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        let got = runtime().block_on(async move {
            let r = store.get(&path).await?;
            let v = UpdateVersion { e_tag: r.meta.e_tag.clone(), version: r.meta.version.clone() };
            Ok::<_, object_store::Error>((r.bytes().await?, v))
        });
        match got {
            Ok((b, v)) => Ok(Some((b, Version(Some(v))))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading", rel, e)),
        }
    }

    fn put(&self, rel: &str, bytes: &[u8], mode: PutMode) -> Result<bool> {
        let mode = match mode {
            PutMode::Overwrite => object_store::PutMode::Overwrite,
            PutMode::Create => object_store::PutMode::Create,
            // A store that gives no version (no ETag) cannot compare: the put replaces.
            PutMode::Update(Version(Some(v))) if v.e_tag.is_some() || v.version.is_some() => {
                object_store::PutMode::Update(v.clone())
            }
            PutMode::Update(_) => object_store::PutMode::Overwrite,
        };
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        let payload = Bytes::copy_from_slice(bytes);
        let result = runtime().block_on(async move {
            if matches!(mode, object_store::PutMode::Overwrite) && payload.len() >= MULTIPART_THRESHOLD {
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
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(false)
            }
            Err(e) => Err(self.error("writing", rel, e)),
        }
    }

    fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (store, f, t) = (self.inner.clone(), object_path(from)?, object_path(to)?);
        runtime()
            .block_on(async move { store.copy(&f, &t).await })
            .map_err(|e| self.error("copying to", to, e))
    }

    fn delete(&self, rel: &str) -> Result<()> {
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        match runtime().block_on(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("deleting", rel, e)),
        }
    }

    /// object_store has no conditional delete: the version is compared by a `HEAD` just
    /// before the delete, so a change in between (another writer's conditional put of this
    /// very file within that round trip) is not seen.
    fn delete_if(&self, rel: &str, seen: &Version) -> Result<bool> {
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        let head = runtime().block_on(async move { store.head(&path).await });
        let now = match head {
            Ok(meta) => Version(Some(UpdateVersion { e_tag: meta.e_tag, version: meta.version })),
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.error("reading", rel, e)),
        };
        if &now != seen {
            return Ok(false);
        }
        self.delete(rel).map(|_| true)
    }

    fn delete_all(&self, rel: &str) -> Result<()> {
        self.list(rel)?.iter().try_for_each(|e| self.delete(&e.path))
    }

    fn reader(&self, rel: &str) -> Result<Box<dyn Read + Send>> {
        let (store, path) = (self.inner.clone(), object_path(rel)?);
        let stream = runtime()
            .block_on(async move { store.get(&path).await.map(|r| r.into_stream()) })
            .map_err(|e| Error::unreadable_from(self.display(rel), e))?;
        Ok(Box::new(StreamReader { stream, current: Bytes::new() }))
    }

    fn read_whole(&self, rel: &str) -> Result<Bytes> {
        self.get(rel)
    }

    fn create(&self, rel: &str) -> Result<Box<dyn super::Sink>> {
        Ok(Box::new(RemoteSink { remote: self.clone(), rel: rel.to_string(), bytes: Vec::new() }))
    }

    fn open_at(&self, rel: &str) -> Result<ReadAt> {
        self.get(rel).map(ReadAt::Bytes)
    }

    fn small_files(&self, _writers: usize) -> Box<dyn SmallFiles> {
        Box::new(self.clone())
    }

    fn publish(&self, run: &StagedRun, checkpoint: &(dyn Fn() + Sync)) -> Result<Option<String>> {
        // Copies are independent requests: run them in parallel.
        run.files.par_iter().filter(|f| **f != run.manifest).try_for_each(|f| {
            self.copy(&format!("{}/{f}", run.staging), f)?;
            checkpoint();
            Ok::<(), Error>(())
        })?;
        // Final keys of this date that the new run does not produce (a partner gone, ...).
        let new: HashSet<&str> = run.files.iter().map(String::as_str).collect();
        for entry in run.entries {
            for old in self.list(entry)? {
                if !new.contains(old.path.as_str()) {
                    self.delete(&old.path)?;
                }
            }
        }
        let bytes = self.get(&format!("{}/{}", run.staging, run.manifest))?;
        let committed = match run.manifest_seen {
            None => self.put(run.manifest, &bytes, PutMode::Create)?,
            Some(seen) => self.put(run.manifest, &bytes, PutMode::Update(seen))?,
        };
        if !committed {
            return Err(Error::Locked(format!(
                "{} changed while this run was writing: another run published {} meanwhile; nothing was overwritten",
                self.display(run.manifest),
                run.date
            )));
        }
        checkpoint();
        Ok(None)
    }
}

/// An object written in pieces: gathered in memory, put when finished.
struct RemoteSink {
    remote: Remote,
    rel: String,
    bytes: Vec<u8>,
}

impl Write for RemoteSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl super::Sink for RemoteSink {
    fn finish(self: Box<Self>) -> Result<()> {
        self.remote.put(&self.rel, &self.bytes, PutMode::Overwrite).map(|_| ())
    }
}

/// Small objects: each put whole (folders are implied by the keys).
impl SmallFiles for Remote {
    fn make_dir(&mut self, _rel: &str) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, rel: &str, parts: &[Bytes]) -> Result<()> {
        self.put(rel, &parts.concat(), PutMode::Overwrite).map(|_| ())
    }
}

/// A blocking reader over an object's byte stream.
struct StreamReader {
    stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for StreamReader {
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
