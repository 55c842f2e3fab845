//! Fully connected layer, `y = x·wᵀ + b`: the classifier. With several
//! `groups`, inputs and outputs are cut into that many equal groups and
//! output group g reads input group g only, with weights `(o, i/groups)`:
//! RARTS's two classifiers side by side.

mod cpu;
mod cuda;

use crate::device::Device;
use crate::error::Result;

/// The fully connected layer (`kernels/linear.cu` on CUDA).
pub trait LinearOps: Device {
    /// `y = x·wᵀ + b` per group, x `(n, i)`, w `(o, i/groups)`, b `(o)`, y `(n, o)`
    #[allow(clippy::too_many_arguments)]
    fn linear_fwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &Self::Buf,
        w: &Self::Buf,
        b: Option<&Self::Buf>,
        y: &mut Self::Buf,
    ) -> Result<()>;
    /// `dx += dy·w`, `dw += dyᵀ·x` (per group), `db += Σ_n dy`
    #[allow(clippy::too_many_arguments)]
    fn linear_bwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        dx: Option<&mut Self::Buf>,
        dw: Option<&mut Self::Buf>,
        db: Option<&mut Self::Buf>,
    ) -> Result<()>;
}
