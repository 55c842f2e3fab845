//! The fully connected layer on the device: launchers of `kernels/linear.cu`
//! (the classifier; small products).

use super::{LinearOps, LinearParams};
use crate::device::counts;
use crate::device::cuda::{Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::error::Result;

family_state! {
    /// The kernels of `kernels/linear.cu`.
    struct Kernels from "linear" {
        kernels: [linear_fwd_f32, linear_bwd_data_f32, linear_bwd_filter_f32, linear_bwd_bias_f32],
    }
}

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
        launch!(self, linear_fwd_f32, Cuda::flat(y.len);
            &x.mem, &w.mem, &bp, &mut y.mem, &LinearParams { n: ni, inputs: ii, outputs: oi, groups: gi })
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
                launch!(self, linear_bwd_data_f32, Cuda::flat(dx.len);
                    &w.mem, &dy.mem, &mut dx.mem, &LinearParams { n: ni, inputs: ii, outputs: oi, groups: gi })?;
            }
        }
        if let Some(dw) = dw {
            check_len(k, "dw", dw, o * (i / groups))?;
            if dw.len > 0 {
                launch!(self, linear_bwd_filter_f32, Cuda::flat(dw.len);
                    &x.mem, &dy.mem, &mut dw.mem, &LinearParams { n: ni, inputs: ii, outputs: oi, groups: gi })?;
            }
        }
        if let Some(db) = db {
            check_len(k, "db", db, o)?;
            if db.len > 0 {
                launch!(self, linear_bwd_bias_f32, Cuda::flat(o);
                    &dy.mem, &mut db.mem, &LinearParams { n: ni, outputs: oi, ..Default::default() })?;
            }
        }
        Ok(())
    }
}
