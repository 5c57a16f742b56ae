//! CSV as finance teams open it (reports.md "CSV conventions"): UTF-8 without BOM, a header,
//! quotes only where needed, `\n` after every record, empty cells for nulls, fixed-scale
//! decimals, and a leading `'` on *text* cells a spreadsheet would run as a formula.

use super::{Table, Values};
use crate::decimal;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `YYYY-MM-DD` without the formatting machinery (dates are a good share of report cells).
fn push_date(buf: &mut String, d: chrono::NaiveDate) {
    use chrono::Datelike;
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        use std::fmt::Write;
        let _ = write!(buf, "{:04}-{m:02}-{day:02}", y);
        return;
    }
    let y = y as u32;
    for digit in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
        buf.push(char::from(b'0' + digit as u8));
    }
    for part in [m, day] {
        buf.push('-');
        buf.push(char::from(b'0' + (part / 10) as u8));
        buf.push(char::from(b'0' + (part % 10) as u8));
    }
}

/// Writes one cell of `values` at `row` into `buf` (cleared first); `buf` is reused across
/// cells so that no cell allocates.
fn cell(values: &Values, row: usize, buf: &mut String) {
    use std::fmt::Write;
    buf.clear();
    // Text cells a spreadsheet would run as a formula get a leading `'`.
    let text = |buf: &mut String, t: &str| {
        if t.starts_with(FORMULA_START) {
            buf.push('\'');
        }
        buf.push_str(t);
    };
    match values {
        Values::Text(v) => {
            if let Some(t) = v[row].as_deref() {
                text(buf, t);
            }
        }
        Values::Int(v) => {
            if let Some(i) = v[row] {
                let _ = write!(buf, "{i}");
            }
        }
        Values::Decimal { values, scale, csv_scales } => {
            if let Some(units) = values[row] {
                let digits = csv_scales.as_ref().map_or(*scale, |s| s[row]);
                decimal::write(buf, decimal::rescale_round(units, *scale, digits), digits);
            }
        }
        Values::Date(v) => {
            if let Some(d) = v[row] {
                push_date(buf, d);
            }
        }
        Values::Bool(v) => {
            if let Some(b) = v[row] {
                buf.push_str(if b { "true" } else { "false" });
            }
        }
        Values::List(v) => text(buf, &v[row].join(";")),
    }
}

/// The CSV bytes of `table`.
pub fn to_csv(table: &Table) -> Vec<u8> {
    // A generous first guess of the size, so that the buffer rarely grows (and copies).
    let mut out = Vec::with_capacity(64 + table.rows() * table.columns.len() * 12);
    write_csv(table, true, &mut out).expect("writing to memory");
    out
}

/// The header line of `table`'s columns (a report written in chunks starts with it).
pub fn write_header(table: &Table, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut w = CsvRows::new(out);
    w.header(table)?;
    w.flush()
}

/// Writes the rows of `table` as CSV to `out`, after the header when `header` is set.
pub fn write_csv(table: &Table, header: bool, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut w = CsvRows::new(out);
    if header {
        w.header(table)?;
    }
    for row in 0..table.rows() {
        w.row(table, row)?;
    }
    w.flush()
}

/// A CSV writer taking a table's rows one at a time (so that a caller can flush between
/// rows and learn where each piece of the output ends).
pub struct CsvRows<W: std::io::Write> {
    w: csv::Writer<W>,
    buf: String,
}

impl<W: std::io::Write> CsvRows<W> {
    pub fn new(out: W) -> Self {
        let w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .buffer_capacity(1 << 16)
            .from_writer(out);
        CsvRows { w, buf: String::new() }
    }

    pub fn header(&mut self, table: &Table) -> std::io::Result<()> {
        self.w.write_record(table.columns.iter().map(|(n, _)| *n))?;
        Ok(())
    }

    pub fn row(&mut self, table: &Table, row: usize) -> std::io::Result<()> {
        for (_, v) in &table.columns {
            cell(v, row, &mut self.buf);
            self.w.write_field(self.buf.as_bytes())?;
        }
        self.w.write_record(None::<&[u8]>)?;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer (flush first to see every row in it).
    pub fn get_ref(&self) -> &W {
        self.w.get_ref()
    }

    pub fn into_inner(self) -> std::io::Result<W> {
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hex_are_written_as_the_formatting_machinery_writes_them() {
        let mut d = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(10_050, 1, 1).unwrap();
        let mut buf = String::new();
        while d < end {
            buf.clear();
            push_date(&mut buf, d);
            use chrono::Datelike;
            assert_eq!(buf, format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()));
            d = d + chrono::Days::new(13);
        }
        assert_eq!(hex_of(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
    }

    fn hex_of(b: &[u8]) -> String {
        crate::feeds::validate::hex(b)
    }

    #[test]
    fn formula_guard_touches_text_only() {
        let t = Table {
            name: "t",
            columns: vec![
                (
                    "text",
                    Values::Text(vec![Some("-1.0".into()), Some("=1+1".into()), Some("a,b".into()), None]),
                ),
                (
                    "money",
                    Values::Decimal {
                        values: vec![Some(-1250), Some(0), Some(5), None],
                        scale: 2,
                        csv_scales: None,
                    },
                ),
                (
                    "minor",
                    Values::Decimal {
                        values: vec![Some(12_345), Some(-5_000), Some(10_000), Some(1)],
                        scale: 4,
                        csv_scales: Some(vec![0, 0, 3, 2]),
                    },
                ),
                ("d", Values::Date(vec![chrono::NaiveDate::from_ymd_opt(2026, 9, 1), None, None, None])),
                ("l", Values::List(vec![vec!["A".into(), "B".into()], vec![], vec![], vec![]])),
            ],
        };
        let text = String::from_utf8(to_csv(&t)).unwrap();
        assert_eq!(
            text,
            "text,money,minor,d,l\n'-1.0,-12.50,1,2026-09-01,A;B\n'=1+1,0.00,-1,,\n\"a,b\",0.05,1.000,,\n,,0.00,,\n"
        );
    }
}
