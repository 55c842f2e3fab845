//! BatchNorm on the device: launchers of `kernels/bn.cu`. The training
//! forward and the backward take two launches over a grid of (channel,
//! block): partial sums, then the statistics and their use; a channel of at
//! most `BN_FUSE` values takes one block and one launch. Evaluation is one
//! thread per element.

use std::sync::Mutex;

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{BnGeom, BnOps, BnParams};
use crate::device::cuda::{Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::device::{Write, counts};
use crate::error::{Error, Result};

family_state! {
    /// The kernels of `kernels/bn.cu` and their scratch.
    struct Kernels from "bn" {
        kernels: [bn_stats_partial_f32, bn_fwd_apply_f32, bn_fwd_merged_f32, bn_fwd_fused_f32, bn_fwd_eval_f32, bn_bwd_partial_f32, bn_bwd_apply_f32, bn_bwd_fused_f32],
        /// Per-block partial sums (`BN_PARTS` f64).
        parts: Mutex<CudaSlice<f64>> =
            |cu: &Cuda| -> Result<_> { Ok(Mutex::new(cu.scratch_zeros("bn partial sums", BN_PARTS)?)) },
    }
}

/// f64 partial sums of BatchNorm: 2 per (channel, block).
const BN_PARTS: usize = 1 << 16;

/// Threads of a block. Each of a channel's blocks streams `BN_SPLIT` or so
/// values; not yet swept on a GPU. The block reductions of common.cuh allow
/// up to 1024.
const BN_BLOCK: u32 = 256;
/// Values of a channel per block, about: a supernet has few channels (16–64)
/// and n·hw values per channel (65,536 at batch 64, 32×32), so one block per
/// channel would leave most SMs idle.
const BN_SPLIT: usize = 8192;

/// Values of a channel up to which one block covers it, in one launch (the
/// 16×16 and 8×8 maps of a supernet at batch 64): below this the second
/// launch costs more than the parallelism it buys. Not yet swept on a GPU.
const BN_FUSE: usize = 16_384;

/// Whether a channel of `g` takes one block (and the `_fused` kernels).
fn fused(g: &BnGeom) -> bool {
    g.n * g.hw <= BN_FUSE
}

/// Launches of the training forward and of the backward.
pub(crate) fn train_launches(g: &BnGeom) -> u64 {
    if fused(g) { 1 } else { 2 }
}

/// The grid (c, B) and the values per block: B blocks per channel, as many
/// as `BN_SPLIT` asks, at most 64 and as the partial sums allow; one for a
/// fused channel.
fn grid(g: &BnGeom) -> Result<(LaunchConfig, i64)> {
    let cnt = (g.n * g.hw).max(1);
    let fit = (BN_PARTS / (2 * g.c.max(1))).clamp(1, 64);
    let blocks = if fused(g) { 1 } else { cnt.div_ceil(BN_SPLIT).clamp(1, fit) };
    let chunk = cnt.div_ceil(blocks);
    let c = u32::try_from(g.c).map_err(|_| Error::new(format!("cuda: bn: {} channels exceed the grid", g.c)))?;
    if g.c > BN_PARTS / 2 {
        crate::bail!("cuda: bn: {} channels exceed the partial-sum buffer ({} channels)", g.c, BN_PARTS / 2);
    }
    let cfg = LaunchConfig { grid_dim: (c, blocks as u32, 1), block_dim: (BN_BLOCK, 1, 1), shared_mem_bytes: 0 };
    Ok((cfg, chunk as i64))
}

/// Checks `x` and the per-channel buffers given; returns the kernels'
/// params (`chunk` and `add` 0).
fn check(kernel: &str, g: &BnGeom, x: &CudaBuf, per_channel: &[(&str, Option<&CudaBuf>)]) -> Result<BnParams> {
    check_len(kernel, "x", x, g.n * g.c * g.hw)?;
    for &(what, b) in per_channel {
        if let Some(b) = b {
            check_len(kernel, what, b, g.c)?;
        }
    }
    Ok(BnParams {
        n: int(kernel, g.n)?,
        c: int(kernel, g.c)?,
        hw: int(kernel, g.hw)?,
        eps: g.eps,
        momentum: g.momentum,
        add: 0,
        chunk: 0,
        parts: 0,
    })
}

/// BatchNorm's backward sums of a chain (`bn_bwd_partial_f32` over the
/// grid (c, B)), handed to `f` with B while the partials' scratch is held:
/// `chain_bwd_f32` of conv.cu reads them. The chain's launcher counts the call.
pub(crate) fn with_bwd_sums<R>(
    cu: &Cuda,
    g: &BnGeom,
    x: &CudaBuf,
    saved: &CudaBuf,
    dy: &CudaBuf,
    f: impl FnOnce(&CudaSlice<f64>, usize) -> Result<R>,
) -> Result<R> {
    let k = "bn_bwd_partial_f32";
    let p = check(k, g, x, &[])?;
    check_len(k, "saved", saved, 2 * g.c)?;
    check_len(k, "dy", dy, x.len)?;
    let (cfg, chunk) = grid(g)?;
    let p = BnParams { chunk, ..p };
    let mut parts = cu.family::<Kernels>()?.parts.lock().map_err(|_| Error::new("cuda: bn scratch lock poisoned"))?;
    launch!(cu, bn_bwd_partial_f32, cfg; &x.mem, &saved.mem, &dy.mem, &mut *parts, &p)?;
    f(&parts, cfg.grid_dim.1 as usize)
}

/// The second launch of a chain's training forward (`chain_fwd_f32` of
/// conv.cu left `parts` moments per channel in `part`): the statistics
/// merged from them, then as [`BnOps::bn_fwd_train`]'s second launch. The
/// chain's launcher counts the call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fwd_merged(
    cu: &Cuda,
    g: &BnGeom,
    x: &CudaBuf,
    part: &CudaSlice<f64>,
    parts: usize,
    gamma: Option<&CudaBuf>,
    beta: Option<&CudaBuf>,
    y: &mut CudaBuf,
    saved: &mut CudaBuf,
    running_mean: &mut CudaBuf,
    running_var: &mut CudaBuf,
) -> Result<()> {
    let k = "bn_fwd_merged_f32";
    let p = check(
        k,
        g,
        x,
        &[("gamma", gamma), ("beta", beta), ("running_mean", Some(running_mean)), ("running_var", Some(running_var))],
    )?;
    check_len(k, "y", y, x.len)?;
    check_len(k, "saved", saved, 2 * g.c)?;
    if part.len() < 3 * g.c * parts {
        crate::bail!("cuda: {k}: {} moments for {} channels × {parts} parts", part.len(), g.c);
    }
    if g.c == 0 {
        return Ok(());
    }
    let (gp, bp) = (cu.opt_ptr(gamma), cu.opt_ptr(beta));
    let (cfg, chunk) = grid(g)?;
    let p = BnParams { chunk, parts: int(k, parts)?, ..p };
    let (rm, rv) = (&mut running_mean.mem, &mut running_var.mem);
    launch!(cu, bn_fwd_merged_f32, cfg; &x.mem, part, &gp, &bp, &mut y.mem, &mut saved.mem, rm, rv, &p)
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
        counts::call(train_launches(g));
        let k = "bn_fwd_train_f32";
        let p = check(
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
        let (cfg, chunk) = grid(g)?;
        let p = BnParams { chunk, ..p };
        let (rm, rv) = (&mut running_mean.mem, &mut running_var.mem);
        if fused(g) {
            return launch!(self, bn_fwd_fused_f32, cfg; &x.mem, &gp, &bp, &mut y.mem, &mut saved.mem, rm, rv, &p);
        }
        let mut parts =
            self.family::<Kernels>()?.parts.lock().map_err(|_| Error::new("cuda: bn scratch lock poisoned"))?;
        launch!(self, bn_stats_partial_f32, cfg; &x.mem, &mut *parts, &p)?;
        launch!(self, bn_fwd_apply_f32, cfg; &x.mem, &*parts, &gp, &bp, &mut y.mem, &mut saved.mem, rm, rv, &p)
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
        let p = check(
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
        launch!(self, bn_fwd_eval_f32, Cuda::flat(y.len);
            &x.mem, &gp, &bp, &running_mean.mem, &running_var.mem, &mut y.mem, &p)
    }

    fn bn_bwd(
        &self,
        g: &BnGeom,
        x: &CudaBuf,
        gamma: Option<&CudaBuf>,
        saved: &CudaBuf,
        dy: &CudaBuf,
        dx: Option<(&mut CudaBuf, Write)>,
        dgamma: Option<&mut CudaBuf>,
        dbeta: Option<&mut CudaBuf>,
    ) -> Result<()> {
        counts::call(train_launches(g));
        let (dx, add) = match dx {
            Some((dx, write)) => (Some(dx), write.add_flag()),
            None => (None, 1),
        };
        let k = "bn_bwd_f32";
        let p = check(k, g, x, &[("gamma", gamma), ("dgamma", dgamma.as_deref()), ("dbeta", dbeta.as_deref())])?;
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
        let (cfg, chunk) = grid(g)?;
        let p = BnParams { chunk, add, ..p };
        if fused(g) {
            return launch!(self, bn_bwd_fused_f32, cfg; &x.mem, &gp, &saved.mem, &dy.mem, &dxp, &dgp, &dbp, &p);
        }
        let mut parts =
            self.family::<Kernels>()?.parts.lock().map_err(|_| Error::new("cuda: bn scratch lock poisoned"))?;
        launch!(self, bn_bwd_partial_f32, cfg; &x.mem, &saved.mem, &dy.mem, &mut *parts, &p)?;
        launch!(self, bn_bwd_apply_f32, cfg; &x.mem, &gp, &saved.mem, &dy.mem, &*parts, &dxp, &dgp, &dbp, &p)
    }
}
