//! Convolution on the device: launchers of `kernels/conv.cu`. The geometry
//! picks the kernel family: depthwise (groups = cin = cout) → `dwconv_*`;
//! any other 1×1 with no padding (any groups) → `pwconv_*` (tiled
//! products); anything else → `conv_*`.

use std::sync::Mutex;

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{ChainGeom, ChainGrads, ChainNorm, ChainSaved, ConvGeom, ConvOps, ConvParams};
use crate::device::cuda::{Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::device::{Device, Write, counts};
use crate::error::Result;
use crate::ops::bn::{BnOps, train_launches};
use crate::ops::elementwise::ElementwiseOps;

family_state! {
    /// The kernels of `kernels/conv.cu` and their scratch.
    struct Kernels from "conv" {
        kernels: [chain_fwd_f32, chain_bwd_f32, dwconv_fwd_f32, dwconv_bwd_data_f32, dwconv_bwd_filter_f32, dwconv_bwd_f32, pwconv_fwd_f32, pwconv_bwd_data_f32, pwconv_bwd_filter_f32, conv_fwd_f32, conv_bwd_data_f32, conv_bwd_filter_f32],
        /// The per-split partial tiles of the pointwise filter gradient
        /// (`PW_PARTS` floats).
        pw_parts: Mutex<CudaSlice<f32>> =
            |cu: &Cuda| -> Result<_> { Ok(Mutex::new(cu.scratch_zeros("pwconv partial tiles", PW_PARTS)?)) },
        /// Their per-tile tickets (`PW_TICKETS` zeros; each launch leaves
        /// them zero), locked with `pw_parts`.
        pw_tickets: Mutex<CudaSlice<u32>> =
            |cu: &Cuda| -> Result<_> { Ok(Mutex::new(cu.scratch_zeros("pwconv tile tickets", PW_TICKETS)?)) },
        /// A chain's `dd` (the depthwise output's gradient) between its
        /// backward kernels, as large as the largest chain's (grown in the
        /// eager step, before any capture).
        chain_dd: Mutex<Option<CudaBuf>> = |_: &Cuda| -> Result<_> { Ok(Mutex::new(None)) },
        /// Likewise its `dp` (the 1×1 output's gradient), and its 1×1 output
        /// in evaluation (when nothing keeps it).
        chain_dp: Mutex<Option<CudaBuf>> = |_: &Cuda| -> Result<_> { Ok(Mutex::new(None)) },
        /// BatchNorm's moments per tile that `chain_fwd_f32` leaves for
        /// `bn_fwd_merged_f32` (`CHAIN_PARTS` f64).
        chain_parts: Mutex<CudaSlice<f64>> =
            |cu: &Cuda| -> Result<_> { Ok(Mutex::new(cu.scratch_zeros("chain moments", CHAIN_PARTS)?)) },
    }
}

/// Floats of the pointwise filter gradient's partial tiles (16 MiB): splits ×
/// cout × cin must fit, so wide convs get fewer, longer splits.
pub(crate) const PW_PARTS: usize = 1 << 22;
/// Tickets of the pointwise filter gradient: one per 16×16 weight tile, so
/// up to 4096 × 4096 weights.
const PW_TICKETS: usize = 1 << 16;

/// Output tile side of the pwconv kernels; must match `TILE` in conv.cu.
const TILE: u32 = 16;
/// Products per split of `pwconv_bwd_filter_f32` when the partial tiles fit.
const PW_SPLIT: usize = 4096;

/// `(splits, products per split)` of the pointwise filter gradient: chunks
/// of `PW_SPLIT` products, fewer and longer when splits × the weights would
/// not fit in the partial-tile buffer or the grid. Every split, the only one
/// too, writes a partial tile of all the weights: a filter of more than
/// `PW_PARTS` weights would write past the buffer, and is refused.
fn pw_splits(g: &ConvGeom) -> Result<(usize, usize)> {
    let m = g.w_shape().numel().max(1);
    if m > PW_PARTS {
        crate::bail!(
            "cuda: pwconv_bwd_filter_f32: a 1×1 filter of {m} weights ({} → {} channels, {} groups) exceeds the \
             partial-tile scratch of {PW_PARTS} floats; expected at most {PW_PARTS} weights per pointwise conv",
            g.cin,
            g.cout,
            g.groups
        );
    }
    let products = (g.n * g.oh * g.ow).max(1);
    let fit = (PW_PARTS / m).clamp(1, 65_535);
    let splits = products.div_ceil(PW_SPLIT).clamp(1, fit);
    Ok((splits, products.div_ceil(splits)))
}

/// Launches of a convolution backward asked for the data gradient (written
/// as `dx` says) and/or the filter gradient: a depthwise conv serves both
/// in one launch; a strided pointwise conv told to overwrite dx adds a fill
/// (its pixels between the samples get no gradient); a pointwise filter
/// gradient is one launch (its splits are summed by the last to finish).
pub(crate) fn bwd_launches(g: &ConvGeom, dx: Option<Write>, dw: bool) -> u64 {
    let data = match dx {
        Some(Write::Set) if family(g) == Family::Pointwise && g.stride > 1 => 2,
        Some(_) => 1,
        None => 0,
    };
    if family(g) == Family::Depthwise && data > 0 && dw { 1 } else { data + u64::from(dw) }
}

/// f64 moments of the chains' BatchNorm: 3 per (channel, tile).
const CHAIN_PARTS: usize = 1 << 21;
/// Floats of `chain_fwd_f32`'s shared memory; must match `CHAIN_SMEM` in conv.cu.
const CHAIN_SMEM: usize = 8192;
/// Output pixels per `chain_fwd_f32` block at most, and its threads.
const CHAIN_TILE: usize = 128;
const CHAIN_BLOCK: u32 = 256;

/// Output pixels per block of a chain kernel for `c` and tiles per image,
/// its shared memory holding `reserved` floats besides a tile of the
/// depthwise and the 1×1 output; `None` where not even one pixel fits.
fn tile(c: &ChainGeom, reserved: usize) -> Option<(usize, usize)> {
    let (p, groups) = (c.pw.oh * c.pw.ow, c.pw.groups);
    let (cig, cog) = (c.pw.cin / groups, c.pw.cout / groups);
    let t = (CHAIN_SMEM.checked_sub(reserved)? / (cig + cog).max(1)).min(CHAIN_TILE).min(p);
    let fits = t > 0 && c.pw.n > 0 && c.pw.n <= 65_535 && groups <= 65_535;
    fits.then(|| (t, p.div_ceil(t)))
}

/// `chain_fwd_f32`'s tile for `c` ([`tile`]); `None` also where its
/// moments would not fit their scratch, and the chain runs the single ops'
/// kernels instead.
fn chain_tiles(c: &ChainGeom) -> Option<(usize, usize)> {
    tile(c, 0).filter(|&(_, tiles)| 3 * c.pw.cout * c.pw.n * tiles <= CHAIN_PARTS)
}

/// Launches of a chain's forward: in training `chain_fwd_f32` then
/// `bn_fwd_merged_f32` where the kernel fits; otherwise (and in
/// evaluation) the depthwise conv, the 1×1 conv, then BatchNorm with batch
/// statistics or the running ones.
pub(crate) fn chain_fwd_launches(c: &ChainGeom, train: bool) -> u64 {
    match (train, chain_tiles(c)) {
        (true, Some(_)) => 2,
        (true, None) => 2 + train_launches(&c.bn),
        (false, _) => 3,
    }
}

/// `chain_bwd_f32`'s tile for `c` ([`tile`], three numbers per channel
/// besides); `None` also where each block's share of the 1×1 filter
/// gradient would not fit the partial tiles of `pwconv_bwd_filter_f32`.
fn chain_bwd_tiles(c: &ChainGeom) -> Option<(usize, usize)> {
    let groups = c.pw.groups;
    let (cig, cog) = (c.pw.cin / groups, c.pw.cout / groups);
    tile(c, 3 * cog).filter(|&(_, tiles)| c.pw.n * tiles * c.pw.cout * cig <= PW_PARTS && groups <= PW_TICKETS)
}

/// Launches of a chain's backward asked for `grads`: BatchNorm's alone for
/// γ and β only; else `bn_bwd_partial_f32`, `chain_bwd_f32` and the
/// depthwise conv's backward (when a depthwise gradient is asked for)
/// where the kernel fits; otherwise BatchNorm's, the 1×1 filter gradient,
/// `dd` and the depthwise conv's backward.
pub(crate) fn chain_bwd_launches<B>(c: &ChainGeom, grads: &ChainGrads<'_, B>) -> u64 {
    if !grads.through_convs() {
        return train_launches(&c.bn);
    }
    let dd = grads.x.is_some() || grads.w_dw.is_some();
    let dw = if dd { bwd_launches(&c.dw, grads.x.as_ref().map(|g| g.1), grads.w_dw.is_some()) } else { 0 };
    if chain_bwd_tiles(c).is_some() {
        return 2 + dw;
    }
    let pw = bwd_launches(&c.pw, dd.then_some(Write::Set), grads.w_pw.is_some());
    train_launches(&c.bn) + pw + dw
}

/// Runs `f` on scratch buffer `slot` holding `len` elements, growing it
/// first if it is shorter (an allocation, refused while capturing: the
/// eager step before a capture grows every scratch to its size).
fn with_scratch<R>(
    cu: &Cuda,
    slot: &Mutex<Option<CudaBuf>>,
    len: usize,
    f: impl FnOnce(&mut CudaBuf) -> Result<R>,
) -> Result<R> {
    let mut held = slot.lock().map_err(|_| crate::error::Error::new("cuda: chain scratch lock poisoned"))?;
    let mut buf = match held.take() {
        Some(buf) if buf.mem.len() >= len => buf,
        // Kept if the larger one cannot be made (a capture refuses it).
        old => cu.alloc(len).inspect_err(|_| *held = old)?,
    };
    buf.len = len;
    let r = f(&mut buf);
    *held = Some(buf);
    r
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Pointwise,
    Depthwise,
    General,
}

fn family(g: &ConvGeom) -> Family {
    let depthwise = g.groups == g.cin && g.cin == g.cout;
    if g.k == 1 && g.pad == 0 && (g.groups == 1 || !depthwise) {
        Family::Pointwise
    } else if depthwise {
        Family::Depthwise
    } else {
        Family::General
    }
}

/// Checks the geometry and the three buffers (x, w, y-shaped third).
fn check(kernel: &str, g: &ConvGeom, x: &CudaBuf, w: Option<&CudaBuf>, y: &CudaBuf, y_what: &str) -> Result<()> {
    if g.groups == 0
        || !g.cin.is_multiple_of(g.groups)
        || !g.cout.is_multiple_of(g.groups)
        || g.k == 0
        || g.stride == 0
        || g.dil == 0
    {
        crate::bail!("cuda: {kernel}: invalid geometry {g:?}");
    }
    check_len(kernel, "x", x, g.x_shape().numel())?;
    if let Some(w) = w {
        check_len(kernel, "w", w, g.w_shape().numel())?;
    }
    check_len(kernel, y_what, y, g.y_shape().numel())
}

/// The geometry as the kernels' params (`add`, `dw_add`, `data_blocks`,
/// `chunk` 0: each launch sets those it uses).
fn params(kernel: &str, g: &ConvGeom) -> Result<ConvParams> {
    Ok(ConvParams {
        n: int(kernel, g.n)?,
        cin: int(kernel, g.cin)?,
        cout: int(kernel, g.cout)?,
        h: int(kernel, g.h)?,
        wd: int(kernel, g.w)?,
        oh: int(kernel, g.oh)?,
        ow: int(kernel, g.ow)?,
        k: int(kernel, g.k)?,
        stride: int(kernel, g.stride)?,
        pad: int(kernel, g.pad)?,
        dil: int(kernel, g.dil)?,
        groups: int(kernel, g.groups)?,
        relu: g.relu_in as i32,
        ..ConvParams::default()
    })
}

/// Tiles of `a` × `b` per group, `z` deep: grid (⌈a/TILE⌉, groups·⌈b/TILE⌉, z).
fn tiles(a: usize, b: usize, groups: usize, z: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((a as u32).div_ceil(TILE), groups as u32 * (b as u32).div_ceil(TILE), z as u32),
        block_dim: (TILE, TILE, 1),
        shared_mem_bytes: 0,
    }
}

impl ConvOps for Cuda {
    fn conv2d_fwd(&self, g: &ConvGeom, x: &CudaBuf, w: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        check("conv2d_fwd", g, x, Some(w), y, "y")?;
        if y.len == 0 {
            return Ok(());
        }
        let p = params("conv2d_fwd", g)?;
        match family(g) {
            Family::Pointwise => launch!(self, pwconv_fwd_f32, tiles(g.oh * g.ow, g.cout / g.groups, g.groups, g.n);
                &x.mem, &w.mem, &mut y.mem, &p),
            Family::Depthwise => launch!(self, dwconv_fwd_f32, Cuda::flat(y.len);
                &x.mem, &w.mem, &mut y.mem, &p),
            Family::General => launch!(self, conv_fwd_f32, Cuda::flat(y.len);
                &x.mem, &w.mem, &mut y.mem, &p),
        }
    }

    fn conv2d_bwd_data(
        &self,
        g: &ConvGeom,
        x: &CudaBuf,
        w: &CudaBuf,
        dy: &CudaBuf,
        dx: &mut CudaBuf,
        write: Write,
    ) -> Result<()> {
        // The fill below declares its own launch.
        counts::call(1);
        check("conv2d_bwd_data", g, x, Some(w), dy, "dy")?;
        check_len("conv2d_bwd_data", "dx", dx, x.len)?;
        if dx.len == 0 || dy.len == 0 {
            return Ok(());
        }
        let p = params("conv2d_bwd_data", g)?;
        let mut add = write.add_flag();
        match family(g) {
            Family::Pointwise => {
                if g.stride > 1 && write == Write::Set {
                    // A strided 1×1 conv reads only some pixels; the others get no gradient.
                    self.fill(dx, 0.0)?;
                    add = 1;
                }
                launch!(self, pwconv_bwd_data_f32, tiles(g.oh * g.ow, g.cin / g.groups, g.groups, g.n);
                &x.mem, &w.mem, &dy.mem, &mut dx.mem, &ConvParams { add, ..p })
            }
            Family::Depthwise => launch!(self, dwconv_bwd_data_f32, Cuda::flat(dx.len);
                &x.mem, &w.mem, &dy.mem, &mut dx.mem, &ConvParams { add, ..p }),
            Family::General => launch!(self, conv_bwd_data_f32, Cuda::flat(dx.len);
                &x.mem, &w.mem, &dy.mem, &mut dx.mem, &ConvParams { add, ..p }),
        }
    }

    fn conv2d_bwd_filter(&self, g: &ConvGeom, x: &CudaBuf, dy: &CudaBuf, dw: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(bwd_launches(g, None, true));
        check("conv2d_bwd_filter", g, x, None, dy, "dy")?;
        check_len("conv2d_bwd_filter", "dw", dw, g.w_shape().numel())?;
        if dw.len == 0 || dy.len == 0 {
            return Ok(());
        }
        let p = params("conv2d_bwd_filter", g)?;
        let add = write.add_flag();
        match family(g) {
            Family::Pointwise => {
                let (splits, chunk) = pw_splits(g)?;
                let m = g.w_shape().numel();
                let (cig, cog) = (g.cin / g.groups, g.cout / g.groups);
                let lock_err = || crate::error::Error::new("cuda: pwconv scratch lock poisoned");
                let state = self.family::<Kernels>()?;
                let mut parts = state.pw_parts.lock().map_err(|_| lock_err())?;
                let mut tickets = state.pw_tickets.lock().map_err(|_| lock_err())?;
                if cig.div_ceil(TILE as usize) * g.groups * cog.div_ceil(TILE as usize) > PW_TICKETS {
                    crate::bail!(
                        "cuda: pwconv_bwd_filter_f32: {m} weights exceed the tile tickets ({PW_TICKETS} tiles)"
                    );
                }
                launch!(self, pwconv_bwd_filter_f32, tiles(cig, cog, g.groups, splits);
                &x.mem, &dy.mem, &mut *parts, &mut dw.mem, &mut *tickets, &ConvParams { chunk: chunk as i64, add, ..p })
            }
            Family::Depthwise => launch!(self, dwconv_bwd_filter_f32, Cuda::per_block(dw.len)?;
                &x.mem, &dy.mem, &mut dw.mem, &ConvParams { add, ..p }),
            Family::General => launch!(self, conv_bwd_filter_f32, Cuda::per_block(dw.len)?;
                &x.mem, &dy.mem, &mut dw.mem, &ConvParams { add, ..p }),
        }
    }

    /// A depthwise conv's two gradients in one launch (`dwconv_bwd_f32`);
    /// otherwise one launch per gradient.
    fn conv2d_bwd(
        &self,
        g: &ConvGeom,
        x: &CudaBuf,
        w: &CudaBuf,
        dy: &CudaBuf,
        dx: Option<(&mut CudaBuf, Write)>,
        dw: Option<(&mut CudaBuf, Write)>,
    ) -> Result<()> {
        match (family(g), dx, dw) {
            (Family::Depthwise, Some((dx, write)), Some((dw, dw_write))) => {
                counts::call(bwd_launches(g, Some(write), true));
                let k = "dwconv_bwd_f32";
                check(k, g, x, Some(w), dy, "dy")?;
                check_len(k, "dx", dx, x.len)?;
                check_len(k, "dw", dw, g.w_shape().numel())?;
                if dx.len == 0 || dy.len == 0 {
                    return Ok(());
                }
                let p = params(k, g)?;
                let data_blocks = Cuda::flat(dx.len).grid_dim.0;
                let cfg = Cuda::per_block(data_blocks as usize + dw.len)?;
                let (add, dw_add, data_blocks) = (write.add_flag(), dw_write.add_flag(), data_blocks as i32);
                launch!(self, dwconv_bwd_f32, cfg;
                &x.mem, &w.mem, &dy.mem, &mut dx.mem, &mut dw.mem, &ConvParams { add, dw_add, data_blocks, ..p })
            }
            (_, dx, dw) => super::bwd_each(self, g, x, w, dy, dx, dw),
        }
    }

    /// In training two launches, `chain_fwd_f32` (the convs and BatchNorm's
    /// moments per tile) and `bn_fwd_merged_f32` (the statistics, the
    /// normalisation), where the kernel fits; otherwise, and in evaluation,
    /// the single ops' kernels one after the other (in evaluation the 1×1
    /// output in the family's scratch).
    fn chain_fwd(
        &self,
        c: &ChainGeom,
        x: &CudaBuf,
        w_dw: &CudaBuf,
        w_pw: &CudaBuf,
        norm: ChainNorm<'_, CudaBuf>,
        d: &mut CudaBuf,
        y: &mut CudaBuf,
    ) -> Result<()> {
        let ChainNorm { gamma, beta, running_mean, running_var, batch } = norm;
        if let Some((p, saved)) = batch {
            let Some((t, tiles)) = chain_tiles(c) else {
                self.conv2d_fwd(&c.dw, x, w_dw, d)?;
                self.conv2d_fwd(&c.pw, d, w_pw, p)?;
                return self.bn_fwd_train(&c.bn, p, gamma, beta, y, saved, running_mean, running_var);
            };
            let k = "chain_fwd_f32";
            counts::call(2);
            check(k, &c.dw, x, Some(w_dw), d, "d")?;
            check(k, &c.pw, d, Some(w_pw), p, "p")?;
            let state = self.family::<Kernels>()?;
            let mut part =
                state.chain_parts.lock().map_err(|_| crate::error::Error::new("cuda: chain scratch lock poisoned"))?;
            let args = ConvParams {
                cout: int(k, c.pw.cout)?,
                groups: int(k, c.pw.groups)?,
                chunk: t as i64,
                ..params(k, &c.dw)?
            };
            let cfg = LaunchConfig {
                grid_dim: (int(k, tiles)? as u32, c.pw.n as u32, c.pw.groups as u32),
                block_dim: (CHAIN_BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            launch!(self, chain_fwd_f32, cfg; &x.mem, &w_dw.mem, &w_pw.mem, &mut d.mem, &mut p.mem, &mut *part, &args)?;
            let parts = c.pw.n * tiles;
            return crate::ops::bn::fwd_merged(
                self,
                &c.bn,
                p,
                &part,
                parts,
                gamma,
                beta,
                y,
                saved,
                running_mean,
                running_var,
            );
        }
        self.conv2d_fwd(&c.dw, x, w_dw, d)?;
        let state = self.family::<Kernels>()?;
        with_scratch(self, &state.chain_dp, c.pw.y_shape().numel(), |p| {
            self.conv2d_fwd(&c.pw, d, w_pw, p)?;
            self.bn_fwd_eval(&c.bn, p, gamma, beta, running_mean, running_var, y)
        })
    }

    /// The single ops' backward kernels one after the other, `dp` and `dd`
    /// in the family's scratch.
    fn chain_bwd(
        &self,
        c: &ChainGeom,
        x: &CudaBuf,
        w_dw: &CudaBuf,
        w_pw: &CudaBuf,
        saved: ChainSaved<'_, CudaBuf>,
        dy: &CudaBuf,
        grads: ChainGrads<'_, CudaBuf>,
    ) -> Result<()> {
        let ChainSaved { d, p, saved, gamma } = saved;
        let through_convs = grads.through_convs();
        let ChainGrads { x: dx, w_dw: dwdw, w_pw: dwpw, gamma: dgamma, beta: dbeta } = grads;
        if !through_convs {
            return self.bn_bwd(&c.bn, p, gamma, saved, dy, None, dgamma, dbeta);
        }
        let state = self.family::<Kernels>()?;
        let want_dd = dx.is_some() || dwdw.is_some();
        let Some((t, tiles)) = chain_bwd_tiles(c) else {
            return with_scratch(self, &state.chain_dp, p.len, |dp| {
                self.bn_bwd(&c.bn, p, gamma, saved, dy, Some((&mut *dp, Write::Set)), dgamma, dbeta)?;
                if !want_dd {
                    return super::bwd_each(self, &c.pw, d, w_pw, dp, None, dwpw);
                }
                with_scratch(self, &state.chain_dd, d.len, |dd| {
                    super::bwd_each(self, &c.pw, d, w_pw, dp, Some((&mut *dd, Write::Set)), dwpw)?;
                    self.conv2d_bwd(&c.dw, x, w_dw, dd, dx, dwdw)
                })
            });
        };
        let k = "chain_bwd_f32";
        counts::call(2);
        check(k, &c.pw, d, Some(w_pw), p, "p")?;
        check_len(k, "dy", dy, p.len)?;
        if let Some(g) = gamma {
            check_len(k, "gamma", g, c.bn.c)?;
        }
        for (what, b) in [("dgamma", dgamma.as_deref()), ("dbeta", dbeta.as_deref())] {
            if let Some(b) = b {
                check_len(k, what, b, c.bn.c)?;
            }
        }
        let (gp, dgp, dbp) = (self.opt_ptr(gamma), self.opt_ptr(dgamma.as_deref()), self.opt_ptr(dbeta.as_deref()));
        let (dwp, add) = match &dwpw {
            Some((dw, write)) => {
                check_len(k, "dw_pw", dw, c.pw.w_shape().numel())?;
                (self.opt_ptr(Some(&**dw)), write.add_flag())
            }
            None => (0, 0),
        };
        let cfg = LaunchConfig {
            grid_dim: (int(k, tiles)? as u32, c.pw.n as u32, c.pw.groups as u32),
            block_dim: (CHAIN_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let lock_err = || crate::error::Error::new("cuda: chain scratch lock poisoned");
        let launch_chain = |dd: u64, bpart: &CudaSlice<f64>, blocks: usize| -> Result<()> {
            let mut parts = state.pw_parts.lock().map_err(|_| lock_err())?;
            let mut tickets = state.pw_tickets.lock().map_err(|_| lock_err())?;
            let args = ConvParams { add, data_blocks: int(k, blocks)?, chunk: t as i64, ..params(k, &c.pw)? };
            launch!(self, chain_bwd_f32, cfg;
                &p.mem, &dy.mem, &d.mem, &w_pw.mem, &gp, &saved.mem, bpart, &dd, &mut *parts, &dwp, &mut *tickets, &dgp, &dbp, &args)
        };
        crate::ops::bn::with_bwd_sums(self, &c.bn, p, saved, dy, |bpart, blocks| {
            if !want_dd {
                return launch_chain(0, bpart, blocks);
            }
            with_scratch(self, &state.chain_dd, d.len, |dd| {
                launch_chain(self.opt_ptr(Some(&*dd)), bpart, blocks)?;
                self.conv2d_bwd(&c.dw, x, w_dw, dd, dx, dwdw)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ConvGeom, PW_PARTS, pw_splits};

    fn pointwise(n: usize, cin: usize, cout: usize, groups: usize) -> ConvGeom {
        ConvGeom { n, cin, h: 4, w: 4, cout, oh: 4, ow: 4, k: 1, stride: 1, pad: 0, dil: 1, groups, relu_in: false }
    }

    /// The splits' partial tiles never exceed the scratch, and a filter that
    /// alone would is refused instead of written past the buffer.
    #[test]
    fn pointwise_partial_tiles_stay_inside_their_scratch() {
        for (n, cin, cout, groups) in [(64, 16, 16, 1), (64, 576, 576, 2), (8, 2048, 2048, 1), (1, 1, 1, 1)] {
            let g = pointwise(n, cin, cout, groups);
            let (splits, chunk) = pw_splits(&g).unwrap();
            assert!(splits * g.w_shape().numel() <= PW_PARTS, "{cin}→{cout}: {splits} splits");
            assert!(splits * chunk >= n * 16, "every product in some split");
        }
        // 2,049 × 2,049 = 4,198,401 weights > 2^22 = 4,194,304.
        let e = pw_splits(&pointwise(8, 2049, 2049, 1)).unwrap_err().to_string();
        assert!(e.contains("4198401 weights") && e.contains("partial-tile scratch"), "{e}");
    }
}
