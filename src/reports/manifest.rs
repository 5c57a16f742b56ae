//! The run manifest (reports.md "The run manifest"): what a run read, wrote and counted. It is
//! written last; a run without a manifest did not finish. Maps are sorted (BTreeMap) so that
//! only the times differ between two runs of the same inputs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::feeds::Ingest;

#[derive(Debug, Serialize)]
pub struct Input {
    pub feed: String,
    pub delivery_date: String,
    pub size: u64,
    pub sha256: String,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
}

#[derive(Debug, Serialize)]
pub struct Listed {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct ProgramFile {
    pub id: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub rows_read: u64,
    pub accepted: u64,
    pub rejected: u64,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub run_date: String,
    /// Derived from the inputs, programs and version (the same on a re-run of the same inputs).
    pub run_id: String,
    /// The immutable prefix (under the output location) the run's files were published from.
    pub published_from: String,
    pub started_at: String,
    pub finished_at: String,
    pub program_version: String,
    pub programs: BTreeMap<String, ProgramFile>,
    pub data_as_of: Option<String>,
    pub inputs: BTreeMap<String, Input>,
    pub ignored: Vec<Listed>,
    pub skipped: Vec<Listed>,
    pub outputs: BTreeMap<String, Output>,
    pub totals: Totals,
}

impl Manifest {
    /// The input side of the manifest from what ingestion counted.
    pub fn inputs(ingest: &Ingest) -> (BTreeMap<String, Input>, Vec<Listed>, Vec<Listed>, Totals) {
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

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        bytes.push(b'\n');
        bytes
    }
}
