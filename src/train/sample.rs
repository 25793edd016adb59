//! `retort generate-local`: what a (fine-tuned) student says, decoded with a KV cache — greedy,
//! or sampled with temperature and top-p. Enough to read a few answers after a run, not a server.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::TrainError;
use super::data::{Conversation, Encoder};
use super::model::{Cache, Model};

#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    /// 0: greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

/// A model with its tokenizer and template, ready to answer.
pub struct Student {
    pub model: Model,
    pub encoder: Encoder,
    stop: Vec<u32>,
}

impl Student {
    /// Loads `model_dir`, with the adapter in `adapter_dir` applied when given.
    pub fn load(model_dir: &Path, adapter_dir: Option<&Path>, device: &Device) -> Result<Self, TrainError> {
        let dtype = if device.is_cuda() { DType::BF16 } else { DType::F32 };
        let spec = adapter_dir.map(super::adapter::read_spec).transpose()?;
        let model = Model::load(model_dir, device, dtype, spec.as_ref(), 0)?;
        if let Some(dir) = adapter_dir {
            super::adapter::load_weights(&model, &dir.join("adapter_model.safetensors"))?;
        }
        let encoder = Encoder::load(model_dir)?;
        // Stop at the end-of-turn or end-of-text tokens the tokenizer knows.
        let mut stop: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>"]
            .iter()
            .filter_map(|t| encoder.tokenizer.token_to_id(t))
            .collect();
        if let Ok(text) = std::fs::read_to_string(model_dir.join("config.json"))
            && let Ok(config) = serde_json::from_str::<Value>(&text)
        {
            match &config["eos_token_id"] {
                Value::Number(n) => stop.extend(n.as_u64().map(|v| v as u32)),
                Value::Array(ids) => stop.extend(ids.iter().filter_map(|v| v.as_u64().map(|v| v as u32))),
                _ => {}
            }
        }
        Ok(Self { model, encoder, stop })
    }

    /// The answer to a conversation's turns before its last assistant turn.
    pub fn answer(&self, conv: &Conversation, opts: &SampleOptions) -> Result<String, TrainError> {
        let last_assistant = conv.messages.iter().rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
        let turns = &conv.messages[..last_assistant.unwrap_or(conv.messages.len())];
        let prompt = self.encoder.render_prompt(turns, conv.tools.as_ref())?;
        let ids = self.encoder.tokenizer.encode(prompt.as_str(), false).map_err(TrainError::Tokenize)?.get_ids().to_vec();
        let out = self.continue_ids(&ids, opts)?;
        self.encoder.tokenizer.decode(&out, true).map_err(TrainError::Tokenize)
    }

    /// New token ids after `ids`.
    pub fn continue_ids(&self, ids: &[u32], opts: &SampleOptions) -> candle_core::Result<Vec<u32>> {
        let device = &self.model.device;
        let mut cache = Cache::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
        let mut input = Tensor::new(ids, device)?.unsqueeze(0)?;
        let mut out = Vec::new();
        for _ in 0..opts.max_new_tokens {
            let hidden = self.model.hidden(&input, Some(&mut cache))?;
            let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?.squeeze(1)?;
            let logits = self.model.logits(&last)?.squeeze(0)?;
            let next =
                if opts.temperature <= 0.0 { logits.argmax(D::Minus1)?.to_scalar::<u32>()? } else { sample(&logits, opts, &mut rng)? };
            if self.stop.contains(&next) {
                break;
            }
            out.push(next);
            input = Tensor::new(&[next], device)?.unsqueeze(0)?;
        }
        Ok(out)
    }
}

/// A token drawn from softmax(logits / T), restricted to the smallest set of tokens whose
/// probability reaches `top_p`.
fn sample(logits: &Tensor, opts: &SampleOptions, rng: &mut rand::rngs::StdRng) -> candle_core::Result<u32> {
    let probs = candle_nn::ops::softmax(&(logits.to_dtype(DType::F32)? / opts.temperature)?, D::Minus1)?.to_vec1::<f32>()?;
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    let mut kept = Vec::new();
    let mut mass = 0f32;
    for i in order {
        kept.push(i);
        mass += probs[i];
        if f64::from(mass) >= opts.top_p {
            break;
        }
    }
    let mut x = rng.random::<f32>() * mass;
    for i in &kept {
        x -= probs[*i];
        if x <= 0.0 {
            return Ok(*i as u32);
        }
    }
    Ok(kept.last().copied().unwrap_or(0) as u32)
}

/// The trained student's greedy answers (128 tokens at most) to the first `n` validation
/// prompts of the run's export (or its first training prompts when it has none).
pub fn validation_answers(opts: &super::run::TrainOptions, n: usize) -> Result<Vec<(String, String)>, TrainError> {
    let device = super::run::device(&opts.device)?;
    let student = Student::load(&opts.model, Some(&opts.out), &device)?;
    let sample = SampleOptions { max_new_tokens: 128, temperature: 0.0, top_p: 1.0, seed: 0 };
    let mut out = Vec::new();
    for conv in super::data::held_out(&opts.data, n)? {
        out.push((conv.last_user_text(), student.answer(&conv, &sample)?));
    }
    Ok(out)
}
