//! Restatements: when a booked group's lines change (a backdated agreement, a revoked
//! competency, a late rate), the difference is booked as an adjustment to the earliest open
//! period, never to the closed period itself. For every booked group, on every run:
//! B + its restatements = L.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::NaiveDate;

use super::{Booked, GroupKey};
use crate::config::{EarningPeriod, EarningType, Program};
use crate::model::money::Usd;
use crate::reports::{Table, Values};
use crate::rules::periods::Period;

/// The reason of an adjustment that restates a booked group.
pub(crate) const RESTATEMENT: &str = "RESTATEMENT";

/// One adjustment of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Adjustment {
    pub(crate) id: String,
    pub(crate) program_id: String,
    pub(crate) partner_id: String,
    pub(crate) earning_type: EarningType,
    /// The period it is booked to (its label).
    pub(crate) booked_period: String,
    pub(crate) reason: String,
    /// The booked group's period, for a restatement (else empty).
    pub(crate) restated_period: String,
    pub(crate) amount: Usd,
    /// Its booked period has closed: it never changes again.
    pub(crate) frozen: bool,
}

impl Adjustment {
    /// The group it restates, for a restatement.
    fn restates(&self) -> Option<GroupKey> {
        (self.reason == RESTATEMENT).then(|| {
            (
                self.program_id.clone(),
                self.partner_id.clone(),
                self.restated_period.clone(),
                self.earning_type,
            )
        })
    }
}

/// The earliest period of `kind` still open on `d`: on the day after a period's last day that
/// period itself (it closes the day after), otherwise the period containing `d`.
pub(crate) fn earliest_open(d: NaiveDate, kind: EarningPeriod) -> Period {
    let before = Period::containing(d.pred_opt().unwrap_or(d), kind);
    if before.is_closed(d) { Period::containing(d, kind) } else { before }
}

/// Whether the period labelled `label` (of `kind`) is closed on `d`.
fn closed(label: &str, kind: EarningPeriod, d: NaiveDate) -> bool {
    let start = match kind {
        EarningPeriod::Month => NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d").ok(),
        EarningPeriod::Quarter => label.split_once("-Q").and_then(|(y, q)| {
            let (y, q) = (y.parse::<i32>().ok()?, q.parse::<u32>().ok()?);
            NaiveDate::from_ymd_opt(y, (q.checked_sub(1)?) * 3 + 1, 1)
        }),
    };
    start.is_some_and(|s| Period::containing(s, kind).is_closed(d))
}

/// This run's adjustments: those of the previous ledger (`previous`), with each restatement
/// of a group of the run's `programs` updated, and a new one wherever a booked group's lines
/// differ from what was booked and restated before. Adjustments of programs the run no longer
/// has are kept as they were.
pub(crate) fn restate(
    booked: &Booked,
    previous: Vec<Adjustment>,
    programs: &[Program],
    d: NaiveDate,
) -> Vec<Adjustment> {
    let kinds: BTreeMap<&str, EarningPeriod> =
        programs.iter().map(|p| (p.id.as_str(), p.earning_period)).collect();
    // Per booked group: its frozen restatements' sum and its open one (at most one).
    let mut frozen: BTreeMap<GroupKey, Usd> = BTreeMap::new();
    let mut open: BTreeMap<GroupKey, Adjustment> = BTreeMap::new();
    let mut out = Vec::new();
    for a in previous {
        match (a.restates(), kinds.contains_key(a.program_id.as_str())) {
            (Some(group), true) if a.frozen => {
                *frozen.entry(group).or_insert(Usd::ZERO) += a.amount;
                out.push(a);
            }
            (Some(group), true) => {
                open.insert(group, a);
            }
            _ => out.push(a),
        }
    }
    for (group, &(b, l)) in &booked.0 {
        let Some(&kind) = kinds.get(group.0.as_str()) else { continue };
        let r = l - b - frozen.get(group).copied().unwrap_or(Usd::ZERO);
        match open.remove(group) {
            // A restatement still open takes the new difference, and freezes with its period;
            // a difference undone before then leaves no adjustment (none is ever zero).
            Some(mut a) if r != Usd::ZERO => {
                a.amount = r;
                a.frozen = closed(&a.booked_period, kind, d);
                out.push(a);
            }
            Some(_) => {}
            None if r != Usd::ZERO => {
                let booked_period = earliest_open(d, kind).label();
                let id = crate::rules::payouts::stable_id(&[
                    &group.0,
                    &group.1,
                    group.3.as_str(),
                    RESTATEMENT,
                    &group.2,
                    &booked_period,
                ]);
                out.push(Adjustment {
                    id,
                    program_id: group.0.clone(),
                    partner_id: group.1.clone(),
                    earning_type: group.3,
                    booked_period,
                    reason: RESTATEMENT.into(),
                    restated_period: group.2.clone(),
                    amount: r,
                    frozen: false,
                });
            }
            None => {}
        }
    }
    out.sort_by(|a, b| {
        (&a.program_id, &a.partner_id, &a.booked_period, &a.reason, &a.restated_period, &a.id).cmp(&(
            &b.program_id,
            &b.partner_id,
            &b.booked_period,
            &b.reason,
            &b.restated_period,
            &b.id,
        ))
    });
    out
}

/// The ledger file's table of `adjustments`.
pub(crate) fn table(adjustments: &[Adjustment]) -> Table<'_> {
    use std::borrow::Cow::Borrowed;
    let text =
        |f: fn(&Adjustment) -> &str| Values::Text(adjustments.iter().map(|a| Some(Borrowed(f(a)))).collect());
    Table {
        name: "ledger_adjustments",
        columns: vec![
            ("adjustment_id", text(|a| &a.id)),
            ("program_id", text(|a| &a.program_id)),
            ("partner_id", text(|a| &a.partner_id)),
            ("earning_type", text(|a| a.earning_type.as_str())),
            ("booked_period", text(|a| &a.booked_period)),
            ("reason", text(|a| &a.reason)),
            ("restated_period", text(|a| &a.restated_period)),
            (
                "amount_usd",
                Values::Decimal {
                    values: adjustments.iter().map(|a| Some(a.amount.units())).collect(),
                    scale: Usd::SCALE,
                    csv_scales: None,
                },
            ),
            ("frozen", Values::Bool(adjustments.iter().map(|a| Some(a.frozen)).collect())),
        ],
    }
}

/// Reads an adjustments file this module wrote.
pub(crate) fn read(bytes: Bytes) -> Result<Vec<Adjustment>, String> {
    let mut out = Vec::new();
    for batch in super::batches(bytes)? {
        let names = [
            "adjustment_id",
            "program_id",
            "partner_id",
            "earning_type",
            "booked_period",
            "reason",
            "restated_period",
        ];
        let [ids, programs, partners, types, booked, reasons, restated] =
            names.map(|n| super::text(&batch, n));
        let (ids, programs, partners, types) = (ids?, programs?, partners?, types?);
        let (booked, reasons, restated) = (booked?, reasons?, restated?);
        let amounts = super::usd(&batch, "amount_usd")?;
        let frozen: arrow::array::BooleanArray = super::column(&batch, "frozen")?;
        for i in 0..batch.num_rows() {
            out.push(Adjustment {
                id: ids.value(i).into(),
                program_id: programs.value(i).into(),
                partner_id: partners.value(i).into(),
                earning_type: super::earning_type(types.value(i), i)?,
                booked_period: booked.value(i).into(),
                reason: reasons.value(i).into(),
                restated_period: restated.value(i).into(),
                amount: Usd::new(amounts.value(i)),
                frozen: frozen.value(i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::d;

    fn program() -> Program {
        let toml = r#"id = "p"
name = "P"
partner_type = "direct_reseller"
start = "2026-07-01"
end = "2027-06-30"
earning_period = "month"
payout_lag_months = 1
minimum_payout_usd = "10.00"
[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work"]
rate = "0.05"
"#;
        crate::config::parse_program("p.toml", toml.as_bytes()).unwrap()
    }

    fn booked(rows: &[(&str, i128, i128)]) -> Booked {
        Booked(
            rows.iter()
                .map(|&(period, b, l)| {
                    (
                        ("p".into(), "P1".into(), period.into(), EarningType::Rebate),
                        (Usd::new(b), Usd::new(l)),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn the_earliest_open_period_is_the_one_still_taking_deliveries() {
        assert_eq!(earliest_open(d("2026-11-01"), EarningPeriod::Month).label(), "2026-10");
        assert_eq!(earliest_open(d("2026-11-02"), EarningPeriod::Month).label(), "2026-11");
        assert_eq!(earliest_open(d("2026-11-15"), EarningPeriod::Month).label(), "2026-11");
        assert_eq!(earliest_open(d("2027-01-01"), EarningPeriod::Quarter).label(), "2026-Q4");
        assert_eq!(earliest_open(d("2027-01-02"), EarningPeriod::Quarter).label(), "2027-Q1");
    }

    #[test]
    fn a_change_to_a_booked_group_is_restated_in_the_open_period_until_it_closes() {
        let programs = [program()];
        // September booked at 100.00; on 2026-11-10 its lines total 80.00.
        let first = restate(&booked(&[("2026-09", 10_000, 8_000)]), Vec::new(), &programs, d("2026-11-10"));
        assert_eq!(first.len(), 1);
        let a = &first[0];
        assert_eq!(
            (a.booked_period.as_str(), a.restated_period.as_str(), a.amount),
            ("2026-11", "2026-09", Usd::new(-2_000))
        );
        assert!(!a.frozen);
        // While November is open the restatement follows the lines: 90.00 now.
        let again =
            restate(&booked(&[("2026-09", 10_000, 9_000)]), first.clone(), &programs, d("2026-11-20"));
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id.as_str(), again[0].amount),
            (a.id.as_str(), Usd::new(-1_000)),
            "the same adjustment"
        );
        // Undone before November closes: no adjustment.
        assert!(
            restate(&booked(&[("2026-09", 10_000, 10_000)]), again.clone(), &programs, d("2026-11-25"))
                .is_empty()
        );
        // November closes with the restatement at -10.00: frozen; a later change is a new one.
        let closing = restate(&booked(&[("2026-09", 10_000, 9_000)]), again, &programs, d("2026-12-02"));
        assert!(closing[0].frozen && closing[0].amount == Usd::new(-1_000));
        let later =
            restate(&booked(&[("2026-09", 10_000, 9_500)]), closing.clone(), &programs, d("2026-12-10"));
        assert_eq!(later.len(), 2);
        let new = later.iter().find(|a| !a.frozen).unwrap();
        assert_eq!((new.booked_period.as_str(), new.amount), ("2026-12", Usd::new(500)));
        // B + restatements = L, for the group.
        assert_eq!(later.iter().fold(Usd::new(10_000), |t, a| t + a.amount), Usd::new(9_500));
    }

    #[test]
    fn a_group_booked_at_zero_is_restated_whole_and_other_programs_are_kept() {
        let gone = Adjustment {
            id: "x".into(),
            program_id: "retired".into(),
            partner_id: "P1".into(),
            earning_type: EarningType::Rebate,
            booked_period: "2026-10".into(),
            reason: RESTATEMENT.into(),
            restated_period: "2026-08".into(),
            amount: Usd::new(-5),
            frozen: false,
        };
        let out =
            restate(&booked(&[("2026-08", 0, 3_000)]), vec![gone.clone()], &[program()], d("2026-11-10"));
        assert_eq!(out.len(), 2);
        assert!(out.contains(&gone), "a program the run no longer has keeps its rows as they were");
        assert!(
            out.iter().any(|a| a.restated_period == "2026-08"
                && a.amount == Usd::new(3_000)
                && a.program_id == "p")
        );
    }

    #[test]
    fn the_adjustments_file_reads_back_as_written() {
        let adjustments =
            restate(&booked(&[("2026-09", 10_000, 8_000)]), Vec::new(), &[program()], d("2026-11-10"));
        let t = table(&adjustments);
        let mut sink = crate::reports::parquet_out::ParquetSink::new(&t, &[], Vec::new()).unwrap();
        sink.write_batch(&crate::reports::parquet_out::record_batch(sink.schema(), &t).unwrap()).unwrap();
        assert_eq!(read(Bytes::from(sink.close().unwrap())).unwrap(), adjustments);
    }
}
