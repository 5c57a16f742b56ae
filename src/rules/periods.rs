//! Earning periods (calendar months or quarters): their labels, when deliveries are on time for
//! them, when they close, and when a period released for payment is paid.

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::config::EarningPeriod;

/// One calendar month or quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// First day of the period.
    pub(crate) start: NaiveDate,
    pub(crate) kind: EarningPeriod,
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

impl Period {
    /// The period of `kind` that contains `d`.
    pub(crate) fn containing(d: NaiveDate, kind: EarningPeriod) -> Period {
        let month = match kind {
            EarningPeriod::Month => d.month(),
            EarningPeriod::Quarter => (d.month() - 1) / 3 * 3 + 1,
        };
        Period { start: ymd(d.year(), month, 1), kind }
    }

    fn months(self) -> u32 {
        match self.kind {
            EarningPeriod::Month => 1,
            EarningPeriod::Quarter => 3,
        }
    }

    /// Last day of the period.
    pub(crate) fn end(self) -> NaiveDate {
        self.start + Months::new(self.months()) - Days::new(1)
    }

    /// `2026-10` for a month, `2026-Q4` for a quarter.
    pub(crate) fn label(self) -> String {
        match self.kind {
            EarningPeriod::Month => format!("{}-{:02}", self.start.year(), self.start.month()),
            EarningPeriod::Quarter => format!("{}-Q{}", self.start.year(), (self.start.month() - 1) / 3 + 1),
        }
    }

    /// Deliveries dated up to this day (the nightly feed of the last day) are on time.
    pub(crate) fn last_on_time_delivery(self) -> NaiveDate {
        self.end() + Days::new(1)
    }

    /// The first run date on which the period is closed.
    pub(crate) fn closes_on(self) -> NaiveDate {
        self.end() + Days::new(2)
    }

    pub(crate) fn is_closed(self, run_date: NaiveDate) -> bool {
        run_date >= self.closes_on()
    }

    /// The payment date of a payout released by this period: the 15th of the month
    /// `lag` months after the month in which the period closes.
    pub(crate) fn payment_date(self, lag: u32) -> NaiveDate {
        let closes = self.closes_on();
        // A lag beyond the calendar (thousands of years) saturates instead of panicking.
        ymd(closes.year(), closes.month(), 15).checked_add_months(Months::new(lag)).unwrap_or(NaiveDate::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::d;

    #[test]
    fn months_and_quarters() {
        let m = Period::containing(d("2026-10-17"), EarningPeriod::Month);
        assert_eq!(
            (m.label(), m.end(), m.last_on_time_delivery(), m.closes_on()),
            ("2026-10".to_string(), d("2026-10-31"), d("2026-11-01"), d("2026-11-02"))
        );
        assert!(!m.is_closed(d("2026-11-01")) && m.is_closed(d("2026-11-02")));
        assert_eq!(m.payment_date(2), d("2027-01-15"), "rules.md's example");
        let q = Period::containing(d("2026-08-05"), EarningPeriod::Quarter);
        assert_eq!((q.label(), q.start, q.end()), ("2026-Q3".to_string(), d("2026-07-01"), d("2026-09-30")));
        assert_eq!(Period::containing(d("2026-12-31"), EarningPeriod::Quarter).label(), "2026-Q4");
        assert_eq!(Period::containing(d("2027-01-01"), EarningPeriod::Quarter).label(), "2027-Q1");
        let feb = Period::containing(d("2028-02-10"), EarningPeriod::Month);
        assert_eq!((feb.end(), feb.closes_on()), (d("2028-02-29"), d("2028-03-02")));
        let dec = Period::containing(d("2026-12-05"), EarningPeriod::Month);
        assert_eq!(dec.payment_date(0), d("2027-01-15"));
    }
}
