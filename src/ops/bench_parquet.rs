//! `retort bench import --parquet`: the same generated R1-sized rows imported from Parquet and
//! from JSONL, end to end (the full-text index included), at a quarter of `--rows` and at
//! `--rows`, with each run's peak memory: Parquet must keep up with JSONL, and its memory must stay
//! flat as the file grows.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::ops::bench::{AnonPeak, generate};
use crate::ops::import::{ImportOptions, import};
use crate::store::Store;

/// Rows per row group in the bench's Parquet files: `datasets`' `to_parquet` writes batches of
/// 1,000 rows for text datasets.
const GROUP_ROWS: usize = 1000;

/// Writes a JSONL file's records as Parquet (snappy, as pyarrow and `datasets` write it), the
/// schema inferred by arrow-json from the first rows. Returns the Parquet file's size.
pub fn jsonl_to_parquet(jsonl: &Path, out: &Path, group_rows: usize) -> anyhow::Result<u64> {
    let mut input = BufReader::with_capacity(1 << 20, File::open(jsonl).with_context(|| format!("reading {}", jsonl.display()))?);
    let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(&mut input, Some(1000))?;
    input.rewind()?;
    let schema = Arc::new(schema);
    let reader = arrow_json::ReaderBuilder::new(Arc::clone(&schema)).with_batch_size(group_rows).build(input)?;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(File::create(out).with_context(|| format!("writing {}", out.display()))?, schema, Some(props))?;
    for batch in reader {
        writer.write(&batch?)?;
    }
    writer.close()?;
    Ok(std::fs::metadata(out)?.len())
}

/// One import, end to end, into a fresh store: seconds, samples and peak anonymous memory.
async fn timed_import(db: &Path, file: &Path) -> anyhow::Result<(f64, u64, Option<f64>)> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = Store::open(db).await?;
    let peak = AnonPeak::start();
    let t = Instant::now();
    let reports = import(&store, &[file.to_owned()], &ImportOptions::default(), &|_| {}).await?;
    let seconds = t.elapsed().as_secs_f64();
    let peak = peak.stop();
    store.close().await;
    Ok((seconds, reports.iter().map(|r| r.samples_added).sum(), peak))
}

/// The bench: `rows / 4` and `rows` rows, each from JSONL and from Parquet.
pub async fn parquet_bench(dir: &Path, rows: u64, per_prompt: u64) -> anyhow::Result<()> {
    let rss = |r: Option<f64>| r.map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"));
    println!("{:<10} {:<8} {:>10} {:>9} {:>10} {:>14}", "rows", "input", "size MB", "seconds", "rows/s", "peak anon RSS");
    let mut ratios = Vec::new();
    let mut peaks = Vec::new();
    for n in [(rows / 4).max(1), rows] {
        let jsonl = dir.join(format!("bench-{n}.jsonl"));
        let pq = dir.join(format!("bench-{n}.parquet"));
        let jsonl_mb = generate(&jsonl, n, per_prompt)? as f64 / 1e6;
        let t = Instant::now();
        let pq_mb = tokio::task::block_in_place(|| jsonl_to_parquet(&jsonl, &pq, GROUP_ROWS))? as f64 / 1e6;
        let convert_s = t.elapsed().as_secs_f64();
        let db = dir.join("parquet-bench.db");
        let (js, jn, jpeak) = timed_import(&db, &jsonl).await?;
        let (ps, pn, ppeak) = timed_import(&db, &pq).await?;
        anyhow::ensure!(jn == pn, "the Parquet file imported {pn} samples, its JSONL twin {jn}");
        println!("{n:<10} {:<8} {jsonl_mb:>10.0} {js:>9.2} {:>10.0} {:>14}", "JSONL", jn as f64 / js, rss(jpeak));
        println!("{n:<10} {:<8} {pq_mb:>10.0} {ps:>9.2} {:>10.0} {:>14}", "Parquet", pn as f64 / ps, rss(ppeak));
        println!("{:<10} (written from the JSONL in {convert_s:.1}s, {GROUP_ROWS} rows a row group, snappy)", "");
        ratios.push((n, js / ps));
        peaks.push((n, ppeak));
        let _ = std::fs::remove_file(&jsonl);
        let _ = std::fs::remove_file(&pq);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    println!();
    for (n, r) in &ratios {
        println!("Parquet / JSONL import, rows/s, at {n} rows (end to end, index included): {r:.2}x");
    }
    if let [(small, Some(a)), (large, Some(b))] = peaks[..] {
        println!("Parquet import's peak anonymous memory: {a:.0} MiB at {small} rows, {b:.0} MiB at {large} rows ({:.2}x)", b / a);
    }
    Ok(())
}
