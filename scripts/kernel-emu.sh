#!/usr/bin/env bash
# Compiles the CUDA kernels for the host with the CPU stand-in of
# scripts/kernel-emu/shim.h and checks them against direct references.
# Needs g++ with C++20; no GPU, no CUDA toolkit. Takes about a minute.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${TMPDIR:-/tmp}/rarts-kernel-emu"
g++ -std=c++20 -O1 -pthread -w -I "$root/kernels" -I "$root/scripts/kernel-emu" \
  -o "$out" "$root/scripts/kernel-emu/emu.cpp"
"$out"
