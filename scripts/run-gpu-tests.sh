#!/usr/bin/env bash
# On the GPU machine: runs the CUDA test executables copied there by
# scripts/build-gpu-tests.sh and writes one log per executable into $OUT
# (default ./gpu-logs). Exits non-zero if any of them failed.
#
# Usage: scripts/run-gpu-tests.sh [DIR]   (DIR: the copied binaries, default .dev)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/.dev}"
out="${OUT:-$root/gpu-logs}"
mkdir -p "$out"

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  command -v nvcc >/dev/null && nvcc --version | tail -2
} > "$out/device.txt"

status=0
for t in test-nvrtc_compile test-gpu_parity; do
  exe="$dir/$t"
  if [ ! -x "$exe" ]; then
    echo "$t: missing in $dir" | tee -a "$out/summary.txt"
    status=1
    continue
  fi
  start=$(date +%s%N)
  "$exe" --test-threads=1 --nocapture > "$out/$t.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  printf '%s: exit %d, %d ms\n' "$t" "$rc" "$(( (end - start) / 1000000 ))" | tee -a "$out/summary.txt"
  grep -E "^test |skipped|panicked|past tolerance|result:" "$out/$t.log" | tail -40 >> "$out/summary.txt"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
