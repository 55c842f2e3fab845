#!/usr/bin/env bash
# The test suite, with every set-up step it needs on a fresh machine:
# installs the pinned CUDA 13.0 nvcc and NVRTC wheels (no GPU needed, see
# scripts/install-nvcc.sh) so that build.rs compiles every kernel to PTX and
# a kernel that does not compile fails the build, then runs
# `cargo test --release`. Extra arguments go to cargo test.
#
# Without a GPU the CUDA parity tests print "skipped: <test>: no CUDA device (...)"
# and pass; the NVRTC test still compiles every embedded kernel source.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CUDA_HOME="$(scripts/install-nvcc.sh)"
export CUDA_HOME
export PATH="$CUDA_HOME/bin:$PATH"
# libnvrtc for the run-time compile test; libcuda is never taken from here.
export LD_LIBRARY_PATH="$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cargo test --release "$@"
