//! Feeds: reading a landing zone of daily deliveries and accounting for every row.
//!
//! The flow is `landing` (which files a run date reads) -> `read` (a file's records as text
//! cells, CSV or parquet alike) -> `validate` (cells, references, keys, refunds; each row is
//! accepted into a typed table or rejected with its reasons). The contract is `feeds.md`.

pub mod cells;
pub(crate) mod landing;
pub(crate) mod read;
pub(crate) mod spill;
pub mod tables;
pub mod validate;

pub use landing::Landing;
pub use tables::Feeds;
pub use validate::{Ingest, Reject, ingest};

/// The seven feeds of the landing zone, in the order they are validated (references point
/// backwards: everything names partners; transactions need exchange rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    Partners,
    Agreements,
    Competencies,
    Users,
    PaymentProfiles,
    FxRates,
    Transactions,
}

impl Feed {
    pub(crate) const ALL: [Feed; 7] = [
        Feed::Partners,
        Feed::Agreements,
        Feed::Competencies,
        Feed::Users,
        Feed::PaymentProfiles,
        Feed::FxRates,
        Feed::Transactions,
    ];

    /// The feed's folder name in the landing zone and its name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Feed::Partners => "partners",
            Feed::Agreements => "agreements",
            Feed::Competencies => "competencies",
            Feed::Users => "users",
            Feed::PaymentProfiles => "payment_profiles",
            Feed::FxRates => "fx_rates",
            Feed::Transactions => "transactions",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Snapshot feeds: one delivery is the complete state. Event feeds add rows.
    pub(crate) fn is_snapshot(self) -> bool {
        !matches!(self, Feed::FxRates | Feed::Transactions)
    }

    /// The columns of the feed's table, in the spec's order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Feed::Partners => {
                &["partner_id", "partner_name", "country_code", "partner_type", "network_registered_on"]
            }
            Feed::Agreements => &["agreement_id", "partner_id", "agreement_type", "start_date", "end_date"],
            Feed::Competencies => &["partner_id", "competency", "level", "start_date", "end_date"],
            Feed::Users => &["user_id", "partner_id", "role"],
            Feed::PaymentProfiles => &["partner_id", "payout_currency", "bank_verified", "tax_verified"],
            Feed::FxRates => &["currency", "month", "usd_rate"],
            Feed::Transactions => &[
                "transaction_id",
                "transaction_date",
                "transaction_type",
                "original_transaction_id",
                "reseller_id",
                "provider_id",
                "customer_id",
                "product_id",
                "product_family",
                "quantity",
                "amount",
                "currency",
            ],
        }
    }

    /// Indexes (into [`Feed::columns`]) of the key columns.
    pub(crate) fn key(self) -> &'static [usize] {
        match self {
            Feed::Competencies => &[0, 1, 3],
            Feed::Users => &[0, 1],
            Feed::FxRates => &[0, 1],
            _ => &[0],
        }
    }

    /// Column index by name; panics on a name that is not in the table (a bug).
    pub(crate) fn col(self, name: &str) -> usize {
        self.columns()
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name()))
    }
}

impl std::fmt::Display for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
