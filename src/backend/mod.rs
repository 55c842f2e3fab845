//! The kernel interface. The tape, the optimizers and the search are written
//! once against this trait; `Cpu` (the reference) and `Cuda` implement it.
//!
//! Conventions, the same for every kernel:
//! - forward kernels overwrite their output (`=`);
//! - backward kernels accumulate into the gradients they are given (`+=`),
//!   so several consumers of one tensor simply add up;
//! - scalars (learning rates, factors) are passed as f32 and converted;
//! - a kernel never allocates: every buffer comes from the executor's plan,
//!   which is identical from one step to the next.

pub mod cpu;
pub mod cuda;

use crate::error::Result;
use crate::real::Real;

pub use crate::ops::bn::BnOps;
pub use crate::ops::conv::ConvOps;
pub use crate::ops::layout::LayoutOps;
pub use crate::ops::linear::LinearOps;
pub use crate::ops::optim::{AdamStep, OptimOps, SgdStep};
pub use crate::ops::pool::PoolOps;
pub use crate::ops::softmax::SoftmaxOps;
pub use cpu::Cpu;
pub use cuda::Cuda;

/// A place where buffers live and kernels run: its element type, its buffer
/// type and the memory operations the executor needs.
pub trait Device {
    type Elem: Real;
    type Buf;

    fn name(&self) -> String;

    /// Called once before a plan of `bytes` is allocated: fails with a plain
    /// message when the device cannot hold it (rather than the process being
    /// killed half-way). The default accepts everything and leaves failures
    /// to `alloc`.
    fn reserve(&self, bytes: usize) -> Result<()> {
        let _ = bytes;
        Ok(())
    }
    /// A zero-filled buffer of `len` elements.
    fn alloc(&self, len: usize) -> Result<Self::Buf>;
    fn len(&self, b: &Self::Buf) -> usize;
    /// `dst = src`; lengths must match.
    fn upload(&self, dst: &mut Self::Buf, src: &[Self::Elem]) -> Result<()>;
    fn download(&self, src: &Self::Buf) -> Result<Vec<Self::Elem>>;
    /// Waits for all queued work (a no-op on the CPU).
    fn synchronize(&self) -> Result<()>;
}

pub trait Backend: Device + ConvOps + PoolOps + BnOps + SoftmaxOps + LayoutOps + LinearOps + OptimOps {
    // ---- elementwise and reductions --------------------------------------
    /// `y = v`
    fn fill(&self, y: &mut Self::Buf, v: f32) -> Result<()>;
    /// `dst = src`
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf) -> Result<()>;
    /// `y += a·x`
    fn axpy(&self, a: f32, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `y *= a`
    fn scale(&self, a: f32, y: &mut Self::Buf) -> Result<()>;
    /// `Σ x²` in f64, returned to the host (synchronises).
    fn sum_sq(&self, x: &Self::Buf) -> Result<f64>;
    /// `y = max(x, 0)`
    fn relu_fwd(&self, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy · [x > 0]`
    fn relu_bwd(&self, x: &Self::Buf, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
    /// `y = a ⊙ b`
    fn mul_fwd(&self, a: &Self::Buf, b: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `da += dy ⊙ b` (the other factor's gradient is the same call with a, b swapped)
    fn mul_bwd(&self, b: &Self::Buf, dy: &Self::Buf, da: &mut Self::Buf) -> Result<()>;
    /// `y[n, …] = x[n, …] · mask[n]` — drop path; `x` holds `mask.len()`
    /// equal samples.
    fn drop_path_fwd(&self, x: &Self::Buf, mask: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx[n, …] += dy[n, …] · mask[n]`
    fn drop_path_bwd(&self, mask: &Self::Buf, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
    /// `y += w[idx] · x` — one term of a mixed edge, the weight read on the device.
    fn axpy_elem(&self, w: &Self::Buf, idx: usize, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `y = Σ_t w[idx_t] · x_t` — a mixed edge's forward, the weights read on
    /// the device. The default is a fill and one `axpy_elem` per term.
    fn mix_fwd(&self, w: &Self::Buf, terms: &[(usize, &Self::Buf)], y: &mut Self::Buf) -> Result<()> {
        self.fill(y, 0.0)?;
        for &(idx, x) in terms {
            self.axpy_elem(w, idx, x, y)?;
        }
        Ok(())
    }
    /// `out[idx] += Σ a ⊙ b` — the gradient of a mixed-edge weight.
    fn dot_elem(&self, a: &Self::Buf, b: &Self::Buf, out: &mut Self::Buf, idx: usize) -> Result<()>;
    /// `y[0] = Σ x`
    fn sum_all_fwd(&self, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy[0]` for every element
    fn sum_all_bwd(&self, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
}
