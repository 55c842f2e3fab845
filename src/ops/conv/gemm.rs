//! Convolutions with groups = 1 as matrix products: the 1×1 convs (the
//! second half of every sep_conv / dil_conv, ReLUConvBN, FactorizedReduce)
//! and the dense 3×3 stem. Per image, with `col = im2col(relu?(x))` of shape
//! `(cin·k·k, oh·ow)` (x itself for a plain 1×1 conv):
//! - forward:         `y = w · col`                 `(cout, oh·ow)`
//! - backward data:   `dcol = wᵀ · dy`, then col2im `(cin·k·k, oh·ow)`
//! - backward filter: `dw += dy · colᵀ`             `(cout, cin·k·k)`
//!
//! All three run on one register-blocked kernel, [`gemm`].

use crate::geom::ConvGeom;
use crate::par;
use crate::real::Real;

use super::act;
use crate::ops::simd;

/// Rows of the output block a [`gemm`] step keeps in registers.
const MR: usize = 4;
/// Columns of that block. `MR × NR` accumulators plus one row of b fit the
/// 16 vector registers of x86-64: with SSE (4 lanes) 8 accumulator registers
/// for NR = 8; with AVX2 (8 lanes) NR = 16 gives 8 as well, enough
/// independent chains to hide the FMA latency.
const NR: usize = 8;
const NR_WIDE: usize = 16;

/// The left factor of a product, packed once into panels of `MR` rows stored
/// column by column (`panel[p·MR + r] = a[i0 + r][p]`), zero-padded to a
/// whole panel, so that the inner loop reads it contiguously.
pub struct Packed<T> {
    buf: Vec<T>,
    m: usize,
    k: usize,
}

impl<T: Real> Default for Packed<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> Packed<T> {
    pub fn new() -> Self {
        Packed { buf: Vec::new(), m: 0, k: 0 }
    }

    /// Packs `a` (m × k, row stride lda), or `aᵀ` when `trans` (a is then k × m).
    pub fn pack(&mut self, m: usize, k: usize, a: &[T], lda: usize, trans: bool) {
        let panels = m.div_ceil(MR);
        self.buf.clear();
        self.buf.resize(panels * MR * k, T::ZERO);
        (self.m, self.k) = (m, k);
        for (pi, panel) in self.buf.chunks_exact_mut(MR * k).enumerate() {
            for r in 0..MR.min(m - pi * MR) {
                let i = pi * MR + r;
                for p in 0..k {
                    panel[p * MR + r] = if trans { a[p * lda + i] } else { a[i * lda + p] };
                }
            }
        }
    }
}

simd::multiversion! {
    /// `c += a · b`: a packed (m × k), b (k × n, row stride ldb), c (m × n, row
    /// stride ldc).
    pub fn gemm<T: Real>(a: &Packed<T>, n: usize, b: &[T], ldb: usize, c: &mut [T], ldc: usize) => FMA:
        if FMA { gemm_impl::<T, true, NR_WIDE>(a, n, b, ldb, c, ldc) } else { gemm_impl::<T, false, NR>(a, n, b, ldb, c, ldc) }
}

/// [`gemm`]. Column strips of b outermost, so a strip (k × NR) stays in L1
/// while every panel of a passes over it.
#[inline(always)]
fn gemm_impl<T: Real, const F: bool, const NR: usize>(
    a: &Packed<T>,
    n: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
) {
    let (m, k) = (a.m, a.k);
    let nf = n - n % NR;
    for j0 in (0..nf).step_by(NR) {
        for (pi, panel) in a.buf.chunks_exact(MR * k).enumerate() {
            let mut acc = [[T::ZERO; NR]; MR];
            for (p, ap) in panel.chunks_exact(MR).enumerate() {
                let bp: &[T; NR] = b[p * ldb + j0..][..NR].try_into().expect("NR elements");
                for r in 0..MR {
                    let av = ap[r];
                    for j in 0..NR {
                        acc[r][j] = simd::madd::<T, F>(av, bp[j], acc[r][j]);
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate().take(m - pi * MR) {
                let cr = &mut c[(pi * MR + r) * ldc + j0..][..NR];
                for (cv, &v) in cr.iter_mut().zip(accr) {
                    *cv += v;
                }
            }
        }
    }
    if nf < n {
        for (pi, panel) in a.buf.chunks_exact(MR * k).enumerate() {
            for j in nf..n {
                let mut acc = [T::ZERO; MR];
                for (p, ap) in panel.chunks_exact(MR).enumerate() {
                    let bv = b[p * ldb + j];
                    for r in 0..MR {
                        acc[r] += ap[r] * bv;
                    }
                }
                for (r, &v) in acc.iter().enumerate().take(m - pi * MR) {
                    c[(pi * MR + r) * ldc + j] += v;
                }
            }
        }
    }
}

/// True when `col` would equal x: a 1×1, stride-1, unpadded conv without the ReLU.
fn is_plain(g: &ConvGeom) -> bool {
    g.k == 1 && g.stride == 1 && g.pad == 0 && !g.relu_in
}

/// Input coordinate of output coordinate `o` and tap `t`, if in bounds.
#[inline]
fn src(o: usize, t: usize, g: &ConvGeom, len: usize) -> Option<usize> {
    let i = (o * g.stride + t * g.dil) as isize - g.pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// `col = im2col(relu?(xn))`, col `(cin·k·k, oh·ow)`, xn `(cin, h, w)`.
fn im2col<T: Real>(g: &ConvGeom, xn: &[T], col: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    for ci in 0..g.cin {
        let xp = &xn[ci * hw..][..hw];
        for kh in 0..g.k {
            for kw in 0..g.k {
                let row = &mut col[((ci * g.k + kh) * g.k + kw) * ohw..][..ohw];
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    let Some(iy) = src(oy, kh, g, g.h) else {
                        out.fill(T::ZERO);
                        continue;
                    };
                    let xr = &xp[iy * g.w..][..g.w];
                    for (ox, o) in out.iter_mut().enumerate() {
                        *o = src(ox, kw, g, g.w).map_or(T::ZERO, |ix| act(xr[ix], g.relu_in));
                    }
                }
            }
        }
    }
}

/// `dxn += col2im(dcol) · [x > 0 if relu_in]`.
fn col2im_add<T: Real>(g: &ConvGeom, dcol: &[T], xn: &[T], dxn: &mut [T]) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    for ci in 0..g.cin {
        let xp = &xn[ci * hw..][..hw];
        let dp = &mut dxn[ci * hw..][..hw];
        for kh in 0..g.k {
            for kw in 0..g.k {
                let row = &dcol[((ci * g.k + kh) * g.k + kw) * ohw..][..ohw];
                for (oy, dr) in row.chunks_exact(g.ow).enumerate() {
                    let Some(iy) = src(oy, kh, g, g.h) else { continue };
                    for (ox, &v) in dr.iter().enumerate() {
                        if let Some(ix) = src(ox, kw, g, g.w) {
                            let i = iy * g.w + ix;
                            if !g.relu_in || xp[i] > T::ZERO {
                                dp[i] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn check(g: &ConvGeom) {
    debug_assert_eq!(g.groups, 1, "gemm path needs groups = 1");
}

/// `y = w · im2col(relu?(x))` per image, w `(cout, cin, k, k)`; parallel over images.
pub fn fwd<T: Real>(g: &ConvGeom, x: &[T], w: &[T], y: &mut [T]) {
    check(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, g.cin * g.k * g.k);
    let mut a = Packed::new();
    a.pack(g.cout, kdim, w, kdim, false);
    let plain = is_plain(g);
    par::for_chunks_init(
        y,
        g.cout * ohw,
        g.macs(),
        || if plain { Vec::new() } else { vec![T::ZERO; kdim * ohw] },
        |col, n, yn| {
            let xn = &x[n * chw..][..chw];
            let b = if plain {
                xn
            } else {
                im2col(g, xn, col);
                &col[..]
            };
            yn.fill(T::ZERO);
            gemm(&a, ohw, b, ohw, yn, ohw);
        },
    );
}

/// `dx += col2im(wᵀ · dy) · [x > 0 if relu_in]` per image; parallel over images.
pub fn bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T]) {
    check(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, g.cin * g.k * g.k);
    let mut a = Packed::new();
    a.pack(kdim, g.cout, w, kdim, true);
    let plain = is_plain(g);
    par::for_chunks_init(
        dx,
        chw,
        g.macs(),
        || if plain { Vec::new() } else { vec![T::ZERO; kdim * ohw] },
        |dcol, n, dxn| {
            let dyn_ = &dy[n * g.cout * ohw..][..g.cout * ohw];
            if plain {
                gemm(&a, ohw, dyn_, ohw, dxn, ohw);
            } else {
                dcol.fill(T::ZERO);
                gemm(&a, ohw, dyn_, ohw, dcol, ohw);
                col2im_add(g, dcol, &x[n * chw..][..chw], dxn);
            }
        },
    );
}

/// `dw += Σ_n dy_n · im2col(relu?(x_n))ᵀ`; images split over threads, each
/// summing into its own dw, added up at the end.
pub fn bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    check(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, g.cin * g.k * g.k);
    let parts = par::threads_for(g.n, g.macs());
    let per = g.n.div_ceil(parts);
    let partial = |t: usize| -> Vec<T> {
        let mut acc = vec![T::ZERO; g.cout * kdim];
        let mut col = vec![T::ZERO; kdim * ohw];
        // (oh·ow, cin·k·k): the right factor of dy · colᵀ, row-major.
        let mut colt = vec![T::ZERO; ohw * kdim];
        let mut a = Packed::new();
        for n in t * per..((t + 1) * per).min(g.n) {
            let xn = &x[n * chw..][..chw];
            let src: &[T] = if is_plain(g) {
                xn
            } else {
                im2col(g, xn, &mut col);
                &col
            };
            for (r, row) in src.chunks_exact(ohw).enumerate() {
                for (q, &v) in row.iter().enumerate() {
                    colt[q * kdim + r] = v;
                }
            }
            a.pack(g.cout, ohw, &dy[n * g.cout * ohw..][..g.cout * ohw], ohw, false);
            gemm(&a, kdim, &colt, kdim, &mut acc, kdim);
        }
        acc
    };
    if parts <= 1 {
        for (d, v) in dw.iter_mut().zip(partial(0)) {
            *d += v;
        }
        return;
    }
    for part in par::map(parts, g.macs(), partial) {
        for (d, v) in dw.iter_mut().zip(part) {
            *d += v;
        }
    }
}
