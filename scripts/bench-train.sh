#!/usr/bin/env bash
# DARTS' retraining step (train.py: forward, backward, clip, SGD, drop path
# 0.2) of rarts beside the PyTorch anchor (scripts/anchor/darts_torch.py
# --train), both in this one call, on the same machine. Writes rarts.jsonl,
# anchor.jsonl and table.md into $OUT (default ./bench-logs/train) and prints
# the table last.
#
# Usage: scripts/bench-train.sh cpu|cuda [BATCHES] [STEPS]
#   BATCHES: space-separated (default "32 96")
#   STEPS:   timed steps per batch size (default 3)
# Environment: RARTS (the binary, default target/release/rarts), PYTHON (a
#   python with torch, default python3), GENOTYPE (default DARTS_V2), NET
#   (default "--C 16 --layers 8 --hw 28 --in-ch 1", the Fashion-MNIST shape),
#   BEFORE (a second rarts binary, timed in the same call just before RARTS,
#   with its own columns).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device="${1:?usage: bench-train.sh cpu|cuda [BATCHES] [STEPS]}"
batches="${2:-32 96}"
steps="${3:-3}"
rarts="${RARTS:-$root/target/release/rarts}"
python="${PYTHON:-python3}"
genotype="${GENOTYPE:-DARTS_V2}"
net="${NET:---C 16 --layers 8 --hw 28 --in-ch 1}"
out="${OUT:-$root/bench-logs/train}"
mkdir -p "$out"
# The anchor's flags, spelled for rarts (--C → --c, --in-ch → --in-ch).
rnet="$(echo "$net" | sed 's/--C /--c /')"

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
  # shellcheck disable=SC2086
  "$1" --device "$device" bench-train --genotype "$genotype" $rnet \
    --batches "$(echo $batches | tr ' ' ',')" --steps "$steps" > "$out/$2.log" 2>&1 || status=1
  grep '^{' "$out/$2.log" > "$out/$2.jsonl" || true
}
rm -f "$out/before.jsonl"
[ -n "${BEFORE:-}" ] && time_rarts "$BEFORE" before
time_rarts "$rarts" rarts

# shellcheck disable=SC2086
"$python" "$root/scripts/anchor/darts_torch.py" --device "$device" --train "$genotype" $net \
  --batch $batches --steps "$steps" > "$out/anchor.log" 2>&1 || status=1
grep '^{' "$out/anchor.log" > "$out/anchor.jsonl" || true
uptime >> "$out/machine.txt"

"$python" - "$out" <<'PY' | tee "$out/table.md"
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return {r["batch"]: r for r in map(json.loads, open(p))} if os.path.exists(p) else {}
ours, anchor, before = rows("rarts.jsonl"), rows("anchor.jsonl"), rows("before.jsonl")
extra = " before ms/step | before / PyTorch images/s |" if before else ""
print("| batch | rarts ms/step | rarts images/s | PyTorch ms/step | PyTorch images/s | rarts / PyTorch images/s |" + extra)
print("|---|---|---|---|---|---|" + ("---|---|" if before else ""))
for b in sorted(set(ours) | set(anchor)):
    o, a, bf = ours.get(b), anchor.get(b), before.get(b)
    f = lambda r, k: "—" if r is None else str(r[k])
    ratio = lambda r: f"{r['img_per_s'] / a['img_per_s']:.2f}×" if r and a else "—"
    print(f"| {b} | {f(o, 'ms_per_step')} | {f(o, 'img_per_s')} | {f(a, 'ms_per_step')} | {f(a, 'img_per_s')} | {ratio(o)} |"
          + (f" {f(bf, 'ms_per_step')} | {ratio(bf)} |" if before else ""))
PY
exit $status
