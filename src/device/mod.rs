//! Devices: where buffers live and kernels run. [`Device`] is the memory
//! interface the executor needs (allocate, upload, download, graphs);
//! [`Write`] says how a kernel writes a gradient. `Cpu` (the reference) and
//! `Cuda` are the two devices; `counts` tallies backend calls, launches and
//! host reads. The op families (`src/ops/`) build on this layer, and
//! `crate::device::Backend` is their sum.

pub mod counts;
pub mod cpu;
pub mod cuda;
pub mod kernel_params;
pub mod ptx;

use crate::error::Result;
use crate::real::Real;

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
