//! Money as types that carry their scale: an exact decimal is a count of units of 10^-S, and
//! `S` is part of its type, so that cents cannot be added to rates, nor an amount passed
//! where a threshold is expected: mixing scales does not compile. Conversions between scales
//! are explicit and round once, half away from zero ([`crate::decimal::rescale_round`]).
//!
//! Arithmetic is `i128`, checked in every profile (`overflow-checks = true`): a sum that
//! overflows stops the run rather than wrapping.

use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// An exact decimal: `units` × 10^-`S`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed<const S: u32>(pub i128);

/// USD in cents: earnings, payouts and every dashboard total.
pub type Usd = Fixed<2>;
/// A transaction's amount in its own currency, in units of 10^-4 (feeds.md: at most 4
/// fraction digits).
pub type Amount = Fixed<4>;
/// An exchange rate (USD per unit) or an earning rate, in units of 10^-8.
pub type Rate = Fixed<8>;
/// A program's USD threshold (the payout minimum, a tier's minimum revenue), kept exactly as
/// written, in units of 10^-18; compared with cents by [`Usd::reaches`].
pub type Threshold = Fixed<18>;

impl<const S: u32> Fixed<S> {
    /// Fraction digits.
    pub const SCALE: u32 = S;
    pub const ZERO: Self = Fixed(0);

    /// `units` × 10^-`S`.
    pub const fn new(units: i128) -> Self {
        Fixed(units)
    }

    /// The count of units of 10^-`S`.
    pub fn units(self) -> i128 {
        self.0
    }
}

impl Rate {
    /// A rate of 1 (USD's own exchange rate).
    pub const ONE: Rate = Fixed(crate::decimal::pow10(Rate::SCALE));
}

impl Usd {
    /// Whether this total reaches `threshold` (>=), exactly.
    pub fn reaches(self, threshold: Threshold) -> bool {
        self.0 * crate::decimal::pow10(Threshold::SCALE - Usd::SCALE) >= threshold.0
    }
}

impl<const S: u32> Add for Fixed<S> {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Fixed(self.0 + other.0)
    }
}

impl<const S: u32> Sub for Fixed<S> {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Fixed(self.0 - other.0)
    }
}

impl<const S: u32> Neg for Fixed<S> {
    type Output = Self;
    fn neg(self) -> Self {
        Fixed(-self.0)
    }
}

impl<const S: u32> AddAssign for Fixed<S> {
    fn add_assign(&mut self, other: Self) {
        self.0 += other.0;
    }
}

impl<const S: u32> SubAssign for Fixed<S> {
    fn sub_assign(&mut self, other: Self) {
        self.0 -= other.0;
    }
}

impl<const S: u32> Sum for Fixed<S> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl<const S: u32> std::fmt::Display for Fixed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::decimal::format(self.0, S))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_compared_with_cents_exactly() {
        let fifty = Threshold::new(50 * crate::decimal::pow10(18));
        assert!(Usd::new(5000).reaches(fifty));
        assert!(!Usd::new(4999).reaches(fifty));
        // A threshold of 49.999999999999999999 is reached by 50.00, not by 49.99.
        let just_under = Threshold::new(fifty.0 - 1);
        assert!(Usd::new(5000).reaches(just_under) && !Usd::new(4999).reaches(just_under));
        assert_eq!(Usd::new(-1250).to_string(), "-12.50");
        assert_eq!([Usd::new(1), Usd::new(2), -Usd::new(5)].into_iter().sum::<Usd>(), Usd::new(-2));
        assert_eq!(Rate::ONE, Fixed(100_000_000));
    }
}
