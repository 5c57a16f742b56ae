//! A folder on the local disk, through `std::fs`: file names kept exactly as they are on disk,
//! outputs written around the page cache ([`super::direct_io`]), and a staged run published by
//! renaming one link.
//!
//! Publishing: readers reach a date's outputs through links made once per date
//! (`earnings/run_date=D -> ../_current/D/earnings/run_date=D`, likewise for every report,
//! `exports/run_date=D` and `runs/D`), and `_current/D` is a single link to the published
//! staging folder. Publishing is one `rename(2)` of that link: a crash or kill at any moment
//! leaves either the previous good run or the new complete one visible, never a mix. The run's
//! files and folders are made durable before the rename, and the rename before the run ends,
//! so that the same holds after a power loss.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::direct_io::{self, DropBehind, OutputFile};
use super::{Backend, Entry, PutMode, ReadAt, SmallFiles, StagedRun, Version};
use crate::error::{Error, Result};

/// How far (in page-cache bytes, over all the threads writing small files side by side) the
/// dropping of written files' pages trails their writing (see [`DropBehind`]): above the
/// 2-2.4 GB a 24 GiB machine keeps dirty before writing back.
const DROP_BEHIND_LAG: u64 = 3 << 30;

/// A folder on the local disk.
pub(super) struct Local {
    root: PathBuf,
    display: String,
}

impl Local {
    /// The folder `path` (given as `uri`), made when `create` and missing.
    pub(super) fn open(uri: &str, path: &str, create: bool, display: &str) -> Result<Local> {
        let dir = Path::new(path);
        if create {
            std::fs::create_dir_all(dir).map_err(Error::io("cannot create folder", format!("'{path}'")))?;
        } else if !dir.is_dir() {
            // An unusable location is the operator's to fix, like a bad argument.
            let what = if dir.exists() { "not a folder" } else { "no such folder" };
            return Err(Error::config(format!("location '{uri}': {what}")));
        }
        Ok(Local { root: dir.to_path_buf(), display: display.to_string() })
    }

    fn display(&self, rel: &str) -> String {
        super::display(&self.display, rel)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The version of `rel` now, `None` when there is no such file.
    fn version_of(&self, rel: &str) -> Result<Option<Version>> {
        Ok(self.get_if_exists(rel)?.map(|(_, v)| v))
    }

    /// An exclusive OS lock (`flock(2)`) on the folder of `rel`, held until dropped: conditional
    /// updates and deletes of the files in one folder compare and change under it, one at a
    /// time, across processes. Creating needs no guard (a hard link is made only where no file
    /// is, and only a conditional delete, under the guard, removes a file that was seen).
    fn guard(&self, rel: &str) -> Result<std::fs::File> {
        let path = self.path(rel);
        let dir = path.parent().unwrap_or(&self.root);
        let folder = std::fs::File::open(dir).map_err(Error::io("cannot open folder", dir.display()))?;
        folder.lock().map_err(Error::io("cannot lock folder", dir.display()))?;
        Ok(folder)
    }
}

/// A local file's version: the SHA-256 of its bytes (local files carry no version of their own;
/// an update that compares contents is as exact as the object stores' ETags).
fn content_version(bytes: &[u8]) -> Version {
    Version(Some(object_store::UpdateVersion {
        e_tag: Some(crate::digest::sha256_hex(bytes)),
        version: None,
    }))
}

/// A temporary name beside `path`, unique to this process and call.
fn temporary_beside(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Lists the files below `dir` (following links to folders), as paths relative to `root`.
///
/// An entry that is neither a readable file nor a folder (a link to nothing, a loop of links,
/// a name that is not UTF-8, a folder that cannot be listed, a socket or a pipe) does not fail
/// the listing: it is listed with its problem, for the caller to report by name (see
/// [`Entry::problem`]). Only the listed folder itself failing to open is an error.
fn list_local(
    root: &Path,
    dir: &Path,
    folders: &mut Vec<(u64, u64)>,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && folders.is_empty() => return Ok(()),
        Err(e) if folders.is_empty() => return Err(e),
        Err(e) => {
            out.push(Entry::unusable(root, dir, format!("a folder that cannot be listed: {e}")));
            return Ok(());
        }
    };
    let here = std::fs::metadata(dir)?;
    folders.push((here.dev(), here.ino()));
    for e in entries {
        let path = e?.path();
        let problem = match std::fs::metadata(&path) {
            _ if path.file_name().and_then(|n| n.to_str()).is_none() => {
                "its name is not UTF-8 (shown here with \u{FFFD} for the bytes that are not)".to_string()
            }
            Ok(meta) if meta.is_dir() && folders.contains(&(meta.dev(), meta.ino())) => {
                "a link back to a folder that holds it (a loop)".to_string()
            }
            Ok(meta) if meta.is_dir() => {
                list_local(root, &path, folders, out)?;
                continue;
            }
            Ok(meta) if meta.is_file() => {
                out.push(Entry { path: relative(root, &path), size: meta.len(), problem: None });
                continue;
            }
            Ok(_) => "not a regular file or folder".to_string(),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => "a loop of symbolic links".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::read_link(&path) {
                Ok(target) => format!("a symbolic link to '{}', which does not exist", target.display()),
                Err(_) => format!("cannot read: {e}"),
            },
            Err(e) => format!("cannot read: {e}"),
        };
        out.push(Entry::unusable(root, &path, problem));
    }
    folders.pop();
    Ok(())
}

/// `path` relative to `root`, `/`-separated (a name that is not UTF-8 shown lossily).
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).expect("below the root");
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

impl Entry {
    fn unusable(root: &Path, path: &Path, problem: String) -> Entry {
        Entry { path: relative(root, path), size: 0, problem: Some(problem) }
    }
}

impl Backend for Local {
    fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        list_local(&self.root, &self.path(rel), &mut Vec::new(), &mut out)
            .map_err(Error::io("listing", self.display(rel)))?;
        Ok(out)
    }

    fn children(&self, rel: &str) -> Result<Vec<String>> {
        match std::fs::read_dir(self.path(rel)) {
            Ok(entries) => Ok(entries
                .flatten()
                // Links to folders count (a date's `runs/D` is one).
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("listing", self.display(rel))(e)),
        }
    }

    fn get(&self, rel: &str) -> Result<Bytes> {
        std::fs::read(self.path(rel))
            .map(Bytes::from)
            .map_err(|e| Error::unreadable_from(self.display(rel), e))
    }

    fn get_if_exists(&self, rel: &str) -> Result<Option<(Bytes, Version)>> {
        match std::fs::read(self.path(rel)) {
            Ok(b) => {
                let version = content_version(&b);
                Ok(Some((Bytes::from(b), version)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", self.display(rel))(e)),
        }
    }

    fn put(&self, rel: &str, bytes: &[u8], mode: PutMode) -> Result<bool> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io("cannot create the folder of", self.display(rel)))?;
        }
        // Every put writes a temporary file first, so that the file readers find is whole.
        let tmp = temporary_beside(&path);
        std::fs::write(&tmp, bytes).map_err(Error::io("writing", tmp.display()))?;
        let move_into_place =
            || std::fs::rename(&tmp, &path).map_err(Error::io("cannot move into place", self.display(rel)));
        let attempt = || match mode {
            PutMode::Overwrite => move_into_place().map(|_| true),
            // A hard link is made only where no file is.
            PutMode::Create => match std::fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(Error::io("creating", self.display(rel))(e)),
            },
            PutMode::Update(seen) => {
                let _guard = self.guard(rel)?;
                if self.version_of(rel)?.as_ref() != Some(seen) {
                    return Ok(false);
                }
                move_into_place().map(|_| true)
            }
        };
        let done = attempt();
        // Left only by a create or a refused update (a rename moved it).
        let _ = std::fs::remove_file(&tmp);
        done
    }

    fn delete_if(&self, rel: &str, seen: &Version) -> Result<bool> {
        let _guard = self.guard(rel)?;
        if self.version_of(rel)?.as_ref() != Some(seen) {
            return Ok(false);
        }
        self.delete(rel).map(|_| true)
    }

    fn copy(&self, from: &str, to: &str) -> Result<()> {
        let bytes = std::fs::read(self.path(from)).map_err(Error::io("reading", self.display(from)))?;
        self.put(to, &bytes, PutMode::Overwrite).map(|_| ())
    }

    fn delete(&self, rel: &str) -> Result<()> {
        match std::fs::remove_file(self.path(rel)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("deleting", self.display(rel))(e))
            }
            _ => Ok(()),
        }
    }

    fn delete_all(&self, rel: &str) -> Result<()> {
        match std::fs::remove_dir_all(self.path(rel)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("deleting", self.display(rel))(e))
            }
            _ => Ok(()),
        }
    }

    fn reader(&self, rel: &str) -> Result<Box<dyn Read + Send>> {
        let file =
            std::fs::File::open(self.path(rel)).map_err(|e| Error::unreadable_from(self.display(rel), e))?;
        Ok(Box::new(file))
    }

    fn read_whole(&self, rel: &str) -> Result<Bytes> {
        direct_io::read_whole(&self.path(rel)).map_err(|e| Error::unreadable_from(self.display(rel), e))
    }

    fn create(&self, rel: &str) -> Result<Box<dyn super::Sink>> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("cannot create folder", parent.display()))?;
        }
        let file = OutputFile::create(&path).map_err(Error::io("creating", path.display()))?;
        Ok(Box::new(LocalSink { file, path }))
    }

    fn open_at(&self, rel: &str) -> Result<ReadAt> {
        let path = self.path(rel);
        std::fs::File::open(&path).map(ReadAt::File).map_err(Error::io("reading back", path.display()))
    }

    fn small_files(&self, writers: usize) -> Box<dyn SmallFiles> {
        let lag = DROP_BEHIND_LAG / writers.max(1) as u64;
        Box::new(LocalSmallFiles { root: self.root.clone(), behind: DropBehind::new(lag) })
    }

    fn publish(&self, run: &StagedRun, checkpoint: &(dyn Fn() + Sync)) -> Result<Option<String>> {
        let (root, date) = (&self.root, run.date);
        let io = |path: &Path, action| Error::io(action, path.display().to_string());
        for entry in run.entries {
            let link = root.join(entry);
            let target = format!("{}_current/{date}/{entry}", "../".repeat(entry.matches('/').count()));
            ensure_link(root, &link, &target)?;
            checkpoint();
        }
        let current_dir = root.join("_current");
        std::fs::create_dir_all(&current_dir).map_err(io(&current_dir, "cannot create folder"))?;
        let run_id = run.staging.rsplit('/').next().expect("non-empty").to_string();
        let tmp = current_dir.join(format!(".{date}.{run_id}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("../_runs/{date}/{run_id}"), &tmp)
            .map_err(io(&tmp, "cannot create the publishing link"))?;
        checkpoint();
        let current = current_dir.join(date);
        let previous = std::fs::read_link(&current)
            .ok()
            .and_then(|target| target.file_name().map(|n| format!("_runs/{date}/{}", n.to_string_lossy())));
        // Everything the new run is (its files, their folders, the date's links and the new
        // link) is on the disk before the link moves, so that after a power loss the link
        // never names a run whose files were still only in memory.
        sync_file_systems(&[&root.join(run.staging), &current_dir])?;
        std::fs::rename(&tmp, &current).map_err(io(&current, "cannot publish"))?;
        // And the move itself, before the run says it published.
        sync_folder(&current_dir)?;
        checkpoint();
        Ok(previous)
    }
}

/// A local file being written (see [`OutputFile`]).
struct LocalSink {
    file: OutputFile,
    path: PathBuf,
}

impl Write for LocalSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl super::Sink for LocalSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let LocalSink { file, path } = *self;
        file.finish().map_err(Error::io("writing", path.display()))
    }
}

/// Small files written under a local folder, their page-cache pages dropped behind.
struct LocalSmallFiles {
    root: PathBuf,
    behind: DropBehind,
}

impl SmallFiles for LocalSmallFiles {
    fn make_dir(&mut self, rel: &str) -> Result<()> {
        let path = self.root.join(rel);
        let made = match std::fs::create_dir(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            other => other,
        };
        made.map_err(Error::io("cannot create folder", path.display()))
    }

    fn write(&mut self, rel: &str, parts: &[Bytes]) -> Result<()> {
        let path = self.root.join(rel);
        let cached = direct_io::write_parts(&path, parts).map_err(Error::io("writing", path.display()))?;
        self.behind.wrote(path, cached);
        Ok(())
    }
}

/// Makes everything written to the file systems holding `paths` durable: one `syncfs(2)` per
/// file system (all of a run's files at once, instead of an `fsync` for each of its many
/// thousands), which returns when their data and metadata are on the disk.
fn sync_file_systems(paths: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = Vec::new();
    for path in paths {
        let io = |action| Error::io(action, path.display());
        let folder = std::fs::File::open(path).map_err(io("cannot open folder"))?;
        let device = folder.metadata().map_err(io("cannot read"))?.dev();
        if seen.contains(&device) {
            continue;
        }
        seen.push(device);
        sync_file_system(&folder).map_err(io("cannot make durable"))?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn sync_file_system(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads its descriptor argument, open for as long as `file` lives.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: sync takes no argument.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync()
    };
    Ok(())
}

/// Makes the entries of `folder` (a rename into it) durable.
fn sync_folder(folder: &Path) -> Result<()> {
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("cannot make durable", folder.display()))
}

/// Makes `link` a symbolic link to `target`, unless it already is one. A real folder found
/// there (outputs of a version before atomic publishing) is moved under `_runs/legacy/`.
fn ensure_link(root: &Path, link: &Path, target: &str) -> Result<()> {
    let io = |action| Error::io(action, link.display());
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(link).map(|t| t == Path::new(target)).unwrap_or(false) {
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
