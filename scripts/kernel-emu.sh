#!/usr/bin/env bash
# Compiles the CUDA kernels for the host with the CPU stand-in of
# scripts/kernel-emu/shim.h and checks them against direct references.
# Needs g++ with C++20 on x86-64; no GPU, no CUDA toolkit. Each stage prints its time;
# any mismatch, a result that depends on the order of the blocks, or a
# sanitizer's report fails the script. EMU_SANITIZE=0 skips the ASan+UBSan
# stage, EMU_TSAN=0 the ThreadSanitizer one. EMU_DUMP=DIR writes the
# in-order stage's convolution cases into DIR for tests/kernel_emu.rs, which
# holds them to src/ops/conv/reference.rs (the convolution's semantics are
# not written a second time here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${TMPDIR:-/tmp}/rarts-kernel-emu"
build() { # OUT [EXTRA FLAGS…]
  local o="$1"; shift
  g++ -std=c++20 -O1 -pthread -w -I "$root/kernels" -I "$root/scripts/kernel-emu" "$@" \
    -o "$o" "$root/scripts/kernel-emu/emu.cpp"
}
stage() { # NAME COMMAND…: runs it, prints its time
  local t0=$SECONDS; echo "== $1"; shift; "$@"; echo "   ($((SECONDS - t0)) s)"
}
digest() { grep '^digest ' "$1" | cut -d' ' -f2; }
log="$out.log"
dump="${EMU_DUMP:-}"
unset EMU_DUMP
# 0. The fences a GPU needs and no host run can show missing.
stage "fences" python3 "$root/scripts/kernel-emu/fences.py" "$root"/kernels/*.cu
# EMU_TSAN_ONLY=1: the fences and the ThreadSanitizer stage alone.
if [ "${EMU_TSAN_ONLY:-0}" = 1 ]; then EMU_TSAN=1; fi
if [ "${EMU_TSAN_ONLY:-0}" != 1 ]; then
# 1. In order, shared memory poisoned before every block.
stage "build" build "$out"
stage "blocks in order" bash -o pipefail -c 'EMU_DUMP="$3" "$1" | tee "$2"' _ "$out" "$log.inorder" "$dump"
# 2. The same with each launch's blocks shuffled: bit for bit the same results.
stage "blocks shuffled" bash -o pipefail -c 'EMU_ORDER=shuffle:7 "$1" | tee "$2"' _ "$out" "$log.shuffled"
if [ "$(digest "$log.inorder")" != "$(digest "$log.shuffled")" ]; then
  echo "FAILED: results depend on the order of the blocks (digests $(digest "$log.inorder") in order," \
    "$(digest "$log.shuffled") shuffled)"
  exit 1
fi
echo "blocks shuffled: the same digest as in order"
# 3. AddressSanitizer and UndefinedBehaviorSanitizer: out-of-bounds reads and
# writes, signed overflow — each an error. Where PTX and x86 disagree, the
# case is an error too, so no kernel can lean on either: a shift by the
# width or more (x86 masks the count, PTX clamps it) and a float-to-int
# conversion out of range or of NaN (x86 gives INT_MIN, PTX saturates or 0).
if [ "${EMU_SANITIZE:-1}" = 1 ]; then
  stage "build (ASan+UBSan)" build "$out.asan" -fsanitize=address,undefined,float-cast-overflow \
    -fno-sanitize-recover=all -g1
  stage "ASan+UBSan" bash -o pipefail -c 'ASAN_OPTIONS=detect_leaks=0 "$1" | tee "$2"' _ "$out.asan" "$log.asan"
fi
fi
# 4. ThreadSanitizer: under it the threads of a block are OS threads that
# run concurrently, so a missing barrier is a data race it reports. Every
# kernel (about two minutes on two cores). EMU_TSAN=0 leaves it out.
if [ "${EMU_TSAN:-1}" = 1 ]; then
  stage "build (TSan)" build "$out.tsan" -fsanitize=thread -g1
  stage "TSan" bash -o pipefail -c \
    'TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$1" 2>&1 | tee "$2"' _ "$out.tsan" "$log.tsan"
fi
