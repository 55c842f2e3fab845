//! DARTS' evaluation network (NetworkCIFAR) as recorded on the tape: weight
//! counts against SPEC §5 and against DARTS' module shapes, input checks,
//! a forward + backward pass on the CPU backend, and one cell's gradients
//! against float64 finite differences.

mod common;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rarts::backend::Cpu;
use rarts::exec::Exec;
use rarts::genotype::Genotype;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::space::eval::{EvalCell, EvalNet, EvalNetConfig, eval_net, fill_drop_masks, set_drop_masks};
use rarts::space::{GROUP_AUX, GROUP_W};
use rarts::tape::{Kind, NodeId, Op, Tape};

/// The tape, its image input and the network.
fn record_x(cfg: &EvalNetConfig, n: usize, hw: usize) -> rarts::Result<(Tape, NodeId, EvalNet)> {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(n, cfg.in_channels, hw, hw), "x");
    let net = eval_net(&mut t, cfg, x, GROUP_W)?;
    Ok((t, x, net))
}

fn record(cfg: &EvalNetConfig, n: usize, hw: usize) -> rarts::Result<(Tape, EvalNet)> {
    record_x(cfg, n, hw).map(|(t, _, net)| (t, net))
}

/// The weight count of DARTS' `NetworkCIFAR(C, classes, layers, False,
/// genotype)` worked out from its modules' shapes (convolutions without
/// bias, affine BN: 2 per channel), independently of the tape.
fn darts_weights(g: &Genotype, c: usize, layers: usize, classes: usize, in_ch: usize) -> usize {
    let bn = |c: usize| 2 * c;
    let relu_conv_bn = |ci: usize, co: usize| ci * co + bn(co);
    let factorized_reduce = |ci: usize, co: usize| 2 * ci * (co / 2) + bn(co);
    let dil_conv = |c: usize, k: usize| c * k * k + c * c + bn(c);
    let op = |name: &str, c: usize, stride: usize| match name {
        "sep_conv_3x3" => 2 * dil_conv(c, 3),
        "sep_conv_5x5" => 2 * dil_conv(c, 5),
        "dil_conv_3x3" => dil_conv(c, 3),
        "dil_conv_5x5" => dil_conv(c, 5),
        "skip_connect" if stride == 2 => factorized_reduce(c, c),
        "skip_connect" | "max_pool_3x3" | "avg_pool_3x3" => 0,
        other => panic!("no op {other} in an evaluation network"),
    };
    let mut total = in_ch * 3 * c * 9 + bn(3 * c);
    let (mut c_pp, mut c_p, mut c_curr) = (3 * c, 3 * c, c);
    let mut reduction_prev = false;
    for layer in 0..layers {
        let reduction = layer == layers / 3 || layer == 2 * layers / 3;
        if reduction {
            c_curr *= 2;
        }
        total += if reduction_prev { factorized_reduce(c_pp, c_curr) } else { relu_conv_bn(c_pp, c_curr) };
        total += relu_conv_bn(c_p, c_curr);
        let (genes, concat) = if reduction { (&g.reduce, &g.reduce_concat) } else { (&g.normal, &g.normal_concat) };
        for &(name, j) in genes {
            total += op(name, c_curr, if reduction && j < 2 { 2 } else { 1 });
        }
        (c_pp, c_p) = (c_p, concat.len() * c_curr);
        reduction_prev = reduction;
    }
    total + c_p * classes + classes
}

fn cifar(g: Genotype) -> EvalNetConfig {
    EvalNetConfig::new(36, 20, 10, 3, g)
}

#[test]
fn darts_v2_has_the_published_weight_count() {
    let g = Genotype::from_source("DARTS_V2").unwrap();
    let (t, net) = record(&cifar(g.clone()), 2, 32).unwrap();
    assert_eq!(t.numel(GROUP_W), 3_349_342, "SPEC §5");
    assert_eq!(darts_weights(&g, 36, 20, 10, 3), 3_349_342);
    assert_eq!(t.shape(net.logits), Shape::mat(2, 10));
    assert_eq!(net.weight_params, t.params(GROUP_W));
    // Each reduction cell max-pools s0 twice and s1 three times, all stride
    // 2: one pool per input is recorded.
    assert_eq!(t.ops.iter().filter(|op| matches!(op, Op::MaxPool(_))).count(), 4);
}

#[test]
fn darts_v1_and_random_cells_match_darts_module_shapes() {
    let v1 = Genotype::from_source("DARTS_V1").unwrap();
    let (t, _) = record(&cifar(v1.clone()), 2, 32).unwrap();
    assert_eq!(t.numel(GROUP_W), 3_169_414);
    assert_eq!(darts_weights(&v1, 36, 20, 10, 3), 3_169_414);
    for seed in 0..8 {
        let g = Genotype::random(seed);
        let cfg = EvalNetConfig::new(8, 5, 7, 1, g.clone());
        let (t, net) = record(&cfg, 2, 28).unwrap();
        assert_eq!(t.numel(GROUP_W), darts_weights(&g, 8, 5, 7, 1), "random:{seed}");
        assert_eq!(t.shape(net.logits), Shape::mat(2, 7));
    }
}

#[test]
fn every_batch_norm_is_affine() {
    let (t, _) = record(&cifar(Genotype::from_source("DARTS_V1").unwrap()), 2, 32).unwrap();
    // Standalone, and ending the sep_conv / dil_conv chains.
    let bns: Vec<_> = t
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::BatchNorm(bn) => Some(&bn.affine),
            Op::Chain(chain) => Some(&chain.affine),
            _ => None,
        })
        .collect();
    assert!(bns.len() > 100);
    assert!(bns.iter().all(|a| a.is_some()));
    // Pools carry no BN: a BN never reads a pool's output.
    let pooled: Vec<_> =
        t.ops.iter().filter(|op| matches!(op, Op::MaxPool(_) | Op::AvgPool(_))).map(|op| op.output()).collect();
    assert!(!pooled.is_empty());
    assert!(t.ops.iter().all(|op| !matches!(op, Op::BatchNorm(bn) if pooled.contains(&bn.x))));
}

#[test]
fn bad_configurations_are_errors() {
    let v2 = || Genotype::from_source("DARTS_V2").unwrap();
    let err = |cfg: &EvalNetConfig, hw: usize| record(cfg, 2, hw).map(|_| ()).unwrap_err().to_string();
    // L = 3: cells 1 and 2 reduce, the head reads cell 2's output, a
    // quarter of the input's side.
    let mut aux = EvalNetConfig::new(4, 3, 10, 3, v2());
    aux.auxiliary = true;
    let e = err(&aux, 16);
    assert!(e.contains("auxiliary head needs an 8×8 map after cell 2 (32×32 inputs)") && e.contains("is 4×4"), "{e}");
    assert!(record(&aux, 2, 32).is_ok());
    let e = err(&EvalNetConfig::new(4, 3, 10, 3, v2()), 6);
    assert!(e.contains("3×6×6") && e.contains("positive multiples of 4"), "{e}");
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 3, 8, 8), "x");
    let e = eval_net(&mut t, &EvalNetConfig::new(4, 3, 10, 1, v2()), x, GROUP_W).unwrap_err().to_string();
    assert!(e.contains("input is 3×8×8; expected 1 channels"), "{e}");
    let mut g = v2();
    g.normal[3] = ("none", 1);
    let e = err(&EvalNetConfig::new(4, 3, 10, 3, g), 8);
    assert!(e.contains("normal gene 3") && e.contains("'none'"), "{e}");
    // One cell: L/3 = 2L/3 = 0, a single reduction, sides need only be even.
    assert!(record(&EvalNetConfig::new(4, 1, 10, 3, v2()), 2, 6).is_ok());
}

/// The weights of DARTS' `AuxiliaryHeadCIFAR(c, classes)` from its module
/// shapes: 1×1 conv c→128, affine BN, 2×2 conv 128→768, affine BN, linear
/// 768→classes with bias.
fn darts_aux_weights(c: usize, classes: usize) -> usize {
    c * 128 + 2 * 128 + 128 * 768 * 2 * 2 + 2 * 768 + 768 * classes + classes
}

/// Channels of cell 2L/3's output: C doubled at both reductions (L/3 and
/// 2L/3), times the cell's concat width.
fn aux_channels(g: &Genotype, c: usize) -> usize {
    g.reduce_concat.len() * 4 * c
}

#[test]
fn auxiliary_head_is_apart_from_the_weight_count() {
    let g = Genotype::from_source("DARTS_V2").unwrap();
    let mut cfg = cifar(g.clone());
    cfg.auxiliary = true;
    let (t, net) = record(&cfg, 2, 32).unwrap();
    assert_eq!(t.numel(GROUP_W), 3_349_342, "SPEC §5: the count excludes the head");
    assert_eq!(net.weight_params, t.params(GROUP_W));
    assert_eq!(aux_channels(&g, 36), 576);
    assert_eq!(t.numel(GROUP_AUX), darts_aux_weights(576, 10));
    assert_eq!(t.numel(GROUP_AUX), 476_426);
    assert_eq!(net.aux_params, t.params(GROUP_AUX));
    let aux = net.aux_logits.expect("configured");
    assert_eq!(t.shape(aux), Shape::mat(2, 10));
    // One 5×5 stride-3 average pool, on the (2, 576, 8, 8) map of cell 13 (2L/3).
    let pools: Vec<_> = t
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::AvgPool(p) if p.geom.k == 5 => Some(p.geom),
            _ => None,
        })
        .collect();
    assert_eq!(pools.len(), 1);
    assert_eq!((pools[0].stride, pools[0].pad), (3, 0));
    assert_eq!(pools[0].x_shape(), Shape::nchw(2, 576, 8, 8));
    assert_eq!(pools[0].y_shape(), Shape::nchw(2, 576, 2, 2));
    // Without the head: no GROUP_AUX at all.
    let (t, net) = record(&cifar(g), 2, 32).unwrap();
    assert_eq!(t.numel(GROUP_AUX), 0);
    assert!(net.aux_logits.is_none() && net.aux_params.is_empty());
}

#[test]
fn drop_path_masks_one_per_non_identity_op() {
    let g = Genotype::from_source("DARTS_V2").unwrap();
    let mut cfg = EvalNetConfig::new(4, 5, 10, 3, g.clone());
    let (t, net) = record(&cfg, 3, 16).unwrap();
    assert!(net.drop_masks.is_empty(), "no drop path unless configured");
    assert!(!t.ops.iter().any(|op| matches!(op, Op::MaskedSum(_))));
    let (n_plain, ops_plain) = (t.nodes.len(), t.ops.len());
    cfg.drop_path = true;
    let (t, net) = record(&cfg, 3, 16).unwrap();
    // Identities are the skip_connects at stride 1; in a reduction cell
    // those reading the cell's inputs are FactorizedReduce, not identities.
    let identities = |genes: &[(&str, usize)], reduction: bool| {
        genes.iter().filter(|&&(op, j)| op == "skip_connect" && !(reduction && j < 2)).count()
    };
    let per_cell = |r: bool| 8 - identities(if r { &g.reduce } else { &g.normal }, r);
    let want: usize = (0..5).map(|l| per_cell(cfg.is_reduction(l))).sum();
    assert_eq!(net.drop_masks.len(), want);
    // The masks scale the ops' outputs as each node sums them: a mask input
    // per op, no other node and no other op.
    assert_eq!(t.nodes.len(), n_plain + want, "a mask input per op");
    assert_eq!(t.ops.len(), ops_plain);
    let masked: usize = t
        .ops
        .iter()
        .map(|op| if let Op::MaskedSum(m) = op { m.terms.iter().filter(|t| t.1.is_some()).count() } else { 0 })
        .sum();
    assert_eq!(masked, want, "every mask is applied by a node's sum");
    for &m in &net.drop_masks {
        assert_eq!(t.shape(m), Shape::vec(3));
        assert!(matches!(t.nodes[m].kind, Kind::Input));
        assert!(t.nodes[m].name.ends_with(".drop_mask"), "{}", t.nodes[m].name);
    }
    assert_eq!(t.nodes[net.drop_masks[0]].name, "cells.0.ops.0.drop_mask");
}

/// With every mask 1 the drop-path network computes exactly what the plain
/// one does (masks are inputs: the parameters draw identically); dropping
/// a sample everywhere changes only that sample's logits (BN in evaluation
/// mode, so that samples do not mix through batch statistics).
#[test]
fn drop_path_with_masks_of_one_is_the_plain_network() {
    let (n, hw) = (2, 8);
    let g = Genotype::from_source("DARTS_V2").unwrap();
    let logits = |drop: Option<f32>, zero_second: bool| {
        let mut cfg = EvalNetConfig::new(4, 3, 10, 3, g.clone());
        cfg.drop_path = drop.is_some();
        let (t, x, net) = record_x(&cfg, n, hw).unwrap();
        let mut ex = Exec::new(Cpu::<f64>::new(), t).unwrap();
        ex.train = false;
        ex.init_params(&mut StdRng::seed_from_u64(9)).unwrap();
        let pixels: Vec<f64> = (0..n * 3 * hw * hw).map(|i| ((i * 7919) % 255) as f64 / 128.0 - 1.0).collect();
        ex.set(x, &pixels).unwrap();
        if let Some(p) = drop {
            set_drop_masks(&mut ex, &net.drop_masks, &mut StdRng::seed_from_u64(1), p).unwrap();
        }
        if zero_second {
            for &m in &net.drop_masks {
                ex.set(m, &[1.0, 0.0]).unwrap();
            }
        }
        ex.forward().unwrap();
        ex.get(net.logits).unwrap()
    };
    let plain = logits(None, false);
    assert_eq!(logits(Some(0.0), false), plain);
    let dropped = logits(Some(0.0), true);
    assert_eq!(dropped[..10], plain[..10], "sample 0 kept everywhere");
    assert_ne!(dropped[10..], plain[10..], "sample 1 dropped everywhere");
}

#[test]
fn drop_masks_are_darts_bernoulli() {
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(fill_drop_masks(&mut rng, 0.0, 5), vec![1.0; 5]);
    assert_eq!(fill_drop_masks(&mut rng, 1.0, 4), vec![0.0; 4]);
    assert!(fill_drop_masks(&mut rng, 0.3, 0).is_empty());
    let n = 200_000;
    let m = fill_drop_masks(&mut rng, 0.2, n);
    assert!(m.iter().all(|&v| v == 0.0 || v == 1.0 / 0.8), "values are 0 or 1/keep");
    // Mean 1 and 20% dropped; the standard errors are √(p/(1−p)/n) ≈ 1.1e-3
    // and √(p(1−p)/n) ≈ 9e-4, the bounds five of them.
    let mean = m.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    assert!((mean - 1.0).abs() < 6e-3, "mean {mean}");
    assert!((dropped - 0.2).abs() < 5e-3, "dropped {dropped}");
}

/// Forward and backward of a tiny network on the CPU: a finite loss, and a
/// finite, not identically zero gradient for every weight.
#[test]
fn tiny_network_trains_on_the_cpu() {
    let (n, hw, classes) = (2, 8, 10);
    for source in ["DARTS_V2", "DARTS_V1", "random:1", "random:2", "random:3"] {
        let cfg = EvalNetConfig::new(4, 3, classes, 3, Genotype::from_source(source).unwrap());
        let (mut t, x, net) = record_x(&cfg, n, hw).unwrap();
        let labels = t.input(Shape::vec(n), "labels");
        let loss = t.cross_entropy(net.logits, labels);
        let mut ex = Exec::new(Cpu::<f32>::new(), t).expect("plan allocates");
        let mut rng = StdRng::seed_from_u64(5);
        ex.init_params(&mut rng).unwrap();
        let pixels: Vec<f64> = (0..n * 3 * hw * hw).map(|i| ((i * 7919) % 255) as f64 / 128.0 - 1.0).collect();
        ex.set(x, &pixels).unwrap();
        ex.set(labels, &[3.0, 8.0]).unwrap();
        ex.forward().unwrap();
        let l = ex.scalar(loss).unwrap();
        assert!(l.is_finite() && l > 0.0, "{source}: loss {l}");
        ex.backward(loss, &[GROUP_W]).unwrap();
        for &p in &net.weight_params {
            let name = &ex.tape.nodes[p].name;
            let g = ex.get_grad(p).unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{source}: {name} has a non-finite gradient");
            assert!(g.iter().any(|v| *v != 0.0), "{source}: {name} gets no gradient");
        }
    }
}

/// DARTS' training loss with both extras on a 32×32 batch: `ce(logits) +
/// 0.4·ce(aux_logits)` with drop probability 0.2; every weight of the
/// network and of the head gets a finite, nonzero gradient.
#[test]
fn tiny_network_trains_with_auxiliary_head_and_drop_path() {
    let (n, hw, classes) = (4, 32, 10);
    let mut cfg = EvalNetConfig::new(4, 3, classes, 3, Genotype::from_source("DARTS_V2").unwrap());
    (cfg.auxiliary, cfg.drop_path) = (true, true);
    let (mut t, x, net) = record_x(&cfg, n, hw).unwrap();
    let labels = t.input(Shape::vec(n), "labels");
    let main = t.cross_entropy(net.logits, labels);
    let aux = t.cross_entropy(net.aux_logits.unwrap(), labels);
    let loss = t.combine(&[(main, 1.0), (aux, 0.4)]);
    let mut ex = Exec::new(Cpu::<f32>::new(), t).expect("plan allocates");
    let mut rng = StdRng::seed_from_u64(6);
    ex.init_params(&mut rng).unwrap();
    let pixels: Vec<f64> = (0..n * 3 * hw * hw).map(|i| ((i * 7919) % 255) as f64 / 128.0 - 1.0).collect();
    ex.set(x, &pixels).unwrap();
    ex.set(labels, &[3.0, 8.0, 0.0, 5.0]).unwrap();
    set_drop_masks(&mut ex, &net.drop_masks, &mut rng, 0.2).unwrap();
    ex.forward().unwrap();
    let l = ex.scalar(loss).unwrap();
    assert!(l.is_finite() && l > 0.0, "loss {l}");
    ex.backward(loss, &[GROUP_W, GROUP_AUX]).unwrap();
    for &p in net.weight_params.iter().chain(&net.aux_params) {
        let name = &ex.tape.nodes[p].name;
        let g = ex.get_grad(p).unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{name} has a non-finite gradient");
        assert!(g.iter().any(|v| *v != 0.0), "{name} gets no gradient");
    }
}

/// Gradients of every weight of one evaluation cell (normal and reduction)
/// against float64 central differences of `Σ r ⊙ cell(s0, s1)`. The genes
/// read one state twice through two identities (as DARTS_V2's reduction
/// cell does), and use every op. With drop path, each op's mask keeps one
/// of the two samples, scaled.
#[test]
fn one_cell_matches_finite_differences() {
    let genes = vec![
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("max_pool_3x3", 2),
        ("avg_pool_3x3", 0),
        ("dil_conv_5x5", 3),
        ("sep_conv_5x5", 2),
        ("dil_conv_3x3", 1),
    ];
    let concat = [2, 3, 4, 5];
    for (reduction, drop) in [(false, false), (true, false), (false, true), (true, true)] {
        let (n, c, hw) = (2, 2, 4);
        let mut rng = common::rng(41);
        let mut t = Tape::new();
        // The previous cell reduced: s0 has twice the side of s1.
        let s0 = t.input(Shape::nchw(n, 3, 2 * hw, 2 * hw), "s0");
        let s1 = t.input(Shape::nchw(n, 5, hw, hw), "s1");
        let cell = EvalCell { c, reduction, reduction_prev: true, genes: &genes, concat: &concat };
        let mut masks = Vec::new();
        let out = cell.record(&mut t, s0, s1, GROUP_W, "cell", drop.then_some(&mut masks)).unwrap();
        assert_eq!(masks.len(), if drop { 8 - if reduction { 0 } else { 2 } } else { 0 }, "non-identity ops");
        let side = if reduction { hw / 2 } else { hw };
        assert_eq!(t.shape(out), Shape::nchw(n, 4 * c, side, side));
        let r = t.input(t.shape(out), "r");
        let prod = t.mul(out, r);
        let loss = t.sum_all(prod);

        let mut ex = Exec::new(Cpu::<f64>::new(), t).expect("plan allocates");
        ex.init_params(&mut StdRng::seed_from_u64(42)).unwrap();
        for node in [s0, s1, r] {
            let len = ex.shape(node).numel();
            ex.set(node, &common::uniform(&mut rng, len)).unwrap();
        }
        for (i, &m) in masks.iter().enumerate() {
            ex.set(m, if i % 2 == 0 { &[1.25, 0.0] } else { &[0.0, 2.0] }).unwrap();
        }
        let params: Vec<NodeId> =
            (0..ex.tape.nodes.len()).filter(|&i| matches!(ex.tape.nodes[i].kind, Kind::Param { .. })).collect();
        ex.forward().unwrap();
        ex.backward(loss, &[GROUP_W]).unwrap();
        let analytic: Vec<Vec<f64>> = params.iter().map(|&p| ex.get_grad(p).unwrap()).collect();
        for (&p, a) in params.iter().zip(&analytic) {
            let name = format!("reduction={reduction} drop={drop}: d loss / d {}", ex.tape.nodes[p].name);
            let w = ex.get(p).unwrap();
            let num = common::numeric_grad(&w, |v| {
                ex.set(p, v).unwrap();
                ex.forward().unwrap();
                ex.scalar(loss).unwrap()
            });
            ex.set(p, &w).unwrap();
            assert!(num.iter().any(|v| v.abs() > 1e-6), "{name}: numeric gradient is zero");
            common::assert_close(&name, a, &num, common::FD_ATOL, common::FD_RTOL);
        }
    }
}
