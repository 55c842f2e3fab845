# Sourced, not run: `. scripts/cuda-env.sh && cargo test --release`.
# Installs the pinned CUDA 13.0 nvcc and NVRTC wheels into .cuda-venv (no
# GPU needed, see scripts/install-nvcc.sh) and exports CUDA_HOME, PATH and
# LD_LIBRARY_PATH, so that build.rs compiles every kernel to PTX (a kernel
# that does not compile fails the build) and the NVRTC test finds libnvrtc.
# Without a GPU the CUDA parity tests print
# "skipped: <test>: no CUDA device (...)" and pass.
rarts_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if rarts_cuda="$("$rarts_root/scripts/install-nvcc.sh")"; then
  export CUDA_HOME="$rarts_cuda"
  export PATH="$CUDA_HOME/bin:$PATH"
  # libnvrtc for the run-time compile test; libcuda is never taken from here.
  export LD_LIBRARY_PATH="$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  unset rarts_root rarts_cuda
else
  echo "cuda-env: installing nvcc failed (see above)" >&2
  unset rarts_root rarts_cuda
  false
fi
