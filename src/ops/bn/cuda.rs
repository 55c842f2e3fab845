//! BatchNorm on the device: launchers of `kernels/bn.cu`, one block per
//! channel for the training forward and the backward (statistics and their
//! use in one launch), one thread per element for evaluation.

use cudarc::driver::LaunchConfig;

use super::{BnGeom, BnOps};
use crate::backend::counts;
use crate::backend::cuda::{Cuda, CudaBuf, check_len, int, launch};
use crate::error::{Error, Result};

/// Threads of the per-channel blocks. A supernet has few channels (16–64)
/// and n·hw values per channel (65,536 at batch 64, 32×32), so each block
/// streams a lot of memory: the largest block keeps the most loads in
/// flight per SM. Not yet swept on a GPU. The block reductions of
/// common.cuh allow up to 1024.
const BN_BLOCK: u32 = 1024;

fn per_channel(c: usize) -> Result<LaunchConfig> {
    let blocks = u32::try_from(c).map_err(|_| Error::new(format!("cuda: bn: {c} channels exceed the grid")))?;
    Ok(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BN_BLOCK, 1, 1), shared_mem_bytes: 0 })
}

fn check(kernel: &str, g: &BnGeom, x: &CudaBuf, per_channel: &[(&str, Option<&CudaBuf>)]) -> Result<(i32, i32, i32)> {
    check_len(kernel, "x", x, g.n * g.c * g.hw)?;
    for &(what, b) in per_channel {
        if let Some(b) = b {
            check_len(kernel, what, b, g.c)?;
        }
    }
    Ok((int(kernel, g.n)?, int(kernel, g.c)?, int(kernel, g.hw)?))
}

impl BnOps for Cuda {
    fn bn_fwd_train(
        &self,
        g: &BnGeom,
        x: &CudaBuf,
        gamma: Option<&CudaBuf>,
        beta: Option<&CudaBuf>,
        y: &mut CudaBuf,
        saved: &mut CudaBuf,
        running_mean: &mut CudaBuf,
        running_var: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let k = "bn_fwd_train_f32";
        let (n, c, hw) = check(
            k,
            g,
            x,
            &[
                ("gamma", gamma),
                ("beta", beta),
                ("running_mean", Some(running_mean)),
                ("running_var", Some(running_var)),
            ],
        )?;
        check_len(k, "y", y, x.len)?;
        check_len(k, "saved", saved, 2 * g.c)?;
        if g.c == 0 {
            return Ok(());
        }
        let (gp, bp) = (self.opt_ptr(gamma), self.opt_ptr(beta));
        // bn_fwd_train_f32(const float* x, const float* gamma, const float* beta, float* y, float* saved,
        //                  float* running_mean, float* running_var, int n, int c, int hw, float eps, float momentum)
        launch!(self, bn_fwd_train_f32, per_channel(g.c)?;
            &x.mem, &gp, &bp, &mut y.mem, &mut saved.mem, &mut running_mean.mem, &mut running_var.mem,
            &n, &c, &hw, &g.eps, &g.momentum)
    }

    fn bn_fwd_eval(
        &self,
        g: &BnGeom,
        x: &CudaBuf,
        gamma: Option<&CudaBuf>,
        beta: Option<&CudaBuf>,
        running_mean: &CudaBuf,
        running_var: &CudaBuf,
        y: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let k = "bn_fwd_eval_f32";
        let (n, c, hw) = check(
            k,
            g,
            x,
            &[
                ("gamma", gamma),
                ("beta", beta),
                ("running_mean", Some(running_mean)),
                ("running_var", Some(running_var)),
            ],
        )?;
        check_len(k, "y", y, x.len)?;
        if y.len == 0 {
            return Ok(());
        }
        let (gp, bp) = (self.opt_ptr(gamma), self.opt_ptr(beta));
        // bn_fwd_eval_f32(const float* x, const float* gamma, const float* beta, const float* running_mean,
        //                 const float* running_var, float* y, int n, int c, int hw, float eps)
        launch!(self, bn_fwd_eval_f32, Cuda::flat(y.len);
            &x.mem, &gp, &bp, &running_mean.mem, &running_var.mem, &mut y.mem, &n, &c, &hw, &g.eps)
    }

    fn bn_bwd(
        &self,
        g: &BnGeom,
        x: &CudaBuf,
        gamma: Option<&CudaBuf>,
        saved: &CudaBuf,
        dy: &CudaBuf,
        dx: Option<&mut CudaBuf>,
        dgamma: Option<&mut CudaBuf>,
        dbeta: Option<&mut CudaBuf>,
    ) -> Result<()> {
        counts::call(1);
        let k = "bn_bwd_f32";
        let (n, c, hw) =
            check(k, g, x, &[("gamma", gamma), ("dgamma", dgamma.as_deref()), ("dbeta", dbeta.as_deref())])?;
        check_len(k, "saved", saved, 2 * g.c)?;
        check_len(k, "dy", dy, x.len)?;
        if let Some(dx) = dx.as_deref() {
            check_len(k, "dx", dx, x.len)?;
        }
        if g.c == 0 || (dx.is_none() && dgamma.is_none() && dbeta.is_none()) {
            return Ok(());
        }
        let gp = self.opt_ptr(gamma);
        let (dxp, dgp, dbp) =
            (self.opt_ptr(dx.as_deref()), self.opt_ptr(dgamma.as_deref()), self.opt_ptr(dbeta.as_deref()));
        // bn_bwd_f32(const float* x, const float* gamma, const float* saved, const float* dy, float* dx,
        //            float* dgamma, float* dbeta, int n, int c, int hw)
        launch!(self, bn_bwd_f32, per_channel(g.c)?;
            &x.mem, &gp, &saved.mem, &dy.mem, &dxp, &dgp, &dbp, &n, &c, &hw)
    }
}
