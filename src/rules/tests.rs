//! Unit tests of the rules (rules.md) on tiny hand-written feeds. Every expected value is
//! computed by hand from the spec (the arithmetic is in the comment next to it), never copied
//! from a run of the code.
//!
//! Conventions of the helpers: the default programs run 2026-07-01..2027-06-30 with a rebate
//! lever `core` (modern_work, dynamics) at 0.04 and a co-op lever `azure` at 0.02; partners made
//! with `World::qualified` meet every requirement from 2020-01-01 (an indirect reseller still
//! needs its first sale to be invited); transactions are in USD and delivered on their own date
//! unless a test says otherwise; `World::as_of` gives the accepted feeds a run on that date reads.

use super::earnings::{Line, Unearned};
use super::eligibility::{EligibilityRow, Reason};
use super::payouts::{Group, Hold, Status, Totals, stable_id};
use super::{ProgramResult, evaluate};
use crate::config::{EarningType, Program, parse_program};
use crate::decimal;
use crate::feeds::tables::{
    Agreement, AgreementType, Competency, Feeds, FxRate, Level, Partner, PaymentProfile, Transaction,
    TransactionType,
};
use crate::model::PartnerType;
use crate::model::money::Fixed;
use crate::testing::d;

use AgreementType::{CloudDistributor, CloudReseller, PartnerNetwork};
use EarningType::{Coop, Rebate};
use PartnerType::{DirectReseller, IndirectProvider, IndirectReseller};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The period of a line's own transaction date (a late line is booked to a later one).
fn tx_period(l: &crate::rules::earnings::Line) -> String {
    crate::rules::periods::Period::containing(l.tx.transaction_date, l.booked.kind).label()
}

/// Amount text -> units of 10^-4.
fn amount(s: &str) -> i64 {
    let v = decimal::parse(s, 4).unwrap_or_else(|e| panic!("bad test amount {s}: {e:?}"));
    i64::try_from(v).unwrap_or_else(|_| panic!("test amount {s} out of range"))
}

/// Rate text -> units of 10^-8.
fn rate(s: &str) -> i128 {
    decimal::parse(s, 8).unwrap_or_else(|e| panic!("bad test rate {s}: {e:?}"))
}

/// Requirements of `qualified` partners hold from this day on.
const SINCE: &str = "2020-01-01";

/// A program from its TOML text, as a program file would be read.
fn parse(text: &str) -> Program {
    parse_program("test.toml", text.as_bytes()).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// A program file's fields that tests vary; `core_tiers` is TOML appended after the `core`
/// lever (the last one), i.e. its `[[levers.tiers]]`.
struct Spec<'s> {
    partner_type: &'s str,
    period: &'s str,
    lag: u32,
    minimum: &'s str,
    core_rate: &'s str,
    core_tiers: &'s str,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            partner_type: "direct_reseller",
            period: "month",
            lag: 2,
            minimum: "100.00",
            core_rate: "0.04",
            core_tiers: "",
        }
    }
}

impl Spec<'_> {
    fn program(&self) -> Program {
        let Spec { partner_type, period, lag, minimum, core_rate, core_tiers } = self;
        parse(&format!(
            r#"
id = "p-{partner_type}-{period}"
name = "Test program"
partner_type = "{partner_type}"
start = "2026-07-01"
end = 2027-06-30
earning_period = "{period}"
payout_lag_months = {lag}
minimum_payout_usd = "{minimum}"

[[levers]]
name = "azure"
earning_type = "coop"
product_families = ["azure"]
rate = "0.02"

[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work", "dynamics"]
rate = "{core_rate}"
{core_tiers}
"#
        ))
    }
}

/// Monthly, lag 2, minimum 100.00 USD, no tiers.
fn monthly(partner_type: &str) -> Program {
    Spec { partner_type, ..Spec::default() }.program()
}

/// Reference rows and transactions of a test, as if accepted.
#[derive(Default)]
struct World {
    feeds: Feeds,
}

impl World {
    fn new() -> World {
        World::default()
    }

    fn partner(&mut self, id: &str, ty: PartnerType, registered: Option<&str>) -> &mut Self {
        self.feeds.partners.push(Partner {
            partner_id: id.into(),
            partner_name: format!("Partner {id}"),
            country_code: "US".into(),
            partner_type: ty,
            network_registered_on: registered.map(d),
        });
        self
    }

    fn agreement(&mut self, id: &str, ty: AgreementType, start: &str, end: Option<&str>) -> &mut Self {
        let n = self.feeds.agreements.len() + 1;
        self.feeds.agreements.push(Agreement {
            agreement_id: format!("A{n}"),
            partner_id: id.into(),
            agreement_type: ty,
            start_date: d(start),
            end_date: end.map(d),
        });
        self
    }

    fn competency(&mut self, id: &str, name: &str, start: &str, end: Option<&str>) -> &mut Self {
        self.feeds.competencies.push(Competency {
            partner_id: id.into(),
            competency: name.into(),
            level: Level::Gold,
            start_date: d(start),
            end_date: end.map(d),
        });
        self
    }

    fn profile(&mut self, id: &str, bank_verified: bool, tax_verified: bool) -> &mut Self {
        self.feeds.payment_profiles.push(PaymentProfile {
            partner_id: id.into(),
            payout_currency: "USD".into(),
            bank_verified,
            tax_verified,
        });
        self
    }

    /// A partner registered in the network, with every agreement its type needs and a
    /// competency, all from `SINCE`, open-ended. No payment profile.
    fn qualified(&mut self, id: &str, ty: PartnerType) -> &mut Self {
        self.partner(id, ty, Some(SINCE)).agreement(id, PartnerNetwork, SINCE, None);
        match ty {
            DirectReseller => self.agreement(id, CloudReseller, SINCE, None),
            IndirectProvider => self.agreement(id, CloudDistributor, SINCE, None),
            IndirectReseller => self,
        };
        self.competency(id, "modern_work", SINCE, None)
    }

    /// `qualified` plus a verified payment profile.
    fn payable(&mut self, id: &str, ty: PartnerType) -> &mut Self {
        self.qualified(id, ty).profile(id, true, true)
    }

    fn fx(&mut self, currency: &str, month: &str, usd_rate: &str) -> &mut Self {
        self.feeds.fx_rates.push(FxRate {
            currency: currency.into(),
            month: d(&format!("{month}-01")),
            usd_rate: Fixed(rate(usd_rate)),
        });
        self
    }

    /// A USD sale by `reseller` (no provider), delivered on its date; adjust the returned row.
    fn sale(&mut self, id: &str, reseller: &str, family: &str, date: &str, amt: &str) -> &mut Transaction {
        self.feeds.transactions.push(Transaction {
            transaction_id: id.into(),
            transaction_date: d(date),
            transaction_type: TransactionType::Sale,
            original_transaction_id: None,
            reseller_id: reseller.into(),
            provider_id: None,
            customer_id: "C1".into(),
            product_id: format!("{family}-1").into(),
            product_family: family.into(),
            quantity: 1,
            amount: amount(amt),
            currency: "USD".into(),
            delivery_date: d(date),
        });
        self.feeds.transactions.last_mut().expect("just pushed")
    }

    /// A refund of sale `original` (same partners, product and currency), delivered on its date.
    fn refund(&mut self, id: &str, original: &str, date: &str, amt: &str) -> &mut Transaction {
        let o = self
            .feeds
            .transactions
            .iter()
            .find(|t| &*t.transaction_id == original)
            .unwrap_or_else(|| panic!("no sale {original}"))
            .clone();
        self.feeds.transactions.push(Transaction {
            transaction_id: id.into(),
            transaction_date: d(date),
            transaction_type: TransactionType::Refund,
            original_transaction_id: Some(original.into()),
            amount: amount(amt),
            delivery_date: d(date),
            ..o
        });
        self.feeds.transactions.last_mut().expect("just pushed")
    }

    /// The accepted feeds a run on `run` reads: transactions delivered on or before it, sales
    /// first in delivery order, then refunds by delivery date, transaction date, id (feeds.md).
    fn as_of(&self, run: &str) -> Feeds {
        let mut f = self.feeds.clone();
        f.transactions.retain(|t| t.delivery_date <= d(run));
        let (mut sales, mut refunds): (Vec<_>, Vec<_>) =
            f.transactions.into_iter().partition(|t| t.transaction_type == TransactionType::Sale);
        sales.sort_by_key(|t| t.delivery_date);
        refunds.sort_by(|a, b| {
            (a.delivery_date, a.transaction_date, &a.transaction_id).cmp(&(
                b.delivery_date,
                b.transaction_date,
                &b.transaction_id,
            ))
        });
        sales.extend(refunds);
        f.transactions = sales;
        f
    }
}

/// Evaluates one program on a run date.
fn run1<'a>(feeds: &'a Feeds, program: &'a Program, run: &str) -> ProgramResult<'a> {
    let mut all = evaluate(feeds, std::slice::from_ref(program), d(run)).expect("rules run");
    assert_eq!(all.len(), 1);
    // Every scenario's earnings also check the report's fast encoder against its table.
    crate::reports::tables::assert_earnings_encoded_as_table(d(run), &all);
    all.remove(0)
}

fn codes(reasons: &[Reason]) -> Vec<&'static str> {
    reasons.iter().map(|r| r.as_str()).collect()
}

fn holds(h: &[Hold]) -> Vec<&'static str> {
    h.iter().map(|r| r.as_str()).collect()
}

fn find_line<'r, 'a>(r: &'r ProgramResult<'a>, tx: &str) -> Option<&'r Line<'a>> {
    let mut found = r.lines.iter().filter(|l| &*l.tx.transaction_id == tx);
    let first = found.next();
    assert!(found.next().is_none(), "{tx}: more than one line");
    first
}

fn line<'r, 'a>(r: &'r ProgramResult<'a>, tx: &str) -> &'r Line<'a> {
    find_line(r, tx).unwrap_or_else(|| panic!("{tx}: no earning line"))
}

/// (earning_amount in minor units, earning_amount_usd in cents) of a transaction's line.
fn earned(r: &ProgramResult, tx: &str) -> (i128, Fixed<2>) {
    let l = line(r, tx);
    (l.earning, l.earning_usd)
}

fn find_unearned<'r, 'a>(r: &'r ProgramResult<'a>, tx: &str) -> Option<&'r Unearned<'a>> {
    r.unearned.iter().find(|u| &*u.tx.transaction_id == tx)
}

/// The failing codes of an unearned sale.
fn unearned(r: &ProgramResult, tx: &str) -> Vec<&'static str> {
    assert!(find_line(r, tx).is_none(), "{tx}: unearned yet has a line");
    codes(&find_unearned(r, tx).unwrap_or_else(|| panic!("{tx}: not unearned")).reasons)
}

fn find_group<'r>(r: &'r ProgramResult, partner: &str, period: &str, t: EarningType) -> Option<&'r Group> {
    r.groups.iter().find(|g| g.partner_id == partner && g.period.label() == period && g.earning_type == t)
}

fn group<'r>(r: &'r ProgramResult, partner: &str, period: &str, t: EarningType) -> &'r Group {
    find_group(r, partner, period, t).unwrap_or_else(|| panic!("no group {partner} {period} {t:?}"))
}

fn elig<'r>(r: &'r ProgramResult, partner: &str) -> &'r EligibilityRow {
    r.eligibility.iter().find(|e| e.partner_id == partner).unwrap_or_else(|| panic!("no row {partner}"))
}

fn totals<'r>(r: &'r ProgramResult, partner: &str) -> &'r Totals {
    let i = r.eligibility.iter().position(|e| e.partner_id == partner).expect("partner row");
    &r.totals[i]
}

/// The payout id rules.md defines: a stable hash of (program, partner, releasing period, rebate).
fn payout_id(p: &Program, partner: &str, releasing: &str) -> Option<String> {
    Some(stable_id(&[&p.id, partner, releasing, "rebate"]))
}

// ---------------------------------------------------------------------------------------------
// 1. Agreements ending mid-period

#[test]
fn reseller_agreement_ending_mid_month() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.partner("D1", DirectReseller, Some(SINCE))
        .agreement("D1", PartnerNetwork, SINCE, None)
        .agreement("D1", CloudReseller, "2026-03-01", Some("2026-08-15"))
        .competency("D1", "modern_work", SINCE, None)
        .profile("D1", true, true);
    w.sale("S1", "D1", "modern_work", "2026-08-15", "1000");
    w.sale("S2", "D1", "modern_work", "2026-08-16", "500");

    // On the agreement's last day: eligible since the program start (agreements since March).
    let f = w.as_of("2026-08-15");
    let r = run1(&f, &p, "2026-08-15");
    assert!(elig(&r, "D1").eligible());
    assert_eq!(elig(&r, "D1").eligible_since, Some(d("2026-07-01")));

    let f = w.as_of("2026-09-10");
    let r = run1(&f, &p, "2026-09-10");
    // S1 on the agreement's last day (end inclusive): 1000.00 × 0.04 = 40.00 USD.
    assert_eq!(earned(&r, "S1"), (4000, Fixed(4000)));
    assert_eq!(line(&r, "S1").amount_usd, Fixed(100_000));
    assert_eq!(line(&r, "S1").booked.label(), "2026-08");
    // S2 the day after: nothing, with the one failing code.
    assert_eq!(unearned(&r, "S2"), ["NO_RESELLER_AGREEMENT"]);
    assert_eq!(r.lines.len(), 1);
    let e = elig(&r, "D1");
    assert_eq!(codes(&e.reasons), ["NO_RESELLER_AGREEMENT"]);
    assert_eq!((e.eligible_since, e.invited_on), (None, None));
    // August closed on 09-02; 40.00 < 100.00 minimum.
    let g = group(&r, "D1", "2026-08", Rebate);
    assert_eq!((g.total_usd, g.status, g.payout_id.clone()), (Fixed(4000), Status::CarriedForward, None));
}

#[test]
fn distributor_agreement_ending_mid_quarter() {
    let p = Spec { partner_type: "indirect_provider", period: "quarter", ..Spec::default() }.program();
    let mut w = World::new();
    w.partner("V1", IndirectProvider, Some(SINCE))
        .agreement("V1", PartnerNetwork, SINCE, None)
        .agreement("V1", CloudDistributor, SINCE, Some("2026-10-31"))
        .competency("V1", "cloud_platform", SINCE, None)
        .profile("V1", true, true);
    w.qualified("R9", IndirectReseller);
    w.sale("S1", "R9", "modern_work", "2026-10-31", "3000").provider_id = Some("V1".into());
    w.sale("S2", "R9", "modern_work", "2026-11-01", "1000").provider_id = Some("V1".into());
    // A direct sale (no provider) earns nothing for a provider program, and is not considered.
    w.sale("S3", "V1", "modern_work", "2026-10-10", "1000");

    let f = w.as_of("2026-12-15");
    let r = run1(&f, &p, "2026-12-15");
    // The program's rows are its partner type only.
    assert_eq!(r.eligibility.len(), 1);
    assert_eq!(codes(&elig(&r, "V1").reasons), ["NO_DISTRIBUTOR_AGREEMENT"]);
    // S1 earns for the provider: 3000.00 × 0.04 = 120.00; booked to the quarter.
    assert_eq!(earned(&r, "S1"), (12_000, Fixed(12_000)));
    assert_eq!(line(&r, "S1").partner_id, "V1");
    assert_eq!(line(&r, "S1").booked.label(), "2026-Q4");
    assert_eq!(unearned(&r, "S2"), ["NO_DISTRIBUTOR_AGREEMENT"]);
    assert!(find_line(&r, "S3").is_none() && find_unearned(&r, "S3").is_none());
    // Q4 open until it closes on 2027-01-02.
    assert_eq!(group(&r, "V1", "2026-Q4", Rebate).status, Status::Accruing);

    let f = w.as_of("2027-01-02");
    let r = run1(&f, &p, "2027-01-02");
    let g = group(&r, "V1", "2026-Q4", Rebate);
    // 120.00 >= 100.00: released; closes 2027-01-02 (January) + 2 months -> 2027-03-15.
    assert_eq!(g.status, Status::Scheduled);
    assert_eq!(g.payment_date, Some(d("2027-03-15")));
    assert_eq!(g.payout_id, payout_id(&p, "V1", "2026-Q4"));
}

// ---------------------------------------------------------------------------------------------
// 2. Competency gap

#[test]
fn competency_gap() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.partner("D1", DirectReseller, Some(SINCE))
        .agreement("D1", PartnerNetwork, SINCE, None)
        .agreement("D1", CloudReseller, SINCE, None)
        .competency("D1", "modern_work", SINCE, Some("2026-08-10"))
        .competency("D1", "cloud_platform", "2026-08-21", None);
    // D2: two competencies that touch (07-31, 08-01): no gap at all.
    w.partner("D2", DirectReseller, Some(SINCE))
        .agreement("D2", PartnerNetwork, SINCE, None)
        .agreement("D2", CloudReseller, SINCE, None)
        .competency("D2", "modern_work", SINCE, Some("2026-07-31"))
        .competency("D2", "security", "2026-08-01", None);
    w.sale("S1", "D1", "modern_work", "2026-08-10", "1000");
    w.sale("S2", "D1", "modern_work", "2026-08-11", "1000");
    w.sale("S3", "D1", "dynamics", "2026-08-20", "1000");
    w.sale("S4", "D1", "dynamics", "2026-08-21", "250");

    let f = w.as_of("2026-09-01");
    let r = run1(&f, &p, "2026-09-01");
    assert_eq!(earned(&r, "S1"), (4000, Fixed(4000))); // 1000 × 0.04 = 40.00
    assert_eq!(unearned(&r, "S2"), ["NO_COMPETENCY"]);
    assert_eq!(unearned(&r, "S3"), ["NO_COMPETENCY"]);
    assert_eq!(earned(&r, "S4"), (1000, Fixed(1000))); // 250 × 0.04 = 10.00
    let e = elig(&r, "D1");
    assert!(e.eligible());
    assert_eq!(e.eligible_since, Some(d("2026-08-21")), "first day after the gap");
    // No gap: the stretch starts in 2020, reported no earlier than the program start.
    assert_eq!(elig(&r, "D2").eligible_since, Some(d("2026-07-01")));

    // During the gap.
    let f = w.as_of("2026-08-15");
    let r = run1(&f, &p, "2026-08-15");
    let e = elig(&r, "D1");
    assert_eq!((codes(&e.reasons), e.eligible_since), (vec!["NO_COMPETENCY"], None));
}

// ---------------------------------------------------------------------------------------------
// 3. Invitation of indirect resellers

#[test]
fn indirect_reseller_first_sale_is_not_invited() {
    let p = monthly("indirect_reseller");
    let mut w = World::new();
    w.qualified("I1", IndirectReseller);
    w.sale("S1", "I1", "modern_work", "2026-08-05", "1000");
    w.sale("S2", "I1", "azure", "2026-08-05", "500");
    w.sale("S3", "I1", "modern_work", "2026-08-06", "250");

    // Before any sale: not invited.
    let f = w.as_of("2026-08-04");
    let r = run1(&f, &p, "2026-08-04");
    let e = elig(&r, "I1");
    assert_eq!((codes(&e.reasons), e.invited_on, e.eligible_since), (vec!["NOT_INVITED"], None, None));

    let f = w.as_of("2026-08-10");
    let r = run1(&f, &p, "2026-08-10");
    // Every sale dated on the first sale's day earns nothing.
    assert_eq!(unearned(&r, "S1"), ["NOT_INVITED"]);
    assert_eq!(unearned(&r, "S2"), ["NOT_INVITED"]);
    // The next day it is invited: 250 × 0.04 = 10.00.
    assert_eq!(earned(&r, "S3"), (1000, Fixed(1000)));
    let e = elig(&r, "I1");
    assert!(e.eligible());
    assert_eq!(e.invited_on, Some(d("2026-08-06")));
    assert_eq!(e.eligible_since, Some(d("2026-08-06")));
    assert!(e.active_reseller);
}

#[test]
fn invitation_counts_any_family_any_date_as_known_on_the_run_date() {
    let p = monthly("indirect_reseller");
    let mut w = World::new();
    w.qualified("I2", IndirectReseller);
    w.sale("S1", "I2", "modern_work", "2026-08-05", "1000");
    // A sale of a family no lever pays, dated before the program, delivered late on 08-20.
    w.sale("X1", "I2", "security", "2026-06-20", "10").delivery_date = d("2026-08-20");

    let f = w.as_of("2026-08-10");
    let r = run1(&f, &p, "2026-08-10");
    assert_eq!(unearned(&r, "S1"), ["NOT_INVITED"]);
    assert_eq!(elig(&r, "I2").invited_on, Some(d("2026-08-06")));

    // Once X1 is known the first sale is 06-20: invited 06-21, and S1 now earns 1000 × 0.04.
    let f = w.as_of("2026-08-20");
    let r = run1(&f, &p, "2026-08-20");
    assert_eq!(elig(&r, "I2").invited_on, Some(d("2026-06-21")));
    assert_eq!(elig(&r, "I2").eligible_since, Some(d("2026-07-01")), "no earlier than the start");
    assert_eq!(earned(&r, "S1"), (4000, Fixed(4000)));
    // X1 itself is not considered (outside the program period and its families).
    assert!(find_line(&r, "X1").is_none() && find_unearned(&r, "X1").is_none());
}

// ---------------------------------------------------------------------------------------------
// 4. Several failing codes at once

#[test]
fn every_failing_code_in_rules_table_order() {
    let dr = monthly("direct_reseller");
    let ir = monthly("indirect_reseller");
    let programs = [ir.clone(), dr.clone()];
    let mut w = World::new();
    // D3: a bare partner row: no agreement, no competency.
    w.partner("D3", DirectReseller, Some(SINCE));
    // I3: registers 2026-09-01, network agreement, never a competency.
    w.partner("I3", IndirectReseller, Some("2026-09-01")).agreement("I3", PartnerNetwork, SINCE, None);
    w.sale("S1", "D3", "modern_work", "2026-08-10", "1000");
    w.sale("S2", "I3", "modern_work", "2026-08-10", "1000");

    let f = w.as_of("2026-09-05");
    let all = evaluate(&f, &programs, d("2026-09-05")).unwrap();
    // Results sorted by program id: "p-direct_reseller-month" < "p-indirect_reseller-month".
    assert_eq!((all[0].program.id.as_str(), all[1].program.id.as_str()), (dr.id.as_str(), ir.id.as_str()));
    let (rd, ri) = (&all[0], &all[1]);
    assert_eq!(unearned(rd, "S1"), ["NO_NETWORK_AGREEMENT", "NO_RESELLER_AGREEMENT", "NO_COMPETENCY"]);
    assert_eq!(
        codes(&elig(rd, "D3").reasons),
        ["NO_NETWORK_AGREEMENT", "NO_RESELLER_AGREEMENT", "NO_COMPETENCY"]
    );
    // On 08-10 I3 is not yet registered, not invited (its first sale is that day), no competency.
    assert_eq!(unearned(ri, "S2"), ["NOT_NETWORK_REGISTERED", "NOT_INVITED", "NO_COMPETENCY"]);
    // On the run date (09-05) it is registered and invited (08-11): only the competency fails.
    let e = elig(ri, "I3");
    assert_eq!((codes(&e.reasons), e.invited_on), (vec!["NO_COMPETENCY"], Some(d("2026-08-11"))));
    // Each program reports its own partner type only.
    assert!(rd.eligibility.iter().all(|e| e.partner_type == DirectReseller));
    assert!(ri.eligibility.iter().all(|e| e.partner_type == IndirectReseller));

    // After the program's end every code is listed, OUTSIDE_PROGRAM_PERIOD first.
    let r = run1(&f, &dr, "2027-07-01");
    assert_eq!(
        codes(&elig(&r, "D3").reasons),
        ["OUTSIDE_PROGRAM_PERIOD", "NO_NETWORK_AGREEMENT", "NO_RESELLER_AGREEMENT", "NO_COMPETENCY"]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Currencies with 0 and 3 minor digits

#[test]
fn jpy_and_kwd_earnings_in_minor_units() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller).fx("JPY", "2026-08", "0.00675").fx("KWD", "2026-08", "3.25");
    w.sale("J1", "D1", "modern_work", "2026-08-10", "1234567").currency = "JPY".into();
    w.sale("K1", "D1", "dynamics", "2026-08-11", "1234.5678").currency = "KWD".into();

    let f = w.as_of("2026-08-20");
    let r = run1(&f, &p, "2026-08-20");
    let j = line(&r, "J1");
    assert_eq!((j.minor, j.usd_rate, j.rate), (0, Fixed(675_000), Fixed(4_000_000)));
    // 1234567 × 0.04 = 49382.68 JPY -> 49383 (no minor digits).
    assert_eq!(j.earning, 49_383);
    // 1234567 × 0.00675 = 8333.32725 USD -> 8333.33.
    assert_eq!(j.amount_usd, Fixed(833_333));
    // 8333.32725 × 0.04 = 333.333090 -> 333.33.
    assert_eq!(j.earning_usd, Fixed(33_333));

    let k = line(&r, "K1");
    assert_eq!((k.minor, k.usd_rate), (3, Fixed(325_000_000)));
    // 1234.5678 × 0.04 = 49.382712 KWD -> 49.383 = 49383 fils.
    assert_eq!(k.earning, 49_383);
    // 1234.5678 × 3.25 = 4012.34535 USD -> 4012.35.
    assert_eq!(k.amount_usd, Fixed(401_235));
    // 4012.34535 × 0.04 = 160.493814 -> 160.49.
    assert_eq!(k.earning_usd, Fixed(16_049));
    // The group adds the USD columns: 333.33 + 160.49.
    assert_eq!(group(&r, "D1", "2026-08", Rebate).total_usd, Fixed(49_382));
}

// ---------------------------------------------------------------------------------------------
// 6. Exactly half a minor unit rounds away from zero

#[test]
fn half_a_minor_unit_rounds_away_from_zero() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller).fx("JPY", "2026-08", "0.01").fx("KWD", "2026-08", "3");
    w.sale("J1", "D1", "modern_work", "2026-08-10", "1012.5").currency = "JPY".into();
    w.refund("JR1", "J1", "2026-08-12", "-512.5");
    w.sale("U1", "D1", "modern_work", "2026-08-10", "100.125");
    w.refund("UR1", "U1", "2026-08-12", "-25.125");
    w.sale("K1", "D1", "modern_work", "2026-08-10", "10.0125").currency = "KWD".into();
    w.refund("KR1", "K1", "2026-08-12", "-5.0125");

    let f = w.as_of("2026-08-20");
    let r = run1(&f, &p, "2026-08-20");
    let cols = |tx: &str| {
        let l = line(&r, tx);
        (l.earning, l.amount_usd, l.earning_usd)
    };
    // JPY (0 digits): 1012.5 × 0.04 = 40.5 -> 41; × 0.01 = 10.125 USD -> 10.13; × 0.04 = 0.405 -> 0.41.
    assert_eq!(cols("J1"), (41, Fixed(1013), Fixed(41)));
    // -512.5 × 0.04 = -20.5 -> -21; × 0.01 = -5.125 -> -5.13; -0.205 -> -0.21.
    assert_eq!(cols("JR1"), (-21, Fixed(-513), Fixed(-21)));
    // USD (2 digits): 100.125 × 0.04 = 4.005 -> 4.01; 100.125 -> 100.13.
    assert_eq!(cols("U1"), (401, Fixed(10_013), Fixed(401)));
    // -25.125 × 0.04 = -1.005 -> -1.01; -25.125 -> -25.13.
    assert_eq!(cols("UR1"), (-101, Fixed(-2513), Fixed(-101)));
    // KWD (3 digits): 10.0125 × 0.04 = 0.4005 -> 0.401; × 3 = 30.0375 -> 30.04; 1.2015 -> 1.20.
    assert_eq!(cols("K1"), (401, Fixed(3004), Fixed(120)));
    // -5.0125 × 0.04 = -0.2005 -> -0.201; × 3 = -15.0375 -> -15.04; -0.6015 -> -0.60.
    assert_eq!(cols("KR1"), (-201, Fixed(-1504), Fixed(-60)));
}

// ---------------------------------------------------------------------------------------------
// 7. Cumulative clawbacks

#[test]
fn two_partial_refunds_net_a_sale_to_exactly_zero() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller).fx("EUR", "2026-08", "1.1");
    w.sale("U1", "D1", "modern_work", "2026-08-10", "100.125");
    w.refund("UR1", "U1", "2026-08-15", "-50.0625");
    w.refund("UR2", "U1", "2026-08-20", "-50.0625");
    w.sale("E1", "D1", "modern_work", "2026-08-10", "100.125").currency = "EUR".into();
    w.refund("ER1", "E1", "2026-08-15", "-50.0625");
    w.refund("ER2", "E1", "2026-08-20", "-50.0625");

    let f = w.as_of("2026-08-25");
    let r = run1(&f, &p, "2026-08-25");
    // USD sale: 100.125 × 0.04 = 4.005 -> 4.01.
    assert_eq!(earned(&r, "U1"), (401, Fixed(401)));
    // C1 = -50.0625 × 0.04 = -2.0025 -> -2.00.
    assert_eq!(earned(&r, "UR1"), (-200, Fixed(-200)));
    // C2 = -4.005 -> -4.01; -4.01 - (-2.00) = -2.01 (rounding each alone would give -2.00).
    assert_eq!(earned(&r, "UR2"), (-201, Fixed(-201)));
    assert_eq!(line(&r, "UR1").amount_usd, Fixed(-5006)); // -50.0625 -> -50.06

    // EUR at 1.1: sale 100.125 × 0.04 = 4.005 -> 4.01 EUR; × 1.1 = 4.4055 -> 4.41 USD.
    assert_eq!(earned(&r, "E1"), (401, Fixed(441)));
    // C1 = -2.0025 EUR -> -2.00; USD -50.0625 × 1.1 × 0.04 = -2.20275 -> -2.20.
    assert_eq!(earned(&r, "ER1"), (-200, Fixed(-220)));
    // C2 = -4.005 -> -4.01, line -2.01; USD C2 = -4.4055 -> -4.41, line -4.41 + 2.20 = -2.21.
    assert_eq!(earned(&r, "ER2"), (-201, Fixed(-221)));

    for sale in ["U1", "E1"] {
        let lines: Vec<&Line> = r
            .lines
            .iter()
            .filter(|l| {
                &*l.tx.transaction_id == sale || l.tx.original_transaction_id.as_deref() == Some(sale)
            })
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.iter().map(|l| l.earning).sum::<i128>(), 0, "{sale}");
        assert_eq!(lines.iter().map(|l| l.earning_usd).sum::<Fixed<2>>(), Fixed(0), "{sale}");
    }
    assert_eq!(group(&r, "D1", "2026-08", Rebate).total_usd, Fixed(0));
}

// ---------------------------------------------------------------------------------------------
// 8. A refund in a later period

#[test]
fn refund_in_later_period_claws_back_at_the_originals_rate() {
    // core: 0.04 below 5000.00 USD of period revenue, 0.06 from it.
    let tiers = "[[levers.tiers]]\nmin_period_revenue_usd = \"5000\"\nrate = \"0.06\"\n";
    let p = Spec { core_tiers: tiers, ..Spec::default() }.program();
    let mut w = World::new();
    w.partner("D1", DirectReseller, Some(SINCE))
        .agreement("D1", PartnerNetwork, SINCE, None)
        .agreement("D1", CloudReseller, SINCE, None)
        .competency("D1", "modern_work", SINCE, Some("2026-09-05"))
        .profile("D1", true, true)
        .fx("EUR", "2026-08", "1.10")
        .fx("EUR", "2026-09", "1.20");
    w.sale("S1", "D1", "modern_work", "2026-08-20", "1000").currency = "EUR".into();
    w.sale("S2", "D1", "modern_work", "2026-09-02", "6000");
    // After the competency ended: the partner is not eligible on the refund's date.
    w.refund("R1", "S1", "2026-09-10", "-250");

    let f = w.as_of("2026-10-05");
    let r = run1(&f, &p, "2026-10-05");
    // August revenue 1000 × 1.10 = 1100.00 USD < 5000 -> 0.04: 40.00 EUR, 1100 × 0.04 = 44.00 USD.
    assert_eq!(earned(&r, "S1"), (4000, Fixed(4400)));
    assert_eq!(line(&r, "S1").amount_usd, Fixed(110_000));
    // September revenue 6000.00 - 300.00 (R1 at 1.20) = 5700.00 >= 5000 -> 0.06: 360.00.
    assert_eq!(line(&r, "S2").rate, Fixed(6_000_000));
    assert_eq!(earned(&r, "S2"), (36_000, Fixed(36_000)));
    let l = line(&r, "R1");
    // At August's 0.04 (not September's 0.06): -250 × 0.04 = -10.00 EUR;
    // USD at September's 1.20: -250 × 1.20 = -300.00, × 0.04 = -12.00.
    assert_eq!((l.rate, l.usd_rate, l.amount_usd), (Fixed(4_000_000), Fixed(120_000_000), Fixed(-30_000)));
    assert_eq!((l.earning, l.earning_usd), (-1000, Fixed(-1200)));
    assert_eq!((tx_period(l), l.booked.label(), l.late), ("2026-09".into(), "2026-09".into(), false));
    // Periods: August 44.00; September 360.00 - 12.00 = 348.00. Balance 44.00, then 392.00:
    // both released by September, which closes 10-02 -> paid 2026-12-15.
    let aug = group(&r, "D1", "2026-08", Rebate);
    let sep = group(&r, "D1", "2026-09", Rebate);
    assert_eq!((aug.total_usd, sep.total_usd), (Fixed(4400), Fixed(34_800)));
    assert_eq!(aug.payout_id, payout_id(&p, "D1", "2026-09"));
    assert_eq!(sep.payout_id, aug.payout_id);
    assert_eq!((aug.payment_date, sep.payment_date), (Some(d("2026-12-15")), Some(d("2026-12-15"))));
}

// ---------------------------------------------------------------------------------------------
// 9. Late lines

#[test]
fn late_line_is_booked_to_its_delivery_period() {
    let p = Spec { minimum: "50.00", ..Spec::default() }.program();
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.sale("S1", "D1", "modern_work", "2026-08-10", "1000");
    // Delivered on 09-01, the nightly feed of 08-31: on time for August.
    w.sale("S3", "D1", "modern_work", "2026-08-31", "250").delivery_date = d("2026-09-01");
    // Delivered 09-02, after August's last on-time delivery.
    w.sale("S2", "D1", "modern_work", "2026-08-20", "500").delivery_date = d("2026-09-02");

    let f = w.as_of("2026-09-01");
    let r = run1(&f, &p, "2026-09-01");
    // August: 40.00 + 10.00 = 50.00, still open on 09-01.
    let g = group(&r, "D1", "2026-08", Rebate);
    assert_eq!((g.total_usd, g.status), (Fixed(5000), Status::Accruing));
    assert!(!line(&r, "S3").late);

    // The same run date with and without the late delivery: August unchanged.
    let f_without = w.as_of("2026-09-01");
    let without = run1(&f_without, &p, "2026-09-02");
    let f = w.as_of("2026-09-02");
    let r = run1(&f, &p, "2026-09-02");
    let aug = group(&r, "D1", "2026-08", Rebate);
    assert_eq!(aug, group(&without, "D1", "2026-08", Rebate));
    // 50.00 >= 50.00: released; August closes 09-02 -> paid 2026-11-15.
    assert_eq!((aug.total_usd, aug.status), (Fixed(5000), Status::Scheduled));
    assert_eq!(aug.payment_date, Some(d("2026-11-15")));
    assert_eq!(aug.payout_id, payout_id(&p, "D1", "2026-08"));
    let l = line(&r, "S2");
    assert!(l.late);
    assert_eq!((tx_period(l), l.booked.label()), ("2026-08".into(), "2026-09".into()));
    // 500 × 0.04 = 20.00, in September, open.
    assert_eq!(earned(&r, "S2"), (2000, Fixed(2000)));
    let sep = group(&r, "D1", "2026-09", Rebate);
    assert_eq!((sep.total_usd, sep.status, sep.payout_id.clone()), (Fixed(2000), Status::Accruing, None));
    assert!(find_group(&without, "D1", "2026-09", Rebate).is_none());
}

// ---------------------------------------------------------------------------------------------
// 10. Tiers

#[test]
fn tier_crossed_mid_period_moves_rates_until_it_closes() {
    let tiers = r#"
  [[levers.tiers]]
  min_period_revenue_usd = "1000"
  rate = "0.03"
  [[levers.tiers]]
  min_period_revenue_usd = "5000.00"
  rate = "0.05"
"#;
    // core: 0.02 below 1000.00 USD of period revenue, 0.03 from it, 0.05 from 5000.00.
    let p = Spec { core_rate: "0.02", core_tiers: tiers, ..Spec::default() }.program();
    assert_eq!((p.levers[1].rate, p.levers[1].tiers.len()), (Fixed(2_000_000), 2));

    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.sale("S1", "D1", "modern_work", "2026-08-05", "800");
    w.sale("S2", "D1", "modern_work", "2026-08-20", "4500");
    w.refund("R1", "S2", "2026-08-25", "-400");
    w.sale("S3", "D1", "modern_work", "2026-08-30", "2000").delivery_date = d("2026-09-03");
    w.sale("S4", "D1", "modern_work", "2026-09-03", "100");
    // D2 reaches the first tier's minimum exactly (>=).
    w.payable("D2", DirectReseller);
    w.sale("S9", "D2", "modern_work", "2026-08-10", "1000");

    // 08-06: revenue 800.00 < 1000 -> 0.02: 800 × 0.02 = 16.00.
    let f = w.as_of("2026-08-06");
    let r = run1(&f, &p, "2026-08-06");
    assert_eq!((line(&r, "S1").rate, earned(&r, "S1")), (Fixed(2_000_000), (1600, Fixed(1600))));

    // 08-21: revenue 800 + 4500 = 5300.00 >= 5000 -> 0.05 for both: 40.00 and 225.00.
    let f = w.as_of("2026-08-21");
    let r = run1(&f, &p, "2026-08-21");
    assert_eq!(earned(&r, "S1"), (4000, Fixed(4000)));
    assert_eq!(earned(&r, "S2"), (22_500, Fixed(22_500)));
    assert_eq!(group(&r, "D1", "2026-08", Rebate).total_usd, Fixed(26_500));

    // 08-26: the refund lowers revenue to 4900.00 -> 0.03: 24.00, 135.00 and -400 × 0.03 = -12.00.
    let f = w.as_of("2026-08-26");
    let r = run1(&f, &p, "2026-08-26");
    assert_eq!(earned(&r, "S1"), (2400, Fixed(2400)));
    assert_eq!(earned(&r, "S2"), (13_500, Fixed(13_500)));
    assert_eq!((line(&r, "R1").rate, earned(&r, "R1")), (Fixed(3_000_000), (-1200, Fixed(-1200))));

    // 09-03: August closed at 4900.00 -> 0.03 is final. The late S3 (August, delivered 09-03)
    // uses it and does not count: 2000 × 0.03 = 60.00 (counted, 6900 would give 0.05).
    let f = w.as_of("2026-09-03");
    let r = run1(&f, &p, "2026-09-03");
    assert_eq!(earned(&r, "S1"), (2400, Fixed(2400)));
    assert_eq!(earned(&r, "S2"), (13_500, Fixed(13_500)));
    assert_eq!(earned(&r, "R1"), (-1200, Fixed(-1200)));
    let s3 = line(&r, "S3");
    assert_eq!((s3.late, s3.booked.label(), s3.rate), (true, "2026-09".into(), Fixed(3_000_000)));
    assert_eq!(earned(&r, "S3"), (6000, Fixed(6000)));
    // September revenue is S4 alone, 100.00 (S3 is not September's line) -> 0.02: 2.00.
    assert_eq!((line(&r, "S4").rate, earned(&r, "S4")), (Fixed(2_000_000), (200, Fixed(200))));
    // August 24.00 + 135.00 - 12.00 = 147.00; September 60.00 + 2.00 = 62.00.
    assert_eq!(group(&r, "D1", "2026-08", Rebate).total_usd, Fixed(14_700));
    assert_eq!(group(&r, "D1", "2026-09", Rebate).total_usd, Fixed(6200));
    // D2: revenue 1000.00 >= 1000 -> 0.03: 1000 × 0.03 = 30.00.
    assert_eq!((line(&r, "S9").rate, earned(&r, "S9")), (Fixed(3_000_000), (3000, Fixed(3000))));
}

// ---------------------------------------------------------------------------------------------
// 11. Running balance and negative periods

#[test]
fn negative_period_total_is_carried_forward() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.sale("S1", "D1", "modern_work", "2026-08-10", "2000"); // 80.00
    w.refund("R1", "S1", "2026-09-15", "-1500"); // -60.00, September's only line
    w.sale("S2", "D1", "modern_work", "2026-10-05", "1500"); // 60.00
    w.sale("S3", "D1", "modern_work", "2026-11-03", "500"); // 20.00

    let f = w.as_of("2026-11-05");
    let r = run1(&f, &p, "2026-11-05");
    let st = |r: &ProgramResult, m: &str| {
        let g = group(r, "D1", m, Rebate);
        (g.total_usd, g.status, g.payout_id.clone())
    };
    // Balance: 80.00, then 80.00 - 60.00 = 20.00, then 20.00 + 60.00 = 80.00: all below 100.00.
    assert_eq!(st(&r, "2026-08"), (Fixed(8000), Status::CarriedForward, None));
    assert_eq!(st(&r, "2026-09"), (Fixed(-6000), Status::CarriedForward, None));
    assert_eq!(st(&r, "2026-10"), (Fixed(6000), Status::CarriedForward, None));
    assert_eq!(st(&r, "2026-11"), (Fixed(2000), Status::Accruing, None));
    let t = totals(&r, "D1");
    // carried forward 80 - 60 + 60 = 80.00; accruing 20.00; earned 100.00.
    assert_eq!((t.carried_forward, t.accruing, t.earned), (Fixed(8000), Fixed(2000), Fixed(10_000)));

    // November closes 12-02: 80.00 + 20.00 = 100.00 >= 100.00 releases all four periods,
    // the negative one included; paid in December + 2 = 2027-02-15.
    let f = w.as_of("2026-12-02");
    let r = run1(&f, &p, "2026-12-02");
    let id = payout_id(&p, "D1", "2026-11");
    for m in ["2026-08", "2026-09", "2026-10", "2026-11"] {
        assert_eq!(st(&r, m).1, Status::Scheduled, "{m}");
        assert_eq!(st(&r, m).2, id, "{m}");
        assert_eq!(group(&r, "D1", m, Rebate).payment_date, Some(d("2027-02-15")), "{m}");
    }
    assert_eq!((totals(&r, "D1").scheduled, totals(&r, "D1").carried_forward), (Fixed(10_000), Fixed(0)));
}

#[test]
fn negative_first_period_is_carried_forward() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    // The sale is in June (before the program): the refund in August does not belong to a
    // considered sale, so it is ignored. The July sale's refund lands in August.
    w.sale("S0", "D1", "modern_work", "2026-06-30", "5000");
    w.refund("R0", "S0", "2026-08-01", "-5000");
    w.sale("S1", "D1", "modern_work", "2026-07-31", "3000"); // July: 120.00
    // Delivered late (08-02, after July's last on-time delivery 08-01): booked to August.
    w.refund("R1", "S1", "2026-07-31", "-3000").delivery_date = d("2026-08-02"); // -120.00
    w.sale("S2", "D1", "modern_work", "2026-09-10", "2500"); // 100.00

    let f = w.as_of("2026-10-02");
    let r = run1(&f, &p, "2026-10-02");
    assert!(find_line(&r, "R0").is_none() && find_line(&r, "S0").is_none());
    assert!(line(&r, "R1").late);
    let g = |m: &str| group(&r, "D1", m, Rebate);
    // July 120.00 >= 100.00 is released on its own (closes 08-02 -> 2026-10-15).
    assert_eq!((g("2026-07").total_usd, g("2026-07").status), (Fixed(12_000), Status::Scheduled));
    assert_eq!(g("2026-07").payment_date, Some(d("2026-10-15")));
    // The balance restarts at 0: August -120.00 (carried), September -120.00 + 100.00 = -20.00.
    assert_eq!((g("2026-08").total_usd, g("2026-08").status), (Fixed(-12_000), Status::CarriedForward));
    assert_eq!((g("2026-09").total_usd, g("2026-09").status), (Fixed(10_000), Status::CarriedForward));
    assert_eq!((g("2026-08").payout_id.clone(), g("2026-09").payout_id.clone()), (None, None));
}

// ---------------------------------------------------------------------------------------------
// 12. One payout for several periods

#[test]
fn release_spanning_three_periods() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.sale("S1", "D1", "modern_work", "2026-08-10", "750"); // 30.00
    w.sale("S2", "D1", "modern_work", "2026-09-10", "1000"); // 40.00
    w.sale("S3", "D1", "modern_work", "2026-10-10", "1250"); // 50.00
    w.sale("S4", "D1", "modern_work", "2026-11-10", "500"); // 20.00

    // 11-01: October is open; 30.00 + 40.00 = 70.00 < 100.00.
    let f = w.as_of("2026-11-01");
    let r = run1(&f, &p, "2026-11-01");
    for (m, s) in [
        ("2026-08", Status::CarriedForward),
        ("2026-09", Status::CarriedForward),
        ("2026-10", Status::Accruing),
    ] {
        let g = group(&r, "D1", m, Rebate);
        assert_eq!((g.status, g.payout_id.clone(), g.payment_date), (s, None, None), "{m}");
    }

    // 11-02: October closes, 70.00 + 50.00 = 120.00 >= 100.00: one payout for the three
    // periods, released by October; paid the 15th of November + 2 months = 2027-01-15.
    let f = w.as_of("2026-11-02");
    let r = run1(&f, &p, "2026-11-02");
    let id = payout_id(&p, "D1", "2026-10");
    assert_eq!(id.as_ref().map(String::len), Some(20));
    for (m, total) in [("2026-08", 3000), ("2026-09", 4000), ("2026-10", 5000)] {
        let g = group(&r, "D1", m, Rebate);
        assert_eq!((g.total_usd, g.status), (Fixed(total), Status::Scheduled), "{m}");
        assert_eq!((&g.payout_id, g.payment_date), (&id, Some(d("2027-01-15"))), "{m}");
        assert!(g.hold_reasons.is_empty());
    }

    // 12-02: November alone (20.00) starts a new balance and waits.
    let f = w.as_of("2026-12-02");
    let r = run1(&f, &p, "2026-12-02");
    let nov = group(&r, "D1", "2026-11", Rebate);
    assert_eq!(
        (nov.total_usd, nov.status, nov.payout_id.clone()),
        (Fixed(2000), Status::CarriedForward, None)
    );
    assert_eq!(group(&r, "D1", "2026-08", Rebate).payout_id, id, "stable across runs");
}

#[test]
fn quarterly_periods_release_and_payment_date() {
    let p = Spec { period: "quarter", lag: 1, ..Spec::default() }.program();
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.sale("S1", "D1", "modern_work", "2026-08-15", "1000"); // Q3: 40.00
    // Q3 ends 09-30; deliveries up to 10-01 are on time; this one (10-02) is late -> Q4.
    w.sale("S6", "D1", "modern_work", "2026-09-30", "125").delivery_date = d("2026-10-02"); // 5.00
    w.sale("S2", "D1", "modern_work", "2026-11-20", "2000"); // 80.00
    // The nightly feed of 12-31 is on time for Q4.
    w.sale("S5", "D1", "modern_work", "2026-12-31", "250").delivery_date = d("2027-01-01"); // 10.00

    let f = w.as_of("2026-10-02");
    let r = run1(&f, &p, "2026-10-02");
    let q3 = group(&r, "D1", "2026-Q3", Rebate);
    assert_eq!((q3.total_usd, q3.status), (Fixed(4000), Status::CarriedForward));
    let s6 = line(&r, "S6");
    assert_eq!((s6.late, tx_period(s6), s6.booked.label()), (true, "2026-Q3".into(), "2026-Q4".into()));
    assert_eq!(group(&r, "D1", "2026-Q4", Rebate).status, Status::Accruing);

    // 2027-01-01: Q4 still open (closes 2027-01-02). Q4 = 5.00 + 80.00 + 10.00 = 95.00.
    let f = w.as_of("2027-01-01");
    let r = run1(&f, &p, "2027-01-01");
    assert!(!line(&r, "S5").late);
    let q4 = group(&r, "D1", "2026-Q4", Rebate);
    assert_eq!((q4.total_usd, q4.status), (Fixed(9500), Status::Accruing));
    assert_eq!(group(&r, "D1", "2026-Q3", Rebate).status, Status::CarriedForward);

    // 2027-01-02: 40.00 + 95.00 = 135.00 >= 100.00; paid January + 1 month = 2027-02-15.
    let r = run1(&f, &p, "2027-01-02");
    let id = payout_id(&p, "D1", "2026-Q4");
    for q in ["2026-Q3", "2026-Q4"] {
        let g = group(&r, "D1", q, Rebate);
        assert_eq!((g.status, &g.payout_id, g.payment_date), (Status::Scheduled, &id, Some(d("2027-02-15"))));
    }
}

// ---------------------------------------------------------------------------------------------
// 13. Holds

#[test]
fn released_payouts_on_hold_list_every_reason() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.qualified("H1", DirectReseller); // no payment profile
    w.qualified("H2", DirectReseller).profile("H2", false, false);
    w.qualified("H3", DirectReseller).profile("H3", true, false);
    w.payable("H4", DirectReseller);
    for h in ["H1", "H2", "H3", "H4"] {
        w.sale(&format!("S-{h}"), h, "modern_work", "2026-08-10", "5000"); // 200.00
        w.sale(&format!("T-{h}"), h, "modern_work", "2026-09-01", "5000");
    }

    let f = w.as_of("2026-09-02");
    let r = run1(&f, &p, "2026-09-02");
    let expect: [(&str, Status, Vec<&str>); 4] = [
        ("H1", Status::OnHold, vec!["NO_PAYMENT_PROFILE"]),
        ("H2", Status::OnHold, vec!["BANK_NOT_VERIFIED", "TAX_NOT_VERIFIED"]),
        ("H3", Status::OnHold, vec!["TAX_NOT_VERIFIED"]),
        ("H4", Status::Scheduled, vec![]),
    ];
    for (h, status, reasons) in expect {
        // August 5000 × 0.04 = 200.00 >= 100.00: released; held payouts keep their id and date.
        let g = group(&r, h, "2026-08", Rebate);
        assert_eq!((g.total_usd, g.status, holds(&g.hold_reasons)), (Fixed(20_000), status, reasons), "{h}");
        assert_eq!((&g.payout_id, g.payment_date), (&payout_id(&p, h, "2026-08"), Some(d("2026-11-15"))));
        // September is not released: no hold.
        let sep = group(&r, h, "2026-09", Rebate);
        assert_eq!((sep.status, sep.hold_reasons.len()), (Status::Accruing, 0), "{h}");
        let t = totals(&r, h);
        let on_hold = if status == Status::OnHold { 20_000 } else { 0 };
        assert_eq!(
            (t.on_hold, t.scheduled, t.accruing),
            (Fixed(on_hold), Fixed(20_000 - on_hold), Fixed(20_000)),
            "{h}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 14. Co-op

#[test]
fn coop_becomes_available_once_its_period_closes() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.qualified("D1", DirectReseller); // no payment profile: co-op is never held
    w.sale("C1", "D1", "azure", "2026-08-10", "10000"); // 10000 × 0.02 = 200.00, over the minimum

    let f = w.as_of("2026-09-01");
    let r = run1(&f, &p, "2026-09-01");
    assert_eq!(line(&r, "C1").lever.name, "azure");
    assert_eq!(earned(&r, "C1"), (20_000, Fixed(20_000)));
    let g = group(&r, "D1", "2026-08", Coop);
    assert_eq!((g.status, g.payout_id.clone(), g.payment_date), (Status::Accruing, None, None));
    assert!(find_group(&r, "D1", "2026-08", Rebate).is_none());

    let r = run1(&f, &p, "2026-09-02");
    let g = group(&r, "D1", "2026-08", Coop);
    assert_eq!((g.total_usd, g.status), (Fixed(20_000), Status::Available));
    assert_eq!((g.payout_id.clone(), g.payment_date, g.hold_reasons.len()), (None, None, 0));
    let t = totals(&r, "D1");
    assert_eq!(
        (t.coop, t.coop_available, t.rebate, t.on_hold, t.earned),
        (Fixed(20_000), Fixed(20_000), Fixed(0), Fixed(0), Fixed(20_000))
    );

    // Still available (never released for cash) much later.
    let r = run1(&f, &p, "2027-03-01");
    let g = group(&r, "D1", "2026-08", Coop);
    assert_eq!((g.status, g.payout_id.clone()), (Status::Available, None));
}

// ---------------------------------------------------------------------------------------------
// 15. Dashboard totals

#[test]
fn dashboard_totals_reconcile_with_groups_and_lines() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("P1", DirectReseller);
    w.qualified("P2", DirectReseller); // no payment profile
    w.payable("P3", DirectReseller); // no transactions
    // P4: no reseller agreement, so nothing earns.
    w.partner("P4", DirectReseller, Some(SINCE)).agreement("P4", PartnerNetwork, SINCE, None).competency(
        "P4",
        "modern_work",
        SINCE,
        None,
    );
    w.sale("S1", "P1", "modern_work", "2026-08-05", "3000"); // 120.00 rebate, August
    w.sale("C1", "P1", "azure", "2026-08-07", "1000"); // 20.00 co-op, August
    w.sale("S2", "P1", "modern_work", "2026-09-05", "500"); // 20.00 rebate, September
    w.refund("R1", "S1", "2026-09-10", "-250"); // -10.00 rebate, September
    w.sale("S3", "P1", "dynamics", "2026-10-06", "250"); // 10.00 rebate, October
    w.sale("C2", "P1", "azure", "2026-10-08", "500"); // 10.00 co-op, October
    w.sale("S4", "P2", "modern_work", "2026-08-12", "2500"); // 100.00 rebate, August
    w.sale("S5", "P4", "modern_work", "2026-08-01", "1000"); // unearned
    w.refund("R5", "S5", "2026-09-20", "-1000"); // refund of an unearned sale

    let f = w.as_of("2026-10-20");
    let r = run1(&f, &p, "2026-10-20");
    // P1: August rebate 120.00 released (scheduled); September 20.00 - 10.00 = 10.00 carried;
    // October 10.00 rebate + 10.00 co-op accruing; August co-op 20.00 available.
    let t1 = totals(&r, "P1");
    assert_eq!(
        t1,
        &Totals {
            earned: Fixed(17_000),    // 120 + 20 + 20 - 10 + 10 + 10 = 170.00
            rebate: Fixed(14_000),    // 120 + 10 + 10
            coop: Fixed(3000),        // 20 + 10
            scheduled: Fixed(12_000), // August rebate
            on_hold: Fixed(0),
            carried_forward: Fixed(1000), // September rebate
            accruing: Fixed(2000),        // October rebate + co-op
            coop_available: Fixed(2000),  // August co-op
        }
    );
    // P2: August 2500 × 0.04 = 100.00 >= 100.00, released but held (no profile).
    let t2 = totals(&r, "P2");
    assert_eq!(
        (t2.earned, t2.rebate, t2.on_hold, t2.scheduled),
        (Fixed(10_000), Fixed(10_000), Fixed(10_000), Fixed(0))
    );
    assert_eq!(totals(&r, "P3"), &Totals::default());
    assert_eq!(totals(&r, "P4"), &Totals::default());

    for (row, t) in r.eligibility.iter().zip(&r.totals) {
        let lines: Fixed<2> =
            r.lines.iter().filter(|l| l.partner_id == row.partner_id).map(|l| l.earning_usd).sum();
        assert_eq!(t.earned, t.rebate + t.coop, "{}", row.partner_id);
        assert_eq!(
            t.earned,
            t.scheduled + t.on_hold + t.carried_forward + t.accruing + t.coop_available,
            "{}",
            row.partner_id
        );
        assert_eq!(t.earned, lines, "{}", row.partner_id);
    }

    // The unearned sale's refund earns nothing and is in no report, but it is P4's last
    // transaction date.
    assert_eq!(unearned(&r, "S5"), ["NO_RESELLER_AGREEMENT"]);
    assert!(find_line(&r, "R5").is_none() && find_unearned(&r, "R5").is_none());
    assert_eq!(r.last_transaction.get("P4"), Some(&d("2026-09-20")));
    assert_eq!(r.last_transaction.get("P1"), Some(&d("2026-10-08")));
    assert_eq!(r.last_transaction.get("P2"), Some(&d("2026-08-12")));
    assert_eq!(r.last_transaction.get("P3"), None);
}

// ---------------------------------------------------------------------------------------------
// Eligibility report: active_reseller

#[test]
fn active_reseller_looks_back_364_days() {
    let p = monthly("direct_reseller");
    let ip = Spec { partner_type: "indirect_provider", ..Spec::default() }.program();
    let mut w = World::new();
    w.payable("D1", DirectReseller);
    w.payable("V1", IndirectProvider);
    w.payable("D2", DirectReseller);
    // Before the program and of a family no lever pays: still counts.
    w.sale("S1", "D1", "security", "2025-09-06", "10");
    // D2 sells through V1: active for V1 as provider, and for D2 as reseller.
    w.sale("S2", "D2", "security", "2025-09-05", "10").provider_id = Some("V1".into());

    let f = w.as_of("2026-09-05");
    // 2026-09-05 - 364 days = 2025-09-06 (2026 is not a leap year).
    let r = run1(&f, &p, "2026-09-05");
    assert!(elig(&r, "D1").active_reseller);
    assert!(!elig(&r, "D2").active_reseller, "2025-09-05 is 365 days back");
    let r = run1(&f, &p, "2026-09-06");
    assert!(!elig(&r, "D1").active_reseller);
    let r = run1(&f, &ip, "2026-09-04");
    assert!(elig(&r, "V1").active_reseller);
    let r = run1(&f, &ip, "2026-09-05");
    assert!(!elig(&r, "V1").active_reseller);
}

// ---------------------------------------------------------------------------------------------
// Pieces: a run goes range by range of partners; the pieces must add up to the whole.

#[test]
fn pieces_of_one_partner_each_add_up_to_the_whole_program() {
    let programs = [monthly("direct_reseller"), monthly("indirect_reseller")];
    let mut w = World::new();
    for (i, id) in ["D9", "D1", "D5"].iter().enumerate() {
        w.partner(id, DirectReseller, Some(SINCE))
            .agreement(id, PartnerNetwork, SINCE, None)
            .agreement(id, CloudReseller, SINCE, None)
            .competency(id, "modern_work", SINCE, None)
            .profile(id, i != 1, true);
        for k in 0..4 {
            w.sale(&format!("S{id}{k}"), id, "modern_work", &format!("2026-08-1{k}"), "1000.125");
        }
        w.refund(&format!("R{id}"), &format!("S{id}0"), "2026-08-20", "-333.3333");
    }
    w.partner("I1", IndirectReseller, Some(SINCE)); // a partner with no rows in either program
    let f = w.as_of("2026-09-10");
    let run = d("2026-09-10");
    let whole = evaluate(&f, &programs, run).unwrap();
    let plan = super::Plan::new(&f, &programs, run, 1).unwrap();
    assert_eq!(plan.partner_ids(), ["D1", "D5", "D9", "I1"]);
    let pieces: Vec<ProgramResult> =
        plan.pieces().into_iter().map(|(p, r)| plan.piece(p, r, &plan.rows(p, r, &[])).unwrap()).collect();
    assert!(pieces.len() >= 2 * 3, "one range per partner with rows: {}", pieces.len());
    // The run's path: each piece's rows copied out of the year's first (`Plan::load`).
    let loaded: Vec<Vec<crate::feeds::tables::Transaction>> =
        plan.pieces().into_iter().map(|(p, r)| plan.load(p, r).unwrap()).collect();
    assert_eq!(loaded.iter().map(Vec::len).sum::<usize>(), 2 * 3 * 5, "each program's 15 rows, copied");
    for (((p, r), loaded), piece) in plan.pieces().into_iter().zip(&loaded).zip(&pieces) {
        let copied = plan.piece(p, r, &plan.rows(p, r, loaded)).unwrap();
        let debug = |x: &ProgramResult| {
            format!("{:?} {:?} {:?} {:?}", x.lines, x.unearned, x.groups, x.eligibility)
                + &format!("{:?}", x.totals)
        };
        assert_eq!(debug(&copied), debug(piece), "piece ({p}, {r}) from copied rows");
    }
    for (p, r) in whole.iter().enumerate() {
        let mine: Vec<&ProgramResult> = pieces.iter().filter(|x| x.index == p as u32).collect();
        let joined = |f: &dyn Fn(&ProgramResult) -> Vec<String>| -> Vec<String> {
            mine.iter().flat_map(|x| f(x)).collect()
        };
        let lines = |x: &ProgramResult| x.lines.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>();
        let groups = |x: &ProgramResult| x.groups.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>();
        let elig = |x: &ProgramResult| x.eligibility.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>();
        let totals = |x: &ProgramResult| x.totals.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>();
        assert!(!r.lines.is_empty() || p == 1);
        assert_eq!(joined(&lines), lines(r), "program {p}: lines");
        assert_eq!(joined(&groups), groups(r), "program {p}: payout groups");
        assert_eq!(joined(&elig), elig(r), "program {p}: eligibility");
        assert_eq!(joined(&totals), totals(r), "program {p}: totals");
    }
}

#[test]
fn payout_groups_do_not_depend_on_the_order_of_lines() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("P1", DirectReseller);
    w.payable("P2", DirectReseller);
    w.sale("S1", "P1", "modern_work", "2026-08-05", "3000"); // 120.00 rebate, August
    w.sale("S2", "P2", "modern_work", "2026-08-06", "1000"); // 40.00 rebate, August
    w.sale("S3", "P1", "modern_work", "2026-08-07", "500"); // 20.00 rebate, August
    w.sale("C1", "P1", "azure", "2026-08-08", "1000"); // 20.00 co-op, August
    let f = w.as_of("2026-10-20");
    let r = run1(&f, &p, "2026-10-20");
    let profiles = f.payment_profiles.iter().map(|x| (x.partner_id.as_str(), x)).collect();
    let run = d("2026-10-20");
    // By transaction id (C1, S1, S2, S3), P1's lines are split in two runs by P2's: its
    // August rebate is still one group.
    let mut lines = r.lines.clone();
    lines.sort_by_key(|l| l.tx.transaction_id);
    assert_eq!(lines.iter().map(|l| l.partner_id).collect::<Vec<_>>(), ["P1", "P1", "P2", "P1"]);
    let groups = super::payouts::payouts(&p, &lines, &profiles, run);
    assert_eq!(format!("{groups:?}"), format!("{:?}", r.groups));
    let rebate = group(&r, "P1", "2026-08", Rebate);
    assert_eq!(rebate.total_usd, Fixed(14_000), "120.00 + 20.00");
    assert_eq!(group(&r, "P1", "2026-08", Coop).total_usd, Fixed(2000));
}

#[test]
fn one_partner_is_one_earner_whatever_copy_of_its_id_a_sale_holds() {
    let p = monthly("direct_reseller");
    let mut w = World::new();
    w.payable("P1", DirectReseller);
    w.sale("S1", "P1", "modern_work", "2026-08-20", "1000"); // 40.00
    // The same id as a fresh copy (its own text handle), on an earlier date.
    w.sale("S2", "P1", "modern_work", "2026-08-05", "500").reseller_id = crate::text::Text::fresh("P1"); // 20.00
    let f = w.as_of("2026-10-20");
    let r = run1(&f, &p, "2026-10-20");
    assert_eq!(r.last_transaction.get("P1"), Some(&d("2026-08-20")), "the later of its two sales");
    assert_eq!(r.last_transaction.len(), 1);
    assert_eq!(group(&r, "P1", "2026-08", Rebate).total_usd, Fixed(6000), "40.00 + 20.00 in one group");
}

/// Rows name partners by the partners' own interned handles; another handle to an equal id (a
/// fresh copy) must still find the partner, and an id that is no partner's finds none.
#[test]
fn a_partner_is_found_by_its_interned_handle_and_by_a_fresh_copy() {
    let make = |id: &str| Partner {
        partner_id: id.into(),
        partner_name: format!("{id} Ltd"),
        country_code: "DE".into(),
        partner_type: DirectReseller,
        network_registered_on: None,
    };
    let (a, b) = (make("POS-A"), make("POS-B"));
    let positions = super::Positions::new(&[&a, &b]);
    assert_eq!(positions.of(crate::text::Text::new("POS-B")), Some(1));
    assert_eq!(positions.of(crate::text::Text::fresh("POS-A")), Some(0));
    assert_eq!(positions.of(crate::text::Text::fresh("POS-C")), None);
    assert_eq!(positions.of(crate::text::Text::new("POS-D")), None);
}

/// Rates are found by the currency's handle, and by its code for a fresh copy of it.
#[test]
fn a_rate_is_found_by_the_currency_handle_and_by_a_fresh_copy() {
    use super::earnings::Rates;
    use crate::text::Text;
    let rates = [FxRate { currency: "JPY".into(), month: d("2026-03-01"), usd_rate: Fixed(rate("0.0067")) }];
    let rates = Rates::new(&rates);
    let tx = |currency: Text, date: &str| Transaction {
        transaction_id: Text::fresh("FX-1"),
        transaction_date: d(date),
        transaction_type: TransactionType::Sale,
        original_transaction_id: None,
        reseller_id: Text::new("P1"),
        provider_id: None,
        customer_id: Text::new("C1"),
        product_id: Text::new("X-1"),
        product_family: Text::new("X"),
        quantity: 1,
        amount: amount("100"),
        currency,
        delivery_date: d(date),
    };
    assert_eq!(rates.of(&tx(Text::new("JPY"), "2026-03-15")).ok(), Some(Fixed(rate("0.0067"))));
    assert_eq!(rates.of(&tx(Text::fresh("JPY"), "2026-03-31")).ok(), Some(Fixed(rate("0.0067"))));
    assert_eq!(rates.of(&tx(Text::fresh("USD"), "2026-04-01")).ok(), Some(Fixed(rate("1"))));
    assert!(rates.of(&tx(Text::new("JPY"), "2026-04-01")).is_err(), "no April rate");
}
