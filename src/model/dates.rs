//! Calendar dates as the feeds and reports write them: `YYYY-MM-DD` and `YYYY-MM`, real
//! calendar dates only, parsed and written without the formatting machinery (dates are a good
//! share of feed and report cells).

use chrono::{Datelike, NaiveDate};

/// `YYYY-MM-DD`, a real calendar date.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[5..7].parse().ok()?;
    let day = text[8..10].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// `YYYY-MM-DD`, as [`parse_date`] reads it, without the formatting machinery (dates are a
/// good share of report cells and of parquet feed cells).
pub(crate) fn write_date(buf: &mut Vec<u8>, d: chrono::NaiveDate) {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        use std::io::Write;
        let _ = write!(buf, "{:04}-{m:02}-{day:02}", y);
        return;
    }
    let y = y as u32;
    for digit in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
        buf.push(b'0' + digit as u8);
    }
    for part in [m, day] {
        buf.push(b'-');
        buf.push(b'0' + (part / 10) as u8);
        buf.push(b'0' + (part % 10) as u8);
    }
}

/// `YYYY-MM` as the first day of that month.
pub(crate) fn parse_month(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 7 || b[4] != b'-' {
        return None;
    }
    parse_date(&format!("{text}-01"))
}

/// The first day of the month of `d`.
pub(crate) fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists in every month")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict_calendar_dates() {
        assert_eq!(parse_date("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in
            ["2026-02-29", "2026-13-01", "2026-9-01", "01/02/2026", "2026-09-01 ", "=1+1", "2026-09-31"]
        {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_month("2026-09"), NaiveDate::from_ymd_opt(2026, 9, 1));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("2026-9"), None);
    }
}
