//! One run date, start to finish: load the programs, list the landing zone, take the date's
//! lock, ingest and validate the feeds, apply the rules, stage every report and export, write
//! the manifest last, and publish the whole run at once. `validate` stops after ingestion and
//! writes nothing.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::{self, Program};
use crate::error::{Error, Result};
use crate::feeds::tables::Transaction;
use crate::feeds::{self, Ingest, Landing};
use crate::ledger::{self, Closed, Ledger};
use crate::progress::Progress;
use crate::publish::Publication;
use crate::reports::manifest::{self, Manifest};
use crate::reports::outputs::{EncodedGroup, Outputs, Written};
use crate::rules;
use crate::rules::payouts::Totals;
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
    pub(crate) guard: Guard,
    /// Book the date as a first run, ignoring earlier ledgers (`--rebuild`).
    pub(crate) rebuild: bool,
}

/// When a run refuses to publish inputs that look like a fault upstream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    /// Publish even without any transaction file for the date.
    pub(crate) allow_empty: bool,
    /// Publish even with far fewer accepted transactions than the latest published run.
    pub(crate) allow_shrink: bool,
    /// "Far fewer": below this percentage of the latest published run's.
    pub(crate) shrink_limit: u8,
}

impl Guard {
    /// Refuses a run whose landing zone gave no transaction file, or whose accepted
    /// transactions fell below the limit against the latest run published at `out` on or
    /// before `date`, unless told that it is intended.
    fn check(&self, out: &Store, date: NaiveDate, ingest: &Ingest) -> Result<()> {
        let files = ingest.files.iter().filter(|f| f.feed == feeds::Feed::Transactions).count();
        if files == 0 && !self.allow_empty {
            return Err(Error::Refused(format!(
                "no transaction file on or before {date} in the landing zone (a missing mount or an empty \
                 delivery?): nothing was published over {}; give --allow-empty if that is intended",
                out.display("")
            )));
        }
        let accepted: u64 =
            ingest.files.iter().filter(|f| f.feed == feeds::Feed::Transactions).map(|f| f.accepted).sum();
        let Some((previous, before)) = latest_published(out, date)? else { return Ok(()) };
        if !self.allow_shrink
            && u128::from(accepted) * 100 < u128::from(before) * u128::from(self.shrink_limit)
        {
            return Err(Error::Refused(format!(
                "{accepted} transactions accepted for {date}, fewer than {}% of the {before} of the run \
                 published for {previous}: nothing was published over {}; give --allow-shrink if that \
                 is intended (--shrink-limit sets the percentage)",
                self.shrink_limit,
                out.display("")
            )));
        }
        Ok(())
    }
}

/// The latest run published at `out` dated on or before `date`, and the transactions it
/// accepted (its manifest's inputs).
fn latest_published(out: &Store, date: NaiveDate) -> Result<Option<(NaiveDate, u64)>> {
    let mut dates: Vec<NaiveDate> = out
        .children("runs")?
        .iter()
        .filter_map(|d| crate::model::dates::parse_date(d))
        .filter(|d| *d <= date)
        .collect();
    dates.sort_unstable();
    for d in dates.into_iter().rev() {
        let Some((bytes, _)) = out.get_if_exists(&crate::publish::manifest_path(d))? else { continue };
        /// The part of a manifest read here: a large run's manifest lists hundreds of thousands
        /// of outputs, which are skipped, not built.
        #[derive(serde::Deserialize)]
        struct Inputs {
            inputs: std::collections::HashMap<String, Input>,
        }
        #[derive(serde::Deserialize)]
        struct Input {
            feed: String,
            accepted: u64,
        }
        let Ok(manifest) = serde_json::from_slice::<Inputs>(&bytes) else { continue };
        let accepted =
            manifest.inputs.values().filter(|i| i.feed == "transactions").map(|i| i.accepted).sum();
        return Ok(Some((d, accepted)));
    }
    Ok(None)
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
    /// Each program's dashboard totals over its partners, by program id (empty for `validate`).
    pub(crate) money: std::collections::BTreeMap<String, Totals>,
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

/// `on_file` is called as each delivery file has been read and checked.
fn ingest(p: &Prepared, opts: &Options, on_file: &(dyn Fn() + Sync)) -> Result<Ingest> {
    crate::allocator::reuse_freed_memory_until_collected();
    let ingest = feeds::validate::ingest_spilling(
        &p.input,
        &p.landing,
        p.run_date,
        opts.keep_going,
        Some(&opts.spill),
        on_file,
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
    let ingest = ingest(&p, opts, &|| {})?;
    Ok(Outcome {
        run_date: p.run_date,
        date_was_defaulted: p.date_was_defaulted,
        programs: p.programs,
        ingest,
        written: Vec::new(),
        money: Default::default(),
    })
}

/// A stable id of what a run computes from: the same inputs, programs and version give the
/// same id, so it can stand in reports that must be byte-identical on a re-run.
fn run_id(
    run_date: NaiveDate,
    ingest: &Ingest,
    programs: &[Program],
    previous: Option<&ledger::Previous>,
    rebuild: bool,
) -> String {
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
    // The ledger it continues from (a first run hashes as before the ledger existed).
    for (path, sha256) in previous.iter().flat_map(|p| &p.files) {
        h.update(format!("ledger {path} {sha256}\n"));
    }
    if rebuild {
        h.update("rebuild\n");
    }
    crate::digest::hex(&h.finalize()[..8])
}

/// The daily job: validate, apply the rules, write every report, then publish atomically.
pub(crate) fn run(opts: &Options) -> Result<Outcome> {
    let started_at = manifest::now();
    let progress = Progress::new(opts.progress);
    progress.stage("reading programs and listing the landing zone", None);
    let p = prepare(opts)?;
    let d = p.run_date;
    let out = Store::create(&opts.output)?;
    let mut publication = Publication::begin(&out, d)?;
    // Under the date's lock: the ledger only moves forward, from the latest run before `d`.
    let published = ledger::published(&out)?;
    ledger::check_order(&out, &published, d)?;
    let previous = if opts.rebuild { None } else { ledger::previous(&out, &published, d)? };
    let files = feeds::Feed::ALL.iter().map(|&f| p.landing.select(f, d).len() as u64).sum();
    progress.stage(&format!("validating the feeds for {d}"), Some((files, "files")));
    let ingest = ingest(&p, opts, &|| progress.inc(1))?;
    opts.guard.check(&out, d, &ingest)?;
    crate::allocator::keep_freed_memory_from_now();
    let plan = rules::Plan::new(&ingest.feeds, &p.programs, d, opts.range_lines)?;
    let pieces = plan.pieces();
    progress.stage("applying the rules and writing the reports", Some((pieces.len() as u64, "pieces")));
    let data_as_of = ingest.data_as_of();
    let run_id = run_id(d, &ingest, &p.programs, previous.as_ref(), opts.rebuild);
    let metadata = vec![
        ("program_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_date", d.to_string()),
        ("run_id", run_id.clone()),
    ];
    let (encoder, mut outputs) = Outputs::begin(
        &mut publication,
        &plan,
        &ingest.feeds.users,
        data_as_of,
        metadata.clone(),
        &progress,
    )?;
    // The rules a group of pieces at a time: a group is computed and encoded (in parallel)
    // while the group before it is written, so no more than two groups' rows are ever held.
    // Each group also gives its programs' money totals, for the summary, and its groups whose
    // period is closed, for the ledger.
    let compute = |pieces: &[(usize, usize)]| -> Result<Computed> {
        // Spilled rows are read back for the group and live until its rows are encoded.
        let loaded: Vec<Vec<Transaction>> =
            pieces.par_iter().map(|&(p, r)| plan.load(p, r)).collect::<Result<_>>()?;
        let results: Vec<rules::ProgramResult> = pieces
            .par_iter()
            .zip(&loaded)
            .map(|(&(p, r), loaded)| plan.piece(p, r, &plan.rows(p, r, loaded)))
            .collect::<Result<_>>()?;
        let sums = results
            .iter()
            .map(|r| {
                let mut sum = Totals::default();
                r.totals.iter().for_each(|t| sum.merge(t));
                (r.program.id.clone(), sum)
            })
            .collect();
        let encoded = encoder.encode(pieces, &results)?;
        progress.inc(pieces.len() as u64);
        let closed = results
            .into_iter()
            .flat_map(|r| {
                let program_id = plan.programs[r.index as usize].id.as_str();
                r.groups.into_iter().filter(|g| g.period.is_closed(d)).map(move |g| Closed {
                    program_id,
                    partner_id: g.partner_id,
                    period: g.period,
                    earning_type: g.earning_type,
                    line_total: g.total_usd,
                })
            })
            .collect();
        Ok(Computed { encoded, sums, closed })
    };
    let mut money: std::collections::BTreeMap<String, Totals> = Default::default();
    let mut groups = pieces.chunks(PIECES_IN_FLIGHT);
    let mut ready = groups.next().map(compute).transpose()?;
    let mut computing = std::time::Duration::ZERO;
    let mut closed = Vec::new();
    while let Some(Computed { encoded: group, sums, closed: closed_here }) = ready {
        for (program, t) in &sums {
            money.entry(program.clone()).or_default().merge(t);
        }
        closed.extend(closed_here);
        let (appended, next) = rayon::join(
            || outputs.append(group),
            || {
                let started = std::time::Instant::now();
                let next = groups.next().map(compute).transpose();
                computing += started.elapsed();
                next
            },
        );
        appended?;
        ready = next?;
    }
    tracing::debug!(computing_s = crate::logs::seconds(computing), "rules applied and rows encoded");
    progress.stage("writing the exports", Some((encoder.export_folders() as u64, "partner folders")));
    let Written { mut outputs, paths: mut written, export_folders } =
        outputs.finish(&encoder, &ingest.rejects)?;
    let previous_ledger = previous.as_ref().map(manifest::PreviousLedger::of);
    let ledger = Ledger::continue_from(previous, closed, &p.programs, d)?;
    for (path, output) in ledger.stage(&mut publication, d, &metadata)? {
        written.push(path.clone());
        outputs.insert(path, output);
    }
    let mut manifest =
        Manifest::new(d, run_id, publication.staging(), started_at, &p.programs, &ingest, outputs);
    manifest.export_folders = export_folders;
    manifest.previous_ledger = previous_ledger;
    manifest.rebuild = opts.rebuild;
    let path = crate::publish::manifest_path(d);
    let mut file = publication.create(&path)?;
    for part in manifest.json_parts() {
        std::io::Write::write_all(&mut file, &part).map_err(Error::io("writing", &path))?;
    }
    publication.finish(file)?;
    written.push(path);
    progress.stage("publishing", None);
    publication.commit()?;
    progress.done();
    Ok(Outcome {
        run_date: d,
        date_was_defaulted: p.date_was_defaulted,
        programs: p.programs,
        ingest,
        written,
        money,
    })
}

/// A group of pieces computed: its rows encoded, its programs' money totals (for the
/// summary) and its groups whose period is closed (for the ledger).
struct Computed<'a> {
    encoded: EncodedGroup,
    sums: Vec<(String, Totals)>,
    closed: Vec<Closed<'a>>,
}

/// Pieces of the rules (see [`rules::Plan`]) computed and encoded at a time, while the group
/// before them is written: enough to keep every core busy, few enough to bound memory.
const PIECES_IN_FLIGHT: usize = 8;
