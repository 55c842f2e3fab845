//! Every fast convolution path of the CPU backend (src/ops/conv: depthwise,
//! gemm) against the straightforward reference (src/ops/conv/reference.rs),
//! forward, backward-data and backward-filter, in f64 and f32, on random
//! shapes: odd sizes, stride 2, dilation 2, the input ReLU on and off, and
//! groups that fall back to the reference.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::{ConvOps, Cpu, Write};
use rarts::ops::conv::{self, ConvGeom, Path, reference};
use rarts::real::Real;
use std::sync::{Mutex, MutexGuard};

/// `force_baseline` is process-wide and the tests of this file run on
/// several threads: each holds this lock, so that no comparison (the
/// bit-identity checks above all) sees the variant switch halfway.
static VARIANT: Mutex<()> = Mutex::new(());

fn variant_lock() -> MutexGuard<'static, ()> {
    VARIANT.lock().unwrap_or_else(|e| e.into_inner())
}

#[allow(clippy::too_many_arguments)]
fn geom(
    n: usize,
    cin: usize,
    cout: usize,
    hw: (usize, usize),
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    relu_in: bool,
) -> ConvGeom {
    let oh = ConvGeom::out_len(hw.0, k, stride, pad, dil);
    let ow = ConvGeom::out_len(hw.1, k, stride, pad, dil);
    ConvGeom { n, cin, h: hw.0, w: hw.1, cout, oh, ow, k, stride, pad, dil, groups, relu_in }
}

/// The geometries of the DARTS space and odd variants of them.
fn cases() -> Vec<(ConvGeom, Path)> {
    let mut v = Vec::new();
    for &(k, dil) in &[(3, 1), (5, 1), (3, 2), (5, 2)] {
        for &stride in &[1, 2] {
            for &relu in &[true, false] {
                let pad = dil * (k - 1) / 2;
                v.push((geom(2, 3, 3, (7, 9), k, stride, pad, dil, 3, relu), Path::Depthwise));
                v.push((geom(3, 5, 5, (8, 8), k, stride, pad, dil, 5, relu), Path::Depthwise));
            }
        }
    }
    // Unpadded and over-padded depthwise.
    v.push((geom(1, 2, 2, (6, 5), 3, 1, 0, 1, 2, true), Path::Depthwise));
    v.push((geom(2, 2, 2, (5, 6), 3, 2, 3, 1, 2, false), Path::Depthwise));
    // Big enough to run on several threads.
    v.push((geom(4, 16, 16, (20, 20), 5, 1, 2, 1, 16, true), Path::Depthwise));
    v.push((geom(4, 16, 16, (21, 21), 3, 2, 2, 2, 16, true), Path::Depthwise));
    // 1×1: plain, ReLU, stride 2 (FactorizedReduce), odd channel counts.
    for &relu in &[false, true] {
        v.push((geom(2, 6, 5, (7, 9), 1, 1, 0, 1, 1, relu), Path::Gemm));
        v.push((geom(3, 4, 8, (8, 8), 1, 1, 0, 1, 1, relu), Path::Gemm));
        v.push((geom(2, 7, 3, (9, 7), 1, 2, 0, 1, 1, relu), Path::Gemm));
        v.push((geom(4, 32, 24, (16, 16), 1, 1, 0, 1, 1, relu), Path::Gemm));
    }
    // Dense: the stem (3×3, pad 1), stride 2 with dilation 2, a padded 1×1.
    v.push((geom(2, 3, 10, (9, 11), 3, 1, 1, 1, 1, false), Path::Gemm));
    v.push((geom(4, 3, 48, (16, 16), 3, 1, 1, 1, 1, false), Path::Gemm));
    v.push((geom(2, 4, 5, (9, 8), 3, 2, 2, 2, 1, true), Path::Gemm));
    v.push((geom(1, 3, 2, (5, 5), 1, 1, 1, 1, 1, true), Path::Gemm));
    // Grouped but not depthwise: products per group. Two groups are RARTS's
    // `w` and `y` networks side by side (1×1 plain, ReLU and stride 2; the stem).
    v.push((geom(2, 4, 6, (7, 7), 3, 1, 1, 1, 2, true), Path::Gemm));
    v.push((geom(2, 3, 6, (7, 7), 3, 1, 1, 1, 3, false), Path::Gemm));
    for &relu in &[false, true] {
        v.push((geom(2, 10, 38, (7, 9), 1, 1, 0, 1, 2, relu), Path::Gemm));
        v.push((geom(2, 12, 8, (9, 7), 1, 2, 0, 1, 2, relu), Path::Gemm));
    }
    v.push((geom(2, 6, 20, (9, 11), 3, 1, 1, 1, 2, false), Path::Gemm));
    v
}

fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn to<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Per-element `|got − want| ≤ atol + rtol·|want|`; panics with the worst offender.
fn assert_close(what: &str, g: &ConvGeom, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0, 0);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let r = (a - b).abs() / (atol + rtol * b.abs());
        if r.is_nan() || r > worst.0 {
            worst = (r, i);
        }
    }
    let (r, i) = worst;
    assert!(r <= 1.0, "{what} {g:?}: [{i}] got {:.9e}, reference {:.9e}: {r:.1}× the tolerance", got[i], want[i]);
}

/// Runs the three kernels of `Cpu<T>` and of the reference at f64
/// on the same data; backward kernels start from nonzero gradients to check
/// that they accumulate, and the data gradient also from NaNs to check that
/// it overwrites when told to.
fn compare<T: Real>(g: &ConvGeom, seed: u64, atol: f64, rtol: f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (xs, ws, ys) = (g.x_shape().numel(), g.w_shape().numel(), g.y_shape().numel());
    let (x, w, dy) = (rand_vec(&mut rng, xs), rand_vec(&mut rng, ws), rand_vec(&mut rng, ys));
    let (dx0, dw0) = (rand_vec(&mut rng, xs), rand_vec(&mut rng, ws));
    let f64s = |v: Vec<T>| v.into_iter().map(|e| e.to_f64()).collect::<Vec<_>>();
    let cpu = Cpu::<T>::new();

    let mut y_ref = vec![0.0; ys];
    reference::conv2d_fwd(g, &x, &w, &mut y_ref);
    let mut y = vec![T::from_f64(7.0); ys];
    cpu.conv2d_fwd(g, &to(&x), &to(&w), &mut y).unwrap();
    assert_close("forward", g, &f64s(y), &y_ref, atol, rtol);

    let mut dx_ref = dx0.clone();
    reference::conv2d_bwd_data(g, &x, &w, &dy, &mut dx_ref, Write::Add);
    let mut dx = to::<T>(&dx0);
    cpu.conv2d_bwd_data(g, &to(&x), &to(&w), &to(&dy), &mut dx, Write::Add).unwrap();
    assert_close("backward data", g, &f64s(dx), &dx_ref, atol, rtol);

    let mut dx_ref = vec![f64::NAN; xs];
    reference::conv2d_bwd_data(g, &x, &w, &dy, &mut dx_ref, Write::Set);
    let mut dx = vec![T::from_f64(f64::NAN); xs];
    cpu.conv2d_bwd_data(g, &to(&x), &to(&w), &to(&dy), &mut dx, Write::Set).unwrap();
    assert_close("backward data, overwriting", g, &f64s(dx), &dx_ref, atol, rtol);

    let mut dw_ref = dw0.clone();
    reference::conv2d_bwd_filter(g, &x, &dy, &mut dw_ref);
    let mut dw = to::<T>(&dw0);
    cpu.conv2d_bwd_filter(g, &to(&x), &to(&dy), &mut dw, Write::Add).unwrap();
    assert_close("backward filter", g, &f64s(dw.clone()), &dw_ref, atol, rtol);

    let mut dw_set_ref = vec![0.0; ws];
    reference::conv2d_bwd_filter(g, &x, &dy, &mut dw_set_ref);
    let mut dw_set = vec![T::from_f64(f64::NAN); ws];
    cpu.conv2d_bwd_filter(g, &to(&x), &to(&dy), &mut dw_set, Write::Set).unwrap();
    assert_close("backward filter, overwriting", g, &f64s(dw_set.clone()), &dw_set_ref, atol, rtol);

    // Both gradients in one call (one pass for depthwise stride 1) equal the
    // separate calls to the bit, in both write modes, and either alone.
    let (xt, wt, dyt) = (to::<T>(&x), to::<T>(&w), to::<T>(&dy));
    for write in [Write::Add, Write::Set] {
        let mut dx_sep = to::<T>(&dx0);
        cpu.conv2d_bwd_data(g, &xt, &wt, &dyt, &mut dx_sep, write).unwrap();
        let (mut dx_both, mut dw_both) = (to::<T>(&dx0), to::<T>(&dw0));
        cpu.conv2d_bwd(g, &xt, &wt, &dyt, Some((&mut dx_both, write)), Some((&mut dw_both, Write::Add))).unwrap();
        assert!(dx_both == dx_sep, "{g:?}: data gradient of the combined call ({write:?})");
        assert!(dw_both == dw, "{g:?}: filter gradient of the combined call ({write:?})");
        let (mut dx_both, mut dw_both) = (to::<T>(&dx0), vec![T::from_f64(f64::NAN); ws]);
        cpu.conv2d_bwd(g, &xt, &wt, &dyt, Some((&mut dx_both, write)), Some((&mut dw_both, Write::Set))).unwrap();
        assert!(dx_both == dx_sep, "{g:?}: data gradient of the combined call, filter overwriting ({write:?})");
        assert!(dw_both == dw_set, "{g:?}: filter gradient of the combined call, overwriting ({write:?})");
        let mut dx_only = to::<T>(&dx0);
        cpu.conv2d_bwd(g, &xt, &wt, &dyt, Some((&mut dx_only, write)), None).unwrap();
        assert!(dx_only == dx_sep, "{g:?}: data gradient alone ({write:?})");
    }
    let mut dw_only = to::<T>(&dw0);
    cpu.conv2d_bwd(g, &xt, &wt, &dyt, None, Some((&mut dw_only, Write::Add))).unwrap();
    assert!(dw_only == dw, "{g:?}: filter gradient alone");
}

#[test]
fn every_case_takes_the_expected_path() {
    for (g, p) in cases() {
        assert_eq!(conv::path(&g), p, "{g:?}");
    }
}

/// In f64 the paths differ from the reference only by summation order:
/// sums of at most a few thousand O(1) terms, rounding ~1e-16 each.
#[test]
fn fast_paths_match_reference_f64() {
    let _v = variant_lock();
    for (i, (g, _)) in cases().into_iter().enumerate() {
        compare::<f64>(&g, 100 + i as u64, 1e-12, 1e-10);
    }
}

/// In f32 the rounding of sums of up to a few thousand terms of size ≤ 1:
/// ~1e-7 relative per add, a few 1e-5 absolute at worst.
#[test]
fn fast_paths_match_reference_f32() {
    let _v = variant_lock();
    for (i, (g, _)) in cases().into_iter().enumerate() {
        compare::<f32>(&g, 200 + i as u64, 1e-4, 1e-4);
    }
}

/// The same in the baseline variants (no AVX2 / FMA), which a CPU with AVX2
/// never runs otherwise: the gemm there uses 8-column blocks.
#[test]
fn baseline_variants_match_reference() {
    let _v = variant_lock();
    /// Switches the baseline off again however the test ends.
    struct Baseline;
    impl Drop for Baseline {
        fn drop(&mut self) {
            rarts::ops::simd::force_baseline(false);
        }
    }
    let _b = Baseline;
    rarts::ops::simd::force_baseline(true);
    for (i, (g, _)) in cases().into_iter().enumerate() {
        compare::<f64>(&g, 300 + i as u64, 1e-12, 1e-10);
        compare::<f32>(&g, 400 + i as u64, 1e-4, 1e-4);
    }
}
