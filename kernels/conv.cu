// 2-D convolution, NCHW, weights (cout, cin/groups, k, k), optional ReLU on
// the input (CPU reference: src/ops/conv/cpu.rs). Three kernel families, chosen
// by the launcher from the geometry:
//   dwconv_*  depthwise k×k (groups = cin = cout), any stride/dilation/pad;
//   pwconv_*  1×1, pad 0, any stride and groups (not depthwise): tiled matrix products;
//   conv_*    the general grouped/dense fallback (the 3×3 stem, anything else).
// Forward overwrites y; backward accumulates into dx and dw.
#include "common.cuh"

// What every convolution kernel is told (ConvParams of src/ops/conv/mod.rs):
// x (n, cin, h, wd) → y (n, cout, oh, ow) by a k×k filter with stride,
// padding, dilation and groups (a depthwise conv's channels are cin); `relu`
// 1 applies ReLU to x as it is read; `add` 0 overwrites the gradient written,
// 1 adds to it (`dw_add` the filter gradient's, where a kernel writes both);
// `data_blocks` (dwconv_bwd) the blocks that take dx, (chain_bwd) BatchNorm's
// partials per channel; `chunk` (pwconv's filter gradient) the products of
// each split, (chain_*) the output pixels of a block.
struct ConvParams {
    int n;
    int cin;
    int cout;
    int h;
    int wd;
    int oh;
    int ow;
    int k;
    int stride;
    int pad;
    int dil;
    int groups;
    int relu;
    int add;
    int dw_add;
    int data_blocks;
    long long chunk;
};
PARAMS_SIZE(ConvParams, 72);
PARAMS_FIELD(ConvParams, n, 0);
PARAMS_FIELD(ConvParams, cin, 4);
PARAMS_FIELD(ConvParams, cout, 8);
PARAMS_FIELD(ConvParams, h, 12);
PARAMS_FIELD(ConvParams, wd, 16);
PARAMS_FIELD(ConvParams, oh, 20);
PARAMS_FIELD(ConvParams, ow, 24);
PARAMS_FIELD(ConvParams, k, 28);
PARAMS_FIELD(ConvParams, stride, 32);
PARAMS_FIELD(ConvParams, pad, 36);
PARAMS_FIELD(ConvParams, dil, 40);
PARAMS_FIELD(ConvParams, groups, 44);
PARAMS_FIELD(ConvParams, relu, 48);
PARAMS_FIELD(ConvParams, add, 52);
PARAMS_FIELD(ConvParams, dw_add, 56);
PARAMS_FIELD(ConvParams, data_blocks, 60);
PARAMS_FIELD(ConvParams, chunk, 64);

// ---- depthwise ---------------------------------------------------------------

// One output (oy, ox) of a depthwise conv: Σ_kh,kw wk (k, k) · act(xp (h, w)).
__device__ __forceinline__ float dw_at(const float* xp, const float* wk, int oy, int ox, int h, int wd, int k,
                                       int stride, int pad, int dil, int relu) {
    float acc = 0.0f;
    for (int kh = 0; kh < k; ++kh) {
        const int iy = oy * stride + kh * dil - pad;
        if (iy < 0 || iy >= h) continue;
        for (int kw = 0; kw < k; ++kw) {
            const int ix = ox * stride + kw * dil - pad;
            if (ix < 0 || ix >= wd) continue;
            acc += wk[kh * k + kw] * act(xp[iy * wd + ix], relu);
        }
    }
    return acc;
}

// y (n, c, oh, ow) = Σ_kh,kw w (c, 1, k, k) · act(x (n, c, h, w)); one thread per output.
extern "C" __global__ void dwconv_fwd_f32(const float* x, const float* w, float* y,
                                          ConvParams args) {
    const int n = args.n, c = args.cin, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu;
    const long long total = (long long)n * c * oh * ow;
    FOR_EACH(i, total) {
        const long long p = i / ((long long)oh * ow);  // plane n·c + ch
        const float* wk = w + (p % c) * k * k;
        y[i] = dw_at(x + p * h * wd, wk, (int)((i / ow) % oh), (int)(i % ow), h, wd, k, stride, pad, dil, relu);
    }
}

// dx (n, c, h, w) (=|+=) [x > 0 if relu] · Σ w · dy, gathered per input
// element (no atomics): the outputs whose window holds (iy, ix) at tap (kh, kw).
// The data gradient over blocks blk = 0 … nblk − 1 of a grid-stride loop.
__device__ __forceinline__ void dwconv_bwd_data_blocks(const float* x, const float* w, const float* dy, float* dx,
                                                       int n, int c, int h, int wd, int oh, int ow, int k,
                                                       int stride, int pad, int dil, int relu, int add,
                                                       long long blk, long long nblk) {
    const long long total = (long long)n * c * h * wd;
    for (long long i = blk * blockDim.x + threadIdx.x; i < total; i += nblk * blockDim.x) {
        if (relu && !(x[i] > 0.0f)) {
            put(&dx[i], 0.0f, add);
            continue;
        }
        const int ix = (int)(i % wd);
        const int iy = (int)((i / wd) % h);
        const long long p = i / ((long long)h * wd);
        const int ch = (int)(p % c);
        const float* dyp = dy + p * oh * ow;
        const float* wk = w + (long long)ch * k * k;
        float acc = 0.0f;
        for (int kh = 0; kh < k; ++kh) {
            const int ty = iy + pad - kh * dil;
            if (ty < 0 || ty % stride) continue;
            const int oy = ty / stride;
            if (oy >= oh) continue;
            for (int kw = 0; kw < k; ++kw) {
                const int tx = ix + pad - kw * dil;
                if (tx < 0 || tx % stride) continue;
                const int ox = tx / stride;
                if (ox >= ow) continue;
                acc += wk[kh * k + kw] * dyp[oy * ow + ox];
            }
        }
        put(&dx[i], acc, add);
    }
}

extern "C" __global__ void dwconv_bwd_data_f32(const float* x, const float* w, const float* dy,
                                               float* dx, ConvParams args) {
    const int n = args.n, c = args.cin, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu,
              add = args.add;
    dwconv_bwd_data_blocks(x, w, dy, dx, n, c, h, wd, oh, ow, k, stride, pad, dil, relu, add, blockIdx.x,
                           gridDim.x);
}

// dw (c, 1, k, k) (=|+=) Σ_n,oy,ox dy · act(x) (add = 0 | 1); one block per
// weight element, a block reduction over the n·oh·ow products (deterministic,
// no atomics).
__device__ __forceinline__ void dwconv_bwd_filter_block(const float* x, const float* dy, float* dw, int n, int c,
                                                        int h, int wd, int oh, int ow, int k, int stride, int pad,
                                                        int dil, int relu, int add, int widx) {
    __shared__ float sh[32];
    // widx = ch·k·k + kh·k + kw
    const int kw = widx % k, kh = (widx / k) % k, ch = widx / (k * k);
    const long long per = (long long)oh * ow, total = (long long)n * per;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < total; j += blockDim.x) {
        const int b = (int)(j / per);
        const int oy = (int)((j % per) / ow), ox = (int)(j % ow);
        const int iy = oy * stride + kh * dil - pad, ix = ox * stride + kw * dil - pad;
        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
        const long long p = (long long)b * c + ch;
        acc += dy[p * per + oy * ow + ox] * act(x[p * h * wd + (long long)iy * wd + ix], relu);
    }
    acc = block_sum_f32(acc, sh);
    if (threadIdx.x == 0) put(&dw[widx], acc, add);
}

extern "C" __global__ void dwconv_bwd_filter_f32(const float* x, const float* dy, float* dw,
                                                 ConvParams args) {
    const int n = args.n, c = args.cin, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu,
              add = args.add;
    dwconv_bwd_filter_block(x, dy, dw, n, c, h, wd, oh, ow, k, stride, pad, dil, relu, add, blockIdx.x);
}

// Both gradients in one launch: blocks [0, data_blocks) run the data
// gradient's grid-stride loop, each further block one weight element of
// the filter gradient, as the two kernels above.
extern "C" __global__ void dwconv_bwd_f32(const float* x, const float* w, const float* dy,
                                          float* dx, float* dw, ConvParams args) {
    const int n = args.n, c = args.cin, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu,
              add = args.add, dw_add = args.dw_add, data_blocks = args.data_blocks;
    if ((int)blockIdx.x < data_blocks)
        dwconv_bwd_data_blocks(x, w, dy, dx, n, c, h, wd, oh, ow, k, stride, pad, dil, relu, add, blockIdx.x,
                               data_blocks);
    else
        dwconv_bwd_filter_block(x, dy, dw, n, c, h, wd, oh, ow, k, stride, pad, dil, relu, dw_add,
                                (int)blockIdx.x - data_blocks);
}

// ---- pointwise (1×1, pad 0, any stride, any groups) --------------------------
// Per image and group g, y (cog, P) = w_g (cog, cig) · act(x_g (cig, P)) with
// P = oh·ow, cig = cin/groups, cog = cout/groups, x_g the group's input
// channels [g·cig, (g+1)·cig), w_g rows [g·cog, (g+1)·cog) of w (cout, cig)
// and the input pixel of output pixel p at (oy·s, ox·s). TILE×TILE output
// tiles, both operands staged in shared memory; a tile never straddles two
// groups (grid y holds groups × tiles per group). Two groups run RARTS's
// `w` and `y` networks side by side.
#define TILE 16

__device__ __forceinline__ long long pw_pix(int p, int ow, int wd, int stride) {
    return (long long)(p / ow) * stride * wd + (long long)(p % ow) * stride;
}

// y (n, cout, oh, ow) = w · act(x), per group; grid (⌈P/TILE⌉, groups·⌈cog/TILE⌉, n), block TILE×TILE.
extern "C" __global__ void pwconv_fwd_f32(const float* x, const float* w, float* y,
                                          ConvParams args) {
    const int cin = args.cin, cout = args.cout, h = args.h, wd = args.wd, oh = args.oh,
              ow = args.ow, stride = args.stride, relu = args.relu, groups = args.groups;
    __shared__ float sw[TILE][TILE + 1];
    __shared__ float sx[TILE][TILE + 1];
    const int cig = cin / groups, cog = cout / groups, per = gridDim.y / groups;
    const int g = blockIdx.y / per;
    const int P = oh * ow, b = blockIdx.z;
    const int p = blockIdx.x * TILE + threadIdx.x, co = (blockIdx.y % per) * TILE + threadIdx.y;
    const float* xb = x + ((long long)b * cin + (long long)g * cig) * h * wd;
    const float* wg = w + (long long)g * cog * cig;
    float acc = 0.0f;
    for (int k0 = 0; k0 < cig; k0 += TILE) {
        // sw[ty][tx] = w_g[co, k0 + tx]; sx[ty][tx] = act(x_g[k0 + ty, pix(p)])
        const int kw = k0 + threadIdx.x, kx = k0 + threadIdx.y;
        sw[threadIdx.y][threadIdx.x] = (co < cog && kw < cig) ? wg[(long long)co * cig + kw] : 0.0f;
        sx[threadIdx.y][threadIdx.x] =
            (p < P && kx < cig) ? act(xb[(long long)kx * h * wd + pw_pix(p, ow, wd, stride)], relu)
                                : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < TILE; ++kk) acc += sw[threadIdx.y][kk] * sx[kk][threadIdx.x];
        __syncthreads();
    }
    if (p < P && co < cog) y[((long long)b * cout + (long long)g * cog + co) * P + p] = acc;
}

// dx (n, cin, h, w) (=|+=) [x > 0 if relu] · w_gᵀ · dy_g at the sampled pixels
// (each sampled input pixel belongs to exactly one output pixel, so no
// races); the other pixels are left alone, so with stride > 1 the launcher
// zeroes dx first rather than overwrite. grid (⌈P/TILE⌉, groups·⌈cig/TILE⌉, n).
extern "C" __global__ void pwconv_bwd_data_f32(const float* x, const float* w, const float* dy,
                                               float* dx, ConvParams args) {
    const int cin = args.cin, cout = args.cout, h = args.h, wd = args.wd, oh = args.oh,
              ow = args.ow, stride = args.stride, relu = args.relu, add = args.add,
              groups = args.groups;
    __shared__ float sw[TILE][TILE + 1];
    __shared__ float sd[TILE][TILE + 1];
    const int cig = cin / groups, cog = cout / groups, per = gridDim.y / groups;
    const int g = blockIdx.y / per;
    const int P = oh * ow, b = blockIdx.z;
    const int p = blockIdx.x * TILE + threadIdx.x, ci = (blockIdx.y % per) * TILE + threadIdx.y;
    const float* dyb = dy + ((long long)b * cout + (long long)g * cog) * P;
    const float* wg = w + (long long)g * cog * cig;
    float acc = 0.0f;
    for (int k0 = 0; k0 < cog; k0 += TILE) {
        // sw[ty][tx] = w_g[k0 + tx, ci]; sd[ty][tx] = dy_g[k0 + ty, p]
        const int kw = k0 + threadIdx.x, kd = k0 + threadIdx.y;
        sw[threadIdx.y][threadIdx.x] = (ci < cig && kw < cog) ? wg[(long long)kw * cig + ci] : 0.0f;
        sd[threadIdx.y][threadIdx.x] = (p < P && kd < cog) ? dyb[(long long)kd * P + p] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < TILE; ++kk) acc += sw[threadIdx.y][kk] * sd[kk][threadIdx.x];
        __syncthreads();
    }
    if (p < P && ci < cig) {
        const long long xi = ((long long)b * cin + (long long)g * cig + ci) * h * wd + pw_pix(p, ow, wd, stride);
        put(&dx[xi], (!relu || x[xi] > 0.0f) ? acc : 0.0f, add);
    }
}

// The pwconv filter gradient in one launch, deterministic (no float atomics
// on the sums, so two runs agree bit for bit): the n·P sum is cut into
// `splits` chunks of `chunk` products (a 16×16 weight tile alone would
// leave most SMs idle); split z writes its partial tile to part[z]
// (cout, cig); the last of a tile's splits to finish (an atomic ticket per
// tile) adds the tile's splits into dw in order z = 0, 1, …, and resets the
// ticket for the next launch.
//
// part[z] (cout, cig) = Σ_{n,p in chunk z} dy (n, co, p) · act(x (n, g·cig + ci, pix(p)))
// for co in group g; dw (cout, cig) (=|+=) Σ_z part[z] (add = 0 | 1); grid
// (⌈cig/TILE⌉, groups·⌈cog/TILE⌉, splits); `ticket` holds as many zeros as
// the grid has tiles.
extern "C" __global__ void pwconv_bwd_filter_f32(const float* x, const float* dy, float* part,
                                                 float* dw, unsigned* ticket, ConvParams args) {
    const int n = args.n, cin = args.cin, cout = args.cout, h = args.h, wd = args.wd, oh = args.oh,
              ow = args.ow, stride = args.stride, relu = args.relu, add = args.add,
              groups = args.groups;
    const long long chunk = args.chunk;
    __shared__ float sd[TILE][TILE + 1];  // sd[co_local][j]
    __shared__ float sx[TILE][TILE + 1];  // sx[j][ci_local]
    const int cig = cin / groups, cog = cout / groups, per = gridDim.y / groups;
    const int g = blockIdx.y / per, co0 = (blockIdx.y % per) * TILE;
    const long long P = (long long)oh * ow, K = (long long)n * P;
    const long long j0 = (long long)blockIdx.z * chunk;
    const long long j1 = j0 + chunk < K ? j0 + chunk : K;
    const int ci = blockIdx.x * TILE + threadIdx.x, co = co0 + threadIdx.y;
    float acc = 0.0f;
    for (long long k0 = j0; k0 < j1; k0 += TILE) {
        {  // sd[ty][tx] = dy[b(k0+tx), g·cog + co0 + ty, p(k0+tx)]
            const long long j = k0 + threadIdx.x;
            const int c = co0 + threadIdx.y;
            float v = 0.0f;
            if (j < j1 && c < cog) {
                const long long b = j / P, p = j % P;
                v = dy[(b * cout + (long long)g * cog + c) * P + p];
            }
            sd[threadIdx.y][threadIdx.x] = v;
        }
        {  // sx[tx][ty] = act(x[b(k0+tx), g·cig + blockIdx.x·TILE + ty, pix(p(k0+tx))]):
           // loaded transposed so that neighbouring threads read neighbouring pixels.
            const long long j = k0 + threadIdx.x;
            const int c = blockIdx.x * TILE + threadIdx.y;
            float v = 0.0f;
            if (j < j1 && c < cig) {
                const long long b = j / P;
                const int p = (int)(j % P);
                v = act(x[(b * cin + (long long)g * cig + c) * h * wd + pw_pix(p, ow, wd, stride)], relu);
            }
            sx[threadIdx.x][threadIdx.y] = v;
        }
        __syncthreads();
        for (int kk = 0; kk < TILE; ++kk) acc += sd[threadIdx.y][kk] * sx[kk][threadIdx.x];
        __syncthreads();
    }
    const long long wi = ((long long)g * cog + co) * cig + ci;  // (row, col) of dw and of each part
    const long long m = (long long)cout * cig;
    if (ci < cig && co < cog) part[(long long)blockIdx.z * m + wi] = acc;
    // Publish this split's tile, then count it in.
    __shared__ unsigned last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        unsigned* t = &ticket[blockIdx.y * gridDim.x + blockIdx.x];
        last = atomicAdd(t, 1u) == gridDim.z - 1;
        if (last) *t = 0u;  // every split has counted in: ready for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (ci < cig && co < cog) {
        float s = 0.0f;
        // Through L2 (__ldcg): the other splits' tiles were written on other SMs.
        for (unsigned z = 0; z < gridDim.z; ++z) s += __ldcg(&part[(long long)z * m + wi]);
        put(&dw[wi], s, add);
    }
}

// ---- chains: ReLU → depthwise → 1×1, BatchNorm's moments -------------------

// Floats of a chain block's shared memory: its tile of the depthwise output
// (cig × T) and of the 1×1 output (cog × T). The launcher picks T to fit.
#define CHAIN_SMEM 8192

// The convs of a chain (src/ops/conv/chain.rs on the CPU) and BatchNorm's
// moments, in one launch: block (tile, b, g) takes `chunk` (T) output pixels
// of image b for network g (groups = networks side by side; cin and cout
// count them all): d (n, cin, oh, ow) = dwconv(act(x), w_dw) over the
// group's cig channels, p (n, cout, oh, ow) = w_pw · d per group, both
// kept for the backward; then each of the group's channels' moments over
// the tile, about the tile's first value: part[(ch·B + blk)·3 + {0, 1, 2}] =
// (count, mean, Σ(p − mean)²), B = gridDim.x·gridDim.y partials per channel,
// blk = b·gridDim.x + tile, so that merging them in order goes image by
// image (bn_fwd_merged_f32 does, then normalises).
extern "C" __global__ void chain_fwd_f32(const float* x, const float* wdw, const float* wpw, float* d, float* p,
                                         double* part, ConvParams args) {
    const int cin = args.cin, cout = args.cout, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu,
              groups = args.groups;
    const int T = (int)args.chunk;
    const int cig = cin / groups, cog = cout / groups;
    const int P = oh * ow, tile = blockIdx.x, b = blockIdx.y, g = blockIdx.z;
    const int p0 = tile * T, len = P - p0 < T ? P - p0 : T;
    __shared__ float s[CHAIN_SMEM];
    float *sd = s, *sp = s + cig * T;  // sd[ci·T + t], sp[co·T + t]
    for (int i = threadIdx.x; i < cig * T; i += blockDim.x) {
        const int ci = i / T, t = i % T;
        if (t >= len) continue;
        const int pix = p0 + t, ch = g * cig + ci;
        const float* xp = x + ((long long)b * cin + ch) * h * wd;
        sd[i] = dw_at(xp, wdw + (long long)ch * k * k, pix / ow, pix % ow, h, wd, k, stride, pad, dil, relu);
        d[((long long)b * cin + ch) * P + pix] = sd[i];
    }
    __syncthreads();
    const float* wg = wpw + (long long)g * cog * cig;
    for (int i = threadIdx.x; i < cog * T; i += blockDim.x) {
        const int co = i / T, t = i % T;
        if (t >= len) continue;
        float acc = 0.0f;
        for (int ci = 0; ci < cig; ++ci) acc += wg[(long long)co * cig + ci] * sd[ci * T + t];
        sp[i] = acc;
        p[((long long)b * cout + (long long)g * cog + co) * P + p0 + t] = acc;
    }
    __syncthreads();
    // One warp per channel: the tile's moments about its first value.
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    const long long B = (long long)gridDim.x * gridDim.y, blk = (long long)b * gridDim.x + tile;
    for (int co = threadIdx.x / 32; co < cog; co += warps) {
        const float* v = sp + co * T;
        const double shift = (double)v[0];
        double s1 = 0.0, s2 = 0.0;
        for (int t = lane; t < len; t += 32) {
            const double dv = (double)v[t] - shift;
            s1 += dv;
            s2 += dv * dv;
        }
        for (int o = 16; o > 0; o /= 2) {
            s1 += __shfl_down_sync(0xffffffffu, s1, o);
            s2 += __shfl_down_sync(0xffffffffu, s2, o);
        }
        if (lane == 0) {
            const double cnt = (double)len, m = s1 / cnt;
            double* q = part + (((long long)g * cog + co) * B + blk) * 3;
            q[0] = cnt;
            q[1] = shift + m;
            q[2] = s2 - s1 * m > 0.0 ? s2 - s1 * m : 0.0;
        }
    }
}

// The backward of a chain's 1×1 conv and BatchNorm, in one launch (the
// depthwise conv's backward follows, dwconv_bwd_f32 on dd): block (tile, b,
// g) as chain_fwd_f32's. With BatchNorm's sums from bn_bwd_partial_f32
// (bpart[(ch·B + z)·2 + {0, 1}] = Σ dy, Σ dy·x̂ over its B = `data_blocks`
// blocks, added in order as bn_bwd_apply_f32 does): dγ += Σ dy·x̂ and
// dβ += Σ dy (block (0, 0, g), for its channels; either may be null); dp =
// BatchNorm's input gradient over the tile, kept in shared memory; dd (n,
// cin, oh, ow) = w_pwᵀ · dp (unless dd is null); and the tile's share of the
// 1×1 filter gradient, dp · dᵀ, into part[blk] (cout, cig), blk = b·gridDim.x
// + tile: the last of group g's blocks to finish (an atomic ticket per
// group) adds its blocks' shares into dw_pw in order blk = 0, 1, … (`add` 0
// or 1) and resets the ticket. dw_pw null: no filter gradient.
extern "C" __global__ void chain_bwd_f32(const float* p, const float* dy, const float* d, const float* wpw,
                                         const float* gamma, const float* saved, const double* bpart, float* dd,
                                         float* part, float* dwpw, unsigned* ticket, float* dgamma, float* dbeta,
                                         ConvParams args) {
    const int n = args.n, cin = args.cin, cout = args.cout, oh = args.oh, ow = args.ow, groups = args.groups,
              add = args.add, B = args.data_blocks;
    const int T = (int)args.chunk;
    const int cig = cin / groups, cog = cout / groups;
    const int P = oh * ow, tile = blockIdx.x, b = blockIdx.y, g = blockIdx.z;
    const int p0 = tile * T, len = P - p0 < T ? P - p0 : T;
    const double cnt = (double)n * P;
    __shared__ float s[CHAIN_SMEM];
    float* ka = s;                 // per channel of the group: γ·inv, Σdy/N, Σ(dy·x̂)/N
    float* sdp = s + 3 * cog;      // sdp[co·T + t]
    float* sd = sdp + cog * T;     // sd[ci·T + t]
    for (int co = threadIdx.x; co < cog; co += blockDim.x) {
        const int ch = g * cog + co;
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int z = 0; z < B; ++z) {
            sum_dy += bpart[((long long)ch * B + z) * 2];
            sum_dy_xhat += bpart[((long long)ch * B + z) * 2 + 1];
        }
        if (tile == 0 && b == 0) {
            if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
            if (dbeta) dbeta[ch] += (float)sum_dy;
        }
        ka[co] = (gamma ? gamma[ch] : 1.0f) * saved[cout + ch];
        ka[cog + co] = (float)(sum_dy / cnt);
        ka[2 * cog + co] = (float)(sum_dy_xhat / cnt);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < cog * T; i += blockDim.x) {
        const int co = i / T, t = i % T, ch = g * cog + co;
        float v = 0.0f;
        if (t < len) {
            const long long at = ((long long)b * cout + ch) * P + p0 + t;
            const float xh = (p[at] - saved[ch]) * saved[cout + ch];
            v = ka[co] * (dy[at] - ka[cog + co] - xh * ka[2 * cog + co]);
        }
        sdp[i] = v;
    }
    for (int i = threadIdx.x; i < cig * T; i += blockDim.x) {
        const int ci = i / T, t = i % T;
        sd[i] = t < len ? d[((long long)b * cin + g * cig + ci) * P + p0 + t] : 0.0f;
    }
    __syncthreads();
    const float* wg = wpw + (long long)g * cog * cig;
    if (dd) {
        for (int i = threadIdx.x; i < cig * T; i += blockDim.x) {
            const int ci = i / T, t = i % T;
            if (t >= len) continue;
            float acc = 0.0f;
            for (int co = 0; co < cog; ++co) acc += wg[(long long)co * cig + ci] * sdp[co * T + t];
            dd[((long long)b * cin + g * cig + ci) * P + p0 + t] = acc;
        }
    }
    if (!dwpw) return;
    const long long blk = (long long)b * gridDim.x + tile, m = (long long)cout * cig;
    for (int i = threadIdx.x; i < cog * cig; i += blockDim.x) {
        const int co = i / cig, ci = i % cig;
        float acc = 0.0f;
        for (int t = 0; t < len; ++t) acc += sdp[co * T + t] * sd[ci * T + t];
        part[blk * m + ((long long)g * cog + co) * cig + ci] = acc;
    }
    // Publish this block's share, then count it in.
    __shared__ unsigned last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned blocks = gridDim.x * gridDim.y;
        last = atomicAdd(&ticket[g], 1u) == blocks - 1;
        if (last) ticket[g] = 0u;  // every block has counted in: ready for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    const long long blocks = (long long)gridDim.x * gridDim.y;
    for (int i = threadIdx.x; i < cog * cig; i += blockDim.x) {
        const long long wi = (long long)g * cog * cig + i;
        float sum = 0.0f;
        // Through L2 (__ldcg): the other blocks' shares were written on other SMs.
        for (long long z = 0; z < blocks; ++z) sum += __ldcg(&part[z * m + wi]);
        put(&dwpw[wi], sum, add);
    }
}

// ---- general (grouped or dense, any k) -------------------------------------

// y (n, cout, oh, ow) = Σ_c,kh,kw w (cout, cin/g, k, k) · act(x); one thread per output.
extern "C" __global__ void conv_fwd_f32(const float* x, const float* w, float* y, ConvParams args) {
    const int n = args.n, cin = args.cin, h = args.h, wd = args.wd, cout = args.cout, oh = args.oh,
              ow = args.ow, k = args.k, stride = args.stride, pad = args.pad, dil = args.dil,
              groups = args.groups, relu = args.relu;
    const int cig = cin / groups, cog = cout / groups;
    const long long total = (long long)n * cout * oh * ow;
    FOR_EACH(i, total) {
        const int ox = (int)(i % ow);
        const int oy = (int)((i / ow) % oh);
        const int co = (int)((i / ((long long)oh * ow)) % cout);
        const int b = (int)(i / ((long long)oh * ow * cout));
        const int grp = co / cog;
        float acc = 0.0f;
        for (int c = 0; c < cig; ++c) {
            const float* xp = x + ((long long)b * cin + grp * cig + c) * h * wd;
            const float* wk = w + ((long long)co * cig + c) * k * k;
            for (int kh = 0; kh < k; ++kh) {
                const int iy = oy * stride + kh * dil - pad;
                if (iy < 0 || iy >= h) continue;
                for (int kw = 0; kw < k; ++kw) {
                    const int ix = ox * stride + kw * dil - pad;
                    if (ix < 0 || ix >= wd) continue;
                    acc += wk[kh * k + kw] * act(xp[iy * wd + ix], relu);
                }
            }
        }
        y[i] = acc;
    }
}

// dx (n, cin, h, w) (=|+=) [x > 0 if relu] · Σ_co,kh,kw w · dy; one thread per input.
extern "C" __global__ void conv_bwd_data_f32(const float* x, const float* w, const float* dy,
                                             float* dx, ConvParams args) {
    const int n = args.n, cin = args.cin, h = args.h, wd = args.wd, cout = args.cout, oh = args.oh,
              ow = args.ow, k = args.k, stride = args.stride, pad = args.pad, dil = args.dil,
              groups = args.groups, relu = args.relu, add = args.add;
    const int cig = cin / groups, cog = cout / groups;
    const long long total = (long long)n * cin * h * wd;
    FOR_EACH(i, total) {
        if (relu && !(x[i] > 0.0f)) {
            put(&dx[i], 0.0f, add);
            continue;
        }
        const int ix = (int)(i % wd);
        const int iy = (int)((i / wd) % h);
        const int ci = (int)((i / ((long long)h * wd)) % cin);
        const int b = (int)(i / ((long long)h * wd * cin));
        const int grp = ci / cig, c = ci % cig;
        float acc = 0.0f;
        for (int co = grp * cog; co < (grp + 1) * cog; ++co) {
            const float* dyp = dy + ((long long)b * cout + co) * oh * ow;
            const float* wk = w + ((long long)co * cig + c) * k * k;
            for (int kh = 0; kh < k; ++kh) {
                const int ty = iy + pad - kh * dil;
                if (ty < 0 || ty % stride) continue;
                const int oy = ty / stride;
                if (oy >= oh) continue;
                for (int kw = 0; kw < k; ++kw) {
                    const int tx = ix + pad - kw * dil;
                    if (tx < 0 || tx % stride) continue;
                    const int ox = tx / stride;
                    if (ox >= ow) continue;
                    acc += wk[kh * k + kw] * dyp[oy * ow + ox];
                }
            }
        }
        put(&dx[i], acc, add);
    }
}

// dw (cout, cin/g, k, k) (=|+=) Σ_n,oy,ox dy · act(x) (add = 0 | 1); one
// block per weight element.
extern "C" __global__ void conv_bwd_filter_f32(const float* x, const float* dy, float* dw,
                                               ConvParams args) {
    const int n = args.n, cin = args.cin, h = args.h, wd = args.wd, cout = args.cout, oh = args.oh,
              ow = args.ow, k = args.k, stride = args.stride, pad = args.pad, dil = args.dil,
              groups = args.groups, relu = args.relu, add = args.add;
    __shared__ float sh[32];
    const int cig = cin / groups, cog = cout / groups;
    const int widx = blockIdx.x;  // ((co·cig + c)·k + kh)·k + kw
    const int kw = widx % k, kh = (widx / k) % k;
    const int c = (widx / (k * k)) % cig, co = widx / (k * k * cig);
    const int ci = (co / cog) * cig + c;
    const long long per = (long long)oh * ow, total = (long long)n * per;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < total; j += blockDim.x) {
        const long long b = j / per;
        const int oy = (int)((j % per) / ow), ox = (int)(j % ow);
        const int iy = oy * stride + kh * dil - pad, ix = ox * stride + kw * dil - pad;
        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
        acc += dy[(b * cout + co) * per + oy * ow + ox] *
               act(x[(b * cin + ci) * h * wd + (long long)iy * wd + ix], relu);
    }
    acc = block_sum_f32(acc, sh);
    if (threadIdx.x == 0) put(&dw[widx], acc, add);
}
