//! Splitting an input file into records, in constant memory.
//!
//! JSONL is read a line at a time; a JSON file holding an array is read an element at a time by a
//! small scanner that tracks strings and nesting (so a 900 MB array never sits in memory); any
//! other JSON file is read as a sequence of top-level values (one pretty-printed object, or
//! several). Every record carries the line it starts on, and no record may be larger than the
//! limit: a longer one is skipped over without being held, and reported. A `.gz` or `.zst` file is
//! read as its text, decompressed on the fly; a Parquet file row by row ([`super::parquet`]).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// One record's raw bytes and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// 0-based position of the record in the file.
    pub index: u64,
    /// 1-based line the record starts on.
    pub line: u64,
    /// 1-based column (in bytes) the record starts at.
    pub column: u64,
    /// The record's text; for a Parquet row read as a value, a compact encoding of its cells
    /// (its identity, which origins hash, and its size).
    pub bytes: Vec<u8>,
    /// The record already as JSON (a Parquet row), so it is not written as text and parsed back.
    pub value: Option<serde_json::Value>,
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The record is larger than the limit; it was skipped, and reading goes on after it.
    TooLarge {
        index: u64,
        line: u64,
        column: u64,
        size: u64,
        limit: u64,
    },
    /// The file's structure is broken (e.g. an array never closed, a stray `}`); reading cannot
    /// go on.
    Malformed {
        line: u64,
        column: u64,
        message: Malformed,
    },
    /// Part of the file cannot be read (a Parquet row group): `rows` records from `line` on are
    /// passed over, and reading goes on after them.
    Unreadable {
        line: u64,
        rows: u64,
        message: String,
    },
    Io(io::Error),
}

/// What is broken in a file's structure, at the place a [`ReadError::Malformed`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A closing bracket, `,` or `:` where a record should begin.
    #[error("unexpected `{0}` where a JSON value should start")]
    UnexpectedStart(char),
    #[error("the JSON value starting at line {line} is never closed (the file ends inside it)")]
    NeverClosed { line: u64 },
    #[error("unexpected `{0}` after the closing `]` of the array")]
    AfterArray(char),
    #[error("expected a JSON array")]
    NotArray,
    #[error("the JSON array is never closed (the file ends before its `]`)")]
    ArrayNeverClosed,
    #[error("a `,` with no element after it before the `]`")]
    TrailingComma,
    #[error("a `,` where an element should be")]
    MissingElement,
    #[error("expected `,` or `]` after an element, found `{0}`")]
    NoSeparator(char),
}

/// How a file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON value per line.
    Lines,
    /// One JSON array whose elements are the records.
    Array,
    /// One or more top-level JSON values, each a record (e.g. one pretty-printed object).
    Values,
    /// A Parquet file: each row a record.
    Parquet,
}

/// Decides the layout from the extension and the first non-blank byte.
pub fn sniff_layout(path: &Path) -> io::Result<Layout> {
    if super::parquet::is_parquet(path) {
        return Ok(Layout::Parquet);
    }
    let mut reader = open_input(path)?;
    let mut first = None;
    'outer: loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for (i, &b) in buf.iter().enumerate() {
            if !b.is_ascii_whitespace() && !is_bom_byte(b) {
                first = Some(b);
                break 'outer;
            }
            let _ = i;
        }
        let n = buf.len();
        reader.consume(n);
    }
    let json_ext = plain_name(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok(match first {
        Some(b'[') => Layout::Array,
        Some(b'{') if json_ext => Layout::Values,
        _ => Layout::Lines,
    })
}

/// How a file's text is compressed, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// `.gz`
    Gzip,
    /// `.zst`, `.zstd`
    Zstd,
}

#[must_use]
pub fn compression(path: &Path) -> Compression {
    match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
        Some("gz") => Compression::Gzip,
        Some("zst" | "zstd") => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Whether the file is gzip-compressed, judged by its name (`.gz`).
#[must_use]
pub fn is_gzip(path: &Path) -> bool {
    compression(path) == Compression::Gzip
}

/// The name the content has once decompressed (`a.jsonl.gz` → `a.jsonl`, `a.jsonl.zst` → `a.jsonl`).
#[must_use]
pub fn plain_name(path: &Path) -> std::path::PathBuf {
    if compression(path) == Compression::None { path.to_path_buf() } else { path.with_extension("") }
}

/// How many bytes a file's text holds, for a progress bar's total (not a limit): its size; for a
/// `.gz` the decompressed size its trailer records (modulo 4 GiB, of the last member); for a
/// `.zst` the content size its first frame's header records, when the compressor wrote it (`zstd
/// FILE` does; a stream piped through it does not, and then four times the size on disk, JSON's
/// usual ratio, stands in).
#[must_use]
pub fn text_size(path: &Path) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let on_disk = std::fs::metadata(path).map_or(0, |m| m.len());
    match compression(path) {
        Compression::None => on_disk,
        Compression::Gzip if on_disk < 18 => on_disk,
        Compression::Gzip => {
            let mut trailer = [0u8; 4];
            let read = File::open(path).and_then(|mut f| {
                f.seek(SeekFrom::End(-4))?;
                f.read_exact(&mut trailer)
            });
            read.map_or(on_disk, |()| u64::from(u32::from_le_bytes(trailer)))
        }
        Compression::Zstd => {
            let mut head = vec![0u8; 18];
            let read = File::open(path).and_then(|mut f| f.read(&mut head));
            let head = &head[..read.unwrap_or(0)];
            match zstd::zstd_safe::get_frame_content_size(head) {
                Ok(Some(n)) => n,
                _ => on_disk.saturating_mul(4),
            }
        }
    }
}

/// Opens a file for reading its text, decompressing it on the fly (streamed) when its name says so.
/// Lines and columns of records are then those of the decompressed text.
pub fn open_input(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    let raw = BufReader::with_capacity(1 << 16, file);
    Ok(match compression(path) {
        // MultiGzDecoder: concatenated members (as `cat a.gz b.gz`, bgzip) read as one text.
        Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(raw))),
        // zstd's reader goes on through concatenated frames too.
        Compression::Zstd => Box::new(BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::with_buffer(raw)?)),
        Compression::None => Box::new(BufReader::with_capacity(1 << 20, raw.into_inner())),
    })
}

/// The records of a file whatever its kind: text (plain or compressed) or Parquet.
pub enum Records {
    Text(RecordReader<Box<dyn BufRead + Send>>),
    Parquet(Box<super::parquet::ParquetRows>),
}

impl Records {
    /// Opens `path` to read its records as `layout` says.
    pub fn open(path: &Path, layout: Layout, limit: u64) -> io::Result<Self> {
        Ok(match layout {
            Layout::Parquet => Records::Parquet(Box::new(super::parquet::ParquetRows::open(path, limit)?)),
            _ => Records::Text(RecordReader::open(path, layout, limit)?),
        })
    }

    /// Parquet rows as their JSON text (as an import before migration 0006 hashed them), not as
    /// values; text files are read as they are.
    #[must_use]
    pub fn json_rows(mut self) -> Self {
        if let Records::Parquet(r) = &mut self {
            r.json_rows();
        }
        self
    }

    /// A Parquet file's every `of`th row group from `which` ([`ParquetRows::share`]); text is
    /// read whole.
    ///
    /// [`ParquetRows::share`]: super::parquet::ParquetRows::share
    #[must_use]
    pub fn share(mut self, of: usize, which: usize) -> Self {
        if let Records::Parquet(r) = &mut self {
            r.share(of, which);
        }
        self
    }

    /// How far reading is, in bytes of the text (or of the Parquet file), for progress.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        match self {
            Records::Text(r) => r.bytes_read(),
            Records::Parquet(r) => r.bytes_read(),
        }
    }

    /// Where reading is, for an error that stops it: the line of the text reached, or the row.
    #[must_use]
    pub fn position(&self) -> String {
        match self {
            Records::Text(r) => format!("line {}", r.line),
            Records::Parquet(r) => format!("row {}", r.rows_read() + 1),
        }
    }

    /// A Parquet file's rows per row group, to place a row; none for text.
    #[must_use]
    pub fn group_rows(&self) -> Option<Vec<u64>> {
        match self {
            Records::Text(_) => None,
            Records::Parquet(r) => Some(r.group_rows().to_vec()),
        }
    }
}

impl Iterator for Records {
    type Item = Result<RawRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::Text(r) => r.next(),
            Records::Parquet(r) => r.next(),
        }
    }
}

fn is_bom_byte(b: u8) -> bool {
    matches!(b, 0xEF | 0xBB | 0xBF)
}

/// Iterates over the records of a file.
/// Where reading is in a file holding an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Before the opening `[`.
    NotOpen,
    /// Inside; `after_element`: an element was read since the `[` or the last `,`, so what may
    /// come next is a `,` or the `]`, else an element.
    Inside { after_element: bool },
    /// After the closing `]`.
    Closed,
}

pub struct RecordReader<R> {
    input: R,
    layout: Layout,
    limit: u64,
    line: u64,
    column: u64,
    index: u64,
    /// Array layout: where in the array reading is.
    array: ArrayState,
    /// Reading stopped on a broken structure: nothing sensible can follow.
    stopped: bool,
    bytes_read: u64,
}

impl RecordReader<Box<dyn BufRead + Send>> {
    /// Opens a file (plain or `.gz`, see [`open_input`]).
    pub fn open(path: &Path, layout: Layout, limit: u64) -> io::Result<Self> {
        Ok(Self::new(open_input(path)?, layout, limit))
    }
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R, layout: Layout, limit: u64) -> Self {
        Self { input, layout, limit, line: 1, column: 1, index: 0, array: ArrayState::NotOpen, stopped: false, bytes_read: 0 }
    }

    /// The input, positioned after the last record read.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// Bytes consumed so far (for progress).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn next_line(&mut self) -> Option<Result<RawRecord, ReadError>> {
        loop {
            let start_line = self.line;
            let mut buf = Vec::new();
            let mut size = 0u64;
            let mut saw_any = false;
            loop {
                let chunk = match self.input.fill_buf() {
                    Ok(c) => c,
                    Err(e) => return Some(Err(ReadError::Io(e))),
                };
                if chunk.is_empty() {
                    break;
                }
                saw_any = true;
                let (take, ended) = match memchr_newline(chunk) {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                let body = if ended { &chunk[..take - 1] } else { &chunk[..take] };
                size += body.len() as u64;
                if size <= self.limit {
                    buf.extend_from_slice(body);
                }
                self.input.consume(take);
                self.bytes_read += take as u64;
                if ended {
                    break;
                }
            }
            if !saw_any {
                return None;
            }
            self.line += 1;
            if size > self.limit {
                let index = self.index;
                self.index += 1;
                return Some(Err(ReadError::TooLarge { index, line: start_line, column: 1, size, limit: self.limit }));
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            if start_line == 1 && buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                buf.drain(..3);
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let index = self.index;
            self.index += 1;
            return Some(Ok(RawRecord { index, line: start_line, column: 1, bytes: buf, value: None }));
        }
    }

    /// Reads one byte, tracking line and column.
    fn byte(&mut self) -> Result<Option<u8>, io::Error> {
        let chunk = self.input.fill_buf()?;
        let Some(&b) = chunk.first() else { return Ok(None) };
        self.input.consume(1);
        self.bytes_read += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Ok(Some(b))
    }

    /// Skips whitespace (and a byte-order mark) and returns the next byte without consuming it.
    fn peek_significant(&mut self) -> Result<Option<u8>, io::Error> {
        loop {
            let chunk = self.input.fill_buf()?;
            let Some(&b) = chunk.first() else { return Ok(None) };
            if b.is_ascii_whitespace() || (self.bytes_read < 3 && is_bom_byte(b)) {
                self.byte()?;
            } else {
                return Ok(Some(b));
            }
        }
    }

    /// Scans one JSON value from the current position, returning its bytes (or its size when
    /// over the limit). Stops after the value; for scalars, before the delimiter.
    fn scan_value(&mut self) -> Result<(Vec<u8>, u64), ReadError> {
        let mut buf = Vec::new();
        let mut size = 0u64;
        let mut depth = 0u32;
        let mut in_string = false;
        let mut escaped = false;
        let (start_line, start_column) = (self.line, self.column);
        let first = self.peek_significant().map_err(ReadError::Io)?;
        if let Some(b @ (b'}' | b']' | b',' | b':')) = first {
            return Err(ReadError::Malformed {
                line: start_line,
                column: start_column,
                message: Malformed::UnexpectedStart(char::from(b)),
            });
        }
        let scalar = !matches!(first, Some(b'{' | b'[' | b'"'));
        loop {
            if scalar {
                let next = self.input.fill_buf().map_err(ReadError::Io)?.first().copied();
                match next {
                    None => break,
                    Some(b) if b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}') => break,
                    Some(_) => {}
                }
            }
            let Some(b) = self.byte().map_err(ReadError::Io)? else {
                if depth > 0 || in_string {
                    return Err(ReadError::Malformed {
                        line: start_line,
                        column: start_column,
                        message: Malformed::NeverClosed { line: start_line },
                    });
                }
                break;
            };
            size += 1;
            if size <= self.limit {
                buf.push(b);
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 {
                        break;
                    }
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        Ok((buf, size))
    }

    /// A broken structure at the current position: reading stops there.
    fn malformed(&mut self, message: Malformed) -> ReadError {
        self.stopped = true;
        ReadError::Malformed { line: self.line, column: self.column, message }
    }

    /// Consumes the byte `peek_significant` returned.
    fn take(&mut self) -> Result<(), ReadError> {
        self.byte().map(drop).map_err(ReadError::Io)
    }

    /// Array layout: moves past the `[`, a `,` or the `]` up to the next element; `Ok(false)`
    /// when the array is done and nothing follows it.
    fn advance_to_element(&mut self) -> Result<bool, ReadError> {
        loop {
            let next = self.peek_significant().map_err(ReadError::Io)?;
            match (self.array, next) {
                (ArrayState::Closed, None) => return Ok(false),
                (ArrayState::Closed, Some(b)) => {
                    return Err(self.malformed(Malformed::AfterArray(char::from(b))));
                }
                // The `[`, or a `,` after an element: an element comes next.
                (ArrayState::NotOpen, Some(b'[')) | (ArrayState::Inside { after_element: true }, Some(b',')) => {
                    self.take()?;
                    self.array = ArrayState::Inside { after_element: false };
                }
                (ArrayState::NotOpen, _) => return Err(self.malformed(Malformed::NotArray)),
                (ArrayState::Inside { .. }, None) => {
                    return Err(self.malformed(Malformed::ArrayNeverClosed));
                }
                // `]` after an element, or right after the `[` (an empty array).
                (ArrayState::Inside { after_element }, Some(b']')) if after_element || self.index == 0 => {
                    self.take()?;
                    self.array = ArrayState::Closed;
                }
                (ArrayState::Inside { .. }, Some(b']')) => {
                    return Err(self.malformed(Malformed::TrailingComma));
                }
                (ArrayState::Inside { after_element: false }, Some(b',')) => {
                    return Err(self.malformed(Malformed::MissingElement));
                }
                (ArrayState::Inside { after_element: true }, Some(b)) => {
                    return Err(self.malformed(Malformed::NoSeparator(char::from(b))));
                }
                (ArrayState::Inside { after_element: false }, Some(_)) => return Ok(true),
            }
        }
    }

    fn next_value(&mut self) -> Option<Result<RawRecord, ReadError>> {
        if self.stopped {
            return None;
        }
        if self.layout == Layout::Array {
            match self.advance_to_element() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        } else {
            match self.peek_significant() {
                Ok(None) => return None,
                Ok(Some(_)) => {}
                Err(e) => return Some(Err(ReadError::Io(e))),
            }
        }
        let (line, column) = (self.line, self.column);
        let index = self.index;
        self.index += 1;
        if self.layout == Layout::Array {
            self.array = ArrayState::Inside { after_element: true };
        }
        match self.scan_value() {
            Ok((_, size)) if size > self.limit => Some(Err(ReadError::TooLarge { index, line, column, size, limit: self.limit })),
            Ok((bytes, _)) => Some(Ok(RawRecord { index, line, column, bytes, value: None })),
            Err(e) => {
                // Nothing sensible can follow a value that never closes, or one that cannot start.
                self.stopped = true;
                Some(Err(e))
            }
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<RawRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.layout {
            // A Parquet file is read by `Records`, never as text.
            Layout::Lines | Layout::Parquet => self.next_line(),
            Layout::Array | Layout::Values => self.next_value(),
        }
    }
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str, layout: Layout, limit: u64) -> Vec<Result<(u64, u64, String), String>> {
        RecordReader::new(input.as_bytes(), layout, limit)
            .map(|r| match r {
                Ok(r) => Ok((r.line, r.column, String::from_utf8(r.bytes).unwrap())),
                Err(ReadError::TooLarge { line, size, .. }) => Err(format!("too large at {line}: {size}")),
                Err(ReadError::Malformed { line, column, message }) => Err(format!("malformed at {line}:{column}: {message}")),
                Err(ReadError::Unreadable { message, .. }) => Err(message),
                Err(ReadError::Io(e)) => Err(e.to_string()),
            })
            .collect()
    }

    #[test]
    fn lines_skip_blanks_and_keep_line_numbers() {
        let got = records("{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":3}", Layout::Lines, 100);
        assert_eq!(got, vec![Ok((1, 1, "{\"a\":1}".into())), Ok((4, 1, "{\"b\":2}".into())), Ok((5, 1, "{\"c\":3}".into()))]);
    }

    #[test]
    fn long_line_is_refused_and_reading_goes_on() {
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(50));
        let got = records(&format!("{long}\n{{\"b\":2}}\n"), Layout::Lines, 20);
        assert_eq!(got, vec![Err("too large at 1: 58".into()), Ok((2, 1, "{\"b\":2}".into()))]);
    }

    #[test]
    fn array_elements_with_tricky_strings() {
        let input = "[\n  {\"a\": \"]}, [\\\"\"},\n  {\"b\": [1, {\"c\": 2}]}\n, 7 ]\n";
        let got = records(input, Layout::Array, 100);
        assert_eq!(
            got,
            vec![Ok((2, 3, "{\"a\": \"]}, [\\\"\"}".into())), Ok((3, 3, "{\"b\": [1, {\"c\": 2}]}".into())), Ok((4, 3, "7".into())),]
        );
    }

    #[test]
    fn array_never_closed_is_malformed() {
        let got = records("[{\"a\": 1}, {\"b\": 2", Layout::Array, 100);
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().unwrap_err().contains("never closed"), "{got:?}");
    }

    #[test]
    fn broken_structure_is_an_error_at_its_place_and_reading_stops() {
        let case = |input: &str, layout| records(input, layout, 100);
        // A stray `}`: it used to be read as an empty value, again and again, forever.
        assert_eq!(case("[}", Layout::Array), vec![Err("malformed at 1:2: unexpected `}` where a JSON value should start".into())]);
        let two = case("{\"q\":\"a\"}}", Layout::Values);
        assert_eq!(two[1], Err("malformed at 1:10: unexpected `}` where a JSON value should start".into()), "{two:?}");
        assert_eq!(two.len(), 2);
        assert_eq!(
            case("[{\"a\":1},\n{\"a\":2},]", Layout::Array)[2],
            Err("malformed at 2:9: a `,` with no element after it before the `]`".into())
        );
        assert!(case("[1,,2]", Layout::Array)[1].as_ref().unwrap_err().contains("a `,` where an element should be"));
        assert!(case("[{} {}]", Layout::Array)[1].as_ref().unwrap_err().contains("expected `,` or `]` after an element, found `{`"));
        assert_eq!(
            case("[", Layout::Array),
            vec![Err("malformed at 1:2: the JSON array is never closed (the file ends before its `]`)".into())]
        );
        assert_eq!(case("  [ ]  ", Layout::Array), vec![]);
        assert!(case("[1] 2", Layout::Array)[1].as_ref().unwrap_err().contains("after the closing `]`"));
    }

    #[test]
    fn pretty_printed_object_is_one_value() {
        let got = records("{\n  \"id\": 1,\n  \"x\": {\"y\": \"}\"}\n}\n", Layout::Values, 100);
        assert_eq!(got, vec![Ok((1, 1, "{\n  \"id\": 1,\n  \"x\": {\"y\": \"}\"}\n}".into()))]);
    }

    #[test]
    fn oversized_array_element_is_refused() {
        let got = records(&format!("[{{\"a\":\"{}\"}}, {{}}]", "x".repeat(40)), Layout::Array, 10);
        assert_eq!(got, vec![Err("too large at 1: 48".into()), Ok((1, 52, "{}".into()))]);
    }

    #[test]
    fn gzip_file_reads_as_its_text_and_a_truncated_one_is_an_error() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("retort-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap();
        let gz = enc.finish().unwrap();
        let whole = dir.join("t.jsonl.gz");
        std::fs::write(&whole, &gz).unwrap();
        assert_eq!(sniff_layout(&whole).unwrap(), Layout::Lines);
        let lines: Vec<u64> = RecordReader::open(&whole, Layout::Lines, 1 << 20).unwrap().map(|r| r.unwrap().line).collect();
        assert_eq!(lines, vec![1, 3]);
        assert_eq!(text_size(&whole), 17, "the decompressed size, for the progress bar");
        let cut = dir.join("cut.jsonl.gz");
        std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
        let mut text = String::new();
        assert!(open_input(&cut).unwrap().read_to_string(&mut text).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
