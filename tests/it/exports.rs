//! Per-partner exports against the reports they are cut from: every accepted partner's file
//! of each exported report is the report's header and exactly that partner's rows, in report
//! order, whichever way the run made it (from the rules' bytes in memory when the partner's
//! type has one program, read back from the staged report when it has several) and whether
//! or not any program pays the partner's type.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// The report's header line and, per partner id, its lines in order.
fn rows_by_partner(csv: &[u8]) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(csv);
    let mut records = r.byte_records();
    let header = records.next().expect("a header").unwrap();
    let col = header.iter().position(|h| h == b"partner_id").expect("a partner_id column");
    let mut by_partner: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut starts: Vec<(usize, String)> = Vec::new();
    for rec in records {
        let rec = rec.unwrap();
        let id = String::from_utf8(rec[col].to_vec()).unwrap();
        starts.push((rec.position().unwrap().byte() as usize, id));
    }
    let header_line = csv[..starts.first().map_or(csv.len(), |s| s.0)].to_vec();
    for (n, (start, id)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(csv.len(), |s| s.0);
        by_partner.entry(id.clone()).or_default().extend_from_slice(&csv[*start..end]);
    }
    (header_line, by_partner)
}

/// Runs the sample data with `programs` and checks every export folder against the reports.
fn check_exports(programs: &Path, run_date: &str, range_lines: &str, extra: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        "--date",
        run_date,
        "--programs",
        programs.to_str().unwrap(),
        "--output",
        out.path().to_str().unwrap(),
        "--range-lines",
        range_lines,
        "-q",
    ];
    args.extend(extra);
    let o = incentives(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let eligibility = std::fs::read(out.path().join(csv_path("eligibility", run_date))).unwrap();
    let exports = out.path().join(format!("exports/run_date={run_date}"));
    let folders: Vec<String> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let ids: std::collections::BTreeSet<String> = folders
        .iter()
        .map(|f| incentives::store::percent_decode(f.strip_prefix("partner_id=").unwrap()))
        .collect();
    for id in rows_by_partner(&eligibility).1.keys() {
        assert!(ids.contains(id), "partner {id} of the eligibility report has no export folder");
    }
    let mut with_rows = 0;
    for report in EXPORTED {
        let csv = std::fs::read(out.path().join(csv_path(report, run_date))).unwrap();
        let (header, by_partner) = rows_by_partner(&csv);
        let mut seen = 0;
        for folder in &folders {
            let id = incentives::store::percent_decode(folder.strip_prefix("partner_id=").unwrap());
            let got = std::fs::read(exports.join(folder).join(format!("{report}.csv"))).unwrap();
            let mut expected = header.clone();
            if let Some(rows) = by_partner.get(&id) {
                expected.extend_from_slice(rows);
                seen += 1;
                with_rows += 1;
            }
            assert!(
                got == expected,
                "{folder}/{report}.csv is not the report's header and the partner's rows:\n{}\n---\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
        }
        assert_eq!(seen, by_partner.len(), "{report}: every partner with rows has a folder");
    }
    assert!(with_rows > 0, "some exports hold rows");
}

fn programs_dir(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, toml) in files {
        std::fs::write(dir.path().join(name), toml).unwrap();
    }
    dir
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(name)).unwrap()
}

#[test]
fn exports_are_the_partners_rows_when_each_type_has_one_program() {
    let dir = programs_dir(&[
        ("direct-reseller-fy27.toml", shipped("direct-reseller-fy27.toml")),
        ("indirect-provider-fy27.toml", shipped("indirect-provider-fy27.toml")),
        ("indirect-reseller-fy27.toml", shipped("indirect-reseller-fy27.toml")),
    ]);
    check_exports(dir.path(), "2026-11-01", "65536", &[]);
    check_exports(dir.path(), "2026-10-03", "3", &[]);
    check_exports(dir.path(), "2026-10-03", "3", &["--spill-above", "0"]);
}

#[test]
fn exports_are_the_partners_rows_when_a_type_has_two_programs_or_none() {
    // Two direct reseller programs (their partners' exports are read back from the staged
    // reports), one indirect provider program (made from the rules' bytes), and none for
    // indirect resellers (headers only).
    let dr = shipped("direct-reseller-fy27.toml");
    let second = dr.replace("id = \"direct-reseller-fy27\"", "id = \"direct-reseller-bonus-fy27\"");
    assert_ne!(dr, second);
    let dir = programs_dir(&[
        ("direct-reseller-fy27.toml", dr),
        ("direct-reseller-bonus-fy27.toml", second),
        ("indirect-provider-fy27.toml", shipped("indirect-provider-fy27.toml")),
    ]);
    check_exports(dir.path(), "2026-11-01", "65536", &[]);
    check_exports(dir.path(), "2026-10-03", "2", &[]);
    check_exports(dir.path(), "2026-11-01", "2", &["--spill-above", "0"]);
}

/// An id too long for a file name (a 300-byte id, a 1,000-byte id, 30 CJK characters: 270
/// bytes encoded) still gets its folder: a readable start and a hash, which the manifest maps
/// back to the full id.
#[test]
fn ids_too_long_for_a_file_name_still_get_their_export() {
    let z = Zone::new();
    let long = ["L".repeat(300), "M".repeat(1000), "漢".repeat(30)];
    let mut partners = PARTNERS.to_string();
    for id in &long {
        partners.push_str(&format!("{id},Long,US,direct_reseller,\n"));
    }
    z.put("partners/2026-08-01.csv", partners);
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    let out = tempfile::tempdir().unwrap();
    let o = z.run("2026-09-02", out.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("runs/2026-09-02/manifest.json")).unwrap())
            .unwrap();
    let folders = manifest["export_folders"].as_object().expect("the hashed folders are listed");
    assert_eq!(folders.len(), long.len(), "{folders:?}");
    for id in &long {
        let (folder, _) = folders.iter().find(|(_, v)| v.as_str() == Some(id)).expect("the full id is named");
        assert!(folder.rsplit('/').next().unwrap().len() <= 255, "{folder}");
        let access = std::fs::read_to_string(out.path().join(folder).join("access.csv")).unwrap();
        assert!(access.starts_with("partner_id,user_id,role,file\n"), "{access}");
        assert!(out.path().join(folder).join("earnings.csv").is_file());
        assert!(manifest["outputs"].get(format!("{folder}/access.csv")).is_some());
    }
    // Ordinary ids keep their plain folder names and are not listed.
    assert!(out.path().join("exports/run_date=2026-09-02/partner_id=P1/earnings.csv").is_file());
}
