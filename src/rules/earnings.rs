//! Earnings (rules.md "Which transactions a program considers", "Earnings", "Periods",
//! "Tiers"): which lines a program has, what each earns, exactly, and which period it is
//! booked to. Sales that earn nothing become unearned lines with every failing reason.
//!
//! All money is exact: amount (10^-4) × usd_rate (10^-8) × rate (10^-8) is an `i128` at scale
//! 10^-20, rounded once, half away from zero, to the currency's minor unit or to cents.

use crate::hash::HashMap;

use chrono::NaiveDate;

use super::eligibility::{Reason, References, Requirements};
use super::periods::Period;
use crate::config::{Lever, Program};
use crate::decimal::rescale_round;
use crate::error::{Error, Result};
use crate::feeds::cells::currency_minor_digits;
use crate::feeds::tables::{FxRate, Partner, Transaction, TransactionType};
use crate::model::PartnerType;
use crate::model::dates::month_of;
use crate::model::money::{Amount, Rate, Usd};
use crate::text::Text;

/// Exchange rates by (currency, first day of month), in units of 10^-8.
///
/// Found by the currency's text handle: accepted currencies are interned, so the handle names
/// the code and every line's lookup hashes a number instead of reading the code's string (a
/// cache miss). Another handle to an equal code (a fresh copy) falls back to the code.
pub(crate) struct Rates<'a> {
    by_code: HashMap<(&'a str, NaiveDate), Rate>,
    by_handle: HashMap<(u32, NaiveDate), Rate>,
    usd: u32,
}

impl<'a> Rates<'a> {
    pub(crate) fn new(rates: &'a [FxRate]) -> Rates<'a> {
        Rates {
            by_code: rates.iter().map(|r| ((r.currency.as_str(), r.month), r.usd_rate)).collect(),
            by_handle: rates
                .iter()
                .map(|r| ((Text::new(&r.currency).handle(), r.month), r.usd_rate))
                .collect(),
            usd: Text::new("USD").handle(),
        }
    }

    /// The rate of the transaction's own month.
    pub(crate) fn of(&self, t: &Transaction) -> Result<Rate> {
        let (handle, month) = (t.currency.handle(), month_of(t.transaction_date));
        if handle == self.usd {
            return Ok(Rate::ONE);
        }
        if let Some(&rate) = self.by_handle.get(&(handle, month)) {
            return Ok(rate);
        }
        if &*t.currency == "USD" {
            return Ok(Rate::ONE);
        }
        self.by_code.get(&(&*t.currency, month)).copied().ok_or_else(|| {
            Error::internal(format!("accepted transaction {} has no {} rate", t.transaction_id, t.currency))
        })
    }
}

/// One earning line: a considered sale that earned, or a refund of one.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub tx: &'a Transaction,
    /// The earner (reseller or provider, by program type).
    pub partner_id: &'a str,
    pub lever: &'a Lever,
    /// The period the line counts in: its transaction period, or for a late line the period
    /// of its delivery date (`PRIOR_PERIOD`).
    pub booked: Period,
    pub late: bool,
    pub(crate) usd_rate: Rate,
    pub(crate) amount_usd: Usd,
    /// The tier rate of the sale's partner and period (a refund's original's).
    pub(crate) rate: Rate,
    /// Minor digits of the transaction currency.
    pub(crate) minor: u32,
    /// In minor units of the transaction currency: at the scale `minor`, known per line, so a
    /// plain count rather than a [`Fixed`](crate::model::money::Fixed).
    pub earning: i128,
    pub earning_usd: Usd,
}

/// A considered sale that earned nothing, and every reason why on its date.
#[derive(Debug, Clone)]
pub struct Unearned<'a> {
    pub tx: &'a Transaction,
    pub(crate) partner_id: &'a str,
    pub(crate) lever: &'a Lever,
    pub(crate) reasons: Vec<Reason>,
}

/// What one program earns.
#[derive(Debug, Default)]
pub(crate) struct ProgramEarnings<'a> {
    pub(crate) lines: Vec<Line<'a>>,
    pub(crate) unearned: Vec<Unearned<'a>>,
    /// Latest transaction date of the lines the program considered, per partner (unearned
    /// sales and refunds of them included).
    pub(crate) last_transaction: HashMap<&'a str, NaiveDate>,
}

fn mul(a: i128, b: i128, tx: &Transaction) -> Result<i128> {
    a.checked_mul(b).ok_or_else(|| {
        Error::Data(format!(
            "transaction {} ({} {}): the amount is too large to compute its earnings exactly",
            tx.transaction_id,
            tx.amount(),
            tx.currency
        ))
    })
}

/// The earner of `t` for a program paying `partner_type`.
pub(crate) fn earner(t: &Transaction, partner_type: PartnerType) -> Option<Text> {
    match partner_type {
        PartnerType::IndirectProvider => t.provider_id,
        PartnerType::DirectReseller | PartnerType::IndirectReseller => Some(t.reseller_id),
    }
}

/// The lever's rate for a period revenue: the highest tier reached, else its own.
pub(crate) fn tier_rate(lever: &Lever, revenue: Usd) -> Rate {
    lever
        .tiers
        .iter()
        .rev()
        .find(|t| revenue.reaches(t.min_period_revenue_usd))
        .map_or(lever.rate, |t| t.rate)
}

/// A line before its rate is known.
struct Pending<'a> {
    tx: &'a Transaction,
    partner_id: &'a str,
    /// The earner's number in this program's computation.
    earner: usize,
    lever: &'a Lever,
    /// For a refund: the transaction period of its original sale (which fixes the rate).
    original_period: Option<Period>,
}

/// Computes the earning lines and unearned sales of `program` from `transactions`: all the
/// accepted ones or those of some earners, each earner's in the order of feeds.md (sales, then
/// refunds in the order they were checked). Everything a line depends on (eligibility,
/// tier revenue, the clawbacks of a sale) belongs to its earner, and a refund has its sale's
/// earner, so earners can be computed apart.
pub(crate) fn earnings<'a>(
    program: &'a Program,
    transactions: &[&'a Transaction],
    refs: &References<'a>,
    rates: &Rates,
) -> Result<ProgramEarnings<'a>> {
    let lever_of: HashMap<&str, &Lever> =
        program.levers.iter().flat_map(|l| l.product_families.iter().map(move |f| (f.as_str(), l))).collect();
    let kind = program.earning_period;
    let mut out = ProgramEarnings::default();
    // The program's earners, numbered as met: their record, requirements and latest date.
    let mut earners: Vec<(&'a Partner, Requirements, NaiveDate)> = Vec::new();
    // Lookups by string, memoised by text handle (a piece's rows repeat a few partners and
    // families, and reading a handle's string is a cache miss): earner -> its number.
    // A number is given per partner record, so that two handles of one id (an interned and a
    // fresh copy) still share one earner.
    let mut earner_of: HashMap<u32, Option<usize>> = HashMap::default();
    let mut number_of: HashMap<*const Partner, usize> = HashMap::default();
    let mut lever_by_family: HashMap<u32, Option<&'a Lever>> = HashMap::default();
    // Considered sales by id handle: (earner number, lever, earned, transaction period). A
    // refund's `original_transaction_id` is its sale's handle (validation shares it), so the
    // ids are never hashed or compared as strings.
    let mut considered: HashMap<u32, (usize, &Lever, bool, Period)> =
        HashMap::with_capacity_and_hasher(transactions.len(), Default::default());
    // Sized once (most sales earn): grown by doubling, a piece's lines would be copied over and over.
    let mut pending: Vec<Pending> = Vec::with_capacity(transactions.len());

    for &t in transactions.iter().filter(|t| t.transaction_type == TransactionType::Sale) {
        let Some(id) = earner(t, program.partner_type) else { continue };
        let number = *earner_of.entry(id.handle()).or_insert_with(|| {
            let partner = refs.partners.get(&*id).filter(|p| p.partner_type == program.partner_type)?;
            Some(*number_of.entry(*partner as *const Partner).or_insert_with(|| {
                earners.push((partner, Requirements::new(program, partner, refs), NaiveDate::MIN));
                earners.len() - 1
            }))
        });
        let Some(number) = number else { continue };
        let lever = *lever_by_family
            .entry(t.product_family.handle())
            .or_insert_with(|| lever_of.get(&*t.product_family).copied());
        let Some(lever) = lever else { continue };
        if t.transaction_date < program.start || t.transaction_date > program.end {
            continue;
        }
        let (partner, req, last) = &mut earners[number];
        *last = (*last).max(t.transaction_date);
        let reasons = req.failing(t.transaction_date);
        let earned = reasons.is_empty();
        let period = Period::containing(t.transaction_date, kind);
        considered.insert(t.transaction_id.handle(), (number, lever, earned, period));
        let partner_id = partner.partner_id.as_str();
        if earned {
            pending.push(Pending { tx: t, partner_id, earner: number, lever, original_period: None });
        } else {
            out.unearned.push(Unearned { tx: t, partner_id, lever, reasons });
        }
    }
    for &t in transactions.iter().filter(|t| t.transaction_type == TransactionType::Refund) {
        let Some(original) = t.original_transaction_id else { continue };
        let Some(&(number, lever, earned, period)) = considered.get(&original.handle()) else { continue };
        let (partner, _, last) = &mut earners[number];
        *last = (*last).max(t.transaction_date);
        if earned {
            let partner_id = partner.partner_id.as_str();
            pending.push(Pending { tx: t, partner_id, earner: number, lever, original_period: Some(period) });
        }
    }
    out.last_transaction = earners
        .iter()
        .filter(|(_, _, last)| *last != NaiveDate::MIN)
        .map(|(p, _, last)| (p.partner_id.as_str(), *last))
        .collect();

    // Amounts in USD and periods; then the period revenue of tiered levers (on-time lines).
    struct Placed {
        transaction_period: Period,
        booked: Period,
        late: bool,
        usd_rate: Rate,
        amount_usd: Usd,
    }
    let mut placed = Vec::with_capacity(pending.len());
    // Period revenue by (earner number, lever address, period).
    let mut revenue: HashMap<(usize, *const Lever, Period), Usd> = HashMap::default();
    for p in &pending {
        let tp = Period::containing(p.tx.transaction_date, kind);
        let late = p.tx.delivery_date > tp.last_on_time_delivery();
        let booked = if late { Period::containing(p.tx.delivery_date, kind) } else { tp };
        let usd_rate = rates.of(p.tx)?;
        let amount_usd = Usd::new(rescale_round(
            mul(p.tx.amount.into(), usd_rate.units(), p.tx)?,
            Amount::SCALE + Rate::SCALE,
            Usd::SCALE,
        ));
        if !p.lever.tiers.is_empty() && !late {
            *revenue.entry((p.earner, p.lever, tp)).or_default() += amount_usd;
        }
        placed.push(Placed { transaction_period: tp, booked, late, usd_rate, amount_usd });
    }
    let rate_for = |earner: usize, lever: &Lever, period: Period| -> Rate {
        let r = revenue.get(&(earner, lever as *const Lever, period)).copied().unwrap_or_default();
        tier_rate(lever, r)
    };

    // Cumulative clawback state per refunded sale: exact sums and what was already booked.
    #[derive(Default)]
    struct Clawed {
        exact: i128,
        exact_usd: i128,
        booked: i128,
        booked_usd: i128,
    }
    let mut clawed: HashMap<u32, Clawed> = HashMap::default();
    // Minor digits of the few currencies seen, matched by handle number (reading a code's
    // string is usually a cache miss; a fresh copy of a code just gets an entry of its own).
    let mut minor_units: Vec<(crate::text::Text, u32)> = Vec::new();
    const LOCAL_SCALE: u32 = Amount::SCALE + Rate::SCALE;
    const FULL_SCALE: u32 = Amount::SCALE + 2 * Rate::SCALE;
    out.lines.reserve_exact(pending.len());
    for (p, pl) in pending.into_iter().zip(placed) {
        let t = p.tx;
        let minor = match minor_units.iter().find(|(c, _)| c.handle() == t.currency.handle()) {
            Some(&(_, m)) => m,
            None => {
                let m = currency_minor_digits(&t.currency).ok_or_else(|| {
                    Error::internal(format!("accepted currency {} has no minor unit", t.currency))
                })?;
                minor_units.push((t.currency, m));
                m
            }
        };
        let rate = rate_for(p.earner, p.lever, p.original_period.unwrap_or(pl.transaction_period));
        let local = mul(t.amount.into(), rate.units(), t)?;
        let full = mul(mul(t.amount.into(), pl.usd_rate.units(), t)?, rate.units(), t)?;
        let (earning, earning_usd) = match p.original_period {
            None => (
                rescale_round(local, LOCAL_SCALE, minor),
                Usd::new(rescale_round(full, FULL_SCALE, Usd::SCALE)),
            ),
            Some(_) => {
                let c = clawed.entry(t.original_transaction_id.map_or(0, |o| o.handle())).or_default();
                c.exact += local;
                c.exact_usd += full;
                let total = rescale_round(c.exact, LOCAL_SCALE, minor);
                let total_usd = rescale_round(c.exact_usd, FULL_SCALE, Usd::SCALE);
                let line = (total - c.booked, Usd::new(total_usd - c.booked_usd));
                (c.booked, c.booked_usd) = (total, total_usd);
                line
            }
        };
        out.lines.push(Line {
            tx: t,
            partner_id: p.partner_id,
            lever: p.lever,
            booked: pl.booked,
            late: pl.late,
            usd_rate: pl.usd_rate,
            amount_usd: pl.amount_usd,
            rate,
            minor,
            earning,
            earning_usd,
        });
    }
    Ok(out)
}
