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
use parquet::file::properties::WriterProperties;

use super::{Table, Values};
use crate::error::{Error, Result};

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
            const LIMIT: i128 = 1_000_000_000_000_000_000; // 10^18: Decimal(18, s) holds less
            if let Some(v) = values.iter().flatten().find(|v| v.abs() >= LIMIT) {
                return Err(Error::Data(format!(
                    "a value of {} ({}) does not fit the parquet type Decimal(18, {scale}); \
                     check the amounts and exchange rates delivered",
                    name,
                    crate::decimal::format(*v, *scale)
                )));
            }
            let a = Decimal128Array::from(values.clone())
                .with_precision_and_scale(18, *scale as i8)
                .map_err(|e| Error::Internal(format!("decimal column: {e}")))?;
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

/// The parquet bytes of `table`, with `metadata` as key-value pairs in the footer.
pub fn to_parquet(table: &Table, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (name, values) in &table.columns {
        let (dt, a) = array(&format!("{}.{name}", table.name), values)?;
        fields.push(Field::new(*name, dt, true));
        arrays.push(a);
    }
    // The metadata goes in the Arrow schema too, so that Arrow readers (pyarrow's
    // `schema.metadata`) see it as well as the parquet footer's key-value pairs.
    let schema_metadata: std::collections::HashMap<String, String> =
        metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema_metadata));
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| Error::Internal(format!("{}: {e}", table.name)))?;
    let kv = metadata.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.clone())).collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv))
        .build();
    let fail = |e: parquet::errors::ParquetError| Error::Internal(format!("parquet {}: {e}", table.name));
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(fail)?;
    w.write(&batch).map_err(fail)?;
    w.into_inner().map_err(fail)
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
}
