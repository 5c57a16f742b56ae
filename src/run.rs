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
use crate::feeds::{self, Ingest, Landing};
use crate::publish::Publication;
use crate::reports::manifest::{Manifest, Output, ProgramFile};
use crate::reports::tables::{Report, Source};
use crate::reports::writer::{self, Chunk};
use crate::reports::{Table, csv_out, exports, rejects};
use crate::rules;
use crate::store::Store;

/// What a run is asked to do (the command line, as data).
#[derive(Debug, Clone)]
pub struct Options {
    pub input: String,
    pub programs: String,
    pub date: Option<NaiveDate>,
    pub output: String,
    pub keep_going: bool,
    /// Stage lines on stderr (a person at a terminal, not cron).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub run_date: NaiveDate,
    /// Whether the date was taken from the newest delivery (no `--date`).
    pub date_was_defaulted: bool,
    pub programs: Vec<Program>,
    pub ingest: Ingest,
    /// Paths (relative to the output location) of the files published, manifest last.
    pub written: Vec<String>,
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

fn ingest(p: &Prepared, keep_going: bool) -> Result<Ingest> {
    let ingest = feeds::ingest(&p.input, &p.landing, p.run_date, keep_going)?;
    for w in &ingest.warnings {
        tracing::warn!("{w}");
    }
    for s in &ingest.skipped {
        tracing::warn!("skipped {}: {}", p.input.display(&s.path), s.reason);
    }
    Ok(ingest)
}

/// Loads the programs, lists the landing zone and validates every feed for the run date.
pub fn validate(opts: &Options) -> Result<Outcome> {
    let p = prepare(opts)?;
    let ingest = ingest(&p, opts.keep_going)?;
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
pub fn run(opts: &Options) -> Result<Outcome> {
    let started_at = now();
    let mut progress = Progress::new(opts.progress);
    progress.stage("reading programs and listing the landing zone");
    let p = prepare(opts)?;
    let d = p.run_date;
    let out = Store::create(&opts.output)?;
    let mut publication = Publication::begin(&out, d)?;
    progress.stage(&format!("validating the feeds for {d}"));
    let ingest = ingest(&p, opts.keep_going)?;
    progress.stage("applying the rules");
    let data_as_of = ingest.data_as_of();
    let run_id = run_id(d, &ingest, &p.programs);
    let results = rules::evaluate(&ingest.feeds, &p.programs, d)?;
    progress.stage("writing reports and exports");
    let metadata = [
        ("program_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_date", d.to_string()),
        ("run_id", run_id.clone()),
    ];
    // Each report is written a chunk of rows at a time, straight into its staged files, then
    // exported partner by partner; small files are staged as soon as they are made.
    let mut staging = Staging {
        publication: &mut publication,
        pending: Vec::new(),
        outputs: BTreeMap::new(),
        written: Vec::new(),
    };
    let mut partner_ids: Vec<&str> = ingest.feeds.partners.iter().map(|p| p.partner_id.as_str()).collect();
    partner_ids.sort_unstable();
    for report in Report::ALL {
        let started = std::time::Instant::now();
        let source = Source { report, run_date: d, data_as_of, results: &results };
        let exported = exports::EXPORTED.contains(&report.name());
        let build = |rows: Vec<_>| Chunk {
            table: source.table(&rows),
            keys: if exported { source.keys(&rows) } else { Vec::new() },
        };
        let w = staging.report(
            &source.table(&[]),
            source.rows(),
            source.chunks(CHUNK_ROWS),
            build,
            d,
            &metadata,
        )?;
        let written = started.elapsed().as_secs_f64();
        if exported {
            // A partner's export holds its rows of the report, program by program: cut from the
            // report's CSV where it is a local file, else formatted again.
            let header = csv_out::to_csv(&source.table(&[]));
            let staged = staging.publication.open_staged(&w.csv.0)?;
            let file_of = |id: &str| -> Result<(u64, Vec<u8>)> {
                let Some(file) = &staged else {
                    return Ok(exports::csv_file(&source.table(&source.partner_rows(id))));
                };
                writer::cut(file, &w.segments, results.len() as u32, id, &header)
                    .map_err(|e| Error::Storage(format!("reading back {}: {e}", w.csv.0)))
            };
            exports::export_report(d, &partner_ids, report.name(), file_of, |p, n, b| {
                staging.small(p, n, b)
            })?;
        }
        tracing::debug!(
            report = report.name(),
            rows = source.rows(),
            report_s = %format!("{written:.1}"),
            exports_s = %format!("{:.1}", started.elapsed().as_secs_f64() - written),
            "written"
        );
    }
    let rejects = rejects::table(d, &ingest.rejects);
    let (shape, rows) = (rejects.empty_like(), rejects.rows());
    let whole = |table| Chunk { table, keys: Vec::new() };
    staging.report(&shape, rows, std::iter::once(rejects), whole, d, &metadata)?;
    exports::export_access(d, &partner_ids, &ingest.feeds.users, |p, n, b| staging.small(p, n, b))?;
    staging.flush()?;
    let Staging { outputs, mut written, .. } = staging;
    let (inputs, ignored, skipped, totals) = Manifest::inputs(&ingest);
    let manifest = Manifest {
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
    publication.write(&path, &manifest.to_json())?;
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

/// Rows of a report built and written at a time: small enough to bound memory, large enough
/// that the CSV and parquet writers work in long runs.
const CHUNK_ROWS: usize = 1 << 16;

/// The files a run has staged, with what the manifest says of each.
struct Staging<'p> {
    publication: &'p mut Publication,
    /// Small files made but not yet written.
    pending: Vec<(String, Vec<u8>)>,
    outputs: BTreeMap<String, Output>,
    written: Vec<String>,
}

impl Staging<'_> {
    /// Stages a small file made in memory (an export); they are written in parallel batches.
    fn small(&mut self, path: String, rows: u64, bytes: Vec<u8>) -> Result<()> {
        self.outputs.insert(path.clone(), Output { rows, sha256: feeds::validate::sha256_hex(&bytes) });
        self.written.push(path.clone());
        self.pending.push((path, bytes));
        if self.pending.len() >= 1024 {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the small files not yet written.
    fn flush(&mut self) -> Result<()> {
        self.publication.write_many(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// Writes one report of `rows` rows as CSV and parquet (see [`writer::write_report`]).
    fn report<'r, C: Send>(
        &mut self,
        shape: &Table,
        rows: usize,
        chunks: impl Iterator<Item = C>,
        build: impl Fn(C) -> Chunk<'r> + Sync,
        d: NaiveDate,
        metadata: &[(&str, String)],
    ) -> Result<writer::Written<'r>> {
        let w = writer::write_report(self.publication, shape, chunks, build, d, metadata)?;
        for (path, sha256) in [w.csv.clone(), w.parquet.clone()] {
            self.outputs.insert(path.clone(), Output { rows: rows as u64, sha256 });
            self.written.push(path);
        }
        Ok(w)
    }
}

/// The current time, RFC 3339 in UTC: only the manifest carries wall-clock time.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
