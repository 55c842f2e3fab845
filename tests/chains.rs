//! The chains (ReLU → depthwise → 1×1 as one op, `src/ops/conv/chain.rs`)
//! against the single ops they replace, on the CPU: the same inputs give
//! the same depthwise output, output and gradients to the bit, for every
//! kernel size, stride and dilation of the search space, odd sizes (edge
//! blocks of every vector width), one network and two side by side, every
//! subset of the gradients asked for, overwritten and added; and the
//! chain's backward against float64 central differences.

mod common;

use common::{away_from_zero, check_grad, project, rng, uniform};
use rand::Rng;
use rand::rngs::StdRng;
use rarts::backend::{ConvOps, Cpu, Write};
use rarts::ops::conv::{ChainGeom, ChainGrads, ConvGeom};
use rarts::real::Real;

/// `(n, c per network, nets, h, w, k, stride, dil, cout per network)`
type Case = (usize, usize, usize, usize, usize, usize, usize, usize, usize);

fn chain(case: Case) -> ChainGeom {
    let (n, c, nets, h, w, k, stride, dil, cout) = case;
    let pad = dil * (k - 1) / 2;
    let (oh, ow) = (ConvGeom::out_len(h, k, stride, pad, dil), ConvGeom::out_len(w, k, stride, pad, dil));
    let cin = c * nets;
    let dw = ConvGeom { n, cin, h, w, cout: cin, oh, ow, k, stride, pad, dil, groups: cin, relu_in: true };
    let pw = ConvGeom {
        n,
        cin,
        h: oh,
        w: ow,
        cout: cout * nets,
        oh,
        ow,
        k: 1,
        stride: 1,
        pad: 0,
        dil: 1,
        groups: nets,
        relu_in: false,
    };
    ChainGeom::new(dw, pw).expect("a chain")
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

/// One chain's inputs and its single ops' results.
struct Run<T> {
    x: Vec<T>,
    w_dw: Vec<T>,
    w_pw: Vec<T>,
    d: Vec<T>,
    y: Vec<T>,
}

fn forward<T: Real>(be: &Cpu<T>, c: &ChainGeom, rng: &mut StdRng) -> Run<T> {
    let (x, w_dw, w_pw) =
        (random(rng, c.dw.x_shape().numel()), random(rng, c.dw.w_shape().numel()), random(rng, c.pw.w_shape().numel()));
    let (mut d, mut y) = (vec![T::ZERO; c.dw.y_shape().numel()], vec![T::ZERO; c.pw.y_shape().numel()]);
    be.conv2d_fwd(&c.dw, &x, &w_dw, &mut d).unwrap();
    be.conv2d_fwd(&c.pw, &d, &w_pw, &mut y).unwrap();
    Run { x, w_dw, w_pw, d, y }
}

/// The backward as the single ops run it in a tape: the 1×1 conv writes
/// the depthwise output's gradient (its only reader), then the depthwise
/// conv's backward reads it.
fn single_ops_bwd<T: Real>(be: &Cpu<T>, c: &ChainGeom, r: &Run<T>, dy: &[T], grads: [Option<(&mut Vec<T>, Write)>; 3]) {
    let [dx, dwdw, dwpw] = grads;
    let dy = dy.to_vec();
    let mut dd = vec![T::ZERO; r.d.len()];
    let want_dd = dx.is_some() || dwdw.is_some();
    be.conv2d_bwd(&c.pw, &r.d, &r.w_pw, &dy, want_dd.then_some((&mut dd, Write::Set)), dwpw).unwrap();
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

fn check_bitwise<T: Real>(seed: u64) {
    let be = Cpu::<T>::new();
    let mut rng = rng(seed);
    for case in cases() {
        let c = chain(case);
        let r = forward(&be, &c, &mut rng);
        let (mut d, mut y) = (vec![T::from_f64(f64::NAN); r.d.len()], vec![T::from_f64(f64::NAN); r.y.len()]);
        be.chain_fwd(&c, &r.x, &r.w_dw, &r.w_pw, &mut d, &mut y).unwrap();
        same_bits(&format!("{case:?} d"), &d, &r.d);
        same_bits(&format!("{case:?} y"), &y, &r.y);

        let dy: Vec<T> = random(&mut rng, r.y.len());
        let starts: [Vec<T>; 3] = [r.x.len(), r.w_dw.len(), r.w_pw.len()].map(|n| random(&mut rng, n));
        // Every subset of the three gradients, each overwritten or added.
        for mask in 0..8u32 {
            for write in [Write::Set, Write::Add] {
                let asked = |i: usize| mask & (1 << i) != 0;
                let (mut a, mut b) = (starts.clone(), starts.clone());
                let [ax, adw, apw] = &mut a;
                let grads = ChainGrads {
                    x: asked(0).then_some((ax, write)),
                    w_dw: asked(1).then_some((adw, write)),
                    w_pw: asked(2).then_some((apw, write)),
                };
                be.chain_bwd(&c, &r.x, &r.w_dw, &r.w_pw, &r.d, &dy, grads).unwrap();
                let [bx, bdw, bpw] = &mut b;
                let single = [
                    asked(0).then_some((bx, write)),
                    asked(1).then_some((bdw, write)),
                    asked(2).then_some((bpw, write)),
                ];
                single_ops_bwd(&be, &c, &r, &dy, single);
                for (i, name) in ["dx", "dw_dw", "dw_pw"].iter().enumerate() {
                    same_bits(&format!("{case:?} {name} (asked {mask:03b}, {write:?})"), &a[i], &b[i]);
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

/// `Σ r ⊙ chain(x, w_dw, w_pw)` in f64.
fn project_chain(be: &Cpu<f64>, c: &ChainGeom, x: &[f64], w_dw: &[f64], w_pw: &[f64], r: &[f64]) -> f64 {
    let (mut d, mut y) = (vec![0.0; c.dw.y_shape().numel()], vec![0.0; c.pw.y_shape().numel()]);
    be.chain_fwd(c, &x.to_vec(), &w_dw.to_vec(), &w_pw.to_vec(), &mut d, &mut y).unwrap();
    project(r, &y)
}

/// The chain's backward (each gradient added to a random start) against
/// float64 central differences of `Σ r ⊙ y`; x kept away from the ReLU's
/// kink so that the differences do not straddle it.
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
        let x = away_from_zero(&mut g, c.dw.x_shape().numel(), 0.05);
        let (w_dw, w_pw) = (uniform(&mut g, c.dw.w_shape().numel()), uniform(&mut g, c.pw.w_shape().numel()));
        let r = uniform(&mut g, c.pw.y_shape().numel());
        let (mut d, mut y) = (vec![0.0; c.dw.y_shape().numel()], vec![0.0; c.pw.y_shape().numel()]);
        be.chain_fwd(&c, &x, &w_dw, &w_pw, &mut d, &mut y).unwrap();
        let starts = [uniform(&mut g, x.len()), uniform(&mut g, w_dw.len()), uniform(&mut g, w_pw.len())];
        let mut got = starts.clone();
        let [gx, gdw, gpw] = &mut got;
        let grads =
            ChainGrads { x: Some((gx, Write::Add)), w_dw: Some((gdw, Write::Add)), w_pw: Some((gpw, Write::Add)) };
        be.chain_bwd(&c, &x, &w_dw, &w_pw, &d, &r, grads).unwrap();
        let what = format!("{case:?}");
        check_grad(&format!("{what} dx"), &x, &starts[0], &got[0], |xs| project_chain(&be, &c, xs, &w_dw, &w_pw, &r));
        check_grad(&format!("{what} dw_dw"), &w_dw, &starts[1], &got[1], |ws| {
            project_chain(&be, &c, &x, ws, &w_pw, &r)
        });
        check_grad(&format!("{what} dw_pw"), &w_pw, &starts[2], &got[2], |ws| {
            project_chain(&be, &c, &x, &w_dw, ws, &r)
        });
    }
}

/// A chain refuses what is not a depthwise conv followed by a plain 1×1
/// conv on its output.
#[test]
fn only_depthwise_then_pointwise_makes_a_chain() {
    let c = chain((2, 3, 1, 7, 9, 3, 1, 1, 5));
    let strided_pw = ConvGeom { stride: 2, oh: 4, ow: 5, ..c.pw };
    let relu_pw = ConvGeom { relu_in: true, ..c.pw };
    let dense_first = ConvGeom { groups: 1, ..c.dw };
    let wrong_size = ConvGeom { h: c.pw.h + 1, ..c.pw };
    for (what, dw, pw) in [
        ("a strided 1×1", c.dw, strided_pw),
        ("a ReLU on the 1×1's input", c.dw, relu_pw),
        ("a dense first conv", dense_first, c.pw),
        ("a 1×1 on another size", c.dw, wrong_size),
    ] {
        assert!(ChainGeom::new(dw, pw).is_none(), "{what} made a chain");
    }
}
