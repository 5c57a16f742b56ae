//! Totals reconcile, on generated data (property tests) and on the sample: for every partner
//! the dashboard totals equal the sum of its earning lines, every payout group equals the sum of
//! the lines it holds, every considered sale is earned or unearned exactly once, and a sale
//! refunded in full nets to exactly zero.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};
use incentives::config::{Program, parse_program};
use incentives::feeds::Feeds;
use incentives::feeds::tables::*;
use incentives::model::PartnerType;
use incentives::rules::{ProgramResult, evaluate};
use proptest::prelude::*;

use crate::common::date;

/// The crate's deterministic generator, so that proptest only has to shrink a seed.
struct Gen(incentives::generate::Rng);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn day(&mut self, from: &str, span: u64) -> NaiveDate {
        date(from) + Days::new(self.below(span))
    }
}

const PROGRAMS: [&str; 3] = [
    r#"id = "dr"
name = "dr"
partner_type = "direct_reseller"
start = "2026-07-01"
end = "2027-06-30"
earning_period = "month"
payout_lag_months = 2
minimum_payout_usd = "100.00"
[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work", "dynamics"]
rate = "0.04"
  [[levers.tiers]]
  min_period_revenue_usd = "5000.00"
  rate = "0.055"
[[levers]]
name = "coop"
earning_type = "coop"
product_families = ["azure"]
rate = "0.0125"
"#,
    r#"id = "ip"
name = "ip"
partner_type = "indirect_provider"
start = "2026-07-01"
end = "2027-06-30"
earning_period = "quarter"
payout_lag_months = 1
minimum_payout_usd = "50.00"
[[levers]]
name = "all"
earning_type = "rebate"
product_families = ["modern_work", "dynamics", "azure"]
rate = "0.015"
"#,
    r#"id = "ir"
name = "ir"
partner_type = "indirect_reseller"
start = "2026-07-01"
end = "2027-06-30"
earning_period = "month"
payout_lag_months = 0
minimum_payout_usd = "0.00"
[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work"]
rate = "0.05"
[[levers]]
name = "az"
earning_type = "coop"
product_families = ["azure", "dynamics"]
rate = "0.02"
  [[levers.tiers]]
  min_period_revenue_usd = "3000.00"
  rate = "0.03"
  [[levers.tiers]]
  min_period_revenue_usd = "9000.00"
  rate = "0.045"
"#,
];

fn programs() -> Vec<Program> {
    PROGRAMS
        .iter()
        .enumerate()
        .map(|(i, t)| parse_program(&format!("p{i}.toml"), t.as_bytes()).unwrap())
        .collect()
}

/// Random accepted feeds as ingestion would leave them for `run_date`.
fn generate(seed: u64) -> (Feeds, NaiveDate) {
    let mut g = Gen(incentives::generate::Rng::new(seed, 0));
    let run_date = g.day("2026-07-10", 260);
    let mut f = Feeds::default();
    let types = [PartnerType::DirectReseller, PartnerType::IndirectProvider, PartnerType::IndirectReseller];
    let n = 3 + g.below(10) as usize;
    for i in 0..n {
        let partner_type = types[i % 3];
        let id = format!("P{i:02}");
        f.partners.push(Partner {
            partner_id: id.clone(),
            partner_name: format!("Partner {i}"),
            country_code: "US".into(),
            partner_type,
            network_registered_on: g.chance(80).then(|| g.day("2026-05-01", 150)),
        });
        for (k, t) in
            [AgreementType::PartnerNetwork, AgreementType::CloudDistributor, AgreementType::CloudReseller]
                .into_iter()
                .enumerate()
        {
            if g.chance(85) {
                let start = g.day("2026-01-01", 250);
                let end = g.chance(30).then(|| start + Days::new(g.below(200)));
                f.agreements.push(Agreement {
                    agreement_id: format!("A{i}-{k}"),
                    partner_id: id.clone(),
                    agreement_type: t,
                    start_date: start,
                    end_date: end,
                });
            }
        }
        for k in 0..g.below(3) {
            let start = g.day("2026-01-01", 300);
            f.competencies.push(Competency {
                partner_id: id.clone(),
                competency: format!("c{k}"),
                level: Level::Gold,
                start_date: start,
                end_date: g.chance(40).then(|| start + Days::new(g.below(120))),
            });
        }
        if g.chance(75) {
            f.payment_profiles.push(PaymentProfile {
                partner_id: id.clone(),
                payout_currency: "USD".into(),
                bank_verified: g.chance(80),
                tax_verified: g.chance(80),
            });
        }
    }
    let currencies = ["USD", "EUR", "JPY", "KWD"];
    for c in &currencies[1..] {
        for m in 0..15u32 {
            let month = date("2026-06-01").checked_add_months(chrono::Months::new(m)).unwrap();
            f.fx_rates.push(FxRate {
                currency: c.to_string(),
                month,
                usd_rate: incentives::model::money::Fixed(1 + g.below(400_000_000) as i128),
            });
        }
    }
    let resellers: Vec<String> = f
        .partners
        .iter()
        .filter(|p| p.partner_type != PartnerType::IndirectProvider)
        .map(|p| p.partner_id.clone())
        .collect();
    let providers: Vec<String> = f
        .partners
        .iter()
        .filter(|p| p.partner_type == PartnerType::IndirectProvider)
        .map(|p| p.partner_id.clone())
        .collect();
    let families = ["modern_work", "dynamics", "azure", "security"];
    let mut sales = Vec::new();
    for t in 0..g.below(60) {
        let d = g.day("2026-06-15", 280);
        let delivery = d + Days::new(if g.chance(15) { g.below(60) } else { g.below(2) });
        if delivery > run_date || resellers.is_empty() {
            continue;
        }
        let ccy = currencies[g.below(4) as usize];
        // Up to 20 000 with any of the 4 fraction digits, whatever the currency.
        let amount = 1 + g.below(200_000_000) as i64;
        sales.push(Transaction {
            transaction_id: format!("S{t:03}").into(),
            transaction_date: d,
            transaction_type: TransactionType::Sale,
            original_transaction_id: None,
            reseller_id: resellers[g.below(resellers.len() as u64) as usize].as_str().into(),
            provider_id: (!providers.is_empty() && g.chance(50))
                .then(|| providers[g.below(providers.len() as u64) as usize].as_str().into()),
            customer_id: "C".into(),
            product_id: "SKU".into(),
            product_family: families[g.below(4) as usize].into(),
            quantity: 1,
            amount,
            currency: ccy.into(),
            delivery_date: delivery,
        });
    }
    let mut refunds = Vec::new();
    for (k, s) in sales.iter().enumerate() {
        if !g.chance(35) {
            continue;
        }
        // Either a full refund in two parts or one partial refund.
        let full = g.chance(50);
        let first = if full { s.amount / 3 } else { s.amount / (2 + g.below(5) as i64) };
        let parts = if full { vec![first, s.amount - first] } else { vec![first] };
        for (j, part) in parts.into_iter().enumerate() {
            if part <= 0 {
                continue;
            }
            let d = s.transaction_date + Days::new(g.below(90));
            let delivery = d + Days::new(g.below(3));
            if delivery > run_date {
                continue;
            }
            refunds.push(Transaction {
                transaction_id: format!("R{k:03}-{j}").into(),
                transaction_date: d,
                transaction_type: TransactionType::Refund,
                original_transaction_id: Some(s.transaction_id),
                amount: -part,
                delivery_date: delivery,
                ..s.clone()
            });
        }
    }
    refunds.sort_by(|a, b| {
        (a.delivery_date, a.transaction_date, &a.transaction_id).cmp(&(
            b.delivery_date,
            b.transaction_date,
            &b.transaction_id,
        ))
    });
    sales.sort_by_key(|s| s.delivery_date);
    f.transactions = sales.into_iter().chain(refunds).collect();
    (f, run_date)
}

/// The invariants every run must satisfy.
fn check(feeds: &Feeds, results: &[ProgramResult]) -> Result<(), String> {
    for r in results {
        let id = &r.program.id;
        let mut line_sum: HashMap<&str, incentives::model::money::Usd> = HashMap::new();
        for l in &r.lines {
            *line_sum.entry(l.partner_id).or_default() += l.earning_usd;
        }
        for (e, t) in r.eligibility.iter().zip(&r.totals) {
            let lines = line_sum.get(e.partner_id.as_str()).copied().unwrap_or_default();
            if t.earned != lines
                || t.earned != t.rebate + t.coop
                || t.earned != t.scheduled + t.on_hold + t.carried_forward + t.accruing + t.coop_available
            {
                return Err(format!("{id}/{}: totals {t:?} vs lines {lines}", e.partner_id));
            }
        }
        for g in &r.groups {
            let sum: incentives::model::money::Usd = r
                .lines
                .iter()
                .filter(|l| {
                    l.partner_id == g.partner_id
                        && l.booked == g.period
                        && l.lever.earning_type == g.earning_type
                })
                .map(|l| l.earning_usd)
                .sum();
            if sum != g.total_usd {
                return Err(format!("{id}: group {g:?} holds {sum}"));
            }
        }
        let mut payout_totals: HashMap<&str, incentives::model::money::Usd> = HashMap::new();
        for g in &r.groups {
            if let Some(p) = &g.payout_id {
                *payout_totals.entry(p).or_default() += g.total_usd;
            }
        }
        if let Some((p, t)) = payout_totals.iter().find(|(_, t)| !t.reaches(r.program.minimum_payout_usd)) {
            return Err(format!("{id}: payout {p} releases {t}, below the minimum"));
        }
        let mut seen = HashSet::new();
        for t in r.lines.iter().map(|l| l.tx).chain(r.unearned.iter().map(|u| u.tx)) {
            if !seen.insert(&t.transaction_id) {
                return Err(format!("{id}: {} appears twice", t.transaction_id));
            }
        }
        let earned: HashSet<&str> = r
            .lines
            .iter()
            .filter(|l| l.tx.transaction_type == TransactionType::Sale)
            .map(|l| &*l.tx.transaction_id)
            .collect();
        for s in feeds.transactions.iter().filter(|t| earned.contains(&*t.transaction_id)) {
            let refunds: Vec<_> = r
                .lines
                .iter()
                .filter(|l| l.tx.original_transaction_id.as_deref() == Some(&s.transaction_id))
                .collect();
            let refunded: i64 = refunds.iter().map(|l| -l.tx.amount).sum();
            if refunded == s.amount {
                let net: i128 = r
                    .lines
                    .iter()
                    .filter(|l| l.tx.transaction_id == s.transaction_id)
                    .chain(refunds.iter().copied())
                    .map(|l| l.earning)
                    .sum();
                if net != 0 {
                    return Err(format!("{id}: {} refunded in full nets to {net}", s.transaction_id));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn totals_reconcile_on_generated_data(seed in any::<u64>()) {
        let (feeds, run_date) = generate(seed);
        let programs = programs();
        let results = evaluate(&feeds, &programs, run_date).unwrap();
        prop_assert_eq!(check(&feeds, &results), Ok(()));
    }
}

#[test]
fn generated_data_exercises_the_rules() {
    // Guards the generator: across seeds it must produce earning lines, unearned sales,
    // refunds, late lines, releases and holds, or the property above would prove little.
    let programs = programs();
    let (mut lines, mut unearned, mut refunds, mut late, mut released, mut held) = (0, 0, 0, 0, 0, 0);
    for seed in 0..60 {
        let (feeds, run_date) = generate(seed);
        for r in evaluate(&feeds, &programs, run_date).unwrap() {
            lines += r.lines.len();
            unearned += r.unearned.len();
            refunds += r.lines.iter().filter(|l| l.tx.transaction_type == TransactionType::Refund).count();
            late += r.lines.iter().filter(|l| l.late).count();
            released += r.groups.iter().filter(|g| g.payout_id.is_some()).count();
            held += r.groups.iter().filter(|g| !g.hold_reasons.is_empty()).count();
        }
    }
    assert!(
        lines > 100 && unearned > 20 && refunds > 10 && late > 5 && released > 5 && held > 1,
        "{lines} {unearned} {refunds} {late} {released} {held}"
    );
}

#[test]
fn totals_reconcile_on_the_sample() {
    let store =
        incentives::store::Store::open(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing")).unwrap();
    let landing = incentives::feeds::Landing::scan(&store).unwrap();
    let programs = incentives::config::load_programs(
        &incentives::store::Store::open(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines")).unwrap(),
    )
    .unwrap();
    for d in ["2026-08-02", "2026-09-02", "2026-10-03", "2026-11-01", "2027-03-01"] {
        let ingest = incentives::feeds::ingest(&store, &landing, date(d), false).unwrap();
        let results = evaluate(&ingest.feeds, &programs, date(d)).unwrap();
        assert_eq!(check(&ingest.feeds, &results), Ok(()), "run date {d}");
        assert!(results.iter().map(|r| r.lines.len()).sum::<usize>() > 0 || d == "2026-08-02");
    }
}

/// The earnings rule finds a refund's sale by id handle (`Text::handle`), not by string, so
/// validation must hand every accepted refund its sale's own handle, not an equal copy.
#[test]
fn accepted_refunds_share_their_sales_id_handle() {
    let store =
        incentives::store::Store::open(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing")).unwrap();
    let landing = incentives::feeds::Landing::scan(&store).unwrap();
    let ingest = incentives::feeds::ingest(&store, &landing, date("2027-03-01"), false).unwrap();
    let sales: HashMap<u32, &str> = ingest
        .feeds
        .transactions
        .iter()
        .filter(|t| t.transaction_type == TransactionType::Sale)
        .map(|t| (t.transaction_id.handle(), t.transaction_id.as_str()))
        .collect();
    let refunds: Vec<_> =
        ingest.feeds.transactions.iter().filter(|t| t.transaction_type == TransactionType::Refund).collect();
    assert!(refunds.len() >= 2, "the sample has refunds: {}", refunds.len());
    for r in refunds {
        let original = r.original_transaction_id.expect("a refund names its sale");
        assert_eq!(
            sales.get(&original.handle()).copied(),
            Some(original.as_str()),
            "refund {} does not hold its sale's handle",
            r.transaction_id
        );
    }
}
