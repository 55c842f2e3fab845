// Elementwise kernels and the BLAS-1 reductions (CPU reference:
// src/ops/elementwise/cpu.rs).
// Forward kernels overwrite (`=`), backward kernels accumulate (`+=`).
#include "common.cuh"

// y = v                                                     y (n)
extern "C" __global__ void fill_f32(float* y, float v, long long n) {
    FOR_EACH(i, n) y[i] = v;
}

// dst = src                                                 (n)
extern "C" __global__ void copy_f32(const float* src, float* dst, long long n) {
    FOR_EACH(i, n) dst[i] = src[i];
}

// y[to] = x[from]                                           (one thread)
extern "C" __global__ void copy_elem_f32(const float* x, long long from, float* y, long long to) {
    if (blockIdx.x == 0 && threadIdx.x == 0) y[to] = x[from];
}

// y = a·x (add 0) or y += a·x (add 1)                       (n)
extern "C" __global__ void axpy_f32(float a, const float* x, float* y, long long n, int add) {
    FOR_EACH(i, n) put(&y[i], a * x[i], add);
}

// y = max(x, 0)
extern "C" __global__ void relu_fwd_f32(const float* x, float* y, long long n) {
    FOR_EACH(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx += dy·[x > 0]
extern "C" __global__ void relu_bwd_f32(const float* x, const float* dy, float* dx, long long n) {
    FOR_EACH(i, n) if (x[i] > 0.0f) dx[i] += dy[i];
}

// y = a ⊙ b
extern "C" __global__ void mul_fwd_f32(const float* a, const float* b, float* y, long long n) {
    FOR_EACH(i, n) y[i] = a[i] * b[i];
}

// da += dy ⊙ b
extern "C" __global__ void mul_bwd_f32(const float* b, const float* dy, float* da, long long n) {
    FOR_EACH(i, n) da[i] += dy[i] * b[i];
}

// y[i] (=|+=) x[i]·mask[i / per] — drop path: each of the n samples (per
// elements each) scaled by its mask value, 0 or 1/keep; adding, a term of a
// node's sum of ops.
//                                          x, y (n, c, h, w) = (n·per); mask (n)
extern "C" __global__ void drop_path_fwd_f32(const float* x, const float* mask, float* y,
                                             long long per, long long total, int add) {
    FOR_EACH(i, total) put(&y[i], x[i] * mask[i / per], add);
}

// dx[i] (=|+=) dy[i]·mask[i / per]; no gradient into the mask.
extern "C" __global__ void drop_path_bwd_f32(const float* mask, const float* dy, float* dx,
                                             long long per, long long total, int add) {
    FOR_EACH(i, total) put(&dx[i], dy[i] * mask[i / per], add);
}

// y += w[idx]·x — one term of a mixed edge; the weight stays on the device.
extern "C" __global__ void axpy_elem_f32(const float* w, long long idx, const float* x, float* y,
                                         long long n) {
    const float a = w[idx];
    FOR_EACH(i, n) y[i] += a * x[i];
}

// The terms of a mixed node, passed by value (800 bytes of kernel
// parameters): each term's input, its input's gradient (null: not wanted)
// and its weight's index. The layout is `MixTerms` of
// src/ops/elementwise/cuda.rs.
#define MIX_MAX 40
struct MixTerms {
    const float* x[MIX_MAX];
    float* d[MIX_MAX];
    int idx[MIX_MAX];
};

// y (=|+=) Σ_{t<nt} w[idx_t]·x_t (add = 0 | 1) — a mixed node's forward in
// one pass over y, nt ≤ MIX_MAX. Terms are added in order t = 0, 1, …, as
// on the CPU.                                               y, x_t (n)
extern "C" __global__ void mix_fwd_f32(const float* w, MixTerms T, int nt, int add, float* y, long long n) {
    __shared__ float a[MIX_MAX];
    if (threadIdx.x < nt) a[threadIdx.x] = w[T.idx[threadIdx.x]];
    __syncthreads();
    FOR_EACH(i, n) {
        float acc = add ? y[i] : 0.0f;
        for (int t = 0; t < nt; ++t) acc += a[t] * T.x[t][i];
        y[i] = acc;
    }
}

// A mixed node's backward, y = Σ_t w[idx_t]·x_t, in one launch for up to
// MIX_MAX terms: block (b, g) takes terms 8g … 8g + 7 in one pass over dy
// (8 accumulators in registers): d_t (=|+=) w[idx_t]·dy (bit t of `add`
// set: add) and, when `part` is not null, the block's Σ dy·x_t in f64 into
// part[t·gridDim.x + b] for mix_bwd_finish_f32.
extern "C" __global__ void mix_bwd_partial_f32(const float* w, const float* dy, MixTerms T, int nt,
                                               unsigned long long add, double* part, long long n) {
    __shared__ double sh[32];
    const int t0 = blockIdx.y * 8;
    const int m = nt - t0 < 8 ? nt - t0 : 8;
    const float* xs[8];
    float* ds[8];
    float a[8];
    double s[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) {
        xs[t] = t < m ? T.x[t0 + t] : nullptr;
        ds[t] = t < m ? T.d[t0 + t] : nullptr;
        a[t] = t < m ? w[T.idx[t0 + t]] : 0.0f;
        s[t] = 0.0;
    }
    FOR_EACH(i, n) {
        const float g = dy[i];
#pragma unroll
        for (int t = 0; t < 8; ++t) {
            if (t >= m) continue;
            if (ds[t]) put(&ds[t][i], a[t] * g, (int)((add >> (t0 + t)) & 1ull));
            if (part) s[t] += (double)g * (double)xs[t][i];
        }
    }
    if (!part) return;
    for (int t = 0; t < m; ++t) {
        const double v = block_sum_f64(s[t], sh);
        if (threadIdx.x == 0) part[(long long)(t0 + t) * gridDim.x + blockIdx.x] = v;
    }
}

// dw[idx_t] += Σ_b part[t·parts + b] for each of the nt terms; one block.
extern "C" __global__ void mix_bwd_finish_f32(const double* part, int parts, MixTerms T, int nt, float* dw) {
    __shared__ double sh[32];
    for (int t = 0; t < nt; ++t) {
        double s = 0.0;
        for (int b = threadIdx.x; b < parts; b += blockDim.x) s += part[(long long)t * parts + b];
        s = block_sum_f64(s, sh);
        if (threadIdx.x == 0) dw[T.idx[t]] += (float)s;
    }
}

// dx += dy[0]
extern "C" __global__ void sum_all_bwd_f32(const float* dy, float* dx, long long n) {
    const float d = dy[0];
    FOR_EACH(i, n) dx[i] += d;
}

// Stage 1 of every full reduction: partial[blockIdx.x] = Σ over this block's
// grid-stride share of a[i]·b[i] (b null: of a[i]), in f64. Stage 2 sums the
// partials in a fixed order, so the result does not depend on scheduling.
extern "C" __global__ void reduce_partial_f64(const float* a, const float* b, long long n,
                                              double* partial) {
    __shared__ double sh[32];
    double s = 0.0;
    if (b) {
        FOR_EACH(i, n) s += (double)a[i] * (double)b[i];
    } else {
        FOR_EACH(i, n) s += (double)a[i];
    }
    s = block_sum_f64(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2, one block: s = Σ partial; out[idx] = s (accumulate = 0) or
// out[idx] += s (accumulate = 1), rounded to f32.
extern "C" __global__ void reduce_finish_f32(const double* partial, int parts, float* out,
                                             long long idx, int accumulate) {
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) s += partial[i];
    s = block_sum_f64(s, sh);
    if (threadIdx.x == 0) {
        if (accumulate) out[idx] += (float)s;
        else out[idx] = (float)s;
    }
}

// ---- per-channel factors (the width search's channel mask mix) ------------
// x, y, dy (n, c, hw); m (cm): channel ch takes factor m[ch mod cm] (cm
// divides c: networks side by side share the factors).

// y = x · m[ch mod cm]
extern "C" __global__ void channel_scale_fwd_f32(const float* x, const float* m, float* y, long long n, int c,
                                                 long long hw, int cm) {
    FOR_EACH(i, n * c * hw) y[i] = x[i] * m[(int)((i / hw) % c) % cm];
}

// dx (=|+=) dy · m[ch mod cm]
extern "C" __global__ void channel_scale_bwd_data_f32(const float* m, const float* dy, float* dx, long long n,
                                                      int c, long long hw, int cm, int add) {
    FOR_EACH(i, n * c * hw) put(&dx[i], dy[i] * m[(int)((i / hw) % c) % cm], add);
}

// dm[k] += Σ over n, the channels ch ≡ k (mod cm) and hw of dy · x, summed
// in f64; one block per k (grid cm), in a fixed order: deterministic.
extern "C" __global__ void channel_scale_bwd_m_f32(const float* x, const float* dy, float* dm, long long n, int c,
                                                   long long hw, int cm) {
    __shared__ double shared[32];
    const int k = blockIdx.x, per = c / cm;
    const long long len = n * per * hw;
    double acc = 0.0;
    for (long long j = threadIdx.x; j < len; j += blockDim.x) {
        const long long b = j / (per * hw), r = j % (per * hw);
        const long long ch = (long long)(r / hw) * cm + k;
        const long long at = (b * c + ch) * hw + r % hw;
        acc += (double)dy[at] * (double)x[at];
    }
    acc = block_sum_f64(acc, shared);
    if (threadIdx.x == 0) dm[k] += (float)acc;
}
