//! Max and average pooling (3×3 in the search spaces), stride 1 or 2, padding
//! never counted.

use crate::geom::PoolGeom;
use crate::par;
use crate::real::Real;

/// In-bounds input range of the window of output coordinate `o`.
#[inline]
fn window(o: usize, g: &PoolGeom, len: usize) -> std::ops::Range<usize> {
    let lo = (o * g.stride) as isize - g.pad as isize;
    let hi = (lo + g.k as isize).min(len as isize);
    (lo.max(0) as usize)..(hi.max(0) as usize)
}

/// Flat index (within the plane) of the first maximum of a window.
#[inline]
fn argmax<T: Real>(xp: &[T], g: &PoolGeom, oy: usize, ox: usize) -> usize {
    let mut best = usize::MAX;
    for iy in window(oy, g, g.h) {
        for ix in window(ox, g, g.w) {
            let i = iy * g.w + ix;
            if best == usize::MAX || xp[i] > xp[best] || xp[i].is_nan() {
                best = i;
            }
        }
    }
    best
}

pub fn max_pool_fwd<T: Real>(g: &PoolGeom, x: &[T], y: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    par::for_chunks(y, ohw, y.len() * g.k * g.k, |p, yp| {
        let xp = &x[p * hw..][..hw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                yp[oy * g.ow + ox] = xp[argmax(xp, g, oy, ox)];
            }
        }
    });
}

pub fn max_pool_bwd<T: Real>(g: &PoolGeom, x: &[T], dy: &[T], dx: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    par::for_chunks(dx, hw, dy.len() * g.k * g.k, |p, dxp| {
        let xp = &x[p * hw..][..hw];
        let dyp = &dy[p * ohw..][..ohw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                dxp[argmax(xp, g, oy, ox)] += dyp[oy * g.ow + ox];
            }
        }
    });
}

pub fn avg_pool_fwd<T: Real>(g: &PoolGeom, x: &[T], y: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    par::for_chunks(y, ohw, y.len() * g.k * g.k, |p, yp| {
        let xp = &x[p * hw..][..hw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (ry, rx) = (window(oy, g, g.h), window(ox, g, g.w));
                let cnt = ry.len() * rx.len();
                let mut s = T::ZERO;
                for iy in ry {
                    for ix in rx.clone() {
                        s += xp[iy * g.w + ix];
                    }
                }
                yp[oy * g.ow + ox] = s / T::from_usize(cnt);
            }
        }
    });
}

pub fn avg_pool_bwd<T: Real>(g: &PoolGeom, dy: &[T], dx: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    par::for_chunks(dx, hw, dy.len() * g.k * g.k, |p, dxp| {
        let dyp = &dy[p * ohw..][..ohw];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (ry, rx) = (window(oy, g, g.h), window(ox, g, g.w));
                let gv = dyp[oy * g.ow + ox] / T::from_usize(ry.len() * rx.len());
                for iy in ry {
                    for ix in rx.clone() {
                        dxp[iy * g.w + ix] += gv;
                    }
                }
            }
        }
    });
}
