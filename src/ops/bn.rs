//! BatchNorm over (n, c, hw): batch statistics in training, running
//! statistics in evaluation. The statistics are accumulated in f64.

use crate::geom::BnGeom;
use crate::par;
use crate::real::Real;

/// Per-channel sums over the batch, `f(n-plane slice) -> value` summed.
fn per_channel(g: &BnGeom, f: impl Fn(usize, usize) -> f64 + Sync) -> Vec<f64> {
    par::map(g.c, g.n * g.c * g.hw, |c| (0..g.n).map(|n| f(n, c)).sum())
}

#[allow(clippy::too_many_arguments)]
pub fn bn_fwd_train<T: Real>(
    g: &BnGeom,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    y: &mut [T],
    saved: &mut [T],
    running_mean: &mut [T],
    running_var: &mut [T],
) {
    let (hw, cnt) = (g.hw, (g.n * g.hw) as f64);
    let plane = |n: usize, c: usize| &x[(n * g.c + c) * hw..][..hw];
    let mean: Vec<f64> =
        per_channel(g, |n, c| plane(n, c).iter().map(|v| v.to_f64()).sum()).into_iter().map(|s| s / cnt).collect();
    let var: Vec<f64> = per_channel(g, |n, c| plane(n, c).iter().map(|v| (v.to_f64() - mean[c]).powi(2)).sum())
        .into_iter()
        .map(|s| s / cnt)
        .collect();
    let m = g.momentum as f64;
    for c in 0..g.c {
        let inv = 1.0 / (var[c] + g.eps as f64).sqrt();
        saved[c] = T::from_f64(mean[c]);
        saved[g.c + c] = T::from_f64(inv);
        let unbiased = if cnt > 1.0 { var[c] * cnt / (cnt - 1.0) } else { var[c] };
        running_mean[c] = T::from_f64((1.0 - m) * running_mean[c].to_f64() + m * mean[c]);
        running_var[c] = T::from_f64((1.0 - m) * running_var[c].to_f64() + m * unbiased);
    }
    let (mean_t, inv_t) = saved.split_at(g.c);
    apply(g, x, gamma, beta, mean_t, inv_t, y);
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

#[allow(clippy::too_many_arguments)]
pub fn bn_fwd_eval<T: Real>(
    g: &BnGeom,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    running_mean: &[T],
    running_var: &[T],
    y: &mut [T],
) {
    let inv: Vec<T> = running_var.iter().map(|&v| T::from_f64(1.0 / (v.to_f64() + g.eps as f64).sqrt())).collect();
    apply(g, x, gamma, beta, running_mean, &inv, y);
}

/// `dx += inv/N · (N·dŷ − Σdŷ − x̂·Σ(dŷ·x̂))` with `dŷ = γ·dy`;
/// `dγ += Σ dy·x̂`; `dβ += Σ dy`.
#[allow(clippy::too_many_arguments)]
pub fn bn_bwd<T: Real>(
    g: &BnGeom,
    x: &[T],
    gamma: Option<&[T]>,
    saved: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    let hw = g.hw;
    let (mean, inv) = saved.split_at(g.c);
    let xhat = |n: usize, c: usize, i: usize| (x[(n * g.c + c) * hw + i] - mean[c]) * inv[c];
    let sum_dy = per_channel(g, |n, c| dy[(n * g.c + c) * hw..][..hw].iter().map(|v| v.to_f64()).sum());
    let sum_dy_xhat =
        per_channel(g, |n, c| (0..hw).map(|i| (dy[(n * g.c + c) * hw + i] * xhat(n, c, i)).to_f64()).sum());
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
    if let Some(dx) = dx {
        let cnt = (g.n * hw) as f64;
        par::for_chunks(dx, hw, x.len(), |p, dxp| {
            let (n, c) = (p / g.c, p % g.c);
            let gm = gamma.map_or(T::ONE, |gm| gm[c]);
            let k = gm * inv[c];
            let a = T::from_f64(sum_dy[c] / cnt);
            let b = T::from_f64(sum_dy_xhat[c] / cnt);
            for (i, d) in dxp.iter_mut().enumerate() {
                *d += k * (dy[p * hw + i] - a - xhat(n, c, i) * b);
            }
        });
    }
}
