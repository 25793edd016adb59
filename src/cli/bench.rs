//! `retort bench`: figures for the performance goals, printed, never asserted in tests.

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import N generated R1-sized rows and compare with a plain prepared-statement insert loop.
    Import(crate::ops::bench::ImportBenchArgs),
    /// Time each rule kind: predicates, best-of-n and duplicates over 1M samples, near-duplicates over 100k.
    Rules(crate::ops::bench_rules::RulesBenchArgs),
    /// Drive the headless TUI over N samples: first frame, key latency, search, filter, memory.
    Tui(crate::tui::bench::TuiBenchArgs),
    /// Export N R1-sized accepted samples: MB/s and peak memory.
    Export(crate::ops::bench_export::ExportBenchArgs),
    /// Generate against an instant local server: retort's own requests/s and memory.
    Generate(crate::ops::bench_generate::GenerateBenchArgs),
    /// Score stored samples against an instant vLLM-shaped server: samples/s, tokens/s, bytes a token stored, read-back MB/s, memory.
    ScoreLogprobs(crate::ops::bench_score::ScoreBenchArgs),
    /// The TUI deciding while an import writes: each key's time to its commit, the import's speed beside it.
    Concurrent(crate::tui::bench_concurrent::ConcurrentBenchArgs),
    /// Tokens/s of a LoRA training step on a fixed random model, beside PyTorch+PEFT's when installed.
    Train(crate::train::bench::TrainBenchArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Import(args) => crate::ops::bench::import_bench(&args).await,
        BenchCommand::Rules(args) => crate::ops::bench_rules::rules_bench(&args).await,
        BenchCommand::Tui(args) => Box::pin(crate::tui::bench::tui_bench(&args)).await,
        BenchCommand::Export(args) => crate::ops::bench_export::export_bench(&args).await,
        BenchCommand::Generate(args) => crate::ops::bench_generate::generate_bench(&args).await,
        BenchCommand::ScoreLogprobs(args) => crate::ops::bench_score::score_bench(&args).await,
        BenchCommand::Concurrent(args) => crate::tui::bench_concurrent::concurrent_bench(&args).await,
        BenchCommand::Train(args) => tokio::task::spawn_blocking(move || crate::train::bench::train_bench(&args)).await?,
    }
}
