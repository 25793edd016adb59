//! LoRA adapters in PEFT's format: `adapter_model.safetensors` (keys such as
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`, A `[r, in]`, B `[out, r]`)
//! beside `adapter_config.json`, which Python PEFT, vLLM and mistral.rs load.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{Value, json};

use super::TrainError;
use super::model::{LoraSpec, Model};

/// The PEFT release whose `adapter_config.json` this writes, field for field (its loaders
/// accept configs from older and newer releases; the fixtures in tests/fixtures/train show it).
pub const PEFT_VERSION: &str = "0.21.2";

/// PEFT's `adapter_config.json` for `spec` on the model at `base` (as written into the file).
#[must_use]
pub fn config_json(spec: &LoraSpec, base: &str) -> Value {
    let mut targets = spec.targets.clone();
    targets.sort();
    // PEFT writes an integral alpha as an integer.
    let alpha = if spec.alpha.fract() == 0.0 && spec.alpha.abs() < 1e15 { json!(spec.alpha as i64) } else { json!(spec.alpha) };
    json!({
        "alora_invocation_tokens": null,
        "alpha_pattern": {},
        "arrow_config": null,
        "auto_mapping": null,
        "base_model_name_or_path": base,
        "bias": "none",
        "corda_config": null,
        "ensure_weight_tying": false,
        "eva_config": null,
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "kasa_config": null,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_bias": false,
        "lora_dropout": f64::from(spec.dropout),
        "lora_ga_config": null,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "monteclora_config": null,
        "peft_type": "LORA",
        "peft_version": PEFT_VERSION,
        "qalora_group_size": 16,
        "r": spec.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": targets,
        "target_parameters": null,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": null,
        "use_bdlora": null,
        "use_dora": false,
        "use_qalora": false,
        "use_rslora": false,
        "velora_config": null
    })
}

/// Writes the model's LoRA weights and config into `dir`.
pub fn save(model: &Model, spec: &LoraSpec, base: &str, dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|cause| TrainError::CreateDir { path: dir.to_owned(), cause })?;
    let tensors: HashMap<String, Tensor> = model
        .lora
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<_, candle_core::Error>>()?;
    let weights = dir.join("adapter_model.safetensors");
    candle_core::safetensors::save(&tensors, &weights).map_err(|cause| TrainError::WriteTensors { path: weights, cause })?;
    let config = dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&config_json(spec, base)).unwrap_or_default();
    std::fs::write(&config, text + "\n").map_err(|cause| TrainError::Write { path: config, cause })
}

/// Reads an adapter directory's LoRA spec (from `adapter_config.json`).
pub fn read_spec(dir: &Path) -> Result<LoraSpec, TrainError> {
    let path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).map_err(|cause| TrainError::Read { path: path.clone(), cause })?;
    let c: Value = serde_json::from_str(&text).map_err(|cause| TrainError::Json { path: path.clone(), cause })?;
    if c.get("peft_type").and_then(Value::as_str) != Some("LORA") {
        return Err(TrainError::NotLora { path });
    }
    for (key, expected) in [("use_dora", false), ("use_rslora", false), ("fan_in_fan_out", false)] {
        if c.get(key).and_then(Value::as_bool).unwrap_or(false) != expected {
            return Err(TrainError::UnsupportedLora { path, key });
        }
    }
    let targets = match c.get("target_modules") {
        Some(Value::Array(t)) => t.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => return Err(TrainError::NoKey { path, key: "target_modules" }),
    };
    let no = |key| TrainError::NoKey { path: path.clone(), key };
    Ok(LoraSpec {
        r: c.get("r").and_then(Value::as_u64).ok_or_else(|| no("r"))? as usize,
        alpha: c.get("lora_alpha").and_then(Value::as_f64).ok_or_else(|| no("lora_alpha"))?,
        dropout: c.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0) as f32,
        targets,
    })
}

/// Sets the model's LoRA variables from an adapter's weights; every variable must be there
/// with its shape.
pub fn load_weights(model: &Model, file: &Path) -> Result<(), TrainError> {
    let mut tensors =
        candle_core::safetensors::load(file, &model.device).map_err(|cause| TrainError::ReadTensors { path: file.to_owned(), cause })?;
    for (name, var) in &model.lora {
        // Older PEFT versions wrote the adapter name into the key.
        let t = tensors
            .remove(name)
            .or_else(|| tensors.remove(&name.replace(".weight", ".default.weight")))
            .ok_or_else(|| TrainError::AdapterLacks { path: file.to_owned(), name: name.clone() })?;
        if t.dims() != var.dims() {
            return Err(TrainError::AdapterShape {
                path: file.to_owned(),
                name: name.clone(),
                found: t.dims().to_vec(),
                needed: var.dims().to_vec(),
            });
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}
