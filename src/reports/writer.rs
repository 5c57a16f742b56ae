//! Writing reports as CSV and parquet a chunk of rows at a time, with the encoding spread over
//! the cores: chunks are encoded in parallel (CSV text and Arrow arrays made, from a table or
//! straight from the rows) while the chunks before them are written, in order, to the two
//! files. Memory stays at two groups of chunks whatever the report's size.
//!
//! For an exported report it also records where each (program, partner) run of rows lies in
//! the CSV, so that a partner's export can be cut from those bytes instead of being formatted
//! a second time.

use crate::hash::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use rayon::prelude::*;

use super::{Table, csv_out, parquet_out};
use crate::error::{Error, Result};
use crate::publish::{Publication, StagedFile};
use crate::store::ReadAt;

/// Where the rows of one program and partner lie in a report's CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) rows: u64,
}

/// A report row's export key: (program index, partner position in the sorted partner ids).
pub(crate) type Key = (u32, u32);

/// The segments of a report's CSV by key.
pub(crate) type Segments = HashMap<Key, Segment>;

/// A chunk of a report: its table and, for an exported report, each row's key; empty when
/// segments are not wanted.
pub(crate) struct Chunk<'r> {
    pub(crate) table: Table<'r>,
    pub(crate) keys: Vec<Key>,
}

/// A chunk ready to write: CSV bytes cut in pieces of one key each, and the Arrow rows.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct Encoded {
    csv: bytes::Bytes,
    /// (key, bytes, rows) of each run of rows with one key, in order.
    pieces: Vec<(Key, u64, u64)>,
    batch: RecordBatch,
}

impl Encoded {
    /// Each run of rows with one key, in order: the key, its CSV bytes (shared with the chunk)
    /// and its row count (none unless the chunk carried keys).
    pub(crate) fn keyed(&self) -> impl Iterator<Item = (Key, bytes::Bytes, u64)> {
        let mut at = 0;
        self.pieces.iter().map(move |&(key, bytes, rows)| {
            let start = at;
            at += bytes as usize;
            (key, self.csv.slice(start..at), rows)
        })
    }

    #[cfg(test)]
    pub(crate) fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// A chunk of `rows` rows: `record(i, buf)` appends the CSV record of row `i` (with its
    /// `\n`) and `keys` (one per row, or empty) cut the CSV into runs of one key.
    pub(crate) fn new(
        rows: usize,
        keys: &[Key],
        bytes_per_row: usize,
        mut record: impl FnMut(usize, &mut Vec<u8>),
        batch: RecordBatch,
    ) -> Encoded {
        let mut csv = Vec::with_capacity(rows * bytes_per_row);
        let mut pieces = Vec::new();
        let (mut done, mut run) = (0usize, 0u64);
        for row in 0..rows {
            if row > 0 && !keys.is_empty() && keys[row] != keys[row - 1] {
                pieces.push((keys[row - 1], (csv.len() - done) as u64, run));
                (done, run) = (csv.len(), 0);
            }
            record(row, &mut csv);
            run += 1;
        }
        if let Some(&last) = keys.last() {
            pieces.push((last, (csv.len() - done) as u64, run));
        }
        Encoded { csv: csv.into(), pieces, batch }
    }
}

/// Formats a chunk as CSV text and Arrow arrays (under `schema`, [`ReportWriter::schema`]):
/// independent work, done for many chunks in parallel.
pub(crate) fn encode(chunk: Chunk, schema: &Arc<Schema>) -> Result<Encoded> {
    let Chunk { table, keys } = chunk;
    let batch = parquet_out::record_batch(schema, &table)?;
    Ok(Encoded::new(table.rows(), &keys, 160, |r, buf| csv_out::row(&table, r, buf), batch))
}

/// The CSV bytes of a run of consecutive partners, read from a report's staged CSV (written
/// with segments) in one read per program: a partner's rows of one program lie together, and
/// the partners of a run lie together in the program's part of the report (it is sorted by
/// program, then partner). Read partner by partner instead, a run's many small reads would come
/// from two threads out of order, defeating the kernel's readahead: in a large run, where the
/// report does not stay in the page cache until its exports are cut, each of them would wait
/// on the disk.
pub(crate) struct Run {
    /// Per program: the offset of its bytes in the CSV, and the bytes.
    parts: Vec<(u64, Vec<u8>)>,
}

/// The byte range of partners `partners` (positions) in each of `programs` programs' part of
/// the CSV; empty where none of them has a row.
pub(crate) fn run_ranges(
    segments: &Segments,
    programs: u32,
    partners: std::ops::Range<u32>,
) -> Vec<std::ops::Range<u64>> {
    (0..programs)
        .map(|p| {
            let mut found = partners.clone().filter_map(|partner| segments.get(&(p, partner)));
            match found.next() {
                None => 0..0,
                Some(first) => {
                    found.fold(first.start..first.end, |r, s| r.start.min(s.start)..r.end.max(s.end))
                }
            }
        })
        .collect()
}

impl Run {
    /// Reads the bytes of partners `partners` (positions) of every program.
    pub(crate) fn read(
        csv: &ReadAt,
        segments: &Segments,
        programs: u32,
        partners: std::ops::Range<u32>,
    ) -> std::io::Result<Run> {
        let parts = run_ranges(segments, programs, partners)
            .into_iter()
            .map(|r| {
                let mut bytes = vec![0; (r.end - r.start) as usize];
                csv.read_exact_at(&mut bytes, r.start)?;
                Ok((r.start, bytes))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Run { parts })
    }

    /// A partner's rows of the report (the partner is one of the run's): `header`, then its
    /// segment of each program in order; returns the row count and the bytes.
    pub(crate) fn cut(&self, segments: &Segments, partner: u32, header: &[u8]) -> (u64, Vec<u8>) {
        let mut bytes = header.to_vec();
        let mut rows = 0;
        for (p, (at, part)) in self.parts.iter().enumerate() {
            if let Some(s) = segments.get(&(p as u32, partner)) {
                bytes.extend_from_slice(&part[(s.start - at) as usize..(s.end - at) as usize]);
                rows += s.rows;
            }
        }
        (rows, bytes)
    }
}

/// What a report writer wrote: `(path, SHA-256)` of the CSV and the parquet file, its rows,
/// and the CSV's segments (empty unless the chunks carried keys).
pub(crate) struct Written {
    pub(crate) csv: (String, String),
    pub(crate) parquet: (String, String),
    pub(crate) rows: u64,
    pub(crate) segments: Segments,
}

/// Where report `name` of `run_date` goes (reports.md v4): the parquet file in the report's
/// dataset folder, which holds parquet only, so that BI tools read the folder as a dataset;
/// the CSV in the day's folder of CSVs for finance teams.
pub(crate) fn paths(name: &str, run_date: NaiveDate) -> (String, String) {
    (format!("csv/run_date={run_date}/{name}.csv"), format!("{name}/run_date={run_date}/part-0.parquet"))
}

/// One report being written under the staging prefix (see [`paths`]), as CSV and
/// parquet, from encoded chunks handed over in report order. Several are open at once: a run
/// writes all its reports in one pass over the rules' pieces.
pub(crate) struct ReportWriter {
    name: &'static str,
    csv_path: String,
    parquet_path: String,
    csv: StagedFile,
    parquet: parquet_out::ParquetSink<StagedFile>,
    /// Bytes of the CSV so far.
    offset: u64,
    rows: u64,
    segments: Segments,
}

impl ReportWriter {
    /// Opens the report shaped like `shape` (its name and columns; its rows are not written)
    /// and writes the CSV header.
    pub(crate) fn new(
        publication: &Publication,
        shape: &Table,
        run_date: NaiveDate,
        metadata: &[(&str, String)],
    ) -> Result<ReportWriter> {
        let (csv_path, parquet_path) = paths(shape.name, run_date);
        let mut csv = publication.create(&csv_path)?;
        let parquet = parquet_out::ParquetSink::new(shape, metadata, publication.create(&parquet_path)?)?;
        let mut header = Vec::new();
        csv_out::header(shape, &mut header);
        csv.write_all(&header).map_err(Error::io("writing", &csv_path))?;
        Ok(ReportWriter {
            name: shape.name,
            csv_path,
            parquet_path,
            csv,
            parquet,
            offset: header.len() as u64,
            rows: 0,
            segments: Segments::default(),
        })
    }

    /// The Arrow schema chunks are encoded under.
    pub(crate) fn schema(&self) -> &Arc<Schema> {
        self.parquet.schema()
    }

    /// Appends chunks, in order: the CSV appends and the parquet encoding (dictionaries, zstd)
    /// run side by side.
    pub(crate) fn write(&mut self, encoded: &[Encoded]) -> Result<()> {
        let ReportWriter { name, csv_path, csv, parquet, offset, rows, segments, .. } = self;
        let write_csv = || -> Result<()> {
            let csv_error = |e| Error::io("writing", &*csv_path)(e);
            for e in encoded {
                csv.write_all(&e.csv).map_err(csv_error)?;
                for &(key, bytes, n) in &e.pieces {
                    let s = segments.entry(key).or_insert(Segment { start: *offset, end: *offset, rows: 0 });
                    if s.end != *offset {
                        return Err(Error::internal(format!(
                            "{name}: the rows of program {} and partner {} are not contiguous",
                            key.0, key.1
                        )));
                    }
                    s.end += bytes;
                    s.rows += n;
                    *offset += bytes;
                }
                if e.pieces.is_empty() {
                    *offset += e.csv.len() as u64;
                }
                *rows += e.batch.num_rows() as u64;
            }
            Ok(())
        };
        let write_parquet =
            || -> Result<()> { encoded.iter().try_for_each(|e| parquet.write_batch(&e.batch)) };
        let (c, p) = rayon::join(write_csv, write_parquet);
        c.and(p)
    }

    /// Completes both files.
    pub(crate) fn finish(self, publication: &mut Publication) -> Result<Written> {
        let csv_sha = publication.finish(self.csv)?;
        let parquet_sha = publication.finish(self.parquet.close()?)?;
        Ok(Written {
            csv: (self.csv_path, csv_sha),
            parquet: (self.parquet_path, parquet_sha),
            rows: self.rows,
            segments: self.segments,
        })
    }
}

/// Writes a whole report from `chunks`, each turned into rows by `build`: a group of chunks is
/// encoded in parallel while the group before it is written.
pub(crate) fn write_report<'r, C: Send>(
    publication: &mut Publication,
    shape: &Table,
    chunks: impl Iterator<Item = C>,
    build: impl Fn(C) -> Chunk<'r> + Sync,
    run_date: NaiveDate,
    metadata: &[(&str, String)],
) -> Result<Written> {
    let mut writer = ReportWriter::new(publication, shape, run_date, metadata)?;
    let schema = writer.schema().clone();
    let group = 2 * rayon::current_num_threads().max(1);
    let mut chunks = chunks.fuse();
    let encode_group = |group: Vec<C>| -> Result<Vec<Encoded>> {
        group.into_par_iter().map(|c| encode(build(c), &schema)).collect()
    };
    let mut ready = encode_group(chunks.by_ref().take(group).collect())?;
    while !ready.is_empty() {
        let upcoming: Vec<C> = chunks.by_ref().take(group).collect();
        let (written, next) = rayon::join(|| writer.write(&ready), || encode_group(upcoming));
        written?;
        ready = next?;
    }
    writer.finish(publication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A partner's export cut from a run's bytes is its rows of every program, in program
        /// order, whatever the runs' size and whichever partners have no rows.
        #[test]
        fn runs_cut_each_partners_rows_of_every_program(
            rows in prop::collection::vec(prop::collection::vec(0u64..3, 1..30), 1..4),
            run_len in 1u32..9,
        ) {
            let programs = rows.len() as u32;
            let partners = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
            // The report's CSV, sorted by program then partner, and each (program, partner)'s segment.
            let (mut csv, mut segments) = (Vec::new(), Segments::default());
            for (p, of_program) in rows.iter().enumerate() {
                for (partner, &n) in of_program.iter().enumerate() {
                    let start = csv.len() as u64;
                    for r in 0..n {
                        csv.extend_from_slice(format!("{p},{partner},{r}\n").as_bytes());
                    }
                    if n > 0 {
                        segments.insert((p as u32, partner as u32), Segment { start, end: csv.len() as u64, rows: n });
                    }
                }
            }
            let staged = ReadAt::Bytes(bytes::Bytes::from(csv));
            let mut start = 0;
            while start < partners {
                let end = partners.min(start + run_len);
                let run = Run::read(&staged, &segments, programs, start..end).unwrap();
                for partner in start..end {
                    let mut expected = b"h\n".to_vec();
                    let mut n = 0;
                    for (p, of_program) in rows.iter().enumerate() {
                        let k = of_program.get(partner as usize).copied().unwrap_or(0);
                        for r in 0..k {
                            expected.extend_from_slice(format!("{p},{partner},{r}\n").as_bytes());
                        }
                        n += k;
                    }
                    prop_assert_eq!(run.cut(&segments, partner, b"h\n"), (n, expected));
                }
                start = end;
            }
        }
    }
}
