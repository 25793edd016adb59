//! retort's fused ops: on a GPU each is one kernel of `kernels.cu` where candle's ops would take
//! from four to seventeen, each reading and writing the whole tensor — the passes of blocked
//! attention over a block's `[rows, keys]` scores, RMSNorm's backward and SwiGLU's backward. The
//! CPU implementations here define what the kernels compute (the tests check them against
//! candle's ops, and the blocked attention through them against eager attention). Elsewhere than
//! CUDA the trainer keeps candle's ops, which run the CPU's cores in parallel.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Device, Layout, Shape, Tensor};

use super::model::Result;

/// `gpu::$f::<T>(args)` for the storage's dtype T: bf16 or f32, the types `kernels.cu` is
/// built for.
#[cfg(feature = "cuda")]
macro_rules! for_dtype {
    ($dtype:expr, $what:literal, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            DType::BF16 => gpu::$f::<half::bf16>($($arg),*),
            DType::F32 => gpu::$f::<f32>($($arg),*),
            other => candle_core::bail!("{}: unsupported dtype {other:?}", $what),
        }
    };
}

thread_local! {
    static REFERENCES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the trainer on `device` runs through these kernels: on CUDA, unless the environment
/// sets `RETORT_KERNELS=0` (candle's ops then, to compare or to work around); and on this
/// thread inside [`with_kernel_references`].
pub fn fused(device: &Device) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    REFERENCES.with(std::cell::Cell::get)
        || (device.is_cuda() && !*OFF.get_or_init(|| std::env::var("RETORT_KERNELS").is_ok_and(|v| v == "0")))
}

/// Runs `f` with the trainer on this thread taking the GPU's code path on any device: these ops
/// where a GPU runs kernels, their CPU implementations standing in. For the tests, which check
/// the whole path a GPU takes against PEFT on the CPU.
pub fn with_kernel_references<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REFERENCES.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(REFERENCES.with(|r| r.replace(true)));
    f()
}

/// RMSNorm's gradient with respect to x `[.., n]` for the weight `[n]` and the output's
/// gradient g: with r = 1/√(mean(x²) + ε), dx = r·(g·w − x·r·mean(g·w·x·r)), in f32, in x's dtype.
pub fn rms_norm_backward(x: &Tensor, weight: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3_no_bwd(&weight.contiguous()?, &g.contiguous()?, &RmsNormBackward { eps: eps as f32 })
}

/// SwiGLU's gradients `(d gate, d up)` for `silu(gate)·up` and the output's gradient g:
/// d gate = g·up·σ(z)·(1 + z·(1 − σ(z))), d up = g·silu(z), in f32, in gate's dtype.
pub fn swiglu_backward(gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let both = gate.contiguous()?.apply_op3_no_bwd(&up.contiguous()?, &g.contiguous()?, &SwigluBackward)?;
    Ok((both.get(0)?, both.get(1)?))
}

/// Causal softmax of a block's scores `[.., rows, keys]`: row `i` is the query at key position
/// `keys - rows + i` and sees the keys up to it; softmax over those in f32, 0 after them, in
/// the scores' dtype.
pub fn causal_softmax(scores: &Tensor) -> Result<Tensor> {
    scores.contiguous()?.apply_op1_no_bwd(&CausalSoftmax)
}

/// The softmax's backward for a block: `p ⊙ (dp − delta)` in f32, in p's dtype, for p and dp
/// `[.., rows, keys]` and delta `[.., rows, 1]` (f32, rowsum(dO ⊙ O)).
pub fn attention_ds(p: &Tensor, dp: &Tensor, delta: &Tensor) -> Result<Tensor> {
    p.contiguous()?.apply_op3_no_bwd(&dp.contiguous()?, &delta.to_dtype(DType::F32)?.contiguous()?, &AttentionDs)
}

struct CausalSoftmax;
struct AttentionDs;
struct RmsNormBackward {
    eps: f32,
}
struct SwigluBackward;

/// `(rows, keys, row count)` of a contiguous `[.., rows, keys]` layout.
fn block_dims(l: &Layout) -> Result<(usize, usize, usize)> {
    let dims = l.dims();
    if dims.len() < 2 || l.contiguous_offsets().is_none() {
        candle_core::bail!("attention kernels take a contiguous [.., rows, keys] tensor, got {:?}", l.shape());
    }
    let (rows, keys) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if rows > keys {
        candle_core::bail!("a block of {rows} queries cannot end before its {keys} keys");
    }
    Ok((rows, keys, l.shape().elem_count() / keys.max(1)))
}

fn cpu_slice<'a, T>(v: &'a [T], l: &Layout) -> &'a [T] {
    let (a, b) = l.contiguous_offsets().unwrap_or((0, 0));
    &v[a..b]
}

fn softmax_rows<T: Copy>(x: &[T], rows: usize, keys: usize, to: impl Fn(T) -> f32, from: impl Fn(f32) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in x.chunks(keys).enumerate() {
        let last = keys - rows + r % rows;
        let seen = &row[..=last];
        let m = seen.iter().map(|v| to(*v)).fold(f32::NEG_INFINITY, f32::max);
        let inv = 1.0 / seen.iter().map(|v| (to(*v) - m).exp()).sum::<f32>();
        out.extend(row.iter().enumerate().map(|(j, v)| from(if j <= last { (to(*v) - m).exp() * inv } else { 0.0 })));
    }
    out
}

fn ds_rows<T: Copy>(p: &[T], dp: &[T], delta: &[f32], keys: usize, to: impl Fn(T) -> f32, from: impl Fn(f32) -> T) -> Vec<T> {
    p.iter().zip(dp).enumerate().map(|(i, (p, dp))| from(to(*p) * (to(*dp) - delta[i / keys]))).collect()
}

fn rms_backward_rows<T: Copy>(x: &[T], w: &[T], g: &[T], n: usize, eps: f32, to: impl Fn(T) -> f32, from: impl Fn(f32) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for (xr, gr) in x.chunks(n).zip(g.chunks(n)) {
        let r = 1.0 / (xr.iter().map(|v| to(*v) * to(*v)).sum::<f32>() / n as f32 + eps).sqrt();
        let proj = xr.iter().zip(gr).zip(w).map(|((x, g), w)| to(*g) * to(*w) * (to(*x) * r)).sum::<f32>() / n as f32;
        out.extend(xr.iter().zip(gr).zip(w).map(|((x, g), w)| from((to(*g) * to(*w) - to(*x) * r * proj) * r)));
    }
    out
}

fn swiglu_backward_all<T: Copy>(gate: &[T], up: &[T], g: &[T], to: impl Fn(T) -> f32, from: impl Fn(f32) -> T) -> Vec<T> {
    let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
    let d_gate = gate.iter().zip(up).zip(g).map(|((z, u), g)| {
        let (z, s) = (to(*z), sig(to(*z)));
        from(to(*g) * to(*u) * s * (1.0 + z * (1.0 - s)))
    });
    let d_up = gate.iter().zip(g).map(|(z, g)| from(to(*g) * to(*z) * sig(to(*z))));
    d_gate.chain(d_up).collect()
}

/// The storages of three same-dtype, same-size f32 or bf16 tensors through `f32s` or `bf16s`.
fn cpu3(
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
    (c, lc): (&CpuStorage, &Layout),
    f32s: impl Fn(&[f32], &[f32], &[f32]) -> Vec<f32>,
    bf16s: impl Fn(&[half::bf16], &[half::bf16], &[half::bf16]) -> Vec<half::bf16>,
) -> Result<CpuStorage> {
    if la.contiguous_offsets().is_none() || lb.contiguous_offsets().is_none() || lc.contiguous_offsets().is_none() {
        candle_core::bail!("fused ops take contiguous tensors");
    }
    Ok(match (a, b, c) {
        (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => {
            CpuStorage::F32(f32s(cpu_slice(a, la), cpu_slice(b, lb), cpu_slice(c, lc)))
        }
        (CpuStorage::BF16(a), CpuStorage::BF16(b), CpuStorage::BF16(c)) => {
            CpuStorage::BF16(bf16s(cpu_slice(a, la), cpu_slice(b, lb), cpu_slice(c, lc)))
        }
        _ => candle_core::bail!("fused ops take f32 or bf16 tensors of one dtype"),
    })
}

impl CustomOp3 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "retort-rms-norm-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = rms_dims(lx, lw, lg)?.1;
        let eps = self.eps;
        let out = cpu3(
            (x, lx),
            (w, lw),
            (g, lg),
            |x, w, g| rms_backward_rows(x, w, g, n, eps, |v| v, |v| v),
            |x, w, g| rms_backward_rows(x, w, g, n, eps, half::bf16::to_f32, half::bf16::from_f32),
        )?;
        Ok((out, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        w: &candle_core::CudaStorage,
        lw: &Layout,
        g: &candle_core::CudaStorage,
        lg: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (n_rows, n) = rms_dims(lx, lw, lg)?;
        let out = for_dtype!(x.dtype(), "rms norm backward", rms_norm_backward([(x, lx), (w, lw), (g, lg)], n_rows, n, self.eps))?;
        Ok((out, lx.shape().clone()))
    }
}

/// `(rows, n)` of RMSNorm's x and g `[.., n]` and weight `[n]`.
fn rms_dims(lx: &Layout, lw: &Layout, lg: &Layout) -> Result<(usize, usize)> {
    let n = lx.dims().last().copied().unwrap_or(0);
    if lg.shape() != lx.shape() || lw.shape().elem_count() != n || n == 0 {
        candle_core::bail!("rms norm backward: shapes {:?}, {:?} and {:?} do not fit", lx.shape(), lw.shape(), lg.shape());
    }
    Ok((lx.shape().elem_count() / n, n))
}

impl CustomOp3 for SwigluBackward {
    fn name(&self) -> &'static str {
        "retort-swiglu-backward"
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        l1: &Layout,
        up: &CpuStorage,
        l2: &Layout,
        g: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = swiglu_shape(l1, l2, l3)?;
        let out = cpu3(
            (gate, l1),
            (up, l2),
            (g, l3),
            |a, b, c| swiglu_backward_all(a, b, c, |v| v, |v| v),
            |a, b, c| swiglu_backward_all(a, b, c, half::bf16::to_f32, half::bf16::from_f32),
        )?;
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        gate: &candle_core::CudaStorage,
        l1: &Layout,
        up: &candle_core::CudaStorage,
        l2: &Layout,
        g: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let shape = swiglu_shape(l1, l2, l3)?;
        let out = for_dtype!(gate.dtype(), "swiglu backward", swiglu_backward([(gate, l1), (up, l2), (g, l3)]))?;
        Ok((out, shape))
    }
}

/// `[2, ..]` (d gate, d up) for SwiGLU's three same-shaped inputs.
fn swiglu_shape(l1: &Layout, l2: &Layout, l3: &Layout) -> Result<Shape> {
    if l2.shape() != l1.shape() || l3.shape() != l1.shape() {
        candle_core::bail!("swiglu backward: shapes {:?}, {:?} and {:?} differ", l1.shape(), l2.shape(), l3.shape());
    }
    let mut dims = vec![2];
    dims.extend_from_slice(l1.dims());
    Ok(Shape::from(dims))
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "retort-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, keys, _) = block_dims(l)?;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(softmax_rows(cpu_slice(v, l), rows, keys, |x| x, |x| x)),
            CpuStorage::BF16(v) => CpuStorage::BF16(softmax_rows(cpu_slice(v, l), rows, keys, half::bf16::to_f32, half::bf16::from_f32)),
            other => candle_core::bail!("causal softmax: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        let (rows, keys, n_rows) = block_dims(l)?;
        let out = for_dtype!(s.dtype(), "causal softmax", causal_softmax(s, l, [n_rows, rows, keys]))?;
        Ok((out, l.shape().clone()))
    }
}

/// `(keys, row count)` of the softmax backward's contiguous p and dp `[.., rows, keys]` and
/// delta (one per row).
fn ds_dims(lp: &Layout, ldp: &Layout, ld: &Layout) -> Result<(usize, usize)> {
    let (_, keys, n_rows) = block_dims(lp)?;
    if ldp.shape() != lp.shape() || ld.shape().elem_count() != n_rows || ldp.contiguous_offsets().is_none() {
        candle_core::bail!("attention ds: shapes {:?}, {:?} and {:?} do not fit", lp.shape(), ldp.shape(), ld.shape());
    }
    Ok((keys, n_rows))
}

impl CustomOp3 for AttentionDs {
    fn name(&self) -> &'static str {
        "retort-attention-ds"
    }

    fn cpu_fwd(
        &self,
        p: &CpuStorage,
        lp: &Layout,
        dp: &CpuStorage,
        ldp: &Layout,
        delta: &CpuStorage,
        ld: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (keys, _) = ds_dims(lp, ldp, ld)?;
        let CpuStorage::F32(delta) = delta else { candle_core::bail!("attention ds: delta must be f32") };
        let delta = cpu_slice(delta, ld);
        let out = match (p, dp) {
            (CpuStorage::F32(p), CpuStorage::F32(dp)) => {
                CpuStorage::F32(ds_rows(cpu_slice(p, lp), cpu_slice(dp, ldp), delta, keys, |x| x, |x| x))
            }
            (CpuStorage::BF16(p), CpuStorage::BF16(dp)) => {
                CpuStorage::BF16(ds_rows(cpu_slice(p, lp), cpu_slice(dp, ldp), delta, keys, half::bf16::to_f32, half::bf16::from_f32))
            }
            _ => candle_core::bail!("attention ds: p and dp must share a dtype, f32 or bf16"),
        };
        Ok((out, lp.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        p: &candle_core::CudaStorage,
        lp: &Layout,
        dp: &candle_core::CudaStorage,
        ldp: &Layout,
        delta: &candle_core::CudaStorage,
        ld: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (keys, n_rows) = ds_dims(lp, ldp, ld)?;
        let out = for_dtype!(p.dtype(), "attention ds", attention_ds([(p, lp), (dp, ldp), (delta, ld)], n_rows, keys))?;
        Ok((out, lp.shape().clone()))
    }
}

/// Launching the kernels of `kernels.cu` (PTX built by build.rs) on candle's stream.
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod gpu {
    use candle_core::WithDType;
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaView, DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr, kernel_name};
    use candle_core::{CudaStorage, Layout};

    use super::Result;

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/retort_kernels.ptx"));
    const MODULE: &str = "retort_kernels";

    fn u32_of(n: usize) -> Result<u32> {
        u32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("too large for retort's kernels: {n}")))
    }

    fn range(l: &Layout) -> std::ops::Range<usize> {
        l.contiguous_offsets().map_or(0..0, |(a, b)| a..b)
    }

    /// A warp per row, four rows a block.
    fn per_row(n_rows: usize) -> Result<LaunchConfig> {
        Ok(LaunchConfig { grid_dim: (u32_of(n_rows.div_ceil(4))?, 1, 1), block_dim: (32, 4, 1), shared_mem_bytes: 0 })
    }

    /// A grid-stride loop over `n` elements, 256 threads a block.
    fn per_element(n: usize) -> Result<LaunchConfig> {
        Ok(LaunchConfig { grid_dim: (u32_of(n.div_ceil(256).clamp(1, 1 << 16))?, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 })
    }

    /// Runs kernel `{root}_{T}` of `kernels.cu` (`causal_softmax_bf16`...), whose parameters are
    /// the inputs, a fresh output of `len` elements of `T`, then the scalars, on candle's
    /// stream; the output as a storage.
    macro_rules! launch {
        ($dev:expr, $root:literal, $t:ty, $len:expr, $cfg:expr, [$($input:expr),*], [$($scalar:expr),*]) => {{
            let dev = $dev;
            // SAFETY: the kernel writes every element of its output before anything reads it.
            let out = unsafe { dev.alloc::<$t>($len)? };
            let func = dev.get_or_load_custom_func(&kernel_name::<$t>($root), MODULE, PTX)?;
            let mut builder = func.builder();
            $(builder.arg($input);)*
            builder.arg(&out);
            $(builder.arg($scalar);)*
            // SAFETY: the arguments pushed above are the kernel's parameters, in its order.
            unsafe { builder.launch($cfg) }.w()?;
            Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
        }};
    }

    /// The elements of a contiguous storage's layout, as a kernel argument.
    fn view<'a, T: CudaDType>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, T>> {
        Ok(s.as_cuda_slice::<T>()?.slice(range(l)))
    }

    /// `causal_softmax_*(s, p, n_rows, rows, keys)`.
    pub fn causal_softmax<T: CudaDType + DeviceRepr + WithDType>(
        s: &CudaStorage,
        l: &Layout,
        [n_rows, rows, keys]: [usize; 3],
    ) -> Result<CudaStorage> {
        let src = view::<T>(s, l)?;
        let (n, r, k) = (u32_of(n_rows)?, u32_of(rows)?, u32_of(keys)?);
        launch!(s.device(), "causal_softmax", T, n_rows * keys, per_row(n_rows)?, [&src], [&n, &r, &k])
    }

    /// `rms_norm_backward_*(x, w, g, dx, n_rows, n, eps)`.
    pub fn rms_norm_backward<T: CudaDType + DeviceRepr + WithDType>(
        [(x, lx), (w, lw), (g, lg)]: [(&CudaStorage, &Layout); 3],
        n_rows: usize,
        n: usize,
        eps: f32,
    ) -> Result<CudaStorage> {
        let (xv, wv, gv) = (view::<T>(x, lx)?, view::<T>(w, lw)?, view::<T>(g, lg)?);
        let (rows, cols) = (u32_of(n_rows)?, u32_of(n)?);
        launch!(x.device(), "rms_norm_backward", T, n_rows * n, per_row(n_rows)?, [&xv, &wv, &gv], [&rows, &cols, &eps])
    }

    /// `swiglu_backward_*(gate, up, g, d, n)`; d holds d gate then d up.
    pub fn swiglu_backward<T: CudaDType + DeviceRepr + WithDType>(
        [(gate, l1), (up, l2), (g, l3)]: [(&CudaStorage, &Layout); 3],
    ) -> Result<CudaStorage> {
        let n = l1.shape().elem_count();
        let (gv, uv, dv) = (view::<T>(gate, l1)?, view::<T>(up, l2)?, view::<T>(g, l3)?);
        let count = u32_of(n)?;
        launch!(gate.device(), "swiglu_backward", T, 2 * n, per_element(n)?, [&gv, &uv, &dv], [&count])
    }

    /// `attention_ds_*(p, dp, delta, ds, n_rows, keys)`.
    pub fn attention_ds<T: CudaDType + DeviceRepr + WithDType>(
        [(p, lp), (dp, ldp), (delta, ld)]: [(&CudaStorage, &Layout); 3],
        n_rows: usize,
        keys: usize,
    ) -> Result<CudaStorage> {
        let (pv, dpv, deltav) = (view::<T>(p, lp)?, view::<T>(dp, ldp)?, view::<f32>(delta, ld)?);
        let (rows, k) = (u32_of(n_rows)?, u32_of(keys)?);
        launch!(p.device(), "attention_ds", T, n_rows * keys, per_element(n_rows * keys)?, [&pv, &dpv, &deltav], [&rows, &k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    fn grid(shape: (usize, usize, usize, usize), seed: f64) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.37 + seed).sin() * 3.0) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn the_gpus_code_path_can_be_taken_on_a_cpu_for_a_while() {
        assert!(!fused(&Device::Cpu));
        assert!(with_kernel_references(|| fused(&Device::Cpu)));
        assert!(!fused(&Device::Cpu));
    }

    #[test]
    fn the_kernels_cpu_references_equal_candles_ops() {
        // A block of 5 queries ending at key 12 (queries at positions 7..12), 2 x 3 heads.
        let scores = grid((2, 3, 5, 12), 0.4);
        let mask = Tensor::from_vec(
            (0..5).flat_map(|i| (0..12).map(move |j| if j > 7 + i { f32::NEG_INFINITY } else { 0.0 })).collect::<Vec<_>>(),
            (5, 12),
            &Device::Cpu,
        )
        .unwrap();
        let want = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        let p = causal_softmax(&scores).unwrap();
        assert!(max_diff(&p, &want) < 1e-6);
        // In bf16: the same, rounded once.
        let p16 = causal_softmax(&scores.to_dtype(DType::BF16).unwrap()).unwrap().to_dtype(DType::F32).unwrap();
        assert!(max_diff(&p16, &want) < 1e-2);

        let dp = grid((2, 3, 5, 12), 2.1);
        let delta = grid((2, 3, 5, 1), 3.3);
        let want = (&p * dp.broadcast_sub(&delta).unwrap()).unwrap();
        assert!(max_diff(&attention_ds(&p, &dp, &delta).unwrap(), &want) < 1e-6);

        // RMSNorm's and SwiGLU's backwards against candle's ops (fused.rs), f32 and bf16.
        let (x, g) = (grid((2, 3, 5, 12), 1.1), grid((2, 3, 5, 12), 4.7));
        let w = grid((1, 1, 1, 12), 0.9).flatten_all().unwrap();
        let want = super::super::fused::rms_norm_backward(&x, &w, &g, 1e-6).unwrap();
        assert!(max_diff(&rms_norm_backward(&x, &w, &g, 1e-6).unwrap(), &want) < 1e-5);
        let up = grid((2, 3, 5, 12), 2.5);
        let (wg, wu) = super::super::fused::swiglu_backward(&x, &up, &g).unwrap();
        let (dg, du) = swiglu_backward(&x, &up, &g).unwrap();
        assert!(max_diff(&dg, &wg) < 1e-5 && max_diff(&du, &wu) < 1e-5);
        let b = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
        let f = |t: Tensor| t.to_dtype(DType::F32).unwrap();
        let rel =
            |a: Tensor, e: &Tensor| max_diff(&a, e) / e.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(rel(f(rms_norm_backward(&b(&x), &b(&w), &b(&g), 1e-6).unwrap()), &want) < 2e-2);
        let (dg, du) = swiglu_backward(&b(&x), &b(&up), &b(&g)).unwrap();
        assert!(rel(f(dg), &wg) < 2e-2 && rel(f(du), &wu) < 2e-2);
    }
}
