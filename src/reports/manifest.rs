//! The run manifest (reports.md "The run manifest"): what a run read, wrote and counted. It is
//! written last; a run without a manifest did not finish. Maps are sorted (BTreeMap) so that
//! only the times differ between two runs of the same inputs.

use std::collections::BTreeMap;

use serde::Serialize;

use chrono::NaiveDate;

use crate::config::Program;
use crate::feeds::Ingest;

#[derive(Debug, Serialize)]
pub(crate) struct Input {
    pub(crate) feed: String,
    pub(crate) delivery_date: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) rows: u64,
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    pub(crate) path: String,
    pub(crate) reason: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Output {
    pub(crate) rows: u64,
    pub(crate) sha256: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProgramFile {
    pub(crate) id: String,
    pub(crate) sha256: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Totals {
    pub(crate) rows_read: u64,
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Manifest {
    pub(crate) run_date: String,
    /// Derived from the inputs, programs and version (the same on a re-run of the same inputs).
    pub(crate) run_id: String,
    /// The immutable prefix (under the output location) the run's files were published from.
    pub(crate) published_from: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) program_version: String,
    pub(crate) programs: BTreeMap<String, ProgramFile>,
    pub(crate) data_as_of: Option<String>,
    pub(crate) inputs: BTreeMap<String, Input>,
    pub(crate) ignored: Vec<Listed>,
    pub(crate) skipped: Vec<Listed>,
    /// Export folders named by a hash of their partner's id (ids too long for a file name, see
    /// `exports::folder_name`): folder -> the full id. Absent when there are none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) export_folders: BTreeMap<String, String>,
    pub(crate) outputs: BTreeMap<String, Output>,
    pub(crate) totals: Totals,
    /// The ledger the run continued from (absent for a first run at the location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_ledger: Option<PreviousLedger>,
    /// `--rebuild`: the run ignored the ledgers at the location (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) rebuild: bool,
}

/// The previous ledger among a run's inputs: the run date that published it and its files'
/// SHA-256.
#[derive(Debug, Serialize)]
pub(crate) struct PreviousLedger {
    pub(crate) run_date: String,
    pub(crate) files: BTreeMap<String, String>,
}

impl PreviousLedger {
    pub(crate) fn of(previous: &crate::ledger::Previous) -> PreviousLedger {
        PreviousLedger {
            run_date: previous.run_date.map(|d| d.to_string()).unwrap_or_default(),
            files: previous.files.clone(),
        }
    }
}

/// The current time, RFC 3339 in UTC: only the manifest carries wall-clock time.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Manifest {
    /// The manifest of run `run_id` of `run_date`, finished now: what it read (`programs`,
    /// `ingest`), counted and wrote (`outputs`), published from the staging prefix
    /// `published_from`.
    pub(crate) fn new(
        run_date: NaiveDate,
        run_id: String,
        published_from: &str,
        started_at: String,
        programs: &[Program],
        ingest: &Ingest,
        outputs: BTreeMap<String, Output>,
    ) -> Manifest {
        let (inputs, ignored, skipped, totals) = Manifest::inputs(ingest);
        Manifest {
            run_date: run_date.to_string(),
            run_id,
            published_from: published_from.to_string(),
            started_at,
            finished_at: now(),
            program_version: env!("CARGO_PKG_VERSION").into(),
            programs: programs
                .iter()
                .map(|p| (p.file.clone(), ProgramFile { id: p.id.clone(), sha256: p.sha256.clone() }))
                .collect(),
            data_as_of: ingest.data_as_of().map(|d| d.to_string()),
            inputs,
            ignored,
            skipped,
            export_folders: BTreeMap::new(),
            outputs,
            totals,
            previous_ledger: None,
            rebuild: false,
        }
    }

    /// The input side of the manifest from what ingestion counted.
    fn inputs(ingest: &Ingest) -> (BTreeMap<String, Input>, Vec<Listed>, Vec<Listed>, Totals) {
        let inputs = ingest
            .files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    Input {
                        feed: f.feed.name().into(),
                        delivery_date: f.delivery_date.to_string(),
                        size: f.size,
                        sha256: f.sha256.clone(),
                        rows: f.rows,
                        accepted: f.accepted,
                        rejected: f.rejected,
                    },
                )
            })
            .collect();
        let ignored = ingest
            .ignored
            .iter()
            .map(|i| Listed { path: i.path.clone(), reason: i.reason.clone() })
            .collect();
        let skipped = ingest
            .skipped
            .iter()
            .map(|s| Listed { path: s.path.clone(), reason: s.reason.clone() })
            .collect();
        let totals = Totals {
            rows_read: ingest.rows_read(),
            accepted: ingest.rows_accepted(),
            rejected: ingest.rows_rejected(),
        };
        (inputs, ignored, skipped, totals)
    }

    /// The manifest as serde_json's pretty JSON and a new line, in pieces to be written one
    /// after the other. The outputs (five lines for each file written, and a large run writes
    /// hundreds of thousands of files) are rendered in parallel, in serde_json's layout.
    pub(crate) fn json_parts(&mut self) -> Vec<Vec<u8>> {
        use rayon::prelude::*;
        // The outputs' key at the top level: inside a string a quote is escaped, so this
        // cannot match elsewhere.
        const EMPTY_OUTPUTS: &[u8] = b"\n  \"outputs\": {}";
        let outputs = std::mem::take(&mut self.outputs);
        let mut shell = serde_json::to_vec_pretty(&*self).expect("manifest serialises");
        shell.push(b'\n');
        self.outputs = outputs;
        if self.outputs.is_empty() {
            return vec![shell];
        }
        let close = shell
            .windows(EMPTY_OUTPUTS.len())
            .position(|w| w == EMPTY_OUTPUTS)
            .expect("the manifest has an outputs key")
            + EMPTY_OUTPUTS.len()
            - 1;
        let entries: Vec<(&String, &Output)> = self.outputs.iter().collect();
        let mut parts = vec![shell[..close].to_vec()];
        parts.par_extend(entries.par_chunks(OUTPUTS_PER_PART).enumerate().map(|(k, chunk)| {
            let mut buf = Vec::with_capacity(chunk.len() * 192);
            for (i, (path, out)) in chunk.iter().enumerate() {
                buf.extend_from_slice(if k == 0 && i == 0 { b"\n    " } else { b",\n    " });
                serde_json::to_writer(&mut buf, path).expect("a string serialises");
                buf.extend_from_slice(b": {\n      \"rows\": ");
                serde_json::to_writer(&mut buf, &out.rows).expect("a number serialises");
                buf.extend_from_slice(b",\n      \"sha256\": ");
                serde_json::to_writer(&mut buf, &out.sha256).expect("a string serialises");
                buf.extend_from_slice(b"\n    }");
            }
            buf
        }));
        let mut tail = b"\n  ".to_vec();
        tail.extend_from_slice(&shell[close..]);
        parts.push(tail);
        parts
    }
}

/// Outputs rendered to JSON by one task of [`Manifest::json_parts`].
const OUTPUTS_PER_PART: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(outputs: usize) -> Manifest {
        let names = ["a.csv", "we\"ird\\name\u{1}é.csv", "exports/x/partner_id=%2F/earnings.csv"];
        Manifest {
            run_date: "2027-07-01".into(),
            run_id: "r".into(),
            published_from: "_runs/x".into(),
            started_at: "s".into(),
            finished_at: "f".into(),
            program_version: "0".into(),
            programs: BTreeMap::from([(
                "p.toml".into(),
                ProgramFile { id: "p".into(), sha256: "00".into() },
            )]),
            data_as_of: None,
            inputs: BTreeMap::new(),
            ignored: vec![Listed { path: "outputs.csv".into(), reason: "\"outputs\": {}".into() }],
            skipped: Vec::new(),
            export_folders: BTreeMap::new(),
            outputs: (0..outputs)
                .map(|i| {
                    let name = format!("{i:06}/{}", names[i % names.len()]);
                    (name, Output { rows: i as u64 * 7, sha256: format!("{i:064x}") })
                })
                .collect(),
            totals: Totals { rows_read: 1, accepted: 1, rejected: 0 },
            previous_ledger: None,
            rebuild: false,
        }
    }

    #[test]
    fn json_in_parts_is_serde_json_pretty() {
        for n in [0, 1, 2, OUTPUTS_PER_PART, OUTPUTS_PER_PART + 1, 2 * OUTPUTS_PER_PART + 3] {
            let mut m = manifest(n);
            let mut expected = serde_json::to_vec_pretty(&m).unwrap();
            expected.push(b'\n');
            assert_eq!(m.json_parts().concat(), expected, "{n} outputs");
            assert_eq!(m.outputs.len(), n, "the outputs are kept");
        }
    }
}
