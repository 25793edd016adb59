//! Random models of a known shape, written as a Hugging Face directory (config.json,
//! model.safetensors, a byte-level tokenizer.json with ChatML specials, tokenizer_config.json
//! with a ChatML template): for the end-to-end tests, `retort bench train` and the GPU check,
//! which must run where nothing can be downloaded.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

use super::TrainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Qwen2 with 2 layers, hidden 64, vocab 320: trains in milliseconds on a CPU.
    Tiny,
    /// Qwen2-0.5B's shape: 24 layers, hidden 896, 14 heads (2 key/value), vocab 151,936, tied.
    #[value(name = "qwen2-0.5b")]
    Qwen2_0_5b,
}

/// The special tokens after the 256 byte tokens.
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

fn config(shape: Shape) -> Value {
    let (hidden, inter, layers, heads, kv, vocab) = match shape {
        Shape::Tiny => (64, 128, 2, 4, 2, 320),
        Shape::Qwen2_0_5b => (896, 4864, 24, 14, 2, 151_936),
    };
    json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": vocab,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "tie_word_embeddings": true,
        "hidden_act": "silu",
        "bos_token_id": 256,
        "eos_token_id": 258,
        "torch_dtype": "float32"
    })
}

/// A byte-level BPE with one token per byte (spelled as GPT-2 spells bytes) and no merges.
fn tokenizer() -> Value {
    let vocab: serde_json::Map<String, Value> = (0u8..=255).map(|b| (crate::export::kd::byte_level(&[b]), json!(u32::from(b)))).collect();
    let added: Vec<Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": 256 + i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []}
    })
}

/// Writes a random model of `shape` into `dir` (weights normal(0, 0.02), norms 1), in `dtype`.
pub fn create(dir: &Path, shape: Shape, dtype: DType, seed: u64) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|cause| TrainError::CreateDir { path: dir.to_owned(), cause })?;
    let config = config(shape);
    let get = |k: &str| config[k].as_u64().unwrap_or(0) as usize;
    let (h, inter, layers, heads, kv, vocab) = (
        get("hidden_size"),
        get("intermediate_size"),
        get("num_hidden_layers"),
        get("num_attention_heads"),
        get("num_key_value_heads"),
        get("vocab_size"),
    );
    let d = h / heads;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let normal = Normal::new(0f32, 0.02).map_err(TrainError::Distribution)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut random = |name: String, shape: &[usize]| -> Result<(), TrainError> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        let t = Tensor::from_vec(values, shape, &Device::Cpu).and_then(|t| t.to_dtype(dtype))?;
        tensors.insert(name, t);
        Ok(())
    };
    random("model.embed_tokens.weight".into(), &[vocab, h])?;
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        random(format!("{p}.self_attn.q_proj.weight"), &[heads * d, h])?;
        random(format!("{p}.self_attn.q_proj.bias"), &[heads * d])?;
        random(format!("{p}.self_attn.k_proj.weight"), &[kv * d, h])?;
        random(format!("{p}.self_attn.k_proj.bias"), &[kv * d])?;
        random(format!("{p}.self_attn.v_proj.weight"), &[kv * d, h])?;
        random(format!("{p}.self_attn.v_proj.bias"), &[kv * d])?;
        random(format!("{p}.self_attn.o_proj.weight"), &[h, heads * d])?;
        random(format!("{p}.mlp.gate_proj.weight"), &[inter, h])?;
        random(format!("{p}.mlp.up_proj.weight"), &[inter, h])?;
        random(format!("{p}.mlp.down_proj.weight"), &[h, inter])?;
    }
    let ones = |n: usize| Tensor::ones(n, dtype, &Device::Cpu);
    for i in 0..layers {
        tensors.insert(format!("model.layers.{i}.input_layernorm.weight"), ones(h)?);
        tensors.insert(format!("model.layers.{i}.post_attention_layernorm.weight"), ones(h)?);
    }
    tensors.insert("model.norm.weight".into(), ones(h)?);
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights).map_err(|cause| TrainError::WriteTensors { path: weights, cause })?;
    let write = |name: &str, v: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(v).unwrap_or_default()).map_err(|cause| TrainError::Write { path, cause })
    };
    let mut config = config;
    config["torch_dtype"] = json!(if dtype == DType::BF16 { "bfloat16" } else { "float32" });
    write("config.json", &config)?;
    write("tokenizer.json", &tokenizer())?;
    write(
        "tokenizer_config.json",
        &json!({"chat_template": CHATML, "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                "model_max_length": 32768, "tokenizer_class": "Qwen2Tokenizer"}),
    )
}
