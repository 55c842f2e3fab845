// Fully connected layer y = x·wᵀ + b, the classifier (CPU reference:
// src/ops/linear/cpu.rs). Its products are tiny (batch × 256 × classes): one
// thread per output element, no tiling. With `groups` > 1 the inputs and
// outputs are split into that many equal groups, output group g reading
// input group g only (w (o, in/groups)): RARTS's two classifiers side by side.
#include "common.cuh"

// What every linear kernel is told (LinearParams of src/ops/linear/mod.rs):
// x (n, inputs) → y (n, outputs), in `groups` independent blocks.
struct LinearParams {
    int n;
    int inputs;
    int outputs;
    int groups;
};
PARAMS_SIZE(LinearParams, 16);
PARAMS_FIELD(LinearParams, n, 0);
PARAMS_FIELD(LinearParams, inputs, 4);
PARAMS_FIELD(LinearParams, outputs, 8);
PARAMS_FIELD(LinearParams, groups, 12);

// y (n, o) = x (n, i)·w (o, i/groups)ᵀ per group + b (o); b may be null.
extern "C" __global__ void linear_fwd_f32(const float* x, const float* w, const float* b, float* y,
                                          LinearParams args) {
    const int n = args.n, in = args.inputs, o = args.outputs, groups = args.groups;
    const int ig = in / groups, og = o / groups;
    FOR_EACH(t, (long long)n * o) {
        const int r = (int)(t / o), c = (int)(t % o);
        const float* xr = x + (long long)r * in + (long long)(c / og) * ig;
        const float* wr = w + (long long)c * ig;
        float acc = 0.0f;
        for (int j = 0; j < ig; ++j) acc += xr[j] * wr[j];
        y[t] = acc + (b ? b[c] : 0.0f);
    }
}

// dx (n, i) += dy (n, o)·w (o, i/groups) per group
extern "C" __global__ void linear_bwd_data_f32(const float* w, const float* dy, float* dx,
                                               LinearParams args) {
    const int n = args.n, in = args.inputs, o = args.outputs, groups = args.groups;
    const int ig = in / groups, og = o / groups;
    FOR_EACH(t, (long long)n * in) {
        const int r = (int)(t / in), jt = (int)(t % in), g = jt / ig, j = jt % ig;
        float acc = 0.0f;
        for (int c = g * og; c < (g + 1) * og; ++c) acc += dy[(long long)r * o + c] * w[(long long)c * ig + j];
        dx[t] += acc;
    }
}

// dw (o, i/groups) += dyᵀ·x per group
extern "C" __global__ void linear_bwd_filter_f32(const float* x, const float* dy, float* dw,
                                                 LinearParams args) {
    const int n = args.n, in = args.inputs, o = args.outputs, groups = args.groups;
    const int ig = in / groups, og = o / groups;
    FOR_EACH(t, (long long)o * ig) {
        const int c = (int)(t / ig), j = (int)(t % ig);
        const long long xj = (long long)(c / og) * ig + j;
        float acc = 0.0f;
        for (int r = 0; r < n; ++r) acc += dy[(long long)r * o + c] * x[(long long)r * in + xj];
        dw[t] += acc;
    }
}

// db (o) += Σ_n dy
extern "C" __global__ void linear_bwd_bias_f32(const float* dy, float* db, LinearParams args) {
    const int n = args.n, o = args.outputs;
    FOR_EACH(c, (long long)o) {
        float acc = 0.0f;
        for (int r = 0; r < n; ++r) acc += dy[(long long)r * o + c];
        db[c] += acc;
    }
}
