//! Kernels that move data without arithmetic worth the name: channel
//! concatenation, the one-pixel shift of FactorizedReduce, global average pool.

use crate::geom::ChannelSlice;
use crate::real::Real;

/// `whole[:, off:off + c_part] = part`
pub fn channel_put<T: Real>(s: &ChannelSlice, part: &[T], whole: &mut [T]) {
    let blk = s.c_part * s.hw;
    for n in 0..s.n {
        let dst = (n * s.c_whole + s.off) * s.hw;
        whole[dst..dst + blk].copy_from_slice(&part[n * blk..(n + 1) * blk]);
    }
}

/// `dpart += dwhole[:, off:off + c_part]`
pub fn channel_take_add<T: Real>(s: &ChannelSlice, dwhole: &[T], dpart: &mut [T]) {
    let blk = s.c_part * s.hw;
    for n in 0..s.n {
        let src = (n * s.c_whole + s.off) * s.hw;
        for (d, &g) in dpart[n * blk..(n + 1) * blk].iter_mut().zip(&dwhole[src..src + blk]) {
            *d += g;
        }
    }
}

/// `y = x[:, :, 1:, 1:]`
pub fn shift_fwd<T: Real>(n: usize, c: usize, h: usize, w: usize, x: &[T], y: &mut [T]) {
    let (oh, ow) = (h - 1, w - 1);
    for p in 0..n * c {
        for i in 0..oh {
            let src = p * h * w + (i + 1) * w + 1;
            y[(p * oh + i) * ow..(p * oh + i + 1) * ow].copy_from_slice(&x[src..src + ow]);
        }
    }
}

/// `dx[:, :, 1:, 1:] += dy`
pub fn shift_bwd<T: Real>(n: usize, c: usize, h: usize, w: usize, dy: &[T], dx: &mut [T]) {
    let (oh, ow) = (h - 1, w - 1);
    for p in 0..n * c {
        for i in 0..oh {
            let dst = p * h * w + (i + 1) * w + 1;
            for (d, &g) in dx[dst..dst + ow].iter_mut().zip(&dy[(p * oh + i) * ow..]) {
                *d += g;
            }
        }
    }
}

/// `y[p] = mean(x[p, :])` for each of the `nc` planes of `hw` pixels.
pub fn gap_fwd<T: Real>(nc: usize, hw: usize, x: &[T], y: &mut [T]) {
    let inv = T::ONE / T::from_usize(hw);
    for p in 0..nc {
        y[p] = x[p * hw..(p + 1) * hw].iter().fold(T::ZERO, |s, &v| s + v) * inv;
    }
}

/// `dx[p, :] += dy[p] / hw`
pub fn gap_bwd<T: Real>(nc: usize, hw: usize, dy: &[T], dx: &mut [T]) {
    let inv = T::ONE / T::from_usize(hw);
    for p in 0..nc {
        let g = dy[p] * inv;
        dx[p * hw..(p + 1) * hw].iter_mut().for_each(|d| *d += g);
    }
}
