// Optimizer updates, one fused pass per parameter tensor (CPU reference:
// src/ops/optim/cpu.rs).
#include "common.cuh"

// SGD with momentum: d = s·grad + wd·p; buf = μ·buf + d; p -= lr·buf
extern "C" __global__ void sgd_step_f32(float* p, const float* grad, float* buf, float lr, float mu,
                                        float wd, float s, long long n) {
    FOR_EACH(i, n) {
        const float d = s * grad[i] + wd * p[i];
        const float b = mu * buf[i] + d;
        buf[i] = b;
        p[i] -= lr * b;
    }
}

// Adam, coupled L2: d = s·grad + wd·p; m = β1·m + (1−β1)·d; v = β2·v + (1−β2)·d²;
// p -= lr/c1·m / (√v/c2 + ε) with c1 = 1 − β1ᵗ, c2 = √(1 − β2ᵗ) from the host.
extern "C" __global__ void adam_step_f32(float* p, const float* grad, float* m, float* v, float lr,
                                         float b1, float b2, float eps, float wd, float s, float c1,
                                         float c2, long long n) {
    FOR_EACH(i, n) {
        const float d = s * grad[i] + wd * p[i];
        const float mi = b1 * m[i] + (1.0f - b1) * d;
        const float vi = b2 * v[i] + (1.0f - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr / c1 * mi / (sqrtf(vi) / c2 + eps);
    }
}

// RARTS coupling: grad += β·(p − other)
extern "C" __global__ void couple_f32(float beta, const float* p, const float* other, float* grad,
                                      long long n) {
    FOR_EACH(i, n) grad[i] += beta * (p[i] - other[i]);
}
