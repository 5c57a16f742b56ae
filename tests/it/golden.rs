//! Golden files: the real binary over `sample_data/` for two run dates, every report's CSV
//! compared byte for byte with `tests/golden/run_date=D/<report>.csv`.
//!
//! The numbers in the golden files were checked by hand and by an independent script:
//! `tests/golden/verify.py` (Python's `decimal`, no code shared with the crate) recomputes every
//! earnings line (USD conversion, rate × amount at the currency's minor unit, cumulative
//! clawbacks), every payout group and every dashboard total from the golden CSVs, and CI runs
//! it. Spot checks done by hand: T00023 (DR07) 1000.1250 USD × 0.04 = 40.005 -> 40.01;
//! T00028 (DR05) 1000012.5 JPY × 0.04 = 40000.5 -> 40001 JPY, × 0.0067067 = 268.27135 ->
//! 268.27 USD; T00029 (DR06) 1234.5625 KWD × 0.04 = 49.3825 -> 49.383 KWD.
//! To regenerate after an intended change: `INCENTIVES_BLESS=1 cargo test golden`, then re-run
//! verify.py and review the diff.

use std::path::Path;

use crate::common::*;

fn check_date(run_date: &str) {
    check_date_with(run_date, &[]);
}

fn check_date_with(run_date: &str, extra: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["run", "--date", run_date, "--output", out.path().to_str().unwrap(), "-q"];
    args.extend(extra);
    let o = incentives(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/run_date={run_date}"));
    let bless = std::env::var_os("INCENTIVES_BLESS").is_some() && extra.is_empty();
    for report in REPORTS {
        let actual = std::fs::read(out.path().join(csv_path(report, run_date))).unwrap();
        let path = golden.join(format!("{report}.csv"));
        if bless {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if actual != expected {
            let (a, e) = (String::from_utf8_lossy(&actual), String::from_utf8_lossy(&expected));
            let first = a.lines().zip(e.lines()).position(|(x, y)| x != y);
            panic!(
                "{report} for {run_date} differs from {} (first differing line {:?}):\n  got:      {:?}\n  expected: {:?}",
                path.display(),
                first.map(|i| i + 1),
                first.and_then(|i| a.lines().nth(i)),
                first.and_then(|i| e.lines().nth(i)),
            );
        }
    }
}

#[test]
fn sample_reports_match_golden_files_mid_quarter() {
    check_date("2026-10-03");
}

#[test]
fn sample_reports_match_golden_files_at_the_newest_delivery() {
    check_date("2026-11-01");
}

/// The rules and reports go range by range of partners (`--range-lines`); one partner per
/// range must give the same bytes as one range for all.
#[test]
fn sample_reports_are_the_same_when_computed_one_partner_at_a_time() {
    check_date_with("2026-10-03", &["--range-lines", "1"]);
    check_date_with("2026-11-01", &["--range-lines", "1"]);
}

/// Above `--spill-above` rows the accepted transactions go to a local file and are read back
/// range by range: the reports must be the same bytes as from memory.
#[test]
fn sample_reports_are_the_same_when_the_transactions_are_spilled() {
    check_date_with("2026-10-03", &["--spill-above", "0"]);
    check_date_with("2026-11-01", &["--spill-above", "0", "--range-lines", "3"]);
}

/// What `--range-lines` changes, exactly as the README says: nothing but the page layout of
/// the earnings and unearned parquet files (and so their SHA-256 in the manifest). Every other
/// file is the same bytes, and those two hold the same rows and metadata.
#[test]
fn range_lines_changes_only_the_pages_of_the_earnings_and_unearned_parquet_files() {
    let date = "2026-11-01";
    let outputs: Vec<_> = ["1", "4", "65536"]
        .iter()
        .map(|lines| {
            let out = tempfile::tempdir().unwrap();
            let o = incentives(&[
                "run",
                "-q",
                "--date",
                date,
                "--range-lines",
                lines,
                "--output",
                out.path().to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            (lines, final_files_of(out.path(), date))
        })
        .collect();
    let paged = |path: &str| {
        path.ends_with(".parquet") && (path.starts_with("earnings/") || path.starts_with("unearned/"))
    };
    let (_, base) = &outputs[2];
    for (lines, files) in &outputs[..2] {
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            base.keys().collect::<Vec<_>>(),
            "--range-lines {lines}"
        );
        for (path, bytes) in files {
            if paged(path) {
                let (a, b) = (parquet_content(bytes), parquet_content(&base[path]));
                assert!(a == b, "--range-lines {lines}: {path} holds other rows or metadata");
            } else if path.ends_with("manifest.json") {
                let (mut a, mut b): (serde_json::Value, serde_json::Value) =
                    (serde_json::from_slice(bytes).unwrap(), serde_json::from_slice(&base[path]).unwrap());
                for m in [&mut a, &mut b] {
                    for (file, entry) in m["outputs"].as_object_mut().unwrap() {
                        if paged(file) {
                            entry["sha256"] = serde_json::Value::Null;
                        }
                    }
                }
                assert_eq!(a, b, "--range-lines {lines}: the manifest differs beyond the two files' hashes");
            } else {
                assert!(*bytes == base[path], "--range-lines {lines}: {path} differs");
            }
        }
    }
}

/// A parquet file's rows (all batches as one) and its key-value metadata.
fn parquet_content(
    bytes: &[u8],
) -> (arrow::record_batch::RecordBatch, Option<Vec<parquet::file::metadata::KeyValue>>) {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::copy_from_slice(bytes),
    )
    .unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata().cloned();
    let schema = reader.schema().clone();
    let batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    (arrow::compute::concat_batches(&schema, &batches).unwrap(), kv)
}
