//! `retort train merge`: the base model with an adapter folded in (W + B·A·alpha/r), written as
//! safetensors beside the base's config and tokenizer files, for transformers, vLLM and others.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::TrainError;
use super::adapter;
use super::model::Model;

pub fn merge(model_dir: &Path, adapter_dir: &Path, out: &Path) -> Result<PathBuf, TrainError> {
    let spec = adapter::read_spec(adapter_dir)?;
    // Merged in f32, written in the base's own dtype; the weights are read once.
    let stored = super::model::read_weights(model_dir, &Device::Cpu)?;
    let dtype = stored.values().next().map_or(DType::F32, candle_core::Tensor::dtype);
    let config = super::config::ModelConfig::load(model_dir)?;
    let model = Model::from_weights(config, stored, &Device::Cpu, DType::F32, Some(&spec), 0)
        .map_err(|cause| TrainError::InModel { dir: model_dir.to_owned(), cause: Box::new(cause) })?;
    adapter::load_weights(&model, &adapter_dir.join("adapter_model.safetensors"))?;
    std::fs::create_dir_all(out).map_err(|cause| TrainError::CreateDir { path: out.to_owned(), cause })?;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        model.merged_weights().and_then(|w| w.into_iter().map(|(k, t)| Ok((k, t.to_dtype(dtype)?))).collect())?;
    let file = out.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &file).map_err(|cause| TrainError::WriteTensors { path: file, cause })?;
    for name in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
    ] {
        let from = model_dir.join(name);
        if from.exists() {
            std::fs::copy(&from, out.join(name)).map_err(|cause| TrainError::Copy { path: from.clone(), cause })?;
        }
    }
    Ok(out.to_path_buf())
}
