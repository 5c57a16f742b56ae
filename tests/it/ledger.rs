//! The ledger between runs (`_ledger/run_date=D/`): published with the reports, continued by
//! the next run at the location, only forwards in time; `--rebuild` books as a first run.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

fn run(out: &Path, date: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "-q", "--date", date, "--output", out.to_str().unwrap()];
    args.extend(extra);
    incentives(&args)
}

fn manifest(out: &Path, date: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("runs/{date}/manifest.json"))).unwrap()).unwrap()
}

/// The record batches of `file` in the ledger of `date`.
fn ledger_file(out: &Path, date: &str, file: &str) -> Vec<arrow::record_batch::RecordBatch> {
    let bytes = std::fs::read(out.join(format!("_ledger/run_date={date}/{file}"))).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Column `name` of `batch` as the array type `A`.
fn col<A: arrow::array::Array + Clone + 'static>(batch: &arrow::record_batch::RecordBatch, name: &str) -> A {
    batch.column_by_name(name).unwrap().as_any().downcast_ref::<A>().unwrap().clone()
}

/// booked.parquet as (program, partner, period, type) -> cents.
fn booked(out: &Path, date: &str) -> BTreeMap<(String, String, String, String), i128> {
    use arrow::array::{Decimal128Array, StringArray};
    let mut rows = BTreeMap::new();
    for batch in ledger_file(out, date, "booked.parquet") {
        let text = |n: &str| col::<StringArray>(&batch, n);
        let (a, b, c, d) = (text("program_id"), text("partner_id"), text("period"), text("earning_type"));
        let usd = col::<Decimal128Array>(&batch, "booked_usd");
        for i in 0..batch.num_rows() {
            rows.insert(
                (a.value(i).into(), b.value(i).into(), c.value(i).into(), d.value(i).into()),
                usd.value(i),
            );
        }
    }
    rows
}

#[test]
fn a_first_run_books_every_closed_group_at_its_line_total() {
    let out = tempfile::tempdir().unwrap();
    let o = run(out.path(), "2026-10-03", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let booked = booked(out.path(), "2026-10-03");
    // The payouts report's groups whose period is closed: every one booked, at its total.
    let mut payouts = csv::Reader::from_path(out.path().join(csv_path("payouts", "2026-10-03"))).unwrap();
    let mut closed = BTreeMap::new();
    for r in payouts.deserialize::<BTreeMap<String, String>>() {
        let r = r.unwrap();
        if r["status"] != "accruing" {
            let key = (
                r["program_id"].clone(),
                r["partner_id"].clone(),
                r["earning_period"].clone(),
                r["earning_type"].clone(),
            );
            closed.insert(key, cents(&r["earning_amount_usd"]));
        }
    }
    assert!(closed.len() > 10, "{closed:?}");
    assert_eq!(booked, closed);
    let m = manifest(out.path(), "2026-10-03");
    assert!(m.get("previous_ledger").is_none() && m.get("rebuild").is_none(), "{m}");
    assert!(m["outputs"].get("_ledger/run_date=2026-10-03/booked.parquet").is_some());
}

#[test]
fn the_next_run_continues_from_the_previous_ledger_and_only_forwards() {
    let out = tempfile::tempdir().unwrap();
    assert!(run(out.path(), "2026-10-03", &[]).status.success());
    assert!(run(out.path(), "2026-11-01", &[]).status.success());
    let first = booked(out.path(), "2026-10-03");
    let second = booked(out.path(), "2026-11-01");
    for (key, b) in &first {
        assert_eq!(second.get(key), Some(b), "{key:?}: booked amounts never change");
    }
    let ledger = "_ledger/run_date=2026-10-03/booked.parquet";
    let sha = incentives::digest::sha256_hex(&std::fs::read(out.path().join(ledger)).unwrap());
    let m = manifest(out.path(), "2026-11-01");
    assert_eq!(m["previous_ledger"]["run_date"], "2026-10-03");
    assert_eq!(m["previous_ledger"]["files"][ledger], sha.as_str());

    // The latest date again: from the same previous ledger, byte for byte.
    let files = final_files_of(out.path(), "2026-11-01");
    let ledger_bytes = std::fs::read(out.path().join("_ledger/run_date=2026-11-01/booked.parquet")).unwrap();
    assert!(run(out.path(), "2026-11-01", &[]).status.success());
    assert!(
        final_files_of(out.path(), "2026-11-01") == files,
        "a re-run of the latest date is byte-identical"
    );
    assert_eq!(
        std::fs::read(out.path().join("_ledger/run_date=2026-11-01/booked.parquet")).unwrap(),
        ledger_bytes
    );

    // An earlier date is refused, named, with or without --rebuild.
    for extra in [&[][..], &["--rebuild"]] {
        let o = run(out.path(), "2026-10-03", extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(
            stderr(&o).contains("2026-10-03 is before 2026-11-01, the latest run published"),
            "{}",
            stderr(&o)
        );
    }

    // --rebuild of the latest date books it as a first run, and says so.
    let o = run(out.path(), "2026-11-01", &["--rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest(out.path(), "2026-11-01");
    assert_eq!(m["rebuild"], true);
    assert!(m.get("previous_ledger").is_none(), "{m}");
    let fresh = tempfile::tempdir().unwrap();
    assert!(run(fresh.path(), "2026-11-01", &[]).status.success());
    assert_eq!(booked(out.path(), "2026-11-01"), booked(fresh.path(), "2026-11-01"));
}

/// adjustments.parquet as (program, partner, type, booked period, reason, restated period) ->
/// (cents, frozen).
fn adjustments(out: &Path, date: &str) -> Vec<(String, String, String, String, i128, bool)> {
    use arrow::array::{BooleanArray, Decimal128Array, StringArray};
    let mut rows = Vec::new();
    for batch in ledger_file(out, date, "adjustments.parquet") {
        let text = |n: &str| col::<StringArray>(&batch, n);
        let usd = col::<Decimal128Array>(&batch, "amount_usd");
        let frozen = col::<BooleanArray>(&batch, "frozen");
        let (partner, booked, reason, restated) =
            (text("partner_id"), text("booked_period"), text("reason"), text("restated_period"));
        for i in 0..batch.num_rows() {
            rows.push((
                partner.value(i).to_string(),
                booked.value(i).to_string(),
                reason.value(i).to_string(),
                restated.value(i).to_string(),
                usd.value(i),
                frozen.value(i),
            ));
        }
    }
    rows
}

#[test]
fn a_backdated_agreement_end_after_booking_is_restated_in_the_open_period() {
    let z = Zone::new();
    let agreements = "agreement_id,partner_id,agreement_type,start_date,end_date\n";
    z.put(
        "agreements/2026-08-01.csv",
        format!("{agreements}A1,P1,partner_network,2026-01-01,\nA2,P1,cloud_reseller,2026-01-01,\n"),
    );
    z.put(
        "competencies/2026-08-01.csv",
        "partner_id,competency,level,start_date,end_date\nP1,c,gold,2026-01-01,\n",
    );
    z.put(
        "transactions/2026-09-21.csv",
        format!("{TX_HEADER}T1,2026-09-10,sale,,P1,,C1,S1,modern_work,1,1000.00,USD\nT2,2026-09-20,sale,,P1,,C1,S1,modern_work,1,400.00,USD\n"),
    );
    z.program("dr.toml", PROGRAM);
    let out = tempfile::tempdir().unwrap();
    let run_zone = |date: &str| {
        let o = incentives(&[
            "run",
            "-q",
            "--input",
            z.path(),
            "--programs",
            z.programs_path(),
            "--date",
            date,
            "--output",
            out.path().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{date}: {}", stderr(&o));
    };
    // 2026-10-05: September is closed and booked at 50.00 + 20.00.
    run_zone("2026-10-05");
    let key = ("dr".to_string(), "P1".to_string(), "2026-09".to_string(), "rebate".to_string());
    assert_eq!(booked(out.path(), "2026-10-05")[&key], 7_000);
    assert!(adjustments(out.path(), "2026-10-05").is_empty());
    // Delivered 2026-10-10: the network agreement ended 2026-09-15, so T2 no longer earns.
    z.put(
        "agreements/2026-10-10.csv",
        format!(
            "{agreements}A1,P1,partner_network,2026-01-01,2026-09-15\nA2,P1,cloud_reseller,2026-01-01,\n"
        ),
    );
    run_zone("2026-10-12");
    assert_eq!(booked(out.path(), "2026-10-12")[&key], 7_000, "September stays booked at 70.00");
    assert_eq!(
        adjustments(out.path(), "2026-10-12"),
        [("P1".into(), "2026-10".into(), "RESTATEMENT".into(), "2026-09".into(), -2_000, false)],
        "the 20.00 T2 earned comes back in October, the open period"
    );
    // Undone while October is open (the end date withdrawn): the adjustment goes.
    z.put(
        "agreements/2026-10-20.csv",
        format!("{agreements}A1,P1,partner_network,2026-01-01,\nA2,P1,cloud_reseller,2026-01-01,\n"),
    );
    run_zone("2026-10-21");
    assert!(adjustments(out.path(), "2026-10-21").is_empty());
}
