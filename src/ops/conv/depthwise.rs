//! Depthwise k×k convolution, groups = cin = cout: the first half of every
//! sep_conv and dil_conv (stride 1 or 2, dilation 1 or 2, 3×3 or 5×5).
//!
//! Each `(n, c)` plane is copied once into a zero-padded scratch plane with
//! the input ReLU applied, its columns split by stride phase: padded column
//! `j` lives in phase `j % s` at index `j / s`. The taps of consecutive
//! outputs, columns `ox·s + kw·d`, are then consecutive elements of one
//! phase, so every tap of an output row is one contiguous multiply-add run
//! with no bounds checks; the borders are the zeros of the padding.

use crate::geom::ConvGeom;
use crate::par;
use crate::real::Real;

use super::act;

/// A padded, phase-split plane (see the module comment). The border stays
/// zero: loads only write the interior, which is the same for every plane.
struct Padded<T> {
    buf: Vec<T>,
    /// Padded rows, `h + 2·pad`.
    rows: usize,
    /// Elements per row of one phase, `⌈(w + 2·pad) / s⌉`.
    cols: usize,
    s: usize,
}

impl<T: Real> Padded<T> {
    fn new(g: &ConvGeom) -> Self {
        let (rows, s) = (g.h + 2 * g.pad, g.stride);
        let cols = (g.w + 2 * g.pad).div_ceil(s);
        Padded { buf: vec![T::ZERO; s * rows * cols], rows, cols, s }
    }

    /// Start of the run holding padded row `r`, padded columns `c0, c0 + s, …`.
    #[inline]
    fn at(&self, r: usize, c0: usize) -> usize {
        ((c0 % self.s) * self.rows + r) * self.cols + c0 / self.s
    }

    /// Copies `relu?(plane)` into the interior.
    fn load(&mut self, g: &ConvGeom, xp: &[T]) {
        for iy in 0..g.h {
            let src = &xp[iy * g.w..][..g.w];
            if self.s == 1 {
                let i = self.at(iy + g.pad, g.pad);
                for (d, &v) in self.buf[i..i + g.w].iter_mut().zip(src) {
                    *d = act(v, g.relu_in);
                }
            } else {
                for (ix, &v) in src.iter().enumerate() {
                    let i = self.at(iy + g.pad, ix + g.pad);
                    self.buf[i] = act(v, g.relu_in);
                }
            }
        }
    }
}

fn check(g: &ConvGeom) {
    debug_assert!(g.groups == g.cin && g.cout == g.cin, "depthwise path needs groups = cin = cout");
}

/// `y = dwconv(relu?(x), w)`, x `(n, c, h, w)`, w `(c, 1, k, k)`, y `(n, c, oh, ow)`;
/// parallel over planes.
pub fn fwd<T: Real>(g: &ConvGeom, x: &[T], w: &[T], y: &mut [T]) {
    check(g);
    let (hw, ohw, kk, s, d) = (g.h * g.w, g.oh * g.ow, g.k * g.k, g.stride, g.dil);
    par::for_chunks_init(
        y,
        ohw,
        g.macs(),
        || Padded::new(g),
        |pad, p, out| {
            let c = p % g.cin;
            pad.load(g, &x[p * hw..][..hw]);
            let wk = &w[c * kk..][..kk];
            out.fill(T::ZERO);
            for (oy, orow) in out.chunks_exact_mut(g.ow).enumerate() {
                for kh in 0..g.k {
                    for kw in 0..g.k {
                        let wv = wk[kh * g.k + kw];
                        let i = pad.at(oy * s + kh * d, kw * d);
                        for (o, &v) in orow.iter_mut().zip(&pad.buf[i..i + g.ow]) {
                            *o += wv * v;
                        }
                    }
                }
            }
        },
    );
}

/// `dx += dwconvᵀ(dy, w) · [x > 0 if relu_in]`; parallel over planes. The
/// transposed conv scatters into a padded scratch plane, whose interior is
/// then added to dx.
pub fn bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T]) {
    check(g);
    let (hw, ohw, kk, s, d) = (g.h * g.w, g.oh * g.ow, g.k * g.k, g.stride, g.dil);
    par::for_chunks_init(
        dx,
        hw,
        g.macs(),
        || Padded::new(g),
        |acc, p, dxp| {
            let c = p % g.cin;
            let wk = &w[c * kk..][..kk];
            acc.buf.fill(T::ZERO);
            for (oy, drow) in dy[p * ohw..][..ohw].chunks_exact(g.ow).enumerate() {
                for kh in 0..g.k {
                    for kw in 0..g.k {
                        let wv = wk[kh * g.k + kw];
                        let i = acc.at(oy * s + kh * d, kw * d);
                        for (a, &v) in acc.buf[i..i + g.ow].iter_mut().zip(drow) {
                            *a += wv * v;
                        }
                    }
                }
            }
            let xp = &x[p * hw..][..hw];
            for iy in 0..g.h {
                let (xr, dr) = (&xp[iy * g.w..][..g.w], &mut dxp[iy * g.w..][..g.w]);
                if s == 1 {
                    let i = acc.at(iy + g.pad, g.pad);
                    for ((dv, &a), &xv) in dr.iter_mut().zip(&acc.buf[i..i + g.w]).zip(xr) {
                        if !g.relu_in || xv > T::ZERO {
                            *dv += a;
                        }
                    }
                } else {
                    for (ix, (dv, &xv)) in dr.iter_mut().zip(xr).enumerate() {
                        if !g.relu_in || xv > T::ZERO {
                            *dv += acc.buf[acc.at(iy + g.pad, ix + g.pad)];
                        }
                    }
                }
            }
        },
    );
}

/// Lanes of the partial sums of a dot product: independent accumulators the
/// compiler keeps in one vector register (a single sum would serialise every
/// add on the previous one).
const LANES: usize = 8;

/// `lanes += a ⊙ b` lane-wise over whole blocks of `LANES`, the tail into lane 0.
#[inline]
fn dot_lanes<T: Real>(a: &[T], b: &[T], lanes: &mut [T; LANES]) {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.chunks_exact(LANES);
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..LANES {
            lanes[l] += x[l] * y[l];
        }
    }
    for (&x, &y) in ac.remainder().iter().zip(bc.remainder()) {
        lanes[0] += x * y;
    }
}

/// `dw += Σ_n dy ⋆ relu?(x)`, dw `(c, 1, k, k)`; parallel over channels.
pub fn bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    check(g);
    let (hw, ohw, kk, s, d) = (g.h * g.w, g.oh * g.ow, g.k * g.k, g.stride, g.dil);
    par::for_chunks_init(
        dw,
        kk,
        g.macs(),
        || (Padded::new(g), vec![[T::ZERO; LANES]; kk]),
        |(pad, lanes), c, dwc| {
            lanes.fill([T::ZERO; LANES]);
            for n in 0..g.n {
                let p = n * g.cin + c;
                pad.load(g, &x[p * hw..][..hw]);
                for (oy, drow) in dy[p * ohw..][..ohw].chunks_exact(g.ow).enumerate() {
                    for kh in 0..g.k {
                        for kw in 0..g.k {
                            let i = pad.at(oy * s + kh * d, kw * d);
                            dot_lanes(drow, &pad.buf[i..i + g.ow], &mut lanes[kh * g.k + kw]);
                        }
                    }
                }
            }
            for (dv, l) in dwc.iter_mut().zip(lanes.iter()) {
                *dv += l.iter().fold(T::ZERO, |a, &b| a + b);
            }
        },
    );
}
