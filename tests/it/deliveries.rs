//! How deliveries combine: snapshot selection by date, duplicates across deliveries, refunds
//! and their sales across files, CSV details, and parquet giving what CSV gives.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

use crate::common::*;

#[test]
fn snapshot_selection_by_run_date() {
    let z = Zone::new();
    z.put(
        "partners/2026-09-01.csv",
        "partner_id,partner_name,country_code,partner_type,network_registered_on\nP1,Acme Renamed,US,direct_reseller,\n",
    );
    z.put("partners/2026-09-01-b.csv", "partner_id,partner_name,country_code,partner_type,network_registered_on\nP7,Seven,GB,direct_reseller,\n");
    let names = |d: &str| -> Vec<String> {
        z.ingest(d).feeds.partners.iter().map(|p| format!("{}:{}", p.partner_id, p.partner_name)).collect()
    };
    assert_eq!(names("2026-08-31"), ["P1:Acme", "P2:Dist", "P3:Small"]);
    assert_eq!(names("2026-09-01"), ["P1:Acme Renamed", "P7:Seven"], "the delivery of 09-01 is complete");
    let files: Vec<String> = z.ingest("2026-09-15").files.into_iter().map(|f| f.path).collect();
    assert!(files.contains(&"partners/2026-09-01-b.csv".to_string()));
    assert!(!files.contains(&"partners/2026-08-01.csv".to_string()), "older snapshot not read");
    // A partner that disappears from the snapshot makes its transactions UNKNOWN_PARTNER.
    z.put(
        "transactions/2026-09-02.csv",
        format!("{TX_HEADER}T1,2026-08-20,sale,,P3,P2,C1,S1,azure,1,1.00,USD\n"),
    );
    assert_eq!(
        rejects(&z.ingest("2026-09-02")),
        [
            "transactions/2026-09-02.csv:1 provider_id=P2 UNKNOWN_PARTNER",
            "transactions/2026-09-02.csv:1 reseller_id=P3 UNKNOWN_PARTNER"
        ]
    );
}

#[test]
fn snapshot_copies_all_rejected_when_they_disagree_across_files_of_one_delivery() {
    let z = Zone::new();
    let h = "partner_id,partner_name,country_code,partner_type,network_registered_on\n";
    z.put(
        "partners/2026-09-01.csv",
        format!("{h}P1,Acme,US,direct_reseller,\nP2,Dist,DE,indirect_provider,\n"),
    );
    z.put(
        "partners/2026-09-01-b.csv",
        format!("{h}P1,Acme,US,direct_reseller,\nP2,Dist AG,DE,indirect_provider,\n"),
    );
    let i = z.ingest("2026-09-01");
    assert_eq!(
        rejects(&i),
        [
            "partners/2026-09-01-b.csv:1 partner_id=P1 DUPLICATE_ROW",
            "partners/2026-09-01-b.csv:2 partner_id=P2 CONFLICTING_DUPLICATE",
            "partners/2026-09-01.csv:2 partner_id=P2 CONFLICTING_DUPLICATE",
        ]
    );
    assert_eq!(i.feeds.partners.len(), 1);
}

#[test]
fn event_duplicates_across_deliveries_keep_the_first() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    z.put(
        "transactions/2026-09-02.csv",
        format!(
            "{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
             T1,2026-09-01,sale,,P1,,C1,S1,azure,1,99.00,USD\n\
             T2,2026-09-02,sale,,P1,,C1,S1,azure,1,5.00,USD\n"
        ),
    );
    let i = z.ingest("2026-09-02");
    assert_eq!(
        rejects(&i),
        [
            "transactions/2026-09-02.csv:1 transaction_id=T1 DUPLICATE_ROW",
            "transactions/2026-09-02.csv:2 transaction_id=T1 CONFLICTING_DUPLICATE"
        ]
    );
    assert_eq!(tx_ids(&i), ["T1", "T2"]);
    assert_eq!(i.feeds.transactions[0].amount, 100_000);
    // The run of 09-01 does not read the later delivery at all.
    assert_eq!(z.ingest("2026-09-01").files.iter().filter(|f| f.path.starts_with("transactions")).count(), 1);
}

#[test]
fn a_rejected_row_can_be_corrected_by_delivering_it_again() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,1O.00,USD\n"),
    );
    z.put(
        "transactions/2026-09-02.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    let i = z.ingest("2026-09-02");
    assert_eq!(rejects(&i), ["transactions/2026-09-01.csv:1 amount=1O.00 BAD_DECIMAL"]);
    assert_eq!(tx_ids(&i), ["T1"]);
}

#[test]
fn refunds_crossing_their_sale_and_arriving_before_it() {
    let z = Zone::new();
    // The refund arrives a day before its sale: unknown until the sale is delivered.
    z.put(
        "transactions/2026-09-10.csv",
        format!("{TX_HEADER}R1,2026-09-10,refund,S1,P1,,C1,S1,azure,1,-60.00,USD\n"),
    );
    assert_eq!(
        rejects(&z.ingest("2026-09-10")),
        ["transactions/2026-09-10.csv:1 original_transaction_id=S1 UNKNOWN_ORIGINAL"]
    );
    z.put(
        "transactions/2026-09-11.csv",
        format!(
            "{TX_HEADER}S1,2026-09-05,sale,,P1,,C1,S1,azure,1,100.00,USD\n\
             R2,2026-09-11,refund,S1,P1,,C1,S1,azure,1,-40.0001,USD\n\
             R3,2026-09-11,refund,S1,P1,,C1,S1,azure,1,-40.00,USD\n"
        ),
    );
    let i = z.ingest("2026-09-11");
    // R1 (60, delivered first) fits; R2 would cross 100 by 0.0001; R3 lands exactly on 100.
    assert_eq!(rejects(&i), ["transactions/2026-09-11.csv:2 original_transaction_id=S1 REFUND_EXCEEDS_SALE"]);
    assert_eq!(tx_ids(&i), ["S1", "R1", "R3"]);
    let refunded: i64 = i.feeds.transactions.iter().skip(1).map(|t| t.amount).sum();
    assert_eq!(refunded, -1_000_000, "refunds add up to exactly the sale");
}

#[test]
fn refunds_are_checked_in_transaction_date_then_id_order_within_a_delivery() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-11.csv",
        format!(
            "{TX_HEADER}S1,2026-09-05,sale,,P1,,C1,S1,azure,1,100.00,USD\n\
             RB,2026-09-09,refund,S1,P1,,C1,S1,azure,1,-80.00,USD\n\
             RA,2026-09-09,refund,S1,P1,,C1,S1,azure,1,-30.00,USD\n\
             R0,2026-09-10,refund,S1,P1,,C1,S1,azure,1,-20.00,USD\n"
        ),
    );
    // Order: RA (09-09), RB (09-09), R0 (09-10): RA fits, RB crosses, R0 fits.
    let i = z.ingest("2026-09-11");
    assert_eq!(rejects(&i), ["transactions/2026-09-11.csv:2 original_transaction_id=S1 REFUND_EXCEEDS_SALE"]);
    assert_eq!(tx_ids(&i), ["S1", "RA", "R0"]);
}

#[test]
fn bom_quoted_commas_and_newlines_shuffled_and_extra_columns() {
    let z = Zone::new();
    z.put(
        "partners/2026-09-01.csv",
        "\u{feff}country_code,partner_type,partner_id,partner_name,network_registered_on,notes\r\n\
         US,direct_reseller,P1,\"Acme, Inc.\",,x\r\n\
         \r\n\
         GB,direct_reseller,P2,\"Two\nLines \"\"Ltd\"\"\",,\r\n",
    );
    let i = z.ingest("2026-09-01");
    assert!(i.rejects.is_empty(), "{:?}", rejects(&i));
    let names: Vec<&str> = i.feeds.partners.iter().map(|p| p.partner_name.as_str()).collect();
    assert_eq!(names, ["Acme, Inc.", "Two\nLines \"Ltd\""]);
    assert!(i.warnings.iter().any(|w| w.contains("partners/2026-09-01.csv") && w.contains("notes")));
}

fn write_parquet(z: &Zone, rel: &str, rows: &[[&str; 12]]) {
    let col = |i: usize| -> Vec<Option<&str>> {
        rows.iter().map(|r| if r[i].is_empty() { None } else { Some(r[i]) }).collect()
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let dates: Vec<i32> = rows.iter().map(|r| (date(r[1]) - epoch).num_days() as i32).collect();
    let amounts: Vec<i128> = rows.iter().map(|r| incentives::decimal::parse(r[10], 4).unwrap()).collect();
    let names = incentives::feeds::Feed::Transactions.columns();
    let arrays: Vec<ArrayRef> = (0..12)
        .map(|i| -> ArrayRef {
            match i {
                1 => Arc::new(Date32Array::from(dates.clone())),
                9 => {
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r[9].parse::<i64>().unwrap())))
                }
                10 => {
                    Arc::new(Decimal128Array::from(amounts.clone()).with_precision_and_scale(18, 4).unwrap())
                }
                _ => Arc::new(StringArray::from(col(i))),
            }
        })
        .collect();
    let batch = RecordBatch::try_from_iter(names.iter().zip(arrays).map(|(n, a)| (*n, a))).unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    z.put(rel, buf);
}

#[test]
fn parquet_and_csv_give_the_same_result() {
    let rows = [
        ["S1", "2026-09-05", "sale", "", " P3 ", "P2", "C1", "SKU1", "azure", "2", "100.5000", "EUR"],
        ["S2", "2026-09-06", "sale", "", "P1", "", "C2", "SKU2", "modern_work", "1", "7.2500", "USD"],
        ["S2", "2026-09-06", "sale", "", "P1", "", "C2", "SKU2", "modern_work", "1", "7.2600", "USD"],
        ["S3", "2026-09-06", "sale", "", "P404", "", "C2", "SKU2", "modern_work", "1", "1.0000", "USD"],
        ["R1", "2026-09-07", "refund", "S1", "P3", "P2", "C1", "SKU1", "azure", "1", "-100.5000", "EUR"],
        ["R2", "2026-09-07", "refund", "S2", "P1", "", "C2", "SKU2", "modern_work", "1", "-1.0000", "JPY"],
    ];
    let csv_zone = Zone::new();
    let text: String = rows.iter().map(|r| r.join(",") + "\n").collect();
    csv_zone.put("transactions/2026-09-30.csv", format!("{TX_HEADER}{text}"));
    let pq_zone = Zone::new();
    write_parquet(&pq_zone, "transactions/2026-09-30.parquet", &rows);

    let a = csv_zone.ingest("2026-09-30");
    let b = pq_zone.ingest("2026-09-30");
    let strip =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|s| s.replace(".parquet", ".csv")).collect() };
    assert_eq!(rejects(&a).len(), 3, "{:?}", rejects(&a));
    assert_eq!(strip(rejects(&b)), rejects(&a));
    assert_eq!(b.feeds.transactions, a.feeds.transactions);
    let f = |i: &incentives::feeds::Ingest| {
        let f = i.files.iter().find(|f| f.path.starts_with("transactions")).unwrap();
        (f.rows, f.accepted, f.rejected)
    };
    assert_eq!(f(&a), (6, 3, 3));
    assert_eq!(f(&b), f(&a));
}

#[test]
fn a_parquet_column_of_another_type_makes_the_file_unreadable() {
    let z = Zone::new();
    let batch = RecordBatch::try_from_iter([
        ("currency", Arc::new(StringArray::from(vec!["EUR"])) as ArrayRef),
        ("month", Arc::new(StringArray::from(vec!["2026-09"])) as ArrayRef),
        ("usd_rate", Arc::new(arrow::array::Float64Array::from(vec![1.1])) as ArrayRef),
    ])
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    z.put("fx_rates/2026-09-01.parquet", buf);
    let err = z.try_ingest("2026-09-30", false).unwrap_err().to_string();
    assert!(err.contains("fx_rates/2026-09-01.parquet") && err.contains("usd_rate"), "{err}");
}

#[test]
fn unreadable_files_fail_or_are_skipped_with_keep_going() {
    let z = Zone::new();
    z.put(
        "transactions/2026-09-01.csv",
        format!("{TX_HEADER}T1,2026-09-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n"),
    );
    z.put("transactions/2026-09-02.parquet", b"PAR1 this is not parquet");
    z.put("transactions/2026-09-03.csv.gz", b"\x1f\x8b\x08 truncated");
    z.put("transactions/2026-09-04.csv", b"");
    z.put("transactions/2026-09-05.csv", "transaction_id,amount\nT9,1\n");
    let err = z.try_ingest("2026-09-30", false).unwrap_err();
    assert!(matches!(err, incentives::Error::UnreadableFile { .. }));
    assert!(err.to_string().contains("transactions/2026-09-0"), "{err}");

    let i = z.try_ingest("2026-09-30", true).unwrap();
    let skipped: Vec<&str> = i.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "transactions/2026-09-02.parquet",
            "transactions/2026-09-03.csv.gz",
            "transactions/2026-09-04.csv",
            "transactions/2026-09-05.csv"
        ]
    );
    assert!(i.skipped[3].reason.contains("missing column"), "{:?}", i.skipped[3]);
    assert_eq!(tx_ids(&i), ["T1"]);
    assert!(i.files.iter().all(|f| !skipped.contains(&f.path.as_str())), "skipped files have no counts");
}
