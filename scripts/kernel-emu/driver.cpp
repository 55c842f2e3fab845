// An emulated CUDA device: a stand-in `libcuda.so` that answers the driver
// calls the Rust backend makes (through cudarc) and runs each launch's
// kernel on the CPU under shim.h. With it on LD_LIBRARY_PATH, `Cuda::new`
// opens "rarts emulated device" and tests/gpu_parity.rs runs every launcher
// as written: the grids, blocks, scratch sizes and argument lists the Rust
// code sends, not a second derivation of them.
//
// Stricter than a GPU where it can be:
// - device memory is host memory from posix_memalign, exact in size, filled
//   with 0xff (NaN) when allocated: a kernel that reads what nobody wrote
//   gets NaN, and an AddressSanitizer build catches any access past a
//   buffer's end;
// - every pointer argument must point into a live allocation (or be null);
// - a module's PTX is read on load, and each kernel's `.param` list must
//   match the sizes of the host-compiled kernel's C parameters;
// - a graph capture records launches, device-to-device copies and memsets
//   (their arguments copied, as the driver does) and refuses allocations and
//   host copies; a replay runs the recorded launches again;
// - EMU_LOG=FILE writes one line per launch: kernel, grid, block, shared
//   memory and each argument (an address as the allocation it points into).
// Everything runs synchronously on the calling thread; streams only order.
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
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#define API extern "C" __attribute__((visibility("default")))
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
enum : CUresult {
  OK = 0,
  INVALID_VALUE = 1,
  OUT_OF_MEMORY = 2,
  INVALID_IMAGE = 200,
  INVALID_HANDLE = 400,
  NOT_FOUND = 500,
  ILLEGAL_ADDRESS = 700,
  NOT_SUPPORTED = 801,
  CAPTURE_UNSUPPORTED = 900,
  CAPTURE_INVALIDATED = 901,
};

[[noreturn]] static void die(const std::string& m) {
  std::fprintf(stderr, "emulated device: %s\n", m.c_str());
  std::abort();
}

// ---- memory --------------------------------------------------------------
static std::map<uintptr_t, size_t> g_allocs;  // address -> bytes, live only

static const std::pair<const uintptr_t, size_t>* owner(uintptr_t p) {
  auto it = g_allocs.upper_bound(p);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  return p < it->first + std::max<size_t>(it->second, 1) ? &*it : nullptr;
}

static CUresult alloc(CUdeviceptr* out, size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 256, std::max<size_t>(bytes, 1)) != 0) return OUT_OF_MEMORY;
  std::memset(p, 0xff, bytes);
  g_allocs[(uintptr_t)p] = bytes;
  *out = (CUdeviceptr)p;
  return OK;
}

static CUresult release(CUdeviceptr p) {
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end()) die("freeing " + std::to_string(p) + ", which is not an allocation");
  g_allocs.erase(it);
  std::free((void*)p);
  return OK;
}

// Fails unless [p, p + bytes) lies inside one live allocation.
static void check_range(const char* what, CUdeviceptr p, size_t bytes) {
  auto a = owner((uintptr_t)p);
  if (!a || p + bytes > a->first + a->second)
    die(std::string(what) + ": " + std::to_string(bytes) + " bytes at " + std::to_string(p) + " are not inside one allocation");
}

// ---- kernels -------------------------------------------------------------
static FILE* g_log = [] {
  const char* p = std::getenv("EMU_LOG");
  return p ? std::fopen(p, "w") : nullptr;
}();

template <class T> static std::string show(const T& v) {
  if constexpr (std::is_pointer_v<T>) {
    if (!v) return "null";
    auto a = owner((uintptr_t)v);
    if (!a) return "stray " + std::to_string((uintptr_t)v);
    return "buf[" + std::to_string(a->second) + " B]+" + std::to_string((uintptr_t)v - a->first);
  } else if constexpr (std::is_floating_point_v<T>) {
    char b[32]; std::snprintf(b, 32, "%g", (double)v); return b;
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    return "struct[" + std::to_string(sizeof(T)) + " B]";
  }
}

template <class T> static bool pointer_ok(const T& v) {
  if constexpr (std::is_pointer_v<T>) return !v || owner((uintptr_t)v);
  else return true;
}

struct Bound {
  std::function<void()> check, body;
  std::string line;
};

struct Kernel {
  std::string name;
  std::vector<size_t> sizes;  // of the C parameters, in order
  bool par;                   // one OS thread per CUDA thread (barriers, shuffles)
  // Copies the arguments out of `params` (as the driver does at launch or
  // capture) and returns the check of its pointers, the body each CUDA
  // thread runs, and (with EMU_LOG) a line describing the arguments.
  std::function<Bound(void**)> bind;
};

template <class... A, size_t... I>
static Bound bind_args(const char* name, void (*f)(A...), void** p, std::index_sequence<I...>) {
  std::tuple<std::remove_cvref_t<A>...> args{*(std::remove_cvref_t<A>*)p[I]...};
  std::string line;
  if (g_log) ((line += (I ? " " : "") + show(std::get<I>(args))), ...);
  auto check = [name, args] {
    if (!(pointer_ok(std::get<I>(args)) && ...)) {
      std::string now;
      ((now += (I ? " " : "") + show(std::get<I>(args))), ...);
      die(std::string(name) + ": an argument points outside every live allocation: " + now);
    }
  };
  return {check, [f, args] { std::apply(f, args); }, line};
}

// The kernels that synchronise their threads (barriers, warp shuffles): they
// run one OS thread per CUDA thread. Any other kernel that reaches a barrier
// or a shuffle stops the emulation with an error (shim.h), so this list
// cannot silently miss one.
static const std::set<std::string> g_par = {
  "accuracy_f32", "bn_bwd_apply_f32", "bn_bwd_fused_f32", "bn_bwd_partial_f32", "bn_fwd_apply_f32",
  "bn_fwd_fused_f32", "bn_fwd_merged_f32", "chain_bwd_f32", "chain_fwd_f32", "bn_stats_partial_f32", "channel_scale_bwd_m_f32", "conv_bwd_filter_f32",
  "cross_entropy_fwd_f32", "dwconv_bwd_f32", "dwconv_bwd_filter_f32", "gap_fwd_f32", "mix_bwd_finish_f32",
  "mix_bwd_partial_f32", "mix_fwd_f32", "norm_finish_f32", "pwconv_bwd_data_f32", "pwconv_bwd_filter_f32",
  "pwconv_fwd_f32", "reduce_finish_f32", "reduce_partial_f64", "sumsq_list_partial_f64",
};

template <class... A> static Kernel entry(const char* name, void (*f)(A...)) {
  return {name, {sizeof(A)...}, g_par.count(name) > 0,
          [name, f](void** p) { return bind_args<A...>(name, f, p, std::index_sequence_for<A...>{}); }};
}

static std::map<std::string, Kernel>& kernels() {
  static std::map<std::string, Kernel> k = [] {
    std::map<std::string, Kernel> m;
#define K(name) m.emplace(#name, entry(#name, &name));
#include "kernels.inc"
#undef K
    return m;
  }();
  return k;
}

// ---- modules: the PTX's entries and their .param sizes ---------------------
struct Module {
  std::map<std::string, std::vector<size_t>> params;
};

static size_t param_size(const std::string& decl) {
  // ".param .u64 name" / ".param .align 8 .b8 name[800]"
  auto lb = decl.find('[');
  if (lb != std::string::npos) return std::stoul(decl.substr(lb + 1));
  for (auto [t, n] : {std::pair{".u64", 8}, {".s64", 8}, {".f64", 8}, {".b64", 8}, {".u32", 4}, {".s32", 4}, {".f32", 4},
                      {".b32", 4}, {".u16", 2}, {".s16", 2}, {".b16", 2}, {".u8", 1}, {".s8", 1}, {".b8", 1}})
    if (decl.find(t) != std::string::npos) return n;
  die("cannot size the PTX parameter \"" + decl + "\"");
}

static Module* parse_ptx(const char* text) {
  auto* m = new Module;
  std::string s(text);
  for (size_t at = s.find(".entry "); at != std::string::npos; at = s.find(".entry ", at + 1)) {
    size_t open = s.find('(', at), close = s.find(')', open);
    std::string name = s.substr(at + 7, open - at - 7);
    while (!name.empty() && std::isspace((unsigned char)name.back())) name.pop_back();
    std::vector<size_t> sizes;
    std::string list = s.substr(open + 1, close - open - 1);
    for (size_t p = list.find(".param"); p != std::string::npos; p = list.find(".param", p + 1)) {
      size_t end = list.find(',', p);
      sizes.push_back(param_size(list.substr(p, end == std::string::npos ? std::string::npos : end - p)));
    }
    m->params[name] = sizes;
  }
  return m;
}

// ---- streams and graphs -----------------------------------------------------
struct Stream {
  bool capturing = false;
  bool invalid = false;  // a refused call during the capture
  std::vector<std::function<void()>> ops;
};
struct Graph {
  std::vector<std::function<void()>> ops;
};

static Stream g_null_stream;
static Stream* stream_of(void* s) { return s ? (Stream*)s : &g_null_stream; }

// Runs `op` now, or records it when `s` is capturing.
static void submit(Stream* s, std::function<void()> op) {
  if (s->capturing) s->ops.push_back(std::move(op));
  else op();
}

// ---- the driver API ----------------------------------------------------------
static int g_ctx_tag, g_dev_ctx;

API CUresult cuInit(unsigned) { return OK; }
API CUresult cuDriverGetVersion(int* v) { *v = 13000; return OK; }
API CUresult cuDeviceGetCount(int* n) { *n = 1; return OK; }
API CUresult cuDeviceGet(CUdevice* d, int ordinal) { if (ordinal != 0) return INVALID_VALUE; *d = 0; return OK; }
API CUresult cuDeviceGetName(char* name, int len, CUdevice) {
  std::snprintf(name, len, "rarts emulated device (CPU)");
  return OK;
}
API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice) {
  switch (attr) {
    case 75: *v = 9; break;    // compute capability major
    case 76: *v = 0; break;    // minor
    case 16: *v = 132; break;  // multiprocessors
    case 115: *v = 1; break;   // memory pools: allocations go through cuMemAllocAsync, as on an H200
    case 1: *v = 1024; break;  // max threads per block
    case 8: *v = 48 * 1024; break;  // shared memory per block
    case 10: *v = 32; break;   // warp size
    default: *v = 0;
  }
  return OK;
}
API CUresult cuDeviceTotalMem_v2(size_t* b, CUdevice) { *b = 64ull << 30; return OK; }
API CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice) { *ctx = &g_ctx_tag; return OK; }
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return OK; }
API CUresult cuCtxSetCurrent(void*) { return OK; }
API CUresult cuCtxGetCurrent(void** ctx) { *ctx = &g_ctx_tag; return OK; }
API CUresult cuCtxPushCurrent_v2(void*) { return OK; }
API CUresult cuCtxPopCurrent_v2(void** ctx) { if (ctx) *ctx = &g_ctx_tag; return OK; }
API CUresult cuCtxGetDevice(CUdevice* d) { *d = g_dev_ctx; return OK; }
API CUresult cuCtxSynchronize() { return OK; }
API CUresult cuCtxGetStreamPriorityRange(int* lo, int* hi) { if (lo) *lo = 0; if (hi) *hi = -5; return OK; }
API CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total) { *free_b = 64ull << 30; *total = 64ull << 30; return OK; }
API CUresult cuGetErrorString(CUresult e, const char** s) {
  switch (e) {
    case OK: *s = "no error"; break;
    case INVALID_VALUE: *s = "invalid argument"; break;
    case OUT_OF_MEMORY: *s = "out of memory"; break;
    case INVALID_IMAGE: *s = "a kernel's PTX parameters do not match its C signature (see stderr)"; break;
    case NOT_FOUND: *s = "named symbol not found"; break;
    case CAPTURE_UNSUPPORTED: *s = "operation not permitted when stream is capturing"; break;
    case CAPTURE_INVALIDATED: *s = "operation failed due to a previous error during capture"; break;
    default: *s = "emulated device error";
  }
  return OK;
}
API CUresult cuGetErrorName(CUresult e, const char** s) { return cuGetErrorString(e, s); }

API CUresult cuStreamCreate(void** s, unsigned) { *s = new Stream; return OK; }
API CUresult cuStreamCreateWithPriority(void** s, unsigned, int) { *s = new Stream; return OK; }
API CUresult cuStreamDestroy_v2(void* s) { delete (Stream*)s; return OK; }
API CUresult cuStreamSynchronize(void*) { return OK; }
API CUresult cuStreamQuery(void*) { return OK; }

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  if (g_null_stream.capturing) return CAPTURE_UNSUPPORTED;
  return alloc(p, bytes);
}
API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, void* s) {
  // A real driver would add an allocation node to the graph; the backend
  // promises to allocate nothing while capturing, so here it is an error.
  if (stream_of(s)->capturing) { stream_of(s)->invalid = true; return CAPTURE_UNSUPPORTED; }
  return alloc(p, bytes);
}
API CUresult cuMemFree_v2(CUdeviceptr p) { return release(p); }
API CUresult cuMemFreeAsync(CUdeviceptr p, void* s) {
  if (stream_of(s)->capturing) { stream_of(s)->invalid = true; return CAPTURE_UNSUPPORTED; }
  return release(p);
}
API CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, void* s) {
  check_range("cuMemsetD8", p, n);
  submit(stream_of(s), [=] { std::memset((void*)p, v, n); });
  return OK;
}
API CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) { return cuMemsetD8Async(p, v, n, nullptr); }
API CUresult cuMemsetD32Async(CUdeviceptr p, unsigned v, size_t n, void* s) {
  check_range("cuMemsetD32", p, n * 4);
  submit(stream_of(s), [=] { for (size_t i = 0; i < n; ++i) std::memcpy((char*)p + 4 * i, &v, 4); });
  return OK;
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* s) {
  // Pageable host memory cannot be captured: the graph would read it at
  // replay, after the host may have freed it.
  if (stream_of(s)->capturing) { stream_of(s)->invalid = true; return CAPTURE_UNSUPPORTED; }
  check_range("cuMemcpyHtoD", dst, n);
  std::memcpy((void*)dst, src, n);
  return OK;
}
API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) { return cuMemcpyHtoDAsync_v2(dst, src, n, nullptr); }
API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* s) {
  if (stream_of(s)->capturing) { stream_of(s)->invalid = true; return CAPTURE_UNSUPPORTED; }
  check_range("cuMemcpyDtoH", src, n);
  std::memcpy(dst, (const void*)src, n);
  return OK;
}
API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoHAsync_v2(dst, src, n, nullptr); }
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* s) {
  check_range("cuMemcpyDtoD (to)", dst, n);
  check_range("cuMemcpyDtoD (from)", src, n);
  submit(stream_of(s), [=] { std::memmove((void*)dst, (const void*)src, n); });
  return OK;
}

API CUresult cuModuleLoadData(void** m, const void* image) {
  *m = parse_ptx((const char*)image);
  return OK;
}
API CUresult cuModuleUnload(void* m) { delete (Module*)m; return OK; }
API CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
  auto* mod = (Module*)m;
  auto ptx = mod->params.find(name);
  if (ptx == mod->params.end()) return NOT_FOUND;
  auto k = kernels().find(name);
  if (k == kernels().end()) {
    std::fprintf(stderr, "emulated device: %s is in the PTX but not among the emulated kernels\n", name);
    return NOT_FOUND;
  }
  if (ptx->second != k->second.sizes) {
    std::string a, b;
    for (size_t v : ptx->second) a += " " + std::to_string(v);
    for (size_t v : k->second.sizes) b += " " + std::to_string(v);
    std::fprintf(stderr, "emulated device: %s: PTX .param sizes [%s ] differ from the C signature's [%s ]\n", name,
                 a.c_str(), b.c_str());
    return INVALID_IMAGE;
  }
  *f = &k->second;
  return OK;
}

API CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared, void* s, void** params, void** extra) {
  auto* k = (Kernel*)f;
  if (extra) die(k->name + ": launch with `extra` arguments is not emulated");
  if (!gx || !gy || !gz || !bx || !by || !bz || bx * by * bz > 1024 || gy > 65535 || gz > 65535)
    die(k->name + ": invalid launch configuration grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," +
        std::to_string(gz) + ") block (" + std::to_string(bx) + "," + std::to_string(by) + "," + std::to_string(bz) + ")");
  if (shared) die(k->name + ": dynamic shared memory is not emulated (the kernels use static __shared__ only)");
  Bound b = k->bind(params);
  if (g_log)
    std::fprintf(g_log, "%s grid=(%u,%u,%u) block=(%u,%u,%u) shared=%u%s args: %s\n", k->name.c_str(), gx, gy, gz, bx, by,
                 bz, shared, stream_of(s)->capturing ? " captured" : "", b.line.c_str());
  dim3 grid{gx, gy, gz}, block{bx, by, bz};
  bool par = k->par;
  // The pointers are checked when the launch runs, so a graph replayed
  // after one of its buffers was freed fails too.
  submit(stream_of(s), [=] { b.check(); launch(grid, block, par, b.body); });
  return OK;
}

API CUresult cuStreamBeginCapture_v2(void* s, int) {
  auto* st = stream_of(s);
  if (st->capturing) return INVALID_VALUE;
  st->capturing = true; st->invalid = false; st->ops.clear();
  return OK;
}
API CUresult cuStreamEndCapture(void* s, void** g) {
  auto* st = stream_of(s);
  if (!st->capturing) return INVALID_VALUE;
  st->capturing = false;
  if (st->invalid) { st->ops.clear(); *g = nullptr; return CAPTURE_INVALIDATED; }
  auto* graph = new Graph;
  graph->ops.swap(st->ops);
  *g = graph;
  return OK;
}
API CUresult cuStreamIsCapturing(void* s, int* status) { *status = stream_of(s)->capturing ? 1 : 0; return OK; }
API CUresult cuGraphInstantiateWithFlags(void** exec, void* g, unsigned long long) {
  *exec = new Graph(*(Graph*)g);
  return OK;
}
API CUresult cuGraphUpload(void*, void*) { return OK; }
API CUresult cuGraphLaunch(void* exec, void* s) {
  auto* st = stream_of(s);
  if (st->capturing) return CAPTURE_UNSUPPORTED;
  for (auto& op : ((Graph*)exec)->ops) op();
  return OK;
}
API CUresult cuGraphDestroy(void* g) { delete (Graph*)g; return OK; }
API CUresult cuGraphExecDestroy(void* g) { delete (Graph*)g; return OK; }

API CUresult cuEventCreate(void** e, unsigned) { *e = new int(0); return OK; }
API CUresult cuEventDestroy_v2(void* e) { delete (int*)e; return OK; }
API CUresult cuEventRecord(void*, void*) { return OK; }
API CUresult cuEventSynchronize(void*) { return OK; }
API CUresult cuStreamWaitEvent(void*, void*, unsigned) { return OK; }
