//! `incentives generate`: a realistic synthetic landing zone for scale tests and benchmarks.
//!
//! All seven feeds: monthly snapshots of partners, agreements (with gaps and mid-year ends),
//! competencies (with gaps), users and payment profiles (some unverified); monthly exchange rates
//! for six currencies (0, 2 and 3 minor digits); daily transaction files delivered the next
//! morning, some days late; skewed partner sizes (a few partners make most sales); refunds of
//! real earlier sales; and optionally a share of bad rows. Deterministic for a seed. The three
//! program files that match (the shipped FY27 programs) go to `<output>/pipelines/`, the feeds
//! to `<output>/landing/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, Days, Months, NaiveDate};
use rayon::prelude::*;

use crate::decimal;
use crate::error::{Error, Result};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FileFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) partners: usize,
    pub(crate) transactions: u64,
    pub(crate) months: u32,
    pub(crate) seed: u64,
    pub(crate) format: FileFormat,
    pub(crate) output: String,
    /// Share of transaction rows made bad on purpose (0 to 1).
    pub(crate) bad_rows: f64,
    pub(crate) start: NaiveDate,
    pub(crate) progress: bool,
}

/// splitmix64: small, fast, deterministic (also the generator of the property tests' data).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// Stream `stream` of seed `seed`: independent sequences for independent parts.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

const COUNTRIES: [(&str, &str); 8] = [
    ("US", "USD"),
    ("GB", "GBP"),
    ("DE", "EUR"),
    ("FR", "EUR"),
    ("JP", "JPY"),
    ("KW", "KWD"),
    ("CA", "CAD"),
    ("AU", "AUD"),
];
const FAMILIES: [&str; 4] = ["modern_work", "azure", "dynamics", "security"];
const FX: [(&str, &str); 6] =
    [("EUR", "1.08"), ("GBP", "1.27"), ("JPY", "0.0067"), ("KWD", "3.25"), ("CAD", "0.73"), ("AUD", "0.66")];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Provider,
    Indirect,
}

struct Partner {
    id: String,
    kind: Kind,
    country: usize,
    registered: Option<NaiveDate>,
}

/// One transaction row, as text cells in the feed's column order.
#[derive(Clone)]
struct Row {
    cells: [String; 12],
}

fn partners(opts: &Options) -> Vec<Partner> {
    let mut rng = Rng::new(opts.seed, 1);
    (0..opts.partners.max(3))
        .map(|i| {
            let kind = match i {
                0 => Kind::Direct,
                1 => Kind::Provider,
                2 => Kind::Indirect,
                _ => match rng.below(100) {
                    0..30 => Kind::Direct,
                    30..40 => Kind::Provider,
                    _ => Kind::Indirect,
                },
            };
            let registered = match rng.below(100) {
                0..5 => None,
                5..10 => Some(opts.start + Days::new(rng.below(180))),
                _ => Some(opts.start - Days::new(30 + rng.below(900))),
            };
            Partner {
                id: format!("P{i:07}"),
                kind,
                country: rng.below(COUNTRIES.len() as u64) as usize,
                registered,
            }
        })
        .collect()
}

fn csv_line(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if c.contains([',', '"', '\n']) {
            let _ = write!(out, "\"{}\"", c.replace('"', "\"\""));
        } else {
            out.push_str(c);
        }
    }
    out.push('\n');
}

/// A snapshot or rate file from text rows, in the chosen format (parquet: all strings).
fn table_file(format: FileFormat, header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    match format {
        FileFormat::Csv => {
            let mut s = String::new();
            csv_line(&mut s, header);
            for r in rows {
                csv_line(&mut s, &r.iter().map(String::as_str).collect::<Vec<_>>());
            }
            Ok(s.into_bytes())
        }
        FileFormat::Parquet => {
            let cols: Vec<(&str, ArrayRef)> = header
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let a: ArrayRef = Arc::new(StringArray::from_iter(
                        rows.iter().map(|r| if r[i].is_empty() { None } else { Some(r[i].as_str()) }),
                    ));
                    (*h, a)
                })
                .collect();
            write_parquet(
                RecordBatch::try_from_iter(cols).map_err(|e| Error::internal_from("record batch", e))?,
            )
        }
    }
}

fn write_parquet(batch: RecordBatch) -> Result<Vec<u8>> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let fail = |e: parquet::errors::ParquetError| Error::internal_from("parquet", e);
    let mut w =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(fail)?;
    w.write(&batch).map_err(fail)?;
    w.into_inner().map_err(fail)
}

/// A day's transactions in the chosen format; parquet with typed Date, Int64 and Decimal columns.
fn transactions_file(format: FileFormat, rows: &[Row]) -> Result<Vec<u8>> {
    let header = crate::feeds::Feed::Transactions.columns();
    let all_valid = |i: usize| rows.iter().all(|r| !r.cells[i].is_empty());
    match format {
        FileFormat::Csv => {
            let mut s = String::with_capacity(rows.len() * 110);
            csv_line(&mut s, header);
            for r in rows {
                csv_line(&mut s, &r.cells.iter().map(String::as_str).collect::<Vec<_>>());
            }
            Ok(s.into_bytes())
        }
        FileFormat::Parquet => {
            // Typed where every cell of the day is valid, strings otherwise (bad rows).
            let typed_date =
                all_valid(1) && rows.iter().all(|r| crate::model::dates::parse_date(&r.cells[1]).is_some());
            let typed_qty = rows.iter().all(|r| r.cells[9].parse::<i64>().is_ok());
            let typed_amount = rows.iter().all(|r| decimal::parse(&r.cells[10], 4).is_ok());
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
            let cols: Vec<(&str, ArrayRef)> = header
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let a: ArrayRef = match i {
                        1 if typed_date => Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| {
                            (crate::model::dates::parse_date(&r.cells[1]).expect("checked") - epoch)
                                .num_days() as i32
                        }))),
                        9 if typed_qty => Arc::new(Int64Array::from_iter_values(
                            rows.iter().map(|r| r.cells[9].parse().expect("checked")),
                        )),
                        10 if typed_amount => Arc::new(
                            Decimal128Array::from_iter_values(
                                rows.iter().map(|r| decimal::parse(&r.cells[10], 4).expect("checked")),
                            )
                            .with_precision_and_scale(18, 4)
                            .expect("valid precision"),
                        ),
                        _ => {
                            Arc::new(StringArray::from_iter(rows.iter().map(|r| {
                                if r.cells[i].is_empty() { None } else { Some(r.cells[i].as_str()) }
                            })))
                        }
                    };
                    (*h, a)
                })
                .collect();
            write_parquet(
                RecordBatch::try_from_iter(cols).map_err(|e| Error::internal_from("record batch", e))?,
            )
        }
    }
}

/// What was generated.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) files: usize,
    pub(crate) transactions: u64,
    pub(crate) bytes: u64,
}

/// Writes the landing zone and the programs.
pub(crate) fn generate(opts: &Options) -> Result<Summary> {
    let root = Store::create(&opts.output)?;
    let ext = match opts.format {
        FileFormat::Csv => "csv",
        FileFormat::Parquet => "parquet",
    };
    let mut summary = Summary::default();
    let put = |rel: String, bytes: Vec<u8>, summary: &mut Summary| -> Result<()> {
        summary.files += 1;
        summary.bytes += bytes.len() as u64;
        root.put(&rel, &bytes)
    };
    for (name, text) in PROGRAMS {
        put(format!("pipelines/{name}"), text.as_bytes().to_vec(), &mut summary)?;
    }
    let ps = partners(opts);
    let end = opts.start + Months::new(opts.months.max(1));
    // Monthly snapshots and rates, delivered on the first of each month.
    let mut month = opts.start.with_day(1).expect("day 1");
    let mut rng = Rng::new(opts.seed, 2);
    while month < end {
        let d = month;
        let partner_rows: Vec<Vec<String>> = ps
            .iter()
            .map(|p| {
                let t = match p.kind {
                    Kind::Direct => "direct_reseller",
                    Kind::Provider => "indirect_provider",
                    Kind::Indirect => "indirect_reseller",
                };
                vec![
                    p.id.clone(),
                    format!("Partner {}", &p.id[1..]),
                    COUNTRIES[p.country].0.into(),
                    t.into(),
                    p.registered.map(|r| r.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        let mut agreements = Vec::new();
        let mut competencies = Vec::new();
        let mut users = Vec::new();
        let mut profiles = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let mut prng = Rng::new(opts.seed, 1000 + i as u64);
            if !prng.chance(0.03) {
                agreements.push(vec![
                    format!("A{i}N"),
                    p.id.clone(),
                    "partner_network".into(),
                    "2024-01-01".into(),
                    String::new(),
                ]);
            }
            let typed = match p.kind {
                Kind::Direct => Some("cloud_reseller"),
                Kind::Provider => Some("cloud_distributor"),
                Kind::Indirect => None,
            };
            if let Some(t) = typed
                && !prng.chance(0.04)
            {
                let ends = prng.chance(0.05).then(|| opts.start + Days::new(30 + prng.below(200)));
                agreements.push(vec![
                    format!("A{i}T"),
                    p.id.clone(),
                    t.into(),
                    "2024-01-01".into(),
                    ends.map(|e| e.to_string()).unwrap_or_default(),
                ]);
            }
            if !prng.chance(0.03) {
                if prng.chance(0.05) {
                    let gap = opts.start + Days::new(20 + prng.below(150));
                    competencies.push(vec![
                        p.id.clone(),
                        "cloud_platform".into(),
                        "silver".into(),
                        "2024-01-01".into(),
                        gap.to_string(),
                    ]);
                    competencies.push(vec![
                        p.id.clone(),
                        "cloud_platform".into(),
                        "gold".into(),
                        (gap + Days::new(20)).to_string(),
                        String::new(),
                    ]);
                } else {
                    competencies.push(vec![
                        p.id.clone(),
                        FAMILIES[prng.below(4) as usize].into(),
                        "gold".into(),
                        "2024-06-01".into(),
                        String::new(),
                    ]);
                }
            }
            users.push(vec![
                format!("admin@{}.example", p.id.to_lowercase()),
                p.id.clone(),
                "incentive_admin".into(),
            ]);
            if prng.chance(0.5) {
                users.push(vec![
                    format!("user@{}.example", p.id.to_lowercase()),
                    p.id.clone(),
                    "incentive_user".into(),
                ]);
            }
            if !prng.chance(0.05) {
                profiles.push(vec![
                    p.id.clone(),
                    COUNTRIES[p.country].1.into(),
                    (!prng.chance(0.03)).to_string(),
                    (!prng.chance(0.03)).to_string(),
                ]);
            }
        }
        let fx: Vec<Vec<String>> = FX
            .iter()
            .map(|(c, base)| {
                let b = decimal::parse(base, 8).expect("valid");
                let wiggle = b * (rng.below(400) as i128 - 200) / 10_000;
                vec![c.to_string(), format!("{}-{:02}", d.year(), d.month()), decimal::format(b + wiggle, 8)]
            })
            .collect();
        let f = opts.format;
        put(
            format!("landing/partners/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::Partners.columns(), &partner_rows)?,
            &mut summary,
        )?;
        put(
            format!("landing/agreements/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::Agreements.columns(), &agreements)?,
            &mut summary,
        )?;
        put(
            format!("landing/competencies/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::Competencies.columns(), &competencies)?,
            &mut summary,
        )?;
        put(
            format!("landing/users/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::Users.columns(), &users)?,
            &mut summary,
        )?;
        put(
            format!("landing/payment_profiles/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::PaymentProfiles.columns(), &profiles)?,
            &mut summary,
        )?;
        put(
            format!("landing/fx_rates/{d}.{ext}"),
            table_file(f, crate::feeds::Feed::FxRates.columns(), &fx)?,
            &mut summary,
        )?;
        month = month + Months::new(1);
    }

    // Daily transactions. Rows are made day by day (refunds wait in `pending` for the day they
    // are delivered); days are formatted and written in parallel batches.
    let days: Vec<NaiveDate> = opts.start.iter_days().take_while(|d| *d < end).collect();
    let per_day = opts.transactions / days.len() as u64;
    let extra = opts.transactions % days.len() as u64;
    let resellers: Vec<usize> = (0..ps.len()).filter(|&i| ps[i].kind != Kind::Provider).collect();
    let providers: Vec<usize> = (0..ps.len()).filter(|&i| ps[i].kind == Kind::Provider).collect();
    let bar = if opts.progress {
        indicatif::ProgressBar::new(opts.transactions)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut pending: BTreeMap<NaiveDate, Vec<Row>> = BTreeMap::new();
    let mut next_id: u64 = 0;
    for chunk in days.chunks(8) {
        let mut batches: Vec<(NaiveDate, Vec<Row>)> = Vec::new();
        for &day in chunk {
            let di = (day - opts.start).num_days() as u64;
            let n = per_day + u64::from(di < extra);
            let mut rng = Rng::new(opts.seed, 1_000_000_000 + di);
            let mut rows: Vec<Row> = pending.remove(&(day + Days::new(1))).unwrap_or_default();
            for _ in 0..n {
                next_id += 1;
                // Skew: a few partners make most sales (u^3 concentrates on the first ones).
                let r = resellers[((rng.unit().powi(3)) * resellers.len() as f64) as usize % resellers.len()];
                let reseller = &ps[r];
                let provider = if reseller.kind == Kind::Indirect && !providers.is_empty() {
                    Some(&ps[providers[rng.below(providers.len() as u64) as usize]])
                } else {
                    None
                };
                let ccy = COUNTRIES[provider.unwrap_or(reseller).country].1;
                let units: i128 = match ccy {
                    "JPY" => 150,
                    "KWD" => 1,
                    _ => 3,
                };
                // Synthetic data only: a float shapes the size distribution, and the amount is
                // then an exact integer count of 10^-4 units (no float reaches the pipeline).
                let usd = (rng.unit().powi(2) * 20_000.0 + 10.0) as i128;
                let amount = usd * units * 10_000 / 3 + rng.below(10_000) as i128;
                let family = FAMILIES[rng.below(4) as usize];
                let mut cells: [String; 12] = [
                    format!("T{next_id:010}"),
                    day.to_string(),
                    "sale".into(),
                    String::new(),
                    reseller.id.clone(),
                    provider.map(|p| p.id.clone()).unwrap_or_default(),
                    format!("C{:06}", rng.below(500_000)),
                    format!("SKU-{}-{}", &family[..3], rng.below(50)),
                    family.into(),
                    (1 + rng.below(100)).to_string(),
                    decimal::format(amount, 4),
                    ccy.into(),
                ];
                // A late delivery now and then: the row waits for a later file.
                let delivery =
                    if rng.chance(0.005) { day + Days::new(2 + rng.below(40)) } else { day + Days::new(1) };
                if rng.chance(0.03) {
                    let later = day + Days::new(1 + rng.below(60));
                    let part = if rng.chance(0.5) { amount } else { amount / 2 };
                    let mut refund = cells.clone();
                    next_id += 1;
                    refund[0] = format!("T{next_id:010}");
                    refund[1] = later.to_string();
                    refund[2] = "refund".into();
                    refund[3] = cells[0].clone();
                    refund[10] = decimal::format(-part, 4);
                    if later + Days::new(1) < end {
                        pending.entry(later + Days::new(1)).or_default().push(Row { cells: refund });
                    }
                }
                if opts.bad_rows > 0.0 && rng.chance(opts.bad_rows) {
                    match rng.below(4) {
                        0 => cells[10] = cells[10].replace('.', ","),
                        1 => cells[4] = "UNKNOWN".into(),
                        2 => cells[1] = format!("{}-02-30", day.year()),
                        _ => cells[11] = "XXX".into(),
                    }
                }
                if delivery == day + Days::new(1) {
                    rows.push(Row { cells });
                } else if delivery < end {
                    pending.entry(delivery).or_default().push(Row { cells });
                }
            }
            bar.inc(n);
            batches.push((day + Days::new(1), rows));
        }
        let files: Vec<(String, Vec<u8>)> = batches
            .par_iter()
            .map(|(delivery, rows)| {
                transactions_file(opts.format, rows)
                    .map(|b| (format!("landing/transactions/{delivery}.{ext}"), b))
            })
            .collect::<Result<_>>()?;
        for ((_, rows), (path, bytes)) in batches.iter().zip(files) {
            summary.transactions += rows.len() as u64;
            put(path, bytes, &mut summary)?;
        }
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// The programs that match the generated feeds: the shipped FY27 programs.
const PROGRAMS: [(&str, &str); 3] = [
    ("direct-reseller-fy27.toml", include_str!("../pipelines/direct-reseller-fy27.toml")),
    ("indirect-provider-fy27.toml", include_str!("../pipelines/indirect-provider-fy27.toml")),
    ("indirect-reseller-fy27.toml", include_str!("../pipelines/indirect-reseller-fy27.toml")),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &std::path::Path, format: FileFormat, bad_rows: f64) -> Options {
        Options {
            partners: 40,
            transactions: 3_000,
            months: 3,
            seed: 7,
            format,
            output: dir.to_str().unwrap().into(),
            bad_rows,
            start: NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            progress: false,
        }
    }

    fn ingest(dir: &std::path::Path) -> crate::feeds::Ingest {
        let store = Store::open(dir.join("landing").to_str().unwrap()).unwrap();
        let landing = crate::feeds::Landing::scan(&store).unwrap();
        let date = landing.newest_date().unwrap();
        crate::feeds::ingest(&store, &landing, date, false).unwrap()
    }

    #[test]
    fn a_clean_zone_in_both_formats_is_accepted_whole_and_identical() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sa = generate(&opts(a.path(), FileFormat::Csv, 0.0)).unwrap();
        generate(&opts(b.path(), FileFormat::Parquet, 0.0)).unwrap();
        let (ia, ib) = (ingest(a.path()), ingest(b.path()));
        assert_eq!(ia.rows_rejected(), 0, "{:?}", &ia.rejects[..ia.rejects.len().min(5)]);
        assert_eq!(ib.rows_rejected(), 0);
        assert_eq!(ia.feeds.transactions, ib.feeds.transactions, "csv and parquet carry the same rows");
        let refunds = ia
            .feeds
            .transactions
            .iter()
            .filter(|t| t.transaction_type == crate::feeds::tables::TransactionType::Refund)
            .count();
        assert!(refunds > 20, "{refunds} refunds");
        assert!(
            ia.feeds.transactions.iter().any(|t| (t.delivery_date - t.transaction_date).num_days() > 2),
            "late lines"
        );
        assert_eq!(
            sa.transactions as usize,
            ia.rows_read() as usize
                - ia.files
                    .iter()
                    .filter(|f| !f.path.starts_with("transactions"))
                    .map(|f| f.rows as usize)
                    .sum::<usize>()
        );
        let programs =
            crate::config::load_programs(&Store::open(a.path().join("pipelines").to_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(programs.len(), 3);
    }

    #[test]
    fn bad_rows_are_rejected_not_lost() {
        let d = tempfile::tempdir().unwrap();
        generate(&opts(d.path(), FileFormat::Csv, 0.05)).unwrap();
        let i = ingest(d.path());
        assert!(i.rows_rejected() > 50, "{}", i.rows_rejected());
        assert_eq!(i.rows_read(), i.rows_accepted() + i.rows_rejected());
    }
}
