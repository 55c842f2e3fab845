// BatchNorm over (n, c, hw), statistics per channel over n·hw values
// (CPU reference: src/ops/bn/cpu.rs). One block per channel computes the
// statistics in f64, two passes (mean, then Σ(x − μ)²: no cancellation),
// and then applies them, so each op is a single launch.
#include "common.cuh"

// y = γ·(x − μ_B)·inv + β; saved (2c) = [μ_B, inv = 1/√(σ²_B + ε)];
// running stats r = (1 − m)·r + m·stat with the unbiased variance.
// gamma/beta may be null (γ = 1, β = 0). grid c, block BLOCK.
extern "C" __global__ void bn_fwd_train_f32(const float* x, const float* gamma, const float* beta,
                                            float* y, float* saved, float* running_mean,
                                            float* running_var, int n, int c, int hw, float eps,
                                            float momentum) {
    __shared__ double sh[32];
    __shared__ double slot;
    const int ch = blockIdx.x;
    const long long cnt = (long long)n * hw;
    double s = 0.0;
    for (long long j = threadIdx.x; j < cnt; j += blockDim.x)
        s += (double)x[((j / hw) * c + ch) * hw + j % hw];
    const double mean = block_bcast_f64(block_sum_f64(s, sh), &slot) / (double)cnt;
    double q = 0.0;
    for (long long j = threadIdx.x; j < cnt; j += blockDim.x) {
        const double d = (double)x[((j / hw) * c + ch) * hw + j % hw] - mean;
        q += d * d;
    }
    const double var = block_bcast_f64(block_sum_f64(q, sh), &slot) / (double)cnt;
    const float mean_f = (float)mean;
    const float inv_f = (float)(1.0 / sqrt(var + (double)eps));
    if (threadIdx.x == 0) {
        const double m = (double)momentum;
        const double unbiased = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
        saved[ch] = mean_f;
        saved[c + ch] = inv_f;
        running_mean[ch] = (float)((1.0 - m) * (double)running_mean[ch] + m * mean);
        running_var[ch] = (float)((1.0 - m) * (double)running_var[ch] + m * unbiased);
    }
    const float sc = inv_f * (gamma ? gamma[ch] : 1.0f);
    const float b = beta ? beta[ch] : 0.0f;
    for (long long j = threadIdx.x; j < cnt; j += blockDim.x) {
        const long long i = ((j / hw) * c + ch) * hw + j % hw;
        y[i] = (x[i] - mean_f) * sc + b;
    }
}

// Evaluation: y = γ·(x − r_μ)/√(r_σ² + ε) + β; one thread per element.
extern "C" __global__ void bn_fwd_eval_f32(const float* x, const float* gamma, const float* beta,
                                           const float* running_mean, const float* running_var,
                                           float* y, int n, int c, int hw, float eps) {
    const long long total = (long long)n * c * hw;
    FOR_EACH(i, total) {
        const int ch = (int)((i / hw) % c);
        const float inv = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
        const float sc = inv * (gamma ? gamma[ch] : 1.0f);
        const float b = beta ? beta[ch] : 0.0f;
        y[i] = (x[i] - running_mean[ch]) * sc + b;
    }
}

// Training backward from x and saved = [μ, inv]; x̂ = (x − μ)·inv:
// dγ += Σ dy·x̂, dβ += Σ dy, dx += γ·inv·(dy − Σdy/N − x̂·Σ(dy·x̂)/N).
// Any of dx, dgamma, dbeta may be null. grid c, block BLOCK.
extern "C" __global__ void bn_bwd_f32(const float* x, const float* gamma, const float* saved,
                                      const float* dy, float* dx, float* dgamma, float* dbeta,
                                      int n, int c, int hw) {
    __shared__ double sh[32];
    __shared__ double slot;
    const int ch = blockIdx.x;
    const long long cnt = (long long)n * hw;
    const float mean = saved[ch], inv = saved[c + ch];
    double sd = 0.0, sdx = 0.0;
    for (long long j = threadIdx.x; j < cnt; j += blockDim.x) {
        const long long i = ((j / hw) * c + ch) * hw + j % hw;
        const float xh = (x[i] - mean) * inv;
        sd += (double)dy[i];
        sdx += (double)(dy[i] * xh);
    }
    const double sum_dy = block_bcast_f64(block_sum_f64(sd, sh), &slot);
    const double sum_dy_xhat = block_bcast_f64(block_sum_f64(sdx, sh), &slot);
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
        if (dbeta) dbeta[ch] += (float)sum_dy;
    }
    if (!dx) return;
    const float kk = (gamma ? gamma[ch] : 1.0f) * inv;
    const float a = (float)(sum_dy / (double)cnt);
    const float b = (float)(sum_dy_xhat / (double)cnt);
    for (long long j = threadIdx.x; j < cnt; j += blockDim.x) {
        const long long i = ((j / hw) * c + ch) * hw + j % hw;
        const float xh = (x[i] - mean) * inv;
        dx[i] += kk * (dy[i] - a - xh * b);
    }
}
