//! One run date, start to finish: load the programs, list the landing zone, ingest and validate
//! the feeds, write the reports, then the manifest (last). `validate` stops after ingestion
//! and writes nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::{self, Program};
use crate::error::{Error, Result};
use crate::feeds::{self, Ingest, Landing};
use crate::reports::manifest::{Manifest, Output, ProgramFile};
use crate::reports::{Table, csv_out, exports, parquet_out, rejects, tables};
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
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub run_date: NaiveDate,
    /// Whether the date was taken from the newest delivery (no `--date`).
    pub date_was_defaulted: bool,
    pub programs: Vec<Program>,
    pub ingest: Ingest,
    /// Paths (relative to the output location) of the files written, manifest last.
    pub written: Vec<String>,
}

/// Loads the programs, lists the landing zone and validates every feed for the run date.
pub fn validate(opts: &Options) -> Result<Outcome> {
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
    let ingest = feeds::ingest(&input, &landing, run_date, opts.keep_going)?;
    for w in &ingest.warnings {
        tracing::warn!("{w}");
    }
    for s in &ingest.skipped {
        tracing::warn!("skipped {}: {}", input.display(&s.path), s.reason);
    }
    Ok(Outcome { run_date, date_was_defaulted, programs, ingest, written: Vec::new() })
}

/// The daily job: validate, then write the reports and the manifest.
pub fn run(opts: &Options) -> Result<Outcome> {
    let started_at = now();
    let mut outcome = validate(opts)?;
    let out = Store::create(&opts.output)?;
    let d = outcome.run_date;
    let metadata = [("program_version", env!("CARGO_PKG_VERSION").to_string()), ("run_date", d.to_string())];
    let data_as_of = outcome.ingest.data_as_of();
    let feeds = &outcome.ingest.feeds;
    let results = rules::evaluate(feeds, &outcome.programs, d)?;
    let tables = [
        tables::eligibility(d, &results),
        tables::earnings(d, &results),
        tables::unearned(d, &results),
        tables::payouts(d, &results),
        tables::dashboard(d, data_as_of, &results),
        rejects::table(d, &outcome.ingest.rejects),
    ];
    let mut files: Vec<(String, u64, Vec<u8>)> = Vec::new();
    for table in &tables {
        for (path, bytes) in report_files(table, d, &metadata)? {
            files.push((path, table.rows() as u64, bytes));
        }
    }
    let mut partner_ids: Vec<&str> = feeds.partners.iter().map(|p| p.partner_id.as_str()).collect();
    partner_ids.sort_unstable();
    let table_refs: Vec<&Table> = tables.iter().collect();
    files.extend(exports::export_files(d, &partner_ids, &feeds.users, &table_refs));
    let mut outputs = BTreeMap::new();
    for (path, rows, bytes) in files {
        outputs.insert(path.clone(), Output { rows, sha256: feeds::validate::hex(&Sha256::digest(&bytes)) });
        out.put(&path, bytes)?;
        outcome.written.push(path);
    }
    let (inputs, ignored, skipped, totals) = Manifest::inputs(&outcome.ingest);
    let manifest = Manifest {
        run_date: d.to_string(),
        started_at,
        finished_at: now(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        programs: outcome
            .programs
            .iter()
            .map(|p| (p.file.clone(), ProgramFile { id: p.id.clone(), sha256: p.sha256.clone() }))
            .collect(),
        data_as_of: outcome.ingest.data_as_of().map(|d| d.to_string()),
        inputs,
        ignored,
        skipped,
        outputs,
        totals,
    };
    let path = format!("runs/{d}/manifest.json");
    out.put(&path, manifest.to_json())?;
    outcome.written.push(path);
    Ok(outcome)
}

/// The CSV and parquet files of one report: `(path, bytes)`.
fn report_files(table: &Table, d: NaiveDate, metadata: &[(&str, String)]) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = format!("{}/run_date={d}", table.name);
    Ok(vec![
        (format!("{dir}/{}.csv", table.name), csv_out::to_csv(table)),
        (format!("{dir}/part-0.parquet"), parquet_out::to_parquet(table, metadata)?),
    ])
}

/// The current time, RFC 3339 in UTC: only the manifest carries wall-clock time.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
