//! Parquet for BI tools, written with arrow-rs: money as Decimal(18, scale), dates as Date,
//! reason lists as lists of strings, zstd compression, and key-value metadata naming the
//! program version. The bytes depend only on the table, so re-runs are byte-identical.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, ListBuilder, StringArray,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{Table, Values};
use crate::error::{Error, Result};

/// Columns whose values are (nearly) all distinct: a dictionary would be built only to be
/// given up once it grows too large, so they are written plain. Nor do they get min/max
/// statistics: their values (hashes, transaction ids) spread over a whole row group, so no
/// reader could skip a row group or page on them, and the writer compared every value to get
/// them.
const DISTINCT: [&str; 3] = ["earning_id", "transaction_id", "original_transaction_id"];

/// The partition key: a report's rows carry it (the CSV keeps it), but its parquet files do not
/// repeat it. It comes from their folder, `run_date=D`, as Spark and Hive write partitions (a
/// column of the same name inside the files makes readers that discover partitions fail to
/// merge the two), and from the footer's key-value metadata.
const PARTITION_KEY: &str = "run_date";

/// Rows per row group: large enough for fast scans, small enough to keep writer memory low.
const ROW_GROUP_ROWS: usize = 1 << 20;

fn days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    (d - epoch).num_days() as i32
}

fn array(name: &str, values: &Values) -> Result<(DataType, ArrayRef)> {
    Ok(match values {
        Values::Text(v) => (DataType::Utf8, Arc::new(StringArray::from_iter(v.iter().map(|s| s.as_deref())))),
        Values::Int(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
        Values::Decimal { values, scale, .. } => {
            check_fits(name, *scale, values.iter().flatten().copied())?;
            let a = Decimal128Array::from(values.clone())
                .with_precision_and_scale(18, *scale as i8)
                .map_err(|e| Error::internal_from("decimal column", e))?;
            (a.data_type().clone(), Arc::new(a))
        }
        Values::Date(v) => {
            (DataType::Date32, Arc::new(Date32Array::from(v.iter().map(|d| d.map(days)).collect::<Vec<_>>())))
        }
        Values::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v.clone()))),
        Values::List(v) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for codes in v {
                for c in codes {
                    b.values().append_value(c);
                }
                b.append(true);
            }
            let a = b.finish();
            (a.data_type().clone(), Arc::new(a))
        }
    })
}

/// Fails on the first of `values` (units of 10^-`scale`) that does not fit Decimal(18, scale).
fn check_fits(name: &str, scale: u32, mut values: impl Iterator<Item = i128>) -> Result<()> {
    const LIMIT: i128 = 1_000_000_000_000_000_000; // 10^18: Decimal(18, s) holds less
    match values.find(|v| v.abs() >= LIMIT) {
        Some(v) => Err(Error::Data(format!(
            "a value of {name} ({}) does not fit the parquet type Decimal(18, {scale}); \
             check the amounts and exchange rates delivered",
            crate::decimal::format(v, scale)
        ))),
        None => Ok(()),
    }
}

/// The arrays of a report encoded without a [`Table`] (see `tables::earnings_encoded`), typed
/// as [`array`] types the table's columns. None of their values is null.
pub(crate) mod columns {
    use super::*;

    /// Bytes reserved per string: most report strings are shorter, so that the buffer is
    /// rarely grown (and copied) while filled.
    const BYTES_PER_STRING: usize = 24;

    pub(crate) fn strings<'s>(values: impl Iterator<Item = &'s str>) -> ArrayRef {
        opt_strings(values.map(Some))
    }

    pub(crate) fn opt_strings<'s>(values: impl Iterator<Item = Option<&'s str>>) -> ArrayRef {
        let n = values.size_hint().0;
        let mut b = StringBuilder::with_capacity(n, n * BYTES_PER_STRING);
        b.extend(values);
        Arc::new(b.finish())
    }

    pub(crate) fn dates(values: impl Iterator<Item = NaiveDate>) -> ArrayRef {
        Arc::new(Date32Array::from_iter_values(values.map(days)))
    }

    pub(crate) fn ints(values: impl Iterator<Item = i64>) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(values))
    }

    /// `name` is the report's and column's, for the error of a value too large.
    pub(crate) fn decimals(name: &str, scale: u32, values: impl Iterator<Item = i128>) -> Result<ArrayRef> {
        let values: Vec<i128> = values.collect();
        check_fits(name, scale, values.iter().copied())?;
        let a = Decimal128Array::from(values)
            .with_precision_and_scale(18, scale as i8)
            .map_err(|e| Error::internal_from("decimal column", e))?;
        Ok(Arc::new(a))
    }
}

/// The parquet bytes of `table`, with `metadata` as key-value pairs in the footer.
#[cfg(test)]
fn to_parquet(table: &Table, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut w = ParquetSink::new(table, metadata, Vec::new())?;
    w.write(table)?;
    w.close()
}

/// The Arrow arrays of `table` under `schema` (independent work: chunks are made in parallel
/// and written in order).
pub(crate) fn record_batch(schema: &Arc<Schema>, table: &Table) -> Result<RecordBatch> {
    let mut arrays = Vec::new();
    for (name, values) in &table.columns {
        arrays.push(array(&format!("{}.{name}", table.name), values)?.1);
    }
    batch(schema, table.name, arrays)
}

/// A batch of `arrays` under `schema` (of report `name`).
pub(crate) fn batch(schema: &Arc<Schema>, name: &str, arrays: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| Error::internal_from(format!("record batch of {name}"), e))
}

/// A parquet file written a chunk (a [`Table`] of the same columns) at a time; row groups
/// hold up to [`ROW_GROUP_ROWS`] rows whatever the chunk size, and the bytes depend only on
/// the rows and the chunking.
pub(crate) struct ParquetSink<W: std::io::Write + Send> {
    name: &'static str,
    /// The report's columns, as batches are made.
    schema: Arc<Schema>,
    /// The columns of `schema` the file holds: all but the [`PARTITION_KEY`].
    stored: Vec<usize>,
    writer: ArrowWriter<W>,
}

impl<W: std::io::Write + Send> ParquetSink<W> {
    /// A writer for tables shaped like `shape` (its rows are not written).
    pub(crate) fn new(shape: &Table, metadata: &[(&str, String)], out: W) -> Result<Self> {
        let mut fields = Vec::new();
        for (name, values) in &shape.columns {
            let (dt, _) = array(&format!("{}.{name}", shape.name), &values.empty_like())?;
            fields.push(Field::new(*name, dt, true));
        }
        // The metadata goes in the Arrow schema too, so that Arrow readers (pyarrow's
        // `schema.metadata`) see it as well as the parquet footer's key-value pairs.
        let schema_metadata: std::collections::HashMap<String, String> =
            metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, schema_metadata));
        let stored: Vec<usize> =
            (0..schema.fields().len()).filter(|&i| schema.field(i).name() != PARTITION_KEY).collect();
        let file_schema = Arc::new(
            schema
                .project(&stored)
                .map_err(|e| Error::internal_from(format!("schema of {}", shape.name), e))?,
        );
        let kv = metadata.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.clone())).collect();
        // zstd level 1: it takes a fraction of level 3's CPU, and on these reports' pages it
        // compresses no worse.
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(kv));
        for (name, _) in &shape.columns {
            if DISTINCT.contains(name) {
                props = props
                    .set_column_dictionary_enabled(ColumnPath::from(*name), false)
                    .set_column_statistics_enabled(ColumnPath::from(*name), EnabledStatistics::None);
            }
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(out, file_schema, Some(props))
            .map_err(|e| Error::internal_from(format!("parquet writer of {}", shape.name), e))?;
        Ok(ParquetSink { name: shape.name, schema, stored, writer })
    }

    #[cfg(test)]
    fn write(&mut self, table: &Table) -> Result<()> {
        let batch = record_batch(&self.schema, table)?;
        self.write_batch(&batch)
    }

    /// Writes rows made by [`record_batch`] with [`ParquetSink::schema`].
    pub(crate) fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let stored = batch
            .project(&self.stored)
            .map_err(|e| Error::internal_from(format!("record batch of {}", self.name), e))?;
        self.writer.write(&stored).map_err(|e| self.fail(e))
    }

    pub(crate) fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub(crate) fn close(self) -> Result<W> {
        let name = self.name;
        self.writer.into_inner().map_err(|e| Error::internal_from(format!("parquet {name}"), e))
    }

    fn fail(&self, e: parquet::errors::ParquetError) -> Error {
        match e {
            // The sink's own error (the disk, the network): an infrastructure failure.
            parquet::errors::ParquetError::External(e) => Error::Io {
                action: "writing the parquet file of",
                path: self.name.into(),
                source: std::io::Error::other(e),
            },
            e => Error::internal_from(format!("parquet {}", self.name), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn types_and_metadata_survive_a_round_trip() {
        let t = Table {
            name: "t",
            columns: vec![
                ("amount", Values::Decimal { values: vec![Some(-1250), None], scale: 2, csv_scales: None }),
                ("day", Values::Date(vec![NaiveDate::from_ymd_opt(2026, 9, 1), None])),
                ("reasons", Values::List(vec![vec!["A".into(), "B".into()], vec![]])),
            ],
        };
        let bytes = to_parquet(&t, &[("program_version", "1".into())]).unwrap();
        assert_eq!(bytes, to_parquet(&t, &[("program_version", "1".into())]).unwrap(), "deterministic");
        let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|k| k.key == "program_version" && k.value.as_deref() == Some("1")));
        let schema = b.schema().clone();
        assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(schema.field(1).data_type(), &DataType::Date32);
        assert!(matches!(schema.field(2).data_type(), DataType::List(_)));
        let batch = b.build().unwrap().next().unwrap().unwrap();
        let dec = batch.column(0).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(dec.value(0), -1250);
        assert!(dec.is_null(1));
    }

    #[test]
    fn the_partition_key_is_left_to_the_folder_and_the_footer() {
        let t = Table {
            name: "t",
            columns: vec![
                ("run_date", Values::Date(vec![NaiveDate::from_ymd_opt(2026, 9, 1)])),
                ("amount", Values::Decimal { values: vec![Some(5)], scale: 2, csv_scales: None }),
            ],
        };
        let bytes = to_parquet(&t, &[("run_date", "2026-09-01".into())]).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let names: Vec<&str> = b.schema().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["amount"]);
        let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|k| k.key == "run_date" && k.value.as_deref() == Some("2026-09-01")));
    }

    #[test]
    fn a_decimal_too_large_for_decimal_18_is_an_error_naming_its_column() {
        let limit = 10i128.pow(18);
        for fits in [limit - 1, -(limit - 1), 0] {
            assert!(columns::decimals("earnings.usd_rate", 8, [fits].into_iter()).is_ok());
        }
        for too_large in [limit, -limit] {
            let e = columns::decimals("earnings.usd_rate", 8, [1, too_large].into_iter()).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("earnings.usd_rate") && text.contains("Decimal(18, 8)"), "{text}");
        }
        let table = Values::Decimal { values: vec![None, Some(limit)], scale: 2, csv_scales: None };
        let e = array("t.amount", &table).unwrap_err().to_string();
        assert!(e.contains("t.amount") && e.contains("10000000000000000.00"), "{e}");
    }

    #[test]
    fn distinct_id_columns_are_written_without_a_dictionary() {
        let ids: Vec<Option<std::borrow::Cow<str>>> =
            (0..100).map(|i| Some(format!("e{i}").into())).collect();
        let t = Table {
            name: "t",
            columns: vec![
                ("earning_id", Values::Text(ids)),
                ("program_id", Values::Text(vec![Some("p".into()); 100])),
            ],
        };
        let bytes = to_parquet(&t, &[]).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let group = b.metadata().row_group(0);
        assert!(group.column(0).dictionary_page_offset().is_none(), "earning_id is plain");
        assert!(group.column(1).dictionary_page_offset().is_some(), "program_id keeps its dictionary");
        assert!(group.column(0).statistics().is_none(), "earning_id has no min/max");
        assert!(
            group.column(1).statistics().is_some_and(|s| s.min_bytes_opt() == Some(b"p")),
            "program_id keeps them"
        );
        let batch = b.build().unwrap().next().unwrap().unwrap();
        let read = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(read.value(99), "e99");
    }
}
