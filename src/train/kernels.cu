// retort's CUDA kernels (src/train/cuda_ops.rs launches them; the CPU reference of each is there
// too). Compiled to PTX by build.rs when the `cuda` feature is on. Each fuses a chain of candle
// ops — one kernel launch and one pass over the data each — into one: the passes of blocked
// causal attention over a block's [rows, keys] scores, RMSNorm's backward, SwiGLU's backward.
#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Causal softmax of a block's scores s [n_rows, keys] (n_rows = batch·heads·rows): row r is the
// query (r mod rows) of its block, at key position keys - rows + (r mod rows); it sees the keys
// up to that one. p gets softmax over those (in f32) and 0 after them. One warp per row,
// blockDim (32, 4).
template <typename T>
__device__ void causal_softmax(const T *s, T *p, uint32_t n_rows, uint32_t rows, uint32_t keys) {
    const uint32_t row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= n_rows) return; // the whole warp: all its lanes share the row
    const uint32_t lane = threadIdx.x;
    const uint32_t last = keys - rows + row % rows;
    const T *x = s + (size_t)row * keys;
    T *y = p + (size_t)row * keys;
    float m = -INFINITY;
    for (uint32_t j = lane; j <= last; j += 32) m = fmaxf(m, to_f32(x[j]));
    m = warp_max(m);
    float sum = 0.0f;
    for (uint32_t j = lane; j <= last; j += 32) sum += expf(to_f32(x[j]) - m);
    sum = warp_sum(sum);
    const float inv = 1.0f / sum;
    for (uint32_t j = lane; j < keys; j += 32) y[j] = from_f32<T>(j <= last ? expf(to_f32(x[j]) - m) * inv : 0.0f);
}

// The softmax's backward for a block: ds = p ⊙ (dp − delta[row]), in f32, for p and dp
// [n_rows, keys] and delta [n_rows] (rowsum(dO ⊙ O)).
template <typename T>
__device__ void attention_ds(const T *p, const T *dp, const float *delta, T *ds, uint32_t n_rows, uint32_t keys) {
    const size_t n = (size_t)n_rows * keys;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        ds[i] = from_f32<T>(to_f32(p[i]) * (to_f32(dp[i]) - delta[i / keys]));
    }
}

// RMSNorm's backward for x, g [n_rows, n] and the weight w [n]: with r = 1/sqrt(mean(x²) + eps),
// dx = r·(g·w − x·r·mean(g·w·x·r)), in f32. One warp per row, blockDim (32, 4).
template <typename T>
__device__ void rms_norm_backward(const T *x, const T *w, const T *g, T *dx, uint32_t n_rows, uint32_t n, float eps) {
    const uint32_t row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= n_rows) return;
    const uint32_t lane = threadIdx.x;
    const T *xr = x + (size_t)row * n;
    const T *gr = g + (size_t)row * n;
    T *out = dx + (size_t)row * n;
    float ss = 0.0f;
    for (uint32_t j = lane; j < n; j += 32) {
        const float v = to_f32(xr[j]);
        ss += v * v;
    }
    const float r = 1.0f / sqrtf(warp_sum(ss) / (float)n + eps);
    float dot = 0.0f;
    for (uint32_t j = lane; j < n; j += 32) dot += to_f32(gr[j]) * to_f32(w[j]) * (to_f32(xr[j]) * r);
    const float proj = warp_sum(dot) / (float)n;
    for (uint32_t j = lane; j < n; j += 32) {
        const float dn = to_f32(gr[j]) * to_f32(w[j]);
        out[j] = from_f32<T>((dn - to_f32(xr[j]) * r * proj) * r);
    }
}

// SwiGLU's backward for out = silu(gate)·up and its gradient g (all [n]): d_gate into d[0..n],
// d_up into d[n..2n]; silu's derivative σ(z)·(1 + z·(1 − σ(z))), in f32.
template <typename T>
__device__ void swiglu_backward(const T *gate, const T *up, const T *g, T *d, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float z = to_f32(gate[i]);
        const float s = 1.0f / (1.0f + expf(-z));
        const float gi = to_f32(g[i]);
        d[i] = from_f32<T>(gi * to_f32(up[i]) * s * (1.0f + z * (1.0f - s)));
        d[n + i] = from_f32<T>(gi * z * s);
    }
}

#define KERNELS(T, NAME)                                                                                   \
    extern "C" __global__ void causal_softmax_##NAME(const T *s, T *p, uint32_t n_rows, uint32_t rows,    \
                                                      uint32_t keys) {                                     \
        causal_softmax<T>(s, p, n_rows, rows, keys);                                                       \
    }                                                                                                      \
    extern "C" __global__ void attention_ds_##NAME(const T *p, const T *dp, const float *delta, T *ds,    \
                                                    uint32_t n_rows, uint32_t keys) {                      \
        attention_ds<T>(p, dp, delta, ds, n_rows, keys);                                                   \
    }                                                                                                      \
    extern "C" __global__ void rms_norm_backward_##NAME(const T *x, const T *w, const T *g, T *dx,       \
                                                         uint32_t n_rows, uint32_t n, float eps) {         \
        rms_norm_backward<T>(x, w, g, dx, n_rows, n, eps);                                                 \
    }                                                                                                      \
    extern "C" __global__ void swiglu_backward_##NAME(const T *gate, const T *up, const T *g, T *d,      \
                                                       uint32_t n) {                                       \
        swiglu_backward<T>(gate, up, g, d, n);                                                             \
    }

KERNELS(float, f32)
KERNELS(__nv_bfloat16, bf16)
