//! The kernel interface. The tape, the optimizers and the search are written
//! once against [`Backend`]: a [`Device`] (buffers and memory, `src/device/`)
//! that has every op family's kernels. Each family's trait (`ConvOps`, `PoolOps`, …) is
//! written in `src/ops/<family>/mod.rs` and re-exported here; `Cpu` (the
//! reference) and `Cuda` implement them beside it, in `cpu.rs` and `cuda.rs`.
//!
//! Conventions, the same for every kernel:
//! - forward kernels overwrite their output (`=`);
//! - backward kernels accumulate into the gradients they are given (`+=`),
//!   so several consumers of one tensor simply add up; those that are often
//!   the first to write a gradient take a [`Write`], so that the first of
//!   them overwrites it (`=`) instead of adding to a zeroed buffer;
//! - scalars (learning rates, factors) are passed as f32 and converted;
//! - every buffer a kernel reads or writes comes from the executor's plan,
//!   which is identical from one step to the next. CUDA launchers allocate
//!   no device memory (the reductions and the pointwise filter gradient use
//!   scratch buffers made in `Cuda::new`); CPU kernels allocate only
//!   per-call scratch (im2col columns, padded planes, per-thread partial
//!   sums).

pub use crate::device::{Cpu, Cuda, Device, Write, counts, cpu, cuda};
pub use crate::ops::bn::BnOps;
pub use crate::ops::conv::ConvOps;
pub use crate::ops::elementwise::ElementwiseOps;
pub use crate::ops::layout::LayoutOps;
pub use crate::ops::linear::LinearOps;
pub use crate::ops::optim::{AdamKernel, AdamStep, Coef, NormThen, OptimOps, Part, SgdKernel, SgdStep};
pub use crate::ops::pool::PoolOps;
pub use crate::ops::softmax::SoftmaxOps;

/// Everything the executor, the optimizers and the search need: a device
/// and every kernel family on it. Implemented for each type that has them.
pub trait Backend:
    Device + ElementwiseOps + ConvOps + PoolOps + BnOps + SoftmaxOps + LayoutOps + LinearOps + OptimOps
{
}

impl<B> Backend for B where
    B: Device + ElementwiseOps + ConvOps + PoolOps + BnOps + SoftmaxOps + LayoutOps + LinearOps + OptimOps
{
}
