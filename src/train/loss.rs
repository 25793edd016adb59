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
}
