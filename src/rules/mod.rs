//! The incentive rules of rules.md, on the accepted feeds of one run date: eligibility,
//! earnings, unearned sales, payouts and the dashboard totals. Each program is independent
//! work (rayon); within a program each rule is a function of the rows before it.

pub mod earnings;
pub mod eligibility;
pub mod intervals;
pub mod payouts;
pub mod periods;

use crate::hash::HashMap;

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::config::Program;
use crate::error::Result;
use crate::feeds::Feeds;
use earnings::{Line, Rates, Unearned};
use eligibility::{EligibilityRow, References};
use payouts::{Group, Totals};

/// Everything one program yields on a run date.
#[derive(Debug)]
pub struct ProgramResult<'a> {
    pub program: &'a Program,
    /// Sorted by partner id.
    pub eligibility: Vec<EligibilityRow>,
    /// Sorted by partner, transaction date, transaction id.
    pub lines: Vec<Line<'a>>,
    /// Sorted by partner, transaction date, transaction id.
    pub unearned: Vec<Unearned<'a>>,
    /// Sorted by partner, period, earning type.
    pub groups: Vec<Group>,
    /// Per partner of the program's type (same order as `eligibility`).
    pub totals: Vec<Totals>,
    pub last_transaction: HashMap<&'a str, NaiveDate>,
}

impl ProgramResult<'_> {
    /// The payout group of a line.
    pub fn group_of(&self, line: &Line) -> Option<&Group> {
        let key = (line.partner_id, line.booked, line.lever.earning_type);
        self.groups
            .binary_search_by(|g| (g.partner_id.as_str(), g.period, g.earning_type).cmp(&key))
            .ok()
            .map(|i| &self.groups[i])
    }
}

/// Applies every program to the accepted feeds; results sorted by program id.
pub fn evaluate<'a>(
    feeds: &'a Feeds,
    programs: &'a [Program],
    run_date: NaiveDate,
) -> Result<Vec<ProgramResult<'a>>> {
    let refs = References::new(feeds);
    let rates = Rates::new(&feeds.fx_rates);
    let profiles: HashMap<&str, &crate::feeds::tables::PaymentProfile> =
        feeds.payment_profiles.iter().map(|p| (p.partner_id.as_str(), p)).collect();
    let mut ordered: Vec<&Program> = programs.iter().collect();
    ordered.sort_by(|a, b| a.id.cmp(&b.id));
    ordered
        .into_par_iter()
        .map(|program| {
            let eligibility = eligibility::eligibility(program, &refs, run_date);
            let mut e = earnings::earnings(program, &feeds.transactions, &refs, &rates)?;
            // (partner, date, id) is unique within a program: an unstable sort is deterministic.
            let order = |p: &'a str, t: &'a crate::feeds::tables::Transaction| {
                (p, t.transaction_date, &*t.transaction_id)
            };
            e.lines.par_sort_unstable_by(|a, b| order(a.partner_id, a.tx).cmp(&order(b.partner_id, b.tx)));
            e.unearned.par_sort_unstable_by(|a, b| order(a.partner_id, a.tx).cmp(&order(b.partner_id, b.tx)));
            let groups = payouts::payouts(program, &e.lines, &profiles, run_date);
            let mut by_partner: HashMap<&str, Totals> = HashMap::default();
            for g in &groups {
                by_partner.entry(g.partner_id.as_str()).or_default().add(g);
            }
            let totals = eligibility
                .iter()
                .map(|row| by_partner.get(row.partner_id.as_str()).cloned().unwrap_or_default())
                .collect();
            Ok(ProgramResult {
                program,
                eligibility,
                lines: e.lines,
                unearned: e.unearned,
                groups,
                totals,
                last_transaction: e.last_transaction,
            })
        })
        .collect()
}
#[cfg(test)]
mod tests;
