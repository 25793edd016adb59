//! `retort bench`: figures for the performance goals, printed, never asserted in tests.

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import N generated R1-sized rows and compare with a plain prepared-statement insert loop.
    Import(crate::ops::bench::ImportBenchArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Import(args) => crate::ops::bench::import_bench(&args).await,
    }
}
