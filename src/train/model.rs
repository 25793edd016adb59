//! The decoder (Llama, Qwen2, Qwen3) in retort's own code, with LoRA on chosen projections.
//!
//! Base weights are plain tensors, frozen; LoRA's A and B are `Var`s named with PEFT's on-disk
//! keys. Training runs its own backward pass rather than candle's autograd: the forward records
//! what each layer's backward reads (a [`Tape`]), and [`Model::backward`] walks the layers in
//! reverse to the LoRA gradients. candle's autograd would record every op and, for every edge
//! of the graph, zero-fill a gradient buffer and add into it — on a GPU, kernel launches that
//! cost more than the math — and compute gradients for frozen weights nobody reads.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};

use super::TrainError;
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

/// What a LoRA projection's backward reads besides its input: `s·dropout(x)·Aᵀ` (f32, `[rows,
/// r]`) and the dropout's keep mask.
#[derive(Default)]
struct LinearSaved {
    xa: Option<Tensor>,
    keep: Option<Tensor>,
}

/// The LoRA variables' gradients of one backward pass.
#[derive(Default)]
pub struct LoraGrads(HashMap<candle_core::TensorId, Tensor>);

impl LoraGrads {
    #[must_use]
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        self.0.get(&var.as_tensor().id())
    }

    fn insert(&mut self, var: &Var, grad: Tensor) {
        self.0.insert(var.as_tensor().id(), grad);
    }
}

impl Linear {
    /// `x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ` for x `[rows, in]` as PEFT computes it: the input in
    /// LoRA's dtype (f32), dropout on it, the update added back in the base's dtype.
    fn forward(&self, x: &Tensor, dropout: bool) -> Result<(Tensor, LinearSaved)> {
        let base = x.matmul(&self.weight.t()?)?;
        let base = match &self.bias {
            Some(b) => base.broadcast_add(b)?,
            None => base,
        };
        let Some(l) = &self.lora else { return Ok((base, LinearSaved::default())) };
        let (a, b) = (l.a.as_tensor().detach(), l.b.as_tensor().detach());
        let mut xl = x.to_dtype(a.dtype())?;
        let keep = if dropout && l.dropout > 0.0 {
            let keep = (xl.rand_like(0.0, 1.0)?.ge(f64::from(l.dropout))?.to_dtype(DType::F32)? / (1.0 - f64::from(l.dropout)))?;
            xl = (xl * &keep)?;
            Some(keep)
        } else {
            None
        };
        let xa = (xl.matmul(&a.t()?)? * l.scale)?;
        let y = (&base + xa.matmul(&b.t()?)?.to_dtype(base.dtype())?)?;
        Ok((y, LinearSaved { xa: Some(xa), keep }))
    }

    /// For the forward's input x, its saved values and the output's gradient g: LoRA's
    /// gradients into `grads` (dB = gᵀ·xa, d(xa) = g·B, dA = s·d(xa)ᵀ·dropout(x)) and, when
    /// `need_dx`, dx = g·W + s·(d(xa)·A) ⊙ keep.
    fn backward(&self, x: &Tensor, saved: &LinearSaved, g: &Tensor, need_dx: bool, grads: &mut LoraGrads) -> Result<Option<Tensor>> {
        let base = if need_dx { Some(g.matmul(&self.weight)?) } else { None };
        let (Some(l), Some(xa)) = (&self.lora, &saved.xa) else { return Ok(base) };
        let (a, b) = (l.a.as_tensor().detach(), l.b.as_tensor().detach());
        let g32 = g.to_dtype(DType::F32)?;
        grads.insert(&l.b, g32.t()?.matmul(xa)?);
        let dxa = (g32.matmul(&b)? * l.scale)?;
        let mut xl = x.to_dtype(DType::F32)?;
        if let Some(keep) = &saved.keep {
            xl = (xl * keep)?;
        }
        grads.insert(&l.a, dxa.t()?.matmul(&xl)?);
        let Some(base) = base else { return Ok(None) };
        let mut dxl = dxa.matmul(&a)?;
        if let Some(keep) = &saved.keep {
            dxl = (dxl * keep)?;
        }
        Ok(Some((base + dxl.to_dtype(x.dtype())?)?))
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

use super::fused::{rms_norm, rms_norm_backward, rope, rope_backward, swiglu, swiglu_backward};

/// The per-forward tables every layer reads.
pub struct Run {
    b: usize,
    t: usize,
    offset: usize,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
}

/// What one layer's backward reads from its forward.
struct LayerTape {
    /// The layer's input `[b, t, hidden]` and its input norm `[rows, hidden]`.
    x: Tensor,
    h: Tensor,
    /// q and k `[b, t, heads, d]` before their per-head norm (Qwen3).
    q_pre: Option<Tensor>,
    k_pre: Option<Tensor>,
    /// Attention's inputs (q scaled, k and v repeated to the query heads).
    q: Tensor,
    k: Tensor,
    v: Tensor,
    /// Attention's output as o_proj's input `[rows, hidden]`.
    attn: Tensor,
    /// The residual after attention and its norm; the MLP's gate, up and their SwiGLU.
    x2: Tensor,
    h2: Tensor,
    gate: Tensor,
    up: Tensor,
    act: Tensor,
    /// q, k, v, o, gate, up, down.
    saved: [LinearSaved; 7],
}

/// A training forward's record for [`Model::backward`].
pub struct Tape {
    run: Run,
    layers: Vec<LayerTape>,
    /// The last layer's output (the final norm's input).
    last: Tensor,
}

/// An input gradient that was asked for.
fn need(g: Option<Tensor>) -> Result<Tensor> {
    g.ok_or_else(|| candle_core::Error::Msg("an input gradient was not computed".into()))
}

/// Reads every tensor of a model directory: `model.safetensors`, or the shards its
/// `model.safetensors.index.json` names.
pub fn read_weights(dir: &Path, device: &Device) -> std::result::Result<HashMap<String, Tensor>, TrainError> {
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|cause| TrainError::Read { path: index.clone(), cause })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|cause| TrainError::Json { path: index.clone(), cause })?;
        let mut names: Vec<String> = value
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| TrainError::NoKey { path: index.clone(), key: "weight_map" })?
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names.into_iter().map(|n| dir.join(n)).collect()
    } else if dir.join("model.safetensors").exists() {
        vec![dir.join("model.safetensors")]
    } else {
        return Err(TrainError::NoWeights { dir: dir.to_owned() });
    };
    let mut all = HashMap::new();
    for file in files {
        let tensors =
            candle_core::safetensors::load(&file, device).map_err(|cause| TrainError::ReadTensors { path: file.clone(), cause })?;
        all.extend(tensors);
    }
    Ok(all)
}

impl Model {
    /// Loads `dir`'s weights in `dtype`, with LoRA as `spec` says, initialised as PEFT does
    /// (A uniform in ±1/√in, B zeros) from `seed`.
    pub fn load(dir: &Path, device: &Device, dtype: DType, spec: Option<&LoraSpec>, seed: u64) -> std::result::Result<Self, TrainError> {
        let config = ModelConfig::load(dir)?;
        let weights = read_weights(dir, device)?;
        Self::from_weights(config, weights, device, dtype, spec, seed)
            .map_err(|cause| TrainError::InModel { dir: dir.to_owned(), cause: Box::new(cause) })
    }

    pub fn from_weights(
        config: ModelConfig,
        mut weights: HashMap<String, Tensor>,
        device: &Device,
        dtype: DType,
        spec: Option<&LoraSpec>,
        seed: u64,
    ) -> std::result::Result<Self, TrainError> {
        let mut take = |name: &str| -> std::result::Result<Tensor, TrainError> {
            let t = weights.remove(name).ok_or_else(|| TrainError::MissingWeight { name: name.to_owned() })?;
            Ok(t.to_dtype(dtype)?)
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut lora = BTreeMap::new();
        let embed = take("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let mut linear = |module: &str, name: &str, bias: bool| -> std::result::Result<Linear, TrainError> {
                let path = format!("model.layers.{i}.{module}.{name}");
                let weight = take(&format!("{path}.weight"))?;
                let bias = if bias { Some(take(&format!("{path}.bias"))?) } else { None };
                let lora = match spec {
                    Some(s) if s.targets.iter().any(|t| t == name) => {
                        let (out_f, in_f) = weight.dims2()?;
                        let bound = 1.0 / (in_f as f64).sqrt();
                        let a: Vec<f32> = (0..s.r * in_f).map(|_| rng.random_range(-bound..bound) as f32).collect();
                        let a = Tensor::from_vec(a, (s.r, in_f), device)?;
                        let a = Var::from_tensor(&a)?;
                        let b = Var::zeros((out_f, s.r), DType::F32, device)?;
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
    /// `cache`'s positions (all sequences the same length; right padding needs no mask). No
    /// dropout, nothing kept for a backward pass.
    pub fn hidden(&self, ids: &Tensor, mut cache: Option<&mut Cache>) -> Result<Tensor> {
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let (run, mut x) = self.start(ids, offset)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let kv = cache.as_deref_mut().map(|c| {
                if c.kv.len() < self.layers.len() {
                    c.kv.resize(self.layers.len(), None);
                }
                &mut c.kv[i]
            });
            x = self.layer_forward(layer, &x, &run, kv, false)?.0;
        }
        rms_norm(&x, &self.norm, self.config.rms_norm_eps)
    }

    /// The final hidden states for token ids `[batch, len]`, with LoRA dropout, and the tape
    /// [`Model::backward`] reads.
    pub fn forward_train(&self, ids: &Tensor) -> Result<(Tensor, Tape)> {
        let (run, mut x) = self.start(ids, 0)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, tape) = self.layer_forward(layer, &x, &run, None, true)?;
            layers.push(tape);
            x = out;
        }
        let hidden = rms_norm(&x, &self.norm, self.config.rms_norm_eps)?;
        Ok((hidden, Tape { run, layers, last: x }))
    }

    /// The rotary tables and the mask of a forward over `ids` after `offset` cached positions,
    /// and the ids' embeddings `[b, t, hidden]`.
    fn start(&self, ids: &Tensor, offset: usize) -> Result<(Run, Tensor)> {
        let (b, t) = ids.dims2()?;
        let (cos, sin) = self.rotary(offset, t)?;
        let mask = super::attention::causal_mask(t, offset, self.dtype, &self.device)?;
        let x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, self.config.hidden_size))?;
        Ok((Run { b, t, offset, cos, sin, mask }, x))
    }

    /// 1/√d, attention's scale.
    fn attention_scale(&self) -> f64 {
        1.0 / (self.config.head_dim as f64).sqrt()
    }

    /// One decoder layer over x `[b, t, hidden]` (LoRA dropout when `dropout`), and what its
    /// backward reads.
    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        run: &Run,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
        dropout: bool,
    ) -> Result<(Tensor, LayerTape)> {
        let c = &self.config;
        let (b, t) = (run.b, run.t);
        let rows = b * t;
        let h = rms_norm(x, &layer.input_norm, c.rms_norm_eps)?.reshape((rows, c.hidden_size))?;
        let (q, sq) = layer.q.forward(&h, dropout)?;
        let (k, sk) = layer.k.forward(&h, dropout)?;
        let (v, sv) = layer.v.forward(&h, dropout)?;
        // [rows, n·d] -> [b, n, t, d], normed per head first where the model does (Qwen3).
        let heads = |y: Tensor, n: usize, norm: Option<&Tensor>| -> Result<(Tensor, Option<Tensor>)> {
            let y = y.reshape((b, t, n, c.head_dim))?;
            match norm {
                Some(w) => Ok((rms_norm(&y, w, c.rms_norm_eps)?.transpose(1, 2)?.contiguous()?, Some(y))),
                None => Ok((y.transpose(1, 2)?.contiguous()?, None)),
            }
        };
        let (q, q_pre) = heads(q, c.num_heads, layer.q_norm.as_ref())?;
        let (k, k_pre) = heads(k, c.num_kv_heads, layer.k_norm.as_ref())?;
        let (v, _) = heads(v, c.num_kv_heads, None)?;
        let q = (rope(&q, &run.cos, &run.sin)? * self.attention_scale())?;
        let mut k = rope(&k, &run.cos, &run.sin)?;
        let mut v = v;
        if let Some(kv) = kv {
            if let Some((pk, pv)) = kv.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *kv = Some((k.clone(), v.clone()));
        }
        let (k, v) = (self.repeat_kv(&k)?, self.repeat_kv(&v)?);
        let o = super::attention::forward(&q, &k, &v, run.offset, &run.mask)?;
        let attn = o.transpose(1, 2)?.reshape((rows, c.num_heads * c.head_dim))?;
        let (y, so) = layer.o.forward(&attn, dropout)?;
        let x2 = (x + y.reshape((b, t, c.hidden_size))?)?;
        let h2 = rms_norm(&x2, &layer.post_norm, c.rms_norm_eps)?.reshape((rows, c.hidden_size))?;
        let (gate, sg) = layer.gate.forward(&h2, dropout)?;
        let (up, su) = layer.up.forward(&h2, dropout)?;
        let act = swiglu(&gate, &up)?;
        let (down, sd) = layer.down.forward(&act, dropout)?;
        let out = (&x2 + down.reshape((b, t, c.hidden_size))?)?;
        let tape = LayerTape { x: x.clone(), h, q_pre, k_pre, q, k, v, attn, x2, h2, gate, up, act, saved: [sq, sk, sv, so, sg, su, sd] };
        Ok((out, tape))
    }

    /// Key/value heads repeated to the query heads (grouped-query attention).
    fn repeat_kv(&self, y: &Tensor) -> Result<Tensor> {
        let rep = self.config.num_heads / self.config.num_kv_heads;
        if rep == 1 {
            return Ok(y.clone());
        }
        let (b, kvh, t, d) = y.dims4()?;
        y.unsqueeze(2)?.broadcast_as((b, kvh, rep, t, d))?.reshape((b, kvh * rep, t, d))
    }

    /// The LoRA gradients for the gradient `d_hidden` of [`Model::forward_train`]'s output.
    /// The first layer's input needs no gradient (the embedding is frozen), so its q, k and v
    /// skip their input gradients.
    pub fn backward(&self, tape: Tape, d_hidden: &Tensor) -> Result<LoraGrads> {
        let c = &self.config;
        let Tape { run, layers, last } = tape;
        let (b, t) = (run.b, run.t);
        let rows = b * t;
        let mut grads = LoraGrads::default();
        let neg_sin = run.sin.neg()?;
        let mut dx = rms_norm_backward(&last, &self.norm, d_hidden, c.rms_norm_eps)?;
        for (i, (layer, lt)) in self.layers.iter().zip(layers).enumerate().rev() {
            let [sq, sk, sv, so, sg, su, sd] = &lt.saved;
            // MLP: out = x2 + down(swiglu(gate(h2), up(h2))), h2 = post_norm(x2).
            let d_out = dx.reshape((rows, c.hidden_size))?;
            let d_act = need(layer.down.backward(&lt.act, sd, &d_out, true, &mut grads)?)?;
            let (d_gate, d_up) = swiglu_backward(&lt.gate, &lt.up, &d_act)?;
            let dh2 = (need(layer.gate.backward(&lt.h2, sg, &d_gate, true, &mut grads)?)?
                + need(layer.up.backward(&lt.h2, su, &d_up, true, &mut grads)?)?)?;
            let dx2 = (&dx + rms_norm_backward(&lt.x2, &layer.post_norm, &dh2.reshape((b, t, c.hidden_size))?, c.rms_norm_eps)?)?;
            // Attention: x2 = x + o(attn(q, k, v)), q, k, v from h = input_norm(x).
            let d_attn = need(layer.o.backward(&lt.attn, so, &dx2.reshape((rows, c.hidden_size))?, true, &mut grads)?)?;
            let heads = |y: &Tensor| y.reshape((b, t, c.num_heads, c.head_dim))?.transpose(1, 2);
            let (dq, dk, dv) = super::attention::backward(&lt.q, &lt.k, &lt.v, &heads(&lt.attn)?, &heads(&d_attn)?, &run.mask)?;
            let dq = rope_backward(&(dq * self.attention_scale())?, &run.cos, &neg_sin)?;
            let dk = rope_backward(&self.unrepeat_kv(&dk)?, &run.cos, &neg_sin)?;
            let dv = self.unrepeat_kv(&dv)?;
            // [b, n, t, d] -> [rows, n·d], through the per-head norm where there is one.
            let flat = |g: Tensor, n: usize, pre: Option<&Tensor>, norm: Option<&Tensor>| -> Result<Tensor> {
                let g = g.transpose(1, 2)?.contiguous()?;
                let g = match (pre, norm) {
                    (Some(pre), Some(w)) => rms_norm_backward(pre, w, &g, c.rms_norm_eps)?,
                    _ => g,
                };
                g.reshape((rows, n * c.head_dim))
            };
            let dq = flat(dq, c.num_heads, lt.q_pre.as_ref(), layer.q_norm.as_ref())?;
            let dk = flat(dk, c.num_kv_heads, lt.k_pre.as_ref(), layer.k_norm.as_ref())?;
            let dv = flat(dv, c.num_kv_heads, None, None)?;
            let first = i == 0;
            let dh_q = layer.q.backward(&lt.h, sq, &dq, !first, &mut grads)?;
            let dh_k = layer.k.backward(&lt.h, sk, &dk, !first, &mut grads)?;
            let dh_v = layer.v.backward(&lt.h, sv, &dv, !first, &mut grads)?;
            if first {
                break;
            }
            let dh = ((need(dh_q)? + need(dh_k)?)? + need(dh_v)?)?;
            dx = (dx2 + rms_norm_backward(&lt.x, &layer.input_norm, &dh.reshape((b, t, c.hidden_size))?, c.rms_norm_eps)?)?;
        }
        Ok(grads)
    }

    /// The gradient of [`Model::repeat_kv`]: each key/value head's copies summed.
    fn unrepeat_kv(&self, g: &Tensor) -> Result<Tensor> {
        let rep = self.config.num_heads / self.config.num_kv_heads;
        if rep == 1 {
            return Ok(g.clone());
        }
        let (b, h, t, d) = g.dims4()?;
        g.reshape((b, h / rep, rep, t, d))?.sum(2)
    }

    /// The output projection `[vocab, hidden]` (the embedding when tied).
    #[must_use]
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Logits in f32 for hidden states `[n, hidden]` (only the positions that need them).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        hidden.matmul(&self.lm_head.t()?)?.to_dtype(DType::F32)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: usize, cols: usize, seed: f64) -> Tensor {
        let v: Vec<f32> = (0..rows * cols).map(|i| ((i as f64 * 0.61 + seed).cos() * 0.8) as f32).collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn the_lora_projection_and_its_backward_equal_the_recorded_graph() {
        for dropout in [0.0, 0.5] {
            let (a, b) = (Var::from_tensor(&grid(3, 8, 1.1)).unwrap(), Var::from_tensor(&grid(5, 3, 2.3)).unwrap());
            let lin = Linear {
                weight: grid(5, 8, 3.7),
                bias: Some(grid(1, 5, 4.1).squeeze(0).unwrap()),
                lora: Some(Lora { a: a.clone(), b: b.clone(), scale: 2.0, dropout }),
            };
            let x = Var::from_tensor(&grid(64, 8, 0.2)).unwrap();
            let probe = grid(64, 5, 5.9);
            let (y, saved) = lin.forward(&x.as_tensor().detach(), true).unwrap();
            assert_eq!(saved.keep.is_some(), dropout > 0.0);
            // The same function as recorded ops, with the same dropout mask.
            let xl = match &saved.keep {
                Some(keep) => (x.as_tensor() * keep).unwrap(),
                None => x.as_tensor().clone(),
            };
            let reference = (x.as_tensor().matmul(&lin.weight.t().unwrap()).unwrap().broadcast_add(lin.bias.as_ref().unwrap()).unwrap()
                + (xl.matmul(&a.as_tensor().t().unwrap()).unwrap().matmul(&b.as_tensor().t().unwrap()).unwrap() * 2.0).unwrap())
            .unwrap();
            assert!(max_diff(&y, &reference) < 1e-5, "dropout {dropout}");
            let want = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let mut grads = LoraGrads::default();
            let dx = lin.backward(&x.as_tensor().detach(), &saved, &probe, true, &mut grads).unwrap().unwrap();
            assert!(max_diff(&dx, want.get(x.as_tensor()).unwrap()) < 1e-5, "dropout {dropout}: dx");
            for (name, v) in [("A", &a), ("B", &b)] {
                assert!(max_diff(grads.get(v).unwrap(), want.get(v.as_tensor()).unwrap()) < 1e-5, "dropout {dropout}: d{name}");
            }
            // Without dx, the LoRA gradients only.
            let mut again = LoraGrads::default();
            assert!(lin.backward(&x.as_tensor().detach(), &saved, &probe, false, &mut again).unwrap().is_none());
            assert!(max_diff(again.get(&a).unwrap(), grads.get(&a).unwrap()) == 0.0);
        }
    }
}
