// A CPU stand-in for the CUDA execution model, just enough to run the
// kernels of kernels/*.cu on the host: blocks run one after another; in a
// block each CUDA thread is an OS thread when the kernel synchronises
// (__syncthreads, warp shuffles), or all run in turn on one OS thread when it
// does not. __shared__ becomes `static` storage in a section of its own
// (emu_shared), which is per block because blocks never overlap.
//
// As strict as a GPU where a kernel could lean on what a GPU does not give:
// - shared memory is poisoned (every bit set: NaN floats, -1 integers)
//   before each block, so a block that reads what it did not write, or
//   relies on another block's fill, gets garbage;
// - with EMU_ORDER=shuffle:SEED the blocks of every launch run in an order
//   drawn from SEED instead of 0, 1, …; run_digest() hashes every result a
//   test checks, so scripts/kernel-emu.sh compares a shuffled run with the
//   in-order one bit for bit (a kernel whose result depends on block order
//   differs).
// Still blind to timing: threads of a block run truly concurrently (a
// missing barrier is a race a ThreadSanitizer build reports), but blocks
// never overlap and atomics take a mutex.
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
// Device functions get internal linkage, not `inline`: a static local of an
// inline function lives in a COMDAT section, which cannot share emu_shared.
#define __device__ static
#define __forceinline__
#define __shared__ static __attribute__((section("emu_shared")))
extern "C" char __start_emu_shared[], __stop_emu_shared[];
inline void poison_shared() { std::memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared); }
// EMU_ORDER=shuffle:SEED: each launch's blocks in a seeded order.
inline unsigned long long g_order_seed = [] {
  const char* e = std::getenv("EMU_ORDER");
  return e && std::strncmp(e, "shuffle:", 8) == 0 ? std::strtoull(e + 8, nullptr, 10) + 1 : 0;
}();
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
  std::vector<dim3> order;
  for (unsigned bz = 0; bz < grid.z; ++bz) for (unsigned by = 0; by < grid.y; ++by) for (unsigned bx = 0; bx < grid.x; ++bx)
    order.push_back({bx, by, bz});
  if (g_order_seed) {  // Fisher-Yates with a splitmix64 stream, advanced per launch
    for (size_t i = order.size(); i > 1; --i) {
      unsigned long long z = (g_order_seed += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
      std::swap(order[i - 1], order[z % i]);
    }
  }
  for (const dim3 b : order) {
    blockIdx = b;
    poison_shared();
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
