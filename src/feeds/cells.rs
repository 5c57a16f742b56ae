//! Cell rules of feeds.md: what a well-formed date, decimal, integer, boolean, enum, ISO
//! currency or country code looks like, and the reason code of each problem. A [`RowCheck`]
//! walks one record's cells and collects every problem of the row.

use chrono::NaiveDate;

use crate::model::dates::{parse_date, parse_month};

use crate::decimal::{self, DecimalError};

/// Reason codes of the rejects report, in the order of feeds.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    MissingValue,
    BadDate,
    BadDecimal,
    BadInteger,
    BadBool,
    BadEnum,
    UnknownRole,
    BadCurrency,
    BadCountry,
    OutOfRange,
    BadDateRange,
    FutureDate,
    UnexpectedValue,
    BadRecord,
    UnknownPartner,
    NoFxRate,
    DuplicateRow,
    ConflictingDuplicate,
    UnknownOriginal,
    RefundMismatch,
    RefundExceedsSale,
}

impl Code {
    pub const ALL: [Code; 21] = [
        Code::MissingValue,
        Code::BadDate,
        Code::BadDecimal,
        Code::BadInteger,
        Code::BadBool,
        Code::BadEnum,
        Code::UnknownRole,
        Code::BadCurrency,
        Code::BadCountry,
        Code::OutOfRange,
        Code::BadDateRange,
        Code::FutureDate,
        Code::UnexpectedValue,
        Code::BadRecord,
        Code::UnknownPartner,
        Code::NoFxRate,
        Code::DuplicateRow,
        Code::ConflictingDuplicate,
        Code::UnknownOriginal,
        Code::RefundMismatch,
        Code::RefundExceedsSale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingValue => "MISSING_VALUE",
            Code::BadDate => "BAD_DATE",
            Code::BadDecimal => "BAD_DECIMAL",
            Code::BadInteger => "BAD_INTEGER",
            Code::BadBool => "BAD_BOOL",
            Code::BadEnum => "BAD_ENUM",
            Code::UnknownRole => "UNKNOWN_ROLE",
            Code::BadCurrency => "BAD_CURRENCY",
            Code::BadCountry => "BAD_COUNTRY",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::BadDateRange => "BAD_DATE_RANGE",
            Code::FutureDate => "FUTURE_DATE",
            Code::UnexpectedValue => "UNEXPECTED_VALUE",
            Code::BadRecord => "BAD_RECORD",
            Code::UnknownPartner => "UNKNOWN_PARTNER",
            Code::NoFxRate => "NO_FX_RATE",
            Code::DuplicateRow => "DUPLICATE_ROW",
            Code::ConflictingDuplicate => "CONFLICTING_DUPLICATE",
            Code::UnknownOriginal => "UNKNOWN_ORIGINAL",
            Code::RefundMismatch => "REFUND_MISMATCH",
            Code::RefundExceedsSale => "REFUND_EXCEEDS_SALE",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of one row: the field, the offending value and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) field: String,
    pub(crate) value: String,
    pub(crate) code: Code,
}

/// `text` without leading and trailing white space, as [`str::trim`] gives it. Most cells
/// start and end with a printable ASCII byte, which no white space is: those are returned
/// as they are without decoding characters from both ends (tens of millions of cells a run).
pub(crate) fn trim(text: &str) -> &str {
    let printable = |b: &u8| (b'!'..=b'~').contains(b);
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if printable(first) && printable(last) => text,
        _ => text.trim(),
    }
}

/// Codes the `iso_currency` table marks superseded that ISO 4217 still lists as active: VES
/// (928) stays in use beside VED (926), which was added in 2021 and did not replace it.
const STILL_ACTIVE: [&str; 1] = ["VES"];

/// An active ISO 4217 currency with a minor unit: its number of minor digits.
pub(crate) fn currency_minor_digits(code: &str) -> Option<u32> {
    // Every row names one: the answers for all 26^3 codes are worked out once (the ISO table
    // is a long match on the code).
    static DIGITS: std::sync::OnceLock<Vec<Option<u8>>> = std::sync::OnceLock::new();
    let index = |c: &[u8]| {
        c.iter().try_fold(0usize, |i, &b| b.is_ascii_uppercase().then(|| i * 26 + usize::from(b - b'A')))
    };
    let code = code.as_bytes();
    let i = if code.len() == 3 { index(code)? } else { return None };
    let digits = DIGITS.get_or_init(|| {
        let mut all = vec![None; 26 * 26 * 26];
        for (i, d) in all.iter_mut().enumerate() {
            let code = [i / 676, i / 26 % 26, i % 26].map(|k| b'A' + k as u8);
            *d = std::str::from_utf8(&code).ok().and_then(look_up_minor_digits).map(|d| d as u8);
        }
        all
    });
    digits[i].map(u32::from)
}

fn look_up_minor_digits(code: &str) -> Option<u32> {
    let c = iso_currency::Currency::from_code(code)?;
    if c.code() != code || (c.is_superseded().is_some() && !STILL_ACTIVE.contains(&code)) {
        return None;
    }
    c.exponent().map(u32::from)
}

/// An officially assigned ISO 3166-1 alpha-2 code.
pub(crate) fn is_country(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && isocountry::CountryCode::for_alpha2(code).is_ok()
}

/// Largest quantity (2^31 − 1).
pub(crate) const MAX_QUANTITY: i64 = i32::MAX as i64;
/// Amounts have at most 14 integer digits.
pub(crate) const AMOUNT_LIMIT: i128 = decimal::pow10(14 + crate::model::money::Amount::SCALE);

/// Walks the cells of one record (in the feed's column order) and collects its problems.
pub(crate) struct RowCheck<'a> {
    columns: &'static [&'static str],
    cells: &'a [&'a str],
    pub(crate) problems: Vec<Problem>,
}

impl<'a> RowCheck<'a> {
    pub(crate) fn new(columns: &'static [&'static str], cells: &'a [&'a str]) -> Self {
        RowCheck { columns, cells, problems: Vec::new() }
    }

    /// Records a problem with the raw cell as its value.
    pub(crate) fn fail(&mut self, col: usize, code: Code) {
        self.problems.push(Problem {
            field: self.columns[col].to_string(),
            value: self.cells[col].to_string(),
            code,
        });
    }

    /// Records a problem with a value of our choosing (an id as compared).
    pub(crate) fn fail_with(&mut self, col: usize, value: &str, code: Code) {
        self.problems.push(Problem { field: self.columns[col].to_string(), value: value.into(), code });
    }

    /// Whether the cell is empty (nothing but white space).
    pub(crate) fn is_empty(&self, col: usize) -> bool {
        trim(self.cells[col]).is_empty()
    }

    /// A required cell, or `MISSING_VALUE`.
    pub(crate) fn required(&mut self, col: usize) -> Option<&'a str> {
        if self.is_empty(col) {
            self.fail(col, Code::MissingValue);
            None
        } else {
            Some(self.cells[col])
        }
    }

    /// A required identifier, trimmed.
    pub(crate) fn id(&mut self, col: usize) -> Option<String> {
        self.id_str(col).map(str::to_string)
    }

    /// A required identifier, trimmed, borrowed from the cell.
    pub(crate) fn id_str(&mut self, col: usize) -> Option<&'a str> {
        self.required(col).map(trim)
    }

    /// An optional identifier, trimmed, borrowed from the cell; `None` when empty.
    pub(crate) fn opt_id_str(&self, col: usize) -> Option<&'a str> {
        (!self.is_empty(col)).then(|| trim(self.cells[col]))
    }

    /// Required free text, kept exactly as delivered.
    pub(crate) fn text(&mut self, col: usize) -> Option<String> {
        self.required(col).map(str::to_string)
    }

    pub(crate) fn date(&mut self, col: usize) -> Option<NaiveDate> {
        let text = self.required(col)?;
        let d = parse_date(text);
        if d.is_none() {
            self.fail(col, Code::BadDate);
        }
        d
    }

    /// An optional date: `Some(None)` when empty, `None` when malformed (already recorded).
    pub(crate) fn opt_date(&mut self, col: usize) -> Option<Option<NaiveDate>> {
        if self.is_empty(col) {
            return Some(None);
        }
        self.date(col).map(Some)
    }

    pub(crate) fn month(&mut self, col: usize) -> Option<NaiveDate> {
        let text = self.required(col)?;
        let m = parse_month(text);
        if m.is_none() {
            self.fail(col, Code::BadDate);
        }
        m
    }

    /// A decimal in units of 10^-`scale`.
    pub(crate) fn decimal(&mut self, col: usize, scale: u32) -> Option<i128> {
        let text = self.required(col)?;
        match decimal::parse(text, scale) {
            Ok(v) => Some(v),
            Err(DecimalError::Syntax) => {
                self.fail(col, Code::BadDecimal);
                None
            }
            Err(DecimalError::TooLarge) => {
                self.fail(col, Code::OutOfRange);
                None
            }
        }
    }

    pub(crate) fn integer(&mut self, col: usize) -> Option<i64> {
        let text = self.required(col)?;
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            self.fail(col, Code::BadInteger);
            return None;
        }
        match text.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.fail(col, Code::OutOfRange);
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, col: usize) -> Option<bool> {
        match self.required(col)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.fail(col, Code::BadBool);
                None
            }
        }
    }

    /// One of `values` (written exactly), or `code` (`BAD_ENUM`, or `UNKNOWN_ROLE` for roles).
    pub(crate) fn one_of<T: Copy>(&mut self, col: usize, values: &[(&str, T)], code: Code) -> Option<T> {
        let text = self.required(col)?;
        let found = values.iter().find(|(name, _)| *name == text).map(|(_, v)| *v);
        if found.is_none() {
            self.fail(col, code);
        }
        found
    }

    pub(crate) fn currency(&mut self, col: usize) -> Option<String> {
        self.currency_str(col).map(str::to_string)
    }

    /// A currency code, borrowed from the cell.
    pub(crate) fn currency_str(&mut self, col: usize) -> Option<&'a str> {
        let text = self.required(col)?;
        if currency_minor_digits(text).is_some() {
            Some(text)
        } else {
            self.fail(col, Code::BadCurrency);
            None
        }
    }

    pub(crate) fn country(&mut self, col: usize) -> Option<String> {
        let text = self.required(col)?;
        if is_country(text) {
            Some(text.to_string())
        } else {
            self.fail(col, Code::BadCountry);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn trim_is_str_trim(text in "[ \t\r\n\u{a0}\u{2003}\u{3000}a-z!~\u{e9}\u{1c}\u{85}]{0,8}") {
            proptest::prop_assert_eq!(trim(&text), text.trim());
        }
    }

    #[test]
    fn currencies_are_active_iso_codes_with_minor_units() {
        assert_eq!(currency_minor_digits("USD"), Some(2));
        assert_eq!(currency_minor_digits("JPY"), Some(0));
        assert_eq!(currency_minor_digits("KWD"), Some(3));
        assert_eq!(currency_minor_digits("VES"), Some(2), "still active beside VED");
        assert_eq!(currency_minor_digits("VED"), Some(2));
        for bad in ["usd", "EURO", "ABC", "XAU", "XXX", "HRK", ""] {
            assert_eq!(currency_minor_digits(bad), None, "{bad}");
        }
    }

    #[test]
    fn countries_are_assigned_alpha2_codes() {
        assert!(is_country("US") && is_country("GB") && is_country("JP"));
        assert!(!is_country("us") && !is_country("XX") && !is_country("USA") && !is_country(""));
    }

    fn check(cells: &[&str]) -> Vec<String> {
        static COLS: [&str; 3] = ["a", "b", "c"];
        let mut r = RowCheck::new(&COLS, cells);
        r.integer(0);
        r.decimal(1, 4);
        r.boolean(2);
        r.problems.iter().map(|p| format!("{}={}:{}", p.field, p.value, p.code)).collect()
    }

    #[test]
    fn each_cell_gets_one_code() {
        assert!(check(&["3", "-1.5", "true"]).is_empty());
        assert_eq!(
            check(&["1.5", "1e3", "yes"]),
            ["a=1.5:BAD_INTEGER", "b=1e3:BAD_DECIMAL", "c=yes:BAD_BOOL"]
        );
        assert_eq!(check(&["  ", "", "TRUE"]), ["a=  :MISSING_VALUE", "b=:MISSING_VALUE", "c=TRUE:BAD_BOOL"]);
        assert_eq!(
            check(&["99999999999999999999", "1.23456", "false"]),
            ["a=99999999999999999999:OUT_OF_RANGE", "b=1.23456:BAD_DECIMAL"]
        );
    }
}
