//! Sets of days as sorted, disjoint, inclusive date intervals: eligibility is interval logic
//! (agreements and competencies are date-effective), never a loop over days.

use chrono::{Days, NaiveDate};

/// A set of days: sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DaySet {
    spans: Vec<(NaiveDate, NaiveDate)>,
}

fn next_day(d: NaiveDate) -> NaiveDate {
    d.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX)
}

impl DaySet {
    /// No day at all.
    #[cfg(test)]
    fn empty() -> DaySet {
        DaySet::default()
    }

    /// Every day from `start` (inclusive) to `end` (inclusive; `None` = open-ended).
    pub(crate) fn from(start: NaiveDate, end: Option<NaiveDate>) -> DaySet {
        DaySet::union_of([(start, end)])
    }

    /// The union of possibly overlapping intervals.
    pub(crate) fn union_of(intervals: impl IntoIterator<Item = (NaiveDate, Option<NaiveDate>)>) -> DaySet {
        let mut v: Vec<(NaiveDate, NaiveDate)> = intervals
            .into_iter()
            .map(|(s, e)| (s, e.unwrap_or(NaiveDate::MAX)))
            .filter(|(s, e)| s <= e)
            .collect();
        v.sort();
        let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match spans.last_mut() {
                Some(last) if s <= next_day(last.1) => last.1 = last.1.max(e),
                _ => spans.push((s, e)),
            }
        }
        DaySet { spans }
    }

    pub(crate) fn contains(&self, d: NaiveDate) -> bool {
        let i = self.spans.partition_point(|(_, e)| *e < d);
        self.spans.get(i).is_some_and(|(s, _)| *s <= d)
    }

    pub(crate) fn intersect(&self, other: &DaySet) -> DaySet {
        let (mut i, mut j, mut spans) = (0, 0, Vec::new());
        while i < self.spans.len() && j < other.spans.len() {
            let (a, b) = (self.spans[i], other.spans[j]);
            let (s, e) = (a.0.max(b.0), a.1.min(b.1));
            if s <= e {
                spans.push((s, e));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        DaySet { spans }
    }

    /// The first day of the uninterrupted stretch that holds `d`, if `d` is in the set.
    pub(crate) fn stretch_start(&self, d: NaiveDate) -> Option<NaiveDate> {
        let i = self.spans.partition_point(|(_, e)| *e < d);
        self.spans.get(i).filter(|(s, _)| *s <= d).map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::d;

    #[test]
    fn union_merges_overlapping_and_adjacent_intervals() {
        let s = DaySet::union_of([
            (d("2026-08-01"), Some(d("2026-08-10"))),
            (d("2026-07-01"), Some(d("2026-07-31"))),
            (d("2026-09-01"), None),
            (d("2026-08-05"), Some(d("2026-08-20"))),
        ]);
        assert_eq!(s.stretch_start(d("2026-08-15")), Some(d("2026-07-01")));
        assert!(!s.contains(d("2026-08-21")) && !s.contains(d("2026-08-31")));
        assert_eq!(s.stretch_start(d("2027-12-31")), Some(d("2026-09-01")));
        assert!(!s.contains(d("2026-06-30")));
    }

    #[test]
    fn intersection_of_sets() {
        let a = DaySet::union_of([(d("2026-07-01"), Some(d("2026-07-31"))), (d("2026-09-01"), None)]);
        let b = DaySet::from(d("2026-07-15"), Some(d("2026-09-10")));
        let i = a.intersect(&b);
        assert_eq!(
            i,
            DaySet::union_of([
                (d("2026-07-15"), Some(d("2026-07-31"))),
                (d("2026-09-01"), Some(d("2026-09-10")))
            ])
        );
        assert_eq!(i.intersect(&DaySet::empty()), DaySet::empty());
    }
}
