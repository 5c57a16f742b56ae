//! Everything a run publishes but the manifest, behind one component: the reports of the
//! rules' results ([`REPORTS`]), the rejects report and every partner's export folder, staged
//! under the run's [`Publication`], and what the manifest says of each file.
//!
//! A run hands it the rules' results a group of pieces at a time (see [`crate::rules::Plan`]):
//! [`Encoder::encode`] turns a group's results into the CSV bytes and Arrow rows of every
//! report, and the export folders that are complete with them; [`Outputs::append`] writes a
//! group. The two are separate so that a run encodes the next group while this one is written.
//! [`Outputs::finish`] writes the rejects, the remaining exports, and returns the files.
//!
//! Exports take one of two paths, with the same bytes. Every row of a partner belongs to a
//! program of the partner's type (rules.md), so where a type has one program a partner's
//! files are complete when its range's piece of that program is encoded: its folder is cut
//! from the encoded bytes in memory and queued to the folder writers while the rules go on.
//! Partners of a type with several programs (or none) are exported at the end, cut from the
//! staged report CSVs. Adding a report or an export file is a declaration in
//! [`super::tables`] ([`REPORTS`]) or [`super::exports`], not an edit here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::Schema;
use chrono::NaiveDate;
use rayon::prelude::*;

use super::exports::{self, Exporter};
use super::manifest::Output;
use super::tables::{REPORTS, Report, Source};
use super::writer::{self, Chunk, Encoded, ReportWriter};
use super::{csv_out, rejects};
use crate::error::{Error, Result};
use crate::feeds::Reject;
use crate::feeds::tables::User;
use crate::publish::{Folder, FolderWriter, Publication};
use crate::rules::{Plan, ProgramResult};

/// Rows of a report built and encoded at a time. A chunk's table (or, for the earnings, its
/// lines with what they look up) is read column by column for Arrow and row by row for the
/// CSV, so it should stay in a core's cache (about 1.5 MB at 2048 rows, with the earnings'
/// table); smaller chunks cost more per row. A multiple of arrow's 1024-row write batches.
const CHUNK_ROWS: usize = 1 << 11;

/// Threads writing export folders (see [`FolderWriter`]): their time is mostly the kernel's
/// file creation and waits on the disk, beside the compute pool, so there are more of them
/// than cores (a direct write waits for the disk while the others go on).
const FOLDER_WRITERS: usize = 8;

/// Export folders handed to the writers at a time: a group's folders are queued in batches,
/// so that the queue holds a bounded share of them.
const FOLDER_BATCH: usize = 64;

/// Turns groups of the rules' results into what [`Outputs::append`] writes. Shared by the
/// threads that compute the rules; holds nothing that changes.
pub(crate) struct Encoder<'a> {
    plan: &'a Plan<'a>,
    data_as_of: Option<NaiveDate>,
    /// The Arrow schema of each of [`REPORTS`].
    schemas: Vec<Arc<Schema>>,
    /// Positions in [`REPORTS`] of the exported reports, in the exporter's order.
    exported: Vec<usize>,
    /// Per program of the plan: whether it is the only program of its partner type, so that
    /// its partners' exports are cut while the rules run.
    sole: Vec<bool>,
    exporter: Exporter<'a>,
}

/// A group of pieces encoded: each report's chunks (in [`REPORTS`] order) and the export
/// folders complete with them.
pub(crate) struct EncodedGroup {
    reports: Vec<Vec<Encoded>>,
    folders: Vec<Folder>,
}

/// The files a run has staged, with what the manifest says of each.
pub(crate) struct Written {
    /// Path (in the final layout) -> rows and SHA-256.
    pub(crate) outputs: BTreeMap<String, Output>,
    /// The paths, in the order they were completed.
    pub(crate) paths: Vec<String>,
    /// Export folders named by a hash of their partner's id -> the full id.
    pub(crate) export_folders: BTreeMap<String, String>,
}

/// The report writers, the export folder writers and the record of what they staged.
pub(crate) struct Outputs<'p> {
    publication: &'p mut Publication,
    run_date: NaiveDate,
    metadata: Vec<(&'static str, String)>,
    writers: Vec<ReportWriter>,
    folders: FolderWriter,
    /// Microseconds spent appending to each report (a debug log: the stage's balance).
    busy: Vec<AtomicU64>,
}

impl<'a> Encoder<'a> {
    /// How many partner export folders the run writes.
    pub(crate) fn export_folders(&self) -> usize {
        self.exporter.partner_ids().len()
    }

    /// The source of one report over `results`.
    fn source<'r>(&'r self, report: &'static Report, results: &'r [ProgramResult<'a>]) -> Source<'r, 'a> {
        Source {
            report,
            run_date: self.plan.run_date(),
            data_as_of: self.data_as_of,
            results,
            partners: self.exporter.partner_ids(),
        }
    }

    /// The rows of a group of pieces of the plan (`pieces`, with their `results` in the same
    /// order), encoded for every report in parallel, and the export folders of the group's
    /// partners whose type has one program.
    pub(crate) fn encode(
        &self,
        pieces: &[(usize, usize)],
        results: &[ProgramResult<'a>],
    ) -> Result<EncodedGroup> {
        let mut jobs = Vec::new();
        for (k, &report) in REPORTS.iter().enumerate() {
            jobs.extend(self.source(report, results).chunks(CHUNK_ROWS).map(|rows| (k, rows)));
        }
        let encoded: Vec<(usize, Encoded)> = jobs
            .into_par_iter()
            .map(|(k, rows)| {
                let s = self.source(REPORTS[k], results);
                let keys = if self.exported.contains(&k) { s.keys(&rows)? } else { Vec::new() };
                Ok((k, s.encode(&rows, keys, &self.schemas[k])?))
            })
            .collect::<Result<_>>()?;
        let mut reports: Vec<Vec<Encoded>> = REPORTS.iter().map(|_| Vec::new()).collect();
        for (k, e) in encoded {
            reports[k].push(e);
        }
        let folders = self.early_folders(pieces, &reports);
        Ok(EncodedGroup { reports, folders })
    }

    /// The export folders of a group's partners whose type has one program, cut from the
    /// group's encoded rows: each such partner's rows lie in the group, as one piece's rows.
    fn early_folders(&self, pieces: &[(usize, usize)], reports: &[Vec<Encoded>]) -> Vec<Folder> {
        /// Of one exported report: (program, partner) -> the bytes of its rows, in order
        /// (slices of the encoded chunks), and their count.
        type Parts = crate::hash::HashMap<writer::Key, (Vec<bytes::Bytes>, u64)>;
        let plan = self.plan;
        let parts: Vec<Parts> = self
            .exported
            .iter()
            .map(|&k| {
                let mut parts = Parts::default();
                for (key, bytes, rows) in reports[k].iter().flat_map(Encoded::keyed) {
                    let part = parts.entry(key).or_default();
                    part.0.push(bytes);
                    part.1 += rows;
                }
                parts
            })
            .collect();
        let partners: Vec<(u32, usize)> = pieces
            .iter()
            .filter(|&&(p, _)| self.sole[p])
            .flat_map(|&(p, r)| {
                let ty = plan.programs[p].partner_type;
                plan.range(r).filter(move |&i| plan.partner(i).partner_type == ty).map(move |i| (p as u32, i))
            })
            .collect();
        partners
            .into_par_iter()
            .map(|(p, i)| {
                self.exporter.folder(i, |x| {
                    let header = self.exporter.header(x).clone();
                    let Some((runs, rows)) = parts[x].get(&(p, i as u32)) else { return (0, vec![header]) };
                    (*rows, std::iter::once(header).chain(runs.iter().cloned()).collect())
                })
            })
            .collect()
    }

    /// Whether the partner at position `i` was exported while the rules ran (its type has a
    /// sole program).
    fn exported_early(&self, i: usize) -> bool {
        let ty = self.plan.partner(i).partner_type;
        self.plan.programs.iter().zip(&self.sole).any(|(p, &sole)| sole && p.partner_type == ty)
    }
}

impl<'p> Outputs<'p> {
    /// Opens every report of [`REPORTS`] under `publication` (writing their CSV headers) and
    /// starts the export folder writers (which count each folder on `progress`); returns them
    /// with the [`Encoder`] of the run's groups.
    pub(crate) fn begin<'a>(
        publication: &'p mut Publication,
        plan: &'a Plan<'a>,
        users: &'a [User],
        data_as_of: Option<NaiveDate>,
        metadata: Vec<(&'static str, String)>,
        progress: &crate::progress::Progress,
    ) -> Result<(Encoder<'a>, Outputs<'p>)> {
        let run_date = plan.run_date();
        let partners = plan.partner_ids();
        let shape =
            |report| Source { report, run_date, data_as_of, results: &[], partners: &partners }.table(&[]);
        let writers = REPORTS
            .iter()
            .map(|&r| ReportWriter::new(publication, &shape(r), run_date, &metadata))
            .collect::<Result<Vec<_>>>()?;
        let schemas = writers.iter().map(|w| w.schema().clone()).collect();
        let exported: Vec<usize> = exports::exported()
            .map(|e| REPORTS.iter().position(|r| std::ptr::eq(*r, e)).expect("an exported report is listed"))
            .collect();
        // A partner's export of a report holds its rows of the report, program by program.
        let headers =
            exported.iter().map(|&k| (REPORTS[k].name, csv_out::to_csv(&shape(REPORTS[k])))).collect();
        let exporter = Exporter::new(run_date, partners, headers, users);
        let sole = plan
            .programs
            .iter()
            .map(|p| plan.programs.iter().filter(|q| q.partner_type == p.partner_type).count() == 1)
            .collect();
        let folders = publication.folder_writer(FOLDER_WRITERS, progress.clone());
        let busy = REPORTS.iter().map(|_| AtomicU64::default()).collect();
        let encoder = Encoder { plan, data_as_of, schemas, exported, sole, exporter };
        let outputs = Outputs { publication, run_date, metadata, writers, folders, busy };
        Ok((encoder, outputs))
    }

    /// Writes a group: its export folders are queued, and its chunks appended to every report
    /// (the reports side by side).
    pub(crate) fn append(&mut self, group: EncodedGroup) -> Result<()> {
        let mut folders = group.folders.into_iter().peekable();
        while folders.peek().is_some() {
            self.folders.send(folders.by_ref().take(FOLDER_BATCH).collect())?;
        }
        self.writers.par_iter_mut().zip(&group.reports).zip(&self.busy).try_for_each(|((w, e), busy)| {
            let started = std::time::Instant::now();
            let r = w.write(e);
            busy.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            r
        })
    }

    /// Completes the reports, writes the rejects report and the exports of the partners not
    /// exported while the rules ran, waits for the folder writers, and returns every file
    /// staged.
    pub(crate) fn finish(self, encoder: &Encoder, rejects: &[Reject]) -> Result<Written> {
        let Outputs { publication, run_date, metadata, writers, mut folders, busy } = self;
        let export_folders = encoder
            .exporter
            .partner_ids()
            .iter()
            .map(|id| (exports::folder_name(id), id))
            .filter(|(folder, _)| exports::is_hashed(folder))
            .map(|(folder, id)| (format!("exports/run_date={run_date}/{folder}"), id.to_string()))
            .collect();
        let mut written = Written { outputs: BTreeMap::new(), paths: Vec::new(), export_folders };
        for (r, b) in REPORTS.iter().zip(&busy) {
            let busy = std::time::Duration::from_micros(b.load(Ordering::Relaxed));
            tracing::debug!(report = r.name, appending_s = crate::logs::seconds(busy), "report appended");
        }
        let reports: Vec<writer::Written> =
            writers.into_iter().map(|w| w.finish(publication)).collect::<Result<_>>()?;
        check_early_exports(encoder, &reports)?;
        for w in &reports {
            written.report(w);
        }
        let rejects = rejects::table(run_date, rejects);
        let shape = rejects.empty_like();
        let whole = |table| Chunk { table, keys: Vec::new() };
        let w =
            writer::write_report(publication, &shape, std::iter::once(rejects), whole, run_date, &metadata)?;
        written.report(&w);
        let started = std::time::Instant::now();
        let late: Vec<usize> =
            (0..encoder.exporter.partner_ids().len()).filter(|&i| !encoder.exported_early(i)).collect();
        late_exports(publication, encoder, &reports, &late, &mut folders)?;
        let mut exports = folders.finish()?;
        exports.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        publication.adopt(&exports);
        for e in exports {
            written.outputs.insert(e.path.clone(), Output { rows: e.rows, sha256: e.sha256 });
            written.paths.push(e.path);
        }
        tracing::debug!(
            partners = encoder.exporter.partner_ids().len(),
            after_rules = late.len(),
            exports_s = crate::logs::seconds(started.elapsed()),
            "exported"
        );
        Ok(written)
    }
}

impl Written {
    /// Records a report's two files.
    fn report(&mut self, w: &writer::Written) {
        for (path, sha256) in [w.csv.clone(), w.parquet.clone()] {
            self.outputs.insert(path.clone(), Output { rows: w.rows, sha256 });
            self.paths.push(path);
        }
    }
}

/// Checks the premise of the early exports: no partner exported while the rules ran has a
/// row in a program other than the sole one of its type (that row would be missing from its
/// export).
fn check_early_exports(encoder: &Encoder, reports: &[writer::Written]) -> Result<()> {
    let plan = encoder.plan;
    for &k in &encoder.exported {
        for &(p, i) in reports[k].segments.keys() {
            let (program, partner) = (plan.programs[p as usize], plan.partner(i as usize));
            if encoder.exported_early(i as usize) && program.partner_type != partner.partner_type {
                return Err(Error::internal(format!(
                    "{}: partner {} has rows in program {}, not of its type",
                    REPORTS[k].name, partner.partner_id, program.id
                )));
            }
        }
    }
    Ok(())
}

/// The export folders of the partners at positions `late`, cut from the staged report CSVs a
/// run of partners at a time, and queued to `folders`.
fn late_exports(
    publication: &Publication,
    encoder: &Encoder,
    reports: &[writer::Written],
    late: &[usize],
    folders: &mut FolderWriter,
) -> Result<()> {
    if late.is_empty() {
        return Ok(());
    }
    let exported: Vec<&writer::Written> = encoder.exported.iter().map(|&k| &reports[k]).collect();
    let staged: Vec<crate::store::ReadAt> =
        exported.iter().map(|w| publication.open_staged(&w.csv.0)).collect::<Result<_>>()?;
    let programs = encoder.plan.programs.len() as u32;
    let positions = |r: std::ops::Range<usize>| r.start as u32..r.end as u32;
    let read_run = |k: usize, run, next: Option<std::ops::Range<usize>>| -> Result<writer::Run> {
        let w = exported[k];
        if let Some(next) = next {
            for r in writer::run_ranges(&w.segments, programs, positions(next)) {
                staged[k].will_need(r);
            }
        }
        writer::Run::read(&staged[k], &w.segments, programs, positions(run))
            .map_err(Error::io("reading back", &w.csv.0))
    };
    let file_of = |run: &writer::Run, k: usize, i: usize| {
        run.cut(&exported[k].segments, i as u32, encoder.exporter.header(k))
    };
    encoder.exporter.export(late, read_run, file_of, |batch| folders.send(batch))
}
