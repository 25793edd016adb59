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

/// Positions whose logits [`linear_loss`] computes at once: bounds its `[rows, vocab]` f32
/// temporaries (600 MB at Qwen's 151,936 tokens).
const CE_ROWS: usize = 1024;

/// The loss per position `[n]`, times `scale`, of the f32 logits `hidden·Wᵀ` (hidden `[n, h]`,
/// a frozen W `[vocab, h]`) against labels `[n]` and, with `grad`, the gradient of its sum
/// with respect to hidden.
///
/// The loss is cross-entropy or, with `kd`, the distillation loss
/// `alpha·T²·KL(p_T^teacher ‖ p_T^student) + (1−alpha)·CE`: the teacher renormalised over its
/// top-k at temperature T (`softmax(logprobs / T)` over the k entries), the student's
/// log-probs at T over the full vocabulary gathered at the teacher's ids, and plain
/// cross-entropy where the mask says the teacher gave nothing.
///
/// The logits never exist whole: a chunk of positions at a time, the loss is computed and the
/// gradient taken right there while the chunk's logits are at hand —
/// `(1 − alpha·m)·(softmax(z) − onehot(label)) + alpha·T·m·(softmax(z/T) − teacher)` for the
/// mask m, times scale (applied before the matmul, as the eager graph applies a mean's 1/n),
/// times W. Eager ops would keep half a dozen `[n, vocab]` f32 tensors for the backward
/// (gigabytes at 4k positions) and pass over them twenty-odd times.
pub fn linear_loss(
    hidden: &Tensor,
    weight: &Tensor,
    labels: &Tensor,
    kd: Option<(&SoftTargets, KdWeights)>,
    scale: f64,
    grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let n = hidden.dim(0)?;
    let (mut losses, mut grads) = (Vec::with_capacity(n.div_ceil(CE_ROWS)), Vec::with_capacity(n.div_ceil(CE_ROWS)));
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
        let ce = (sum.log()? - shifted.gather(&y, 1)?)?;
        let (loss, distill) = match kd {
            None => (ce, None),
            Some((soft, w)) => {
                let (t, dev) = (w.temperature, shifted.device());
                let ids = soft.ids.narrow(0, start, rows)?;
                let st = (&shifted / t)?;
                let et = st.exp()?;
                let sum_t = et.sum_keepdim(1)?;
                let student = st.gather(&ids, 1)?.broadcast_sub(&sum_t.log()?)?;
                let teacher_log =
                    candle_nn::ops::log_softmax(&(soft.logprobs.narrow(0, start, rows)?.to_dtype(DType::F32)? / t)?, D::Minus1)?;
                let teacher = teacher_log.exp()?;
                let kl = (&teacher * (teacher_log - student)?)?.sum_keepdim(1)?;
                let m = match &soft.mask {
                    Some(m) => m.narrow(0, start, rows)?.unsqueeze(1)?.to_dtype(DType::F32)?,
                    None => Tensor::ones((rows, 1), DType::F32, dev)?,
                };
                // m·(alpha·T²·KL + (1 − alpha)·CE) + (1 − m)·CE
                let c_ce = (1.0 - (&m * w.alpha)?)?;
                let loss = ((&ce * &c_ce)? + (kl * (&m * (w.alpha * t * t))?)?)?;
                (loss, Some((et, sum_t, ids, teacher, c_ce, (m * (w.alpha * t))?)))
            }
        };
        losses.push((loss * scale)?.squeeze(1)?);
        if grad {
            let p = e.broadcast_div(&sum)?;
            p.scatter_add_set(&y, &Tensor::full(-1f32, (rows, 1), p.device())?, 1)?;
            let dz = match distill {
                None => p,
                Some((et, sum_t, ids, teacher, c_ce, c_kd)) => {
                    let q = et.broadcast_div(&sum_t)?;
                    q.scatter_add_set(&ids, &teacher.neg()?, 1)?;
                    (p.broadcast_mul(&c_ce)? + q.broadcast_mul(&c_kd)?)?
                }
            };
            grads.push((dz * scale)?.to_dtype(h.dtype())?.matmul(weight)?);
        }
        start += rows;
    }
    let grads = if grad { Some(Tensor::cat(&grads, 0)?) } else { None };
    Ok((Tensor::cat(&losses, 0)?, grads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Cross-entropy and the distillation loss as eager candle ops, the references.
    fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
        logp.gather(&labels.unsqueeze(1).unwrap(), 1).unwrap().squeeze(1).unwrap().neg().unwrap()
    }

    fn kd(logits: &Tensor, labels: &Tensor, soft: &SoftTargets, w: KdWeights) -> Tensor {
        let t = w.temperature;
        let student = candle_nn::ops::log_softmax(&(logits / t).unwrap(), D::Minus1).unwrap().gather(&soft.ids, 1).unwrap();
        let teacher_log = candle_nn::ops::log_softmax(&(&soft.logprobs / t).unwrap(), D::Minus1).unwrap();
        let kl = (teacher_log.exp().unwrap() * (teacher_log - student).unwrap()).unwrap().sum(1).unwrap();
        let ce = cross_entropy(logits, labels);
        let loss = ((kl * (w.alpha * t * t)).unwrap() + (&ce * (1.0 - w.alpha)).unwrap()).unwrap();
        match &soft.mask {
            None => loss,
            Some(m) => ((loss * m).unwrap() + (ce * (1.0 - m).unwrap()).unwrap()).unwrap(),
        }
    }

    fn grid(rows: usize, cols: usize, seed: f64) -> Tensor {
        let v: Vec<f32> = (0..rows * cols).map(|i| ((i as f64 * 0.71 + seed).sin() * 1.3) as f32).collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn cross_entropy_of_a_uniform_distribution_is_log_vocab() {
        let dev = Device::Cpu;
        // Zero hidden states: every logit 0.
        let (hidden, weight) = (Tensor::zeros((3, 4), DType::F32, &dev).unwrap(), grid(8, 4, 0.3));
        let labels = Tensor::new(&[1u32, 2, 7], &dev).unwrap();
        let ce = linear_loss(&hidden, &weight, &labels, None, 1.0, false).unwrap().0.to_vec1::<f32>().unwrap();
        assert!(ce.iter().all(|v| (v - 8f32.ln()).abs() < 1e-6), "{ce:?}");
    }

    #[test]
    fn kd_is_zero_when_the_student_matches_a_full_teacher() {
        let dev = Device::Cpu;
        // The identity as W: the hidden states are the logits.
        let logits = Tensor::new(&[[1.0f32, 2.0, 0.5, -1.0]], &dev).unwrap();
        let eye = Tensor::from_vec((0..16).map(|i| if i % 5 == 0 { 1f32 } else { 0.0 }).collect::<Vec<_>>(), (4, 4), &dev).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let soft = SoftTargets { ids: Tensor::new(&[[0u32, 1, 2, 3]], &dev).unwrap(), logprobs: logp, mask: None };
        let labels = Tensor::new(&[1u32], &dev).unwrap();
        let (loss, grad) =
            linear_loss(&logits, &eye, &labels, Some((&soft, KdWeights { alpha: 1.0, temperature: 1.0 })), 1.0, true).unwrap();
        assert!(loss.to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
        // ... and so is its gradient.
        assert!(grad.unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn the_chunked_losses_and_their_gradients_equal_the_eager_graph() {
        let dev = Device::Cpu;
        // More positions than one chunk, so the chunks and their joins are exercised.
        let (n, h, vocab, k) = (CE_ROWS + 37, 8, 50, 5);
        let hidden = Var::from_tensor(&grid(n, h, 0.2)).unwrap();
        let weight = grid(vocab, h, 1.9);
        let labels = Tensor::from_vec((0..n).map(|i| ((i * 7) % vocab) as u32).collect::<Vec<_>>(), n, &dev).unwrap();
        let ids = Tensor::from_vec((0..n * k).map(|i| ((i * 13 + i / k) % vocab) as u32).collect::<Vec<_>>(), (n, k), &dev).unwrap();
        let logprobs = candle_nn::ops::log_softmax(&grid(n, k, 4.4), D::Minus1).unwrap();
        // The teacher missing at every third position there: plain cross-entropy.
        let mask = Tensor::from_vec((0..n).map(|i| if i % 3 == 0 { 0f32 } else { 1.0 }).collect::<Vec<_>>(), n, &dev).unwrap();
        let soft = SoftTargets { ids, logprobs, mask: Some(mask) };
        let w = KdWeights { alpha: 0.7, temperature: 2.0 };
        let logits = hidden.as_tensor().matmul(&weight.t().unwrap()).unwrap();
        for (name, kd_args, reference) in
            [("cross-entropy", None, cross_entropy(&logits, &labels)), ("distillation", Some((&soft, w)), kd(&logits, &labels, &soft, w))]
        {
            let (ours, d_hidden) = linear_loss(&hidden.as_tensor().detach(), &weight, &labels, kd_args, 0.25, true).unwrap();
            assert!(max_diff(&(ours * 4.0).unwrap(), &reference) < 1e-5, "{name}: loss");
            let want = (reference.sum_all().unwrap() * 0.25).unwrap().backward().unwrap();
            assert!(max_diff(&d_hidden.unwrap(), want.get(hidden.as_tensor()).unwrap()) < 1e-6, "{name}: gradient");
            // Without `grad` it only computes the loss.
            assert!(linear_loss(hidden.as_tensor(), &weight, &labels, kd_args, 1.0, false).unwrap().1.is_none());
        }
    }
}
