//! `retort bench train`: tokens/s of a LoRA step on a fixed random model, beside the same step
//! in PyTorch + PEFT (scripts/peft_bench.py) when Python has torch, transformers and peft.
//!
//! Both sides train the same model directory (written by `train create-model`) on one batch of
//! seeded random ids, loss on all but the first quarter of each row, LoRA on every projection,
//! AdamW lr 2e-4, one optimizer step per batch, no clipping; warm-up steps are not timed.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

use super::attention;
use super::model::{LoraSpec, Model, PROJECTIONS, Result};
use super::optim::{AdamW, AdamWParams};
use super::step::{Batch, Row, head, loss_and_grads};
use super::tiny::Shape;

#[derive(Debug, clap::Args)]
pub struct TrainBenchArgs {
    #[arg(long, value_enum, default_value = "tiny")]
    pub shape: Shape,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 16)]
    pub r: usize,
    /// CPU threads, for both sides.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// cpu or cuda (bf16 base weights on cuda, for both sides).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The Python with torch, transformers and peft for the comparison.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Skip the PyTorch side.
    #[arg(long)]
    pub no_pytorch: bool,
    /// Where to write the model (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Then time the parts of a step apart, the device finishing each before the next starts:
    /// forward, loss head (lm_head and cross-entropy with its gradient), backward and
    /// optimizer, and on its own one layer's attention (forward and backward, times the
    /// layers). Shows where a step's time goes.
    #[arg(long)]
    pub profile: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn train_bench(args: &TrainBenchArgs) -> anyhow::Result<()> {
    let device = super::run::device(&args.device).map_err(|e| anyhow::anyhow!(e))?;
    let dtype = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let temp = std::env::temp_dir().join(format!("retort-bench-train-{}", std::process::id()));
    let dir = args.dir.clone().unwrap_or_else(|| temp.join("model"));
    if !dir.join("config.json").exists() {
        super::tiny::create(&dir, args.shape, dtype, 0).map_err(|e| anyhow::anyhow!(e))?;
    }
    let spec =
        LoraSpec { r: args.r, alpha: 2.0 * args.r as f64, dropout: 0.0, targets: PROJECTIONS.iter().map(|p| (*p).to_owned()).collect() };
    let model = Model::load(&dir, &device, dtype, Some(&spec), 0).map_err(|e| anyhow::anyhow!(e))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let vocab = model.config.vocab_size.min(256) as u32;
    let rows: Vec<Row> = (0..args.batch)
        .map(|_| Row {
            ids: (0..args.seq_len).map(|_| rng.random_range(0..vocab)).collect(),
            target: (0..args.seq_len).map(|t| t >= args.seq_len / 4).collect(),
            soft: None,
        })
        .collect();
    let batch = Batch::new(&rows, 0, &device)?;
    let params = AdamWParams { lr: 2e-4, weight_decay: 0.01, ..AdamWParams::default() };
    let mut opt = AdamW::new(model.lora.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), params)?;
    let (mut times, mut losses) = (Vec::new(), Vec::new());
    for step in 0..args.warmup + args.steps {
        device.synchronize()?;
        let t0 = Instant::now();
        let (loss, grads) = loss_and_grads(&model, &batch, None, batch.loss_tokens)?;
        let grads = opt.flatten(&grads)?;
        opt.step(&grads, params.lr, None)?;
        losses.push(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?));
        device.synchronize()?;
        if step >= args.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let tokens = (args.batch * args.seq_len) as f64;
    let total: f64 = times.iter().sum();
    let ours = tokens * times.len() as f64 / total;
    println!(
        "retort   {:>9.0} tokens/s  {:>8.1} ms/step  ({} {} layers, hidden {}, vocab {}; {}x{} tokens, r {}, {} threads, {} {:?}; loss {:.4} -> {:.4})",
        ours,
        median(times) * 1000.0,
        model.config.arch.as_str(),
        model.config.num_layers,
        model.config.hidden_size,
        model.config.vocab_size,
        args.batch,
        args.seq_len,
        args.r,
        args.threads,
        args.device,
        dtype,
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN)
    );
    if args.profile {
        profile(&model, &batch, &mut opt, args.steps.max(3))?;
    }
    let result = compare(args, &dir, dtype, ours);
    let _ = std::fs::remove_dir_all(&temp);
    result
}

const GIB: f64 = (1u64 << 30) as f64;

/// What `f` gives and the milliseconds it takes, the device idle before and finished after.
fn timed<T>(device: &Device, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    device.synchronize()?;
    let t0 = Instant::now();
    let value = f()?;
    device.synchronize()?;
    Ok((value, t0.elapsed().as_secs_f64() * 1000.0))
}

/// The `--profile` figures: medians of `steps` runs of each part.
fn profile(model: &Model, batch: &Batch, opt: &mut AdamW, steps: usize) -> Result<()> {
    let device = &model.device;
    let (mut forward, mut loss_head, mut backward, mut update, mut attention) = (vec![], vec![], vec![], vec![], vec![]);
    let c = &model.config;
    let (b, t) = batch.ids.dims2()?;
    let random = || -> Result<Tensor> { Tensor::randn(0f32, 1.0, (b, c.num_heads, t, c.head_dim), device)?.to_dtype(model.dtype) };
    let (q, k, v) = (random()?, random()?, random()?);
    let mask = attention::causal_mask(t, 0, model.dtype, device)?;
    for _ in 0..steps {
        let ((hidden, tape), ms) = timed(device, || model.forward_train(&batch.ids))?;
        forward.push(ms);
        let ((_, d_hidden), ms) = timed(device, || head(model, batch, None, batch.loss_tokens, &hidden))?;
        loss_head.push(ms);
        let (grads, ms) = timed(device, || model.backward(tape, &d_hidden))?;
        backward.push(ms);
        update.push(timed(device, || opt.step(&opt.flatten(&grads)?, 2e-4, Some(1.0)))?.1);
        attention.push(
            timed(device, || {
                let out = attention::forward(&q, &k, &v, 0, &mask)?;
                attention::backward(&q, &k, &v, &out, &q, &mask)
            })?
            .1,
        );
    }
    let (f, h, bw, u, a) = (median(forward), median(loss_head), median(backward), median(update), median(attention));
    println!(
        "profile  forward {f:.1} ms, loss head {h:.1} ms (lm_head + cross-entropy and its gradient at {} positions), backward {bw:.1} ms, optimizer {u:.1} ms (medians; the device finishes each part before the next)",
        batch.loss_tokens
    );
    let layers = c.num_layers as f64;
    println!(
        "profile  attention alone {:.1} ms of forward+backward ({} layers x {a:.1} ms at {b}x{t}); the layers without it {:.1} ms",
        a * layers,
        c.num_layers,
        f + bw - a * layers
    );
    if !device.is_cpu() {
        let n = t.min(1100);
        let head_of = |x: &Tensor| x.narrow(2, 0, n);
        against_cpu(model, &head_of(&q)?, &head_of(&k)?, &head_of(&v)?)?;
    }
    if let Some((used, total)) = super::run::device_memory(device) {
        println!("profile  GPU memory in use {:.1} GiB of {:.1} GiB (the allocator keeps its peak)", used as f64 / GIB, total as f64 / GIB);
    }
    Ok(())
}

/// Prints how far the GPU's kernels (unless RETORT_KERNELS=0) are from the CPU's ops in f32 on
/// the same inputs: attention over q, k, v `[b, heads, n, d]` (two CPU blocks' worth of
/// positions), and RMSNorm's and SwiGLU's backwards on `[b·n, hidden]` and `[b·n,
/// intermediate]` rows.
fn against_cpu(model: &Model, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<()> {
    let (device, c) = (&model.device, &model.config);
    let (b, _, n, _) = q.dims4()?;
    let g = Tensor::randn(0f32, 1.0, q.shape(), device)?.to_dtype(model.dtype)?;
    let mask = attention::causal_mask(n, 0, model.dtype, device)?;
    let out = attention::forward(q, k, v, 0, &mask)?;
    let (dq, dk, dv) = attention::backward(q, k, v, &out, &g, &mask)?;
    let cpu = |x: &Tensor| x.to_device(&Device::Cpu)?.to_dtype(DType::F32);
    let (cq, ck, cv, cg) = (cpu(q)?, cpu(k)?, cpu(v)?, cpu(&g)?);
    let cmask = attention::causal_mask(n, 0, DType::F32, &Device::Cpu)?;
    let cout = attention::forward(&cq, &ck, &cv, 0, &cmask)?;
    let (cdq, cdk, cdv) = attention::backward(&cq, &ck, &cv, &cout, &cg, &cmask)?;
    let rel = |a: &Tensor, b: &Tensor| -> Result<f32> {
        let err = (cpu(a)? - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        Ok(err / b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(f32::MIN_POSITIVE))
    };
    let rows = b * n;
    let random = |cols: usize| -> Result<Tensor> { Tensor::randn(0f32, 1.0, (rows, cols), device)?.to_dtype(model.dtype) };
    let (x, w, gx) = (random(c.hidden_size)?, random(c.hidden_size)?.get(0)?, random(c.hidden_size)?);
    let dx = super::fused::rms_norm_backward(&x, &w, &gx, c.rms_norm_eps)?;
    let cdx = super::fused::rms_norm_backward(&cpu(&x)?, &cpu(&w)?, &cpu(&gx)?, c.rms_norm_eps)?;
    let (gate, up, ga) = (random(c.intermediate_size)?, random(c.intermediate_size)?, random(c.intermediate_size)?);
    let (dg, du) = super::fused::swiglu_backward(&gate, &up, &ga)?;
    let (cdg, cdu) = super::fused::swiglu_backward(&cpu(&gate)?, &cpu(&up)?, &cpu(&ga)?)?;
    println!(
        "profile  the GPU ({}) vs the CPU in f32 at {b}x{n}: attention out {:.1e}, dq {:.1e}, dk {:.1e}, dv {:.1e}; RMSNorm dx {:.1e}; SwiGLU d gate {:.1e}, d up {:.1e} (largest error / largest value)",
        if super::cuda_ops::fused(device) { "retort's kernels" } else { "candle's ops" },
        rel(&out, &cout)?,
        rel(&dq, &cdq)?,
        rel(&dk, &cdk)?,
        rel(&dv, &cdv)?,
        rel(&dx, &cdx)?,
        rel(&dg, &cdg)?,
        rel(&du, &cdu)?
    );
    Ok(())
}

/// Runs the PyTorch side on the same model and prints it beside retort's figure.
fn compare(args: &TrainBenchArgs, dir: &std::path::Path, dtype: DType, ours: f64) -> anyhow::Result<()> {
    if args.no_pytorch {
        return Ok(());
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/peft_bench.py");
    let script = if script.exists() { script } else { PathBuf::from("scripts/peft_bench.py") };
    let out = std::process::Command::new(&args.python)
        .arg(&script)
        .arg("--model")
        .arg(dir)
        .args(["--batch", &args.batch.to_string(), "--seq-len", &args.seq_len.to_string()])
        .args(["--steps", &args.steps.to_string(), "--warmup-steps", &args.warmup.to_string()])
        .args(["--r", &args.r.to_string(), "--alpha", &(2 * args.r).to_string(), "--threads", &args.threads.to_string()])
        .args(["--device", &args.device, "--dtype", if dtype == DType::BF16 { "bfloat16" } else { "float32" }])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let line = String::from_utf8_lossy(&o.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or("{}"))?;
            let theirs = v["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "pytorch  {:>9.0} tokens/s  {:>8.1} ms/step  (torch {}, transformers {}, peft {}, attn {})",
                theirs,
                v["step_ms_median"].as_f64().unwrap_or(f64::NAN),
                v["torch"].as_str().unwrap_or("?"),
                v["transformers"].as_str().unwrap_or("?"),
                v["peft"].as_str().unwrap_or("?"),
                v["attn"].as_str().unwrap_or("?")
            );
            if let Some(mem) = v["peak_mem_mib"].as_f64() {
                println!("pytorch peak memory {mem:.0} MiB ({})", v["peak_mem_kind"].as_str().unwrap_or(""));
            }
            println!("ratio    {:.2}x (retort / PyTorch+PEFT)", ours / theirs);
        }
        Ok(o) => println!(
            "PyTorch+PEFT not measured: {} {} failed: {}",
            args.python,
            script.display(),
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        ),
        Err(e) => println!("PyTorch+PEFT not measured: cannot run {}: {e}", args.python),
    }
    Ok(())
}
