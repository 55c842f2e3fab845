//! Max and average pooling over k×k windows (3×3 stride 1 or 2 in the
//! search spaces, 5×5 stride 3 in the auxiliary head), padding never
//! counted.

mod cpu;
mod cuda;

use crate::backend::Device;
use crate::error::Result;
use crate::geom::PoolGeom;

/// Pooling (`kernels/pool.cu` on CUDA).
pub trait PoolOps: Device {
    /// `y = max over window`, padding never selected
    fn max_pool_fwd(&self, g: &PoolGeom, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy` routed to the first maximum of each window (recomputed from x)
    fn max_pool_bwd(&self, g: &PoolGeom, x: &Self::Buf, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
    /// `y = mean over the in-bounds part of the window`
    fn avg_pool_fwd(&self, g: &PoolGeom, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy / count` spread over each window
    fn avg_pool_bwd(&self, g: &PoolGeom, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
}
