//! The kernel interface. The tape, the optimizers and the search are written
//! once against [`Backend`]: a [`Device`] (buffers and memory) that has every
//! op family's kernels. Each family's trait (`ConvOps`, `PoolOps`, …) is
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

pub mod counts;
pub mod cpu;
pub mod cuda;

use crate::error::Result;
use crate::real::Real;

pub use crate::ops::bn::BnOps;
pub use crate::ops::conv::ConvOps;
pub use crate::ops::elementwise::ElementwiseOps;
pub use crate::ops::layout::LayoutOps;
pub use crate::ops::linear::LinearOps;
pub use crate::ops::optim::{AdamKernel, AdamStep, Coef, NormThen, OptimOps, Part, SgdKernel, SgdStep};
pub use crate::ops::pool::PoolOps;
pub use crate::ops::softmax::SoftmaxOps;
pub use cpu::Cpu;
pub use cuda::Cuda;

/// How a kernel writes a gradient: overwriting it, or adding to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// `dx = …`: every element is written, whatever it held before.
    Set,
    /// `dx += …`
    Add,
}

impl Write {
    /// The flag the CUDA kernels take: 1 to add, 0 to overwrite.
    pub fn add_flag(self) -> i32 {
        i32::from(self == Write::Add)
    }
}

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

    /// Recorded work that can be replayed (a CUDA graph).
    type Graph;
    /// Whether [`begin_capture`](Self::begin_capture) can work here.
    fn has_graphs(&self) -> bool;
    /// Starts recording the work queued from here on instead of running it
    /// (CUDA stream capture). Nothing may be uploaded, downloaded or
    /// allocated until [`end_capture`](Self::end_capture). A device
    /// without graphs refuses.
    fn begin_capture(&self) -> Result<()>;
    /// Ends the recording and returns it, ready to replay.
    fn end_capture(&self) -> Result<Self::Graph>;
    /// Queues the recorded work again, on the buffers it was recorded on.
    fn replay(&self, g: &Self::Graph) -> Result<()>;
}

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
