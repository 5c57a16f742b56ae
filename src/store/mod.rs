//! Storage: the only module that knows about locations. A location given on the command line
//! becomes a [`Store`], one small blocking API over a [`Backend`], so that feeds, reports and
//! publishing never know whether they read a laptop folder or a bucket:
//!
//! - a plain path or `file:///path`: the local disk ([`local`]), through `std::fs` so that
//!   file names are kept exactly as they are on disk, with outputs written around the page
//!   cache ([`direct_io`]);
//! - `s3://bucket/prefix`, `az://container/prefix`, `abfs[s]://container@account.dfs.core.windows.net/prefix`,
//!   `gs://bucket/prefix`: `object_store` ([`object`]), configured from the standard `AWS_*`,
//!   `AZURE_STORAGE_*`/`AZURE_*` and `GOOGLE_*` environment variables, with retries and
//!   exponential backoff on transient errors and multipart uploads for large files.
//!
//! Each backend also knows how a staged run becomes the visible one ([`Backend::publish`]):
//! the one thing the two kinds of storage do differently (a link renamed on a local disk,
//! copies and a conditional put of the manifest on an object store).

mod direct_io;
mod local;
mod object;

use std::io::{Read, Write};

use bytes::Bytes;

use crate::error::{Error, Result};

/// One file found under a store's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the store's prefix, `/`-separated (e.g. `transactions/2026-09-01.csv`).
    pub path: String,
    pub size: u64,
    /// Why the entry cannot be read, when it cannot (local disks: a link to nothing, a loop of
    /// links, a name that is not UTF-8); it is still listed, so that it is reported by name.
    pub problem: Option<String>,
}

/// The version of a file as seen by [`Store::get_if_exists`], for a conditional update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(Option<object_store::UpdateVersion>);

/// How [`Backend::put`] treats a file that already exists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PutMode<'v> {
    /// Replace it.
    Overwrite,
    /// Write nothing (`Ok(false)`).
    Create,
    /// Replace it only if it is still at this version (`Ok(false)` otherwise).
    Update(&'v Version),
}

/// A file being written in pieces; readers see nothing until [`Sink::finish`] (or, locally,
/// until the folder it is staged in is published).
pub(crate) trait Sink: Write + Send {
    /// Completes the file.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Writes whole small files, one thread's share of them (see `publish::FolderWriter`).
pub(crate) trait SmallFiles: Send {
    /// Makes a folder (and its parents) for files to come; nothing where folders are implied.
    fn make_dir(&mut self, rel: &str) -> Result<()>;
    /// Writes a file whose bytes are `parts`, in order.
    fn write(&mut self, rel: &str, parts: &[Bytes]) -> Result<()>;
}

/// A staged run, as [`Backend::publish`] makes it the visible one.
pub(crate) struct StagedRun<'a> {
    /// The run date.
    pub(crate) date: &'a str,
    /// The staging prefix: `_runs/<date>/<id>`.
    pub(crate) staging: &'a str,
    /// Every file staged, by its path in the final layout (the manifest among them).
    pub(crate) files: &'a [String],
    /// The top-level entries of the final layout the files are under (`earnings/run_date=D`,
    /// `runs/D`, ...), sorted.
    pub(crate) entries: &'a [String],
    /// The manifest's path in the final layout.
    pub(crate) manifest: &'a str,
    /// The manifest as the run saw it when it started (`None`: there was none).
    pub(crate) manifest_seen: Option<&'a Version>,
}

/// What a kind of storage does; [`Store`] is the handle the rest of the crate holds.
pub(crate) trait Backend: Send + Sync {
    /// Every file under `rel` (recursively), in any order.
    fn list(&self, rel: &str) -> Result<Vec<Entry>>;
    /// The names right below `rel` that hold files (folders, or common prefixes).
    fn children(&self, rel: &str) -> Result<Vec<String>>;
    fn get(&self, rel: &str) -> Result<Bytes>;
    fn get_if_exists(&self, rel: &str) -> Result<Option<(Bytes, Version)>>;
    /// Writes `bytes` to `rel`; readers see the old or the new content, never a part.
    /// `Ok(false)` when the mode refused.
    fn put(&self, rel: &str, bytes: &[u8], mode: PutMode) -> Result<bool>;
    fn copy(&self, from: &str, to: &str) -> Result<()>;
    /// Deletes `rel`; a missing file is not an error.
    fn delete(&self, rel: &str) -> Result<()>;
    /// Deletes `rel` only if it is still at version `seen`; `Ok(false)` otherwise.
    fn delete_if(&self, rel: &str, seen: &Version) -> Result<bool>;
    /// Deletes everything under `rel`.
    fn delete_all(&self, rel: &str) -> Result<()>;
    /// `rel` as a stream, read once front to back.
    fn reader(&self, rel: &str) -> Result<Box<dyn Read + Send>>;
    /// `rel` read whole, once.
    fn read_whole(&self, rel: &str) -> Result<Bytes>;
    /// A new file at `rel`, written in pieces.
    fn create(&self, rel: &str) -> Result<Box<dyn Sink>>;
    /// A complete file opened for reads at any offset.
    fn open_at(&self, rel: &str) -> Result<ReadAt>;
    /// A writer of small files for one of `writers` threads writing side by side.
    fn small_files(&self, writers: usize) -> Box<dyn SmallFiles>;
    /// Makes the run staged under `run.staging` the visible one; `checkpoint` is called after
    /// each step (the crash tests stop the process there). Returns the staging prefix of the
    /// run it replaced, when the backend can tell.
    fn publish(&self, run: &StagedRun, checkpoint: &(dyn Fn() + Sync)) -> Result<Option<String>>;
}

/// A location (folder or bucket prefix) that files are read from or written to.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<dyn Backend>,
    /// Human-readable form of the location, for messages.
    display: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.display)
    }
}

/// Where `rel` is under `base`, for messages.
fn display(base: &str, rel: &str) -> String {
    if rel.is_empty() { base.to_string() } else { format!("{base}/{rel}") }
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
        if uri.trim().is_empty() {
            return Err(Error::config("an empty location: give a folder or a URL"));
        }
        let local = match uri.split_once("://") {
            Some(("file", rest)) => percent_decode(rest),
            Some((scheme, rest)) => {
                let display = uri.trim_end_matches('/').to_string();
                let backend = object::Remote::open(uri, scheme, rest, &display)?;
                return Ok(Store { backend: std::sync::Arc::new(backend), display });
            }
            None => uri.to_string(),
        };
        let display = local.trim_end_matches('/').to_string();
        let backend = local::Local::open(uri, &local, create, &display)?;
        Ok(Store { backend: std::sync::Arc::new(backend), display })
    }

    /// Where `rel` is, for messages.
    pub(crate) fn display(&self, rel: &str) -> String {
        display(&self.display, rel)
    }

    /// Every file under `rel` (recursively), sorted by path.
    pub(crate) fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let mut out = self.backend.list(rel)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The names right below `rel` that hold files, sorted.
    pub(crate) fn children(&self, rel: &str) -> Result<Vec<String>> {
        let mut out = self.backend.children(rel)?;
        out.sort();
        Ok(out)
    }

    /// The whole content of `rel`.
    pub(crate) fn get(&self, rel: &str) -> Result<Bytes> {
        self.backend.get(rel)
    }

    /// The content of `rel`, or `None` when there is no such file.
    pub(crate) fn get_if_exists(&self, rel: &str) -> Result<Option<(Bytes, Version)>> {
        self.backend.get_if_exists(rel)
    }

    /// Writes `bytes` to `rel`, replacing it; readers see the old or the new content, never a
    /// part (a local temporary file renamed into place; an object store's atomic put).
    pub(crate) fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.backend.put(rel, bytes, PutMode::Overwrite).map(|_| ())
    }

    /// Creates `rel` only if it does not exist; `Ok(false)` when it already does.
    pub(crate) fn create_new(&self, rel: &str, bytes: &[u8]) -> Result<bool> {
        self.backend.put(rel, bytes, PutMode::Create)
    }

    /// Replaces `rel` only if it is still at version `seen` (compare and swap: of several
    /// writers that saw the same version, one wins); `Ok(false)` when it changed or went away.
    pub(crate) fn replace_if(&self, rel: &str, bytes: &[u8], seen: &Version) -> Result<bool> {
        self.backend.put(rel, bytes, PutMode::Update(seen))
    }

    /// Deletes `rel` only if it is still at version `seen`; `Ok(false)` otherwise.
    pub(crate) fn delete_if(&self, rel: &str, seen: &Version) -> Result<bool> {
        self.backend.delete_if(rel, seen)
    }

    /// Deletes everything under `rel`.
    pub(crate) fn delete_all(&self, rel: &str) -> Result<()> {
        self.backend.delete_all(rel)
    }

    /// `rel` as a stream of bytes (CSV, gzip): read once, front to back, never buffered whole.
    pub(crate) fn reader(&self, rel: &str) -> Result<Box<dyn Read + Send>> {
        self.backend.reader(rel)
    }

    /// `rel` read whole, once (parquet, whose footer comes last): a local file around the page
    /// cache where the file system allows it, an object in one request.
    pub(crate) fn read_whole(&self, rel: &str) -> Result<Bytes> {
        self.backend.read_whole(rel)
    }

    /// A new file at `rel`, written in pieces: a local file written in place (around the page
    /// cache where the file system allows it); for an object store the bytes are gathered and
    /// put when it is finished.
    pub(crate) fn create_file(&self, rel: &str) -> Result<Box<dyn Sink>> {
        self.backend.create(rel)
    }

    /// A complete file opened for reads at any offset: the local file, or the object read whole.
    pub(crate) fn open_at(&self, rel: &str) -> Result<ReadAt> {
        self.backend.open_at(rel)
    }

    /// A writer of small files for one of `writers` threads writing side by side.
    pub(crate) fn small_files(&self, writers: usize) -> Box<dyn SmallFiles> {
        self.backend.small_files(writers)
    }

    /// Makes a staged run the visible one (see [`Backend::publish`]).
    pub(crate) fn publish(&self, run: &StagedRun, checkpoint: &(dyn Fn() + Sync)) -> Result<Option<String>> {
        self.backend.publish(run, checkpoint)
    }
}

/// A complete file opened for reads at any offset (see [`Store::open_at`]).
pub(crate) enum ReadAt {
    File(std::fs::File),
    Bytes(Bytes),
}

impl ReadAt {
    /// Asks the kernel to start reading `range` of a local file into the page cache, so that
    /// a later read finds it there (advice: an error is ignored, as is an object read whole).
    pub(crate) fn will_need(&self, range: std::ops::Range<u64>) {
        if let ReadAt::File(f) = self
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
            ReadAt::File(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            ReadAt::Bytes(b) => {
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
        let (_, created) = store.get_if_exists("a/new.csv").unwrap().expect("created whole");
        assert!(!store.delete_if("a/new.csv", &seen_of(&store, "a/b.csv")).unwrap(), "another version");
        assert!(store.delete_if("a/new.csv", &created).unwrap());
        assert!(!store.delete_if("a/new.csv", &created).unwrap(), "gone");
        assert_eq!(store.get_if_exists("a/new.csv").unwrap(), None);
        assert_eq!(store.children("a").unwrap(), ["c"], "folders right below");
        store.backend.copy("a/b.csv", "z/b.csv").unwrap();
        assert_eq!(store.get("z/b.csv").unwrap().as_ref(), b"x,y\n");
        store.delete_all("a").unwrap();
        assert!(store.list("a").unwrap().is_empty());
        let seen = seen_of(&store, "z/b.csv");
        assert!(store.replace_if("z/b.csv", b"new", &seen).unwrap());
        assert_eq!(store.get("z/b.csv").unwrap().as_ref(), b"new");
        assert!(!store.replace_if("z/b.csv", b"newer", &seen).unwrap(), "changed since seen");
        assert_eq!(store.get("z/b.csv").unwrap().as_ref(), b"new");
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("z")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["b.csv"], "no temporary file is left");
    }

    fn seen_of(store: &Store, rel: &str) -> Version {
        store.get_if_exists(rel).unwrap().expect("there").1
    }

    #[test]
    fn of_many_threads_replacing_the_version_they_saw_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        for round in 0..20 {
            store.put("l/x.lock", format!("stale {round}").as_bytes()).unwrap();
            let seen = seen_of(&store, "l/x.lock");
            let barrier = std::sync::Barrier::new(8);
            let won: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|t| {
                        let (store, seen, barrier) = (&store, &seen, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            store.replace_if("l/x.lock", format!("thread {t}").as_bytes(), seen).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winner = won.iter().position(|&w| w).expect("one wins");
            assert_eq!(won.iter().filter(|&&w| w).count(), 1, "round {round}: {won:?}");
            assert_eq!(store.get("l/x.lock").unwrap().as_ref(), format!("thread {winner}").as_bytes());
        }
    }

    #[test]
    fn files_written_in_pieces_and_read_at_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        let mut f = store.create_file("r/x.csv").unwrap();
        f.write_all(b"hello, ").unwrap();
        f.write_all(b"world\n").unwrap();
        f.finish().unwrap();
        let at = store.open_at("r/x.csv").unwrap();
        let mut buf = [0u8; 5];
        at.read_exact_at(&mut buf, 7).unwrap();
        assert_eq!(&buf, b"world");
        let mut small = store.small_files(2);
        small.make_dir("s/p=1").unwrap();
        small
            .write("s/p=1/a.csv", &[Bytes::from_static(b"a,"), Bytes::new(), Bytes::from_static(b"b\n")])
            .unwrap();
        assert_eq!(store.get("s/p=1/a.csv").unwrap().as_ref(), b"a,b\n");
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
        assert!(matches!(Store::open("gs://"), Err(Error::Config(_))), "a bucket is required");
        let s3 = Store::open("s3://bucket/some/prefix/").unwrap();
        assert_eq!(s3.display("x.csv"), "s3://bucket/some/prefix/x.csv");
        let az = Store::open("abfss://container@account.dfs.core.windows.net/p").unwrap();
        assert_eq!(az.display(""), "abfss://container@account.dfs.core.windows.net/p");
        let err = Store::open("abfss://container@account.example.com/p").unwrap_err();
        assert!(err.to_string().contains("abfss://container@account.example.com/p"), "{err}");
    }
}
