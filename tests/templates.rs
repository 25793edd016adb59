//! Real chat templates (TRL's copies of Qwen2.5, Qwen3 and Llama 3.1/3 and their training
//! variants with `{% generation %}` blocks) against the goldens `tests/fixtures/templates/
//! make_golden.py` wrote with transformers and PEFT: the rendered text byte for byte, the token
//! ids, the assistant mask, and the step-0 masked loss of a tiny model carrying each template.
//! (CI's tests/consumers/templates.py compares every template TRL ships with transformers itself.)
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use common::Sandbox;
use retort::train::data::{Encoder, conversation};
use retort::train::model::{LoraSpec, Model};
use retort::train::step::{Batch, batch_loss};
use serde_json::{Value, json};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates").join(rel)
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("golden.json")).unwrap()).unwrap()
}

/// A model directory: the tiny model's weights, the byte-level tokenizer and the template.
fn model_dir(sb: &Sandbox, template: &str, model: &str) -> PathBuf {
    let dir = sb.path(template);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(&format!("{model}/{f}")), dir.join(f)).unwrap();
    }
    std::fs::copy(fixture("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::copy(fixture(&format!("{template}.jinja")), dir.join("chat_template.jinja")).unwrap();
    let config = json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                        "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    dir
}

fn conversations() -> Vec<Value> {
    common::jsonl(&fixture("conversations.jsonl"))
}

/// The golden text with today's date where transformers printed it (Llama 3.1's system header).
fn expected_text(case: &Value) -> String {
    let today = chrono::Local::now().format("%d %b %Y").to_string();
    case["text"].as_str().unwrap().replace("{DATE}", &today)
}

#[test]
fn templates_render_tokenize_and_mask_as_transformers() {
    let g = golden();
    let sb = Sandbox::new();
    let file = fixture("conversations.jsonl");
    let mut compared = 0;
    for (name, cases) in g["templates"].as_object().unwrap() {
        let model = cases[0]["model"].as_str().unwrap_or("qwen2");
        let dir = model_dir(&sb, name, model);
        let out = sb.retort().args(["template", "render", "--json", "--model"]).arg(&dir).arg(&file).output().unwrap();
        let lines: Vec<Value> =
            out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines.len(), cases.as_array().unwrap().len(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        for (case, got) in cases.as_array().unwrap().iter().zip(&lines) {
            let kind = case["kind"].as_str().unwrap();
            if let Some(raised) = case["raised"].as_str() {
                let error =
                    got["error"].as_str().unwrap_or_else(|| panic!("{name}/{kind}: transformers raises {raised:?}, retort renders"));
                assert!(error.contains(raised), "{name}/{kind}: {error}");
                assert!(error.contains("chat_template.jinja:"), "the error names the template file and line: {error}");
                continue;
            }
            assert_eq!(got["text"].as_str().unwrap(), expected_text(case), "{name}/{kind}: text");
            assert_eq!(got["input_ids"], case["input_ids"], "{name}/{kind}: input ids");
            assert_eq!(got["assistant_mask"], case["assistant_mask"], "{name}/{kind}: assistant mask");
            compared += 1;
        }
        // A refusal fails the command, naming how many.
        let refusals = cases.as_array().unwrap().iter().filter(|c| c.get("raised").is_some()).count();
        assert_eq!(out.status.success(), refusals == 0, "{name}");
    }
    assert_eq!(compared, 47, "6 templates × 8 conversations, Llama 3.1 refusing parallel tool calls");
}

#[test]
fn step0_masked_loss_equals_transformers_and_peft_on_each_template() {
    let g = golden();
    let sb = Sandbox::new();
    let spec = LoraSpec {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(str::to_owned).to_vec(),
    };
    for (name, cases) in g["templates"].as_object().unwrap() {
        let model = cases[0]["model"].as_str().unwrap();
        let dir = model_dir(&sb, name, model);
        let encoder = Encoder::load(&dir).unwrap();
        let m = Model::load(&dir, &Device::Cpu, DType::F32, Some(&spec), 0).unwrap();
        for (case, line) in cases.as_array().unwrap().iter().zip(conversations()) {
            let Some(want) = case["loss"].as_f64() else { continue };
            let kind = case["kind"].as_str().unwrap();
            let (row, _) = encoder.encode(&conversation(&line).unwrap(), 1 << 20).unwrap();
            let b = Batch::new(&[row], 0, &Device::Cpu).unwrap();
            let loss = f64::from(batch_loss(&m, &b, None, b.loss_tokens).unwrap().to_scalar::<f32>().unwrap());
            assert!((loss - want).abs() <= 1e-5, "{name}/{kind}: {loss} vs transformers + PEFT {want}");
        }
    }
}

#[test]
fn train_runs_on_a_model_with_the_qwen25_template() {
    let sb = Sandbox::new();
    let dir = model_dir(&sb, "qwen2_5", "qwen2");
    std::fs::create_dir_all(sb.path("sft")).unwrap();
    std::fs::copy(fixture("conversations.jsonl"), sb.path("sft/train.jsonl")).unwrap();
    sb.retort()
        .args(["train", "--data", "sft", "--out", "run", "--threads", "1", "--max-steps", "2", "--max-len", "4096", "--model"])
        .arg(&dir)
        .assert()
        .success();
    let metrics = std::fs::read_to_string(sb.path("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("\"split\":\"train\"")).count(), 2, "{metrics}");
    assert!(sb.path("run/adapter_model.safetensors").exists());
}

#[test]
fn render_shows_the_trained_text_and_names_problems() {
    let sb = Sandbox::new();
    let dir = model_dir(&sb, "qwen2_5", "qwen2");
    let out =
        sb.retort().args(["template", "render", "--limit", "8", "--model"]).arg(&dir).arg(fixture("conversations.jsonl")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // Not a terminal: no colour, the rendering as it is, each conversation headed by file:line.
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("conversations.jsonl:1 · 123 tokens, 12 trained"), "{text}");
    assert!(text.contains("<|im_start|>assistant\n2 + 2 = 4.<|im_end|>"), "{text}");
    // Qwen2.5's template has no place for reasoning_content: named, not silently trained on.
    assert!(
        text.contains("conversations.jsonl:7 ·") && text.contains("the template leaves the reasoning (reasoning_content) out"),
        "{text}"
    );
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(summary.contains("8 conversations rendered with") && summary.contains("0 failed, 2 with problems"), "{summary}");
}
