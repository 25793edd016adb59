//! Causal attention that keeps little for the backward pass: the forward runs in blocks of
//! queries without recording a graph, and the backward recomputes each block's probabilities
//! from q, k and v. Eager attention would keep several `[heads, len, len]` f32 tensors per
//! layer for backward — tens of GB at 4k tokens — where this keeps the output only.
//!
//! It enters candle's autograd as a custom op: the forward hands back the output computed
//! beforehand, the backward is the softmax-attention gradient:
//! `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = s·dS·K`, `dK = s·dSᵀ·Q`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CudaStorage, CustomOp3, D, DType, Layout, Shape, Storage, Tensor};

use super::model::Result;

/// Query rows per block: bounds the `[batch, heads, block, keys]` temporaries.
const BLOCK: usize = 512;

/// `[n, n]`: 0 on and below the diagonal, -inf above, built on the device. The model builds it
/// once per forward (`mask_size` rows) and every layer's attention reads a corner of it.
pub fn triangle(n: usize, device: &candle_core::Device) -> Result<Tensor> {
    let i = Tensor::arange(0u32, n as u32, device)?;
    let above = i.unsqueeze(0)?.broadcast_as((n, n))?.gt(&i.unsqueeze(1)?.broadcast_as((n, n))?)?;
    above.where_cond(&Tensor::full(f32::NEG_INFINITY, (n, n), device)?, &Tensor::zeros((n, n), DType::F32, device)?)
}

/// The probabilities, in f32, of a block of `rows` queries whose last one sits at key position
/// `keys - 1` (causal: a block sees the keys up to its own last position): softmax(scale·q·kᵀ +
/// mask), the mask being `tri` on the block's own diagonal square.
fn probs(q: &Tensor, k: &Tensor, scale: f64, tri: &Tensor) -> Result<Tensor> {
    let rows = q.dim(2)?;
    let keys = k.dim(2)?;
    let scores = (q.matmul(&k.t()?)?.to_dtype(DType::F32)? * scale)?;
    let scores = if rows > 1 {
        let m = tri.narrow(0, 0, rows)?.narrow(1, 0, rows)?;
        let m = if keys > rows { m.pad_with_zeros(1, keys - rows, 0)? } else { m };
        scores.broadcast_add(&m)?
    } else {
        scores
    };
    let max = scores.max_keepdim(D::Minus1)?;
    let e = scores.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// The attention output for q `[b, h, t, d]`, k and v `[b, h, keys, d]` (k/v heads already
/// repeated), query `i` at absolute position `offset + i`; no graph is recorded.
fn forward_blocks(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, offset: usize, tri: &Tensor) -> Result<Tensor> {
    let t = q.dim(2)?;
    let mut outs = Vec::with_capacity(t.div_ceil(BLOCK));
    let mut start = 0;
    while start < t {
        let rows = BLOCK.min(t - start);
        let end = offset + start + rows;
        let qb = q.narrow(2, start, rows)?.contiguous()?;
        let vp = v.narrow(2, 0, end)?.contiguous()?;
        let p = probs(&qb, &k.narrow(2, 0, end)?.contiguous()?, scale, tri)?.to_dtype(v.dtype())?;
        outs.push(p.matmul(&vp)?);
        start += rows;
    }
    Tensor::cat(&outs, 2)
}

fn copy_cpu(t: &Tensor) -> Result<CpuStorage> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => s.try_clone(layout),
        _ => Err(candle_core::Error::Msg("attention: expected a CPU tensor".into())),
    }
}

fn copy_cuda(t: &Tensor) -> Result<CudaStorage> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cuda(s) => s.try_clone(layout),
        _ => Err(candle_core::Error::Msg("attention: expected a CUDA tensor".into())),
    }
}

/// An op of three tensors whose output was computed beforehand without a graph: its forward
/// hands that output back, its backward is `backward(a, b, c, grad)` on detached tensors.
pub(super) struct Precomputed3<F> {
    pub name: &'static str,
    pub out: Tensor,
    pub backward: F,
}

/// Gradients for the three arguments of a [`Precomputed3`].
pub(super) type Grads3 = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

impl<F: Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<Grads3> + Send + Sync> CustomOp3 for Precomputed3<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((copy_cpu(&self.out)?, self.out.shape().clone()))
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        Ok((copy_cuda(&self.out)?, self.out.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, c: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Grads3> {
        (self.backward)(&a.detach(), &b.detach(), &c.detach(), &grad.detach())
    }
}

/// The gradients of causal attention, a block of queries at a time.
fn attention_backward(q: &Tensor, k: &Tensor, v: &Tensor, grad: &Tensor, scale: f64, tri: &Tensor) -> Result<Grads3> {
    let dtype = q.dtype();
    let t = q.dim(2)?;
    let mut dq = Vec::with_capacity(t.div_ceil(BLOCK));
    let mut dk = Tensor::zeros(k.shape(), DType::F32, k.device())?;
    let mut dv = Tensor::zeros(v.shape(), DType::F32, v.device())?;
    let mut start = 0;
    while start < t {
        let rows = BLOCK.min(t - start);
        let end = start + rows;
        let qb = q.narrow(2, start, rows)?.contiguous()?;
        let gb = grad.narrow(2, start, rows)?.contiguous()?;
        let kp = k.narrow(2, 0, end)?.contiguous()?;
        let vp = v.narrow(2, 0, end)?.contiguous()?;
        let p = probs(&qb, &kp, scale, tri)?;
        // This block's share of dK and dV covers keys 0..end; the rest is zero.
        dv = (dv + p.to_dtype(dtype)?.t()?.matmul(&gb)?.to_dtype(DType::F32)?.pad_with_zeros(2, 0, t - end)?)?;
        let dp = gb.matmul(&vp.t()?)?.to_dtype(DType::F32)?;
        // rowsum(P ⊙ dP) equals rowsum(dO ⊙ O); taken this way it rounds as torch's softmax
        // backward does.
        let delta = (&p * &dp)?.sum_keepdim(D::Minus1)?;
        let ds = (p * dp.broadcast_sub(&delta)?)?;
        let ds = (ds * scale)?.to_dtype(dtype)?;
        dq.push(ds.matmul(&kp)?);
        dk = (dk + ds.t()?.matmul(&qb)?.to_dtype(DType::F32)?.pad_with_zeros(2, 0, t - end)?)?;
        start += rows;
    }
    Ok((Some(Tensor::cat(&dq, 2)?), Some(dk.to_dtype(dtype)?), Some(dv.to_dtype(dtype)?)))
}

/// Rows of the causal mask a forward over `t` positions needs.
#[must_use]
pub fn mask_size(t: usize) -> usize {
    BLOCK.min(t)
}

/// Causal attention of q `[b, h, t, d]` over k, v `[b, h, keys, d]`, query `i` at position
/// `offset + i` (keys start at position 0), with `tri` from [`triangle`]`(`[`mask_size`]`(t))`.
/// Differentiable through q, k and v.
pub fn causal(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, offset: usize, tri: &Tensor) -> Result<Tensor> {
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let training = q.track_op() || k.track_op() || v.track_op();
    if training && offset == 0 && q.dim(2)? <= BLOCK {
        // Short rows: the graph of one block is small, and recomputing it costs more than it saves.
        let p = probs(&q, &k, scale, tri)?.to_dtype(v.dtype())?;
        return p.matmul(&v);
    }
    let out = forward_blocks(&q.detach(), &k.detach(), &v.detach(), scale, offset, tri)?;
    if offset > 0 || !training {
        // Decoding, or nothing to differentiate: the output as it is.
        return Ok(out);
    }
    let tri = tri.clone();
    let backward = move |q: &Tensor, k: &Tensor, v: &Tensor, grad: &Tensor| attention_backward(q, k, v, grad, scale, &tri);
    q.apply_op3(&k, &v, Precomputed3 { name: "retort-causal-attention", out: out.contiguous()?, backward })
}

/// An op whose output was computed beforehand without a graph: its forward hands that output
/// back, its backward is `backward(x, grad)`. It lets an expression enter candle's autograd as
/// one node with a hand-written gradient (candle's forward of a custom op only sees storages).
pub(super) struct Precomputed<F> {
    pub name: &'static str,
    pub out: Tensor,
    pub backward: F,
}

impl<F: Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync> candle_core::CustomOp1 for Precomputed<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((copy_cpu(&self.out)?, self.out.shape().clone()))
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout) -> Result<(CudaStorage, Shape)> {
        Ok((copy_cuda(&self.out)?, self.out.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        (self.backward)(&x.detach(), &grad.detach()).map(Some)
    }
}

/// `out` as a function of `x` whose gradient `backward(x, grad)` gives; `out` itself when x
/// records no graph.
pub(super) fn precomputed<F>(name: &'static str, x: &Tensor, out: Tensor, backward: F) -> Result<Tensor>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
{
    if !x.track_op() {
        return Ok(out);
    }
    x.apply_op1(Precomputed { name, out: out.contiguous()?, backward })
}

/// `x·Wᵀ + b`, no graph recorded (x detached by the caller).
pub(super) fn affine(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let out = x.matmul(&weight.t()?)?;
    match bias {
        Some(b) => out.broadcast_add(b),
        None => Ok(out),
    }
}

/// `x·Wᵀ + b` for x `[rows, in]` and a frozen W `[out, in]`, differentiable through x only:
/// candle's matmul backward would also compute W's gradient (a full GEMM, a zeroed buffer and an
/// add per projection and step) although nothing reads it. Here `dX = dY·W` only.
pub fn frozen_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let out = affine(&x.detach(), weight, bias)?;
    let weight = weight.clone();
    precomputed("retort-frozen-linear", x, out, move |_, grad| grad.matmul(&weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Eager attention with the graph recorded, as the reference.
    fn eager(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
        let t = q.dim(2).unwrap();
        let m: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let m = Tensor::from_vec(m, (t, t), q.device()).unwrap();
        let s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap().broadcast_add(&m).unwrap();
        candle_nn::ops::softmax(&s, D::Minus1).unwrap().matmul(v).unwrap()
    }

    #[test]
    fn blocked_attention_and_its_gradient_equal_eager_attention() {
        let dev = Device::Cpu;
        // Longer than a block, so the blocks and their masks are exercised.
        let (b, h, t, d) = (1, 2, BLOCK + 37, 8);
        let rand = |seed: f64| {
            let n = b * h * t * d;
            let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.37 + seed).sin() * 2.0) as f32).collect();
            Var::from_tensor(&Tensor::from_vec(v, (b, h, t, d), &dev).unwrap()).unwrap()
        };
        let (q, k, v) = (rand(0.1), rand(1.3), rand(2.7));
        let w = Tensor::from_vec((0..b * h * t * d).map(|i| ((i % 13) as f32) - 6.0).collect::<Vec<_>>(), (b, h, t, d), &dev).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let ours = causal(q.as_tensor(), k.as_tensor(), v.as_tensor(), scale, 0, &triangle(mask_size(t), &dev).unwrap()).unwrap();
        let reference = eager(q.as_tensor(), k.as_tensor(), v.as_tensor(), scale);
        let diff = (&ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "forward differs by {diff}");
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (reference * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in [("q", &q), ("k", &k), ("v", &v)] {
            let a = g1.get(var.as_tensor()).unwrap();
            let e = g2.get(var.as_tensor()).unwrap();
            let diff = (a - e).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-3, "d{name} differs by {diff}");
        }
    }
}
