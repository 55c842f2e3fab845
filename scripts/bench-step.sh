#!/usr/bin/env bash
# Whole search-step timing of rarts beside the PyTorch anchor
# (scripts/anchor/darts_torch.py), both in this one call, on the same
# machine: C=16, 8 cells, 3×32×32 synthetic inputs, 10 classes, every
# algorithm. Writes rarts.jsonl, anchor.jsonl and table.md into $OUT
# (default ./bench-logs) and prints the table last.
#
# Usage: scripts/bench-step.sh cpu|cuda [BATCHES] [STEPS]
#   BATCHES: space-separated (default "8 32" on cpu, "64 256" on cuda)
#   STEPS:   timed steps per configuration (default 3 on cpu, 10 on cuda)
# Environment: RARTS (the binary, default target/release/rarts),
#   PYTHON (a python with torch, default python3), ALGOS (default
#   "darts1 darts2 rarts"), BEFORE (a second rarts binary, e.g. one built
#   before a change: timed in the same call, just before RARTS, and given
#   its own columns, so that a change is measured against the same anchor).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device="${1:?usage: bench-step.sh cpu|cuda [BATCHES] [STEPS]}"
case "$device" in
  cpu) batches="${2:-8 32}"; steps="${3:-3}" ;;
  cuda) batches="${2:-64 256}"; steps="${3:-10}" ;;
  *) echo "bench-step.sh: device must be cpu or cuda, got '$device'" >&2; exit 2 ;;
esac
rarts="${RARTS:-$root/target/release/rarts}"
python="${PYTHON:-python3}"
algos="${ALGOS:-darts1 darts2 rarts}"
out="${OUT:-$root/bench-logs}"
mkdir -p "$out"

{
  date -u +"date: %Y-%m-%d %H:%M UTC"
  if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  else
    lscpu | grep -E "^Model name|^CPU\(s\)" || true
  fi
  uptime
} | tee "$out/machine.txt"

status=0
time_rarts() { # BINARY NAME
  "$1" --device "$device" bench --data synthetic:512:32 --c 16 --layers 8 \
    --algos "$(echo $algos | tr ' ' ',')" --batches "$(echo $batches | tr ' ' ',')" --steps "$steps" \
    > "$out/$2.log" 2>&1 || status=1
  grep '^{' "$out/$2.log" > "$out/$2.jsonl" || true
}
rm -f "$out/before.jsonl"
[ -n "${BEFORE:-}" ] && time_rarts "$BEFORE" before
time_rarts "$rarts" rarts

"$python" "$root/scripts/anchor/darts_torch.py" --device "$device" --batch $batches --algos $algos \
  --steps "$steps" $([ "$device" = cuda ] && echo --count) > "$out/anchor.log" 2>&1 || status=1
grep '^{' "$out/anchor.log" > "$out/anchor.jsonl" || true
uptime >> "$out/machine.txt"

"$python" - "$out" <<'PY' | tee "$out/table.md"
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return {(r["algo"], r["batch"]): r for r in map(json.loads, open(p))} if os.path.exists(p) else {}
ours, anchor, before = rows("rarts.jsonl"), rows("anchor.jsonl"), rows("before.jsonl")
extra = " before ms/step | PyTorch / before |" if before else ""
print("| algo | batch | rarts ms/step | rarts images/s | PyTorch ms/step | PyTorch kernels/step | PyTorch peak MB | PyTorch / rarts |" + extra)
print("|---|---|---|---|---|---|---|---|" + ("---|---|" if before else ""))
for key in sorted(set(ours) | set(anchor), key=lambda k: (k[1], k[0])):
    o, a, b = ours.get(key), anchor.get(key), before.get(key)
    om = o["ms_per_step"] if o else None
    am = a["ms_per_step"] if a else None
    bm = b["ms_per_step"] if b else None
    ratio = lambda m: f"{am / m:.2f}×" if m and am else "—"
    f = lambda v: "—" if v is None else str(v)
    print(f"| {key[0]} | {key[1]} | {f(om)} | {f(o and o['img_per_s'])} | {f(am)} | "
          f"{f(a and a.get('kernels_per_step'))} | {f(a and a.get('peak_mem_mb'))} | {ratio(om)} |"
          + (f" {f(bm)} | {ratio(bm)} |" if before else ""))
PY
exit $status
