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

/// booked.parquet as (program, partner, period, type) -> cents.
fn booked(out: &Path, date: &str) -> BTreeMap<(String, String, String, String), i128> {
    use arrow::array::{Array, Decimal128Array, StringArray};
    let bytes = std::fs::read(out.join(format!("_ledger/run_date={date}/booked.parquet"))).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
    let mut rows = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let text = |n: &str| {
            batch.column_by_name(n).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone()
        };
        let (a, b, c, d) = (text("program_id"), text("partner_id"), text("period"), text("earning_type"));
        let usd = batch
            .column_by_name("booked_usd")
            .unwrap()
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap()
            .clone();
        for i in 0..batch.num_rows() {
            rows.insert(
                (a.value(i).into(), b.value(i).into(), c.value(i).into(), d.value(i).into()),
                usd.value(i),
            );
        }
    }
    rows
}

fn cents(text: &str) -> i128 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let v = whole.trim_start_matches('-').parse::<i128>().unwrap() * 100
        + format!("{frac:0<2}")[..2].parse::<i128>().unwrap();
    if whole.starts_with('-') { -v } else { v }
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
