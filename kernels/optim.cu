// Optimizer updates over tensor lists, one launch for every tensor of a
// network (CPU reference: src/ops/optim/cpu.rs). Per-step values (learning
// rates, Adam's t, the clip factor, DARTS' ε) are read from the step-scalar
// buffer `sc`, not passed as arguments, so that a captured step stays right.
#include "common.cuh"

// sgd_list_f32: the `tensors` tensors of a list table, stepped at the rate
// sc[lr_at] with their gradients scaled by sc[scale_at]; momentum mu, weight
// decay wd, Nesterov's momentum when `nesterov` is 1.
struct SgdParams {
    int tensors;
    int lr_at;
    int scale_at;
    float mu;
    float wd;
    int nesterov;
};
PARAMS_SIZE(SgdParams, 24);
PARAMS_FIELD(SgdParams, tensors, 0);
PARAMS_FIELD(SgdParams, lr_at, 4);
PARAMS_FIELD(SgdParams, scale_at, 8);
PARAMS_FIELD(SgdParams, mu, 12);
PARAMS_FIELD(SgdParams, wd, 16);
PARAMS_FIELD(SgdParams, nesterov, 20);

// adam_list_f32: the `tensors` tensors of a list table, at the rate sc[lr_at],
// step count sc[t_at]; betas b1, b2, eps and weight decay wd.
struct AdamParams {
    int tensors;
    int lr_at;
    int t_at;
    float b1;
    float b2;
    float eps;
    float wd;
};
PARAMS_SIZE(AdamParams, 28);
PARAMS_FIELD(AdamParams, tensors, 0);
PARAMS_FIELD(AdamParams, lr_at, 4);
PARAMS_FIELD(AdamParams, t_at, 8);
PARAMS_FIELD(AdamParams, b1, 12);
PARAMS_FIELD(AdamParams, b2, 16);
PARAMS_FIELD(AdamParams, eps, 20);
PARAMS_FIELD(AdamParams, wd, 24);

// couple_list_f32: RARTS's coupling β over the `tensors` tensors of a list table.
struct CoupleParams {
    int tensors;
    float beta;
};
PARAMS_SIZE(CoupleParams, 8);
PARAMS_FIELD(CoupleParams, tensors, 0);
PARAMS_FIELD(CoupleParams, beta, 4);

// sumsq_list_partial_f64: the `tensors` tensors of a list table.
struct ListParams {
    int tensors;
};
PARAMS_SIZE(ListParams, 4);
PARAMS_FIELD(ListParams, tensors, 0);

// norm_finish_f32: the sum of `parts` partial sums into sc[at], then what
// `mode` asks of slots a, b, c (a clip factor up to maxv).
struct NormFinishParams {
    int parts;
    int at;
    int mode;
    int a;
    int b;
    int c;
    float maxv;
};
PARAMS_SIZE(NormFinishParams, 28);
PARAMS_FIELD(NormFinishParams, parts, 0);
PARAMS_FIELD(NormFinishParams, at, 4);
PARAMS_FIELD(NormFinishParams, mode, 8);
PARAMS_FIELD(NormFinishParams, a, 12);
PARAMS_FIELD(NormFinishParams, b, 16);
PARAMS_FIELD(NormFinishParams, c, 20);
PARAMS_FIELD(NormFinishParams, maxv, 24);

// lincomb_list_f32: Σ of up to three terms k_i·sc[a_i]·(list slot i) over the
// `tensors` tensors of a list table; `add` 0 overwrites, 1 adds.
struct LincombParams {
    int tensors;
    int nterms;
    float k0;
    int a0;
    float k1;
    int a1;
    float k2;
    int a2;
    int add;
};
PARAMS_SIZE(LincombParams, 36);
PARAMS_FIELD(LincombParams, tensors, 0);
PARAMS_FIELD(LincombParams, nterms, 4);
PARAMS_FIELD(LincombParams, k0, 8);
PARAMS_FIELD(LincombParams, a0, 12);
PARAMS_FIELD(LincombParams, k1, 16);
PARAMS_FIELD(LincombParams, a1, 20);
PARAMS_FIELD(LincombParams, k2, 24);
PARAMS_FIELD(LincombParams, a2, 28);
PARAMS_FIELD(LincombParams, add, 32);

// A tensor list of T tensors and L pointers per tensor, as the launcher
// builds it (src/ops/optim/cuda.rs): tab[0..T] the first element of each
// tensor in one flat index space (tab[0] = 0, tab[T] = the total), then the
// base addresses, list by list: tab[T + 1 + l·T + t]. Tensors are never
// empty, so the starts strictly increase.
__device__ __forceinline__ int list_find(const long long* tab, int T, long long i) {
    int lo = 0, hi = T - 1;  // the last t with tab[t] <= i
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (tab[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

__device__ __forceinline__ float* list_ptr(const long long* tab, int T, int l, int t) {
    return (float*)tab[T + 1 + (long long)l * T + t];
}

// SGD with momentum; lists p, grad, buf:
// d = s·grad + wd·p; buf = μ·buf + d; p -= lr·buf, or with Nesterov momentum
// p -= lr·(d + μ·buf) (lr = sc[lr_at], s = sc[scale_at]).
extern "C" __global__ void sgd_list_f32(const long long* tab, const float* sc, SgdParams args) {
    const int T = args.tensors, lr_at = args.lr_at, scale_at = args.scale_at,
              nesterov = args.nesterov;
    const float mu = args.mu, wd = args.wd;
    const float lr = sc[lr_at], s = sc[scale_at];
    FOR_EACH(i, tab[T]) {
        const int t = list_find(tab, T, i);
        const long long e = i - tab[t];
        float* p = list_ptr(tab, T, 0, t);
        const float* grad = list_ptr(tab, T, 1, t);
        float* buf = list_ptr(tab, T, 2, t);
        const float d = s * grad[e] + wd * p[e];
        const float b = mu * buf[e] + d;
        buf[e] = b;
        p[e] -= lr * (nesterov ? d + mu * b : b);
    }
}

// Adam, coupled L2; lists p, grad, m, v: d = grad + wd·p; m = β1·m + (1−β1)·d;
// v = β2·v + (1−β2)·d²; p -= lr/c1·m / (√v/c2 + ε), c1 = 1 − β1ᵗ, c2 = √(1 − β2ᵗ)
// (powers in double, rounded to float, as the CPU), lr = sc[lr_at], t = sc[t_at].
extern "C" __global__ void adam_list_f32(const long long* tab, const float* sc, AdamParams args) {
    const int T = args.tensors, lr_at = args.lr_at, t_at = args.t_at;
    const float b1 = args.b1, b2 = args.b2, eps = args.eps, wd = args.wd;
    const float lr = sc[lr_at];
    const double t = (double)(int)sc[t_at];
    const float c1 = (float)(1.0 - pow((double)b1, t));
    const float c2 = sqrtf((float)(1.0 - pow((double)b2, t)));
    FOR_EACH(i, tab[T]) {
        const int k = list_find(tab, T, i);
        const long long e = i - tab[k];
        float* p = list_ptr(tab, T, 0, k);
        const float* grad = list_ptr(tab, T, 1, k);
        float* m = list_ptr(tab, T, 2, k);
        float* v = list_ptr(tab, T, 3, k);
        const float d = grad[e] + wd * p[e];
        const float mi = b1 * m[e] + (1.0f - b1) * d;
        const float vi = b2 * v[e] + (1.0f - b2) * d * d;
        m[e] = mi;
        v[e] = vi;
        p[e] -= lr / c1 * mi / (sqrtf(vi) / c2 + eps);
    }
}

// RARTS coupling; lists p, other, grad: grad += β·(p − other).
extern "C" __global__ void couple_list_f32(const long long* tab, CoupleParams args) {
    const int T = args.tensors;
    const float beta = args.beta;
    FOR_EACH(i, tab[T]) {
        const int t = list_find(tab, T, i);
        const long long e = i - tab[t];
        const float* p = list_ptr(tab, T, 0, t);
        const float* other = list_ptr(tab, T, 1, t);
        float* grad = list_ptr(tab, T, 2, t);
        grad[e] += beta * (p[e] - other[e]);
    }
}

// Stage 1 of the norm; list x: partial[block] = Σ x² over the block's elements, in double.
extern "C" __global__ void sumsq_list_partial_f64(const long long* tab, double* partial,
                                                  ListParams args) {
    const int T = args.tensors;
    __shared__ double sh[32];
    double s = 0.0;
    FOR_EACH(i, tab[T]) {
        const int t = list_find(tab, T, i);
        const double v = (double)list_ptr(tab, T, 0, t)[i - tab[t]];
        s += v * v;
    }
    s = block_sum_f64(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2, one block: norm = √Σ partial → sc[at]; then by `mode`:
// 1 (clip): sc[a] = max < 0 ? 1 : min(1, max / (norm + 1e-6));
// 2 (DARTS' perturbation): ε = 0.01 / max(norm, 1e-12) → sc[b], sc[c] = sc[a] / (2ε).
extern "C" __global__ void norm_finish_f32(const double* partial, float* sc,
                                           NormFinishParams args) {
    const int parts = args.parts, at = args.at, mode = args.mode, a = args.a, b = args.b,
              c = args.c;
    const float maxv = args.maxv;
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) s += partial[i];
    s = block_sum_f64(s, sh);
    if (threadIdx.x != 0) return;
    const double norm = sqrt(s);
    sc[at] = (float)norm;
    if (mode == 1) {
        sc[a] = maxv < 0.0f ? 1.0f : (float)fmin(1.0, (double)maxv / (norm + 1e-6));
    } else if (mode == 2) {
        const double e = 0.01 / fmax(norm, 1e-12);
        sc[b] = (float)e;
        sc[c] = (float)((double)sc[a] / (2.0 * e));
    }
}

// out (=|+=) Σ_j c_j·x_j over one to three terms; lists out, x0, x1, x2 (the
// first 1 + nterms); c_j = k_j · (a_j < 0 ? 1 : sc[a_j]); add = 0 | 1.
extern "C" __global__ void lincomb_list_f32(const long long* tab, const float* sc,
                                            LincombParams args) {
    const int T = args.tensors, nterms = args.nterms, a0 = args.a0, a1 = args.a1, a2 = args.a2,
              add = args.add;
    const float k0 = args.k0, k1 = args.k1, k2 = args.k2;
    const float c0 = a0 < 0 ? k0 : k0 * sc[a0];
    const float c1 = a1 < 0 ? k1 : k1 * sc[a1];
    const float c2 = a2 < 0 ? k2 : k2 * sc[a2];
    FOR_EACH(i, tab[T]) {
        const int t = list_find(tab, T, i);
        const long long e = i - tab[t];
        float* out = list_ptr(tab, T, 0, t);
        float acc = add ? out[e] + c0 * list_ptr(tab, T, 1, t)[e] : c0 * list_ptr(tab, T, 1, t)[e];
        if (nterms > 1) acc += c1 * list_ptr(tab, T, 2, t)[e];
        if (nterms > 2) acc += c2 * list_ptr(tab, T, 3, t)[e];
        out[e] = acc;
    }
}
