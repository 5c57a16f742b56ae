//! Test helpers: hand-written landing zones in temporary folders, short ways to look at what
//! ingestion made of them, the names of what a run publishes, and a reader of a published
//! output that two runs of the same inputs must give byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use incentives::feeds::{Ingest, Landing, ingest};
use incentives::store::Store;

pub(crate) fn date(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// A landing zone in a temporary folder.
pub(crate) struct Zone {
    pub(crate) dir: tempfile::TempDir,
    /// A programs folder of its own (see [`Zone::program`]).
    pub(crate) programs: tempfile::TempDir,
}

pub(crate) const PARTNERS: &str = "partner_id,partner_name,country_code,partner_type,network_registered_on\n\
P1,Acme,US,direct_reseller,\n\
P2,Dist,DE,indirect_provider,2025-01-01\n\
P3,Small,FR,indirect_reseller,2025-01-01\n";

/// A monthly direct-reseller program, `dr`: 5 % rebate on modern_work, 10.00 minimum, paid a
/// month after a period closes.
pub(crate) const PROGRAM: &str = r#"id = "dr"
name = "Direct"
partner_type = "direct_reseller"
start = "2026-07-01"
end = "2027-06-30"
earning_period = "month"
payout_lag_months = 1
minimum_payout_usd = "10.00"
[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work"]
rate = "0.05"
"#;

pub(crate) const TX_HEADER: &str = "transaction_id,transaction_date,transaction_type,original_transaction_id,reseller_id,provider_id,customer_id,product_id,product_family,quantity,amount,currency\n";

impl Zone {
    /// An empty landing zone.
    pub(crate) fn empty() -> Zone {
        Zone { dir: tempfile::tempdir().unwrap(), programs: tempfile::tempdir().unwrap() }
    }

    /// Three partners (P1 direct reseller, P2 indirect provider, P3 indirect reseller) and
    /// EUR rates for August and September 2026, delivered 2026-08-01.
    pub(crate) fn new() -> Zone {
        let z = Zone::empty();
        z.put("partners/2026-08-01.csv", PARTNERS);
        z.put(
            "fx_rates/2026-08-01.csv",
            "currency,month,usd_rate\nEUR,2026-08,1.10000000\nEUR,2026-09,1.12\n",
        );
        z
    }

    pub(crate) fn put(&self, rel: &str, content: impl AsRef<[u8]>) -> &Zone {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// Writes a program file into the zone's own programs folder.
    pub(crate) fn program(&self, name: &str, toml: &str) -> &Zone {
        std::fs::write(self.programs.path().join(name), toml).unwrap();
        self
    }

    pub(crate) fn programs_path(&self) -> &str {
        self.programs.path().to_str().unwrap()
    }

    pub(crate) fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub(crate) fn try_ingest(&self, run_date: &str, keep_going: bool) -> incentives::Result<Ingest> {
        let store = Store::open(self.path()).unwrap();
        let landing = Landing::scan(&store).unwrap();
        ingest(&store, &landing, date(run_date), keep_going)
    }

    /// `incentives run` over this zone with the bundled programs, for `run_date`, into `out`,
    /// with `extra` arguments.
    pub(crate) fn run(&self, run_date: &str, out: &std::path::Path, extra: &[&str]) -> Output {
        let out = out.to_str().unwrap();
        let mut args = vec!["run", "--input", self.path(), "--date", run_date, "--output", out];
        args.extend(extra);
        incentives(&args)
    }

    pub(crate) fn ingest(&self, run_date: &str) -> Ingest {
        let i = self.try_ingest(run_date, false).unwrap();
        for f in &i.files {
            assert_eq!(f.rows, f.accepted + f.rejected, "reconciliation of {}", f.path);
        }
        i
    }
}

/// The rejects as `file:row field=value CODE` lines, in report order.
pub(crate) fn rejects(i: &Ingest) -> Vec<String> {
    i.rejects.iter().map(|r| format!("{}:{} {}={} {}", r.file, r.row, r.field, r.value, r.code)).collect()
}

/// Accepted transaction ids in the order ingestion keeps them.
pub(crate) fn tx_ids(i: &Ingest) -> Vec<String> {
    i.feeds.transactions.iter().map(|t| t.transaction_id.to_string()).collect()
}

/// Runs the real binary.
pub(crate) fn incentives(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incentives"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("INCENTIVES_DATE")
        .output()
        .expect("the binary runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The reports a run publishes: parquet in `<report>/run_date=D/`, CSV in `csv/run_date=D/`
/// (reports.md v4; see [`csv_path`] and [`parquet_path`]).
pub(crate) const REPORTS: [&str; 6] =
    ["eligibility", "earnings", "unearned", "payouts", "dashboard", "rejects"];

/// The reports cut into per-partner exports (`exports/run_date=D/partner_id=P/<report>.csv`,
/// next to the partner's `access.csv`).
pub(crate) const EXPORTED: [&str; 4] = ["earnings", "unearned", "payouts", "dashboard"];

/// Where the CSV of `report` for `date` is, relative to the output.
pub(crate) fn csv_path(report: &str, date: &str) -> String {
    format!("csv/run_date={date}/{report}.csv")
}

/// Where the parquet file of `report` for `date` is, relative to the output.
pub(crate) fn parquet_path(report: &str, date: &str) -> String {
    format!("{report}/run_date={date}/part-0.parquet")
}

/// The top folders of a published output besides the `_`-prefixed internals (staging, locks,
/// publishing): the [`REPORTS`]' dataset folders, `csv`, `exports` and `runs` (the manifests).
pub(crate) fn top_folders() -> Vec<&'static str> {
    REPORTS.into_iter().chain(["csv", "exports", "runs"]).collect()
}

/// The folders a run of `date` publishes, relative to the output: `<report>/run_date=D` for
/// the [`REPORTS`], `csv` and `exports`, and `runs/D`.
pub(crate) fn run_folders(date: &str) -> Vec<String> {
    REPORTS
        .into_iter()
        .chain(["csv", "exports"])
        .map(|top| format!("{top}/run_date={date}"))
        .chain([format!("runs/{date}")])
        .collect()
}

/// The manifest's fields that differ between two runs of the same inputs: when the run started
/// and finished, and the staging folder its files were published from.
pub(crate) const RUN_SPECIFIC: [&str; 3] = ["started_at", "finished_at", "published_from"];

/// Every file of the published output `out` (a local output, or a prefix downloaded from a
/// bucket) by its path relative to `out`, with its bytes, following the published links;
/// the `_`-prefixed top folders (staging, locks, publishing internals) are left out, and in
/// `manifest.json` the [`RUN_SPECIFIC`] fields are null. `out` must exist.
pub(crate) fn final_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    walk(out, "", &mut files);
    files
}

/// [`final_files`] of the run of `date` only: what its [`run_folders`] show. A folder that is
/// not there reads as empty (nothing of that date is published yet).
pub(crate) fn final_files_of(out: &Path, date: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for folder in run_folders(date) {
        if out.join(&folder).is_dir() {
            walk(out, &folder, &mut files);
        }
    }
    files
}

/// Adds the files under `base/rel` to `files` (see [`final_files`]).
fn walk(base: &Path, rel: &str, files: &mut BTreeMap<String, Vec<u8>>) {
    for e in std::fs::read_dir(base.join(rel)).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name.starts_with('_') {
            continue;
        }
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if e.path().is_dir() {
            walk(base, &path, files);
        } else {
            let mut bytes = std::fs::read(e.path()).unwrap();
            if name == "manifest.json" {
                let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                for field in RUN_SPECIFIC {
                    m[field] = serde_json::Value::Null;
                }
                bytes = serde_json::to_vec(&m).unwrap();
            }
            files.insert(path, bytes);
        }
    }
}

/// Starts `n` runs of the binary with `args` and `env` at once, each pausing `pause_ms`
/// between reading a stale lock and replacing it (the debug build's hook), so that all find
/// it; waits for them. Asserts that exactly one took the lock over and that every other one
/// either stopped with exit 2 naming the holder or ran after the winner released the lock.
pub(crate) fn race_for_a_stale_lock(
    n: usize,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
    pause_ms: u64,
) {
    let runs: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_incentives"))
                .args(args)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("INCENTIVES_TEST_TAKEOVER_PAUSE_MS", pause_ms.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<Output> = runs.into_iter().map(|r| r.wait_with_output().unwrap()).collect();
    let took_over = outcomes.iter().filter(|o| stderr(o).contains("took over the stale lock")).count();
    assert_eq!(
        took_over,
        1,
        "{took_over} runs took the stale lock over: {:?}",
        outcomes.iter().map(stderr).collect::<Vec<_>>()
    );
    for o in &outcomes {
        let refused = o.status.code() == Some(2) && stderr(o).contains("is in progress: pid");
        assert!(o.status.success() || refused, "{:?} {}", o.status, stderr(o));
    }
}

/// Cents of a decimal text such as `-12.5` or `40750.40` (a USD cell of a report).
pub(crate) fn cents(text: &str) -> i128 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let value = whole.trim_start_matches('-').parse::<i128>().unwrap() * 100
        + format!("{frac:0<2}")[..2].parse::<i128>().unwrap();
    if whole.starts_with('-') { -value } else { value }
}
