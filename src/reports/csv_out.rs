//! CSV as finance teams open it (reports.md "CSV conventions"): UTF-8 without BOM, a header,
//! quotes only where needed, `\n` after every record, empty cells for nulls, fixed-scale
//! decimals, and a leading `'` on *text* cells a spreadsheet would run as a formula.

use super::{Table, Values};
use crate::decimal;
use crate::model::dates::write_date;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a text cell must be quoted: it holds the delimiter, a quote or a line break (the
/// bytes the `csv` crate quotes with `QuoteStyle::Necessary` and a `\n` terminator).
fn needs_quotes(t: &[u8]) -> bool {
    /// Whether a byte of `w` is `b`: the exact "has a zero byte" test on `w ^ bbbbbbbb`.
    fn has(w: u64, b: u8) -> bool {
        const ONES: u64 = 0x0101_0101_0101_0101;
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
    }
    // Eight bytes at a time (a short tail padded with zeros, which match none): a byte at a
    // time was most of the cost of writing a text cell.
    let quoted = |w: u64| has(w, b',') | has(w, b'"') | has(w, b'\n') | has(w, b'\r');
    let mut words = t.chunks_exact(8);
    if words.by_ref().any(|c| quoted(u64::from_le_bytes(c.try_into().expect("8 bytes")))) {
        return true;
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    quoted(u64::from_le_bytes(tail))
}

/// A text cell: a leading `'` where a spreadsheet would run it as a formula, quoted (quotes
/// doubled) where needed.
pub(crate) fn push_text(buf: &mut Vec<u8>, t: &str) {
    // The formula starts are ASCII, so the first byte tells.
    let guard = t.as_bytes().first().is_some_and(|&b| FORMULA_START.contains(&char::from(b)));
    if !needs_quotes(t.as_bytes()) {
        if guard {
            buf.push(b'\'');
        }
        buf.extend_from_slice(t.as_bytes());
        return;
    }
    buf.push(b'"');
    if guard {
        buf.push(b'\'');
    }
    for &b in t.as_bytes() {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

/// Appends one cell of `values` at `row` to `buf`, unquoted unless it is text that needs it.
fn cell(values: &Values, row: usize, buf: &mut Vec<u8>) {
    match values {
        Values::Text(v) => {
            if let Some(t) = v[row].as_deref() {
                push_text(buf, t);
            }
        }
        Values::Int(v) => {
            if let Some(i) = v[row] {
                decimal::write(buf, i.into(), 0);
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
                write_date(buf, d);
            }
        }
        Values::Bool(v) => {
            if let Some(b) = v[row] {
                buf.extend_from_slice(if b { b"true" } else { b"false" });
            }
        }
        Values::List(v) => push_text(buf, &v[row].join(";")),
    }
}

/// The CSV bytes of `table`.
pub(crate) fn to_csv(table: &Table) -> Vec<u8> {
    // A generous first guess of the size, so that the buffer rarely grows (and copies).
    let mut out = Vec::with_capacity(64 + table.rows() * table.columns.len() * 12);
    header(table, &mut out);
    for r in 0..table.rows() {
        row(table, r, &mut out);
    }
    out
}

/// Appends the header line of `table`'s columns (a report written in chunks starts with it).
pub(crate) fn header(table: &Table, buf: &mut Vec<u8>) {
    for (i, (name, _)) in table.columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_text(buf, name);
    }
    buf.push(b'\n');
}

/// Appends the record of row `row` of `table`, with its `\n`.
pub(crate) fn row(table: &Table, row: usize, buf: &mut Vec<u8>) {
    let start = buf.len();
    for (i, (_, v)) in table.columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        cell(v, row, buf);
    }
    // A record of one empty cell is `""`, or it would read as a blank line.
    if buf.len() == start {
        buf.extend_from_slice(b"\"\"");
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hex_are_written_as_the_formatting_machinery_writes_them() {
        let mut d = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(10_050, 1, 1).unwrap();
        let mut buf = Vec::new();
        while d < end {
            buf.clear();
            write_date(&mut buf, d);
            use chrono::Datelike;
            assert_eq!(
                String::from_utf8_lossy(&buf),
                format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
            );
            d = d + chrono::Days::new(13);
        }
        assert_eq!(hex_of(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
    }

    fn hex_of(b: &[u8]) -> String {
        crate::digest::hex(b)
    }

    #[test]
    fn every_quoted_byte_is_found_at_every_position() {
        for len in 0..20 {
            // Bytes one bit away from the quoted ones, and non-ASCII ones, are not quoted.
            let plain: Vec<u8> = (0..len).map(|i| [b'a', b',' ^ 1, b'"' | 0x80, 0xac, 0x8a][i % 5]).collect();
            assert!(!needs_quotes(&plain), "{plain:?}");
            for at in 0..len {
                for q in [b',', b'"', b'\n', b'\r'] {
                    let mut t = plain.clone();
                    t[at] = q;
                    assert!(needs_quotes(&t), "{t:?}");
                }
            }
        }
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

    proptest::proptest! {
        /// Text cells are quoted exactly where the `csv` crate (the reference writer) quotes
        /// them, with the formula guard inside the quotes.
        #[test]
        fn text_is_quoted_as_the_csv_crate_quotes_it(cells in proptest::collection::vec("[a-z,\"\n\r =+@ ;\u{e9}\u{2c00}-]{0,20}", 1..5)) {
            let t = Table {
                name: "t",
                columns: cells.iter().map(|c| ("c", Values::Text(vec![Some(c.as_str().into())]))).collect(),
            };
            let mut expected = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .quote_style(csv::QuoteStyle::Necessary)
                .from_writer(Vec::new());
            expected.write_record(t.columns.iter().map(|(n, _)| *n)).unwrap();
            let guarded: Vec<String> =
                cells.iter().map(|c| if c.starts_with(FORMULA_START) { format!("'{c}") } else { c.clone() }).collect();
            expected.write_record(&guarded).unwrap();
            let expected = expected.into_inner().unwrap();
            proptest::prop_assert_eq!(String::from_utf8(to_csv(&t)).unwrap(), String::from_utf8(expected).unwrap());
        }
    }
}
