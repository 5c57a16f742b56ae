//! Every reject code of feeds.md, with the field and value the rejects report must carry.

use crate::common::*;

fn tx(rows: &str) -> Zone {
    let z = Zone::new();
    z.put("transactions/2026-09-30.csv", format!("{TX_HEADER}{rows}"));
    z
}

#[test]
fn cell_codes_of_transactions() {
    let z = tx("T1,2026-09-31,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
                T2,2026-09-10,sale,,P1,,C1,S1,azure,1,1e3,USD\n\
                T3,2026-09-10,sale,,P1,,C1,S1,azure,1.5,10.00,USD\n\
                T4,2026-09-10,return,,P1,,C1,S1,azure,1,10.00,USD\n\
                T5,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,EURO\n\
                T6,2026-09-10,sale,,P1,,C1,S1,azure,0,10.00,USD\n\
                T7,2026-09-10,sale,,P1,,C1,S1,azure,2147483648,-10.00,USD\n\
                T8,2026-10-01,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
                T9,2026-09-10,sale,T1,P1,,C1,S1,azure,1,10.00,USD\n\
                T10,2026-09-10,sale,,P1,,  ,S1,azure,1,10.00,USD\n\
                T11,2026-09-10,refund,,P1,,C1,S1,azure,1,10.00,USD\n\
                T12,2026-09-10,sale,,P1,,C1,S1,azure,1,123456789012345.0000,USD\n\
                T13,2026-09-10,sale,,P1,,C1,S1,azure,1,1.00001,USD\n");
    let i = z.ingest("2026-09-30");
    let f = "transactions/2026-09-30.csv";
    let expected = [
        format!("{f}:1 transaction_date=2026-09-31 BAD_DATE"),
        format!("{f}:2 amount=1e3 BAD_DECIMAL"),
        format!("{f}:3 quantity=1.5 BAD_INTEGER"),
        format!("{f}:4 transaction_type=return BAD_ENUM"),
        format!("{f}:5 currency=EURO BAD_CURRENCY"),
        format!("{f}:6 quantity=0 OUT_OF_RANGE"),
        format!("{f}:7 amount=-10.00 OUT_OF_RANGE"),
        format!("{f}:7 quantity=2147483648 OUT_OF_RANGE"),
        format!("{f}:8 transaction_date=2026-10-01 FUTURE_DATE"),
        format!("{f}:9 original_transaction_id=T1 UNEXPECTED_VALUE"),
        format!("{f}:10 customer_id=   MISSING_VALUE"),
        format!("{f}:11 amount=10.00 OUT_OF_RANGE"),
        format!("{f}:11 original_transaction_id= MISSING_VALUE"),
        format!("{f}:12 amount=123456789012345.0000 OUT_OF_RANGE"),
        format!("{f}:13 amount=1.00001 BAD_DECIMAL"),
    ];
    assert_eq!(rejects(&i), expected);
    assert_eq!((i.files.last().unwrap().rows, i.files.last().unwrap().rejected), (13, 13));
}

#[test]
fn cell_codes_of_reference_feeds() {
    let z = Zone::empty();
    z.put(
        "partners/2026-09-01.csv",
        "partner_id,partner_name,country_code,partner_type,network_registered_on\n\
         P1,Acme,US,direct_reseller,\n\
         P2,Lower,us,direct_reseller,\n\
         P3,Nope,XX,direct_reseller,\n\
         P4,Typo,US,reseller,\n\
         P5,Leap,US,indirect_reseller,2026-02-29\n\
         P6,   ,US,direct_reseller,\n",
    );
    z.put(
        "agreements/2026-09-01.csv",
        "agreement_id,partner_id,agreement_type,start_date,end_date\n\
         A1,P1,partner_network,2026-03-01,2026-02-28\n\
         A2,P1,distributor,2026-01-01,\n\
         A3,P404,partner_network,01/02/2026,\n",
    );
    z.put(
        "competencies/2026-09-01.csv",
        "partner_id,competency,level,start_date,end_date\nP1,cloud,platinum,2026-01-01,\n",
    );
    z.put("users/2026-09-01.csv", "user_id,partner_id,role\na@x,P1,global_admin\n");
    z.put(
        "payment_profiles/2026-09-01.csv",
        "partner_id,payout_currency,bank_verified,tax_verified\nP1,USD,yes,TRUE\n",
    );
    z.put(
        "fx_rates/2026-09-01.csv",
        "currency,month,usd_rate\nEUR,2026-13,1\nGBP,2026-09,-1.0\nJPY,2026-09,abc\n",
    );
    let i = z.ingest("2026-09-30");
    assert_eq!(
        rejects(&i),
        [
            "agreements/2026-09-01.csv:1 end_date=2026-02-28 BAD_DATE_RANGE",
            "agreements/2026-09-01.csv:2 agreement_type=distributor BAD_ENUM",
            "agreements/2026-09-01.csv:3 partner_id=P404 UNKNOWN_PARTNER",
            "agreements/2026-09-01.csv:3 start_date=01/02/2026 BAD_DATE",
            "competencies/2026-09-01.csv:1 level=platinum BAD_ENUM",
            "fx_rates/2026-09-01.csv:1 month=2026-13 BAD_DATE",
            "fx_rates/2026-09-01.csv:2 usd_rate=-1.0 OUT_OF_RANGE",
            "fx_rates/2026-09-01.csv:3 usd_rate=abc BAD_DECIMAL",
            "partners/2026-09-01.csv:2 country_code=us BAD_COUNTRY",
            "partners/2026-09-01.csv:3 country_code=XX BAD_COUNTRY",
            "partners/2026-09-01.csv:4 partner_type=reseller BAD_ENUM",
            "partners/2026-09-01.csv:5 network_registered_on=2026-02-29 BAD_DATE",
            "partners/2026-09-01.csv:6 partner_name=    MISSING_VALUE",
            "payment_profiles/2026-09-01.csv:1 bank_verified=yes BAD_BOOL",
            "payment_profiles/2026-09-01.csv:1 tax_verified=TRUE BAD_BOOL",
            "users/2026-09-01.csv:1 role=global_admin UNKNOWN_ROLE",
        ]
    );
}

#[test]
fn bad_record_gets_no_other_code_and_its_cell_count() {
    let z = tx("T1,2026-09-10,sale,,P1\nT2,2026-09-10,sale,,P9,,C1,S1,azure,1,10.00,USD,extra\n");
    assert_eq!(
        rejects(&z.ingest("2026-09-30")),
        ["transactions/2026-09-30.csv:1 =5 BAD_RECORD", "transactions/2026-09-30.csv:2 =13 BAD_RECORD"]
    );
}

#[test]
fn references_use_accepted_rows_and_trimmed_ids() {
    // P9 is itself rejected (bad country), so rows naming it are UNKNOWN_PARTNER; " P1 " is P1.
    let z = Zone::new();
    z.put("partners/2026-08-01.csv", format!("{PARTNERS}P9,Bad,ZZ,direct_reseller,\n"));
    z.put(
        "transactions/2026-09-30.csv",
        format!(
            "{TX_HEADER}T1,2026-09-10,sale,, P1 ,,C1,S1,azure,1,10.00,USD\n\
             T2,2026-09-10,sale,,P9,,C1,S1,azure,1,10.00,USD\n\
             T3,2026-09-10,sale,,P3, P404 ,C1,S1,azure,1,10.00,USD\n\
             T4,2026-09-10,sale,,P3,  ,C1,S1,azure,1,10.00,USD\n"
        ),
    );
    let i = z.ingest("2026-09-30");
    assert_eq!(
        rejects(&i),
        [
            "partners/2026-08-01.csv:4 country_code=ZZ BAD_COUNTRY",
            "transactions/2026-09-30.csv:2 reseller_id=P9 UNKNOWN_PARTNER",
            "transactions/2026-09-30.csv:3 provider_id=P404 UNKNOWN_PARTNER",
        ]
    );
    assert_eq!(tx_ids(&i), ["T1", "T4"]);
    assert_eq!(&*i.feeds.transactions[0].reseller_id, "P1");
    assert_eq!(i.feeds.transactions[1].provider_id, None, "white space is an empty provider");
}

#[test]
fn no_fx_rate_unless_usd_or_a_rate_for_the_month() {
    let z = tx("T1,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,EUR\n\
                T2,2026-07-10,sale,,P1,,C1,S1,azure,1,10.00,EUR\n\
                T3,2026-07-10,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
                T4,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,JPY\n");
    assert_eq!(
        rejects(&z.ingest("2026-09-30")),
        [
            "transactions/2026-09-30.csv:2 currency=EUR NO_FX_RATE",
            "transactions/2026-09-30.csv:4 currency=JPY NO_FX_RATE"
        ]
    );
}

#[test]
fn a_late_reference_is_accepted_by_a_later_run() {
    let z = tx("T1,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,GBP\n");
    assert_eq!(rejects(&z.ingest("2026-09-30")), ["transactions/2026-09-30.csv:1 currency=GBP NO_FX_RATE"]);
    z.put("fx_rates/2026-10-01.csv", "currency,month,usd_rate\nGBP,2026-09,1.27\n");
    let later = z.ingest("2026-10-01");
    assert!(later.rejects.is_empty(), "{:?}", rejects(&later));
    assert_eq!(tx_ids(&later), ["T1"]);
}

#[test]
fn refund_codes() {
    let z = tx("S1,2026-09-10,sale,,P3,P2,C1,SKU1,azure,1,100.00,EUR\n\
                R1,2026-09-11,refund,NOPE,P3,P2,C1,SKU1,azure,1,-10.00,EUR\n\
                R2,2026-09-09,refund,S1,P1,,C1,SKU2,modern_work,1,-10.00,USD\n\
                R3,2026-09-12,refund,S1,P3,P2,C1,SKU1,azure,1,-60.00,EUR\n\
                R4,2026-09-13,refund,S1,P3,P2,C1,SKU1,azure,1,-50.00,EUR\n\
                R5,2026-09-14,refund,S1,P3,P2,C1,SKU1,azure,1,-40.00,EUR\n\
                R6,2026-09-15,refund,R3,P3,P2,C1,SKU1,azure,1,-1.00,EUR\n");
    let i = z.ingest("2026-09-30");
    let f = "transactions/2026-09-30.csv";
    assert_eq!(
        rejects(&i),
        [
            format!("{f}:2 original_transaction_id=NOPE UNKNOWN_ORIGINAL"),
            format!("{f}:3 currency=USD REFUND_MISMATCH"),
            format!("{f}:3 product_family=modern_work REFUND_MISMATCH"),
            format!("{f}:3 product_id=SKU2 REFUND_MISMATCH"),
            format!("{f}:3 provider_id= REFUND_MISMATCH"),
            format!("{f}:3 reseller_id=P1 REFUND_MISMATCH"),
            format!("{f}:3 transaction_date=2026-09-09 REFUND_MISMATCH"),
            format!("{f}:5 original_transaction_id=S1 REFUND_EXCEEDS_SALE"),
            format!("{f}:7 original_transaction_id=R3 UNKNOWN_ORIGINAL"),
        ]
    );
    // R3 (60) and then R5 (40) fit: a later, smaller refund may still fit.
    assert_eq!(tx_ids(&i), ["S1", "R3", "R5"]);
}

#[test]
fn duplicate_and_conflicting_duplicate_within_a_delivery() {
    let z = tx("T1,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
                T1 ,2026-09-10,sale,,P1,,C1,S1,azure,1,10.00,USD\n\
                T1,2026-09-10,sale,,P1,,C1,S1,azure,1,10.50,USD\n");
    let i = z.ingest("2026-09-30");
    assert_eq!(
        rejects(&i),
        [
            "transactions/2026-09-30.csv:2 transaction_id=T1 DUPLICATE_ROW",
            "transactions/2026-09-30.csv:3 transaction_id=T1 CONFLICTING_DUPLICATE"
        ]
    );
    assert_eq!(i.feeds.transactions[0].amount, 100_000, "the first accepted row keeps the key");
}

#[test]
fn every_reject_code_is_covered_by_these_tests_or_the_sample() {
    // The sample landing zone carries every code except the ones only hand-written zones show.
    let store =
        incentives::store::Store::open(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing")).unwrap();
    let landing = incentives::feeds::Landing::scan(&store).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for d in ["2026-07-31", "2026-08-31", "2026-11-01"] {
        let i = incentives::feeds::ingest(&store, &landing, date(d), false).unwrap();
        seen.extend(i.rejects.iter().map(|r| r.code));
    }
    let missing: Vec<_> = incentives::feeds::cells::Code::ALL
        .iter()
        .filter(|c| !seen.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert_eq!(missing, Vec::<&str>::new(), "codes the sample data does not show");
}
