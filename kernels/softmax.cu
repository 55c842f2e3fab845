// Row softmax (the mixing weights of α) and mean softmax cross-entropy
// (CPU reference: src/ops/softmax/cpu.rs). Rows are short (the 8 candidate ops,
// the 10 classes): one thread per row.
#include "common.cuh"

// What every softmax and loss kernel is told (SoftmaxParams of
// src/ops/softmax/mod.rs): `rows` rows of `cols` values (a batch of n
// samples over k classes); `at` (accuracy) where the result goes.
struct SoftmaxParams {
    int rows;
    int cols;
    long long at;
};
PARAMS_SIZE(SoftmaxParams, 16);
PARAMS_FIELD(SoftmaxParams, rows, 0);
PARAMS_FIELD(SoftmaxParams, cols, 4);
PARAMS_FIELD(SoftmaxParams, at, 8);

// y (rows, cols) = softmax(x) per row
extern "C" __global__ void softmax_rows_fwd_f32(const float* x, float* y, SoftmaxParams args) {
    const int rows = args.rows, cols = args.cols;
    FOR_EACH(r, (long long)rows) {
        const float* xs = x + r * cols;
        float* ys = y + r * cols;
        float m = xs[0];
        for (int j = 1; j < cols; ++j) m = fmaxf(m, xs[j]);
        float s = 0.0f;
        for (int j = 0; j < cols; ++j) {
            ys[j] = expf(xs[j] - m);
            s += ys[j];
        }
        for (int j = 0; j < cols; ++j) ys[j] = ys[j] / s;
    }
}

// dx += y ⊙ (dy − Σ_row dy ⊙ y)
extern "C" __global__ void softmax_rows_bwd_f32(const float* y, const float* dy, float* dx,
                                                SoftmaxParams args) {
    const int rows = args.rows, cols = args.cols;
    FOR_EACH(r, (long long)rows) {
        const long long o = r * cols;
        float dot = 0.0f;
        for (int j = 0; j < cols; ++j) dot += y[o + j] * dy[o + j];
        for (int j = 0; j < cols; ++j) dx[o + j] += y[o + j] * (dy[o + j] - dot);
    }
}

// loss[0] = mean_n(logsumexp(z_n) − z_n[label_n]) (computed in f64),
// probs (n, k) = softmax(z). One block; a label that is not a class index
// below k makes the loss NaN (the CPU reference panics).
extern "C" __global__ void cross_entropy_fwd_f32(const float* logits, const float* labels,
                                                 float* loss, float* probs, SoftmaxParams args) {
    const int n = args.rows, k = args.cols;
    __shared__ double sh[32];
    double total = 0.0;
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
        const float* z = logits + (long long)r * k;
        float* p = probs + (long long)r * k;
        float m = z[0];
        for (int j = 1; j < k; ++j) m = fmaxf(m, z[j]);
        float s = 0.0f;
        double sd = 0.0;
        for (int j = 0; j < k; ++j) {
            p[j] = expf(z[j] - m);
            s += p[j];
            sd += exp((double)z[j] - (double)m);
        }
        for (int j = 0; j < k; ++j) p[j] = p[j] / s;
        const float lf = labels[r];
        const int c = (int)lf;
        if (!(lf >= 0.0f) || c >= k || (float)c != lf) {
            total += (double)f32_nan();
        } else {
            total += (double)m + log(sd) - (double)z[c];
        }
    }
    total = block_sum_f64(total, sh);
    if (threadIdx.x == 0) loss[0] = (float)(total / (double)n);
}

// out[at] = the fraction of the n rows of logits (n, k) whose largest value
// (the first, on ties) sits at the row's label; one block.
extern "C" __global__ void accuracy_f32(const float* logits, const float* labels, float* out,
                                        SoftmaxParams args) {
    const long long at = args.at;
    const int n = args.rows, k = args.cols;
    __shared__ double sh[32];
    double hits = 0.0;
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
        const float* z = logits + (long long)r * k;
        int best = 0;
        for (int j = 1; j < k; ++j)
            if (z[j] > z[best]) best = j;
        if ((float)best == labels[r]) hits += 1.0;
    }
    hits = block_sum_f64(hits, sh);
    if (threadIdx.x == 0) out[at] = (float)(hits / (double)n);
}

// dz (n, k) += dloss[0]·(probs − onehot(label))/n; one thread per element.
extern "C" __global__ void cross_entropy_bwd_f32(const float* probs, const float* labels,
                                                 const float* dloss, float* dlogits,
                                                 SoftmaxParams args) {
    const int n = args.rows, k = args.cols;
    const float s = dloss[0] / (float)n;
    FOR_EACH(i, (long long)n * k) {
        const int r = (int)(i / k), j = (int)(i % k);
        const float t = ((int)labels[r] == j) ? 1.0f : 0.0f;
        dlogits[i] += s * (probs[i] - t);
    }
}
