//! The chains (ReLU → depthwise → 1×1 → BatchNorm as one op,
//! `src/ops/conv/chain.rs`) against the single ops they replace, on the
//! CPU: the same inputs give the same intermediates, output, statistics
//! and gradients to the bit, in training and in evaluation, for every
//! kernel size, stride and dilation of the search space, odd sizes (edge
//! blocks of every vector width), one network and two side by side, with
//! and without γ and β, every subset of the gradients asked for,
//! overwritten and added; and the chain's backward against float64 central
//! differences.

mod common;

use common::{away_from_zero, check_grad, project, rng, uniform};
use rand::Rng;
use rand::rngs::StdRng;
use rarts::backend::{BnOps, ConvOps, Cpu, Write};
use rarts::ops::bn::BnGeom;
use rarts::ops::conv::{ChainGeom, ChainGrads, ChainNorm, ChainSaved, ConvGeom};
use rarts::real::Real;

/// `(n, c per network, nets, h, w, k, stride, dil, cout per network)`
type Case = (usize, usize, usize, usize, usize, usize, usize, usize, usize);

fn chain(case: Case) -> ChainGeom {
    common::chain_geom(case)
}

/// Every (k, dilation) of the search space, both strides, on odd sizes and
/// on sizes large enough to run on several threads; one network and two.
fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (k, dil) in [(3, 1), (5, 1), (3, 2), (5, 2)] {
        for stride in [1, 2] {
            v.push((2, 3, 1, 7, 9, k, stride, dil, 5));
            v.push((3, 4, 2, 9, 8, k, stride, dil, 4));
        }
    }
    // Large enough for threads (and full vector blocks plus edges).
    v.push((4, 16, 2, 20, 21, 3, 1, 1, 16));
    v.push((4, 16, 2, 21, 20, 5, 2, 1, 16));
    v.push((6, 12, 1, 16, 16, 5, 1, 2, 12));
    v.push((5, 8, 2, 33, 31, 3, 2, 2, 8));
    // 1×1 planes and a single image.
    v.push((1, 2, 1, 1, 1, 3, 1, 1, 3));
    v.push((1, 3, 2, 2, 3, 5, 2, 2, 2));
    v
}

fn random<T: Real>(rng: &mut StdRng, n: usize) -> Vec<T> {
    (0..n).map(|_| T::from_f64(rng.random_range(-1.0..1.0))).collect()
}

/// One chain's inputs and what its single ops computed in training.
struct Run<T> {
    x: Vec<T>,
    w_dw: Vec<T>,
    w_pw: Vec<T>,
    gamma: Option<Vec<T>>,
    beta: Option<Vec<T>>,
    running: (Vec<T>, Vec<T>),
    d: Vec<T>,
    p: Vec<T>,
    saved: Vec<T>,
    y: Vec<T>,
    /// The running statistics after the training forward.
    updated: (Vec<T>, Vec<T>),
}

fn forward<T: Real>(be: &Cpu<T>, c: &ChainGeom, affine: bool, rng: &mut StdRng) -> Run<T> {
    let (x, w_dw, w_pw) =
        (random(rng, c.dw.x_shape().numel()), random(rng, c.dw.w_shape().numel()), random(rng, c.pw.w_shape().numel()));
    let ch = c.bn.c;
    let gamma = affine.then(|| random::<T>(rng, ch).into_iter().map(|v| v + T::from_f64(1.5)).collect::<Vec<T>>());
    let beta = affine.then(|| random(rng, ch));
    let running: (Vec<T>, Vec<T>) =
        (random(rng, ch), random::<T>(rng, ch).into_iter().map(|v| v + T::from_f64(1.5)).collect());
    let (mut d, mut p) = (vec![T::ZERO; c.dw.y_shape().numel()], vec![T::ZERO; c.pw.y_shape().numel()]);
    be.conv2d_fwd(&c.dw, &x, &w_dw, &mut d).unwrap();
    be.conv2d_fwd(&c.pw, &d, &w_pw, &mut p).unwrap();
    let (mut y, mut saved, mut updated) = (vec![T::ZERO; p.len()], vec![T::ZERO; 2 * ch], running.clone());
    be.bn_fwd_train(&c.bn, &p, gamma.as_ref(), beta.as_ref(), &mut y, &mut saved, &mut updated.0, &mut updated.1)
        .unwrap();
    Run { x, w_dw, w_pw, gamma, beta, running, d, p, saved, y, updated }
}

/// The backward as the single ops run it in a tape: BatchNorm writes the
/// 1×1 output's gradient, the 1×1 conv the depthwise output's (each the
/// only reader), then the depthwise conv's backward reads it.
fn single_ops_bwd<T: Real>(be: &Cpu<T>, c: &ChainGeom, r: &Run<T>, dy: &[T], grads: ChainGrads<'_, Vec<T>>) {
    let through = grads.through_convs();
    let ChainGrads { x: dx, w_dw: dwdw, w_pw: dwpw, gamma: dgamma, beta: dbeta } = grads;
    let dy = dy.to_vec();
    let mut dp = vec![T::ZERO; r.p.len()];
    let dp_w = through.then_some((&mut dp, Write::Set));
    be.bn_bwd(&c.bn, &r.p, r.gamma.as_ref(), &r.saved, &dy, dp_w, dgamma, dbeta).unwrap();
    if !through {
        return;
    }
    let mut dd = vec![T::ZERO; r.d.len()];
    let want_dd = dx.is_some() || dwdw.is_some();
    be.conv2d_bwd(&c.pw, &r.d, &r.w_pw, &dp, want_dd.then_some((&mut dd, Write::Set)), dwpw).unwrap();
    if want_dd {
        be.conv2d_bwd(&c.dw, &r.x, &r.w_dw, &dd, dx, dwdw).unwrap();
    }
}

fn bits<T: Real>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn same_bits<T: Real>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = bits(got).iter().zip(bits(want)).position(|(a, b)| *a != b) {
        panic!("{what}: element {i} is {} from the chain, {} from the single ops", got[i].to_f64(), want[i].to_f64());
    }
}

/// The gradient buffers of a chain: x, w_dw, w_pw, γ, β.
type Bufs<T> = [Vec<T>; 5];

/// `grads` asking for the gradients in `mask` (bit i for buffer i), the
/// first three written as `write`.
fn asked<T>(bufs: &mut Bufs<T>, mask: u32, write: Write) -> ChainGrads<'_, Vec<T>> {
    let on = |i: usize| mask & (1 << i) != 0;
    let [x, w_dw, w_pw, gamma, beta] = bufs;
    ChainGrads {
        x: on(0).then_some((x, write)),
        w_dw: on(1).then_some((w_dw, write)),
        w_pw: on(2).then_some((w_pw, write)),
        gamma: on(3).then_some(gamma),
        beta: on(4).then_some(beta),
    }
}

fn check_bitwise<T: Real>(seed: u64) {
    let be = Cpu::<T>::new();
    let mut rng = rng(seed);
    for case in cases() {
        for affine in [true, false] {
            let c = chain(case);
            let r = forward(&be, &c, affine, &mut rng);
            let tag = format!("{case:?} affine={affine}");
            let nan = || T::from_f64(f64::NAN);
            let (mut d, mut p, mut y) = (vec![nan(); r.d.len()], vec![nan(); r.p.len()], vec![nan(); r.y.len()]);
            let (mut saved, mut running) = (vec![nan(); r.saved.len()], r.running.clone());
            let norm = ChainNorm {
                gamma: r.gamma.as_ref(),
                beta: r.beta.as_ref(),
                running_mean: &mut running.0,
                running_var: &mut running.1,
                batch: Some((&mut p, &mut saved)),
            };
            be.chain_fwd(&c, &r.x, &r.w_dw, &r.w_pw, norm, &mut d, &mut y).unwrap();
            for (what, got, want) in [
                ("d", &d, &r.d),
                ("p", &p, &r.p),
                ("y", &y, &r.y),
                ("saved", &saved, &r.saved),
                ("running mean", &running.0, &r.updated.0),
                ("running var", &running.1, &r.updated.1),
            ] {
                same_bits(&format!("{tag} training {what}"), got, want);
            }

            // Evaluation: the running statistics normalise.
            let mut want = vec![T::ZERO; r.y.len()];
            be.bn_fwd_eval(&c.bn, &r.p, r.gamma.as_ref(), r.beta.as_ref(), &r.running.0, &r.running.1, &mut want)
                .unwrap();
            let mut running = r.running.clone();
            let norm = ChainNorm {
                gamma: r.gamma.as_ref(),
                beta: r.beta.as_ref(),
                running_mean: &mut running.0,
                running_var: &mut running.1,
                batch: None,
            };
            be.chain_fwd(&c, &r.x, &r.w_dw, &r.w_pw, norm, &mut d, &mut y).unwrap();
            same_bits(&format!("{tag} evaluation y"), &y, &want);
            same_bits(&format!("{tag} evaluation leaves the running mean"), &running.0, &r.running.0);

            let dy: Vec<T> = random(&mut rng, r.y.len());
            let ch = c.bn.c;
            let starts: Bufs<T> = [r.x.len(), r.w_dw.len(), r.w_pw.len(), ch, ch].map(|n| random(&mut rng, n));
            // Every subset of the gradients (γ and β only with affine), each
            // overwritten or added.
            for mask in (0..32u32).filter(|m| affine || m & 0b11000 == 0) {
                for write in [Write::Set, Write::Add] {
                    let (mut a, mut b) = (starts.clone(), starts.clone());
                    let saved = ChainSaved { d: &r.d, p: &r.p, saved: &r.saved, gamma: r.gamma.as_ref() };
                    be.chain_bwd(&c, &r.x, &r.w_dw, &r.w_pw, saved, &dy, asked(&mut a, mask, write)).unwrap();
                    single_ops_bwd(&be, &c, &r, &dy, asked(&mut b, mask, write));
                    for (i, name) in ["dx", "dw_dw", "dw_pw", "dγ", "dβ"].iter().enumerate() {
                        same_bits(&format!("{tag} {name} (asked {mask:05b}, {write:?})"), &a[i], &b[i]);
                    }
                }
            }
        }
    }
}

#[test]
fn chains_give_the_single_ops_results_to_the_bit_in_f32() {
    check_bitwise::<f32>(1);
}

#[test]
fn chains_give_the_single_ops_results_to_the_bit_in_f64() {
    check_bitwise::<f64>(2);
}

/// The inputs a chain differentiates into: x, w_dw, w_pw, γ, β.
type Inputs = [Vec<f64>; 5];

/// The chain's training forward in f64 (fresh running statistics): `(d, p,
/// saved, y)`.
fn train_forward(be: &Cpu<f64>, c: &ChainGeom, v: &Inputs) -> [Vec<f64>; 4] {
    let (pn, ch) = (c.pw.y_shape().numel(), c.bn.c);
    let (mut d, mut p, mut y) = (vec![0.0; c.dw.y_shape().numel()], vec![0.0; pn], vec![0.0; pn]);
    let (mut saved, mut rm, mut rv) = (vec![0.0; 2 * ch], vec![0.0; ch], vec![1.0; ch]);
    let norm = ChainNorm {
        gamma: Some(&v[3]),
        beta: Some(&v[4]),
        running_mean: &mut rm,
        running_var: &mut rv,
        batch: Some((&mut p, &mut saved)),
    };
    be.chain_fwd(c, &v[0], &v[1], &v[2], norm, &mut d, &mut y).unwrap();
    [d, p, saved, y]
}

/// The chain's backward (each gradient added to a random start) against
/// float64 central differences of `Σ r ⊙ y`, with γ and β; x kept away
/// from the ReLU's kink so that the differences do not straddle it.
#[test]
fn chain_backward_matches_float64_finite_differences() {
    let be = Cpu::<f64>::new();
    let mut g = rng(3);
    for case in [
        (2, 3, 1, 7, 6, 3, 1, 1, 4),
        (2, 2, 2, 7, 7, 3, 2, 1, 3),
        (1, 3, 1, 9, 8, 5, 1, 1, 2),
        (2, 2, 2, 8, 9, 5, 2, 1, 2),
        (2, 3, 1, 9, 9, 3, 1, 2, 3),
        (1, 2, 2, 9, 7, 3, 2, 2, 2),
        (1, 2, 1, 11, 10, 5, 1, 2, 3),
        (2, 2, 1, 10, 11, 5, 2, 2, 2),
    ] {
        let c = chain(case);
        let ch = c.bn.c;
        let inputs: Inputs = [
            away_from_zero(&mut g, c.dw.x_shape().numel(), 0.05),
            uniform(&mut g, c.dw.w_shape().numel()),
            uniform(&mut g, c.pw.w_shape().numel()),
            uniform(&mut g, ch).into_iter().map(|v| v + 1.5).collect(),
            uniform(&mut g, ch),
        ];
        let r = uniform(&mut g, c.pw.y_shape().numel());
        let [d, p, saved, _] = train_forward(&be, &c, &inputs);
        let starts: Inputs = inputs.clone().map(|v| uniform(&mut g, v.len()));
        let mut got = starts.clone();
        let saved = ChainSaved { d: &d, p: &p, saved: &saved, gamma: Some(&inputs[3]) };
        be.chain_bwd(&c, &inputs[0], &inputs[1], &inputs[2], saved, &r, asked(&mut got, 0b11111, Write::Add)).unwrap();
        for (i, name) in ["dx", "dw_dw", "dw_pw", "dγ", "dβ"].iter().enumerate() {
            check_grad(&format!("{case:?} {name}"), &inputs[i], &starts[i], &got[i], |v| {
                let mut moved = inputs.clone();
                moved[i] = v.to_vec();
                project(&r, &train_forward(&be, &c, &moved)[3])
            });
        }
    }
}

/// A chain refuses what is not a depthwise conv followed by a plain 1×1
/// conv on its output and a BatchNorm of that.
#[test]
fn only_depthwise_then_pointwise_makes_a_chain() {
    let c = chain((2, 3, 1, 7, 9, 3, 1, 1, 5));
    let strided_pw = ConvGeom { stride: 2, oh: 4, ow: 5, ..c.pw };
    let relu_pw = ConvGeom { relu_in: true, ..c.pw };
    let dense_first = ConvGeom { groups: 1, ..c.dw };
    let wrong_size = ConvGeom { h: c.pw.h + 1, ..c.pw };
    let other_channels = BnGeom { c: c.bn.c + 1, ..c.bn };
    for (what, dw, pw, bn) in [
        ("a strided 1×1", c.dw, strided_pw, c.bn),
        ("a ReLU on the 1×1's input", c.dw, relu_pw, c.bn),
        ("a dense first conv", dense_first, c.pw, c.bn),
        ("a 1×1 on another size", c.dw, wrong_size, c.bn),
        ("a BatchNorm of other channels", c.dw, c.pw, other_channels),
    ] {
        assert!(ChainGeom::new(dw, pw, bn).is_none(), "{what} made a chain");
    }
}
