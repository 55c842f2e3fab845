#!/usr/bin/env bash
# Builds the emulated CUDA device: DIR/libcuda.so, a stand-in driver that
# runs every kernel of kernels/*.cu on the CPU (scripts/kernel-emu/driver.cpp).
# Put DIR first on LD_LIBRARY_PATH and `--device cuda` (or the GPU parity
# tests) run on it, through the same Rust launchers a GPU gets:
#   scripts/emulated-device.sh /tmp/emu-dev
#   LD_LIBRARY_PATH=/tmp/emu-dev cargo test --release --test gpu_parity
# Extra arguments go to g++ (e.g. -fsanitize=address). Needs g++ with C++20.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:?usage: scripts/emulated-device.sh DIR [g++ flags…]}"
shift
mkdir -p "$dir"
# Every kernel the .cu files define, as K(name) lines for the driver's table.
grep -ho '__global__ void [A-Za-z0-9_]*' "$root"/kernels/*.cu | awk '{print "K(" $3 ")"}' > "$dir/kernels.inc"
g++ -std=c++20 -O2 -pthread -w -fPIC -shared -fvisibility=hidden -ftls-model=initial-exec \
  -I "$root/kernels" -I "$root/scripts/kernel-emu" -I "$dir" "$@" \
  -o "$dir/libcuda.so.tmp" "$root/scripts/kernel-emu/driver.cpp"
mv "$dir/libcuda.so.tmp" "$dir/libcuda.so"
echo "$dir/libcuda.so"
