//! The small vocabulary shared by the program files ([`crate::config`]), the feeds, the rules
//! and the reports: partner types, calendar dates as the feeds and reports write them, and
//! money as types that carry their scale ([`money`]).

pub(crate) mod dates;
pub mod money;

/// The three kinds of partner of a program (rules.md): who a program pays, and how a
/// transaction names its earner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartnerType {
    DirectReseller,
    IndirectProvider,
    IndirectReseller,
}

impl PartnerType {
    pub const VALUES: [(&'static str, PartnerType); 3] = [
        ("direct_reseller", PartnerType::DirectReseller),
        ("indirect_provider", PartnerType::IndirectProvider),
        ("indirect_reseller", PartnerType::IndirectReseller),
    ];

    pub fn as_str(self) -> &'static str {
        Self::VALUES.iter().find(|(_, v)| *v == self).map(|(n, _)| *n).expect("listed")
    }
}
