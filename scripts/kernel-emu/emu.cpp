// Runs the kernels with the most index arithmetic (conv, pool, bn, the
// reductions, cross-entropy, gap) under shim.h and compares them with
// direct, loop-per-definition references. A machine without a GPU can
// check the kernels' logic this way; tests/gpu_parity.rs on a GPU remains
// the real check. Build and run: scripts/kernel-emu.sh
#include "shim.h"
#include "common.cuh"
#include "elementwise.cu"
#include "conv.cu"
#include "pool.cu"
#include "bn.cu"
#include "softmax.cu"
#include "layout.cu"
#include <random>
std::mt19937 rng(1);
std::vector<float> rnd(size_t n) { std::uniform_real_distribution<float> d(-1, 1); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int fails = 0;
void close(const char* what, const std::vector<float>& g, const std::vector<float>& w, double atol = 1e-5, double rtol = 1e-5) {
  for (size_t i = 0; i < g.size(); ++i) {
    double e = std::fabs((double)g[i] - w[i]);
    if (!(e <= atol + rtol * std::fabs(w[i]))) { printf("FAIL %s [%zu] got %g want %g\n", what, i, g[i], w[i]); ++fails; return; }
  }
}
dim3 D(unsigned x, unsigned y = 1, unsigned z = 1) { dim3 d; d.x = x; d.y = y; d.z = z; return d; }
unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }
float actr(float v, bool r) { return (r && !(v > 0)) ? 0.f : v; }

void test_conv(int n, int cin, int h, int w, int cout, int k, int s, int pad, int dil, int groups, bool relu) {
  int oh = (h + 2 * pad - dil * (k - 1) - 1) / s + 1, ow = (w + 2 * pad - dil * (k - 1) - 1) / s + 1;
  int cig = cin / groups, cog = cout / groups;
  auto x = rnd((size_t)n * cin * h * w), wt = rnd((size_t)cout * cig * k * k), dy = rnd((size_t)n * cout * oh * ow);
  auto dx0 = rnd(x.size()), dw0 = rnd(wt.size());
  std::vector<float> y(dy.size(), 0), dxr = dx0, dwr = dw0, acc(x.size(), 0);
  for (int b = 0; b < n; ++b) for (int co = 0; co < cout; ++co) for (int oy = 0; oy < oh; ++oy) for (int ox = 0; ox < ow; ++ox)
    for (int c = 0; c < cig; ++c) for (int kh = 0; kh < k; ++kh) for (int kw = 0; kw < k; ++kw) {
      int iy = oy * s + kh * dil - pad, ix = ox * s + kw * dil - pad;
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
      int ci = (co / cog) * cig + c;
      size_t xi = (((size_t)b * cin + ci) * h + iy) * w + ix, yi = (((size_t)b * cout + co) * oh + oy) * ow + ox;
      size_t wi = (((size_t)co * cig + c) * k + kh) * k + kw;
      y[yi] += wt[wi] * actr(x[xi], relu);
      acc[xi] += wt[wi] * dy[yi];
      dwr[wi] += dy[yi] * actr(x[xi], relu);
    }
  for (size_t i = 0; i < x.size(); ++i) if (!relu || x[i] > 0) dxr[i] += acc[i];
  std::vector<float> yg(y.size(), NAN), dxg = dx0, dwg = dw0;
  bool pw = k == 1 && pad == 0 && groups == 1, dw = groups == cin && cin == cout;
  int r = relu;
  if (pw) {
    launch(D(cdiv(oh * ow, 16), cdiv(cout, 16), n), D(16, 16), true, [&] { pwconv_fwd_f32(x.data(), wt.data(), yg.data(), cin, cout, h, w, oh, ow, s, r); });
    launch(D(cdiv(oh * ow, 16), cdiv(cin, 16), n), D(16, 16), true, [&] { pwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), cin, cout, h, w, oh, ow, s, r); });
    launch(D(cdiv(cin, 16), cdiv(cout, 16), cdiv((long long)n * oh * ow, 4096)), D(16, 16), true, [&] { pwconv_bwd_filter_f32(x.data(), dy.data(), dwg.data(), n, cin, cout, h, w, oh, ow, s, r); });
  } else if (dw) {
    launch(D(cdiv(y.size(), 256)), D(256), false, [&] { dwconv_fwd_f32(x.data(), wt.data(), yg.data(), n, cin, h, w, oh, ow, k, s, pad, dil, r); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { dwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), n, cin, h, w, oh, ow, k, s, pad, dil, r); });
    launch(D(wt.size()), D(64), true, [&] { dwconv_bwd_filter_f32(x.data(), dy.data(), dwg.data(), n, cin, h, w, oh, ow, k, s, pad, dil, r); });
  } else {
    launch(D(cdiv(y.size(), 256)), D(256), false, [&] { conv_fwd_f32(x.data(), wt.data(), yg.data(), n, cin, h, w, cout, oh, ow, k, s, pad, dil, groups, r); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { conv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), n, cin, h, w, cout, oh, ow, k, s, pad, dil, groups, r); });
    launch(D(wt.size()), D(64), true, [&] { conv_bwd_filter_f32(x.data(), dy.data(), dwg.data(), n, cin, h, w, cout, oh, ow, k, s, pad, dil, groups, r); });
  }
  char tag[200]; snprintf(tag, 200, "conv %d %d %d %d %d k%d s%d p%d d%d g%d r%d", n, cin, h, w, cout, k, s, pad, dil, groups, r);
  std::string t(tag);
  close((t + " fwd").c_str(), yg, y); close((t + " bwd_data").c_str(), dxg, dxr); close((t + " bwd_filter").c_str(), dwg, dwr, 1e-4, 1e-4);
}

void test_pool(int nc, int h, int w, int k, int s, int pad, bool ties) {
  int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
  std::vector<float> x = rnd((size_t)nc * h * w);
  if (ties) for (auto& v : x) v = (float)(int)((v + 1) * 2);
  auto dy = rnd((size_t)nc * oh * ow), dx0 = rnd(x.size());
  std::vector<float> ym(dy.size()), ya(dy.size()), dxm = dx0, dxa = dx0;
  for (int p = 0; p < nc; ++p) for (int oy = 0; oy < oh; ++oy) for (int ox = 0; ox < ow; ++ox) {
    int best = -1, cnt = 0; float sum = 0;
    for (int iy = oy * s - pad; iy < oy * s - pad + k; ++iy) for (int ix = ox * s - pad; ix < ox * s - pad + k; ++ix) {
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
      int i = iy * w + ix; ++cnt; sum += x[p * h * w + i];
      if (best < 0 || x[p * h * w + i] > x[p * h * w + best]) best = i;
    }
    size_t yi = ((size_t)p * oh + oy) * ow + ox;
    ym[yi] = x[p * h * w + best]; ya[yi] = sum / cnt;
    dxm[p * h * w + best] += dy[yi];
    for (int iy = oy * s - pad; iy < oy * s - pad + k; ++iy) for (int ix = ox * s - pad; ix < ox * s - pad + k; ++ix)
      if (iy >= 0 && iy < h && ix >= 0 && ix < w) dxa[p * h * w + iy * w + ix] += dy[yi] / cnt;
  }
  std::vector<float> ymg(ym.size(), NAN), yag(ym.size(), NAN), dxmg = dx0, dxag = dx0;
  launch(D(cdiv(ym.size(), 256)), D(256), false, [&] { max_pool_fwd_f32(x.data(), ymg.data(), nc, h, w, oh, ow, k, s, pad); });
  launch(D(cdiv(ym.size(), 256)), D(256), false, [&] { avg_pool_fwd_f32(x.data(), yag.data(), nc, h, w, oh, ow, k, s, pad); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { max_pool_bwd_f32(x.data(), dy.data(), dxmg.data(), nc, h, w, oh, ow, k, s, pad); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { avg_pool_bwd_f32(dy.data(), dxag.data(), nc, h, w, oh, ow, k, s, pad); });
  close("max fwd", ymg, ym); close("avg fwd", yag, ya); close("max bwd", dxmg, dxm); close("avg bwd", dxag, dxa);
}

void test_bn(int n, int c, int hw, float off) {
  auto x = rnd((size_t)n * c * hw); for (auto& v : x) v += off;
  auto gm = rnd(c), bt = rnd(c), dy = rnd(x.size()), dx0 = rnd(x.size()), dg0 = rnd(c), db0 = rnd(c);
  std::vector<float> rm(c, 0.1f), rv(c, 1.0f);
  std::vector<float> y(x.size()), saved(2 * c), rmr = rm, rvr = rv, dxr = dx0, dgr = dg0, dbr = db0;
  double cnt = (double)n * hw;
  for (int ch = 0; ch < c; ++ch) {
    double s = 0, q = 0; for (int b = 0; b < n; ++b) for (int i = 0; i < hw; ++i) s += x[((size_t)b * c + ch) * hw + i];
    double mean = s / cnt; for (int b = 0; b < n; ++b) for (int i = 0; i < hw; ++i) { double d = x[((size_t)b * c + ch) * hw + i] - mean; q += d * d; }
    double var = q / cnt; float inv = (float)(1.0 / std::sqrt(var + 1e-5)); saved[ch] = (float)mean; saved[c + ch] = inv;
    rmr[ch] = (float)(0.9 * rm[ch] + 0.1 * mean); rvr[ch] = (float)(0.9 * rv[ch] + 0.1 * (cnt > 1 ? var * cnt / (cnt - 1) : var));
    double sd = 0, sdx = 0;
    for (int b = 0; b < n; ++b) for (int i = 0; i < hw; ++i) { size_t j = ((size_t)b * c + ch) * hw + i; float xh = (x[j] - (float)mean) * inv; y[j] = xh * gm[ch] + bt[ch]; sd += dy[j]; sdx += (double)(dy[j] * xh); }
    dgr[ch] += (float)sdx; dbr[ch] += (float)sd;
    for (int b = 0; b < n; ++b) for (int i = 0; i < hw; ++i) { size_t j = ((size_t)b * c + ch) * hw + i; float xh = (x[j] - (float)mean) * inv; dxr[j] += gm[ch] * inv * (dy[j] - (float)(sd / cnt) - xh * (float)(sdx / cnt)); }
  }
  std::vector<float> yg(y.size(), NAN), sg(2 * c, NAN), rmg = rm, rvg = rv, dxg = dx0, dgg = dg0, dbg = db0;
  launch(D(c), D(1024), true, [&] { bn_fwd_train_f32(x.data(), gm.data(), bt.data(), yg.data(), sg.data(), rmg.data(), rvg.data(), n, c, hw, 1e-5f, 0.1f); });
  launch(D(c), D(1024), true, [&] { bn_bwd_f32(x.data(), gm.data(), sg.data(), dy.data(), dxg.data(), dgg.data(), dbg.data(), n, c, hw); });
  close("bn y", yg, y, 1e-4, 1e-4); close("bn saved", sg, saved, 1e-4, 1e-4); close("bn rm", rmg, rmr); close("bn rv", rvg, rvr, 1e-4, 1e-4);
  close("bn dx", dxg, dxr, 1e-4, 1e-4); close("bn dg", dgg, dgr, 1e-3, 1e-4); close("bn db", dbg, dbr, 1e-3, 1e-4);
}

int main() {
  // depthwise, pointwise (odd, stride 2, split-K), general
  test_conv(2, 5, 9, 7, 5, 3, 1, 1, 1, 5, true); test_conv(3, 4, 8, 8, 4, 3, 2, 1, 1, 4, true);
  test_conv(2, 3, 12, 13, 3, 5, 2, 4, 2, 3, true); test_conv(2, 4, 9, 9, 4, 3, 1, 2, 2, 4, false);
  test_conv(2, 5, 7, 9, 19, 1, 1, 0, 1, 1, false); test_conv(3, 17, 8, 8, 33, 1, 1, 0, 1, 1, true);
  test_conv(2, 6, 9, 11, 4, 1, 2, 0, 1, 1, true); test_conv(3, 4, 40, 40, 5, 1, 1, 0, 1, 1, true);
  test_conv(2, 3, 10, 9, 12, 3, 1, 1, 1, 1, false); test_conv(2, 6, 7, 7, 4, 3, 2, 1, 1, 2, true);
  test_conv(1, 4, 9, 8, 5, 3, 1, 2, 2, 1, true);
  test_pool(6, 8, 8, 3, 1, 1, true); test_pool(6, 9, 7, 3, 2, 1, true); test_pool(2, 5, 6, 3, 2, 0, false); test_pool(3, 9, 7, 3, 2, 1, false);
  test_bn(2, 3, 5, 0); test_bn(3, 2, 49, 1000); test_bn(1, 2, 1, 0); test_bn(4, 2, 300, 0);
  // reductions, CE, gap
  { auto a = rnd(100003), b = rnd(100003); std::vector<double> part(1024); std::vector<float> out = {0.5f, 0.25f};
    unsigned parts = cdiv(100003, 256);
    launch(D(parts), D(256), true, [&] { reduce_partial_f64(a.data(), b.data(), 100003, part.data()); });
    launch(D(1), D(256), true, [&] { reduce_finish_f32(part.data(), (int)parts, out.data(), 1, 1); });
    double s = 0; for (size_t i = 0; i < a.size(); ++i) s += (double)a[i] * b[i];
    close("dot_elem", out, {0.5f, 0.25f + (float)s}); }
  { int n = 37, k = 10; auto z = rnd(n * k); std::vector<float> lab(n), loss(1, NAN), pr(n * k, NAN);
    for (int i = 0; i < n; ++i) lab[i] = (float)(i * 7 % k);
    launch(D(1), D(256), true, [&] { cross_entropy_fwd_f32(z.data(), lab.data(), loss.data(), pr.data(), n, k); });
    double tot = 0; std::vector<float> prr(n * k);
    for (int i = 0; i < n; ++i) { double m = -1e30, s = 0; for (int j = 0; j < k; ++j) m = std::max(m, (double)z[i * k + j]);
      for (int j = 0; j < k; ++j) s += std::exp(z[i * k + j] - m); for (int j = 0; j < k; ++j) prr[i * k + j] = (float)(std::exp(z[i * k + j] - m) / s);
      tot += m + std::log(s) - z[i * k + (int)lab[i]]; }
    close("ce loss", loss, {(float)(tot / n)}); close("ce probs", pr, prr); }
  { int nc = 37, hw = 50; auto x = rnd(nc * hw); std::vector<float> y(nc, NAN), yr(nc);
    for (int p = 0; p < nc; ++p) { float s = 0; for (int i = 0; i < hw; ++i) s += x[p * hw + i]; yr[p] = s / hw; }
    launch(D(cdiv(nc, 8)), D(256), true, [&] { gap_fwd_f32(x.data(), y.data(), nc, hw); });
    close("gap", y, yr); }
  printf("%s (%d failures)\n", fails ? "FAILED" : "all emulated kernels match", fails);
  return fails != 0;
}
