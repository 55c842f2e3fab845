//! Copies, shifts and the global average pool on the device: launchers of
//! `kernels/layout.cu`.

use cudarc::driver::LaunchConfig;

use super::{ChannelSlice, LayoutOps};
use crate::device::cuda::{BLOCK, Cuda, CudaBuf, check_len, int, launch};
use crate::device::{Write, counts};
use crate::error::{Error, Result};

fn slice_ints(k: &str, s: &ChannelSlice, part: &CudaBuf, whole: &CudaBuf) -> Result<[i32; 5]> {
    if s.off + s.c_part > s.c_whole {
        crate::bail!("cuda: {k}: channels {}..{} outside {}", s.off, s.off + s.c_part, s.c_whole);
    }
    check_len(k, "part", part, s.n * s.c_part * s.hw)?;
    check_len(k, "whole", whole, s.n * s.c_whole * s.hw)?;
    Ok([int(k, s.n)?, int(k, s.hw)?, int(k, s.c_part)?, int(k, s.c_whole)?, int(k, s.off)?])
}

/// Parts `concat_fwd_f32` / `concat_bwd_f32` take in one launch; `CONCAT_MAX` of the kernels.
const CONCAT_MAX: usize = 8;

/// Launches of `concat_fwd` / `concat_bwd` over `parts` parts: one per `CONCAT_MAX`.
pub(crate) fn concat_launches(parts: usize) -> u64 {
    parts.div_ceil(CONCAT_MAX) as u64
}

/// `ConcatParts` of `kernels/layout.cu`, passed by value: each part's
/// address, first channel in the whole and channel count.
#[repr(C)]
#[derive(Clone, Copy)]
struct ConcatParts {
    p: [u64; CONCAT_MAX],
    off: [i32; CONCAT_MAX],
    c: [i32; CONCAT_MAX],
}

// SAFETY: plain old data laid out as the kernels' C struct (repr(C): 8
// pointers, 8 ints, 8 ints; 128 bytes, 8-byte aligned).
unsafe impl cudarc::driver::DeviceRepr for ConcatParts {}

impl crate::device::ptx::ParamBytes for ConcatParts {
    const BYTES: usize = std::mem::size_of::<ConcatParts>();
}

/// Checks a concatenation's parts against one whole: the same n, plane and
/// channel count; returns (n, hw, c_whole) as ints.
fn concat_check(k: &str, parts: &[&ChannelSlice], whole: &CudaBuf) -> Result<[i32; 3]> {
    let Some(first) = parts.first() else { return Ok([0; 3]) };
    for s in parts {
        if (s.n, s.hw, s.c_whole) != (first.n, first.hw, first.c_whole) || s.off + s.c_part > s.c_whole {
            crate::bail!("cuda: {k}: part {s:?} does not fit the whole of part {first:?}");
        }
    }
    check_len(k, "whole", whole, first.n * first.c_whole * first.hw)?;
    Ok([int(k, first.n)?, int(k, first.hw)?, int(k, first.c_whole)?])
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
        // channel_put_f32(const float* part, float* whole, int n, int hw, int c_part, int c_whole, int off, int add)
        launch!(self, channel_put_f32, Cuda::flat(part.len);
            &part.mem, &mut whole.mem, &n, &hw, &cp, &cw, &off, &write.add_flag())
    }

    fn channel_take(&self, s: &ChannelSlice, dwhole: &CudaBuf, dpart: &mut CudaBuf, write: Write) -> Result<()> {
        counts::call(1);
        let [n, hw, cp, cw, off] = slice_ints("channel_take_f32", s, dpart, dwhole)?;
        if dpart.len == 0 {
            return Ok(());
        }
        // channel_take_f32(const float* dwhole, float* dpart, int n, int hw, int c_part, int c_whole, int off,
        //                  int add)
        launch!(self, channel_take_f32, Cuda::flat(dpart.len);
            &dwhole.mem, &mut dpart.mem, &n, &hw, &cp, &cw, &off, &write.add_flag())
    }

    fn concat_fwd(&self, parts: &[(ChannelSlice, &CudaBuf)], whole: &mut CudaBuf) -> Result<()> {
        counts::call(concat_launches(parts.len()));
        let k = "concat_fwd_f32";
        let [n, hw, cw] = concat_check(k, &parts.iter().map(|(s, _)| s).collect::<Vec<_>>(), whole)?;
        for (s, part) in parts {
            check_len(k, "part", part, s.n * s.c_part * s.hw)?;
        }
        for group in parts.chunks(CONCAT_MAX) {
            let mut pp = ConcatParts { p: [0; CONCAT_MAX], off: [0; CONCAT_MAX], c: [0; CONCAT_MAX] };
            for (t, (s, part)) in group.iter().enumerate() {
                (pp.p[t], pp.off[t], pp.c[t]) = (self.opt_ptr(Some(part)), int(k, s.off)?, int(k, s.c_part)?);
            }
            // concat_fwd_f32(ConcatParts P, int np, float* whole, int n, int hw, int c_whole)
            launch!(self, concat_fwd_f32, Cuda::flat(whole.len); &pp, &(group.len() as i32), &mut whole.mem, &n, &hw, &cw)?;
        }
        Ok(())
    }

    fn concat_bwd(&self, dwhole: &CudaBuf, parts: &mut [(ChannelSlice, &mut CudaBuf, Write)]) -> Result<()> {
        counts::call(concat_launches(parts.len()));
        let k = "concat_bwd_f32";
        let [n, hw, cw] = concat_check(k, &parts.iter().map(|(s, ..)| s).collect::<Vec<_>>(), dwhole)?;
        for (s, part, _) in parts.iter() {
            check_len(k, "part", part, s.n * s.c_part * s.hw)?;
        }
        for group in parts.chunks(CONCAT_MAX) {
            let mut pp = ConcatParts { p: [0; CONCAT_MAX], off: [0; CONCAT_MAX], c: [0; CONCAT_MAX] };
            let mut add = 0u32;
            for (t, (s, part, write)) in group.iter().enumerate() {
                (pp.p[t], pp.off[t], pp.c[t]) = (self.opt_ptr(Some(part)), int(k, s.off)?, int(k, s.c_part)?);
                add |= (write.add_flag() as u32) << t;
            }
            // concat_bwd_f32(ConcatParts P, int np, unsigned add, const float* dwhole, int n, int hw, int c_whole)
            launch!(self, concat_bwd_f32, Cuda::flat(dwhole.len);
                &pp, &(group.len() as i32), &add, &dwhole.mem, &n, &hw, &cw)?;
        }
        Ok(())
    }

    fn shift_fwd(&self, n: usize, c: usize, h: usize, w: usize, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let [nc, hi, wi] = shift_check("shift_fwd_f32", n, c, h, w, x, y)?;
        if y.len == 0 {
            return Ok(());
        }
        // shift_fwd_f32(const float* x, float* y, int nc, int h, int w)
        launch!(self, shift_fwd_f32, Cuda::flat(y.len); &x.mem, &mut y.mem, &nc, &hi, &wi)
    }

    fn shift_bwd(&self, n: usize, c: usize, h: usize, w: usize, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let [nc, hi, wi] = shift_check("shift_bwd_f32", n, c, h, w, dx, dy)?;
        if dy.len == 0 {
            return Ok(());
        }
        // shift_bwd_f32(const float* dy, float* dx, int nc, int h, int w)
        launch!(self, shift_bwd_f32, Cuda::flat(dy.len); &dy.mem, &mut dx.mem, &nc, &hi, &wi)
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
        // gap_fwd_f32(const float* x, float* y, int nc, int hw)
        launch!(self, gap_fwd_f32, cfg; &x.mem, &mut y.mem, &nci, &hwi)
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
        // gap_bwd_f32(const float* dy, float* dx, int nc, int hw)
        launch!(self, gap_bwd_f32, Cuda::flat(dx.len); &dy.mem, &mut dx.mem, &nci, &hwi)
    }
}
