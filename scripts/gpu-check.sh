#!/usr/bin/env bash
# The one script to run on the GPU machine, from binaries built elsewhere by
# scripts/build-gpu-tests.sh (that machine has no Rust toolchain):
#   1. the GPU test suite: every embedded kernel compiled with NVRTC, and
#      every CUDA kernel against the CPU reference (tests/gpu_parity.rs);
#   2. a short search on the GPU and the solvable model on the GPU;
#   3. the whole-step benchmark beside the PyTorch anchor, in this same call;
#   4. the same search and step with --cuda-graph (each step replayed as a
#      CUDA graph): the search's losses beside those of 2, the step's time.
# Logs go under $OUT (default ./gpu-logs); a short table is printed last.
#
# Usage: OUT=DIR scripts/gpu-check.sh [BIN_DIR]    (BIN_DIR default .dev)
# Environment: BATCHES (default "64"), STEPS (default 5), PYTHON (python3).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(cd "${1:-$root/.dev}" && pwd)"
out="${OUT:-$root/gpu-logs}"
mkdir -p "$out"
rarts="$dir/rarts"
status=0
note() { echo "gpu-check: $*" | tee -a "$out/steps.txt" >&2; }

# 1. Test suite (each executable under its own time limit).
note "tests: start $(date -u +%H:%M:%S)"
OUT="$out/tests" timeout 300 "$root/scripts/run-gpu-tests.sh" "$dir" > "$out/tests.log" 2>&1
rc=$?
note "tests: exit $rc"
[ "$rc" -eq 0 ] || status=1

# 2. A short search (two epochs of eight steps) and the toy model, on the GPU.
note "search: start $(date -u +%H:%M:%S)"
timeout 180 "$rarts" --device cuda search --data synthetic:1024:32 --c 8 --layers 5 --batch 32 \
  --epochs 2 --steps-per-epoch 8 --eval-images 256 --quiet --out "$out/search" > "$out/search.log" 2>&1
rc=$?
note "search: exit $rc"
[ "$rc" -eq 0 ] || status=1
: > "$out/toy.log"
for algo in darts1 darts2 rarts; do
  timeout 60 "$rarts" --device cuda toy --algo "$algo" --c 2 --lambda 1 --beta 1 --xi 0.5 >> "$out/toy.log" 2>&1 || status=1
done

# 4a. The same search with each step replayed as a CUDA graph.
note "search --cuda-graph: start $(date -u +%H:%M:%S)"
timeout 120 "$rarts" --device cuda search --data synthetic:1024:32 --c 8 --layers 5 --batch 32 \
  --epochs 2 --steps-per-epoch 8 --eval-images 256 --quiet --cuda-graph --out "$out/search-graph" \
  > "$out/search-graph.log" 2>&1
rc=$?
note "search --cuda-graph: exit $rc"
[ "$rc" -eq 0 ] || status=1

# 3. Step benchmark with the anchor.
note "bench: start $(date -u +%H:%M:%S)"
RARTS="$rarts" OUT="$out/bench" PYTHON="${PYTHON:-python3}" timeout 360 \
  "$root/scripts/bench-step.sh" cuda "${BATCHES:-64}" "${STEPS:-5}" > "$out/bench.log" 2>&1
rc=$?
note "bench: exit $rc"
[ "$rc" -eq 0 ] || status=1

# 4b. The step replayed as a CUDA graph (the anchor was timed in 3).
note "bench --cuda-graph: start $(date -u +%H:%M:%S)"
timeout 150 "$rarts" --device cuda bench --cuda-graph --data synthetic:512:32 --c 16 --layers 8 \
  --batches "$(echo "${BATCHES:-64}" | tr ' ' ',')" --steps "${STEPS:-5}" > "$out/bench-graph.log" 2>&1
rc=$?
note "bench --cuda-graph: exit $rc"
[ "$rc" -eq 0 ] || status=1

{
  echo "## gpu-check $(date -u +'%Y-%m-%d %H:%M UTC')"
  cat "$out/tests/device.txt" 2>/dev/null
  echo
  echo "tests:"
  grep -E "^test-|test result:" "$out/tests/summary.txt" 2>/dev/null || echo "  (no summary)"
  skipped=$(cat "$out"/tests/test-*.log 2>/dev/null | grep -c ": no CUDA device (")
  echo "GPU tests that said they were skipped: $skipped"
  echo
  echo "search (synthetic 3×32×32, C=8, 5 cells, batch 32, 2×8 steps):"
  grep -E "^device:|^genotype:|^error" "$out/search.log" | cut -c1-160
  if [ -f "$out/search/log.jsonl" ]; then
    sed -E 's/.*"epoch":([0-9]+).*"loss_train":([0-9.eE+-]+).*/  epoch \1 loss_train \2/' "$out/search/log.jsonl"
  fi
  echo
  echo "the same search, each step a CUDA graph (--cuda-graph):"
  grep -E "^genotype:|^error" "$out/search-graph.log" | cut -c1-160
  if [ -f "$out/search-graph/log.jsonl" ]; then
    sed -E 's/.*"epoch":([0-9]+).*"loss_train":([0-9.eE+-]+).*/  epoch \1 loss_train \2/' "$out/search-graph/log.jsonl"
  fi
  echo
  echo "toy model on the GPU:"
  grep -E "^algo=|^alpha=|^error" "$out/toy.log" | paste - - 2>/dev/null
  echo
  echo "step benchmark (C=16, 8 cells, 3×32×32) beside PyTorch, same call:"
  cat "$out/bench/table.md" 2>/dev/null || echo "  (no table)"
  echo
  echo "the step replayed as a CUDA graph (--cuda-graph):"
  grep -E "^(algo|darts|rarts|error)" "$out/bench-graph.log" 2>/dev/null || echo "  (no table)"
  echo
  echo "overall: $([ "$status" -eq 0 ] && echo PASS || echo FAIL)"
} | tee "$out/summary.md"
exit $status
