//! The decoder's elementwise pieces, each a forward without a graph and a hand-written
//! backward (the trainer runs its own backward pass, see `model.rs`): RMSNorm, rotary
//! embedding and the SwiGLU gate. On a GPU the forwards are candle's fused kernels where those
//! round as transformers does, and the backwards of RMSNorm and SwiGLU retort's (`cuda_ops`).

use candle_core::{D, DType, Tensor};

use super::attention::CPU_FUSED_MIN;
use super::model::Result;

/// RMSNorm as transformers computes it: in f32, rounded to the input's dtype, then scaled by the
/// weight in that dtype. On a GPU, and on a CPU in f32, candle's fused kernel does the first part
/// in one pass (its CPU half-precision path would round the norm before dividing, so those
/// tensors and small CPU ones take the plain ops).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
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

/// The gradient of [`rms_norm`] with respect to x, for the output's gradient g. With
/// r = 1/√(mean(x²) + ε), n = x·r and dn = g·w: dx = r·(dn − n·mean(dn·n)), in f32.
pub fn rms_norm_backward(x: &Tensor, weight: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    if super::cuda_ops::fused(x.device()) {
        return super::cuda_ops::rms_norm_backward(x, weight, g, eps);
    }
    let x32 = x.to_dtype(DType::F32)?;
    let r = ((x32.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?).recip()?;
    let n = x32.broadcast_mul(&r)?;
    let dn = g.to_dtype(DType::F32)?.broadcast_mul(&weight.to_dtype(DType::F32)?)?;
    let proj = (&dn * &n)?.mean_keepdim(D::Minus1)?;
    (dn - n.broadcast_mul(&proj)?)?.broadcast_mul(&r)?.to_dtype(x.dtype())
}

/// `rotate_half` of transformers: `[-x₂, x₁]` for the halves of the last dimension.
fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
}

/// Rotary embedding `x·cos + rotate_half(x)·sin` of x `[b, h, t, d]` with cos, sin `[t, d / 2]`
/// (rotate_half layout, as transformers' Llama and Qwen): candle's fused kernel (the same
/// products and sum, so the same rounding as transformers' ops), or the plain ops for a small
/// CPU tensor.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    if !x.device().is_cpu() || x.elem_count() >= CPU_FUSED_MIN {
        return candle_nn::rotary_emb::rope(&x, cos, sin);
    }
    let t = x.dim(2)?;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.narrow(0, 0, t)?.unsqueeze(0)?.unsqueeze(0)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.narrow(0, 0, t)?.unsqueeze(0)?.unsqueeze(0)?;
    x.broadcast_mul(&cos)? + rotate_half(&x)?.broadcast_mul(&sin)?
}

/// The gradient of [`rope`] with respect to x: the rotation's transpose is the rotation by the
/// opposite angle, so `neg_sin` is −sin (taken once for a whole backward pass).
pub fn rope_backward(g: &Tensor, cos: &Tensor, neg_sin: &Tensor) -> Result<Tensor> {
    rope(g, cos, neg_sin)
}

/// SwiGLU's `silu(gate)·up`, in the model's dtype as transformers' MLP.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

/// The gradients of [`swiglu`] for the output's gradient g: d up = g·silu(gate), d gate =
/// g·up·σ(gate)·(1 + gate·(1 − σ(gate))), the derivative in f32 as torch's `silu_backward`.
pub fn swiglu_backward(gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    if super::cuda_ops::fused(gate.device()) {
        return super::cuda_ops::swiglu_backward(gate, up, g);
    }
    let d_up = (g * gate.silu()?)?;
    let z = gate.to_dtype(DType::F32)?;
    let s = candle_nn::ops::sigmoid(&z)?;
    let dsilu = (&s * ((&z * (1.0 - &s)?)? + 1.0)?)?;
    let d_gate = ((g * up)?.to_dtype(DType::F32)? * dsilu)?.to_dtype(gate.dtype())?;
    Ok((d_gate, d_up))
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

    /// The gradient candle's autograd gives x for `sum(f(x) * probe)`.
    fn autograd(x: &Var, out: Tensor, probe: &Tensor) -> Tensor {
        (out * probe).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().clone()
    }

    #[test]
    fn elementwise_pieces_and_their_backwards_equal_the_recorded_graph() {
        let dev = Device::Cpu;
        // Small tensors take the plain ops on a CPU, large ones candle's fused kernels.
        for (shape, d) in [((2, 3, 5, 8), 8), ((1, 4, 128, 128), 128)] {
            assert_eq!(shape.0 * shape.1 * shape.2 * shape.3 >= CPU_FUSED_MIN, d == 128);
            let x = var(shape, 0.3);
            let xd = x.as_tensor().detach();
            let w = Tensor::from_vec((0..d).map(|i| 0.5 + i as f32 * 0.01).collect::<Vec<_>>(), d, &dev).unwrap();
            let probe = var(shape, 1.7).as_tensor().detach();

            let reference = rms_norm_eager(x.as_tensor(), &w, 1e-6);
            assert!(max_diff(&rms_norm(&xd, &w, 1e-6).unwrap(), &reference) < 1e-5, "rms_norm d {d}");
            let want = autograd(&x, reference, &probe);
            assert!(max_diff(&rms_norm_backward(&xd, &w, &probe, 1e-6).unwrap(), &want) < 1e-4, "rms_norm d {d}: dx");

            let t = shape.2;
            let angles = Tensor::from_vec((0..t * d / 2).map(|i| i as f32 * 0.037).collect::<Vec<_>>(), (t, d / 2), &dev).unwrap();
            let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
            let reference = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin).unwrap();
            assert!(max_diff(&rope(&xd, &cos, &sin).unwrap(), &reference) < 1e-6, "rope d {d}");
            let want = autograd(&x, reference, &probe);
            assert!(max_diff(&rope_backward(&probe, &cos, &sin.neg().unwrap()).unwrap(), &want) < 1e-5, "rope d {d}: dx");

            let up = var(shape, 2.9);
            let reference = (x.as_tensor().silu().unwrap() * up.as_tensor()).unwrap();
            assert!(max_diff(&swiglu(&xd, &up.as_tensor().detach()).unwrap(), &reference) < 1e-6, "swiglu d {d}");
            let grads = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (d_gate, d_up) = swiglu_backward(&xd, &up.as_tensor().detach(), &probe).unwrap();
            assert!(max_diff(&d_gate, grads.get(x.as_tensor()).unwrap()) < 1e-5, "swiglu d {d}: d gate");
            assert!(max_diff(&d_up, grads.get(up.as_tensor()).unwrap()) < 1e-5, "swiglu d {d}: d up");
        }
    }
}
