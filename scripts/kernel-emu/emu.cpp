// Runs every kernel under shim.h and compares them with
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
#include "linear.cu"
#include "optim.cu"
#include <random>
std::mt19937 rng(1);
std::vector<float> rnd(size_t n) { std::uniform_real_distribution<float> d(-1, 1); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int fails = 0;
// FNV-1a over the bits of every result checked: equal digests, equal results.
unsigned long long digest = 1469598103934665603ull;
// Folds the bits of `g` into the digest.
void note(const std::vector<float>& g) {
  for (float v : g) { unsigned u; std::memcpy(&u, &v, 4); for (int b = 0; b < 4; ++b) digest = (digest ^ ((u >> (8 * b)) & 0xff)) * 1099511628211ull; }
}
void close(const char* what, const std::vector<float>& g, const std::vector<float>& w, double atol = 1e-5, double rtol = 1e-5) {
  note(g);
  for (size_t i = 0; i < g.size(); ++i) {
    double e = std::fabs((double)g[i] - w[i]);
    if (!(e <= atol + rtol * std::fabs(w[i]))) { printf("FAIL %s [%zu] got %g want %g\n", what, i, g[i], w[i]); ++fails; return; }
  }
}
dim3 D(unsigned x, unsigned y = 1, unsigned z = 1) { dim3 d; d.x = x; d.y = y; d.z = z; return d; }
unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

// EMU_DUMP=DIR: each case's geometry, inputs and the kernels' outputs, as
// DIR/<kind>-<n>.bin, for a Rust test to hold to the Rust reference (the
// convolution's semantics are written once, in src/ops/conv/reference.rs;
// tests/kernel_emu.rs reads these). The format: u32 count and that many
// i32 of geometry, then a u32 count of arrays, each a u32 name length, the
// name, a u64 element count and the f32 values, little-endian.
void dump(const char* kind, std::initializer_list<int> geom,
          std::initializer_list<std::pair<const char*, const std::vector<float>*>> arrays) {
  static int seq = 0;
  const char* dir = std::getenv("EMU_DUMP");
  if (!dir || !*dir) return;
  char path[1024];
  std::snprintf(path, sizeof path, "%s/%s-%03d.bin", dir, kind, seq++);
  FILE* f = std::fopen(path, "wb");
  if (!f) { printf("FAIL cannot write %s\n", path); ++fails; return; }
  auto u32 = [&](uint32_t v) { std::fwrite(&v, 4, 1, f); };
  u32((uint32_t)geom.size());
  for (int g : geom) { int32_t v = g; std::fwrite(&v, 4, 1, f); }
  u32((uint32_t)arrays.size());
  for (const auto& [name, v] : arrays) {
    u32((uint32_t)std::strlen(name));
    std::fwrite(name, 1, std::strlen(name), f);
    uint64_t c = v->size();
    std::fwrite(&c, 8, 1, f);
    std::fwrite(v->data(), 4, v->size(), f);
  }
  if (std::fclose(f) != 0) { printf("FAIL cannot write %s\n", path); ++fails; }
}

// The convolution kernels on one geometry, as the launcher picks them: their
// outputs go to the digest and (EMU_DUMP) to a file that tests/kernel_emu.rs
// compares with src/ops/conv/reference.rs.
int conv_cases = 0;
void test_conv(int n, int cin, int h, int w, int cout, int k, int s, int pad, int dil, int groups, bool relu) {
  ++conv_cases;
  int oh = (h + 2 * pad - dil * (k - 1) - 1) / s + 1, ow = (w + 2 * pad - dil * (k - 1) - 1) / s + 1;
  int cig = cin / groups, cog = cout / groups;
  auto x = rnd((size_t)n * cin * h * w), wt = rnd((size_t)cout * cig * k * k), dy = rnd((size_t)n * cout * oh * ow);
  auto dx0 = rnd(x.size()), dw0 = rnd(wt.size());
  std::vector<float> yg(dy.size(), NAN), dxg = dx0, dsg(x.size(), NAN), dwg = dw0, dws(wt.size(), NAN);
  std::vector<float> dxb, dwb;  // depthwise: both gradients in one launch
  bool dw = groups == cin && cin == cout, pw = k == 1 && pad == 0 && (groups == 1 || !dw);
  int r = relu, set = 0;
  if (pw && s > 1) {  // as the launcher does: a strided 1×1 conv leaves pixels between samples alone
    std::fill(dsg.begin(), dsg.end(), 0.f);
    set = 1;
  }
  if (pw) {
    unsigned gy = groups * cdiv(cog, 16), gyi = groups * cdiv(cig, 16);
    launch(D(cdiv(oh * ow, 16), gy, n), D(16, 16), true, [&] { pwconv_fwd_f32(x.data(), wt.data(), yg.data(), ConvParams{.cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .stride = s, .groups = groups, .relu = r}); });
    launch(D(cdiv(oh * ow, 16), gyi, n), D(16, 16), true, [&] { pwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), ConvParams{.cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .stride = s, .groups = groups, .relu = r, .add = 1}); });
    launch(D(cdiv(oh * ow, 16), gyi, n), D(16, 16), true, [&] { pwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dsg.data(), ConvParams{.cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .stride = s, .groups = groups, .relu = r, .add = set}); });
    // Splits as the launcher picks them (src/ops/conv/cuda.rs pw_splits), the
    // partial tiles, then their sum in order.
    long long products = (long long)n * oh * ow, fit = (1LL << 22) / ((long long)cout * cig);
    fit = fit < 1 ? 1 : (fit > 65535 ? 65535 : fit);
    long long splits = cdiv(products, 4096);
    splits = splits < 1 ? 1 : (splits > fit ? fit : splits);
    long long chunk = cdiv(products, splits);
    std::vector<float> part((size_t)(splits * cout * cig), NAN);
    std::vector<unsigned> ticket((size_t)cdiv(cig, 16) * gy, 0u);
    launch(D(cdiv(cig, 16), gy, splits), D(16, 16), true, [&] { pwconv_bwd_filter_f32(x.data(), dy.data(), part.data(), dwg.data(), ticket.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .stride = s, .groups = groups, .relu = r, .add = 1, .chunk = chunk}); });
    for (unsigned t : ticket) if (t != 0) { printf("FAIL pwconv tickets not reset\n"); ++fails; break; }
    launch(D(cdiv(cig, 16), gy, splits), D(16, 16), true, [&] { pwconv_bwd_filter_f32(x.data(), dy.data(), part.data(), dws.data(), ticket.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .stride = s, .groups = groups, .relu = r, .add = 0, .chunk = chunk}); });
  } else if (dw) {
    launch(D(cdiv(yg.size(), 256)), D(256), false, [&] { dwconv_fwd_f32(x.data(), wt.data(), yg.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r}); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { dwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r, .add = 1}); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { dwconv_bwd_data_f32(x.data(), wt.data(), dy.data(), dsg.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r, .add = 0}); });
    launch(D(wt.size()), D(64), true, [&] { dwconv_bwd_filter_f32(x.data(), dy.data(), dwg.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r, .add = 1}); });
    launch(D(wt.size()), D(64), true, [&] { dwconv_bwd_filter_f32(x.data(), dy.data(), dws.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r, .add = 0}); });
    // both gradients in one launch: 7 blocks of the data loop, then one block per weight
    dxb = dx0;
    dwb.assign(wt.size(), NAN);
    launch(D(7 + (unsigned)wt.size()), D(64), true, [&] { dwconv_bwd_f32(x.data(), wt.data(), dy.data(), dxb.data(), dwb.data(), ConvParams{.n = n, .cin = cin, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .relu = r, .add = 1, .dw_add = 0, .data_blocks = 7}); });
    close("dwconv_bwd dw set", dwb, std::vector<float>(dws), 0, 0);  // the same sums as dwconv_bwd_filter
    note(dxb);
  } else {
    launch(D(cdiv(yg.size(), 256)), D(256), false, [&] { conv_fwd_f32(x.data(), wt.data(), yg.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = groups, .relu = r}); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { conv_bwd_data_f32(x.data(), wt.data(), dy.data(), dxg.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = groups, .relu = r, .add = 1}); });
    launch(D(cdiv(x.size(), 256)), D(256), false, [&] { conv_bwd_data_f32(x.data(), wt.data(), dy.data(), dsg.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = groups, .relu = r, .add = 0}); });
    launch(D(wt.size()), D(64), true, [&] { conv_bwd_filter_f32(x.data(), dy.data(), dwg.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = groups, .relu = r, .add = 1}); });
    launch(D(wt.size()), D(64), true, [&] { conv_bwd_filter_f32(x.data(), dy.data(), dws.data(), ConvParams{.n = n, .cin = cin, .cout = cout, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = groups, .relu = r, .add = 0}); });
  }
  for (const auto* v : {&yg, &dxg, &dsg, &dwg, &dws}) note(*v);
  dump("conv", {n, cin, h, w, cout, k, s, pad, dil, groups, r},
       {{"x", &x}, {"w", &wt}, {"dy", &dy}, {"dx0", &dx0}, {"dw0", &dw0}, {"y", &yg}, {"dx_add", &dxg},
        {"dx_set", &dsg}, {"dw_add", &dwg}, {"dw_set", &dws}, {"dx_add_fused", &dxb}, {"dw_set_fused", &dwb}});
}

// A chain's training forward (ReLU → depthwise → 1×1 → BatchNorm):
// chain_fwd_f32 then bn_fwd_merged_f32, tiles of T pixels, against direct
// loops (the statistics in one pass about the mean, in f64).
void test_chain(int n, int c, int nets, int h, int w, int k, int s, int dil, int cout, int T) {
  int pad = dil * (k - 1) / 2, oh = (h + 2 * pad - dil * (k - 1) - 1) / s + 1, ow = (w + 2 * pad - dil * (k - 1) - 1) / s + 1;
  int cin = c * nets, co = cout * nets, P = oh * ow, tiles = (int)cdiv(P, T);
  auto x = rnd((size_t)n * cin * h * w), wdw = rnd((size_t)cin * k * k), wpw = rnd((size_t)co * c);
  auto gm = rnd(co), bt = rnd(co);
  std::vector<float> rm(co, 0.1f), rv(co, 1.0f);
  std::vector<float> d((size_t)n * cin * P), p((size_t)n * co * P), y(p.size()), saved(2 * co), rmr = rm, rvr = rv;
  for (int b = 0; b < n; ++b)
    for (int ch = 0; ch < cin; ++ch)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          float acc = 0;
          for (int kh = 0; kh < k; ++kh)
            for (int kw = 0; kw < k; ++kw) {
              int iy = oy * s + kh * dil - pad, ix = ox * s + kw * dil - pad;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              float v = x[(((size_t)b * cin + ch) * h + iy) * w + ix];
              acc += wdw[(size_t)ch * k * k + kh * k + kw] * (v > 0 ? v : 0);
            }
          d[((size_t)b * cin + ch) * P + oy * ow + ox] = acc;
        }
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < co; ++o)
      for (int q = 0; q < P; ++q) {
        int g = o / cout;
        float acc = 0;
        for (int ci = 0; ci < c; ++ci) acc += wpw[(size_t)o * c + ci] * d[((size_t)b * cin + g * c + ci) * P + q];
        p[((size_t)b * co + o) * P + q] = acc;
      }
  double cnt = (double)n * P;
  for (int o = 0; o < co; ++o) {
    double sum = 0, sq = 0;
    for (int b = 0; b < n; ++b) for (int q = 0; q < P; ++q) sum += p[((size_t)b * co + o) * P + q];
    double mean = sum / cnt;
    for (int b = 0; b < n; ++b) for (int q = 0; q < P; ++q) { double e = p[((size_t)b * co + o) * P + q] - mean; sq += e * e; }
    double var = sq / cnt;
    float inv = (float)(1.0 / std::sqrt(var + 1e-5));
    saved[o] = (float)mean; saved[co + o] = inv;
    rmr[o] = (float)(0.9 * rm[o] + 0.1 * mean); rvr[o] = (float)(0.9 * rv[o] + 0.1 * (cnt > 1 ? var * cnt / (cnt - 1) : var));
    for (int b = 0; b < n; ++b) for (int q = 0; q < P; ++q) { size_t j = ((size_t)b * co + o) * P + q; y[j] = (p[j] - (float)mean) * inv * gm[o] + bt[o]; }
  }
  std::vector<float> dg(d.size(), NAN), pg(p.size(), NAN), yg(y.size(), NAN), sg(2 * co, NAN), rmg = rm, rvg = rv;
  int parts = n * tiles;
  std::vector<double> part((size_t)co * parts * 3, NAN);
  launch(D(tiles, n, nets), D(256), true, [&] { chain_fwd_f32(x.data(), wdw.data(), wpw.data(), dg.data(), pg.data(), part.data(), ConvParams{.n = n, .cin = cin, .cout = co, .h = h, .wd = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .dil = dil, .groups = nets, .relu = 1, .chunk = T}); });
  long long cntl = (long long)n * P, blocks = std::clamp((long long)cdiv(cntl, 8192), 1LL, 64LL), chunk = cdiv(cntl, blocks);
  launch(D(co, blocks), D(256), true, [&] { bn_fwd_merged_f32(pg.data(), part.data(), gm.data(), bt.data(), yg.data(), sg.data(), rmg.data(), rvg.data(), BnParams{.n = n, .c = co, .hw = P, .eps = 1e-5f, .momentum = 0.1f, .chunk = chunk, .parts = parts}); });
  close("chain d", dg, d); close("chain p", pg, p); close("chain y", yg, y, 1e-4, 1e-4); close("chain saved", sg, saved, 1e-4, 1e-4);
  close("chain rm", rmg, rmr); close("chain rv", rvg, rvr, 1e-4, 1e-4);
  // The backward: BatchNorm's sums (bn_bwd_partial_f32), then chain_bwd_f32
  // with dd, the 1×1 filter gradient (added, then overwritten), dγ and dβ.
  auto dy = rnd(p.size()), dw0 = rnd(wpw.size()), dg0 = rnd(co), db0 = rnd(co);
  std::vector<float> dd(d.size(), 0.f), dwr = dw0, dgr = dg0, dbr = db0, dp(p.size());
  for (int o = 0; o < co; ++o) {
    double sd = 0, sdx = 0;
    for (int b = 0; b < n; ++b) for (int q = 0; q < P; ++q) { size_t j = ((size_t)b * co + o) * P + q; float xh = (p[j] - saved[o]) * saved[co + o]; sd += dy[j]; sdx += (double)(dy[j] * xh); }
    dgr[o] += (float)sdx; dbr[o] += (float)sd;
    for (int b = 0; b < n; ++b) for (int q = 0; q < P; ++q) { size_t j = ((size_t)b * co + o) * P + q; float xh = (p[j] - saved[o]) * saved[co + o]; dp[j] = gm[o] * saved[co + o] * (dy[j] - (float)(sd / cnt) - xh * (float)(sdx / cnt)); }
  }
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < co; ++o)
      for (int q = 0; q < P; ++q) {
        int g = o / cout;
        float v = dp[((size_t)b * co + o) * P + q];
        for (int ci = 0; ci < c; ++ci) {
          dd[((size_t)b * cin + g * c + ci) * P + q] += wpw[(size_t)o * c + ci] * v;
          dwr[(size_t)o * c + ci] += v * d[((size_t)b * cin + g * c + ci) * P + q];
        }
      }
  std::vector<double> bpart((size_t)co * blocks * 2, NAN);
  launch(D(co, blocks), D(256), true, [&] { bn_bwd_partial_f32(p.data(), saved.data(), dy.data(), bpart.data(), BnParams{.n = n, .c = co, .hw = P, .chunk = chunk}); });
  std::vector<float> ddg(d.size(), NAN), dwg = dw0, dgg = dg0, dbg = db0, wparts((size_t)parts * co * c, NAN), dws(wpw.size(), NAN);
  std::vector<unsigned> ticket(nets, 0u);
  ConvParams bp{.n = n, .cin = cin, .cout = co, .oh = oh, .ow = ow, .groups = nets, .add = 1, .data_blocks = (int)blocks, .chunk = T};
  launch(D(tiles, n, nets), D(256), true, [&] { chain_bwd_f32(p.data(), dy.data(), d.data(), wpw.data(), gm.data(), saved.data(), bpart.data(), ddg.data(), wparts.data(), dwg.data(), ticket.data(), dgg.data(), dbg.data(), bp); });
  for (unsigned t : ticket) if (t != 0) { printf("FAIL chain tickets not reset\n"); ++fails; break; }
  bp.add = 0;
  launch(D(tiles, n, nets), D(256), true, [&] { chain_bwd_f32(p.data(), dy.data(), d.data(), wpw.data(), gm.data(), saved.data(), bpart.data(), nullptr, wparts.data(), dws.data(), ticket.data(), nullptr, nullptr, bp); });
  std::vector<float> dwsr(wpw.size()); for (size_t i = 0; i < dwsr.size(); ++i) dwsr[i] = dwr[i] - dw0[i];
  close("chain dd", ddg, dd, 1e-4, 1e-4); close("chain dw_pw", dwg, dwr, 1e-4, 1e-4); close("chain dw_pw set", dws, dwsr, 1e-4, 1e-4); close("chain dgamma", dgg, dgr, 1e-3, 1e-4); close("chain dbeta", dbg, dbr, 1e-3, 1e-4);
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
  std::vector<float> dsmg(x.size(), NAN), dsag(x.size(), NAN), dsm(x.size()), dsa(x.size());  // overwriting (add = 0)
  for (size_t i = 0; i < x.size(); ++i) { dsm[i] = dxm[i] - dx0[i]; dsa[i] = dxa[i] - dx0[i]; }
  const PoolParams pp{.nc = nc, .h = h, .w = w, .oh = oh, .ow = ow, .k = k, .stride = s, .pad = pad, .add = 0};
  PoolParams pp1 = pp;
  pp1.add = 1;
  launch(D(cdiv(ym.size(), 256)), D(256), false, [&] { max_pool_fwd_f32(x.data(), ymg.data(), pp); });
  launch(D(cdiv(ym.size(), 256)), D(256), false, [&] { avg_pool_fwd_f32(x.data(), yag.data(), pp); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { max_pool_bwd_f32(x.data(), dy.data(), dxmg.data(), pp1); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { avg_pool_bwd_f32(dy.data(), dxag.data(), pp1); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { max_pool_bwd_f32(x.data(), dy.data(), dsmg.data(), pp); });
  launch(D(cdiv(x.size(), 256)), D(256), false, [&] { avg_pool_bwd_f32(dy.data(), dsag.data(), pp); });
  close("max fwd", ymg, ym); close("avg fwd", yag, ya); close("max bwd", dxmg, dxm); close("avg bwd", dxag, dxa);
  close("max bwd set", dsmg, dsm, 1e-5, 1e-5); close("avg bwd set", dsag, dsa, 1e-5, 1e-5);
}

void test_bn(int n, int c, int hw, float off, long long bn_blocks = 0) {
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
  // Blocks per channel as the launcher picks them (src/ops/bn/cuda.rs grid),
  // or a forced count to cover several blocks on small planes.
  long long cntl = (long long)n * hw, fit = (1LL << 16) / (2LL * c);
  fit = fit < 1 ? 1 : (fit > 64 ? 64 : fit);
  long long blocks = bn_blocks > 0 ? bn_blocks : cdiv(cntl, 8192);
  blocks = blocks < 1 ? 1 : (blocks > fit ? fit : blocks);
  long long chunk = cdiv(cntl, blocks);
  std::vector<double> part((size_t)(2 * c * blocks), NAN);
  launch(D(c, blocks), D(256), true, [&] { bn_stats_partial_f32(x.data(), part.data(), BnParams{.n = n, .c = c, .hw = hw, .chunk = chunk}); });
  launch(D(c, blocks), D(256), true, [&] { bn_fwd_apply_f32(x.data(), part.data(), gm.data(), bt.data(), yg.data(), sg.data(), rmg.data(), rvg.data(), BnParams{.n = n, .c = c, .hw = hw, .eps = 1e-5f, .momentum = 0.1f, .chunk = chunk}); });
  std::fill(part.begin(), part.end(), NAN);
  launch(D(c, blocks), D(256), true, [&] { bn_bwd_partial_f32(x.data(), sg.data(), dy.data(), part.data(), BnParams{.n = n, .c = c, .hw = hw, .chunk = chunk}); });
  launch(D(c, blocks), D(256), true, [&] { bn_bwd_apply_f32(x.data(), gm.data(), sg.data(), dy.data(), part.data(), dxg.data(), dgg.data(), dbg.data(), BnParams{.n = n, .c = c, .hw = hw, .add = 1, .chunk = chunk}); });
  std::vector<float> dsg(x.size(), NAN), dsr(x.size());  // dx overwritten (add = 0), dγ and dβ absent
  for (size_t i = 0; i < x.size(); ++i) dsr[i] = dxr[i] - dx0[i];
  launch(D(c, blocks), D(256), true, [&] { bn_bwd_apply_f32(x.data(), gm.data(), sg.data(), dy.data(), part.data(), dsg.data(), nullptr, nullptr, BnParams{.n = n, .c = c, .hw = hw, .add = 0, .chunk = chunk}); });
  close("bn y", yg, y, 1e-4, 1e-4); close("bn saved", sg, saved, 1e-4, 1e-4); close("bn rm", rmg, rmr); close("bn rv", rvg, rvr, 1e-4, 1e-4);
  close("bn dx", dxg, dxr, 1e-4, 1e-4); close("bn dx set", dsg, dsr, 1e-4, 1e-4); close("bn dg", dgg, dgr, 1e-3, 1e-4); close("bn db", dbg, dbr, 1e-3, 1e-4);
  // The one-launch kernels, one block per channel (grid (c, 1), the whole channel as its chunk).
  std::vector<float> yf(y.size(), NAN), sf(2 * c, NAN), rmf = rm, rvf = rv, dxf = dx0, dgf = dg0, dbf = db0, dsf(x.size(), NAN);
  launch(D(c, 1), D(256), true, [&] { bn_fwd_fused_f32(x.data(), gm.data(), bt.data(), yf.data(), sf.data(), rmf.data(), rvf.data(), BnParams{.n = n, .c = c, .hw = hw, .eps = 1e-5f, .momentum = 0.1f, .chunk = cntl}); });
  launch(D(c, 1), D(256), true, [&] { bn_bwd_fused_f32(x.data(), gm.data(), sf.data(), dy.data(), dxf.data(), dgf.data(), dbf.data(), BnParams{.n = n, .c = c, .hw = hw, .add = 1, .chunk = cntl}); });
  launch(D(c, 1), D(256), true, [&] { bn_bwd_fused_f32(x.data(), gm.data(), sf.data(), dy.data(), dsf.data(), nullptr, nullptr, BnParams{.n = n, .c = c, .hw = hw, .add = 0, .chunk = cntl}); });
  close("bn fused y", yf, y, 1e-4, 1e-4); close("bn fused saved", sf, saved, 1e-4, 1e-4); close("bn fused rm", rmf, rmr); close("bn fused rv", rvf, rvr, 1e-4, 1e-4);
  close("bn fused dx", dxf, dxr, 1e-4, 1e-4); close("bn fused dx set", dsf, dsr, 1e-4, 1e-4); close("bn fused dg", dgf, dgr, 1e-3, 1e-4); close("bn fused db", dbf, dbr, 1e-3, 1e-4);
}

// The small kernels: one launch each on odd sizes against a direct loop.
void test_small() {
  const int n = 1003;
  auto x = rnd(n), b = rnd(n), y0 = rnd(n);
  std::vector<float> w = {0.3f, -1.1f, 0.8f};
  auto run = [&](const char* what, std::function<void(float*)> k, std::function<float(int)> want, std::vector<float> start) {
    launch(D(cdiv(n, 256)), D(256), false, [&] { k(start.data()); });
    std::vector<float> ref(n); for (int i = 0; i < n; ++i) ref[i] = want(i);
    close(what, start, ref, 1e-6, 1e-6);
  };
  std::vector<float> nan(n, NAN);
  run("fill", [&](float* y) { fill_f32(y, FillParams{.v = 0.5f, .n = n}); }, [&](int) { return 0.5f; }, nan);
  run("copy", [&](float* y) { copy_f32(x.data(), y, LenParams{.n = n}); }, [&](int i) { return x[i]; }, nan);
  run("axpy", [&](float* y) { axpy_f32(x.data(), y, AxpyParams{.a = -0.7f, .add = 1, .n = n}); }, [&](int i) { return y0[i] + -0.7f * x[i]; }, y0);
  run("axpy set", [&](float* y) { axpy_f32(x.data(), y, AxpyParams{.a = -0.7f, .add = 0, .n = n}); }, [&](int i) { return -0.7f * x[i]; }, nan);
  run("relu_fwd", [&](float* y) { relu_fwd_f32(x.data(), y, LenParams{.n = n}); }, [&](int i) { return x[i] > 0 ? x[i] : 0.f; }, nan);
  run("relu_bwd", [&](float* y) { relu_bwd_f32(x.data(), b.data(), y, LenParams{.n = n}); }, [&](int i) { return x[i] > 0 ? y0[i] + b[i] : y0[i]; }, y0);
  run("mul", [&](float* y) { mul_fwd_f32(x.data(), b.data(), y, LenParams{.n = n}); }, [&](int i) { return x[i] * b[i]; }, nan);
  run("mul_bwd", [&](float* y) { mul_bwd_f32(b.data(), x.data(), y, LenParams{.n = n}); }, [&](int i) { return y0[i] + x[i] * b[i]; }, y0);
  { // drop path: 17 samples of 59 elements, masks 0 or 1/keep
    const int ns = 17, per = 59; auto xd = rnd(ns * per), dyd = rnd(ns * per), dd0 = rnd(ns * per);
    std::vector<float> m(ns); for (int i = 0; i < ns; ++i) m[i] = i % 3 == 1 ? 0.f : 1.f / 0.8f;
    std::vector<float> yg(ns * per, NAN), yr(ns * per), dg = dd0, dr = dd0, dsg(ns * per, NAN), dsr(ns * per);
    std::vector<float> yag = dd0, yar = dd0;
    launch(D(cdiv(ns * per, 256)), D(256), false, [&] { drop_path_fwd_f32(xd.data(), m.data(), yg.data(), DropPathParams{.per = per, .total = (long long)ns * per, .add = 0}); });
    launch(D(cdiv(ns * per, 256)), D(256), false, [&] { drop_path_fwd_f32(xd.data(), m.data(), yag.data(), DropPathParams{.per = per, .total = (long long)ns * per, .add = 1}); });
    launch(D(cdiv(ns * per, 256)), D(256), false, [&] { drop_path_bwd_f32(m.data(), dyd.data(), dg.data(), DropPathParams{.per = per, .total = (long long)ns * per, .add = 1}); });
    launch(D(cdiv(ns * per, 256)), D(256), false, [&] { drop_path_bwd_f32(m.data(), dyd.data(), dsg.data(), DropPathParams{.per = per, .total = (long long)ns * per, .add = 0}); });
    for (int i = 0; i < ns * per; ++i) { yr[i] = xd[i] * m[i / per]; yar[i] += yr[i]; dsr[i] = dyd[i] * m[i / per]; dr[i] += dsr[i]; }
    close("drop_path fwd", yg, yr, 1e-6, 1e-6); close("drop_path fwd add", yag, yar, 1e-6, 1e-6); close("drop_path bwd", dg, dr, 1e-6, 1e-6); close("drop_path bwd set", dsg, dsr, 1e-6, 1e-6);
  }
  { // channel scale: 3 samples, 12 channels of 7 pixels, 4 factors (3 networks side by side)
    const int ns = 3, c = 12, hw = 7, cm = 4; const int len = ns * c * hw;
    auto xs = rnd(len), m = rnd(cm), dys = rnd(len), dx0 = rnd(len), dm0 = rnd(cm);
    std::vector<float> yg(len, NAN), yr(len), dg = dx0, dr = dx0, dsg(len, NAN), dsr(len), dmg = dm0, dmr = dm0;
    launch(D(cdiv(len, 256)), D(256), false, [&] { channel_scale_fwd_f32(xs.data(), m.data(), yg.data(), ChannelScaleParams{.n = ns, .hw = hw, .c = c, .cm = cm}); });
    launch(D(cdiv(len, 256)), D(256), false, [&] { channel_scale_bwd_data_f32(m.data(), dys.data(), dg.data(), ChannelScaleParams{.n = ns, .hw = hw, .c = c, .cm = cm, .add = 1}); });
    launch(D(cdiv(len, 256)), D(256), false, [&] { channel_scale_bwd_data_f32(m.data(), dys.data(), dsg.data(), ChannelScaleParams{.n = ns, .hw = hw, .c = c, .cm = cm, .add = 0}); });
    launch(D(cm), D(64), true, [&] { channel_scale_bwd_m_f32(xs.data(), dys.data(), dmg.data(), ChannelScaleParams{.n = ns, .hw = hw, .c = c, .cm = cm}); });
    std::vector<double> acc(cm, 0.0);
    for (int i = 0; i < len; ++i) {
      int k = (i / hw) % c % cm; yr[i] = xs[i] * m[k]; dsr[i] = dys[i] * m[k]; dr[i] += dsr[i]; acc[k] += (double)dys[i] * xs[i];
    }
    for (int k = 0; k < cm; ++k) dmr[k] += (float)acc[k];
    close("channel_scale fwd", yg, yr, 0, 0); close("channel_scale bwd", dg, dr, 1e-6, 1e-6);
    close("channel_scale bwd set", dsg, dsr, 0, 0); close("channel_scale bwd m", dmg, dmr, 1e-5, 1e-5);
  }
  run("axpy_elem", [&](float* y) { axpy_elem_f32(w.data(), x.data(), y, AxpyElemParams{.idx = 1, .n = n}); }, [&](int i) { return y0[i] + w[1] * x[i]; }, y0);
  // mix_bwd: 11 terms (two groups of 8), 35 (a DARTS cell's last node: "add" flags past bit 31) and
  // 40 (a whole launch) at weights t % 3; term t wants no dx when t % 4 == 1, overwrites it when
  // t % 4 == 2 below term 32 and when t % 4 is 0 or 3 from term 32 on (so that no flag past bit 31
  // repeats the one 32 terms before), adds otherwise; 5 blocks of partials per group of 8
  const auto over = [](int t) { return t < 32 ? t % 4 == 2 : t % 4 == 0 || t % 4 == 3; };
  for (const int nt : {11, 35, 40}) {
    const int parts = 5;
    auto dy = rnd(n);
    std::vector<std::vector<float>> xs(nt), dg(nt), dr(nt);
    MixParams T{};
    unsigned long long add = 0;
    std::vector<float> dwg = w, dwr = w;
    for (int t = 0; t < nt; ++t) {
      xs[t] = rnd(n); T.x[t] = xs[t].data(); T.idx[t] = t % 3;
      if (t % 4 == 1) continue;
      dg[t] = over(t) ? std::vector<float>(n, NAN) : rnd(n); dr[t] = dg[t]; T.d[t] = dg[t].data();
      if (!over(t)) add |= 1ull << t;
      for (int i = 0; i < n; ++i) dr[t][i] = (over(t) ? 0.f : dr[t][i]) + w[t % 3] * dy[i];
    }
    for (int t = 0; t < nt; ++t) { double s = 0; for (int i = 0; i < n; ++i) s += (double)dy[i] * xs[t][i]; dwr[t % 3] += (float)s; }
    std::vector<double> part(nt * parts, NAN);
    T.nt = nt; T.add_mask = add; T.n = n; T.parts = parts;
    launch(D(parts, (nt + 7) / 8), D(256), true, [&] { mix_bwd_partial_f32(w.data(), dy.data(), part.data(), T); });
    launch(D(1), D(256), true, [&] { mix_bwd_finish_f32(part.data(), dwg.data(), T); });
    const std::string of = " of " + std::to_string(nt);
    for (int t = 0; t < nt; ++t) if (T.d[t]) close(("mix_bwd dx" + std::to_string(t) + of).c_str(), dg[t], dr[t]);
    close(("mix_bwd dw" + of).c_str(), dwg, dwr, 1e-5, 1e-5);
  }
  {
    // without weight gradients (null part)
    const int parts = 5;
    auto dy = rnd(n);
    std::vector<float> d0 = y0, r0 = y0;
    MixParams U{}; U.x[0] = x.data(); U.d[0] = d0.data(); U.idx[0] = 2; U.nt = 1; U.add_mask = 1; U.n = n;
    for (int i = 0; i < n; ++i) r0[i] += w[2] * dy[i];
    launch(D(parts), D(256), true, [&] { mix_bwd_partial_f32(w.data(), dy.data(), nullptr, U); });
    close("mix_bwd no dw", d0, r0);
  }
  { // mix_fwd: eleven terms at weights t % 3, overwriting then adding; no terms (y = 0)
    const int nt = 11;
    std::vector<std::vector<float>> xs(nt);
    MixParams T{};
    for (int t = 0; t < nt; ++t) { xs[t] = rnd(n); T.x[t] = xs[t].data(); T.idx[t] = t % 3; }
    T.nt = nt; T.n = n;
    MixParams Ta = T;
    Ta.add = 1;
    auto sum = [&](int i) { float a = 0; for (int t = 0; t < nt; ++t) a += w[t % 3] * xs[t][i]; return a; };
    std::vector<float> y(n, NAN), yr(n), ya = y0, yar(n);
    launch(D(cdiv(n, 256)), D(256), true, [&] { mix_fwd_f32(w.data(), y.data(), T); });
    launch(D(cdiv(n, 256)), D(256), true, [&] { mix_fwd_f32(w.data(), ya.data(), Ta); });
    for (int i = 0; i < n; ++i) { yr[i] = sum(i); yar[i] = y0[i] + sum(i); }
    close("mix_fwd", y, yr); close("mix_fwd add", ya, yar);
    std::vector<float> ye(n, NAN);
    launch(D(cdiv(n, 256)), D(256), true, [&] { mix_fwd_f32(w.data(), ye.data(), MixParams{.n = n}); });
    close("mix_fwd empty", ye, std::vector<float>(n, 0.f));
  }
  run("sum_all_bwd", [&](float* y) { sum_all_bwd_f32(w.data(), y, LenParams{.n = n}); }, [&](int i) { return y0[i] + w[0]; }, y0);
  { // the list kernels over two tensors (x split at 777): sgd, adam (t = 3), couple, norm, lincomb
    const long long a = 777;
    std::vector<float> p = x, buf = y0, m = y0, v(n), g = b, cp = y0; for (int i = 0; i < n; ++i) v[i] = b[i] * b[i];
    std::vector<float> pr = p, br = buf, mr = m, vr = v, pa = p, par = p, cr = y0;
    auto tab = [&](std::vector<float*> lists) {  // as src/ops/optim/cuda.rs builds it
      std::vector<long long> t = {0, a, n};
      for (float* l : lists) { t.push_back((long long)l); t.push_back((long long)(l + a)); }
      return t;
    };
    std::vector<float> sc = {0.1f, 0.7f, 3e-4f, 3.0f, 0.05f, 0, 0, 0};
    auto ts = tab({p.data(), g.data(), buf.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { sgd_list_f32(ts.data(), sc.data(), SgdParams{.tensors = 2, .lr_at = 0, .scale_at = 1, .mu = 0.9f, .wd = 3e-4f, .nesterov = 0}); });
    std::vector<float> pn = x, bn = y0, pnr = x, bnr = y0;  // Nesterov
    auto tnest = tab({pn.data(), g.data(), bn.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { sgd_list_f32(tnest.data(), sc.data(), SgdParams{.tensors = 2, .lr_at = 0, .scale_at = 1, .mu = 0.9f, .wd = 3e-4f, .nesterov = 1}); });
    auto ta = tab({pa.data(), g.data(), m.data(), v.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { adam_list_f32(ta.data(), sc.data(), AdamParams{.tensors = 2, .lr_at = 2, .t_at = 3, .b1 = 0.5f, .b2 = 0.999f, .eps = 1e-8f, .wd = 1e-3f}); });
    auto tc = tab({x.data(), b.data(), cp.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { couple_list_f32(tc.data(), CoupleParams{.tensors = 2, .beta = 0.5f}); });
    float c1 = (float)(1 - std::pow(0.5, 3)), c2 = std::sqrt((float)(1 - std::pow(0.999, 3)));
    for (int i = 0; i < n; ++i) {
      float d = 0.7f * b[i] + 3e-4f * pr[i]; br[i] = 0.9f * br[i] + d; pr[i] -= 0.1f * br[i];
      float dn = 0.7f * b[i] + 3e-4f * pnr[i]; bnr[i] = 0.9f * bnr[i] + dn; pnr[i] -= 0.1f * (dn + 0.9f * bnr[i]);
      float e = b[i] + 1e-3f * par[i]; mr[i] = 0.5f * mr[i] + 0.5f * e; vr[i] = 0.999f * vr[i] + 0.001f * e * e;
      par[i] -= 3e-4f / c1 * mr[i] / (std::sqrt(vr[i]) / c2 + 1e-8f);
      cr[i] += 0.5f * (x[i] - b[i]);
    }
    close("sgd p", p, pr); close("sgd buf", buf, br); close("sgd nesterov p", pn, pnr); close("sgd nesterov buf", bn, bnr); close("adam p", pa, par); close("adam m", m, mr); close("adam v", v, vr);
    close("couple", cp, cr);
    // norm of b with the clip factor (max 5) into sc[6], then DARTS' ε, c from ξ = sc[4]
    std::vector<double> part(4); double ss = 0; for (int i = 0; i < n; ++i) ss += (double)b[i] * b[i];
    auto tn = tab({b.data()});
    launch(D(4), D(256), true, [&] { sumsq_list_partial_f64(tn.data(), part.data(), ListParams{.tensors = 2}); });
    launch(D(1), D(256), true, [&] { norm_finish_f32(part.data(), sc.data(), NormFinishParams{.parts = 4, .at = 7, .mode = 1, .a = 6, .b = 0, .c = 0, .maxv = 5.0f}); });
    double nrm = std::sqrt(ss);
    close("norm, clip", {sc[7], sc[6]}, {(float)nrm, (float)std::min(1.0, 5.0 / (nrm + 1e-6))}, 1e-6, 1e-6);
    launch(D(1), D(256), true, [&] { norm_finish_f32(part.data(), sc.data(), NormFinishParams{.parts = 4, .at = 7, .mode = 2, .a = 4, .b = 5, .c = 6, .maxv = -1.0f}); });
    double eps = 0.01 / nrm;
    close("norm, perturbation", {sc[5], sc[6]}, {(float)eps, (float)(0.05f / (2 * eps))}, 1e-6, 1e-6);
    // out = y0 + 1.5·x − 2·sc[4]·b (adding), then out = 0.5·sc[1]·x (overwriting)
    std::vector<float> out = y0, outr(n), out2(n, NAN), out2r(n);
    auto tl = tab({out.data(), x.data(), b.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { lincomb_list_f32(tl.data(), sc.data(), LincombParams{.tensors = 2, .nterms = 2, .k0 = 1.5f, .a0 = -1, .k1 = -2.0f, .a1 = 4, .k2 = 0, .a2 = -1, .add = 1}); });
    auto tl2 = tab({out2.data(), x.data()});
    launch(D(cdiv(n, 256)), D(256), false, [&] { lincomb_list_f32(tl2.data(), sc.data(), LincombParams{.tensors = 2, .nterms = 1, .k0 = 0.5f, .a0 = 1, .k1 = 0, .a1 = -1, .k2 = 0, .a2 = -1, .add = 0}); });
    for (int i = 0; i < n; ++i) { outr[i] = y0[i] + 1.5f * x[i] - 2.0f * sc[4] * b[i]; out2r[i] = 0.5f * sc[1] * x[i]; }
    close("lincomb add", out, outr); close("lincomb set", out2, out2r);
    // copy_elem
    std::vector<float> s2 = {1, 2, 3};
    launch(D(1), D(1), false, [&] { copy_elem_f32(x.data(), s2.data(), CopyElemParams{.from = 5, .to = 2}); });
    close("copy_elem", s2, {1, 2, x[5]});
  }
  { // softmax rows
    int rows = 13, cols = 9; auto z = rnd(rows * cols), dy = rnd(rows * cols), dx0 = rnd(rows * cols);
    std::vector<float> y(rows * cols, NAN), yr(rows * cols), dx = dx0, dxr = dx0;
    launch(D(1), D(256), false, [&] { softmax_rows_fwd_f32(z.data(), y.data(), SoftmaxParams{.rows = rows, .cols = cols}); });
    for (int r = 0; r < rows; ++r) { float m = z[r * cols]; for (int j = 0; j < cols; ++j) m = std::max(m, z[r * cols + j]);
      float s = 0; for (int j = 0; j < cols; ++j) s += std::exp(z[r * cols + j] - m); for (int j = 0; j < cols; ++j) yr[r * cols + j] = std::exp(z[r * cols + j] - m) / s; }
    close("softmax fwd", y, yr);
    launch(D(1), D(256), false, [&] { softmax_rows_bwd_f32(yr.data(), dy.data(), dx.data(), SoftmaxParams{.rows = rows, .cols = cols}); });
    for (int r = 0; r < rows; ++r) { float d = 0; for (int j = 0; j < cols; ++j) d += yr[r * cols + j] * dy[r * cols + j];
      for (int j = 0; j < cols; ++j) dxr[r * cols + j] += yr[r * cols + j] * (dy[r * cols + j] - d); }
    close("softmax bwd", dx, dxr);
    // cross-entropy backward
    std::vector<float> lab(rows), dl = {0.8f}, dz = dx0, dzr = dx0;
    for (int r = 0; r < rows; ++r) lab[r] = (float)(r % cols);
    launch(D(1), D(256), false, [&] { cross_entropy_bwd_f32(yr.data(), lab.data(), dl.data(), dz.data(), SoftmaxParams{.rows = rows, .cols = cols}); });
    for (int r = 0; r < rows; ++r) for (int j = 0; j < cols; ++j) dzr[r * cols + j] += 0.8f / rows * (yr[r * cols + j] - (j == (int)lab[r] ? 1.f : 0.f));
    close("ce bwd", dz, dzr);
  }
  { // channel put / take, shift, gap bwd
    int nn = 3, hw = 7, cp = 3, cw = 8, off = 4; auto part = rnd(nn * cp * hw), whole = rnd(nn * cw * hw);
    std::vector<float> wg = whole, wr = whole, pg = part, pr = part, psg(part.size(), NAN), psr(part.size());
    std::vector<float> wa = whole, war = whole;
    launch(D(1), D(256), false, [&] { channel_put_f32(part.data(), wg.data(), ChannelSliceParams{.n = nn, .hw = hw, .c_part = cp, .c_whole = cw, .off = off, .add = 0}); });
    launch(D(1), D(256), false, [&] { channel_put_f32(part.data(), wa.data(), ChannelSliceParams{.n = nn, .hw = hw, .c_part = cp, .c_whole = cw, .off = off, .add = 1}); });
    launch(D(1), D(256), false, [&] { channel_take_f32(whole.data(), pg.data(), ChannelSliceParams{.n = nn, .hw = hw, .c_part = cp, .c_whole = cw, .off = off, .add = 1}); });
    launch(D(1), D(256), false, [&] { channel_take_f32(whole.data(), psg.data(), ChannelSliceParams{.n = nn, .hw = hw, .c_part = cp, .c_whole = cw, .off = off, .add = 0}); });
    for (int b2 = 0; b2 < nn; ++b2) for (int c = 0; c < cp; ++c) for (int i = 0; i < hw; ++i) {
      wr[((b2 * cw) + off + c) * hw + i] = part[(b2 * cp + c) * hw + i];
      war[((b2 * cw) + off + c) * hw + i] += part[(b2 * cp + c) * hw + i];
      psr[(b2 * cp + c) * hw + i] = whole[((b2 * cw) + off + c) * hw + i];
      pr[(b2 * cp + c) * hw + i] += psr[(b2 * cp + c) * hw + i]; }
    close("channel_put", wg, wr); close("channel_put add", wa, war); close("channel_take", pg, pr); close("channel_take set", psg, psr);
    // concat of three parts (channels 0–1, 2–4, 6; channel 5 belongs to none), and its backward
    // with parts 0 and 2 adding, part 1 overwriting
    const int np = 3, offs[np] = {0, 2, 6}, cs[np] = {2, 3, 1};
    std::vector<std::vector<float>> parts(np), dps(np), dpr(np);
    ConcatParams P{.np = np, .n = nn, .hw = hw, .c_whole = cw}, Q{.np = np, .add = 0b101u, .n = nn, .hw = hw, .c_whole = cw};
    std::vector<float> cg = whole, cr = whole;
    for (int t = 0; t < np; ++t) {
      parts[t] = rnd(nn * cs[t] * hw); P.p[t] = parts[t].data(); P.off[t] = offs[t]; P.c[t] = cs[t];
      dps[t] = t == 1 ? std::vector<float>(parts[t].size(), NAN) : rnd(parts[t].size()); dpr[t] = dps[t];
      Q.p[t] = dps[t].data(); Q.off[t] = offs[t]; Q.c[t] = cs[t];
      for (int b2 = 0; b2 < nn; ++b2) for (int c = 0; c < cs[t]; ++c) for (int i = 0; i < hw; ++i) {
        size_t wi = ((size_t)b2 * cw + offs[t] + c) * hw + i, pi = ((size_t)b2 * cs[t] + c) * hw + i;
        cr[wi] = parts[t][pi]; dpr[t][pi] = (t == 1 ? 0.f : dpr[t][pi]) + whole[wi];
      }
    }
    launch(D(2), D(256), false, [&] { concat_fwd_f32(cg.data(), P); });
    launch(D(2), D(256), false, [&] { concat_bwd_f32(whole.data(), Q); });
    close("concat_fwd", cg, cr);
    for (int t = 0; t < np; ++t) close(("concat_bwd part " + std::to_string(t)).c_str(), dps[t], dpr[t]);
    int nc = 5, h = 7, ww = 6; auto xs = rnd(nc * h * ww), dys = rnd(nc * (h - 1) * (ww - 1));
    std::vector<float> ys((h - 1) * (ww - 1) * nc, NAN), ysr(ys.size()), dxs = xs, dxsr = xs;
    launch(D(1), D(256), false, [&] { shift_fwd_f32(xs.data(), ys.data(), ShiftParams{.nc = nc, .h = h, .w = ww}); });
    launch(D(1), D(256), false, [&] { shift_bwd_f32(dys.data(), dxs.data(), ShiftParams{.nc = nc, .h = h, .w = ww}); });
    for (int p2 = 0; p2 < nc; ++p2) for (int i = 0; i < h - 1; ++i) for (int j = 0; j < ww - 1; ++j) {
      ysr[(p2 * (h - 1) + i) * (ww - 1) + j] = xs[p2 * h * ww + (i + 1) * ww + j + 1];
      dxsr[p2 * h * ww + (i + 1) * ww + j + 1] += dys[(p2 * (h - 1) + i) * (ww - 1) + j]; }
    close("shift fwd", ys, ysr); close("shift bwd", dxs, dxsr);
    auto gdy = rnd(nc); std::vector<float> gdx = xs, gdxr = xs;
    launch(D(1), D(256), false, [&] { gap_bwd_f32(gdy.data(), gdx.data(), GapParams{.nc = nc, .hw = h * ww}); });
    for (int p2 = 0; p2 < nc; ++p2) for (int i = 0; i < h * ww; ++i) gdxr[p2 * h * ww + i] += gdy[p2] * (1.f / (h * ww));
    close("gap bwd", gdx, gdxr);
  }
  for (int groups : {1, 2}) { // linear; two groups: RARTS's two classifiers side by side
    int nn = 5, in = 7 * groups, o = 3 * groups, ig = in / groups, og = o / groups;
    auto xl = rnd(nn * in), wl = rnd(o * ig), bl = rnd(o), dyl = rnd(nn * o);
    auto dx0 = rnd(nn * in), dw0 = rnd(o * ig), db0 = rnd(o);
    std::vector<float> y(nn * o, NAN), yr(nn * o), dx = dx0, dxr = dx0, dw = dw0, dwr = dw0, db = db0, dbr = db0;
    launch(D(1), D(256), false, [&] { linear_fwd_f32(xl.data(), wl.data(), bl.data(), y.data(), LinearParams{.n = nn, .inputs = in, .outputs = o, .groups = groups}); });
    launch(D(1), D(256), false, [&] { linear_bwd_data_f32(wl.data(), dyl.data(), dx.data(), LinearParams{.n = nn, .inputs = in, .outputs = o, .groups = groups}); });
    launch(D(1), D(256), false, [&] { linear_bwd_filter_f32(xl.data(), dyl.data(), dw.data(), LinearParams{.n = nn, .inputs = in, .outputs = o, .groups = groups}); });
    launch(D(1), D(256), false, [&] { linear_bwd_bias_f32(dyl.data(), db.data(), LinearParams{.n = nn, .outputs = o}); });
    for (int r = 0; r < nn; ++r) for (int c = 0; c < o; ++c) {
      int x0 = (c / og) * ig;
      float a = 0; for (int j = 0; j < ig; ++j) { a += xl[r * in + x0 + j] * wl[c * ig + j]; dxr[r * in + x0 + j] += dyl[r * o + c] * wl[c * ig + j]; dwr[c * ig + j] += dyl[r * o + c] * xl[r * in + x0 + j]; }
      yr[r * o + c] = a + bl[c]; dbr[c] += dyl[r * o + c]; }
    close("linear fwd", y, yr); close("linear dx", dx, dxr); close("linear dw", dw, dwr); close("linear db", db, dbr);
  }
  { // bn eval, no affine
    int nn = 2, c = 3, hw = 5; auto xe = rnd(nn * c * hw), rm = rnd(c), rv = rnd(c); for (auto& v : rv) v = v * v + 0.5f;
    std::vector<float> y(xe.size(), NAN), yr(xe.size());
    launch(D(1), D(256), false, [&] { bn_fwd_eval_f32(xe.data(), nullptr, nullptr, rm.data(), rv.data(), y.data(), BnParams{.n = nn, .c = c, .hw = hw, .eps = 1e-5f}); });
    for (size_t i = 0; i < xe.size(); ++i) { int ch = (i / hw) % c; yr[i] = (xe[i] - rm[ch]) * (float)(1.0 / std::sqrt((double)rv[ch] + 1e-5)); }
    close("bn eval", y, yr);
  }
}

void test_reductions() {
  // reductions, CE, gap
  { auto a = rnd(100003), b = rnd(100003); std::vector<double> part(1024); std::vector<float> out = {0.5f, 0.25f};
    unsigned parts = cdiv(100003, 256);
    launch(D(parts), D(256), true, [&] { reduce_partial_f64(a.data(), b.data(), part.data(), LenParams{.n = 100003}); });
    launch(D(1), D(256), true, [&] { reduce_finish_f32(part.data(), out.data(), ReduceFinishParams{.parts = (int)parts, .accumulate = 1, .idx = 1}); });
    double s = 0; for (size_t i = 0; i < a.size(); ++i) s += (double)a[i] * b[i];
    close("dot_elem", out, {0.5f, 0.25f + (float)s}); }
  { int n = 37, k = 10; auto z = rnd(n * k); std::vector<float> lab(n), loss(1, NAN), pr(n * k, NAN);
    for (int i = 0; i < n; ++i) lab[i] = (float)(i * 7 % k);
    launch(D(1), D(256), true, [&] { cross_entropy_fwd_f32(z.data(), lab.data(), loss.data(), pr.data(), SoftmaxParams{.rows = n, .cols = k}); });
    double tot = 0; std::vector<float> prr(n * k);
    for (int i = 0; i < n; ++i) { double m = -1e30, s = 0; for (int j = 0; j < k; ++j) m = std::max(m, (double)z[i * k + j]);
      for (int j = 0; j < k; ++j) s += std::exp(z[i * k + j] - m); for (int j = 0; j < k; ++j) prr[i * k + j] = (float)(std::exp(z[i * k + j] - m) / s);
      tot += m + std::log(s) - z[i * k + (int)lab[i]]; }
    close("ce loss", loss, {(float)(tot / n)}); close("ce probs", pr, prr);
    for (int i = 0; i < n; i += 3) z[i * k + (int)lab[i]] = 5.0f;  // some hits
    std::vector<float> acc = {7, 7};
    launch(D(1), D(256), true, [&] { accuracy_f32(z.data(), lab.data(), acc.data(), SoftmaxParams{.rows = n, .cols = k, .at = 1}); });
    int hits = 0;
    for (int i = 0; i < n; ++i) { int best = 0; for (int j = 1; j < k; ++j) if (z[i * k + j] > z[i * k + best]) best = j; hits += best == (int)lab[i]; }
    close("accuracy", acc, {7, (float)hits / n}); }
  { int nc = 37, hw = 50; auto x = rnd(nc * hw); std::vector<float> y(nc, NAN), yr(nc);
    for (int p = 0; p < nc; ++p) { float s = 0; for (int i = 0; i < hw; ++i) s += x[p * hw + i]; yr[p] = s / hw; }
    launch(D(cdiv(nc, 8)), D(256), true, [&] { gap_fwd_f32(x.data(), y.data(), GapParams{.nc = nc, .hw = hw}); });
    close("gap", y, yr); }
}

int main() {
  // EMU_ONLY=sync: only kernels whose blocks synchronise through shared
  // memory (BN statistics, reductions), for the slow ThreadSanitizer build.
  if (const char* only = std::getenv("EMU_ONLY"); only && std::string(only) == "sync") {
    test_bn(2, 3, 5, 0); test_bn(3, 2, 49, 1000);
    test_chain(2, 3, 2, 7, 9, 3, 1, 1, 2, 16);
    test_reductions();
    printf("digest %016llx\n", digest);
    printf("%s (%d failures)\n", fails ? "FAILED" : "all emulated kernels match", fails);
    return fails != 0;
  }
  test_small();
  // depthwise, pointwise (odd, stride 2, split-K), general
  test_conv(2, 5, 9, 7, 5, 3, 1, 1, 1, 5, true); test_conv(3, 4, 8, 8, 4, 3, 2, 1, 1, 4, true);
  test_conv(2, 3, 12, 13, 3, 5, 2, 4, 2, 3, true); test_conv(2, 4, 9, 9, 4, 3, 1, 2, 2, 4, false);
  test_conv(2, 5, 7, 9, 19, 1, 1, 0, 1, 1, false); test_conv(3, 17, 8, 8, 33, 1, 1, 0, 1, 1, true);
  test_conv(2, 6, 9, 11, 4, 1, 2, 0, 1, 1, true); test_conv(3, 4, 40, 40, 5, 1, 1, 0, 1, 1, true);
  test_conv(2, 3, 10, 9, 12, 3, 1, 1, 1, 1, false); test_conv(2, 6, 7, 7, 4, 3, 2, 1, 1, 2, true);
  test_conv(1, 4, 9, 8, 5, 3, 1, 2, 2, 1, true);
  // grouped 1×1 (RARTS's two networks side by side): partial tiles per group, stride 2, many splits, cig = 1
  test_conv(2, 10, 7, 9, 38, 1, 1, 0, 1, 2, false); test_conv(3, 34, 8, 8, 66, 1, 1, 0, 1, 2, true);
  test_conv(2, 12, 9, 11, 8, 1, 2, 0, 1, 2, true); test_conv(3, 8, 40, 40, 10, 1, 1, 0, 1, 2, true);
  test_conv(2, 3, 5, 5, 6, 1, 1, 0, 1, 3, false);
  // the auxiliary head: 1×1 on the pooled 2×2 map, 2×2 without padding to 1×1, 2×2 stride 2 pad 1
  test_conv(3, 20, 2, 2, 16, 1, 1, 0, 1, 1, false); test_conv(3, 8, 2, 2, 12, 2, 1, 0, 1, 1, true);
  test_conv(2, 3, 4, 7, 6, 2, 2, 1, 1, 1, true);
  test_pool(6, 8, 8, 3, 1, 1, true); test_pool(6, 9, 7, 3, 2, 1, true); test_pool(2, 5, 6, 3, 2, 0, false); test_pool(3, 9, 7, 3, 2, 1, false);
  // the auxiliary head's 5×5 stride 3 on 8×8; an odd map; pad 2; 2×2
  test_pool(6, 8, 8, 5, 3, 0, true); test_pool(4, 11, 9, 5, 3, 0, false); test_pool(3, 7, 8, 5, 3, 2, false); test_pool(3, 6, 7, 2, 2, 0, true);
  test_bn(2, 3, 5, 0); test_bn(3, 2, 49, 1000); test_bn(1, 2, 1, 0); test_bn(4, 2, 300, 0);
  test_bn(3, 2, 49, 1000, 4); test_bn(4, 3, 300, 0, 7); test_bn(2, 2, 5000, 0);
  // chains: every (k, dilation), both strides, one network and two, a last tile shorter than the rest
  test_chain(2, 3, 1, 7, 9, 3, 1, 1, 4, 16); test_chain(2, 3, 2, 9, 8, 5, 2, 1, 3, 8);
  test_chain(3, 2, 2, 8, 8, 3, 2, 2, 2, 5); test_chain(2, 4, 1, 11, 10, 5, 1, 2, 4, 64);
  test_reductions();
  printf("conv cases %d\n", conv_cases);
  printf("digest %016llx\n", digest);
  printf("%s (%d failures)\n", fails ? "FAILED" : "all emulated kernels match", fails);
  return fails != 0;
}
