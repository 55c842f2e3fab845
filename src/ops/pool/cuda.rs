//! Pooling on the device: launchers of `kernels/pool.cu`, one thread per
//! output (forward) or per input element (backward, gathered).

use super::{PoolGeom, PoolOps};
use crate::device::cuda::{Cuda, CudaBuf, check_len, int, launch};
use crate::device::{Write, counts};
use crate::error::Result;

type Ints = (i32, i32, i32, i32, i32, i32, i32, i32);

/// Checks x-shaped and y-shaped buffers; returns (nc, h, w, oh, ow, k, stride, pad).
fn check(kernel: &str, g: &PoolGeom, xs: &CudaBuf, ys: &CudaBuf, x_what: &str, y_what: &str) -> Result<Ints> {
    if g.k == 0 || g.stride == 0 {
        crate::bail!("cuda: {kernel}: invalid geometry {g:?}");
    }
    check_len(kernel, x_what, xs, g.x_shape().numel())?;
    check_len(kernel, y_what, ys, g.y_shape().numel())?;
    Ok((
        int(kernel, g.n * g.c)?,
        int(kernel, g.h)?,
        int(kernel, g.w)?,
        int(kernel, g.oh)?,
        int(kernel, g.ow)?,
        int(kernel, g.k)?,
        int(kernel, g.stride)?,
        int(kernel, g.pad)?,
    ))
}

impl PoolOps for Cuda {
    fn max_pool_fwd(&self, g: &PoolGeom, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let (nc, h, w, oh, ow, k, s, pad) = check("max_pool_fwd_f32", g, x, y, "x", "y")?;
        if y.len == 0 {
            return Ok(());
        }
        // max_pool_fwd_f32(const float* x, float* y, int nc, int h, int w, int oh, int ow, int k, int stride, int pad)
        launch!(self, max_pool_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &nc, &h, &w, &oh, &ow, &k, &s, &pad)
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
        let (nc, h, w, oh, ow, k, s, pad) = check("max_pool_bwd_f32", g, x, dy, "x", "dy")?;
        check_len("max_pool_bwd_f32", "dx", dx, x.len)?;
        // The kernel finds each window's first maximum from x itself.
        check_len("max_pool_bwd_f32", "y", y, dy.len)?;
        if dx.len == 0 {
            return Ok(());
        }
        // max_pool_bwd_f32(const float* x, const float* dy, float* dx, int nc, int h, int w, int oh, int ow,
        //                  int k, int stride, int pad, int add)
        launch!(self, max_pool_bwd_f32, Cuda::flat(dx.len);
            &x.mem, &dy.mem, &mut dx.mem, &nc, &h, &w, &oh, &ow, &k, &s, &pad, &write.add_flag())
    }

    fn avg_pool_fwd(&self, g: &PoolGeom, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let (nc, h, w, oh, ow, k, s, pad) = check("avg_pool_fwd_f32", g, x, y, "x", "y")?;
        if y.len == 0 {
            return Ok(());
        }
        // avg_pool_fwd_f32(const float* x, float* y, int nc, int h, int w, int oh, int ow, int k, int stride, int pad)
        launch!(self, avg_pool_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &nc, &h, &w, &oh, &ow, &k, &s, &pad)
    }

    fn avg_pool_bwd(&self, g: &PoolGeom, dy: &CudaBuf, dx: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        let (nc, h, w, oh, ow, k, s, pad) = check("avg_pool_bwd_f32", g, dx, dy, "dx", "dy")?;
        if dx.len == 0 {
            return Ok(());
        }
        // avg_pool_bwd_f32(const float* dy, float* dx, int nc, int h, int w, int oh, int ow, int k, int stride,
        //                  int pad, int add)
        launch!(self, avg_pool_bwd_f32, Cuda::flat(dx.len);
            &dy.mem, &mut dx.mem, &nc, &h, &w, &oh, &ow, &k, &s, &pad, &write.add_flag())
    }
}
