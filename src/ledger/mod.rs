//! The ledger: the state a run hands to the next run at the same output location, so that what
//! was booked stays booked (README, "The ledger"; the decisions in `docs/decisions.md`).
//!
//! A run for date D continues from the *previous ledger*, the one published by the latest run
//! dated before D at the location, and publishes its own under `_ledger/run_date=D/`, in the same
//! atomic publish as its reports. A run dated before the latest published one is refused: the
//! ledger only moves forward. This module owns where the ledger lives, which ledger a run
//! continues from, and the booked groups.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::NaiveDate;

use crate::config::EarningType;
use crate::error::{Error, Result};
use crate::model::money::Usd;
use crate::publish::Publication;
use crate::reports::manifest::Output;
use crate::reports::{Table, Values, parquet_out};
use crate::rules::periods::Period;
use crate::store::Store;

mod restate;

pub(crate) use restate::Adjustment;

/// The booked groups' file in a ledger folder.
pub(crate) const BOOKED: &str = "booked.parquet";

/// The adjustments' file in a ledger folder.
pub(crate) const ADJUSTMENTS: &str = "adjustments.parquet";

/// The ledger folder of run date `d`, relative to the output location.
pub(crate) fn folder(d: NaiveDate) -> String {
    format!("_ledger/run_date={d}")
}

/// The run dates published at `out`, sorted: a date's `runs/D/` holds its manifest, which is
/// written last, so it exists exactly when the run is published.
pub(crate) fn published(out: &Store) -> Result<Vec<NaiveDate>> {
    let mut dates: Vec<NaiveDate> =
        out.children("runs")?.iter().filter_map(|d| crate::model::dates::parse_date(d)).collect();
    dates.sort_unstable();
    Ok(dates)
}

/// Refuses a run dated before the latest run published at `out` (`published`): the ledger
/// only moves forward, and `--rebuild` does not lift this (to redo history, publish to a new
/// location).
pub(crate) fn check_order(out: &Store, published: &[NaiveDate], d: NaiveDate) -> Result<()> {
    match published.last() {
        Some(&latest) if d < latest => Err(Error::Refused(format!(
            "{d} is before {latest}, the latest run published at {}: the ledger only moves forward \
             (run {latest} or a later date; to redo history, publish to a new location)",
            out.display("")
        ))),
        _ => Ok(()),
    }
}

/// The ledger a run continues from.
#[derive(Debug, Default)]
pub(crate) struct Previous {
    /// The run date that published it.
    pub(crate) run_date: Option<NaiveDate>,
    /// Its files (path relative to the output location -> SHA-256), for the manifest's inputs.
    pub(crate) files: BTreeMap<String, String>,
    /// Its booked groups, as read: decoded only when the run books (at its end), so that they
    /// take no memory while the rules run.
    booked: Option<(String, Bytes)>,
    /// Its adjustments, as read (decoded likewise).
    adjustments: Option<(String, Bytes)>,
}

/// The ledger published by the latest run at `out` dated before `d` (`published`), or none:
/// a first run at the location, or one published by a version without a ledger (then the run
/// books as a first run, and says so in the log).
pub(crate) fn previous(out: &Store, published: &[NaiveDate], d: NaiveDate) -> Result<Option<Previous>> {
    let Some(&p) = published.iter().rev().find(|&&p| p < d) else { return Ok(None) };
    let dir = folder(p);
    let entries = out.list(&dir)?;
    if entries.is_empty() {
        tracing::warn!(
            "the run published for {p} has no ledger ({}): booking as a first run",
            out.display(&dir)
        );
        return Ok(None);
    }
    let mut previous = Previous { run_date: Some(p), ..Previous::default() };
    for e in entries {
        let bytes = out.get(&e.path)?;
        previous.files.insert(e.path.clone(), crate::digest::sha256_hex(&bytes));
        if e.path == format!("{dir}/{BOOKED}") {
            previous.booked = Some((out.display(&e.path), bytes));
        } else if e.path == format!("{dir}/{ADJUSTMENTS}") {
            previous.adjustments = Some((out.display(&e.path), bytes));
        }
    }
    Ok(Some(previous))
}

/// An earning type as a ledger file writes it (row `i`, for the message).
fn earning_type(text: &str, i: usize) -> std::result::Result<EarningType, String> {
    match text {
        "rebate" => Ok(EarningType::Rebate),
        "coop" => Ok(EarningType::Coop),
        other => Err(format!("row {}: earning_type {other:?}", i + 1)),
    }
}

/// A group of rules.md: program, partner, booked period (its label) and earning type.
pub(crate) type GroupKey = (String, String, String, EarningType);

/// The booked groups: their booked amount B, which never changes once booked, and their line
/// total L on this run (zero when the group has no lines now; not part of the ledger file).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Booked(pub(crate) BTreeMap<GroupKey, (Usd, Usd)>);

/// A group of this run whose period is closed on the run date, with its line total. One is
/// held per closed group until the run books, so it borrows the program id and makes the
/// period's label only then.
pub(crate) struct Closed<'a> {
    pub(crate) program_id: &'a str,
    pub(crate) partner_id: String,
    pub(crate) period: Period,
    pub(crate) earning_type: EarningType,
    pub(crate) line_total: Usd,
}

impl Booked {
    /// The groups booked as of this run: every group of `previous` with its B unchanged (also
    /// of programs or partners this run no longer has), and each group of `closed` not booked
    /// before, with B = its line total, or zero when its period had already closed by the
    /// previous run (lines that appeared after the period was booked, such as a backdated
    /// agreement making an old sale earn: the difference is a restatement, not a booking).
    pub(crate) fn book(previous: Option<&Previous>, closed: Vec<Closed>) -> Result<Booked> {
        let previous_date = previous.and_then(|p| p.run_date);
        let mut booked = match previous.and_then(|p| p.booked.clone()) {
            Some((path, bytes)) => Booked::read(bytes).map_err(|reason| Error::unreadable(path, reason))?,
            None => Booked::default(),
        };
        for c in closed {
            let already_closed = previous_date.is_some_and(|p| c.period.is_closed(p));
            let key = (c.program_id.to_string(), c.partner_id, c.period.label(), c.earning_type);
            let b = if already_closed { Usd::ZERO } else { c.line_total };
            booked.0.entry(key).or_insert((b, Usd::ZERO)).1 = c.line_total;
        }
        Ok(booked)
    }

    fn table(&self) -> Table<'_> {
        let text = |f: fn(&GroupKey) -> &str| {
            Values::Text(self.0.keys().map(|k| Some(std::borrow::Cow::Borrowed(f(k)))).collect())
        };
        Table {
            name: "booked",
            columns: vec![
                ("program_id", text(|k| &k.0)),
                ("partner_id", text(|k| &k.1)),
                ("period", text(|k| &k.2)),
                ("earning_type", text(|k| k.3.as_str())),
                (
                    "booked_usd",
                    Values::Decimal {
                        values: self.0.values().map(|(b, _)| Some(b.units())).collect(),
                        scale: Usd::SCALE,
                        csv_scales: None,
                    },
                ),
            ],
        }
    }

    /// Reads a `booked.parquet` this module wrote.
    fn read(bytes: Bytes) -> std::result::Result<Booked, String> {
        let mut booked = Booked::default();
        for batch in batches(bytes)? {
            let [programs, partners, periods, types] =
                ["program_id", "partner_id", "period", "earning_type"].map(|n| text(&batch, n));
            let (programs, partners, periods, types) = (programs?, partners?, periods?, types?);
            let amounts = usd(&batch, "booked_usd")?;
            for i in 0..batch.num_rows() {
                let key = (
                    programs.value(i).to_string(),
                    partners.value(i).to_string(),
                    periods.value(i).to_string(),
                    earning_type(types.value(i), i)?,
                );
                booked.0.insert(key, (Usd::new(amounts.value(i)), Usd::ZERO));
            }
        }
        Ok(booked)
    }
}

/// The record batches of a ledger file this module wrote.
fn batches(bytes: Bytes) -> std::result::Result<Vec<arrow::record_batch::RecordBatch>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("not a readable ledger file: {e}");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(&e))?
        .map(|b| b.map_err(|e| bad(&e)))
        .collect()
}

/// Column `name` of a ledger file's batch, as the array type it was written as.
fn column<A: arrow::array::Array + Clone + 'static>(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> std::result::Result<A, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("the ledger file has no column {name}"))?
        .as_any()
        .downcast_ref::<A>()
        .cloned()
        .ok_or_else(|| format!("the ledger file's {name} is not of the type written"))
}

/// A text column of a ledger file's batch.
fn text(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> std::result::Result<arrow::array::StringArray, String> {
    column(batch, name)
}

/// A USD column, Decimal(18, 2), of a ledger file's batch.
fn usd(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> std::result::Result<arrow::array::Decimal128Array, String> {
    column::<arrow::array::Decimal128Array>(batch, name)
        .ok()
        .filter(|a| a.scale() == Usd::SCALE as i8)
        .ok_or_else(|| format!("the ledger file's {name} is not Decimal(18, 2)"))
}

/// A run's ledger: the groups booked and the adjustments, as of its date.
pub(crate) struct Ledger {
    pub(crate) booked: Booked,
    pub(crate) adjustments: Vec<Adjustment>,
}

impl Ledger {
    /// The ledger of a run of `d` with `programs` that continues from `previous`: its groups
    /// booked (see [`Booked::book`]) and every booked group's difference between its lines
    /// and what was booked and restated before, restated in the earliest open period.
    pub(crate) fn continue_from(
        previous: Option<Previous>,
        closed: Vec<Closed>,
        programs: &[crate::config::Program],
        d: NaiveDate,
    ) -> Result<Ledger> {
        let booked = Booked::book(previous.as_ref(), closed)?;
        let adjustments = match previous.and_then(|p| p.adjustments) {
            Some((path, bytes)) => restate::read(bytes).map_err(|reason| Error::unreadable(path, reason))?,
            None => Vec::new(),
        };
        let adjustments = restate::restate(&booked, adjustments, programs, d);
        Ok(Ledger { booked, adjustments })
    }

    /// Stages the ledger under [`folder`] in `publication`; returns each file's entry for the
    /// manifest's outputs.
    pub(crate) fn stage(
        &self,
        publication: &mut Publication,
        d: NaiveDate,
        metadata: &[(&str, String)],
    ) -> Result<Vec<(String, Output)>> {
        let files = [
            (BOOKED, self.booked.table(), self.booked.0.len()),
            (ADJUSTMENTS, restate::table(&self.adjustments), self.adjustments.len()),
        ];
        let mut staged = Vec::new();
        for (name, table, rows) in files {
            let path = format!("{}/{name}", folder(d));
            let mut sink = parquet_out::ParquetSink::new(&table, metadata, publication.create(&path)?)?;
            sink.write_batch(&parquet_out::record_batch(sink.schema(), &table)?)?;
            let sha256 = publication.finish(sink.close()?)?;
            staged.push((path, Output { rows: rows as u64, sha256 }));
        }
        Ok(staged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EarningPeriod;
    use crate::testing::d;

    fn key(period: &str) -> GroupKey {
        ("p".into(), "P1".into(), period.into(), EarningType::Rebate)
    }

    fn closed(month: &str, total: i128) -> Closed<'static> {
        let period = Period::containing(d(&format!("{month}-01")), EarningPeriod::Month);
        Closed {
            program_id: "p",
            partner_id: "P1".into(),
            period,
            earning_type: EarningType::Rebate,
            line_total: Usd::new(total),
        }
    }

    #[test]
    fn a_group_is_booked_once_at_its_line_total_and_late_groups_at_zero() {
        // First run at the location (2026-11-05): September and October are closed.
        let first = Booked::book(None, vec![closed("2026-09", 10_000), closed("2026-10", 5_000)]).unwrap();
        assert_eq!(first.0[&key("2026-09")], (Usd::new(10_000), Usd::new(10_000)));
        let previous = Previous {
            run_date: Some(d("2026-11-05")),
            files: BTreeMap::new(),
            booked: Some(("booked.parquet".into(), Bytes::from(to_parquet(&first)))),
            adjustments: None,
        };
        // The next run: September's lines changed (B stays), August has lines for the first
        // time though it closed before the previous run (B = 0), November has closed since (B = L).
        let next = Booked::book(
            Some(&previous),
            vec![closed("2026-09", 7_000), closed("2026-08", 3_000), closed("2026-11", 2_000)],
        )
        .unwrap();
        let b = |month: &str| next.0[&key(month)];
        assert_eq!(b("2026-09"), (Usd::new(10_000), Usd::new(7_000)), "booked amounts never change");
        assert_eq!(b("2026-10"), (Usd::new(5_000), Usd::ZERO), "a group without lines now keeps its row");
        assert_eq!(b("2026-08"), (Usd::ZERO, Usd::new(3_000)));
        assert_eq!(b("2026-11"), (Usd::new(2_000), Usd::new(2_000)));
    }

    fn to_parquet(booked: &Booked) -> Vec<u8> {
        let table = booked.table();
        let mut sink = parquet_out::ParquetSink::new(&table, &[], Vec::new()).unwrap();
        sink.write_batch(&parquet_out::record_batch(sink.schema(), &table).unwrap()).unwrap();
        sink.close().unwrap()
    }

    #[test]
    fn the_booked_file_reads_back_as_written() {
        let booked = Booked::book(None, vec![closed("2026-09", -1_234), closed("2026-10", 0)]).unwrap();
        let read = Booked::read(Bytes::from(to_parquet(&booked))).unwrap();
        let amounts = |b: &Booked| b.0.iter().map(|(k, (b, _))| (k.clone(), *b)).collect::<Vec<_>>();
        assert_eq!(amounts(&read), amounts(&booked), "B is stored, L is this run's");
    }

    #[test]
    fn a_date_before_the_latest_published_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = Store::create(dir.path().to_str().unwrap()).unwrap();
        let published = [d("2026-10-01"), d("2026-11-01")];
        assert!(check_order(&out, &published, d("2026-11-01")).is_ok(), "the latest again");
        assert!(check_order(&out, &published, d("2026-11-02")).is_ok());
        let e = check_order(&out, &published, d("2026-10-15")).unwrap_err();
        assert!(matches!(e, Error::Refused(_)) && e.to_string().contains("2026-11-01"), "{e}");
    }
}
