//! Pass 1 of an import: read and parse every record without writing, so that a bad record stops
//! the import before anything is written.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{BAD_SHOWN, ImportError, ImportOptions, Progress};
use crate::ingest::media::MediaRows;
use crate::ingest::reader::{Layout, RawRecord, ReadError, Records, sniff_layout};
use crate::ingest::{self, BatchRequest, Format, ParseContext, Parsed, chat};

/// A record that could not be imported, and where it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadRecord {
    pub path: PathBuf,
    /// The line the record is on; in a Parquet file, its row (1-based).
    pub line: u64,
    pub column: Option<u64>,
    pub reason: String,
    /// In a Parquet file: the row's row group (0-based, as pyarrow counts) and its row in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_row: Option<u64>,
}

impl BadRecord {
    #[must_use]
    pub fn at_line(path: &Path, line: u64, column: Option<u64>, reason: String) -> Self {
        Self { path: path.to_owned(), line, column, reason, row_group: None, group_row: None }
    }

    /// Places a record of a Parquet file by its row groups' sizes: its row, row group and row in
    /// that (a column of the synthesized JSON would mean nothing; the reason names the field).
    fn place_in(&mut self, group_rows: &[u64]) {
        let (group, row) = crate::ingest::parquet::place(group_rows, self.line);
        (self.row_group, self.group_row, self.column) = (Some(group), Some(row), None);
    }
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.row_group, self.column) {
            (Some(g), _) => {
                write!(
                    f,
                    "{}: row {} (row group {g}, row {} of it): {}",
                    self.path.display(),
                    self.line,
                    self.group_row.unwrap_or(0),
                    self.reason
                )
            }
            (None, Some(c)) => write!(f, "{}:{}:{}: {}", self.path.display(), self.line, c, self.reason),
            (None, None) => write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason),
        }
    }
}

/// The message of an import stopped by bad records.
pub fn render_bad(bad: &[BadRecord], count: u64) -> String {
    let mut out =
        format!("{count} bad record{} in the input; nothing was imported and the store is unchanged.\n", if count == 1 { "" } else { "s" });
    for b in bad {
        let _ = writeln!(out, "  {b}");
    }
    if count > bad.len() as u64 {
        let _ = writeln!(out, "  ... and {} more", count - bad.len() as u64);
    }
    out.push_str("Fix these records, or import the others with --skip-bad.");
    out
}

/// What pass 1 learnt about a file.
#[derive(Debug, Clone)]
pub struct FileCheck {
    pub path: PathBuf,
    pub layout: Layout,
    pub format: Format,
    pub sha256: String,
    pub records: u64,
    pub bad: Vec<BadRecord>,
    pub bad_count: u64,
    /// Rows that carried images, audio or video, which are not kept.
    pub media: MediaRows,
    /// A Parquet file's rows per row group (bad records are placed by them).
    pub group_rows: Option<Vec<u64>>,
}

/// Why one record could not be decoded, located in the file.
#[derive(Debug)]
pub struct DecodeError {
    pub line: u64,
    pub column: Option<u64>,
    pub message: String,
}

/// Line and column of byte `offset` inside a record.
fn locate(raw: &RawRecord, offset: usize) -> (u64, u64) {
    let before = &raw.bytes[..offset.min(raw.bytes.len())];
    match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => {
            let lines = before.split(|&b| b == b'\n').count() as u64 - 1;
            (raw.line + lines, (offset - nl) as u64)
        }
        None => (raw.line, raw.column + offset as u64),
    }
}

/// The record as JSON: valid UTF-8 and well-formed, or an error pointing at the place.
pub fn to_value(raw: &mut RawRecord) -> Result<Value, DecodeError> {
    if let Some(value) = raw.value.take() {
        return Ok(value);
    }
    if let Err(e) = std::str::from_utf8(&raw.bytes) {
        let (line, column) = locate(raw, e.valid_up_to());
        return Err(DecodeError { line, column: Some(column), message: "invalid UTF-8".into() });
    }
    serde_json::from_slice(&raw.bytes).map_err(|e| {
        let line = raw.line + e.line().saturating_sub(1) as u64;
        let column = if e.line() <= 1 { raw.column + e.column().saturating_sub(1) as u64 } else { e.column() as u64 };
        let message = e.to_string();
        // serde_json appends " at line L column C" relative to the record: drop it, we give the file's.
        let message = message.find(" at line ").map_or(message.clone(), |i| message[..i].to_owned());
        DecodeError { line, column: Some(column), message: format!("broken JSON: {message}") }
    })
}

/// A reader's error about a record, at the field it names (`field \`output\` must be a
/// string`), else at the record's start.
fn located(raw: &RawRecord, message: String) -> DecodeError {
    let (line, column) = match ingest::locate::field_offset(&raw.bytes, &message) {
        Some(offset) => locate(raw, offset),
        None => (raw.line, raw.column),
    };
    DecodeError { line, column: Some(column), message }
}

/// Parses a record of a known format.
pub fn decode(raw: &mut RawRecord, format: Option<Format>, ctx: &ParseContext) -> Result<Parsed, DecodeError> {
    let value = to_value(raw)?;
    decode_value(raw, value, format, ctx)
}

/// Parses a record already read as JSON.
fn decode_value(raw: &RawRecord, value: Value, format: Option<Format>, ctx: &ParseContext) -> Result<Parsed, DecodeError> {
    let format = match format {
        Some(f) => f,
        None => ingest::detect(&value).map_err(|e| located(raw, e.to_string()))?,
    };
    ingest::parse(format, value, ctx).map_err(|e| located(raw, e.to_string()))
}

/// The file's sha256, read apart from the records: on its own thread it overlaps the decoding,
/// which is most of a check (a third off the check of a 300 MB file on two cores).
fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn io_error(path: &Path, e: &io::Error) -> ImportError {
    ImportError::File { path: path.to_owned(), message: format!("cannot read: {e}") }
}

/// The format of a file: forced, or detected from its first well-formed record.
pub(crate) fn file_format(path: &Path, layout: Layout, opts: &ImportOptions) -> Result<Format, ImportError> {
    if let Some(f) = opts.format {
        return Ok(f);
    }
    let reader = Records::open(path, layout, opts.max_record_bytes).map_err(|e| io_error(path, &e))?;
    let mut first_error = None;
    for raw in reader {
        let mut raw = match raw {
            Ok(raw) => raw,
            // A broken structure ends the reading: it is why there is no record.
            Err(ReadError::Malformed { line, column, message }) => {
                first_error.get_or_insert((DecodeError { line, column: Some(column), message: message.to_string() }, None));
                continue;
            }
            Err(ReadError::Unreadable { line, message, .. }) => {
                first_error.get_or_insert((DecodeError { line, column: None, message }, None));
                continue;
            }
            Err(_) => continue,
        };
        let value = match to_value(&mut raw) {
            Ok(value) => value,
            Err(e) => {
                // With the record's first bytes, to tell what kind of file it is.
                first_error.get_or_insert_with(|| (e, Some(String::from_utf8_lossy(&raw.bytes[..raw.bytes.len().min(64)]).into_owned())));
                continue;
            }
        };
        let at = if layout == Layout::Parquet { "row" } else { "line" };
        return ingest::detect(&value)
            .map_err(|message| ImportError::File { path: path.to_owned(), message: format!("{at} {}: {message}", raw.line) });
    }
    Err(ImportError::File { path: path.to_owned(), message: no_record(first_error) })
}

/// Why a file yielded no record to detect a format from: none at all, a broken structure (no
/// first bytes), or the first record's error and its first bytes.
fn no_record(first_error: Option<(DecodeError, Option<String>)>) -> String {
    let Some((e, head)) = first_error else { return "holds no record: the file is empty".into() };
    let at = e.column.map_or(format!("line {}", e.line), |c| format!("line {}, column {c}", e.line));
    let Some(head) = head else { return format!("is not well-formed JSON at {at}: {}", e.message) };
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with("data:") || head.starts_with("event:") {
        return "is a server-sent event stream (`data: {...}` lines, a streamed API answer): it carries no prompt and no \
                whole answer. Import the calls as {\"request\": {...}, \"response\": {...}} lines (format `exchange`), \
                or let `retort generate` make the calls"
            .into();
    }
    format!("no record in it is valid JSON; the first error is at {at}: {}", e.message)
}

/// Checks every file; returns what it learnt and the Batch API requests by `custom_id`.
pub fn check_files(
    files: &[PathBuf],
    opts: &ImportOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Vec<FileCheck>, HashMap<String, BatchRequest>), ImportError> {
    let mut planned = Vec::with_capacity(files.len());
    for path in files {
        let layout = sniff_layout(path).map_err(|e| io_error(path, &e))?;
        planned.push((path.clone(), layout, file_format(path, layout, opts)?));
    }
    // Batch API requests first, so that output files can find them.
    planned.sort_by_key(|(_, _, f)| *f != Format::BatchInput);
    let mut requests: HashMap<String, (BatchRequest, String)> = HashMap::new();
    let mut checks = Vec::with_capacity(planned.len());
    for (path, layout, format) in planned {
        let ctx = ParseContext { batch_requests: std::sync::Arc::new(requests.iter().map(|(k, (r, _))| (k.clone(), r.clone())).collect()) };
        // Reading the records is one thread; the file's sha256 is taken on a second, and every
        // other batch of records is decoded on a third: decoding is most of the check.
        let mut check = FileCheck {
            path: path.clone(),
            layout,
            format,
            sha256: String::new(),
            records: 0,
            bad: Vec::new(),
            bad_count: 0,
            media: MediaRows::default(),
            group_rows: None,
        };
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| file_sha256(&path));
            let (to_worker, batches) = std::sync::mpsc::sync_channel::<Vec<RawRecord>>(2);
            // A Parquet file's reading (decompressing, decoding columns) costs more than the
            // records' decoding: the worker reads every other row group itself (200k rows:
            // 2.4 s, against 3.7 s when it only decoded what this thread read).
            let shared = layout == Layout::Parquet && format != Format::BatchInput;
            let theirs_check = shared.then(|| check.clone());
            let (path, ctx) = (path.as_path(), &ctx);
            let worker = scope.spawn(move || {
                if let Some(mut theirs) = theirs_check {
                    let found = check_file(&mut theirs, opts, ctx, &mut HashMap::new(), &|_| {}, None, Some((2, 1)));
                    return found.map(|f| (f, theirs.records));
                }
                let mut found = BadRecords::default();
                for mut batch in batches {
                    decode_all(&mut batch, path, format, ctx, &mut found);
                }
                Ok((found, 0))
            });
            let (sender, share) = if shared { (None, Some((2, 0))) } else { (Some(&to_worker), None) };
            let checked = check_file(&mut check, opts, ctx, &mut requests, progress, sender, share);
            drop(to_worker);
            let (theirs, their_records) =
                worker.join().map_err(|_| io_error(path, &io::Error::other("the decoding thread panicked")))??;
            check.records += their_records;
            let found = checked?.merge(theirs);
            (check.bad, check.bad_count, check.media) = (found.shown, found.count, found.media);
            if let Some(groups) = &check.group_rows {
                for bad in &mut check.bad {
                    bad.place_in(groups);
                }
            }
            check.sha256 = hashing
                .join()
                .map_err(|_| io_error(path, &io::Error::other("the hashing thread panicked")))?
                .map_err(|e| io_error(path, &e))?;
            Ok::<_, ImportError>(())
        })?;
        checks.push(check);
    }
    Ok((checks, requests.into_iter().map(|(k, (r, _))| (k, r)).collect()))
}

/// Records decoded per batch when the check splits the decoding between two threads.
const DECODE_BATCH: usize = 128;

/// Bad records found: how many, and the first [`BAD_SHOWN`]; and the good ones' media.
#[derive(Default)]
struct BadRecords {
    shown: Vec<BadRecord>,
    count: u64,
    media: MediaRows,
}

impl BadRecords {
    fn add(&mut self, path: &Path, line: u64, column: Option<u64>, reason: String) {
        self.add_many(1, path, line, column, reason);
    }

    /// `n` bad records from `line` on, shown as one.
    fn add_many(&mut self, n: u64, path: &Path, line: u64, column: Option<u64>, reason: String) {
        self.count += n;
        if self.shown.len() < BAD_SHOWN {
            self.shown.push(BadRecord::at_line(path, line, column, reason));
        }
    }

    /// Both threads' finds: each kept its first BAD_SHOWN, so the file's first BAD_SHOWN are
    /// among them.
    fn merge(mut self, other: Self) -> Self {
        self.shown.extend(other.shown);
        self.shown.sort_by_key(|b| b.line);
        self.shown.truncate(BAD_SHOWN);
        self.count += other.count;
        self.media += other.media;
        self
    }
}

/// Decodes a batch of records as the import will, noting those that fail, and the media of
/// those that do not.
fn decode_all(batch: &mut [RawRecord], path: &Path, format: Format, ctx: &ParseContext, found: &mut BadRecords) {
    for raw in batch {
        let decoded = to_value(raw).and_then(|value| {
            let media = crate::ingest::media::kinds(&value);
            decode_value(raw, value, Some(format), ctx).map(|_| media)
        });
        match decoded {
            Ok(media) => found.media.note_found(media),
            Err(e) => found.add(path, e.line, e.column, e.message),
        }
    }
}

/// Reads every record and decodes it, as the import will: the batches `to_worker` has room
/// for there, the others here. Counts the records into `check`; returns the bad
/// ones found here.
fn check_file(
    check: &mut FileCheck,
    opts: &ImportOptions,
    ctx: &ParseContext,
    requests: &mut HashMap<String, (BatchRequest, String)>,
    progress: &(dyn Fn(Progress) + Sync),
    to_worker: Option<&std::sync::mpsc::SyncSender<Vec<RawRecord>>>,
    share: Option<(usize, usize)>,
) -> Result<BadRecords, ImportError> {
    let (path, format) = (check.path.as_path(), check.format);
    // The bytes read are of the text, decompressed: so is the total (a `.gz` trailer's size).
    let mut total = crate::ingest::reader::text_size(path);
    let mut reader = Records::open(path, check.layout, opts.max_record_bytes).map_err(|e| io_error(path, &e))?;
    if let Some((of, which)) = share {
        reader = reader.share(of, which);
    }
    check.group_rows = reader.group_rows();
    let mut found = BadRecords::default();
    let (mut records, mut reported) = (0u64, 0u64);
    let mut batch: Vec<RawRecord> = Vec::with_capacity(DECODE_BATCH);
    while let Some(raw) = reader.next() {
        records += 1;
        if reader.bytes_read() - reported >= 8 << 20 {
            reported = reader.bytes_read();
            // A trailer's size is modulo 4 GiB: never show more read than the whole.
            total = total.max(reported);
            progress(Progress::Checking { path: path.to_owned(), bytes: reported, total });
        }
        let mut raw = match raw {
            Ok(raw) => raw,
            Err(ReadError::TooLarge { line, column, size, limit, .. }) => {
                let reason = format!(
                    "record of {:.1} MiB is over the limit of {} MiB (raise it with --max-record-mb)",
                    size as f64 / f64::from(1 << 20),
                    limit >> 20
                );
                found.add(path, line, Some(column), reason);
                continue;
            }
            Err(ReadError::Malformed { line, column, message }) => {
                found.add(path, line, Some(column), message.to_string());
                continue;
            }
            Err(ReadError::Unreadable { line, rows, message }) => {
                records += rows.saturating_sub(1);
                found.add_many(rows, path, line, None, message);
                continue;
            }
            // The place reached: a truncated `.gz` fails at the end of what it holds.
            Err(ReadError::Io(e)) => {
                return Err(ImportError::File {
                    path: path.to_owned(),
                    message: format!("cannot read past {}: {e} (a truncated or damaged file? fetch it again)", reader.position()),
                });
            }
        };
        if format == Format::BatchInput {
            match to_value(&mut raw).and_then(|v| {
                let obj = ingest::json::as_object(v).map_err(|m| DecodeError { line: raw.line, column: None, message: m.to_string() })?;
                chat::parse_batch_input(&obj).map_err(|m| DecodeError { line: raw.line, column: None, message: m.to_string() })
            }) {
                Ok((record, request)) => {
                    let id = record.custom_id.unwrap_or_default();
                    let here = format!("{}:{}", path.display(), raw.line);
                    if let Some((_, first)) = requests.get(&id) {
                        found.add(path, raw.line, None, format!("custom_id {id:?} was already used at {first}"));
                    } else {
                        requests.insert(id, (request, here));
                    }
                }
                Err(e) => found.add(path, e.line, e.column, e.message),
            }
            continue;
        }
        batch.push(raw);
        if batch.len() == DECODE_BATCH {
            // The worker takes a batch when it has room; else this thread decodes it. Reading
            // a Parquet row (decoding its columns, writing its JSON) costs as much as decoding it,
            // and alternating batches left the worker idle half the time (200k rows: 3.7 s).
            let full = std::mem::replace(&mut batch, Vec::with_capacity(DECODE_BATCH));
            let unsent = match to_worker {
                Some(worker) => match worker.try_send(full) {
                    Ok(()) => None,
                    Err(std::sync::mpsc::TrySendError::Full(full) | std::sync::mpsc::TrySendError::Disconnected(full)) => Some(full),
                },
                None => Some(full),
            };
            if let Some(mut full) = unsent {
                decode_all(&mut full, path, format, ctx, &mut found);
            }
        }
    }
    decode_all(&mut batch, path, format, ctx, &mut found);
    progress(Progress::Checking { path: path.to_owned(), bytes: total, total });
    check.records = records;
    Ok(found)
}
