//! The training loop: length-bucketed batches under a token budget, gradient accumulation,
//! AdamW with warm-up + cosine, clipping by global norm, validation loss, checkpoints (adapter +
//! optimizer state + step) and resume. It is synchronous (candle) and reports through a callback;
//! the CLI and the TUI run it on a thread of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::TrainError;
use super::adapter;
use super::data::{self, Dataset, Encoder, Skip};
use super::loss::KdWeights;
use super::model::{LoraSpec, Model};
use super::optim::{AdamW, AdamWParams, cosine_lr};
use super::step::{Batch, Row, batch_loss, loss_and_grads};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub lora: LoraSpec,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: u32,
    /// Tokens in one batch, padding included.
    pub batch_tokens: usize,
    pub grad_accum: usize,
    /// Warm-up as a fraction of all optimizer steps.
    pub warmup: f64,
    pub max_len: usize,
    pub max_grad_norm: Option<f64>,
    /// Validation every this many steps (and at the end); 0: about ten times over the run
    /// ([`validation_every`]), so a run with a validation part always charts it.
    pub val_every: u64,
    /// A checkpoint every this many steps; 0: only at the end and on Ctrl-C.
    pub save_every: u64,
    /// Stop after this many optimizer steps (for quick checks and benchmarks).
    pub max_steps: Option<u64>,
    pub seed: u64,
    /// `cuda` or `cpu`.
    pub device: String,
    /// With soft labels in the export: weight of the distillation term and its temperature.
    pub kd_alpha: f64,
    pub temperature: f64,
}

/// What the loop reports as it goes. A `Warning` is something the user should know before
/// trusting the run, which goes on regardless.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `out`: where the adapter, checkpoints and metrics go.
    Started {
        total_steps: u64,
        train_rows: usize,
        validation_rows: usize,
        skipped: usize,
        soft: bool,
        device: String,
        out: PathBuf,
    },
    Step {
        step: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        elapsed_s: f64,
    },
    Validation {
        step: u64,
        loss: f64,
    },
    Warning {
        message: String,
    },
    Checkpoint {
        step: u64,
        dir: PathBuf,
    },
    Done {
        step: u64,
        adapter: PathBuf,
        cancelled: bool,
    },
}

/// What a checkpoint's `trainer_state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    options: TrainOptions,
}

/// The device `name` says, or an error saying why it is not there.
pub fn device(name: &str) -> Result<Device, TrainError> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(TrainError::NoCuda);
            }
            let device = Device::new_cuda(0).map_err(|cause| TrainError::NoGpu { cause })?;
            #[cfg(feature = "cuda")]
            tune_cuda(&device).map_err(|cause| TrainError::GpuAllocator { cause })?;
            Ok(device)
        }
        other => Err(TrainError::UnknownDevice { name: other.to_owned() }),
    }
}

/// Per-op costs of candle's CUDA backend that a trainer on one stream need not pay, removed
/// before the first tensor is made:
/// - cudarc records two CUDA events per allocation to order streams against each other; with
///   candle's single stream they guard nothing and cost four driver calls per tensor.
/// - tensors come from the driver's stream-ordered pool, whose default release threshold of 0
///   returns all free memory at every synchronization, so each step (which reads its loss)
///   would map gigabytes of temporaries anew; the pool keeps them, as torch's caching
///   allocator does.
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
fn tune_cuda(device: &Device) -> candle_core::Result<()> {
    use candle_core::cuda_backend::cudarc::driver::sys;
    let Device::Cuda(cuda) = device else { return Ok(()) };
    // SAFETY: candle's device runs every op on one stream and no tensor exists on it yet.
    unsafe { cuda.disable_event_tracking() };
    let ordinal = cuda.cuda_stream().context().cu_device();
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: plain driver calls with valid out-pointers; the attribute takes a u64.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&raw mut pool, ordinal).result().map_err(|e| candle_core::Error::Wrapped(Box::new(e)))?;
        sys::cuMemPoolSetAttribute(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, (&raw mut threshold).cast())
            .result()
            .map_err(|e| candle_core::Error::Wrapped(Box::new(e)))?;
    }
    Ok(())
}

/// Bytes of GPU memory in use and in all, for a CUDA device.
#[must_use]
pub fn device_memory(device: &Device) -> Option<(u64, u64)> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        use candle_core::cuda_backend::cudarc::driver::result;
        cuda.cuda_stream().context().bind_to_thread().ok()?;
        let (free, total) = result::mem_get_info().ok()?;
        return Some(((total - free) as u64, total as u64));
    }
    let _ = device;
    None
}

/// `acc + t`, or `t` when there is nothing yet (sums kept on the device).
fn add(acc: Option<Tensor>, t: Tensor) -> candle_core::Result<Tensor> {
    match acc {
        None => Ok(t),
        Some(acc) => acc + t,
    }
}

/// The value of a scalar tensor (the host waits for the device here).
fn read(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F32).and_then(|t| t.to_scalar::<f32>()).map(f64::from)
}

/// The loss over `rows` without updating anything (validation), as the mean over targets; the
/// sum stays on the device and is read once.
fn evaluate(model: &Model, rows: &[Row], batch_tokens: usize, kd: Option<KdWeights>, pad: u32) -> candle_core::Result<f64> {
    let lengths: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
    let (mut sum, mut count) = (None, 0usize);
    for batch in data::batches(&lengths, batch_tokens, 0, 0) {
        let picked: Vec<&Row> = batch.iter().map(|i| &rows[*i]).collect();
        let b = Batch::new(&picked, pad, &model.device)?;
        if b.loss_tokens == 0 {
            continue;
        }
        sum = Some(add(sum, batch_loss(model, &b, kd, 1)?)?);
        count += b.loss_tokens;
    }
    match sum {
        Some(sum) => Ok(read(&sum)? / count as f64),
        None => Ok(f64::NAN),
    }
}

fn save_checkpoint(model: &Model, opt: &AdamW, opts: &TrainOptions, step: u64) -> Result<PathBuf, TrainError> {
    let dir = opts.out.join(format!("checkpoint-{step}"));
    let base = opts.model.display().to_string();
    adapter::save(model, &opts.lora, &base, &dir)?;
    let state = dir.join("optimizer.safetensors");
    candle_core::safetensors::save(&opt.state()?, &state).map_err(|cause| TrainError::WriteTensors { path: state.clone(), cause })?;
    let text = serde_json::to_string_pretty(&TrainerState { step, options: opts.clone() }).unwrap_or_default();
    // The error names the checkpoint directory, as it always has.
    std::fs::write(dir.join("trainer_state.json"), text).map_err(|cause| TrainError::Write { path: dir.clone(), cause })?;
    Ok(dir)
}

/// Reads a checkpoint's options and step (to resume it).
pub fn read_checkpoint(dir: &Path) -> Result<(TrainOptions, u64), TrainError> {
    let path = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&path).map_err(|cause| TrainError::NoCheckpoint { path: path.clone(), cause })?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|cause| TrainError::Json { path, cause })?;
    Ok((state.options, state.step))
}

/// The token id used for padding: the tokenizer's pad or end-of-text token, else 0.
fn pad_id(encoder: &Encoder) -> u32 {
    ["<|endoftext|>", "<pad>", "</s>", "<|end_of_text|>"].iter().find_map(|t| encoder.tokenizer.token_to_id(t)).unwrap_or(0)
}

/// Trains as `opts` says, from the checkpoint `resume` when given; `report` hears every event;
/// `cancel` stops the loop after the current step with a checkpoint.
pub fn train(
    opts: &TrainOptions,
    resume: Option<&Path>,
    cancel: &Arc<AtomicBool>,
    report: &mut dyn FnMut(Event),
) -> Result<(Dataset, PathBuf), TrainError> {
    if opts.lora.r == 0 {
        return Err(TrainError::ZeroRank);
    }
    if opts.grad_accum == 0 || opts.batch_tokens == 0 {
        return Err(TrainError::ZeroBatch);
    }
    let device = device(&opts.device)?;
    // bf16 base weights on a GPU (LoRA stays f32); f32 on the CPU, where bf16 is slower.
    let dtype = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let encoder = Encoder::load(&opts.model)?;
    let dataset = data::load(&opts.data, &encoder, opts.max_len)?;
    if dataset.train.is_empty() {
        return Err(TrainError::NoRows {
            data: opts.data.clone(),
            skipped: dataset.skipped.len(),
            first: dataset.skipped.into_iter().next(),
        });
    }
    let soft = dataset.train.iter().any(|r| r.soft.is_some());
    let model = Model::load(&opts.model, &device, dtype, Some(&opts.lora), opts.seed)?;
    if let Some(dir) = resume {
        adapter::load_weights(&model, &dir.join("adapter_model.safetensors"))?;
    }
    // The validation rows say which tokenizer made the soft labels only through alignment;
    // a student whose vocabulary is smaller than a teacher id cannot be distilled into.
    if soft {
        let vocab = model.config.vocab_size as u32;
        if let Some(bad) =
            dataset.train.iter().filter_map(|r| r.soft.as_ref()).flatten().flatten().flat_map(|(ids, _)| ids).find(|id| **id >= vocab)
        {
            return Err(TrainError::TeacherId { id: *bad, vocab });
        }
    }
    let kd = soft.then_some(KdWeights { alpha: opts.kd_alpha, temperature: opts.temperature });
    let pad = pad_id(&encoder);
    let lengths: Vec<usize> = dataset.train.iter().map(|r| r.ids.len()).collect();
    let per_epoch = data::batches(&lengths, opts.batch_tokens, opts.seed, 0).len().div_ceil(opts.grad_accum) as u64;
    let mut total = per_epoch * u64::from(opts.epochs.max(1));
    if let Some(max) = opts.max_steps {
        total = total.min(max);
    }
    let warmup = (opts.warmup * total as f64).ceil() as u64;
    let val_every = validation_every(opts.val_every, total);
    let params = AdamWParams { lr: opts.lr, weight_decay: opts.weight_decay, ..AdamWParams::default() };
    let mut opt = AdamW::new(model.lora.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), params)?;
    let mut step = 0u64;
    if let Some(dir) = resume {
        let (_, saved_step) = read_checkpoint(dir)?;
        let path = dir.join("optimizer.safetensors");
        let state = candle_core::safetensors::load(&path, &device).map_err(|cause| TrainError::ReadTensors { path, cause })?;
        opt.restore(state, saved_step)?;
        step = saved_step;
    }
    std::fs::create_dir_all(&opts.out).map_err(|cause| TrainError::CreateDir { path: opts.out.clone(), cause })?;
    let metrics_path = opts.out.join("metrics.jsonl");
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|cause| TrainError::Write { path: metrics_path.clone(), cause })?;
    let mut log = |value: serde_json::Value| {
        use std::io::Write as _;
        let _ = writeln!(metrics, "{value}");
    };
    report(Event::Started {
        total_steps: total,
        train_rows: dataset.train.len(),
        validation_rows: dataset.validation.len(),
        skipped: dataset.skipped.len(),
        soft,
        device: opts.device.clone(),
        out: opts.out.clone(),
    });
    if let Some(first) = dataset.hidden_tool_use.first() {
        report(Event::Warning {
            message: format!(
                "{} conversations offer tools or hold tool calls that {}'s chat template does not render (the first, {first}): \
                 the student learns the calls without seeing the tools; `retort export --check-template {}` lists them",
                dataset.hidden_tool_use.len(),
                opts.model.display(),
                opts.model.display()
            ),
        });
    }
    if let Some(first) = dataset.dropped_reasoning.first() {
        report(Event::Warning {
            message: format!(
                "{} conversations carry reasoning (reasoning_content) that {}'s chat template does not render (the first, {first}): \
                 the student is trained on the answers alone; export with --reasoning inline to train on the reasoning",
                dataset.dropped_reasoning.len(),
                opts.model.display(),
            ),
        });
    }
    let started = Instant::now();
    let mut cancelled = false;
    // The optimizer steps of every epoch, in order; a resumed run skips those already taken.
    let mut epoch = 0u64;
    let mut queue: std::collections::VecDeque<Vec<usize>> = std::collections::VecDeque::new();
    let mut taken = 0u64;
    while step < total {
        if queue.is_empty() {
            queue.extend(data::batches(&lengths, opts.batch_tokens, opts.seed, epoch));
            epoch += 1;
        }
        let group: Vec<Vec<usize>> = (0..opts.grad_accum).filter_map(|_| queue.pop_front()).collect();
        taken += 1;
        if taken <= step {
            continue; // done before the checkpoint this run resumed from
        }
        let t0 = Instant::now();
        let batches: Vec<Batch> = group
            .iter()
            .map(|b| Batch::new(&b.iter().map(|i| &dataset.train[*i]).collect::<Vec<_>>(), pad, &device))
            .collect::<Result<_, _>>()?;
        // The mean over every target of the step, as transformers divides by the step's items.
        let targets: usize = batches.iter().map(|b| b.loss_tokens).sum();
        let tokens: usize = batches.iter().map(|b| b.tokens).sum();
        if targets == 0 {
            continue;
        }
        // Gradients summed in one flat tensor and the loss kept on the device: the host waits
        // for the device once, when the step's work is all queued.
        let (mut grads, mut loss_total) = (None, None);
        for b in &batches {
            if b.loss_tokens == 0 {
                continue;
            }
            let (loss, g) = loss_and_grads(&model, b, kd, targets)?;
            grads = Some(add(grads, opt.flatten(&g)?)?);
            loss_total = Some(add(loss_total, loss)?);
        }
        let (Some(grads), Some(loss_total)) = (grads, loss_total) else { continue };
        let lr = cosine_lr(opts.lr, step, warmup, total);
        let grad_norm = read(&opt.step(&grads, lr, opts.max_grad_norm)?)?;
        let loss_total = read(&loss_total)?;
        step += 1;
        let secs = t0.elapsed().as_secs_f64();
        let tokens_per_s = tokens as f64 / secs.max(1e-9);
        log(
            json!({"step": step, "split": "train", "loss": loss_total, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_per_s, "step_s": secs}),
        );
        report(Event::Step { step, loss: loss_total, lr, grad_norm, tokens_per_s, elapsed_s: started.elapsed().as_secs_f64() });
        let last = step == total;
        if !dataset.validation.is_empty() && (last || step.is_multiple_of(val_every)) {
            let loss = evaluate(&model, &dataset.validation, opts.batch_tokens, kd, pad)?;
            log(json!({"step": step, "split": "validation", "loss": loss}));
            report(Event::Validation { step, loss });
        }
        cancelled = cancel.load(Ordering::SeqCst);
        if cancelled || (opts.save_every > 0 && step.is_multiple_of(opts.save_every) && !last) {
            let dir = save_checkpoint(&model, &opt, opts, step)?;
            report(Event::Checkpoint { step, dir });
        }
        if cancelled {
            break;
        }
    }
    if !cancelled {
        let dir = save_checkpoint(&model, &opt, opts, step)?;
        report(Event::Checkpoint { step, dir });
    }
    adapter::save(&model, &opts.lora, &opts.model.display().to_string(), &opts.out)?;
    report(Event::Done { step, adapter: opts.out.clone(), cancelled });
    Ok((dataset, opts.out.clone()))
}

/// How often a run of `total` steps measures the validation loss: every `asked` steps, or
/// with 0 (the default) about ten times over the run — a chart with one point at the very end
/// says nothing while the run goes, and nothing at all of a run cancelled before it.
#[must_use]
pub fn validation_every(asked: u64, total: u64) -> u64 {
    if asked > 0 { asked } else { total.div_ceil(10).max(1) }
}

/// Why lines were skipped, for the report: the first few places.
#[must_use]
pub fn skipped_summary(skipped: &[(String, Skip)]) -> Vec<String> {
    skipped.iter().take(5).map(|(at, why)| format!("{at}: {why}")).collect()
}

#[cfg(test)]
mod tests {
    use super::validation_every;

    #[test]
    fn validation_comes_about_ten_times_a_run_unless_asked() {
        assert_eq!(validation_every(0, 4), 1);
        assert_eq!(validation_every(0, 100), 10);
        assert_eq!(validation_every(0, 105), 11);
        assert_eq!(validation_every(0, 0), 1);
        assert_eq!(validation_every(7, 100), 7);
    }
}
