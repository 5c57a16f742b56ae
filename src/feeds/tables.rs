//! The accepted rows of a run, typed: what the rules work on. Every value here passed the
//! checks of feeds.md; money is exact ([`crate::model::money`]).

use chrono::NaiveDate;

use crate::model::PartnerType;
use crate::model::money::{Amount, Rate};

/// Text of a transaction: a 4-byte handle (ids repeat on millions of lines; see [`crate::text`]).
pub use crate::text::Text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgreementType {
    PartnerNetwork,
    CloudDistributor,
    CloudReseller,
}

impl AgreementType {
    pub const VALUES: [(&'static str, AgreementType); 3] = [
        ("partner_network", AgreementType::PartnerNetwork),
        ("cloud_distributor", AgreementType::CloudDistributor),
        ("cloud_reseller", AgreementType::CloudReseller),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Gold,
    Silver,
}

impl Level {
    pub const VALUES: [(&'static str, Level); 2] = [("gold", Level::Gold), ("silver", Level::Silver)];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    IncentiveAdmin,
    IncentiveUser,
}

impl Role {
    pub const VALUES: [(&'static str, Role); 2] =
        [("incentive_admin", Role::IncentiveAdmin), ("incentive_user", Role::IncentiveUser)];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IncentiveAdmin => "incentive_admin",
            Role::IncentiveUser => "incentive_user",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionType {
    Sale,
    Refund,
}

impl TransactionType {
    pub const VALUES: [(&'static str, TransactionType); 2] =
        [("sale", TransactionType::Sale), ("refund", TransactionType::Refund)];

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::Sale => "sale",
            TransactionType::Refund => "refund",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub partner_id: String,
    pub partner_name: String,
    pub country_code: String,
    pub partner_type: PartnerType,
    pub network_registered_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub agreement_id: String,
    pub partner_id: String,
    pub agreement_type: AgreementType,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Competency {
    pub partner_id: String,
    pub competency: String,
    pub level: Level,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub partner_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentProfile {
    pub partner_id: String,
    pub payout_currency: String,
    pub bank_verified: bool,
    pub tax_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxRate {
    pub currency: String,
    /// First day of the rate's month.
    pub month: NaiveDate,
    /// US dollars per unit.
    pub usd_rate: Rate,
}

/// An accepted transaction. Ids are [`Text`] handles; a refund's `original_transaction_id` is
/// its sale's handle, not an equal copy: the earnings rule finds a refund's sale by handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub transaction_id: Text,
    pub transaction_date: NaiveDate,
    pub transaction_type: TransactionType,
    pub original_transaction_id: Option<Text>,
    pub reseller_id: Text,
    pub provider_id: Option<Text>,
    pub customer_id: Text,
    pub product_id: Text,
    pub product_family: Text,
    /// 1 to `i32::MAX` (feeds.md).
    pub quantity: i32,
    /// In units of 10^-4 of `currency`; negative for refunds. Below 10^18 in size
    /// (`AMOUNT_LIMIT`), so 8 bytes hold it: a year of rows is held at once.
    pub amount: i64,
    pub currency: Text,
    /// The delivery date of the file the row came from.
    pub delivery_date: NaiveDate,
}

impl Transaction {
    /// The amount, typed (the row holds its units in 8 bytes).
    pub(crate) fn amount(&self) -> Amount {
        Amount::new(self.amount.into())
    }
}

/// Accepted rows of every feed for one run date.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    pub partners: Vec<Partner>,
    pub agreements: Vec<Agreement>,
    pub competencies: Vec<Competency>,
    pub users: Vec<User>,
    pub payment_profiles: Vec<PaymentProfile>,
    /// Non-USD rates only (USD is always 1; its rows are validated and otherwise ignored).
    pub fx_rates: Vec<FxRate>,
    /// Sales first in delivery order, then accepted refunds in the order they were checked;
    /// empty when they were spilled.
    pub transactions: Vec<Transaction>,
    /// The same rows in a local file instead, for runs larger than memory (see
    /// [`crate::feeds::spill`]).
    pub(crate) spilled: Option<crate::feeds::spill::Sealed>,
}

impl Feeds {
    /// Every accepted transaction, in order, wherever it is held.
    pub(crate) fn for_each_transaction(&self, mut f: impl FnMut(&Transaction)) -> std::io::Result<()> {
        self.transactions.iter().for_each(&mut f);
        match &self.spilled {
            Some(s) => s.scan(|_, t| f(&t)),
            None => Ok(()),
        }
    }

    /// Accepted transactions.
    pub(crate) fn transaction_count(&self) -> u64 {
        self.transactions.len() as u64 + self.spilled.as_ref().map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    /// A year of transactions is held at once: its row must stay this small.
    #[test]
    fn a_transaction_is_56_bytes() {
        assert_eq!(std::mem::size_of::<super::Transaction>(), 56);
    }
}
