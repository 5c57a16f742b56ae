//! Writing local outputs around the page cache (`O_DIRECT`).
//!
//! A run writes its reports once and seldom reads them back (exports are cut from memory, but for
//! partner types with several programs), yet a buffered write copies every byte into a newly
//! allocated page-cache page first. On the virtual machines this job runs on, touching those fresh
//! pages is slow: the guest hands free memory back to the host (free page reporting), so each new
//! page is a trip to the host, and a large run's gigabytes of reports cost many times the kernel
//! CPU buffered that they cost direct, where nothing is copied. So a local report file is written
//! with `O_DIRECT` in aligned 4 MiB blocks by a thread of its own (two blocks in turn: one filled
//! while the other is on its way to the disk), and only its last partial block goes through the
//! page cache. The larger export files ([`write_parts`]) are written direct too; a small one is
//! cheaper buffered. Where the file system refuses `O_DIRECT` (at the open or at a write: some
//! network and FUSE file systems) the file is written buffered; the bytes are the same either way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

/// The alignment of direct I/O: offsets, lengths and memory (4096 covers 512-byte and 4K
/// sectors).
const ALIGN: usize = 4096;
/// The bytes handed to the disk in one write.
const BLOCK: usize = 4 << 20;

/// A local output file opened for writing, direct where the file system allows it.
pub(crate) enum OutputFile {
    Direct(DirectWriter),
    Buffered(BufWriter<File>),
}

impl OutputFile {
    /// Creates (or truncates) `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<OutputFile> {
        match DirectWriter::create(path)? {
            Some(w) => Ok(OutputFile::Direct(w)),
            None => Ok(OutputFile::Buffered(BufWriter::with_capacity(1 << 20, File::create(path)?))),
        }
    }

    /// Writes what is left and closes the file.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        match self {
            OutputFile::Direct(w) => w.finish(),
            OutputFile::Buffered(w) => w.into_inner().map_err(|e| e.into_error()).map(drop),
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            OutputFile::Direct(w) => w.write(buf),
            OutputFile::Buffered(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutputFile::Direct(_) => Ok(()), // blocks go out when full; the tail at finish
            OutputFile::Buffered(w) => w.flush(),
        }
    }
}

/// An aligned block of bytes: `raw[at..at + len]`, `at` chosen so the data starts on an
/// [`ALIGN`] boundary (moving the Vec does not move its heap memory).
struct Block {
    raw: Vec<u8>,
    at: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let raw = vec![0u8; BLOCK + ALIGN];
        let at = raw.as_ptr().align_offset(ALIGN);
        Block { raw, at, len: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.raw[self.at..self.at + self.len]
    }

    fn is_full(&self) -> bool {
        self.len == BLOCK
    }

    /// Appends as much of `buf` as fits; returns how much that was.
    fn push(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(BLOCK - self.len);
        let start = self.at + self.len;
        self.raw[start..start + n].copy_from_slice(&buf[..n]);
        self.len += n;
        n
    }

    /// How many bytes of the data a direct write may take: whole [`ALIGN`] units (the rest,
    /// a file's last partial unit, is written buffered).
    fn aligned_len(&self) -> usize {
        self.len / ALIGN * ALIGN
    }
}

/// Writes a file's full blocks with `O_DIRECT` from a thread of its own.
pub(crate) struct DirectWriter {
    path: PathBuf,
    current: Block,
    /// Blocks made so far (at most two: the one being filled, the one being written).
    made: usize,
    to_disk: Option<SyncSender<Block>>,
    back: Receiver<Block>,
    disk: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// Bytes handed to the disk thread (a multiple of [`ALIGN`]).
    sent: u64,
    /// Time spent waiting for the disk thread to give a block back (logged at the end).
    waited: std::time::Duration,
}

impl DirectWriter {
    /// `None` when the file system does not take `O_DIRECT` (the caller writes buffered).
    fn create(path: &Path) -> std::io::Result<Option<DirectWriter>> {
        let Some(file) = open_direct(path)? else { return Ok(None) };
        let (to_disk, from_writer) = std::sync::mpsc::sync_channel::<Block>(1);
        let (to_writer, back) = std::sync::mpsc::channel::<Block>();
        let disk_path = path.to_path_buf();
        let disk = std::thread::Builder::new().name("direct-write".into()).spawn(move || {
            let mut file = file;
            let mut direct = true;
            for block in from_writer {
                match file.write_all(block.data()) {
                    Ok(()) => {}
                    // A file system that opens with O_DIRECT but refuses the write: the rest
                    // of the file goes through the page cache (a failed direct write of
                    // aligned blocks writes nothing, so the file is still at this block).
                    Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                        direct = false;
                        let at = file.metadata()?.len();
                        file = write_buffered_at(&disk_path, block.data(), at)?;
                        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
                    }
                    Err(e) => return Err(e),
                }
                let _ = to_writer.send(block); // the writer may be gone after an error
            }
            Ok(())
        })?;
        Ok(Some(DirectWriter {
            path: path.to_path_buf(),
            current: Block::new(),
            made: 1,
            to_disk: Some(to_disk),
            back,
            disk: Some(disk),
            sent: 0,
            waited: std::time::Duration::ZERO,
        }))
    }

    /// Hands the current block to the disk thread and takes an empty one.
    fn send(&mut self) -> std::io::Result<()> {
        let next = if self.made < 2 {
            self.made += 1;
            Block::new()
        } else {
            let started = std::time::Instant::now();
            let back = self.back.recv();
            self.waited += started.elapsed();
            match back {
                Ok(b) => b,
                Err(_) => return Err(self.disk_error()),
            }
        };
        let full = std::mem::replace(&mut self.current, next);
        self.current.len = 0;
        let len = full.len as u64;
        let sent = self.to_disk.as_ref().is_some_and(|to_disk| to_disk.send(full).is_ok());
        if !sent {
            return Err(self.disk_error());
        }
        self.sent += len;
        Ok(())
    }

    /// The disk thread's error, once it has stopped.
    fn disk_error(&mut self) -> std::io::Error {
        self.to_disk = None;
        match self.disk.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => std::io::Error::other("the direct-write thread panicked"),
            _ => std::io::Error::other("the direct-write thread stopped"),
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        let aligned = self.current.aligned_len();
        let tail = self.current.data()[aligned..].to_vec();
        if aligned > 0 {
            self.current.len = aligned;
            self.send()?;
        }
        self.to_disk = None;
        let started = std::time::Instant::now();
        match self.disk.take().map(|h| h.join()) {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(std::io::Error::other("the direct-write thread panicked")),
            None => {}
        }
        self.waited += started.elapsed();
        if !tail.is_empty() {
            write_buffered_at(&self.path, &tail, self.sent)?;
        }
        tracing::debug!(
            file = %self.path.display(),
            waiting_for_disk_s = crate::logs::seconds(self.waited),
            "written direct"
        );
        Ok(())
    }
}

impl Write for DirectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.current.is_full() {
            self.send()?;
        }
        Ok(self.current.push(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        self.to_disk = None;
        if let Some(h) = self.disk.take() {
            let _ = h.join();
        }
    }
}

/// Export files of at least this many bytes are written direct by [`write_parts`]. Below it
/// a buffered write costs less: a direct one waits for the disk and allocates its blocks at
/// once, which for a small file costs more than the page-cache copy it saves.
const PARTS_DIRECT_MIN: usize = 32 << 10;

/// Opens `path` for writing with `O_DIRECT` (a new file, or one truncated): `None` where the
/// file system refuses it.
fn open_direct(path: &Path) -> std::io::Result<Option<File>> {
    open_with_direct(std::fs::OpenOptions::new().write(true).create(true).truncate(true), path)
}

/// Opens `path` as `options` say, with `O_DIRECT`: `None` where the file system refuses it.
fn open_with_direct(options: &mut std::fs::OpenOptions, path: &Path) -> std::io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    let opened = {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECT).open(path)
    };
    #[cfg(not(target_os = "linux"))]
    let opened: std::io::Result<File> = {
        let _ = options;
        Err(std::io::Error::from_raw_os_error(libc::EINVAL))
    };
    match opened {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the whole file at `path` around the page cache where the file system allows it (a
/// delivery is read once: cached, its pages would only be one more copy, in memory that is
/// slow to touch the first time), else buffered.
pub(crate) fn read_whole(path: &Path) -> std::io::Result<bytes::Bytes> {
    let Some(file) = open_with_direct(std::fs::OpenOptions::new().read(true), path)? else {
        return std::fs::read(path).map(Into::into);
    };
    // Room for the file as it is now and one block more, from an aligned offset: a file that
    // fills it grew meanwhile, and is read again, buffered.
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    let room = len.next_multiple_of(ALIGN) + ALIGN;
    let mut buf = vec![0u8; room + ALIGN];
    let start = buf.as_ptr().align_offset(ALIGN);
    let mut done = 0;
    loop {
        match file.read_at(&mut buf[start + done..start + room], done as u64) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                // Only the end of the file gives a partial block.
                if n % ALIGN != 0 || done == room {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Refused at the read: the file is read again, buffered.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return std::fs::read(path).map(Into::into),
            Err(e) => return Err(e),
        }
    }
    if done == room {
        return std::fs::read(path).map(Into::into);
    }
    buf.truncate(start + done);
    Ok(bytes::Bytes::from(buf).slice(start..))
}

thread_local! {
    /// The aligned block [`write_parts`] copies a file through, kept by its thread.
    static SCRATCH: std::cell::RefCell<Option<Block>> = const { std::cell::RefCell::new(None) };
}

/// Writes all of `parts`, in order, to a new file at `path`: direct, through an aligned block
/// of the thread's (up to [`BLOCK`] bytes at a time), when they add up to [`PARTS_DIRECT_MIN`]
/// bytes or more (the last partial 4 KiB buffered); else with as few buffered system calls as
/// it takes. Returns the bytes of the file left in the page cache (for [`DropBehind`]).
pub(crate) fn write_parts(path: &Path, parts: &[bytes::Bytes]) -> std::io::Result<u64> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len >= PARTS_DIRECT_MIN
        && let Some(file) = open_direct(path)?
    {
        let direct: std::io::Result<u64> = SCRATCH.with_borrow_mut(|scratch| {
            let block = scratch.get_or_insert_with(Block::new);
            block.len = 0;
            let mut written = 0;
            for part in parts {
                let mut part = &part[..];
                while !part.is_empty() {
                    part = &part[block.push(part)..];
                    if block.is_full() {
                        (&file).write_all(block.data())?;
                        (block.len, written) = (0, written + BLOCK);
                    }
                }
            }
            let aligned = block.aligned_len();
            (&file).write_all(&block.data()[..aligned])?;
            if aligned < block.len {
                write_buffered_at(path, &block.data()[aligned..], (written + aligned) as u64)?;
                return Ok(ALIGN as u64);
            }
            Ok(0)
        });
        match direct {
            // Refused at the write: the file is written again, buffered.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => return other,
        }
    }
    write_buffered(path, parts)?;
    Ok(len.next_multiple_of(ALIGN) as u64)
}

/// Hands the page-cache pages of small files written a while ago back to the kernel, so that
/// the next files reuse them (drop-behind).
///
/// The exports are about a million small files that this run never reads again; kept, their
/// pages grow the page cache by gigabytes of freshly allocated memory, which on this job's
/// virtual machines is slow to touch (see the module's doc). Dropping a file's pages once the
/// kernel has written them back lets the next files reuse pages already allocated, which costs
/// less CPU than touching fresh ones. The drop trails the writes by `lag` bytes, more than the
/// kernel keeps dirty before it starts writing back (a tenth of the memory by default), so
/// that it finds clean pages: a dirty page is not dropped but sent to the disk early, in a
/// small write of its own (with a lag too short, those writes cost more than the drops save).
/// The price is the paths of the files held: at most one path per 4 KiB page held, a small
/// fraction of the pages' own memory.
pub(crate) struct DropBehind {
    lag: u64,
    held: u64,
    files: std::collections::VecDeque<(PathBuf, u64)>,
}

impl DropBehind {
    pub(crate) fn new(lag: u64) -> DropBehind {
        DropBehind { lag, held: 0, files: std::collections::VecDeque::new() }
    }

    /// Records that `cached` bytes of the file at `path` were left in the page cache, and
    /// drops the pages of the oldest files while more than `lag` bytes are held.
    pub(crate) fn wrote(&mut self, path: PathBuf, cached: u64) {
        if cached == 0 {
            return;
        }
        self.files.push_back((path, cached));
        self.held += cached;
        while self.held > self.lag {
            let Some((path, cached)) = self.files.pop_front() else { break };
            self.held -= cached;
            // Advice: a file that cannot be opened keeps its pages, and the run goes on.
            if let Ok(file) = File::open(&path) {
                use std::os::fd::AsRawFd;
                // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is
                // open for the duration of the call.
                #[allow(unsafe_code)]
                unsafe {
                    libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
                }
            }
        }
    }
}

/// Writes `bytes` at `offset` of the file at `path` through the page cache (a direct file's
/// last partial block, or a block the file system refused direct); returns the file so opened.
fn write_buffered_at(path: &Path, bytes: &[u8], offset: u64) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all_at(bytes, offset)?;
    Ok(file)
}

/// Writes `parts` to a new file at `path` through the page cache, with as few system calls
/// as it takes.
fn write_buffered(path: &Path, parts: &[bytes::Bytes]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let mut file = File::create(path)?;
    let mut slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut left = &mut slices[..];
    IoSlice::advance_slices(&mut left, 0); // drops empty leading parts
    while !left.is_empty() {
        match file.write_vectored(left) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a misplaced block shows.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
    }

    fn write_in_pieces(dir: &Path, len: usize) -> (OutputFile, Vec<u8>) {
        let path = dir.join(format!("out-{len}.csv"));
        let mut f = OutputFile::create(&path).unwrap();
        let bytes = pattern(len);
        // Uneven pieces, one larger than a block.
        let mut sizes = [1usize, 4095, 7, BLOCK + 3, 100_000, 1].into_iter().cycle();
        let mut at = 0;
        while at < len {
            let end = (at + sizes.next().unwrap()).min(len);
            f.write_all(&bytes[at..end]).unwrap();
            at = end;
        }
        (f, bytes)
    }

    #[test]
    fn files_hold_exactly_the_bytes_written_at_any_length() {
        // /tmp is on disk here and in CI; tmpfs takes O_DIRECT too since Linux 6.6.
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        for dir in &dirs {
            check_lengths(dir.path());
        }
    }

    fn check_lengths(dir: &Path) {
        for len in
            [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BLOCK, BLOCK + 1, 2 * BLOCK + ALIGN, 3 * BLOCK + 12_345]
        {
            let (f, bytes) = write_in_pieces(dir, len);
            let direct = matches!(f, OutputFile::Direct(_));
            f.finish().unwrap();
            let back = std::fs::read(dir.join(format!("out-{len}.csv"))).unwrap();
            assert_eq!(back.len(), bytes.len(), "length {len} (direct: {direct})");
            assert!(back == bytes, "content of length {len} (direct: {direct})");
        }
    }

    #[test]
    fn export_files_hold_their_parts_in_order_direct_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = bytes::Bytes::from(pattern(2 * BLOCK + 12_345));
        // Lengths either side of the threshold, of a 4 KiB block and of the copy's block;
        // parts of uneven sizes, some empty. Longer files first, so a shorter one reuses a
        // dirtier scratch buffer.
        let lens = [2 * BLOCK + 12_345, BLOCK, BLOCK - 1, PARTS_DIRECT_MIN + ALIGN, PARTS_DIRECT_MIN + 1];
        let lens = lens.into_iter().chain([PARTS_DIRECT_MIN, PARTS_DIRECT_MIN - 1, ALIGN + 1, 1, 0]);
        for len in lens {
            let mut parts = vec![bytes::Bytes::new()];
            let mut at = 0;
            for size in [17usize, 0, 4093, 70_000, 1].into_iter().cycle() {
                if at == len {
                    break;
                }
                let end = (at + size).min(len);
                parts.push(bytes.slice(at..end));
                at = end;
            }
            let path = dir.path().join(format!("export-{len}.csv"));
            write_parts(&path, &parts).unwrap();
            let back = std::fs::read(&path).unwrap();
            assert_eq!(back.len(), len);
            assert!(back[..] == bytes[..len], "content of length {len}");
        }
    }

    #[test]
    fn files_read_whole_are_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, 3 * ALIGN + 5, BLOCK + 7] {
            let path = dir.path().join(format!("in-{len}.parquet"));
            std::fs::write(&path, pattern(len)).unwrap();
            let back = read_whole(&path).unwrap();
            assert_eq!(back.len(), len);
            assert!(back[..] == pattern(len)[..], "content of length {len}");
        }
        let err = read_whole(&dir.path().join("missing.parquet")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn dropping_written_files_behind_keeps_their_bytes_and_bounds_what_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut behind = DropBehind::new(3 * ALIGN as u64);
        let mut written = Vec::new();
        for i in 0..10 {
            let path = dir.path().join(format!("export-{i}.csv"));
            let bytes = bytes::Bytes::from(pattern(100 + 300 * i));
            let cached = write_parts(&path, std::slice::from_ref(&bytes)).unwrap();
            assert_eq!(cached, ALIGN as u64, "a small file is one page");
            behind.wrote(path.clone(), cached);
            assert!(behind.held <= behind.lag, "{} bytes held after file {i}", behind.held);
            written.push((path, bytes));
        }
        assert_eq!(behind.files.len(), 3, "the last three files are held");
        for (path, bytes) in written {
            assert!(std::fs::read(&path).unwrap() == bytes[..], "{}", path.display());
        }
    }

    #[test]
    fn an_unwritable_folder_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(&dir.path().join("missing/out.csv")).err().expect("no folder");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
