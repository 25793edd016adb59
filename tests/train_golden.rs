//! The trainer against PyTorch + PEFT: golden fixtures written by
//! `tests/fixtures/train/make_golden.py` (transformers and PEFT on CPU, run once by hand) for
//! tiny random Llama (llama3 rope scaling, untied), Qwen2 (q/k/v bias, tied, sharded) and Qwen3
//! (q/k norm, head_dim ≠ hidden/heads) models.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly
#![allow(clippy::many_single_char_names)] // g: golden, m: model, b: batch, t: trajectory

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use retort::train::adapter;
use retort::train::loss::{KdWeights, SoftTargets, linear_loss};
use retort::train::model::{LoraSpec, Model};
use retort::train::optim::{AdamW, AdamWParams, cosine_lr};
use retort::train::step::{Batch, Row, batch_loss, loss_and_grads};
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train").join(rel)
}

fn golden(arch: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{arch}/golden.json"))).unwrap()).unwrap()
}

fn spec(g: &Value) -> LoraSpec {
    let l = &g["lora"];
    LoraSpec {
        r: l["r"].as_u64().unwrap() as usize,
        alpha: l["lora_alpha"].as_f64().unwrap(),
        dropout: l["lora_dropout"].as_f64().unwrap() as f32,
        targets: l["target_modules"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
    }
}

/// The model with PEFT's initial adapter loaded.
fn model(arch: &str, g: &Value) -> Model {
    let m = Model::load(&fixture(arch), &Device::Cpu, DType::F32, Some(&spec(g)), 0).unwrap();
    adapter::load_weights(&m, &fixture(&format!("{arch}/adapter_init/adapter_model.safetensors"))).unwrap();
    m
}

fn batch(g: &Value) -> Batch {
    let rows: Vec<Row> = g["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(g["labels"].as_array().unwrap())
        .map(|(ids, labels)| Row {
            ids: ids.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect(),
            target: labels.as_array().unwrap().iter().map(|v| v.as_i64().unwrap() != -100).collect(),
            soft: None,
        })
        .collect();
    Batch::new(&rows, 0, &Device::Cpu).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Runs a recorded trajectory from the initial adapter; returns (losses, grad norms).
fn trajectory(arch: &str, key: &str) -> (Vec<f64>, Vec<f64>, Model) {
    let g = golden(arch);
    let t = &g[key];
    let m = model(arch, &g);
    let b = batch(&g);
    let params = AdamWParams {
        lr: t["lr"].as_f64().unwrap(),
        beta1: t["betas"][0].as_f64().unwrap(),
        beta2: t["betas"][1].as_f64().unwrap(),
        eps: t["eps"].as_f64().unwrap(),
        weight_decay: t["weight_decay"].as_f64().unwrap(),
    };
    let mut opt = AdamW::new(m.lora.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), params).unwrap();
    let steps = t["losses"].as_array().unwrap().len() as u64;
    let warmup = t["warmup_steps"].as_u64();
    let max_norm = t["max_grad_norm"].as_f64();
    let (mut losses, mut norms) = (Vec::new(), Vec::new());
    for step in 0..steps {
        let (loss, grads) = loss_and_grads(&m, &b, None, b.loss_tokens).unwrap();
        losses.push(f64::from(loss.to_scalar::<f32>().unwrap()));
        let grads = opt.flatten(&grads).unwrap();
        let lr = match warmup {
            Some(w) => cosine_lr(params.lr, step, w, t["total_steps"].as_u64().unwrap()),
            None => params.lr,
        };
        norms.push(f64::from(opt.step(&grads, lr, max_norm).unwrap().to_scalar::<f32>().unwrap()));
    }
    (losses, norms, m)
}

fn assert_adapter_matches(m: &Model, file: &Path, tol: f32) {
    let expected = candle_core::safetensors::load(file, &Device::Cpu).unwrap();
    assert_eq!(expected.len(), m.lora.len());
    for (name, var) in &m.lora {
        let want = expected.get(name).unwrap_or_else(|| panic!("{name} not in {}", file.display()));
        let diff = (var.as_tensor() - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let size = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff <= tol * (1.0 + 10.0 * size), "{name}: max difference {diff} (largest value {size})");
    }
}

#[test]
fn step0_loss_matches_transformers() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let g = golden(arch);
        let m = model(arch, &g);
        let b = batch(&g);
        assert_eq!(b.loss_tokens as u64, g["loss_tokens"].as_u64().unwrap());
        let loss = f64::from(batch_loss(&m, &b, None, b.loss_tokens).unwrap().to_scalar::<f32>().unwrap());
        let want = g["step0_loss"].as_f64().unwrap();
        assert!(close(loss, want, 1e-5), "{arch}: {loss} vs transformers {want}");
        // The first logits too, position by position.
        let hidden = m.hidden(&b.ids.narrow(0, 0, 1).unwrap(), None).unwrap();
        let logits = m.logits(&hidden.squeeze(0).unwrap().narrow(0, 0, 4).unwrap()).unwrap().narrow(1, 0, 8).unwrap();
        let got = logits.to_vec2::<f32>().unwrap();
        for (r, row) in g["logits_head"].as_array().unwrap().iter().enumerate() {
            for (c, v) in row.as_array().unwrap().iter().enumerate() {
                assert!(close(f64::from(got[r][c]), v.as_f64().unwrap(), 1e-5), "{arch} logits[{r}][{c}]");
            }
        }
    }
}

#[test]
fn rotary_frequencies_match_transformers() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let g = golden(arch);
        let config = retort::train::config::ModelConfig::load(&fixture(arch)).unwrap();
        let want: Vec<f64> = g["rope_inv_freq"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let got = config.inv_freq();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-12), "{arch}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn lora_trajectories_match_peft() {
    check_trajectories();
}

/// The same through the GPU's code path: retort's kernels' operations (their CPU
/// implementations here) where a GPU runs them.
#[test]
fn lora_trajectories_match_peft_on_the_gpus_code_path() {
    retort::train::cuda_ops::with_kernel_references(check_trajectories);
}

fn check_trajectories() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let g = golden(arch);
        for (key, dir) in [("trajectory_constant", "adapter_constant"), ("trajectory_schedule", "adapter_schedule")] {
            let (losses, norms, m) = trajectory(arch, key);
            let want: Vec<f64> = g[key]["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            for (i, (a, b)) in losses.iter().zip(&want).enumerate() {
                assert!(close(*a, *b, 1e-4), "{arch} {key} step {i}: {a} vs PEFT {b}\n{losses:?}\n{want:?}");
            }
            if std::env::var("GOLDEN_DEBUG").is_ok() {
                let d: Vec<String> = losses.iter().zip(&want).map(|(a, b)| format!("{:.1e}", (a - b).abs())).collect();
                eprintln!("{arch} {key} loss: {}", d.join(" "));
                if let Some(w) = g[key]["grad_norms"].as_array() {
                    let d: Vec<String> = norms.iter().zip(w).map(|(a, b)| format!("{:.1e}", (a - b.as_f64().unwrap()).abs())).collect();
                    eprintln!("{arch} {key} norm: {}", d.join(" "));
                }
            }
            if let Some(want) = g[key]["grad_norms"].as_array() {
                for (i, (a, b)) in norms.iter().zip(want).enumerate() {
                    let b = b.as_f64().unwrap();
                    // Clipped steps at lr 5e-2 amplify rounding (attention's backward is blocked,
                    // not torch's op order): the norms agree to 1e-3 relative, the losses to 1e-4.
                    assert!(close(*a, b, 1e-3 * b.max(1.0)), "{arch} {key} grad norm {i}: {a} vs {b}");
                }
            }
            assert_adapter_matches(&m, &fixture(&format!("{arch}/{dir}/adapter_model.safetensors")), 1e-4);
        }
    }
}

#[test]
fn every_lora_variable_receives_a_gradient() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let g = golden(arch);
        let m = model(arch, &g);
        // B starts at zero, so A's gradient is zero at step 0: move B first.
        for (name, var) in &m.lora {
            if name.contains("lora_B") {
                var.set(&Tensor::ones(var.shape(), DType::F32, &Device::Cpu).unwrap()).unwrap();
            }
        }
        let b = batch(&g);
        let (_, grads) = loss_and_grads(&m, &b, None, 1).unwrap();
        for (name, var) in &m.lora {
            let g = grads.get(var).unwrap_or_else(|| panic!("{arch}: {name} received no gradient"));
            let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm > 0.0, "{arch}: {name} has an all-zero gradient");
        }
    }
}

#[test]
fn saved_adapter_has_peft_keys_shapes_and_config() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let g = golden(arch);
        let m = model(arch, &g);
        let out = tempfile::tempdir().unwrap();
        adapter::save(&m, &spec(&g), arch, out.path()).unwrap();
        let ours = candle_core::safetensors::load(out.path().join("adapter_model.safetensors"), &Device::Cpu).unwrap();
        let peft =
            candle_core::safetensors::load(fixture(&format!("{arch}/adapter_init/adapter_model.safetensors")), &Device::Cpu).unwrap();
        let mut a: Vec<_> = ours.iter().map(|(k, t)| (k.clone(), t.dims().to_vec(), t.dtype())).collect();
        let mut b: Vec<_> = peft.iter().map(|(k, t)| (k.clone(), t.dims().to_vec(), t.dtype())).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b, "{arch}");
        let read = |p: PathBuf| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
        let mut ours = read(out.path().join("adapter_config.json"));
        let mut peft = read(fixture(&format!("{arch}/adapter_init/adapter_config.json")));
        for c in [&mut ours, &mut peft] {
            let t = c["target_modules"].as_array_mut().unwrap();
            t.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        }
        assert_eq!(ours, peft, "{arch}");
        // And it loads back.
        let back = model(arch, &g);
        adapter::load_weights(&back, &out.path().join("adapter_model.safetensors")).unwrap();
        let mut want = spec(&g);
        want.targets.sort();
        assert_eq!(adapter::read_spec(out.path()).unwrap(), want);
    }
}

#[test]
fn kd_loss_and_gradient_match_pytorch() {
    let k: Value = serde_json::from_str(&std::fs::read_to_string(fixture("kd.json")).unwrap()).unwrap();
    let dev = Device::Cpu;
    let mat = |v: &Value| -> Vec<Vec<f64>> {
        v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
    };
    let logits = mat(&k["student_logits"]);
    let (n, vocab) = (logits.len(), logits[0].len());
    let flat = |m: &[Vec<f64>]| m.iter().flatten().map(|x| *x as f32).collect::<Vec<f32>>();
    let ids = mat(&k["teacher_ids"]);
    let kk = ids[0].len();
    let soft = SoftTargets {
        ids: Tensor::from_vec(ids.iter().flatten().map(|x| *x as u32).collect::<Vec<u32>>(), (n, kk), &dev).unwrap(),
        logprobs: Tensor::from_vec(flat(&mat(&k["teacher_logprobs"])), (n, kk), &dev).unwrap(),
        mask: None,
    };
    let labels: Vec<u32> = k["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let labels = Tensor::from_vec(labels, n, &dev).unwrap();
    // The identity as the output projection: the hidden states are the student's logits.
    let eye = Tensor::from_vec(
        (0..vocab * vocab).map(|i| if i % (vocab + 1) == 0 { 1f32 } else { 0.0 }).collect::<Vec<_>>(),
        (vocab, vocab),
        &dev,
    )
    .unwrap();
    let hidden = Tensor::from_vec(flat(&logits), (n, vocab), &dev).unwrap();
    for case in k["cases"].as_array().unwrap() {
        let w = KdWeights { alpha: case["alpha"].as_f64().unwrap(), temperature: case["T"].as_f64().unwrap() };
        // The mean over positions, as the reference takes it.
        let (loss, grad) = linear_loss(&hidden, &eye, &labels, Some((&soft, w)), 1.0 / n as f64, true).unwrap();
        let got = f64::from(loss.sum_all().unwrap().to_scalar::<f32>().unwrap());
        let want = case["loss"].as_f64().unwrap();
        assert!(close(got, want, 1e-5), "{w:?}: {got} vs {want}");
        let grad = grad.unwrap().to_vec2::<f32>().unwrap();
        for (r, row) in mat(&case["grad"]).iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                assert!(close(f64::from(grad[r][c]), *v, 1e-6), "{w:?} grad[{r}][{c}]: {} vs {v}", grad[r][c]);
            }
        }
    }
}

#[test]
fn decoding_with_the_kv_cache_gives_the_logits_of_the_whole_sequence() {
    check_decoding();
    retort::train::cuda_ops::with_kernel_references(check_decoding);
}

fn check_decoding() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let m = Model::load(&fixture(arch), &Device::Cpu, DType::F32, None, 0).unwrap();
        let ids: Vec<u32> = golden(arch)["input_ids"][0].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        // Prefill 10 tokens, then one at a time.
        let mut cache = retort::train::model::Cache::default();
        let mut last = m.hidden(&Tensor::new(&ids[..10], &Device::Cpu).unwrap().unsqueeze(0).unwrap(), Some(&mut cache)).unwrap();
        for t in 10..ids.len() {
            last = m.hidden(&Tensor::new(&ids[t..=t], &Device::Cpu).unwrap().unsqueeze(0).unwrap(), Some(&mut cache)).unwrap();
        }
        let full = m.hidden(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(), None).unwrap();
        let a = m.logits(&last.squeeze(0).unwrap()).unwrap();
        let b = m.logits(&full.squeeze(0).unwrap().narrow(0, ids.len() - 1, 1).unwrap()).unwrap();
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-4, "{arch}: {d}");
        assert_eq!(cache.len(), ids.len());
    }
}
