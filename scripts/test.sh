#!/usr/bin/env bash
# The whole test suite, as CI runs it: the pinned nvcc wheels (no GPU
# needed), a one-node Slurm cluster for tests/slurm.rs (scripts/slurm-local.sh
# installs slurm-wlm and munge when missing, and is stopped at the end; where
# it cannot start, those tests skip and say why), then cargo test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${SLURM_CONF:-}" ]; then
  if slurm_env=$(scripts/slurm-local.sh start); then
    eval "$slurm_env"
    trap 'scripts/slurm-local.sh stop >&2 || true' EXIT
  else
    echo "test.sh: no local Slurm cluster could be started (above); tests/slurm.rs will skip" >&2
  fi
fi
. scripts/cuda-env.sh
cargo test --release "$@"
