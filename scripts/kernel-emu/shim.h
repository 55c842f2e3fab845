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
#include <string>
#include <cstdint>
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
double g_warp_slot2[2][32][32];
std::mutex g_atomic;
// A barrier or a shuffle in a kernel launched one thread at a time would
// pass here and hang or race on a GPU: it is an error instead.
[[noreturn]] inline void emu_fatal(const char* what) {
  std::fprintf(stderr, "kernel emulation: %s\n", what);
  std::abort();
}
inline unsigned g_serial_threads = 0;  // threads of the block run in turn (0: a parallel launch)

// Fibers: the threads of a synchronising block as user-level contexts on one
// OS thread (the default; EMU_THREADS=1 makes them OS threads, which
// ThreadSanitizer can watch). A fiber runs until it reaches a barrier; when
// every live thread of the block (or lane of the warp) has arrived, they all
// go on. A fiber that waits hands over straight to the next runnable one in
// the block's turn order: thread order, or a seeded shuffle of it per block
// with EMU_ORDER=shuffle:SEED, so a missing barrier shows up as a result
// that changes with the order.
//
// A switch saves the callee-saved registers on the old stack and loads the
// new one's (x86-64 System V): no system call, unlike swapcontext, whose
// signal-mask calls made fibers as slow as OS threads. The sanitizer builds
// use OS threads instead (ASan and TSan track stacks and threads).
extern "C" void emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl emu_switch
  .hidden emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
enum FiberState { RUN, WAIT_BLOCK, WAIT_WARP, DONE };
struct Fiber { void* sp = nullptr; char* stack = nullptr; FiberState state = DONE; dim3 idx; unsigned shuffles = 0; };
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline bool g_fibers_on = false;
#else
inline bool g_fibers_on = [] { const char* e = std::getenv("EMU_THREADS"); return !(e && std::string(e) == "1"); }();
#endif
inline bool g_in_fibers = false;
inline void* g_sched_sp = nullptr;
inline std::vector<unsigned> g_turn;  // the block's fibers in turn order
inline unsigned g_pos = 0;            // the running fiber's place in g_turn
inline std::vector<Fiber> g_fibers;
inline unsigned g_cur = 0, g_live = 0, g_block_arrived = 0, g_warp_live[32], g_warp_arrived[32];
inline const std::function<void()>* g_fiber_body = nullptr;
constexpr size_t FIBER_STACK = 128 * 1024;

inline void fiber_release(FiberState waiting, unsigned warp) {
  unsigned lo = waiting == WAIT_BLOCK ? 0 : 32 * warp;
  unsigned hi = waiting == WAIT_BLOCK ? g_fibers.size() : std::min<size_t>(32 * warp + 32, g_fibers.size());
  for (unsigned t = lo; t < hi; ++t)
    if (g_fibers[t].state == waiting) g_fibers[t].state = RUN;
  if (waiting == WAIT_BLOCK) g_block_arrived = 0; else g_warp_arrived[warp] = 0;
}
// Saves the running fiber in *save and resumes the next runnable one after it
// in turn order (itself, if it was just released and is the only one), or the
// launch when none is: the block is done, or deadlocked.
inline void fiber_next(void** save) {
  unsigned n = g_turn.size();
  for (unsigned k = 1; k <= n; ++k) {
    unsigned p = (g_pos + k) % n, t = g_turn[p];
    if (g_fibers[t].state != RUN) continue;
    if (t == g_cur) return;
    g_pos = p; g_cur = t; threadIdx = g_fibers[t].idx;
    emu_switch(save, g_fibers[t].sp);
    return;
  }
  emu_switch(save, g_sched_sp);
}
inline void fiber_wait(FiberState on) {
  Fiber& f = g_fibers[g_cur];
  unsigned w = g_cur / 32;
  f.state = on;
  if (on == WAIT_BLOCK) { if (++g_block_arrived == g_live) fiber_release(WAIT_BLOCK, 0); }
  else if (++g_warp_arrived[w] == g_warp_live[w]) fiber_release(WAIT_WARP, w);
  fiber_next(&f.sp);
}
[[noreturn]] inline void fiber_main() {
  (*g_fiber_body)();
  unsigned t = g_cur, w = t / 32;
  g_fibers[t].state = DONE;
  --g_live; --g_warp_live[w];
  // An exited thread no longer holds back a barrier (arrive_and_drop).
  if (g_live && g_block_arrived == g_live) fiber_release(WAIT_BLOCK, 0);
  if (g_warp_live[w] && g_warp_arrived[w] == g_warp_live[w]) fiber_release(WAIT_WARP, w);
  fiber_next(&g_fibers[t].sp);  // never resumed
  emu_fatal("a finished fiber was resumed");
}
// A fresh fiber's stack: six zero registers for emu_switch to pop, then
// fiber_main as the return address, 16-byte aligned as a call leaves it.
// Fiber t's top sits t·64 bytes (mod 4 KiB) below its stack's end: stack
// ends a power of two apart would all fall in the same cache sets.
inline void* fiber_stack_top(char* stack, unsigned t) {
  auto top = (reinterpret_cast<uintptr_t>(stack + FIBER_STACK - 64 * (t % 64)) & ~uintptr_t(15)) - 16;
  auto* slot = reinterpret_cast<void**>(top);
  slot[0] = reinterpret_cast<void*>(&fiber_main);
  for (int r = 1; r <= 6; ++r) slot[-r] = nullptr;
  return slot - 6;
}

inline void __syncthreads() {
  if (g_in_fibers) fiber_wait(WAIT_BLOCK);
  else if (g_block_bar) g_block_bar->arrive_and_wait();
  else if (g_serial_threads > 1) emu_fatal("__syncthreads in a kernel launched one thread at a time (launch it with par = true)");
}
inline void warp_sync(unsigned w) {
  if (g_in_fibers) fiber_wait(WAIT_WARP);
  else g_warp_bar[w]->arrive_and_wait();
}
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __int_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
template <class T> T __shfl_down_sync(unsigned, T v, int o) {
  if (!g_in_fibers && !g_block_bar) {
    if (g_serial_threads > 1) emu_fatal("__shfl_down_sync in a kernel launched one thread at a time (launch it with par = true)");
    return v;
  }
  unsigned tid = threadIdx.x + threadIdx.y * blockDim.x;
  unsigned w = tid >> 5, lane = tid & 31;
  if (g_in_fibers) {
    // Two slot sets used in turn: a lane cannot reach the next shuffle's
    // wait before every lane has read this one, so one wait per shuffle.
    unsigned b = g_fibers[g_cur].shuffles++ & 1;
    g_warp_slot2[b][w][lane] = (double)v;
    warp_sync(w);
    return lane + o < 32 ? (T)g_warp_slot2[b][w][lane + o] : v;
  }
  g_warp_slot[w][lane] = (double)v;
  warp_sync(w);
  T r = lane + o < 32 ? (T)g_warp_slot[w][lane + o] : v;
  warp_sync(w);
  return r;
}
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> l(g_atomic); float o = *p; *p += v; return o; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { std::lock_guard<std::mutex> l(g_atomic); unsigned o = *p; *p += v; return o; }
inline void __threadfence() {}
template <class T> T __ldcg(const T* p) { return *p; }
// Runs every block in turn; par = one OS thread per CUDA thread (barriers,
// shuffles), made once per launch and reused by its blocks: between blocks
// every thread waits at a gate whose completion moves to the next block,
// poisons shared memory and makes the block's barriers afresh.
inline void launch(dim3 grid, dim3 block, bool par, std::function<void()> body) {
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
  if (!par) {
    g_serial_threads = nt;
    for (const dim3 b : order) {
      blockIdx = b;
      poison_shared();
      for (unsigned t = 0; t < nt; ++t) { threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)}; body(); }
    }
    g_serial_threads = 0;
    return;
  }
  if (g_fibers_on) {
    if (g_fibers.size() < nt) g_fibers.resize(nt);
    for (unsigned t = 0; t < nt; ++t)
      if (!g_fibers[t].stack) g_fibers[t].stack = new char[FIBER_STACK];
    g_fiber_body = &body;
    g_in_fibers = true;
    g_turn.resize(nt);
    for (const dim3 b : order) {
      blockIdx = b;
      poison_shared();
      for (unsigned t = 0; t < nt; ++t) {
        Fiber& f = g_fibers[t];
        f.idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        f.state = RUN;
        f.shuffles = 0;
        f.sp = fiber_stack_top(f.stack, t);
        g_turn[t] = t;
      }
      if (g_order_seed)  // this block's turns in a seeded order
        for (size_t i = nt; i > 1; --i) {
          unsigned long long z = (g_order_seed += 0x9E3779B97F4A7C15ull);
          z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
          std::swap(g_turn[i - 1], g_turn[z % i]);
        }
      for (unsigned t = nt; t < g_fibers.size(); ++t) g_fibers[t].state = DONE;
      g_live = nt; g_block_arrived = 0;
      for (unsigned w = 0; w < 32; ++w) { g_warp_arrived[w] = 0; g_warp_live[w] = w * 32 < nt ? std::min(32u, nt - w * 32) : 0; }
      g_pos = 0; g_cur = g_turn[0]; threadIdx = g_fibers[g_cur].idx;
      emu_switch(&g_sched_sp, g_fibers[g_cur].sp);  // back when no fiber can run
      if (g_live) emu_fatal("deadlock: every live thread of a block waits at a barrier some thread never reaches");
    }
    g_in_fibers = false;
    return;
  }
  size_t next = 0;
  std::unique_ptr<std::barrier<>> bb;
  std::vector<std::unique_ptr<std::barrier<>>> wb;
  auto to_next_block = [&]() noexcept {
    if (next < order.size()) {
      blockIdx = order[next];
      poison_shared();
      bb.reset(new std::barrier<>(nt));
      g_block_bar = bb.get();
      wb.clear();
      for (unsigned w = 0; w < (nt + 31) / 32; ++w) { wb.emplace_back(new std::barrier<>(32)); g_warp_bar[w] = wb.back().get(); }
    } else {
      g_block_bar = nullptr;
    }
    ++next;
  };
  std::barrier<decltype(to_next_block)> gate(nt, to_next_block);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < nt; ++t) ts.emplace_back([&, t] {
    threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    for (;;) {
      gate.arrive_and_wait();
      if (next > order.size()) return;
      body();
      g_block_bar->arrive_and_drop();
    }
  });
  for (auto& th : ts) th.join();
}
