//! `retort import`: the operation the CLI (and later the TUI) calls.
//!
//! Two passes over each file. The first reads and parses every record without writing: it finds
//! the format, hashes the file, counts the records for the progress bar and collects bad records.
//! Parsing runs at well over 1 GB/s, so this costs a few percent. If any record is bad and
//! `--skip-bad` is not given, the import stops there and the store is untouched. The second pass
//! parses again on a reader thread and hands batches to the writer, which commits about every
//! quarter second: a long import never holds the write lock for long (a curator in the TUI can
//! still decide), and a killed import keeps whole batches only. Samples are keyed by their origin
//! (record bytes + position), so running the same import again adds nothing and completes a
//! killed one.

mod check;
pub mod inputs;
pub mod prepare;
mod scores;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::imports::{self, Counts, Finished, NewImport, Writer};
pub use check::BadRecord;
use check::{FileCheck, decode};
pub use inputs::{SkippedFile, gather};
use prepare::{Defaults, PreparedRecord, prepare};

use crate::domain::Kind;
use crate::ingest::media::MediaRows;
use crate::ingest::reader::{RawRecord, ReadError, Records};
use crate::ingest::tokens::TokenCounter;
use crate::ingest::{Format, ParseContext, Parsed};
use crate::store::{self, Store};

/// Records larger than this are refused (`--max-record-mb` changes it).
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 << 20;
/// How many bad records an error or a report lists.
pub const BAD_SHOWN: usize = 10;
/// How long one write transaction may run before it commits and lets other writers in: a
/// curator's key in the TUI waits at most about this long, and one batch more, for its commit
/// (the key claims the next turn, `Store::write`, and the import waits for it to be done).
const COMMIT_EVERY: Duration = Duration::from_millis(25);
/// How long the import pauses after each commit. A key that claimed the turn gets it without
/// the pause; but the pause leaves a core to the TUI's threads, and without it a key's p99
/// beside an import rose from 40 to 53–78 ms.
const YIELD: Duration = Duration::from_millis(2);
/// A batch handed from the reader thread to the writer. Smaller batches cost import speed
/// (32 records: 0.67x of the plain loop, against 0.93x) and gave a waiting key nothing.
const BATCH_RECORDS: usize = 256;
const BATCH_BYTES: usize = 4 << 20;
/// Batches the reader may be ahead of the writer.
const BATCHES_AHEAD: usize = 4;

/// How an import runs.
#[derive(Debug, Clone, Serialize)]
pub struct ImportOptions {
    pub format: Option<Format>,
    pub teacher: Option<String>,
    pub kind: Option<Kind>,
    pub source: Option<String>,
    pub score_name: String,
    pub tokenizer: Option<PathBuf>,
    pub skip_bad: bool,
    pub max_record_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            format: None,
            teacher: None,
            kind: None,
            source: None,
            score_name: "imported".into(),
            tokenizer: None,
            skip_bad: false,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// What importing one file did.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: String,
    pub records: u64,
    pub prompts_added: u64,
    pub samples_added: u64,
    /// Samples of this file that were in the store already (an earlier import of the same data).
    pub samples_existing: u64,
    pub scores_added: u64,
    /// Bad records left out (`--skip-bad`).
    pub skipped: u64,
    /// Batch API lines whose request had failed.
    pub failed_requests: u64,
    /// The first bad records, at most [`BAD_SHOWN`].
    pub bad: Vec<BadRecord>,
    /// The whole file had been imported before: nothing was read twice.
    pub already_imported: bool,
    /// Rows that carried images, audio or video: imported, without them.
    pub media: MediaRows,
}

impl FileReport {
    /// A report for a checked file, before anything is written.
    pub(crate) fn for_check(check: &FileCheck) -> Self {
        Self {
            path: check.path.clone(),
            format: check.format.to_string(),
            records: check.records,
            prompts_added: 0,
            samples_added: 0,
            samples_existing: 0,
            scores_added: 0,
            skipped: check.bad_count,
            failed_requests: 0,
            bad: check.bad.clone(),
            already_imported: false,
            media: check.media,
        }
    }
}

/// Progress of a running import, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Reading `path` to check it; `bytes` of `total` done.
    Checking { path: PathBuf, bytes: u64, total: u64 },
    /// Writing `path`: `records` of `total` done.
    Writing { path: PathBuf, records: u64, total: u64 },
    /// Building the full-text index: `done` of `total` samples.
    Indexing { done: u64, total: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}", check::render_bad(bad, *count))]
    BadRecords { bad: Vec<BadRecord>, count: u64 },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("the store: {0}")]
    Store(store::StoreError),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<store::StoreError> for ImportError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

/// Imports `files` into the store. The full-text index is left to the caller:
/// [`crate::ops::index::after_import`] builds it as `--index` says.
pub async fn import(
    store: &Store,
    files: &[PathBuf],
    opts: &ImportOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<FileReport>, ImportError> {
    let counter = Arc::new(match &opts.tokenizer {
        Some(path) => TokenCounter::from_file(path).map_err(|e| ImportError::Usage(e.to_string()))?,
        None => TokenCounter::Estimate,
    });
    // Pass 1: check everything before writing anything.
    let (checks, requests) = check::check_files(files, opts, progress)?;
    let bad_count: u64 = checks.iter().map(|c| c.bad_count).sum();
    if bad_count > 0 && !opts.skip_bad {
        let bad = checks.iter().flat_map(|c| c.bad.iter().cloned()).take(BAD_SHOWN).collect();
        return Err(ImportError::BadRecords { bad, count: bad_count });
    }
    let score_files = checks.iter().filter(|c| c.format == Format::Scores).count();
    if score_files > 0 && score_files < checks.len() {
        return Err(ImportError::Usage(
            "score files and data files cannot be imported in one command: import the samples first, then their scores".into(),
        ));
    }
    let ctx = ParseContext { batch_requests: Arc::new(requests) };
    // Pass 2: write.
    let mut reports = Vec::with_capacity(checks.len());
    for check in &checks {
        let report = if check.format == Format::Scores {
            scores::import_scores(store, check, opts).await?
        } else {
            import_file(store, check, opts, &counter, &ctx, progress).await?
        };
        reports.push(report);
    }
    store.checkpoint().await;
    Ok(reports)
}

/// The identities (hashes) of the prompts a file holds, in the file's detected format.
pub fn prompt_hashes(path: &Path) -> Result<Vec<[u8; 32]>, String> {
    let opts = ImportOptions::default();
    let (checks, requests) = check::check_files(&[path.to_owned()], &opts, &|_| {}).map_err(|e| e.to_string())?;
    let ctx = ParseContext { batch_requests: Arc::new(requests) };
    let mut out = Vec::new();
    for c in &checks {
        let reader = Records::open(&c.path, c.layout, opts.max_record_bytes).map_err(|e| format!("{}: {e}", c.path.display()))?;
        for mut raw in reader.flatten() {
            if let Ok(Parsed::Row(record)) = decode(&mut raw, Some(c.format), &ctx) {
                out.push(prepare::prompt_hash(&record.prompt.turns, record.prompt.tools.as_ref()));
            }
        }
    }
    Ok(out)
}

/// The name a file's samples are given a teacher and source by when the data names none: the
/// file's name without its extensions, or for a shard of a downloaded dataset
/// (`OpenR1-Math-220k/data/train-00000-of-00010.parquet`, a Hugging Face cache's
/// `datasets--open-r1--OpenR1-Math-220k/snapshots/<commit>/data/...`) the dataset's name, so that
/// its shards are one teacher and one source.
fn fallback_name(path: &Path) -> String {
    let plain = crate::ingest::reader::plain_name(path);
    let stem = plain.file_stem().map_or_else(|| "import".into(), |s| s.to_string_lossy().into_owned());
    if !is_shard_name(&stem) {
        return stem;
    }
    let folders =
        path.parent().into_iter().flat_map(Path::ancestors).filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    for name in folders {
        let lower = name.to_lowercase();
        let bookkeeping = ["data", "default", "snapshots", "main", "train", "test", "validation", "dev", "eval", "val"]
            .contains(&lower.as_str())
            || (name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()));
        if bookkeeping {
            continue;
        }
        // The Hugging Face cache names a dataset `datasets--<owner>--<name>`.
        return name.strip_prefix("datasets--").and_then(|n| n.rsplit("--").next()).map_or(name.clone(), str::to_owned);
    }
    stem
}

/// A shard's name: `train-00000-of-00004`, `data-00003-of-00010`, `00000`, `part-0001`, `train`.
fn is_shard_name(stem: &str) -> bool {
    let lower = stem.to_lowercase();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let split = ["train", "test", "validation", "dev", "eval", "val", "data", "part"];
    if digits(&lower) || split.contains(&lower.as_str()) {
        return true;
    }
    let parts: Vec<&str> = lower.split('-').collect();
    match parts.as_slice() {
        [prefix, n] => split.contains(prefix) && digits(n),
        [prefix, n, "of", m] => digits(n) && digits(m) && !prefix.is_empty(),
        _ => false,
    }
}

async fn import_file(
    store: &Store,
    check: &FileCheck,
    opts: &ImportOptions,
    counter: &Arc<TokenCounter>,
    ctx: &ParseContext,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FileReport, ImportError> {
    let mut report = FileReport::for_check(check);
    if imports::imported_before(store, &check.sha256).await? {
        report.already_imported = true;
        return Ok(report);
    }
    let import_id = imports::start(
        store,
        &NewImport {
            path: &check.path.display().to_string(),
            sha256: &check.sha256,
            format: check.format.as_str(),
            options: &serde_json::to_string(opts).unwrap_or_default(),
            token_counter: &counter.describe(),
        },
    )
    .await?;

    let defaults = Defaults {
        teacher: opts.teacher.clone(),
        kind: opts.kind,
        source: opts.source.clone(),
        fallback_name: fallback_name(&check.path),
        score_name: opts.score_name.clone(),
        legacy_origins: imports::has_legacy_origins(store).await?,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch, ImportError>>(BATCHES_AHEAD);
    let reader = {
        let (check, counter, ctx, limit) = (check.clone(), Arc::clone(counter), ctx.clone(), opts.max_record_bytes);
        std::thread::spawn(move || produce(&check, limit, &defaults, &counter, &ctx, &tx))
    };

    let mut writer = Writer::new(import_id);
    let mut counts = Counts::default();
    let mut done = 0u64;
    // The write lock is held for at most COMMIT_EVERY (waiting for the reader included), and
    // let go of for at least YIELD after each commit; a curator's key that claimed the next
    // turn meanwhile goes before the next transaction.
    let mut open: Option<(store::Tx, Instant)> = None;
    let mut committed_at: Option<Instant> = None;
    loop {
        // With a transaction open, a batch is waited for only until it is due to commit.
        let received = match &open {
            Some((_, since)) => tokio::time::timeout(COMMIT_EVERY.saturating_sub(since.elapsed()), rx.recv()).await.ok(),
            None => Some(rx.recv().await),
        };
        if let Some(next) = received {
            let Some(batch) = next else { break };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    if let Some((transaction, _)) = open.take() {
                        transaction.rollback().await?;
                    }
                    return Err(e);
                }
            };
            done += batch.records;
            report.failed_requests += batch.failed_requests;
            if !batch.rows.is_empty() {
                if open.is_none() {
                    if let Some(gap) = committed_at.map(|at| YIELD.saturating_sub(at.elapsed())) {
                        tokio::time::sleep(gap).await;
                    }
                    open = Some((store.write().await?, Instant::now()));
                }
                if let Some((transaction, _)) = open.as_mut() {
                    counts += writer.write(transaction, batch.rows).await?;
                }
            }
        }
        if open.as_ref().is_some_and(|(_, since)| since.elapsed() >= COMMIT_EVERY) {
            if let Some((transaction, _)) = open.take() {
                transaction.commit().await?;
            }
            committed_at = Some(Instant::now());
            progress(Progress::Writing { path: check.path.clone(), records: done, total: check.records });
        }
    }
    let mut transaction = match open {
        Some((transaction, _)) => transaction,
        None => store.write().await?,
    };
    imports::finish(&mut transaction, import_id, &Finished { records: check.records, counts, skipped: check.bad_count }).await?;
    transaction.commit().await?;
    progress(Progress::Writing { path: check.path.clone(), records: check.records, total: check.records });
    if reader.join().is_err() {
        return Err(ImportError::File { path: check.path.clone(), message: "the reader thread panicked".into() });
    }
    report.prompts_added = counts.prompts_added;
    report.samples_added = counts.samples_added;
    report.samples_existing = counts.samples_existing;
    report.scores_added = counts.scores_added;
    Ok(report)
}

/// Records handed from the reader thread to the writer.
struct Batch {
    rows: Vec<PreparedRecord>,
    records: u64,
    failed_requests: u64,
}

/// The reader thread of pass 2: parses and prepares records, in batches.
fn produce(
    check: &FileCheck,
    limit: u64,
    defaults: &Defaults,
    counter: &TokenCounter,
    ctx: &ParseContext,
    tx: &tokio::sync::mpsc::Sender<Result<Batch, ImportError>>,
) {
    let fail = |message: String| {
        let _ = tx.blocking_send(Err(ImportError::File { path: check.path.clone(), message }));
    };
    let reader = match Records::open(&check.path, check.layout, limit) {
        // An older import of this Parquet file hashed its rows' JSON text: legacy origins need it.
        Ok(r) if defaults.legacy_origins => r.json_rows(),
        Ok(r) => r,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    // Reading (decompressing; for Parquet, decoding the columns into each row's JSON value) is
    // a thread of its own, ahead of the parsing here. With the SIMD marker searches beside it,
    // 200k R1-sized JSONL rows imported in 9.7-10.2 s, not 12.4-13.3 s.
    std::thread::scope(|scope| {
        let (to_parser, chunks) = std::sync::mpsc::sync_channel::<Vec<Result<RawRecord, ReadError>>>(READ_AHEAD);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(READ_CHUNK_RECORDS);
            let mut bytes = 0;
            for raw in reader {
                bytes += raw.as_ref().map_or(0, |r| r.bytes.len());
                chunk.push(raw);
                if chunk.len() >= READ_CHUNK_RECORDS || bytes >= READ_CHUNK_BYTES {
                    bytes = 0;
                    if to_parser.send(std::mem::replace(&mut chunk, Vec::with_capacity(READ_CHUNK_RECORDS))).is_err() {
                        return; // the parser stopped
                    }
                }
            }
            let _ = to_parser.send(chunk);
        });
        parse_and_prepare(check, chunks.into_iter().flatten(), defaults, counter, ctx, tx, &fail);
    });
}

/// Records a reading thread hands the parser at once, and chunks it may be ahead.
const READ_CHUNK_RECORDS: usize = 64;
const READ_CHUNK_BYTES: usize = 1 << 20;
const READ_AHEAD: usize = 4;

/// Parses and prepares the records `reader` reads, handing the writer batches through `tx`.
fn parse_and_prepare(
    check: &FileCheck,
    reader: impl Iterator<Item = Result<RawRecord, ReadError>>,
    defaults: &Defaults,
    counter: &TokenCounter,
    ctx: &ParseContext,
    tx: &tokio::sync::mpsc::Sender<Result<Batch, ImportError>>,
    fail: &dyn Fn(String),
) {
    let mut batch = Batch { rows: Vec::new(), records: 0, failed_requests: 0 };
    let mut weight = 0usize;
    for raw in reader {
        batch.records += 1;
        let mut raw = match raw {
            Ok(raw) => raw,
            // A Parquet row group that cannot be read: its rows were counted bad in pass 1.
            Err(ReadError::Unreadable { rows, .. }) => {
                batch.records += rows.saturating_sub(1);
                continue;
            }
            Err(_) => continue, // too large or malformed: counted in pass 1
        };
        match decode(&mut raw, Some(check.format), ctx) {
            Ok(Parsed::Row(record)) => {
                let prepared = prepare(*record, &raw.bytes, raw.index, defaults, counter);
                weight += prepared.weight();
                batch.rows.push(prepared);
            }
            Ok(Parsed::FailedRequest(_)) => batch.failed_requests += 1,
            Ok(Parsed::Scores(_)) => {}
            Err(_) if !check.bad.is_empty() => {} // a bad record pass 1 found; --skip-bad
            Err(e) => return fail(format!("line {}: {} (did the file change during the import?)", e.line, e.message)),
        }
        if batch.rows.len() >= BATCH_RECORDS || weight >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, Batch { rows: Vec::new(), records: 0, failed_requests: 0 });
            weight = 0;
            if tx.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    let _ = tx.blocking_send(Ok(batch));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_named_by_its_dataset() {
        let name = |p: &str| fallback_name(Path::new(p));
        assert_eq!(name("gens/r1-run3.jsonl"), "r1-run3");
        assert_eq!(name("gens/r1-run3.jsonl.gz"), "r1-run3");
        assert_eq!(name("dl/OpenR1-Math-220k/data/train-00000-of-00010.parquet"), "OpenR1-Math-220k");
        assert_eq!(name("OpenThoughts3-1.2M/data/train-00003-of-00120.parquet"), "OpenThoughts3-1.2M");
        assert_eq!(
            name(
                "/home/u/.cache/huggingface/hub/datasets--open-r1--OpenR1-Math-220k/snapshots/e4e141ec9dea9f8326f4d347be56105859b2bd68/default/train/0000.parquet"
            ),
            "OpenR1-Math-220k"
        );
        assert_eq!(name("s1K/data/train-00000-of-00001.parquet"), "s1K");
        assert_eq!(name("AM/am_0.5M.jsonl.zst"), "am_0.5M");
        assert_eq!(name("train.jsonl"), "train", "no folder to name it by");
    }
}
