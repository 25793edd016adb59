//! `retort bench concurrent`: the TUI deciding while an import writes into the same store.
//!
//! The import runs as another retort process, as a curator's would; the TUI's own writer (the
//! [`Runner`]) takes a key every `--key-every-ms`: each key's time from the press to its commit
//! answered, and the import's rows/s beside it against the same import alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::app::{Effect, Msg};
use super::{Input, Runner};
use crate::domain::Status;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ConcurrentBenchArgs {
    /// Rows of the import (R1-sized, as `bench import` makes them).
    #[arg(long, default_value_t = 50_000)]
    pub rows: u64,
    /// A key every this many milliseconds while the import runs.
    #[arg(long, default_value_t = 20)]
    pub key_every_ms: u64,
    /// Where to put the generated file and the stores (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The import as another process; its wall time.
async fn import_beside(
    db: &Path,
    file: &Path,
    decide: Option<(&Runner, &mut tokio::sync::mpsc::UnboundedReceiver<Input>, u64)>,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let exe = std::env::current_exe().context("finding retort's own binary")?;
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("--db")
        .arg(db)
        .arg("import")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the import")?;
    let mut latencies = Vec::new();
    if let Some((runner, answers, every)) = decide {
        let mut pending: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_millis(every));
        let mut id = 0i64;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if child.try_wait()?.is_some() {
                        break;
                    }
                    id = id % 100 + 1;
                    let status = if id % 2 == 0 { Status::Accepted } else { Status::Rejected };
                    runner.run(vec![Effect::SetStatus { ids: vec![id], status }]);
                    pending.push_back(Instant::now());
                }
                Some(input) = answers.recv() => {
                    // The writer answers in key order: the oldest key waiting is this one.
                    if let Input::Msg(Msg::Changed { .. } | Msg::Error(_)) = input
                        && let Some(sent) = pending.pop_front()
                    {
                        latencies.push(sent.elapsed());
                    }
                }
            }
        }
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    anyhow::ensure!(out.status.success(), "the import failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((started.elapsed().as_secs_f64(), latencies))
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

pub async fn concurrent_bench(args: &ConcurrentBenchArgs) -> anyhow::Result<()> {
    let dir = if let Some(d) = &args.dir {
        std::fs::create_dir_all(d)?;
        d.clone()
    } else {
        tempfile_dir()?
    };
    let file = dir.join("rows.jsonl");
    let bytes = crate::ops::bench::generate(&file, args.rows, 4)?;
    println!("generated {} rows ({:.0} MB)", args.rows, bytes as f64 / 1e6);
    let mut alone = Vec::new();
    let mut beside = Vec::new();
    let mut latencies = Vec::new();
    // Alternating, twice each: the disk's state drifts between runs.
    for round in 0..2 {
        for with_tui in [false, true] {
            let db = dir.join(format!("store-{round}-{with_tui}.db"));
            let _ = std::fs::remove_file(&db);
            let store = Store::open(&db).await?;
            crate::demo::import_demo(&store).await?;
            if with_tui {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
                let runner = Runner::new(store.clone(), Arc::new(super::search::SearchEngine::default()), tx);
                let (secs, lat) = import_beside(&db, &file, Some((&runner, &mut rx, args.key_every_ms))).await?;
                beside.push(secs);
                latencies.extend(lat);
            } else {
                alone.push(import_beside(&db, &file, None).await?.0);
            }
            store.close().await;
            let _ = std::fs::remove_file(&db);
        }
    }
    latencies.sort();
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (alone, beside) = (best(&alone), best(&beside));
    println!(
        "a key's decision to its commit while the import writes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} keys, one every {} ms)",
        ms(&latencies, 0.5),
        ms(&latencies, 0.99),
        ms(&latencies, 1.0),
        latencies.len(),
        args.key_every_ms
    );
    println!(
        "the import: alone {:.0} rows/s, beside the deciding TUI {:.0} rows/s ({:.2}x) — best of two runs each, the whole command",
        args.rows as f64 / alone,
        args.rows as f64 / beside,
        alone / beside
    );
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("retort-bench-concurrent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
