// Shared helpers of every kernel file. No standard headers: NVRTC compiles
// these sources without include paths, and build.rs inlines this file into
// each source it embeds.
#pragma once

// The kernels read their block size from blockDim (the launchers pick it:
// BLOCK in src/device/cuda.rs); the block reductions below assume a
// multiple of 32, at most 1024.

// A kernel's scalar arguments come as one struct, declared here in the
// family's .cu and in Rust with `kernel_params!` (src/device/kernel_params.rs).
// Its size and each field's offset are pinned below the C struct, so that a
// field changed on this side alone fails the build; tests/kernel_params.rs
// compares the struct, its pins and the Rust struct, so that a field changed
// on the Rust side alone fails the tests.
// NVRTC (the run-time fallback) has no offsetof in any form: there the
// offsets go unchecked, as nvcc (build.rs) and g++ (the kernel emulator)
// have checked the same source.
#define PARAMS_SIZE(S, bytes) static_assert(sizeof(S) == (bytes), #S ": " #bytes " bytes, as in Rust")
#if defined(__CUDACC_RTC__)
#define PARAMS_FIELD(S, f, offset) static_assert(true, "")
#else
#define PARAMS_FIELD(S, f, offset) \
    static_assert(__builtin_offsetof(S, f) == (offset), #S "." #f ": at byte " #offset ", as in Rust")
#endif

// Grid-stride loop over `n` flat elements (64-bit: activations of a large
// batch exceed 2^31 elements summed over a step, not one buffer, but the
// index arithmetic of (n, c, h, w) products is done in 64 bits to be safe).
#define FOR_EACH(i, n)                                                        \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;      \
         i < (n); i += (long long)blockDim.x * gridDim.x)

// `*d = v` when `add` is 0, `*d += v` when it is 1: how a backward kernel
// that may be the first to write a gradient writes it (the CPU `Write`).
__device__ __forceinline__ void put(float* d, float v, int add) { *d = add ? *d + v : v; }

// ReLU on the input of a convolution when `relu` is set (the CPU `act`).
__device__ __forceinline__ float act(float v, int relu) {
    return (relu && !(v > 0.0f)) ? 0.0f : v;
}

__device__ __forceinline__ float f32_nan() { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ float f32_neg_inf() { return __int_as_float(0xff800000); }

// Sum of `v` over the block, valid in thread 0. Every thread must call it.
// `shared` holds 32 doubles.
__device__ __forceinline__ double block_sum_f64(double v, double* shared) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();  // `shared` may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    const unsigned warps = (blockDim.x + 31u) >> 5;
    v = (threadIdx.x < warps) ? shared[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Same in f32, for filter gradients that the CPU also accumulates in f32.
__device__ __forceinline__ float block_sum_f32(float v, float* shared) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    const unsigned warps = (blockDim.x + 31u) >> 5;
    v = (threadIdx.x < warps) ? shared[threadIdx.x] : 0.0f;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Broadcasts thread 0's value to the whole block.
__device__ __forceinline__ double block_bcast_f64(double v, double* slot) {
    __syncthreads();
    if (threadIdx.x == 0) *slot = v;
    __syncthreads();
    return *slot;
}
