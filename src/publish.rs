//! Atomic publishing of a run's outputs, and the guard against two runs of one date.
//!
//! Every run first writes all its outputs under a staging prefix `_runs/<D>/<staging-id>/`, in
//! the final layout, the manifest last. Then:
//!
//! - **Local folder**: readers reach a date's outputs through links made once per date
//!   (`earnings/run_date=D -> ../_current/D/earnings/run_date=D`, likewise for every report,
//!   `exports/run_date=D` and `runs/D`), and `_current/D` is a single link to the published
//!   staging folder. Publishing is one `rename(2)` of that link: a crash or kill at any moment
//!   leaves either the previous good run or the new complete one visible, never a mix.
//! - **Object store** (no rename there): the staged objects are copied to their final keys,
//!   final keys the run no longer produces are deleted, and `runs/D/manifest.json` is written
//!   last with a conditional put (it must still be the version seen when the run started). The
//!   manifest names the immutable staging prefix it was published from (`published_from`), so a
//!   reader that follows the manifest reads a complete run even while the next one is copying.
//!
//! The guard is `_locks/<D>.lock`, created only if absent (`PutMode::Create` on object stores,
//! `O_EXCL` locally); it names its holder and expires, and a lock left by a dead process of
//! this host is taken over.

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::store::{Store, Version};

/// How long a lock is honoured without its holder finishing.
const LOCK_TTL_HOURS: i64 = 6;

/// How far (in page-cache bytes, over all of a [`FolderWriter`]'s threads) the dropping of
/// written export files' pages trails their writing (see [`crate::direct_io::DropBehind`]):
/// above the 2-2.4 GB a 24 GiB machine keeps dirty before writing back.
const DROP_BEHIND_LAG: u64 = 3 << 30;

/// Test hook for the crash and fault tests, compiled into debug builds only (the binary that
/// `cargo test` runs; a release build has the empty function below):
/// `INCENTIVES_TEST_KILL_AT=N` makes the process SIGKILL itself at the N-th checkpoint of
/// publishing (1 = after the first staged file); `INCENTIVES_TEST_KILL_AT=N:PID` stops process
/// PID instead (a storage server, with SIGTERM). The variable is read once per process.
#[cfg(debug_assertions)]
fn checkpoint(counter: &std::sync::atomic::AtomicU32) {
    static KILL_AT: std::sync::OnceLock<Option<(u32, String)>> = std::sync::OnceLock::new();
    let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let kill_at = KILL_AT.get_or_init(|| {
        let spec = std::env::var("INCENTIVES_TEST_KILL_AT").ok()?;
        let (at, pid) = spec.split_once(':').unwrap_or((&spec, ""));
        Some((at.parse().ok()?, pid.to_string()))
    });
    let Some((at, pid)) = kill_at else { return };
    if *at != n {
        return;
    }
    let me = std::process::id().to_string();
    let (signal, target) = if pid.is_empty() { ("-KILL", me.as_str()) } else { ("-TERM", pid.as_str()) };
    let _ = std::process::Command::new("kill").args([signal, target]).status();
    if pid.is_empty() {
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

/// Release builds carry no test hook.
#[cfg(not(debug_assertions))]
#[inline(always)]
fn checkpoint(_: &std::sync::atomic::AtomicU32) {}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// The lock of one run date, released when dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    store: Store,
    rel: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    started_at: String,
    expires_at: String,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "pid {} on {} since {} (lock expires {})",
            self.pid, self.host, self.started_at, self.expires_at
        )
    }

    /// A holder that can no longer finish: expired, or a process of this host that is gone.
    fn is_stale(&self) -> bool {
        let expired = chrono::DateTime::parse_from_rfc3339(&self.expires_at)
            .map(|t| t < chrono::Utc::now())
            .unwrap_or(true);
        let dead_here =
            self.host == hostname() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        expired || dead_here
    }
}

impl Lock {
    /// Takes the lock of `date` in `store`, or says who holds it.
    pub(crate) fn acquire(store: &Store, date: NaiveDate) -> Result<Lock> {
        let rel = format!("_locks/{date}.lock");
        let now = chrono::Utc::now();
        let holder = Holder {
            host: hostname(),
            pid: std::process::id(),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: (now + chrono::Duration::hours(LOCK_TTL_HOURS))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let body = serde_json::to_vec_pretty(&holder).expect("serialises");
        for _ in 0..3 {
            if store.create_new(&rel, &body)? {
                return Ok(Lock { store: store.clone(), rel });
            }
            let text = store.get_if_exists(&rel)?.map(|(b, _)| b).unwrap_or_default();
            match serde_json::from_slice::<Holder>(&text) {
                Ok(other) if !other.is_stale() => {
                    return Err(Error::Locked(format!(
                        "another run of {date} is in progress: {} ({})",
                        other.describe(),
                        store.display(&rel)
                    )));
                }
                Ok(other) => {
                    tracing::warn!("taking over the stale lock of {date} held by {}", other.describe())
                }
                Err(_) if text.is_empty() => {
                    // A holder between creating and writing its lock: give it a moment.
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if store.get_if_exists(&rel)?.is_some_and(|(b, _)| !b.is_empty()) {
                        continue;
                    }
                }
                Err(_) => tracing::warn!("replacing an unreadable lock {}", store.display(&rel)),
            }
            store.delete(&rel)?;
        }
        Err(Error::Locked(format!("could not take the lock of {date} ({})", store.display(&rel))))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.store.delete(&self.rel);
    }
}

/// The outputs of one run, staged until [`Publication::commit`].
#[derive(Debug)]
pub(crate) struct Publication {
    store: Store,
    date: NaiveDate,
    /// `_runs/<D>/<id>`, relative to the store.
    staging: String,
    /// Paths (final layout) of the files staged, in order.
    files: Vec<String>,
    /// The manifest as it was when the run started (for the conditional put).
    manifest_seen: Option<Version>,
    /// The staging prefix the previous manifest was published from (kept for its readers).
    previous: Option<String>,
    checkpoints: std::sync::Arc<std::sync::atomic::AtomicU32>,
    _lock: Lock,
}

/// A folder of small files to stage: `(path, rows, parts)` of each, paths in the final
/// layout, all under `path` (a partner's export folder).
pub(crate) struct Folder {
    pub(crate) path: String,
    pub(crate) files: Vec<(String, u64, FileParts)>,
}

/// A small file's bytes as parts written (and hashed) in order: an export's CSV header, then
/// runs of its rows that are slices of the reports' encoded chunks, shared rather than copied
/// (at 30 M lines the exports are about 13 GB).
pub(crate) type FileParts = Vec<bytes::Bytes>;

/// A small file a [`FolderWriter`] staged: its path in the final layout, the rows it was
/// given with, and its SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) path: String,
    pub(crate) rows: u64,
    pub(crate) sha256: String,
}

/// Threads of their own that make folders and write their files (hashing each), fed whole
/// folders through a short queue.
///
/// A run stages hundreds of thousands of partner folders of five small files each. Their
/// system calls (mostly file creation in the kernel) and the waits on a busy disk happen on
/// these threads, not on the compute pool's, so they overlap the rules and the encoding
/// instead of following them. Each folder is made and filled by one thread: its directory
/// block and its files' inodes change together, and threads meet only in the common parent.
pub(crate) struct FolderWriter {
    tx: Option<std::sync::mpsc::SyncSender<Vec<Folder>>>,
    threads: Vec<std::thread::JoinHandle<Result<Vec<Written>>>>,
    /// Time senders spent waiting for room in the queue (logged at the end: the writers
    /// holding up the rules).
    waited: std::time::Duration,
}

impl FolderWriter {
    /// Queues folders to write; waits while the queue is full. After a writer failed, its
    /// error.
    pub(crate) fn send(&mut self, folders: Vec<Folder>) -> Result<()> {
        if folders.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let sent = self.tx.as_ref().map(|tx| tx.send(folders).is_ok());
        self.waited += started.elapsed();
        if sent == Some(true) {
            return Ok(());
        }
        // Every writer has stopped: one of them failed.
        self.join().and_then(|_| Err(Error::internal("the folder writers stopped early")))
    }

    /// Waits for every queued folder to be written: the files written, or the first error.
    pub(crate) fn finish(mut self) -> Result<Vec<Written>> {
        let started = std::time::Instant::now();
        let written = self.join();
        tracing::debug!(
            queue_full_s = %format!("{:.1}", self.waited.as_secs_f64()),
            draining_s = %format!("{:.1}", started.elapsed().as_secs_f64()),
            "export folders written"
        );
        written
    }

    fn join(&mut self) -> Result<Vec<Written>> {
        drop(self.tx.take());
        let mut all = Vec::new();
        let mut first_error = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(written)) => all.extend(written),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(Error::internal("a folder writer panicked"));
                }
            }
        }
        first_error.map_or(Ok(all), Err)
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// Makes `folder` and writes its files: under `root` (a local staging folder) or as objects
/// under `staging` in `store`.
fn write_folder(
    folder: &Folder,
    root: Option<&std::path::Path>,
    store: &Store,
    staging: &str,
    checkpoints: &std::sync::atomic::AtomicU32,
    written: &mut Vec<Written>,
    behind: &mut crate::direct_io::DropBehind,
) -> Result<()> {
    if let Some(root) = root {
        let path = root.join(&folder.path);
        let made = match std::fs::create_dir(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            other => other,
        };
        made.map_err(Error::io("cannot create folder", path.display()))?;
    }
    for (rel, rows, parts) in &folder.files {
        match root {
            Some(root) => {
                let path = root.join(rel);
                let cached = crate::direct_io::write_parts(&path, parts)
                    .map_err(Error::io("writing", path.display()))?;
                behind.wrote(path, cached);
            }
            None => store.put(&format!("{staging}/{rel}"), &parts.concat())?,
        }
        checkpoint(checkpoints);
        written.push(Written {
            path: rel.clone(),
            rows: *rows,
            sha256: crate::feeds::validate::sha256_hex_of_parts(parts.iter().map(|p| &p[..])),
        });
    }
    Ok(())
}

/// Where a staged file's bytes go.
enum Sink {
    Local(crate::direct_io::OutputFile, std::path::PathBuf),
    Memory(Vec<u8>),
}

/// An output being written under the staging prefix; its SHA-256 is taken as it is written.
pub(crate) struct StagedFile {
    rel: String,
    staged: String,
    sink: Sink,
    hasher: sha2::Sha256,
}

impl std::io::Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Local(w, _) => w.write(buf)?,
            Sink::Memory(v) => v.write(buf)?,
        };
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Local(w, _) => w.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// A staged file read back (see [`Publication::open_staged`]).
pub(crate) enum Staged {
    File(std::fs::File),
    Bytes(bytes::Bytes),
}

impl Staged {
    /// Asks the kernel to start reading `range` of a local file into the page cache, so that
    /// a later read finds it there (advice: an error is ignored, as is an object read whole).
    pub(crate) fn will_need(&self, range: std::ops::Range<u64>) {
        if let Staged::File(f) = self
            && range.start < range.end
        {
            use std::os::fd::AsRawFd;
            let (Ok(at), Ok(len)) =
                (libc::off_t::try_from(range.start), libc::off_t::try_from(range.end - range.start))
            else {
                return;
            };
            // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open
            // for as long as `f` lives.
            #[allow(unsafe_code)]
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), at, len, libc::POSIX_FADV_WILLNEED)
            };
        }
    }

    /// Fills `buf` from the file's bytes at `offset`.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Staged::File(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            Staged::Bytes(b) => {
                let at = usize::try_from(offset).ok().filter(|&at| at + buf.len() <= b.len()).ok_or_else(
                    || {
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "range past the end of the staged object",
                        )
                    },
                )?;
                buf.copy_from_slice(&b[at..at + buf.len()]);
                Ok(())
            }
        }
    }
}

/// Where a date's manifest lives.
pub(crate) fn manifest_path(date: NaiveDate) -> String {
    format!("runs/{date}/manifest.json")
}

impl Publication {
    /// Takes the date's lock and opens a fresh staging prefix.
    pub(crate) fn begin(store: &Store, date: NaiveDate) -> Result<Publication> {
        let lock = Lock::acquire(store, date)?;
        let id = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"), std::process::id());
        let seen = store.get_if_exists(&manifest_path(date))?;
        let previous = seen.as_ref().and_then(|(bytes, _)| {
            serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|m| m["published_from"].as_str().map(str::to_string))
        });
        Ok(Publication {
            store: store.clone(),
            date,
            staging: format!("_runs/{date}/{id}"),
            files: Vec::new(),
            manifest_seen: seen.map(|(_, v)| v),
            previous,
            checkpoints: Default::default(),
            _lock: lock,
        })
    }

    /// The staging prefix (relative to the output location) this run publishes from.
    pub(crate) fn staging(&self) -> &str {
        &self.staging
    }

    /// Starts `threads` writers of whole folders of small files under the staging prefix
    /// (see [`FolderWriter`]).
    pub(crate) fn folder_writer(&self, threads: usize) -> FolderWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Folder>>(2 * threads.max(1));
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let root = self.store.local_root().map(|r| r.join(&self.staging));
        let lag = DROP_BEHIND_LAG / threads.max(1) as u64;
        let threads = (0..threads.max(1))
            .map(|_| {
                let (rx, root, store) = (rx.clone(), root.clone(), self.store.clone());
                let (staging, checkpoints) = (self.staging.clone(), self.checkpoints.clone());
                std::thread::spawn(move || -> Result<Vec<Written>> {
                    let mut written = Vec::new();
                    let mut behind = crate::direct_io::DropBehind::new(lag);
                    loop {
                        let batch = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(batch) = batch else { return Ok(written) };
                        for folder in batch {
                            write_folder(
                                &folder,
                                root.as_deref(),
                                &store,
                                &staging,
                                &checkpoints,
                                &mut written,
                                &mut behind,
                            )?;
                        }
                    }
                })
            })
            .collect();
        FolderWriter { tx: Some(tx), threads, waited: std::time::Duration::ZERO }
    }

    /// Records files a [`FolderWriter`] wrote as this run's.
    pub(crate) fn adopt(&mut self, written: &[Written]) {
        self.files.extend(written.iter().map(|w| w.path.clone()));
    }

    /// Opens one output (path in the final layout) under the staging prefix for writing in
    /// pieces: a local file is written in place (the staging folder is invisible until the
    /// commit); for an object store the bytes are gathered and put by [`Publication::finish`].
    pub(crate) fn create(&self, rel: &str) -> Result<StagedFile> {
        let staged = format!("{}/{rel}", self.staging);
        let sink = match self.store.local_root() {
            Some(root) => {
                let path = root.join(&staged);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(Error::io("cannot create folder", parent.display()))?;
                }
                Sink::Local(
                    crate::direct_io::OutputFile::create(&path)
                        .map_err(Error::io("creating", path.display()))?,
                    path,
                )
            }
            None => Sink::Memory(Vec::new()),
        };
        Ok(StagedFile { rel: rel.to_string(), staged, sink, hasher: <sha2::Sha256 as sha2::Digest>::new() })
    }

    /// A completed staged file opened for reading (exports are cut from a report's bytes): the
    /// local file, or the object read back whole.
    pub(crate) fn open_staged(&self, rel: &str) -> Result<Staged> {
        let staged = format!("{}/{rel}", self.staging);
        match self.store.local_root() {
            Some(root) => {
                let path = root.join(&staged);
                std::fs::File::open(&path)
                    .map(Staged::File)
                    .map_err(Error::io("reading back", path.display()))
            }
            None => self.store.get(&staged).map(Staged::Bytes),
        }
    }

    /// Completes a file opened with [`Publication::create`]; returns its SHA-256 (hex).
    pub(crate) fn finish(&mut self, file: StagedFile) -> Result<String> {
        let StagedFile { rel, staged, sink, hasher } = file;
        match sink {
            Sink::Local(w, path) => {
                w.finish().map_err(Error::io("writing", path.display()))?;
            }
            Sink::Memory(bytes) => self.store.put(&staged, &bytes)?,
        }
        self.files.push(rel);
        checkpoint(&self.checkpoints);
        Ok(crate::feeds::validate::hex(&sha2::Digest::finalize(hasher)))
    }

    /// Makes the staged run the published one.
    pub(crate) fn commit(mut self) -> Result<()> {
        match self.store.local_root().map(std::path::Path::to_path_buf) {
            Some(root) => self.commit_local(&root)?,
            None => self.commit_remote()?,
        }
        self.collect_garbage();
        Ok(())
    }

    /// Top-level entries of the layout this run writes (`earnings/run_date=D`, `runs/D`, ...).
    fn entries(&self) -> Vec<String> {
        let mut entries: Vec<String> =
            self.files.iter().map(|f| f.splitn(3, '/').take(2).collect::<Vec<_>>().join("/")).collect();
        entries.dedup();
        entries.sort();
        entries.dedup();
        entries
    }

    fn commit_local(&mut self, root: &std::path::Path) -> Result<()> {
        let io = |path: &std::path::Path, action| Error::io(action, path.display().to_string());
        let date = self.date.to_string();
        for entry in self.entries() {
            let link = root.join(&entry);
            let target = format!("{}_current/{date}/{entry}", "../".repeat(entry.matches('/').count()));
            ensure_link(root, &link, &target)?;
            checkpoint(&self.checkpoints);
        }
        let current_dir = root.join("_current");
        std::fs::create_dir_all(&current_dir).map_err(io(&current_dir, "cannot create folder"))?;
        let run_id = self.staging.rsplit('/').next().expect("non-empty").to_string();
        let tmp = current_dir.join(format!(".{date}.{run_id}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("../_runs/{date}/{run_id}"), &tmp)
            .map_err(io(&tmp, "cannot create the publishing link"))?;
        checkpoint(&self.checkpoints);
        let current = current_dir.join(&date);
        if let Ok(target) = std::fs::read_link(&current) {
            self.previous = target.file_name().map(|n| format!("_runs/{date}/{}", n.to_string_lossy()));
        }
        std::fs::rename(&tmp, &current).map_err(io(&current, "cannot publish"))?;
        checkpoint(&self.checkpoints);
        Ok(())
    }

    fn commit_remote(&mut self) -> Result<()> {
        let manifest = manifest_path(self.date);
        let new: std::collections::HashSet<&str> = self.files.iter().map(String::as_str).collect();
        // Copies are independent requests: run them in parallel.
        {
            use rayon::prelude::*;
            self.files.par_iter().filter(|f| **f != manifest).try_for_each(|f| {
                self.store.copy(&format!("{}/{f}", self.staging), f)?;
                checkpoint(&self.checkpoints);
                Ok::<(), Error>(())
            })?;
        }
        // Final keys of this date that the new run does not produce (a partner gone, ...).
        for entry in self.entries() {
            for old in self.store.list(&entry)? {
                if !new.contains(old.path.as_str()) {
                    self.store.delete(&old.path)?;
                }
            }
        }
        let bytes = self.store.get(&format!("{}/{manifest}", self.staging))?;
        if !self.store.put_if_unchanged(&manifest, &bytes, self.manifest_seen.as_ref())? {
            return Err(Error::Locked(format!(
                "{} changed while this run was writing: another run published {} meanwhile; nothing was overwritten",
                self.store.display(&manifest),
                self.date
            )));
        }
        checkpoint(&self.checkpoints);
        Ok(())
    }

    /// Removes the staging prefixes of the date other than this run's and the previous one.
    fn collect_garbage(&self) {
        let dir = format!("_runs/{}", self.date);
        if let Some(root) = self.store.local_root() {
            // Locally the runs are folders: look one level down, not at every file staged.
            let Ok(entries) = std::fs::read_dir(root.join(&dir)) else { return };
            for e in entries.flatten() {
                let run = format!("{dir}/{}", e.file_name().to_string_lossy());
                if run != self.staging && Some(&run) != self.previous.as_ref() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
            return;
        }
        let Ok(all) = self.store.list(&dir) else { return };
        for e in all {
            let run = e.path.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            if run != self.staging && Some(&run) != self.previous.as_ref() {
                let _ = self.store.delete(&e.path);
            }
        }
    }
}

/// Makes `link` a symbolic link to `target`, unless it already is one. A real folder found
/// there (outputs of a version before atomic publishing) is moved under `_runs/legacy/`.
fn ensure_link(root: &std::path::Path, link: &std::path::Path, target: &str) -> Result<()> {
    let io = |action| Error::io(action, link.display());
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(link).map(|t| t == std::path::Path::new(target)).unwrap_or(false) {
                return Ok(());
            }
            std::fs::remove_file(link).map_err(io("cannot replace link"))?;
        }
        Ok(_) => {
            let legacy =
                root.join("_runs/legacy").join(chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f").to_string());
            std::fs::create_dir_all(&legacy).map_err(io("cannot create folder"))?;
            let name = link.file_name().expect("a link has a name");
            std::fs::rename(link, legacy.join(name)).map_err(io("cannot move an old output folder aside"))?;
        }
        Err(_) => {}
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create folder"))?;
    }
    std::os::unix::fs::symlink(target, link).map_err(io("cannot create link"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(dir: &std::path::Path) -> Publication {
        let store = Store::create(dir.to_str().expect("utf-8 temp path")).unwrap();
        Publication::begin(&store, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()).unwrap()
    }

    fn folder(name: &str, files: &[&str]) -> Folder {
        let path = format!("exports/run_date=2026-09-01/{name}");
        // Each file in three parts, one of them empty, as exports come.
        let parts = |f: &str| {
            let text = format!("{name}/{f}").into_bytes();
            let (a, b) = text.split_at(3);
            vec![bytes::Bytes::copy_from_slice(a), bytes::Bytes::new(), bytes::Bytes::copy_from_slice(b)]
        };
        let files = files.iter().map(|f| (format!("{path}/{f}"), 1, parts(f))).collect();
        Folder { path, files }
    }

    #[test]
    fn folders_are_written_whole_by_the_writers_and_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = publication(dir.path());
        let mut w = p.folder_writer(2);
        let folders: Vec<Folder> =
            (0..300).map(|i| folder(&format!("partner_id=P{i:03}"), &["a.csv", "b.csv"])).collect();
        let expected: Vec<(String, Vec<u8>)> =
            folders.iter().flat_map(|f| f.files.iter().map(|(p, _, b)| (p.clone(), b.concat()))).collect();
        for batch in folders.chunks(7) {
            w.send(batch.iter().map(|f| Folder { path: f.path.clone(), files: f.files.clone() }).collect())
                .unwrap();
        }
        let mut written = w.finish().unwrap();
        written.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(written.len(), 600);
        let root = dir.path().join(p.staging());
        for (rel, bytes) in &expected {
            assert_eq!(&std::fs::read(root.join(rel)).unwrap(), bytes, "{rel}");
            let w = written.iter().find(|w| &w.path == rel).expect("reported");
            assert_eq!(w.sha256, crate::feeds::validate::sha256_hex(bytes));
        }
        p.adopt(&written);
        assert_eq!(p.files.len(), 600);
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_error_naming_it_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let p = publication(dir.path());
        let root = dir.path().join(p.staging());
        // A file where the second folder should be.
        std::fs::create_dir_all(root.join("exports/run_date=2026-09-01")).unwrap();
        std::fs::write(root.join("exports/run_date=2026-09-01/partner_id=B"), b"in the way").unwrap();
        let mut w = p.folder_writer(1);
        let mut err = None;
        // The writer stops at B; later sends (the queue full, or no writer left) or the
        // finish report the error.
        for name in ["partner_id=A", "partner_id=B"].into_iter().chain((0..100).map(|_| "partner_id=C")) {
            if let Err(e) = w.send(vec![folder(name, &["a.csv"])]) {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        }
        .to_string();
        assert!(err.contains("partner_id=B"), "{err}");
        assert!(root.join("exports/run_date=2026-09-01/partner_id=A/a.csv").is_file());
    }
}
