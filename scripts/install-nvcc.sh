#!/usr/bin/env bash
# Installs a CUDA 13.0 nvcc and NVRTC from PyPI into .cuda-venv (no GPU needed),
# so build.rs can compile kernels/*.cu to PTX and tests can load NVRTC.
# Every wheel is pinned and installed with --no-deps: the nvcc wheel's own
# dependencies are unpinned and would pull parts newer than the 13.0 driver
# on the GPU machine can load. Idempotent. Last line printed: CUDA_HOME.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.cuda-venv"
wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cuda_home="$site/nvidia/cu13"

missing=0
for w in "${wheels[@]}"; do
  name="${w%%==*}"
  want="${w##*==}"
  have="$("$venv/bin/pip" show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)"
  if [ "$have" != "$want" ]; then
    missing=1
  fi
done

if [ "$missing" = 1 ]; then
  "$venv/bin/pip" install --quiet --no-deps "${wheels[@]}" >&2
else
  echo "install-nvcc: all pinned wheels already present" >&2
fi

if [ ! -x "$cuda_home/bin/nvcc" ]; then
  echo "install-nvcc: $cuda_home/bin/nvcc not found after install" >&2
  exit 1
fi
echo "$cuda_home"
