//! The rejects report: one row per problem of every rejected row (reports.md "rejects").

use chrono::NaiveDate;

use super::{Table, Values};
use crate::feeds::Reject;

/// The rejects of a run as a report table; `rejects` are already in the spec's order.
pub(crate) fn table(run_date: NaiveDate, rejects: &[Reject]) -> Table<'_> {
    let text =
        |f: &dyn Fn(&Reject) -> &str| Values::Text(rejects.iter().map(|r| Some(f(r).into())).collect());
    Table {
        name: "rejects",
        columns: vec![
            ("run_date", Values::Date(vec![Some(run_date); rejects.len()])),
            ("feed", text(&|r| r.feed.name())),
            ("file", text(&|r| &r.file)),
            ("row", Values::Int(rejects.iter().map(|r| Some(r.row as i64)).collect())),
            ("field", text(&|r| &r.field)),
            ("value", text(&|r| &r.value)),
            ("reason", text(&|r| r.code.as_str())),
        ],
    }
}
