//! Publishing: a run is all-or-nothing (SIGKILL at every checkpoint leaves the last good run
//! intact and nothing partial), exactly repeatable, guarded against a second run of the same
//! date, and its exports never show a partner another partner's rows.

use std::path::Path;

use crate::common::*;

fn small_zone() -> Zone {
    let z = Zone::new();
    z.put(
        "agreements/2026-08-01.csv",
        "agreement_id,partner_id,agreement_type,start_date,end_date\nA1,P1,partner_network,2026-01-01,\nA2,P1,cloud_reseller,2026-01-01,\n",
    );
    z.put(
        "competencies/2026-08-01.csv",
        "partner_id,competency,level,start_date,end_date\nP1,c,gold,2026-01-01,\n",
    );
    z.put(
        "users/2026-08-01.csv",
        "user_id,partner_id,role\na@p1,P1,incentive_admin\nu@p1,P1,incentive_user\n",
    );
    z.put(
        "transactions/2026-09-02.csv",
        format!(
            "{TX_HEADER}T1,2026-08-20,sale,,P1,,C1,S1,modern_work,1,1000.00,USD\n\
             T2,2026-08-21,sale,,P1,,C1,S1,modern_work,1,20.00,EUR\nT3,bad,sale,,P1,,C1,S1,azure,1,1.00,USD\n"
        ),
    );
    z.program("dr.toml", PROGRAM);
    z
}

fn run_into(z: &Zone, out: &Path, date: &str, env: &[(&str, String)]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_incentives"));
    c.args(["run", "-q", "--input", z.path(), "--programs", z.programs_path(), "--date", date])
        .arg("--output")
        .arg(out);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn sigkill_at_every_checkpoint_leaves_the_last_good_run_and_nothing_partial() {
    let z = small_zone();
    let out = tempfile::tempdir().unwrap();
    let date = "2026-09-02";
    // First run killed at its first checkpoint: nothing at all is visible.
    let o = run_into(&z, out.path(), date, &[("INCENTIVES_TEST_KILL_AT", "1".into())]);
    assert!(!o.status.success());
    assert!(final_files_of(out.path(), date).is_empty(), "a killed first run shows nothing");
    // A good run.
    let o = run_into(&z, out.path(), date, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = final_files_of(out.path(), date);
    assert!(good.len() > 20, "{}", good.len());
    // Change the inputs so that a finished new run would be visibly different.
    z.put(
        "transactions/2026-09-02.csv",
        format!("{TX_HEADER}T1,2026-08-20,sale,,P1,,C1,S1,modern_work,1,3000.00,USD\n"),
    );
    let mut k = 1;
    loop {
        let o = run_into(&z, out.path(), date, &[("INCENTIVES_TEST_KILL_AT", k.to_string())]);
        if o.status.success() {
            break; // k is past the last checkpoint: the run finished
        }
        assert_eq!(o.status.code(), None, "killed by a signal at checkpoint {k}: {}", stderr(&o));
        let now = final_files_of(out.path(), date);
        // Before the publishing rename the old run is visible; after it, the new one. Never a mix.
        if now != good {
            let manifest: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out.path().join(format!("runs/{date}/manifest.json"))).unwrap(),
            )
            .unwrap();
            for (path, meta) in manifest["outputs"].as_object().unwrap() {
                let bytes = std::fs::read(out.path().join(path)).unwrap();
                assert!(meta["rows"].is_u64());
                assert_eq!(
                    meta["sha256"].as_str().unwrap(),
                    incentives::digest::sha256_hex(&bytes),
                    "checkpoint {k}: {path} does not belong to the visible manifest"
                );
            }
            assert!(now.keys().all(|p| p.ends_with("manifest.json") || manifest["outputs"].get(p).is_some()));
        }
        k += 1;
        assert!(k < 200, "the run never finished");
    }
    assert!(k > 20, "only {k} checkpoints");
    let last = final_files_of(out.path(), date);
    assert_ne!(last, good, "the finished run is published");
    assert!(String::from_utf8_lossy(&last[&csv_path("earnings", date)]).contains("3000.0000"));
}

#[test]
fn a_second_run_of_the_date_is_refused_while_the_lock_is_held() {
    let z = small_zone();
    let out = tempfile::tempdir().unwrap();
    let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    std::fs::create_dir_all(out.path().join("_locks")).unwrap();
    let holder = serde_json::json!({
        "host": host, "pid": sleeper.id(), "started_at": "2026-11-25T01:00:00Z", "expires_at": "2999-01-01T00:00:00Z"
    });
    std::fs::write(out.path().join("_locks/2026-09-03.lock"), holder.to_string()).unwrap();
    let o = run_into(&z, out.path(), "2026-09-03", &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("another run of 2026-09-03 is in progress")
            && err.contains(&format!("pid {}", sleeper.id())),
        "{err}"
    );
    // Another date is not blocked.
    assert!(run_into(&z, out.path(), "2026-09-02", &[]).status.success());
    // Once the holder is gone, its lock is stale and the next run takes it over.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let o = run_into(&z, out.path(), "2026-09-03", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.path().join("_locks/2026-09-03.lock").exists(), "the lock is released");
}

#[test]
fn of_runs_started_together_over_a_stale_lock_exactly_one_takes_it_over() {
    let z = small_zone();
    let out = tempfile::tempdir().unwrap();
    let date = "2026-09-02";
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let lock = out.path().join(format!("_locks/{date}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    for round in 0..8 {
        // A crashed run's lock: this host, a process that has exited.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let stale = serde_json::json!({
            "host": host, "pid": gone.id(), "started_at": "2026-11-25T01:00:00Z", "expires_at": "2999-01-01T00:00:00Z"
        });
        std::fs::write(&lock, stale.to_string()).unwrap();
        let args = ["run", "--input", z.path(), "--programs", z.programs_path(), "--date", date]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([std::ffi::OsStr::new("--output"), out.path().as_os_str()])
            .collect::<Vec<_>>();
        race_for_a_stale_lock(4, &args, &[], 300);
        assert!(!lock.exists(), "round {round}: the lock is released");
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("runs/{date}/manifest.json"))).unwrap(),
        )
        .unwrap();
        for file in manifest["outputs"].as_object().unwrap().keys() {
            assert!(
                out.path().join(file).is_file(),
                "round {round}: the manifest lists {file}, which is missing"
            );
        }
    }
}

#[test]
fn two_runs_of_a_date_are_byte_identical() {
    let out = tempfile::tempdir().unwrap();
    let args = ["run", "-q", "--date", "2026-10-03", "--output", out.path().to_str().unwrap()];
    assert!(incentives(&args).status.success());
    let first = final_files_of(out.path(), "2026-10-03");
    assert!(incentives(&args).status.success());
    let second = final_files_of(out.path(), "2026-10-03");
    assert!(first.keys().any(|k| k.ends_with(".parquet")) && first.len() > 100);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    for (k, v) in &first {
        assert!(second[k] == *v, "{k} differs between two runs");
    }
}

#[test]
fn exports_never_show_another_partners_rows_even_with_hostile_ids() {
    let ids = [
        "../x",
        "a/b",
        "a%2Fb",
        "..",
        ".",
        "=cmd|' /C calc'!A0",
        "+1",
        "émile ü",
        "P 1",
        "back\\slash",
        "x~y",
        "-P",
    ];
    let z = Zone::empty();
    let mut partners =
        String::from("partner_id,partner_name,country_code,partner_type,network_registered_on\n");
    let mut agreements = String::from("agreement_id,partner_id,agreement_type,start_date,end_date\n");
    let mut comps = String::from("partner_id,competency,level,start_date,end_date\n");
    let mut users = String::from("user_id,partner_id,role\n");
    let mut tx = String::from(TX_HEADER);
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (i, id) in ids.iter().enumerate() {
        partners.push_str(&format!("{},Name {i},US,direct_reseller,\n", q(id)));
        agreements.push_str(&format!(
            "N{i},{},partner_network,2026-01-01,\nR{i},{},cloud_reseller,2026-01-01,\n",
            q(id),
            q(id)
        ));
        comps.push_str(&format!("{},c,gold,2026-01-01,\n", q(id)));
        users.push_str(&format!("admin{i}@x,{},incentive_admin\n", q(id)));
        for k in 0..3 {
            tx.push_str(&format!(
                "T{i}-{k},2026-08-0{},sale,,{},,C,S,modern_work,1,{}.00,USD\n",
                k + 1,
                q(id),
                100 + i * 10 + k
            ));
        }
    }
    z.put("partners/2026-08-01.csv", partners);
    z.put("agreements/2026-08-01.csv", agreements);
    z.put("competencies/2026-08-01.csv", comps);
    z.put("users/2026-08-01.csv", users);
    z.put("transactions/2026-09-02.csv", tx);
    z.program("dr.toml", PROGRAM);
    let out = tempfile::tempdir().unwrap();
    let o = run_into(&z, out.path(), "2026-09-02", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let exports = out.path().join("exports/run_date=2026-09-02");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&exports).unwrap().flatten() {
        assert!(e.path().is_dir());
        let name = e.file_name().to_string_lossy().into_owned();
        let id = incentives::store::percent_decode(name.strip_prefix("partner_id=").unwrap());
        seen.push(id.clone());
        let files = EXPORTED.iter().map(|report| format!("{report}.csv")).chain(["access.csv".to_string()]);
        for file in files {
            let mut r = csv::Reader::from_path(e.path().join(&file)).unwrap();
            let col = r.headers().unwrap().iter().position(|h| h == "partner_id").unwrap();
            for rec in r.records() {
                let cell = rec.unwrap()[col].to_string();
                let cell =
                    cell.strip_prefix('\'').filter(|c| c.starts_with(['=', '+', '-', '@'])).unwrap_or(&cell);
                assert_eq!(cell, id, "{name}/{file} holds a row of another partner");
            }
        }
        let earnings = std::fs::read_to_string(e.path().join("earnings.csv")).unwrap();
        assert_eq!(earnings.lines().count(), 4, "{name}: its three sales");
    }
    seen.sort();
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected, "one folder per partner, no other entries");
    // Nothing escaped the exports folder.
    let top: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(top.iter().all(|t| t.starts_with('_') || top_folders().contains(&t.as_str())), "{top:?}");
}
