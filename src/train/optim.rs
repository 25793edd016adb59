//! AdamW with its state in the open (checkpoints save and restore it), clipping by global norm,
//! and the warm-up + cosine schedule. The update is PyTorch's `torch.optim.AdamW`.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};

use super::TrainError;
use super::model::{LoraGrads, Result};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// The moments of every variable live in two flat tensors and the update runs once over all of
/// them: a LoRA has hundreds of small tensors, and a dozen ops on each cost more than the math.
pub struct AdamW {
    /// The variables with their names (the names key the saved state).
    vars: Vec<(String, Var)>,
    /// Each variable's place in the flat tensors.
    spans: Vec<(usize, usize)>,
    m: Tensor,
    v: Tensor,
    pub step: u64,
    pub params: AdamWParams,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        let mut spans = Vec::with_capacity(vars.len());
        let mut total = 0;
        for (_, v) in &vars {
            spans.push((total, v.elem_count()));
            total += v.elem_count();
        }
        let device = vars.first().map_or(candle_core::Device::Cpu, |(_, v)| v.device().clone());
        let m = Tensor::zeros(total, DType::F32, &device)?;
        let v = Tensor::zeros(total, DType::F32, &device)?;
        Ok(Self { vars, spans, m, v, step: 0, params })
    }

    /// The variables' gradients in one flat f32 tensor, in the optimizer's order (zeros for a
    /// variable without one): accumulating, clipping and the update then run once over it.
    pub fn flatten(&self, grads: &LoraGrads) -> Result<Tensor> {
        let mut gs = Vec::with_capacity(self.vars.len());
        for (_, var) in &self.vars {
            gs.push(match grads.get(var) {
                Some(g) => g.to_dtype(DType::F32)?.flatten_all()?,
                None => Tensor::zeros(var.elem_count(), DType::F32, var.device())?,
            });
        }
        if gs.is_empty() {
            return Tensor::zeros(0, DType::F32, self.m.device());
        }
        Tensor::cat(&gs, 0)
    }

    /// One update with the flat gradients `g` of [`AdamW::flatten`] (already scaled) at learning
    /// rate `lr`, clipped first to a global L2 norm of `max_norm` as
    /// `torch.nn.utils.clip_grad_norm_` does. Returns the norm before clipping as a scalar
    /// tensor: everything stays on the device, and the caller reads the norm once the step's
    /// work is queued.
    pub fn step(&mut self, g: &Tensor, lr: f64, max_norm: Option<f64>) -> Result<Tensor> {
        let norm = g.sqr()?.sum_all()?.sqrt()?;
        if self.vars.is_empty() {
            return Ok(norm);
        }
        // torch: coef = clamp(max_norm / (norm + 1e-6), max=1), gradients scaled by it.
        let g = match max_norm {
            Some(max) => g.broadcast_mul(&((&norm + 1e-6)?.recip()? * max)?.minimum(1f64)?)?,
            None => g.clone(),
        };
        self.step += 1;
        let p = self.params;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let (c1, c2) = (1.0 - p.beta1.powi(t), 1.0 - p.beta2.powi(t));
        let thetas: Vec<Tensor> = self.vars.iter().map(|(_, var)| var.as_tensor().flatten_all()).collect::<Result<_>>()?;
        let theta = Tensor::cat(&thetas, 0)?;
        let m = ((&self.m * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
        let v = ((&self.v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
        // torch: param *= 1 - lr·wd; param -= lr / c1 · m / (sqrt(v) / sqrt(c2) + eps)
        let theta = (theta * (1.0 - lr * p.weight_decay))?;
        let denom = ((v.sqrt()? / c2.sqrt())? + p.eps)?;
        let theta = (theta - ((&m / denom)? * (lr / c1))?)?;
        for ((_, var), (start, len)) in self.vars.iter().zip(&self.spans) {
            var.set(&theta.narrow(0, *start, *len)?.reshape(var.shape())?)?;
        }
        self.m = m;
        self.v = v;
        Ok(norm)
    }

    /// The moments by variable name (`<name>.exp_avg`, `<name>.exp_avg_sq`), for a checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for ((name, var), (start, len)) in self.vars.iter().zip(&self.spans) {
            out.insert(format!("{name}.exp_avg"), self.m.narrow(0, *start, *len)?.reshape(var.shape())?);
            out.insert(format!("{name}.exp_avg_sq"), self.v.narrow(0, *start, *len)?.reshape(var.shape())?);
        }
        Ok(out)
    }

    /// Restores the moments saved by [`AdamW::state`] and the step count.
    pub fn restore(&mut self, mut state: HashMap<String, Tensor>, step: u64) -> std::result::Result<(), TrainError> {
        let (mut ms, mut vs) = (Vec::new(), Vec::new());
        for (name, var) in &self.vars {
            for (suffix, into) in [("exp_avg", &mut ms), ("exp_avg_sq", &mut vs)] {
                let key = format!("{name}.{suffix}");
                let Some(t) = state.remove(&key) else { return Err(TrainError::NoMoment { key }) };
                if t.dims() != var.dims() {
                    return Err(TrainError::MomentShape { key, found: t.dims().to_vec(), needed: var.dims().to_vec() });
                }
                into.push(t.to_device(var.device()).and_then(|t| t.to_dtype(DType::F32)?.flatten_all())?);
            }
        }
        if !ms.is_empty() {
            self.m = Tensor::cat(&ms, 0)?;
            self.v = Tensor::cat(&vs, 0)?;
        }
        self.step = step;
        Ok(())
    }
}

/// transformers' `get_cosine_schedule_with_warmup`: linear from 0 over `warmup` steps, then
/// half a cosine down to 0 at `total`. `step` counts from 0.
#[must_use]
pub fn cosine_lr(peak: f64, step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        return peak * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    peak * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_warms_up_then_decays_to_zero() {
        assert!((cosine_lr(1.0, 0, 3, 20)).abs() < 1e-12);
        assert!((cosine_lr(1.0, 3, 3, 20) - 1.0).abs() < 1e-12);
        assert!(cosine_lr(1.0, 20, 3, 20).abs() < 1e-12);
        assert!((cosine_lr(1.0, 1, 3, 20) - 1.0 / 3.0).abs() < 1e-12);
    }
}
