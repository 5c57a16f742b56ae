//! Payouts (rules.md "Payouts"): earnings grouped per partner, booked period and earning type;
//! rebate periods released by a running balance against the program minimum, with holds from
//! the payment profile; co-op available once its period closes. Also the dashboard totals.

use crate::hash::HashMap;
use crate::model::money::Usd;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::earnings::Line;
use super::periods::Period;
use crate::config::{EarningType, Program};
use crate::feeds::tables::PaymentProfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Status {
    Accruing,
    CarriedForward,
    OnHold,
    Scheduled,
    Available,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Accruing => "accruing",
            Status::CarriedForward => "carried_forward",
            Status::OnHold => "on_hold",
            Status::Scheduled => "scheduled",
            Status::Available => "available",
        }
    }
}

/// Why a released payout is held, in the order of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    NoPaymentProfile,
    BankNotVerified,
    TaxNotVerified,
}

impl Hold {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Hold::NoPaymentProfile => "NO_PAYMENT_PROFILE",
            Hold::BankNotVerified => "BANK_NOT_VERIFIED",
            Hold::TaxNotVerified => "TAX_NOT_VERIFIED",
        }
    }
}

/// The holds of a partner on the run date (its payment-profile snapshot).
pub(crate) fn holds(profile: Option<&PaymentProfile>) -> Vec<Hold> {
    match profile {
        None => vec![Hold::NoPaymentProfile],
        Some(p) => {
            let mut h = Vec::new();
            if !p.bank_verified {
                h.push(Hold::BankNotVerified);
            }
            if !p.tax_verified {
                h.push(Hold::TaxNotVerified);
            }
            h
        }
    }
}

/// One (partner, booked period, earning type) group of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub partner_id: String,
    pub period: Period,
    pub earning_type: EarningType,
    /// Sum of its lines' `earning_amount_usd`.
    pub total_usd: Usd,
    pub(crate) status: Status,
    pub hold_reasons: Vec<Hold>,
    pub payout_id: Option<String>,
    pub(crate) payment_date: Option<NaiveDate>,
}

/// A stable 20-hex-digit id from its parts: the first 10 bytes of the SHA-256 of the parts,
/// each followed by 0x1f.
pub(crate) fn stable_id(parts: &[&str]) -> String {
    String::from_utf8(stable_id_digits(parts).to_vec()).expect("hex digits are ASCII")
}

/// [`stable_id`]'s digits, without allocating (an earnings report has one per line).
pub(crate) fn stable_id_digits(parts: &[&str]) -> [u8; 20] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let mut out = [0; 20];
    crate::digest::hex_into(&h.finalize()[..10], &mut out);
    out
}

/// Groups the lines of one program and settles each group's status on `run_date`. Sorted by
/// partner, period, earning type.
pub(crate) fn payouts(
    program: &Program,
    lines: &[Line],
    profiles: &HashMap<&str, &PaymentProfile>,
    run_date: NaiveDate,
) -> Vec<Group> {
    // Lines come partner by partner (a piece's are sorted), so they are summed a run of one
    // partner at a time, keyed without the partner's id; a partner met in two runs is merged
    // after the sort.
    let mut totals: Vec<((&str, Period, EarningType), Usd)> = Vec::new();
    let mut run: HashMap<(Period, EarningType), Usd> = HashMap::default();
    for same_partner in
        lines.chunk_by(|a, b| std::ptr::eq(a.partner_id, b.partner_id) || a.partner_id == b.partner_id)
    {
        for l in same_partner {
            *run.entry((l.booked, l.lever.earning_type)).or_default() += l.earning_usd;
        }
        let partner = same_partner[0].partner_id;
        totals.extend(run.drain().map(|((period, kind), total)| ((partner, period, kind), total)));
    }
    totals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    totals.dedup_by(|later, first| {
        let same = later.0 == first.0;
        if same {
            first.1 += later.1;
        }
        same
    });
    let mut groups: Vec<Group> = totals
        .into_iter()
        .map(|((partner, period, earning_type), total_usd)| {
            let closed = period.is_closed(run_date);
            Group {
                partner_id: partner.to_string(),
                period,
                earning_type,
                total_usd,
                status: match (earning_type, closed) {
                    (_, false) => Status::Accruing,
                    (EarningType::Coop, true) => Status::Available,
                    (EarningType::Rebate, true) => Status::CarriedForward,
                },
                hold_reasons: Vec::new(),
                payout_id: None,
                payment_date: None,
            }
        })
        .collect();
    // The running balance over each partner's closed rebate periods, in date order (groups
    // are sorted by partner, then period).
    let mut i = 0;
    while i < groups.len() {
        let partner = groups[i].partner_id.clone();
        let mut balance = Usd::ZERO;
        let mut pending: Vec<usize> = Vec::new();
        while i < groups.len() && groups[i].partner_id == partner {
            let g = &groups[i];
            if g.earning_type == EarningType::Rebate && g.status == Status::CarriedForward {
                balance += g.total_usd;
                pending.push(i);
                if balance.reaches(program.minimum_payout_usd) {
                    let releasing = g.period;
                    let id = stable_id(&[&program.id, &partner, &releasing.label(), "rebate"]);
                    let date = releasing.payment_date(program.payout_lag_months);
                    let hold = holds(profiles.get(partner.as_str()).copied());
                    for &j in &pending {
                        let g = &mut groups[j];
                        g.payout_id = Some(id.clone());
                        g.payment_date = Some(date);
                        g.status = if hold.is_empty() { Status::Scheduled } else { Status::OnHold };
                        g.hold_reasons = hold.clone();
                    }
                    pending.clear();
                    balance = Usd::ZERO;
                }
            }
            i += 1;
        }
    }
    groups
}

/// The month a rebate line is (expected to be) paid in: its payout's, once released; else the
/// one it would be paid in if released when its period closes.
pub(crate) fn estimated_payment_month(program: &Program, group: &Group) -> Option<NaiveDate> {
    match group.earning_type {
        EarningType::Coop => None,
        EarningType::Rebate => {
            Some(group.payment_date.unwrap_or_else(|| group.period.payment_date(program.payout_lag_months)))
        }
    }
}

/// The dashboard totals of one partner in one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub earned: Usd,
    pub rebate: Usd,
    pub coop: Usd,
    pub scheduled: Usd,
    pub on_hold: Usd,
    pub carried_forward: Usd,
    pub accruing: Usd,
    pub coop_available: Usd,
}

impl Totals {
    /// Adds `other`'s columns to these (a program's totals over its partners).
    pub(crate) fn merge(&mut self, other: &Totals) {
        self.earned += other.earned;
        self.rebate += other.rebate;
        self.coop += other.coop;
        self.scheduled += other.scheduled;
        self.on_hold += other.on_hold;
        self.carried_forward += other.carried_forward;
        self.accruing += other.accruing;
        self.coop_available += other.coop_available;
    }

    /// Adds a group's total to the columns it belongs to.
    pub(crate) fn add(&mut self, g: &Group) {
        let t = g.total_usd;
        self.earned += t;
        match g.earning_type {
            EarningType::Rebate => self.rebate += t,
            EarningType::Coop => self.coop += t,
        }
        match g.status {
            Status::Accruing => self.accruing += t,
            Status::CarriedForward => self.carried_forward += t,
            Status::OnHold => self.on_hold += t,
            Status::Scheduled => self.scheduled += t,
            Status::Available => self.coop_available += t,
        }
    }
}

#[cfg(test)]
mod stable_ids {
    use super::*;

    /// Earning and payout ids are what BI tools join on across runs: the formula must not drift.
    #[test]
    fn a_known_id_does_not_change() {
        // sha256("FY27\x1fT1\x1fcore\x1f"), first ten bytes, computed with Python's hashlib.
        assert_eq!(stable_id(&["FY27", "T1", "core"]), "0e88c2de8422286a9966");
        assert_ne!(stable_id(&["FY27", "T1core"]), stable_id(&["FY27T1", "core"]), "parts are delimited");
    }
}
