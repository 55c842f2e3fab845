// Optimizer updates over tensor lists, one launch for every tensor of a
// network (CPU reference: src/ops/optim/cpu.rs). Per-step values (learning
// rates, Adam's t, the clip factor, DARTS' ε) are read from the step-scalar
// buffer `sc`, not passed as arguments, so that a captured step stays right.
#include "common.cuh"

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
extern "C" __global__ void sgd_list_f32(const long long* tab, int T, const float* sc, int lr_at, int scale_at,
                                        float mu, float wd, int nesterov) {
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
extern "C" __global__ void adam_list_f32(const long long* tab, int T, const float* sc, int lr_at, int t_at,
                                         float b1, float b2, float eps, float wd) {
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
extern "C" __global__ void couple_list_f32(const long long* tab, int T, float beta) {
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
extern "C" __global__ void sumsq_list_partial_f64(const long long* tab, int T, double* partial) {
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
extern "C" __global__ void norm_finish_f32(const double* partial, int parts, float* sc, int at, int mode, int a,
                                           int b, int c, float maxv) {
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
extern "C" __global__ void lincomb_list_f32(const long long* tab, int T, const float* sc, int nterms, float k0,
                                            int a0, float k1, int a1, float k2, int a2, int add) {
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
