//! Max and average pooling over k×k windows (3×3 stride 1 or 2 in the
//! search spaces, 5×5 stride 3 in the auxiliary head), padding never
//! counted.

mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

use crate::device::kernel_params::kernel_params;
use crate::device::{Device, Write};
use crate::error::Result;
use crate::shape::Shape;

pub use op::*;

/// k×k pooling window with stride and padding (`pad ≤ k/2`); average
/// pooling divides by the number of in-bounds elements (PyTorch's
/// `count_include_pad=False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl PoolGeom {
    pub fn x_shape(&self) -> Shape {
        Shape::nchw(self.n, self.c, self.h, self.w)
    }
    pub fn y_shape(&self) -> Shape {
        Shape::nchw(self.n, self.c, self.oh, self.ow)
    }
}

kernel_params! {
    /// What every pooling kernel of `kernels/pool.cu` is told: the planes
    /// (`n·c`), their size before and after, the window and, for a
    /// backward, whether it adds to `dx` (1) or overwrites it (0).
    pub struct PoolParams {
        pub nc: i32,
        pub h: i32,
        pub w: i32,
        pub oh: i32,
        pub ow: i32,
        pub k: i32,
        pub stride: i32,
        pub pad: i32,
        pub add: i32,
    }
}

/// Pooling (`kernels/pool.cu` on CUDA).
pub trait PoolOps: Device {
    /// `y = max over window`, padding never selected
    fn max_pool_fwd(&self, g: &PoolGeom, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx (=|+=) dy` routed to the first maximum of each window, as `write`
    /// says; `y` is the forward's output, the windows' maxima
    #[allow(clippy::too_many_arguments)]
    fn max_pool_bwd(
        &self,
        g: &PoolGeom,
        x: &Self::Buf,
        y: &Self::Buf,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
        write: Write,
    ) -> Result<()>;
    /// `y = mean over the in-bounds part of the window`
    fn avg_pool_fwd(&self, g: &PoolGeom, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx (=|+=) dy / count` spread over each window, as `write` says
    fn avg_pool_bwd(&self, g: &PoolGeom, dy: &Self::Buf, dx: &mut Self::Buf, write: Write) -> Result<()>;
}
