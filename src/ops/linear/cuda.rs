//! The fully connected layer on the device: launchers of `kernels/linear.cu`
//! (the classifier; small products).

use super::LinearOps;
use crate::device::counts;
use crate::device::cuda::{Cuda, CudaBuf, check_len, int, launch};
use crate::error::Result;

/// Launches of `linear_bwd`: one per gradient asked for.
pub(crate) fn linear_bwd_launches(dx: bool, dw: bool, db: bool) -> u64 {
    u64::from(dx) + u64::from(dw) + u64::from(db)
}

/// Groups must split both sides evenly.
fn check_groups(k: &str, i: usize, o: usize, groups: usize) -> Result<()> {
    if groups == 0 || !i.is_multiple_of(groups) || !o.is_multiple_of(groups) {
        crate::bail!("cuda: {k}: {groups} groups do not split {i} inputs and {o} outputs evenly");
    }
    Ok(())
}

impl LinearOps for Cuda {
    fn linear_fwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &CudaBuf,
        w: &CudaBuf,
        b: Option<&CudaBuf>,
        y: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let k = "linear_fwd_f32";
        check_groups(k, i, o, groups)?;
        check_len(k, "x", x, n * i)?;
        check_len(k, "w", w, o * (i / groups))?;
        check_len(k, "y", y, n * o)?;
        if let Some(b) = b {
            check_len(k, "b", b, o)?;
        }
        if y.len == 0 {
            return Ok(());
        }
        let (ni, ii, oi, gi) = (int(k, n)?, int(k, i)?, int(k, o)?, int(k, groups)?);
        let bp = self.opt_ptr(b);
        // linear_fwd_f32(const float* x, const float* w, const float* b, float* y, int n, int in, int o, int groups)
        launch!(self, linear_fwd_f32, Cuda::flat(y.len); &x.mem, &w.mem, &bp, &mut y.mem, &ni, &ii, &oi, &gi)
    }

    fn linear_bwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &CudaBuf,
        w: &CudaBuf,
        dy: &CudaBuf,
        dx: Option<&mut CudaBuf>,
        dw: Option<&mut CudaBuf>,
        db: Option<&mut CudaBuf>,
    ) -> Result<()> {
        counts::call(linear_bwd_launches(dx.is_some(), dw.is_some(), db.is_some()));
        let k = "linear_bwd";
        check_groups(k, i, o, groups)?;
        check_len(k, "x", x, n * i)?;
        check_len(k, "w", w, o * (i / groups))?;
        check_len(k, "dy", dy, n * o)?;
        let (ni, ii, oi, gi) = (int(k, n)?, int(k, i)?, int(k, o)?, int(k, groups)?);
        if let Some(dx) = dx {
            check_len(k, "dx", dx, n * i)?;
            if dx.len > 0 {
                // linear_bwd_data_f32(const float* w, const float* dy, float* dx, int n, int in, int o, int groups)
                launch!(self, linear_bwd_data_f32, Cuda::flat(dx.len);
                    &w.mem, &dy.mem, &mut dx.mem, &ni, &ii, &oi, &gi)?;
            }
        }
        if let Some(dw) = dw {
            check_len(k, "dw", dw, o * (i / groups))?;
            if dw.len > 0 {
                // linear_bwd_filter_f32(const float* x, const float* dy, float* dw, int n, int in, int o, int groups)
                launch!(self, linear_bwd_filter_f32, Cuda::flat(dw.len);
                    &x.mem, &dy.mem, &mut dw.mem, &ni, &ii, &oi, &gi)?;
            }
        }
        if let Some(db) = db {
            check_len(k, "db", db, o)?;
            if db.len > 0 {
                // linear_bwd_bias_f32(const float* dy, float* db, int n, int o)
                launch!(self, linear_bwd_bias_f32, Cuda::flat(o); &dy.mem, &mut db.mem, &ni, &oi)?;
            }
        }
        Ok(())
    }
}
