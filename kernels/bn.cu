// BatchNorm over (n, c, hw), statistics per channel over n·hw values
// (CPU reference: src/ops/bn/cpu.rs), in f64. Training forward and backward
// take two launches each over a grid (c, B): partial sums per block, then
// each block adds its channel's B partials in order (deterministic) and
// applies them to its share. A channel small enough for one block (B = 1)
// takes one launch instead (the `_fused` kernels): the same sums, kept in
// the block rather than written out and read back, so the same results.
#include "common.cuh"

// What every BatchNorm kernel is told (BnParams of src/ops/bn/mod.rs): x is
// (n, c, hw); eps and momentum as PyTorch's; `add` (backward) 0 overwrites
// dx, 1 adds to it; each of a channel's blocks takes `chunk` of its n·hw values;
// `parts` (bn_fwd_merged_f32) the moments per channel a chain's launch left.
struct BnParams {
    int n;
    int c;
    int hw;
    float eps;
    float momentum;
    int add;
    long long chunk;
    int parts;
};
PARAMS_SIZE(BnParams, 40);
PARAMS_FIELD(BnParams, n, 0);
PARAMS_FIELD(BnParams, c, 4);
PARAMS_FIELD(BnParams, hw, 8);
PARAMS_FIELD(BnParams, eps, 12);
PARAMS_FIELD(BnParams, momentum, 16);
PARAMS_FIELD(BnParams, add, 20);
PARAMS_FIELD(BnParams, chunk, 24);
PARAMS_FIELD(BnParams, parts, 32);

// Element j (0 ≤ j < n·hw) of channel ch.
__device__ __forceinline__ long long bn_at(long long j, int c, int hw, int ch) {
    return ((j / hw) * c + ch) * hw + j % hw;
}

// Block (ch, b)'s two sums, summed over the block, into its slot of part.
__device__ __forceinline__ void bn_put_partials(double* part, double v0, double v1, double* sh) {
    v0 = block_sum_f64(v0, sh);
    v1 = block_sum_f64(v1, sh);
    if (threadIdx.x == 0) {
        part[((long long)blockIdx.x * gridDim.y + blockIdx.y) * 2] = v0;
        part[((long long)blockIdx.x * gridDim.y + blockIdx.y) * 2 + 1] = v1;
    }
}

// Channel blockIdx.x's two sums over its B partials, added in order.
__device__ __forceinline__ void bn_sum_partials(const double* part, double* v0, double* v1) {
    *v0 = 0.0;
    *v1 = 0.0;
    for (int z = 0; z < (int)gridDim.y; ++z) {
        *v0 += part[((long long)blockIdx.x * gridDim.y + z) * 2];
        *v1 += part[((long long)blockIdx.x * gridDim.y + z) * 2 + 1];
    }
}

// Training forward, two launches over a grid (c, B): block (ch, b) covers
// elements [b·chunk, (b + 1)·chunk) of channel ch, so a channel's n·hw values
// are read by B blocks, not one.
//
// part[(ch·B + b)·2 + {0, 1}] = Σ (x − s), Σ (x − s)² over the block's share,
// s the channel's first element: the shift keeps the one-pass variance free
// of cancellation (as on the CPU, src/ops/bn/cpu.rs).
// This thread's share of block (ch, b)'s two sums.
__device__ __forceinline__ void bn_stats_thread(const float* x, int n, int c, int hw, long long chunk, double* s1,
                                                double* s2) {
    const int ch = blockIdx.x, b = blockIdx.y;
    const long long cnt = (long long)n * hw;
    const long long j0 = b * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
    const double s = (double)x[bn_at(0, c, hw, ch)];
    *s1 = 0.0;
    *s2 = 0.0;
    for (long long j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        const double d = (double)x[bn_at(j, c, hw, ch)] - s;
        *s1 += d;
        *s2 += d * d;
    }
}

extern "C" __global__ void bn_stats_partial_f32(const float* x, double* part, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw;
    const long long chunk = args.chunk;
    __shared__ double sh[32];
    double s1, s2;
    bn_stats_thread(x, n, c, hw, chunk, &s1, &s2);
    bn_put_partials(part, s1, s2, sh);
}

// The channel's statistics from its B partials (added in order), then
// y = γ·(x − μ_B)·inv + β over the block's share; block 0 of each channel
// writes saved (2c) = [μ_B, inv = 1/√(σ²_B + ε)] and the running statistics
// r = (1 − m)·r + m·stat (the variance unbiased). gamma/beta may be null.
__device__ __forceinline__ void bn_fwd_apply_stats(const float* x, double mean, double var, const float* gamma,
                                                   const float* beta, float* y, float* saved, float* running_mean,
                                                   float* running_var, int n, int c, int hw, float eps,
                                                   float momentum, long long chunk) {
    const int ch = blockIdx.x, b = blockIdx.y;
    const long long cnt = (long long)n * hw;
    const float mean_f = (float)mean;
    const float inv_f = (float)(1.0 / sqrt(var + (double)eps));
    if (b == 0 && threadIdx.x == 0) {
        const double m = (double)momentum;
        const double unbiased = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
        saved[ch] = mean_f;
        saved[c + ch] = inv_f;
        running_mean[ch] = (float)((1.0 - m) * (double)running_mean[ch] + m * mean);
        running_var[ch] = (float)((1.0 - m) * (double)running_var[ch] + m * unbiased);
    }
    const float sc = inv_f * (gamma ? gamma[ch] : 1.0f);
    const float bb = beta ? beta[ch] : 0.0f;
    const long long j0 = b * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
    for (long long j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        const long long i = bn_at(j, c, hw, ch);
        y[i] = (x[i] - mean_f) * sc + bb;
    }
}

// The shifted sums' mean and variance, then as above.
__device__ __forceinline__ void bn_fwd_finish(const float* x, double s1, double s2, const float* gamma,
                                              const float* beta, float* y, float* saved, float* running_mean,
                                              float* running_var, int n, int c, int hw, float eps, float momentum,
                                              long long chunk) {
    const long long cnt = (long long)n * hw;
    const double d = s1 / (double)cnt;
    const double mean = (double)x[bn_at(0, c, hw, blockIdx.x)] + d;
    const double q = s2 / (double)cnt - d * d;
    bn_fwd_apply_stats(x, mean, q > 0.0 ? q : 0.0, gamma, beta, y, saved, running_mean, running_var, n, c, hw, eps,
                       momentum, chunk);
}

// The second launch of a chain (after chain_fwd_f32 of conv.cu), over the
// grid (c, B) of bn_fwd_apply_f32: the channel's `parts` moments
// part[(ch·parts + z)·3 + {0, 1, 2}] = (count, mean, M2) merged in order z
// (Chan's formula, as the CPU merges its planes'), then as above.
extern "C" __global__ void bn_fwd_merged_f32(const float* x, const double* part, const float* gamma,
                                             const float* beta, float* y, float* saved, float* running_mean,
                                             float* running_var, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw, parts = args.parts;
    __shared__ double stats[2];
    if (threadIdx.x == 0) {
        double cnt = 0.0, mean = 0.0, m2 = 0.0;
        for (int z = 0; z < parts; ++z) {
            const double* q = part + ((long long)blockIdx.x * parts + z) * 3;
            if (q[0] == 0.0) continue;
            const double all = cnt + q[0], delta = q[1] - mean;
            mean += delta * (q[0] / all);
            m2 += q[2] + delta * delta * (cnt * q[0] / all);
            cnt = all;
        }
        stats[0] = mean;
        stats[1] = cnt > 0.0 ? m2 / cnt : 0.0;
    }
    __syncthreads();
    bn_fwd_apply_stats(x, stats[0], stats[1], gamma, beta, y, saved, running_mean, running_var, n, c, hw, args.eps,
                       args.momentum, args.chunk);
}

// Launch 2 of 2: the statistics from the channel's B partials, then as above.
extern "C" __global__ void bn_fwd_apply_f32(const float* x, const double* part, const float* gamma,
                                            const float* beta, float* y, float* saved,
                                            float* running_mean, float* running_var, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw;
    const float eps = args.eps, momentum = args.momentum;
    const long long chunk = args.chunk;
    double s1, s2;
    bn_sum_partials(part, &s1, &s2);
    bn_fwd_finish(x, s1, s2, gamma, beta, y, saved, running_mean, running_var, n, c, hw, eps, momentum, chunk);
}

// Both launches in one for a grid (c, 1): block ch sums its whole channel
// (chunk = n·hw) and applies the statistics.
extern "C" __global__ void bn_fwd_fused_f32(const float* x, const float* gamma, const float* beta,
                                            float* y, float* saved, float* running_mean,
                                            float* running_var, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw;
    const float eps = args.eps, momentum = args.momentum;
    const long long chunk = args.chunk;
    __shared__ double sh[32];
    __shared__ double slot;
    double s1, s2;
    bn_stats_thread(x, n, c, hw, chunk, &s1, &s2);
    s1 = block_bcast_f64(block_sum_f64(s1, sh), &slot);
    s2 = block_bcast_f64(block_sum_f64(s2, sh), &slot);
    bn_fwd_finish(x, s1, s2, gamma, beta, y, saved, running_mean, running_var, n, c, hw, eps, momentum, chunk);
}

// Evaluation: y = γ·(x − r_μ)/√(r_σ² + ε) + β; one thread per element.
extern "C" __global__ void bn_fwd_eval_f32(const float* x, const float* gamma, const float* beta,
                                           const float* running_mean, const float* running_var,
                                           float* y, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw;
    const float eps = args.eps;
    const long long total = (long long)n * c * hw;
    FOR_EACH(i, total) {
        const int ch = (int)((i / hw) % c);
        const float inv = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
        const float sc = inv * (gamma ? gamma[ch] : 1.0f);
        const float b = beta ? beta[ch] : 0.0f;
        y[i] = (x[i] - running_mean[ch]) * sc + b;
    }
}

// Training backward from x and saved = [μ, inv], x̂ = (x − μ)·inv, in two
// launches over the same grid (c, B) as the forward:
// part[(ch·B + b)·2 + {0, 1}] = Σ dy, Σ dy·x̂ over block b's share.
__device__ __forceinline__ void bn_bwd_thread(const float* x, const float* saved, const float* dy, int n, int c,
                                              int hw, long long chunk, double* sd, double* sdx) {
    const int ch = blockIdx.x, b = blockIdx.y;
    const long long cnt = (long long)n * hw;
    const long long j0 = b * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
    const float mean = saved[ch], inv = saved[c + ch];
    *sd = 0.0;
    *sdx = 0.0;
    for (long long j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        const long long i = bn_at(j, c, hw, ch);
        const float xh = (x[i] - mean) * inv;
        *sd += (double)dy[i];
        *sdx += (double)(dy[i] * xh);
    }
}

extern "C" __global__ void bn_bwd_partial_f32(const float* x, const float* saved, const float* dy,
                                              double* part, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw;
    const long long chunk = args.chunk;
    __shared__ double sh[32];
    double sd, sdx;
    bn_bwd_thread(x, saved, dy, n, c, hw, chunk, &sd, &sdx);
    bn_put_partials(part, sd, sdx, sh);
}

// From the summed partials: dγ += Σ dy·x̂, dβ += Σ dy (block 0 of each
// channel) and dx (=|+=) γ·inv·(dy − Σdy/N − x̂·Σ(dy·x̂)/N) over block b's
// share (`add` 0 or 1). Any of dx, dgamma, dbeta may be null.
__device__ __forceinline__ void bn_bwd_finish(const float* x, const float* gamma, const float* saved,
                                              const float* dy, double sum_dy, double sum_dy_xhat, float* dx,
                                              float* dgamma, float* dbeta, int n, int c, int hw, long long chunk,
                                              int add) {
    const int ch = blockIdx.x, b = blockIdx.y;
    const long long cnt = (long long)n * hw;
    if (b == 0 && threadIdx.x == 0) {
        if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
        if (dbeta) dbeta[ch] += (float)sum_dy;
    }
    if (!dx) return;
    const float mean = saved[ch], inv = saved[c + ch];
    const float kk = (gamma ? gamma[ch] : 1.0f) * inv;
    const float a = (float)(sum_dy / (double)cnt);
    const float bb = (float)(sum_dy_xhat / (double)cnt);
    const long long j0 = b * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
    for (long long j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        const long long i = bn_at(j, c, hw, ch);
        const float xh = (x[i] - mean) * inv;
        put(&dx[i], kk * (dy[i] - a - xh * bb), add);
    }
}

// Launch 2 of 2: the sums from the channel's B partials, then as above.
extern "C" __global__ void bn_bwd_apply_f32(const float* x, const float* gamma, const float* saved,
                                            const float* dy, const double* part, float* dx,
                                            float* dgamma, float* dbeta, BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw, add = args.add;
    const long long chunk = args.chunk;
    double sum_dy, sum_dy_xhat;
    bn_sum_partials(part, &sum_dy, &sum_dy_xhat);
    bn_bwd_finish(x, gamma, saved, dy, sum_dy, sum_dy_xhat, dx, dgamma, dbeta, n, c, hw, chunk, add);
}

// Both backward launches in one for a grid (c, 1), as bn_fwd_fused_f32.
extern "C" __global__ void bn_bwd_fused_f32(const float* x, const float* gamma, const float* saved,
                                            const float* dy, float* dx, float* dgamma, float* dbeta,
                                            BnParams args) {
    const int n = args.n, c = args.c, hw = args.hw, add = args.add;
    const long long chunk = args.chunk;
    __shared__ double sh[32];
    __shared__ double slot;
    double sd, sdx;
    bn_bwd_thread(x, saved, dy, n, c, hw, chunk, &sd, &sdx);
    sd = block_bcast_f64(block_sum_f64(sd, sh), &slot);
    sdx = block_bcast_f64(block_sum_f64(sdx, sh), &slot);
    bn_bwd_finish(x, gamma, saved, dy, sd, sdx, dx, dgamma, dbeta, n, c, hw, chunk, add);
}
