//! A Hugging Face model directory's `config.json`, for the decoders the trainer knows: Llama,
//! Qwen2 and Qwen3. Both spellings transformers writes are read: the older top-level
//! `rope_theta` + `rope_scaling`, and transformers 5's `rope_parameters`.

use std::path::Path;

use serde_json::Value;

use super::TrainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// How rotary frequencies are stretched for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

// The flags are config.json's, one per architectural switch.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Bias on q, k, v (Qwen2 always; Llama and Qwen3 with `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o_proj (Llama and Qwen3 with `attention_bias`).
    pub o_bias: bool,
    /// Bias on the MLP projections (Llama's `mlp_bias`).
    pub mlp_bias: bool,
    /// RMSNorm on each head's queries and keys (Qwen3).
    pub qk_norm: bool,
    pub max_position_embeddings: usize,
}

fn num(obj: &Value, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

fn need(obj: &Value, key: &str, path: &Path) -> Result<usize, TrainError> {
    obj.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| TrainError::ConfigNumber { path: path.to_owned(), key: key.to_owned() })
}

impl ModelConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|cause| TrainError::Read { path: path.clone(), cause })?;
        let value: Value = serde_json::from_str(&text).map_err(|cause| TrainError::Json { path: path.clone(), cause })?;
        Self::parse(&value, &path)
    }

    /// Parses a config; `path` names it in errors.
    pub fn parse(c: &Value, path: &Path) -> Result<Self, TrainError> {
        // Multimodal configs nest the decoder's under `text_config`.
        let c = c.get("text_config").filter(|t| t.is_object()).unwrap_or(c);
        let model_type = c.get("model_type").and_then(Value::as_str).unwrap_or_default();
        let arch = match model_type {
            "llama" | "mistral" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            other => {
                return Err(TrainError::UnknownArch { path: path.to_owned(), model_type: other.to_owned() });
            }
        };
        let hidden_size = need(c, "hidden_size", path)?;
        let num_heads = need(c, "num_attention_heads", path)?;
        let num_kv_heads = c.get("num_key_value_heads").and_then(Value::as_u64).map_or(num_heads, |v| v as usize);
        let head_dim = c.get("head_dim").and_then(Value::as_u64).map_or(hidden_size / num_heads.max(1), |v| v as usize);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(TrainError::Heads { path: path.to_owned(), heads: num_heads, kv_heads: num_kv_heads });
        }
        // transformers 5 keeps theta and scaling together in `rope_parameters`.
        let rope = c.get("rope_parameters").filter(|r| r.is_object());
        let rope_theta = rope.and_then(|r| num(r, "rope_theta")).or_else(|| num(c, "rope_theta")).unwrap_or(10_000.0);
        let scaling = rope.or_else(|| c.get("rope_scaling").filter(|r| r.is_object()));
        let rope_scaling = match scaling {
            None => RopeScaling::None,
            Some(s) => {
                let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
                let factor = num(s, "factor").unwrap_or(1.0);
                match kind {
                    "default" => RopeScaling::None,
                    "linear" => RopeScaling::Linear { factor },
                    "llama3" => RopeScaling::Llama3 {
                        factor,
                        low_freq_factor: num(s, "low_freq_factor").unwrap_or(1.0),
                        high_freq_factor: num(s, "high_freq_factor").unwrap_or(4.0),
                        original_max_position_embeddings: num(s, "original_max_position_embeddings").unwrap_or(8192.0),
                    },
                    other => {
                        return Err(TrainError::RopeScaling { path: path.to_owned(), kind: other.to_owned() });
                    }
                }
            }
        };
        let attention_bias = c.get("attention_bias").and_then(Value::as_bool).unwrap_or(false);
        Ok(Self {
            arch,
            vocab_size: need(c, "vocab_size", path)?,
            hidden_size,
            intermediate_size: need(c, "intermediate_size", path)?,
            num_layers: need(c, "num_hidden_layers", path)?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: num(c, "rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: c.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
            qkv_bias: arch == Arch::Qwen2 || attention_bias,
            o_bias: arch != Arch::Qwen2 && attention_bias,
            mlp_bias: c.get("mlp_bias").and_then(Value::as_bool).unwrap_or(false),
            qk_norm: arch == Arch::Qwen3,
            max_position_embeddings: c.get("max_position_embeddings").and_then(Value::as_u64).map_or(32_768, |v| v as usize),
        })
    }

    /// The rotary inverse frequencies, one per pair of dimensions, after scaling (as
    /// transformers' `_compute_*_parameters` make them).
    #[must_use]
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim as f64;
        let base: Vec<f64> = (0..self.head_dim / 2).map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / d)).collect();
        match self.rope_scaling {
            RopeScaling::None | RopeScaling::Linear { .. } => base,
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings: old } => {
                let low_freq_wavelen = old / low_freq_factor;
                let high_freq_wavelen = old / high_freq_factor;
                base.into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_freq_wavelen {
                            f
                        } else if wavelen > low_freq_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }

    /// What positions are divided by before the rotary angles are taken.
    #[must_use]
    pub fn position_scale(&self) -> f64 {
        match self.rope_scaling {
            RopeScaling::Linear { factor } => factor,
            _ => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Result<ModelConfig, TrainError> {
        ModelConfig::parse(v, Path::new("config.json"))
    }

    #[test]
    fn both_rope_spellings_read_the_same() {
        let old = json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "rope_theta": 500_000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192}});
        let new = json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "sliding_window": null,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500_000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let (a, b) = (parse(&old).unwrap(), parse(&new).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.head_dim, 16);
        assert!(matches!(a.rope_scaling, RopeScaling::Llama3 { factor, .. } if (factor - 8.0).abs() < 1e-12));
    }

    #[test]
    fn llama3_scaling_keeps_high_frequencies_and_divides_low_ones() {
        let c = parse(&json!({"model_type": "llama", "hidden_size": 512, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 4, "vocab_size": 10, "rope_theta": 500_000.0,
            "rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192}}))
        .unwrap();
        let f = c.inv_freq();
        assert!((f[0] - 1.0).abs() < 1e-12, "the highest frequency is untouched");
        let plain = 1.0 / 500_000f64.powf(126.0 / 128.0);
        assert!((f[63] - plain / 8.0).abs() < 1e-15, "the lowest is divided by the factor");
    }

    #[test]
    fn unknown_models_and_scalings_are_refused_by_name() {
        let e = parse(&json!({"model_type": "gpt2"})).unwrap_err().to_string();
        assert_eq!(e, "config.json: model_type \"gpt2\" is not one the trainer knows (llama, qwen2, qwen3)");
        assert!(e.contains("gpt2") && e.contains("config.json"), "{e}");
        let e = parse(&json!({"model_type": "qwen2", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 10, "rope_scaling": {"type": "yarn", "factor": 4.0}}))
        .unwrap_err()
        .to_string();
        assert_eq!(e, "config.json: rope scaling \"yarn\" is not supported (default, linear and llama3 are)");
    }

    #[test]
    fn qwen2_has_qkv_bias_and_qwen3_qk_norm() {
        let base = |t: &str| {
            json!({"model_type": t, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 10, "head_dim": 16})
        };
        let q2 = parse(&base("qwen2")).unwrap();
        assert!(q2.qkv_bias && !q2.o_bias && !q2.qk_norm);
        let q3 = parse(&base("qwen3")).unwrap();
        assert!(!q3.qkv_bias && q3.qk_norm && q3.head_dim == 16);
    }
}
