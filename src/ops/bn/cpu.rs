//! BatchNorm on the host, parallel over channels. The statistics are
//! accumulated in f64.

use super::{BnGeom, BnOps};
use crate::backend::counts;
use crate::backend::{Cpu, Write};
use crate::error::Result;
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
        for (yv, &xv) in yp.iter_mut().zip(&x[p * g.hw..][..g.hw]) {
            *yv = (xv - mean[c]) * s + b;
        }
    });
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
        counts::call(super::cuda::TRAIN_LAUNCHES);
        let (hw, cnt) = (g.hw, (g.n * g.hw) as f64);
        let plane = |n: usize, c: usize| &x[(n * g.c + c) * hw..][..hw];
        // One pass per channel over x − s, s the channel's first element: the
        // shift keeps Σ(x−s)² − (Σ(x−s))²/N free of cancellation unless the
        // spread is ~1e-8 of |mean − s| (f64 sums of f32 data), and saves the
        // second read of x that a two-pass variance needs.
        let stats = par::map(g.c, g.n * g.c * hw, |c| {
            let shift = if hw == 0 { 0.0 } else { plane(0, c)[0].to_f64() };
            let Pair(s1, s2) = (0..g.n).fold(Pair(0.0, 0.0), |acc, n| {
                let p = plane(n, c);
                acc + Pair(sum2(p, p, |v, _| v - shift), sum2(p, p, |v, _| (v - shift) * (v - shift)))
            });
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
        counts::call(super::cuda::TRAIN_LAUNCHES);
        let hw = g.hw;
        let (mean, inv) = saved.split_at(g.c);
        // Σ dy and Σ dy·x̂ = inv·Σ dy·(x − mean), in one pass over each plane.
        let sums = per_channel(g, |n, c| {
            let (xp, dp) = (&x[(n * g.c + c) * hw..][..hw], &dy[(n * g.c + c) * hw..][..hw]);
            let m = mean[c].to_f64();
            Pair(sum2(dp, dp, |d, _| d), sum2(dp, xp, |d, v| d * (v - m)))
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
                let (xp, dp) = (&x[p * hw..][..hw], &dy[p * hw..][..hw]);
                let grad = |xv: T, dyv: T| k * (dyv - a - (xv - m) * iv * b);
                let pairs = dxp.iter_mut().zip(xp.iter().zip(dp));
                match write {
                    Write::Set => pairs.for_each(|(d, (&xv, &dyv))| *d = grad(xv, dyv)),
                    Write::Add => pairs.for_each(|(d, (&xv, &dyv))| *d += grad(xv, dyv)),
                }
            });
        }
        Ok(())
    }
}
