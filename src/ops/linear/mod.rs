//! Fully connected layer, `y = x·wᵀ + b`: the classifier. With several
//! `groups`, inputs and outputs are cut into that many equal groups and
//! output group g reads input group g only, with weights `(o, i/groups)`:
//! RARTS's two classifiers side by side.

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
    /// What every linear kernel is told (LinearParams of src/ops/linear/mod.rs):
    /// x (n, inputs) → y (n, outputs), in `groups` independent blocks.
    pub struct LinearParams {
        pub n: i32,
        pub inputs: i32,
        pub outputs: i32,
        pub groups: i32,
    }
}

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
