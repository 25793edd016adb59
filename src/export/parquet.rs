//! An export's rows as Parquet, with the columns Hugging Face `datasets` infers from the same rows
//! as JSON Lines, so `load_dataset("parquet", ...)` gives the Python objects
//! `load_dataset("json", ...)` gives for the JSONL export of the same selection.
//!
//! `datasets` (5.x) reads JSON Lines with pyarrow's JSON reader and keeps as JSON text (its
//! `Json()` feature, Arrow's `arrow.json` extension type) what a column of structs cannot hold:
//! objects whose keys differ from row to row (a message with `tool_calls` beside one without,
//! `arguments` of different tools), empty objects, and values that are sometimes objects or
//! lists and sometimes not (a `content` that is a string here and a list of parts there), or
//! scalars of different types (pyarrow's "changed from string to number"). [`Shape`] follows the
//! same rules over every row of the export: the columns are the same in every shard and every
//! part, so the shards of a split load as one, and train and validation with one set of features.
//! Everything else is typed as pyarrow types it: strings, `int64`, `double` (integers and
//! fractions mixed), `bool`, `null` (nothing but nulls, or only empty lists), lists and structs.
//! A value at a JSON path is stored as `datasets` stores it: a string that already parses as
//! JSON as it is, anything else as its JSON text.
//!
//! The JSON loader decides the types from the first 10 MB of the first file; retort from every
//! row. They agree unless a later part of a large export mixes shapes its beginning does not (the
//! JSON loader then casts or fails; the Parquet holds every row as written).
//!
//! The rows become Arrow batches through arrow-json's decoder with that schema, and Parquet row
//! groups (snappy) of at most [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] bytes: the memory a
//! shard takes is a row group's, whatever its size.

use std::io::Write;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::properties::WriterProperties;
use arrow_json::reader::Decoder;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::Value;

/// Rows per row group, at most.
pub const ROW_GROUP_ROWS: usize = 2_000;
/// Bytes per row group, at most (encoded, estimated): kd rows carry thousands of log-probs.
pub const ROW_GROUP_BYTES: usize = 64 << 20;
/// Rows decoded into one Arrow batch.
const BATCH_ROWS: usize = 500;

/// What the values at one place of the rows are.
#[derive(Debug, Clone, Default, PartialEq)]
enum Node {
    /// Only nulls (or nothing) so far.
    #[default]
    Null,
    /// Kept as JSON text.
    Json,
    Bool,
    Int,
    Float,
    Str,
    /// A list; the node of its items.
    List(Box<Node>),
    /// Objects with these keys (every object here has all of them, except at the root, where a
    /// row may lack a column), in the order first seen.
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Takes in one more value (never a null: those leave every node as it is).
    fn add(&mut self, value: &Value, root: bool) {
        if matches!(self, Node::Json) || value.is_null() {
            return;
        }
        match value {
            Value::Null => {}
            Value::Object(map) => match self {
                Node::Null => {
                    // An empty object has no struct to be (`datasets` keeps it as JSON).
                    if map.is_empty() && !root {
                        *self = Node::Json;
                        return;
                    }
                    *self = Node::Object(map.keys().map(|k| (k.clone(), Node::Null)).collect());
                    self.add(value, root);
                }
                Node::Object(fields) => {
                    let same_keys = fields.len() == map.len() && fields.iter().all(|(k, _)| map.contains_key(k));
                    if !same_keys && !root {
                        *self = Node::Json;
                        return;
                    }
                    for (key, v) in map {
                        if let Some((_, node)) = fields.iter_mut().find(|(k, _)| k == key) {
                            node.add(v, false);
                        } else {
                            let mut node = Node::Null;
                            node.add(v, false);
                            fields.push((key.clone(), node));
                        }
                    }
                }
                _ => *self = Node::Json,
            },
            Value::Array(items) => match self {
                Node::Null => {
                    *self = Node::List(Box::default());
                    self.add(value, root);
                }
                Node::List(item) => {
                    for v in items {
                        item.add(v, false);
                    }
                }
                _ => *self = Node::Json,
            },
            scalar => {
                let kind = match scalar {
                    Value::Bool(_) => Node::Bool,
                    Value::Number(n) if n.is_i64() => Node::Int,
                    Value::Number(_) => Node::Float,
                    _ => Node::Str,
                };
                *self = match (&*self, kind) {
                    (Node::Null, kind) => kind,
                    (Node::Int | Node::Float, Node::Float) | (Node::Float, Node::Int) => Node::Float,
                    (same, kind) if *same == kind => kind,
                    // A string and a number, a bool and a list, ...: JSON text.
                    _ => Node::Json,
                };
            }
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Node::Null => DataType::Null,
            Node::Json | Node::Str => DataType::Utf8,
            Node::Bool => DataType::Boolean,
            Node::Int => DataType::Int64,
            Node::Float => DataType::Float64,
            Node::List(item) => DataType::List(Arc::new(item.field("item"))),
            Node::Object(fields) => DataType::Struct(fields.iter().map(|(k, n)| n.field(k)).collect::<Fields>()),
        }
    }

    fn field(&self, name: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        if *self == Node::Json {
            // Arrow's canonical JSON extension type, which pyarrow reads as `pa.json_()` and
            // `datasets` as its `Json()` feature.
            field.with_metadata([
                ("ARROW:extension:name".to_owned(), "arrow.json".to_owned()),
                ("ARROW:extension:metadata".to_owned(), String::new()),
            ])
        } else {
            field
        }
    }

    /// The value as the schema holds it: JSON text where the node is JSON.
    fn encode(&self, value: Value) -> Value {
        match (self, value) {
            (_, Value::Null) => Value::Null,
            (Node::Json, Value::String(s)) if serde_json::from_str::<serde::de::IgnoredAny>(&s).is_ok() => Value::String(s),
            (Node::Json, other) => Value::String(other.to_string()),
            (Node::List(item), Value::Array(items)) => Value::Array(items.into_iter().map(|v| item.encode(v)).collect()),
            (Node::Object(fields), Value::Object(map)) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = match fields.iter().find(|(name, _)| *name == k) {
                            Some((_, node)) => node.encode(v),
                            None => v,
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            (_, other) => other,
        }
    }

    /// The dotted paths kept as JSON text (`messages.[]`), for the manifest.
    fn json_paths(&self, path: &str, out: &mut Vec<String>) {
        match self {
            Node::Json => out.push(path.to_owned()),
            Node::List(item) => item.json_paths(&format!("{path}.[]"), out),
            Node::Object(fields) => {
                for (k, n) in fields {
                    n.json_paths(&if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
                }
            }
            _ => {}
        }
    }
}

/// The columns of an export, learnt from its rows one at a time (memory: the schema's size).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    root: Node,
    rows: u64,
}

impl Shape {
    /// Takes in one row (a JSON object).
    pub fn add(&mut self, row: &Value) {
        self.root.add(row, true);
        self.rows += 1;
    }

    /// The Arrow schema of the rows seen: a nullable column per key, in the order first seen.
    #[must_use]
    pub fn schema(&self) -> SchemaRef {
        match self.root.data_type() {
            DataType::Struct(fields) => Arc::new(Schema::new(fields)),
            _ => Arc::new(Schema::empty()),
        }
    }

    /// The places held as JSON text, dotted (`messages.[]`, `tools.[].function.parameters`).
    #[must_use]
    pub fn json_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.root.json_paths("", &mut out);
        out
    }
}

/// Why a row could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The row (0-based, in this shard) and what the decoder or writer said.
    #[error("row {row}: {message}")]
    Row { row: usize, message: String },
    #[error("{0}")]
    Write(String),
}

/// One Parquet file being written: rows in, row groups out.
pub struct ShardWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    root: Node,
    schema: SchemaRef,
    pending: Vec<Value>,
    /// Rows written before `pending`.
    written: usize,
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

fn decoder(schema: &SchemaRef) -> Result<Decoder, ParquetError> {
    arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_ROWS)
        .with_strict_mode(true)
        .build_decoder()
        .map_err(|e| ParquetError::Write(e.to_string()))
}

impl<W: Write + Send> ShardWriter<W> {
    pub fn new(out: W, shape: &Shape) -> Result<Self, ParquetError> {
        let schema = shape.schema();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props())).map_err(|e| ParquetError::Write(e.to_string()))?;
        Ok(Self { writer, root: shape.root.clone(), schema, pending: Vec::with_capacity(BATCH_ROWS), written: 0 })
    }

    /// Adds one row; every [`BATCH_ROWS`] rows go to the writer as a batch.
    pub fn write(&mut self, row: Value) -> Result<(), ParquetError> {
        self.pending.push(self.root.encode(row));
        if self.pending.len() >= BATCH_ROWS {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), ParquetError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = decode(&self.schema, &self.pending).map_err(|(i, message)| ParquetError::Row { row: self.written + i, message })?;
        self.writer.write(&batch).map_err(|e| ParquetError::Write(e.to_string()))?;
        self.written += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    /// Writes what is left and the footer; the output, for its owner to finish.
    pub fn finish(mut self) -> Result<W, ParquetError> {
        self.flush_pending()?;
        self.writer.into_inner().map_err(|e| ParquetError::Write(e.to_string()))
    }
}

/// The rows as one batch, or the first row that does not fit the schema and why.
fn decode(schema: &SchemaRef, rows: &[Value]) -> Result<arrow_array::RecordBatch, (usize, String)> {
    let whole = decoder(schema)
        .map_err(|e| (0, e.to_string()))
        .and_then(|mut d| d.serialize(rows).and_then(|()| d.flush()).map_err(|e| (0, e.to_string())));
    match whole {
        Ok(Some(batch)) => Ok(batch),
        Ok(None) => Ok(arrow_array::RecordBatch::new_empty(schema.clone())),
        Err(_) => {
            // Which row: each alone.
            for (i, row) in rows.iter().enumerate() {
                let one = decoder(schema)
                    .map_err(|e| (i, e.to_string()))
                    .and_then(|mut d| d.serialize(std::slice::from_ref(row)).and_then(|()| d.flush()).map_err(|e| (i, e.to_string())));
                one?;
            }
            Err((0, "the rows do not fit the schema together".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use arrow_array::Array;
    use serde_json::json;

    fn shape(rows: &[Value]) -> Shape {
        let mut s = Shape::default();
        for r in rows {
            s.add(r);
        }
        s
    }

    #[test]
    fn keys_that_differ_become_json_as_datasets_infers_them() {
        let rows = [
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "tool_calls": [{"function": {"arguments": {"a": 1}}}]}]}),
            json!({"messages": [{"role": "user", "content": "yo"}], "tools": [{"type": "function"}]}),
        ];
        let s = shape(&rows);
        assert_eq!(s.json_paths(), ["messages.[]"]);
        let schema = s.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["messages", "tools"], "columns in the order first seen");
        // Same keys everywhere: a struct, typed per field.
        let s = shape(&[json!({"c": [{"from": "human", "value": "a"}], "n": 1}), json!({"c": [], "n": 2.5})]);
        assert!(s.json_paths().is_empty());
        assert_eq!(s.schema().field(1).data_type(), &DataType::Float64);
        assert!(matches!(s.schema().field(0).data_type(), DataType::List(f) if matches!(f.data_type(), DataType::Struct(_))));
        // A string here and a list there; a string here and a number there; an empty object.
        let s = shape(&[json!({"a": "x", "b": "1", "e": {}}), json!({"a": ["x"], "b": 1})]);
        assert_eq!(s.json_paths(), ["a", "b", "e"]);
        // Only empty lists and nulls: null types, as pyarrow infers them.
        let s = shape(&[json!({"h": [], "z": null}), json!({"h": []})]);
        assert_eq!(s.schema().field(0).data_type(), &DataType::List(Arc::new(Field::new("item", DataType::Null, true))));
        assert_eq!(s.schema().field(1).data_type(), &DataType::Null);
    }

    #[test]
    fn json_text_is_stored_as_datasets_stores_it() {
        let n = Node::Json;
        assert_eq!(n.encode(json!({"a": 1})), json!("{\"a\":1}"));
        assert_eq!(n.encode(json!("plain")), json!("\"plain\""));
        // A string that parses as JSON is kept as it is (and so reads back parsed, in both loaders).
        assert_eq!(n.encode(json!("42")), json!("42"));
        assert_eq!(n.encode(Value::Null), Value::Null);
    }

    #[test]
    fn rows_round_trip_through_a_shard_and_the_bytes_are_the_same_twice() {
        let rows: Vec<Value> = (0..1234)
            .map(|i| {
                let mut m = json!({"role": "assistant", "content": format!("answer {i}")});
                if i % 3 == 0 {
                    m["tool_calls"] = json!([{"function": {"name": "f", "arguments": {"k": i}}}]);
                }
                json!({"messages": [{"role": "user", "content": "q"}, m], "score": if i % 2 == 0 { json!(1) } else { json!(0.5) }, "h": []})
            })
            .collect();
        let s = shape(&rows);
        let write = || {
            let mut w = ShardWriter::new(Vec::new(), &s).unwrap();
            for r in &rows {
                w.write(r.clone()).unwrap();
            }
            w.finish().unwrap()
        };
        let bytes = write();
        assert_eq!(bytes, write(), "the same rows, the same bytes");
        let path = std::env::temp_dir().join(format!("retort-shard-{}.parquet", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let meta = reader.metadata().clone();
        assert!(meta.num_row_groups() >= 1 && meta.row_groups().iter().all(|g| g.num_rows() as usize <= ROW_GROUP_ROWS));
        let batches: Vec<_> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        let total: usize = batches.iter().map(arrow_array::RecordBatch::num_rows).sum();
        assert_eq!(total, rows.len());
        // The JSON column carries the extension type pyarrow reads as pa.json_().
        let field = batches[0].schema().field(0).clone();
        let DataType::List(item) = field.data_type() else { panic!("{field:?}") };
        assert_eq!(item.metadata().get("ARROW:extension:name").map(String::as_str), Some("arrow.json"));
        let list = batches[0].column(0).as_any().downcast_ref::<arrow_array::ListArray>().unwrap();
        let texts = list.value(3);
        let texts = texts.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        let back: Value = serde_json::from_str(texts.value(1)).unwrap();
        assert_eq!(back, rows[3]["messages"][1]);
        let score = batches[0].column(1).as_any().downcast_ref::<arrow_array::Float64Array>().unwrap();
        assert!((score.value(0) - 1.0).abs() < f64::EPSILON && !score.is_null(1));
    }

    #[test]
    fn a_row_that_does_not_fit_is_named() {
        let s = shape(&[json!({"n": 1})]);
        let mut w = ShardWriter::new(Vec::new(), &s).unwrap();
        w.write(json!({"n": 2})).unwrap();
        w.write(json!({"n": "three"})).unwrap();
        let e = w.finish().err().unwrap();
        assert!(matches!(e, ParquetError::Row { row: 1, .. }), "{e}");
    }
}
