//! Atomic publishing of a run's outputs, and the guard against two runs of one date.
//!
//! Every run first writes all its outputs under a staging prefix `_runs/<D>/<staging-id>/`, in
//! the final layout, the manifest last. Then the store makes the staged run the visible one
//! at once ([`crate::store::Backend::publish`]: a link renamed on a local disk, the manifest's
//! conditional put on an object store), and the staging prefixes of older runs of the date
//! are removed, but the one published before (its readers may still be reading it).
//!
//! The guard is `_locks/<D>.lock`, created only if absent; it names its holder and expires,
//! and a lock left by a dead process of this host, or expired, is taken over by a
//! compare-and-swap ([`Lock::acquire`]).

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::store::{ReadAt, Sink, SmallFiles, StagedRun, Store, Version};

/// How long a lock is honoured without its holder finishing.
const LOCK_TTL_HOURS: i64 = 6;

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

/// Test hook of the lock race test, in debug builds only: `INCENTIVES_TEST_TAKEOVER_PAUSE_MS=N`
/// waits N ms between reading a stale lock and replacing it, so that runs started together
/// all find the same stale lock.
#[cfg(debug_assertions)]
fn pause_before_takeover() {
    if let Some(ms) = std::env::var("INCENTIVES_TEST_TAKEOVER_PAUSE_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
fn pause_before_takeover() {}

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
    /// The lock file as this run wrote it: released only while it is still this.
    body: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    started_at: String,
    expires_at: String,
    /// Tells two holders apart that share a host, a pid and a second (containers).
    #[serde(default)]
    token: String,
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
    ///
    /// The lock file is created only where there is none. A stale one (its holder expired, or
    /// died on this host) is taken over by replacing it on condition that it is still the
    /// version read (a compare-and-swap: a conditional put on an object store, a compare and
    /// rename under an OS folder lock on a local disk), never by deleting it first: of several
    /// runs that found the same stale lock, exactly one replaces it, and the others then read
    /// the winner's lock and stop, naming it.
    pub(crate) fn acquire(store: &Store, date: NaiveDate) -> Result<Lock> {
        let rel = format!("_locks/{date}.lock");
        let now = chrono::Utc::now();
        let holder = Holder {
            host: hostname(),
            pid: std::process::id(),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: (now + chrono::Duration::hours(LOCK_TTL_HOURS))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            token: format!("{:x}", now.timestamp_nanos_opt().unwrap_or_default()),
        };
        let body = serde_json::to_vec_pretty(&holder).expect("serialises");
        let taken = |store: &Store| Lock { store: store.clone(), rel: rel.clone(), body: body.clone() };
        // A few rounds: the lock may be released or replaced between our steps.
        for _ in 0..5 {
            if store.create_new(&rel, &body)? {
                return Ok(taken(store));
            }
            let Some((text, seen)) = store.get_if_exists(&rel)? else { continue };
            let stale = match serde_json::from_slice::<Holder>(&text) {
                Ok(other) if !other.is_stale() => {
                    return Err(Error::Locked(format!(
                        "another run of {date} is in progress: {} ({})",
                        other.describe(),
                        store.display(&rel)
                    )));
                }
                Ok(other) => other.describe(),
                // Locks are written whole, so this one was damaged: nothing can finish under it.
                Err(_) => "an unreadable lock".to_string(),
            };
            pause_before_takeover();
            if store.replace_if(&rel, &body, &seen)? {
                tracing::warn!("took over the stale lock of {date} ({stale}): {}", store.display(&rel));
                return Ok(taken(store));
            }
        }
        Err(Error::Locked(format!(
            "could not take the lock of {date}: it kept changing ({})",
            store.display(&rel)
        )))
    }
}

impl Drop for Lock {
    /// Removes the lock only while it is still this run's: a run that outlived its lock's
    /// expiry and was taken over leaves the new holder's lock alone.
    fn drop(&mut self) {
        if let Ok(Some((text, seen))) = self.store.get_if_exists(&self.rel)
            && text.as_ref() == self.body.as_slice()
        {
            let _ = self.store.delete_if(&self.rel, &seen);
        }
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
    /// Whether [`Publication::commit`] has begun. From then on the staging may be what readers
    /// see (a commit whose outcome is unknown, such as a manifest put cut off after the store
    /// kept it), so dropping the publication leaves it to the next run's clean-up, which keeps
    /// it if it was published; before, dropping removes it.
    committing: bool,
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
/// (a large run's exports are gigabytes).
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
            queue_full_s = crate::logs::seconds(self.waited),
            draining_s = crate::logs::seconds(started.elapsed()),
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

/// Makes `folder` and writes its files under `staging`.
fn write_folder(
    folder: &Folder,
    files: &mut dyn SmallFiles,
    staging: &str,
    checkpoints: &std::sync::atomic::AtomicU32,
    written: &mut Vec<Written>,
) -> Result<()> {
    files.make_dir(&format!("{staging}/{}", folder.path))?;
    for (rel, rows, parts) in &folder.files {
        files.write(&format!("{staging}/{rel}"), parts)?;
        checkpoint(checkpoints);
        written.push(Written {
            path: rel.clone(),
            rows: *rows,
            sha256: crate::digest::sha256_hex_of_parts(parts.iter().map(|p| &p[..])),
        });
    }
    Ok(())
}

/// An output being written under the staging prefix; its SHA-256 is taken as it is written.
pub(crate) struct StagedFile {
    rel: String,
    sink: Box<dyn Sink>,
    hasher: sha2::Sha256,
}

impl std::io::Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.sink.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// Removes the staging of runs of `date` that did not publish (a full disk, a crash) since the
/// published run staged under `published` (or, when nothing of the date is published, every
/// staging of it): their staging ids sort after the published one's, as ids begin with the
/// run's start time, and under the date's lock no other run is writing. Left there, a failed run's files could keep
/// the disk full for every later run. The published run and the one it replaced stay for their
/// readers (see [`Publication::commit`]).
fn remove_failed_runs(store: &Store, date: NaiveDate, published: Option<&str>) -> Result<()> {
    let dir = format!("_runs/{date}");
    for name in store.children(&dir)? {
        let run = format!("{dir}/{name}");
        if published.is_none_or(|p| run.as_str() > p) {
            tracing::warn!(
                "removing the staging of a run of {date} that did not publish: {}",
                store.display(&run)
            );
            store.delete_all(&run)?;
        }
    }
    Ok(())
}

impl Drop for Publication {
    /// A run that stops before publishing (an error unwinds to here) removes what it staged.
    fn drop(&mut self) {
        if !self.committing {
            let _ = self.store.delete_all(&self.staging);
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
        /// The part of the manifest read here (its outputs are skipped, not built).
        #[derive(serde::Deserialize)]
        struct PublishedFrom {
            published_from: Option<String>,
        }
        let previous = seen.as_ref().and_then(|(bytes, _)| {
            serde_json::from_slice::<PublishedFrom>(bytes).ok().and_then(|m| m.published_from)
        });
        match (&seen, &previous) {
            // Nothing of the date is published: every staging of it is a failed run's.
            (None, _) => remove_failed_runs(store, date, None)?,
            (Some(_), Some(published)) => remove_failed_runs(store, date, Some(published))?,
            // A manifest that does not say where it was published from: touch nothing.
            (Some(_), None) => {}
        }
        Ok(Publication {
            store: store.clone(),
            date,
            staging: format!("_runs/{date}/{id}"),
            files: Vec::new(),
            manifest_seen: seen.map(|(_, v)| v),
            previous,
            checkpoints: Default::default(),
            committing: false,
            _lock: lock,
        })
    }

    /// The staging prefix (relative to the output location) this run publishes from.
    pub(crate) fn staging(&self) -> &str {
        &self.staging
    }

    /// Starts `threads` writers of whole folders of small files under the staging prefix
    /// (see [`FolderWriter`]).
    pub(crate) fn folder_writer(&self, threads: usize, progress: crate::progress::Progress) -> FolderWriter {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Folder>>(2 * threads);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = (0..threads)
            .map(|_| {
                let (rx, mut files) = (rx.clone(), self.store.small_files(threads));
                let (staging, checkpoints) = (self.staging.clone(), self.checkpoints.clone());
                let progress = progress.clone();
                std::thread::spawn(move || -> Result<Vec<Written>> {
                    let mut written = Vec::new();
                    loop {
                        let batch = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(batch) = batch else { return Ok(written) };
                        for folder in batch {
                            write_folder(&folder, &mut *files, &staging, &checkpoints, &mut written)?;
                            progress.folder_written();
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
    /// pieces (see [`Store::create_file`]).
    pub(crate) fn create(&self, rel: &str) -> Result<StagedFile> {
        let sink = self.store.create_file(&format!("{}/{rel}", self.staging))?;
        Ok(StagedFile { rel: rel.to_string(), sink, hasher: <sha2::Sha256 as sha2::Digest>::new() })
    }

    /// A completed staged file opened for reading (exports are cut from a report's bytes).
    pub(crate) fn open_staged(&self, rel: &str) -> Result<ReadAt> {
        self.store.open_at(&format!("{}/{rel}", self.staging))
    }

    /// Completes a file opened with [`Publication::create`]; returns its SHA-256 (hex).
    pub(crate) fn finish(&mut self, file: StagedFile) -> Result<String> {
        let StagedFile { rel, sink, hasher } = file;
        sink.finish()?;
        self.files.push(rel);
        checkpoint(&self.checkpoints);
        Ok(crate::digest::hex(&sha2::Digest::finalize(hasher)))
    }

    /// Makes the staged run the published one.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.committing = true;
        let (date, entries, manifest) = (self.date.to_string(), self.entries(), manifest_path(self.date));
        let run = StagedRun {
            date: &date,
            staging: &self.staging,
            files: &self.files,
            entries: &entries,
            manifest: &manifest,
            manifest_seen: self.manifest_seen.as_ref(),
        };
        let checkpoints = self.checkpoints.clone();
        if let Some(previous) = self.store.publish(&run, &|| checkpoint(&checkpoints))? {
            self.previous = Some(previous);
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

    /// Removes the staging prefixes of the date other than this run's and the previous one.
    fn collect_garbage(&self) {
        let dir = format!("_runs/{}", self.date);
        let Ok(runs) = self.store.children(&dir) else { return };
        for name in runs {
            let run = format!("{dir}/{name}");
            if run != self.staging && Some(&run) != self.previous.as_ref() {
                let _ = self.store.delete_all(&run);
            }
        }
    }
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
        let mut w = p.folder_writer(2, crate::progress::Progress::hidden());
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
            assert_eq!(w.sha256, crate::digest::sha256_hex(bytes));
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
        let mut w = p.folder_writer(1, crate::progress::Progress::hidden());
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

    #[test]
    fn a_run_that_does_not_publish_leaves_no_staging_and_the_next_removes_a_crashed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("_runs/2026-09-01");
        let p = publication(dir.path());
        let mut f = p.create("earnings/run_date=2026-09-01/earnings.csv").unwrap();
        std::io::Write::write_all(&mut f, b"a\n").unwrap();
        drop(f);
        assert!(dir.path().join(p.staging()).is_dir());
        drop(p); // an error unwinding: nothing published
        assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0, "the failed run's staging is gone");

        // Two published runs, then a run killed before publishing (its staging is left).
        for _ in 0..2 {
            let mut p = publication(dir.path());
            let mut f = p.create("runs/2026-09-01/manifest.json").unwrap();
            let manifest = serde_json::json!({ "published_from": p.staging() });
            std::io::Write::write_all(&mut f, manifest.to_string().as_bytes()).unwrap();
            p.finish(f).unwrap();
            p.commit().unwrap();
        }
        let mut published: Vec<String> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        published.sort();
        assert_eq!(published.len(), 2, "the published run and the one it replaced");
        let crashed = runs.join("99991231T000000.000000Z-1");
        std::fs::create_dir_all(crashed.join("earnings")).unwrap();
        std::fs::write(crashed.join("earnings/x.csv"), b"partial").unwrap();
        let p = publication(dir.path());
        assert!(!crashed.exists(), "the crashed run's staging is removed under the lock");
        for name in &published {
            assert!(runs.join(name).is_dir(), "{name} stays for its readers");
        }
        drop(p);

        // A manifest that does not name its staging: nothing is removed.
        std::fs::create_dir_all(&crashed).unwrap();
        let live = dir.path().join("_current/2026-09-01/runs/2026-09-01/manifest.json");
        std::fs::write(&live, b"{}").unwrap();
        drop(publication(dir.path()));
        assert!(crashed.is_dir(), "kept when the published run cannot be told");
    }
}
