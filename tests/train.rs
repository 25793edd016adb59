//! The trainer end to end on CPU: import → rules → export → train a few steps on a tiny model
//! created for the test (with its own byte-level tokenizer and ChatML template) → adapter saved
//! → resume gives the same steps → merge gives the same model.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use candle_core::{DType, Device, Tensor};
use common::{Sandbox, data};
use predicates::prelude::*;
use retort::train::model::Model;
use serde_json::Value;

/// A store with short LLaMA-Factory Alpaca conversations accepted and exported with a
/// validation split, and a tiny random model beside it.
fn prepared() -> Sandbox {
    let sb = Sandbox::new();
    sb.retort().args(["import", data("chat-formats/llamafactory_alpaca_en_demo.json").to_str().unwrap()]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens < 40"]).assert().success();
    sb.retort().args(["export", "--format", "messages", "--val", "0.25", "--max-samples", "24", "--out", "sft"]).assert().success();
    sb.retort().args(["train", "create-model", "--shape", "tiny", "--out", "tiny"]).assert().success();
    sb
}

fn train(sb: &Sandbox, extra: &[&str]) -> assert_cmd::assert::Assert {
    sb.retort()
        .args(["train", "--model", "tiny", "--data", "sft", "--out", "run", "--threads", "1", "--dropout", "0"])
        .args(["--batch-tokens", "2048", "--lr", "1e-2", "--epochs", "3", "--val-every", "2"])
        .args(extra)
        .assert()
}

fn metrics(sb: &Sandbox) -> Vec<Value> {
    std::fs::read_to_string(sb.path("run/metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn train_losses(m: &[Value]) -> Vec<(u64, f64)> {
    m.iter().filter(|v| v["split"] == "train").map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())).collect()
}

#[test]
fn trains_saves_resumes_and_merges() {
    let sb = prepared();
    train(&sb, &["--max-steps", "6", "--save-every", "3"]).success().stdout(predicate::str::contains("6 steps"));
    // A PEFT adapter, checkpoints with optimizer state, metrics in the file and in the store.
    for f in [
        "run/adapter_config.json",
        "run/adapter_model.safetensors",
        "run/checkpoint-3/optimizer.safetensors",
        "run/checkpoint-6/trainer_state.json",
    ] {
        assert!(sb.path(f).exists(), "{f}");
    }
    let first = metrics(&sb);
    let losses = train_losses(&first);
    assert_eq!(losses.len(), 6);
    assert!(losses[5].1 < losses[0].1, "the loss falls: {losses:?}");
    assert!(first.iter().any(|v| v["split"] == "validation"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM run_metrics WHERE split = 'train'"), 6);
    assert_eq!(sb.query_string("SELECT status FROM runs").as_deref(), Some("finished"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM runs WHERE export_id IS NOT NULL"), 1);
    let adapter = candle_core::safetensors::load(sb.path("run/adapter_model.safetensors"), &Device::Cpu).unwrap();

    // Resuming from step 3 takes steps 4–6 again, identically.
    sb.retort().args(["train", "--resume", "run/checkpoint-3", "--threads", "1"]).assert().success();
    let again = train_losses(&metrics(&sb));
    assert_eq!(again.len(), 9);
    for (a, b) in losses[3..].iter().zip(&again[6..]) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() < 1e-6, "step {}: {} then {}", a.0, a.1, b.1);
    }
    let resumed = candle_core::safetensors::load(sb.path("run/adapter_model.safetensors"), &Device::Cpu).unwrap();
    for (name, t) in &adapter {
        let d = (t - &resumed[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "{name}: {d}");
    }

    // Merged weights give the logits of base + adapter.
    sb.retort().args(["train", "merge", "--model", "tiny", "--adapter", "run", "--out", "merged"]).assert().success();
    let spec = retort::train::adapter::read_spec(&sb.path("run")).unwrap();
    let with_adapter = Model::load(&sb.path("tiny"), &Device::Cpu, DType::F32, Some(&spec), 0).unwrap();
    retort::train::adapter::load_weights(&with_adapter, &sb.path("run/adapter_model.safetensors")).unwrap();
    let merged = Model::load(&sb.path("merged"), &Device::Cpu, DType::F32, None, 0).unwrap();
    let ids = Tensor::new(&[[72u32, 105, 33, 257, 10, 200]], &Device::Cpu).unwrap();
    let logits = |m: &Model| {
        let h = m.hidden(&ids, None).unwrap();
        m.logits(&h.squeeze(0).unwrap()).unwrap()
    };
    let d = (logits(&with_adapter) - logits(&merged)).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 1e-4, "merged logits differ by {d}");
    assert!(sb.path("merged/tokenizer.json").exists() && sb.path("merged/config.json").exists());
}

#[test]
fn bad_inputs_are_refused_with_what_and_where() {
    let sb = prepared();
    // Every row longer than --max-len: nothing to train on, and the first one named.
    train(&sb, &["--max-len", "8"])
        .failure()
        .stderr(predicate::str::contains("no training rows").and(predicate::str::contains("train.jsonl:1")));
    // Not an export directory.
    sb.retort()
        .args(["train", "--model", "tiny", "--data", "tiny", "--out", "x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("has no train.jsonl"));
    // A broken line names its file and line.
    std::fs::create_dir_all(sb.path("broken")).unwrap();
    sb.write(
        "broken/train.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n{oops\n",
    );
    sb.retort()
        .args(["train", "--model", "tiny", "--data", "broken", "--out", "x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("broken/train.jsonl:2:2"));
    // No GPU support in this build, or no such device.
    if !candle_core::utils::cuda_is_available() {
        train(&sb, &["--device", "cuda"]).failure().stderr(predicate::str::contains("without the `cuda` feature"));
    }
    // A model that is not a decoder the trainer knows.
    std::fs::write(sb.path("tiny/config.json"), "{\"model_type\": \"gpt2\"}").unwrap();
    train(&sb, &[]).failure().stderr(predicate::str::contains("gpt2"));
}

/// A logged exchange whose teacher reports its top-2 alternatives per byte-sized token, so the
/// tiny model's byte-level tokenizer shares the teacher's vocabulary.
fn kd_exchange(question: &str, answer: &str) -> Value {
    let content: Vec<Value> = answer
        .chars()
        .map(|c| {
            let t = c.to_string();
            let alt = if c == 'x' { "y".to_owned() } else { "x".to_owned() };
            serde_json::json!({"token": t, "logprob": -0.1, "bytes": t.as_bytes(),
                "top_logprobs": [{"token": t, "logprob": -0.1}, {"token": alt, "logprob": -2.4}]})
        })
        .collect();
    serde_json::json!({
        "request": {"model": "teacher", "messages": [{"role": "user", "content": question}], "logprobs": true, "top_logprobs": 2},
        "response": {"object": "chat.completion", "model": "teacher", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": answer}, "logprobs": {"content": content}}]}
    })
}

#[test]
fn soft_labels_train_with_the_kd_loss_and_a_foreign_tokenizer_is_refused() {
    let sb = Sandbox::new();
    let rows: Vec<Value> = (0..8).map(|i| kd_exchange(&format!("What is {i} + {i}?"), &format!("It is {}.", 2 * i))).collect();
    sb.write("soft.jsonl", common::to_jsonl(rows));
    sb.retort().args(["import", "soft.jsonl"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where label = soft"]).assert().success();
    sb.retort().args(["train", "create-model", "--shape", "tiny", "--out", "tiny"]).assert().success();
    sb.retort().args(["export", "--format", "kd", "--model", "tiny", "--val", "0.25", "--out", "kd"]).assert().success();
    let kd_train = |model: &str| {
        sb.retort()
            .args(["train", "--model", model, "--data", "kd", "--out", "kdrun", "--threads", "1", "--max-steps", "3"])
            .args(["--batch-tokens", "256"])
            .args(["--kd-alpha", "0.7", "--temperature", "2"])
            .assert()
    };
    kd_train("tiny").success().stdout(predicate::str::contains("soft labels (KD loss)"));
    let losses = train_losses(
        &std::fs::read_to_string(sb.path("kdrun/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(losses.len(), 3);
    assert!(losses.iter().all(|(_, l)| l.is_finite()));
    // A student whose tokenizer spells the bytes differently: the teacher's ids do not line up.
    std::fs::create_dir_all(sb.path("other")).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer_config.json"] {
        std::fs::copy(sb.path(&format!("tiny/{f}")), sb.path(&format!("other/{f}"))).unwrap();
    }
    let mut tok: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("tiny/tokenizer.json")).unwrap()).unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    for v in vocab.values_mut() {
        *v = serde_json::json!((v.as_u64().unwrap() + 1) % 256);
    }
    std::fs::write(sb.path("other/tokenizer.json"), tok.to_string()).unwrap();
    kd_train("other").failure().stderr(predicate::str::contains("kd/train.jsonl:1").and(predicate::str::contains("tokenizers differ")));
}

#[test]
fn a_cancelled_run_stops_after_its_step_with_a_checkpoint_that_resumes() {
    let sb = prepared();
    let opts = retort::train::run::TrainOptions {
        model: sb.path("tiny"),
        data: sb.path("sft"),
        out: sb.path("cancelled"),
        lora: retort::train::model::LoraSpec { r: 4, alpha: 8.0, dropout: 0.0, targets: vec!["q_proj".into(), "v_proj".into()] },
        lr: 1e-3,
        weight_decay: 0.0,
        epochs: 3,
        batch_tokens: 1024,
        grad_accum: 1,
        warmup: 0.0,
        max_len: 4096,
        max_grad_norm: Some(1.0),
        val_every: 0,
        save_every: 0,
        max_steps: None,
        seed: 0,
        device: "cpu".into(),
        kd_alpha: 0.5,
        temperature: 1.0,
    };
    // Ctrl-C sets this flag: the run ends after the step in progress, with a checkpoint.
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut events = Vec::new();
    retort::train::run::train(&opts, None, &cancel, &mut |e| events.push(e)).unwrap();
    assert!(events.iter().any(|e| matches!(e, retort::train::run::Event::Done { step: 1, cancelled: true, .. })), "{events:?}");
    assert!(sb.path("cancelled/checkpoint-1/optimizer.safetensors").exists());
    // The checkpoint resumes to the end.
    sb.retort().args(["train", "--resume", sb.path("cancelled/checkpoint-1").to_str().unwrap(), "--threads", "1"]).assert().success();
    let steps = train_losses(&metrics_in(&sb, "cancelled"));
    let total = match events.first() {
        Some(retort::train::run::Event::Started { total_steps, .. }) => *total_steps,
        other => panic!("{other:?}"),
    };
    assert_eq!(steps.last().unwrap().0, total);
}

fn metrics_in(sb: &Sandbox, dir: &str) -> Vec<Value> {
    std::fs::read_to_string(sb.path(&format!("{dir}/metrics.jsonl"))).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn bench_train_profiles_where_a_step_goes() {
    let sb = Sandbox::new();
    let out = sb.retort().args(["bench", "train", "--no-pytorch", "--steps", "2", "--warmup", "0", "--profile"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let number = |line: &str, after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap_or_else(|| panic!("no {after:?} in {line}")) + after.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap_or_else(|_| panic!("{after:?} in {line}"))
    };
    let retort = text.lines().find(|l| l.starts_with("retort ")).unwrap_or_else(|| panic!("{text}"));
    assert!(number(retort, "retort") > 0.0, "{retort}");
    let parts = text.lines().find(|l| l.starts_with("profile  forward")).unwrap_or_else(|| panic!("{text}"));
    for part in ["forward", "loss head", "backward", "optimizer"] {
        assert!(number(parts, part) > 0.0, "{parts}");
    }
    let split = text.lines().find(|l| l.contains("attention alone")).unwrap_or_else(|| panic!("{text}"));
    assert!(number(split, "attention alone") > 0.0, "{split}");
    assert!(split.contains("2 layers") && split.contains("8x64"), "{split}");
}

#[test]
fn a_template_that_hides_the_tools_is_warned_about() {
    let sb = Sandbox::new();
    // Twelve glaive rows that offer tools; the tiny model's ChatML template renders none.
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data("chat-formats/llamafactory_glaive_toolcall_en_demo.json")).unwrap()).unwrap();
    let with_tools: Vec<&Value> = rows.iter().filter(|r| r["tools"].as_str().is_some_and(|t| t.trim() != "[]")).take(12).collect();
    sb.write("tools.json", serde_json::to_string(&with_tools).unwrap());
    sb.retort().args(["import", "tools.json"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens >= 0"]).assert().success();
    sb.retort().args(["export", "--format", "messages", "--out", "sft"]).assert().success();
    sb.retort().args(["train", "create-model", "--shape", "tiny", "--out", "tiny"]).assert().success();
    let run = |out: &str, json: bool| {
        let mut cmd = sb.retort();
        cmd.args(["train", "--model", "tiny", "--data", "sft", "--out", out, "--threads", "1", "--max-steps", "1", "--max-len", "8192"]);
        if json {
            cmd.arg("--json");
        }
        cmd.assert().success().get_output().stdout.clone()
    };
    let text = String::from_utf8(run("run", false)).unwrap();
    assert!(text.contains("warning: 12 conversations offer tools or hold tool calls that tiny's chat template does not render"), "{text}");
    let summary: Value = serde_json::from_slice(&run("run-json", true)).unwrap();
    assert_eq!(summary["warnings"].as_array().unwrap().len(), 1, "{summary}");
    // Rows without tools: nothing to warn about.
    let plain = prepared();
    let text = String::from_utf8(train(&plain, &["--max-steps", "1"]).success().get_output().stdout.clone()).unwrap();
    assert!(!text.contains("warning"), "{text}");
}
