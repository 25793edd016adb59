//! `retort bench import`: retort's import against a plain prepared-statement insert loop.
//!
//! Both read the same generated JSONL (R1-sized rows: prompt ~0.5 KB, reasoning 2–8 KB, answer
//! ~0.2 KB, 4 samples per prompt) into the same schema. The baseline is the SQLite limit DESIGN.md
//! measures: rusqlite, one prepared statement per row, one transaction, no checks.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::ops::import::{ImportOptions, import};
use crate::ops::index::{self, IndexWhen, Indexed};

#[derive(Debug, clap::Args)]
pub struct ImportBenchArgs {
    /// Rows (samples) to generate.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// Samples per prompt.
    #[arg(long, default_value_t = 4)]
    pub per_prompt: u64,
    /// Where to put the generated file and stores (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Import the rows from Parquet and from JSONL, end to end, at a quarter of --rows and at --rows:
    /// rows/s of each and the Parquet import's peak memory.
    #[arg(long)]
    pub parquet: bool,
}

const WORDS: &[&str] = &[
    "the",
    "so",
    "we",
    "need",
    "to",
    "find",
    "value",
    "of",
    "x",
    "let",
    "me",
    "check",
    "again",
    "wait",
    "equation",
    "gives",
    "then",
    "square",
    "root",
    "sum",
    "is",
    "and",
    "but",
    "because",
    "therefore",
    "if",
    "2",
    "3",
    "17",
    "+",
    "=",
    "\\frac{1}{2}",
    "number",
    "triangle",
    "angle",
    "area",
    "prime",
    "factor",
    "hmm",
    "right",
    "that",
    "means",
    "compute",
    "first",
    "second",
    "case",
    "term",
];

/// A small deterministic generator (no dependency needed for benchmark text).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn text(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes + 16);
        while s.len() < bytes {
            s.push_str(WORDS[(self.next() % WORDS.len() as u64) as usize]);
            s.push(if self.next().is_multiple_of(13) { '\n' } else { ' ' });
        }
        s
    }
}

/// Writes `rows` R1-sized rows in the `messages` format with `<think>` inline.
pub fn generate(path: &Path, rows: u64, per_prompt: u64) -> anyhow::Result<u64> {
    write_rows(path, rows, per_prompt, None)
}

/// Like the import benchmark's rows, one prompt each, with every 20th sample a copy of the one
/// before with a few words changed: what `reject near-duplicates` must find.
pub fn generate_with_near_duplicates(path: &Path, rows: u64) -> anyhow::Result<u64> {
    write_rows(path, rows, 1, Some(20))
}

fn write_rows(path: &Path, rows: u64, per_prompt: u64, near_every: Option<u64>) -> anyhow::Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut rng = Lcg(42);
    let mut prompt = String::new();
    let mut reasoning = String::new();
    for i in 0..rows {
        let copy = near_every.is_some_and(|k| i > 0 && i % k == 0);
        if i % per_prompt.max(1) == 0 && !copy {
            prompt = format!("Problem {i}: {}", rng.text(500));
        }
        if copy {
            reasoning = reasoning.replacen(" the ", " a ", 2).replacen(" we ", " I ", 1);
        } else {
            let reasoning_len = 2_000 + (rng.next() % 6_000) as usize;
            reasoning = rng.text(reasoning_len);
        }
        let answer = rng.text(200);
        let row = serde_json::json!({
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": format!("<think>\n{reasoning}\n</think>\n\n{answer}")}
            ],
            "model": "bench-teacher",
            "row": i
        });
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Peak resident memory of this process so far, in MiB (Linux).
#[must_use]
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// A memory figure of this process's `/proc/self/status` (`VmHWM:`, `RssAnon:`...), in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The peak of this process's anonymous resident memory (`RssAnon`, Linux), sampled every
/// 2 ms while it runs: the memory it allocated, without the file pages it maps (an export maps
/// the store, and those pages count in the peak RSS though they are the page cache's).
pub struct AnonPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<f64>>,
}

impl AnonPeak {
    #[must_use]
    pub fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let read = || status_mib("RssAnon:");
            let mut peak = read();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(2));
                peak = match (peak, read()) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            peak
        });
        Self { stop, thread }
    }

    /// Stops sampling; the peak in MiB.
    #[must_use]
    pub fn stop(self) -> Option<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// Resets the peak-memory mark, so each phase is measured alone (Linux ≥ 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The baseline: parse each line and insert it with prepared statements, one transaction.
fn plain_insert_loop(db: &Path, jsonl: &Path) -> anyhow::Result<u64> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let tx = conn.transaction()?;
    tx.execute("INSERT INTO teachers (name) VALUES ('bench-teacher')", [])?;
    tx.execute("INSERT INTO sources (name) VALUES ('bench')", [])?;
    let mut rows = 0u64;
    {
        let mut insert_prompt = tx.prepare(
            "INSERT INTO prompts (hash, kind, source_id, has_reference, created_at) VALUES (?1, 'reasoning', 1, 0, 0) \
             ON CONFLICT (hash) DO NOTHING",
        )?;
        let mut prompt_id = tx.prepare("SELECT id FROM prompts WHERE hash = ?1")?;
        let mut insert_prompt_text = tx.prepare("INSERT INTO prompt_texts (prompt_id, text) VALUES (?1, ?2)")?;
        let mut insert_sample = tx.prepare(
            "INSERT INTO samples (prompt_id, teacher_id, source_id, origin, content_hash, label, tokens, reasoning_tokens, \
             answer_tokens, created_at) VALUES (?1, 1, 1, ?2, ?3, 'pseudo', ?4, ?5, ?6, 0)",
        )?;
        let mut insert_text = tx.prepare("INSERT INTO sample_texts (sample_id, reasoning, answer) VALUES (?1, ?2, ?3)")?;
        for (i, line) in BufReader::new(File::open(jsonl)?).lines().enumerate() {
            let line = line?;
            let v: serde_json::Value = serde_json::from_str(&line)?;
            let prompt = v["messages"][0]["content"].as_str().unwrap_or_default();
            let content = v["messages"][1]["content"].as_str().unwrap_or_default();
            let (reasoning, answer) = content.split_once("</think>").unwrap_or(("", content));
            let hash: [u8; 32] = Sha256::digest(prompt.as_bytes()).into();
            if insert_prompt.execute(rusqlite::params![hash.as_slice()])? == 1 {
                insert_prompt_text.execute(rusqlite::params![tx.last_insert_rowid(), prompt])?;
            }
            let pid: i64 = prompt_id.query_row(rusqlite::params![hash.as_slice()], |r| r.get(0))?;
            // Keyed as imports key them (migrations/0006): the record number, then a hash.
            let (origin, _) = crate::ops::import::prepare::origins(&Sha256::new_with_prefix(line.as_bytes()), i as u64, 0);
            let content_hash: [u8; 32] = Sha256::digest(content.as_bytes()).into();
            let (rt, at) = (reasoning.len() as i64 / 4, answer.len() as i64 / 4);
            insert_sample.execute(rusqlite::params![pid, origin.as_slice(), content_hash.as_slice(), rt + at, rt, at])?;
            insert_text.execute(rusqlite::params![tx.last_insert_rowid(), reasoning, answer])?;
            rows += 1;
        }
    }
    tx.commit()?;
    Ok(rows)
}

/// A generated input the import bench reads, and what the baseline reads beside it.
pub(super) struct Input {
    /// What `retort import` is given.
    pub(super) path: PathBuf,
    /// Its size on disk.
    pub(super) bytes: u64,
    /// The same rows as JSONL, for the plain loop (the same file when the input is JSONL).
    pub(super) jsonl: PathBuf,
    /// How the table names it ("JSONL").
    pub(super) label: &'static str,
}

impl Input {
    /// `rows` bench rows as JSONL, generated at `path`.
    pub(super) fn jsonl(path: &Path, rows: u64, per_prompt: u64) -> anyhow::Result<Self> {
        let bytes = generate(path, rows, per_prompt)?;
        Ok(Self { jsonl: path.to_owned(), path: path.to_owned(), bytes, label: "JSONL" })
    }

    /// The same rows as Parquet at `path`, written from the JSONL input `from`.
    pub(super) fn parquet(from: &Input, path: &Path) -> anyhow::Result<Self> {
        let bytes = super::bench_parquet::jsonl_to_parquet(&from.jsonl, path, super::bench_parquet::GROUP_ROWS)?;
        Ok(Self { jsonl: from.jsonl.clone(), path: path.to_owned(), bytes, label: "Parquet" })
    }
}

/// What one run of `retort import` took, phase by phase.
pub(super) struct ImportRun {
    pub(super) samples: u64,
    /// Checking and writing the rows (the command's import proper).
    pub(super) write_s: f64,
    /// Building the full-text index after them.
    pub(super) index_s: f64,
    /// When the command returned, from its start: with `--index auto` past
    /// [`FOREGROUND_MAX`](crate::ops::index::FOREGROUND_MAX) samples the index is built by a
    /// background process after that.
    pub(super) returned_s: f64,
    /// Whether the index was built by the background process.
    background: bool,
    rss: Option<f64>,
    /// The peak of the import's anonymous memory: what it allocated, without the store's
    /// mapped pages (which grow with the store).
    pub(super) anon: Option<f64>,
}

/// Runs `retort import` of `input` into a new store at `db` as the command does with
/// `--index auto`, and waits for the index to be complete.
pub(super) async fn run_import(db: &Path, input: &Input) -> anyhow::Result<ImportRun> {
    let store = super::bench_rules::fresh(db).await?;
    // The last run's store still being written back to disk would slow this one down (the
    // figures of one run swung 0.7x-1.2x with it): the run starts with nothing left to flush.
    let _ = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await;
    reset_peak_rss();
    let opts = ImportOptions::default();
    let anon = AnonPeak::start();
    let started = Instant::now();
    let reports = import(&store, std::slice::from_ref(&input.path), &opts, &|_| {}).await?;
    let write_s = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let anon = anon.stop();
    let samples: u64 = reports.iter().map(|r| r.samples_added).sum();
    // The background indexer is this binary's `index` command: `retort bench` runs as retort.
    let exe = std::env::current_exe().ok();
    let indexed = index::after_import(&store, IndexWhen::Auto, exe.as_deref(), &|_| {}).await?;
    let returned_s = started.elapsed().as_secs_f64();
    let background = matches!(indexed, Indexed::Background { .. });
    // Waiting for the background indexer; one that makes no progress for a minute has died.
    let (mut left, mut moved) = (crate::store::fts::pending(&store).await?, Instant::now());
    while left > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = crate::store::fts::pending(&store).await?;
        if now < left {
            moved = Instant::now();
        }
        left = now;
        anyhow::ensure!(moved.elapsed().as_secs() < 60, "the background indexer stopped with {left} samples left to index");
    }
    let index_s = started.elapsed().as_secs_f64() - write_s;
    store.close().await;
    Ok(ImportRun { samples, write_s, index_s, returned_s, background, rss, anon })
}

pub async fn import_bench(args: &ImportBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if args.parquet {
        let ran = super::bench_parquet::parquet_bench(&dir, args.rows, args.per_prompt).await;
        if temp {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return ran;
    }
    let started = Instant::now();
    let input = Input::jsonl(&dir.join("bench.jsonl"), args.rows, args.per_prompt)?;
    let mb = input.bytes as f64 / 1e6;
    println!(
        "generated {} rows, {mb:.0} MB of {} in {:.1}s ({})",
        args.rows,
        input.label,
        started.elapsed().as_secs_f64(),
        input.path.display()
    );

    let run = run_import(&dir.join("retort.db"), &input).await?;

    // The baseline, into the same schema.
    let baseline_db = dir.join("baseline.db");
    super::bench_rules::fresh(&baseline_db).await?.close().await;
    reset_peak_rss();
    let t = Instant::now();
    let baseline_rows = tokio::task::block_in_place(|| plain_insert_loop(&baseline_db, &input.jsonl))?;
    let baseline_s = t.elapsed().as_secs_f64();
    let baseline_rss = peak_rss_mib();

    let rate = |rows: u64, s: f64| rows as f64 / s;
    let rss = |r: Option<f64>| r.map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"));
    let line = |name: &str, rows: u64, s: f64, r: &str| {
        println!("{name:<52} {:>10.0} {:>10.1} {s:>9.2} {r:>12}", rate(rows, s), mb / s);
    };
    println!("\n{:<52} {:>10} {:>10} {:>9} {:>12}", "", "rows/s", "MB/s", "seconds", "peak RSS");
    line(&format!("retort import of {}: check + write", input.label), run.samples, run.write_s, &rss(run.rss));
    line("plain prepared-statement loop", baseline_rows, baseline_s, &rss(baseline_rss));
    let how = if run.background { "the background indexer" } else { "the command, before it returns" };
    line(&format!("full-text index (by {how})"), run.samples, run.index_s, "");
    line("`retort import`, to when it returns", run.samples, run.returned_s, "");
    line("`retort import`, to a complete index", run.samples, run.write_s + run.index_s, "");
    println!("\nratio (retort check + write / plain loop): {:.2}x", rate(run.samples, run.write_s) / rate(baseline_rows, baseline_s));
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
