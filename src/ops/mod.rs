//! The operations both faces call: the CLI now, the TUI later. A capability is written once.

pub mod bench;
pub mod bench_export;
pub mod bench_generate;
pub mod bench_parquet;
pub mod bench_rules;
pub mod bench_score;
pub mod decide;
pub mod edit;
pub mod export;
pub mod generate;
pub mod import;
pub mod index;
pub mod list;
pub mod rules;
pub mod score;
pub mod stats;
pub mod train;
pub mod undo;
pub mod verify;
