//! The parquet reports read back by the tools BI users point at a folder: pandas, polars,
//! pyarrow, DuckDB and Spark (from PyPI; Spark needs Java 17). `scripts/test` installs them and
//! sets `INCENTIVES_REQUIRE_BI_READERS=1`, so a missing one fails this test instead of skipping it.

use std::process::Command;

use crate::common::*;

fn python_has_readers() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb, pandas, polars, pyarrow, pyspark"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn every_report_folder_reads_as_a_dataset_in_five_tools_and_the_current_state_recipe_gives_the_latest_csvs() {
    if !python_has_readers() {
        assert!(
            std::env::var_os("INCENTIVES_REQUIRE_BI_READERS").is_none(),
            "python3 with duckdb, pandas, polars, pyarrow and pyspark is required (scripts/test installs them)"
        );
        eprintln!("SKIPPED: python3 with duckdb, pandas, polars, pyarrow and pyspark not found");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dates = ["2026-10-03", "2026-11-01"];
    for date in dates {
        let o = incentives(&["run", "-q", "--date", date, "--output", out.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bi/read_back.py");
    let check = Command::new("python3").arg(script).arg(out.path()).args(dates).output().unwrap();
    assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
    assert!(
        stdout(&check).contains("read by pandas, polars, pyarrow, DuckDB and Spark; 0 problems"),
        "{}",
        stdout(&check)
    );
}
