//! `retort bench export`: writing a large accepted set, timed, with the peak memory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::domain::Status;
use crate::export::{ExportFormat, ReasoningMode};
use crate::ops::bench::{AnonPeak, peak_rss_mib, reset_peak_rss};
use crate::ops::bench_rules::fresh;
use crate::ops::export::{ExportOptions, export};

#[derive(Debug, clap::Args)]
pub struct ExportBenchArgs {
    /// Samples to export (R1-sized: ~6 KB each).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Where to put the store and the export (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub async fn export_bench(args: &ExportBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-export-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = fresh(&dir.join("export.db")).await?;
    let t = Instant::now();
    // R1-sized samples made in SQL: a 5 KB reasoning and a 200-byte answer each.
    crate::ops::bench_rules::generate(&store, args.rows).await?;
    crate::store::synthetic::r1_sized_accepted(&store).await?;
    println!("generated {} accepted samples in {:.1}s", args.rows, t.elapsed().as_secs_f64());
    for format in [ExportFormat::Messages, ExportFormat::Sharegpt] {
        let out = dir.join(format.as_str());
        let opts = ExportOptions {
            format,
            out: out.clone(),
            filter: None,
            filter_expr: None,
            statuses: vec![Status::Accepted],
            labels: None,
            reasoning: ReasoningMode::Inline,
            system: true,
            val: 0.02,
            seed: 0,
            mix: Vec::new(),
            max_samples: None,
            max_tokens: None,
            name: "bench".into(),
            model: None,
            container: crate::export::Container::Jsonl,
            shard_rows: None,
        };
        reset_peak_rss();
        let anon = AnonPeak::start();
        let t = Instant::now();
        let report = export(&store, &opts, false, &|_, _| {}).await?;
        let secs = t.elapsed().as_secs_f64();
        let anon = anon.stop();
        let bytes: u64 = report.parts.values().filter_map(|p| std::fs::metadata(out.join(&p.file)).ok()).map(|m| m.len()).sum();
        println!(
            "{:<10} {} samples, {:.0} MB in {secs:.2}s: {:.0} MB/s, {:.0} samples/s, peak RSS {} (anonymous {}; the rest is the store's pages, mapped)",
            format.as_str(),
            report.samples,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            report.samples as f64 / secs,
            peak_rss_mib().map_or_else(|| "-".into(), |m| format!("{m:.0} MiB")),
            anon.map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"))
        );
    }
    store.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
