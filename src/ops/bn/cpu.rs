//! BatchNorm on the host, parallel over channels. The statistics are
//! accumulated in f64.

use super::{BnGeom, BnOps};
use crate::device::counts;
use crate::device::{Cpu, Write};
use crate::error::Result;
use crate::ops::simd;
use crate::par;
use crate::real::Real;

/// Lanes of the f64 partial sums: independent accumulators the compiler
/// vectorises (one running sum would serialise every add).
const LANES: usize = 8;

/// `Σ f(a_i, b_i)` over two equal-length slices, accumulated in f64 lanes.
#[inline(always)]
fn sum2<T: Real>(a: &[T], b: &[T], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ac.remainder().iter().zip(bc.remainder()).map(|(&x, &y)| f(x.to_f64(), y.to_f64())).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            lanes[l] += f(x[l].to_f64(), y[l].to_f64());
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// One plane's two sums: `(Σ(x−s), Σ(x−s)²)` without `dy` (the forward's,
/// s a shift), `(Σ dy, Σ dy·(x−s))` with it (the backward's, s the mean).
/// In f32 on a CPU with AVX2, the `avx2` kernel; f64 lanes otherwise.
fn plane_sums<T: Real>(x: &[T], dy: Option<&[T]>, s: f64) -> Pair {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && simd::avx2() {
        // SAFETY: T is f32 (same type, same layout); the CPU has AVX2 and FMA.
        unsafe {
            let f = |v: &[T]| std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len());
            let (a, b) = avx2::sums(f(x), dy.map(f), s as f32);
            return Pair(a, b);
        }
    }
    match dy {
        None => Pair(sum2(x, x, |v, _| v - s), sum2(x, x, |v, _| (v - s) * (v - s))),
        Some(dy) => Pair(sum2(dy, dy, |d, _| d), sum2(dy, x, |d, v| d * (v - s))),
    }
}

/// BatchNorm's per-plane sums with AVX2: the generic f64 lanes stay scalar
/// code (a conversion per element), which made the statistics passes
/// several times slower than the memory traffic they need.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Elements summed in f32 lanes before the lanes move into f64: each
    /// lane adds at most 32 terms in f32.
    const SPAN: usize = 256;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum_pd(v: __m256d) -> f64 {
        let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    }

    /// The 8 f32 lanes of `v` added into 4 f64 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn widen_add(acc: __m256d, v: __m256) -> __m256d {
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        _mm256_add_pd(acc, _mm256_add_pd(lo, hi))
    }

    /// [`super::plane_sums`] in f32: two sets of f32 accumulators per span of
    /// 256 elements, the spans summed in f64; the last `len % 8` elements
    /// loaded under a mask (their lanes zeroed after the shift).
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `dy`, when given, is as long as `x`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sums(x: &[f32], dy: Option<&[f32]>, s: f32) -> (f64, f64) {
        let n = x.len();
        assert!(dy.is_none_or(|d| d.len() == n), "BN sums: x and dy differ in length");
        let (xp, dp) = (x.as_ptr(), dy.map(<[f32]>::as_ptr));
        let sv = _mm256_set1_ps(s);
        let (mut t1, mut t2) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        // One 8-lane step: (a, b) += (x − s, (x − s)²) or (dy, dy·(x − s)).
        let step = |i: usize, m: Option<__m256i>, a: &mut __m256, b: &mut __m256| {
            // SAFETY: i + 8 ≤ n, or the lanes past n are masked off.
            unsafe {
                let load = |p: *const f32| match m {
                    None => _mm256_loadu_ps(p.add(i)),
                    Some(m) => _mm256_maskload_ps(p.add(i), m),
                };
                let mut d = _mm256_sub_ps(load(xp), sv);
                if let Some(m) = m {
                    d = _mm256_and_ps(d, _mm256_castsi256_ps(m));
                }
                match dp {
                    None => {
                        *a = _mm256_add_ps(*a, d);
                        *b = _mm256_fmadd_ps(d, d, *b);
                    }
                    Some(dp) => {
                        let g = load(dp);
                        *a = _mm256_add_ps(*a, g);
                        *b = _mm256_fmadd_ps(g, d, *b);
                    }
                }
            }
        };
        let mut i = 0;
        while i < n {
            let end = (i + SPAN).min(n);
            let z = _mm256_setzero_ps();
            let (mut a0, mut b0, mut a1, mut b1) = (z, z, z, z);
            while i + 16 <= end {
                step(i, None, &mut a0, &mut b0);
                step(i + 8, None, &mut a1, &mut b1);
                i += 16;
            }
            if i + 8 <= end {
                step(i, None, &mut a0, &mut b0);
                i += 8;
            }
            if i < end {
                let m =
                    _mm256_cmpgt_epi32(_mm256_set1_epi32((end - i) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                step(i, Some(m), &mut a1, &mut b1);
                i = end;
            }
            t1 = widen_add(t1, _mm256_add_ps(a0, a1));
            t2 = widen_add(t2, _mm256_add_ps(b0, b1));
        }
        (hsum_pd(t1), hsum_pd(t2))
    }
}

/// Per-channel statistics over the batch: `f(n, c)` for every plane, summed
/// over n; one parallel pass over the channels.
fn per_channel<R: Send + Default + Clone + std::ops::Add<Output = R>>(
    g: &BnGeom,
    f: impl Fn(usize, usize) -> R + Sync,
) -> Vec<R> {
    par::map(g.c, g.n * g.c * g.hw, |c| (0..g.n).fold(R::default(), |acc, n| acc + f(n, c)))
}

/// Two sums at once, so that one pass over the data yields both.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Pair(pub f64, pub f64);

impl std::ops::Add for Pair {
    type Output = Pair;
    fn add(self, o: Pair) -> Pair {
        Pair(self.0 + o.0, self.1 + o.1)
    }
}

/// A plane's (or a channel's) element count, mean and sum of squared
/// deviations, in f64. Each plane is summed shifted by its own first
/// element (`Σ(x−s)² − (Σ(x−s))²/n` is then free of cancellation unless the
/// spread is ~1e-8 of |mean − s|) and planes are merged with Chan's
/// formula, so that a plane's moments can be taken wherever the plane is
/// at hand (the chains take them while it is in cache) and merged later in
/// image order.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub(crate) fn of<T: Real>(plane: &[T]) -> Self {
        let Some(first) = plane.first() else { return Moments::default() };
        let (shift, n) = (first.to_f64(), plane.len() as f64);
        let Pair(s1, s2) = plane_sums(plane, None, shift);
        let d = s1 / n;
        Moments { n, mean: shift + d, m2: (s2 - s1 * d).max(0.0) }
    }

    /// The moments of both sets together.
    pub(crate) fn merge(self, o: Moments) -> Moments {
        if o.n == 0.0 {
            return self;
        }
        if self.n == 0.0 {
            return o;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        Moments { n, mean: self.mean + delta * (o.n / n), m2: self.m2 + o.m2 + delta * delta * (self.n * o.n / n) }
    }
}

/// Each channel's moments from every image's, merged in image order:
/// `planes[n·c + ch]` is image n's plane of channel ch.
pub(crate) fn merge_images(g: &BnGeom, planes: &[Moments]) -> Vec<Moments> {
    (0..g.c).map(|c| (0..g.n).fold(Moments::default(), |acc, n| acc.merge(planes[n * g.c + c]))).collect()
}

/// The batch statistics from each channel's moments: the mean and 1/std
/// into `saved`, the running statistics updated.
pub(crate) fn finish_stats<T: Real>(
    g: &BnGeom,
    stats: &[Moments],
    saved: &mut [T],
    running_mean: &mut [T],
    running_var: &mut [T],
) {
    let (m, cnt) = (g.momentum as f64, (g.n * g.hw) as f64);
    for (c, st) in stats.iter().enumerate() {
        let var = if cnt > 0.0 { st.m2 / cnt } else { 0.0 };
        let inv = 1.0 / (var + g.eps as f64).sqrt();
        saved[c] = T::from_f64(st.mean);
        saved[g.c + c] = T::from_f64(inv);
        let unbiased = if cnt > 1.0 { var * cnt / (cnt - 1.0) } else { var };
        running_mean[c] = T::from_f64((1.0 - m) * running_mean[c].to_f64() + m * st.mean);
        running_var[c] = T::from_f64((1.0 - m) * running_var[c].to_f64() + m * unbiased);
    }
}

/// `y = γ·(x − mean)·inv + β` per channel.
pub(crate) fn apply<T: Real>(
    g: &BnGeom,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    mean: &[T],
    inv: &[T],
    y: &mut [T],
) {
    par::for_chunks(y, g.hw, x.len(), |p, yp| apply_plane(p % g.c, &x[p * g.hw..][..g.hw], gamma, beta, mean, inv, yp));
}

/// [`apply`] on one plane of channel `c`.
#[inline]
pub(crate) fn apply_plane<T: Real>(
    c: usize,
    xp: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    mean: &[T],
    inv: &[T],
    yp: &mut [T],
) {
    let s = inv[c] * gamma.map_or(T::ONE, |gm| gm[c]);
    let b = beta.map_or(T::ZERO, |b| b[c]);
    normalize(yp, xp, mean[c], s, b);
}

/// 1/std from the running variance, per channel (evaluation).
pub(crate) fn running_inv<T: Real>(g: &BnGeom, running_var: &[T]) -> Vec<T> {
    running_var.iter().map(|&v| T::from_f64(1.0 / (v.to_f64() + g.eps as f64).sqrt())).collect()
}

simd::multiversion! {
    /// `y = (x − m)·s + b`.
    fn normalize<T: Real>(y: &mut [T], x: &[T], m: T, s: T, b: T) => _FMA:
        y.iter_mut().zip(x).for_each(|(yv, &xv)| *yv = (xv - m) * s + b)
}

simd::multiversion! {
    /// `dx (=|+=) k·(dy − a − (x − m)·iv·b)`: BatchNorm's input gradient.
    #[allow(clippy::too_many_arguments)]
    fn bn_dx<T: Real>(dx: &mut [T], x: &[T], dy: &[T], k: T, a: T, m: T, iv: T, b: T, write: Write) => _FMA: {
        let grad = |xv: T, dyv: T| k * (dyv - a - (xv - m) * iv * b);
        let pairs = dx.iter_mut().zip(x.iter().zip(dy));
        match write {
            Write::Set => pairs.for_each(|(d, (&xv, &dyv))| *d = grad(xv, dyv)),
            Write::Add => pairs.for_each(|(d, (&xv, &dyv))| *d += grad(xv, dyv)),
        }
    }
}

/// One plane's share of the backward's sums: `(Σ dy, Σ dy·(x − mean))`.
pub(crate) fn bwd_plane_sums<T: Real>(xp: &[T], dyp: &[T], mean: T) -> Pair {
    plane_sums(xp, Some(dyp), mean.to_f64())
}

/// What the backward needs besides the planes, from the per-channel sums
/// ([`bwd_plane_sums`] summed over the images in order): `Σ dy` and
/// `Σ dy·x̂`; `dγ`, `dβ` are added here.
pub(crate) struct BwdSums {
    sum_dy: Vec<f64>,
    sum_dy_xhat: Vec<f64>,
    cnt: f64,
}

impl BwdSums {
    pub(crate) fn new<T: Real>(
        g: &BnGeom,
        sums: &[Pair],
        saved: &[T],
        dgamma: Option<&mut Vec<T>>,
        dbeta: Option<&mut Vec<T>>,
    ) -> Self {
        let inv = &saved[g.c..];
        let sum_dy: Vec<f64> = sums.iter().map(|p| p.0).collect();
        let sum_dy_xhat: Vec<f64> = sums.iter().zip(inv).map(|(p, &iv)| p.1 * iv.to_f64()).collect();
        if let Some(dg) = dgamma {
            for c in 0..g.c {
                dg[c] += T::from_f64(sum_dy_xhat[c]);
            }
        }
        if let Some(db) = dbeta {
            for c in 0..g.c {
                db[c] += T::from_f64(sum_dy[c]);
            }
        }
        BwdSums { sum_dy, sum_dy_xhat, cnt: (g.n * g.hw) as f64 }
    }

    /// `dxp (=|+=) …` for one plane of channel `c`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dx_plane<T: Real>(
        &self,
        c: usize,
        gamma: Option<&[T]>,
        saved: &[T],
        xp: &[T],
        dyp: &[T],
        dxp: &mut [T],
        write: Write,
    ) {
        let (mean, inv) = saved.split_at(saved.len() / 2);
        let gm = gamma.map_or(T::ONE, |gm| gm[c]);
        let k = gm * inv[c];
        let a = T::from_f64(self.sum_dy[c] / self.cnt);
        let b = T::from_f64(self.sum_dy_xhat[c] / self.cnt);
        bn_dx(dxp, xp, dyp, k, a, mean[c], inv[c], b, write);
    }
}

impl<T: Real> BnOps for Cpu<T> {
    fn bn_fwd_train(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        gamma: Option<&Vec<T>>,
        beta: Option<&Vec<T>>,
        y: &mut Vec<T>,
        saved: &mut Vec<T>,
        running_mean: &mut Vec<T>,
        running_var: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(super::cuda::train_launches(g));
        let hw = g.hw;
        let plane = |n: usize, c: usize| &x[(n * g.c + c) * hw..][..hw];
        // One pass over each plane; the planes' moments merged in image order.
        let stats = par::map(g.c, g.n * g.c * hw, |c| {
            (0..g.n).fold(Moments::default(), |acc, n| acc.merge(Moments::of(plane(n, c))))
        });
        finish_stats(g, &stats, saved, running_mean, running_var);
        let (mean_t, inv_t) = saved.split_at(g.c);
        apply(g, x, gamma.map(|v| &v[..]), beta.map(|v| &v[..]), mean_t, inv_t, y);
        Ok(())
    }

    fn bn_fwd_eval(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        gamma: Option<&Vec<T>>,
        beta: Option<&Vec<T>>,
        running_mean: &Vec<T>,
        running_var: &Vec<T>,
        y: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(1);
        let inv = running_inv(g, running_var);
        apply(g, x, gamma.map(|v| &v[..]), beta.map(|v| &v[..]), running_mean, &inv, y);
        Ok(())
    }

    // `dx += inv/N · (N·dŷ − Σdŷ − x̂·Σ(dŷ·x̂))` with `dŷ = γ·dy`;
    // `dγ += Σ dy·x̂`; `dβ += Σ dy`.
    fn bn_bwd(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        gamma: Option<&Vec<T>>,
        saved: &Vec<T>,
        dy: &Vec<T>,
        dx: Option<(&mut Vec<T>, Write)>,
        dgamma: Option<&mut Vec<T>>,
        dbeta: Option<&mut Vec<T>>,
    ) -> Result<()> {
        counts::call(super::cuda::train_launches(g));
        let hw = g.hw;
        let mean = &saved[..g.c];
        // Σ dy and Σ dy·x̂ = inv·Σ dy·(x − mean), in one pass over each plane.
        let sums = per_channel(g, |n, c| {
            let (xp, dp) = (&x[(n * g.c + c) * hw..][..hw], &dy[(n * g.c + c) * hw..][..hw]);
            bwd_plane_sums(xp, dp, mean[c])
        });
        let sums = BwdSums::new(g, &sums, saved, dgamma, dbeta);
        if let Some((dx, write)) = dx {
            let gamma = gamma.map(|v| &v[..]);
            par::for_chunks(dx, hw, x.len(), |p, dxp| {
                let (xp, dyp) = (&x[p * hw..][..hw], &dy[p * hw..][..hw]);
                sums.dx_plane(p % g.c, gamma, saved, xp, dyp, dxp, write);
            });
        }
        Ok(())
    }
}
