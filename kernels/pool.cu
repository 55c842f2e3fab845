// Max and average pooling with padding that is never selected or counted
// (CPU reference: src/ops/pool/cpu.rs). Backward kernels gather per input element
// (no atomics), so results do not depend on scheduling.
#include "common.cuh"

// What every pooling kernel is told (PoolParams of src/ops/pool/mod.rs):
// nc planes of h×w, pooled to oh×ow by k×k windows; `add` (backward only)
// 0 overwrites dx, 1 adds to it.
struct PoolParams {
    int nc, h, w, oh, ow, k, stride, pad;
    int add;
};
PARAMS_SIZE(PoolParams, 36);
PARAMS_FIELD(PoolParams, nc, 0);
PARAMS_FIELD(PoolParams, h, 4);
PARAMS_FIELD(PoolParams, w, 8);
PARAMS_FIELD(PoolParams, oh, 12);
PARAMS_FIELD(PoolParams, ow, 16);
PARAMS_FIELD(PoolParams, k, 20);
PARAMS_FIELD(PoolParams, stride, 24);
PARAMS_FIELD(PoolParams, pad, 28);
PARAMS_FIELD(PoolParams, add, 32);

// First in-bounds input coordinate of window `o` and one past the last.
__device__ __forceinline__ void pool_window(int o, int stride, int pad, int k, int len, int* lo,
                                            int* hi) {
    const int a = o * stride - pad;
    const int b = a + k < len ? a + k : len;
    *lo = a > 0 ? a : 0;
    *hi = b > 0 ? b : 0;
}

// Flat in-plane index of the first maximum of window (oy, ox), the CPU's
// rule: later elements win only when strictly greater, or NaN.
__device__ __forceinline__ int pool_argmax(const float* xp, int w, int h, int oy, int ox,
                                           int stride, int pad, int k) {
    int y0, y1, x0, x1;
    pool_window(oy, stride, pad, k, h, &y0, &y1);
    pool_window(ox, stride, pad, k, w, &x0, &x1);
    int best = -1;
    for (int iy = y0; iy < y1; ++iy)
        for (int ix = x0; ix < x1; ++ix) {
            const int i = iy * w + ix;
            const float v = xp[i];
            if (best < 0 || v > xp[best] || v != v) best = i;
        }
    return best;
}

// Output windows whose (clipped) span contains input coordinate `i`.
__device__ __forceinline__ void pool_outputs(int i, int stride, int pad, int k, int olen, int* lo,
                                             int* hi) {
    // o·stride − pad ≤ i < o·stride − pad + k
    const int t = i + pad - k + 1;
    int a = t <= 0 ? 0 : (t + stride - 1) / stride;
    int b = (i + pad) / stride + 1;
    *lo = a;
    *hi = b < olen ? b : olen;
}

// y (n, c, oh, ow) = max over window of x (n, c, h, w)
extern "C" __global__ void max_pool_fwd_f32(const float* x, float* y, PoolParams args) {
    const int nc = args.nc, h = args.h, w = args.w, oh = args.oh, ow = args.ow, k = args.k,
              stride = args.stride, pad = args.pad;
    const long long total = (long long)nc * oh * ow;
    FOR_EACH(i, total) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const float* xp = x + (i / ((long long)oh * ow)) * h * w;
        const int a = pool_argmax(xp, w, h, oy, ox, stride, pad, k);
        y[i] = a >= 0 ? xp[a] : f32_nan();
    }
}

// dx (=|+=) dy routed to the first maximum of each window (recomputed from
// x), gathered per input element: `add` 0 overwrites, 1 adds.
extern "C" __global__ void max_pool_bwd_f32(const float* x, const float* dy, float* dx,
                                            PoolParams args) {
    const int nc = args.nc, h = args.h, w = args.w, oh = args.oh, ow = args.ow, k = args.k,
              stride = args.stride, pad = args.pad;
    const int add = args.add;
    const long long total = (long long)nc * h * w;
    FOR_EACH(i, total) {
        const int ix = (int)(i % w), iy = (int)((i / w) % h);
        const long long p = i / ((long long)h * w);
        const float* xp = x + p * h * w;
        const float* dyp = dy + p * oh * ow;
        const int me = iy * w + ix;
        int oy0, oy1, ox0, ox1;
        pool_outputs(iy, stride, pad, k, oh, &oy0, &oy1);
        pool_outputs(ix, stride, pad, k, ow, &ox0, &ox1);
        float acc = 0.0f;
        for (int oy = oy0; oy < oy1; ++oy)
            for (int ox = ox0; ox < ox1; ++ox)
                if (pool_argmax(xp, w, h, oy, ox, stride, pad, k) == me) acc += dyp[oy * ow + ox];
        put(&dx[i], acc, add);
    }
}

// y = mean over the in-bounds part of the window (count_include_pad=False)
extern "C" __global__ void avg_pool_fwd_f32(const float* x, float* y, PoolParams args) {
    const int nc = args.nc, h = args.h, w = args.w, oh = args.oh, ow = args.ow, k = args.k,
              stride = args.stride, pad = args.pad;
    const long long total = (long long)nc * oh * ow;
    FOR_EACH(i, total) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const float* xp = x + (i / ((long long)oh * ow)) * h * w;
        int y0, y1, x0, x1;
        pool_window(oy, stride, pad, k, h, &y0, &y1);
        pool_window(ox, stride, pad, k, w, &x0, &x1);
        float s = 0.0f;
        for (int iy = y0; iy < y1; ++iy)
            for (int ix = x0; ix < x1; ++ix) s += xp[iy * w + ix];
        y[i] = s / (float)((y1 - y0) * (x1 - x0));
    }
}

// dx (=|+=) dy / count, gathered over the windows that hold each input element.
extern "C" __global__ void avg_pool_bwd_f32(const float* dy, float* dx, PoolParams args) {
    const int nc = args.nc, h = args.h, w = args.w, oh = args.oh, ow = args.ow, k = args.k,
              stride = args.stride, pad = args.pad;
    const int add = args.add;
    const long long total = (long long)nc * h * w;
    FOR_EACH(i, total) {
        const int ix = (int)(i % w), iy = (int)((i / w) % h);
        const float* dyp = dy + (i / ((long long)h * w)) * oh * ow;
        int oy0, oy1, ox0, ox1;
        pool_outputs(iy, stride, pad, k, oh, &oy0, &oy1);
        pool_outputs(ix, stride, pad, k, ow, &ox0, &ox1);
        float acc = 0.0f;
        for (int oy = oy0; oy < oy1; ++oy) {
            int y0, y1;
            pool_window(oy, stride, pad, k, h, &y0, &y1);
            for (int ox = ox0; ox < ox1; ++ox) {
                int x0, x1;
                pool_window(ox, stride, pad, k, w, &x0, &x1);
                acc += dyp[oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
            }
        }
        put(&dx[i], acc, add);
    }
}
