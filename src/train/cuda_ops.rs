//! Fused passes over a block of attention scores. On a GPU each is one kernel of
//! `kernels.cu` where candle's ops would take four or five, each reading and writing the whole
//! `[rows, keys]` block; the CPU implementations here define what the kernels compute (the
//! tests check them, and the blocked attention through them, against eager attention). Elsewhere
//! than CUDA the trainer keeps candle's ops, which run the CPU's cores in parallel.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Device, Layout, Shape, Tensor};

use super::model::Result;

/// Whether attention on `device` runs through these kernels: on CUDA, unless the environment
/// sets `RETORT_FUSED_ATTENTION=0` (candle's ops then, to compare or to work around).
pub fn fused(device: &Device) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    device.is_cuda() && !*OFF.get_or_init(|| std::env::var("RETORT_FUSED_ATTENTION").is_ok_and(|v| v == "0"))
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
        let (o1, o2) = l.contiguous_offsets().unwrap_or((0, 0));
        let grid = (n_rows.div_ceil(4), 32, 4);
        let out = match s.dtype() {
            DType::BF16 => gpu::launch1::<half::bf16>(s, o1..o2, "causal_softmax_bf16", grid, [n_rows, rows, keys])?,
            DType::F32 => gpu::launch1::<f32>(s, o1..o2, "causal_softmax_f32", grid, [n_rows, rows, keys])?,
            other => candle_core::bail!("causal softmax: unsupported dtype {other:?}"),
        };
        Ok((out, l.shape().clone()))
    }
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
        let (_, keys, n_rows) = block_dims(lp)?;
        if ldp.shape() != lp.shape() || ld.shape().elem_count() != n_rows {
            candle_core::bail!("attention ds: shapes {:?}, {:?} and {:?} do not fit", lp.shape(), ldp.shape(), ld.shape());
        }
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
        let (_, keys, n_rows) = block_dims(lp)?;
        if ldp.shape() != lp.shape() || ld.shape().elem_count() != n_rows || ldp.contiguous_offsets().is_none() {
            candle_core::bail!("attention ds: shapes {:?}, {:?} and {:?} do not fit", lp.shape(), ldp.shape(), ld.shape());
        }
        let out = match p.dtype() {
            DType::BF16 => gpu::launch_ds::<half::bf16>((p, lp), (dp, ldp), (delta, ld), "attention_ds_bf16", n_rows, keys)?,
            DType::F32 => gpu::launch_ds::<f32>((p, lp), (dp, ldp), (delta, ld), "attention_ds_f32", n_rows, keys)?,
            other => candle_core::bail!("attention ds: unsupported dtype {other:?}"),
        };
        Ok((out, lp.shape().clone()))
    }
}

/// Launching the kernels of `kernels.cu` (PTX built by build.rs) on candle's stream.
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod gpu {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr};
    use candle_core::{CudaStorage, Layout};

    use super::Result;

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/retort_kernels.ptx"));
    const MODULE: &str = "retort_kernels";

    fn u32_of(n: usize) -> Result<u32> {
        u32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("attention block too large for the kernels: {n}")))
    }

    /// `name(src, dst, a, b, c)` over `src[range]` with `(blocks, threads x, threads y)`.
    pub fn launch1<T: CudaDType + DeviceRepr>(
        s: &CudaStorage,
        range: std::ops::Range<usize>,
        name: &str,
        grid: (usize, u32, u32),
        args: [usize; 3],
    ) -> Result<CudaStorage> {
        let dev = s.device().clone();
        let n = range.len();
        let src = s.as_cuda_slice::<T>()?.slice(range);
        // SAFETY: every element is written by the kernel before anything reads it.
        let dst = unsafe { dev.alloc::<T>(n)? };
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let [a, b, c] = [u32_of(args[0])?, u32_of(args[1])?, u32_of(args[2])?];
        let mut builder = func.builder();
        builder.arg(&src);
        builder.arg(&dst);
        builder.arg(&a);
        builder.arg(&b);
        builder.arg(&c);
        let cfg = LaunchConfig { grid_dim: (u32_of(grid.0)?, 1, 1), block_dim: (grid.1, grid.2, 1), shared_mem_bytes: 0 };
        // SAFETY: the kernel's parameters are the pointers and u32s pushed above, in order.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(dst, dev))
    }

    /// `name(p, dp, delta, ds, n_rows, keys)`, a grid-stride loop over the elements.
    pub fn launch_ds<T: CudaDType + DeviceRepr>(
        (p, lp): (&CudaStorage, &Layout),
        (dp, ldp): (&CudaStorage, &Layout),
        (delta, ld): (&CudaStorage, &Layout),
        name: &str,
        n_rows: usize,
        keys: usize,
    ) -> Result<CudaStorage> {
        let dev = p.device().clone();
        let range = |l: &Layout| l.contiguous_offsets().map_or(0..0, |(a, b)| a..b);
        let n = n_rows * keys;
        let p = p.as_cuda_slice::<T>()?.slice(range(lp));
        let dp = dp.as_cuda_slice::<T>()?.slice(range(ldp));
        let delta = delta.as_cuda_slice::<f32>()?.slice(range(ld));
        // SAFETY: every element is written by the kernel before anything reads it.
        let ds = unsafe { dev.alloc::<T>(n)? };
        let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let (rows, keys) = (u32_of(n_rows)?, u32_of(keys)?);
        let mut builder = func.builder();
        builder.arg(&p);
        builder.arg(&dp);
        builder.arg(&delta);
        builder.arg(&ds);
        builder.arg(&rows);
        builder.arg(&keys);
        let blocks = u32_of(n.div_ceil(256).clamp(1, 1 << 16))?;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: the kernel's parameters are the pointers and u32s pushed above, in order.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(ds, dev))
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
    }
}
