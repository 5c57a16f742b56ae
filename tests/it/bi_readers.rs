//! The parquet reports read back by other tools than the writer (DuckDB and pyarrow, from
//! PyPI; `.ci/run` installs them and sets `INCENTIVES_REQUIRE_BI_READERS=1`, so in CI a missing
//! module fails this test instead of skipping it).

use std::process::Command;

use crate::common::*;

fn python_has_readers() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb, pyarrow"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn duckdb_and_pyarrow_see_decimal_date_and_list_types_and_the_csv_numbers() {
    if !python_has_readers() {
        assert!(
            std::env::var_os("INCENTIVES_REQUIRE_BI_READERS").is_none(),
            "python3 with duckdb and pyarrow is required (pip install duckdb pyarrow)"
        );
        eprintln!("SKIPPED: python3 with duckdb and pyarrow not found (pip install duckdb pyarrow)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    for date in ["2026-10-03", "2026-11-01"] {
        let o = incentives(&["run", "-q", "--date", date, "--output", out.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bi/read_back.py");
        let check = Command::new("python3").arg(script).arg(out.path()).arg(date).output().unwrap();
        assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
    }
}
