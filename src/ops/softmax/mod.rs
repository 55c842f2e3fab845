//! Row softmax (the mixing weights of α) and softmax cross-entropy.

mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

use crate::device::Device;
use crate::device::kernel_params::kernel_params;
use crate::error::Result;

pub use op::*;

kernel_params! {
    /// What every softmax and loss kernel is told (SoftmaxParams of
    /// src/ops/softmax/mod.rs): `rows` rows of `cols` values (a batch of n
    /// samples over k classes); `at` (accuracy) where the result goes.
    pub struct SoftmaxParams {
        pub rows: i32,
        pub cols: i32,
        pub at: i64,
    }
}

/// Softmax and the loss (`kernels/softmax.cu` on CUDA).
pub trait SoftmaxOps: Device {
    /// Row softmax of a `(rows, cols)` matrix: `y = softmax(x)` per row.
    fn softmax_rows_fwd(&self, rows: usize, cols: usize, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += y ⊙ (dy − Σ_row dy ⊙ y)`
    fn softmax_rows_bwd(
        &self,
        rows: usize,
        cols: usize,
        y: &Self::Buf,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
    ) -> Result<()>;
    /// Softmax cross-entropy, mean over the batch. `labels` holds class
    /// indices as floats. `loss[0] = mean_n(logsumexp(z_n) − z_n[label_n])`,
    /// `probs = softmax(z)` saved for backward.
    fn cross_entropy_fwd(
        &self,
        n: usize,
        k: usize,
        logits: &Self::Buf,
        labels: &Self::Buf,
        loss: &mut Self::Buf,
        probs: &mut Self::Buf,
    ) -> Result<()>;
    /// `out[at] =` the fraction of the `n` rows of `logits` `(n, k)` whose
    /// largest value (the first, on ties) is at the row's label.
    fn accuracy(
        &self,
        n: usize,
        k: usize,
        logits: &Self::Buf,
        labels: &Self::Buf,
        out: &mut Self::Buf,
        at: usize,
    ) -> Result<()>;
    /// `dz += dloss[0] · (probs − onehot(label)) / n`
    fn cross_entropy_bwd(
        &self,
        n: usize,
        k: usize,
        probs: &Self::Buf,
        labels: &Self::Buf,
        dloss: &Self::Buf,
        dlogits: &mut Self::Buf,
    ) -> Result<()>;
}
