#!/usr/bin/env bash
# scripts/with-slurm.sh COMMAND…: runs COMMAND with a one-node Slurm cluster
# for tests/slurm.rs (scripts/slurm-local.sh installs slurm-wlm and munge
# when missing, and stops the cluster at the end). Where none can be
# started, COMMAND still runs and the Slurm tests skip, saying why. With
# SLURM_CONF already set, the cluster it names is used as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${SLURM_CONF:-}" ]; then
  if slurm_env=$(scripts/slurm-local.sh start); then
    eval "$slurm_env"
    trap 'scripts/slurm-local.sh stop >&2 || true' EXIT
  else
    echo "with-slurm.sh: no local Slurm cluster could be started (above); tests/slurm.rs will skip" >&2
  fi
fi
"$@"
