//! `retort bench rules`: each rule kind over a generated store, timed.
//!
//! The store is made directly in SQL (1M samples take seconds): 8 samples per prompt, three
//! teachers, a `math` score per sample, every 50th sample an exact duplicate of the one before.
//! Near-duplicate detection reads whole texts, so it runs on its own store of R1-sized samples
//! (`--near-rows`, default 100k), every 20th a lightly edited copy of the one before.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::ops::rules::{RunOptions, apply, dry_run};
use crate::ops::undo::{UndoTarget, undo};
use crate::rules::parse_rule;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct RulesBenchArgs {
    /// Samples in the store the predicate, best-of-n and duplicate rules run on.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Samples (R1-sized texts) in the store near-duplicate detection runs on.
    #[arg(long, default_value_t = 100_000)]
    pub near_rows: u64,
    /// Where to put the stores (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub(crate) async fn fresh(path: &Path) -> anyhow::Result<Store> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(Store::open(path).await?)
}

/// Fills a store with `rows` short samples in SQL.
pub(crate) async fn generate(store: &Store, rows: u64) -> anyhow::Result<()> {
    Ok(crate::store::synthetic::short_samples(store, rows).await?)
}

fn timed<T>(label: &str, started: Instant, result: &anyhow::Result<T>, detail: &str) {
    match result {
        Ok(_) => println!("{label:<86} {:>17.2}s  {detail}", started.elapsed().as_secs_f64()),
        Err(e) => println!("{label:<86} failed: {e}"),
    }
}

pub async fn rules_bench(args: &RulesBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-rules-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = fresh(&dir.join("rules.db")).await?;
    let t = Instant::now();
    generate(&store, args.rows).await?;
    // Rules are measured on a store at rest, as a curator meets it, not on a 400 MB
    // write-ahead log: the generation ends with a checkpoint.
    println!("generated {} samples in {:.1}s\n", args.rows, t.elapsed().as_secs_f64());
    let opts = RunOptions::default();
    let rules = [
        ("predicate", "accept where score.math >= 0.5 and tokens <= 16384 and finish_reason != \"length\""),
        ("predicate", "reject where score.math < 0.1 or tokens > 30000"),
        ("label", "label hard where has_reference and kind = general"),
        ("tag", "tag \"long\" where reasoning_tokens > 8000 and teacher = \"teacher-b\""),
        ("exact duplicates", "reject duplicates"),
        ("best-of-n", "keep best 1 per prompt by score.math, tokens asc"),
    ];
    println!("{:<86} {:>8} {:>8} {:>9}", "rule (selection = dry run; apply = selection + history + change)", "select", "apply", "changed");
    for (what, text) in rules {
        let rule = parse_rule(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        dry_run(&store, &rule, &opts).await?;
        let selected = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = apply(&store, &rule, &opts).await?;
        println!("{:<86} {selected:>7.2}s {:>7.2}s {:>9}", format!("{what}: {text}"), t.elapsed().as_secs_f64(), report.changed);
    }
    let t = Instant::now();
    let r = undo(&store, &UndoTarget::Last(6)).await.map_err(anyhow::Error::from);
    // (the dry run recorded nothing: six actions are the six applied rules)
    let detail = r.as_ref().map(|u| format!("{} samples put back", u.iter().map(|u| u.reverted).sum::<u64>())).unwrap_or_default();
    timed("undo the six rules", t, &r, &detail);
    store.close().await;

    // Near-duplicates on R1-sized texts.
    let near = fresh(&dir.join("near.db")).await?;
    let jsonl = dir.join("near.jsonl");
    super::bench::generate_with_near_duplicates(&jsonl, args.near_rows)?;
    let opts_import = crate::ops::import::ImportOptions::default();
    crate::ops::import::import(&near, std::slice::from_ref(&jsonl), &opts_import, &|_| {}).await?;
    let rule = parse_rule("reject near-duplicates threshold 0.85").map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let r = apply(&near, &rule, &opts).await.map_err(anyhow::Error::from);
    let detail = r
        .as_ref()
        .map(|r| format!("{} changed of {} samples ({} planted)", r.changed, args.near_rows, args.near_rows / 20))
        .unwrap_or_default();
    timed("near-duplicates (apply): reject near-duplicates threshold 0.85", t, &r, &detail);
    near.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
