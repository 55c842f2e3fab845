#!/usr/bin/env bash
# Plants GPU-only bugs, one at a time, in a scratch copy of the kernels and
# shows that the kernel emulation (scripts/kernel-emu.sh) fails on each:
#   barrier  the first __syncthreads of block_sum_f64 removed (a race
#            between two consecutive reductions of one block) — caught by
#            the ThreadSanitizer stage;
#   shared   mix_fwd's shared weights filled by block 0 only — caught by
#            the shared memory poisoned before each block;
#   fence    the __threadfence before the pointwise filter gradient takes
#            its ticket dropped — caught by the fence check;
#   flag     mix_bwd's add-or-overwrite mask cut to 32 bits — caught by the
#            35- and 40-term mixes.
# (The convolution kernels' results are held to src/ops/conv/reference.rs
# by tests/kernel_emu.rs, not by the script alone.)
# Usage: scripts/kernel-mutants.sh [NAME…] (default: all). Exits 1 if any
# mutant survives. Each mutant's run prints its stages' times.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=(barrier shared fence flag)
names=("${@:-${all[@]}}")
survived=()
for name in "${names[@]}"; do
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/rarts-mutant-$name.XXXXXX")"
  mkdir -p "$scratch/scripts"
  cp -r "$root/kernels" "$scratch/kernels"
  cp -r "$root/scripts/kernel-emu" "$root/scripts/kernel-emu.sh" "$scratch/scripts/"
  python3 - "$scratch" "$name" <<'PY'
import sys
root, name = sys.argv[1], sys.argv[2]
edits = {
    "barrier": ("kernels/common.cuh", "    __syncthreads();  // `shared` may still be read by a previous call\n", ""),
    "shared": ("kernels/elementwise.cu", "    if (threadIdx.x < nt) a[threadIdx.x]", "    if (blockIdx.x == 0 && threadIdx.x < nt) a[threadIdx.x]"),
    "fence": ("kernels/conv.cu", "    __shared__ unsigned last;\n    __threadfence();\n", "    __shared__ unsigned last;\n"),
    "flag": ("kernels/elementwise.cu", "    const unsigned long long add = T.add_mask;\n", "    const unsigned add = (unsigned)T.add_mask;\n"),
}
if name not in edits:
    sys.exit(f"kernel-mutants: unknown mutant {name!r}; expected one of {', '.join(edits)}")
path, old, new = edits[name]
text = open(f"{root}/{path}").read()
if text.count(old) != 1:
    sys.exit(f"kernel-mutants: {name}: the line to change is not in {path} exactly once; update the mutant")
open(f"{root}/{path}", "w").write(text.replace(old, new))
PY
  echo "=== mutant $name"
  # The race needs the ThreadSanitizer stage alone; the others are caught
  # by the first stages (each stage stops the script at its first failure).
  only=0; [ "$name" = barrier ] && only=1
  if EMU_TSAN_ONLY=$only TMPDIR="$scratch" bash "$scratch/scripts/kernel-emu.sh" > "$scratch/log" 2>&1; then
    echo "SURVIVED: mutant $name passed the emulation (log: $scratch/log)"
    survived+=("$name")
  else
    echo "caught: $(grep -m1 -E '^(FAIL|FENCE|FAILED|WARNING: ThreadSanitizer)' "$scratch/log" || tail -1 "$scratch/log")"
    grep -E '^== |^   \(' "$scratch/log" | paste - - | sed 's/^/  /'
    rm -rf "$scratch"
  fi
done
if [ ${#survived[@]} -gt 0 ]; then
  echo "kernel-mutants: ${#survived[@]} survived: ${survived[*]}"
  exit 1
fi
echo "kernel-mutants: every planted bug caught (${names[*]})"
