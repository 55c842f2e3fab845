//! Copies, shifts and the global average pool on the host; the copies of
//! whole tensors split over threads by sample.

use super::{ChannelSlice, LayoutOps};
use crate::device::counts;
use crate::device::{Cpu, Write};
use crate::error::Result;
use crate::par;
use crate::real::Real;

impl<T: Real> LayoutOps for Cpu<T> {
    fn channel_put(&self, s: &ChannelSlice, part: &Vec<T>, whole: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        put_part(s, part, whole, write);
        Ok(())
    }

    fn channel_take(&self, s: &ChannelSlice, dwhole: &Vec<T>, dpart: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        take_part(s, dwhole, dpart, write);
        Ok(())
    }

    fn concat_fwd(&self, parts: &[(ChannelSlice, &Vec<T>)], whole: &mut Vec<T>) -> Result<()> {
        counts::call(super::cuda::concat_launches(parts.len()));
        parts.iter().for_each(|(s, part)| put_part(s, part, whole, Write::Set));
        Ok(())
    }

    fn concat_bwd(&self, dwhole: &Vec<T>, parts: &mut [(ChannelSlice, &mut Vec<T>, Write)]) -> Result<()> {
        counts::call(super::cuda::concat_launches(parts.len()));
        parts.iter_mut().for_each(|(s, part, write)| take_part(s, dwhole, part, *write));
        Ok(())
    }

    fn shift_fwd(&self, n: usize, c: usize, h: usize, w: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (oh, ow) = (h - 1, w - 1);
        par::for_chunks(&mut y[..n * c * oh * ow], oh * ow, n * c * oh * ow, |p, yp| {
            for (i, yr) in yp.chunks_exact_mut(ow).enumerate() {
                yr.copy_from_slice(&x[p * h * w + (i + 1) * w + 1..][..ow]);
            }
        });
        Ok(())
    }

    fn shift_bwd(&self, n: usize, c: usize, h: usize, w: usize, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (oh, ow) = (h - 1, w - 1);
        par::for_chunks(&mut dx[..n * c * h * w], h * w, n * c * oh * ow, |p, dp| {
            for (i, gr) in dy[p * oh * ow..][..oh * ow].chunks_exact(ow).enumerate() {
                for (d, &g) in dp[(i + 1) * w + 1..][..ow].iter_mut().zip(gr) {
                    *d += g;
                }
            }
        });
        Ok(())
    }

    fn gap_fwd(&self, nc: usize, hw: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let inv = T::ONE / T::from_usize(hw);
        for p in 0..nc {
            y[p] = x[p * hw..(p + 1) * hw].iter().fold(T::ZERO, |s, &v| s + v) * inv;
        }
        Ok(())
    }

    fn gap_bwd(&self, nc: usize, hw: usize, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let inv = T::ONE / T::from_usize(hw);
        for p in 0..nc {
            let g = dy[p] * inv;
            dx[p * hw..(p + 1) * hw].iter_mut().for_each(|d| *d += g);
        }
        Ok(())
    }
}

/// `whole[:, off:off + c_part] (=|+=) part`
fn put_part<T: Real>(s: &ChannelSlice, part: &[T], whole: &mut [T], write: Write) {
    let blk = s.c_part * s.hw;
    let whole = &mut whole[..s.n * s.c_whole * s.hw];
    par::for_chunks(whole, s.c_whole * s.hw, s.n * blk, |n, w| {
        let (d, p) = (&mut w[s.off * s.hw..][..blk], &part[n * blk..(n + 1) * blk]);
        match write {
            Write::Set => d.copy_from_slice(p),
            Write::Add => d.iter_mut().zip(p).for_each(|(d, &p)| *d += p),
        }
    });
}

/// `dpart (=|+=) dwhole[:, off:off + c_part]`
fn take_part<T: Real>(s: &ChannelSlice, dwhole: &[T], dpart: &mut [T], write: Write) {
    let blk = s.c_part * s.hw;
    par::for_chunks(&mut dpart[..s.n * blk], blk, s.n * blk, |n, d| {
        let g = &dwhole[(n * s.c_whole + s.off) * s.hw..][..blk];
        match write {
            Write::Set => d.copy_from_slice(g),
            Write::Add => d.iter_mut().zip(g).for_each(|(d, &g)| *d += g),
        }
    });
}
