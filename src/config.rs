//! Program files (`pipelines/*.toml`, rules.md "Programs"): parsing and validation that lists
//! every problem of every file at once, so an operator fixes them in one go.
//!
//! The TOML is read as a generic table and checked field by field (rather than through serde's
//! first-error-wins derive), which is what lets every problem be reported.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use toml::{Table, Value};

use crate::decimal;
use crate::error::{Error, Result};
use crate::model::PartnerType;
use crate::model::dates::parse_date;
use crate::model::money::{Rate, Threshold};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EarningPeriod {
    Month,
    Quarter,
}

/// Ordered as their names sort (`coop` before `rebate`), as the reports are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EarningType {
    Coop,
    Rebate,
}

impl EarningType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EarningType::Rebate => "rebate",
            EarningType::Coop => "coop",
        }
    }
}

/// The longest payout lag a program may set: ten years keeps every payment date a real date
/// of a plausible plan (a lag of 2^31 - 1 would pay in the year 262142).
pub(crate) const MAX_PAYOUT_LAG_MONTHS: u32 = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tier {
    /// Kept exactly as written (the spec limits the digits of rates only).
    pub(crate) min_period_revenue_usd: Threshold,
    pub(crate) rate: Rate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lever {
    pub(crate) name: String,
    pub earning_type: EarningType,
    pub(crate) product_families: Vec<String>,
    pub(crate) rate: Rate,
    /// Strictly ascending by minimum.
    pub(crate) tiers: Vec<Tier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub id: String,
    pub(crate) name: String,
    pub(crate) partner_type: PartnerType,
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
    pub(crate) earning_period: EarningPeriod,
    pub(crate) payout_lag_months: u32,
    /// Kept exactly as written.
    pub minimum_payout_usd: Threshold,
    pub(crate) levers: Vec<Lever>,
    /// The project's own optional fields (`[x]`), kept as written.
    pub(crate) x: Table,
    /// The file it came from (relative to the programs folder) and the SHA-256 of its bytes.
    pub(crate) file: String,
    pub(crate) sha256: String,
}

/// Reads and validates every `*.toml` of the programs folder, sorted by file name.
pub fn load_programs(store: &Store) -> Result<Vec<Program>> {
    let listed = store.list("")?;
    let listed = listed.iter().filter(|e| e.path.ends_with(".toml") && !e.path.contains('/'));
    if let Some(bad) = listed.clone().find(|e| e.problem.is_some()) {
        let problem = bad.problem.as_deref().unwrap_or_default();
        return Err(Error::config(format!("{}: {problem}", store.display(&bad.path))));
    }
    let mut files: Vec<String> = listed.map(|e| e.path.clone()).collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::config(format!("no program file (*.toml) in {}", store.display(""))));
    }
    let mut problems = Vec::new();
    let mut programs = Vec::new();
    let mut ids: Vec<(String, &str)> = Vec::new();
    for file in &files {
        let bytes = store.get(file).map_err(|e| Error::config(e.report()))?;
        match parse_program(file, &bytes) {
            Ok(p) => {
                ids.push((p.id.clone(), file));
                programs.push(p);
            }
            Err(mut ps) => {
                // The id still counts for the duplicate check when the file has other problems.
                let id = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|t| t.parse::<Table>().ok())
                    .and_then(|t| t.get("id").and_then(Value::as_str).map(str::to_string));
                if let Some(id) = id {
                    ids.push((id, file));
                }
                problems.append(&mut ps);
            }
        }
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (id, file) in &ids {
        if let Some(first) = seen.insert(id, file) {
            problems.push(format!("{file}: program id '{id}' is already used by {first}"));
        }
    }
    if problems.is_empty() { Ok(programs) } else { Err(Error::Config(problems)) }
}

/// Collects the problems of one file, each prefixed with the file and the field.
struct Checker<'a> {
    file: &'a str,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn problem(&mut self, field: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{}: {field}: {msg}", self.file));
    }

    fn unknown_fields(&mut self, table: &Table, allowed: &[&str], at: &str) {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    &format!("{at}{key}"),
                    format!(
                        "unknown field (expected one of: {}; the project's own fields go in an [x] table)",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn get<'t>(&mut self, table: &'t Table, key: &str, at: &str) -> Option<&'t Value> {
        let v = table.get(key);
        if v.is_none() {
            self.problem(&format!("{at}{key}"), "missing field");
        }
        v
    }

    fn string(&mut self, table: &Table, key: &str, at: &str) -> Option<String> {
        match self.get(table, key, at)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(&format!("{at}{key}"), format!("expected a string, found {}", other.type_str()));
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, table: &Table, key: &str, at: &str, values: &[(&str, T)]) -> Option<T> {
        let s = self.string(table, key, at)?;
        let found = values.iter().find(|(n, _)| *n == s).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
            self.problem(&format!("{at}{key}"), format!("'{s}' is not one of {}", names.join(", ")));
        }
        found
    }

    fn date(&mut self, table: &Table, key: &str) -> Option<NaiveDate> {
        let parsed = match self.get(table, key, "")? {
            Value::String(s) => parse_date(s),
            Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                dt.date.and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()))
            }
            _ => None,
        };
        if parsed.is_none() {
            self.problem(key, format!("expected a date YYYY-MM-DD, found {}", table[key]));
        }
        parsed
    }

    /// A decimal written as a TOML string, with at most `scale` fraction digits.
    fn decimal(&mut self, table: &Table, key: &str, at: &str, scale: u32) -> Option<i128> {
        let field = format!("{at}{key}");
        let parsed = match self.get(table, key, at)? {
            Value::String(s) => decimal::parse(s, scale).ok(),
            Value::Integer(i) => {
                self.problem(&field, format!("write amounts and rates as strings: {key} = \"{i}\""));
                return None;
            }
            Value::Float(f) => {
                self.problem(&field, format!("write amounts and rates as strings: {key} = \"{f}\""));
                return None;
            }
            other => {
                self.problem(&field, format!("expected a decimal string, found {}", other.type_str()));
                return None;
            }
        };
        if parsed.is_none() {
            self.problem(
                &field,
                format!("'{}' is not a decimal with at most {scale} fraction digits", table[key]),
            );
        }
        parsed
    }

    fn rate(&mut self, table: &Table, key: &str, at: &str) -> Option<Rate> {
        let r = Rate::new(self.decimal(table, key, at, Rate::SCALE)?);
        if !(Rate::ZERO..=Rate::ONE).contains(&r) {
            self.problem(&format!("{at}{key}"), "a rate must be between 0 and 1");
            return None;
        }
        Some(r)
    }
}

const PROGRAM_FIELDS: [&str; 10] = [
    "id",
    "name",
    "partner_type",
    "start",
    "end",
    "earning_period",
    "payout_lag_months",
    "minimum_payout_usd",
    "levers",
    "x",
];
const LEVER_FIELDS: [&str; 6] = ["name", "earning_type", "product_families", "rate", "tiers", "x"];
const TIER_FIELDS: [&str; 3] = ["min_period_revenue_usd", "rate", "x"];

/// Parses one program file; `Err` lists all of its problems.
pub fn parse_program(file: &str, bytes: &[u8]) -> Result<Program, Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|_| vec![format!("{file}: not UTF-8 text")])?;
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![format!("{file}: not valid TOML: {}", e.to_string().trim())])?;
    let mut c = Checker { file, problems: Vec::new() };
    c.unknown_fields(&table, &PROGRAM_FIELDS, "");
    let id = c.string(&table, "id", "");
    let name = c.string(&table, "name", "");
    let partner_type = c.choice(&table, "partner_type", "", &PartnerType::VALUES);
    let start = c.date(&table, "start");
    let end = c.date(&table, "end");
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        c.problem("end", format!("{e} is before start {s}"));
    }
    let earning_period = c.choice(
        &table,
        "earning_period",
        "",
        &[("month", EarningPeriod::Month), ("quarter", EarningPeriod::Quarter)],
    );
    let payout_lag_months = match c.get(&table, "payout_lag_months", "") {
        Some(Value::Integer(i)) if (0..=i64::from(MAX_PAYOUT_LAG_MONTHS)).contains(i) => Some(*i as u32),
        Some(v) => {
            c.problem(
                "payout_lag_months",
                format!("expected a whole number of months from 0 to {MAX_PAYOUT_LAG_MONTHS}, found {v}"),
            );
            None
        }
        None => None,
    };
    let minimum_payout_usd =
        c.decimal(&table, "minimum_payout_usd", "", Threshold::SCALE).map(Threshold::new);
    if minimum_payout_usd.is_some_and(|m| m < Threshold::ZERO) {
        c.problem("minimum_payout_usd", "must not be negative");
    }
    let x = match table.get("x") {
        None => Table::new(),
        Some(Value::Table(t)) => t.clone(),
        Some(_) => {
            c.problem("x", "expected a table ([x])");
            Table::new()
        }
    };
    let levers = parse_levers(&mut c, &table);
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let missing = || vec![format!("{file}: internal: a checked field is missing")];
    Ok(Program {
        id: id.ok_or_else(missing)?,
        name: name.ok_or_else(missing)?,
        partner_type: partner_type.ok_or_else(missing)?,
        start: start.ok_or_else(missing)?,
        end: end.ok_or_else(missing)?,
        earning_period: earning_period.ok_or_else(missing)?,
        payout_lag_months: payout_lag_months.ok_or_else(missing)?,
        minimum_payout_usd: minimum_payout_usd.ok_or_else(missing)?,
        levers,
        x,
        file: file.to_string(),
        sha256: crate::digest::sha256_hex(bytes),
    })
}

fn parse_levers(c: &mut Checker, table: &Table) -> Vec<Lever> {
    let Some(value) = c.get(table, "levers", "") else { return Vec::new() };
    let Value::Array(items) = value else {
        c.problem("levers", "expected [[levers]] tables");
        return Vec::new();
    };
    if items.is_empty() {
        c.problem("levers", "a program needs at least one lever");
    }
    let mut levers = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("levers[{i}].");
        let Value::Table(t) = item else {
            c.problem(&format!("levers[{i}]"), "expected a table");
            continue;
        };
        c.unknown_fields(t, &LEVER_FIELDS, &at);
        let name = c.string(t, "name", &at);
        if let Some(n) = &name
            && !names.insert(n.clone())
        {
            c.problem(&format!("{at}name"), format!("two levers are named '{n}'"));
        }
        let earning_type =
            c.choice(t, "earning_type", &at, &[("rebate", EarningType::Rebate), ("coop", EarningType::Coop)]);
        let mut product_families = Vec::new();
        match c.get(t, "product_families", &at) {
            Some(Value::Array(fs)) => {
                if fs.is_empty() {
                    c.problem(&format!("{at}product_families"), "a lever needs at least one product family");
                }
                for f in fs {
                    match f {
                        Value::String(s) => {
                            let lever = name.clone().unwrap_or_else(|| format!("levers[{i}]"));
                            if let Some(other) = families.insert(s.clone(), lever.clone()) {
                                c.problem(
                                    &format!("{at}product_families"),
                                    format!("'{s}' is also in lever '{other}'"),
                                );
                            }
                            product_families.push(s.clone());
                        }
                        other => c.problem(
                            &format!("{at}product_families"),
                            format!("expected strings, found {other}"),
                        ),
                    }
                }
            }
            Some(other) => c.problem(
                &format!("{at}product_families"),
                format!("expected a list of strings, found {}", other.type_str()),
            ),
            None => {}
        }
        let rate = c.rate(t, "rate", &at);
        let tiers = parse_tiers(c, t, &at);
        if let (Some(name), Some(earning_type), Some(rate)) = (name, earning_type, rate) {
            levers.push(Lever { name, earning_type, product_families, rate, tiers });
        }
    }
    levers
}

/// A number written as a TOML integer or float, read as a threshold (for order checks only).
fn loose_decimal(v: Option<&Value>) -> Option<i128> {
    match v? {
        Value::Integer(i) => Some(i128::from(*i) * decimal::pow10(Threshold::SCALE)),
        Value::Float(f) => decimal::parse(&format!("{f}"), Threshold::SCALE).ok(),
        _ => None,
    }
}

fn parse_tiers(c: &mut Checker, lever: &Table, at: &str) -> Vec<Tier> {
    let Some(value) = lever.get("tiers") else { return Vec::new() };
    let Value::Array(items) = value else {
        c.problem(&format!("{at}tiers"), "expected [[levers.tiers]] tables");
        return Vec::new();
    };
    let mut tiers: Vec<Tier> = Vec::new();
    let mut last_min: Option<i128> = None;
    for (j, item) in items.iter().enumerate() {
        let tat = format!("{at}tiers[{j}].");
        let Value::Table(t) = item else {
            c.problem(&format!("{at}tiers[{j}]"), "expected a table");
            continue;
        };
        c.unknown_fields(t, &TIER_FIELDS, &tat);
        let min = c.decimal(t, "min_period_revenue_usd", &tat, Threshold::SCALE);
        if min.is_some_and(|m| m < 0) {
            c.problem(&format!("{tat}min_period_revenue_usd"), "must not be negative");
        }
        if let (Some(min), Some(prev)) =
            (min.or_else(|| loose_decimal(t.get("min_period_revenue_usd"))), last_min)
            && min <= prev
        {
            c.problem(&format!("{tat}min_period_revenue_usd"), "tier minimums must be strictly ascending");
        }
        // A minimum refused only for being a TOML number still takes part in the order check.
        last_min = min.or_else(|| loose_decimal(t.get("min_period_revenue_usd"))).or(last_min);
        let rate = c.rate(t, "rate", &tat);
        if let (Some(min), Some(rate)) = (min, rate) {
            tiers.push(Tier { min_period_revenue_usd: Threshold::new(min), rate });
        }
    }
    tiers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::money::{Fixed, Usd};

    const GOOD: &str = r#"
id = "ir-fy27"
name = "Indirect reseller FY27"
partner_type = "indirect_reseller"
start = 2026-07-01
end = "2027-06-30"
earning_period = "quarter"
payout_lag_months = 2
minimum_payout_usd = "100.00"

[[levers]]
name = "core"
earning_type = "rebate"
product_families = ["modern_work", "dynamics"]
rate = "0.04"

[[levers]]
name = "azure"
earning_type = "coop"
product_families = ["azure"]
rate = "0.02"
  [[levers.tiers]]
  min_period_revenue_usd = "50000"
  rate = "0.03"

[x]
owner = "channel-finance"
"#;

    #[test]
    fn a_good_program_parses_exactly() {
        let p = parse_program("ir.toml", GOOD.as_bytes()).unwrap();
        assert_eq!(p.id, "ir-fy27");
        assert_eq!(p.start, NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(p.earning_period, EarningPeriod::Quarter);
        assert_eq!(p.minimum_payout_usd, Fixed(100 * decimal::pow10(Threshold::SCALE)));
        assert_eq!(p.levers[0].rate, Fixed(4_000_000));
        assert_eq!(
            p.levers[1].tiers,
            vec![Tier {
                min_period_revenue_usd: Fixed(50_000 * decimal::pow10(Threshold::SCALE)),
                rate: Fixed(3_000_000)
            }]
        );
        assert!(Usd::new(5_000_000).reaches(p.levers[1].tiers[0].min_period_revenue_usd));
        assert!(!Usd::new(4_999_999).reaches(p.levers[1].tiers[0].min_period_revenue_usd));
        assert_eq!(p.x.get("owner").and_then(Value::as_str), Some("channel-finance"));
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let bad = r#"
id = "x"
name = "x"
partner_type = "reseller"
start = "2026-07-01"
end = "2026-06-30"
earning_period = "week"
payout_lag_months = -1
minimum_payout_usd = 100.0
colour = "red"

[[levers]]
name = "a"
earning_type = "cash"
product_families = ["azure"]
rate = "1.5"
  [[levers.tiers]]
  min_period_revenue_usd = "500"
  rate = "0.123456789"
  [[levers.tiers]]
  min_period_revenue_usd = "400"
  rate = "0.1"

[[levers]]
name = "a"
earning_type = "coop"
product_families = ["azure"]
rate = 0.02
"#;
        let problems = parse_program("bad.toml", bad.as_bytes()).unwrap_err();
        let expect = [
            "partner_type: 'reseller'",
            "end: 2026-06-30 is before start",
            "earning_period: 'week'",
            "payout_lag_months",
            "minimum_payout_usd: write amounts and rates as strings: minimum_payout_usd = \"100\"",
            "colour: unknown field",
            "levers[0].earning_type: 'cash'",
            "levers[0].rate: a rate must be between 0 and 1",
            "levers[0].tiers[0].rate: '\"0.123456789\"' is not a decimal",
            "levers[0].tiers[1].min_period_revenue_usd: tier minimums must be strictly ascending",
            "levers[1].name: two levers are named 'a'",
            "levers[1].product_families: 'azure' is also in lever 'a'",
            "levers[1].rate: write amounts and rates as strings",
        ];
        for e in expect {
            assert!(problems.iter().any(|p| p.contains(e)), "missing {e:?} in {problems:#?}");
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        assert!(problems.iter().all(|p| p.starts_with("bad.toml: ")));
    }

    #[test]
    fn missing_fields_and_no_levers() {
        let problems = parse_program("m.toml", b"id = \"m\"\nlevers = []\n").unwrap_err();
        for f in [
            "name",
            "partner_type",
            "start",
            "end",
            "earning_period",
            "payout_lag_months",
            "minimum_payout_usd",
        ] {
            assert!(
                problems.iter().any(|p| p == &format!("m.toml: {f}: missing field")),
                "{f}: {problems:#?}"
            );
        }
        assert!(problems.iter().any(|p| p.contains("at least one lever")));
        let syntax = parse_program("s.toml", b"id = ").unwrap_err();
        assert!(syntax[0].starts_with("s.toml: not valid TOML"), "{syntax:?}");
    }

    #[test]
    fn numeric_tier_minimums_still_take_part_in_the_order_check_and_x_tables_are_allowed() {
        let text = GOOD.replace(
            "  [[levers.tiers]]\n  min_period_revenue_usd = \"50000\"\n  rate = \"0.03\"\n",
            "  [[levers.tiers]]\n  min_period_revenue_usd = 100\n  rate = \"0.03\"\n  [[levers.tiers]]\n  min_period_revenue_usd = \"100\"\n  rate = \"0.04\"\n  [levers.tiers.x]\n  note = \"ok\"\n",
        );
        let problems = parse_program("t.toml", text.as_bytes()).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("tiers[0].min_period_revenue_usd: write amounts")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p
                    .contains("tiers[1].min_period_revenue_usd: tier minimums must be strictly ascending")),
            "{problems:#?}"
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
        let with_x = GOOD.replace("rate = \"0.04\"\n", "rate = \"0.04\"\n[levers.x]\nowner = \"a\"\n");
        assert!(parse_program("x.toml", with_x.as_bytes()).is_ok());
        let fine = GOOD
            .replace("\"100.00\"", "\"100.123456789\"")
            .replace("payout_lag_months = 2", "payout_lag_months = 120");
        let p = parse_program("f.toml", fine.as_bytes()).unwrap();
        assert_eq!(
            (p.minimum_payout_usd, p.payout_lag_months),
            (Fixed(100_123_456_789 * decimal::pow10(9)), 120)
        );
        // Past ten years a payment date is not a plan but a typo (2147483647 would pay in 262142).
        for lag in ["121", "2147483647"] {
            let long = GOOD.replace("payout_lag_months = 2", &format!("payout_lag_months = {lag}"));
            let problems = parse_program("l.toml", long.as_bytes()).unwrap_err();
            assert!(problems.iter().any(|p| p.contains("from 0 to 120")), "{lag}: {problems:#?}");
        }
    }

    #[test]
    fn a_duplicate_id_is_reported_even_when_a_file_has_other_problems() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        store.put("a.toml", GOOD.as_bytes()).unwrap();
        store.put("b.toml", GOOD.replace("rate = \"0.04\"", "rate = \"2\"").as_bytes()).unwrap();
        let Err(Error::Config(problems)) = load_programs(&store) else { panic!("expected config error") };
        assert!(problems.iter().any(|p| p.contains("b.toml: levers[0].rate")), "{problems:#?}");
        assert!(
            problems.contains(&"b.toml: program id 'ir-fy27' is already used by a.toml".to_string()),
            "{problems:#?}"
        );
    }

    #[test]
    fn duplicate_program_ids_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        store.put("a.toml", GOOD.as_bytes()).unwrap();
        store.put("b.toml", GOOD.as_bytes()).unwrap();
        let Err(Error::Config(problems)) = load_programs(&store) else { panic!("expected config error") };
        assert_eq!(problems, ["b.toml: program id 'ir-fy27' is already used by a.toml"]);
    }
}
