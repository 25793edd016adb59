//! The built-in LoRA trainer (DESIGN.md §Train): retort's own decoder code on candle, trained
//! on an export, saved in PEFT's format.

// Tensor code names its dimensions as the papers do: b, t, h, q, k, v, m.
#![allow(clippy::many_single_char_names)]

pub mod adapter;
pub mod attention;
pub mod bench;
pub mod config;
pub mod cuda_ops;
pub mod data;
mod error;
pub mod fused;
pub mod loss;
pub mod merge;
pub mod model;
pub mod optim;
pub mod run;
pub mod sample;
pub mod step;
pub mod tiny;

pub use error::TrainError;
