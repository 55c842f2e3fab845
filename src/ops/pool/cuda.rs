//! Pooling on the device: launchers of `kernels/pool.cu`, one thread per
//! output (forward) or per input element (backward, gathered).

use super::{PoolGeom, PoolOps, PoolParams};
use crate::device::cuda::{Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::device::{Write, counts};
use crate::error::Result;

family_state! {
    /// The kernels of `kernels/pool.cu`.
    struct Kernels from "pool" {
        kernels: [max_pool_fwd_f32, max_pool_bwd_f32, avg_pool_fwd_f32, avg_pool_bwd_f32],
    }
}

/// Checks x-shaped and y-shaped buffers; returns the kernels' params
/// (`add` 0).
fn check(kernel: &str, g: &PoolGeom, xs: &CudaBuf, ys: &CudaBuf, x_what: &str, y_what: &str) -> Result<PoolParams> {
    if g.k == 0 || g.stride == 0 {
        crate::bail!("cuda: {kernel}: invalid geometry {g:?}");
    }
    check_len(kernel, x_what, xs, g.x_shape().numel())?;
    check_len(kernel, y_what, ys, g.y_shape().numel())?;
    Ok(PoolParams {
        nc: int(kernel, g.n * g.c)?,
        h: int(kernel, g.h)?,
        w: int(kernel, g.w)?,
        oh: int(kernel, g.oh)?,
        ow: int(kernel, g.ow)?,
        k: int(kernel, g.k)?,
        stride: int(kernel, g.stride)?,
        pad: int(kernel, g.pad)?,
        add: 0,
    })
}

impl PoolOps for Cuda {
    fn max_pool_fwd(&self, g: &PoolGeom, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let p = check("max_pool_fwd_f32", g, x, y, "x", "y")?;
        if y.len == 0 {
            return Ok(());
        }
        launch!(self, max_pool_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &p)
    }

    fn max_pool_bwd(
        &self,
        g: &PoolGeom,
        x: &CudaBuf,
        y: &CudaBuf,
        dy: &CudaBuf,
        dx: &mut CudaBuf,
        write: Write,
    ) -> Result<()> {
        counts::call(1);
        let p = PoolParams { add: write.add_flag(), ..check("max_pool_bwd_f32", g, x, dy, "x", "dy")? };
        check_len("max_pool_bwd_f32", "dx", dx, x.len)?;
        // The kernel finds each window's first maximum from x itself.
        check_len("max_pool_bwd_f32", "y", y, dy.len)?;
        if dx.len == 0 {
            return Ok(());
        }
        launch!(self, max_pool_bwd_f32, Cuda::flat(dx.len); &x.mem, &dy.mem, &mut dx.mem, &p)
    }

    fn avg_pool_fwd(&self, g: &PoolGeom, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let p = check("avg_pool_fwd_f32", g, x, y, "x", "y")?;
        if y.len == 0 {
            return Ok(());
        }
        launch!(self, avg_pool_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &p)
    }

    fn avg_pool_bwd(&self, g: &PoolGeom, dy: &CudaBuf, dx: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        let p = PoolParams { add: write.add_flag(), ..check("avg_pool_bwd_f32", g, dx, dy, "dx", "dy")? };
        if dx.len == 0 {
            return Ok(());
        }
        launch!(self, avg_pool_bwd_f32, Cuda::flat(dx.len); &dy.mem, &mut dx.mem, &p)
    }
}
