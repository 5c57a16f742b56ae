//! Atomic publishing of a run's outputs, and the guard against two runs of one date.
//!
//! A run writes every output under a staging folder `_runs/<D>/<staging-id>/`, in the final
//! layout. Readers reach a date's outputs through links that never change once made
//! (`earnings/run_date=D -> ../_current/D/earnings/run_date=D`, likewise for every report,
//! `exports/run_date=D` and `runs/D`), and `_current/D` is a single link to the run that is
//! published. Publishing is one `rename(2)` of that link, so a crash or kill at any moment leaves
//! either the previous good run or the new complete one visible, never a mix, and a first run
//! shows nothing until it is complete.
//!
//! The guard is a lock file `_locks/<D>.lock` created exclusively; it names its holder (host,
//! pid, start) and expires, and a lock left by a dead process on this host is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, Result};

/// How long a lock is honoured without its holder finishing.
const LOCK_TTL_HOURS: i64 = 6;

/// Test hook: `INCENTIVES_TEST_KILL_AT=N` makes the process SIGKILL itself at the N-th
/// checkpoint of publishing (1 = after the first staged file). Used by the crash tests.
fn checkpoint(counter: &mut u32) {
    *counter += 1;
    if let Ok(at) = std::env::var("INCENTIVES_TEST_KILL_AT")
        && at.parse() == Ok(*counter)
    {
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| Error::Write { path, reason: format!("{what}: {e}") }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// The lock of one run date, released when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
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
        let dead_here = self.host == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists();
        expired || dead_here
    }
}

impl Lock {
    /// Takes the lock of `date` under `root`, or says who holds it.
    pub fn acquire(root: &Path, date: NaiveDate) -> Result<Lock> {
        let dir = root.join("_locks");
        std::fs::create_dir_all(&dir).map_err(io(&dir, "cannot create the lock folder"))?;
        let path = dir.join(format!("{date}.lock"));
        let now = chrono::Utc::now();
        let holder = Holder {
            host: hostname(),
            pid: std::process::id(),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: (now + chrono::Duration::hours(LOCK_TTL_HOURS))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let body = serde_json::to_vec_pretty(&holder).expect("serialises");
                    f.write_all(&body).map_err(io(&path, "cannot write the lock"))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match serde_json::from_str::<Holder>(&text) {
                        Ok(other) if !other.is_stale() => {
                            return Err(Error::Locked(format!(
                                "another run of {date} is in progress: {} ({})",
                                other.describe(),
                                path.display()
                            )));
                        }
                        Ok(other) => {
                            tracing::warn!(
                                "taking over the stale lock of {date} held by {}",
                                other.describe()
                            );
                        }
                        Err(_) if text.is_empty() => {
                            // A holder killed between creating and writing the lock: give it a
                            // moment, then treat the empty lock as stale.
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            if std::fs::read_to_string(&path).map(|t| !t.is_empty()).unwrap_or(false) {
                                continue;
                            }
                        }
                        Err(_) => tracing::warn!("replacing an unreadable lock {}", path.display()),
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(io(&path, "cannot create the lock")(e)),
            }
        }
        Err(Error::Locked(format!("could not take the lock of {date} ({})", path.display())))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The outputs of one run, staged until [`Publication::commit`].
#[derive(Debug)]
pub struct Publication {
    root: PathBuf,
    date: NaiveDate,
    /// `_runs/<D>/<id>`, relative to the root.
    staging: String,
    /// Top-level entries of the layout this run writes (`earnings/run_date=D`, `runs/D`, ...).
    entries: Vec<String>,
    checkpoints: u32,
    _lock: Lock,
}

impl Publication {
    /// Takes the date's lock and opens a fresh staging folder under the local folder `root`.
    pub fn begin(root: &Path, date: NaiveDate) -> Result<Publication> {
        let lock = Lock::acquire(root, date)?;
        let id = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"), std::process::id());
        let staging = format!("_runs/{date}/{id}");
        let dir = root.join(&staging);
        std::fs::create_dir_all(&dir).map_err(io(&dir, "cannot create the staging folder"))?;
        Ok(Publication {
            root: root.to_path_buf(),
            date,
            staging,
            entries: Vec::new(),
            checkpoints: 0,
            _lock: lock,
        })
    }

    /// Writes one output (path in the final layout) into the staging folder.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(&self.staging).join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent, "cannot create folder"))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path, "cannot write"))?;
        let entry: String = rel.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
        checkpoint(&mut self.checkpoints);
        Ok(())
    }

    /// Makes the staged run the published one, in one rename, then removes older runs of the
    /// date (the previous one is kept for readers still holding it).
    pub fn commit(mut self) -> Result<()> {
        let date = self.date.to_string();
        // The fixed links readers use; made once per date and entry.
        for entry in &self.entries {
            let link = self.root.join(entry);
            let depth = entry.matches('/').count();
            let target = format!("{}_current/{date}/{entry}", "../".repeat(depth));
            ensure_link(&link, &target)?;
            checkpoint(&mut self.checkpoints);
        }
        let current_dir = self.root.join("_current");
        std::fs::create_dir_all(&current_dir).map_err(io(&current_dir, "cannot create folder"))?;
        let run_id = self.staging.rsplit('/').next().expect("non-empty").to_string();
        let tmp = current_dir.join(format!(".{date}.{run_id}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("../_runs/{date}/{run_id}"), &tmp)
            .map_err(io(&tmp, "cannot create the publishing link"))?;
        checkpoint(&mut self.checkpoints);
        let current = current_dir.join(&date);
        let previous = std::fs::read_link(&current).ok();
        std::fs::rename(&tmp, &current).map_err(io(&current, "cannot publish"))?;
        checkpoint(&mut self.checkpoints);
        self.collect_garbage(&run_id, previous.as_deref());
        Ok(())
    }

    fn collect_garbage(&self, keep: &str, previous: Option<&Path>) {
        let dir = self.root.join("_runs").join(self.date.to_string());
        let previous = previous.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != keep && Some(&name) != previous.as_ref() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Makes `link` a symbolic link to `target`, unless it already is one. A real folder found
/// there (outputs of a version before atomic publishing) is moved under `_runs/legacy/`.
fn ensure_link(link: &Path, target: &str) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(link).map(|t| t == Path::new(target)).unwrap_or(false) {
                return Ok(());
            }
            std::fs::remove_file(link).map_err(io(link, "cannot replace link"))?;
        }
        Ok(_) => {
            let root = link.ancestors().nth(2).unwrap_or(Path::new("."));
            let legacy =
                root.join("_runs/legacy").join(chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f").to_string());
            std::fs::create_dir_all(&legacy).map_err(io(&legacy, "cannot create folder"))?;
            let name = link.file_name().expect("a link has a name");
            std::fs::rename(link, legacy.join(name))
                .map_err(io(link, "cannot move an old output folder aside"))?;
        }
        Err(_) => {}
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent, "cannot create folder"))?;
    }
    std::os::unix::fs::symlink(target, link).map_err(io(link, "cannot create link"))
}
