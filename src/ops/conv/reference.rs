//! The straightforward convolution: any stride, padding, dilation and
//! groups, one bounds check per tap. It is the specification the fast paths
//! in `depthwise` and `gemm` are tested against (tests/conv_paths.rs); no
//! network runs it.

use crate::par;
use crate::real::Real;

use super::{ConvGeom, act, write_through_relu};
use crate::device::Write;

/// Input coordinate of output coordinate `o` and tap `t`, if in bounds.
#[inline]
fn src(o: usize, t: usize, g: &ConvGeom, len: usize) -> Option<usize> {
    let i = (o * g.stride + t * g.dil) as isize - g.pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// `y = conv(relu?(x), w)`; parallel over output planes `(n, co)`.
pub fn conv2d_fwd<T: Real>(g: &ConvGeom, x: &[T], w: &[T], y: &mut [T]) {
    let (cig, cog) = (g.cin / g.groups, g.cout / g.groups);
    let (ohw, hw, kk) = (g.oh * g.ow, g.h * g.w, g.k * g.k);
    par::for_chunks(y, ohw, g.macs(), |p, out| {
        let (n, co) = (p / g.cout, p % g.cout);
        let grp = co / cog;
        out.fill(T::ZERO);
        for c in 0..cig {
            let ci = grp * cig + c;
            let xp = &x[(n * g.cin + ci) * hw..][..hw];
            let wk = &w[(co * cig + c) * kk..][..kk];
            for kh in 0..g.k {
                for kw in 0..g.k {
                    let wv = wk[kh * g.k + kw];
                    for oy in 0..g.oh {
                        let Some(iy) = src(oy, kh, g, g.h) else {
                            continue;
                        };
                        let row = &mut out[oy * g.ow..(oy + 1) * g.ow];
                        for (ox, o) in row.iter_mut().enumerate() {
                            if let Some(ix) = src(ox, kw, g, g.w) {
                                *o += wv * act(xp[iy * g.w + ix], g.relu_in);
                            }
                        }
                    }
                }
            }
        }
    });
}

/// `dx += convᵀ(dy, w) · [x > 0 if relu_in]`; parallel over input planes `(n, ci)`.
pub fn conv2d_bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T], write: Write) {
    let (cig, cog) = (g.cin / g.groups, g.cout / g.groups);
    let (ohw, hw, kk) = (g.oh * g.ow, g.h * g.w, g.k * g.k);
    par::for_chunks(dx, hw, g.macs(), |p, dxp| {
        let (n, ci) = (p / g.cin, p % g.cin);
        let (grp, c) = (ci / cig, ci % cig);
        let mut acc = vec![T::ZERO; hw];
        for co in grp * cog..(grp + 1) * cog {
            let dyp = &dy[(n * g.cout + co) * ohw..][..ohw];
            let wk = &w[(co * cig + c) * kk..][..kk];
            for kh in 0..g.k {
                for kw in 0..g.k {
                    let wv = wk[kh * g.k + kw];
                    for oy in 0..g.oh {
                        let Some(iy) = src(oy, kh, g, g.h) else {
                            continue;
                        };
                        for ox in 0..g.ow {
                            if let Some(ix) = src(ox, kw, g, g.w) {
                                acc[iy * g.w + ix] += wv * dyp[oy * g.ow + ox];
                            }
                        }
                    }
                }
            }
        }
        write_through_relu(dxp, &acc, &x[p * hw..][..hw], g.relu_in, write);
    });
}

/// `dw += Σ_n dy ⋆ relu?(x)`; parallel over output channels.
pub fn conv2d_bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    let (cig, cog) = (g.cin / g.groups, g.cout / g.groups);
    let (ohw, hw, kk) = (g.oh * g.ow, g.h * g.w, g.k * g.k);
    par::for_chunks(dw, cig * kk, g.macs(), |co, dwc| {
        let grp = co / cog;
        for c in 0..cig {
            let ci = grp * cig + c;
            for kh in 0..g.k {
                for kw in 0..g.k {
                    let mut acc = T::ZERO;
                    for n in 0..g.n {
                        let xp = &x[(n * g.cin + ci) * hw..][..hw];
                        let dyp = &dy[(n * g.cout + co) * ohw..][..ohw];
                        for oy in 0..g.oh {
                            let Some(iy) = src(oy, kh, g, g.h) else {
                                continue;
                            };
                            for ox in 0..g.ow {
                                if let Some(ix) = src(ox, kw, g, g.w) {
                                    acc += dyp[oy * g.ow + ox] * act(xp[iy * g.w + ix], g.relu_in);
                                }
                            }
                        }
                    }
                    dwc[c * kk + kh * g.k + kw] += acc;
                }
            }
        }
    });
}
