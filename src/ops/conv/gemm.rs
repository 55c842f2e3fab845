//! Convolutions that are not depthwise as matrix products: the 1×1 convs
//! (the second half of every sep_conv / dil_conv, ReLUConvBN,
//! FactorizedReduce) and the dense 3×3 stem, with one group or several
//! (RARTS's two networks side by side: each group is its own product on its
//! own channels). Per image and group, with `col = im2col(relu?(x))` of
//! shape `(cin·k·k, oh·ow)` (x itself for a plain 1×1 conv), cin and cout
//! counted per group:
//! - forward:         `y = w · col`                 `(cout, oh·ow)`
//! - backward data:   `dcol = wᵀ · dy`, then col2im `(cin·k·k, oh·ow)`
//! - backward filter: `dw += dy · colᵀ`             `(cout, cin·k·k)`
//!
//! The first two run on one register-blocked kernel, [`gemm`]; the third on
//! [`gemm_nt`], which reads both factors along their rows and so needs no
//! transposed copy of `col`.

use crate::par;
use crate::real::Real;

use super::{ConvGeom, act, write_through_relu};
use crate::device::Write;
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
    /// `c += a · b` (`c = a · b` when `!add`): a packed (m × k), b (k × n,
    /// row stride ldb), c (m × n, row stride ldc).
    pub fn gemm<T: Real>(a: &Packed<T>, n: usize, b: &[T], ldb: usize, c: &mut [T], ldc: usize, add: bool) => FMA:
        if FMA { gemm_impl::<T, true, NR_WIDE>(a, n, b, ldb, c, ldc, add) } else { gemm_impl::<T, false, NR>(a, n, b, ldb, c, ldc, add) }
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
    add: bool,
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
                if add {
                    for (cv, &v) in cr.iter_mut().zip(accr) {
                        *cv += v;
                    }
                } else {
                    cr.copy_from_slice(accr);
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
                    let cv = &mut c[(pi * MR + r) * ldc + j];
                    *cv = if add { *cv + v } else { v };
                }
            }
        }
    }
}

/// `c += a · bᵀ`: a (m × k, row stride lda), b (n × k, row stride ldb),
/// c (m × n, row stride ldc): every entry a dot product of two rows.
///
/// In f32 on a CPU with AVX2 and FMA, the `nt_avx2` kernel (the compiler
/// does not keep this kernel's accumulators in registers on its own); plain
/// dot products otherwise.
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
) {
    assert!(m == 0 || a.len() >= (m - 1) * lda + k, "gemm_nt: a too short");
    assert!(n == 0 || b.len() >= (n - 1) * ldb + k, "gemm_nt: b too short");
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n, "gemm_nt: c too short");
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && simd::avx2() {
        // SAFETY: T is f32 (same type, so same layout); the CPU has AVX2 and
        // FMA; the asserts above bound every index the kernel reads.
        unsafe {
            let f = |v: &[T]| std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len());
            let cf = std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<f32>(), c.len());
            return nt_avx2::gemm_nt(m, n, k, f(a), lda, f(b), ldb, cf, ldc);
        }
    }
    for i in 0..m {
        for j in 0..n {
            let (ar, br) = (&a[i * lda..][..k], &b[j * ldb..][..k]);
            c[i * ldc + j] += ar.iter().zip(br).fold(T::ZERO, |s, (&x, &y)| s + x * y);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod nt_avx2 {
    use std::arch::x86_64::*;

    /// Rows of a and of b one block combines: 4 × 2 accumulators of 8 lanes
    /// plus 4 rows of a loaded fit the 16 vector registers.
    const MR: usize = 4;
    const NR: usize = 2;

    /// Sum of the 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// [`super::gemm_nt`] in f32: blocks of 4 rows of a by 2 rows of b, 8
    /// partial sums along k per pair, summed across at the end; the last
    /// `k % 8` columns loaded under a mask; single dot products at ragged
    /// edges.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; a, b, c hold every row the shapes name.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_nt(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        // SAFETY: the caller's contract (see above) bounds every pointer offset.
        unsafe {
            let kv = k - k % 8;
            // The last k % 8 columns: loaded under a mask, the other lanes read as 0.
            let tail =
                _mm256_cmpgt_epi32(_mm256_set1_epi32((k - kv) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            let (ap, bp) = (a.as_ptr(), b.as_ptr());
            let dot = |i: usize, j: usize| -> f32 {
                let (ar, br) = (ap.add(i * lda), bp.add(j * ldb));
                let mut acc = _mm256_setzero_ps();
                for p in (0..kv).step_by(8) {
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(ar.add(p)), _mm256_loadu_ps(br.add(p)), acc);
                }
                if kv < k {
                    acc = _mm256_fmadd_ps(
                        _mm256_maskload_ps(ar.add(kv), tail),
                        _mm256_maskload_ps(br.add(kv), tail),
                        acc,
                    );
                }
                hsum(acc)
            };
            let (mb, nb) = (m - m % MR, n - n % NR);
            for i0 in (0..mb).step_by(MR) {
                let ar: [*const f32; MR] = std::array::from_fn(|r| ap.add((i0 + r) * lda));
                for j0 in (0..nb).step_by(NR) {
                    let br: [*const f32; NR] = std::array::from_fn(|j| bp.add((j0 + j) * ldb));
                    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
                    let mut block = |p: usize, load: &dyn Fn(*const f32) -> __m256| {
                        let (b0, b1) = (load(br[0].add(p)), load(br[1].add(p)));
                        for r in 0..MR {
                            let av = load(ar[r].add(p));
                            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
                        }
                    };
                    for p in (0..kv).step_by(8) {
                        block(p, &|q| _mm256_loadu_ps(q));
                    }
                    if kv < k {
                        block(kv, &|q| _mm256_maskload_ps(q, tail));
                    }
                    for r in 0..MR {
                        for j in 0..NR {
                            c[(i0 + r) * ldc + j0 + j] += hsum(acc[r][j]);
                        }
                    }
                }
                for r in 0..MR {
                    for j in nb..n {
                        c[(i0 + r) * ldc + j] += dot(i0 + r, j);
                    }
                }
            }
            for i in mb..m {
                for j in 0..n {
                    c[i * ldc + j] += dot(i, j);
                }
            }
        }
    }
}

/// True when `col` would equal x: a 1×1, stride-1, unpadded conv without the ReLU.
fn is_plain(g: &ConvGeom) -> bool {
    g.k == 1 && g.stride == 1 && g.pad == 0 && !g.relu_in
}

/// True for a 1×1, stride-1, unpadded conv: `col` is x, through the ReLU
/// if there is one.
fn is_pointwise(g: &ConvGeom) -> bool {
    g.k == 1 && g.stride == 1 && g.pad == 0
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
    if is_pointwise(g) {
        for (o, &v) in col[..g.cin * hw].iter_mut().zip(&xn[..g.cin * hw]) {
            *o = act(v, g.relu_in);
        }
        return;
    }
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

/// `dxn (=|+=) col2im(dcol) · [x > 0 if relu_in]`.
fn col2im<T: Real>(g: &ConvGeom, dcol: &[T], xn: &[T], dxn: &mut [T], write: Write) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    if is_pointwise(g) {
        let n = g.cin * hw;
        write_through_relu(&mut dxn[..n], &dcol[..n], &xn[..n], g.relu_in, write);
        return;
    }
    if write == Write::Set {
        // Strided or padded windows may leave elements that no output reads.
        dxn.fill(T::ZERO);
    }
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

/// One group's geometry: its input and output channels, groups = 1.
pub(crate) fn group_geom(g: &ConvGeom) -> ConvGeom {
    ConvGeom { cin: g.cin / g.groups, cout: g.cout / g.groups, groups: 1, ..*g }
}

/// Each group's filters `(cout, cin·k·k)` of `w` packed as a product's left
/// factor: as they are (forward), or transposed (`wᵀ`, backward data).
pub(crate) fn pack_groups<T: Real>(g: &ConvGeom, sub: &ConvGeom, w: &[T], trans: bool) -> Vec<Packed<T>> {
    let kdim = sub.cin * sub.k * sub.k;
    let wg = sub.cout * kdim;
    (0..g.groups)
        .map(|gi| {
            let mut a = Packed::new();
            let (m, k) = if trans { (kdim, sub.cout) } else { (sub.cout, kdim) };
            a.pack(m, k, &w[gi * wg..][..wg], kdim, trans);
            a
        })
        .collect()
}

/// `y = w · im2col(relu?(x))` per image and group, w `(cout, cin/groups, k, k)`;
/// parallel over images.
pub fn fwd<T: Real>(g: &ConvGeom, x: &[T], w: &[T], y: &mut [T]) {
    let sub = group_geom(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, sub.cin * sub.k * sub.k);
    let (xg, yg) = (sub.cin * g.h * g.w, sub.cout * ohw);
    let a = pack_groups(g, &sub, w, false);
    let plain = is_plain(g);
    par::for_chunks_init(
        y,
        g.cout * ohw,
        g.macs(),
        || if plain { Vec::new() } else { vec![T::ZERO; kdim * ohw] },
        |col, n, yn| {
            for (gi, a) in a.iter().enumerate() {
                let xn = &x[n * chw + gi * xg..][..xg];
                let b = if plain {
                    xn
                } else {
                    im2col(&sub, xn, col);
                    &col[..]
                };
                gemm(a, ohw, b, ohw, &mut yn[gi * yg..][..yg], ohw, false);
            }
        },
    );
}

/// `dx (=|+=) col2im(wᵀ · dy) · [x > 0 if relu_in]` per image and group;
/// parallel over images.
pub fn bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T], write: Write) {
    let sub = group_geom(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, sub.cin * sub.k * sub.k);
    let (xg, yg) = (sub.cin * g.h * g.w, sub.cout * ohw);
    let a = pack_groups(g, &sub, w, true);
    let plain = is_plain(g);
    par::for_chunks_init(
        dx,
        chw,
        g.macs(),
        || if plain { Vec::new() } else { vec![T::ZERO; kdim * ohw] },
        |dcol, n, dxn| {
            for (gi, a) in a.iter().enumerate() {
                let dyn_ = &dy[n * g.cout * ohw + gi * yg..][..yg];
                let dxg = &mut dxn[gi * xg..][..xg];
                if plain {
                    gemm(a, ohw, dyn_, ohw, dxg, ohw, write == Write::Add);
                } else {
                    gemm(a, ohw, dyn_, ohw, dcol, ohw, false);
                    col2im(&sub, dcol, &x[n * chw + gi * xg..][..xg], dxg, write);
                }
            }
        },
    );
}

/// `dw += Σ_n dy_n · im2col(relu?(x_n))ᵀ` per group; images split over
/// threads, each summing into its own dw, added up at the end.
pub fn bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    let sub = group_geom(g);
    let (chw, ohw, kdim) = (g.cin * g.h * g.w, g.oh * g.ow, sub.cin * sub.k * sub.k);
    let (xg, wg, yg) = (sub.cin * g.h * g.w, sub.cout * kdim, sub.cout * ohw);
    let parts = par::threads_for(g.n, g.macs());
    let per = g.n.div_ceil(parts);
    let partial = |t: usize| -> Vec<T> {
        let mut acc = vec![T::ZERO; g.cout * kdim];
        let mut col = vec![T::ZERO; if is_plain(g) { 0 } else { kdim * ohw }];
        for n in t * per..((t + 1) * per).min(g.n) {
            for gi in 0..g.groups {
                let xn = &x[n * chw + gi * xg..][..xg];
                let src: &[T] = if is_plain(g) {
                    xn
                } else {
                    im2col(&sub, xn, &mut col);
                    &col
                };
                let dyn_ = &dy[n * g.cout * ohw + gi * yg..][..yg];
                gemm_nt(sub.cout, kdim, ohw, dyn_, ohw, src, ohw, &mut acc[gi * wg..][..wg], kdim);
            }
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
