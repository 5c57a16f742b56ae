//! CSV as finance teams open it (reports.md "CSV conventions"): UTF-8 without BOM, a header,
//! quotes only where needed, `\n` after every record, empty cells for nulls, fixed-scale
//! decimals, and a leading `'` on *text* cells a spreadsheet would run as a formula.

use super::{Table, Values};
use crate::decimal;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The text cell as written: guarded with a leading `'` when it would be read as a formula.
pub fn guard(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_START) { format!("'{text}").into() } else { text.into() }
}

/// Renders one cell of `values` at `row`.
fn cell(values: &Values, row: usize) -> String {
    match values {
        Values::Text(v) => v[row].as_deref().map(|t| guard(t).into_owned()).unwrap_or_default(),
        Values::Int(v) => v[row].map(|i| i.to_string()).unwrap_or_default(),
        Values::Decimal { values, scale, csv_scales } => values[row]
            .map(|units| {
                let digits = csv_scales.as_ref().map_or(*scale, |s| s[row]);
                decimal::format(decimal::rescale_round(units, *scale, digits), digits)
            })
            .unwrap_or_default(),
        Values::Date(v) => v[row].map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        Values::Bool(v) => v[row].map(|b| b.to_string()).unwrap_or_default(),
        Values::List(v) => guard(&v[row].join(";")).into_owned(),
    }
}

/// The CSV bytes of `table`.
pub fn to_csv(table: &Table) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let header: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    w.write_record(&header).expect("writing to memory");
    for row in 0..table.rows() {
        w.write_record(table.columns.iter().map(|(_, v)| cell(v, row))).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

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
