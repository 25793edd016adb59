//! The decoder (Llama, Qwen2, Qwen3) in retort's own code, with LoRA on chosen projections.
//!
//! Base weights are plain tensors (frozen: they never enter the gradient store); LoRA's A and B
//! are `Var`s named with PEFT's on-disk keys. Every op here is differentiable in candle: no fused
//! `softmax_last_dim`, `rms_norm` or `rope` kernels, which silently drop gradients.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};

use super::config::ModelConfig;

pub type Result<T> = std::result::Result<T, candle_core::Error>;

/// Where LoRA goes and how big it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraSpec {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// Projection names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    pub targets: Vec<String>,
}

impl LoraSpec {
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }
}

/// The projections LoRA may wrap.
pub const PROJECTIONS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

struct Lora {
    a: Var,
    b: Var,
    scale: f64,
    dropout: f32,
}

/// A frozen linear layer, optionally with a LoRA update.
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    lora: Option<Lora>,
}

impl Linear {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inner = dims[dims.len() - 1];
        let rows = x.elem_count() / inner;
        let x2 = x.reshape((rows, inner))?;
        let y = match &self.lora {
            None => super::attention::frozen_linear(&x2, &self.weight, self.bias.as_ref())?,
            // As PEFT: the input in LoRA's dtype (f32), dropout on it, the update back in the base's.
            Some(l) => super::fused::lora_linear(
                &x2,
                &self.weight,
                self.bias.as_ref(),
                l.a.as_tensor(),
                l.b.as_tensor(),
                l.scale,
                if train { l.dropout } else { 0.0 },
            )?,
        };
        let mut out = dims;
        let last = out.len() - 1;
        out[last] = y.dim(1)?;
        y.reshape(out)
    }

    /// The weight with the LoRA update folded in (for merging).
    fn merged(&self) -> Result<Tensor> {
        match &self.lora {
            None => Ok(self.weight.clone()),
            Some(l) => {
                let delta = (l.b.as_tensor().matmul(l.a.as_tensor())? * l.scale)?;
                self.weight.to_dtype(DType::F32)?.add(&delta)?.to_dtype(self.weight.dtype())
            }
        }
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
    input_norm: Tensor,
    post_norm: Tensor,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
}

/// Keys and values of the positions seen so far, per layer (for decoding).
#[derive(Default)]
pub struct Cache {
    kv: Vec<Option<(Tensor, Tensor)>>,
}

impl Cache {
    /// Positions cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.kv.first().and_then(|e| e.as_ref()).map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Model {
    pub config: ModelConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    /// LoRA variables by PEFT key (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
    pub lora: BTreeMap<String, Var>,
    pub dtype: DType,
    pub device: Device,
}

use super::fused::rms_norm;

/// Reads every tensor of a model directory: `model.safetensors`, or the shards its
/// `model.safetensors.index.json` names.
pub fn read_weights(dir: &Path, device: &Device) -> std::result::Result<HashMap<String, Tensor>, String> {
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| format!("cannot read {}: {e}", index.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", index.display()))?;
        let mut names: Vec<String> = value
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| format!("{}: no `weight_map`", index.display()))?
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names.into_iter().map(|n| dir.join(n)).collect()
    } else if dir.join("model.safetensors").exists() {
        vec![dir.join("model.safetensors")]
    } else {
        return Err(format!("{} has no model.safetensors nor model.safetensors.index.json", dir.display()));
    };
    let mut all = HashMap::new();
    for file in files {
        let tensors = candle_core::safetensors::load(&file, device).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        all.extend(tensors);
    }
    Ok(all)
}

impl Model {
    /// Loads `dir`'s weights in `dtype`, with LoRA as `spec` says, initialised as PEFT does
    /// (A uniform in ±1/√in, B zeros) from `seed`.
    pub fn load(dir: &Path, device: &Device, dtype: DType, spec: Option<&LoraSpec>, seed: u64) -> std::result::Result<Self, String> {
        let config = ModelConfig::load(dir)?;
        let weights = read_weights(dir, device)?;
        Self::from_weights(config, weights, device, dtype, spec, seed).map_err(|e| format!("{}: {e}", dir.display()))
    }

    pub fn from_weights(
        config: ModelConfig,
        mut weights: HashMap<String, Tensor>,
        device: &Device,
        dtype: DType,
        spec: Option<&LoraSpec>,
        seed: u64,
    ) -> std::result::Result<Self, String> {
        let mut take = |name: &str| -> std::result::Result<Tensor, String> {
            let t = weights.remove(name).ok_or_else(|| format!("the weights have no `{name}`"))?;
            t.to_dtype(dtype).map_err(|e| e.to_string())
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut lora = BTreeMap::new();
        let embed = take("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let mut linear = |module: &str, name: &str, bias: bool| -> std::result::Result<Linear, String> {
                let path = format!("model.layers.{i}.{module}.{name}");
                let weight = take(&format!("{path}.weight"))?;
                let bias = if bias { Some(take(&format!("{path}.bias"))?) } else { None };
                let lora = match spec {
                    Some(s) if s.targets.iter().any(|t| t == name) => {
                        let (out_f, in_f) = weight.dims2().map_err(|e| e.to_string())?;
                        let bound = 1.0 / (in_f as f64).sqrt();
                        let a: Vec<f32> = (0..s.r * in_f).map(|_| rng.random_range(-bound..bound) as f32).collect();
                        let a = Tensor::from_vec(a, (s.r, in_f), device).map_err(|e| e.to_string())?;
                        let a = Var::from_tensor(&a).map_err(|e| e.to_string())?;
                        let b = Var::zeros((out_f, s.r), DType::F32, device).map_err(|e| e.to_string())?;
                        lora.insert(format!("base_model.model.{path}.lora_A.weight"), a.clone());
                        lora.insert(format!("base_model.model.{path}.lora_B.weight"), b.clone());
                        Some(Lora { a, b, scale: s.scale(), dropout: s.dropout })
                    }
                    _ => None,
                };
                Ok(Linear { weight, bias, lora })
            };
            let (qkv, o, mlp) = (config.qkv_bias, config.o_bias, config.mlp_bias);
            let q = linear("self_attn", "q_proj", qkv)?;
            let k = linear("self_attn", "k_proj", qkv)?;
            let v = linear("self_attn", "v_proj", qkv)?;
            let o = linear("self_attn", "o_proj", o)?;
            let gate = linear("mlp", "gate_proj", mlp)?;
            let up = linear("mlp", "up_proj", mlp)?;
            let down = linear("mlp", "down_proj", mlp)?;
            let input_norm = take(&format!("model.layers.{i}.input_layernorm.weight"))?;
            let post_norm = take(&format!("model.layers.{i}.post_attention_layernorm.weight"))?;
            let (q_norm, k_norm) = if config.qk_norm {
                (
                    Some(take(&format!("model.layers.{i}.self_attn.q_norm.weight"))?),
                    Some(take(&format!("model.layers.{i}.self_attn.k_norm.weight"))?),
                )
            } else {
                (None, None)
            };
            layers.push(Layer { q, k, v, o, gate, up, down, input_norm, post_norm, q_norm, k_norm });
        }
        let norm = take("model.norm.weight")?;
        let lm_head = if config.tie_word_embeddings {
            embed.clone()
        } else {
            match take("lm_head.weight") {
                Ok(w) => w,
                // Some tied checkpoints forget to say so.
                Err(_) => embed.clone(),
            }
        };
        Ok(Self { config, embed, layers, norm, lm_head, lora, dtype, device: device.clone() })
    }

    /// The LoRA variables, in a stable order.
    #[must_use]
    pub fn lora_vars(&self) -> Vec<Var> {
        self.lora.values().cloned().collect()
    }

    /// cos and sin of the rotary angles for positions `offset..offset + len`, `[len, head_dim / 2]`.
    fn rotary(&self, offset: usize, len: usize) -> Result<(Tensor, Tensor)> {
        let inv_freq = self.config.inv_freq();
        let scale = self.config.position_scale();
        let half = inv_freq.len();
        let mut angles = Vec::with_capacity(len * half);
        for p in offset..offset + len {
            // transformers computes the angles in f32.
            let pos = (p as f64 / scale) as f32;
            angles.extend(inv_freq.iter().map(|f| pos * (*f as f32)));
        }
        let angles = Tensor::from_vec(angles, (len, half), &self.device)?;
        Ok((angles.cos()?.to_dtype(self.dtype)?, angles.sin()?.to_dtype(self.dtype)?))
    }

    /// The final hidden states `[batch, len, hidden]` for token ids `[batch, len]` that follow
    /// `cache`'s positions (all sequences the same length; right padding needs no mask).
    pub fn hidden(&self, ids: &Tensor, mut cache: Option<&mut Cache>, train: bool) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let c = &self.config;
        let (cos, sin) = self.rotary(offset, t)?;
        let mask = super::attention::causal_mask(t, offset, self.dtype, &self.device)?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, c.hidden_size))?;
        let scaling = 1.0 / (c.head_dim as f64).sqrt();
        let rep = c.num_heads / c.num_kv_heads;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.input_norm, c.rms_norm_eps)?;
            let heads = |y: Tensor, n: usize, norm: Option<&Tensor>| -> Result<Tensor> {
                let y = y.reshape((b, t, n, c.head_dim))?;
                let y = match norm {
                    Some(w) => rms_norm(&y, w, c.rms_norm_eps)?,
                    None => y,
                };
                y.transpose(1, 2)?.contiguous()
            };
            let q = heads(layer.q.forward(&h, train)?, c.num_heads, layer.q_norm.as_ref())?;
            let k = heads(layer.k.forward(&h, train)?, c.num_kv_heads, layer.k_norm.as_ref())?;
            let v = heads(layer.v.forward(&h, train)?, c.num_kv_heads, None)?;
            let q = super::fused::rope(&q, &cos, &sin)?;
            let mut k = super::fused::rope(&k, &cos, &sin)?;
            let mut v = v;
            if let Some(cache) = cache.as_deref_mut() {
                if cache.kv.len() < self.layers.len() {
                    cache.kv.resize(self.layers.len(), None);
                }
                if let Some((pk, pv)) = &cache.kv[i] {
                    k = Tensor::cat(&[pk, &k], 2)?;
                    v = Tensor::cat(&[pv, &v], 2)?;
                }
                cache.kv[i] = Some((k.clone(), v.clone()));
            }
            let (k, v) = if rep > 1 {
                let expand = |y: &Tensor| -> Result<Tensor> {
                    let (bb, kvh, tt, d) = y.dims4()?;
                    y.unsqueeze(2)?.broadcast_as((bb, kvh, rep, tt, d))?.reshape((bb, kvh * rep, tt, d))
                };
                (expand(&k)?, expand(&v)?)
            } else {
                (k, v)
            };
            let attn =
                super::attention::causal(&q, &k, &v, scaling, offset, &mask)?.transpose(1, 2)?.reshape((b, t, c.num_heads * c.head_dim))?;
            x = (x + layer.o.forward(&attn, train)?)?;
            let h = rms_norm(&x, &layer.post_norm, c.rms_norm_eps)?;
            let mlp = (layer.gate.forward(&h, train)?.silu()? * layer.up.forward(&h, train)?)?;
            x = (x + layer.down.forward(&mlp, train)?)?;
        }
        rms_norm(&x, &self.norm, c.rms_norm_eps)
    }

    /// The output projection `[vocab, hidden]` (the embedding when tied).
    #[must_use]
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Logits in f32 for hidden states `[n, hidden]` (only the positions that need them).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        super::attention::frozen_linear(hidden, &self.lm_head, None)?.to_dtype(DType::F32)
    }

    /// The full weights with LoRA folded in, under transformers' names (for `train merge`).
    pub fn merged_weights(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = vec![("model.embed_tokens.weight".to_owned(), self.embed.clone())];
        for (i, l) in self.layers.iter().enumerate() {
            for (module, name, lin) in [
                ("self_attn", "q_proj", &l.q),
                ("self_attn", "k_proj", &l.k),
                ("self_attn", "v_proj", &l.v),
                ("self_attn", "o_proj", &l.o),
                ("mlp", "gate_proj", &l.gate),
                ("mlp", "up_proj", &l.up),
                ("mlp", "down_proj", &l.down),
            ] {
                let path = format!("model.layers.{i}.{module}.{name}");
                out.push((format!("{path}.weight"), lin.merged()?));
                if let Some(b) = &lin.bias {
                    out.push((format!("{path}.bias"), b.clone()));
                }
            }
            out.push((format!("model.layers.{i}.input_layernorm.weight"), l.input_norm.clone()));
            out.push((format!("model.layers.{i}.post_attention_layernorm.weight"), l.post_norm.clone()));
            if let (Some(q), Some(k)) = (&l.q_norm, &l.k_norm) {
                out.push((format!("model.layers.{i}.self_attn.q_norm.weight"), q.clone()));
                out.push((format!("model.layers.{i}.self_attn.k_norm.weight"), k.clone()));
            }
        }
        out.push(("model.norm.weight".to_owned(), self.norm.clone()));
        if !self.config.tie_word_embeddings {
            out.push(("lm_head.weight".to_owned(), self.lm_head.clone()));
        }
        Ok(out)
    }
}
