// Channel concatenation, the one-pixel shift of FactorizedReduce and global
// average pooling (CPU reference: src/ops/layout/cpu.rs).
#include "common.cuh"

// channel_put/take: a part of c_part channels at channel `off` of a whole of
// c_whole, both (n, ·, hw); `add` 0 overwrites, 1 adds.
struct ChannelSliceParams {
    int n;
    int hw;
    int c_part;
    int c_whole;
    int off;
    int add;
};
PARAMS_SIZE(ChannelSliceParams, 24);
PARAMS_FIELD(ChannelSliceParams, n, 0);
PARAMS_FIELD(ChannelSliceParams, hw, 4);
PARAMS_FIELD(ChannelSliceParams, c_part, 8);
PARAMS_FIELD(ChannelSliceParams, c_whole, 12);
PARAMS_FIELD(ChannelSliceParams, off, 16);
PARAMS_FIELD(ChannelSliceParams, add, 20);

// shift_fwd/bwd: nc planes of h×w.
struct ShiftParams {
    int nc;
    int h;
    int w;
};
PARAMS_SIZE(ShiftParams, 12);
PARAMS_FIELD(ShiftParams, nc, 0);
PARAMS_FIELD(ShiftParams, h, 4);
PARAMS_FIELD(ShiftParams, w, 8);

// gap_fwd/bwd: global average pooling of nc planes of hw values.
struct GapParams {
    int nc;
    int hw;
};
PARAMS_SIZE(GapParams, 8);
PARAMS_FIELD(GapParams, nc, 0);
PARAMS_FIELD(GapParams, hw, 4);

// whole (n, c_whole, hw)[:, off:off + c_part] (=|+=) part (n, c_part, hw)
extern "C" __global__ void channel_put_f32(const float* part, float* whole,
                                           ChannelSliceParams args) {
    const int n = args.n, hw = args.hw, c_part = args.c_part, c_whole = args.c_whole,
              off = args.off, add = args.add;
    const long long blk = (long long)c_part * hw;
    FOR_EACH(i, (long long)n * blk) {
        const long long b = i / blk, r = i % blk;
        put(&whole[(b * c_whole + off) * hw + r], part[i], add);
    }
}

// dpart (n, c_part, hw) (=|+=) dwhole[:, off:off + c_part]
extern "C" __global__ void channel_take_f32(const float* dwhole, float* dpart,
                                            ChannelSliceParams args) {
    const int n = args.n, hw = args.hw, c_part = args.c_part, c_whole = args.c_whole,
              off = args.off, add = args.add;
    const long long blk = (long long)c_part * hw;
    FOR_EACH(i, (long long)n * blk) {
        const long long b = i / blk, r = i % blk;
        put(&dpart[i], dwhole[(b * c_whole + off) * hw + r], add);
    }
}

// What the concat kernels are told (ConcatParams of src/ops/layout/mod.rs),
// passed by value: the np ≤ CONCAT_MAX parts — each part's address, its
// first channel in the whole and its channel count — and the whole (n,
// c_whole, hw); bit t of `add` (concat_bwd) set: part t adds rather than
// overwrites.
#define CONCAT_MAX 8
struct ConcatParams {
    float* p[CONCAT_MAX];
    int off[CONCAT_MAX];
    int c[CONCAT_MAX];
    int np;
    unsigned add;
    int n;
    int hw;
    int c_whole;
};
PARAMS_SIZE(ConcatParams, 152);
PARAMS_FIELD(ConcatParams, p, 0);
PARAMS_FIELD(ConcatParams, off, 64);
PARAMS_FIELD(ConcatParams, c, 96);
PARAMS_FIELD(ConcatParams, np, 128);
PARAMS_FIELD(ConcatParams, add, 132);
PARAMS_FIELD(ConcatParams, n, 136);
PARAMS_FIELD(ConcatParams, hw, 140);
PARAMS_FIELD(ConcatParams, c_whole, 144);

// The part t < np holding channel ch, or −1.
__device__ __forceinline__ int concat_part(const ConcatParams& P, int np, int ch) {
    for (int t = 0; t < np; ++t)
        if (ch >= P.off[t] && ch < P.off[t] + P.c[t]) return t;
    return -1;
}

// whole (n, c_whole, hw)[:, off_t:off_t + c_t] = part_t (n, c_t, hw) for every
// part t < np in one pass over whole (channels of no part are left alone).
extern "C" __global__ void concat_fwd_f32(float* whole, ConcatParams P) {
    const int np = P.np, n = P.n, hw = P.hw, c_whole = P.c_whole;
    FOR_EACH(i, (long long)n * c_whole * hw) {
        const long long r = i % hw, b = i / ((long long)c_whole * hw);
        const int ch = (int)((i / hw) % c_whole), t = concat_part(P, np, ch);
        if (t >= 0) whole[i] = P.p[t][(b * P.c[t] + ch - P.off[t]) * hw + r];
    }
}

// part_t (=|+=) dwhole[:, off_t:off_t + c_t] for every part t < np (bit t of
// `add` set: add), in one pass over dwhole.
extern "C" __global__ void concat_bwd_f32(const float* dwhole, ConcatParams P) {
    const int np = P.np, n = P.n, hw = P.hw, c_whole = P.c_whole;
    const unsigned add = P.add;
    FOR_EACH(i, (long long)n * c_whole * hw) {
        const long long r = i % hw, b = i / ((long long)c_whole * hw);
        const int ch = (int)((i / hw) % c_whole), t = concat_part(P, np, ch);
        if (t >= 0) put(&P.p[t][(b * P.c[t] + ch - P.off[t]) * hw + r], dwhole[i], (add >> t) & 1u);
    }
}

// y (nc, h − 1, w − 1) = x (nc, h, w)[:, 1:, 1:]
extern "C" __global__ void shift_fwd_f32(const float* x, float* y, ShiftParams args) {
    const int nc = args.nc, h = args.h, w = args.w;
    const int oh = h - 1, ow = w - 1;
    FOR_EACH(i, (long long)nc * oh * ow) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const long long p = i / ((long long)oh * ow);
        y[i] = x[p * h * w + (long long)(oy + 1) * w + ox + 1];
    }
}

// dx[:, 1:, 1:] += dy
extern "C" __global__ void shift_bwd_f32(const float* dy, float* dx, ShiftParams args) {
    const int nc = args.nc, h = args.h, w = args.w;
    const int oh = h - 1, ow = w - 1;
    FOR_EACH(i, (long long)nc * oh * ow) {
        const int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
        const long long p = i / ((long long)oh * ow);
        dx[p * h * w + (long long)(oy + 1) * w + ox + 1] += dy[i];
    }
}

// y[p] = mean of the hw pixels of plane p; one warp per plane.
extern "C" __global__ void gap_fwd_f32(const float* x, float* y, GapParams args) {
    const int nc = args.nc, hw = args.hw;
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
extern "C" __global__ void gap_bwd_f32(const float* dy, float* dx, GapParams args) {
    const int nc = args.nc, hw = args.hw;
    const float inv = 1.0f / (float)hw;
    FOR_EACH(i, (long long)nc * hw) dx[i] += dy[i / hw] * inv;
}
