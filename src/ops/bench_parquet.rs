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

use crate::ops::bench::{Input, run_import};

/// Rows per row group in the bench's Parquet files: `datasets`' `to_parquet` writes batches of
/// 1,000 rows for text datasets.
pub(super) const GROUP_ROWS: usize = 1000;
/// One import: samples, seconds to return, seconds to a complete index, peak anonymous MiB.
type Tried = (u64, f64, f64, Option<f64>);

/// Imports of each input at each size; the median is shown.
const REPEAT: usize = 3;

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

/// The bench: `rows / 4` and `rows` rows, each from JSONL and from Parquet, imported as the
/// command imports them, three times each: the median time to when the command returns (past 100k samples the full-text
/// index is built in the background), and to a complete index.
pub async fn parquet_bench(dir: &Path, rows: u64, per_prompt: u64) -> anyhow::Result<()> {
    let rss = |r: Option<f64>| r.map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"));
    println!(
        "{:<10} {:<8} {:>8} {:>11} {:>9} {:>11} {:>9} {:>14}",
        "rows", "input", "size MB", "returned s", "rows/s", "indexed s", "rows/s", "peak anon RSS"
    );
    let mut ratios = Vec::new();
    let mut peaks = Vec::new();
    for n in [(rows / 4).max(1), rows] {
        let jsonl = Input::jsonl(&dir.join(format!("bench-{n}.jsonl")), n, per_prompt)?;
        let t = Instant::now();
        let pq = tokio::task::block_in_place(|| Input::parquet(&jsonl, &dir.join(format!("bench-{n}.parquet"))))?;
        let convert_s = t.elapsed().as_secs_f64();
        let db = dir.join("parquet-bench.db");
        // Each input imported REPEAT times, taking turns; the median run of each is shown.
        let mut tries: [Vec<Tried>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..REPEAT {
            for (i, input) in [&jsonl, &pq].into_iter().enumerate() {
                let run = run_import(&db, input).await?;
                tries[i].push((run.samples, run.returned_s, run.write_s + run.index_s, run.anon));
            }
        }
        let mut runs = Vec::new();
        for (input, mut tried) in [&jsonl, &pq].into_iter().zip(tries) {
            tried.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (samples, returned, indexed, anon) = tried[tried.len() / 2];
            let peak = tried.iter().filter_map(|t| t.3).reduce(f64::max).or(anon);
            println!(
                "{n:<10} {:<8} {:>8.0} {returned:>11.2} {:>9.0} {indexed:>11.2} {:>9.0} {:>14}",
                input.label,
                input.bytes as f64 / 1e6,
                samples as f64 / returned,
                samples as f64 / indexed,
                rss(peak)
            );
            runs.push((samples, returned, indexed, peak));
        }
        let [(jn, jr, ji, _), (pn, pr, pi, ppeak)] = runs[..] else { unreachable!("two inputs were imported") };
        anyhow::ensure!(jn == pn, "the Parquet file imported {pn} samples, its JSONL twin {jn}");
        println!("{:<10} (written from the JSONL in {convert_s:.1}s, {GROUP_ROWS} rows a row group, snappy)", "");
        ratios.push((n, jr / pr, ji / pi));
        peaks.push((n, ppeak));
        let _ = std::fs::remove_file(&jsonl.path);
        let _ = std::fs::remove_file(&pq.path);
    }
    println!();
    for (n, returned, indexed) in &ratios {
        println!(
            "Parquet / JSONL import, rows/s, at {n} rows: {returned:.2}x to when `retort import` returns, {indexed:.2}x to a complete index"
        );
    }
    if let [(small, Some(a)), (large, Some(b))] = peaks[..] {
        println!("Parquet import's peak anonymous memory: {a:.0} MiB at {small} rows, {b:.0} MiB at {large} rows ({:.2}x)", b / a);
    }
    Ok(())
}
