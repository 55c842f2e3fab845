//! Copies, shifts and the global average pool on the device: launchers of
//! `kernels/layout.cu`.

use cudarc::driver::LaunchConfig;

use super::{CONCAT_MAX, ChannelSlice, ChannelSliceParams, ConcatParams, GapParams, LayoutOps, ShiftParams};
use crate::device::cuda::{BLOCK, Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::device::kernel_params::DevPtr;
use crate::device::{Write, counts};
use crate::error::{Error, Result};

family_state! {
    /// The kernels of `kernels/layout.cu`.
    struct Kernels from "layout" {
        kernels: [channel_put_f32, channel_take_f32, concat_fwd_f32, concat_bwd_f32, shift_fwd_f32, shift_bwd_f32, gap_fwd_f32, gap_bwd_f32],
    }
}

fn slice_ints(k: &str, s: &ChannelSlice, part: &CudaBuf, whole: &CudaBuf) -> Result<[i32; 5]> {
    if s.off + s.c_part > s.c_whole {
        crate::bail!("cuda: {k}: channels {}..{} outside {}", s.off, s.off + s.c_part, s.c_whole);
    }
    check_len(k, "part", part, s.n * s.c_part * s.hw)?;
    check_len(k, "whole", whole, s.n * s.c_whole * s.hw)?;
    Ok([int(k, s.n)?, int(k, s.hw)?, int(k, s.c_part)?, int(k, s.c_whole)?, int(k, s.off)?])
}

/// Launches of `concat_fwd` / `concat_bwd` over `parts` parts: one per `CONCAT_MAX`.
pub(crate) fn concat_launches(parts: usize) -> u64 {
    parts.div_ceil(CONCAT_MAX) as u64
}

/// Checks a concatenation's parts against one whole: the same n, plane and
/// channel count; returns the params with n, hw and c_whole set.
fn concat_check(k: &str, parts: &[&ChannelSlice], whole: &CudaBuf) -> Result<ConcatParams> {
    let Some(first) = parts.first() else { return Ok(ConcatParams::default()) };
    for s in parts {
        if (s.n, s.hw, s.c_whole) != (first.n, first.hw, first.c_whole) || s.off + s.c_part > s.c_whole {
            crate::bail!("cuda: {k}: part {s:?} does not fit the whole of part {first:?}");
        }
    }
    check_len(k, "whole", whole, first.n * first.c_whole * first.hw)?;
    Ok(ConcatParams {
        n: int(k, first.n)?,
        hw: int(k, first.hw)?,
        c_whole: int(k, first.c_whole)?,
        ..ConcatParams::default()
    })
}

fn shift_check(k: &str, n: usize, c: usize, h: usize, w: usize, big: &CudaBuf, small: &CudaBuf) -> Result<[i32; 3]> {
    if h == 0 || w == 0 {
        crate::bail!("cuda: {k}: a {h}×{w} plane cannot be shifted");
    }
    check_len(k, "the (h, w) tensor", big, n * c * h * w)?;
    check_len(k, "the (h − 1, w − 1) tensor", small, n * c * (h - 1) * (w - 1))?;
    Ok([int(k, n * c)?, int(k, h)?, int(k, w)?])
}

impl LayoutOps for Cuda {
    fn channel_put(&self, s: &ChannelSlice, part: &CudaBuf, whole: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        let [n, hw, cp, cw, off] = slice_ints("channel_put_f32", s, part, whole)?;
        if part.len == 0 {
            return Ok(());
        }
        let params = ChannelSliceParams { n, hw, c_part: cp, c_whole: cw, off, add: write.add_flag() };
        launch!(self, channel_put_f32, Cuda::flat(part.len);
            &part.mem, &mut whole.mem, &params)
    }

    fn channel_take(&self, s: &ChannelSlice, dwhole: &CudaBuf, dpart: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        let [n, hw, cp, cw, off] = slice_ints("channel_take_f32", s, dpart, dwhole)?;
        if dpart.len == 0 {
            return Ok(());
        }
        let params = ChannelSliceParams { n, hw, c_part: cp, c_whole: cw, off, add: write.add_flag() };
        launch!(self, channel_take_f32, Cuda::flat(dpart.len);
            &dwhole.mem, &mut dpart.mem, &params)
    }

    fn concat_fwd(&self, parts: &[(ChannelSlice, &CudaBuf)], whole: &mut CudaBuf) -> Result<()> {
        counts::call(concat_launches(parts.len()));
        let k = "concat_fwd_f32";
        let whole_params = concat_check(k, &parts.iter().map(|(s, _)| s).collect::<Vec<_>>(), whole)?;
        for (s, part) in parts {
            check_len(k, "part", part, s.n * s.c_part * s.hw)?;
        }
        for group in parts.chunks(CONCAT_MAX) {
            let mut p = ConcatParams { np: group.len() as i32, ..whole_params };
            for (t, (s, part)) in group.iter().enumerate() {
                (p.p[t], p.off[t], p.c[t]) = (DevPtr(self.opt_ptr(Some(part))), int(k, s.off)?, int(k, s.c_part)?);
            }
            launch!(self, concat_fwd_f32, Cuda::flat(whole.len); &mut whole.mem, &p)?;
        }
        Ok(())
    }

    fn concat_bwd(&self, dwhole: &CudaBuf, parts: &mut [(ChannelSlice, &mut CudaBuf, Write)]) -> Result<()> {
        counts::call(concat_launches(parts.len()));
        let k = "concat_bwd_f32";
        let whole_params = concat_check(k, &parts.iter().map(|(s, ..)| s).collect::<Vec<_>>(), dwhole)?;
        for (s, part, _) in parts.iter() {
            check_len(k, "part", part, s.n * s.c_part * s.hw)?;
        }
        for group in parts.chunks(CONCAT_MAX) {
            let mut p = ConcatParams { np: group.len() as i32, ..whole_params };
            for (t, (s, part, write)) in group.iter().enumerate() {
                (p.p[t], p.off[t], p.c[t]) = (DevPtr(self.opt_ptr(Some(part))), int(k, s.off)?, int(k, s.c_part)?);
                p.add |= (write.add_flag() as u32) << t;
            }
            launch!(self, concat_bwd_f32, Cuda::flat(dwhole.len); &dwhole.mem, &p)?;
        }
        Ok(())
    }

    fn shift_fwd(&self, n: usize, c: usize, h: usize, w: usize, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let [nc, hi, wi] = shift_check("shift_fwd_f32", n, c, h, w, x, y)?;
        if y.len == 0 {
            return Ok(());
        }
        launch!(self, shift_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &ShiftParams { nc, h: hi, w: wi })
    }

    fn shift_bwd(&self, n: usize, c: usize, h: usize, w: usize, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let [nc, hi, wi] = shift_check("shift_bwd_f32", n, c, h, w, dx, dy)?;
        if dy.len == 0 {
            return Ok(());
        }
        launch!(self, shift_bwd_f32, Cuda::flat(dy.len); &dy.mem, &mut dx.mem, &ShiftParams { nc, h: hi, w: wi })
    }

    fn gap_fwd(&self, nc: usize, hw: usize, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "gap_fwd_f32";
        check_len(k, "x", x, nc * hw)?;
        check_len(k, "y", y, nc)?;
        if nc == 0 {
            return Ok(());
        }
        if hw == 0 {
            crate::bail!("cuda: {k}: empty planes");
        }
        // One warp per plane.
        let warps_per_block = (BLOCK / 32) as usize;
        let blocks = u32::try_from(nc.div_ceil(warps_per_block)).map_err(|_| Error::new(format!("cuda: {k}: grid")))?;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let (nci, hwi) = (int(k, nc)?, int(k, hw)?);
        launch!(self, gap_fwd_f32, cfg; &x.mem, &mut y.mem, &GapParams { nc: nci, hw: hwi })
    }

    fn gap_bwd(&self, nc: usize, hw: usize, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "gap_bwd_f32";
        check_len(k, "dy", dy, nc)?;
        check_len(k, "dx", dx, nc * hw)?;
        if dx.len == 0 {
            return Ok(());
        }
        let (nci, hwi) = (int(k, nc)?, int(k, hw)?);
        launch!(self, gap_bwd_f32, Cuda::flat(dx.len); &dy.mem, &mut dx.mem, &GapParams { nc: nci, hw: hwi })
    }
}
