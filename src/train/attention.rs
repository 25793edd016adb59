//! Causal attention that keeps little for the backward pass: the forward runs in blocks of
//! queries, and the backward recomputes each block's probabilities from q, k and v. Eager
//! attention would keep several `[heads, len, len]` f32 tensors per layer for backward — tens
//! of GB at 4k tokens — where this keeps the output only. The backward is the softmax-attention
//! gradient (q already scaled): `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dO ⊙ O))`,
//! `dQ = dS·K`, `dK = dSᵀ·Q`.
//!
//! Each block costs few passes over its `[rows, keys]` scores, since on a GPU those passes, not
//! the matmuls, are where attention spends its time: on a GPU the matmul and one kernel of
//! retort's for the masked softmax (in f32, as transformers' eager attention) and one for dS
//! (`cuda_ops`); elsewhere the mask, an f32 copy and candle's softmax.

use candle_core::{D, DType, Tensor};

use super::model::Result;

/// Query rows per block on a CPU: bounds the `[batch, heads, block, keys]` temporaries.
const BLOCK: usize = 512;

/// Query rows per block on `device`. A GPU takes twice as many: half the blocks, so half the
/// kernel launches, for an eighth more masked-out work on the diagonal.
fn block_rows(device: &candle_core::Device) -> usize {
    if device.is_cuda() { 2 * BLOCK } else { BLOCK }
}

/// The causal mask of a forward over `t` positions after `offset` cached ones, in `dtype`:
/// `[min(t, block), offset + t]`, 0 where a query sees a key and -inf where not, aligned on
/// the right — row `i` is the query `rows - 1 - i` places before the last, and every block of
/// queries reads its mask as a view of a corner of this one (see [`block_mask`]).
pub fn causal_mask(t: usize, offset: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let rows = block_rows(device).min(t);
    let keys = offset + t;
    // Row i's query sits at key position keys - rows + i and sees the keys up to it.
    let last = Tensor::arange((keys - rows) as u32, keys as u32, device)?.unsqueeze(1)?.broadcast_as((rows, keys))?;
    let key = Tensor::arange(0u32, keys as u32, device)?.unsqueeze(0)?.broadcast_as((rows, keys))?;
    let hidden = key.gt(&last)?;
    hidden
        .where_cond(&Tensor::full(f32::NEG_INFINITY, (rows, keys), device)?, &Tensor::zeros((rows, keys), DType::F32, device)?)?
        .to_dtype(dtype)
}

/// The mask of a block of `rows` queries whose last one sits at key position `end - 1`
/// (a view of [`causal_mask`]); `None` for a single query, which sees every key before it.
fn block_mask(mask: &Tensor, rows: usize, end: usize) -> Result<Option<Tensor>> {
    if rows == 1 {
        return Ok(None);
    }
    let (mask_rows, keys) = mask.dims2()?;
    Ok(Some(mask.narrow(0, mask_rows - rows, rows)?.narrow(1, keys - end, end)?))
}

/// The probabilities of a block of (scaled) queries over the keys `k`, softmax(q·kᵀ + mask) in
/// f32, in q's dtype: on a GPU one fused kernel over the scores (the mask follows from the
/// block's shape), else candle's ops with the mask view.
fn probs(q: &Tensor, k: &Tensor, mask: Option<&Tensor>, fused: bool) -> Result<Tensor> {
    let scores = q.matmul(&k.t()?)?;
    if fused {
        return super::cuda_ops::causal_softmax(&scores);
    }
    let scores = match mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores,
    };
    softmax_rows(&scores.to_dtype(DType::F32)?)?.to_dtype(q.dtype())
}

/// The scores' gradient of a block, `p ⊙ (dp − delta)` in f32, in p's dtype.
fn scores_grad(p: &Tensor, dp: &Tensor, delta: &Tensor, fused: bool) -> Result<Tensor> {
    if fused {
        return super::cuda_ops::attention_ds(p, dp, delta);
    }
    (p.to_dtype(DType::F32)? * dp.to_dtype(DType::F32)?.broadcast_sub(delta)?)?.to_dtype(p.dtype())
}

/// Below this many elements a CPU tensor takes the plain ops rather than candle's fused kernels:
/// their CPU versions hand every call to the thread pool, which costs more than small work.
pub(super) const CPU_FUSED_MIN: usize = 64 * 1024;

/// Softmax over the last dimension: candle's fused kernel (one pass on a GPU), or the plain
/// ops for a small CPU tensor.
fn softmax_rows(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.elem_count() < CPU_FUSED_MIN {
        let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
        return e.broadcast_div(&e.sum_keepdim(D::Minus1)?);
    }
    candle_nn::ops::softmax_last_dim(x)
}

/// Causal attention of q `[b, h, t, d]` (already scaled) over k, v `[b, h, keys, d]` (key/value
/// heads already repeated), query `i` at position `offset + i` (keys start at position 0), with
/// `mask` from [`causal_mask`]`(t, offset, ..)`.
pub fn forward(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize, mask: &Tensor) -> Result<Tensor> {
    let fused = super::cuda_ops::fused(q.device());
    // Blocks read q, k and v as views (matmuls take their strides); only the scores are new.
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let t = q.dim(2)?;
    let block = block_rows(q.device());
    let mut outs = Vec::with_capacity(t.div_ceil(block));
    let mut start = 0;
    while start < t {
        let rows = block.min(t - start);
        let end = offset + start + rows;
        let m = block_mask(mask, rows, end)?;
        let p = probs(&q.narrow(2, start, rows)?, &k.narrow(2, 0, end)?, m.as_ref(), fused)?;
        outs.push(p.matmul(&v.narrow(2, 0, end)?)?);
        start += rows;
    }
    Tensor::cat(&outs, 2)
}

/// The gradients `(dq, dk, dv)` of [`forward`] (offset 0) for its inputs, its output `out` and
/// the output's gradient, a block of queries at a time, the last first: its share of dK and dV
/// covers every key, and each earlier block's (keys 0..end) is added into the front.
pub fn backward(q: &Tensor, k: &Tensor, v: &Tensor, out: &Tensor, grad: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let fused = super::cuda_ops::fused(q.device());
    let (q, k, v, grad) = (q.contiguous()?, k.contiguous()?, v.contiguous()?, grad.contiguous()?);
    let dtype = q.dtype();
    let t = q.dim(2)?;
    // rowsum(P ⊙ dP) = rowsum(dO ⊙ O): one [t, d] product instead of one per [rows, keys] block.
    let delta = (grad.to_dtype(DType::F32)? * out.to_dtype(DType::F32)?)?.sum_keepdim(D::Minus1)?;
    let block = block_rows(q.device());
    let mut dq = Vec::with_capacity(t.div_ceil(block));
    let (mut dk, mut dv): (Option<Tensor>, Option<Tensor>) = (None, None);
    // Accumulated in f32; the first part (the last block's) is every key's.
    let add = |acc: Option<Tensor>, part: Tensor, end: usize| -> Result<Option<Tensor>> {
        let part = part.to_dtype(DType::F32)?;
        Ok(Some(match acc {
            None => part.contiguous()?,
            Some(acc) => {
                let sum = (acc.narrow(2, 0, end)? + part)?;
                acc.slice_set(&sum, 2, 0)?;
                acc
            }
        }))
    };
    let mut end = t;
    while end > 0 {
        let rows = match end % block {
            0 => block.min(end),
            r => r,
        };
        let start = end - rows;
        let qb = q.narrow(2, start, rows)?;
        let gb = grad.narrow(2, start, rows)?;
        let (kp, vp) = (k.narrow(2, 0, end)?, v.narrow(2, 0, end)?);
        let m = block_mask(mask, rows, end)?;
        let p = probs(&qb, &kp, m.as_ref(), fused)?;
        dv = add(dv, p.t()?.matmul(&gb)?, end)?;
        let ds = scores_grad(&p, &gb.matmul(&vp.t()?)?, &delta.narrow(2, start, rows)?, fused)?;
        dq.push(ds.matmul(&kp)?);
        dk = add(dk, ds.t()?.matmul(&qb)?, end)?;
        end = start;
    }
    dq.reverse();
    let dq = Tensor::cat(&dq, 2)?;
    let to = |g: Option<Tensor>| -> Result<Tensor> {
        match g {
            Some(g) => g.to_dtype(dtype),
            None => Tensor::zeros(k.shape(), dtype, k.device()),
        }
    };
    Ok((dq, to(dk)?, to(dv)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// `f` through the fused kernels' operations (their CPU references) or candle's.
    fn through<R>(fused: bool, f: impl FnOnce() -> R) -> R {
        if fused { crate::train::cuda_ops::with_kernel_references(f) } else { f() }
    }

    /// Eager attention with the graph recorded, as the reference.
    fn eager(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
        let t = q.dim(2).unwrap();
        let m: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let m = Tensor::from_vec(m, (t, t), q.device()).unwrap();
        let s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap().broadcast_add(&m).unwrap();
        candle_nn::ops::softmax(&s, D::Minus1).unwrap().matmul(v).unwrap()
    }

    #[test]
    fn blocked_attention_and_its_backward_equal_eager_attention() {
        let dev = Device::Cpu;
        // One block, and longer than a block so that the blocks and their masks are exercised;
        // through candle's ops and through the fused kernels' ops (their CPU references).
        for (t, fused) in [(37, false), (BLOCK + 37, false), (37, true), (BLOCK + 37, true)] {
            let (b, h, d) = (2, 3, 8);
            let rand = |seed: f64| {
                let n = b * h * t * d;
                let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.37 + seed).sin() * 2.0) as f32).collect();
                Var::from_tensor(&Tensor::from_vec(v, (b, h, t, d), &dev).unwrap()).unwrap()
            };
            let (q, k, v) = (rand(0.1), rand(1.3), rand(2.7));
            let w = Tensor::from_vec((0..b * h * t * d).map(|i| ((i % 13) as f32) - 6.0).collect::<Vec<_>>(), (b, h, t, d), &dev).unwrap();
            let scale = 1.0 / (d as f64).sqrt();
            let mask = causal_mask(t, 0, DType::F32, &dev).unwrap();
            let qs = (q.as_tensor().detach() * scale).unwrap();
            let (kd, vd) = (k.as_tensor().detach(), v.as_tensor().detach());
            let ours = through(fused, || forward(&qs, &kd, &vd, 0, &mask).unwrap());
            let reference = eager(q.as_tensor(), k.as_tensor(), v.as_tensor(), scale);
            let diff = (&ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "t {t} fused {fused}: forward differs by {diff}");
            let (dqs, dk, dv) = through(fused, || backward(&qs, &kd, &vd, &ours, &w, &mask).unwrap());
            let dq = (dqs * scale).unwrap();
            let g2 = (reference * &w).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, var, a) in [("q", &q, &dq), ("k", &k, &dk), ("v", &v, &dv)] {
                let e = g2.get(var.as_tensor()).unwrap();
                let diff = (a - e).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(diff < 1e-3, "t {t} fused {fused}: d{name} differs by {diff}");
            }
        }
    }

    #[test]
    fn queries_after_cached_keys_see_exactly_the_keys_before_them() {
        // The last `t` queries over `offset + t` keys equal the tail of a full forward.
        let dev = Device::Cpu;
        let (b, h, d) = (1, 2, 8);
        for (offset, t) in [(5, 1), (5, 7), (3, BLOCK + 9)] {
            let n = offset + t;
            let rand = |seed: f64| {
                let v: Vec<f32> = (0..b * h * n * d).map(|i| ((i as f64 * 0.53 + seed).sin() * 2.0) as f32).collect();
                Tensor::from_vec(v, (b, h, n, d), &dev).unwrap()
            };
            let (q, k, v) = (rand(0.4), rand(1.1), rand(2.2));
            let full = eager(&q, &k, &v, 0.5).narrow(2, offset, t).unwrap();
            let mask = causal_mask(t, offset, DType::F32, &dev).unwrap();
            for fused in [false, true] {
                let tail = through(fused, || forward(&(q.narrow(2, offset, t).unwrap() * 0.5).unwrap(), &k, &v, offset, &mask).unwrap());
                let diff = (&full - tail).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(diff < 1e-5, "offset {offset}, t {t}, fused {fused}: differs by {diff}");
            }
        }
    }
}
