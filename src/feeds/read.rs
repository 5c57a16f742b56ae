//! Reading one delivery file into text records in the feed's column order, whatever its format.
//!
//! CSV (plain or gzip) is tokenised with the `csv` crate rather than polars' CSV reader: the
//! spec needs each record's own cell count (`BAD_RECORD` for ragged rows), row numbers that
//! skip blank lines, and the raw cell text for the rejects report. Parquet goes through the
//! arrow-rs `parquet` reader and each typed value becomes its canonical text, so both formats
//! then meet the same validation.

use std::io::Read;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use super::Feed;
use super::landing::Format;

/// One record of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawRow {
    /// 1 for the first data record; blank lines take no number.
    pub(crate) row: u64,
    /// Where the record's cells start in its file's cell table ([`RawFile::cells`]), or the
    /// record's cell count when it does not have as many cells as the header (`BAD_RECORD`).
    shape: Result<usize, usize>,
}

/// A file's records, plus the warnings it raised (extra columns).
///
/// The cells' text is held back to back in one buffer, not as a `String` per cell: a day of
/// transactions is hundreds of thousands of cells, and an allocation each would be a large
/// share of the time spent validating.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub(crate) rows: Vec<RawRow>,
    pub(crate) warnings: Vec<String>,
    text: String,
    /// End of each cell in `text` (a cell starts where the one before it ends).
    ends: Vec<usize>,
    /// Cells per record (the feed's column count).
    width: usize,
}

impl RawFile {
    /// Appends a record whose cells are in the feed's column order.
    fn push<'c>(&mut self, row: u64, cells: impl IntoIterator<Item = &'c str>) {
        let first = self.ends.len();
        for cell in cells {
            self.text.push_str(cell);
            self.ends.push(self.text.len());
        }
        self.close_record(row, first);
    }

    /// Ends record `row`, whose cells were appended to the cell table from `first` on.
    fn close_record(&mut self, row: u64, first: usize) {
        self.width = self.ends.len() - first;
        self.rows.push(RawRow { row, shape: Ok(first) });
    }

    /// Appends a record with the wrong number of cells.
    fn push_ragged(&mut self, row: u64, cells: usize) {
        self.rows.push(RawRow { row, shape: Err(cells) });
    }

    /// The cells of `r` (a record of this file), in the feed's column order, written into
    /// `out` (cleared first); or the record's cell count when it is ragged.
    pub(crate) fn cells_into<'a>(&'a self, r: &RawRow, out: &mut Vec<&'a str>) -> Result<(), usize> {
        out.clear();
        let first = r.shape?;
        let mut start = if first == 0 { 0 } else { self.ends[first - 1] };
        for &end in &self.ends[first..first + self.width] {
            out.push(&self.text[start..end]);
            start = end;
        }
        Ok(())
    }

    /// The cells of `r`, as [`RawFile::cells_into`] gives them, in a vector of their own.
    pub(crate) fn cells(&self, r: &RawRow) -> Result<Vec<&str>, usize> {
        let mut out = Vec::with_capacity(self.width);
        self.cells_into(r, &mut out).map(|()| out)
    }
}

/// Reads a whole delivery file held in memory (tests, small files). An `Err` is the reason the
/// whole file cannot be read.
#[cfg(test)]
fn read_file(feed: Feed, format: Format, bytes: &bytes::Bytes) -> Result<RawFile, String> {
    match format {
        Format::Csv | Format::CsvGz => read_stream(feed, format, bytes.as_ref()),
        Format::Parquet => read_parquet(feed, bytes.clone()),
    }
}

/// Reads a CSV delivery (plain or gzip) front to back from a stream.
pub(crate) fn read_stream(feed: Feed, format: Format, reader: impl Read) -> Result<RawFile, String> {
    match format {
        Format::CsvGz => read_csv(feed, flate2::read::MultiGzDecoder::new(reader), "gzip"),
        _ => read_csv(feed, reader, "CSV"),
    }
}

/// Reads a parquet delivery through ranged reads. The parquet reader can panic on some damaged
/// files (it asserts, or divides by a zero read from the file, instead of returning an error); a
/// damaged file must be an error naming it, never a crash, and the panic is handled, so it
/// prints nothing (no message, no backtrace: see [`quiet_while_guarded`]).
pub(crate) fn read_parquet<R: ChunkReader + 'static>(feed: Feed, file: R) -> Result<RawFile, String> {
    let _quiet = quiet_while_guarded();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_parquet_unguarded(feed, file)))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("not a readable parquet file: the parquet reader failed on it ({why})"))
        })
}

thread_local! {
    /// Whether this thread is inside a guarded read, whose panics are handled.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside a guarded read until the returned value is dropped. The first
/// call installs a panic hook that stays silent for a panic of such a thread (it becomes an
/// error that names the file) and hands every other panic to the hook it replaced.
fn quiet_while_guarded() -> impl Drop {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    struct Unmark(bool);
    impl Drop for Unmark {
        fn drop(&mut self) {
            GUARDED.with(|g| g.set(self.0));
        }
    }
    Unmark(GUARDED.with(|g| g.replace(true)))
}

/// Maps header names to the feed's columns: `positions[i]` is where column `i` of the table
/// stands in the file. Missing or duplicated names make the file unreadable.
fn map_header(feed: Feed, names: &[String], warnings: &mut Vec<String>) -> Result<Vec<usize>, String> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(format!("column '{name}' appears twice in the header"));
        }
    }
    let columns = feed.columns();
    let missing: Vec<&str> = columns.iter().copied().filter(|c| !names.iter().any(|n| n == c)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing column(s) {} (the {} feed needs: {})",
            missing.join(", "),
            feed,
            columns.join(", ")
        ));
    }
    let extra: Vec<&str> = names.iter().map(String::as_str).filter(|n| !columns.contains(n)).collect();
    if !extra.is_empty() {
        warnings.push(format!("extra column(s) ignored: {}", extra.join(", ")));
    }
    Ok(columns.iter().map(|c| names.iter().position(|n| n == c).expect("checked above")).collect())
}

/// Whether a record's raw bytes end inside a quoted field (an unterminated quote: the parser
/// then swallows everything to the end of the file).
fn ends_inside_quotes(raw: &[u8]) -> bool {
    let (mut in_quotes, mut field_start, mut i) = (false, true, 0);
    while i < raw.len() {
        let c = raw[i];
        if in_quotes {
            if c == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
            field_start = false;
        } else {
            in_quotes = c == b'"' && field_start;
            field_start = matches!(c, b',' | b'\n' | b'\r');
        }
        i += 1;
    }
    in_quotes
}

/// Keeps the bytes the CSV parser has read but not yet passed, so that each record's raw text
/// can be looked at (blank lines, unterminated quotes) without holding the whole file.
struct Recorder<R> {
    inner: R,
    seen: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

fn read_csv(feed: Feed, reader: impl Read, kind: &str) -> Result<RawFile, String> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, reader);
    let io_error = |e: std::io::Error| format!("not a readable {kind} file: {e}");
    if std::io::BufRead::fill_buf(&mut input).map_err(io_error)?.starts_with(b"\xEF\xBB\xBF") {
        std::io::BufRead::consume(&mut input, 3);
    }
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let recorder = Recorder { inner: input, seen: seen.clone() };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(recorder);
    // Absolute offset of seen[0].
    let mut base = 0usize;
    let mut out = RawFile::default();
    let mut record = csv::ByteRecord::new();
    let mut positions: Option<Vec<usize>> = None;
    let mut header_len = 0;
    let mut row = 0u64;
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let what = if e.is_io_error() { kind } else { "CSV" };
                return Err(format!("not a readable {what} file after data row {row}: {e}"));
            }
        }
        let end = reader.position().byte() as usize;
        let (is_blank, unterminated) = {
            let seen = seen.borrow();
            let raw = &seen[(start - base).min(seen.len())..(end - base).min(seen.len())];
            // Blank: the line as delivered holds nothing but (Unicode) white space. A quoted
            // empty cell is not blank: it is a record with one cell.
            (std::str::from_utf8(raw).is_ok_and(|t| t.trim().is_empty()), ends_inside_quotes(raw))
        };
        {
            let mut seen = seen.borrow_mut();
            let done = (end - base).min(seen.len());
            seen.drain(..done);
            base += done;
        }
        if is_blank {
            continue;
        }
        let cells: Vec<&str> = match record.iter().map(std::str::from_utf8).collect() {
            Ok(c) => c,
            Err(_) if positions.is_none() => return Err("header row is not valid UTF-8".into()),
            Err(_) => return Err(format!("data row {} is not valid UTF-8", row + 1)),
        };
        if unterminated {
            return Err(format!(
                "a quoted cell opened in data row {} is never closed (a truncated or corrupt file?)",
                row + 1
            ));
        }
        let Some(pos) = &positions else {
            let names: Vec<String> = cells.iter().map(|c| c.trim().to_string()).collect();
            header_len = names.len();
            positions = Some(map_header(feed, &names, &mut out.warnings)?);
            continue;
        };
        row += 1;
        if cells.len() == header_len {
            out.push(row, pos.iter().map(|&i| cells[i]));
        } else {
            out.push_ragged(row, cells.len());
        }
    }
    if positions.is_none() {
        return Err("empty file (no header row)".into());
    }
    Ok(out)
}

fn read_parquet_unguarded<R: ChunkReader + 'static>(feed: Feed, file: R) -> Result<RawFile, String> {
    let corrupt = |e: parquet::errors::ParquetError| format!("not a readable parquet file: {e}");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(corrupt)?;
    let negative = builder.metadata().row_groups().iter().flat_map(|g| g.columns()).any(|c| {
        c.data_page_offset() < 0
            || c.compressed_size() < 0
            || c.dictionary_page_offset().is_some_and(|o| o < 0)
    });
    if negative {
        return Err("not a readable parquet file: corrupt metadata (negative column offset or size)".into());
    }
    let mut out = RawFile::default();
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().trim().to_string()).collect();
    let positions = map_header(feed, &names, &mut out.warnings)?;
    for &i in &positions {
        let field = builder.schema().field(i);
        let value_type = match field.data_type() {
            // Dictionary-encoded strings (e.g. pandas categoricals) are strings too.
            DataType::Dictionary(_, v)
                if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                v.as_ref()
            }
            other => other,
        };
        let readable = matches!(
            value_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Date32
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
                | DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Null
        );
        if !readable {
            return Err(format!(
                "column '{}' has type {}; expected a string, Date, Decimal, integer or boolean",
                field.name(),
                field.data_type()
            ));
        }
    }
    let reader = builder.build().map_err(corrupt)?;
    let mut row = 0u64;
    let mut scratch = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("not a readable parquet file: {e}"))?;
        let columns = positions
            .iter()
            .map(|&i| TextColumn::new(batch.column(i)).map_err(|e| format!("column '{}': {e}", names[i])))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            row += 1;
            let first = out.ends.len();
            for (c, &i) in columns.iter().zip(&positions) {
                c.append(r, &mut scratch, &mut out.text)
                    .map_err(|e| format!("data row {row}, column '{}': {e}", names[i]))?;
                out.ends.push(out.text.len());
            }
            out.close_record(row, first);
        }
    }
    Ok(out)
}

/// A parquet column as the text validation reads (so that CSV and parquet meet the same
/// checks). Dates, decimals and 64-bit integers are formatted here, which is the bulk of a
/// transaction file's non-string cells: arrow's cast to strings goes through the formatting
/// machinery and builds a string array of its own, a second copy of every cell. A null is an
/// empty cell.
enum TextColumn {
    Text(arrow::array::StringArray),
    Date(arrow::array::Date32Array),
    /// Values in units of 10^-scale.
    Decimal(arrow::array::Decimal128Array, u32),
    Int(arrow::array::Int64Array),
}

impl TextColumn {
    /// The column, downcast once per batch rather than once per cell.
    fn new(a: &arrow::array::ArrayRef) -> Result<TextColumn, arrow::error::ArrowError> {
        Ok(match a.data_type() {
            DataType::Date32 => TextColumn::Date(a.as_primitive().clone()),
            DataType::Decimal128(_, scale @ 0..=18) => {
                TextColumn::Decimal(a.as_primitive().clone(), u32::from(scale.unsigned_abs()))
            }
            DataType::Int64 => TextColumn::Int(a.as_primitive().clone()),
            _ => TextColumn::Text(arrow::compute::cast(a, &DataType::Utf8)?.as_string().clone()),
        })
    }

    /// Appends row `r`'s text to `text` (`scratch` is a buffer to format in).
    fn append(&self, r: usize, scratch: &mut Vec<u8>, text: &mut String) -> Result<(), String> {
        scratch.clear();
        match self {
            TextColumn::Text(s) => {
                if !s.is_null(r) {
                    text.push_str(s.value(r));
                }
                return Ok(());
            }
            TextColumn::Date(d) => {
                if d.is_null(r) {
                    return Ok(());
                }
                // A date chrono cannot hold, or past year 9999, is written as arrow writes it.
                match d.value_as_date(r).filter(|d| (0..=9999).contains(&chrono::Datelike::year(d))) {
                    Some(date) => crate::model::dates::write_date(scratch, date),
                    None => return Self::cast_one(d, r, text),
                }
            }
            TextColumn::Decimal(d, scale) => {
                if !d.is_null(r) {
                    crate::decimal::write(scratch, d.value(r), *scale);
                }
            }
            TextColumn::Int(i) => {
                if !i.is_null(r) {
                    crate::decimal::write(scratch, i.value(r).into(), 0);
                }
            }
        }
        text.push_str(std::str::from_utf8(scratch).expect("digits and dashes are ASCII"));
        Ok(())
    }

    /// Row `r` of `a` through arrow's cast to a string.
    fn cast_one(a: &dyn Array, r: usize, text: &mut String) -> Result<(), String> {
        let one = arrow::compute::cast(&a.slice(r, 1), &DataType::Utf8).map_err(|e| e.to_string())?;
        let s = one.as_string::<i32>();
        if !s.is_null(0) {
            text.push_str(s.value(0));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn csv(text: &str) -> Result<RawFile, String> {
        read_csv(Feed::Users, text.as_bytes(), "CSV")
    }

    fn cells(f: &RawFile) -> Vec<Result<Vec<String>, usize>> {
        f.rows.iter().map(|r| f.cells(r).map(|c| c.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn bom_shuffled_columns_quotes_and_blank_lines() {
        let f = csv("\u{feff}role, partner_id ,user_id,note\nincentive_user,P1,\"a,b\",x\n\n   \nincentive_admin,P2,\"multi\nline\",y\n").unwrap();
        assert_eq!(
            cells(&f),
            vec![
                Ok(vec!["a,b".to_string(), "P1".into(), "incentive_user".into()]),
                Ok(vec!["multi\nline".to_string(), "P2".into(), "incentive_admin".into()]),
            ]
        );
        assert_eq!(f.rows[1].row, 2, "blank lines take no row number");
        assert_eq!(f.warnings, ["extra column(s) ignored: note"]);
    }

    #[test]
    fn unicode_white_space_lines_are_blank_but_quoted_empty_records_are_not() {
        let f =
            csv("user_id,partner_id,role\n\u{a0}\n\u{3000} \t\n\x0b\na,P1,incentive_user\n\"\"\n\"  \"\n")
                .unwrap();
        assert_eq!(
            cells(&f),
            vec![Ok(vec!["a".to_string(), "P1".into(), "incentive_user".into()]), Err(1), Err(1)]
        );
        assert_eq!(f.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn an_unterminated_quote_makes_the_file_unreadable() {
        let err =
            csv("user_id,partner_id,role\na,P1,incentive_user\n\"b,P2,incentive_user\nc,P3,x\n").unwrap_err();
        assert!(err.contains("data row 2") && err.contains("never closed"), "{err}");
        assert!(!ends_inside_quotes(b"\"a \"\"quoted\"\" cell\",x\n"));
        assert!(!ends_inside_quotes(b"5\" screen,x\n"), "a quote inside an unquoted cell is text");
    }

    #[test]
    fn ragged_records_keep_their_cell_count() {
        let f = csv("user_id,partner_id,role\r\na,P1\r\nb,P1,incentive_user,extra\r\n").unwrap();
        assert_eq!(cells(&f), vec![Err(2), Err(4)]);
    }

    #[test]
    fn unreadable_headers_are_file_errors() {
        assert!(csv("").unwrap_err().contains("empty"));
        assert!(csv("\n  \n").unwrap_err().contains("empty"));
        assert!(csv("user_id,partner_id\n").unwrap_err().contains("missing column(s) role"));
        assert!(csv("user_id,partner_id,role,role\n").unwrap_err().contains("twice"));
        let bad_utf8 = b"user_id,partner_id,role\n\xff,P1,incentive_user\n";
        assert!(read_csv(Feed::Users, &bad_utf8[..], "CSV").unwrap_err().contains("row 1"));
    }

    #[test]
    fn garbage_is_not_parquet_and_truncated_gzip_fails() {
        let err = read_file(Feed::Users, Format::Parquet, &Bytes::from_static(b"PAR1 nope")).unwrap_err();
        assert!(err.contains("parquet"), "{err}");
        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            e.write_all(b"user_id,partner_id,role\na,P1,incentive_user\n").unwrap();
        }
        let ok = read_file(Feed::Users, Format::CsvGz, &Bytes::from(gz.clone())).unwrap();
        assert_eq!(ok.rows.len(), 1);
        gz.truncate(gz.len() / 2);
        let err = read_file(Feed::Users, Format::CsvGz, &Bytes::from(gz)).unwrap_err();
        assert!(err.contains("gzip"), "{err}");
    }
}

#[cfg(test)]
mod corruption {
    //! Damaged files must come back as an error (or as rows), never as a panic.
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn parquet_sample() -> Vec<u8> {
        use arrow::array::{ArrayRef, Date32Array, StringArray};
        use std::sync::Arc;
        let batch = arrow::record_batch::RecordBatch::try_from_iter([
            ("user_id", Arc::new(StringArray::from(vec!["a@x", "b@x", "c@x"])) as ArrayRef),
            ("partner_id", Arc::new(StringArray::from(vec!["P1", "P2", "P3"])) as ArrayRef),
            ("role", Arc::new(StringArray::from(vec!["incentive_user"; 3])) as ArrayRef),
            ("since", Arc::new(Date32Array::from(vec![1, 2, 3])) as ArrayRef),
        ])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    }

    fn gz_sample() -> Vec<u8> {
        use std::io::Write;
        let mut gz = Vec::new();
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
        e.write_all(b"user_id,partner_id,role\na,P1,incentive_user\n\"b,c\",P2,incentive_admin\n").unwrap();
        e.finish().unwrap();
        gz
    }

    #[test]
    fn every_truncation_of_a_parquet_file_is_an_error() {
        let full = parquet_sample();
        assert_eq!(
            read_file(Feed::Users, Format::Parquet, &Bytes::from(full.clone())).unwrap().rows.len(),
            3
        );
        for len in 0..full.len() {
            let r = read_file(Feed::Users, Format::Parquet, &Bytes::copy_from_slice(&full[..len]));
            assert!(r.is_err(), "a parquet file cut at {len} bytes was read");
        }
    }

    #[test]
    fn dictionary_encoded_strings_are_strings() {
        use arrow::array::{ArrayRef, DictionaryArray, StringArray};
        use arrow::datatypes::Int32Type;
        use std::sync::Arc;
        let roles: DictionaryArray<Int32Type> =
            vec!["incentive_user", "incentive_admin"].into_iter().collect();
        let batch = arrow::record_batch::RecordBatch::try_from_iter([
            ("user_id", Arc::new(StringArray::from(vec!["a@x", "b@x"])) as ArrayRef),
            ("partner_id", Arc::new(StringArray::from(vec!["P1", "P2"])) as ArrayRef),
            ("role", Arc::new(roles) as ArrayRef),
        ])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let f = read_file(Feed::Users, Format::Parquet, &Bytes::from(buf)).unwrap();
        assert_eq!(f.cells(&f.rows[1]), Ok(vec!["b@x", "P2", "incentive_admin"]));
    }

    #[test]
    fn every_truncation_of_a_gzip_file_is_an_error() {
        let full = gzip_sample_len_check();
        for len in 0..full.len() {
            let r = read_file(Feed::Users, Format::CsvGz, &Bytes::copy_from_slice(&full[..len]));
            assert!(r.is_err(), "a gzip file cut at {len} bytes was read");
        }
    }

    fn gzip_sample_len_check() -> Vec<u8> {
        let g = gz_sample();
        assert_eq!(read_file(Feed::Users, Format::CsvGz, &Bytes::from(g.clone())).unwrap().rows.len(), 2);
        g
    }

    /// Every row of `a` as [`TextColumn`] writes it and as arrow's cast writes it (`None`
    /// where either cannot: a date chrono cannot hold).
    fn both_texts(a: arrow::array::ArrayRef) -> (Vec<Option<String>>, Vec<Option<String>>) {
        let column = TextColumn::new(&a).unwrap();
        let ours = (0..a.len())
            .map(|r| {
                let mut text = String::new();
                column.append(r, &mut Vec::new(), &mut text).ok().map(|()| text)
            })
            .collect();
        let arrows = (0..a.len())
            .map(|r| {
                let one = arrow::compute::cast(&a.slice(r, 1), &DataType::Utf8).ok()?;
                let s = one.as_string::<i32>();
                Some(if s.is_null(0) { String::new() } else { s.value(0).to_string() })
            })
            .collect();
        (ours, arrows)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn typed_cells_read_as_arrow_casts_them(
            units in prop::collection::vec(prop::option::of(any::<i64>().prop_map(i128::from)), 1..20),
            wide in any::<i128>(),
            scale in 0i8..=18,
            days in prop::collection::vec(prop::option::of(-1_000_000i32..3_000_000), 1..20),
            extreme_day in prop::sample::select(vec![i32::MIN, i32::MAX, -719_528, 2_932_896, 2_932_897]),
            ints in prop::collection::vec(prop::option::of(any::<i64>()), 1..20),
        ) {
            use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array};
            use std::sync::Arc;
            let mut units = units;
            units.push(Some(wide % 10i128.pow(38)));
            let decimals = Decimal128Array::from(units).with_precision_and_scale(38, scale).unwrap();
            let (ours, arrows) = both_texts(Arc::new(decimals) as ArrayRef);
            prop_assert_eq!(ours, arrows);
            let mut days = days;
            days.push(Some(extreme_day));
            let (ours, arrows) = both_texts(Arc::new(Date32Array::from(days)) as ArrayRef);
            prop_assert_eq!(ours, arrows);
            let (ours, arrows) = both_texts(Arc::new(Int64Array::from(ints)) as ArrayRef);
            prop_assert_eq!(ours, arrows);
        }

        #[test]
        fn flipped_bytes_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), which in 0..3usize) {
            let mut data = match which {
                0 => parquet_sample(),
                1 => gz_sample(),
                _ => b"user_id,partner_id,role\na,P1,incentive_user\n\"b\nc\",P2,x\n".to_vec(),
            };
            let i = pos.index(data.len());
            data[i] = byte;
            let format = [Format::Parquet, Format::CsvGz, Format::Csv][which];
            let _ = read_file(Feed::Users, format, &Bytes::from(data));
        }
    }
}
