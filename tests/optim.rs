//! Optimizer updates against PyTorch's rules worked out by hand:
//!
//! - `torch.optim.SGD` (dampening 0, no Nesterov):
//!   `d = g + wd·p; buf = μ·buf + d` (`buf = d` on the first step, the same
//!   thing from `buf = 0`); `p -= lr·buf`.
//! - `torch.optim.Adam` (L2 weight decay coupled into the gradient):
//!   `d = g + wd·p; m = β1·m + (1−β1)·d; v = β2·v + (1−β2)·d²;
//!   p -= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
//! - `clip_grad_norm_`: `coef = max_norm/(total_norm + 1e-6)`, gradients
//!   multiplied by it only if it is below 1.
//!
//! The kernels work on lists of tensors and read their per-step values
//! (learning rate, clip factor, Adam's t) from a step-scalar buffer.
//!
//! The expected numbers are literals; the arithmetic that gives them is in
//! the comment beside each.

mod common;

use common::assert_close;
use rarts::backend::{AdamKernel, AdamStep, Coef, Cpu, NormThen, OptimOps, Part, SgdKernel, SgdStep, Write};
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::optim::{Adam, AdamSlots, Scalars, Sgd, SgdSlots};
use rarts::real::Real;
use rarts::shape::Shape;
use rarts::tape::{Init, NodeId, Tape};

/// Dyadic hyperparameters and data (0.5, 0.25, …) make every SGD step exact
/// in both f32 and f64, so the comparison is exact.
const EXACT: f64 = 0.0;

fn to64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn from64<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

// ---- kernels ------------------------------------------------------------------

/// One SGD kernel call on one tensor; the step scalars are `[lr, scale]`.
fn sgd1<T: Real>(be: &Cpu<T>, s: &SgdStep, scale: f64, p: &mut Vec<T>, g: &Vec<T>, buf: &mut Vec<T>) {
    let sc: Vec<T> = from64(&[s.lr as f64, scale]);
    let k = SgdKernel { momentum: s.momentum, weight_decay: s.weight_decay, nesterov: false, lr: 0, scale: 1 };
    be.sgd_step(&k, &sc, &mut [p], &[g], &mut [buf], Part::WHOLE).unwrap();
}

/// One Adam kernel call on one tensor; the step scalars are `[lr, t]`.
fn adam1<T: Real>(be: &Cpu<T>, s: &AdamStep, p: &mut Vec<T>, g: &Vec<T>, m: &mut Vec<T>, v: &mut Vec<T>) {
    let sc: Vec<T> = from64(&[s.lr as f64, s.t as f64]);
    let k = AdamKernel { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weight_decay: s.weight_decay, lr: 0, t: 1 };
    be.adam_step(&k, &sc, &mut [p], &[g], &mut [m], &mut [v]).unwrap();
}

/// lr 1/2, μ 1/2, wd 1/4, p₀ = [1, −2], the same g = [1/2, 1] each step.
fn sgd_kernel_momentum_weight_decay<T: Real>(be: Cpu<T>) {
    let s = SgdStep { lr: 0.5, momentum: 0.5, weight_decay: 0.25 };
    let mut p: Vec<T> = from64(&[1.0, -2.0]);
    let g: Vec<T> = from64(&[0.5, 1.0]);
    let mut buf: Vec<T> = from64(&[0.0, 0.0]);
    let want = [
        // d = [1/2 + 1/4·1, 1 + 1/4·(−2)] = [3/4, 1/2]; buf = d;
        // p = [1 − 1/2·3/4, −2 − 1/2·1/2] = [5/8, −9/4]
        ([0.75, 0.5], [0.625, -2.25]),
        // d = [1/2 + 1/4·5/8, 1 − 1/4·9/4] = [21/32, 7/16];
        // buf = [1/2·3/4 + 21/32, 1/2·1/2 + 7/16] = [33/32, 11/16];
        // p = [5/8 − 33/64, −9/4 − 11/32] = [7/64, −83/32]
        ([1.03125, 0.6875], [0.109375, -2.59375]),
        // d = [1/2 + 1/4·7/64, 1 − 1/4·83/32] = [135/256, 45/128];
        // buf = [33/64 + 135/256, 11/32 + 45/128] = [267/256, 89/128];
        // p = [7/64 − 267/512, −83/32 − 89/256] = [−211/512, −753/256]
        ([1.04296875, 0.6953125], [-0.412109375, -2.94140625]),
    ];
    for (t, (wb, wp)) in want.iter().enumerate() {
        sgd1(&be, &s, 1.0, &mut p, &g, &mut buf);
        assert_close(&format!("sgd step {} buf", t + 1), &to64(&buf), wb, EXACT, EXACT);
        assert_close(&format!("sgd step {} p", t + 1), &to64(&p), wp, EXACT, EXACT);
    }
}

/// PyTorch's `nesterov=True`: the step is `lr·(d + μ·buf)`. lr 1/2, μ 1/2,
/// wd 1/4, p₀ = [1, −2], g = [1/2, 1] each step.
#[test]
fn sgd_kernel_nesterov() {
    let be = Cpu::<f32>::new();
    let k = SgdKernel { momentum: 0.5, weight_decay: 0.25, nesterov: true, lr: 0, scale: 1 };
    let sc = vec![0.5f32, 1.0];
    let (mut p, g, mut buf) = (vec![1.0f32, -2.0], vec![0.5f32, 1.0], vec![0.0f32; 2]);
    let want = [
        // d = [3/4, 1/2]; buf = d; step = d + buf/2 = [9/8, 3/4]; p = [7/16, −19/8]
        ([0.75, 0.5], [0.4375, -2.375]),
        // d = [39/64, 13/32]; buf = [63/64, 21/32]; step = [141/128, 47/64];
        // p = [−29/256, −351/128]
        ([0.984375, 0.65625], [-0.11328125, -2.7421875]),
    ];
    for (t, (wb, wp)) in want.iter().enumerate() {
        be.sgd_step(&k, &sc, &mut [&mut p], &[&g], &mut [&mut buf], Part::WHOLE).unwrap();
        assert_close(&format!("nesterov step {} buf", t + 1), &to64(&buf), wb, EXACT, EXACT);
        assert_close(&format!("nesterov step {} p", t + 1), &to64(&p), wp, EXACT, EXACT);
    }
}

#[test]
fn sgd_kernel_momentum_weight_decay_f64() {
    sgd_kernel_momentum_weight_decay(Cpu::<f64>::new());
}

#[test]
fn sgd_kernel_momentum_weight_decay_f32() {
    sgd_kernel_momentum_weight_decay(Cpu::<f32>::new());
}

#[test]
fn sgd_kernel_grad_scale_before_weight_decay() {
    // The clipping factor scales g only; weight decay is added after it.
    // lr 1/2, μ 1/2, wd 1/4, scale 1/2, p₀ = [1, −2], g = [1/2, 1].
    let be = Cpu::<f64>::new();
    let s = SgdStep { lr: 0.5, momentum: 0.5, weight_decay: 0.25 };
    let (mut p, g, mut buf) = (vec![1.0, -2.0], vec![0.5, 1.0], vec![0.0, 0.0]);
    sgd1(&be, &s, 0.5, &mut p, &g, &mut buf);
    // d = [1/2·1/2 + 1/4·1, 1/2·1 + 1/4·(−2)] = [1/2, 0]; buf = d;
    // p = [1 − 1/4, −2 − 0] = [3/4, −2]
    assert_close("scaled sgd step 1 p", &p, &[0.75, -2.0], EXACT, EXACT);
    sgd1(&be, &s, 0.5, &mut p, &g, &mut buf);
    // d = [1/4 + 1/4·3/4, 1/2 − 1/2] = [7/16, 0]; buf = [1/4 + 7/16, 0] = [11/16, 0];
    // p = [3/4 − 11/32, −2] = [13/32, −2]
    assert_close("scaled sgd step 2 buf", &buf, &[0.6875, 0.0], EXACT, EXACT);
    assert_close("scaled sgd step 2 p", &p, &[0.40625, -2.0], EXACT, EXACT);
}

/// Adam with lr 1/8, β = (1/2, 3/4), ε 1e-8, wd 1/2, p₀ = [1, −1/2] and
/// g₁ = [1/2, 1/4], g₂ = [−1/4, 1/2], g₃ = [1/8, −1].
/// ε enters as f32 (1e-8 ± 6e-17): invisible at the 1e-12 tolerance, which
/// allows f64 rounding of a few dozen operations including √.
#[test]
fn adam_kernel_bias_correction_coupled_weight_decay() {
    let be = Cpu::<f64>::new();
    let st = |t| AdamStep { lr: 0.125, beta1: 0.5, beta2: 0.75, eps: 1e-8, weight_decay: 0.5, t };
    let mut p = vec![1.0, -0.5];
    let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
    let grads = [[0.5, 0.25], [-0.25, 0.5], [0.125, -1.0]];
    let want = [
        // t = 1: d = [1/2 + 1/2·1, 1/4 + 1/2·(−1/2)] = [1, 0];
        // m = 1/2·d = [1/2, 0]; v = 1/4·d² = [1/4, 0];
        // m̂ = m/(1 − 1/2) = [1, 0]; √v/√(1 − 3/4) = [1, 0];
        // p = [1 − 1/8·1/(1 + 1e-8), −1/2 − 1/8·0/(0 + 1e-8)] = [0.87500000125, −0.5]
        // (the zero gradient element does not move, and no 0/0)
        ([0.5, 0.0], [0.25, 0.0], [0.87500000125, -0.5]),
        // t = 2: d = [−1/4 + 1/2·0.87500000125, 1/2 − 1/4] = [0.187500000625, 0.25];
        // m = [1/4 + 1/2·0.187500000625, 0 + 1/8] = [0.3437500003125, 0.125];
        // v = [3/4·1/4 + 1/4·0.187500000625², 1/4·1/16] = [0.19628906255859374, 0.015625];
        // m̂ = m/(3/4) = [0.45833333375, 1/6]; v̂ = v/(1 − 9/16) = [0.44866071441964284, 1/28];
        // p = 0.87500000125 − 1/8·0.45833333375/(√0.44866071441964284 + 1e-8) = 0.789467252599345,
        //     −1/2 − 1/8·(1/6)/(√(1/28) + 1e-8) = −0.6102396321276916
        ([0.3437500003125, 0.125], [0.19628906255859374, 0.015625], [0.789467252599345, -0.6102396321276916]),
        // t = 3: d = [1/8 + 1/2·0.789467252599345, −1 + 1/2·(−0.6102396321276916)]
        //          = [0.5197336262996726, −1.3051198160638458];
        // m = 1/2·m + 1/2·d = [0.4317418133060863, −0.5900599080319229];
        // v = 3/4·v + 1/4·d² = [0.2147475574955972, 0.43755318357063167];
        // m̂ = m/(7/8) = [0.49341921520695575, −0.6743541806079119];
        // v̂ = v/(1 − 27/64) = [0.37145523458697893, 0.7568487499600115];
        // p = 0.789467252599345 − 1/8·0.49341921520695575/(√0.37145523458697893 + 1e-8) = 0.6882690444847158,
        //     −0.6102396321276916 + 1/8·0.6743541806079119/(√0.7568487499600115 + 1e-8) = −0.5133463843650001
        (
            [0.4317418133060863, -0.5900599080319229],
            [0.2147475574955972, 0.43755318357063167],
            [0.6882690444847158, -0.5133463843650001],
        ),
    ];
    for (i, (g, (wm, wv, wp))) in grads.iter().zip(&want).enumerate() {
        adam1(&be, &st(i as u32 + 1), &mut p, &g.to_vec(), &mut m, &mut v);
        assert_close(&format!("adam t={} m", i + 1), &m, wm, 0.0, 1e-12);
        assert_close(&format!("adam t={} v", i + 1), &v, wv, 0.0, 1e-12);
        assert_close(&format!("adam t={} p", i + 1), &p, wp, 0.0, 1e-12);
    }
}

#[test]
fn adam_kernel_f32() {
    // The t = 1 step above (d = [1/2 + 1/2·1, 1/4 + 1/2·(−1/2)] = [1, 0]) in
    // f32: p = [1 − 1/8·1/(1 + 1e-8), −1/2] = [0.875, −0.5] to f32 precision.
    let be = Cpu::<f32>::new();
    let st = AdamStep { lr: 0.125, beta1: 0.5, beta2: 0.75, eps: 1e-8, weight_decay: 0.5, t: 1 };
    let (mut p, g) = (vec![1.0f32, -0.5], vec![0.5f32, 0.25]);
    let (mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2]);
    adam1(&be, &st, &mut p, &g, &mut m, &mut v);
    // m = 1/2·d, v = 1/4·d²: exact in f32.
    assert_close("adam f32 m", &to64(&m), &[0.5, 0.0], EXACT, EXACT);
    assert_close("adam f32 v", &to64(&v), &[0.25, 0.0], EXACT, EXACT);
    // f32 has 24 bits: 1/8·(1 − 1e-8) rounds to within 6e-8 of 0.125.
    assert_close("adam f32 p", &to64(&p), &[0.87500000125, -0.5], 0.0, 1e-7);
}

#[test]
fn couple_kernel() {
    // g += β·(p − other): β = 0.5, p = [1, 2, −1], other = [0.5, −1, −1], g₀ = [0.25, 0.5, 1]
    // g = [0.25 + 0.5·0.5, 0.5 + 0.5·3, 1 + 0.5·0] = [0.5, 2, 1]
    let be = Cpu::<f64>::new();
    let mut g = vec![0.25, 0.5, 1.0];
    be.couple(0.5, &[&vec![1.0, 2.0, -1.0]], &[&vec![0.5, -1.0, -1.0]], &mut [&mut g], Part::WHOLE, Part::WHOLE)
        .unwrap();
    assert_close("couple", &g, &[0.5, 2.0, 1.0], EXACT, EXACT);
}

/// A list of tensors is the same as each tensor on its own, for every list
/// kernel; lists whose tensors disagree in length are refused.
#[test]
fn list_kernels_equal_one_call_per_tensor() {
    let be = Cpu::<f64>::new();
    let a: Vec<f64> = (0..7).map(|i| 0.25 * i as f64 - 1.0).collect();
    let b: Vec<f64> = (0..3).map(|i| 0.5 - 0.125 * i as f64).collect();
    let (ga, gb) = (a.iter().map(|v| v * 0.5 + 0.25).collect::<Vec<_>>(), b.iter().map(|v| -v).collect::<Vec<_>>());
    let s = SgdStep { lr: 0.5, momentum: 0.5, weight_decay: 0.25 };
    let (mut pa, mut pb, mut ba, mut bb) = (a.clone(), b.clone(), ga.clone(), gb.clone());
    let k = SgdKernel { momentum: s.momentum, weight_decay: s.weight_decay, nesterov: false, lr: 0, scale: 1 };
    be.sgd_step(&k, &vec![0.5, 0.75], &mut [&mut pa, &mut pb], &[&ga, &gb], &mut [&mut ba, &mut bb], Part::WHOLE)
        .unwrap();
    for (p0, g, p, buf) in [(&a, &ga, &pa, &ba), (&b, &gb, &pb, &bb)] {
        let (mut q, mut qb) = (p0.clone(), g.clone());
        sgd1(&be, &s, 0.75, &mut q, g, &mut qb);
        assert_eq!((&q, &qb), (p, buf), "sgd over a list");
    }
    let st = AdamStep { lr: 0.125, beta1: 0.5, beta2: 0.75, eps: 1e-8, weight_decay: 0.5, t: 3 };
    let k = AdamKernel { beta1: 0.5, beta2: 0.75, eps: 1e-8, weight_decay: 0.5, lr: 1, t: 0 };
    let (mut pa, mut pb, mut ma, mut mb, mut va, mut vb) =
        (a.clone(), b.clone(), ga.clone(), gb.clone(), a.clone(), b.clone());
    va.iter_mut().chain(vb.iter_mut()).for_each(|v| *v = *v * *v);
    let (va0, vb0) = (va.clone(), vb.clone());
    let sc = vec![3.0, 0.125];
    be.adam_step(&k, &sc, &mut [&mut pa, &mut pb], &[&ga, &gb], &mut [&mut ma, &mut mb], &mut [&mut va, &mut vb])
        .unwrap();
    for (p0, g, v0, p, m, v) in [(&a, &ga, &va0, &pa, &ma, &va), (&b, &gb, &vb0, &pb, &mb, &vb)] {
        let (mut q, mut qm, mut qv) = (p0.clone(), g.clone(), v0.clone());
        adam1(&be, &st, &mut q, g, &mut qm, &mut qv);
        assert_eq!((&q, &qm, &qv), (p, m, v), "adam over a list");
    }
    // out = 2·x + sc[0]·y, then out += −1·x
    let sc = vec![0.5];
    let (mut oa, mut ob) = (vec![f64::NAN; 7], vec![f64::NAN; 3]);
    let terms = [(Coef::k(2.0), &[&a, &b][..]), (Coef::times(1.0, 0), &[&ga, &gb][..])];
    be.lincomb(&sc, &terms, &mut [&mut oa, &mut ob], Write::Set).unwrap();
    be.lincomb(&sc, &[(Coef::k(-1.0), &[&a, &b][..])], &mut [&mut oa, &mut ob], Write::Add).unwrap();
    for (x, y, o) in [(&a, &ga, &oa), (&b, &gb, &ob)] {
        let want: Vec<f64> = x.iter().zip(y.iter()).map(|(x, y)| 2.0 * x + 0.5 * y - x).collect();
        assert_eq!(o, &want, "lincomb over a list");
    }
    let (mut oa, mut ob) = (vec![f64::NAN; 7], vec![f64::NAN; 3]);
    be.copy_list(&[&a, &b], &mut [&mut oa, &mut ob]).unwrap();
    assert_eq!((&oa, &ob), (&a, &b), "copy_list");
    let mut short = vec![0.0; 2];
    let err = be.couple(0.5, &[&a], &[&b], &mut [&mut short], Part::WHOLE, Part::WHOLE).unwrap_err().to_string();
    assert!(err.contains("other tensor 0 holds 3 elements, expected 7"), "{err}");
}

/// On paired tensors (two networks' copies one after the other, as RARTS
/// records `w` and `y` side by side), the step, the coupling and the norm
/// of one network's part equal the same kernels on that network's own
/// tensors, to the bit; the other part is left alone.
#[test]
fn list_kernels_on_one_networks_part() {
    let be = Cpu::<f64>::new();
    let w: Vec<f64> = (0..6).map(|i| 0.25 * i as f64 - 0.5).collect();
    let y: Vec<f64> = (0..6).map(|i| 0.75 - 0.125 * i as f64).collect();
    let (gw, gy): (Vec<f64>, Vec<f64>) = (w.iter().map(|v| v * 0.5).collect(), y.iter().map(|v| 1.0 - v).collect());
    let (pair, gpair) = ([&w[..], &y[..]].concat(), [&gw[..], &gy[..]].concat());
    let (wp, yp) = (Part::net(0, 2), Part::net(1, 2));
    let k = SgdKernel { momentum: 0.5, weight_decay: 0.25, nesterov: false, lr: 0, scale: 1 };
    let sc = vec![0.5, 0.75];
    // y's step on its part.
    let (mut p2, mut b2) = (pair.clone(), gy.clone());
    be.sgd_step(&k, &sc, &mut [&mut p2], &[&gpair], &mut [&mut b2], yp).unwrap();
    let (mut p1, mut b1) = (y.clone(), gy.clone());
    be.sgd_step(&k, &sc, &mut [&mut p1], &[&gy], &mut [&mut b1], Part::WHOLE).unwrap();
    assert_eq!((&p2[..6], &p2[6..], &b2), (&w[..], &p1[..], &b1), "sgd on y's part");
    // w's gradient pulled towards y.
    let mut g2 = gpair.clone();
    be.couple(0.5, &[&pair], &[&pair], &mut [&mut g2], wp, yp).unwrap();
    let mut g1 = gw.clone();
    be.couple(0.5, &[&w], &[&y], &mut [&mut g1], Part::WHOLE, Part::WHOLE).unwrap();
    assert_eq!((&g2[..6], &g2[6..]), (&g1[..], &gy[..]), "couple of w's part to y's");
    // The norm and clip factor of y's gradient.
    let (mut s2, mut s1) = (vec![0.0; 2], vec![0.0; 2]);
    be.norm(&[&gpair], yp, &mut s2, 0, NormThen::Clip { max: Some(0.5), scale: 1 }).unwrap();
    be.norm(&[&gy], Part::WHOLE, &mut s1, 0, NormThen::Clip { max: Some(0.5), scale: 1 }).unwrap();
    assert_eq!(s2, s1, "norm of y's part");
}

/// The norm over a list, and what it derives: the clip factor and DARTS'
/// perturbation ε = 0.01/‖x‖, c = ξ/2ε.
#[test]
fn norm_clip_and_perturbation() {
    let be = Cpu::<f64>::new();
    let (a, b) = (vec![6.0, 0.0], vec![0.0, 8.0, 0.0]);
    let mut sc = vec![0.0; 4];
    be.norm(&[&a, &b], Part::WHOLE, &mut sc, 0, NormThen::Clip { max: Some(5.0), scale: 1 }).unwrap();
    // ‖(6, 0, 0, 8, 0)‖ = 10; 5/(10 + 1e-6) = 0.499999950000005
    assert_eq!(sc[..2], [10.0, 0.499999950000005]);
    sc[2] = 0.025; // ξ
    be.norm(&[&a, &b], Part::WHOLE, &mut sc, 0, NormThen::Perturb { xi: 2, eps: 1, c: 3 }).unwrap();
    // ε = 0.01/10 = 0.001; c = 0.025/0.002 = 12.5
    assert_close("perturbation", &sc, &[10.0, 0.001, 0.025, 12.5], 0.0, 1e-15);
    be.norm(&[], Part::WHOLE, &mut sc, 0, NormThen::Clip { max: None, scale: 1 }).unwrap();
    assert_eq!(sc[..2], [0.0, 1.0], "an empty list: norm 0, no clipping");
}

// ---- clipping -----------------------------------------------------------------

/// The clip factor as PyTorch forms it, in the f32 step scalars.
#[test]
fn clip_coefficient() {
    let be = Cpu::<f32>::new();
    let coef = |x: &[f32], max: Option<f32>| {
        let mut sc = vec![0.0f32; 2];
        be.norm(&[&x.to_vec()], Part::WHOLE, &mut sc, 0, NormThen::Clip { max, scale: 1 }).unwrap();
        sc[1]
    };
    // No clipping configured, or the norm below max_norm: factor exactly 1.
    assert_eq!(coef(&[123.0], None), 1.0);
    // 5/(4 + 1e-6) > 1 → clamped to 1.
    assert_eq!(coef(&[4.0], Some(5.0)), 1.0);
    // 5/(10 + 1e-6) = 0.499999950000005, rounded to f32 = 0.49999994 (2 ulps below 1/2).
    assert_eq!(coef(&[6.0, 8.0], Some(5.0)), 0.49999994f32);
    // At the boundary the 1e-6 still makes coef < 1 and PyTorch scales:
    // 5/(5 + 1e-6) = 0.9999998, as f32 0.9999998.
    assert_eq!(coef(&[3.0, 4.0], Some(5.0)), 0.9999998f32);
    // Where the 1e-6 dominates: max and norm 1e-6 (as f32, 9.99999997e-7):
    // 9.99999997e-7/(9.99999997e-7 + 1e-6) = 0.4999999987 → f32 0.5 (without the 1e-6: 1).
    assert_eq!(coef(&[1e-6], Some(1e-6)), 0.5);
}

// ---- the optimizers over an Exec ------------------------------------------------

/// Two parameters a (2) and b (3) with loss `Σ ra ⊙ a + Σ rb ⊙ b`, so the
/// gradients are `ra = [6, 0]` and `rb = [0, 8, 0]`, the same every step:
/// total norm √(36 + 64) = 10. Parameters start at a = [1, −1], b = [0.5, 2, −3].
struct Problem {
    ex: Exec<Cpu<f64>>,
    loss: NodeId,
    params: Vec<NodeId>,
}

const GROUP: u32 = 0;
const P0: [f64; 5] = [1.0, -1.0, 0.5, 2.0, -3.0];

fn problem() -> Problem {
    let mut t = Tape::new();
    let a = t.param(Shape::vec(2), GROUP, Init::Const(0.0), "a");
    let b = t.param(Shape::vec(3), GROUP, Init::Const(0.0), "b");
    let ra = t.input(Shape::vec(2), "ra");
    let rb = t.input(Shape::vec(3), "rb");
    let (pa, pb) = (t.mul(a, ra), t.mul(b, rb));
    let (la, lb) = (t.sum_all(pa), t.sum_all(pb));
    let loss = t.add(la, lb);
    let mut ex = Exec::new(Cpu::<f64>::new(), t).unwrap();
    ex.set(a, &P0[..2]).unwrap();
    ex.set(b, &P0[2..]).unwrap();
    ex.set(ra, &[6.0, 0.0]).unwrap();
    ex.set(rb, &[0.0, 8.0, 0.0]).unwrap();
    Problem { ex, loss, params: vec![a, b] }
}

impl Problem {
    fn grads(&mut self) {
        self.ex.forward().unwrap();
        self.ex.backward(self.loss, &[GROUP]).unwrap();
    }
    fn values(&self) -> Vec<f64> {
        self.params.iter().flat_map(|&p| self.ex.get(p).unwrap()).collect()
    }
}

const SLOTS: SgdSlots = SgdSlots { lr: 0, norm: 1, scale: 2 };

/// An SGD over the problem's parameters and its step scalars, uploaded.
fn sgd(pr: &Problem, cfg: SgdStep, clip: Option<f32>) -> (Sgd<Cpu<f64>>, Scalars<Cpu<f64>>) {
    let opt = Sgd::new(&pr.ex, pr.params.clone(), Part::WHOLE, cfg.momentum, cfg.weight_decay, clip, SLOTS).unwrap();
    let mut sc = Scalars::new(&pr.ex.be, 3).unwrap();
    sc.set(SLOTS.lr, cfg.lr as f64);
    sc.upload(&pr.ex.be).unwrap();
    (opt, sc)
}

/// The SPEC §4 Adam over the problem's parameters; its scalars are `[lr, t]`.
fn adam(pr: &Problem) -> (Adam<Cpu<f64>>, Scalars<Cpu<f64>>) {
    let opt = Adam::new(&pr.ex, pr.params.clone(), (0.5, 0.999), 1e-3, AdamSlots { lr: 0, t: 1 }).unwrap();
    let mut sc = Scalars::new(&pr.ex.be, 2).unwrap();
    sc.set(0, 3e-4f32 as f64);
    sc.upload(&pr.ex.be).unwrap();
    (opt, sc)
}

/// The SPEC §4 weight optimizer: lr 0.025, momentum 0.9, wd 3e-4, clip 5.
/// The hyperparameters and the clip factor pass through f32 (relative
/// rounding ≤ 6e-8 each), hence rtol 1e-6; the weight-decay terms are
/// ≥ 5e-5 of the values checked, so they are still tested.
#[test]
fn sgd_wrapper_clips_then_decays() {
    let mut pr = problem();
    let cfg = SgdStep { lr: 0.025, momentum: 0.9, weight_decay: 3e-4 };
    let (mut opt, mut sc) = sgd(&pr, cfg, Some(5.0));
    pr.grads();
    opt.step(&mut pr.ex, &mut sc.buf).unwrap();
    assert_eq!(sc.read(&pr.ex.be).unwrap()[SLOTS.norm], 10.0, "the norm before clipping, √(6² + 8²)");
    // coef = 5/(10 + 1e-6) = 0.499999950000005;
    // d = coef·g + 3e-4·p = [3.0002997, −0.0003, 0.00015, 4.0005996, −0.0009]
    //   (6·0.49999995 + 3e-4·1 = 3.0002997; 8·0.49999995 + 3e-4·2 = 4.0005996);
    // buf = d; p = p₀ − 0.025·d
    //   = [1 − 0.0750074925, −1 + 7.5e-6, 0.5 − 3.75e-6, 2 − 0.10001499, −3 + 2.25e-5]
    let want_p1 = [0.9249925074999992, -0.9999925, 0.49999625, 1.899985009999999, -2.9999775];
    assert_close("sgd step 1 p", &pr.values(), &want_p1, 0.0, 1e-6);
    pr.grads();
    opt.step(&mut pr.ex, &mut sc.buf).unwrap();
    // d = coef·g + 3e-4·p₁ = [2.99999970 + 3e-4·0.92499251, −3e-4·0.9999925, 3e-4·0.49999625,
    //                         3.9999996 + 3e-4·1.89998501, −3e-4·2.9999775]
    //   = [3.0002771977522804, −0.00029999775, 0.000149998875, 4.00056959550304, −0.00089999325];
    // buf = 0.9·buf₁ + d = [5.700546927752308, −0.00056999775, 0.000284998875, 7.601109235503076, −0.00170999325];
    // p = p₁ − 0.025·buf
    let want_buf_a = [5.700546927752308, -0.00056999775];
    let want_buf_b = [0.000284998875, 7.601109235503076, -0.0017099932499999998];
    let want_p2 = [0.7824788343061915, -0.99997825005625, 0.499989125028125, 1.7099572791124222, -2.99993475016875];
    assert_close("sgd step 2 buf a", opt.momentum()[0], &want_buf_a, 0.0, 1e-6);
    assert_close("sgd step 2 buf b", opt.momentum()[1], &want_buf_b, 0.0, 1e-6);
    assert_close("sgd step 2 p", &pr.values(), &want_p2, 0.0, 1e-6);
}

#[test]
fn sgd_wrapper_without_active_clipping() {
    // max_norm 20 > 10: the gradients are used as they are.
    let mut pr = problem();
    let cfg = SgdStep { lr: 0.025, momentum: 0.9, weight_decay: 3e-4 };
    let (mut opt, mut sc) = sgd(&pr, cfg, Some(20.0));
    for _ in 0..2 {
        pr.grads();
        opt.step(&mut pr.ex, &mut sc.buf).unwrap();
    }
    // step 1: d = [6 + 3e-4, −3e-4, 1.5e-4, 8 + 6e-4, −9e-4]; p₁ = p₀ − 0.025·d
    //   = [0.8499925, −0.9999925, 0.49999625, 1.799985, −2.9999775]
    // step 2: d = g + 3e-4·p₁ = [6.00025499775, −0.00029999775, 0.000149998875, 8.0005399955, −0.00089999325];
    //   buf = 0.9·d₁ + d = [11.40052499775, −0.00056999775, 0.000284998875, 15.2010799955, −0.00170999325];
    //   p₂ = p₁ − 0.025·buf
    let want = [0.56497937505625, -0.99997825005625, 0.499989125028125, 1.4199580001124998, -2.99993475016875];
    assert_close("sgd (clip inactive) step 2 p", &pr.values(), &want, 0.0, 1e-6);
}

/// The SPEC §4 architecture optimizer: Adam lr 3e-4, betas (0.5, 0.999),
/// wd 1e-3, ε 1e-8. Adam's steps are ≈ lr·sign(d), so the displacement
/// p − p₀ is what is compared (rtol 1e-6 for the f32 hyperparameters); the
/// small elements, where ε/√v̂ ~ 1e-5 and weight decay alone drives d,
/// carry the detail.
#[test]
fn adam_wrapper_two_steps() {
    let mut pr = problem();
    let (mut opt, mut sc) = adam(&pr);
    let disp = |pr: &Problem| pr.values().iter().zip(P0).map(|(p, p0)| p - p0).collect::<Vec<_>>();
    pr.grads();
    sc.set(1, 1.0);
    sc.upload(&pr.ex.be).unwrap();
    opt.step(&mut pr.ex, &sc.buf).unwrap();
    // t = 1: d = g + 1e-3·p₀ = [6.001, −0.001, 0.0005, 8.002, −0.003];
    // m̂ = d, v̂ = d²; p − p₀ = −3e-4·d/(|d| + 1e-8)
    //   = [−3e-4·6.001/6.00100001, +3e-4·0.001/0.00100001, −3e-4·0.0005/0.00050001, …]
    let want1 = [
        -0.00029999999950003353,
        0.00029999700003002783,
        -0.0002999940001199852,
        -0.00029999999962515567,
        0.0002999990000032149,
    ];
    assert_close("adam step 1 p − p₀", &disp(&pr), &want1, 0.0, 1e-6);
    // State: m = (1 − 0.5)·d = [3.0005, −0.0005, 0.00025, 4.001, −0.0015]; v = (1 − 0.999)·d²
    //   = [0.036012001, 1e-9, 2.5e-10, 0.064032004, 9e-9].
    // The state is f32 (checkpoint format). β2 reaches the kernel as f32
    // 0.99900001287, so 1 − β2 = 0.00099998713: v is 1.3e-5 below PyTorch's
    // (the bias correction uses the same β2, so p is unaffected): rtol 2e-5.
    let state = opt.state(&pr.ex.be).unwrap();
    let flat = |v: &[Vec<f32>]| v.iter().flatten().map(|&x| x as f64).collect::<Vec<_>>();
    assert_close("adam step 1 m", &flat(&state[..2]), &[3.0005, -0.0005, 0.00025, 4.001, -0.0015], 0.0, 1e-6);
    assert_close("adam step 1 v", &flat(&state[2..]), &[0.036012001, 1e-9, 2.5e-10, 0.064032004, 9e-9], 0.0, 2e-5);
    pr.grads();
    sc.set(1, 2.0);
    sc.upload(&pr.ex.be).unwrap();
    opt.step(&mut pr.ex, &sc.buf).unwrap();
    // t = 2: d = g + 1e-3·p₁ = [6.0009997, −0.00099970000299997, 0.00049970000599988, 8.0019997, −0.0029997000009999966];
    // m = 0.5·m₁ + 0.5·d = [4.50074985, −0.000749850001499985, 0.00037485000299994, 6.00149985, −0.0022498500004999983];
    // v = 0.999·v₁ + 0.001·d²; m̂ = m/0.75; v̂ = v/(1 − 0.999²) = v/0.001999;
    //   m̂ = [6.0009998, −0.00099980000199998, 0.00049980000399992, 8.0019998, −0.0029998000006666646]
    //   v̂ = [36.01199919879997, 9.996998979480582e-07, 2.4984997298463597e-07, 64.03200159820007, 8.999099597798717e-06]
    // p₂ = p₁ − 3e-4·m̂/(√v̂ + 1e-8), displacement from p₀:
    let want2 = [
        -0.0005999999965042857,
        0.0005999790167968699,
        -0.0005999580221606737,
        -0.0005999999973784753,
        0.0005999930068689707,
    ];
    assert_close("adam step 2 p − p₀", &disp(&pr), &want2, 0.0, 1e-6);
    let state = opt.state(&pr.ex.be).unwrap();
    let want_m2 = [4.50074985, -0.000749850001499985, 0.00037485000299994, 6.00149985, -0.0022498500004999983];
    assert_close("adam step 2 m", &flat(&state[..2]), &want_m2, 0.0, 1e-6);
}

#[test]
fn optimizers_refuse_a_parameter_without_gradient() {
    // No backward yet: the step must fail rather than read a stale buffer.
    let mut pr = problem();
    let cfg = SgdStep { lr: 0.025, momentum: 0.9, weight_decay: 3e-4 };
    let (mut opt, mut sc) = sgd(&pr, cfg, None);
    let err = opt.step(&mut pr.ex, &mut sc.buf).unwrap_err().to_string();
    assert!(err.contains("no gradient for parameter 'a'"), "{err}");
    let (mut opt, sc) = adam(&pr);
    assert!(opt.step(&mut pr.ex, &sc.buf).is_err());
    assert_eq!(pr.values(), P0, "a failed step leaves the parameters alone");
}
