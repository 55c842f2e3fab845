//! Copies, shifts and the global average pool on the host.

use super::{ChannelSlice, LayoutOps};
use crate::backend::counts;
use crate::backend::{Cpu, Write};
use crate::error::Result;
use crate::real::Real;

impl<T: Real> LayoutOps for Cpu<T> {
    fn channel_put(&self, s: &ChannelSlice, part: &Vec<T>, whole: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let blk = s.c_part * s.hw;
        for n in 0..s.n {
            let dst = (n * s.c_whole + s.off) * s.hw;
            whole[dst..dst + blk].copy_from_slice(&part[n * blk..(n + 1) * blk]);
        }
        Ok(())
    }

    fn channel_take(&self, s: &ChannelSlice, dwhole: &Vec<T>, dpart: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        let blk = s.c_part * s.hw;
        for n in 0..s.n {
            let src = (n * s.c_whole + s.off) * s.hw;
            let (d, g) = (&mut dpart[n * blk..(n + 1) * blk], &dwhole[src..src + blk]);
            match write {
                Write::Set => d.copy_from_slice(g),
                Write::Add => d.iter_mut().zip(g).for_each(|(d, &g)| *d += g),
            }
        }
        Ok(())
    }

    fn shift_fwd(&self, n: usize, c: usize, h: usize, w: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (oh, ow) = (h - 1, w - 1);
        for p in 0..n * c {
            for i in 0..oh {
                let src = p * h * w + (i + 1) * w + 1;
                y[(p * oh + i) * ow..(p * oh + i + 1) * ow].copy_from_slice(&x[src..src + ow]);
            }
        }
        Ok(())
    }

    fn shift_bwd(&self, n: usize, c: usize, h: usize, w: usize, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (oh, ow) = (h - 1, w - 1);
        for p in 0..n * c {
            for i in 0..oh {
                let dst = p * h * w + (i + 1) * w + 1;
                for (d, &g) in dx[dst..dst + ow].iter_mut().zip(&dy[(p * oh + i) * ow..]) {
                    *d += g;
                }
            }
        }
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
