//! Reading Parquet files (as the Hugging Face Hub ships most datasets) as records.
//!
//! Each row becomes the JSON object a JSONL twin of the file would hold (nulls kept), so
//! detection and every format's parser are the ones JSONL uses. Rows of strings, numbers,
//! booleans, lists and structs (every set the Hub ships for distillation) are turned into JSON
//! values directly; other types (timestamps, binary, maps...) go through arrow-json's encoder
//! and are parsed back, which cost a third of a Parquet import's reading. The file is read a
//! row group at a time, a few hundred rows per batch: memory stays flat in the file's size. A row's
//! place is its row in the file (1-based, as a line is) with its row group and its row in that.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_json::writer::{EncoderOptions, make_encoder};
use arrow_schema::{ArrowError, DataType, Field};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

use super::reader::{RawRecord, ReadError};

/// Runs `f`, a call into the Parquet decoder, turning a panic into an error. arrow-rs panics on
/// some damaged pages (`offset + len out of bounds` in its bit-packed levels) where it should
/// return an error; a damaged download must be an error naming its place, never a crash. The
/// panic's own report is kept off the terminal while this runs (the hook is the default one
/// elsewhere).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    use std::cell::Cell;
    thread_local! {
        static DECODING: Cell<bool> = const { Cell::new(false) };
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    DECODING.with(|d| d.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DECODING.with(|d| d.set(false));
    result.map_err(|payload| {
        let what = payload.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| payload.downcast_ref::<String>().cloned());
        format!("the Parquet decoder failed on damaged data ({})", what.unwrap_or_else(|| "no message".into()))
    })
}

/// Rows decoded per batch: R1-sized rows are tens of kilobytes, so a batch is a few megabytes.
const BATCH_ROWS: usize = 256;

const MAGIC: &[u8; 4] = b"PAR1";

/// Whether a file is Parquet: by its name, or by its first four bytes (`PAR1`).
#[must_use]
pub fn is_parquet(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) {
        return true;
    }
    let mut head = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok_and(|()| &head == MAGIC)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Checks the magic numbers at both ends, so that a file that is not Parquet, or a truncated
/// download of one, says so plainly (the footer reader's own message is "corrupt footer").
fn check_magic(file: &mut File) -> io::Result<()> {
    let size = file.metadata()?.len();
    let mut head = [0u8; 4];
    let got = file.read(&mut head)?;
    if got < 4 || &head != MAGIC {
        let found = String::from_utf8_lossy(&head[..got]).escape_debug().to_string();
        return Err(invalid(format!(
            "is not a Parquet file: it does not start with the `PAR1` magic number (it starts with `{found}`); \
             a .parquet name on another kind of file? Name the format with --format, or rename it"
        )));
    }
    let mut tail = [0u8; 4];
    if size < 12 {
        return Err(invalid(format!("is a truncated Parquet file: {size} bytes, too short for a footer (fetch it again)")));
    }
    file.seek(SeekFrom::End(-4))?;
    file.read_exact(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    if &tail == b"PARE" {
        return Err(invalid("is an encrypted Parquet file: retort cannot read encrypted Parquet".into()));
    }
    if &tail != MAGIC {
        return Err(invalid(format!(
            "is a truncated Parquet file: it starts as one but its {size} bytes do not end with the `PAR1` footer \
             (an interrupted download? fetch it again)"
        )));
    }
    Ok(())
}

/// A row read: its bytes (identity or JSON text) and, unless read as text, its value.
type Row = (Vec<u8>, Option<Value>);

/// The rows of a Parquet file, as [`RawRecord`]s holding each row's JSON.
pub struct ParquetRows {
    file: File,
    metadata: ArrowReaderMetadata,
    limit: u64,
    /// Rows in each row group.
    group_rows: Vec<u64>,
    /// The row group being read, and its reader.
    group: usize,
    reader: Option<ParquetRecordBatchReader>,
    /// The batch being handed out, as JSON rows, and the next one's index in it.
    rows: std::vec::IntoIter<Row>,
    /// Rows handed out (or passed over) so far.
    row: u64,
    total_rows: u64,
    size: u64,
    /// Rows as their JSON text (arrow-json's), never as values.
    json: bool,
    /// Only row groups `g` with `g % share.0 == share.1` are read ([`ParquetRows::share`]).
    share: (usize, usize),
}

impl ParquetRows {
    pub fn open(path: &Path, limit: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        check_magic(&mut file)?;
        let metadata = guarded(|| ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| e.to_string()))
            .and_then(|r| r)
            .map_err(|e| invalid(format!("its Parquet footer cannot be read: {e} (a damaged file? fetch it again)")))?;
        let group_rows: Vec<u64> = metadata.metadata().row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect();
        let total_rows = group_rows.iter().sum();
        let size = file.metadata()?.len();
        Ok(Self {
            file,
            metadata,
            limit,
            group_rows,
            group: 0,
            reader: None,
            rows: Vec::new().into_iter(),
            row: 0,
            total_rows,
            size,
            json: false,
            share: (1, 0),
        })
    }

    /// Reads rows as their JSON text (arrow-json's, as imports before migration 0006 hashed
    /// them) rather than as values.
    pub fn json_rows(&mut self) {
        self.json = true;
    }

    /// Reads only every `of`th row group, starting at group `which`: `of` readers, one a thread,
    /// read a file together. Rows keep their place in the file.
    pub fn share(&mut self, of: usize, which: usize) {
        self.share = (of.max(1), which);
    }

    /// How many rows the file holds, from its footer.
    #[must_use]
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Rows handed out or passed over so far.
    #[must_use]
    pub fn rows_read(&self) -> u64 {
        self.row
    }

    /// How far reading is, in bytes of the file (rows read, in proportion), for progress.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        if self.total_rows == 0 {
            return 0;
        }
        (self.size as f64 * (self.row as f64 / self.total_rows as f64)) as u64
    }

    fn builder(&self) -> io::Result<ParquetRecordBatchReaderBuilder<File>> {
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.try_clone()?, self.metadata.clone()))
    }

    fn open_group(&self, group: usize) -> Result<ParquetRecordBatchReader, ArrowError> {
        let builder = self.builder().map_err(|e| ArrowError::IoError(e.to_string(), e))?;
        guarded(|| {
            builder.with_row_groups(vec![group]).with_batch_size(BATCH_ROWS).build().map_err(|e| ArrowError::ExternalError(Box::new(e)))
        })
        .unwrap_or_else(|p| Err(ArrowError::ComputeError(p)))
    }

    /// The top-level column a row group fails on, found by reading each column of it alone.
    fn failing_column(&self, group: usize) -> Option<String> {
        let schema = self.metadata.parquet_schema();
        let fields = self.metadata.schema().fields();
        (0..fields.len()).find_map(|i| {
            let builder = self.builder().ok()?;
            let mask = ProjectionMask::roots(schema, [i]);
            let reader = builder.with_row_groups(vec![group]).with_projection(mask).with_batch_size(BATCH_ROWS).build();
            let fails = match reader {
                Ok(mut r) => guarded(|| r.any(|b| b.is_err())).unwrap_or(true),
                Err(_) => true,
            };
            fails.then(|| fields[i].name().clone())
        })
    }

    /// The error for row group `group`, which could not be read: its rows not yet read are
    /// passed over, and reading goes on with the next group.
    fn unreadable_group(&mut self, group: usize, error: &dyn std::fmt::Display) -> ReadError {
        let first = self.row + 1;
        let end = self.group_rows[..=group].iter().sum::<u64>();
        let rows = (end + 1).saturating_sub(first);
        let column = self.failing_column(group).map_or_else(String::new, |c| format!(", column `{c}`"));
        let message = format!("rows {first}-{end} cannot be read{column}: {error} (a damaged file? fetch it again)");
        self.row = end;
        self.reader = None;
        self.group = group + 1;
        ReadError::Unreadable { line: first, rows, message }
    }

    /// A batch's rows: as values with their identity bytes when every column is of a type
    /// [`native`] takes, else as arrow-json's text.
    fn encode(batch: &RecordBatch, json: bool) -> Result<Vec<Row>, ArrowError> {
        let schema = batch.schema();
        if !json && schema.fields().iter().all(|f| native(f.data_type())) {
            return Ok((0..batch.num_rows())
                .map(|i| {
                    let mut id = Vec::with_capacity(1024);
                    let mut row = serde_json::Map::with_capacity(batch.num_columns());
                    for (field, column) in schema.fields().iter().zip(batch.columns()) {
                        id.extend_from_slice(field.name().as_bytes());
                        id.push(0x1f);
                        row.insert(field.name().clone(), cell(column.as_ref(), i, &mut id));
                    }
                    (id, Some(Value::Object(row)))
                })
                .collect());
        }
        let array = StructArray::from(batch.clone());
        let field = Arc::new(Field::new_struct("", batch.schema().fields().clone(), false));
        let options = EncoderOptions::default().with_explicit_nulls(true);
        let mut encoder = make_encoder(&field, &array, &options)?;
        let mut rows = Vec::with_capacity(array.len());
        for i in 0..array.len() {
            let mut out = Vec::with_capacity(1024);
            encoder.encode(i, &mut out);
            rows.push((out, None));
        }
        Ok(rows)
    }

    /// The next batch of rows, from this group or the next; `None` after the last.
    fn next_batch(&mut self) -> Option<Result<(), ReadError>> {
        loop {
            if self.reader.is_none() {
                let (of, which) = self.share;
                if of > 1 {
                    while self.group < self.group_rows.len() && self.group % of != which {
                        self.group += 1;
                    }
                    self.row = self.group_rows[..self.group.min(self.group_rows.len())].iter().sum();
                }
                if self.group >= self.group_rows.len() {
                    return None;
                }
                match self.open_group(self.group) {
                    Ok(r) => self.reader = Some(r),
                    Err(e) => return Some(Err(self.unreadable_group(self.group, &e))),
                }
            }
            let reader = self.reader.as_mut()?;
            let next = match guarded(|| reader.next()) {
                Ok(next) => next,
                Err(panicked) => return Some(Err(self.unreadable_group(self.group, &panicked))),
            };
            match next {
                None => {
                    self.reader = None;
                    self.group += 1;
                }
                Some(Err(e)) => return Some(Err(self.unreadable_group(self.group, &e))),
                Some(Ok(batch)) => match guarded(|| Self::encode(&batch, self.json)).unwrap_or_else(|p| Err(ArrowError::ComputeError(p))) {
                    Ok(rows) => {
                        self.rows = rows.into_iter();
                        return Some(Ok(()));
                    }
                    Err(e) => {
                        let message = format!("cannot be turned into JSON: {e}");
                        return Some(Err(self.unreadable_group(self.group, &message)));
                    }
                },
            }
        }
    }

    /// Rows in each row group, to place a row ([`place`]).
    #[must_use]
    pub fn group_rows(&self) -> &[u64] {
        &self.group_rows
    }
}

/// Whether [`cell`] turns values of this type into JSON (as arrow-json writes them).
fn native(t: &DataType) -> bool {
    use DataType as T;
    match t {
        T::Null
        | T::Boolean
        | T::Int8
        | T::Int16
        | T::Int32
        | T::Int64
        | T::UInt8
        | T::UInt16
        | T::UInt32
        | T::UInt64
        | T::Float32
        | T::Float64
        | T::Utf8
        | T::LargeUtf8
        | T::Utf8View => true,
        T::List(f) | T::LargeList(f) | T::FixedSizeList(f, _) => native(f.data_type()),
        T::Struct(fields) => fields.iter().all(|f| native(f.data_type())),
        _ => false,
    }
}

/// Value `i` of `array` as JSON, as arrow-json writes it (nulls kept, a non-finite float as
/// null, a 32-bit float by its shortest decimal); its identity is appended to `id`.
fn cell(array: &dyn Array, i: usize, id: &mut Vec<u8>) -> Value {
    use DataType as T;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    fn int(v: i64, id: &mut Vec<u8>) -> Value {
        id.push(4);
        id.extend_from_slice(&v.to_le_bytes());
        Value::from(v)
    }
    fn float(v: f64, id: &mut Vec<u8>) -> Value {
        id.push(6);
        id.extend_from_slice(&v.to_bits().to_le_bytes());
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
    fn string(v: &str, id: &mut Vec<u8>) -> Value {
        id.push(3);
        id.extend_from_slice(&(v.len() as u64).to_le_bytes());
        id.extend_from_slice(v.as_bytes());
        Value::String(v.to_owned())
    }
    fn list(items: &dyn Array, id: &mut Vec<u8>) -> Value {
        id.push(7);
        let values = (0..items.len()).map(|j| cell(items, j, id)).collect();
        id.push(8);
        Value::Array(values)
    }
    if array.is_null(i) {
        id.push(0);
        return Value::Null;
    }
    match array.data_type() {
        T::Boolean => {
            let v = array.as_boolean().value(i);
            id.push(1 + u8::from(v));
            Value::Bool(v)
        }
        T::Int8 => int(array.as_primitive::<Int8Type>().value(i).into(), id),
        T::Int16 => int(array.as_primitive::<Int16Type>().value(i).into(), id),
        T::Int32 => int(array.as_primitive::<Int32Type>().value(i).into(), id),
        T::Int64 => int(array.as_primitive::<Int64Type>().value(i), id),
        T::UInt8 => int(array.as_primitive::<UInt8Type>().value(i).into(), id),
        T::UInt16 => int(array.as_primitive::<UInt16Type>().value(i).into(), id),
        T::UInt32 => int(array.as_primitive::<UInt32Type>().value(i).into(), id),
        T::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            id.push(5);
            id.extend_from_slice(&v.to_le_bytes());
            Value::from(v)
        }
        // arrow-json writes an f32 by its own shortest form ("0.1"), not widened (0.100000001...).
        T::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(i);
            float(if v.is_finite() { v.to_string().parse().unwrap_or(f64::from(v)) } else { f64::NAN }, id)
        }
        T::Float64 => float(array.as_primitive::<Float64Type>().value(i), id),
        T::Utf8 => string(array.as_string::<i32>().value(i), id),
        T::LargeUtf8 => string(array.as_string::<i64>().value(i), id),
        T::Utf8View => string(array.as_string_view().value(i), id),
        T::List(_) => list(array.as_list::<i32>().value(i).as_ref(), id),
        T::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref(), id),
        T::FixedSizeList(..) => list(array.as_fixed_size_list().value(i).as_ref(), id),
        T::Struct(fields) => {
            let s = array.as_struct();
            let mut object = serde_json::Map::with_capacity(fields.len());
            id.push(9);
            for (field, column) in fields.iter().zip(s.columns()) {
                id.extend_from_slice(field.name().as_bytes());
                id.push(0x1f);
                object.insert(field.name().clone(), cell(column.as_ref(), i, id));
            }
            id.push(10);
            Value::Object(object)
        }
        // `native` let no other type in.
        _ => {
            id.push(0);
            Value::Null
        }
    }
}

/// Where row `row` (1-based, in the file) is: its row group (0-based, as pyarrow counts them) and
/// its row in that group (1-based).
#[must_use]
pub fn place(group_rows: &[u64], row: u64) -> (usize, u64) {
    let mut before = 0;
    for (g, &n) in group_rows.iter().enumerate() {
        if row <= before + n {
            return (g, row - before);
        }
        before += n;
    }
    (group_rows.len().saturating_sub(1), row.saturating_sub(before))
}

impl Iterator for ParquetRows {
    type Item = Result<RawRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((bytes, value)) = self.rows.next() {
                let index = self.row;
                self.row += 1;
                let size = bytes.len() as u64;
                if size > self.limit {
                    return Some(Err(ReadError::TooLarge { index, line: index + 1, column: 1, size, limit: self.limit }));
                }
                return Some(Ok(RawRecord { index, line: index + 1, column: 1, bytes, value }));
            }
            match self.next_batch()? {
                Ok(()) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests_support {
    pub use super::tests::{openr1_batch, write};

    pub fn write_sample(path: &std::path::Path, rows: usize, group_rows: usize) {
        write(path, &openr1_batch(rows), group_rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{BooleanBuilder, ListBuilder, StringBuilder, StructBuilder};
    use arrow_array::{ArrayRef, BooleanArray, StringArray};
    use arrow_schema::{Fields, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// OpenR1-Math's shape: strings, `list<string>`, `list<bool>` and `list<struct<content, role>>`.
    pub fn openr1_batch(rows: usize) -> RecordBatch {
        let problem: ArrayRef = Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("What is {i}+{i}?"))));
        let mut gens = ListBuilder::new(StringBuilder::new());
        let mut verdicts = ListBuilder::new(BooleanBuilder::new());
        let msg_fields = Fields::from(vec![Field::new("content", DataType::Utf8, true), Field::new("role", DataType::Utf8, true)]);
        let mut messages = ListBuilder::new(StructBuilder::from_fields(msg_fields.clone(), rows));
        for i in 0..rows {
            gens.values().append_value(format!("<think>add</think>\\boxed{{{}}}", 2 * i));
            gens.values().append_value("<think>hmm</think>\\boxed{0}");
            gens.append(true);
            verdicts.values().append_value(true);
            verdicts.values().append_null();
            verdicts.append(true);
            let m = messages.values();
            m.field_builder::<StringBuilder>(0).unwrap().append_value(format!("What is {i}+{i}?"));
            m.field_builder::<StringBuilder>(1).unwrap().append_value("user");
            m.append(true);
            messages.append(true);
        }
        let (gens, verdicts, messages): (ArrayRef, ArrayRef, ArrayRef) =
            (Arc::new(gens.finish()), Arc::new(verdicts.finish()), Arc::new(messages.finish()));
        let schema = Schema::new(vec![
            Field::new("problem", DataType::Utf8, true),
            Field::new("generations", gens.data_type().clone(), true),
            Field::new("correctness_math_verify", verdicts.data_type().clone(), true),
            Field::new("messages", messages.data_type().clone(), true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![problem, gens, verdicts, messages]).unwrap()
    }

    pub fn write(path: &Path, batch: &RecordBatch, group_rows: usize) {
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn rows_read_as_the_json_of_their_jsonl_twin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000-of-00001.parquet");
        write(&path, &openr1_batch(700), 300);
        assert!(is_parquet(&path));
        let rows = ParquetRows::open(&path, 1 << 20).unwrap();
        assert_eq!((rows.total_rows(), rows.group_rows()), (700, &[300, 300, 100][..]));
        let got: Vec<RawRecord> = rows.map(Result::unwrap).collect();
        assert_eq!(got.len(), 700);
        assert_eq!((got[0].index, got[0].line, got[699].line), (0, 1, 700));
        let first = got[1].value.clone().unwrap();
        assert_eq!(
            first,
            serde_json::json!({
                "problem": "What is 1+1?",
                "generations": ["<think>add</think>\\boxed{2}", "<think>hmm</think>\\boxed{0}"],
                "correctness_math_verify": [true, null],
                "messages": [{"content": "What is 1+1?", "role": "user"}]
            })
        );
        assert_eq!(place(&[300, 300, 100], 1), (0, 1));
        assert_eq!(place(&[300, 300, 100], 300), (0, 300));
        assert_eq!(place(&[300, 300, 100], 301), (1, 1));
        assert_eq!(place(&[300, 300, 100], 700), (2, 100));
    }

    #[test]
    fn rows_read_as_values_equal_arrow_json_text_parsed() {
        use arrow_array::builder::{Float32Builder, Int64Builder, LargeStringBuilder, UInt64Builder};
        use arrow_array::{Float32Array, Float64Array, Int32Array};
        // Every type `native` takes, nulls among them, nested as the Hub's sets nest them.
        let n = 5;
        let mut info = StructBuilder::from_fields(
            Fields::from(vec![Field::new("source", DataType::LargeUtf8, true), Field::new("tokens", DataType::Int64, true)]),
            n,
        );
        let mut ids = ListBuilder::new(UInt64Builder::new());
        let mut scores = ListBuilder::new(Float32Builder::new());
        for i in 0..n {
            let source = info.field_builder::<LargeStringBuilder>(0).unwrap();
            if i == 2 {
                source.append_null();
            } else {
                source.append_value(format!("src \"{i}\"\n\u{1F600}"));
            }
            info.field_builder::<Int64Builder>(1).unwrap().append_value(-(i as i64) << 40);
            info.append(i != 3);
            ids.values().append_value(u64::MAX - i as u64);
            ids.append(i != 1);
            scores.values().append_value(0.1 * i as f32);
            scores.values().append_value(f32::NAN);
            scores.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(-3), Some(4), Some(5)])),
            Arc::new(Float64Array::from(vec![0.5, f64::INFINITY, 1e300, -0.0, 2.0 / 3.0])),
            Arc::new(Float32Array::from(vec![Some(0.1), Some(1.5), None, Some(3.0e-8), Some(f32::MAX)])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false), Some(true), None])),
            Arc::new(info.finish()),
            Arc::new(ids.finish()),
            Arc::new(scores.finish()),
            Arc::new(arrow_array::NullArray::new(n)),
        ];
        let names = ["i", "f64", "f32", "ok", "info", "ids", "scores", "nothing"];
        let fields: Vec<Field> = names.iter().zip(&columns).map(|(name, c)| Field::new(*name, c.data_type().clone(), true)).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let values = ParquetRows::encode(&batch, false).unwrap();
        let texts = ParquetRows::encode(&batch, true).unwrap();
        for (i, ((id, value), (text, _))) in values.iter().zip(&texts).enumerate() {
            let parsed: serde_json::Value = serde_json::from_slice(text).unwrap();
            assert_eq!(value.as_ref(), Some(&parsed), "row {i}: {}", String::from_utf8_lossy(text));
            assert!(!id.is_empty());
        }
        // Rows that differ have different identities.
        let identities: std::collections::HashSet<&Vec<u8>> = values.iter().map(|(id, _)| id).collect();
        assert_eq!(identities.len(), n);
        // The openr1 rows too, through a file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, &openr1_batch(40), 16);
        let mut as_json = ParquetRows::open(&path, 1 << 20).unwrap();
        as_json.json_rows();
        for (v, t) in ParquetRows::open(&path, 1 << 20).unwrap().zip(as_json) {
            let (v, t) = (v.unwrap(), t.unwrap());
            assert_eq!((v.index, t.value), (t.index, None));
            assert_eq!(v.value.unwrap(), serde_json::from_slice::<serde_json::Value>(&t.bytes).unwrap());
        }
    }

    #[test]
    fn readers_sharing_a_file_read_every_row_once_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, &openr1_batch(95), 10);
        let whole: Vec<(u64, serde_json::Value)> =
            ParquetRows::open(&path, 1 << 20).unwrap().map(|r| r.map(|r| (r.index, r.value.unwrap())).unwrap()).collect();
        let mut shared = Vec::new();
        for which in 0..3 {
            let mut rows = ParquetRows::open(&path, 1 << 20).unwrap();
            rows.share(3, which);
            let share: Vec<_> = rows.map(|r| r.map(|r| (r.index, r.value.unwrap())).unwrap()).collect();
            assert_eq!(share.len(), [35, 30, 30][which]); // groups 0,3,6,9 (the last of 5 rows); 1,4,7; 2,5,8
            shared.extend(share);
        }
        shared.sort_by_key(|(i, _)| *i);
        assert_eq!(shared, whole);
    }

    #[test]
    fn a_row_over_the_limit_is_refused_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, &openr1_batch(12), 5);
        let whole: Vec<RawRecord> = ParquetRows::open(&path, 1 << 20).unwrap().map(Result::unwrap).collect();
        // Rows 10 and 11 ("10+10") are longer than rows 0-9 ("9+9"): a limit between refuses them.
        let got: Vec<_> = ParquetRows::open(&path, whole[9].bytes.len() as u64).unwrap().collect();
        assert_eq!(got.len(), 12);
        assert!(got[..10].iter().all(Result::is_ok));
        assert!(matches!(got[10], Err(ReadError::TooLarge { line: 11, .. })), "{:?}", got[10]);
        assert!(matches!(got[11], Err(ReadError::TooLarge { line: 12, .. })), "{:?}", got[11]);
    }

    #[test]
    fn not_parquet_and_truncated_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.parquet");
        write(&good, &openr1_batch(50), 20);
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = ParquetRows::open(&cut, 1 << 20).err().unwrap().to_string();
        assert!(err.starts_with("is a truncated Parquet file: it starts as one but its"), "{err}");
        let json = dir.path().join("json.parquet");
        std::fs::write(&json, "{\"problem\": \"p\"}\n").unwrap();
        let err = ParquetRows::open(&json, 1 << 20).err().unwrap().to_string();
        assert!(err.contains("does not start with the `PAR1` magic number (it starts with `{\\\"pr`)"), "{err}");
        // The magic at both ends, the footer broken.
        let mut broken = bytes.clone();
        let n = broken.len();
        broken[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let bad_footer = dir.path().join("footer.parquet");
        std::fs::write(&bad_footer, &broken).unwrap();
        let err = ParquetRows::open(&bad_footer, 1 << 20).err().unwrap().to_string();
        assert!(err.starts_with("its Parquet footer cannot be read:"), "{err}");
    }

    #[test]
    fn a_damaged_row_group_is_located_and_the_others_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, &openr1_batch(90), 30);
        let mut bytes = std::fs::read(&path).unwrap();
        let rows = ParquetRows::open(&path, 1 << 20).unwrap();
        // The middle group's `generations` chunk: garbage over its pages.
        let column = &rows.metadata.metadata().row_group(1).columns()[1];
        let (start, len) = column.byte_range();
        for b in &mut bytes[start as usize + 8..(start + len) as usize] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let got: Vec<_> = ParquetRows::open(&path, 1 << 20).unwrap().collect();
        let errors: Vec<String> = got
            .iter()
            .filter_map(|r| match r {
                Err(ReadError::Unreadable { line, rows, message }) => Some(format!("{line}+{rows}: {message}")),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("31+30: rows 31-60 cannot be read, column `generations`: "), "{errors:?}");
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 60);
    }
}

#[cfg(test)]
mod fuzz {
    use super::tests_support::*;
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Damaged files (bytes overwritten, cut, a range zeroed) are read to the end or refused,
    /// never a panic or a hang.
    #[test]
    fn mutated_files_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.parquet");
        write_sample(&good, 120, 40);
        let bytes = std::fs::read(&good).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        let path = dir.path().join("m.parquet");
        let mut outcomes = [0u32; 3];
        for _ in 0..1000 {
            let mut m = bytes.clone();
            match rng.random_range(0..3) {
                0 => {
                    for _ in 0..rng.random_range(1..8) {
                        let i = rng.random_range(0..m.len());
                        m[i] = rng.random();
                    }
                }
                1 => {
                    let start = rng.random_range(0..m.len());
                    let end = (start + rng.random_range(1..64)).min(m.len());
                    m[start..end].fill(0);
                }
                _ => m.truncate(rng.random_range(0..m.len())),
            }
            std::fs::write(&path, &m).unwrap();
            let run = std::panic::catch_unwind(|| match ParquetRows::open(&path, 1 << 20) {
                Err(_) => 0,
                Ok(rows) => {
                    if rows.take(10_000).all(|r| r.is_ok()) {
                        1
                    } else {
                        2
                    }
                }
            });
            let outcome = run.unwrap_or_else(|_| panic!("a panic reading a damaged file (kept at {})", path.display()));
            outcomes[outcome] += 1;
        }
        assert!(outcomes[0] > 0 && outcomes[1] + outcomes[2] > 0, "{outcomes:?}");
    }
}
