//! The rules' results as report tables, columns exactly as reports.md lists them. Row order is
//! the spec's: the rules sort within a piece, pieces come in partner order and programs by id.
//!
//! A report is never built whole: [`Source`] names the rows of some results (pieces of
//! programs, see [`crate::rules::Plan`]) as (result, item) pairs and builds a [`Table`] for
//! any slice of them, so a report is written a chunk at a time.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};

use super::{Table, Values};
use crate::feeds::cells::{AMOUNT_SCALE, RATE_SCALE};
use crate::rules::ProgramResult;
use crate::rules::earnings::USD_SCALE;
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

fn money<'t, T>(rows: &[T], scale: u32, f: impl Fn(&T) -> i128) -> Values<'t> {
    Values::Decimal { values: rows.iter().map(|r| Some(f(r))).collect(), scale, csv_scales: None }
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
pub type RowRef = (u32, u32);

/// The five reports of the rules' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Eligibility,
    Earnings,
    Unearned,
    Payouts,
    Dashboard,
}

impl Report {
    pub const ALL: [Report; 5] =
        [Report::Eligibility, Report::Earnings, Report::Unearned, Report::Payouts, Report::Dashboard];

    pub fn name(self) -> &'static str {
        match self {
            Report::Eligibility => "eligibility",
            Report::Earnings => "earnings",
            Report::Unearned => "unearned",
            Report::Payouts => "payouts",
            Report::Dashboard => "dashboard",
        }
    }
}

/// One report over the results of a run: its rows, and tables of any slice of them.
pub struct Source<'r, 'a> {
    pub report: Report,
    pub run_date: NaiveDate,
    pub data_as_of: Option<NaiveDate>,
    pub results: &'r [ProgramResult<'a>],
    /// Every accepted partner id, sorted: exports are keyed by position in it.
    pub partners: &'r [&'a str],
}

impl<'r, 'a> Source<'r, 'a> {
    /// The report's items in one program's result.
    fn len_of(&self, r: &ProgramResult) -> usize {
        match self.report {
            Report::Eligibility | Report::Dashboard => r.eligibility.len(),
            Report::Earnings => r.lines.len(),
            Report::Unearned => r.unearned.len(),
            Report::Payouts => r.groups.len(),
        }
    }

    /// The partner of item `i` of a program's result.
    fn partner_of(&self, r: &'r ProgramResult, i: usize) -> &'r str {
        match self.report {
            Report::Eligibility | Report::Dashboard => &r.eligibility[i].partner_id,
            Report::Earnings => r.lines[i].partner_id,
            Report::Unearned => r.unearned[i].partner_id,
            Report::Payouts => &r.groups[i].partner_id,
        }
    }

    pub fn rows(&self) -> usize {
        self.results.iter().map(|r| self.len_of(r)).sum()
    }

    /// The rows in report order, in slices of at most `size`.
    pub fn chunks(&self, size: usize) -> impl Iterator<Item = Vec<RowRef>> + '_ {
        let mut all = self
            .results
            .iter()
            .enumerate()
            .flat_map(move |(p, r)| (0..self.len_of(r)).map(move |i| (p as u32, i as u32)))
            .peekable();
        std::iter::from_fn(move || {
            all.peek()?;
            Some(all.by_ref().take(size).collect())
        })
    }

    /// (program index, partner position in `partners`) of each of `rows`: where a partner's
    /// export is cut from.
    pub fn keys(&self, rows: &[RowRef]) -> crate::error::Result<Vec<(u32, u32)>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut last: Option<(u32, &str, u32)> = None;
        for &(p, i) in rows {
            let r = &self.results[p as usize];
            let partner = self.partner_of(r, i as usize);
            let position = match last {
                Some((lp, lpartner, position)) if lp == p && same(lpartner, partner) => position,
                _ => self.partners.binary_search(&partner).map_err(|_| {
                    crate::error::Error::Internal(format!(
                        "{}: partner {partner} is not accepted",
                        self.report.name()
                    ))
                })? as u32,
            };
            last = Some((p, partner, position));
            out.push((r.index, position));
        }
        Ok(out)
    }

    /// The report's table of `rows`.
    pub fn table(&self, rows: &[RowRef]) -> Table<'r> {
        let (d, results) = (self.run_date, self.results);
        match self.report {
            Report::Eligibility => eligibility(d, results, rows),
            Report::Earnings => earnings(d, results, rows),
            Report::Unearned => unearned(d, results, rows),
            Report::Payouts => payouts(d, results, rows),
            Report::Dashboard => dashboard(d, self.data_as_of, results, rows),
        }
    }
}

fn eligibility<'r>(run_date: NaiveDate, results: &'r [ProgramResult], rows: &[RowRef]) -> Table<'r> {
    let rows: Vec<_> = rows.iter().map(|&(p, i)| &results[p as usize].eligibility[i as usize]).collect();
    Table {
        name: "eligibility",
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

/// The earnings report.
fn earnings<'r>(run_date: NaiveDate, results: &'r [ProgramResult], rows: &[RowRef]) -> Table<'r> {
    #[derive(Clone, Copy)]
    struct Row<'r, 'a> {
        r: &'r ProgramResult<'a>,
        l: &'r crate::rules::earnings::Line<'a>,
        g: Option<&'r crate::rules::payouts::Group>,
        name: &'r str,
        period: &'static str,
        payment_month: Option<&'static str>,
    }
    // Rows come sorted by partner, so a partner's name is looked up once per run of rows, a
    // payout group once per run of its lines; the few period and month labels are made once.
    let mut period_labels: crate::hash::HashMap<crate::rules::periods::Period, &'static str> =
        Default::default();
    let mut month_labels: crate::hash::HashMap<NaiveDate, &'static str> = Default::default();
    let mut last: Option<Row> = None;
    let rows: Vec<Row> = rows
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
            let row = Row { r, l, g, name, period, payment_month };
            last = Some(row);
            row
        })
        .collect();
    Table {
        name: "earnings",
        columns: vec![
            (
                "earning_id",
                text(&rows, |x| {
                    crate::rules::payouts::stable_id(&[
                        &x.r.program.id,
                        &x.l.tx.transaction_id,
                        &x.l.lever.name,
                    ])
                    .into()
                }),
            ),
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |x| b(&x.r.program.id))),
            ("partner_id", text(&rows, |x| b(x.l.partner_id))),
            ("partner_name", text(&rows, |x| b(x.name))),
            ("transaction_id", text(&rows, |x| b(&x.l.tx.transaction_id))),
            ("transaction_type", text(&rows, |x| x.l.tx.transaction_type.as_str().into())),
            (
                "original_transaction_id",
                opt_text(&rows, |x| x.l.tx.original_transaction_id.as_deref().map(b)),
            ),
            ("transaction_date", dates(&rows, |x| Some(x.l.tx.transaction_date))),
            ("earning_period", text(&rows, |x| b(x.period))),
            ("lever", text(&rows, |x| b(&x.l.lever.name))),
            ("earning_type", text(&rows, |x| x.l.lever.earning_type.as_str().into())),
            ("customer_id", text(&rows, |x| b(&x.l.tx.customer_id))),
            ("product_id", text(&rows, |x| b(&x.l.tx.product_id))),
            ("product_family", text(&rows, |x| b(&x.l.tx.product_family))),
            ("quantity", Values::Int(rows.iter().map(|x| Some(x.l.tx.quantity.into())).collect())),
            ("transaction_amount", money(&rows, AMOUNT_SCALE, |x| x.l.tx.amount.into())),
            ("transaction_currency", text(&rows, |x| b(&x.l.tx.currency))),
            ("usd_rate", money(&rows, RATE_SCALE, |x| x.l.usd_rate)),
            ("transaction_amount_usd", money(&rows, USD_SCALE, |x| x.l.amount_usd)),
            ("earning_rate", money(&rows, RATE_SCALE, |x| x.l.rate)),
            (
                "earning_amount",
                Values::Decimal {
                    values: rows
                        .iter()
                        .map(|x| Some(crate::decimal::rescale_round(x.l.earning, x.l.minor, AMOUNT_SCALE)))
                        .collect(),
                    scale: AMOUNT_SCALE,
                    csv_scales: Some(rows.iter().map(|x| x.l.minor).collect()),
                },
            ),
            ("earning_amount_usd", money(&rows, USD_SCALE, |x| x.l.earning_usd)),
            (
                "period_status",
                text(&rows, |x| if x.l.booked.is_closed(run_date) { "final" } else { "estimated" }.into()),
            ),
            ("payout_id", opt_text(&rows, |x| x.g.and_then(|g| g.payout_id.as_deref()).map(b))),
            ("payout_status", opt_text(&rows, |x| x.g.map(|g| g.status.as_str().into()))),
            ("estimated_payment_month", opt_text(&rows, |x| x.payment_month.map(b))),
            ("reason_code", opt_text(&rows, |x| x.l.late.then(|| "PRIOR_PERIOD".into()))),
        ],
    }
}

fn unearned<'r>(run_date: NaiveDate, results: &'r [ProgramResult], rows: &[RowRef]) -> Table<'r> {
    let rows: Vec<_> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            (r.program, &r.unearned[i as usize])
        })
        .collect();
    Table {
        name: "unearned",
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |(p, _)| b(&p.id))),
            ("partner_id", text(&rows, |(_, u)| b(u.partner_id))),
            ("transaction_id", text(&rows, |(_, u)| b(&u.tx.transaction_id))),
            ("transaction_date", dates(&rows, |(_, u)| Some(u.tx.transaction_date))),
            ("lever", text(&rows, |(_, u)| b(&u.lever.name))),
            ("transaction_amount", money(&rows, AMOUNT_SCALE, |(_, u)| u.tx.amount.into())),
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

fn payouts<'r>(run_date: NaiveDate, results: &'r [ProgramResult], rows: &[RowRef]) -> Table<'r> {
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
        name: "payouts",
        columns: vec![
            ("run_date", dates(&rows, |_| Some(run_date))),
            ("program_id", text(&rows, |(p, _, _)| b(&p.id))),
            ("partner_id", text(&rows, |(_, g, _)| b(&g.partner_id))),
            ("partner_name", text(&rows, |(_, _, n)| b(n))),
            ("earning_period", text(&rows, |(_, g, _)| g.period.label().into())),
            ("earning_type", text(&rows, |(_, g, _)| g.earning_type.as_str().into())),
            ("earning_amount_usd", money(&rows, USD_SCALE, |(_, g, _)| g.total_usd)),
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

fn dashboard<'r>(
    run_date: NaiveDate,
    data_as_of: Option<NaiveDate>,
    results: &'r [ProgramResult],
    rows: &[RowRef],
) -> Table<'r> {
    let rows: Vec<_> = rows
        .iter()
        .map(|&(p, i)| {
            let r = &results[p as usize];
            (r, &r.eligibility[i as usize], &r.totals[i as usize])
        })
        .collect();
    Table {
        name: "dashboard",
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
            ("earned_to_date_usd", money(&rows, USD_SCALE, |(_, _, t)| t.earned)),
            ("rebate_to_date_usd", money(&rows, USD_SCALE, |(_, _, t)| t.rebate)),
            ("coop_to_date_usd", money(&rows, USD_SCALE, |(_, _, t)| t.coop)),
            ("scheduled_usd", money(&rows, USD_SCALE, |(_, _, t)| t.scheduled)),
            ("on_hold_usd", money(&rows, USD_SCALE, |(_, _, t)| t.on_hold)),
            ("carried_forward_usd", money(&rows, USD_SCALE, |(_, _, t)| t.carried_forward)),
            ("accruing_usd", money(&rows, USD_SCALE, |(_, _, t)| t.accruing)),
            ("coop_available_usd", money(&rows, USD_SCALE, |(_, _, t)| t.coop_available)),
            (
                "last_transaction_date",
                dates(&rows, |(r, e, _)| r.last_transaction.get(e.partner_id.as_str()).copied()),
            ),
            ("data_as_of", dates(&rows, |_| data_as_of)),
        ],
    }
}
