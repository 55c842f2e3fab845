// Elementwise kernels and the BLAS-1 reductions (CPU reference:
// src/ops/elementwise/cpu.rs).
// Forward kernels overwrite (`=`), backward kernels accumulate (`+=`).
#include "common.cuh"

// fill_f32: y[0..n) = v.
struct FillParams {
    float v;
    long long n;
};
PARAMS_SIZE(FillParams, 16);
PARAMS_FIELD(FillParams, v, 0);
PARAMS_FIELD(FillParams, n, 8);

// The kernels over n elements told nothing else: copy, relu and mul (forward
// and backward), sum_all_bwd, reduce_partial.
struct LenParams {
    long long n;
};
PARAMS_SIZE(LenParams, 8);
PARAMS_FIELD(LenParams, n, 0);

// copy_elem_f32: y[to] = x[from].
struct CopyElemParams {
    long long from;
    long long to;
};
PARAMS_SIZE(CopyElemParams, 16);
PARAMS_FIELD(CopyElemParams, from, 0);
PARAMS_FIELD(CopyElemParams, to, 8);

// axpy_f32: y (=|+=) a·x over n elements, `add` 0 | 1.
struct AxpyParams {
    float a;
    int add;
    long long n;
};
PARAMS_SIZE(AxpyParams, 16);
PARAMS_FIELD(AxpyParams, a, 0);
PARAMS_FIELD(AxpyParams, add, 4);
PARAMS_FIELD(AxpyParams, n, 8);

// drop_path_fwd/bwd: `total` elements, each sample's mask entry covering
// `per` of them; `add` 0 overwrites, 1 adds.
struct DropPathParams {
    long long per;
    long long total;
    int add;
};
PARAMS_SIZE(DropPathParams, 24);
PARAMS_FIELD(DropPathParams, per, 0);
PARAMS_FIELD(DropPathParams, total, 8);
PARAMS_FIELD(DropPathParams, add, 16);

// axpy_elem_f32: y += w[idx]·x over n elements.
struct AxpyElemParams {
    long long idx;
    long long n;
};
PARAMS_SIZE(AxpyElemParams, 16);
PARAMS_FIELD(AxpyElemParams, idx, 0);
PARAMS_FIELD(AxpyElemParams, n, 8);

// reduce_finish_f32: the sum of `parts` partial sums into out[idx], added to
// it when `accumulate` is 1.
struct ReduceFinishParams {
    int parts;
    int accumulate;
    long long idx;
};
PARAMS_SIZE(ReduceFinishParams, 16);
PARAMS_FIELD(ReduceFinishParams, parts, 0);
PARAMS_FIELD(ReduceFinishParams, accumulate, 4);
PARAMS_FIELD(ReduceFinishParams, idx, 8);

// The channel-scale kernels: x (n, c, hw) scaled per channel by m, whose cm
// entries repeat over the c channels; `add` (bwd_data) 0 overwrites, 1 adds.
struct ChannelScaleParams {
    long long n;
    long long hw;
    int c;
    int cm;
    int add;
};
PARAMS_SIZE(ChannelScaleParams, 32);
PARAMS_FIELD(ChannelScaleParams, n, 0);
PARAMS_FIELD(ChannelScaleParams, hw, 8);
PARAMS_FIELD(ChannelScaleParams, c, 16);
PARAMS_FIELD(ChannelScaleParams, cm, 20);
PARAMS_FIELD(ChannelScaleParams, add, 24);

// y = v                                                     y (n)
extern "C" __global__ void fill_f32(float* y, FillParams args) {
    const float v = args.v;
    const long long n = args.n;
    FOR_EACH(i, n) y[i] = v;
}

// dst = src                                                 (n)
extern "C" __global__ void copy_f32(const float* src, float* dst, LenParams args) {
    const long long n = args.n;
    FOR_EACH(i, n) dst[i] = src[i];
}

// y[to] = x[from]                                           (one thread)
extern "C" __global__ void copy_elem_f32(const float* x, float* y, CopyElemParams args) {
    const long long from = args.from, to = args.to;
    if (blockIdx.x == 0 && threadIdx.x == 0) y[to] = x[from];
}

// y = a·x (add 0) or y += a·x (add 1)                       (n)
extern "C" __global__ void axpy_f32(const float* x, float* y, AxpyParams args) {
    const float a = args.a;
    const long long n = args.n;
    const int add = args.add;
    FOR_EACH(i, n) put(&y[i], a * x[i], add);
}

// y = max(x, 0)
extern "C" __global__ void relu_fwd_f32(const float* x, float* y, LenParams args) {
    const long long n = args.n;
    FOR_EACH(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx += dy·[x > 0]
extern "C" __global__ void relu_bwd_f32(const float* x, const float* dy, float* dx,
                                        LenParams args) {
    const long long n = args.n;
    FOR_EACH(i, n) if (x[i] > 0.0f) dx[i] += dy[i];
}

// y = a ⊙ b
extern "C" __global__ void mul_fwd_f32(const float* a, const float* b, float* y, LenParams args) {
    const long long n = args.n;
    FOR_EACH(i, n) y[i] = a[i] * b[i];
}

// da += dy ⊙ b
extern "C" __global__ void mul_bwd_f32(const float* b, const float* dy, float* da, LenParams args) {
    const long long n = args.n;
    FOR_EACH(i, n) da[i] += dy[i] * b[i];
}

// y[i] (=|+=) x[i]·mask[i / per] — drop path: each of the n samples (per
// elements each) scaled by its mask value, 0 or 1/keep; adding, a term of a
// node's sum of ops.
//                                          x, y (n, c, h, w) = (n·per); mask (n)
extern "C" __global__ void drop_path_fwd_f32(const float* x, const float* mask, float* y,
                                             DropPathParams args) {
    const long long per = args.per, total = args.total;
    const int add = args.add;
    FOR_EACH(i, total) put(&y[i], x[i] * mask[i / per], add);
}

// dx[i] (=|+=) dy[i]·mask[i / per]; no gradient into the mask.
extern "C" __global__ void drop_path_bwd_f32(const float* mask, const float* dy, float* dx,
                                             DropPathParams args) {
    const long long per = args.per, total = args.total;
    const int add = args.add;
    FOR_EACH(i, total) put(&dx[i], dy[i] * mask[i / per], add);
}

// y += w[idx]·x — one term of a mixed edge; the weight stays on the device.
extern "C" __global__ void axpy_elem_f32(const float* w, const float* x, float* y,
                                         AxpyElemParams args) {
    const long long idx = args.idx, n = args.n;
    const float a = w[idx];
    FOR_EACH(i, n) y[i] += a * x[i];
}

// What the mix kernels are told (MixParams of src/ops/elementwise/mod.rs),
// passed by value (832 bytes of kernel parameters): the nt ≤ MIX_MAX terms
// of a mixed node — each term's input, its input's gradient (null: not
// wanted) and its weight's index — and the n elements of y; `add`
// (mix_fwd) 0 overwrites y, 1 adds to it; bit t of `add_mask`
// (mix_bwd_partial) set: term t adds to its gradient rather than
// overwriting it; `parts` (mix_bwd_finish) the partial sums per term.
#define MIX_MAX 40
struct MixParams {
    const float* x[MIX_MAX];
    float* d[MIX_MAX];
    int idx[MIX_MAX];
    int nt;
    int add;
    unsigned long long add_mask;
    long long n;
    int parts;
};
PARAMS_SIZE(MixParams, 832);
PARAMS_FIELD(MixParams, x, 0);
PARAMS_FIELD(MixParams, d, 320);
PARAMS_FIELD(MixParams, idx, 640);
PARAMS_FIELD(MixParams, nt, 800);
PARAMS_FIELD(MixParams, add, 804);
PARAMS_FIELD(MixParams, add_mask, 808);
PARAMS_FIELD(MixParams, n, 816);
PARAMS_FIELD(MixParams, parts, 824);

// y (=|+=) Σ_{t<nt} w[idx_t]·x_t (add = 0 | 1) — a mixed node's forward in
// one pass over y, nt ≤ MIX_MAX. Terms are added in order t = 0, 1, …, as
// on the CPU.                                               y, x_t (n)
extern "C" __global__ void mix_fwd_f32(const float* w, float* y, MixParams T) {
    const int nt = T.nt, add = T.add;
    const long long n = T.n;
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
// (8 accumulators in registers): d_t (=|+=) w[idx_t]·dy (bit t of
// `add_mask` set: add) and, when `part` is not null, the block's Σ dy·x_t in f64 into
// part[t·gridDim.x + b] for mix_bwd_finish_f32.
extern "C" __global__ void mix_bwd_partial_f32(const float* w, const float* dy, double* part,
                                               MixParams T) {
    const int nt = T.nt;
    const unsigned long long add = T.add_mask;
    const long long n = T.n;
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
extern "C" __global__ void mix_bwd_finish_f32(const double* part, float* dw, MixParams T) {
    const int parts = T.parts, nt = T.nt;
    __shared__ double sh[32];
    for (int t = 0; t < nt; ++t) {
        double s = 0.0;
        for (int b = threadIdx.x; b < parts; b += blockDim.x) s += part[(long long)t * parts + b];
        s = block_sum_f64(s, sh);
        if (threadIdx.x == 0) dw[T.idx[t]] += (float)s;
    }
}

// dx += dy[0]
extern "C" __global__ void sum_all_bwd_f32(const float* dy, float* dx, LenParams args) {
    const long long n = args.n;
    const float d = dy[0];
    FOR_EACH(i, n) dx[i] += d;
}

// Stage 1 of every full reduction: partial[blockIdx.x] = Σ over this block's
// grid-stride share of a[i]·b[i] (b null: of a[i]), in f64. Stage 2 sums the
// partials in a fixed order, so the result does not depend on scheduling.
extern "C" __global__ void reduce_partial_f64(const float* a, const float* b, double* partial,
                                              LenParams args) {
    const long long n = args.n;
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
extern "C" __global__ void reduce_finish_f32(const double* partial, float* out,
                                             ReduceFinishParams args) {
    const int parts = args.parts, accumulate = args.accumulate;
    const long long idx = args.idx;
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
extern "C" __global__ void channel_scale_fwd_f32(const float* x, const float* m, float* y,
                                                 ChannelScaleParams args) {
    const long long n = args.n, hw = args.hw;
    const int c = args.c, cm = args.cm;
    FOR_EACH(i, n * c * hw) y[i] = x[i] * m[(int)((i / hw) % c) % cm];
}

// dx (=|+=) dy · m[ch mod cm]
extern "C" __global__ void channel_scale_bwd_data_f32(const float* m, const float* dy, float* dx,
                                                      ChannelScaleParams args) {
    const long long n = args.n, hw = args.hw;
    const int c = args.c, cm = args.cm, add = args.add;
    FOR_EACH(i, n * c * hw) put(&dx[i], dy[i] * m[(int)((i / hw) % c) % cm], add);
}

// dm[k] += Σ over n, the channels ch ≡ k (mod cm) and hw of dy · x, summed
// in f64; one block per k (grid cm), in a fixed order: deterministic.
extern "C" __global__ void channel_scale_bwd_m_f32(const float* x, const float* dy, float* dm,
                                                   ChannelScaleParams args) {
    const long long n = args.n, hw = args.hw;
    const int c = args.c, cm = args.cm;
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
