// A CPU stand-in for the CUDA execution model, just enough to run the
// kernels of kernels/*.cu on the host: blocks run one after another; in a
// block each CUDA thread is an OS thread when the kernel synchronises
// (__syncthreads, warp shuffles), or all run in turn on one OS thread when it
// does not. __shared__ becomes `static`, which is per block because blocks
// never overlap. Slow, and blind to races and memory-model issues: it checks
// index arithmetic, tiling and reductions, not timing.
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <thread>
#include <barrier>
#include <mutex>
#include <functional>
#include <memory>
struct dim3 { unsigned x = 1, y = 1, z = 1; };
thread_local dim3 threadIdx;
dim3 blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
std::barrier<>* g_block_bar = nullptr;
std::barrier<>* g_warp_bar[32];
double g_warp_slot[32][32];
std::mutex g_atomic;
inline void __syncthreads() { if (g_block_bar) g_block_bar->arrive_and_wait(); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __int_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
template <class T> T __shfl_down_sync(unsigned, T v, int o) {
  unsigned tid = threadIdx.x + threadIdx.y * blockDim.x;
  unsigned w = tid >> 5, lane = tid & 31;
  g_warp_slot[w][lane] = (double)v;
  g_warp_bar[w]->arrive_and_wait();
  T r = lane + o < 32 ? (T)g_warp_slot[w][lane + o] : v;
  g_warp_bar[w]->arrive_and_wait();
  return r;
}
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> l(g_atomic); float o = *p; *p += v; return o; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { std::lock_guard<std::mutex> l(g_atomic); unsigned o = *p; *p += v; return o; }
inline void __threadfence() {}
template <class T> T __ldcg(const T* p) { return *p; }
// Runs every block in turn; par = one OS thread per CUDA thread (barriers, shuffles).
void launch(dim3 grid, dim3 block, bool par, std::function<void()> body) {
  gridDim = grid; blockDim = block;
  unsigned nt = block.x * block.y * block.z;
  for (unsigned bz = 0; bz < grid.z; ++bz) for (unsigned by = 0; by < grid.y; ++by) for (unsigned bx = 0; bx < grid.x; ++bx) {
    blockIdx = {bx, by, bz};
    if (!par) {
      for (unsigned t = 0; t < nt; ++t) { threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)}; body(); }
      continue;
    }
    std::barrier<> bb(nt); g_block_bar = &bb;
    std::vector<std::unique_ptr<std::barrier<>>> wb;
    for (unsigned w = 0; w < (nt + 31) / 32; ++w) { wb.emplace_back(new std::barrier<>(32)); g_warp_bar[w] = wb.back().get(); }
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < nt; ++t) ts.emplace_back([=, &bb] {
      threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      body();
      bb.arrive_and_drop();
    });
    for (auto& th : ts) th.join();
    g_block_bar = nullptr;
  }
}
