#!/usr/bin/env bash
# Builds the release test and bench executables and the `rarts` binary and
# copies them into DEST (default .dev/), to be sent to the GPU machine,
# which has no Rust toolchain. The kernels are compiled to PTX here when
# nvcc is found (see build.rs; scripts/install-nvcc.sh provides one),
# otherwise the binaries compile them with NVRTC at run time.
#
# Usage: scripts/build-gpu-tests.sh [DEST]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/.dev}"
cd "$root"

if [ -z "${CUDA_HOME:-}" ] && [ -x "$root/.cuda-venv/bin/python" ]; then
  site="$("$root/.cuda-venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if [ -x "$site/nvidia/cu13/bin/nvcc" ]; then
    export CUDA_HOME="$site/nvidia/cu13"
    echo "build-gpu-tests: using nvcc from $CUDA_HOME" >&2
  fi
fi

mkdir -p "$dest"
list="$(mktemp)"
trap 'rm -f "$list"' EXIT

# Every executable cargo reports: test harnesses (profile.test), benches and
# the rarts binary (which both commands report; listed once).
{
  cargo test --release --no-run --tests --benches --message-format=json
  cargo build --release --bin rarts --message-format=json
} | python3 -c '
import json, sys
seen = set()
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        kind = m["target"]["kind"][0]
        if m["profile"]["test"] and kind in ("lib", "bin"):
            kind = "unit-" + kind
        row = kind + "\t" + m["target"]["name"] + "\t" + m["executable"]
        if row not in seen:
            seen.add(row)
            print(row)
' > "$list"

while IFS=$'\t' read -r kind name exe; do
  case "$kind" in
    test) out="$dest/test-$name" ;;
    bench) out="$dest/bench-$name" ;;
    bin) out="$dest/$name" ;;
    unit-lib) out="$dest/unit-$name" ;;
    unit-bin) out="$dest/unit-bin-$name" ;;
    *) out="$dest/$kind-$name" ;;
  esac
  cp -f "$exe" "$out"
  echo "$out"
done < "$list"
