//! `retort train`, `retort train merge`, `retort train create-model`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::store::Store;
use crate::train::model::{LoraSpec, PROJECTIONS};
use crate::train::run::{Event, TrainOptions};
use crate::train::tiny::Shape;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub command: Option<TrainCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum TrainCommand {
    /// Fold an adapter into its base model: full safetensors that transformers loads.
    Merge {
        /// The base model directory.
        #[arg(long, value_name = "DIR")]
        model: PathBuf,
        /// The adapter directory (adapter_config.json, adapter_model.safetensors).
        #[arg(long, value_name = "DIR")]
        adapter: PathBuf,
        /// Where to write the merged model.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write a randomly initialised model of a known shape (for tests, benchmarks, GPU checks).
    CreateModel {
        #[arg(long, value_enum, default_value = "tiny")]
        shape: Shape,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Weights in bf16 instead of f32.
        #[arg(long)]
        bf16: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A Hugging Face model directory (config.json, tokenizer.json, the chat template, *.safetensors)
    /// of the Llama, Qwen2 or Qwen3 architecture.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub model: Option<PathBuf>,
    /// The directory `retort export --out` wrote (train.jsonl, validation.jsonl).
    #[arg(long, value_name = "EXPORT_DIR", required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// Where the adapter, checkpoints and metrics.jsonl go (default: a new directory
    /// runs/<model>-N, N the next free number, so no run overwrites another's adapter).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue a run from one of its checkpoints (its options are used; flags given again are ignored).
    #[arg(long, value_name = "CHECKPOINT_DIR")]
    pub resume: Option<PathBuf>,
    /// The projections LoRA wraps.
    #[arg(long, value_delimiter = ',', default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")]
    pub target: Vec<String>,
    /// LoRA rank.
    #[arg(long, default_value_t = 16)]
    pub r: usize,
    /// LoRA alpha (the update is scaled by alpha / r).
    #[arg(long, default_value_t = 32.0)]
    pub alpha: f64,
    /// Dropout on LoRA's input.
    #[arg(long, default_value_t = 0.05)]
    pub dropout: f32,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 2)]
    pub epochs: u32,
    /// Tokens per batch, padding included (rows are bucketed by length to waste little).
    #[arg(long, default_value_t = 8192)]
    pub batch_tokens: usize,
    /// Batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Warm-up, as a fraction of all steps (then cosine decay to 0).
    #[arg(long, default_value_t = 0.03)]
    pub warmup: f64,
    /// Rows longer than this many tokens are reported and skipped, never truncated.
    #[arg(long, default_value_t = 4096)]
    pub max_len: usize,
    /// Clip gradients to this global L2 norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Validation loss every S steps and at the end (default: about ten times over the run),
    /// when the export has a validation part (`retort export --val`).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub val_every: u64,
    /// A checkpoint every S steps (and at the end, and on Ctrl-C).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub save_every: u64,
    /// Stop after this many optimizer steps.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// cpu, or cuda (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,
    /// With a kd export: weight of the distillation term (the rest is cross-entropy).
    #[arg(long, default_value_t = 0.5)]
    pub kd_alpha: f64,
    /// With a kd export: the temperature of teacher and student distributions.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn options(args: &RunArgs) -> anyhow::Result<TrainOptions> {
    for t in &args.target {
        if !PROJECTIONS.contains(&t.as_str()) {
            anyhow::bail!("--target {t:?}: expected some of {}", PROJECTIONS.join(","));
        }
    }
    let need = |v: &Option<PathBuf>, flag: &str| v.clone().with_context(|| format!("{flag} is required"));
    Ok(TrainOptions {
        model: need(&args.model, "--model")?,
        data: need(&args.data, "--data")?,
        // Empty: the run makes a new directory of its own (ops::train::new_run_dir).
        out: args.out.clone().unwrap_or_default(),
        lora: LoraSpec { r: args.r, alpha: args.alpha, dropout: args.dropout, targets: args.target.clone() },
        lr: args.lr,
        weight_decay: args.weight_decay,
        epochs: args.epochs,
        batch_tokens: args.batch_tokens,
        grad_accum: args.grad_accum,
        warmup: args.warmup,
        max_len: args.max_len,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        val_every: args.val_every,
        save_every: args.save_every,
        max_steps: args.max_steps,
        seed: args.seed,
        device: args.device.clone(),
        kd_alpha: args.kd_alpha,
        temperature: args.temperature,
    })
}

pub async fn run(store: Option<&Store>, args: TrainArgs) -> anyhow::Result<()> {
    match args.command {
        Some(TrainCommand::Merge { model, adapter, out }) => {
            let written = tokio::task::spawn_blocking(move || crate::train::merge::merge(&model, &adapter, &out))
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            super::say!("merged model written to {}", written.display());
            Ok(())
        }
        Some(TrainCommand::CreateModel { shape, out, bf16, seed }) => {
            let dtype = if bf16 { candle_core::DType::BF16 } else { candle_core::DType::F32 };
            let dir = out.clone();
            tokio::task::spawn_blocking(move || crate::train::tiny::create(&dir, shape, dtype, seed))
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            super::say!("a random {shape:?} model written to {}", out.display());
            Ok(())
        }
        None => {
            let store = store.context("no store")?;
            train(store, &args.run).await
        }
    }
}

async fn train(store: &Store, args: &RunArgs) -> anyhow::Result<()> {
    let opts = match &args.resume {
        Some(dir) => crate::train::run::read_checkpoint(dir).map_err(|e| anyhow::anyhow!(e))?.0,
        None => options(args)?,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.store(true, Ordering::SeqCst);
            }
        });
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !args.json;
    let bar = indicatif::ProgressBar::hidden();
    let quiet = args.json;
    // Lines above the bar in a terminal; plain lines otherwise (a hidden bar prints nothing).
    let say = |line: String| {
        if terminal {
            bar.println(line);
        } else {
            super::say!("{line}");
        }
    };
    let on_event = |e: &Event| match e {
        Event::Started { total_steps, train_rows, validation_rows, skipped, soft, device, out } => {
            if terminal {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stdout());
                bar.set_length(*total_steps);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{msg:58} [{bar:25}] {pos}/{len} steps, eta {eta}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
            }
            if !quiet {
                let kind = if *soft { "soft labels (KD loss)" } else { "cross-entropy" };
                say(format!(
                    "training on {device}: {train_rows} rows, {validation_rows} for validation, {skipped} skipped; {total_steps} steps, {kind}; into {}",
                    out.display()
                ));
            }
        }
        Event::Step { step, loss, lr, tokens_per_s, .. } => {
            if terminal {
                bar.set_position(*step);
                bar.set_message(format!("loss {loss:.4}  lr {lr:.2e}  {tokens_per_s:.0} tokens/s"));
            } else if !quiet && (step % 10 == 0 || *step == 1) {
                super::say!("step {step}: loss {loss:.4}, lr {lr:.2e}, {tokens_per_s:.0} tokens/s");
            }
        }
        Event::Validation { step, loss } => {
            if !quiet {
                say(format!("step {step}: validation loss {loss:.4}"));
            }
        }
        Event::Checkpoint { step, dir } => {
            if !quiet {
                say(format!("step {step}: checkpoint {}", dir.display()));
            }
        }
        // With --json the summary carries it.
        Event::Warning { message } => {
            if !quiet {
                say(format!("warning: {message}"));
            }
        }
        Event::Done { .. } => bar.finish_and_clear(),
    };
    let summary = crate::ops::train::run(store, opts, args.resume.as_deref(), cancel, &on_event).await?;
    if args.json {
        println!("{}", super::json::pretty(&summary)?);
        return Ok(());
    }
    for s in &summary.skipped {
        super::say!("skipped {s}");
    }
    if summary.skipped_count > summary.skipped.len() {
        super::say!("... and {} more skipped", summary.skipped_count - summary.skipped.len());
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
    super::say!(
        "run #{}: {} steps, train loss {}, validation loss {}, {} tokens/s; adapter in {}",
        summary.run_id,
        summary.steps,
        fmt(summary.last_loss),
        fmt(summary.last_validation_loss),
        summary.tokens_per_s.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
        summary.adapter
    );
    if summary.cancelled {
        super::say!(
            "Interrupted: a checkpoint was saved; `retort train --resume {}/checkpoint-{}` continues.",
            summary.adapter,
            summary.steps
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct GenerateLocalArgs {
    /// A Hugging Face model directory (Llama, Qwen2, Qwen3).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// A LoRA adapter to apply (what `retort train` wrote).
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// A user message to answer (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub prompt: Vec<String>,
    /// Answer the first --n conversations of this export's validation.jsonl (or train.jsonl).
    #[arg(long, value_name = "EXPORT_DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    pub n: usize,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// 0 decodes greedily.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, or cuda (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,
}

pub fn generate_local(args: &GenerateLocalArgs) -> anyhow::Result<()> {
    use crate::train::data::Conversation;
    use crate::train::sample::{SampleOptions, Student};
    let device = crate::train::run::device(&args.device).map_err(|e| anyhow::anyhow!(e))?;
    let student = Student::load(&args.model, args.adapter.as_deref(), &device).map_err(|e| anyhow::anyhow!(e))?;
    let mut conversations: Vec<Conversation> = args
        .prompt
        .iter()
        .map(|p| Conversation { messages: vec![serde_json::json!({"role": "user", "content": p})], tools: None, soft: None })
        .collect();
    if let Some(dir) = &args.data {
        conversations.extend(crate::train::data::held_out(dir, args.n).map_err(|e| anyhow::anyhow!(e))?);
    }
    if conversations.is_empty() {
        anyhow::bail!("nothing to answer: give --prompt TEXT or --data EXPORT_DIR");
    }
    let opts = SampleOptions { max_new_tokens: args.max_new_tokens, temperature: args.temperature, top_p: args.top_p, seed: args.seed };
    for conv in &conversations {
        super::say!("› {}", crate::tui::text::sanitize(&conv.last_user_text()));
        let answer = student.answer(conv, &opts).map_err(|e| anyhow::anyhow!(e))?;
        super::say!("{}\n", crate::tui::text::sanitize(&answer));
    }
    Ok(())
}
