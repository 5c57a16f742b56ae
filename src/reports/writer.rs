//! Writing one report as CSV and parquet a chunk of rows at a time, with the encoding spread
//! over the cores: a group of chunks is encoded in parallel (tables built, CSV text and Arrow
//! arrays made) while the group before it is written, in order, to the two files. Memory stays
//! at two groups of chunks whatever the report's size.
//!
//! For an exported report it also records where each (program, partner) run of rows lies in
//! the CSV, so that a partner's export can be cut from those bytes instead of being formatted
//! a second time.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use rayon::prelude::*;

use super::{Table, csv_out, parquet_out};
use crate::error::{Error, Result};
use crate::publish::Publication;

/// Where the rows of one program (by index) and partner lie in a report's CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub rows: u64,
}

/// The segments of a report's CSV by (program index, partner id).
pub type Segments<'r> = HashMap<(u32, &'r str), Segment>;

/// A chunk of a report: its table and, for an exported report, each row's (program index,
/// partner id); empty when segments are not wanted.
pub struct Chunk<'r> {
    pub table: Table<'r>,
    pub keys: Vec<(u32, &'r str)>,
}

/// A chunk ready to write: CSV bytes cut in pieces of one key each, and the Arrow rows.
struct Encoded<'r> {
    csv: Vec<u8>,
    /// (key, bytes, rows) of each run of rows with one key, in order.
    pieces: Vec<((u32, &'r str), u64, u64)>,
    batch: RecordBatch,
}

fn encode<'r>(chunk: Chunk<'r>, schema: &Arc<Schema>) -> Result<Encoded<'r>> {
    let Chunk { table, keys } = chunk;
    let internal = |e: std::io::Error| Error::Internal(format!("CSV of {} in memory: {e}", table.name));
    let mut w = csv_out::CsvRows::new(Vec::with_capacity(table.rows() * 160));
    let mut pieces = Vec::new();
    let (mut done, mut rows) = (0usize, 0u64);
    for row in 0..table.rows() {
        if row > 0 && !keys.is_empty() && keys[row] != keys[row - 1] {
            w.flush().map_err(internal)?;
            let len = w.get_ref().len();
            pieces.push((keys[row - 1], (len - done) as u64, rows));
            (done, rows) = (len, 0);
        }
        w.row(&table, row).map_err(internal)?;
        rows += 1;
    }
    let csv = w.into_inner().map_err(internal)?;
    if let Some(&last) = keys.last() {
        pieces.push((last, (csv.len() - done) as u64, rows));
    }
    let batch = parquet_out::record_batch(schema, &table)?;
    Ok(Encoded { csv, pieces, batch })
}

/// A partner's rows of a report, cut from the report's CSV `file` (written with segments):
/// `header`, then its segment of each of `programs` programs in order; returns the row count
/// and the bytes.
pub fn cut(
    file: &std::fs::File,
    segments: &Segments,
    programs: u32,
    partner: &str,
    header: &[u8],
) -> std::io::Result<(u64, Vec<u8>)> {
    let mut bytes = header.to_vec();
    let mut rows = 0;
    for p in 0..programs {
        if let Some(s) = segments.get(&(p, partner)) {
            let at = bytes.len();
            bytes.resize(at + (s.end - s.start) as usize, 0);
            std::os::unix::fs::FileExt::read_exact_at(file, &mut bytes[at..], s.start)?;
            rows += s.rows;
        }
    }
    Ok((rows, bytes))
}

/// What [`write_report`] wrote: `(path, SHA-256)` of the CSV and the parquet file, and the
/// CSV's segments (empty unless the chunks carried keys).
pub struct Written<'r> {
    pub csv: (String, String),
    pub parquet: (String, String),
    pub segments: Segments<'r>,
}

/// Writes a report (`shape` gives its name and columns; its rows are not written) from
/// `chunks`, each turned into rows by `build`, to `<report>/run_date=D/` under the staging
/// prefix of `publication`.
pub fn write_report<'r, C: Send>(
    publication: &mut Publication,
    shape: &Table,
    chunks: impl Iterator<Item = C>,
    build: impl Fn(C) -> Chunk<'r> + Sync,
    run_date: NaiveDate,
    metadata: &[(&str, String)],
) -> Result<Written<'r>> {
    let dir = format!("{}/run_date={run_date}", shape.name);
    let (csv_path, parquet_path) = (format!("{dir}/{}.csv", shape.name), format!("{dir}/part-0.parquet"));
    let mut csv = publication.create(&csv_path)?;
    let mut parquet = parquet_out::ParquetSink::new(shape, metadata, publication.create(&parquet_path)?)?;
    let schema = parquet.schema().clone();
    let csv_error = |e: std::io::Error| Error::Write { path: csv_path.clone(), reason: e.to_string() };
    let mut header = Vec::new();
    csv_out::write_header(shape, &mut header).map_err(csv_error)?;
    csv.write_all(&header).map_err(csv_error)?;
    let mut offset = header.len() as u64;
    let mut segments = Segments::new();

    let group = 2 * rayon::current_num_threads().max(1);
    let mut chunks = chunks.fuse();
    let encode_group = |group: Vec<C>| -> Result<Vec<Encoded<'r>>> {
        group.into_par_iter().map(|c| encode(build(c), &schema)).collect()
    };
    let mut ready = encode_group(chunks.by_ref().take(group).collect())?;
    while !ready.is_empty() {
        let upcoming: Vec<C> = chunks.by_ref().take(group).collect();
        // The CSV appends and the parquet encoding (dictionaries, zstd) of a group are
        // independent, and both run beside the encoding of the next group.
        let write_csv = || -> Result<()> {
            for e in &ready {
                csv.write_all(&e.csv).map_err(csv_error)?;
                for &(key, bytes, rows) in &e.pieces {
                    let s = segments.entry(key).or_insert(Segment { start: offset, end: offset, rows: 0 });
                    if s.end != offset {
                        return Err(Error::Internal(format!(
                            "{}: the rows of program {} and partner {} are not contiguous",
                            shape.name, key.0, key.1
                        )));
                    }
                    s.end += bytes;
                    s.rows += rows;
                    offset += bytes;
                }
                if e.pieces.is_empty() {
                    offset += e.csv.len() as u64;
                }
            }
            Ok(())
        };
        let write_parquet = || -> Result<()> { ready.iter().try_for_each(|e| parquet.write_batch(&e.batch)) };
        let (written, next) = rayon::join(
            || {
                let (c, p) = rayon::join(write_csv, write_parquet);
                c.and(p)
            },
            || encode_group(upcoming),
        );
        written?;
        ready = next?;
    }
    let csv_sha = publication.finish(csv)?;
    let parquet_sha = publication.finish(parquet.close()?)?;
    Ok(Written { csv: (csv_path, csv_sha), parquet: (parquet_path, parquet_sha), segments })
}
