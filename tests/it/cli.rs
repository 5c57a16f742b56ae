//! The binary as a user meets it: exit codes, what `validate` prints, what `run` writes.

use std::path::Path;

use crate::common::*;

#[test]
fn validate_on_the_sample_lists_each_bad_row_and_reconciles() {
    let o = incentives(&["validate", "--date", "2026-08-31"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("run date 2026-08-31"), "{out}");
    assert!(
        out.contains("transactions     transactions/2026-07-15.csv row 14: amount \"1,000.00\" BAD_DECIMAL"),
        "{out}"
    );
    assert!(
        out.contains("partners         partners/2026-07-01.csv row 31: country_code \"XX\" BAD_COUNTRY"),
        "{out}"
    );
    assert!(out.contains("reconciliation (rows read = accepted + rejected)"), "{out}");
}

#[test]
fn the_default_run_date_is_the_newest_delivery() {
    let o = incentives(&["validate", "-q"]);
    assert!(o.status.success());
    let o = incentives(&["validate"]);
    assert!(stdout(&o).contains("run date 2026-11-01 (the newest delivery date)"), "{}", stdout(&o));
}

#[test]
fn strict_exits_1_when_rows_are_rejected() {
    let o = incentives(&["validate", "--strict", "-q"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("rejected and --strict"), "{}", stderr(&o));
}

#[test]
fn a_clean_zone_passes_strict() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    let o = incentives(&["validate", "--strict", "--input", z.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn invalid_programs_exit_78_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "id = \"a\"\nrate = 1\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "id = [\n").unwrap();
    let o = incentives(&["validate", "--programs", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    let err = stderr(&o);
    for expected in [
        "a.toml: rate: unknown field",
        "a.toml: name: missing field",
        "a.toml: levers: missing field",
        "b.toml: not valid TOML",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }
}

#[test]
fn bad_run_date_is_quoted() {
    let o = incentives(&["validate", "--date", "2026-13-01"]);
    assert_eq!(o.status.code(), Some(78), "a usage error is invalid configuration");
    assert!(stderr(&o).contains("invalid run date '2026-13-01': expected YYYY-MM-DD"), "{}", stderr(&o));
}

#[test]
fn an_unreadable_file_exits_2_naming_it_and_keep_going_skips_it() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    z.put("transactions/2026-09-02.parquet", b"garbage");
    let o = incentives(&["validate", "--input", z.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("transactions/2026-09-02.parquet"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--keep-going"), "{}", stderr(&o));

    let out = tempfile::tempdir().unwrap();
    let o =
        incentives(&["run", "--keep-going", "--input", z.path(), "--output", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("skipped transactions/2026-09-02.parquet"), "{}", stdout(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("runs/2026-09-02/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["skipped"][0]["path"], "transactions/2026-09-02.parquet");
    assert!(manifest["inputs"].get("transactions/2026-09-02.parquet").is_none());
}

#[test]
fn links_to_nothing_loops_and_names_not_utf8_are_named_and_skipped_under_keep_going() {
    use std::os::unix::ffi::OsStrExt;
    let z = Zone::new();
    z.put(
        "transactions/2026-09-02.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    let tx = Path::new(z.path()).join("transactions");
    std::os::unix::fs::symlink("/no/such/file.csv", tx.join("2026-09-01.csv")).unwrap();
    std::os::unix::fs::symlink("2026-08-31.csv", tx.join("2026-08-31.csv")).unwrap();
    // A link back to the landing zone: listed once, not followed around forever.
    std::os::unix::fs::symlink("..", tx.join("again")).unwrap();
    let not_utf8 = std::ffi::OsStr::from_bytes(b"2026-08-30-\xff.csv");
    std::fs::write(
        tx.join(not_utf8),
        format!("{TX_HEADER}T9,2026-08-30,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    )
    .unwrap();

    // Each stops the run, named, with what is wrong; the landing zone itself is fine.
    let o = incentives(&["validate", "--input", z.path(), "--date", "2026-09-02"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("transactions/2026-0") && err.contains("--keep-going"), "{err}");
    for (name, problem) in [
        ("2026-09-01.csv", "a symbolic link to '/no/such/file.csv', which does not exist"),
        ("2026-08-31.csv", "a loop of symbolic links"),
        ("2026-08-30-\u{FFFD}.csv", "its name is not UTF-8"),
    ] {
        let only = Zone::new();
        only.put(
            "transactions/2026-09-02.csv",
            format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
        );
        let from = tx.join(if name.contains('\u{FFFD}') { not_utf8 } else { std::ffi::OsStr::new(name) });
        std::fs::rename(&from, Path::new(only.path()).join("transactions").join(from.file_name().unwrap()))
            .unwrap();
        let o = incentives(&["validate", "--input", only.path(), "--date", "2026-09-02"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("transactions/{name}")) && stderr(&o).contains(problem),
            "{name}: {}",
            stderr(&o)
        );
        std::fs::rename(Path::new(only.path()).join("transactions").join(from.file_name().unwrap()), &from)
            .unwrap();
    }

    // --keep-going skips them, each listed with its reason; the good file is read.
    let out = tempfile::tempdir().unwrap();
    let o = incentives(&[
        "run",
        "--keep-going",
        "--input",
        z.path(),
        "--date",
        "2026-09-02",
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("runs/2026-09-02/manifest.json")).unwrap())
            .unwrap();
    let skipped: Vec<(String, String)> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    let paths: Vec<&str> = skipped.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "transactions/2026-08-30-\u{FFFD}.csv",
            "transactions/2026-08-31.csv",
            "transactions/2026-09-01.csv"
        ],
        "{skipped:?}"
    );
    assert!(skipped[1].1.contains("a loop of symbolic links"), "{skipped:?}");
    assert!(manifest["inputs"].get("transactions/2026-09-02.csv").is_some());
    let ignored = manifest["ignored"].as_array().unwrap();
    assert!(
        ignored.iter().any(|i| i["path"] == "transactions/again"
            && i["reason"].as_str().unwrap().contains("a link back to a folder that holds it")),
        "{ignored:?}"
    );
}

#[test]
fn a_file_that_panics_the_parquet_reader_is_an_error_naming_it_without_a_backtrace() {
    // A 3-row users file written by arrow's ArrowWriter with byte 12 set to 0: the parquet
    // crate (60.1) divides by zero reading its dictionary page instead of returning an error.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parquet-reader-panics.parquet");
    let z = Zone::new();
    z.put("users/2026-08-01.parquet", std::fs::read(fixture).unwrap());
    for flags in [&[][..], &["-q"], &["--log-format", "json"]] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_incentives"))
            .args(["validate", "--input", z.path(), "--date", "2026-08-02"])
            .args(flags)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(
                "users/2026-08-01.parquet: not a readable parquet file: the parquet reader failed on it"
            ),
            "{flags:?}: the handled panic is the error: {err}"
        );
        for noise in ["panicked at", "backtrace", "RUST_BACKTRACE"] {
            assert!(!err.contains(noise), "{flags:?}: {noise:?} in {err}");
        }
    }
}

#[test]
fn a_missing_landing_zone_is_an_unusable_location_exit_78() {
    let o = incentives(&["validate", "--input", "/no/such/landing"]);
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).contains("/no/such/landing"));
}

#[test]
fn usage_errors_and_unusable_locations_exit_78_help_and_version_0() {
    for args in
        [&["run", "--no-such-flag"][..], &["frobnicate"], &["run", "--output", ""], &["run", "--output", " "]]
    {
        let o = incentives(args);
        assert_eq!(o.status.code(), Some(78), "{args:?}: {}", stderr(&o));
    }
    assert!(stderr(&incentives(&["run", "--output", ""])).contains("an empty location"));
    for args in [&["--help"][..], &["run", "--help"], &["--version"]] {
        let o = incentives(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(!stdout(&o).is_empty(), "{args:?} prints to stdout");
    }
}

#[test]
fn run_writes_rejects_and_a_manifest_that_reconciles_and_repeats_byte_for_byte() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let o = incentives(&["run", "--date", "2026-10-03", "--output", out_dir, "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv_file = out.path().join(csv_path("rejects", "2026-10-03"));
    let parquet_file = out.path().join(parquet_path("rejects", "2026-10-03"));
    let first = (std::fs::read(&csv_file).unwrap(), std::fs::read(&parquet_file).unwrap());
    let csv = String::from_utf8(first.0.clone()).unwrap();
    assert!(csv.starts_with("run_date,feed,file,row,field,value,reason\n"));
    assert!(csv.contains("2026-10-03,transactions,transactions/2026-07-15.csv,24,,5,BAD_RECORD\n"), "{csv}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("runs/2026-10-03/manifest.json")).unwrap())
            .unwrap();
    let mut total = (0, 0, 0);
    for (path, f) in manifest["inputs"].as_object().unwrap() {
        let (r, a, j) =
            (f["rows"].as_u64().unwrap(), f["accepted"].as_u64().unwrap(), f["rejected"].as_u64().unwrap());
        assert_eq!(r, a + j, "{path}");
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
        total = (total.0 + r, total.1 + a, total.2 + j);
    }
    let t = &manifest["totals"];
    assert_eq!(
        (t["rows_read"].as_u64().unwrap(), t["accepted"].as_u64().unwrap(), t["rejected"].as_u64().unwrap()),
        total
    );
    let rejected_rows: std::collections::BTreeSet<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let mut c = l.split(',');
            (c.nth(2).unwrap().to_string(), c.next().unwrap().to_string())
        })
        .collect();
    assert_eq!(rejected_rows.len() as u64, total.2, "one rejected row per (file, row) in the report");
    assert_eq!(
        manifest["outputs"][&csv_path("rejects", "2026-10-03")]["rows"],
        csv.lines().count() as u64 - 1
    );
    assert!(manifest["data_as_of"] == "2026-10-03");

    let o = incentives(&["run", "--date", "2026-10-03", "--output", out_dir, "-q"]);
    assert!(o.status.success());
    assert_eq!(
        (std::fs::read(&csv_file).unwrap(), std::fs::read(&parquet_file).unwrap()),
        first,
        "byte-identical"
    );
}

#[test]
fn a_spill_folder_that_cannot_be_used_exits_2_naming_it() {
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("no/such/folder");
    let o = incentives(&[
        "run",
        "--output",
        out.path().to_str().unwrap(),
        "--spill-above",
        "0",
        "--spill-dir",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(missing.to_str().unwrap()), "{}", stderr(&o));
}

#[test]
fn an_empty_landing_zone_publishes_nothing_unless_allowed() {
    let z = Zone::new(); // partners and rates, no transaction file
    let out = tempfile::tempdir().unwrap();
    let o = z.run("2026-09-02", out.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no transaction file on or before 2026-09-02"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-empty"), "{}", stderr(&o));
    assert!(!out.path().join("runs").exists(), "nothing published");
    let o = z.run("2026-09-02", out.path(), &["--allow-empty"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.path().join("runs/2026-09-02/manifest.json").is_file());
}

#[test]
fn far_fewer_transactions_than_the_last_published_run_publish_nothing_unless_allowed() {
    let z = Zone::new();
    let sale = |id: &str| format!("{id},2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n");
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}{}{}{}{}", sale("T1"), sale("T2"), sale("T3"), sale("T4")),
    );
    let out = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| z.run("2026-09-02", out.path(), extra);
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = || std::fs::read(out.path().join("runs/2026-09-02/manifest.json")).unwrap();
    let published = manifest();

    // The next delivery of the same date holds one of the four: below half, refused.
    z.put("transactions/2026-09-01.csv", format!("{TX_HEADER}{}", sale("T1")));
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("1 transactions accepted for 2026-09-02, fewer than 50% of the 4"), "{err}");
    assert!(err.contains("--allow-shrink"), "{err}");
    assert_eq!(manifest(), published, "the published run is untouched");

    // A lower limit, or saying it is intended, publishes.
    let o = run(&["--shrink-limit", "25"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["--allow-shrink"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(manifest(), published);
}

#[test]
fn the_summary_fits_a_screen_and_its_money_is_the_dashboards() {
    let out = tempfile::tempdir().unwrap();
    let o = incentives(&["run", "--output", out.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.lines().count() < 40, "{text}");
    // One line per feed, not per file; -v gives the files.
    assert!(text.contains("  transactions ") && !text.contains("transactions/2026-"), "{text}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("runs/2026-11-01/manifest.json")).unwrap())
            .unwrap();
    let rejects = std::fs::read_to_string(out.path().join(csv_path("rejects", "2026-11-01"))).unwrap();
    let problems = rejects.lines().count() - 1;
    let rejected = manifest["totals"]["rejected"].as_u64().unwrap();
    assert!(problems as u64 > rejected, "the sample has rows with several problems");
    assert!(text.contains(&format!("{rejected} rejected row(s) with {problems} problem(s)")), "{text}");
    // Each program's money: the dashboard's columns summed over its partners.
    let mut dashboard = csv::Reader::from_path(out.path().join(csv_path("dashboard", "2026-11-01"))).unwrap();
    let header = dashboard.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let columns = [
        "earned_to_date_usd",
        "scheduled_usd",
        "on_hold_usd",
        "carried_forward_usd",
        "accruing_usd",
        "coop_available_usd",
    ];
    let mut sums: std::collections::BTreeMap<String, [i128; 6]> = Default::default();
    for record in dashboard.records() {
        let record = record.unwrap();
        let sum = sums.entry(record[col("program_id")].to_string()).or_default();
        for (i, c) in columns.iter().enumerate() {
            sum[i] += cents(&record[col(c)]);
        }
    }
    assert_eq!(sums.len(), 3);
    for (program, want) in &sums {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(program.as_str()))
            .unwrap_or_else(|| panic!("{program}: {text}"));
        let got: Vec<i128> = line.split_whitespace().skip(1).map(cents).collect();
        assert_eq!(got, want.to_vec(), "{program}: {line}");
    }
    let verbose = incentives(&["run", "-v", "--output", out.path().to_str().unwrap()]);
    assert!(stdout(&verbose).contains("transactions/2026-10-31.csv"), "{}", stdout(&verbose));
}

#[test]
fn json_logs_are_json_to_the_last_line_with_time_level_numbers_and_errors() {
    let out = tempfile::tempdir().unwrap();
    let o = incentives(&[
        "run",
        "-v",
        "--strict",
        "--log-format",
        "json",
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3);
    for l in &lines {
        assert!(chrono::DateTime::parse_from_rfc3339(l["timestamp"].as_str().unwrap()).is_ok(), "{l}");
        assert!(["ERROR", "WARN", "INFO", "DEBUG"].contains(&l["level"].as_str().unwrap()), "{l}");
    }
    assert!(lines.iter().any(|l| l["fields"]["elapsed_s"].is_f64()), "elapsed_s is a number");
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["exit_code"], 1);
    assert!(last["fields"]["message"].as_str().unwrap().contains("--strict"), "{last}");
    // A fatal error too, under -q.
    let o = incentives(&[
        "run",
        "-q",
        "--log-format",
        "json",
        "--input",
        "/no/such/landing",
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(78));
    let line: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(line["fields"]["exit_code"], 78);
    assert!(line["fields"]["message"].as_str().unwrap().contains("/no/such/landing"), "{line}");
}

#[test]
fn a_terminal_shows_the_stages_with_their_counts_and_cron_sees_nothing_extra() {
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("terminal.log");
    let command = format!(
        "{} run --output {} > /dev/null",
        env!("CARGO_BIN_EXE_incentives"),
        out.path().join("o").display()
    );
    // `script` runs the command on a pseudo-terminal and records what it drew.
    let o = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&log)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("script (util-linux) runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let drawn = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    for expected in [
        "[2/5] validating the feeds",
        "files",
        "[3/5] applying the rules",
        "pieces",
        "[4/5] writing the exports",
        "partner folders",
        "[5/5] publishing",
    ] {
        assert!(drawn.contains(expected), "{expected:?} not drawn: {drawn}");
    }
    // Not a terminal (cron): the summary on stdout, nothing on stderr.
    let o = incentives(&["run", "--output", out.path().join("o").to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "", "nothing extra under cron");
    assert!(stdout(&o).contains("reconciliation"));
}

#[test]
fn developer_tools_say_so_and_stop_without_the_shared_folder() {
    let root = env!("CARGO_MANIFEST_DIR");
    let o = std::process::Command::new("bash")
        .arg(format!("{root}/scripts/conformance.sh"))
        .env("SHARED", "/no/such/shared")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("skipped: the conformance cases are not here (/no/such/shared/conformance"),
        "{}",
        stdout(&o)
    );
    let o = std::process::Command::new("python3")
        .args([&format!("{root}/tests/oracle/gen.py"), "0", "1"])
        .env("COMPARE", "/no/such/compare.py")
        .env("INCENTIVES_BIN", env!("CARGO_BIN_EXE_incentives"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("skipped: this developer tool needs the shared conformance comparer"),
        "{}",
        stdout(&o)
    );
}
