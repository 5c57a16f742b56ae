//! Helpers shared by the unit tests of several modules (compiled for `cargo test` only). The
//! end-to-end tests have their own, in `tests/it/common.rs`.

use chrono::NaiveDate;

/// A date written `YYYY-MM-DD` in a test; panics naming the text if it is not one.
pub(crate) fn d(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|e| panic!("bad test date {s}: {e}"))
}
