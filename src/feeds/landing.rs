//! The landing zone's layout: which delivery files exist, which are ignored (a name that is not
//! `<YYYY-MM-DD>[-<anything>].<csv|csv.gz|parquet>`), and which files a run date reads
//! (snapshot feeds: the newest delivery on or before the date; event feeds: all of them).

use chrono::NaiveDate;

use super::Feed;
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Format {
    Csv,
    CsvGz,
    Parquet,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::CsvGz => "csv.gz",
            Format::Parquet => "parquet",
        }
    }
}

/// One delivery file of one feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryFile {
    pub(crate) feed: Feed,
    /// Path relative to the landing zone, e.g. `transactions/2026-09-01.csv`.
    pub(crate) path: String,
    pub(crate) date: NaiveDate,
    /// What stands between the date and the extension, e.g. `-b` (empty for none).
    pub(crate) suffix: String,
    pub(crate) format: Format,
    pub(crate) size: u64,
    /// Why the file cannot be read, found when listing (a link to nothing, a loop of links, a
    /// name that is not UTF-8): reading it fails with this reason, and `--keep-going` skips it.
    pub(crate) problem: Option<String>,
}

impl DeliveryFile {
    /// The order of feeds.md: delivery date, then suffix (empty first, byte-wise), then extension.
    fn order_key(&self) -> (NaiveDate, &[u8], &'static str) {
        (self.date, self.suffix.as_bytes(), self.format.extension())
    }
}

/// A file in the landing zone that no run reads, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ignored {
    pub(crate) path: String,
    pub(crate) reason: String,
}

/// Everything found in a landing zone.
#[derive(Debug, Default)]
pub struct Landing {
    /// Delivery files of every feed, each feed's files in delivery order.
    pub(crate) files: Vec<DeliveryFile>,
    pub(crate) ignored: Vec<Ignored>,
}

/// Parses a file name of a feed folder: `<YYYY-MM-DD>[-<anything>].<csv|csv.gz|parquet>`.
pub(crate) fn parse_file_name(name: &str) -> Result<(NaiveDate, String, Format), String> {
    let (stem, format) = if let Some(s) = name.strip_suffix(".csv.gz") {
        (s, Format::CsvGz)
    } else if let Some(s) = name.strip_suffix(".csv") {
        (s, Format::Csv)
    } else if let Some(s) = name.strip_suffix(".parquet") {
        (s, Format::Parquet)
    } else {
        return Err("not a .csv, .csv.gz or .parquet file".into());
    };
    let (date_text, suffix) = match stem.get(..10) {
        Some(d) => (d, &stem[10..]),
        None => return Err("name does not start with a delivery date YYYY-MM-DD".into()),
    };
    if !suffix.is_empty() && !suffix.starts_with('-') {
        return Err("the delivery date must be followed by '-' or the extension".into());
    }
    let date = crate::model::dates::parse_date(date_text)
        .ok_or_else(|| format!("'{date_text}' is not a calendar date YYYY-MM-DD"))?;
    Ok((date, suffix.to_string(), format))
}

impl Landing {
    /// Lists the landing zone.
    pub fn scan(store: &Store) -> Result<Landing> {
        let mut landing = Landing::default();
        for entry in store.list("")? {
            let mut parts = entry.path.splitn(2, '/');
            let folder = parts.next().unwrap_or_default();
            let rest = parts.next();
            // A file no run reads is listed with why, and with what is wrong with it, if anything.
            let ignore = |landing: &mut Landing, reason: String| {
                let reason = match &entry.problem {
                    Some(problem) => format!("{reason}; it also cannot be read: {problem}"),
                    None => reason,
                };
                landing.ignored.push(Ignored { path: entry.path.clone(), reason });
            };
            let (Some(feed), Some(name)) = (Feed::from_name(folder), rest) else {
                ignore(&mut landing, "not in a feed folder".into());
                continue;
            };
            if name.contains('/') {
                ignore(&mut landing, "in a sub-folder of a feed".into());
                continue;
            }
            match parse_file_name(name) {
                Ok((date, suffix, format)) => landing.files.push(DeliveryFile {
                    feed,
                    path: entry.path.clone(),
                    date,
                    suffix,
                    format,
                    size: entry.size,
                    problem: entry.problem.clone(),
                }),
                Err(reason) => ignore(&mut landing, reason),
            }
        }
        landing.files.sort_by(|a, b| a.feed.cmp(&b.feed).then_with(|| a.order_key().cmp(&b.order_key())));
        Ok(landing)
    }

    /// The newest delivery date of any feed.
    pub(crate) fn newest_date(&self) -> Option<NaiveDate> {
        self.files.iter().map(|f| f.date).max()
    }

    /// The files a run for `run_date` reads from `feed`, in delivery order.
    pub(crate) fn select(&self, feed: Feed, run_date: NaiveDate) -> Vec<&DeliveryFile> {
        let on_or_before = self.files.iter().filter(|f| f.feed == feed && f.date <= run_date);
        if feed.is_snapshot() {
            let newest = on_or_before.clone().map(|f| f.date).max();
            on_or_before.filter(|f| Some(f.date) == newest).collect()
        } else {
            on_or_before.collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::d;

    #[test]
    fn file_names_follow_the_pattern() {
        assert_eq!(parse_file_name("2026-09-01.csv"), Ok((d("2026-09-01"), String::new(), Format::Csv)));
        assert_eq!(parse_file_name("2026-09-01-b.csv.gz"), Ok((d("2026-09-01"), "-b".into(), Format::CsvGz)));
        assert!(parse_file_name("2026-02-30.csv").is_err());
        assert!(parse_file_name("2026-09-01.txt").is_err());
        assert!(parse_file_name("2026-09-01b.csv").is_err());
        assert!(parse_file_name("latest.csv").is_err());
    }

    fn landing_with(names: &[&str]) -> Landing {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        for n in names {
            store.put(n, b"x").unwrap();
        }
        Landing::scan(&store).unwrap()
    }

    #[test]
    fn files_sort_by_date_then_suffix_then_extension() {
        let l = landing_with(&[
            "transactions/2026-09-01-b.csv",
            "transactions/2026-09-01.parquet",
            "transactions/2026-09-01.csv",
            "transactions/2026-08-31-z.csv",
            "transactions/notes.txt",
            "README.md",
        ]);
        let paths: Vec<&str> = l.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "transactions/2026-08-31-z.csv",
                "transactions/2026-09-01.csv",
                "transactions/2026-09-01.parquet",
                "transactions/2026-09-01-b.csv"
            ]
        );
        let ignored: Vec<&str> = l.ignored.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(ignored, ["README.md", "transactions/notes.txt"]);
    }

    #[test]
    fn snapshot_uses_newest_delivery_on_or_before_the_run_date() {
        let l = landing_with(&[
            "partners/2026-07-01.csv",
            "partners/2026-08-01.csv",
            "partners/2026-08-01-b.csv",
            "partners/2026-09-01.csv",
            "transactions/2026-07-02.csv",
            "transactions/2026-08-15.csv",
            "transactions/2026-09-02.csv",
        ]);
        let p =
            |feed, date| -> Vec<String> { l.select(feed, d(date)).iter().map(|f| f.path.clone()).collect() };
        assert_eq!(p(Feed::Partners, "2026-08-31"), ["partners/2026-08-01.csv", "partners/2026-08-01-b.csv"]);
        assert_eq!(p(Feed::Partners, "2026-09-01"), ["partners/2026-09-01.csv"]);
        assert!(p(Feed::Partners, "2026-06-30").is_empty());
        assert_eq!(
            p(Feed::Transactions, "2026-08-31"),
            ["transactions/2026-07-02.csv", "transactions/2026-08-15.csv"]
        );
        assert_eq!(l.newest_date(), Some(d("2026-09-02")));
    }
}
