//! Reports: what finance teams (CSV) and BI tools (parquet) read. A report is built once as a
//! [`Table`] of typed columns and written in both formats, so the two can never disagree (the
//! earnings report's fast encoder is held to its table by tests, see [`tables`]).

pub(crate) mod csv_out;
pub(crate) mod exports;
pub(crate) mod manifest;
pub(crate) mod outputs;
pub(crate) mod parquet_out;
pub(crate) mod rejects;
pub(crate) mod tables;
pub(crate) mod writer;

use std::borrow::Cow;

use chrono::NaiveDate;

/// One column of a report, typed the way both writers need it. Text borrows from the data it
/// reports where it can, so that building a report does not copy every string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values<'a> {
    /// Identifiers, names, codes: subject to the CSV formula guard.
    Text(Vec<Option<Cow<'a, str>>>),
    Int(Vec<Option<i64>>),
    /// Exact decimals in units of 10^-`scale` (parquet Decimal(18, scale)). `csv_scales`
    /// gives a per-row number of CSV fraction digits (a currency's minor unit) when it is not
    /// `scale`.
    Decimal {
        values: Vec<Option<i128>>,
        scale: u32,
        csv_scales: Option<Vec<u32>>,
    },
    Date(Vec<Option<NaiveDate>>),
    Bool(Vec<Option<bool>>),
    /// Reason codes: `;`-joined in CSV, a list of strings in parquet.
    List(Vec<Vec<Cow<'a, str>>>),
}

impl<'a> Values<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Text(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Decimal { values, .. } => values.len(),
            Values::Date(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::List(v) => v.len(),
        }
    }

    /// A column of the same type with no rows.
    pub(crate) fn empty_like(&self) -> Values<'a> {
        match self {
            Values::Text(_) => Values::Text(Vec::new()),
            Values::Int(_) => Values::Int(Vec::new()),
            Values::Decimal { scale, csv_scales, .. } => Values::Decimal {
                values: Vec::new(),
                scale: *scale,
                csv_scales: csv_scales.as_ref().map(|_| Vec::new()),
            },
            Values::Date(_) => Values::Date(Vec::new()),
            Values::Bool(_) => Values::Bool(Vec::new()),
            Values::List(_) => Values::List(Vec::new()),
        }
    }
}

/// A report: named columns of equal length, rows already in the spec's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table<'a> {
    pub(crate) name: &'static str,
    pub(crate) columns: Vec<(&'static str, Values<'a>)>,
}

impl<'a> Table<'a> {
    pub(crate) fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }

    /// The same columns with no rows.
    pub(crate) fn empty_like(&self) -> Table<'a> {
        Table { name: self.name, columns: self.columns.iter().map(|(n, v)| (*n, v.empty_like())).collect() }
    }

    /// The same report with only the rows at `rows` (in that order): a partner's export made
    /// the direct way, for tests of the exports.
    #[cfg(test)]
    pub(crate) fn select(&self, rows: &[usize]) -> Table<'a> {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&i| v[i].clone()).collect()
        }
        let columns = self
            .columns
            .iter()
            .map(|(name, values)| {
                let v = match values {
                    Values::Text(v) => Values::Text(pick(v, rows)),
                    Values::Int(v) => Values::Int(pick(v, rows)),
                    Values::Decimal { values, scale, csv_scales } => Values::Decimal {
                        values: pick(values, rows),
                        scale: *scale,
                        csv_scales: csv_scales.as_ref().map(|s| pick(s, rows)),
                    },
                    Values::Date(v) => Values::Date(pick(v, rows)),
                    Values::Bool(v) => Values::Bool(pick(v, rows)),
                    Values::List(v) => Values::List(pick(v, rows)),
                };
                (*name, v)
            })
            .collect();
        Table { name: self.name, columns }
    }

    /// The text cells of the column `name` (`None` for nulls); panics if it is not a text
    /// column of this report (a bug).
    #[cfg(test)]
    pub(crate) fn text_column(&self, name: &str) -> &[Option<Cow<'a, str>>] {
        match self.columns.iter().find(|(n, _)| *n == name) {
            Some((_, Values::Text(v))) => v,
            _ => panic!("{} has no text column {name}", self.name),
        }
    }
}
