//! The incentive rules of rules.md, on the accepted feeds of one run date: eligibility,
//! earnings, unearned sales, payouts and the dashboard totals. Every rule's result belongs to
//! one program and one partner, so a run applies them a (program, partner range) piece at a
//! time ([`Plan`]), pieces in parallel; within a piece each rule is a function of the rows
//! before it.

pub(crate) mod earnings;
pub(crate) mod eligibility;
pub(crate) mod intervals;
pub(crate) mod payouts;
pub(crate) mod periods;

use crate::hash::HashMap;

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::config::Program;
use crate::error::Result;
use crate::feeds::Feeds;
use crate::feeds::spill::Partitions;
use crate::feeds::tables::{Partner, PaymentProfile, Transaction};
use crate::model::PartnerType;
use crate::text::Text;
use earnings::{Line, Rates, Unearned};
use eligibility::{EligibilityRow, References};
use payouts::{Group, Totals};

/// What one program yields on a run date, for all its partners or for a range of them.
#[derive(Debug)]
pub struct ProgramResult<'a> {
    pub program: &'a Program,
    /// The program's position among the run's programs sorted by id.
    pub(crate) index: u32,
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
    pub(crate) last_transaction: HashMap<&'a str, NaiveDate>,
}

impl ProgramResult<'_> {
    /// The payout group of a line.
    pub(crate) fn group_of(&self, line: &Line) -> Option<&Group> {
        let key = (line.partner_id, line.booked, line.lever.earning_type);
        self.groups
            .binary_search_by(|g| (g.partner_id.as_str(), g.period, g.earning_type).cmp(&key))
            .ok()
            .map(|i| &self.groups[i])
    }
}

/// The rules of a run, ready to be applied a piece at a time.
///
/// The accepted partners, sorted by id, are cut into contiguous *ranges* of about
/// `range_lines` transactions (counted as reseller and as provider). Everything a report row
/// depends on (eligibility, tier revenue, clawbacks, the payout balance, dashboard totals)
/// belongs to one partner, so a (program, range) *piece* is computed on its own, its rows come
/// out already in report order, and a run never holds more than a few pieces' earning lines.
pub(crate) struct Plan<'a> {
    /// Sorted by id.
    pub(crate) programs: Vec<&'a Program>,
    run_date: NaiveDate,
    refs: References<'a>,
    rates: Rates<'a>,
    profiles: HashMap<&'a str, &'a PaymentProfile>,
    /// Every accepted partner, sorted by id.
    partners: Vec<&'a Partner>,
    /// Ranges of `partners`.
    ranges: Vec<std::ops::Range<usize>>,
    /// Where each range's transactions are, by reseller and by provider.
    rows: Rows<'a>,
}

/// The transactions of each range, by their reseller and by their provider.
enum Rows<'a> {
    /// In memory: indices into the accepted rows.
    Memory { transactions: &'a [Transaction], by_reseller: Bucketed, by_provider: Bucketed },
    /// Spilled (see [`crate::feeds::spill`]): one partition per range, in a local file each.
    Spilled { by_reseller: Partitions, by_provider: Partitions },
}

/// Positions of partners in the sorted list, found by a transaction's id handle.
///
/// A transaction's reseller and provider ids are the accepted partners' own interned handles
/// (validation hands them out), and partners are interned first, so their handles are small
/// numbers: a row's partner is an array read, not a string hash and compare (which would read
/// the id's bytes, wherever they lie, on every row). Any other handle to an equal string
/// (a fresh copy) falls back to the map by id.
struct Positions<'a> {
    by_handle: Vec<u32>,
    by_id: HashMap<&'a str, usize>,
}

impl<'a> Positions<'a> {
    fn new(partners: &[&'a Partner]) -> Self {
        // Handles past this are left to the map (partners interned late, as in some tests).
        let cap = 8 * partners.len() + (1 << 16);
        let mut by_handle = Vec::new();
        for (i, p) in partners.iter().enumerate() {
            let h = Text::new(&p.partner_id).handle() as usize;
            if h < cap {
                if by_handle.len() <= h {
                    by_handle.resize(h + 1, u32::MAX);
                }
                by_handle[h] = u32::try_from(i).expect("fewer than 2^32 partners");
            }
        }
        let by_id = partners.iter().enumerate().map(|(i, p)| (p.partner_id.as_str(), i)).collect();
        Positions { by_handle, by_id }
    }

    fn of(&self, id: Text) -> Option<usize> {
        match self.by_handle.get(id.handle() as usize) {
            Some(&i) if i != u32::MAX => Some(i as usize),
            _ => self.by_id.get(&*id).copied(),
        }
    }
}

/// Indices of transactions grouped by partner (a counting sort: each partner's in feed
/// order), partners in the sorted order of [`Plan`]'s list.
struct Bucketed {
    order: Vec<u32>,
    /// Partner `i`'s transactions are `order[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
}

impl Bucketed {
    fn new(
        partners: usize,
        partner_of: impl Fn(&Transaction) -> Option<usize>,
        transactions: &[Transaction],
    ) -> Self {
        let mut starts = vec![0usize; partners + 1];
        for t in transactions {
            if let Some(i) = partner_of(t) {
                starts[i + 1] += 1;
            }
        }
        for i in 0..partners {
            starts[i + 1] += starts[i];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; starts[partners]];
        for (k, t) in transactions.iter().enumerate() {
            if let Some(i) = partner_of(t) {
                order[next[i]] = k as u32;
                next[i] += 1;
            }
        }
        Bucketed { order, starts }
    }

    /// Transactions of partner `i`.
    fn count(&self, i: usize) -> usize {
        self.starts[i + 1] - self.starts[i]
    }

    /// Transactions of the partners of `range`, partner by partner.
    fn of(&self, range: &std::ops::Range<usize>) -> &[u32] {
        &self.order[self.starts[range.start]..self.starts[range.end]]
    }
}

impl<'a> Plan<'a> {
    /// Plans the programs over the accepted feeds, with ranges of about `range_lines`
    /// transactions (at least one partner each).
    pub(crate) fn new(
        feeds: &'a Feeds,
        programs: &'a [Program],
        run_date: NaiveDate,
        range_lines: usize,
    ) -> Result<Self> {
        if feeds.transaction_count() > u64::from(u32::MAX) {
            return Err(crate::error::Error::Data(format!(
                "{} accepted transactions: one run handles at most {}",
                feeds.transaction_count(),
                u32::MAX
            )));
        }
        let spill_error = |e: std::io::Error| crate::error::Error::Io {
            action: "reading back",
            path: "the spilled transactions".into(),
            source: e,
        };
        let mut partners: Vec<&Partner> = feeds.partners.iter().collect();
        partners.sort_unstable_by(|a, b| a.partner_id.cmp(&b.partner_id));
        let positions = Positions::new(&partners);
        let partner_of = |id: Option<Text>| id.and_then(|id| positions.of(id));
        // Transactions per partner, as reseller and as provider: counted here from spilled
        // rows, in the references' pass over them; from the buckets below otherwise.
        let mut counts = vec![(0usize, 0usize); partners.len()];
        let refs = References::new(feeds, &partners, &partner_of, |t| {
            if feeds.spilled.is_some() {
                if let Some(i) = partner_of(Some(t.reseller_id)) {
                    counts[i].0 += 1;
                }
                if let Some(i) = partner_of(t.provider_id) {
                    counts[i].1 += 1;
                }
            }
        })
        .map_err(spill_error)?;
        // Where the rows are, once counted: bucketed in memory, or still in the spill file.
        enum Counted<'s> {
            Memory(Bucketed, Bucketed),
            Spilled(&'s crate::feeds::spill::Sealed),
        }
        let counted = match &feeds.spilled {
            None => {
                let (by_reseller, by_provider) = rayon::join(
                    || {
                        Bucketed::new(
                            partners.len(),
                            |t| partner_of(Some(t.reseller_id)),
                            &feeds.transactions,
                        )
                    },
                    || Bucketed::new(partners.len(), |t| partner_of(t.provider_id), &feeds.transactions),
                );
                for (i, c) in counts.iter_mut().enumerate() {
                    *c = (by_reseller.count(i), by_provider.count(i));
                }
                Counted::Memory(by_reseller, by_provider)
            }
            Some(spilled) => Counted::Spilled(spilled),
        };
        let mut ranges = Vec::new();
        let (mut start, mut lines) = (0, 0);
        for (i, (as_reseller, as_provider)) in counts.iter().enumerate() {
            lines += as_reseller + as_provider;
            if lines >= range_lines.max(1) || i + 1 == partners.len() {
                ranges.push(start..i + 1);
                (start, lines) = (i + 1, 0);
            }
        }
        let rows = match counted {
            Counted::Memory(by_reseller, by_provider) => {
                Rows::Memory { transactions: &feeds.transactions, by_reseller, by_provider }
            }
            Counted::Spilled(spilled) => {
                let mut range_of = vec![0usize; partners.len()];
                for (k, r) in ranges.iter().enumerate() {
                    range_of[r.clone()].iter_mut().for_each(|x| *x = k);
                }
                let by = |id: Option<Text>| partner_of(id).map(|i| range_of[i]);
                // Rows per range, as counted above, so that each copy is one pass.
                let per_range = |side: fn(&(usize, usize)) -> usize| -> Vec<u64> {
                    ranges.iter().map(|r| counts[r.clone()].iter().map(|c| side(c) as u64).sum()).collect()
                };
                let (resellers, providers) = (per_range(|c| c.0), per_range(|c| c.1));
                let (by_reseller, by_provider) = rayon::join(
                    || spilled.partition(&resellers, |t| by(Some(t.reseller_id))),
                    || spilled.partition(&providers, |t| by(t.provider_id)),
                );
                Rows::Spilled {
                    by_reseller: by_reseller.map_err(spill_error)?,
                    by_provider: by_provider.map_err(spill_error)?,
                }
            }
        };
        let mut ordered: Vec<&Program> = programs.iter().collect();
        ordered.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Plan {
            programs: ordered,
            run_date,
            refs,
            rates: Rates::new(&feeds.fx_rates),
            profiles: feeds.payment_profiles.iter().map(|p| (p.partner_id.as_str(), p)).collect(),
            partners,
            ranges,
            rows,
        })
    }

    pub(crate) fn run_date(&self) -> NaiveDate {
        self.run_date
    }

    /// Every accepted partner id, sorted.
    pub(crate) fn partner_ids(&self) -> Vec<&'a str> {
        self.partners.iter().map(|p| p.partner_id.as_str()).collect()
    }

    /// Positions (in [`Plan::partner_ids`]) of the partners of range `r`.
    pub(crate) fn range(&self, r: usize) -> std::ops::Range<usize> {
        self.ranges[r].clone()
    }

    /// The partner at position `i`.
    pub(crate) fn partner(&self, i: usize) -> &'a Partner {
        self.partners[i]
    }

    /// The (program, range) pieces in report order: program by program, ranges in order.
    pub(crate) fn pieces(&self) -> Vec<(usize, usize)> {
        (0..self.programs.len()).flat_map(|p| (0..self.ranges.len()).map(move |r| (p, r))).collect()
    }

    /// Whether program `p` finds its earners by provider (else by reseller).
    fn by_provider(&self, p: usize) -> bool {
        match self.programs[p].partner_type {
            PartnerType::IndirectProvider => true,
            PartnerType::DirectReseller | PartnerType::IndirectReseller => false,
        }
    }

    /// The transactions of piece (`p`, `r`), for [`Plan::rows`]: read back from the spill, or
    /// copied out of the rows in memory.
    ///
    /// In memory a year's rows are held in delivery order, so a piece's rows are scattered over
    /// gigabytes, and every pass over them in place (the rule's, the sort's, the encoders')
    /// would miss the cache on each row. Copied together once (a short loop, whose misses
    /// overlap), the later passes read a few contiguous MB.
    pub(crate) fn load(&self, p: usize, r: usize) -> Result<Vec<Transaction>> {
        match &self.rows {
            Rows::Memory { transactions, by_reseller, by_provider } => {
                let bucket = if self.by_provider(p) { by_provider } else { by_reseller };
                Ok(bucket.of(&self.ranges[r]).iter().map(|&i| transactions[i as usize].clone()).collect())
            }
            Rows::Spilled { by_reseller, by_provider } => {
                let parts = if self.by_provider(p) { by_provider } else { by_reseller };
                parts.read(r..r + 1).map_err(|e| crate::error::Error::Io {
                    action: "reading back",
                    path: "the spilled transactions".into(),
                    source: e,
                })
            }
        }
    }

    /// The transactions of piece (`p`, `r`): `loaded` ([`Plan::load`]), or with nothing loaded
    /// and the rows in memory, where they are (for [`evaluate`] and tests; the same rows in
    /// the same order).
    pub(crate) fn rows<'t>(&self, p: usize, r: usize, loaded: &'t [Transaction]) -> Vec<&'t Transaction>
    where
        'a: 't,
    {
        match &self.rows {
            Rows::Memory { transactions, by_reseller, by_provider } if loaded.is_empty() => {
                let transactions: &'a [Transaction] = transactions;
                let bucket = if self.by_provider(p) { by_provider } else { by_reseller };
                bucket.of(&self.ranges[r]).iter().map(|&i| &transactions[i as usize]).collect()
            }
            _ => loaded.iter().collect(),
        }
    }

    /// The result of program `p` (index in [`Plan::programs`]) for the partners of range `r`,
    /// from its `transactions` ([`Plan::rows`]).
    pub(crate) fn piece<'t>(
        &self,
        p: usize,
        r: usize,
        transactions: &[&'t Transaction],
    ) -> Result<ProgramResult<'t>>
    where
        'a: 't,
    {
        let program = self.programs[p];
        let partners = self.partners[self.ranges[r].clone()].iter().copied();
        let eligibility = eligibility::eligibility(program, &self.refs, self.run_date, partners);
        let mut e = earnings::earnings(program, transactions, &self.refs, &self.rates)?;
        // (partner, date, id) is unique within a program, so the order is deterministic. The
        // id's string is read once per line for the sort key, not at every comparison (each
        // read is a lookup in the handle table, usually a cache miss).
        let key =
            |partner: &'t str, t: &'t Transaction| (partner, t.transaction_date, t.transaction_id.as_str());
        e.lines.sort_by_cached_key(|l| key(l.partner_id, l.tx));
        e.unearned.sort_by_cached_key(|u| key(u.partner_id, u.tx));
        let groups = payouts::payouts(program, &e.lines, &self.profiles, self.run_date);
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
            index: p as u32,
            eligibility,
            lines: e.lines,
            unearned: e.unearned,
            groups,
            totals,
            last_transaction: e.last_transaction,
        })
    }
}

/// Applies every program to the accepted feeds, whole: one result per program, sorted by
/// program id. (A run goes piece by piece through a [`Plan`].)
pub fn evaluate<'a>(
    feeds: &'a Feeds,
    programs: &'a [Program],
    run_date: NaiveDate,
) -> Result<Vec<ProgramResult<'a>>> {
    if feeds.spilled.is_some() {
        return Err(crate::error::Error::internal("evaluate works on transactions in memory"));
    }
    let plan = Plan::new(feeds, programs, run_date, usize::MAX)?;
    plan.pieces().into_par_iter().map(|(p, r)| plan.piece(p, r, &plan.rows(p, r, &[]))).collect()
}
#[cfg(test)]
mod tests;
