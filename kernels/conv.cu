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
// `data_blocks` (dwconv_bwd) the blocks that take dx; `chunk` (pwconv's filter
// gradient) the products of each split.
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

// y (n, c, oh, ow) = Σ_kh,kw w (c, 1, k, k) · act(x (n, c, h, w)); one thread per output.
extern "C" __global__ void dwconv_fwd_f32(const float* x, const float* w, float* y,
                                          ConvParams args) {
    const int n = args.n, c = args.cin, h = args.h, wd = args.wd, oh = args.oh, ow = args.ow,
              k = args.k, stride = args.stride, pad = args.pad, dil = args.dil, relu = args.relu;
    const long long total = (long long)n * c * oh * ow;
    FOR_EACH(i, total) {
        const int ox = (int)(i % ow);
        const int oy = (int)((i / ow) % oh);
        const long long p = i / ((long long)oh * ow);  // plane n·c + ch
        const int ch = (int)(p % c);
        const float* xp = x + p * h * wd;
        const float* wk = w + (long long)ch * k * k;
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
        y[i] = acc;
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
