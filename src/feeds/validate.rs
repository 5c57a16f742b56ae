//! Validation of a run's deliveries: every row of every file read ends up either accepted into
//! [`Feeds`] or rejected with one [`Reject`] per problem, and each file's count says so
//! (rows read = accepted + rejected).
//!
//! Checks run in the order of feeds.md: cells and references, then the key, then (for
//! transactions) the refund checks. Feeds are validated in [`Feed::ALL`] order so that
//! references only ever point at feeds already accepted.

use crate::hash::{HashMap, HashSet};
use std::collections::hash_map::Entry;

use chrono::NaiveDate;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::Feed;
use super::cells::{self, AMOUNT_LIMIT, Code, MAX_QUANTITY, Problem, RowCheck};
use super::landing::Format;
use super::landing::{DeliveryFile, Ignored, Landing};
use super::read::{RawFile, read_parquet, read_stream};
use super::tables::*;
use crate::digest::{hex, sha256_hex};
use crate::error::{Error, Result};
use crate::model::PartnerType;
use crate::model::money::{Amount, Rate};
use crate::store::Store;

/// One problem of one rejected row, as the rejects report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub(crate) feed: Feed,
    /// Path relative to the landing zone.
    pub file: String,
    pub row: u64,
    pub field: String,
    pub value: String,
    pub code: Code,
}

/// The reconciliation of one file read: rows = accepted + rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCount {
    pub(crate) feed: Feed,
    pub path: String,
    pub(crate) delivery_date: NaiveDate,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// A file that could not be read and was skipped under `--keep-going`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub(crate) feed: Feed,
    pub path: String,
    pub reason: String,
}

/// Everything ingestion learned about a run date.
#[derive(Debug, Default)]
pub struct Ingest {
    pub feeds: Feeds,
    /// Sorted by feed, file, row, field, reason.
    pub rejects: Vec<Reject>,
    /// The files read, in feed then delivery order.
    pub files: Vec<FileCount>,
    pub skipped: Vec<Skipped>,
    pub(crate) ignored: Vec<Ignored>,
    /// Warnings about files that were read (extra columns, ...), each naming its file.
    pub warnings: Vec<String>,
}

impl Ingest {
    /// Adds a file read to the reconciliation; returns its index.
    fn count_file(&mut self, count: FileCount, warnings: &[String]) -> usize {
        for w in warnings {
            self.warnings.push(format!("{}: {w}", count.path));
        }
        self.files.push(count);
        self.files.len() - 1
    }

    /// Rejects one row with its problems (counted once).
    fn reject(&mut self, file: usize, row: u64, problems: Vec<Problem>) {
        let f = &mut self.files[file];
        f.rejected += 1;
        let (feed, path) = (f.feed, f.path.clone());
        self.rejects.extend(problems.into_iter().map(|p| Reject {
            feed,
            file: path.clone(),
            row,
            field: p.field,
            value: p.value,
            code: p.code,
        }));
    }

    fn accept(&mut self, file: usize) {
        self.files[file].accepted += 1;
    }

    pub(crate) fn rows_read(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
    pub(crate) fn rows_accepted(&self) -> u64 {
        self.files.iter().map(|f| f.accepted).sum()
    }
    pub(crate) fn rows_rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rejected).sum()
    }
    /// The newest delivery date among the files read successfully.
    pub(crate) fn data_as_of(&self) -> Option<NaiveDate> {
        self.files.iter().map(|f| f.delivery_date).max()
    }
}

/// A file read, with its records.
struct Loaded<'a> {
    file: &'a DeliveryFile,
    raw: RawFile,
    sha256: String,
}

impl Loaded<'_> {
    /// The file's line of the reconciliation, before any row is counted.
    fn count(&self) -> FileCount {
        FileCount {
            feed: self.file.feed,
            path: self.file.path.clone(),
            delivery_date: self.file.date,
            size: self.file.size,
            sha256: self.sha256.clone(),
            rows: self.raw.rows.len() as u64,
            accepted: 0,
            rejected: 0,
        }
    }
}

/// `BAD_RECORD`: a record of `cells` cells where the header has another number.
fn bad_record(cells: usize) -> Problem {
    Problem { field: String::new(), value: cells.to_string(), code: Code::BadRecord }
}

/// Reads and validates every file that a run for `run_date` reads.
///
/// Feeds are read one at a time, in [`Feed::ALL`] order. The small feeds are loaded whole
/// (their files in parallel); transaction files are streamed: each is read and its rows
/// checked (files in parallel), and only the compact accepted candidates outlive the file.
pub fn ingest(store: &Store, landing: &Landing, run_date: NaiveDate, keep_going: bool) -> Result<Ingest> {
    ingest_spilling(store, landing, run_date, keep_going, None, &|| {})
}

/// When a run keeps its accepted transactions in a local file instead of in memory.
#[derive(Debug, Clone)]
pub(crate) struct SpillPolicy {
    /// Spill when the transaction files are expected to hold more rows than this.
    pub(crate) above_rows: u64,
    /// Where the spill files go (unlinked at once; about 160 bytes of disk per row).
    pub(crate) dir: std::path::PathBuf,
}

/// [`ingest`], with the accepted transactions spilled to a local file (see
/// [`crate::feeds::spill`]) when `spill` says so; `on_file` is called as each delivery file has
/// been read and checked (a progress bar's count).
pub(crate) fn ingest_spilling(
    store: &Store,
    landing: &Landing,
    run_date: NaiveDate,
    keep_going: bool,
    spill: Option<&SpillPolicy>,
    on_file: &(dyn Fn() + Sync),
) -> Result<Ingest> {
    let ingest = Ingest { ignored: landing.ignored.clone(), ..Ingest::default() };
    let mut v = Validator { ingest, ctx: Context::default(), spill: spill.cloned() };
    for feed in Feed::ALL {
        let selected = landing.select(feed, run_date);
        if feed == Feed::Transactions {
            v.transactions(store, &selected, keep_going, on_file)?;
            continue;
        }
        let loaded: Vec<Result<Loaded, (&DeliveryFile, Error)>> = selected
            .par_iter()
            .map(|&file| load(store, file).map_err(|e| (file, e)))
            .inspect(|_| on_file())
            .collect();
        let mut files = Vec::new();
        for result in loaded {
            files.extend(skip_or_fail(result, keep_going, &mut v.ingest.skipped)?);
        }
        let of_feed: Vec<&Loaded> = files.iter().collect();
        v.feed(feed, &of_feed)?;
    }
    let mut ingest = v.ingest;
    ingest.rejects.par_sort_by(|a, b| {
        (a.feed.name(), &a.file, a.row, &a.field, a.code.as_str()).cmp(&(
            b.feed.name(),
            &b.file,
            b.row,
            &b.field,
            b.code.as_str(),
        ))
    });
    for f in &ingest.files {
        if f.rows != f.accepted + f.rejected {
            return Err(Error::internal(format!(
                "{}: {} rows read but {} accepted + {} rejected",
                f.path, f.rows, f.accepted, f.rejected
            )));
        }
    }
    Ok(ingest)
}

/// A file that could not be read: skipped (and listed) under `--keep-going`, else the error.
fn skip_or_fail<T>(
    result: std::result::Result<T, (&DeliveryFile, Error)>,
    keep_going: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err((file, e @ Error::UnreadableFile { .. })) if keep_going => {
            let reason = e.unreadable_reason().expect("an unreadable file's error");
            skipped.push(Skipped { feed: file.feed, path: file.path.clone(), reason });
            Ok(None)
        }
        Err((_, e)) => Err(e),
    }
}

/// Feeds every byte read through SHA-256, for the manifest.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads one delivery: CSV streams through the parser and the hash in one pass, never held
/// whole; a parquet file is read whole, once, for its hash and its rows (its rows, held as
/// text until checked, take more memory than its compressed bytes).
fn load<'a>(store: &Store, file: &'a DeliveryFile) -> Result<Loaded<'a>> {
    let unreadable = |reason: String| Error::unreadable(store.display(&file.path), reason);
    if let Some(problem) = &file.problem {
        return Err(unreadable(problem.clone()));
    }
    let (raw, sha256) = match file.format {
        Format::Parquet => {
            let bytes = store.read_whole(&file.path)?;
            let sha = sha256_hex(&bytes);
            (read_parquet(file.feed, bytes).map_err(unreadable)?, sha)
        }
        Format::Csv | Format::CsvGz => {
            let mut hashing = Hashing { inner: store.reader(&file.path)?, hasher: Sha256::new() };
            let raw = read_stream(file.feed, file.format, &mut hashing).map_err(unreadable)?;
            // The parser stops at the last record; hash whatever follows it too.
            std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| unreadable(format!("cannot read: {e}")))?;
            (raw, hex(&hashing.hasher.finalize()))
        }
    };
    Ok(Loaded { file, raw, sha256 })
}

/// What the reference checks look things up in: the accepted rows of earlier feeds.
#[derive(Default)]
struct Context {
    /// Accepted partner ids, each with its interned text (the key is that text's string, so
    /// the map holds no copies).
    partners: HashMap<&'static str, Text>,
    /// Currency -> first days of the months with an accepted rate.
    rates: HashMap<String, HashSet<NaiveDate>>,
}

/// A row that passed the cell and reference checks and waits for its key check.
struct Candidate<'a, T> {
    file: usize,
    row: u64,
    cells: Vec<&'a str>,
    value: T,
}

struct Validator {
    ingest: Ingest,
    ctx: Context,
    spill: Option<SpillPolicy>,
}

/// The accepted transactions while they are checked: in memory, or appended to a spill file.
enum Accepted {
    Memory(Vec<Transaction>),
    Spilled(crate::feeds::spill::Spill),
}

fn spill_error(e: std::io::Error) -> Error {
    Error::Io { action: "spilling accepted transactions to", path: "local disk".into(), source: e }
}

impl Accepted {
    fn len(&self) -> usize {
        match self {
            Accepted::Memory(v) => v.len(),
            Accepted::Spilled(s) => s.len() as usize,
        }
    }

    fn push(&mut self, t: Transaction) -> Result<()> {
        match self {
            Accepted::Memory(v) => v.push(t),
            Accepted::Spilled(s) => {
                s.push(&t).map_err(spill_error)?;
            }
        }
        Ok(())
    }

    fn get(&mut self, i: usize) -> Result<Transaction> {
        match self {
            Accepted::Memory(v) => Ok(v[i].clone()),
            Accepted::Spilled(s) => s.get(i as u64).map_err(spill_error),
        }
    }

    fn into_feeds(self, feeds: &mut Feeds) -> Result<()> {
        match self {
            Accepted::Memory(v) => feeds.transactions = v,
            Accepted::Spilled(s) => feeds.spilled = Some(s.seal().map_err(spill_error)?),
        }
        Ok(())
    }
}

/// The cells as compared for duplicates: identifiers trimmed, everything else as delivered.
fn canonical<'a>(feed: Feed, cells: &[&'a str]) -> Vec<&'a str> {
    canonical_cells(feed, cells).collect()
}

/// [`canonical`] cell by cell, without collecting them (the hot path hashes them).
fn canonical_cells<'a, 'c>(feed: Feed, cells: &'c [&'a str]) -> impl Iterator<Item = &'a str> + 'c {
    let columns = feed.columns().len();
    cells.iter().take(columns).enumerate().map(move |(col, &cell)| canonical_cell(feed, col, cell))
}

/// One cell of [`canonical`]: column `col`'s `cell`.
fn canonical_cell(feed: Feed, col: usize, cell: &str) -> &str {
    if feed.columns()[col].ends_with("_id") { cells::trim(cell) } else { cell }
}

fn key_of(feed: Feed, cells: &[&str]) -> Vec<String> {
    let canon = canonical(feed, cells);
    feed.key().iter().map(|&i| canon[i].to_string()).collect()
}

impl Validator {
    fn count_loaded(&mut self, l: &Loaded) -> usize {
        self.ingest.count_file(l.count(), &l.raw.warnings)
    }

    fn key_problem(&self, feed: Feed, cells: &[&str], code: Code) -> Problem {
        let names: Vec<&str> = feed.key().iter().map(|&i| feed.columns()[i]).collect();
        Problem { field: names.join(";"), value: key_of(feed, cells).join(";"), code }
    }

    /// Cell and reference checks of every row of `files`; returns the rows that passed.
    fn check_rows<'a, T>(
        &mut self,
        files: &[&'a Loaded],
        check: impl Fn(&mut RowCheck, &Context, &DeliveryFile) -> Option<T> + Sync,
    ) -> Vec<Candidate<'a, T>>
    where
        T: Send,
    {
        let mut out = Vec::new();
        for l in files {
            let idx = self.count_loaded(l);
            let feed = l.file.feed;
            let ctx = &self.ctx;
            let checked: Vec<_> = l
                .raw
                .rows
                .par_iter()
                .map(|r| {
                    let result = match l.raw.cells(r) {
                        Err(n) => Err(vec![bad_record(n)]),
                        Ok(cells) => {
                            let mut rc = RowCheck::new(feed.columns(), &cells);
                            let value = check(&mut rc, ctx, l.file);
                            match value {
                                Some(v) if rc.problems.is_empty() => Ok(v),
                                _ => Err(rc.problems),
                            }
                            .map(|v| (cells, v))
                        }
                    };
                    (r, result)
                })
                .collect();
            for (r, result) in checked {
                match result {
                    Ok((cells, value)) => out.push(Candidate { file: idx, row: r.row, cells, value }),
                    Err(problems) => self.ingest.reject(idx, r.row, problems),
                }
            }
        }
        out
    }

    /// Key check within one snapshot delivery: agreeing copies keep the first, disagreeing
    /// copies are all rejected.
    ///
    /// Copies are found by sorting row numbers on (key, position), in parallel: a map of every
    /// row's key would allocate a `Vec<String>` for each row and hash them all.
    fn snapshot_keys<T: Sync>(&mut self, feed: Feed, candidates: Vec<Candidate<T>>) -> Vec<T> {
        let key = |i: usize| {
            let cells = &candidates[i].cells;
            feed.key().iter().map(move |&k| canonical_cell(feed, k, cells[k]))
        };
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.par_sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        let mut verdict: Vec<Option<Code>> = vec![None; candidates.len()];
        for members in order.chunk_by(|&a, &b| key(a).eq(key(b))) {
            if members.len() == 1 {
                continue;
            }
            let canon = |i: usize| canonical_cells(feed, &candidates[i].cells);
            let agree = members.iter().all(|&m| canon(m).eq(canon(members[0])));
            for (n, &m) in members.iter().enumerate() {
                verdict[m] = match (agree, n) {
                    (true, 0) => None,
                    (true, _) => Some(Code::DuplicateRow),
                    (false, _) => Some(Code::ConflictingDuplicate),
                };
            }
        }
        let mut accepted = Vec::new();
        for (c, v) in candidates.into_iter().zip(verdict) {
            match v {
                None => {
                    self.ingest.accept(c.file);
                    accepted.push(c.value);
                }
                Some(code) => {
                    let p = self.key_problem(feed, &c.cells, code);
                    self.ingest.reject(c.file, c.row, vec![p]);
                }
            }
        }
        accepted
    }

    /// Key check of an event row against the keys already held: `None` when it may claim its
    /// key, else the problem.
    fn event_key(
        &self,
        feed: Feed,
        held: &HashMap<Vec<String>, Vec<String>>,
        cells: &[&str],
    ) -> Option<Problem> {
        let holder = held.get(&key_of(feed, cells))?;
        let same = canonical(feed, cells).iter().zip(holder).all(|(a, b)| *a == b.as_str());
        let code = if same { Code::DuplicateRow } else { Code::ConflictingDuplicate };
        Some(self.key_problem(feed, cells, code))
    }

    fn claim(feed: Feed, held: &mut HashMap<Vec<String>, Vec<String>>, cells: &[&str]) {
        let canon = canonical(feed, cells).into_iter().map(str::to_string).collect();
        held.insert(key_of(feed, cells), canon);
    }

    fn event_keys<T>(&mut self, feed: Feed, candidates: Vec<Candidate<T>>) -> Vec<T> {
        let mut held = HashMap::default();
        let mut accepted = Vec::new();
        for c in candidates {
            match self.event_key(feed, &held, &c.cells) {
                Some(p) => self.ingest.reject(c.file, c.row, vec![p]),
                None => {
                    Self::claim(feed, &mut held, &c.cells);
                    self.ingest.accept(c.file);
                    accepted.push(c.value);
                }
            }
        }
        accepted
    }

    fn feed(&mut self, feed: Feed, files: &[&Loaded]) -> Result<()> {
        match feed {
            Feed::Partners => {
                let c = self.check_rows(files, |r, _, _| check_partner(r));
                let partners = self.snapshot_keys(feed, c);
                self.ctx.partners = partners
                    .iter()
                    .map(|p| {
                        let t = Text::new(&p.partner_id);
                        (t.as_str(), t)
                    })
                    .collect();
                self.ingest.feeds.partners = partners;
            }
            Feed::Agreements => {
                let c = self.check_rows(files, |r, ctx, _| check_agreement(r, ctx));
                self.ingest.feeds.agreements = self.snapshot_keys(feed, c);
            }
            Feed::Competencies => {
                let c = self.check_rows(files, |r, ctx, _| check_competency(r, ctx));
                self.ingest.feeds.competencies = self.snapshot_keys(feed, c);
            }
            Feed::Users => {
                let c = self.check_rows(files, |r, ctx, _| check_user(r, ctx));
                self.ingest.feeds.users = self.snapshot_keys(feed, c);
            }
            Feed::PaymentProfiles => {
                let c = self.check_rows(files, |r, ctx, _| check_payment_profile(r, ctx));
                self.ingest.feeds.payment_profiles = self.snapshot_keys(feed, c);
            }
            Feed::FxRates => {
                let c = self.check_rows(files, |r, _, _| check_fx_rate(r));
                let rates: Vec<FxRate> =
                    self.event_keys(feed, c).into_iter().filter(|r| r.currency != "USD").collect();
                self.ctx.rates.clear();
                for r in &rates {
                    self.ctx.rates.entry(r.currency.clone()).or_default().insert(r.month);
                }
                self.ingest.feeds.fx_rates = rates;
            }
            Feed::Transactions => unreachable!("transactions are streamed (Validator::transactions)"),
        }
        Ok(())
    }

    /// The transactions feed. Each file is read and its rows checked for cells and references
    /// (files in parallel); then the key checks (sales claim their keys first) and the refund
    /// checks run in the order of feeds.md: delivery date, transaction date, transaction id.
    fn transactions(
        &mut self,
        store: &Store,
        files: &[&DeliveryFile],
        keep_going: bool,
        on_file: &(dyn Fn() + Sync),
    ) -> Result<()> {
        let Validator { ingest, ctx, spill } = self;
        let ctx = &*ctx;
        // Transaction id -> the holder's index in `accepted`, and each accepted row's canonical
        // hash (the keys die with this function; the canonical hashes too).
        let mut held: HashMap<Text, u32> = HashMap::default();
        let mut canon: Vec<u64> = Vec::new();
        // Keeps an accepted row and its canonical hash; its index is what `held` maps its id to.
        let keep = |accepted: &mut Accepted, canon: &mut Vec<u64>, c: TxCandidate| -> Result<u32> {
            let i = next_index(accepted.len())?;
            canon.push(c.canon);
            accepted.push(c.value)?;
            Ok(i)
        };
        let mut refunds = Vec::new();
        let key_problem = |c: &TxCandidate, holder: u64| Problem {
            field: "transaction_id".into(),
            value: c.value.transaction_id.to_string(),
            code: if holder == c.canon { Code::DuplicateRow } else { Code::ConflictingDuplicate },
        };
        // Files are read and checked a window at a time (in parallel), while the window before
        // has its sales claim their keys in delivery order; only compact candidates and the
        // accepted rows outlive their file.
        let mut windows = files.chunks(4 * rayon::current_num_threads().max(1));
        let first = windows.clone().next().unwrap_or_default();
        let mut current = windows.next().map(|w| read_window(store, ctx, w, on_file)).unwrap_or_default();
        // Sized once for the whole feed, from the first window's rows per byte: grown by
        // doubling instead, the id map would re-hash every id's string at each growth and the
        // row vector would copy itself and over-allocate up to twice. An over-estimate (later
        // files of sparser rows) costs address space, not memory: pages are touched as rows
        // arrive. A reservation the system refuses is skipped, and the collections grow by
        // doubling.
        let expected = expected_rows(files, first, &current);
        let _ = held.try_reserve(expected);
        let mut accepted = match spill.as_ref().filter(|s| expected as u64 > s.above_rows) {
            Some(s) => {
                let spill = crate::feeds::spill::Spill::new(&s.dir)
                    .map_err(|e| Error::io("cannot make a spill file in", s.dir.display())(e))?;
                tracing::info!(expected_rows = expected, dir = %s.dir.display(), "spilling accepted transactions");
                Accepted::Spilled(spill)
            }
            None => {
                let mut v = Vec::new();
                let _ = v.try_reserve_exact(expected);
                Accepted::Memory(v)
            }
        };
        let _ = canon.try_reserve_exact(expected);
        loop {
            let upcoming = windows.next();
            let (claimed, next) = rayon::join(
                || -> Result<()> {
                    for result in current {
                        let Some(checked) = skip_or_fail(result, keep_going, &mut ingest.skipped)? else {
                            continue;
                        };
                        let idx = ingest.count_file(checked.count, &checked.warnings);
                        for (row, problems) in checked.rejected {
                            ingest.reject(idx, row, problems);
                        }
                        for mut c in checked.candidates {
                            c.file = idx;
                            if c.value.transaction_type == TransactionType::Refund {
                                refunds.push(c);
                                continue;
                            }
                            match held.entry(c.value.transaction_id) {
                                Entry::Occupied(holder) => {
                                    let p = key_problem(&c, canon[*holder.get() as usize]);
                                    ingest.reject(c.file, c.row, vec![p]);
                                }
                                Entry::Vacant(slot) => {
                                    ingest.accept(c.file);
                                    slot.insert(keep(&mut accepted, &mut canon, c)?);
                                }
                            }
                        }
                    }
                    Ok(())
                },
                || upcoming.map(|w| read_window(store, ctx, w, on_file)),
            );
            claimed?;
            match next {
                Some(n) => current = n,
                None => break,
            }
        }
        // What was already refunded of each refunded sale.
        let mut refunded: HashMap<usize, i128> = HashMap::default();
        refunds.par_sort_by(|a, b| {
            (a.value.delivery_date, a.value.transaction_date, &a.value.transaction_id).cmp(&(
                b.value.delivery_date,
                b.value.transaction_date,
                &b.value.transaction_id,
            ))
        });
        for mut c in refunds {
            if let Some(&holder) = held.get(&c.value.transaction_id) {
                let p = key_problem(&c, canon[holder as usize]);
                ingest.reject(c.file, c.row, vec![p]);
                continue;
            }
            let r = &c.value;
            let original_id = r.original_transaction_id.expect("refunds have one");
            let sale = held
                .get(&original_id)
                .map(|&i| accepted.get(i as usize).map(|t| (i as usize, t)))
                .transpose()?;
            let Some((si, sale)) = sale.filter(|(_, t)| t.transaction_type == TransactionType::Sale) else {
                let p = Problem {
                    field: "original_transaction_id".into(),
                    value: original_id.to_string(),
                    code: Code::UnknownOriginal,
                };
                ingest.reject(c.file, c.row, vec![p]);
                continue;
            };
            let raw = c.raw.as_ref().expect("refunds keep their cells");
            let mut problems = Vec::new();
            let mut mismatch = |col: &str, differs: bool| {
                if differs {
                    problems.push(Problem {
                        field: col.into(),
                        value: raw.get(col).to_string(),
                        code: Code::RefundMismatch,
                    });
                }
            };
            mismatch("transaction_date", r.transaction_date < sale.transaction_date);
            mismatch("reseller_id", r.reseller_id != sale.reseller_id);
            mismatch("provider_id", r.provider_id != sale.provider_id);
            mismatch("product_id", r.product_id != sale.product_id);
            mismatch("product_family", r.product_family != sale.product_family);
            mismatch("currency", r.currency != sale.currency);
            if problems.is_empty()
                && refunded.get(&si).copied().unwrap_or(0) - i128::from(r.amount) > i128::from(sale.amount)
            {
                problems.push(Problem {
                    field: "original_transaction_id".into(),
                    value: original_id.to_string(),
                    code: Code::RefundExceedsSale,
                });
            }
            if problems.is_empty() {
                *refunded.entry(si).or_default() -= i128::from(r.amount);
                ingest.accept(c.file);
                // Share the sale's id handle, not a copy: the earnings rule finds the sale by it.
                c.value.original_transaction_id = Some(sale.transaction_id);
                let id = c.value.transaction_id;
                held.insert(id, keep(&mut accepted, &mut canon, c)?);
            } else {
                ingest.reject(c.file, c.row, problems);
            }
        }
        accepted.into_feeds(&mut ingest.feeds)
    }
}

/// The index the next accepted transaction gets (ids map to `u32` indices).
fn next_index(accepted: usize) -> Result<u32> {
    u32::try_from(accepted)
        .map_err(|_| Error::Data(format!("more than {} accepted transactions in one run", u32::MAX)))
}

/// A transaction row that passed its cell and reference checks and waits for its key and
/// refund checks. The raw cells are dropped with their file, except the ones of a refund that
/// `REFUND_MISMATCH` may quote.
struct TxCandidate {
    file: usize,
    row: u64,
    /// Hash of the canonical cells: equal rows give equal hashes (`DUPLICATE_ROW`), different
    /// rows different ones (`CONFLICTING_DUPLICATE`) but for a 2^-64 chance. It is compared
    /// only between rows of one transaction id, and either way the second row is rejected.
    canon: u64,
    value: Transaction,
    raw: Option<Quoted>,
}

/// The raw cells of a refund that `REFUND_MISMATCH` may quote, in one allocation: refunds
/// wait for every sale to be read, so a large run holds millions of them at once, and a
/// `String` per cell would add an allocation and a 24-byte header for each cell.
struct Quoted {
    text: Box<str>,
    /// End of each of [`Quoted::COLUMNS`]' cells in `text`.
    ends: [u32; 6],
}

impl Quoted {
    const COLUMNS: [&'static str; 6] =
        ["transaction_date", "reseller_id", "provider_id", "product_id", "product_family", "currency"];

    fn new(cells: &[&str]) -> Quoted {
        let feed = Feed::Transactions;
        let mut text = String::new();
        let mut ends = [0; 6];
        for (end, col) in ends.iter_mut().zip(Self::COLUMNS) {
            text.push_str(cells[feed.col(col)]);
            *end = u32::try_from(text.len()).expect("a file's cells are far below 4 GB");
        }
        Quoted { text: text.into_boxed_str(), ends }
    }

    /// The raw cell of `col`, one of [`Quoted::COLUMNS`].
    fn get(&self, col: &str) -> &str {
        let i = Self::COLUMNS.iter().position(|c| *c == col).expect("a quoted column");
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// The transactions `files` will hold, extrapolated by size from the rows read and checked in
/// the first window (`first`, read as `checked`), plus 2 % for files of denser rows.
fn expected_rows(
    files: &[&DeliveryFile],
    first: &[&DeliveryFile],
    checked: &[std::result::Result<CheckedFile, (&DeliveryFile, Error)>],
) -> usize {
    let bytes = |files: &[&DeliveryFile]| files.iter().map(|f| f.size).sum::<u64>();
    let rows: u64 = checked.iter().flatten().map(|c| c.candidates.len() as u64).sum();
    let (all, read) = (u128::from(bytes(files)), u128::from(bytes(first).max(1)));
    let estimate = u128::from(rows) * all / read;
    usize::try_from(estimate + estimate / 50).unwrap_or(usize::MAX).min(u32::MAX as usize)
}

/// Transaction files read and checked in parallel; a file that cannot be read comes back with
/// its error.
fn read_window<'f>(
    store: &Store,
    ctx: &Context,
    files: &[&'f DeliveryFile],
    on_file: &(dyn Fn() + Sync),
) -> Vec<std::result::Result<CheckedFile, (&'f DeliveryFile, Error)>> {
    files
        .par_iter()
        .map(|&file| check_transaction_file(store, file, ctx).map_err(|e| (file, e)))
        .inspect(|_| on_file())
        .collect()
}

/// One transaction file, read and checked row by row.
struct CheckedFile {
    count: FileCount,
    warnings: Vec<String>,
    rejected: Vec<(u64, Vec<Problem>)>,
    candidates: Vec<TxCandidate>,
}

fn check_transaction_file(store: &Store, file: &DeliveryFile, ctx: &Context) -> Result<CheckedFile> {
    let feed = Feed::Transactions;
    let l = load(store, file)?;
    let mut rejected = Vec::new();
    let mut candidates = Vec::new();
    let mut cells = Vec::new();
    for r in &l.raw.rows {
        if let Err(n) = l.raw.cells_into(r, &mut cells) {
            rejected.push((r.row, vec![bad_record(n)]));
            continue;
        }
        let mut rc = RowCheck::new(feed.columns(), &cells);
        match check_transaction(&mut rc, ctx, file.date) {
            Some(value) if rc.problems.is_empty() => {
                let raw = (value.transaction_type == TransactionType::Refund).then(|| Quoted::new(&cells));
                candidates.push(TxCandidate {
                    file: 0,
                    row: r.row,
                    canon: canonical_hash(feed, &cells),
                    value,
                    raw,
                });
            }
            _ => rejected.push((r.row, rc.problems)),
        }
    }
    Ok(CheckedFile { count: l.count(), warnings: l.raw.warnings, rejected, candidates })
}

/// A 64-bit hash of the [`canonical`] cells (foldhash, fixed seed; not a defence against
/// crafted collisions: see [`TxCandidate::canon`]).
fn canonical_hash(feed: Feed, cells: &[&str]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::quality::FixedState::with_seed(0x9e37_79b9_7f4a_7c15).build_hasher();
    for cell in canonical_cells(feed, cells) {
        cell.hash(&mut h);
    }
    h.finish()
}

/// `UNKNOWN_PARTNER` unless `id` names an accepted partner.
fn partner_ref(r: &mut RowCheck, ctx: &Context, col: usize, id: Option<&str>) -> Option<Text> {
    let id = id?;
    let found = ctx.partners.get(id).copied();
    if found.is_none() {
        r.fail_with(col, id, Code::UnknownPartner);
    }
    found
}

/// A required start date and an optional end date (`None` = not valid), with
/// `BAD_DATE_RANGE` when the end is before the start.
fn date_span(
    r: &mut RowCheck,
    start_col: usize,
    end_col: usize,
) -> (Option<NaiveDate>, Option<Option<NaiveDate>>) {
    let start = r.date(start_col);
    let end = r.opt_date(end_col);
    if let (Some(s), Some(Some(e))) = (start, end)
        && e < s
    {
        r.fail(end_col, Code::BadDateRange);
    }
    (start, end)
}

fn check_partner(r: &mut RowCheck) -> Option<Partner> {
    let partner_id = r.id(0);
    let partner_name = r.text(1);
    let country_code = r.country(2);
    let partner_type = r.one_of(3, &PartnerType::VALUES, Code::BadEnum);
    let network_registered_on = r.opt_date(4);
    Some(Partner {
        partner_id: partner_id?,
        partner_name: partner_name?,
        country_code: country_code?,
        partner_type: partner_type?,
        network_registered_on: network_registered_on?,
    })
}

fn check_agreement(r: &mut RowCheck, ctx: &Context) -> Option<Agreement> {
    let agreement_id = r.id(0);
    let partner_id = r.id(1);
    partner_ref(r, ctx, 1, partner_id.as_deref());
    let agreement_type = r.one_of(2, &AgreementType::VALUES, Code::BadEnum);
    let (start_date, end_date) = date_span(r, 3, 4);
    Some(Agreement {
        agreement_id: agreement_id?,
        partner_id: partner_id?,
        agreement_type: agreement_type?,
        start_date: start_date?,
        end_date: end_date?,
    })
}

fn check_competency(r: &mut RowCheck, ctx: &Context) -> Option<Competency> {
    let partner_id = r.id(0);
    partner_ref(r, ctx, 0, partner_id.as_deref());
    let competency = r.text(1);
    let level = r.one_of(2, &Level::VALUES, Code::BadEnum);
    let (start_date, end_date) = date_span(r, 3, 4);
    Some(Competency {
        partner_id: partner_id?,
        competency: competency?,
        level: level?,
        start_date: start_date?,
        end_date: end_date?,
    })
}

fn check_user(r: &mut RowCheck, ctx: &Context) -> Option<User> {
    let user_id = r.id(0);
    let partner_id = r.id(1);
    partner_ref(r, ctx, 1, partner_id.as_deref());
    let role = r.one_of(2, &Role::VALUES, Code::UnknownRole);
    Some(User { user_id: user_id?, partner_id: partner_id?, role: role? })
}

fn check_payment_profile(r: &mut RowCheck, ctx: &Context) -> Option<PaymentProfile> {
    let partner_id = r.id(0);
    partner_ref(r, ctx, 0, partner_id.as_deref());
    let payout_currency = r.currency(1);
    let bank_verified = r.boolean(2);
    let tax_verified = r.boolean(3);
    Some(PaymentProfile {
        partner_id: partner_id?,
        payout_currency: payout_currency?,
        bank_verified: bank_verified?,
        tax_verified: tax_verified?,
    })
}

/// Rates have at most this many integer digits (a sanity bound of ours: parquet reports hold
/// rates as Decimal(18, 8)).
const RATE_LIMIT: i128 = crate::decimal::pow10(10 + Rate::SCALE);

fn check_fx_rate(r: &mut RowCheck) -> Option<FxRate> {
    let currency = r.currency(0);
    let month = r.month(1);
    let usd_rate = r.decimal(2, Rate::SCALE);
    if let Some(rate) = usd_rate
        && (rate <= 0 || rate >= RATE_LIMIT)
    {
        r.fail(2, Code::OutOfRange);
    }
    Some(FxRate { currency: currency?, month: month?, usd_rate: Rate::new(usd_rate?) })
}

fn check_transaction(r: &mut RowCheck, ctx: &Context, delivered: NaiveDate) -> Option<Transaction> {
    let shared = Text::new;
    let transaction_id = r.id_str(0);
    let transaction_date = r.date(1);
    if let Some(d) = transaction_date
        && d > delivered
    {
        r.fail(1, Code::FutureDate);
    }
    let transaction_type = r.one_of(2, &TransactionType::VALUES, Code::BadEnum);
    let original_transaction_id = match transaction_type {
        Some(TransactionType::Refund) => r.id_str(3),
        Some(TransactionType::Sale) if !r.is_empty(3) => {
            r.fail(3, Code::UnexpectedValue);
            None
        }
        _ => None,
    };
    // Known partners' ids come back interned.
    let reseller_id = r.id_str(4);
    let reseller_id = partner_ref(r, ctx, 4, reseller_id);
    let provider_id = r.opt_id_str(5);
    let provider_id = partner_ref(r, ctx, 5, provider_id);
    let customer_id = r.id_str(6);
    let product_id = r.id_str(7);
    let product_family = r.required(8);
    let quantity = r.integer(9);
    if let Some(q) = quantity
        && !(1..=MAX_QUANTITY).contains(&q)
    {
        r.fail(9, Code::OutOfRange);
    }
    let amount = r.decimal(10, Amount::SCALE);
    if let Some(a) = amount {
        let wrong_sign = match transaction_type {
            Some(TransactionType::Sale) => a <= 0,
            Some(TransactionType::Refund) => a >= 0,
            None => false,
        };
        if wrong_sign || a.abs() >= AMOUNT_LIMIT {
            r.fail(10, Code::OutOfRange);
        }
    }
    let currency = r.currency_str(11);
    if let (Some(c), Some(d)) = (currency, transaction_date)
        && c != "USD"
        && !ctx.rates.get(c).is_some_and(|months| months.contains(&crate::model::dates::month_of(d)))
    {
        r.fail(11, Code::NoFxRate);
    }
    if !r.problems.is_empty() {
        return None;
    }
    Some(Transaction {
        transaction_id: Text::fresh(transaction_id?),
        transaction_date: transaction_date?,
        transaction_type: transaction_type?,
        original_transaction_id: match transaction_type? {
            TransactionType::Refund => Some(Text::fresh(original_transaction_id?)),
            TransactionType::Sale => None,
        },
        reseller_id: reseller_id?,
        provider_id,
        customer_id: shared(customer_id?),
        product_id: shared(product_id?),
        product_family: shared(product_family?),
        quantity: i32::try_from(quantity?).expect("checked: 1 to MAX_QUANTITY"),
        amount: i64::try_from(amount?).expect("checked: below AMOUNT_LIMIT"),
        currency: shared(currency?),
        delivery_date: delivered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A refund's quoted cells read back as they were, empty and non-ASCII ones included.
        #[test]
        fn quoted_cells_read_back_as_given(cells in prop::collection::vec("[a-zé ,\"]{0,6}", 12)) {
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            let q = Quoted::new(&refs);
            for col in Quoted::COLUMNS {
                prop_assert_eq!(q.get(col), refs[Feed::Transactions.col(col)]);
            }
        }
    }

    /// The snapshot key check as first written: a map from each row's key to its rows.
    fn verdicts_by_map(feed: Feed, rows: &[Vec<&str>]) -> Vec<Option<Code>> {
        let mut groups: HashMap<Vec<String>, Vec<usize>> = HashMap::default();
        for (i, cells) in rows.iter().enumerate() {
            groups.entry(key_of(feed, cells)).or_default().push(i);
        }
        let mut verdict = vec![None; rows.len()];
        for members in groups.values() {
            let first = canonical(feed, &rows[members[0]]);
            let agree = members.iter().all(|&m| canonical(feed, &rows[m]) == first);
            for (n, &m) in members.iter().enumerate() {
                verdict[m] = match (agree, n) {
                    (true, 0) => None,
                    (true, _) => Some(Code::DuplicateRow),
                    (false, _) => Some(Code::ConflictingDuplicate),
                };
            }
        }
        verdict
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Competencies have a three-column key whose ids are compared trimmed.
        #[test]
        fn snapshot_copies_are_found_by_sorting_as_by_a_map(
            picks in prop::collection::vec((0..3usize, 0..2usize, 0..2usize, 0..2usize, 0..2usize), 0..40),
        ) {
            let feed = Feed::Competencies;
            let rows: Vec<Vec<&str>> = picks
                .iter()
                .map(|&(p, c, l, s, e)| {
                    vec![["P1", " P1", "P2"][p], ["cloud", "data"][c], ["gold", "silver"][l],
                         ["2026-01-01", "2026-02-01"][s], ["", "2026-12-31"][e]]
                })
                .collect();
            let mut v = Validator { ingest: Ingest::default(), ctx: Context::default(), spill: None };
            v.ingest.files.push(FileCount {
                feed,
                path: "competencies/2026-09-01.csv".into(),
                delivery_date: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
                size: 0,
                sha256: String::new(),
                rows: rows.len() as u64,
                accepted: 0,
                rejected: 0,
            });
            let candidates = rows
                .iter()
                .enumerate()
                .map(|(i, cells)| Candidate { file: 0, row: i as u64 + 1, cells: cells.clone(), value: i })
                .collect();
            let accepted = v.snapshot_keys(feed, candidates);
            let expected = verdicts_by_map(feed, &rows);
            let kept: Vec<usize> = (0..rows.len()).filter(|&i| expected[i].is_none()).collect();
            prop_assert_eq!(accepted, kept);
            let mut rejected: Vec<(u64, Code)> = v.ingest.rejects.iter().map(|r| (r.row, r.code)).collect();
            rejected.sort();
            let wanted: Vec<(u64, Code)> =
                expected.iter().enumerate().filter_map(|(i, c)| c.map(|c| (i as u64 + 1, c))).collect();
            prop_assert_eq!(rejected, wanted);
            prop_assert_eq!(v.ingest.files[0].accepted + v.ingest.files[0].rejected, rows.len() as u64);
        }
    }
}
