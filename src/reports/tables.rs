//! The rules' results as report tables, columns exactly as reports.md lists them. Row order is
//! the spec's: the rules sort within a piece, pieces come in partner order and programs by id.
//!
//! A report is never built whole: [`Source`] names the rows of some results (pieces of
//! programs, see [`crate::rules::Plan`]) as (result, item) pairs and builds a [`Table`] for
//! any slice of them, so a report is written a chunk at a time.
//!
//! The earnings report, most of a run's rows, is encoded without the table
//! ([`Source::encode`]): its CSV records and Arrow arrays are made straight from the lines.
//! Its table stays the reference: every rules test checks the two give the same bytes.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::Schema;

use chrono::{Datelike, NaiveDate};

use super::writer::{self, Chunk, Encoded, Key};
use super::{Table, Values};
use crate::error::Result;
use crate::model::money::{Amount, Fixed};
use crate::rules::ProgramResult;
use crate::rules::payouts::estimated_payment_month;
use crate::text::Text;

/// A text column; rows are small `Copy` views, so that cells can borrow from the results.
fn text<'t, T: Copy>(rows: &[T], f: impl Fn(T) -> Cow<'t, str>) -> Values<'t> {
    Values::Text(rows.iter().map(|&r| Some(f(r))).collect())
}

fn opt_text<'t, T: Copy>(rows: &[T], f: impl Fn(T) -> Option<Cow<'t, str>>) -> Values<'t> {
    Values::Text(rows.iter().map(|&r| f(r)).collect())
}

/// A borrowed cell.
fn b(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// A money column: its scale is its type's.
fn money<'t, T, const S: u32>(rows: &[T], f: impl Fn(&T) -> Fixed<S>) -> Values<'t> {
    Values::Decimal { values: rows.iter().map(|r| Some(f(r).units())).collect(), scale: S, csv_scales: None }
}

fn dates<'t, T>(rows: &[T], f: impl Fn(&T) -> Option<NaiveDate>) -> Values<'t> {
    Values::Date(rows.iter().map(f).collect())
}

fn yyyy_mm(d: NaiveDate) -> String {
    format!("{}-{:02}", d.year(), d.month())
}

/// Equal ids, by address first: a partner's rows usually share its accepted row's `&str`.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// A row of a report: (index of the program result, index of the item in it).
pub(crate) type RowRef = (u32, u32);

/// Who finds a partner's rows of a report in its export folder, as `<report>.csv`
/// (reports.md "Per-partner exports and who may read them").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    /// Not exported.
    No,
    /// Every user of the partner.
    AllUsers,
    /// The partner's incentive admins only.
    AdminsOnly,
}

/// A report of the rules' results, declared in one place: its name, who gets it in the
/// partners' exports, where its rows lie in a program's result, and its columns. Adding a
/// report is one more such constant, listed in [`REPORTS`]; the outputs
/// ([`super::outputs`]) write every listed report as CSV and parquet and export it as declared.
pub(crate) struct Report {
    pub(crate) name: &'static str,
    pub(crate) export: Export,
    /// The rows a program's result holds.
    rows: fn(&ProgramResult) -> usize,
    /// The partner (the earner) of row `i` of a program's result: exports are cut by it.
    partner: for<'r, 'a> fn(&'r ProgramResult<'a>, usize) -> &'r str,
    /// The table of some rows: the reference for both formats.
    table: for<'r, 'a> fn(&Source<'r, 'a>, &[RowRef]) -> Table<'r>,
    /// An encoder straight from the rows to CSV and Arrow, without the table, for a report
    /// that holds most of a run's rows (tests hold it to `table`, byte for byte).
    fast: Option<Fast>,
}

/// See [`Report::fast`].
type Fast = fn(&Source, &[RowRef], &[Key], &Arc<Schema>) -> Result<Encoded>;

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Report({})", self.name)
    }
}

/// The reports of the rules' results, in the order a run writes them.
pub(crate) static REPORTS: [&Report; 5] = [&ELIGIBILITY, &EARNINGS, &UNEARNED, &PAYOUTS, &DASHBOARD];

pub(crate) const ELIGIBILITY: Report = Report {
    name: "eligibility",
    export: Export::No,
    rows: |r| r.eligibility.len(),
    partner: |r, i| &r.eligibility[i].partner_id,
    table: eligibility,
    fast: None,
};

pub(crate) const EARNINGS: Report = Report {
    name: "earnings",
    export: Export::AllUsers,
    rows: |r| r.lines.len(),
    partner: |r, i| r.lines[i].partner_id,
    table: earnings,
    fast: Some(earnings_encoded),
};

pub(crate) const UNEARNED: Report = Report {
    name: "unearned",
    export: Export::AllUsers,
    rows: |r| r.unearned.len(),
    partner: |r, i| r.unearned[i].partner_id,
    table: unearned,
    fast: None,
};

pub(crate) const PAYOUTS: Report = Report {
    name: "payouts",
    export: Export::AdminsOnly,
    rows: |r| r.groups.len(),
    partner: |r, i| &r.groups[i].partner_id,
    table: payouts,
    fast: None,
};

pub(crate) const DASHBOARD: Report = Report {
    name: "dashboard",
    export: Export::AllUsers,
    rows: |r| r.eligibility.len(),
    partner: |r, i| &r.eligibility[i].partner_id,
    table: dashboard,
    fast: None,
};

/// One report over the results of a run: its rows, and tables of any slice of them.
pub(crate) struct Source<'r, 'a> {
    pub(crate) report: &'static Report,
    pub(crate) run_date: NaiveDate,
    pub(crate) data_as_of: Option<NaiveDate>,
    pub(crate) results: &'r [ProgramResult<'a>],
    /// Every accepted partner id, sorted: exports are keyed by position in it.
    pub(crate) partners: &'r [&'a str],
}

impl<'r, 'a> Source<'r, 'a> {
    /// The rows in report order, in slices of at most `size`.
    pub(crate) fn chunks(&self, size: usize) -> impl Iterator<Item = Vec<RowRef>> + '_ {
        let mut all = self
            .results
            .iter()
            .enumerate()
            .flat_map(move |(p, r)| (0..(self.report.rows)(r)).map(move |i| (p as u32, i as u32)))
            .peekable();
        std::iter::from_fn(move || {
            all.peek()?;
            Some(all.by_ref().take(size).collect())
        })
    }

    /// (program index, partner position in `partners`) of each of `rows`: where a partner's
    /// export is cut from.
    pub(crate) fn keys(&self, rows: &[RowRef]) -> Result<Vec<Key>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut last: Option<(u32, &str, u32)> = None;
        for &(p, i) in rows {
            let r = &self.results[p as usize];
            let partner = (self.report.partner)(r, i as usize);
            let position = match last {
                Some((lp, lpartner, position)) if lp == p && same(lpartner, partner) => position,
                _ => self.partners.binary_search(&partner).map_err(|_| {
                    crate::error::Error::internal(format!(
                        "{}: partner {partner} is not accepted",
                        self.report.name
                    ))
                })? as u32,
            };
            last = Some((p, partner, position));
            out.push((r.index, position));
        }
        Ok(out)
    }

    /// The report's chunk of `rows`, encoded under `schema` ([`writer::ReportWriter::schema`])
    /// with each row's export key in `keys` (or none).
    pub(crate) fn encode(&self, rows: &[RowRef], keys: Vec<Key>, schema: &Arc<Schema>) -> Result<Encoded> {
        match self.report.fast {
            Some(fast) => fast(self, rows, &keys, schema),
            None => writer::encode(Chunk { table: self.table(rows), keys }, schema),
        }
    }

    /// The report's table of `rows`.
    pub(crate) fn table(&self, rows: &[RowRef]) -> Table<'r> {
        (self.report.table)(self, rows)
    }
}

fn eligibility<'r>(s: &Source<'r, '_>, rows: &[RowRef]) -> Table<'r> {
    let (run_date, results) = (s.run_date, s.results);
    let rows: Vec<_> = rows.iter().map(|&(p, i)| &results[p as usize].eligibility[i as usize]).collect();
    Table {
        name: s.report.name,
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |r| b(&r.program_id))),
            ("partner_id", text(&rows, |r| b(&r.partner_id))),
            ("partner_name", text(&rows, |r| b(&r.partner_name))),
            ("partner_type", text(&rows, |r| r.partner_type.as_str().into())),
            ("eligible", Values::Bool(rows.iter().map(|r| Some(r.eligible())).collect())),
            (
                "reasons",
                Values::List(
                    rows.iter().map(|r| r.reasons.iter().map(|c| c.as_str().into()).collect()).collect(),
                ),
            ),
            ("eligible_since", dates(&rows, |r| r.eligible_since)),
            ("invited_on", dates(&rows, |r| r.invited_on)),
            ("active_reseller", Values::Bool(rows.iter().map(|r| Some(r.active_reseller)).collect())),
        ],
    }
}

/// A row of the earnings report: a line and what its cells look up.
#[derive(Clone, Copy)]
struct EarningsRow<'r, 'a> {
    /// The earning id's hex digits.
    id: [u8; 20],
    r: &'r ProgramResult<'a>,
    l: &'r crate::rules::earnings::Line<'a>,
    g: Option<&'r crate::rules::payouts::Group>,
    name: &'r str,
    period: &'static str,
    payment_month: Option<&'static str>,
}

impl<'r> EarningsRow<'r, '_> {
    fn earning_id(&self) -> [u8; 20] {
        crate::rules::payouts::stable_id_digits(&[
            &self.r.program.id,
            &self.l.tx.transaction_id,
            &self.l.lever.name,
        ])
    }

    fn period_status(&self, run_date: NaiveDate) -> &'static str {
        if self.l.booked.is_closed(run_date) { "final" } else { "estimated" }
    }

    /// The earning at the parquet column's scale; the CSV writes it to the currency's minor
    /// digits.
    fn earning_amount(&self) -> Amount {
        Amount::new(crate::decimal::rescale_round(self.l.earning, self.l.minor, Amount::SCALE))
    }

    fn payout_id(&self) -> Option<&'r str> {
        self.g.and_then(|g| g.payout_id.as_deref())
    }

    fn payout_status(&self) -> Option<&'static str> {
        self.g.map(|g| g.status.as_str())
    }

    fn reason_code(&self) -> Option<&'static str> {
        self.l.late.then_some("PRIOR_PERIOD")
    }
}

/// The earnings rows at `rows`, with what their cells look up and their earning ids.
fn earnings_rows<'r, 'a>(results: &'r [ProgramResult<'a>], rows: &[RowRef]) -> Vec<EarningsRow<'r, 'a>> {
    // Rows come sorted by partner, so a partner's name is looked up once per run of rows, a
    // payout group once per run of its lines; the few period and month labels are made once.
    let mut period_labels: crate::hash::HashMap<crate::rules::periods::Period, &'static str> =
        Default::default();
    let mut month_labels: crate::hash::HashMap<NaiveDate, &'static str> = Default::default();
    let mut last: Option<EarningsRow> = None;
    let mut out: Vec<EarningsRow> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            let l = &r.lines[i as usize];
            let same_partner = last.filter(|x| std::ptr::eq(x.r, r) && same(x.l.partner_id, l.partner_id));
            let name = match same_partner {
                Some(x) => x.name,
                None => r
                    .eligibility
                    .binary_search_by(|e| e.partner_id.as_str().cmp(l.partner_id))
                    .map(|i| r.eligibility[i].partner_name.as_str())
                    .unwrap_or_default(),
            };
            let g = match same_partner {
                Some(x) if (x.l.booked, x.l.lever.earning_type) == (l.booked, l.lever.earning_type) => x.g,
                _ => r.group_of(l),
            };
            let period = match last {
                Some(x) if x.l.booked == l.booked => x.period,
                _ => *period_labels.entry(l.booked).or_insert_with(|| Text::new(&l.booked.label()).as_str()),
            };
            let payment_month = match last {
                Some(x) if x.g.map(std::ptr::from_ref) == g.map(std::ptr::from_ref) => x.payment_month,
                _ => g
                    .and_then(|g| estimated_payment_month(r.program, g))
                    .map(|d| *month_labels.entry(d).or_insert_with(|| Text::new(&yyyy_mm(d)).as_str())),
            };
            let row = EarningsRow { id: [0; 20], r, l, g, name, period, payment_month };
            last = Some(row);
            row
        })
        .collect();
    // A line's transaction id is a string no other line shares, read through the year's handle
    // table: two cache misses, which the hashing loop is too long to overlap between lines.
    crate::text::warm(out.iter().map(|x| x.l.tx.transaction_id));
    for x in &mut out {
        x.id = x.earning_id();
    }
    out
}

/// Declares the earnings report's columns once, in order, each with its kind and how a row
/// gives its value (an expression over the row `$x` and the run date `$d`), and makes from
/// that one list both the reference table ([`earnings`]) and the fast encoder
/// ([`earnings_encoded`]): its CSV record and its Arrow arrays. The kinds:
///
/// - `id`: 20 hex digits, written as they are (no quotes or formula guard needed);
/// - `date`, `text`, `opt_text`, `int`: a date, a string, an optional string, an integer;
/// - `money`: a [`Fixed`] amount, at its type's scale in both formats;
/// - `minor`: an [`Amount`] and the currency's minor digits, which the CSV is written to.
macro_rules! earnings_columns {
    (|$x:ident, $d:ident| { $($name:literal: $kind:ident($get:expr),)* }) => {
        /// The earnings report (the reference for [`earnings_encoded`]).
        fn earnings<'r>(s: &Source<'r, '_>, rows: &[RowRef]) -> Table<'r> {
            let rows = earnings_rows(s.results, rows);
            let $d = s.run_date;
            Table { name: s.report.name, columns: vec![$(($name, earnings_columns!(@table $kind, rows, $x, $get))),*] }
        }

        /// The earnings report's chunk of `rows`, encoded straight from the lines: the CSV
        /// records and Arrow arrays of [`earnings`]'s table (tests hold them equal, byte for
        /// byte), without the table. The report has more lines than the run has transactions,
        /// and a table of 28 columns of cells built and read back for each costs more than
        /// encoding the line itself.
        fn earnings_encoded(s: &Source, rows: &[RowRef], keys: &[Key], schema: &Arc<Schema>) -> Result<Encoded> {
            use crate::reports::parquet_out::columns as c;
            let rows = earnings_rows(s.results, rows);
            let $d = s.run_date;
            let record = |i: usize, buf: &mut Vec<u8>| {
                let $x = &rows[i];
                // Every cell and its comma; the last comma becomes the line's end.
                $(earnings_columns!(@csv $kind, buf, $get); buf.push(b',');)*
                buf.pop();
                buf.push(b'\n');
            };
            let arrays = vec![$(earnings_columns!(@arrow $kind, rows, $x, $get, $name)),*];
            let batch = crate::reports::parquet_out::batch(schema, "earnings", arrays)?;
            // 320 bytes a line, more than an earnings line usually takes: the buffer is not
            // grown (and copied) while a chunk is formatted.
            Ok(Encoded::new(rows.len(), keys, 320, record, batch))
        }
    };
    (@table id, $rows:ident, $x:ident, $get:expr) => {
        Values::Text($rows.iter().map(|$x| Some(Cow::Owned(String::from_utf8($get.to_vec()).expect("hex digits")))).collect())
    };
    // A date may be the run's, the same on every row.
    (@table date, $rows:ident, $x:ident, $get:expr) => {
        Values::Date($rows.iter().map(|#[allow(unused_variables)] $x| Some($get)).collect())
    };
    (@table text, $rows:ident, $x:ident, $get:expr) => { Values::Text($rows.iter().map(|$x| Some(b($get))).collect()) };
    (@table opt_text, $rows:ident, $x:ident, $get:expr) => { Values::Text($rows.iter().map(|$x| $get.map(b)).collect()) };
    (@table int, $rows:ident, $x:ident, $get:expr) => { Values::Int($rows.iter().map(|$x| Some($get)).collect()) };
    (@table money, $rows:ident, $x:ident, $get:expr) => { money(&$rows, |$x| $get) };
    (@table minor, $rows:ident, $x:ident, $get:expr) => {
        Values::Decimal {
            values: $rows.iter().map(|$x| Some($get.0.units())).collect(),
            scale: Amount::SCALE,
            csv_scales: Some($rows.iter().map(|$x| $get.1).collect()),
        }
    };
    (@csv id, $buf:ident, $get:expr) => { $buf.extend_from_slice($get) };
    (@csv date, $buf:ident, $get:expr) => { crate::model::dates::write_date($buf, $get) };
    (@csv text, $buf:ident, $get:expr) => { crate::reports::csv_out::push_text($buf, $get) };
    (@csv opt_text, $buf:ident, $get:expr) => {
        if let Some(t) = $get {
            crate::reports::csv_out::push_text($buf, t);
        }
    };
    (@csv int, $buf:ident, $get:expr) => { crate::decimal::write($buf, i128::from($get), 0) };
    (@csv money, $buf:ident, $get:expr) => { csv_money($buf, $get) };
    (@csv minor, $buf:ident, $get:expr) => {{
        let (amount, minor): (Amount, u32) = $get;
        let units = crate::decimal::rescale_round(amount.units(), Amount::SCALE, minor);
        crate::decimal::write($buf, units, minor)
    }};
    (@arrow id, $rows:ident, $x:ident, $get:expr, $name:literal) => {
        c::strings($rows.iter().map(|$x| std::str::from_utf8($get).expect("hex digits")))
    };
    (@arrow date, $rows:ident, $x:ident, $get:expr, $name:literal) => {
        c::dates($rows.iter().map(|#[allow(unused_variables)] $x| $get))
    };
    (@arrow text, $rows:ident, $x:ident, $get:expr, $name:literal) => {
        c::strings($rows.iter().map(|$x| {
            let t: &str = $get;
            t
        }))
    };
    (@arrow opt_text, $rows:ident, $x:ident, $get:expr, $name:literal) => { c::opt_strings($rows.iter().map(|$x| $get)) };
    (@arrow int, $rows:ident, $x:ident, $get:expr, $name:literal) => { c::ints($rows.iter().map(|$x| $get)) };
    (@arrow money, $rows:ident, $x:ident, $get:expr, $name:literal) => {
        money_array(&$rows, concat!("earnings.", $name), |$x| $get)?
    };
    (@arrow minor, $rows:ident, $x:ident, $get:expr, $name:literal) => {
        c::decimals(concat!("earnings.", $name), Amount::SCALE, $rows.iter().map(|$x| $get.0.units()))?
    };
}

earnings_columns!(|x, d| {
    "earning_id": id(&x.id),
    "run_date": date(d),
    "program_id": text(&x.r.program.id),
    "partner_id": text(x.l.partner_id),
    "partner_name": text(x.name),
    "transaction_id": text(&x.l.tx.transaction_id),
    "transaction_type": text(x.l.tx.transaction_type.as_str()),
    "original_transaction_id": opt_text(x.l.tx.original_transaction_id.as_deref()),
    "transaction_date": date(x.l.tx.transaction_date),
    "earning_period": text(x.period),
    "lever": text(&x.l.lever.name),
    "earning_type": text(x.l.lever.earning_type.as_str()),
    "customer_id": text(&x.l.tx.customer_id),
    "product_id": text(&x.l.tx.product_id),
    "product_family": text(&x.l.tx.product_family),
    "quantity": int(i64::from(x.l.tx.quantity)),
    "transaction_amount": money(x.l.tx.amount()),
    "transaction_currency": text(&x.l.tx.currency),
    "usd_rate": money(x.l.usd_rate),
    "transaction_amount_usd": money(x.l.amount_usd),
    "earning_rate": money(x.l.rate),
    "earning_amount": minor((x.earning_amount(), x.l.minor)),
    "earning_amount_usd": money(x.l.earning_usd),
    "period_status": text(x.period_status(d)),
    "payout_id": opt_text(x.payout_id()),
    "payout_status": opt_text(x.payout_status()),
    "estimated_payment_month": opt_text(x.payment_month),
    "reason_code": opt_text(x.reason_code()),
});

/// A money cell of the CSV, at its type's scale.
fn csv_money<const S: u32>(buf: &mut Vec<u8>, value: Fixed<S>) {
    crate::decimal::write(buf, value.units(), S);
}

/// A money column's Arrow array, at its type's scale (checked to fit Decimal(18, S)).
fn money_array<const S: u32>(
    rows: &[EarningsRow],
    column: &str,
    f: impl Fn(&EarningsRow) -> Fixed<S>,
) -> Result<arrow::array::ArrayRef> {
    crate::reports::parquet_out::columns::decimals(column, S, rows.iter().map(|x| f(x).units()))
}

fn unearned<'r>(s: &Source<'r, '_>, rows: &[RowRef]) -> Table<'r> {
    let (run_date, results) = (s.run_date, s.results);
    let rows: Vec<_> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            (r.program, &r.unearned[i as usize])
        })
        .collect();
    Table {
        name: s.report.name,
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |(p, _)| b(&p.id))),
            ("partner_id", text(&rows, |(_, u)| b(u.partner_id))),
            ("transaction_id", text(&rows, |(_, u)| b(&u.tx.transaction_id))),
            ("transaction_date", dates(&rows, |(_, u)| Some(u.tx.transaction_date))),
            ("lever", text(&rows, |(_, u)| b(&u.lever.name))),
            ("transaction_amount", money(&rows, |(_, u)| u.tx.amount())),
            ("transaction_currency", text(&rows, |(_, u)| b(&u.tx.currency))),
            (
                "reasons",
                Values::List(
                    rows.iter().map(|(_, u)| u.reasons.iter().map(|c| c.as_str().into()).collect()).collect(),
                ),
            ),
        ],
    }
}

fn payouts<'r>(s: &Source<'r, '_>, rows: &[RowRef]) -> Table<'r> {
    let (run_date, results) = (s.run_date, s.results);
    let rows: Vec<_> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            let g = &r.groups[i as usize];
            let name = r
                .eligibility
                .binary_search_by(|e| e.partner_id.cmp(&g.partner_id))
                .map(|i| r.eligibility[i].partner_name.as_str())
                .unwrap_or_default();
            (r.program, g, name)
        })
        .collect();
    Table {
        name: s.report.name,
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |(p, _, _)| b(&p.id))),
            ("partner_id", text(&rows, |(_, g, _)| b(&g.partner_id))),
            ("partner_name", text(&rows, |(_, _, n)| b(n))),
            ("earning_period", text(&rows, |(_, g, _)| g.period.label().into())),
            ("earning_type", text(&rows, |(_, g, _)| g.earning_type.as_str().into())),
            ("earning_amount_usd", money(&rows, |(_, g, _)| g.total_usd)),
            ("status", text(&rows, |(_, g, _)| g.status.as_str().into())),
            (
                "hold_reasons",
                Values::List(
                    rows.iter()
                        .map(|(_, g, _)| g.hold_reasons.iter().map(|h| h.as_str().into()).collect())
                        .collect(),
                ),
            ),
            ("payout_id", opt_text(&rows, |(_, g, _)| g.payout_id.as_deref().map(b))),
            ("payment_date", dates(&rows, |(_, g, _)| g.payment_date)),
        ],
    }
}

fn dashboard<'r>(s: &Source<'r, '_>, rows: &[RowRef]) -> Table<'r> {
    let (run_date, data_as_of, results) = (s.run_date, s.data_as_of, s.results);
    let rows: Vec<_> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            (r, &r.eligibility[i as usize], &r.totals[i as usize])
        })
        .collect();
    Table {
        name: s.report.name,
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |(r, _, _)| b(&r.program.id))),
            ("partner_id", text(&rows, |(_, e, _)| b(&e.partner_id))),
            ("partner_name", text(&rows, |(_, e, _)| b(&e.partner_name))),
            ("eligible", Values::Bool(rows.iter().map(|(_, e, _)| Some(e.eligible())).collect())),
            (
                "reasons",
                Values::List(
                    rows.iter()
                        .map(|(_, e, _)| e.reasons.iter().map(|c| c.as_str().into()).collect())
                        .collect(),
                ),
            ),
            ("earned_to_date_usd", money(&rows, |(_, _, t)| t.earned)),
            ("rebate_to_date_usd", money(&rows, |(_, _, t)| t.rebate)),
            ("coop_to_date_usd", money(&rows, |(_, _, t)| t.coop)),
            ("scheduled_usd", money(&rows, |(_, _, t)| t.scheduled)),
            ("on_hold_usd", money(&rows, |(_, _, t)| t.on_hold)),
            ("carried_forward_usd", money(&rows, |(_, _, t)| t.carried_forward)),
            ("accruing_usd", money(&rows, |(_, _, t)| t.accruing)),
            ("coop_available_usd", money(&rows, |(_, _, t)| t.coop_available)),
            (
                "last_transaction_date",
                dates(&rows, |(r, e, _)| r.last_transaction.get(e.partner_id.as_str()).copied()),
            ),
            ("data_as_of", dates(&rows, |_| data_as_of)),
        ],
    }
}

/// Checks that [`earnings_encoded`] gives what the earnings table gives, chunked several ways:
/// the same CSV bytes cut at the same keys, the same Arrow arrays, the same parquet bytes.
#[cfg(test)]
pub(crate) fn assert_earnings_encoded_as_table(run_date: NaiveDate, results: &[ProgramResult]) {
    use crate::reports::parquet_out::ParquetSink;
    let mut partners: Vec<&str> = results.iter().flat_map(|r| r.lines.iter().map(|l| l.partner_id)).collect();
    partners.sort_unstable();
    partners.dedup();
    let source = Source { report: &EARNINGS, run_date, data_as_of: None, results, partners: &partners };
    let shape = source.table(&[]);
    for size in [1, 3, 2048] {
        let mut direct = ParquetSink::new(&shape, &[], Vec::new()).expect("sink");
        let mut reference = ParquetSink::new(&shape, &[], Vec::new()).expect("sink");
        let schema = direct.schema().clone();
        for rows in source.chunks(size) {
            let keys = source.keys(&rows).expect("keys");
            let fast = source.encode(&rows, keys.clone(), &schema).expect("encoded");
            let table = writer::encode(Chunk { table: source.table(&rows), keys }, &schema).expect("encoded");
            assert_eq!(fast, table, "chunks of {size}");
            direct.write_batch(fast.batch()).expect("parquet");
            reference.write_batch(table.batch()).expect("parquet");
        }
        assert_eq!(direct.close().expect("parquet"), reference.close().expect("parquet"), "parquet bytes");
    }
}
