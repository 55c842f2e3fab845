// Channel concatenation, the one-pixel shift of FactorizedReduce and global
// average pooling (CPU reference: src/ops/layout/cpu.rs).
#include "common.cuh"

// whole (n, c_whole, hw)[:, off:off + c_part] (=|+=) part (n, c_part, hw)
extern "C" __global__ void channel_put_f32(const float* part, float* whole, int n, int hw,
                                           int c_part, int c_whole, int off, int add) {
    const long long blk = (long long)c_part * hw;
    FOR_EACH(i, (long long)n * blk) {
        const long long b = i / blk, r = i % blk;
        put(&whole[(b * c_whole + off) * hw + r], part[i], add);
    }
}

// dpart (n, c_part, hw) (=|+=) dwhole[:, off:off + c_part]
extern "C" __global__ void channel_take_f32(const float* dwhole, float* dpart, int n, int hw,
                                            int c_part, int c_whole, int off, int add) {
    const long long blk = (long long)c_part * hw;
    FOR_EACH(i, (long long)n * blk) {
        const long long b = i / blk, r = i % blk;
        put(&dpart[i], dwhole[(b * c_whole + off) * hw + r], add);
    }
}

// A concatenation's parts, passed by value: each part's address, its first
// channel in the whole and its channel count (`ConcatParts` of
// src/ops/layout/cuda.rs).
#define CONCAT_MAX 8
struct ConcatParts {
    float* p[CONCAT_MAX];
    int off[CONCAT_MAX];
    int c[CONCAT_MAX];
};

// The part t < np holding channel ch, or −1.
__device__ __forceinline__ int concat_part(const ConcatParts& P, int np, int ch) {
    for (int t = 0; t < np; ++t)
        if (ch >= P.off[t] && ch < P.off[t] + P.c[t]) return t;
    return -1;
}

// whole (n, c_whole, hw)[:, off_t:off_t + c_t] = part_t (n, c_t, hw) for every
// part t < np in one pass over whole (channels of no part are left alone).
extern "C" __global__ void concat_fwd_f32(ConcatParts P, int np, float* whole, int n, int hw, int c_whole) {
    FOR_EACH(i, (long long)n * c_whole * hw) {
        const long long r = i % hw, b = i / ((long long)c_whole * hw);
        const int ch = (int)((i / hw) % c_whole), t = concat_part(P, np, ch);
        if (t >= 0) whole[i] = P.p[t][(b * P.c[t] + ch - P.off[t]) * hw + r];
    }
}

// part_t (=|+=) dwhole[:, off_t:off_t + c_t] for every part t < np (bit t of
// `add` set: add), in one pass over dwhole.
extern "C" __global__ void concat_bwd_f32(ConcatParts P, int np, unsigned add, const float* dwhole, int n, int hw,
                                          int c_whole) {
    FOR_EACH(i, (long long)n * c_whole * hw) {
        const long long r = i % hw, b = i / ((long long)c_whole * hw);
        const int ch = (int)((i / hw) % c_whole), t = concat_part(P, np, ch);
        if (t >= 0) put(&P.p[t][(b * P.c[t] + ch - P.off[t]) * hw + r], dwhole[i], (add >> t) & 1u);
    }
}

// y (nc, h − 1, w − 1) = x (nc, h, w)[:, 1:, 1:]
extern "C" __global__ void shift_fwd_f32(const float* x, float* y, int nc, int h, int w) {
    const int oh = h - 1, ow = w - 1;
    FOR_EACH(i, (long long)nc * oh * ow) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const long long p = i / ((long long)oh * ow);
        y[i] = x[p * h * w + (long long)(oy + 1) * w + ox + 1];
    }
}

// dx[:, 1:, 1:] += dy
extern "C" __global__ void shift_bwd_f32(const float* dy, float* dx, int nc, int h, int w) {
    const int oh = h - 1, ow = w - 1;
    FOR_EACH(i, (long long)nc * oh * ow) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const long long p = i / ((long long)oh * ow);
        dx[p * h * w + (long long)(oy + 1) * w + ox + 1] += dy[i];
    }
}

// y[p] = mean of the hw pixels of plane p; one warp per plane.
extern "C" __global__ void gap_fwd_f32(const float* x, float* y, int nc, int hw) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= nc) return;  // whole warps exit together: blockDim is a multiple of 32
    const float* xp = x + warp * hw;
    float s = 0.0f;
    for (int j = lane; j < hw; j += 32) s += xp[j];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) y[warp] = s * (1.0f / (float)hw);
}

// dx[p, :] += dy[p] / hw
extern "C" __global__ void gap_bwd_f32(const float* dy, float* dx, int nc, int hw) {
    const float inv = 1.0f / (float)hw;
    FOR_EACH(i, (long long)nc * hw) dx[i] += dy[i / hw] * inv;
}
