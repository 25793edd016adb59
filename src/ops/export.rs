//! `retort export`: the accepted set as SFT files, reproducibly.
//!
//! The samples to write are chosen from a small index read first (id, content hash, kind,
//! source, tokens: ~40 bytes a sample): the validation split by a hash of the sample's content
//! (a sample never changes sides between exports), the mix by kind or source, the seeded order.
//! The texts are then streamed a chunk at a time into `.partial` files that are renamed into
//! place only when complete, with their sha256 in `manifest.json`. The same store and options
//! give byte-identical files. `--shard-rows` cuts a part into files of at most N lines;
//! `--container parquet` spools every part's lines while their columns are learnt, then writes
//! the Parquet shards from the spools (`export::parquet`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::{LabelType, Status};
use crate::export::parquet::{ParquetError, Shape, ShardWriter};
use crate::export::{Container, ExportFormat, ExportSample, ReasoningMode, dataset_info, record};
use crate::rules::Expr;
use crate::store::exports::{self as stored, Selecting, TextReader};
use crate::store::{self, Store};

/// What the mix weighs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MixKey {
    Kind(String),
    Source(String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// Not in the manifest: the same export written elsewhere is the same bytes.
    #[serde(skip)]
    pub out: PathBuf,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    #[serde(skip)]
    pub filter_expr: Option<Expr>,
    pub statuses: Vec<Status>,
    pub labels: Option<Vec<LabelType>>,
    pub reasoning: ReasoningMode,
    pub system: bool,
    pub val: f64,
    pub seed: u64,
    /// Weights per kind (`reasoning=3,general=1`) or per source (`source:gsm8k=1,...`).
    pub mix: Vec<(MixKey, f64)>,
    pub max_samples: Option<u64>,
    pub max_tokens: Option<u64>,
    /// The dataset's name in `dataset_info.json`.
    pub name: String,
    /// `kd`: the student's model directory (tokenizer.json and chat template): each line is
    /// rendered and tokenized as the student is trained on it, and the teacher's top-k placed
    /// on those tokens.
    #[serde(skip)]
    pub model: Option<PathBuf>,
    /// JSON Lines or Parquet files (not in the manifest's options when JSON Lines, as before
    /// there was a choice).
    #[serde(skip_serializing_if = "Container::is_jsonl")]
    pub container: Container,
    /// At most this many rows a file: a part is written as `train-00000-of-00003.jsonl` (or
    /// `.parquet`) and so on. Without it a part is one file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_rows: Option<u64>,
}

/// Parses `--mix`: `reasoning=3,general=1` by kind, or `source:NAME=W,...` by source.
pub fn parse_mix(text: &str) -> Result<Vec<(MixKey, f64)>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (key, weight) = part.split_once('=').ok_or_else(|| format!("--mix: {part:?} is not KEY=WEIGHT"))?;
            let weight: f64 = weight.trim().parse().map_err(|_| format!("--mix: the weight in {part:?} is not a number"))?;
            if !(weight > 0.0 && weight.is_finite()) {
                return Err(format!("--mix: the weight in {part:?} must be above 0"));
            }
            let key = key.trim();
            let key = if let Some(source) = key.strip_prefix("source:") {
                MixKey::Source(source.to_owned())
            } else {
                key.parse::<crate::domain::Kind>().map_err(|e| format!("--mix: {e} (or write source:NAME)"))?;
                MixKey::Kind(key.to_owned())
            };
            Ok((key, weight))
        })
        .collect()
}

/// One written part (`train`, `validation`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartReport {
    /// The part's file; when it is in several shards, the pattern that names them
    /// (`train-*.parquet`, as `datasets`' `data_files` takes it).
    pub file: String,
    pub samples: u64,
    pub tokens: u64,
    /// The file's sha256 (none for a dry run or for a part in several shards: see `shards`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The files of a part in several shards, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardReport>,
}

/// One file of a part in several shards.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShardReport {
    pub file: String,
    pub samples: u64,
    pub tokens: u64,
    pub sha256: String,
}

impl PartReport {
    /// A part in these files (one or several).
    fn of(name: &str, container: Container, mut shards: Vec<ShardReport>) -> Self {
        let samples = shards.iter().map(|s| s.samples).sum();
        let tokens = shards.iter().map(|s| s.tokens).sum();
        if shards.len() == 1 {
            let one = shards.remove(0);
            return Self { file: one.file, samples, tokens, sha256: one.sha256, shards };
        }
        Self { file: format!("{name}-*.{}", container.extension()), samples, tokens, sha256: String::new(), shards }
    }

    /// The files the part is written in, in order.
    #[must_use]
    pub fn files(&self) -> Vec<&str> {
        if self.shards.is_empty() { vec![self.file.as_str()] } else { self.shards.iter().map(|s| s.file.as_str()).collect() }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportReport {
    pub samples: u64,
    pub tokens: u64,
    /// Per part (`train`, `validation`): samples and tokens, and the file when written.
    pub parts: BTreeMap<String, PartReport>,
    /// Samples per kind / source in the export.
    pub by_kind: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    /// Samples the format cannot hold, by reason: not written, not counted above.
    pub left_out: BTreeMap<String, Finding>,
    /// Samples whose reasoning was cut off, written open (no `</think>`): `--where 'not
    /// reasoning_cut_off'` leaves them out.
    pub cut_off_reasoning: Finding,
    pub export_id: Option<i64>,
}

/// `left_out` in words: "2 samples left out: a tool result answers no tool call (#4 #9)".
#[must_use]
pub fn left_out_summary(left_out: &BTreeMap<String, Finding>) -> String {
    let parts: Vec<String> = left_out
        .iter()
        .map(|(why, f)| {
            let ids: Vec<String> = f.examples.iter().map(|id| format!("#{id}")).collect();
            format!("{} {} {why} ({})", f.count, if f.count == 1 { "sample:" } else { "samples:" }, ids.join(" "))
        })
        .collect();
    parts.join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Usage(String),
    #[error("writing {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("the store: {0}")]
    Store(store::StoreError),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<store::StoreError> for ExportError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<crate::export::staging::StagingError> for ExportError {
    fn from(e: crate::export::staging::StagingError) -> Self {
        match e {
            crate::export::staging::StagingError::Io { path, message } => Self::Io { path, message },
            foreign @ crate::export::staging::StagingError::Foreign { .. } => Self::Usage(foreign.to_string()),
        }
    }
}

/// What choosing needs of a sample: ~40 bytes, so a million fit in 40 MB.
#[derive(Clone, Copy)]
struct Candidate {
    id: i64,
    /// The seeded order.
    order: u64,
    tokens: i64,
    /// Indexes into the interned kind and source names.
    kind: u32,
    source: u32,
    validation: bool,
}

/// Kind and source names, each stored once.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    index: std::collections::HashMap<String, u32>,
}

impl Names {
    fn intern(&mut self, name: String) -> u32 {
        if let Some(i) = self.index.get(&name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.index.insert(name, i);
        i
    }

    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The sample's side: validation when its content hashes below `val`. Independent of the seed,
/// the store and the other samples, so a sample never changes sides between exports.
fn in_validation(content_hash: &[u8], val: f64) -> bool {
    val > 0.0 && (hash64(&[b"retort-split", content_hash]) as f64 / u64::MAX as f64) < val
}

/// The samples the options select, read as a stream into compact candidates.
async fn candidates(store: &Store, opts: &ExportOptions, names: &mut Names) -> store::Result<Vec<Candidate>> {
    let labels = opts.labels.clone().unwrap_or_else(|| LabelType::ALL.to_vec());
    // Soft labels exist only where the teacher's log-probs were kept.
    let selecting = Selecting {
        filter: opts.filter_expr.as_ref(),
        statuses: &opts.statuses,
        labels: &labels,
        with_logprobs: opts.format == ExportFormat::Kd,
    };
    let seed = opts.seed.to_le_bytes();
    let mut out = Vec::new();
    stored::candidates(store, &selecting, |r| {
        out.push(Candidate {
            id: r.id,
            order: hash64(&[&seed, &r.content_hash, &r.id.to_le_bytes()]),
            tokens: r.tokens,
            kind: names.intern(r.kind),
            source: names.intern(r.source),
            validation: in_validation(&r.content_hash, opts.val),
        });
    })
    .await?;
    Ok(out)
}

/// Orders by the seeded hash and keeps what the mix and the budget allow.
fn choose(mut cands: Vec<Candidate>, opts: &ExportOptions, names: &Names) -> Vec<Candidate> {
    cands.sort_unstable_by_key(|c| (c.order, c.id));
    if opts.mix.is_empty() {
        let mut tokens = 0u64;
        let mut out = Vec::new();
        for c in cands {
            if opts.max_samples.is_some_and(|m| out.len() as u64 >= m) || opts.max_tokens.is_some_and(|m| tokens + c.tokens as u64 > m) {
                continue;
            }
            tokens += c.tokens as u64;
            out.push(c);
        }
        return out;
    }
    let group_of = |c: &Candidate| {
        opts.mix.iter().position(|(k, _)| match k {
            MixKey::Kind(kind) => kind == names.name(c.kind),
            MixKey::Source(source) => source == names.name(c.source),
        })
    };
    let weight_sum: f64 = opts.mix.iter().map(|(_, w)| w).sum();
    let mut available = vec![0u64; opts.mix.len()];
    let mut available_tokens = vec![0u64; opts.mix.len()];
    for c in &cands {
        if let Some(g) = group_of(c) {
            available[g] += 1;
            available_tokens[g] += c.tokens as u64;
        }
    }
    // Quotas: the budget split by weight, or without one the largest set with exactly these ratios.
    let share = |g: usize| opts.mix[g].1 / weight_sum;
    let (quota, token_quota): (Vec<u64>, Vec<u64>) = if let Some(n) = opts.max_samples {
        ((0..opts.mix.len()).map(|g| ((n as f64 * share(g)).round() as u64).min(available[g])).collect(), vec![u64::MAX; opts.mix.len()])
    } else if let Some(t) = opts.max_tokens {
        (vec![u64::MAX; opts.mix.len()], (0..opts.mix.len()).map(|g| (t as f64 * share(g)) as u64).collect())
    } else {
        let scale = (0..opts.mix.len()).map(|g| available[g] as f64 / opts.mix[g].1).fold(f64::INFINITY, f64::min);
        ((0..opts.mix.len()).map(|g| ((scale * opts.mix[g].1).floor() as u64).min(available[g])).collect(), vec![u64::MAX; opts.mix.len()])
    };
    let mut taken = vec![0u64; opts.mix.len()];
    let mut taken_tokens = vec![0u64; opts.mix.len()];
    cands
        .into_iter()
        .filter(|c| {
            let Some(g) = group_of(c) else { return false };
            if taken[g] >= quota[g] || taken_tokens[g] + c.tokens as u64 > token_quota[g] {
                return false;
            }
            taken[g] += 1;
            taken_tokens[g] += c.tokens as u64;
            true
        })
        .collect()
}

fn io_error(path: &Path, e: &std::io::Error) -> ExportError {
    ExportError::Io { path: path.to_owned(), message: e.to_string() }
}

/// Where a part's records go as they are made.
trait LineSink {
    fn line(&mut self, id: i64, tokens: u64, rec: &Value) -> Result<(), ExportError>;
}

/// The JSON Lines files of a part, at most `shard_rows` lines each, written to `.partial`
/// names and renamed to their own (`train.jsonl`, or `train-00000-of-00003.jsonl` with shards)
/// once the part is done and their number known. Those of a part that fails (a full disk, a
/// store that cannot be read) or is cancelled are removed.
struct JsonlShards<'a> {
    dir: &'a Path,
    part: &'a str,
    shard_rows: Option<u64>,
    open: Option<(HashingWriter, PathBuf, ShardReport)>,
    /// The finished shards: their partial paths and reports.
    done: Vec<(PathBuf, ShardReport)>,
}

impl<'a> JsonlShards<'a> {
    fn new(dir: &'a Path, part: &'a str, shard_rows: Option<u64>) -> Self {
        Self { dir, part, shard_rows, open: None, done: Vec::new() }
    }

    fn close(&mut self) -> Result<(), ExportError> {
        if let Some((out, partial, mut shard)) = self.open.take() {
            let sha = out.finish().map_err(|e| io_error(&partial, &e))?;
            shard.sha256 = hex::encode(sha);
            self.done.push((partial, shard));
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), ExportError> {
        let partial = self.dir.join(format!(".{}-{:05}.jsonl.partial", self.part, self.done.len()));
        let f = File::create(&partial).map_err(|e| io_error(&partial, &e))?;
        let shard = ShardReport { file: String::new(), samples: 0, tokens: 0, sha256: String::new() };
        self.open = Some((HashingWriter::new(f), partial, shard));
        Ok(())
    }

    /// Puts the files in place under their names: the part's shards, in order.
    fn finish(mut self) -> Result<Vec<ShardReport>, ExportError> {
        if self.open.is_none() && self.done.is_empty() {
            // An empty part is an empty file, as it always was.
            self.open()?;
        }
        self.close()?;
        let n = self.done.len();
        let mut shards = Vec::with_capacity(n);
        for (i, (partial, mut shard)) in std::mem::take(&mut self.done).into_iter().enumerate() {
            shard.file = match self.shard_rows {
                None => format!("{}.jsonl", self.part),
                Some(_) => shard_name(self.part, i, n, Container::Jsonl),
            };
            let path = self.dir.join(&shard.file);
            if let Err(e) = std::fs::rename(&partial, &path) {
                let _ = std::fs::remove_file(&partial);
                return Err(io_error(&path, &e));
            }
            shards.push(shard);
        }
        Ok(shards)
    }
}

impl Drop for JsonlShards<'_> {
    fn drop(&mut self) {
        if let Some((out, partial, _)) = self.open.take() {
            drop(out.finish());
            let _ = std::fs::remove_file(partial);
        }
        for (partial, _) in &self.done {
            let _ = std::fs::remove_file(partial);
        }
    }
}

impl LineSink for JsonlShards<'_> {
    fn line(&mut self, _id: i64, tokens: u64, rec: &Value) -> Result<(), ExportError> {
        let full = match &self.open {
            Some((_, _, shard)) => self.shard_rows.is_some_and(|n| shard.samples >= n),
            None => true,
        };
        if full {
            self.close()?;
            self.open()?;
        }
        let Some((out, partial, shard)) = self.open.as_mut() else { unreachable!("a shard was just opened") };
        serde_json::to_writer(&mut *out, rec).map_err(|e| io_error(partial, &e.into()))?;
        out.write_all(b"\n").map_err(|e| io_error(partial, &e))?;
        shard.samples += 1;
        shard.tokens += tokens;
        Ok(())
    }
}

/// `train-00000-of-00003.parquet`: a shard's name as the Hub names them (and as `datasets` finds
/// a split's files in a directory).
fn shard_name(part: &str, i: usize, n: usize, container: Container) -> String {
    format!("{part}-{i:05}-of-{n:05}.{}", container.extension())
}

/// The `(sample id, tokens)` of each spooled line, in order.
type SpooledRows = Vec<(i64, u64)>;

/// A Parquet export's part as JSON Lines in a hidden file of the staging directory, read back
/// once every part has been seen: the columns are those of every row of the export. The
/// `(id, tokens)` of each line, to name a row and count a shard's tokens.
struct Spool<'a> {
    out: std::io::BufWriter<File>,
    path: PathBuf,
    shape: &'a mut Shape,
    rows: SpooledRows,
}

impl<'a> Spool<'a> {
    fn new(dir: &Path, part: &str, shape: &'a mut Shape) -> Result<Self, ExportError> {
        let path = dir.join(format!(".{part}.spool.partial"));
        let f = File::create(&path).map_err(|e| io_error(&path, &e))?;
        Ok(Self { out: std::io::BufWriter::with_capacity(CHUNK, f), path, shape, rows: Vec::new() })
    }

    /// The spool's path and rows, written out.
    fn finish(self) -> Result<(PathBuf, SpooledRows), ExportError> {
        let Spool { out, path, rows, .. } = self;
        out.into_inner().map_err(|e| io_error(&path, e.error()))?;
        Ok((path, rows))
    }
}

impl LineSink for Spool<'_> {
    fn line(&mut self, id: i64, tokens: u64, rec: &Value) -> Result<(), ExportError> {
        self.shape.add(rec);
        serde_json::to_writer(&mut self.out, rec).map_err(|e| io_error(&self.path, &e.into()))?;
        self.out.write_all(b"\n").map_err(|e| io_error(&self.path, &e))?;
        self.rows.push((id, tokens));
        Ok(())
    }
}

/// A spooled part as Parquet shards of at most `shard_rows` rows (one without), each written to
/// a `.partial` name and renamed when whole. The spool is removed.
fn parquet_part(
    dir: &Path,
    part: &str,
    (spool, rows): (&Path, &[(i64, u64)]),
    shape: &Shape,
    shard_rows: Option<u64>,
) -> Result<Vec<ShardReport>, ExportError> {
    use std::io::BufRead;
    let _spool_gone = RemoveOnDrop(Some(spool));
    let per_shard = shard_rows.map_or(rows.len().max(1), |n| usize::try_from(n).unwrap_or(usize::MAX));
    let n = rows.len().div_ceil(per_shard).max(1);
    let mut lines = std::io::BufReader::with_capacity(CHUNK, File::open(spool).map_err(|e| io_error(spool, &e))?).lines();
    let mut shards = Vec::with_capacity(n);
    for i in 0..n {
        let file = shard_name(part, i, n, Container::Parquet);
        let path = dir.join(&file);
        let partial = dir.join(format!(".{file}.partial"));
        let mut unfinished = RemoveOnDrop(Some(&partial));
        let f = File::create(&partial).map_err(|e| io_error(&partial, &e))?;
        let start = i * per_shard;
        let mine = &rows[start.min(rows.len())..(start + per_shard).min(rows.len())];
        let refuse = |e: ParquetError| match e {
            ParquetError::Row { row, message } => {
                let (id, _) = mine.get(row).copied().unwrap_or_default();
                ExportError::Usage(format!(
                    "{file}: sample #{id} (row {} of {part}) does not fit the Parquet columns: {message}. --container jsonl \
                     writes it",
                    start + row + 1
                ))
            }
            ParquetError::Write(message) => ExportError::Io { path: partial.clone(), message },
        };
        let mut writer = ShardWriter::new(HashingWriter::new(f), shape).map_err(refuse)?;
        for _ in mine {
            let line =
                lines.next().unwrap_or_else(|| Err(std::io::Error::other("the spool ended early"))).map_err(|e| io_error(spool, &e))?;
            let row: Value = serde_json::from_str(&line).map_err(|e| io_error(spool, &e.into()))?;
            writer.write(row).map_err(refuse)?;
        }
        let sha = writer.finish().map_err(refuse)?.finish().map_err(|e| io_error(&partial, &e))?;
        std::fs::rename(&partial, &path).map_err(|e| io_error(&path, &e))?;
        unfinished.0 = None;
        shards.push(ShardReport { file, samples: mine.len() as u64, tokens: mine.iter().map(|(_, t)| t).sum(), sha256: hex::encode(sha) });
    }
    Ok(shards)
}

/// A chunk of a part's samples, with their soft labels for kd lines.
type Batch = (Vec<(i64, ExportSample)>, std::collections::HashMap<i64, store::logprobs::SoftLabels>);

/// Makes one part's records and hands them to `sink`, the texts read a chunk at a time.
async fn write_part(
    store: &Store,
    opts: &ExportOptions,
    part: &[Candidate],
    // For kd lines: the student, and the source names the manifest counts their teachers by.
    student: Option<(&crate::train::data::Encoder, &Names)>,
    sink: &mut (dyn LineSink + Send),
    written: &mut Written,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), ExportError> {
    let candidate: std::collections::HashMap<i64, &Candidate> = part.iter().map(|c| (c.id, c)).collect();
    let tokens_of = |id: &i64| candidate.get(id).map_or(0, |c| c.tokens as u64);
    written.samples = part.len() as u64;
    written.tokens = part.iter().map(|c| c.tokens as u64).sum::<u64>();
    // The next chunk's texts (and soft labels, for kd lines) are read while this one is written:
    // the two cores share the work.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<store::Result<Batch>>(2);
    let ids: Vec<Vec<i64>> = part.chunks(500).map(|c| c.iter().map(|c| c.id).collect()).collect();
    let mut texts = TextReader::new(store, true).await?;
    let (labels_from, kd) = (store.clone(), student.is_some());
    let reader = tokio::spawn(async move {
        for chunk in ids {
            let batch = async {
                let soft = if kd { store::logprobs::of(&labels_from, &chunk).await? } else { std::collections::HashMap::new() };
                let samples = texts.samples(&chunk).await?;
                Ok((chunk.into_iter().zip(samples).collect::<Vec<_>>(), soft))
            }
            .await;
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
        texts.close().await;
    });
    let mut done = 0u64;
    while let Some(batch) = rx.recv().await {
        let (batch, soft_labels) = batch?;
        done += batch.len() as u64;
        progress(done);
        for (id, s) in batch {
            let mut rec = match record(&s, opts.format, opts.reasoning, opts.system) {
                Ok(rec) => rec,
                Err(unfit) => {
                    written.left_out.entry(unfit.to_string()).or_default().add(id);
                    written.left_out_ids.insert(id);
                    written.samples -= 1;
                    written.tokens -= tokens_of(&id);
                    continue;
                }
            };
            if s.reasoning_cut_off && opts.reasoning != ReasoningMode::Drop {
                written.cut_off_reasoning.add(id);
            }
            if let (Some((student, names)), Some(soft)) = (student, soft_labels.get(&id)) {
                let placed =
                    place_for_student(student, &rec, &soft.targets).map_err(|e| ExportError::Usage(format!("sample #{id}: {e}")))?;
                rec["token_ids"] = json!(placed.token_ids);
                rec["target_token_ids"] = json!(placed.target_token_ids);
                rec["logprobs"] = json!(placed.logprobs);
                let summary = &mut written.soft;
                summary.k = summary.k.max(placed.k as i64);
                summary.teacher_rows += placed.teacher_rows as u64;
                summary.rows += placed.target_token_ids.len() as u64;
                if let Some(t) = soft.temperature {
                    rec["temperature"] = json!(t);
                    summary.temperatures.insert(t.to_string());
                }
                let source = candidate.get(&id).map_or("", |c| names.name(c.source));
                let temperature = soft.temperature.map_or_else(|| "unknown".to_owned(), |t| t.to_string());
                *summary
                    .by_source
                    .entry(source.to_owned())
                    .or_default()
                    .entry(format!("{} k={} T={temperature}", soft.teacher, soft.k))
                    .or_default() += 1;
            }
            sink.line(id, tokens_of(&id), &rec)?;
        }
    }
    let _ = reader.await;
    Ok(())
}

/// Why a kd line's soft labels could not be placed on the student's tokens.
#[derive(Debug, thiserror::Error)]
enum Unplaced {
    #[error(transparent)]
    Conversation(#[from] crate::train::data::ConversationError),
    #[error("{0}")]
    Render(crate::train::data::Skip),
    #[error(transparent)]
    Kd(#[from] crate::export::kd::KdError),
}

/// The teacher's top-k of a kd line placed on the student's rendering of it (`line` is the
/// messages line): the tokens the student is trained on, the answer's among them.
fn place_for_student(
    student: &crate::train::data::Encoder,
    line: &Value,
    targets: &store::logprobs::Targets,
) -> Result<crate::export::kd::Placed, Unplaced> {
    let conv = crate::train::data::conversation(line)?;
    let (_, encoding, mask) = student.encode_text(&conv).map_err(Unplaced::Render)?;
    let teacher = match targets {
        store::logprobs::Targets::Json(content) => crate::export::kd::soft_targets(&student.tokenizer, content)?,
        store::logprobs::Targets::Packed { bytes, .. } => {
            crate::export::kd::soft_targets_packed(bytes, student.tokenizer.get_vocab_size(true))?
        }
    };
    Ok(crate::export::kd::place(encoding.get_ids(), &mask, &teacher)?)
}

/// Removes the file it names when dropped, unless disarmed (set to `None`).
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes a part file in 1 MiB chunks that a thread of its own hashes (sha256, for the
/// manifest) and writes out, then syncs: the thread making the lines does neither, and on two
/// cores that is a fifth of an export.
struct HashingWriter {
    buf: Vec<u8>,
    full: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<[u8; 32]>>>,
}

const CHUNK: usize = 1 << 20;

impl HashingWriter {
    fn new(mut file: File) -> Self {
        let (full, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (recycle, empty) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            for mut chunk in chunks {
                hasher.update(&chunk);
                file.write_all(&chunk)?;
                chunk.clear();
                let _ = recycle.try_send(chunk);
            }
            file.sync_all()?;
            Ok(hasher.finalize().into())
        });
        Self { buf: Vec::with_capacity(CHUNK), full: Some(full), empty, thread: Some(thread) }
    }

    /// Hands the buffer to the writing thread; when that thread has stopped on an error, its
    /// error.
    fn send(&mut self) -> std::io::Result<()> {
        let next = self.empty.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let sent = self.full.as_ref().is_some_and(|f| f.send(chunk).is_ok());
        if sent { Ok(()) } else { Err(self.stop().err().unwrap_or_else(|| std::io::Error::other("the writing thread stopped"))) }
    }

    /// Waits for the writing thread: the file's sha256 once all is written and synced.
    fn stop(&mut self) -> std::io::Result<[u8; 32]> {
        self.full = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the writing thread panicked")),
            None => Err(std::io::Error::other("the writing thread stopped")),
        }
    }

    /// Writes what is left, syncs the file and returns its sha256.
    fn finish(mut self) -> std::io::Result<[u8; 32]> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.stop()
    }
}

impl Write for HashingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one part wrote beyond its lines: its counts once the samples its format cannot hold are
/// left out, and the samples written with a cut-off reasoning.
#[derive(Debug, Default)]
struct Written {
    samples: u64,
    tokens: u64,
    left_out: BTreeMap<String, Finding>,
    /// Every sample left out, to take out of the counts by kind and source.
    left_out_ids: std::collections::HashSet<i64>,
    cut_off_reasoning: Finding,
    soft: SoftSummary,
}

/// What the soft labels of an export hold, for the manifest.
#[derive(Debug, Default, Serialize)]
struct SoftSummary {
    /// The widest top-k kept.
    k: i64,
    /// The teachers' sampling temperatures, when known.
    temperatures: std::collections::BTreeSet<String>,
    /// Rows written, and those of them the teacher gave (the rest: end-of-turn tokens and each
    /// line's last row, holding the true next token).
    rows: u64,
    teacher_rows: u64,
    /// Per source, whose log-probs its samples carry: "teacher k=K T=temperature" and how many.
    by_source: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Writes `value` as pretty JSON through a `.partial` file.
fn write_json(dir: &Path, file: &str, value: &Value) -> Result<(), ExportError> {
    let path = dir.join(file);
    let partial = dir.join(format!(".{file}.partial"));
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    std::fs::write(&partial, text).map_err(|e| io_error(&partial, &e))?;
    std::fs::rename(&partial, &path).map_err(|e| io_error(&path, &e))
}

/// The rules that shaped the store: every rule applied and not undone, in order.
async fn rules_applied(store: &Store) -> store::Result<Vec<Value>> {
    Ok(store::rules::in_force(store).await?.into_iter().map(|r| json!({"name": r.name, "rule": r.source})).collect())
}

/// Runs an export (or, with `dry_run`, only counts it).
/// `progress(done, total)` follows the samples written.
/// Alpaca has no place for tool definitions, tool calls or tool results: an answer that is a
/// tool call would be written as an empty output, the tool turns dropped from the history. An
/// error before anything is written, naming one such sample, rather than a quietly wrong file.
async fn refuse_tool_use(store: &Store, ids: impl Iterator<Item = i64>, total: u64) -> Result<(), ExportError> {
    let ids: Vec<i64> = ids.collect();
    let (count, first) = stored::with_tools(store, &ids).await?;
    match first {
        Some(first) if count > 0 => Err(ExportError::Usage(format!(
            "alpaca cannot hold tool use: {count} of the {total} samples to export offer tools or hold tool calls or tool \
             results (sample {first} is one). Export them as --format messages or sharegpt, or leave them out with \
             --where 'not has_tools'"
        ))),
        _ => Ok(()),
    }
}

pub async fn export(
    store: &Store,
    opts: &ExportOptions,
    dry_run: bool,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<ExportReport, ExportError> {
    if !(0.0..1.0).contains(&opts.val) {
        return Err(ExportError::Usage(format!("--val {} must be in [0, 1)", opts.val)));
    }
    if opts.reasoning == ReasoningMode::Field && !opts.format.has_reasoning_field() {
        return Err(ExportError::Usage(format!(
            "--reasoning field writes the reasoning as reasoning_content, which {} has no place for: use --reasoning inline \
             (<think>…</think> before the answer) or drop",
            opts.format
        )));
    }
    let mut names = Names::default();
    let chosen = choose(candidates(store, opts, &mut names).await?, opts, &names);
    let (validation, train): (Vec<Candidate>, Vec<Candidate>) = chosen.into_iter().partition(|c| c.validation);
    let mut report = ExportReport {
        samples: 0,
        tokens: 0,
        parts: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        by_source: BTreeMap::new(),
        left_out: BTreeMap::new(),
        cut_off_reasoning: Finding::default(),
        export_id: None,
    };
    for c in train.iter().chain(&validation) {
        report.samples += 1;
        report.tokens += c.tokens as u64;
        *report.by_kind.entry(names.name(c.kind).to_owned()).or_default() += 1;
        *report.by_source.entry(names.name(c.source).to_owned()).or_default() += 1;
    }
    let parts: Vec<(&str, &[Candidate])> =
        if opts.val > 0.0 { vec![("train", &train[..]), ("validation", &validation[..])] } else { vec![("train", &train[..])] };
    if dry_run {
        for (name, part) in &parts {
            report.parts.insert(
                (*name).to_owned(),
                PartReport {
                    file: String::new(),
                    samples: part.len() as u64,
                    tokens: part.iter().map(|c| c.tokens as u64).sum(),
                    sha256: String::new(),
                    shards: Vec::new(),
                },
            );
        }
        return Ok(report);
    }
    if report.samples == 0 {
        return Err(ExportError::Usage(
            "nothing to export: no sample matches (by default only accepted samples are exported; --status pending,accepted widens it)"
                .into(),
        ));
    }
    if opts.format == ExportFormat::Alpaca {
        refuse_tool_use(store, train.iter().chain(&validation).map(|c| c.id), report.samples).await?;
    }
    let student = match (opts.format, &opts.model) {
        (ExportFormat::Kd, Some(dir)) => Some(crate::train::data::Encoder::load(dir).map_err(|e| ExportError::Usage(e.to_string()))?),
        (ExportFormat::Kd, None) => {
            return Err(ExportError::Usage(
                "--format kd needs --model DIR, the student's model directory (its tokenizer.json and chat template): the \
                 teacher's top-k are placed on the tokens the student is trained on, and teacher and student must share the \
                 tokenizer"
                    .into(),
            ));
        }
        _ => None,
    };
    // The files are written aside and put in place as one set at the end.
    let staging = crate::export::staging::Staging::begin(&opts.out)?;
    let dir = staging.dir().to_owned();
    let mut soft = SoftSummary::default();
    let mut done_before = 0u64;
    let mut left_out_ids = std::collections::HashSet::new();
    // Parquet: every part spooled first, so that the columns are those of every row.
    let mut shape = Shape::default();
    let mut spools: Vec<(&str, PathBuf, SpooledRows)> = Vec::new();
    for (name, part) in &parts {
        let sink = |done: u64| progress(done_before + done, report.samples);
        let mut written = Written::default();
        match opts.container {
            Container::Jsonl => {
                let mut files = JsonlShards::new(&dir, name, opts.shard_rows);
                write_part(store, opts, part, student.as_ref().map(|s| (s, &names)), &mut files, &mut written, &sink).await?;
                report.parts.insert((*name).to_owned(), PartReport::of(name, opts.container, files.finish()?));
            }
            Container::Parquet => {
                // A failure leaves the spools in the staging directory, which goes with them.
                let mut spool = Spool::new(&dir, name, &mut shape)?;
                write_part(store, opts, part, student.as_ref().map(|s| (s, &names)), &mut spool, &mut written, &sink).await?;
                let (path, rows) = spool.finish()?;
                spools.push((name, path, rows));
            }
        }
        report.samples -= part.len() as u64 - written.samples;
        report.tokens -= part.iter().map(|c| c.tokens as u64).sum::<u64>() - written.tokens;
        for (why, found) in written.left_out {
            report.left_out.entry(why).or_default().merge(found);
        }
        report.cut_off_reasoning.merge(written.cut_off_reasoning);
        soft.k = soft.k.max(written.soft.k);
        soft.rows += written.soft.rows;
        soft.teacher_rows += written.soft.teacher_rows;
        soft.temperatures.extend(written.soft.temperatures);
        for (source, teachers) in written.soft.by_source {
            for (teacher, n) in teachers {
                *soft.by_source.entry(source.clone()).or_default().entry(teacher).or_default() += n;
            }
        }
        left_out_ids.extend(written.left_out_ids);
        done_before += part.len() as u64;
    }
    for c in train.iter().chain(&validation).filter(|c| left_out_ids.contains(&c.id)) {
        for (map, name) in [(&mut report.by_kind, names.name(c.kind)), (&mut report.by_source, names.name(c.source))] {
            if let Some(n) = map.get_mut(name) {
                *n -= 1;
                if *n == 0 {
                    map.remove(name);
                }
            }
        }
    }
    if report.samples == 0 {
        return Err(ExportError::Usage(format!("nothing to export: {}", left_out_summary(&report.left_out))));
    }
    for (name, spool, rows) in &spools {
        let shards = parquet_part(&dir, name, (spool, rows), &shape, opts.shard_rows)?;
        report.parts.insert((*name).to_owned(), PartReport::of(name, opts.container, shards));
    }
    if matches!(opts.format, ExportFormat::Sharegpt | ExportFormat::Alpaca) {
        let entries = info_entries(&parts, &report.parts);
        let entries: Vec<(&str, &str)> = entries.iter().map(|(n, f)| (n.as_str(), *f)).collect();
        write_json(&dir, "dataset_info.json", &dataset_info(&opts.name, opts.format, &entries))?;
    }
    let manifest = json!({
        "retort_version": env!("CARGO_PKG_VERSION"),
        "format": opts.format,
        "options": opts,
        "seed": opts.seed,
        "rules_applied": rules_applied(store).await?,
        "samples": report.samples,
        "tokens": report.tokens,
        "by_kind": report.by_kind,
        "by_source": report.by_source,
        "parts": report.parts,
        "left_out": report.left_out,
        "cut_off_reasoning": report.cut_off_reasoning,
        "train_with": train_with(opts, &parts, &report.parts),
    });
    let mut manifest = manifest;
    if opts.container == Container::Parquet {
        manifest["parquet"] = json!({
            "compression": "snappy",
            "row_group_rows": crate::export::parquet::ROW_GROUP_ROWS,
            // Where keys or types differ between rows, as `datasets` keeps them: arrow.json, its Json().
            "json_columns": shape.json_paths(),
        });
    }
    if opts.format == ExportFormat::Kd {
        manifest["soft_labels"] = json!({
            "top_k": soft.k,
            "temperatures": soft.temperatures,
            "rows": soft.rows,
            "teacher_rows": soft.teacher_rows,
            "by_source": soft.by_source,
            "layout": "row t is the distribution over the student's token t+1; rows right-aligned to the tokenized conversation (axolotl's KD loader)",
        });
        manifest["train_with"]["axolotl"] = axolotl_entry(&parts, &report.parts, opts.container, &soft);
    }
    write_json(&dir, "manifest.json", &manifest)?;
    staging.place()?;
    let out_dir = opts.out.display().to_string();
    let options = serde_json::to_string(opts).unwrap_or_default();
    let id = stored::record(
        store,
        &stored::NewExport {
            format: opts.format.as_str(),
            out_dir: &out_dir,
            options: &options,
            manifest: &manifest,
            samples: report.samples as i64,
            tokens: report.tokens as i64,
        },
    )
    .await?;
    report.export_id = Some(id);
    Ok(report)
}

/// The `dataset_info.json` entries of the parts (after `--name`): `train` for a part in one
/// file, `train_00000`, `train_00001`... for one in several (LLaMA-Factory reads one file, or
/// every file of a directory in no set order, per entry; `--dataset a,b,c` concatenates them in
/// order).
fn info_entries<'a>(parts: &[(&str, &[Candidate])], written: &'a BTreeMap<String, PartReport>) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    for (name, _) in parts {
        let Some(part) = written.get(*name) else { continue };
        let files = part.files();
        if files.len() == 1 {
            out.push(((*name).to_owned(), files[0]));
        } else {
            out.extend(files.into_iter().enumerate().map(|(i, f)| (format!("{name}_{i:05}"), f)));
        }
    }
    out
}

/// How the usual trainers take this export, written into the manifest.
fn train_with(opts: &ExportOptions, parts: &[(&str, &[Candidate])], written: &BTreeMap<String, PartReport>) -> Value {
    let default_layout = opts.container == Container::Jsonl && opts.shard_rows.is_none();
    if !default_layout {
        return train_with_files(opts, parts, written);
    }
    match opts.format {
        ExportFormat::Kd => json!({
            "retort": "retort train --model STUDENT --data <this directory>",
        }),
        ExportFormat::Messages | ExportFormat::PromptCompletion => json!({
            "trl": "trl sft --model_name_or_path MODEL --dataset_name json --dataset_config train.jsonl ... (or datasets.load_dataset('json', data_files='train.jsonl'))",
            "axolotl": "datasets: [{path: train.jsonl, type: chat_template, field_messages: messages}]",
        }),
        ExportFormat::Openai => json!({
            "openai": "openai api files.create -f train.jsonl -p fine-tune; openai api fine_tuning.jobs.create -t FILE_ID -m MODEL",
        }),
        ExportFormat::Sharegpt | ExportFormat::Alpaca => json!({
            "llamafactory": format!("llamafactory-cli train ... --dataset_dir <this directory> --dataset {}_train", opts.name),
        }),
    }
}

/// `train_with` for shards or Parquet: the same trainers, given the files as they are named.
fn train_with_files(opts: &ExportOptions, parts: &[(&str, &[Candidate])], written: &BTreeMap<String, PartReport>) -> Value {
    let loader = opts.container.as_str();
    let train = written.get("train").map_or_else(|| "train.jsonl".to_owned(), |p| p.file.clone());
    let data_files: Vec<String> = written.iter().map(|(name, p)| format!("'{name}': '{}'", p.file)).collect();
    let load = format!("datasets.load_dataset('{loader}', data_files={{{}}})", data_files.join(", "));
    let axolotl_paths: Vec<String> = written
        .get("train")
        .map(|p| p.files())
        .unwrap_or_default()
        .iter()
        .map(|f| format!("{{path: {f}, ds_type: {loader}, type: chat_template, field_messages: messages}}"))
        .collect();
    match opts.format {
        ExportFormat::Kd => json!({"retort": "retort train --model STUDENT --data <this directory>"}),
        ExportFormat::Messages | ExportFormat::PromptCompletion => json!({
            "trl": format!("{load} (TRL's SFTTrainer takes the dataset it returns)"),
            "axolotl": format!("datasets: [{}]", axolotl_paths.join(", ")),
        }),
        ExportFormat::Openai => json!({
            "openai": if opts.container == Container::Jsonl {
                format!("upload each of the {train} files: openai api files.create -f FILE -p fine-tune")
            } else {
                "OpenAI's fine-tuning takes JSON Lines: export with --container jsonl to upload; this Parquet is for datasets ({load})".to_owned()
            },
        }),
        ExportFormat::Sharegpt | ExportFormat::Alpaca => {
            let names: Vec<String> = info_entries(parts, written)
                .into_iter()
                .filter(|(n, _)| n.starts_with("train"))
                .map(|(n, _)| format!("{}_{n}", opts.name))
                .collect();
            json!({"llamafactory": format!("llamafactory-cli train ... --dataset_dir <this directory> --dataset {}", names.join(","))})
        }
    }
}

/// The axolotl config that trains on a kd export: its KD plugin and one dataset entry per file
/// (per part, or per shard), with the temperature the log-probs were sampled at (axolotl reads it
/// per dataset).
fn axolotl_entry(
    parts: &[(&str, &[Candidate])],
    written: &BTreeMap<String, PartReport>,
    container: Container,
    soft: &SoftSummary,
) -> Value {
    let temperature: f64 = match soft.temperatures.iter().collect::<Vec<_>>()[..] {
        [one] => one.parse().unwrap_or(1.0),
        _ => 1.0,
    };
    let mut entry = json!({
        "plugins": ["axolotl.integrations.kd.KDPlugin"],
        "kd_trainer": true,
        "kd_temperature": 1.0,
        "datasets": parts.iter().flat_map(|(name, _)| written.get(*name).map(PartReport::files).unwrap_or_default()).map(|file| {
            let mut entry = json!({
                // Relative to the export's directory: the manifest is the same wherever it is written.
                "path": file,
                "type": "axolotl.integrations.kd.chat_template",
                "field_messages": "messages",
                "logprobs_field": "logprobs",
                "temperature": temperature,
            });
            if container == Container::Parquet {
                entry["ds_type"] = json!("parquet");
            }
            entry
        }).collect::<Vec<_>>(),
    });
    if soft.temperatures.len() > 1 {
        entry["note"] = json!(format!(
            "the samples were drawn at {} temperatures ({}): axolotl takes one per dataset, so export each with --where on its teacher",
            soft.temperatures.len(),
            soft.temperatures.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    entry
}

/// Samples of one problem the template check found: how many, and the first ids.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Finding {
    pub count: u64,
    pub examples: Vec<i64>,
    /// The first error message, for render errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Finding {
    fn add(&mut self, id: i64) {
        self.count += 1;
        if self.examples.len() < 10 {
            self.examples.push(id);
        }
    }

    fn merge(&mut self, other: Finding) {
        self.count += other.count;
        self.examples.extend(other.examples);
        self.examples.truncate(10);
    }
}

/// What `--check-template` found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TemplateReport {
    pub checked: u64,
    /// Conversations with at least one of the problems below (one may have several).
    pub with_problems: u64,
    /// Reasoning exported with the sample that the rendered conversation does not contain.
    pub reasoning_dropped: Finding,
    /// Tools offered to the teacher that the rendered conversation does not show: the student
    /// would learn to call them without seeing their definitions.
    pub tools_dropped: Finding,
    /// Tool calls in the conversation (earlier turns or the answer) that the rendering leaves out.
    pub tool_calls_dropped: Finding,
    /// Rendered conversations longer than `--max-len` tokens (needs the model's tokenizer.json).
    pub too_long: Finding,
    /// Conversations whose assistant part is empty once the prompt is masked.
    pub empty_assistant: Finding,
    /// Conversations whose rendered prompt is not a prefix of the rendered whole: masking the
    /// prompt by its rendering would cut the wrong place.
    pub prompt_not_prefix: Finding,
    /// Not a problem of the data, but worth knowing: the generation prompt adds text the trained
    /// conversation does not have (DeepSeek-R1's `<think>\n`), so training and inference differ.
    pub generation_prompt_differs: Finding,
    pub render_errors: Finding,
}

impl TemplateReport {
    #[must_use]
    pub fn problems(&self) -> u64 {
        self.reasoning_dropped.count
            + self.tools_dropped.count
            + self.tool_calls_dropped.count
            + self.too_long.count
            + self.empty_assistant.count
            + self.prompt_not_prefix.count
            + self.render_errors.count
    }
}

/// Renders every sample the export would write through the model's own chat template and
/// reports what training on it would lose.
pub async fn check_template(
    store: &Store,
    opts: &ExportOptions,
    model_dir: &Path,
    max_len: Option<u64>,
) -> Result<TemplateReport, ExportError> {
    let template = crate::template::ChatTemplate::load(model_dir).map_err(|e| ExportError::Usage(e.to_string()))?;
    let tokenizer_path = model_dir.join("tokenizer.json");
    let tokenizer = match (max_len, tokenizer_path.exists()) {
        (Some(_), true) => {
            Some(crate::ingest::tokens::TokenCounter::from_file(&tokenizer_path).map_err(|e| ExportError::Usage(e.to_string()))?)
        }
        (Some(_), false) => {
            return Err(ExportError::Usage(format!("--max-len needs the model's tokenizer.json in {}", model_dir.display())));
        }
        (None, _) => None,
    };
    let mut names = Names::default();
    let chosen = choose(candidates(store, opts, &mut names).await?, opts, &names);
    let mut report = TemplateReport::default();
    let mut texts = TextReader::new(store, false).await?;
    for chunk in chosen.chunks(500) {
        let ids: Vec<i64> = chunk.iter().map(|c| c.id).collect();
        for (id, s) in ids.iter().zip(texts.samples(&ids).await?) {
            let problems_before = report.problems();
            check_one(&template, tokenizer.as_ref(), max_len, opts, *id, &s, &mut report);
            report.checked += 1;
            if report.problems() > problems_before {
                report.with_problems += 1;
            }
        }
    }
    Ok(report)
}

/// Renders one sample through the template and adds what it loses to the report.
fn check_one(
    template: &crate::template::ChatTemplate,
    tokenizer: Option<&crate::ingest::tokens::TokenCounter>,
    max_len: Option<u64>,
    opts: &ExportOptions,
    id: i64,
    s: &ExportSample,
    report: &mut TemplateReport,
) {
    let Ok(record) = record(s, ExportFormat::Messages, opts.reasoning, opts.system) else { return };
    let messages: Vec<Value> = record["messages"].as_array().cloned().unwrap_or_default();
    let tools = record.get("tools");
    let training = match template.render_training(&messages, tools) {
        Ok(t) => t,
        Err(e) => {
            report.render_errors.add(id);
            report.render_errors.first_error.get_or_insert(e.to_string());
            return;
        }
    };
    if training.generation_prompt_differs {
        report.generation_prompt_differs.add(id);
    }
    let full = &training.text;
    if opts.reasoning != ReasoningMode::Drop
        && let Some(reasoning) = s.reasoning.as_deref().map(str::trim).filter(|r| !r.is_empty())
    {
        let probe: String = reasoning.chars().take(60).collect();
        if !full.contains(&probe) {
            report.reasoning_dropped.add(id);
        }
    }
    let (tools_hidden, calls_hidden) = crate::template::hidden_tool_use(full, tools, &messages);
    if tools_hidden {
        report.tools_dropped.add(id);
    }
    if calls_hidden {
        report.tool_calls_dropped.add(id);
    }
    // The answer is the last trained range, once the prompt's rendering is masked.
    match training.trained.last().filter(|_| training.answer_located) {
        Some(answer) => {
            if full[answer.clone()].replace(template.eos_token(), "").trim().is_empty() {
                report.empty_assistant.add(id);
            }
        }
        None => report.prompt_not_prefix.add(id),
    }
    if let (Some(limit), Some(t)) = (max_len, tokenizer)
        && t.count(full) > limit
    {
        report.too_long.add(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_writes_and_hashes_every_byte_across_chunks() {
        let dir = std::env::temp_dir().join(format!("retort-hw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("part.jsonl");
        let mut w = HashingWriter::new(File::create(&path).unwrap());
        // Lines of uneven lengths over three chunks and a bit.
        let mut expected = Vec::new();
        for i in 0..40_000u32 {
            let line = format!("{{\"i\":{i},\"t\":\"{}\"}}\n", "x".repeat((i % 197) as usize));
            w.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        assert!(expected.len() > 3 * CHUNK);
        let digest = w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(hex::encode(digest), hex::encode(Sha256::digest(&expected)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashing_writer_reports_the_write_error() {
        // /dev/full takes the open and fails every write with ENOSPC, as a full disk does.
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut w = HashingWriter::new(full);
        let err = (0..8).try_for_each(|_| w.write_all(&vec![b'x'; CHUNK])).err().or_else(|| w.finish().err()).unwrap();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
    }
}
