//! Pooling on the host.
//!
//! The forward passes and the average-pool backward are separable: a pass
//! along each row over the window columns into an `(h, ow)` scratch plane,
//! then a pass down the columns over the window rows, which works on whole
//! output rows at once. Max-pool backward takes the window maxima from the
//! forward's output and routes each gradient to the first element equal to
//! its maximum.

use std::ops::Range;

use super::{PoolGeom, PoolOps};
use crate::device::counts;
use crate::device::{Cpu, Write};
use crate::error::Result;
use crate::par;
use crate::real::Real;

/// In-bounds input range of the window of output coordinate `o`.
#[inline]
fn window(o: usize, g: &PoolGeom, len: usize) -> Range<usize> {
    let lo = (o * g.stride) as isize - g.pad as isize;
    let hi = (lo + g.k as isize).min(len as isize);
    (lo.max(0) as usize)..(hi.max(0) as usize)
}

/// Per-thread scratch: the window ranges of every output row and column and
/// an `(h, ow)` plane for the separable passes.
struct Scratch<T> {
    rows: Vec<Range<usize>>,
    cols: Vec<Range<usize>>,
    tmp: Vec<T>,
}

impl<T: Real> Scratch<T> {
    fn new(g: &PoolGeom) -> Self {
        Scratch {
            rows: (0..g.oh).map(|o| window(o, g, g.h)).collect(),
            cols: (0..g.ow).map(|o| window(o, g, g.w)).collect(),
            tmp: vec![T::ZERO; g.h * g.ow],
        }
    }
}

/// The larger of two values, NaN winning: the value the first-maximum rule
/// of [`argmax`] selects.
#[inline(always)]
fn max_nan<T: Real>(a: T, b: T) -> T {
    if b > a || b.is_nan() { b } else { a }
}

/// Flat index (within the plane) of the first maximum of a window (the last
/// NaN if there is one).
#[inline]
fn argmax<T: Real>(xp: &[T], w: usize, ry: &Range<usize>, rx: &Range<usize>) -> usize {
    let mut best = ry.start * w + rx.start;
    for iy in ry.clone() {
        for i in iy * w + rx.start..iy * w + rx.end {
            if xp[i] > xp[best] || xp[i].is_nan() {
                best = i;
            }
        }
    }
    best
}

/// Separable forward: `tmp[iy][ox] = row(x[iy][cols[ox]])`, then
/// `y[oy][ox] = col(tmp[rows[oy]][ox])`; `fold` combines two values, `fin`
/// finishes an output from its window size.
#[inline(always)]
fn separable<T: Real>(
    g: &PoolGeom,
    s: &mut Scratch<T>,
    xp: &[T],
    yp: &mut [T],
    fold: impl Fn(T, T) -> T,
    fin: impl Fn(T, usize) -> T,
) {
    for (xr, tr) in xp.chunks_exact(g.w).zip(s.tmp.chunks_exact_mut(g.ow)) {
        for (t, r) in tr.iter_mut().zip(&s.cols) {
            let wr = &xr[r.clone()];
            *t = wr[1..].iter().fold(wr[0], |a, &b| fold(a, b));
        }
    }
    for (yr, ry) in yp.chunks_exact_mut(g.ow).zip(&s.rows) {
        yr.copy_from_slice(&s.tmp[ry.start * g.ow..][..g.ow]);
        for iy in ry.start + 1..ry.end {
            for (y, &t) in yr.iter_mut().zip(&s.tmp[iy * g.ow..][..g.ow]) {
                *y = fold(*y, t);
            }
        }
        let n = ry.len();
        for (y, r) in yr.iter_mut().zip(&s.cols) {
            *y = fin(*y, n * r.len());
        }
    }
}

/// Flat index of the first element of a window equal to `m`, its maximum.
#[inline]
fn first_equal<T: Real>(xp: &[T], w: usize, ry: &Range<usize>, rx: &Range<usize>, m: T) -> usize {
    for iy in ry.clone() {
        let lo = iy * w + rx.start;
        if let Some(j) = xp[lo..iy * w + rx.end].iter().position(|&v| v == m) {
            return lo + j;
        }
    }
    unreachable!("the maximum of a window is one of its elements")
}

impl<T: Real> PoolOps for Cpu<T> {
    fn max_pool_fwd(&self, g: &PoolGeom, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let y = y.as_mut_slice();
        let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
        par::for_chunks_init(
            y,
            ohw,
            y.len() * g.k * g.k,
            || Scratch::new(g),
            |s, p, yp| separable(g, s, &x[p * hw..][..hw], yp, max_nan, |v, _| v),
        );
        Ok(())
    }

    fn max_pool_bwd(
        &self,
        g: &PoolGeom,
        x: &Vec<T>,
        y: &Vec<T>,
        dy: &Vec<T>,
        dx: &mut Vec<T>,
        write: Write,
    ) -> Result<()> {
        counts::call(1);
        // The window maxima are the forward's output; each window is scanned
        // only up to the first element equal to its maximum (a window holding
        // a NaN takes the full [`argmax`], which picks its last NaN).
        assert_eq!(y.len(), dy.len(), "max_pool_bwd: y and dy differ in length");
        let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
        par::for_chunks_init(
            dx,
            hw,
            dy.len() * g.k * g.k,
            || Scratch::<T>::new(g),
            |s, p, dxp| {
                let xp = &x[p * hw..][..hw];
                if write == Write::Set {
                    dxp.fill(T::ZERO);
                }
                let ymax = &y[p * ohw..][..ohw];
                let rows = dy[p * ohw..][..ohw].chunks_exact(g.ow).zip(ymax.chunks_exact(g.ow)).zip(&s.rows);
                for ((dyr, mr), ry) in rows {
                    for ((&d, &m), rx) in dyr.iter().zip(mr).zip(&s.cols) {
                        let i = if m.is_nan() { argmax(xp, g.w, ry, rx) } else { first_equal(xp, g.w, ry, rx, m) };
                        dxp[i] += d;
                    }
                }
            },
        );
        Ok(())
    }

    fn avg_pool_fwd(&self, g: &PoolGeom, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let y = y.as_mut_slice();
        let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
        par::for_chunks_init(
            y,
            ohw,
            y.len() * g.k * g.k,
            || Scratch::new(g),
            |s, p, yp| separable(g, s, &x[p * hw..][..hw], yp, |a, b| a + b, |v, n| v / T::from_usize(n)),
        );
        Ok(())
    }

    fn avg_pool_bwd(&self, g: &PoolGeom, dy: &Vec<T>, dx: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        // Down the window rows into the `(h, ow)` scratch plane, then along the
        // window columns.
        let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
        par::for_chunks_init(
            dx,
            hw,
            dy.len() * g.k * g.k,
            || Scratch::new(g),
            |s, p, dxp| {
                if write == Write::Set {
                    dxp.fill(T::ZERO);
                }
                s.tmp.fill(T::ZERO);
                for (dyr, ry) in dy[p * ohw..][..ohw].chunks_exact(g.ow).zip(&s.rows) {
                    let n = ry.len();
                    for iy in ry.clone() {
                        for ((t, &d), rx) in s.tmp[iy * g.ow..][..g.ow].iter_mut().zip(dyr).zip(&s.cols) {
                            *t += d / T::from_usize(n * rx.len());
                        }
                    }
                }
                for (dr, tr) in dxp.chunks_exact_mut(g.w).zip(s.tmp.chunks_exact(g.ow)) {
                    for (&t, rx) in tr.iter().zip(&s.cols) {
                        for d in &mut dr[rx.clone()] {
                            *d += t;
                        }
                    }
                }
            },
        );
        Ok(())
    }
}
