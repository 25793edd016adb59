//! retort: a terminal workbench for knowledge-distillation data.
//!
//! The library behind the `retort` binary: the store, the importers and the operations, so that
//! tests and benchmarks run the same code as the binary.

pub mod cli;
pub mod demo;
pub mod domain;
pub mod export;
pub mod ingest;
pub mod ops;
pub mod rules;
pub mod store;
pub mod teacher;
pub mod template;
pub mod train;
pub mod tui;
pub mod verify;
