//! Every kernel of the `Backend` trait on `Cpu::<f64>`, one test per op
//! family: the forward against a direct transcription of its formula, every
//! backward against float64 central differences of `Σ r ⊙ forward(…)` with a
//! fixed random `r` (so backward receives `dy = r`). Every gradient buffer
//! starts at a random nonzero value and the check is on what backward added
//! to it, so a kernel that overwrites instead of accumulating fails.
//! A last test runs the same kernels in f32 against f64.

mod common;

use common::{FD_ATOL, FD_RTOL, assert_close, away_from_zero, check_grad, distinct, project, rng, uniform, uniform_in};
use rarts::backend::{BnOps, ConvOps, Cpu, Device, ElementwiseOps, LayoutOps, LinearOps, PoolOps, SoftmaxOps, Write};
use rarts::ops::bn::BnGeom;
use rarts::ops::conv::ConvGeom;
use rarts::ops::elementwise::{MixGrad, ScaleGeom};
use rarts::ops::layout::ChannelSlice;
use rarts::ops::pool::PoolGeom;

/// Forward outputs are compared with a direct loop over the formula: the
/// same f64 arithmetic in a different order, so only rounding (≤ ~1e-15
/// relative for these sizes) separates them.
const FWD_ATOL: f64 = 1e-12;
const FWD_RTOL: f64 = 1e-12;

fn be() -> Cpu<f64> {
    Cpu::<f64>::new()
}

/// A kernel told to overwrite (`Write::Set`) a buffer of NaNs writes every
/// element, and exactly what it adds to a buffer of zeros.
fn set_is_add_to_zero(what: &str, len: usize, kernel: impl Fn(&mut Vec<f64>, Write)) {
    let (mut set, mut add) = (vec![f64::NAN; len], vec![0.0; len]);
    kernel(&mut set, Write::Set);
    kernel(&mut add, Write::Add);
    assert!(set.iter().all(|v| !v.is_nan()), "{what}: Write::Set left elements unwritten");
    assert_eq!(set, add, "{what}: Write::Set differs from adding to zeros");
}

// ---- convolution ------------------------------------------------------------

/// `(n, cin, cout, h, w, k, stride, pad, dil, groups, relu_in)`
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize, usize, usize, bool);

fn conv_geom(c: ConvCase) -> ConvGeom {
    let (n, cin, cout, h, w, k, stride, pad, dil, groups, relu_in) = c;
    let oh = ConvGeom::out_len(h, k, stride, pad, dil);
    let ow = ConvGeom::out_len(w, k, stride, pad, dil);
    ConvGeom { n, cin, h, w, cout, oh, ow, k, stride, pad, dil, groups, relu_in }
}

/// The convolution's specification (`src/ops/conv/reference.rs`, the one
/// place its semantics are written), which the backend's fast paths must
/// match.
fn conv_ref(g: &ConvGeom, x: &[f64], w: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; g.y_shape().numel()];
    rarts::ops::conv::reference::conv2d_fwd(g, x, w, &mut y);
    y
}

fn conv_fwd(g: &ConvGeom, x: &[f64], w: &[f64]) -> Vec<f64> {
    let mut y = vec![f64::NAN; g.n * g.cout * g.oh * g.ow];
    be().conv2d_fwd(g, &x.to_vec(), &w.to_vec(), &mut y).unwrap();
    y
}

fn check_conv(c: ConvCase, seed: u64) {
    let g = conv_geom(c);
    let what = format!("conv {g:?}");
    let mut rng = rng(seed);
    let xn = g.n * g.cin * g.h * g.w;
    let wn = g.cout * (g.cin / g.groups) * g.k * g.k;
    // With relu_in the kernel has a kink at x = 0: keep x 0.05 ≫ H away.
    let x = if g.relu_in { away_from_zero(&mut rng, xn, 0.05) } else { uniform(&mut rng, xn) };
    let w = uniform(&mut rng, wn);
    let y = conv_fwd(&g, &x, &w);
    assert_close(&format!("{what} forward"), &y, &conv_ref(&g, &x, &w), FWD_ATOL, FWD_RTOL);
    if g.relu_in {
        assert!(x.iter().any(|&v| v < 0.0), "{what}: relu_in needs negative inputs to mean anything");
    }

    let r = uniform(&mut rng, y.len());
    let dx0 = uniform(&mut rng, xn);
    let mut dx = dx0.clone();
    be().conv2d_bwd_data(&g, &x, &w, &r, &mut dx, Write::Add).unwrap();
    check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |xs| project(&r, &conv_fwd(&g, xs, &w)));
    set_is_add_to_zero(&format!("{what} d_x"), xn, |d, write| be().conv2d_bwd_data(&g, &x, &w, &r, d, write).unwrap());

    let dw0 = uniform(&mut rng, wn);
    let mut dw = dw0.clone();
    be().conv2d_bwd_filter(&g, &x, &r, &mut dw, Write::Add).unwrap();
    check_grad(&format!("{what} d_w"), &w, &dw0, &dw, |ws| project(&r, &conv_fwd(&g, &x, ws)));
    set_is_add_to_zero(&format!("{what} d_w"), wn, |d, write| be().conv2d_bwd_filter(&g, &x, &r, d, write).unwrap());
}

#[test]
fn conv2d_dense_3x3() {
    check_conv((2, 3, 5, 7, 5, 3, 1, 1, 1, 1, true), 101);
    check_conv((2, 3, 5, 7, 5, 3, 1, 1, 1, 1, false), 102);
    check_conv((2, 5, 6, 7, 7, 3, 2, 1, 1, 1, true), 103);
    check_conv((1, 6, 3, 6, 5, 3, 2, 1, 1, 1, false), 104);
}

#[test]
fn conv2d_pointwise_1x1() {
    check_conv((2, 5, 3, 6, 5, 1, 1, 0, 1, 1, true), 111);
    check_conv((3, 3, 6, 5, 7, 1, 1, 0, 1, 1, false), 112);
    // FactorizedReduce: 1×1 stride 2 on an odd and an even size.
    check_conv((2, 6, 3, 7, 6, 1, 2, 0, 1, 1, true), 113);
    check_conv((2, 5, 5, 5, 5, 1, 2, 0, 1, 1, false), 114);
}

#[test]
fn conv2d_depthwise_3x3() {
    // sep_conv_3x3: pad 1; dil_conv_3x3: dilation 2, pad 2.
    check_conv((2, 5, 5, 7, 7, 3, 1, 1, 1, 5, false), 121);
    check_conv((2, 6, 6, 7, 5, 3, 2, 1, 1, 6, true), 122);
    check_conv((2, 3, 3, 7, 7, 3, 1, 2, 2, 3, true), 123);
    check_conv((1, 5, 5, 9, 7, 3, 2, 2, 2, 5, false), 124);
}

#[test]
fn conv2d_depthwise_5x5() {
    // sep_conv_5x5: pad 2; dil_conv_5x5: dilation 2, pad 4.
    check_conv((2, 3, 3, 7, 7, 5, 1, 2, 1, 3, true), 131);
    check_conv((2, 5, 5, 8, 7, 5, 2, 2, 1, 5, false), 132);
    check_conv((1, 3, 3, 9, 9, 5, 1, 4, 2, 3, true), 133);
    check_conv((2, 3, 3, 9, 8, 5, 2, 4, 2, 3, false), 134);
}

#[test]
fn conv2d_dense_2x2_and_1x1_auxiliary_head() {
    // DARTS' auxiliary head: a 1×1 conv on the pooled 2×2 map, then a 2×2
    // conv without padding that leaves 1×1 (ReLU fused on its input).
    check_conv((2, 6, 4, 2, 2, 1, 1, 0, 1, 1, false), 151);
    check_conv((3, 4, 7, 2, 2, 2, 1, 0, 1, 1, true), 152);
    // 2×2 on larger, odd planes, stride 2, and padding 1.
    check_conv((2, 3, 5, 5, 4, 2, 1, 0, 1, 1, false), 153);
    check_conv((2, 3, 4, 7, 6, 2, 2, 1, 1, 1, true), 154);
}

#[test]
fn conv2d_grouped() {
    // 2 groups of 3 → 2 channels; 3 groups of 2 → 3 channels; stride 2 + dilation 2.
    check_conv((2, 6, 4, 5, 5, 3, 1, 1, 1, 2, true), 141);
    check_conv((1, 6, 9, 5, 7, 3, 2, 1, 1, 3, false), 142);
    check_conv((2, 6, 6, 7, 7, 3, 2, 2, 2, 3, true), 143);
}

// ---- pooling ----------------------------------------------------------------

/// 3×3 window, padding 1, as in the search space.
fn pool_geom(n: usize, c: usize, h: usize, w: usize, stride: usize) -> PoolGeom {
    let out = |len: usize| (len + 2 - 3) / stride + 1;
    PoolGeom { n, c, h, w, oh: out(h), ow: out(w), k: 3, stride, pad: 1 }
}

const POOL_CASES: [(usize, usize, usize, usize, usize); 4] =
    [(2, 3, 5, 7, 1), (2, 5, 7, 6, 2), (1, 6, 6, 6, 2), (3, 3, 5, 5, 2)];

/// `(reduce over the in-bounds window values, count)` for each output.
fn pool_ref(g: &PoolGeom, x: &[f64], reduce: fn(&[f64]) -> f64) -> Vec<f64> {
    let mut y = Vec::new();
    for p in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut win = Vec::new();
                for dy in 0..g.k {
                    for dx in 0..g.k {
                        let iy = (oy * g.stride + dy) as isize - g.pad as isize;
                        let ix = (ox * g.stride + dx) as isize - g.pad as isize;
                        if iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize {
                            win.push(x[(p * g.h + iy as usize) * g.w + ix as usize]);
                        }
                    }
                }
                y.push(reduce(&win));
            }
        }
    }
    y
}

#[test]
fn max_pool_3x3() {
    for (i, &(n, c, h, w, s)) in POOL_CASES.iter().enumerate() {
        let g = pool_geom(n, c, h, w, s);
        let what = format!("max pool {g:?}");
        let mut rng = rng(200 + i as u64);
        // Distinct values ≥ 2/420·0.8 ≈ 4e-3 apart: no ties, and H never
        // changes which element is the maximum.
        let x = distinct(&mut rng, n * c * h * w);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; n * c * g.oh * g.ow];
            be().max_pool_fwd(&g, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        let want = pool_ref(&g, &x, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        assert_close(&format!("{what} forward"), &y, &want, 0.0, 0.0);
        let r = uniform(&mut rng, y.len());
        let dx0 = uniform(&mut rng, x.len());
        let mut dx = dx0.clone();
        be().max_pool_bwd(&g, &x, &y, &r, &mut dx, Write::Add).unwrap();
        check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
        set_is_add_to_zero(&format!("{what} d_x"), x.len(), |d, write| {
            be().max_pool_bwd(&g, &x, &y, &r, d, write).unwrap()
        });
    }
}

#[test]
fn max_pool_ignores_padding_for_negative_inputs() {
    // All inputs negative: a padded zero must never win the max.
    let g = pool_geom(1, 1, 4, 5, 2);
    let x: Vec<f64> = (0..20).map(|i| -1.0 - i as f64).collect();
    let mut y = vec![0.0; g.oh * g.ow];
    be().max_pool_fwd(&g, &x, &mut y).unwrap();
    assert!(y.iter().all(|&v| v < 0.0), "max pool selected padding: {y:?}");
    assert_eq!(y[0], -1.0, "top-left window is x[0..2, 0..2], its max is x[0, 0]");
}

#[test]
fn avg_pool_3x3() {
    for (i, &(n, c, h, w, s)) in POOL_CASES.iter().enumerate() {
        let g = pool_geom(n, c, h, w, s);
        let what = format!("avg pool {g:?}");
        let mut rng = rng(300 + i as u64);
        let x = uniform(&mut rng, n * c * h * w);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; n * c * g.oh * g.ow];
            be().avg_pool_fwd(&g, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        // Padding not counted: the divisor is the number of in-bounds elements.
        let want = pool_ref(&g, &x, |v| v.iter().sum::<f64>() / v.len() as f64);
        assert_close(&format!("{what} forward"), &y, &want, FWD_ATOL, FWD_RTOL);
        // The top-left window always covers x[0..2, 0..2] only: 4 elements, not 9.
        let corner = (x[0] + x[1] + x[w] + x[w + 1]) / 4.0;
        assert_close(&format!("{what} corner"), &y[..1], &[corner], FWD_ATOL, FWD_RTOL);
        let r = uniform(&mut rng, y.len());
        let dx0 = uniform(&mut rng, x.len());
        let mut dx = dx0.clone();
        be().avg_pool_bwd(&g, &r, &mut dx, Write::Add).unwrap();
        check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
        set_is_add_to_zero(&format!("{what} d_x"), x.len(), |d, write| be().avg_pool_bwd(&g, &r, d, write).unwrap());
    }
}

#[test]
fn avg_pool_5x5_stride_3_auxiliary_head() {
    // DARTS' auxiliary head: AvgPool2d(5, stride=3, padding=0,
    // count_include_pad=False) on an 8×8 map gives 2×2 windows of 25 that
    // overlap in rows/columns 3 and 4; a 9×7 map adds a clipped-free odd case,
    // and pad 2 (k/2) windows that count fewer than 25 elements.
    for (i, &(n, c, h, w, k, s, pad)) in
        [(2, 3, 8, 8, 5, 3, 0), (1, 2, 9, 7, 5, 3, 0), (2, 2, 7, 8, 5, 3, 2), (1, 3, 6, 6, 2, 2, 0)].iter().enumerate()
    {
        let out = |len: usize| (len + 2 * pad - k) / s + 1;
        let g = PoolGeom { n, c, h, w, oh: out(h), ow: out(w), k, stride: s, pad };
        let what = format!("avg pool {g:?}");
        let mut rng = rng(350 + i as u64);
        let x = uniform(&mut rng, n * c * h * w);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; n * c * g.oh * g.ow];
            be().avg_pool_fwd(&g, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        let want = pool_ref(&g, &x, |v| v.iter().sum::<f64>() / v.len() as f64);
        assert_close(&format!("{what} forward"), &y, &want, FWD_ATOL, FWD_RTOL);
        if (h, w, pad) == (8, 8, 0) {
            assert_eq!((g.oh, g.ow), (2, 2));
            let win: f64 = (0..5).flat_map(|r| (0..5).map(move |q| (r, q))).map(|(r, q)| x[r * w + q]).sum();
            assert_close(&format!("{what} first window"), &y[..1], &[win / 25.0], FWD_ATOL, FWD_RTOL);
        }
        let r = uniform(&mut rng, y.len());
        let dx0 = uniform(&mut rng, x.len());
        let mut dx = dx0.clone();
        be().avg_pool_bwd(&g, &r, &mut dx, Write::Add).unwrap();
        check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
        set_is_add_to_zero(&format!("{what} d_x"), x.len(), |d, write| be().avg_pool_bwd(&g, &r, d, write).unwrap());
    }
}

// ---- batch norm ---------------------------------------------------------------

/// Training-mode forward with throwaway running statistics: `(y, saved)`.
fn bn_train(g: &BnGeom, x: &[f64], gamma: Option<&Vec<f64>>, beta: Option<&Vec<f64>>) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![f64::NAN; x.len()];
    let mut saved = vec![f64::NAN; 2 * g.c];
    let (mut rm, mut rv) = (vec![0.0; g.c], vec![1.0; g.c]);
    be().bn_fwd_train(g, &x.to_vec(), gamma, beta, &mut y, &mut saved, &mut rm, &mut rv).unwrap();
    (y, saved)
}

/// Per channel over `(n, hw)`: `(mean, biased variance)`.
fn channel_stats(g: &BnGeom, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let cnt = (g.n * g.hw) as f64;
    let vals = |c: usize| (0..g.n).flat_map(move |n| (0..g.hw).map(move |i| (n * g.c + c) * g.hw + i));
    let mean: Vec<f64> = (0..g.c).map(|c| vals(c).map(|i| x[i]).sum::<f64>() / cnt).collect();
    let var = (0..g.c).map(|c| vals(c).map(|i| (x[i] - mean[c]).powi(2)).sum::<f64>() / cnt).collect();
    (mean, var)
}

/// `y = γ·(x − mean)/√(var + ε) + β`, per channel.
fn bn_ref(
    g: &BnGeom,
    x: &[f64],
    gamma: Option<&Vec<f64>>,
    beta: Option<&Vec<f64>>,
    mean: &[f64],
    var: &[f64],
) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let c = i / g.hw % g.c;
            let (gm, bt) = (gamma.map_or(1.0, |v| v[c]), beta.map_or(0.0, |v| v[c]));
            gm * (x[i] - mean[c]) / (var[c] + g.eps as f64).sqrt() + bt
        })
        .collect()
}

fn check_bn(n: usize, c: usize, hw: usize, affine: bool, seed: u64) {
    let g = BnGeom { n, c, hw, eps: 1e-5, momentum: 0.1 };
    let what = format!("batch norm {g:?} affine {affine}");
    let mut rng = rng(seed);
    // An offset and scale per channel so the normalisation does something.
    let x: Vec<f64> =
        uniform(&mut rng, n * c * hw).iter().enumerate().map(|(i, v)| 2.0 * v + (i / hw % c) as f64).collect();
    let gamma = affine.then(|| uniform_in(&mut rng, c, 0.5, 1.5));
    let beta = affine.then(|| uniform(&mut rng, c));
    let (gm, bt) = (gamma.as_ref(), beta.as_ref());

    // Forward, saved statistics and the running-statistics update.
    let rm0 = uniform(&mut rng, c);
    let rv0 = uniform_in(&mut rng, c, 0.5, 1.5);
    let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
    let mut y = vec![f64::NAN; x.len()];
    let mut saved = vec![f64::NAN; 2 * c];
    be().bn_fwd_train(&g, &x, gm, bt, &mut y, &mut saved, &mut rm, &mut rv).unwrap();
    let (mean, var) = channel_stats(&g, &x);
    assert_close(&format!("{what} forward"), &y, &bn_ref(&g, &x, gm, bt, &mean, &var), FWD_ATOL, FWD_RTOL);
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + 1e-5f32 as f64).sqrt()).collect();
    assert_close(&format!("{what} saved mean"), &saved[..c], &mean, FWD_ATOL, FWD_RTOL);
    assert_close(&format!("{what} saved 1/std"), &saved[c..], &inv, FWD_ATOL, FWD_RTOL);
    let cnt = (n * hw) as f64;
    // r ← (1 − m)·r + m·stat, the variance unbiased: var · N/(N − 1). The
    // momentum reaches the kernel as f32 (0.1 + 1.5e-9), so m is that value.
    let m = 0.1f32 as f64;
    let want_rm: Vec<f64> = (0..c).map(|i| (1.0 - m) * rm0[i] + m * mean[i]).collect();
    let want_rv: Vec<f64> = (0..c).map(|i| (1.0 - m) * rv0[i] + m * var[i] * cnt / (cnt - 1.0)).collect();
    assert_close(&format!("{what} running mean"), &rm, &want_rm, FWD_ATOL, FWD_RTOL);
    assert_close(&format!("{what} running var"), &rv, &want_rv, FWD_ATOL, FWD_RTOL);
    // The biased variance in place of the unbiased one would differ by a
    // factor N/(N − 1) ≥ 1 + 1/70: make sure the check can see that.
    let biased: Vec<f64> = (0..c).map(|i| (1.0 - m) * rv0[i] + m * var[i]).collect();
    assert!(rv.iter().zip(&biased).all(|(a, b)| (a - b).abs() > 1e-6), "{what}: running var looks biased");

    // Evaluation mode normalises with the running statistics.
    let mut ye = vec![f64::NAN; x.len()];
    be().bn_fwd_eval(&g, &x, gm, bt, &rm, &rv, &mut ye).unwrap();
    assert_close(&format!("{what} eval"), &ye, &bn_ref(&g, &x, gm, bt, &rm, &rv), FWD_ATOL, FWD_RTOL);

    // Backward from the training forward's saved statistics.
    let r = uniform(&mut rng, x.len());
    let dx0 = uniform(&mut rng, x.len());
    let dg0 = uniform(&mut rng, c);
    let db0 = uniform(&mut rng, c);
    let (mut dx, mut dg, mut db) = (dx0.clone(), dg0.clone(), db0.clone());
    be().bn_bwd(
        &g,
        &x,
        gm,
        &saved,
        &r,
        Some((&mut dx, Write::Add)),
        affine.then_some(&mut dg),
        affine.then_some(&mut db),
    )
    .unwrap();
    check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |xs| project(&r, &bn_train(&g, xs, gm, bt).0));
    set_is_add_to_zero(&format!("{what} d_x"), x.len(), |d, write| {
        be().bn_bwd(&g, &x, gm, &saved, &r, Some((d, write)), None, None).unwrap()
    });
    if affine {
        let gv = gamma.clone().unwrap();
        let bv = beta.clone().unwrap();
        check_grad(&format!("{what} d_gamma"), &gv, &dg0, &dg, |gs| {
            project(&r, &bn_train(&g, &x, Some(&gs.to_vec()), bt).0)
        });
        check_grad(&format!("{what} d_beta"), &bv, &db0, &db, |bs| {
            project(&r, &bn_train(&g, &x, gm, Some(&bs.to_vec())).0)
        });
    } else {
        assert_eq!((dg, db), (dg0, db0), "{what}: no affine, yet dγ/dβ were written");
    }
}

#[test]
fn batch_norm_train_affine() {
    check_bn(2, 3, 35, true, 401);
    check_bn(4, 5, 1, true, 402);
    check_bn(3, 6, 12, true, 403);
}

#[test]
fn batch_norm_train_no_affine() {
    check_bn(2, 3, 35, false, 411);
    check_bn(5, 6, 4, false, 412);
}

#[test]
fn batch_norm_backward_only_dx() {
    // Only dx requested (γ given but frozen): dx must match the full call.
    let g = BnGeom { n: 2, c: 3, hw: 10, eps: 1e-5, momentum: 0.1 };
    let mut rng = rng(421);
    let x = uniform(&mut rng, 60);
    let gamma = uniform_in(&mut rng, 3, 0.5, 1.5);
    let (_, saved) = bn_train(&g, &x, Some(&gamma), None);
    let r = uniform(&mut rng, 60);
    let mut dx_only = vec![0.0; 60];
    be().bn_bwd(&g, &x, Some(&gamma), &saved, &r, Some((&mut dx_only, Write::Add)), None, None).unwrap();
    let (mut dx, mut dg, mut db) = (vec![0.0; 60], vec![0.0; 3], vec![0.0; 3]);
    be().bn_bwd(&g, &x, Some(&gamma), &saved, &r, Some((&mut dx, Write::Add)), Some(&mut dg), Some(&mut db)).unwrap();
    assert_close("bn dx alone vs with dγ, dβ", &dx_only, &dx, 0.0, 0.0);
}

// ---- elementwise --------------------------------------------------------------

#[test]
fn relu() {
    let mut rng = rng(501);
    for n in [7, 30, 105] {
        // ±[0.1, 1): never within H of the kink at 0.
        let x = away_from_zero(&mut rng, n, 0.1);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; n];
            be().relu_fwd(&xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        assert_close("relu forward", &y, &x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(), 0.0, 0.0);
        let r = uniform(&mut rng, n);
        let dx0 = uniform(&mut rng, n);
        let mut dx = dx0.clone();
        be().relu_bwd(&x, &r, &mut dx).unwrap();
        check_grad("relu d_x", &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
    }
}

#[test]
fn linear_combination_and_scale() {
    let mut rng = rng(511);
    let n = 45;
    let (a, b) = (uniform(&mut rng, n), uniform(&mut rng, n));

    // The tape's sum of terms: forward axpy(c₀, x₀) overwriting, then
    // axpy(cᵢ, xᵢ) adding; backward axpy(cᵢ, dy).
    let (c0, c1) = (0.75f32, -1.5f32);
    let comb = |a: &[f64], b: &[f64]| {
        let mut y = vec![f64::NAN; n];
        be().axpy(c0, &a.to_vec(), &mut y, Write::Set).unwrap();
        be().axpy(c1, &b.to_vec(), &mut y, Write::Add).unwrap();
        y
    };
    let want: Vec<f64> = a.iter().zip(&b).map(|(p, q)| 0.75 * p - 1.5 * q).collect();
    assert_close("combine forward", &comb(&a, &b), &want, FWD_ATOL, FWD_RTOL);
    let r = uniform(&mut rng, n);
    let (da0, db0) = (uniform(&mut rng, n), uniform(&mut rng, n));
    let (mut da, mut db) = (da0.clone(), db0.clone());
    be().axpy(c0, &r, &mut da, Write::Add).unwrap();
    be().axpy(c1, &r, &mut db, Write::Add).unwrap();
    check_grad("combine d_a", &a, &da0, &da, |s| project(&r, &comb(s, &b)));
    check_grad("combine d_b", &b, &db0, &db, |s| project(&r, &comb(&a, s)));
    set_is_add_to_zero("axpy", n, |d, write| be().axpy(c1, &r, d, write).unwrap());
}

#[test]
fn mul() {
    let mut rng = rng(521);
    for n in [6, 35] {
        let (a, b) = (uniform(&mut rng, n), uniform(&mut rng, n));
        let fwd = |a: &[f64], b: &[f64]| {
            let mut y = vec![f64::NAN; n];
            be().mul_fwd(&a.to_vec(), &b.to_vec(), &mut y).unwrap();
            y
        };
        let want: Vec<f64> = a.iter().zip(&b).map(|(p, q)| p * q).collect();
        assert_close("mul forward", &fwd(&a, &b), &want, 0.0, 0.0);
        let r = uniform(&mut rng, n);
        let (da0, db0) = (uniform(&mut rng, n), uniform(&mut rng, n));
        let (mut da, mut db) = (da0.clone(), db0.clone());
        be().mul_bwd(&b, &r, &mut da).unwrap();
        be().mul_bwd(&a, &r, &mut db).unwrap();
        check_grad("mul d_a", &a, &da0, &da, |s| project(&r, &fwd(s, &b)));
        check_grad("mul d_b", &b, &db0, &db, |s| project(&r, &fwd(&a, s)));
    }
}

#[test]
fn drop_path() {
    let mut rng = rng(525);
    // (n, per-sample elements): masks of DARTS' kind (0 or 1/keep) and arbitrary ones.
    for (n, per, mask) in
        [(4, 6, vec![1.25, 0.0, 1.25, 1.25]), (3, 35, vec![0.3, -1.7, 2.0]), (1, 5, vec![1.0]), (2, 8, vec![0.0, 0.0])]
    {
        let x = uniform(&mut rng, n * per);
        let fwd = |x: &[f64]| {
            let mut y = vec![f64::NAN; n * per];
            be().drop_path_fwd(&x.to_vec(), &mask, &mut y, Write::Set).unwrap();
            y
        };
        let want: Vec<f64> = x.iter().enumerate().map(|(i, v)| v * mask[i / per]).collect();
        assert_close("drop_path forward", &fwd(&x), &want, 0.0, 0.0);
        // Adding: a term of a sum of ops with drop path.
        let y0 = uniform(&mut rng, n * per);
        let mut y = y0.clone();
        be().drop_path_fwd(&x, &mask, &mut y, Write::Add).unwrap();
        let want_add: Vec<f64> = y0.iter().zip(&want).map(|(a, b)| a + b).collect();
        assert_close("drop_path forward, adding", &y, &want_add, 0.0, 0.0);
        let r = uniform(&mut rng, n * per);
        let dx0 = uniform(&mut rng, n * per);
        let mut dx = dx0.clone();
        be().drop_path_bwd(&mask, &r, &mut dx, Write::Add).unwrap();
        set_is_add_to_zero("drop_path d_x", n * per, |d, write| be().drop_path_bwd(&mask, &r, d, write).unwrap());
        if mask.iter().all(|&m| m == 0.0) {
            // Every sample dropped: nothing flows back, and nothing is overwritten.
            assert_eq!(dx, dx0, "drop_path d_x with every sample dropped");
        } else {
            check_grad(&format!("drop_path n={n} d_x"), &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
        }
    }
}

/// A factor per channel, `cm` factors shared by `c/cm` blocks of channels
/// (networks side by side): forward exact, both gradients against finite
/// differences, overwriting the same as adding to zero.
#[test]
fn channel_scale() {
    let mut rng = rng(527);
    for (n, c, hw, cm) in [(2, 3, 5, 3), (3, 8, 4, 4), (1, 6, 1, 2), (2, 4, 9, 1)] {
        let g = ScaleGeom { n, c, hw, cm };
        let (x, m) = (uniform(&mut rng, n * c * hw), uniform(&mut rng, cm));
        let fwd = |x: &[f64], m: &[f64]| {
            let mut y = vec![f64::NAN; n * c * hw];
            be().channel_scale_fwd(&g, &x.to_vec(), &m.to_vec(), &mut y).unwrap();
            y
        };
        let want: Vec<f64> = x.iter().enumerate().map(|(i, v)| v * m[(i / hw) % c % cm]).collect();
        assert_close("channel_scale forward", &fwd(&x, &m), &want, 0.0, 0.0);
        let r = uniform(&mut rng, n * c * hw);
        let (dx0, dm0) = (uniform(&mut rng, n * c * hw), uniform(&mut rng, cm));
        let (mut dx, mut dm) = (dx0.clone(), dm0.clone());
        be().channel_scale_bwd(&g, &x, &m, &r, Some((&mut dx, Write::Add)), Some(&mut dm)).unwrap();
        check_grad(&format!("channel_scale {g:?} d_x"), &x, &dx0, &dx, |xs| project(&r, &fwd(xs, &m)));
        check_grad(&format!("channel_scale {g:?} d_m"), &m, &dm0, &dm, |ms| project(&r, &fwd(&x, ms)));
        set_is_add_to_zero("channel_scale d_x", n * c * hw, |d, write| {
            be().channel_scale_bwd(&g, &x, &m, &r, Some((d, write)), None).unwrap()
        });
    }
}

/// The one-pass sum of an evaluation node's ops with their drop paths
/// equals the term-by-term calls it replaces, to the bit, with and without
/// masks (its gradient is `drop_path_bwd` / `axpy` per term, checked above
/// and through whole cells in tests/eval_net.rs).
#[test]
fn masked_sum_is_the_sum_of_its_terms() {
    let mut rng = rng(526);
    let (n, per) = (3, 10);
    let xs: Vec<Vec<f64>> = (0..3).map(|_| uniform(&mut rng, n * per)).collect();
    let (m0, m2) = (vec![1.25, 0.0, 1.25], vec![0.0, 2.0, -0.5]);
    for masks in [[Some(&m0), None, Some(&m2)], [None, Some(&m2), None], [None, None, None]] {
        let terms: Vec<(&Vec<f64>, Option<&Vec<f64>>)> = xs.iter().zip(masks).collect();
        let mut want = vec![f64::NAN; n * per];
        for (t, &(x, mask)) in terms.iter().enumerate() {
            let write = if t == 0 { Write::Set } else { Write::Add };
            match mask {
                Some(m) => be().drop_path_fwd(x, m, &mut want, write).unwrap(),
                None => be().axpy(1.0, x, &mut want, write).unwrap(),
            }
        }
        let mut got = vec![f64::NAN; n * per];
        be().masked_sum_fwd(&terms, &mut got).unwrap();
        assert_eq!(got, want, "masks {masks:?}");
    }
}

#[test]
fn mixed_edge_weight_axpy_elem_dot_elem() {
    // One mixed edge y = Σ_k w[k]·x_k, the terms added with axpy_elem.
    let mut rng = rng(531);
    let (k, n) = (5, 42);
    let w = uniform(&mut rng, k);
    let xs: Vec<Vec<f64>> = (0..k).map(|_| uniform(&mut rng, n)).collect();
    // Term 1 is absent (the `none` op): its weight gets no gradient.
    let idx = [0usize, 2, 3, 4];
    let fwd = |w: &[f64], x0: &[f64]| {
        let mut y = vec![f64::NAN; n];
        be().fill(&mut y, 0.0).unwrap();
        for &i in &idx {
            let x = if i == 0 { x0 } else { &xs[i][..] };
            be().axpy_elem(&w.to_vec(), i, &x.to_vec(), &mut y).unwrap();
        }
        y
    };
    let want: Vec<f64> = (0..n).map(|j| idx.iter().map(|&i| w[i] * xs[i][j]).sum()).collect();
    assert_close("mix forward", &fwd(&w, &xs[0]), &want, FWD_ATOL, FWD_RTOL);

    let r = uniform(&mut rng, n);
    let dw0 = uniform(&mut rng, k);
    let mut dw = dw0.clone();
    for &i in &idx {
        be().dot_elem(&r, &xs[i], &mut dw, i).unwrap();
    }
    assert_eq!(dw[1], dw0[1], "dot_elem touched the weight of an absent term");
    check_grad("mix d_w", &w, &dw0, &dw, |ws| project(&r, &fwd(ws, &xs[0])));
    let dx0 = uniform(&mut rng, n);
    let mut dx = dx0.clone();
    be().axpy_elem(&w, 0, &r, &mut dx).unwrap();
    check_grad("mix d_x0", &xs[0], &dx0, &dx, |x| project(&r, &fwd(&w, x)));
}

#[test]
fn mix_bwd_is_axpy_elem_and_dot_elem_per_term() {
    // Lengths around the kernel's chunk (2^14) so that several chunks are summed.
    let mut rng = rng(533);
    for (n, k) in [(42, 5), (40_000, 8), (16_384, 3), (0, 2)] {
        let w = uniform(&mut rng, k + 1);
        let xs: Vec<Vec<f64>> = (0..k).map(|_| uniform(&mut rng, n)).collect();
        let dy = uniform(&mut rng, n);
        let starts: Vec<Vec<f64>> = (0..k).map(|_| uniform(&mut rng, n)).collect();
        let dw0 = uniform(&mut rng, k + 1);
        // Term t uses weight t + 1; term 1 wants no dx; odd terms overwrite.
        let write = |t: usize| if t % 2 == 1 { Write::Set } else { Write::Add };
        let (mut want_dx, mut want_dw) = (starts.clone(), dw0.clone());
        for t in 0..k {
            if t != 1 {
                if write(t) == Write::Set {
                    want_dx[t].fill(0.0);
                }
                be().axpy_elem(&w, t + 1, &dy, &mut want_dx[t]).unwrap();
            }
            be().dot_elem(&dy, &xs[t], &mut want_dw, t + 1).unwrap();
        }
        for with_dw in [true, false] {
            let mut dxs: Vec<Vec<f64>> =
                (0..k).map(|t| if write(t) == Write::Set { vec![f64::NAN; n] } else { starts[t].clone() }).collect();
            let mut dw = dw0.clone();
            let mut terms: Vec<MixGrad<'_, Vec<f64>>> = xs
                .iter()
                .zip(dxs.iter_mut())
                .enumerate()
                .map(|(t, (x, dx))| MixGrad { idx: t + 1, x, dx: (t != 1).then_some((dx, write(t))) })
                .collect();
            be().mix_bwd(&w, &dy, &mut terms, with_dw.then_some(&mut dw)).unwrap();
            drop(terms);
            for t in (0..k).filter(|&t| t != 1) {
                assert_eq!(dxs[t], want_dx[t], "mix_bwd n={n} dx term {t}");
            }
            assert!(dxs[1].iter().all(|v| v.is_nan()), "mix_bwd wrote the gradient of a term that wants none");
            assert_eq!(dw, if with_dw { want_dw.clone() } else { dw0.clone() }, "mix_bwd n={n} dw");
        }
    }
}

#[test]
fn softmax_rows() {
    let mut rng = rng(541);
    for (rows, cols) in [(1, 8), (3, 5), (14, 7)] {
        let x: Vec<f64> = uniform(&mut rng, rows * cols).iter().map(|v| 3.0 * v).collect();
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; rows * cols];
            be().softmax_rows_fwd(rows, cols, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        let want: Vec<f64> = (0..rows * cols)
            .map(|i| {
                let row = &x[i / cols * cols..][..cols];
                x[i].exp() / row.iter().map(|v| v.exp()).sum::<f64>()
            })
            .collect();
        assert_close("softmax forward", &y, &want, FWD_ATOL, FWD_RTOL);
        let r = uniform(&mut rng, y.len());
        let dx0 = uniform(&mut rng, y.len());
        let mut dx = dx0.clone();
        be().softmax_rows_bwd(rows, cols, &y, &r, &mut dx).unwrap();
        check_grad("softmax d_x", &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
    }
}

#[test]
fn softmax_rows_large_logits_do_not_overflow() {
    // exp(1000) overflows f64: the kernel must subtract the row maximum.
    let x = vec![1000.0, 999.0, 998.0];
    let mut y = vec![0.0; 3];
    be().softmax_rows_fwd(1, 3, &x, &mut y).unwrap();
    let s = 1.0 + (-1f64).exp() + (-2f64).exp();
    assert_close("softmax of large logits", &y, &[1.0 / s, (-1f64).exp() / s, (-2f64).exp() / s], FWD_ATOL, FWD_RTOL);
}

// ---- layout -------------------------------------------------------------------

#[test]
fn concat_channel_put_take_add() {
    let mut rng = rng(601);
    for (n, hw, parts) in [(2, 7, vec![3, 5, 2]), (3, 4, vec![1, 6]), (1, 9, vec![4, 4, 4, 4])] {
        let cw: usize = parts.iter().sum();
        let offs: Vec<usize> = parts.iter().scan(0, |o, &c| Some(std::mem::replace(o, *o + c))).collect();
        let slice = |k: usize| ChannelSlice { n, hw, c_part: parts[k], c_whole: cw, off: offs[k] };
        let xs: Vec<Vec<f64>> = parts.iter().map(|&c| uniform(&mut rng, n * c * hw)).collect();
        // Part 0 is the one differentiated; the others stay fixed.
        let fwd = |x0: &[f64]| {
            let mut whole = vec![f64::NAN; n * cw * hw];
            for (k, xk) in xs.iter().enumerate() {
                let x = if k == 0 { x0 } else { &xk[..] };
                be().channel_put(&slice(k), &x.to_vec(), &mut whole, Write::Set).unwrap();
            }
            whole
        };
        let whole = fwd(&xs[0]);
        // Reference: for each image, the parts' channel blocks one after another.
        let want: Vec<f64> = (0..n)
            .flat_map(|i| {
                (0..parts.len()).flat_map(|k| xs[k][i * parts[k] * hw..][..parts[k] * hw].to_vec()).collect::<Vec<_>>()
            })
            .collect();
        assert_close("concat forward", &whole, &want, 0.0, 0.0);
        let r = uniform(&mut rng, whole.len());
        for k in 0..parts.len() {
            let d0 = uniform(&mut rng, xs[k].len());
            let mut d = d0.clone();
            be().channel_take(&slice(k), &r, &mut d, Write::Add).unwrap();
            set_is_add_to_zero("concat d_part", d0.len(), |d, write| {
                be().channel_take(&slice(k), &r, d, write).unwrap()
            });
            if k == 0 {
                check_grad("concat d_part0", &xs[0], &d0, &d, |x| project(&r, &fwd(x)));
            } else {
                // d/dpart_k Σ r ⊙ whole is exactly r's block of part k.
                let want: Vec<f64> = (0..n)
                    .flat_map(|i| r[(i * cw + offs[k]) * hw..][..parts[k] * hw].to_vec())
                    .zip(&d0)
                    .map(|(g, s)| g + s)
                    .collect();
                assert_close("concat d_part", &d, &want, 1e-15, 0.0);
            }
        }
    }
}

#[test]
fn shift_one_pixel() {
    let mut rng = rng(611);
    for (n, c, h, w) in [(2, 3, 5, 7), (1, 6, 6, 6), (3, 5, 4, 3)] {
        let x = uniform(&mut rng, n * c * h * w);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; n * c * (h - 1) * (w - 1)];
            be().shift_fwd(n, c, h, w, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let y = fwd(&x);
        let mut want = Vec::new();
        for p in 0..n * c {
            for i in 1..h {
                for j in 1..w {
                    want.push(x[(p * h + i) * w + j]);
                }
            }
        }
        assert_close("shift forward", &y, &want, 0.0, 0.0);
        let r = uniform(&mut rng, y.len());
        let dx0 = uniform(&mut rng, x.len());
        let mut dx = dx0.clone();
        be().shift_bwd(n, c, h, w, &r, &mut dx).unwrap();
        check_grad("shift d_x", &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
    }
}

#[test]
fn fill_zeros_alloc_copy() {
    let mut rng = rng(621);
    let b = be().alloc(37).unwrap();
    assert_eq!(b, vec![0.0; 37], "alloc must zero-fill");
    let mut y = uniform(&mut rng, 37);
    be().fill(&mut y, 0.0).unwrap();
    assert_eq!(y, vec![0.0; 37], "fill(0) (the zeros op)");
    be().fill(&mut y, 1.25).unwrap();
    assert_eq!(y, vec![1.25; 37]);
    // The value arrives as f32 and is widened, not reparsed.
    be().fill(&mut y, 0.1).unwrap();
    assert_eq!(y[36], 0.1f32 as f64);
    let src = uniform(&mut rng, 37);
    be().copy(&src, &mut y).unwrap();
    assert_eq!(y, src);
    let mut up = vec![0.0; 37];
    be().upload(&mut up, &src).unwrap();
    assert_eq!(be().download(&up).unwrap(), src);
    assert!(be().upload(&mut up, &src[..5]).is_err(), "upload of the wrong length must fail");
}

#[test]
fn global_average_pool() {
    let mut rng = rng(631);
    for (nc, hw) in [(6, 35), (2 * 5, 1), (3, 64)] {
        let x = uniform(&mut rng, nc * hw);
        let fwd = |xs: &[f64]| {
            let mut y = vec![f64::NAN; nc];
            be().gap_fwd(nc, hw, &xs.to_vec(), &mut y).unwrap();
            y
        };
        let want: Vec<f64> = (0..nc).map(|p| x[p * hw..][..hw].iter().sum::<f64>() / hw as f64).collect();
        assert_close("gap forward", &fwd(&x), &want, FWD_ATOL, FWD_RTOL);
        let r = uniform(&mut rng, nc);
        let dx0 = uniform(&mut rng, x.len());
        let mut dx = dx0.clone();
        be().gap_bwd(nc, hw, &r, &mut dx).unwrap();
        check_grad("gap d_x", &x, &dx0, &dx, |xs| project(&r, &fwd(xs)));
    }
}

// ---- classifier and loss ----------------------------------------------------------

#[test]
fn linear() {
    let mut rng = rng(701);
    // The last two: groups (RARTS's two classifiers side by side; three groups).
    for (n, i, o, g, bias) in [
        (3, 5, 4, 1, true),
        (2, 7, 10, 1, true),
        (4, 6, 3, 1, false),
        (1, 1, 2, 1, false),
        (3, 8, 6, 2, true),
        (2, 9, 3, 3, false),
    ] {
        let what = format!("linear n {n} in {i} out {o} groups {g} bias {bias}");
        let (ig, og) = (i / g, o / g);
        let x = uniform(&mut rng, n * i);
        let w = uniform(&mut rng, o * ig);
        let b = bias.then(|| uniform(&mut rng, o));
        let fwd = |x: &[f64], w: &[f64], b: Option<&Vec<f64>>| {
            let mut y = vec![f64::NAN; n * o];
            be().linear_fwd(n, i, o, g, &x.to_vec(), &w.to_vec(), b, &mut y).unwrap();
            y
        };
        let want: Vec<f64> = (0..n * o)
            .map(|k| {
                let (row, col) = (k / o, k % o);
                let x0 = row * i + col / og * ig;
                (0..ig).map(|j| x[x0 + j] * w[col * ig + j]).sum::<f64>() + b.as_ref().map_or(0.0, |b| b[col])
            })
            .collect();
        assert_close(&format!("{what} forward"), &fwd(&x, &w, b.as_ref()), &want, FWD_ATOL, FWD_RTOL);

        let r = uniform(&mut rng, n * o);
        let (dx0, dw0, db0) = (uniform(&mut rng, n * i), uniform(&mut rng, o * ig), uniform(&mut rng, o));
        let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), db0.clone());
        be().linear_bwd(n, i, o, g, &x, &w, &r, Some(&mut dx), Some(&mut dw), bias.then_some(&mut db)).unwrap();
        check_grad(&format!("{what} d_x"), &x, &dx0, &dx, |s| project(&r, &fwd(s, &w, b.as_ref())));
        check_grad(&format!("{what} d_w"), &w, &dw0, &dw, |s| project(&r, &fwd(&x, s, b.as_ref())));
        if let Some(bv) = &b {
            check_grad(&format!("{what} d_b"), bv, &db0, &db, |s| project(&r, &fwd(&x, &w, Some(&s.to_vec()))));
        } else {
            assert_eq!(db, db0, "{what}: db written without a bias");
        }
        // Each gradient may be requested alone (frozen input, frozen weight).
        let mut dw_only = dw0.clone();
        be().linear_bwd(n, i, o, g, &x, &w, &r, None, Some(&mut dw_only), None).unwrap();
        assert_close(&format!("{what} d_w alone"), &dw_only, &dw, 0.0, 0.0);
    }
}

#[test]
fn cross_entropy() {
    let mut rng = rng(711);
    for (n, k, labels) in [(4, 5, vec![0.0, 4.0, 2.0, 4.0]), (3, 10, vec![9.0, 0.0, 3.0]), (1, 2, vec![1.0])] {
        let what = format!("cross entropy n {n} k {k}");
        let z: Vec<f64> = uniform(&mut rng, n * k).iter().map(|v| 3.0 * v).collect();
        let fwd = |z: &[f64]| {
            let (mut loss, mut probs) = (vec![f64::NAN], vec![f64::NAN; n * k]);
            be().cross_entropy_fwd(n, k, &z.to_vec(), &labels, &mut loss, &mut probs).unwrap();
            (loss[0], probs)
        };
        let (loss, probs) = fwd(&z);
        // mean_n (log Σ_j exp z[n, j] − z[n, label_n])
        let want = (0..n)
            .map(|r| z[r * k..][..k].iter().map(|v| v.exp()).sum::<f64>().ln() - z[r * k + labels[r] as usize])
            .sum::<f64>()
            / n as f64;
        assert_close(&format!("{what} loss"), &[loss], &[want], FWD_ATOL, FWD_RTOL);
        let sm: Vec<f64> =
            (0..n * k).map(|j| z[j].exp() / z[j / k * k..][..k].iter().map(|v| v.exp()).sum::<f64>()).collect();
        assert_close(&format!("{what} probs"), &probs, &sm, FWD_ATOL, FWD_RTOL);

        // Upstream gradient of the loss: a random scalar, not 1.
        let s = 0.7;
        let dz0 = uniform(&mut rng, n * k);
        let mut dz = dz0.clone();
        be().cross_entropy_bwd(n, k, &probs, &labels, &vec![s], &mut dz).unwrap();
        check_grad(&format!("{what} d_logits"), &z, &dz0, &dz, |zs| s * fwd(zs).0);
    }
}

#[test]
fn sum_all() {
    let mut rng = rng(721);
    let x = uniform(&mut rng, 53);
    let fwd = |xs: &[f64]| {
        let mut y = vec![f64::NAN];
        be().sum_all_fwd(&xs.to_vec(), &mut y).unwrap();
        y[0]
    };
    assert_close("sum_all forward", &[fwd(&x)], &[x.iter().sum::<f64>()], FWD_ATOL, FWD_RTOL);
    let s = -1.3;
    let dx0 = uniform(&mut rng, x.len());
    let mut dx = dx0.clone();
    be().sum_all_bwd(&vec![s], &mut dx).unwrap();
    check_grad("sum_all d_x", &x, &dx0, &dx, |xs| s * fwd(xs));
}

#[test]
fn finite_difference_check_catches_a_wrong_gradient() {
    // The checker itself: a gradient off by 1e-4 in one element must fail.
    let x = [0.3, -0.7, 0.2];
    let f = |v: &[f64]| v[0] * v[0] + 2.0 * v[1] + v[2].sin();
    let before = [1.0, 1.0, 1.0];
    let good = [1.0 + 0.6, 1.0 + 2.0, 1.0 + 0.2f64.cos()];
    check_grad("exact gradient", &x, &before, &good, f);
    let mut bad = good;
    bad[2] += 1e-4;
    let r = std::panic::catch_unwind(|| check_grad("wrong gradient", &x, &before, &bad, f));
    assert!(r.is_err(), "an error of 1e-4 passed tolerances atol {FD_ATOL:e} rtol {FD_RTOL:e}");
}

// ---- f32 against f64 ---------------------------------------------------------------

/// The f32 kernels (what the engine runs) against the f64 ones on the same
/// inputs. f32 rounding is ε ≈ 6e-8 per operation; the longest reductions
/// here add ≤ ~150 O(1) terms and BN divides by a std ~0.5, so errors stay
/// near 1e-6. atol 2e-5 / rtol 1e-4 leaves a margin and still catches any
/// indexing or formula difference between the two instantiations.
#[test]
fn f32_kernels_match_f64() {
    const ATOL: f64 = 2e-5;
    const RTOL: f64 = 1e-4;
    let b32 = Cpu::<f32>::new();
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    // Round inputs through f32 first so both sides see identical values.
    let mut rng = rng(801);
    let mut draw = |n: usize| to64(&to32(&uniform(&mut rng, n)));

    // Depthwise 3×3, dilation 2, stride 2, fused ReLU: data and filter gradients.
    let g = conv_geom((2, 6, 6, 9, 7, 3, 2, 2, 2, 6, true));
    let (x, w) = (draw(g.n * g.cin * g.h * g.w), draw(g.cout * 9));
    let dy = draw(g.n * g.cout * g.oh * g.ow);
    let (mut y64, mut dx64, mut dw64) = (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
    be().conv2d_fwd(&g, &x, &w, &mut y64).unwrap();
    be().conv2d_bwd_data(&g, &x, &w, &dy, &mut dx64, Write::Add).unwrap();
    be().conv2d_bwd_filter(&g, &x, &dy, &mut dw64, Write::Add).unwrap();
    let (mut y32, mut dx32, mut dw32) = (vec![0f32; dy.len()], vec![0f32; x.len()], vec![0f32; w.len()]);
    b32.conv2d_fwd(&g, &to32(&x), &to32(&w), &mut y32).unwrap();
    b32.conv2d_bwd_data(&g, &to32(&x), &to32(&w), &to32(&dy), &mut dx32, Write::Add).unwrap();
    b32.conv2d_bwd_filter(&g, &to32(&x), &to32(&dy), &mut dw32, Write::Add).unwrap();
    assert_close("f32 conv forward", &to64(&y32), &y64, ATOL, RTOL);
    assert_close("f32 conv d_x", &to64(&dx32), &dx64, ATOL, RTOL);
    assert_close("f32 conv d_w", &to64(&dw32), &dw64, ATOL, RTOL);

    // BatchNorm training forward and backward, affine.
    let bg = BnGeom { n: 3, c: 5, hw: 10, eps: 1e-5, momentum: 0.1 };
    let (x, gm, bt, dy) = (draw(150), draw(5), draw(5), draw(150));
    let (mut y64, mut s64, mut rm64, mut rv64) = (vec![0.0; 150], vec![0.0; 10], vec![0.0; 5], vec![1.0; 5]);
    be().bn_fwd_train(&bg, &x, Some(&gm), Some(&bt), &mut y64, &mut s64, &mut rm64, &mut rv64).unwrap();
    let (mut dx64, mut dg64, mut db64) = (vec![0.0; 150], vec![0.0; 5], vec![0.0; 5]);
    be().bn_bwd(&bg, &x, Some(&gm), &s64, &dy, Some((&mut dx64, Write::Add)), Some(&mut dg64), Some(&mut db64))
        .unwrap();
    let (mut y32, mut s32, mut rm32, mut rv32) = (vec![0f32; 150], vec![0f32; 10], vec![0f32; 5], vec![1f32; 5]);
    let (x32, gm32, bt32) = (to32(&x), to32(&gm), to32(&bt));
    b32.bn_fwd_train(&bg, &x32, Some(&gm32), Some(&bt32), &mut y32, &mut s32, &mut rm32, &mut rv32).unwrap();
    let (mut dx32, mut dg32, mut db32) = (vec![0f32; 150], vec![0f32; 5], vec![0f32; 5]);
    b32.bn_bwd(
        &bg,
        &x32,
        Some(&gm32),
        &s32,
        &to32(&dy),
        Some((&mut dx32, Write::Add)),
        Some(&mut dg32),
        Some(&mut db32),
    )
    .unwrap();
    assert_close("f32 bn forward", &to64(&y32), &y64, ATOL, RTOL);
    assert_close("f32 bn running var", &to64(&rv32), &rv64, ATOL, RTOL);
    assert_close("f32 bn d_x", &to64(&dx32), &dx64, ATOL, RTOL);
    assert_close("f32 bn d_gamma", &to64(&dg32), &dg64, ATOL, RTOL);
    assert_close("f32 bn d_beta", &to64(&db32), &db64, ATOL, RTOL);

    // Max and average pooling, stride 2.
    let pg = pool_geom(2, 3, 7, 6, 2);
    let x = to64(&to32(&distinct(&mut common::rng(802), 2 * 3 * 42)));
    let dy = draw(2 * 3 * pg.oh * pg.ow);
    for max in [true, false] {
        let (mut y64, mut dx64) = (vec![0.0; dy.len()], vec![0.0; x.len()]);
        let (mut y32, mut dx32) = (vec![0f32; dy.len()], vec![0f32; x.len()]);
        if max {
            be().max_pool_fwd(&pg, &x, &mut y64).unwrap();
            be().max_pool_bwd(&pg, &x, &y64, &dy, &mut dx64, Write::Add).unwrap();
            b32.max_pool_fwd(&pg, &to32(&x), &mut y32).unwrap();
            b32.max_pool_bwd(&pg, &to32(&x), &y32, &to32(&dy), &mut dx32, Write::Add).unwrap();
        } else {
            be().avg_pool_fwd(&pg, &x, &mut y64).unwrap();
            be().avg_pool_bwd(&pg, &dy, &mut dx64, Write::Add).unwrap();
            b32.avg_pool_fwd(&pg, &to32(&x), &mut y32).unwrap();
            b32.avg_pool_bwd(&pg, &to32(&dy), &mut dx32, Write::Add).unwrap();
        }
        assert_close(&format!("f32 pool (max {max}) forward"), &to64(&y32), &y64, ATOL, RTOL);
        assert_close(&format!("f32 pool (max {max}) d_x"), &to64(&dx32), &dx64, ATOL, RTOL);
    }

    // Softmax over α rows, and the classifier's linear + cross-entropy.
    let a: Vec<f64> = draw(14 * 8);
    let (mut y64, mut y32) = (vec![0.0; 112], vec![0f32; 112]);
    be().softmax_rows_fwd(14, 8, &a, &mut y64).unwrap();
    b32.softmax_rows_fwd(14, 8, &to32(&a), &mut y32).unwrap();
    assert_close("f32 softmax", &to64(&y32), &y64, ATOL, RTOL);
    let (n, i, o) = (4, 12, 10);
    let (x, w, b) = (draw(n * i), draw(o * i), draw(o));
    let labels = vec![3.0, 0.0, 9.0, 3.0];
    let (mut z64, mut l64, mut p64) = (vec![0.0; n * o], vec![0.0], vec![0.0; n * o]);
    be().linear_fwd(n, i, o, 1, &x, &w, Some(&b), &mut z64).unwrap();
    be().cross_entropy_fwd(n, o, &z64, &labels, &mut l64, &mut p64).unwrap();
    let (mut dz64, mut dw64) = (vec![0.0; n * o], vec![0.0; o * i]);
    be().cross_entropy_bwd(n, o, &p64, &labels, &vec![1.0], &mut dz64).unwrap();
    be().linear_bwd(n, i, o, 1, &x, &w, &dz64, None, Some(&mut dw64), None).unwrap();
    let (mut z32, mut l32, mut p32) = (vec![0f32; n * o], vec![0f32], vec![0f32; n * o]);
    let labels32 = to32(&labels);
    b32.linear_fwd(n, i, o, 1, &to32(&x), &to32(&w), Some(&to32(&b)), &mut z32).unwrap();
    b32.cross_entropy_fwd(n, o, &z32, &labels32, &mut l32, &mut p32).unwrap();
    let (mut dz32, mut dw32) = (vec![0f32; n * o], vec![0f32; o * i]);
    b32.cross_entropy_bwd(n, o, &p32, &labels32, &vec![1f32], &mut dz32).unwrap();
    b32.linear_bwd(n, i, o, 1, &to32(&x), &to32(&w), &dz32, None, Some(&mut dw32), None).unwrap();
    assert_close("f32 linear forward", &to64(&z32), &z64, ATOL, RTOL);
    assert_close("f32 cross entropy", &to64(&l32), &l64, ATOL, RTOL);
    assert_close("f32 cross entropy d_logits", &to64(&dz32), &dz64, ATOL, RTOL);
    assert_close("f32 linear d_w", &to64(&dw32), &dw64, ATOL, RTOL);
}

/// The one-pass statistics (sums of x − x₀) in f32 data with a mean far
/// larger than the spread, where Σx² − (Σx)²/N would cancel to nothing:
/// mean and 1/std still match the exact two-pass f64 values.
#[test]
fn batch_norm_statistics_survive_a_large_mean() {
    let g = BnGeom { n: 4, c: 3, hw: 257, eps: 1e-5, momentum: 0.1 };
    let mut rng = rng(421);
    let x: Vec<f32> = uniform(&mut rng, g.n * g.c * g.hw)
        .iter()
        .enumerate()
        .map(|(i, v)| (1000.0 * (1 + i / g.hw % g.c) as f64 + 0.1 * v) as f32)
        .collect();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (mean, var) = channel_stats(&g, &x64);
    let be = Cpu::<f32>::new();
    let (mut y, mut saved) = (vec![f32::NAN; x.len()], vec![f32::NAN; 2 * g.c]);
    let (mut rm, mut rv) = (vec![0.0f32; g.c], vec![1.0f32; g.c]);
    be.bn_fwd_train(&g, &x, None, None, &mut y, &mut saved, &mut rm, &mut rv).unwrap();
    for c in 0..g.c {
        let inv = 1.0 / (var[c] + 1e-5f32 as f64).sqrt();
        // f32 storage of the saved values: 1e-6 relative.
        assert!(((saved[c] as f64) - mean[c]).abs() <= 1e-6 * mean[c].abs(), "mean {c}: {} vs {}", saved[c], mean[c]);
        let got = saved[g.c + c] as f64;
        assert!((got - inv).abs() <= 1e-5 * inv, "1/std {c}: {got} vs {inv} (var {})", var[c]);
    }
}
