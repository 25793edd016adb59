//! The losses, computed only at positions that carry loss: hidden states are gathered first and
//! projected to the vocabulary there, never for every position.

use candle_core::{D, DType, Tensor};

use super::model::Result;

/// Teacher top-k targets at the loss positions: ids `[n, k]` (u32) and log-probs `[n, k]` (f32).
pub struct SoftTargets {
    pub ids: Tensor,
    pub logprobs: Tensor,
    /// `[n]`, 1 where the teacher gave its top-k and 0 where it did not (plain cross-entropy
    /// there); `None`: everywhere.
    pub mask: Option<Tensor>,
}

/// How the soft-label loss mixes with cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdWeights {
    /// Weight of the distillation term (1 − alpha goes to cross-entropy).
    pub alpha: f64,
    /// Temperature of both distributions.
    pub temperature: f64,
}

/// Per-position cross-entropy `[n]` of f32 logits `[n, vocab]` against labels `[n]` (u32).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    logp.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
}

/// Positions whose logits [`linear_cross_entropy`] computes at once: bounds its `[rows, vocab]`
/// f32 temporaries (600 MB at Qwen's 151,936 tokens).
const CE_ROWS: usize = 1024;

/// Per-position cross-entropy `[n]`, times `scale`, of the f32 logits `hidden·Wᵀ` (hidden
/// `[n, h]`, a frozen W `[vocab, h]`) against labels `[n]` and, with `grad`, the gradient of
/// its sum with respect to hidden. The logits never exist whole: a chunk of positions at a time,
/// the loss is log-sum-exp minus the label's logit and the gradient is taken right there while
/// the chunk's logits are at hand — scale·(softmax − onehot(label))·W, the scale applied before
/// the matmul as the eager graph applies a mean's 1/n. Eager ops would keep half a dozen
/// `[n, vocab]` f32 tensors for the backward (gigabytes at 4k positions) and pass over them
/// twenty-odd times.
pub fn linear_cross_entropy(hidden: &Tensor, weight: &Tensor, labels: &Tensor, scale: f64, grad: bool) -> Result<(Tensor, Option<Tensor>)> {
    let n = hidden.dim(0)?;
    let (mut losses, mut grads) = (Vec::with_capacity(n.div_ceil(CE_ROWS)), Vec::new());
    let mut start = 0;
    while start < n {
        let rows = CE_ROWS.min(n - start);
        let h = hidden.narrow(0, start, rows)?;
        let y = labels.narrow(0, start, rows)?.unsqueeze(1)?;
        let shifted = {
            let logits = h.matmul(&weight.t()?)?.to_dtype(DType::F32)?;
            logits.broadcast_sub(&logits.max_keepdim(1)?)?
        };
        let e = shifted.exp()?;
        let sum = e.sum_keepdim(1)?;
        losses.push(((sum.log()? - shifted.gather(&y, 1)?)? * scale)?.squeeze(1)?);
        if grad {
            let p = e.broadcast_div(&sum)?;
            p.scatter_add_set(&y, &Tensor::full(-1f32, (rows, 1), p.device())?, 1)?;
            grads.push((p * scale)?.to_dtype(h.dtype())?.matmul(weight)?);
        }
        start += rows;
    }
    let loss = if losses.len() == 1 { losses.remove(0) } else { Tensor::cat(&losses, 0)? };
    let grad = match grads.len() {
        0 => None,
        1 => Some(grads.remove(0)),
        _ => Some(Tensor::cat(&grads, 0)?),
    };
    Ok((loss, grad))
}

/// Per-position `alpha·T²·KL(p_T^teacher ‖ p_T^student) + (1−alpha)·CE`, where the teacher is
/// renormalised over its top-k at temperature T (`softmax(logprobs / T)` over the k entries)
/// and the student's log-probs at T are taken over the full vocabulary, gathered at the
/// teacher's k ids.
pub fn kd(logits: &Tensor, labels: &Tensor, soft: &SoftTargets, w: KdWeights) -> Result<Tensor> {
    let t = w.temperature;
    let student = candle_nn::ops::log_softmax(&(logits / t)?, D::Minus1)?.gather(&soft.ids, 1)?;
    let teacher_log = candle_nn::ops::log_softmax(&(soft.logprobs.to_dtype(DType::F32)? / t)?, D::Minus1)?;
    let teacher = teacher_log.exp()?;
    let kl = (teacher * (teacher_log - student)?)?.sum(1)?;
    let ce = cross_entropy(logits, labels)?;
    let loss = ((kl * (w.alpha * t * t))? + (&ce * (1.0 - w.alpha))?)?;
    match &soft.mask {
        None => Ok(loss),
        Some(m) => (loss * m)? + (ce * (1.0 - m)?)?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn cross_entropy_of_a_uniform_distribution_is_log_vocab() {
        let logits = Tensor::zeros((3, 8), DType::F32, &Device::Cpu).unwrap();
        let labels = Tensor::new(&[1u32, 2, 7], &Device::Cpu).unwrap();
        let ce = cross_entropy(&logits, &labels).unwrap().to_vec1::<f32>().unwrap();
        assert!(ce.iter().all(|v| (v - 8f32.ln()).abs() < 1e-6), "{ce:?}");
    }

    #[test]
    fn kd_is_zero_when_the_student_matches_a_full_teacher() {
        let dev = Device::Cpu;
        let logits = Var::new(&[[1.0f32, 2.0, 0.5, -1.0]], &dev).unwrap();
        let logp = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1).unwrap();
        let soft = SoftTargets { ids: Tensor::new(&[[0u32, 1, 2, 3]], &dev).unwrap(), logprobs: logp.detach(), mask: None };
        let labels = Tensor::new(&[1u32], &dev).unwrap();
        let loss = kd(logits.as_tensor(), &labels, &soft, KdWeights { alpha: 1.0, temperature: 1.0 }).unwrap();
        assert!(loss.to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
        // ... and its gradient reaches the student's logits.
        let grads = loss.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(logits.as_tensor()).is_some());
    }

    #[test]
    fn the_fused_linear_cross_entropy_and_its_gradient_equal_the_eager_graph() {
        let dev = Device::Cpu;
        let grid = |rows: usize, cols: usize, seed: f64| {
            let v: Vec<f32> = (0..rows * cols).map(|i| ((i as f64 * 0.71 + seed).sin() * 1.3) as f32).collect();
            Tensor::from_vec(v, (rows, cols), &dev).unwrap()
        };
        // More positions than one chunk, so the chunks and their joins are exercised.
        let (n, h, vocab) = (CE_ROWS + 37, 8, 50);
        let hidden = Var::from_tensor(&grid(n, h, 0.2)).unwrap();
        let weight = grid(vocab, h, 1.9);
        let labels = Tensor::from_vec((0..n).map(|i| ((i * 7) % vocab) as u32).collect::<Vec<_>>(), n, &dev).unwrap();
        let (ours, d_hidden) = linear_cross_entropy(&hidden.as_tensor().detach(), &weight, &labels, 0.25, true).unwrap();
        let reference = cross_entropy(&hidden.as_tensor().matmul(&weight.t().unwrap()).unwrap(), &labels).unwrap();
        let diff = ((ours * 4.0).unwrap() - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "loss differs by {diff}");
        let want = (reference.sum_all().unwrap() * 0.25).unwrap().backward().unwrap();
        let diff = (d_hidden.unwrap() - want.get(hidden.as_tensor()).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "gradient differs by {diff}");
        // Without `grad` it only computes the loss.
        assert!(linear_cross_entropy(hidden.as_tensor(), &weight, &labels, 1.0, false).unwrap().1.is_none());
    }
}
