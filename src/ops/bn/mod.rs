//! BatchNorm over (n, c, hw): batch statistics in training, running
//! statistics in evaluation.

pub(crate) mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

use crate::device::kernel_params::kernel_params;
use crate::device::{Device, Write};
use crate::error::Result;

pub(crate) use cuda::{fwd_merged, train_launches, with_bwd_sums};
pub use op::*;

/// BatchNorm over `(n, c, hw)`: statistics per channel over `n·hw` values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
    pub eps: f32,
    /// Running-statistics update factor (PyTorch's `momentum`, 0.1).
    pub momentum: f32,
}

kernel_params! {
    /// What every BatchNorm kernel is told (BnParams of src/ops/bn/mod.rs): x is
    /// (n, c, hw); eps and momentum as PyTorch's; `add` (backward) 0 overwrites
    /// dx, 1 adds to it; each of a channel's blocks takes `chunk` of its n·hw values; `parts`
    /// (bn_fwd_merged_f32) the moments per channel a chain's launch left.
    pub struct BnParams {
        pub n: i32,
        pub c: i32,
        pub hw: i32,
        pub eps: f32,
        pub momentum: f32,
        pub add: i32,
        pub chunk: i64,
        pub parts: i32,
    }
}

/// Batch normalisation (`kernels/bn.cu` on CUDA).
pub trait BnOps: Device {
    /// Training mode: `y = γ·(x − μ_B)/√(σ²_B + ε) + β` with biased batch
    /// variance; `saved = [μ_B (c), 1/√(σ²_B + ε) (c)]`; running statistics
    /// `r = (1 − m)·r + m·stat`, the variance unbiased (`·n/(n − 1)`).
    /// γ, β absent means γ = 1, β = 0.
    #[allow(clippy::too_many_arguments)]
    fn bn_fwd_train(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        gamma: Option<&Self::Buf>,
        beta: Option<&Self::Buf>,
        y: &mut Self::Buf,
        saved: &mut Self::Buf,
        running_mean: &mut Self::Buf,
        running_var: &mut Self::Buf,
    ) -> Result<()>;
    /// Evaluation mode: normalise with the running statistics.
    #[allow(clippy::too_many_arguments)]
    fn bn_fwd_eval(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        gamma: Option<&Self::Buf>,
        beta: Option<&Self::Buf>,
        running_mean: &Self::Buf,
        running_var: &Self::Buf,
        y: &mut Self::Buf,
    ) -> Result<()>;
    /// Training-mode backward from x and `saved`: `dx (=|+=) …` as `write`
    /// says, `dγ += Σ dy·x̂`, `dβ += Σ dy`.
    #[allow(clippy::too_many_arguments)]
    fn bn_bwd(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        gamma: Option<&Self::Buf>,
        saved: &Self::Buf,
        dy: &Self::Buf,
        dx: Option<(&mut Self::Buf, Write)>,
        dgamma: Option<&mut Self::Buf>,
        dbeta: Option<&mut Self::Buf>,
    ) -> Result<()>;
}
