#!/usr/bin/env bash
# scripts/same-runs.sh BIN OUT: short runs of every algorithm and space (2 epochs × 3 steps)
# and two short trainings, on 2 threads, for a before/after comparison of a
# refactor: scripts/same-runs-compare.py BEFORE AFTER compares them.
set -u
bin="$1"; out="$2"; mkdir -p "$out"
export RARTS_THREADS=2
for space in darts nb201 width; do
  for algo in darts1 darts2 rarts; do
    extra=""
    case $space in darts) extra="--c 4 --layers 3";; nb201) extra="--c 4 --cells-per-stage 1";; width) extra="--depth 8";; esac
    "$bin" search --device cpu --data synthetic:64:16 --space $space --algo $algo $extra --batch 8 --epochs 2 --steps-per-epoch 3 \
      --eval-images 0 --out "$out/s-$space-$algo" --force > "$out/s-$space-$algo.stdout" 2>&1 || echo "FAIL $space $algo"
  done
done
"$bin" train --device cpu --data synthetic:64:16 --space darts --genotype DARTS_V2 --c 4 --layers 3 --batch 8 --epochs 2 --steps-per-epoch 3 --out "$out/t-darts" --force > "$out/t-darts.stdout" 2>&1 || echo "FAIL train darts"
"$bin" train --device cpu --data synthetic:64:16 --space nb201 --genotype random:3 --c 4 --cells-per-stage 1 --batch 8 --epochs 2 --steps-per-epoch 3 --out "$out/t-nb201" --force > "$out/t-nb201.stdout" 2>&1 || echo "FAIL train nb201"
echo done
