//! Elementwise kernels and the reductions on the device: launchers of
//! `kernels/elementwise.cu`, flat kernels over n elements and the two-stage
//! f64 reductions.

use super::{
    AxpyElemParams, AxpyParams, ChannelScaleParams, CopyElemParams, DropPathParams, ElementwiseOps, FillParams,
    LenParams, MIX_MAX, MixGrad, MixParams, ReduceFinishParams, ScaleGeom,
};
use crate::device::Write;
use crate::device::counts;
use crate::device::cuda::{Cuda, CudaBuf, REDUCE_PARTS, check_len, family_state, int, launch};
use crate::device::kernel_params::DevPtr;
use crate::error::{Error, Result};

family_state! {
    /// The kernels of `kernels/elementwise.cu`.
    struct Kernels from "elementwise" {
        kernels: [fill_f32, copy_f32, axpy_f32, relu_fwd_f32, relu_bwd_f32, mul_fwd_f32, mul_bwd_f32, drop_path_fwd_f32, drop_path_bwd_f32, axpy_elem_f32, mix_fwd_f32, mix_bwd_partial_f32, mix_bwd_finish_f32, sum_all_bwd_f32, reduce_partial_f64, reduce_finish_f32, copy_elem_f32, channel_scale_fwd_f32, channel_scale_bwd_data_f32, channel_scale_bwd_m_f32],
    }
}

/// Launches of `dot_elem` and `sum_all_fwd`: partial sums, then their total.
pub(crate) const DOT_ELEM_LAUNCHES: u64 = 2;
pub(crate) const SUM_ALL_FWD_LAUNCHES: u64 = 2;

/// Launches of `mix_fwd` over `terms` terms: one per `MIX_MAX` terms (one
/// for none: it writes zeros).
pub(crate) fn mix_fwd_launches(terms: usize) -> u64 {
    terms.div_ceil(MIX_MAX).max(1) as u64
}

/// Launches of `mix_bwd`: per `MIX_MAX` terms, the pass over dy (which
/// writes the dx terms and the weight gradients' partial sums) and, with a
/// weight gradient, the sum of those partials.
pub(crate) fn mix_bwd_launches(terms: usize, dw: bool) -> u64 {
    terms.div_ceil(MIX_MAX) as u64 * (1 + u64::from(dw))
}

/// Blocks of `mix_bwd_partial_f32`: its partial sums, `MIX_MAX` per block,
/// fill the reduction scratch at most.
const MIX_BWD_PARTS: usize = REDUCE_PARTS / MIX_MAX;

fn same(kernel: &str, a: &CudaBuf, b: &CudaBuf) -> Result<()> {
    check_len(kernel, "second operand", b, a.len)
}

/// Elements per sample of a drop-path operand of `len` elements and its
/// mask: fails unless the samples are equal and non-empty.
fn per_sample(kernel: &str, len: usize, mask: &CudaBuf) -> Result<usize> {
    if mask.len == 0 || !len.is_multiple_of(mask.len) {
        crate::bail!("cuda: {kernel}: {len} elements are not {} equal samples", mask.len);
    }
    Ok(len / mask.len)
}

/// The `add` argument of `mix_bwd_partial_f32`: bit `t` set where term `t`
/// of a launch adds to its dx rather than overwriting it. 64 bits, for the
/// up to [`MIX_MAX`] = 40 terms of a launch (a 32-bit mask lost terms 32–39).
pub(crate) fn add_mask(flags: impl Iterator<Item = bool>) -> u64 {
    const _: () = assert!(MIX_MAX <= 64, "a launch's terms must fit the 64-bit add mask");
    flags.enumerate().fold(0u64, |m, (t, add)| {
        debug_assert!(t < MIX_MAX, "term {t} of a launch of at most {MIX_MAX}");
        m | (u64::from(add) << t)
    })
}

/// Stage 1 of a reduction of `Σ a·b` (`b` absent: `Σ a`) into the locked
/// scratch; returns how many partial sums it wrote.
fn partials(cu: &Cuda, scratch: &mut cudarc::driver::CudaSlice<f64>, a: &CudaBuf, b: Option<&CudaBuf>) -> Result<i32> {
    let n = a.len;
    let cfg = Cuda::flat(n);
    let parts = cfg.grid_dim.0.min(REDUCE_PARTS as u32);
    let cfg = cudarc::driver::LaunchConfig { grid_dim: (parts, 1, 1), ..cfg };
    let bp = cu.opt_ptr(b);
    launch!(cu, reduce_partial_f64, cfg; &a.mem, &bp, scratch, &LenParams { n: n as i64 })?;
    Ok(parts as i32)
}

/// Stage 2: `out[idx] = Σ partials` (or `+=` when `accumulate`).
fn finish(
    cu: &Cuda,
    scratch: &cudarc::driver::CudaSlice<f64>,
    parts: i32,
    out: &mut CudaBuf,
    idx: usize,
    accumulate: bool,
) -> Result<()> {
    let one = Cuda::per_block(1)?;
    launch!(cu, reduce_finish_f32, one;
        scratch, &mut out.mem, &ReduceFinishParams { parts, idx: idx as i64, accumulate: accumulate as i32 })
}

fn lock(cu: &Cuda) -> Result<std::sync::MutexGuard<'_, cudarc::driver::CudaSlice<f64>>> {
    cu.scratch.lock().map_err(|_| Error::new("cuda: the reduction scratch lock is poisoned"))
}

impl ElementwiseOps for Cuda {
    fn fill(&self, y: &mut CudaBuf, v: f32) -> Result<()> {
        counts::call(1);
        let n = y.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, fill_f32, Cuda::flat(n); &mut y.mem, &FillParams { v, n: n as i64 })
    }

    fn copy(&self, src: &CudaBuf, dst: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("copy_f32", src, dst)?;
        let n = src.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, copy_f32, Cuda::flat(n); &src.mem, &mut dst.mem, &LenParams { n: n as i64 })
    }

    fn axpy(&self, a: f32, x: &CudaBuf, y: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        same("axpy_f32", x, y)?;
        let n = x.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, axpy_f32, Cuda::flat(n);
            &x.mem, &mut y.mem, &AxpyParams { a, n: n as i64, add: write.add_flag() })
    }

    fn copy_elem(&self, x: &CudaBuf, from: usize, y: &mut CudaBuf, to: usize) -> Result<()> {
        counts::call(1);
        if from >= x.len || to >= y.len {
            crate::bail!("cuda: copy_elem_f32: element {from} of {} into element {to} of {}", x.len, y.len);
        }
        launch!(self, copy_elem_f32, Cuda::per_block(1)?;
            &x.mem, &mut y.mem, &CopyElemParams { from: from as i64, to: to as i64 })
    }

    fn relu_fwd(&self, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("relu_fwd_f32", x, y)?;
        let n = x.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, relu_fwd_f32, Cuda::flat(n); &x.mem, &mut y.mem, &LenParams { n: n as i64 })
    }

    fn relu_bwd(&self, x: &CudaBuf, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("relu_bwd_f32", x, dy)?;
        same("relu_bwd_f32", x, dx)?;
        let n = x.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, relu_bwd_f32, Cuda::flat(n); &x.mem, &dy.mem, &mut dx.mem, &LenParams { n: n as i64 })
    }

    fn mul_fwd(&self, a: &CudaBuf, b: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("mul_fwd_f32", a, b)?;
        same("mul_fwd_f32", a, y)?;
        let n = a.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, mul_fwd_f32, Cuda::flat(n); &a.mem, &b.mem, &mut y.mem, &LenParams { n: n as i64 })
    }

    fn mul_bwd(&self, b: &CudaBuf, dy: &CudaBuf, da: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("mul_bwd_f32", b, dy)?;
        same("mul_bwd_f32", b, da)?;
        let n = b.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, mul_bwd_f32, Cuda::flat(n); &b.mem, &dy.mem, &mut da.mem, &LenParams { n: n as i64 })
    }

    fn drop_path_fwd(&self, x: &CudaBuf, mask: &CudaBuf, y: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        same("drop_path_fwd_f32", x, y)?;
        let n = x.len;
        if n == 0 {
            return Ok(());
        }
        let per = per_sample("drop_path_fwd_f32", n, mask)?;
        launch!(self, drop_path_fwd_f32, Cuda::flat(n);
            &x.mem, &mask.mem, &mut y.mem, &DropPathParams { per: per as i64, total: n as i64, add: write.add_flag() })
    }

    fn drop_path_bwd(&self, mask: &CudaBuf, dy: &CudaBuf, dx: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        same("drop_path_bwd_f32", dy, dx)?;
        let n = dy.len;
        if n == 0 {
            return Ok(());
        }
        let per = per_sample("drop_path_bwd_f32", n, mask)?;
        let params = DropPathParams { per: per as i64, total: n as i64, add: write.add_flag() };
        launch!(self, drop_path_bwd_f32, Cuda::flat(n);
            &mask.mem, &dy.mem, &mut dx.mem, &params)
    }

    fn channel_scale_fwd(&self, g: &ScaleGeom, x: &CudaBuf, m: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "channel_scale_fwd_f32";
        let (c, cm) = scale_check(k, g, x, m)?;
        check_len(k, "y", y, x.len)?;
        if x.len == 0 {
            return Ok(());
        }
        let params = ChannelScaleParams { n: g.n as i64, c, hw: g.hw as i64, cm, ..Default::default() };
        launch!(self, channel_scale_fwd_f32, Cuda::flat(x.len);
            &x.mem, &m.mem, &mut y.mem, &params)
    }

    fn channel_scale_bwd(
        &self,
        g: &ScaleGeom,
        x: &CudaBuf,
        m: &CudaBuf,
        dy: &CudaBuf,
        dx: Option<(&mut CudaBuf, Write)>,
        dm: Option<&mut CudaBuf>,
    ) -> Result<()> {
        counts::call(u64::from(dx.is_some()) + u64::from(dm.is_some()));
        let k = "channel_scale_bwd";
        let (c, cm) = scale_check(k, g, x, m)?;
        check_len(k, "dy", dy, x.len)?;
        if x.len == 0 {
            return Ok(());
        }
        let (n, hw) = (g.n as i64, g.hw as i64);
        if let Some((dx, write)) = dx {
            check_len(k, "dx", dx, x.len)?;
            launch!(self, channel_scale_bwd_data_f32, Cuda::flat(x.len);
                &m.mem, &dy.mem, &mut dx.mem, &ChannelScaleParams { n, c, hw, cm, add: write.add_flag() })?;
        }
        if let Some(dm) = dm {
            check_len(k, "dm", dm, g.cm)?;
            launch!(self, channel_scale_bwd_m_f32, Cuda::per_block(g.cm)?;
                &x.mem, &dy.mem, &mut dm.mem, &ChannelScaleParams { n, c, hw, cm, ..Default::default() })?;
        }
        Ok(())
    }

    fn axpy_elem(&self, w: &CudaBuf, idx: usize, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        same("axpy_elem_f32", x, y)?;
        if idx >= w.len {
            crate::bail!("cuda: axpy_elem_f32: index {idx} outside a weight buffer of {}", w.len);
        }
        let n = x.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, axpy_elem_f32, Cuda::flat(n);
            &w.mem, &x.mem, &mut y.mem, &AxpyElemParams { idx: idx as i64, n: n as i64 })
    }

    fn mix_fwd(&self, w: &CudaBuf, terms: &[(usize, &CudaBuf)], y: &mut CudaBuf) -> Result<()> {
        counts::call(mix_fwd_launches(terms.len()));
        // One launch for up to MIX_MAX terms (a DARTS node has at most 5
        // edges of 7 nonzero primitives).
        for &(idx, x) in terms {
            same("mix_fwd_f32", x, y)?;
            if idx >= w.len {
                crate::bail!("cuda: mix_fwd_f32: index {idx} outside a weight buffer of {}", w.len);
            }
        }
        let n = y.len;
        if n == 0 {
            return Ok(());
        }
        if terms.is_empty() {
            return launch!(self, mix_fwd_f32, Cuda::flat(n);
                &w.mem, &mut y.mem, &MixParams { n: n as i64, ..MixParams::default() });
        }
        for (g, group) in terms.chunks(MIX_MAX).enumerate() {
            let mut p =
                MixParams { nt: group.len() as i32, add: i32::from(g > 0), n: n as i64, ..MixParams::default() };
            for (t, &(idx, x)) in group.iter().enumerate() {
                p.x[t] = DevPtr(self.opt_ptr(Some(x)));
                p.idx[t] = idx as i32; // idx < w.len, and α rows are short
            }
            launch!(self, mix_fwd_f32, Cuda::flat(n); &w.mem, &mut y.mem, &p)?;
        }
        Ok(())
    }

    fn dot_elem(&self, a: &CudaBuf, b: &CudaBuf, out: &mut CudaBuf, idx: usize) -> Result<()> {
        counts::call(DOT_ELEM_LAUNCHES);
        // Summed in f64, rounded once.
        same("reduce_partial_f64", a, b)?;
        if idx >= out.len {
            crate::bail!("cuda: dot_elem: index {idx} outside an output of {}", out.len);
        }
        let mut s = lock(self)?;
        let parts = partials(self, &mut s, a, Some(b))?;
        finish(self, &s, parts, out, idx, true)
    }

    fn mix_bwd(
        &self,
        w: &CudaBuf,
        dy: &CudaBuf,
        terms: &mut [MixGrad<'_, CudaBuf>],
        mut dw: Option<&mut CudaBuf>,
    ) -> Result<()> {
        counts::call(mix_bwd_launches(terms.len(), dw.is_some()));
        let k = "mix_bwd_partial_f32";
        for t in terms.iter() {
            same(k, dy, t.x)?;
            if let Some((dx, _)) = &t.dx {
                same(k, dy, dx)?;
            }
            if t.idx >= w.len || dw.as_ref().is_some_and(|dw| t.idx >= dw.len) {
                crate::bail!("cuda: {k}: index {} outside a weight buffer of {}", t.idx, w.len);
            }
        }
        let n = dy.len;
        let cfg = Cuda::flat(n);
        let parts = cfg.grid_dim.0.min(MIX_BWD_PARTS as u32);
        let cfg = cudarc::driver::LaunchConfig { grid_dim: (parts, 1, 1), ..cfg };
        let scratch = lock(self)?;
        for group in terms.chunks(MIX_MAX) {
            let mut p = MixParams {
                nt: group.len() as i32,
                add_mask: add_mask(group.iter().map(|t| t.dx.as_ref().is_some_and(|(_, w)| w.add_flag() != 0))),
                n: n as i64,
                parts: parts as i32,
                ..MixParams::default()
            };
            for (t, term) in group.iter().enumerate() {
                p.x[t] = DevPtr(self.opt_ptr(Some(term.x)));
                p.idx[t] = term.idx as i32; // idx < w.len, and α rows are short
                if let Some((dx, _)) = &term.dx {
                    p.d[t] = DevPtr(self.opt_ptr(Some(dx)));
                }
            }
            // Blocks (b, g): g takes terms 8g … 8g + 7.
            let cfg = cudarc::driver::LaunchConfig { grid_dim: (parts, group.len().div_ceil(8) as u32, 1), ..cfg };
            // Null `part` when no weight gradient is wanted.
            let part = if dw.is_some() { self.ptr(&*scratch) } else { 0 };
            launch!(self, mix_bwd_partial_f32, cfg; &w.mem, &dy.mem, &part, &p)?;
            if let Some(dw) = dw.as_deref_mut() {
                launch!(self, mix_bwd_finish_f32, Cuda::per_block(1)?; &*scratch, &mut dw.mem, &p)?;
            }
        }
        Ok(())
    }

    fn sum_all_fwd(&self, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(SUM_ALL_FWD_LAUNCHES);
        if y.len == 0 {
            crate::bail!("cuda: sum_all_fwd: y is empty");
        }
        let mut s = lock(self)?;
        let parts = partials(self, &mut s, x, None)?;
        finish(self, &s, parts, y, 0, false)
    }

    fn sum_all_bwd(&self, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        if dy.len == 0 {
            crate::bail!("cuda: sum_all_bwd_f32: dy is empty");
        }
        let n = dx.len;
        if n == 0 {
            return Ok(());
        }
        launch!(self, sum_all_bwd_f32, Cuda::flat(n); &dy.mem, &mut dx.mem, &LenParams { n: n as i64 })
    }
}

/// Checks a per-channel factor's geometry and its `x` and `m`; returns `(c, cm)` as ints.
fn scale_check(k: &str, g: &ScaleGeom, x: &CudaBuf, m: &CudaBuf) -> Result<(i32, i32)> {
    if g.cm == 0 || !g.c.is_multiple_of(g.cm) {
        crate::bail!("cuda: {k}: {} factors do not divide {} channels", g.cm, g.c);
    }
    check_len(k, "x", x, g.n * g.c * g.hw)?;
    check_len(k, "m", m, g.cm)?;
    Ok((int(k, g.c)?, int(k, g.cm)?))
}

#[cfg(test)]
mod tests {
    use super::{MIX_MAX, add_mask};

    /// Every term of a full launch keeps its flag, those past bit 31 too.
    #[test]
    fn add_flags_past_term_32_are_kept() {
        let flags: Vec<bool> = (0..MIX_MAX).map(|t| t % 4 != 2).collect();
        let m = add_mask(flags.iter().copied());
        for (t, &f) in flags.iter().enumerate() {
            assert_eq!((m >> t) & 1 == 1, f, "term {t}");
        }
        assert_eq!(m >> MIX_MAX, 0);
        // The last node of a DARTS cell mixes 35 terms: terms 32..35 all add.
        assert_eq!(add_mask((0..35).map(|_| true)), (1u64 << 35) - 1);
    }
}
