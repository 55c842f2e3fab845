//! Helpers shared by the kernel tests: seeded random data, a mixed
//! absolute + relative per-element comparison, and a float64 central
//! finite-difference gradient check.
//!
//! Each test binary includes this file with `mod common;` and uses only part
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod cli;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A deterministic generator: every test draws from a fixed seed so that a
/// failure reproduces exactly.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` values uniform in `[-1, 1)`.
pub fn uniform(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `n` values uniform in `[lo, hi)`.
pub fn uniform_in(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// `n` values with `|v| ∈ [gap, 1)` and a random sign: inputs of ReLU-like
/// kinks stay further than `gap` from the kink, so a finite-difference step
/// `h ≪ gap` never crosses it.
pub fn away_from_zero(rng: &mut StdRng, n: usize, gap: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let m = rng.random_range(gap..1.0);
            if rng.random::<bool>() { m } else { -m }
        })
        .collect()
}

/// `n` pairwise distinct values in `[-1, 1]`, any two at least `2/n · 0.8`
/// apart: a random permutation of an even grid, jittered by less than a
/// tenth of the spacing. Max pooling then has no ties.
pub fn distinct(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let step = 2.0 / n as f64;
    let mut v: Vec<f64> = (0..n).map(|i| -1.0 + step * (i as f64 + 0.5 + rng.random_range(-0.1..0.1))).collect();
    v.shuffle(rng);
    v
}

/// `Σ r ⊙ y`: the scalar whose gradient with respect to `y` is `r`.
pub fn project(r: &[f64], y: &[f64]) -> f64 {
    assert_eq!(r.len(), y.len(), "project: length mismatch");
    r.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// `a − b` elementwise: what a backward kernel added to a gradient buffer
/// that started at `b`.
pub fn delta(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "delta: length mismatch");
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Per element `|got − want| ≤ atol + rtol·max(|got|, |want|)`. On failure
/// panics with the worst element (by multiple of its tolerance): its index,
/// both values, the error and the tolerance.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: got {} elements, expected {}", got.len(), want.len());
    // Error as a multiple of the element's tolerance; NaN on either side is infinite.
    let ratio = |g: f64, w: f64| {
        let err = (g - w).abs();
        if err.is_nan() { f64::INFINITY } else { err / (atol + rtol * g.abs().max(w.abs())) }
    };
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let r = ratio(g, w);
        if r > 1.0 && worst.is_none_or(|(_, rw)| r > rw) {
            worst = Some((i, r));
        }
    }
    if let Some((i, ratio_i)) = worst {
        let (g, w) = (got[i], want[i]);
        let bad = got.iter().zip(want).filter(|&(&g, &w)| ratio(g, w) > 1.0).count();
        panic!(
            "{what}: {bad} of {} elements out of tolerance; worst [{i}]: got {g:.12e}, expected {w:.12e}, \
             error {:.3e} is {ratio_i:.1}× the tolerance {:.3e} (atol {atol:.1e}, rtol {rtol:.1e})",
            got.len(),
            (g - w).abs(),
            atol + rtol * g.abs().max(w.abs())
        );
    }
}

/// Step of the central differences. The truncation error is `O(h²)·f'''`,
/// ~1e-12 for the O(1) functions tested; the rounding error is
/// `~ε·|f|/h ≈ 1e-16·|f|/1e-6 = 1e-10·|f|`, and |f| stays below ~10.
pub const H: f64 = 1e-6;

/// Tolerances of an f64 analytic gradient against f64 central differences:
/// two orders of magnitude above the ~1e-9 error budget of `H`, many orders
/// below any real mistake (a wrong term is O(1e-2) or larger).
pub const FD_ATOL: f64 = 1e-7;
pub const FD_RTOL: f64 = 1e-6;

/// Central differences of `f` at `x`: `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h`.
pub fn numeric_grad(x: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            xs[i] = x[i] + H;
            let fp = f(&xs);
            xs[i] = x[i] - H;
            let fm = f(&xs);
            xs[i] = x[i];
            (fp - fm) / (2.0 * H)
        })
        .collect()
}

/// Checks one analytic gradient against central differences of `f` at `x`.
///
/// `before` is what the gradient buffer held when backward started and
/// `after` what it held when backward returned; backward must have *added*
/// the gradient, so `after − before` is compared. Starting from random
/// nonzero `before` makes an overwriting kernel fail here.
pub fn check_grad(what: &str, x: &[f64], before: &[f64], after: &[f64], f: impl FnMut(&[f64]) -> f64) {
    assert!(before.iter().any(|&v| v != 0.0), "{what}: start the gradient buffer nonzero to test accumulation");
    let num = numeric_grad(x, f);
    // A gradient that is zero everywhere would make the check vacuous.
    assert!(num.iter().any(|v| v.abs() > 1e-3), "{what}: numeric gradient is (near) zero, the check proves nothing");
    assert_close(what, &delta(after, before), &num, FD_ATOL, FD_RTOL);
}

/// Says on the terminal that a test was skipped and why. Written to the
/// stderr handle directly: the test harness captures `eprintln!` of passing
/// tests, and a skip must be visible in a plain `cargo test`.
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// A search small enough for a test: synthetic 16×16 data, C = 4, 3
/// cells, batch 8, one epoch of `steps` steps, no test images.
pub fn tiny_search(algo: rarts::search::algo::Algo, steps: usize) -> rarts::search::config::SearchConfig {
    use rarts::search::config::{SearchConfig, StepConfig};
    SearchConfig {
        step: StepConfig {
            data: rarts::data::DataSpec::Synthetic { n: 64, side: 16 },
            algo,
            c: 4,
            layers: 3,
            batch: 8,
            seed: 7,
            ..StepConfig::default()
        },
        epochs: 1,
        steps_per_epoch: Some(steps),
        eval_images: Some(0),
        run: rarts::rundir::RunOptions::new(std::env::temp_dir().join("rarts-tiny-search-unused")).quiet(),
        ..Default::default()
    }
}

/// A chain's geometry (ReLU → depthwise → 1×1 → BatchNorm, as a sep_conv or
/// dil_conv records it) from `(n, channels per network, networks, h, w, k,
/// stride, dilation, cout per network)`.
pub fn chain_geom(
    case: (usize, usize, usize, usize, usize, usize, usize, usize, usize),
) -> rarts::ops::conv::ChainGeom {
    use rarts::ops::conv::{ChainGeom, ConvGeom};
    let (n, c, nets, h, w, k, stride, dil, cout) = case;
    let pad = dil * (k - 1) / 2;
    let (oh, ow) = (ConvGeom::out_len(h, k, stride, pad, dil), ConvGeom::out_len(w, k, stride, pad, dil));
    let cin = c * nets;
    let dw = ConvGeom { n, cin, h, w, cout: cin, oh, ow, k, stride, pad, dil, groups: cin, relu_in: true };
    let (h, w, cout) = (oh, ow, cout * nets);
    let pw = ConvGeom { h, w, cout, k: 1, stride: 1, pad: 0, dil: 1, groups: nets, relu_in: false, ..dw };
    let bn = rarts::ops::bn::BnGeom { n, c: cout, hw: oh * ow, eps: 1e-5, momentum: 0.1 };
    ChainGeom::new(dw, pw, bn).expect("a chain")
}
