//! BatchNorm over (n, c, hw): batch statistics in training, running
//! statistics in evaluation.

mod cpu;
mod cuda;

use crate::device::{Device, Write};
use crate::error::Result;

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
