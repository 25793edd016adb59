//! RMSNorm and rotary embedding as single autograd ops with hand-written backward passes.
//! Built from candle's elementwise ops they record a dozen nodes each, and candle's backward
//! zero-fills and adds a gradient buffer for every argument of every node — including the
//! frozen norm weight and the rotary tables, whose gradients nothing reads.

use candle_core::{D, DType, Tensor};

use super::attention::{CPU_FUSED_MIN, Grads3, Precomputed3, precomputed};
use super::model::Result;

/// RMSNorm as transformers computes it: in f32, rounded to the input's dtype, then scaled by the
/// weight in that dtype. On a GPU, and on a CPU in f32, candle's fused kernel does the first part
/// in one pass (its CPU half-precision path would round the norm before dividing, so those
/// tensors and small CPU ones take the plain ops).
fn rms_norm_plain(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let cpu = x.device().is_cpu();
    if !cpu || (dtype == DType::F32 && x.elem_count() >= CPU_FUSED_MIN) {
        if dtype == DType::F32 {
            return candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32);
        }
        let ones = Tensor::ones(weight.shape(), dtype, weight.device())?;
        return candle_nn::ops::rms_norm(&x.contiguous()?, &ones, eps as f32)?.broadcast_mul(weight);
    }
    let x32 = x.to_dtype(DType::F32)?;
    let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x32.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.to_dtype(dtype)?.broadcast_mul(weight)
}

/// RMSNorm over the last dimension with a frozen weight, differentiable through x. With
/// r = 1/√(mean(x²) + ε), n = x·r and dn = g·w: dx = r·(dn − n·mean(dn·n)).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let out = rms_norm_plain(&x.detach(), weight, eps)?;
    let weight = weight.to_dtype(DType::F32)?;
    precomputed("retort-rms-norm", x, out, move |x, grad| {
        let x32 = x.to_dtype(DType::F32)?;
        let r = ((x32.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?).recip()?;
        let n = x32.broadcast_mul(&r)?;
        let dn = grad.to_dtype(DType::F32)?.broadcast_mul(&weight)?;
        let proj = (&dn * &n)?.mean_keepdim(D::Minus1)?;
        (dn - n.broadcast_mul(&proj)?)?.broadcast_mul(&r)?.to_dtype(x.dtype())
    })
}

/// `rotate_half` of transformers: `[-x₂, x₁]` for the halves of the last dimension.
fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
}

/// `x·cos + rotate_half(x)·sin` for x `[b, h, t, d]` and cos, sin `[t, d / 2]`: candle's fused
/// kernel (the same products and sum, so the same rounding as transformers' ops), or the plain
/// ops for a small CPU tensor.
fn rope_plain(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    if !x.device().is_cpu() || x.elem_count() >= CPU_FUSED_MIN {
        return candle_nn::rotary_emb::rope(&x, cos, sin);
    }
    let t = x.dim(2)?;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.narrow(0, 0, t)?.unsqueeze(0)?.unsqueeze(0)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.narrow(0, 0, t)?.unsqueeze(0)?.unsqueeze(0)?;
    x.broadcast_mul(&cos)? + rotate_half(&x)?.broadcast_mul(&sin)?
}

/// Rotary embedding of x `[b, h, t, d]` with cos and sin `[t, d / 2]` (rotate_half layout, as
/// transformers' Llama and Qwen), differentiable through x. The rotation's transpose is the
/// rotation by the opposite angle: dx = rope(g, cos, −sin).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let out = rope_plain(&x.detach(), cos, sin)?;
    let (cos, sin) = (cos.clone(), sin.clone());
    precomputed("retort-rope", x, out, move |_, grad| rope_plain(grad, &cos, &sin.neg()?))
}

/// `x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ` for x `[rows, in]`, a frozen W and LoRA's A `[r, in]`
/// and B `[out, r]` (f32), as PEFT computes it, as one autograd node: differentiable through x,
/// A and B, with no gradient for W and none of the intermediate nodes' buffers.
pub fn lora_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, a: &Tensor, b: &Tensor, scale: f64, dropout: f32) -> Result<Tensor> {
    let xd = x.detach();
    let base = super::attention::affine(&xd, weight, bias)?;
    let mut xl = xd.to_dtype(a.dtype())?;
    let keep = if dropout > 0.0 {
        let keep = (xl.rand_like(0.0, 1.0)?.ge(f64::from(dropout))?.to_dtype(DType::F32)? / (1.0 - f64::from(dropout)))?;
        xl = (xl * &keep)?;
        Some(keep)
    } else {
        None
    };
    let xa = (xl.matmul(&a.detach().t()?)? * scale)?;
    let out = (&base + xa.matmul(&b.detach().t()?)?.to_dtype(base.dtype())?)?;
    if !(x.track_op() || a.track_op() || b.track_op()) {
        return Ok(out);
    }
    // y = x·Wᵀ + b + xa·Bᵀ with xa = s·xl·Aᵀ: dB = gᵀ·xa, d(xa) = g·B, dA = s·d(xa)ᵀ·xl,
    // dx = g·W + (s·d(xa)·A) ⊙ keep.
    let weight = weight.clone();
    let backward = move |x: &Tensor, a: &Tensor, b: &Tensor, g: &Tensor| -> Result<Grads3> {
        let g32 = g.to_dtype(DType::F32)?;
        let db = g32.t()?.matmul(&xa)?;
        let dxa = (g32.matmul(b)? * scale)?;
        let da = dxa.t()?.matmul(&xl)?;
        let mut dxl = dxa.matmul(a)?;
        if let Some(keep) = &keep {
            dxl = (dxl * keep)?;
        }
        let dx = (g.matmul(&weight)? + dxl.to_dtype(x.dtype())?)?;
        Ok((Some(dx), Some(da), Some(db)))
    };
    x.apply_op3(a, b, Precomputed3 { name: "retort-lora-linear", out: out.contiguous()?, backward })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn var(shape: (usize, usize, usize, usize), seed: f64) -> Var {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.73 + seed).sin() * 1.5) as f32).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    /// transformers' RMSNorm as recorded candle ops.
    fn rms_norm_eager(x: &Tensor, w: &Tensor, eps: f64) -> Tensor {
        let var = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        x.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap().broadcast_mul(w).unwrap()
    }

    #[test]
    fn fused_ops_and_their_gradients_equal_the_recorded_graph() {
        let dev = Device::Cpu;
        // Small tensors take the plain ops on a CPU, large ones candle's fused kernels.
        for (shape, d) in [((2, 3, 5, 8), 8), ((1, 4, 128, 128), 128)] {
            assert_eq!(shape.0 * shape.1 * shape.2 * shape.3 >= CPU_FUSED_MIN, d == 128);
            let x = var(shape, 0.3);
            let w = Tensor::from_vec((0..d).map(|i| 0.5 + i as f32 * 0.01).collect::<Vec<_>>(), d, &dev).unwrap();
            let probe = var(shape, 1.7).as_tensor().detach();
            let ours = rms_norm(x.as_tensor(), &w, 1e-6).unwrap();
            let reference = rms_norm_eager(x.as_tensor(), &w, 1e-6);
            assert!(max_diff(&ours, &reference) < 1e-5, "rms_norm d {d}");
            let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(max_diff(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap()) < 1e-4, "rms_norm d {d}: dx");

            let t = shape.2;
            let angles = Tensor::from_vec((0..t * d / 2).map(|i| i as f32 * 0.037).collect::<Vec<_>>(), (t, d / 2), &dev).unwrap();
            let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
            let ours = rope(x.as_tensor(), &cos, &sin).unwrap();
            let reference = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin).unwrap();
            assert!(max_diff(&ours, &reference) < 1e-6, "rope d {d}");
            let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(max_diff(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap()) < 1e-5, "rope d {d}: dx");
        }
    }

    #[test]
    fn the_lora_projection_and_its_gradients_equal_the_recorded_graph() {
        let dev = Device::Cpu;
        let grid = |rows: usize, cols: usize, seed: f64| {
            let v: Vec<f32> = (0..rows * cols).map(|i| ((i as f64 * 0.61 + seed).cos() * 0.8) as f32).collect();
            Tensor::from_vec(v, (rows, cols), &dev).unwrap()
        };
        let x = Var::from_tensor(&grid(6, 8, 0.2)).unwrap();
        let (a, b) = (Var::from_tensor(&grid(3, 8, 1.1)).unwrap(), Var::from_tensor(&grid(5, 3, 2.3)).unwrap());
        let (w, bias) = (grid(5, 8, 3.7), grid(1, 5, 4.1).squeeze(0).unwrap());
        let probe = grid(6, 5, 5.9);
        let ours = lora_linear(x.as_tensor(), &w, Some(&bias), a.as_tensor(), b.as_tensor(), 2.0, 0.0).unwrap();
        let reference = (x.as_tensor().matmul(&w.t().unwrap()).unwrap().broadcast_add(&bias).unwrap()
            + (x.as_tensor().matmul(&a.as_tensor().t().unwrap()).unwrap().matmul(&b.as_tensor().t().unwrap()).unwrap() * 2.0).unwrap())
        .unwrap();
        assert!(max_diff(&ours, &reference) < 1e-5);
        let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &a, &b] {
            assert!(max_diff(g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap()) < 1e-5);
        }
    }
}
