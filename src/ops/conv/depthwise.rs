//! Depthwise k×k convolution, groups = cin = cout: the first half of every
//! sep_conv and dil_conv (stride 1 or 2, dilation 1 or 2, 3×3 or 5×5).
//!
//! Each `(n, c)` plane is copied once into a zero-padded scratch plane with
//! the input ReLU applied, its columns split by stride phase: padded column
//! `j` lives in phase `j % s` at index `j / s`. The taps of consecutive
//! outputs, columns `ox·s + kw·d`, are then consecutive elements of one
//! phase, so every tap of an output row is one contiguous run with no bounds
//! checks; the borders are the zeros of the padding.
//!
//! - forward: a correlation over the padded input, a block of each output
//!   row held in registers across all k² taps;
//! - backward data, stride 1: the same correlation over the padded `dy` with
//!   the flipped kernel; stride 2: a scatter into a padded scratch plane;
//! - backward filter: per tap, a dot product of `dy` with the shifted input.

use crate::par;
use crate::real::Real;

use super::{ConvGeom, act, write_through_relu};
use crate::device::Write;
use crate::ops::simd;

/// A padded, phase-split plane (see the module comment). The border stays
/// zero: loads only write the interior, which is the same for every plane.
struct Padded<T> {
    buf: Vec<T>,
    /// Unpadded size and padding.
    h: usize,
    w: usize,
    pad: usize,
    /// Padded rows, `h + 2·pad`.
    rows: usize,
    /// Elements per row of one phase, `⌈(w + 2·pad) / s⌉`.
    cols: usize,
    s: usize,
}

impl<T: Real> Padded<T> {
    fn new(h: usize, w: usize, pad: usize, s: usize) -> Self {
        let rows = h + 2 * pad;
        let cols = (w + 2 * pad).div_ceil(s);
        Padded { buf: vec![T::ZERO; s * rows * cols], h, w, pad, rows, cols, s }
    }

    /// Start of the run holding padded row `r`, padded columns `c0, c0 + s, …`.
    #[inline]
    fn at(&self, r: usize, c0: usize) -> usize {
        if self.s == 1 { r * self.cols + c0 } else { ((c0 % self.s) * self.rows + r) * self.cols + c0 / self.s }
    }

    /// Offsets of the k×k taps (dilation d) relative to output (0, 0); output
    /// row `oy` adds `oy · row_step()`.
    fn taps(&self, k: usize, d: usize) -> Vec<usize> {
        (0..k * k).map(|t| self.at(t / k * d, t % k * d)).collect()
    }

    fn row_step(&self) -> usize {
        self.s * self.cols
    }

    /// Calls `f(iy, ix0, i)` for each run of the interior: input row `iy`,
    /// columns `ix0, ix0 + s, …` stored contiguously from `buf[i]`.
    #[inline(always)]
    fn runs(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (s, pad) = (self.s, self.pad);
        for iy in 0..self.h {
            for ph in 0..s {
                // First interior column of this phase: padded j ≡ ph (mod s), j ≥ pad.
                let j0 = pad + (ph + s - pad % s) % s;
                if j0 - pad < self.w {
                    f(iy, j0 - pad, self.at(iy + pad, j0));
                }
            }
        }
    }

    /// Copies `relu?(plane)` (h × w) into the interior.
    fn load(&mut self, src: &[T], relu: bool) {
        let (s, w, pad) = (self.s, self.w, self.pad);
        if s == 1 {
            let (first, stride) = (self.at(pad, pad), self.cols);
            copy_rows(&mut self.buf[first..], stride, src, w, w, relu);
            return;
        }
        let act = |v: T| act(v, relu);
        if s == 2 && w >= 2 {
            // Even and odd input columns go to the runs starting at padded
            // columns pad and pad + 1, one element per column pair.
            for (iy, xr) in src.chunks_exact(w).enumerate() {
                let (i0, i1) = (self.at(iy + pad, pad), self.at(iy + pad, pad + 1));
                for (q, pair) in xr.chunks_exact(2).enumerate() {
                    self.buf[i0 + q] = act(pair[0]);
                    self.buf[i1 + q] = act(pair[1]);
                }
                if w % 2 == 1 {
                    self.buf[i0 + w / 2] = act(xr[w - 1]);
                }
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        self.runs(|iy, ix0, i| {
            let xr = &src[iy * w..][ix0..w];
            if s == 1 {
                for (d, &v) in buf[i..i + xr.len()].iter_mut().zip(xr) {
                    *d = act(v);
                }
            } else {
                for (d, &v) in buf[i..].iter_mut().zip(xr.iter().step_by(s)) {
                    *d = act(v);
                }
            }
        });
        self.buf = buf;
    }

    /// Adds the interior to `dx` (h × w) where `x > 0` (everywhere without `relu`).
    fn add_interior_to(&self, x: &[T], relu: bool, dx: &mut [T]) {
        let (s, w, pad) = (self.s, self.w, self.pad);
        let keep = |xv: T| !relu || xv > T::ZERO;
        if s == 2 && w >= 2 {
            // The column pairs of `load`, in reverse.
            for (iy, (dr, xr)) in dx.chunks_exact_mut(w).zip(x.chunks_exact(w)).enumerate() {
                let (i0, i1) = (self.at(iy + pad, pad), self.at(iy + pad, pad + 1));
                for (q, (dp, xp)) in dr.chunks_exact_mut(2).zip(xr.chunks_exact(2)).enumerate() {
                    if keep(xp[0]) {
                        dp[0] += self.buf[i0 + q];
                    }
                    if keep(xp[1]) {
                        dp[1] += self.buf[i1 + q];
                    }
                }
                if w % 2 == 1 && keep(xr[w - 1]) {
                    dr[w - 1] += self.buf[i0 + w / 2];
                }
            }
            return;
        }
        self.runs(|iy, ix0, i| {
            let (xr, dr) = (&x[iy * w..][ix0..w], &mut dx[iy * w..][ix0..w]);
            for ((d, &xv), &a) in dr.iter_mut().step_by(s).zip(xr.iter().step_by(s)).zip(&self.buf[i..]) {
                if !relu || xv > T::ZERO {
                    *d += a;
                }
            }
        });
    }
}

/// `dst[r·dst_stride ..][..w] = relu?(src[r·src_stride ..][..w])` for every
/// row of `src`: moving planes between their compact layout and the padded
/// row stride, without a call per (short) row.
#[inline(always)]
fn copy_rows_impl<T: Real>(dst: &mut [T], dst_stride: usize, src: &[T], src_stride: usize, w: usize, relu: bool) {
    if w == 0 {
        return;
    }
    let rows = (src.len() + src_stride - w) / src_stride;
    for r in 0..rows {
        let (d, s) = (&mut dst[r * dst_stride..][..w], &src[r * src_stride..][..w]);
        if relu {
            // `act`: NaN and everything not above zero become 0.
            d.iter_mut().zip(s).for_each(|(d, &v)| *d = if v > T::ZERO { v } else { T::ZERO });
        } else {
            d.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
        }
    }
}

simd::multiversion! {
    fn copy_rows<T: Real>(dst: &mut [T], dst_stride: usize, src: &[T], src_stride: usize, w: usize, relu: bool) => _FMA:
        copy_rows_impl(dst, dst_stride, src, src_stride, w, relu)
}

/// One output row block of `V` columns starting at `x0`, all taps in registers.
#[inline(always)]
fn block<T: Real, const V: usize, const F: bool>(buf: &[T], taps: &[usize], wk: &[T], base: usize, out: &mut [T]) {
    let mut acc = [T::ZERO; V];
    for (&t, &wv) in taps.iter().zip(wk) {
        let src: &[T; V] = buf[base + t..][..V].try_into().expect("V elements");
        for l in 0..V {
            acc[l] = simd::madd::<T, F>(wv, src[l], acc[l]);
        }
    }
    out[..V].copy_from_slice(&acc);
}

/// `out[oy][ox] = Σ_t wk[t] · buf[taps[t] + oy·row_step + ox·…]` over an
/// (oh × ow) output, the phase layout making `ox` contiguous.
#[inline(always)]
fn correlate_impl<T: Real, const F: bool>(
    buf: &[T],
    taps: &[usize],
    row_step: usize,
    wk: &[T],
    ow: usize,
    out: &mut [T],
) {
    for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
        let base = oy * row_step;
        let mut x0 = 0;
        while x0 + 32 <= ow {
            block::<T, 32, F>(buf, taps, wk, base + x0, &mut orow[x0..]);
            x0 += 32;
        }
        while x0 + 16 <= ow {
            block::<T, 16, F>(buf, taps, wk, base + x0, &mut orow[x0..]);
            x0 += 16;
        }
        while x0 + 8 <= ow {
            block::<T, 8, F>(buf, taps, wk, base + x0, &mut orow[x0..]);
            x0 += 8;
        }
        for (ox, o) in orow.iter_mut().enumerate().skip(x0) {
            *o = taps.iter().zip(wk).fold(T::ZERO, |a, (&t, &wv)| a + wv * buf[base + t + ox]);
        }
    }
}

simd::multiversion! {
    fn correlate<T: Real>(buf: &[T], taps: &[usize], row_step: usize, wk: &[T], ow: usize, out: &mut [T]) => FMA:
        correlate_impl::<T, FMA>(buf, taps, row_step, wk, ow, out)
}

/// Stride 1: `flat[i] = Σ_t wk[t] · buf[taps[t] + i]` for every `i`. With
/// the output rows laid out at the padded row stride (`flat[oy·row_step + ox]`,
/// the columns past `ow` unused) a whole plane is one contiguous run: long
/// vector blocks even for 8×8 planes, at the cost of computing the unused
/// columns.
#[inline(always)]
fn correlate_flat_impl<T: Real, const F: bool>(buf: &[T], taps: &[usize], wk: &[T], flat: &mut [T]) {
    let len = flat.len();
    let mut x0 = 0;
    while x0 + 32 <= len {
        block::<T, 32, F>(buf, taps, wk, x0, &mut flat[x0..]);
        x0 += 32;
    }
    while x0 + 8 <= len {
        block::<T, 8, F>(buf, taps, wk, x0, &mut flat[x0..]);
        x0 += 8;
    }
    for (i, o) in flat.iter_mut().enumerate().skip(x0) {
        *o = taps.iter().zip(wk).fold(T::ZERO, |a, (&t, &wv)| a + wv * buf[t + i]);
    }
}

simd::multiversion! {
    fn correlate_flat<T: Real>(buf: &[T], taps: &[usize], wk: &[T], flat: &mut [T]) => FMA:
        correlate_flat_impl::<T, FMA>(buf, taps, wk, flat)
}

/// `acc[taps[t] + oy·row_step + ox·…] += wk[t] · dy[oy][ox]`: the transposed
/// conv for stride 2, where the gather form would need a fractional stride.
#[inline(always)]
fn scatter_impl<T: Real, const F: bool>(acc: &mut [T], taps: &[usize], row_step: usize, wk: &[T], ow: usize, dy: &[T]) {
    for (oy, drow) in dy.chunks_exact(ow).enumerate() {
        for (&t, &wv) in taps.iter().zip(wk) {
            let i = t + oy * row_step;
            for (a, &v) in acc[i..i + ow].iter_mut().zip(drow) {
                *a = simd::madd::<T, F>(wv, v, *a);
            }
        }
    }
}

simd::multiversion! {
    fn scatter<T: Real>(acc: &mut [T], taps: &[usize], row_step: usize, wk: &[T], ow: usize, dy: &[T]) => FMA:
        scatter_impl::<T, FMA>(acc, taps, row_step, wk, ow, dy)
}

/// `dwk[t] += Σ_i dyp[i] · buf[taps[t] + i]`: `dyp` holds `dy` at the padded
/// row stride (`dyp[oy·row_step + ox]`, zeros between rows), which makes the
/// sum over a plane one contiguous dot product per tap. Two sets of 8 lanes
/// so that the adds do not wait on each other.
#[inline(always)]
fn filter_impl<T: Real, const F: bool>(buf: &[T], taps: &[usize], dyp: &[T], dwk: &mut [T]) {
    const L: usize = 16;
    let len = dyp.len();
    for (&t, dv) in taps.iter().zip(dwk.iter_mut()) {
        let mut lanes = [T::ZERO; L];
        let (dc, sc) = (dyp.chunks_exact(L), buf[t..t + len].chunks_exact(L));
        let tail = dc.remainder().iter().zip(sc.remainder()).fold(T::ZERO, |a, (&x, &y)| a + x * y);
        for (a, b) in dc.zip(sc) {
            for l in 0..L {
                lanes[l] = simd::madd::<T, F>(a[l], b[l], lanes[l]);
            }
        }
        *dv += lanes.iter().fold(tail, |a, &b| a + b);
    }
}

simd::multiversion! {
    fn filter<T: Real>(buf: &[T], taps: &[usize], dyp: &[T], dwk: &mut [T]) => FMA: filter_impl::<T, FMA>(buf, taps, dyp, dwk)
}

/// Length of a plane of `rows × w` laid out at row stride `step`, the last row cut at `w`.
fn flat_len(rows: usize, w: usize, step: usize) -> usize {
    (rows - 1) * step + w
}

fn check(g: &ConvGeom) {
    debug_assert!(g.groups == g.cin && g.cout == g.cin, "depthwise path needs groups = cin = cout");
}

/// One plane's forward, with its scratch: what [`fwd`] runs per plane and
/// the chains (`super::chain`) per image.
pub(crate) struct PlaneFwd<T> {
    pad: Padded<T>,
    taps: Vec<usize>,
    flat: Vec<T>,
}

impl<T: Real> PlaneFwd<T> {
    pub(crate) fn new(g: &ConvGeom) -> Self {
        check(g);
        let pad = Padded::new(g.h, g.w, g.pad, g.stride);
        let taps = pad.taps(g.k, g.dil);
        let flat = if g.stride == 1 { vec![T::ZERO; flat_len(g.oh, g.ow, pad.row_step())] } else { Vec::new() };
        PlaneFwd { pad, taps, flat }
    }

    /// `out (oh × ow) = dwconv(relu?(xp), wk)` for one plane `xp` (h × w)
    /// and its filter `wk` (k × k).
    pub(crate) fn run(&mut self, g: &ConvGeom, xp: &[T], wk: &[T], out: &mut [T]) {
        let step = self.pad.row_step();
        self.pad.load(xp, g.relu_in);
        if g.stride == 1 {
            correlate_flat(&self.pad.buf, &self.taps, wk, &mut self.flat);
            copy_rows(out, g.ow, &self.flat, step, g.ow, false);
        } else {
            correlate(&self.pad.buf, &self.taps, step, wk, g.ow, out);
        }
    }
}

/// One plane's backward, with its scratch: the data gradient (a stride-1
/// correlation of the padded `dy` with the flipped kernel, or for stride 2
/// a scatter) and the filter gradient (per tap, a dot product of `dy` with
/// the shifted input). What [`bwd_data`], [`bwd_filter`] and [`bwd`] run
/// per plane and the chains per image.
pub(crate) struct PlaneBwd<T> {
    data: Option<DataScratch<T>>,
    filter: Option<FilterScratch<T>>,
}

/// The data gradient's scratch: the padded dy (gather) or the accumulator
/// (scatter), its taps, the flat output and the flipped kernel (gather).
struct DataScratch<T> {
    pad: Padded<T>,
    taps: Vec<usize>,
    flat: Vec<T>,
    flipped: Vec<T>,
}

/// The filter gradient's scratch: the padded input, its taps, dy at the
/// padded row stride.
struct FilterScratch<T> {
    pad: Padded<T>,
    taps: Vec<usize>,
    dy: Vec<T>,
}

impl<T: Real> PlaneBwd<T> {
    /// Scratch for the data gradient, the filter gradient, or both.
    pub(crate) fn new(g: &ConvGeom, data: bool, filter: bool) -> Self {
        check(g);
        let data = data.then(|| {
            if gathers(g) {
                let p = Padded::new(g.oh, g.ow, (g.k - 1) * g.dil - g.pad, 1);
                let (taps, flat) = (p.taps(g.k, g.dil), vec![T::ZERO; flat_len(g.h, g.w, p.row_step())]);
                DataScratch { pad: p, taps, flat, flipped: vec![T::ZERO; g.k * g.k] }
            } else {
                let p = Padded::new(g.h, g.w, g.pad, g.stride);
                let taps = p.taps(g.k, g.dil);
                DataScratch { pad: p, taps, flat: Vec::new(), flipped: Vec::new() }
            }
        });
        let filter = filter.then(|| {
            let p = Padded::new(g.h, g.w, g.pad, g.stride);
            let (taps, dy) = (p.taps(g.k, g.dil), vec![T::ZERO; flat_len(g.oh, g.ow, p.row_step())]);
            FilterScratch { pad: p, taps, dy }
        });
        PlaneBwd { data, filter }
    }

    /// `dxp (=|+=) dwconvᵀ(dyp, wk) · [xp > 0 if relu_in]` for one plane.
    pub(crate) fn data(&mut self, g: &ConvGeom, xp: &[T], wk: &[T], dyp: &[T], dxp: &mut [T], write: Write) {
        let DataScratch { pad, taps, flat, flipped: wf } = self.data.as_mut().expect("made with the data gradient");
        let step = pad.row_step();
        if gathers(g) {
            for (f, &v) in wf.iter_mut().zip(wk.iter().rev()) {
                *f = v;
            }
            pad.load(dyp, false);
            correlate_flat(&pad.buf, taps, wf, flat);
            for (iy, (dr, xr)) in dxp.chunks_exact_mut(g.w).zip(xp.chunks_exact(g.w)).enumerate() {
                write_through_relu(dr, &flat[iy * step..][..g.w], xr, g.relu_in, write);
            }
        } else {
            pad.buf.fill(T::ZERO);
            scatter(&mut pad.buf, taps, step, wk, g.ow, dyp);
            if write == Write::Set {
                dxp.fill(T::ZERO);
            }
            pad.add_interior_to(xp, g.relu_in, dxp);
        }
    }

    /// `dwk += dyp ⋆ relu?(xp)` for one plane.
    pub(crate) fn filter(&mut self, g: &ConvGeom, xp: &[T], dyp: &[T], dwk: &mut [T]) {
        let FilterScratch { pad, taps, dy: dyr } = self.filter.as_mut().expect("made with the filter gradient");
        pad.load(xp, g.relu_in);
        copy_rows(dyr, pad.row_step(), dyp, g.ow, g.ow, false);
        filter(&pad.buf, taps, dyr, dwk);
    }
}

/// Whether the data gradient is a stride-1 correlation with the flipped
/// kernel (dy padded by `reach − pad`), rather than a scatter.
fn gathers(g: &ConvGeom) -> bool {
    g.stride == 1 && g.pad <= (g.k - 1) * g.dil
}

/// `y = dwconv(relu?(x), w)`, x `(n, c, h, w)`, w `(c, 1, k, k)`, y `(n, c, oh, ow)`;
/// parallel over planes.
pub fn fwd<T: Real>(g: &ConvGeom, x: &[T], w: &[T], y: &mut [T]) {
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    par::for_chunks_init(
        y,
        ohw,
        g.macs(),
        || PlaneFwd::new(g),
        |pf, p, out| pf.run(g, &x[p * hw..][..hw], &w[p % g.cin * kk..][..kk], out),
    );
}

/// `dx (=|+=) dwconvᵀ(dy, w) · [x > 0 if relu_in]`; parallel over planes.
pub fn bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T], write: Write) {
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    par::for_chunks_init(
        dx,
        hw,
        g.macs(),
        || PlaneBwd::new(g, true, false),
        |pb, p, dxp| {
            let wk = &w[p % g.cin * kk..][..kk];
            pb.data(g, &x[p * hw..][..hw], wk, &dy[p * ohw..][..ohw], dxp, write)
        },
    );
}

/// Both gradients of a stride-1 depthwise conv in one pass over the planes,
/// each plane of x and dy read once for `dx (=|+=) …` ([`bwd_data`]) and for
/// its image's share of `dw += …` ([`bwd_filter`]): the shares are summed in
/// image order afterwards, the order [`bwd_filter`] adds them in, so the
/// result is the same to the bit; `dw_write` says whether the sum
/// overwrites dw or adds to it. Returns false, doing nothing, for the
/// geometries whose data gradient takes the scatter path (stride 2).
#[allow(clippy::too_many_arguments)]
pub fn bwd<T: Real>(
    g: &ConvGeom,
    x: &[T],
    w: &[T],
    dy: &[T],
    dx: &mut [T],
    write: Write,
    dw: &mut [T],
    dw_write: Write,
) -> bool {
    check(g);
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    if !gathers(g) {
        return false;
    }
    let shares: Vec<std::sync::OnceLock<Vec<T>>> = (0..g.n).map(|_| std::sync::OnceLock::new()).collect();
    par::for_chunks_init(
        &mut dx[..g.n * g.cin * hw],
        g.cin * hw,
        2 * g.macs(),
        || PlaneBwd::new(g, true, true),
        |pb, n, dxn| {
            let mut share = vec![T::ZERO; g.cin * kk];
            for (c, (dxp, dwc)) in dxn.chunks_exact_mut(hw).zip(share.chunks_exact_mut(kk)).enumerate() {
                let p = n * g.cin + c;
                let (xp, dyc) = (&x[p * hw..][..hw], &dy[p * ohw..][..ohw]);
                pb.data(g, xp, &w[c * kk..][..kk], dyc, dxp, write);
                pb.filter(g, xp, dyc, dwc);
            }
            assert!(shares[n].set(share).is_ok(), "each image is one chunk");
        },
    );
    if dw_write == Write::Set {
        dw.fill(T::ZERO);
    }
    for share in shares {
        add_share(dw, &share.into_inner().expect("every image ran"));
    }
    true
}

/// `acc += share`, element by element: per-image shares of a filter
/// gradient summed in image order.
pub(crate) fn add_share<T: Real>(acc: &mut [T], share: &[T]) {
    for (d, &v) in acc.iter_mut().zip(share) {
        *d += v;
    }
}

/// `dw += Σ_n dy ⋆ relu?(x)`, dw `(c, 1, k, k)`; parallel over channels.
pub fn bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    par::for_chunks_init(
        dw,
        kk,
        g.macs(),
        || PlaneBwd::new(g, false, true),
        |pb, c, dwc| {
            for n in 0..g.n {
                let p = n * g.cin + c;
                pb.filter(g, &x[p * hw..][..hw], &dy[p * ohw..][..ohw], dwc);
            }
        },
    );
}
