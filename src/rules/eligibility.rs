//! Eligibility (rules.md "Eligibility"): each requirement of a partner for a program is the set
//! of days on which it holds; a partner is eligible on the days in all of them. A sale is judged
//! on its own transaction date, the eligibility report on the run date.

use crate::hash::HashMap;

use chrono::{Days, NaiveDate};

use super::intervals::DaySet;
use crate::config::Program;
use crate::feeds::Feeds;
use crate::feeds::tables::{AgreementType, Partner, Transaction, TransactionType};
use crate::model::PartnerType;
use crate::text::Text;

/// Why a partner is not eligible on a day, in the order of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Reason {
    OutsideProgramPeriod,
    NoNetworkAgreement,
    NoDistributorAgreement,
    NoResellerAgreement,
    NotNetworkRegistered,
    NotInvited,
    NoCompetency,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::OutsideProgramPeriod => "OUTSIDE_PROGRAM_PERIOD",
            Reason::NoNetworkAgreement => "NO_NETWORK_AGREEMENT",
            Reason::NoDistributorAgreement => "NO_DISTRIBUTOR_AGREEMENT",
            Reason::NoResellerAgreement => "NO_RESELLER_AGREEMENT",
            Reason::NotNetworkRegistered => "NOT_NETWORK_REGISTERED",
            Reason::NotInvited => "NOT_INVITED",
            Reason::NoCompetency => "NO_COMPETENCY",
        }
    }
}

/// What eligibility needs from the reference feeds, indexed by partner.
pub(crate) struct References<'a> {
    pub(crate) partners: HashMap<&'a str, &'a Partner>,
    agreements: HashMap<(&'a str, AgreementType), DaySet>,
    competencies: HashMap<&'a str, DaySet>,
    /// First accepted sale (any family, any date) of each partner as reseller.
    first_sale_as_reseller: HashMap<&'a str, NaiveDate>,
    /// Latest accepted sale of each partner as reseller and as provider.
    latest_sale_as_reseller: HashMap<&'a str, NaiveDate>,
    latest_sale_as_provider: HashMap<&'a str, NaiveDate>,
}

impl<'a> References<'a> {
    /// `partners` are the accepted partners in some order, and `position_of` finds an id's
    /// position in it (by handle: the sales are gathered per partner with no string hashing).
    /// `also` sees every transaction too, in the same pass (one read of spilled rows).
    pub(crate) fn new(
        feeds: &'a Feeds,
        partners: &[&'a Partner],
        position_of: &impl Fn(Option<Text>) -> Option<usize>,
        mut also: impl FnMut(&Transaction),
    ) -> std::io::Result<References<'a>> {
        let mut agreements: HashMap<(&str, AgreementType), Vec<_>> = HashMap::default();
        for a in &feeds.agreements {
            agreements.entry((&a.partner_id, a.agreement_type)).or_default().push((a.start_date, a.end_date));
        }
        let mut competencies: HashMap<&str, Vec<_>> = HashMap::default();
        for c in &feeds.competencies {
            competencies.entry(&c.partner_id).or_default().push((c.start_date, c.end_date));
        }
        // (first as reseller, latest as reseller, latest as provider) by partner position;
        // a row whose id is no accepted partner's is never asked about.
        let mut sales: Vec<[Option<NaiveDate>; 3]> = vec![[None; 3]; partners.len()];
        let mut note =
            |who: Option<Text>, slot: usize, d: NaiveDate, keep: fn(NaiveDate, NaiveDate) -> NaiveDate| {
                if let Some(i) = position_of(who) {
                    let s = &mut sales[i][slot];
                    *s = Some(s.map_or(d, |s| keep(s, d)));
                }
            };
        feeds.for_each_transaction(|t| {
            also(t);
            if t.transaction_type == TransactionType::Sale {
                let d = t.transaction_date;
                note(Some(t.reseller_id), 0, d, NaiveDate::min);
                note(Some(t.reseller_id), 1, d, NaiveDate::max);
                note(t.provider_id, 2, d, NaiveDate::max);
            }
        })?;
        let by_partner = |slot: usize| -> HashMap<&'a str, NaiveDate> {
            partners.iter().zip(&sales).filter_map(|(p, s)| Some((p.partner_id.as_str(), s[slot]?))).collect()
        };
        let (first_sale_as_reseller, latest_sale_as_reseller, latest_sale_as_provider) =
            (by_partner(0), by_partner(1), by_partner(2));
        Ok(References {
            partners: feeds.partners.iter().map(|p| (p.partner_id.as_str(), p)).collect(),
            agreements: agreements.into_iter().map(|(k, v)| (k, DaySet::union_of(v))).collect(),
            competencies: competencies.into_iter().map(|(k, v)| (k, DaySet::union_of(v))).collect(),
            first_sale_as_reseller,
            latest_sale_as_reseller,
            latest_sale_as_provider,
        })
    }

    fn agreement(&self, partner: &str, t: AgreementType) -> DaySet {
        self.agreements.get(&(partner, t)).cloned().unwrap_or_default()
    }

    /// An indirect reseller is invited the day after its first accepted sale as reseller.
    pub(crate) fn invited_on(&self, partner: &str) -> Option<NaiveDate> {
        self.first_sale_as_reseller.get(partner).map(|d| *d + Days::new(1))
    }

    /// At least one accepted sale as earner dated in [run date − 364 days, run date].
    pub(crate) fn active_reseller(&self, partner: &Partner, run_date: NaiveDate) -> bool {
        let latest = match partner.partner_type {
            PartnerType::IndirectProvider => self.latest_sale_as_provider.get(partner.partner_id.as_str()),
            _ => self.latest_sale_as_reseller.get(partner.partner_id.as_str()),
        };
        latest.is_some_and(|d| *d <= run_date && *d >= run_date - Days::new(364))
    }
}

/// The requirements of one partner for one program, each as the days on which it holds.
#[derive(Debug, Clone)]
pub(crate) struct Requirements {
    checks: Vec<(Reason, DaySet)>,
}

impl Requirements {
    pub(crate) fn new(program: &Program, partner: &Partner, refs: &References) -> Requirements {
        let id = partner.partner_id.as_str();
        let mut checks = vec![
            (Reason::OutsideProgramPeriod, DaySet::from(program.start, Some(program.end))),
            (Reason::NoNetworkAgreement, refs.agreement(id, AgreementType::PartnerNetwork)),
        ];
        match partner.partner_type {
            PartnerType::IndirectProvider => checks
                .push((Reason::NoDistributorAgreement, refs.agreement(id, AgreementType::CloudDistributor))),
            PartnerType::DirectReseller => {
                checks.push((Reason::NoResellerAgreement, refs.agreement(id, AgreementType::CloudReseller)))
            }
            PartnerType::IndirectReseller => {
                let registered =
                    partner.network_registered_on.map(|d| DaySet::from(d, None)).unwrap_or_default();
                checks.push((Reason::NotNetworkRegistered, registered));
                let invited = refs.invited_on(id).map(|d| DaySet::from(d, None)).unwrap_or_default();
                checks.push((Reason::NotInvited, invited));
            }
        }
        checks.push((Reason::NoCompetency, refs.competencies.get(id).cloned().unwrap_or_default()));
        Requirements { checks }
    }

    /// Every failing requirement on `d`, in the order of the rules table (empty = eligible).
    pub(crate) fn failing(&self, d: NaiveDate) -> Vec<Reason> {
        self.checks.iter().filter(|(_, days)| !days.contains(d)).map(|(r, _)| *r).collect()
    }

    /// The first day of the uninterrupted eligible stretch that includes `d` (never before the
    /// program start, which is itself a requirement).
    pub(crate) fn eligible_since(&self, d: NaiveDate) -> Option<NaiveDate> {
        let mut all = self.checks[0].1.clone();
        for (_, days) in &self.checks[1..] {
            all = all.intersect(days);
        }
        all.stretch_start(d)
    }
}

/// One row of the eligibility report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityRow {
    pub(crate) program_id: String,
    pub partner_id: String,
    pub(crate) partner_name: String,
    pub(crate) partner_type: PartnerType,
    pub(crate) reasons: Vec<Reason>,
    pub(crate) eligible_since: Option<NaiveDate>,
    pub(crate) invited_on: Option<NaiveDate>,
    pub(crate) active_reseller: bool,
}

impl EligibilityRow {
    pub(crate) fn eligible(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The eligibility on the run date of those of `partners` that have the program's type, in
/// the order given (the report's order is by partner id).
pub(crate) fn eligibility<'p>(
    program: &Program,
    refs: &References,
    run_date: NaiveDate,
    partners: impl Iterator<Item = &'p Partner>,
) -> Vec<EligibilityRow> {
    partners
        .filter(|p| p.partner_type == program.partner_type)
        .map(|p| {
            let req = Requirements::new(program, p, refs);
            EligibilityRow {
                program_id: program.id.clone(),
                partner_id: p.partner_id.clone(),
                partner_name: p.partner_name.clone(),
                partner_type: p.partner_type,
                reasons: req.failing(run_date),
                eligible_since: req.eligible_since(run_date),
                invited_on: match p.partner_type {
                    PartnerType::IndirectReseller => refs.invited_on(&p.partner_id),
                    _ => None,
                },
                active_reseller: refs.active_reseller(p, run_date),
            }
        })
        .collect()
}
