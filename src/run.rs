//! One run date, start to finish: load the programs, list the landing zone, take the date's
//! lock, ingest and validate the feeds, apply the rules, stage every report and export, write
//! the manifest last, and publish the whole run at once. `validate` stops after ingestion and
//! writes nothing.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::{self, Program};
use crate::error::{Error, Result};
use crate::feeds::tables::Transaction;
use crate::feeds::{self, Ingest, Landing};
use crate::publish::Publication;
use crate::reports::manifest::{Manifest, Output, ProgramFile};
use crate::reports::tables::{Report, Source};
use crate::reports::writer::{self, Chunk};
use crate::reports::{Table, csv_out, exports, rejects};
use crate::rules;
use crate::store::Store;
use rayon::prelude::*;

/// What a run is asked to do (the command line, as data).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) input: String,
    pub(crate) programs: String,
    pub(crate) date: Option<NaiveDate>,
    pub(crate) output: String,
    pub(crate) keep_going: bool,
    /// Transactions per partner range of the rules (see [`rules::Plan`]).
    pub(crate) range_lines: usize,
    /// Stage lines on stderr (a person at a terminal, not cron).
    pub(crate) progress: bool,
    /// When the accepted transactions go to a local file instead of memory.
    pub(crate) spill: feeds::validate::SpillPolicy,
}

/// What a run did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) run_date: NaiveDate,
    /// Whether the date was taken from the newest delivery (no `--date`).
    pub(crate) date_was_defaulted: bool,
    pub(crate) programs: Vec<Program>,
    pub(crate) ingest: Ingest,
    /// Paths (relative to the output location) of the files published, manifest last.
    pub(crate) written: Vec<String>,
}

/// Stage lines for a person at a terminal; a log line otherwise.
struct Progress {
    on: bool,
    step: usize,
    started: std::time::Instant,
}

impl Progress {
    const STEPS: usize = 5;

    fn new(requested: bool) -> Progress {
        Progress {
            on: requested && std::io::stderr().is_terminal(),
            step: 0,
            started: std::time::Instant::now(),
        }
    }

    /// The run's end, with its time (the stage times tell where a run spends it).
    fn done(&self) {
        tracing::info!(elapsed_s = %format!("{:.1}", self.started.elapsed().as_secs_f64()), "published");
    }

    fn stage(&mut self, what: &str) {
        self.step += 1;
        let elapsed = format!("{:.1}", self.started.elapsed().as_secs_f64());
        if self.on {
            eprintln!("[{}/{}] {what} ({elapsed} s)", self.step, Self::STEPS);
        }
        tracing::info!(stage = self.step, elapsed_s = %elapsed, "{what}");
    }
}

/// The programs, the landing zone and the run date: everything known before reading a row.
struct Prepared {
    programs: Vec<Program>,
    input: Store,
    landing: Landing,
    run_date: NaiveDate,
    date_was_defaulted: bool,
}

fn prepare(opts: &Options) -> Result<Prepared> {
    let programs = config::load_programs(&Store::open(&opts.programs)?)?;
    let input = Store::open(&opts.input)?;
    let landing = Landing::scan(&input)?;
    let (run_date, date_was_defaulted) = match opts.date {
        Some(d) => (d, false),
        None => (
            landing.newest_date().ok_or_else(|| {
                Error::config(format!(
                    "no delivery file in {}; give the run date with --date",
                    input.display("")
                ))
            })?,
            true,
        ),
    };
    for i in &landing.ignored {
        tracing::warn!("ignored {}: {}", input.display(&i.path), i.reason);
    }
    Ok(Prepared { programs, input, landing, run_date, date_was_defaulted })
}

fn ingest(p: &Prepared, opts: &Options) -> Result<Ingest> {
    crate::allocator::reuse_freed_memory_until_collected();
    let ingest = feeds::validate::ingest_spilling(
        &p.input,
        &p.landing,
        p.run_date,
        opts.keep_going,
        Some(&opts.spill),
    )?;
    for w in &ingest.warnings {
        tracing::warn!("{w}");
    }
    for s in &ingest.skipped {
        tracing::warn!("skipped {}: {}", p.input.display(&s.path), s.reason);
    }
    Ok(ingest)
}

/// Loads the programs, lists the landing zone and validates every feed for the run date.
pub(crate) fn validate(opts: &Options) -> Result<Outcome> {
    let p = prepare(opts)?;
    let ingest = ingest(&p, opts)?;
    Ok(Outcome {
        run_date: p.run_date,
        date_was_defaulted: p.date_was_defaulted,
        programs: p.programs,
        ingest,
        written: Vec::new(),
    })
}

/// A stable id of what a run computes from: the same inputs, programs and version give the
/// same id, so it can stand in reports that must be byte-identical on a re-run.
fn run_id(run_date: NaiveDate, ingest: &Ingest, programs: &[Program]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}\n{run_date}\n", env!("CARGO_PKG_VERSION")));
    for f in &ingest.files {
        h.update(format!("in {} {}\n", f.path, f.sha256));
    }
    for s in &ingest.skipped {
        h.update(format!("skipped {}\n", s.path));
    }
    for p in programs {
        h.update(format!("program {} {}\n", p.file, p.sha256));
    }
    feeds::validate::hex(&h.finalize()[..8])
}

/// The daily job: validate, apply the rules, write every report, then publish atomically.
pub(crate) fn run(opts: &Options) -> Result<Outcome> {
    let started_at = now();
    let mut progress = Progress::new(opts.progress);
    progress.stage("reading programs and listing the landing zone");
    let p = prepare(opts)?;
    let d = p.run_date;
    let out = Store::create(&opts.output)?;
    let mut publication = Publication::begin(&out, d)?;
    progress.stage(&format!("validating the feeds for {d}"));
    let ingest = ingest(&p, opts)?;
    progress.stage("applying the rules and writing the reports");
    crate::allocator::keep_freed_memory_from_now();
    let data_as_of = ingest.data_as_of();
    let run_id = run_id(d, &ingest, &p.programs);
    let metadata = [
        ("program_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_date", d.to_string()),
        ("run_id", run_id.clone()),
    ];
    let plan = rules::Plan::new(&ingest.feeds, &p.programs, d, opts.range_lines)?;
    let partner_ids = plan.partner_ids();
    // A partner's export of a report holds its rows of the report, program by program.
    let exported = exported_reports();
    let headers = exported
        .iter()
        .map(|&k| {
            let report = Report::ALL[k];
            let shape =
                Source { report, run_date: d, data_as_of, results: &[], partners: &partner_ids }.table(&[]);
            (report.name(), csv_out::to_csv(&shape))
        })
        .collect();
    let exporter = exports::Exporter::new(d, &partner_ids, headers, &ingest.feeds.users);
    let mut folders = publication.folder_writer(FOLDER_WRITERS);
    let (reports, exported_early) =
        write_reports(&mut publication, &plan, &partner_ids, data_as_of, &metadata, &exporter, &mut folders)?;
    progress.stage("writing the exports");
    let started = std::time::Instant::now();
    let mut staging =
        Staging { publication: &mut publication, outputs: BTreeMap::new(), written: Vec::new() };
    for (_, w) in &reports {
        staging.record(w);
    }
    let rejects = rejects::table(d, &ingest.rejects);
    let shape = rejects.empty_like();
    let whole = |table| Chunk { table, keys: Vec::new() };
    staging.report(&shape, std::iter::once(rejects), whole, d, &metadata)?;
    // The partners not exported during the rules (their type has several programs, or none)
    // are cut from the reports' staged CSVs.
    let exported: Vec<&ReportWritten> = exported.iter().map(|&k| &reports[k]).collect();
    let rest: Vec<usize> = (0..partner_ids.len()).filter(|&i| !exported_early[i]).collect();
    let staged: Vec<crate::publish::Staged> = if rest.is_empty() {
        Vec::new()
    } else {
        exported.iter().map(|(_, w)| staging.publication.open_staged(&w.csv.0)).collect::<Result<_>>()?
    };
    let programs = plan.programs.len() as u32;
    let positions = |r: std::ops::Range<usize>| r.start as u32..r.end as u32;
    let read_run = |k: usize, run, next: Option<std::ops::Range<usize>>| -> Result<writer::Run> {
        let w = &exported[k].1;
        if let Some(next) = next {
            for r in writer::run_ranges(&w.segments, programs, positions(next)) {
                staged[k].will_need(r);
            }
        }
        writer::Run::read(&staged[k], &w.segments, programs, positions(run))
            .map_err(Error::io("reading back", &w.csv.0))
    };
    let file_of = |run: &writer::Run, k: usize, i: usize| {
        run.cut(&exported[k].1.segments, i as u32, exporter.header(k))
    };
    exporter.export(&rest, read_run, file_of, |batch| folders.send(batch))?;
    let mut written_exports = folders.finish()?;
    written_exports.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    staging.publication.adopt(&written_exports);
    for w in written_exports {
        staging.outputs.insert(w.path.clone(), Output { rows: w.rows, sha256: w.sha256 });
        staging.written.push(w.path);
    }
    tracing::debug!(
        partners = partner_ids.len(),
        after_rules = rest.len(),
        exports_s = %format!("{:.1}", started.elapsed().as_secs_f64()),
        "exported"
    );
    let Staging { outputs, mut written, .. } = staging;
    let (inputs, ignored, skipped, totals) = Manifest::inputs(&ingest);
    let mut manifest = Manifest {
        run_date: d.to_string(),
        run_id,
        published_from: publication.staging().to_string(),
        started_at,
        finished_at: now(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        programs: p
            .programs
            .iter()
            .map(|p| (p.file.clone(), ProgramFile { id: p.id.clone(), sha256: p.sha256.clone() }))
            .collect(),
        data_as_of: data_as_of.map(|d| d.to_string()),
        inputs,
        ignored,
        skipped,
        outputs,
        totals,
    };
    let path = crate::publish::manifest_path(d);
    let mut file = publication.create(&path)?;
    for part in manifest.json_parts() {
        std::io::Write::write_all(&mut file, &part).map_err(Error::io("writing", &path))?;
    }
    publication.finish(file)?;
    written.push(path);
    progress.stage("publishing");
    publication.commit()?;
    progress.done();
    Ok(Outcome {
        run_date: d,
        date_was_defaulted: p.date_was_defaulted,
        programs: p.programs,
        ingest,
        written,
    })
}

/// Rows of a report built and encoded at a time. A chunk's table (or, for the earnings, its
/// lines with what they look up) is read column by column for Arrow and row by row for the
/// CSV, so it should stay in a core's cache: about 1.5 MB at 2048 rows, 40 MB at 65 536 (with
/// the earnings' table). Measured at 10 M lines, rules and reports took 54 s at 2048 rows, 61 s
/// at 4096 and 72 s at 65 536. A multiple of arrow's 1024-row write batches.
const CHUNK_ROWS: usize = 1 << 11;

/// The files a run has staged, with what the manifest says of each.
struct Staging<'p> {
    publication: &'p mut Publication,
    outputs: BTreeMap<String, Output>,
    written: Vec<String>,
}

impl Staging<'_> {
    /// Writes a whole report as CSV and parquet (see [`writer::write_report`]).
    fn report<'r, C: Send>(
        &mut self,
        shape: &Table,
        chunks: impl Iterator<Item = C>,
        build: impl Fn(C) -> Chunk<'r> + Sync,
        d: NaiveDate,
        metadata: &[(&str, String)],
    ) -> Result<()> {
        let w = writer::write_report(self.publication, shape, chunks, build, d, metadata)?;
        self.record(&w);
        Ok(())
    }

    /// Records a report's two files.
    fn record(&mut self, w: &writer::Written) {
        for (path, sha256) in [w.csv.clone(), w.parquet.clone()] {
            self.outputs.insert(path.clone(), Output { rows: w.rows, sha256 });
            self.written.push(path);
        }
    }
}

/// Pieces of the rules (see [`rules::Plan`]) computed and encoded at a time, while the group
/// before them is written: enough to keep every core busy, few enough to bound memory.
const PIECES_IN_FLIGHT: usize = 8;

/// Threads writing export folders (see [`crate::publish::FolderWriter`]): their time is
/// mostly the kernel's file creation and waits on the disk, beside the compute pool. More
/// threads than cores, since a direct write waits for the disk: at 30 M the rules waited
/// 54.7 s for room in the queue with 2 writers, 33.0 s with 4, 17.9 s with 8 (and the cores
/// were then busy: 1-3 % idle, against 10-20 % with 2).
const FOLDER_WRITERS: usize = 8;

/// Export folders handed to the writers at a time: a group's folders are queued in batches,
/// so that the queue holds a bounded share of them.
const FOLDER_BATCH: usize = 64;

/// The exported reports ([`exports::EXPORTED`], in that order) as indexes in `Report::ALL`
/// (the order of the reports a run writes).
fn exported_reports() -> Vec<usize> {
    exports::EXPORTED
        .iter()
        .map(|&n| Report::ALL.iter().position(|r| r.name() == n).expect("exported reports are reports"))
        .collect()
}

/// A report and what its writer wrote.
type ReportWritten = (Report, writer::Written);

/// Of one exported report: (program, partner) -> the bytes of its rows, in order (slices of
/// the encoded chunks), and their count.
type ReportParts = crate::hash::HashMap<writer::Key, (Vec<bytes::Bytes>, u64)>;

/// Applies the rules a group of pieces at a time and writes the five reports side by side:
/// a group's pieces are computed, then its rows encoded, in parallel, while the group before
/// it is appended to the reports. No more than two groups' rows are ever held.
///
/// A partner's export folder is made from its group's encoded rows when the piece's program is
/// the only one of the partner's type (every report row of a partner belongs to a program of
/// its type, rules.md), and queued to `folders`: the exports are written while the rules run,
/// from bytes in memory. Returns the reports and which partners (by position) were exported.
fn write_reports<'a>(
    publication: &mut Publication,
    plan: &rules::Plan<'a>,
    partners: &[&'a str],
    data_as_of: Option<NaiveDate>,
    metadata: &[(&str, String)],
    exporter: &exports::Exporter,
    folders: &mut crate::publish::FolderWriter,
) -> Result<(Vec<ReportWritten>, Vec<bool>)> {
    let d = plan.run_date();
    let shape = |report| Source { report, run_date: d, data_as_of, results: &[], partners }.table(&[]);
    let mut writers = Report::ALL
        .iter()
        .map(|&r| writer::ReportWriter::new(publication, &shape(r), d, metadata))
        .collect::<Result<Vec<_>>>()?;
    let schemas: Vec<_> = writers.iter().map(|w| w.schema().clone()).collect();
    // The programs that are the only one of their partner type.
    let exported = exported_reports();
    let sole: Vec<bool> = plan
        .programs
        .iter()
        .map(|p| plan.programs.iter().filter(|q| q.partner_type == p.partner_type).count() == 1)
        .collect();
    type Group = (Vec<Vec<writer::Encoded>>, Vec<crate::publish::Folder>);
    let compute = |pieces: &[(usize, usize)]| -> Result<Group> {
        // Spilled rows are read back for the group and live until its rows are encoded.
        let loaded: Vec<Vec<Transaction>> =
            pieces.par_iter().map(|&(p, r)| plan.load(p, r)).collect::<Result<_>>()?;
        let results: Vec<rules::ProgramResult> = pieces
            .par_iter()
            .zip(&loaded)
            .map(|(&(p, r), loaded)| plan.piece(p, r, &plan.rows(p, r, loaded)))
            .collect::<Result<_>>()?;
        let source = |report| Source { report, run_date: d, data_as_of, results: &results, partners };
        let mut jobs = Vec::new();
        for (k, &report) in Report::ALL.iter().enumerate() {
            jobs.extend(source(report).chunks(CHUNK_ROWS).map(|rows| (k, rows)));
        }
        let encoded: Vec<(usize, writer::Encoded)> = jobs
            .into_par_iter()
            .map(|(k, rows)| {
                let s = source(Report::ALL[k]);
                let keys = if exported.contains(&k) { s.keys(&rows)? } else { Vec::new() };
                Ok((k, s.encode(&rows, keys, &schemas[k])?))
            })
            .collect::<Result<_>>()?;
        let mut by_report: Vec<Vec<writer::Encoded>> = Report::ALL.iter().map(|_| Vec::new()).collect();
        for (k, e) in encoded {
            by_report[k].push(e);
        }
        let folders = early_folders(plan, pieces, &by_report, &exported, &sole, exporter);
        Ok((by_report, folders))
    };
    let mut send = |batch: Vec<crate::publish::Folder>| -> Result<()> {
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            folders.send(batch.by_ref().take(FOLDER_BATCH).collect())?;
        }
        Ok(())
    };
    let pieces = plan.pieces();
    let mut groups = pieces.chunks(PIECES_IN_FLIGHT);
    let mut ready = match groups.next().map(compute).transpose()? {
        Some((encoded, early)) => {
            send(early)?;
            encoded
        }
        None => Vec::new(),
    };
    // Time spent computing and encoding, and appending to each report (stage balance, at -vv).
    let mut computing = 0.0;
    let busy: Vec<std::sync::atomic::AtomicU64> = Report::ALL.iter().map(|_| Default::default()).collect();
    loop {
        let upcoming = groups.next();
        let (written, next) = rayon::join(
            || {
                writers.par_iter_mut().zip(&ready).zip(&busy).try_for_each(|((w, e), busy)| {
                    let started = std::time::Instant::now();
                    let r = w.write(e);
                    busy.fetch_add(
                        started.elapsed().as_micros() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    r
                })
            },
            || {
                let started = std::time::Instant::now();
                let r = upcoming.map(compute).transpose();
                computing += started.elapsed().as_secs_f64();
                r
            },
        );
        written?;
        match next? {
            Some((encoded, early)) => {
                send(early)?;
                ready = encoded;
            }
            None => break,
        }
    }
    tracing::debug!(computing_s = %format!("{computing:.1}"), "rules applied and rows encoded");
    for (r, b) in Report::ALL.iter().zip(&busy) {
        let b = b.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
        tracing::debug!(report = r.name(), appending_s = %format!("{b:.1}"), "report appended");
    }
    let reports: Vec<ReportWritten> = writers
        .into_iter()
        .zip(Report::ALL)
        .map(|(w, r)| Ok((r, w.finish(publication)?)))
        .collect::<Result<_>>()?;
    // Which partners went early, and a check of the premise: none of them has a row in a
    // program other than the sole one of its type (that row would be missing from its export).
    let early: Vec<bool> = (0..partners.len())
        .map(|i| {
            plan.programs.iter().zip(&sole).any(|(p, &s)| s && p.partner_type == plan.partner(i).partner_type)
        })
        .collect();
    for &k in &exported {
        for &(p, i) in reports[k].1.segments.keys() {
            let (program, partner) = (plan.programs[p as usize], plan.partner(i as usize));
            if early[i as usize] && program.partner_type != partner.partner_type {
                return Err(Error::internal(format!(
                    "{}: partner {} has rows in program {}, not of its type",
                    Report::ALL[k].name(),
                    partner.partner_id,
                    program.id
                )));
            }
        }
    }
    Ok((reports, early))
}

/// The export folders of a group's partners whose type has one program, cut from the group's
/// encoded rows (`by_report`, indexed as `Report::ALL`; `exported` in the exporter's order):
/// each partner's rows of that program lie in the group, as one piece's rows.
fn early_folders(
    plan: &rules::Plan,
    pieces: &[(usize, usize)],
    by_report: &[Vec<writer::Encoded>],
    exported: &[usize],
    sole: &[bool],
    exporter: &exports::Exporter,
) -> Vec<crate::publish::Folder> {
    let parts: Vec<ReportParts> = exported
        .iter()
        .map(|&k| {
            let mut parts = ReportParts::default();
            for (key, bytes, rows) in by_report[k].iter().flat_map(writer::Encoded::keyed) {
                let part = parts.entry(key).or_default();
                part.0.push(bytes);
                part.1 += rows;
            }
            parts
        })
        .collect();
    let partners: Vec<(u32, usize)> = pieces
        .iter()
        .filter(|&&(p, _)| sole[p])
        .flat_map(|&(p, r)| {
            let ty = plan.programs[p].partner_type;
            plan.range(r).filter(move |&i| plan.partner(i).partner_type == ty).map(move |i| (p as u32, i))
        })
        .collect();
    partners
        .into_par_iter()
        .map(|(p, i)| {
            exporter.folder(i, |x| {
                let header = exporter.header(x).clone();
                let Some((runs, rows)) = parts[x].get(&(p, i as u32)) else { return (0, vec![header]) };
                (*rows, std::iter::once(header).chain(runs.iter().cloned()).collect())
            })
        })
        .collect()
}

/// The current time, RFC 3339 in UTC: only the manifest carries wall-clock time.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
