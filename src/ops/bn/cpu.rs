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
#[derive(Clone, Copy, Default)]
struct Pair(f64, f64);

impl std::ops::Add for Pair {
    type Output = Pair;
    fn add(self, o: Pair) -> Pair {
        Pair(self.0 + o.0, self.1 + o.1)
    }
}

/// `y = γ·(x − mean)·inv + β` per channel.
fn apply<T: Real>(g: &BnGeom, x: &[T], gamma: Option<&[T]>, beta: Option<&[T]>, mean: &[T], inv: &[T], y: &mut [T]) {
    par::for_chunks(y, g.hw, x.len(), |p, yp| {
        let c = p % g.c;
        let s = inv[c] * gamma.map_or(T::ONE, |gm| gm[c]);
        let b = beta.map_or(T::ZERO, |b| b[c]);
        normalize(yp, &x[p * g.hw..][..g.hw], mean[c], s, b);
    });
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
        let (hw, cnt) = (g.hw, (g.n * g.hw) as f64);
        let plane = |n: usize, c: usize| &x[(n * g.c + c) * hw..][..hw];
        // One pass per channel over x − s, s the channel's first element: the
        // shift keeps Σ(x−s)² − (Σ(x−s))²/N free of cancellation unless the
        // spread is ~1e-8 of |mean − s| (f64 sums of f32 data), and saves the
        // second read of x that a two-pass variance needs.
        let stats = par::map(g.c, g.n * g.c * hw, |c| {
            let shift = if hw == 0 { 0.0 } else { plane(0, c)[0].to_f64() };
            let Pair(s1, s2) = (0..g.n).fold(Pair(0.0, 0.0), |acc, n| acc + plane_sums(plane(n, c), None, shift));
            let d = s1 / cnt;
            Pair(shift + d, (s2 / cnt - d * d).max(0.0))
        });
        let m = g.momentum as f64;
        for (c, &Pair(mean, var)) in stats.iter().enumerate() {
            let inv = 1.0 / (var + g.eps as f64).sqrt();
            saved[c] = T::from_f64(mean);
            saved[g.c + c] = T::from_f64(inv);
            let unbiased = if cnt > 1.0 { var * cnt / (cnt - 1.0) } else { var };
            running_mean[c] = T::from_f64((1.0 - m) * running_mean[c].to_f64() + m * mean);
            running_var[c] = T::from_f64((1.0 - m) * running_var[c].to_f64() + m * unbiased);
        }
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
        let inv: Vec<T> = running_var.iter().map(|&v| T::from_f64(1.0 / (v.to_f64() + g.eps as f64).sqrt())).collect();
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
        let (mean, inv) = saved.split_at(g.c);
        // Σ dy and Σ dy·x̂ = inv·Σ dy·(x − mean), in one pass over each plane.
        let sums = per_channel(g, |n, c| {
            let (xp, dp) = (&x[(n * g.c + c) * hw..][..hw], &dy[(n * g.c + c) * hw..][..hw]);
            plane_sums(xp, Some(dp), mean[c].to_f64())
        });
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
        if let Some((dx, write)) = dx {
            let cnt = (g.n * hw) as f64;
            par::for_chunks(dx, hw, x.len(), |p, dxp| {
                let c = p % g.c;
                let gm = gamma.map_or(T::ONE, |gm| gm[c]);
                let k = gm * inv[c];
                let a = T::from_f64(sum_dy[c] / cnt);
                let b = T::from_f64(sum_dy_xhat[c] / cnt);
                let (m, iv) = (mean[c], inv[c]);
                bn_dx(dxp, &x[p * hw..][..hw], &dy[p * hw..][..hw], k, a, m, iv, b, write);
            });
        }
        Ok(())
    }
}
