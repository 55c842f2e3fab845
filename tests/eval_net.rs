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
use rarts::shape::Shape;
use rarts::space::GROUP_W;
use rarts::space::eval::{EvalCell, EvalNet, EvalNetConfig, eval_net};
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
    let bns: Vec<_> =
        t.ops.iter().filter_map(|op| if let Op::BatchNorm { affine, .. } = op { Some(affine) } else { None }).collect();
    assert!(bns.len() > 100);
    assert!(bns.iter().all(|a| a.is_some()));
    // Pools carry no BN: a BN never reads a pool's output.
    let pooled: Vec<_> =
        t.ops.iter().filter(|op| matches!(op, Op::MaxPool { .. } | Op::AvgPool { .. })).map(|op| op.output()).collect();
    assert!(!pooled.is_empty());
    assert!(t.ops.iter().all(|op| !matches!(op, Op::BatchNorm { x, .. } if pooled.contains(x))));
}

#[test]
fn bad_configurations_are_errors() {
    let v2 = || Genotype::from_source("DARTS_V2").unwrap();
    let err = |cfg: &EvalNetConfig, hw: usize| record(cfg, 2, hw).map(|_| ()).unwrap_err().to_string();
    let mut aux = EvalNetConfig::new(4, 3, 10, 3, v2());
    aux.auxiliary = true;
    assert!(err(&aux, 8).contains("auxiliary head is not implemented"));
    let e = err(&EvalNetConfig::new(4, 3, 10, 3, v2()), 6);
    assert!(e.contains("3×6×6") && e.contains("divisible by 4"), "{e}");
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

/// Gradients of every weight of one evaluation cell (normal and reduction)
/// against float64 central differences of `Σ r ⊙ cell(s0, s1)`. The genes
/// read one state twice through two identities (as DARTS_V2's reduction
/// cell does), and use every op.
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
    for reduction in [false, true] {
        let (n, c, hw) = (2, 2, 4);
        let mut rng = common::rng(41);
        let mut t = Tape::new();
        // The previous cell reduced: s0 has twice the side of s1.
        let s0 = t.input(Shape::nchw(n, 3, 2 * hw, 2 * hw), "s0");
        let s1 = t.input(Shape::nchw(n, 5, hw, hw), "s1");
        let cell = EvalCell { c, reduction, reduction_prev: true, genes: &genes, concat: &concat };
        let out = cell.record(&mut t, s0, s1, GROUP_W, "cell").unwrap();
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
        let params: Vec<NodeId> =
            (0..ex.tape.nodes.len()).filter(|&i| matches!(ex.tape.nodes[i].kind, Kind::Param { .. })).collect();
        ex.forward().unwrap();
        ex.backward(loss, &[GROUP_W]).unwrap();
        let analytic: Vec<Vec<f64>> = params.iter().map(|&p| ex.get_grad(p).unwrap()).collect();
        for (&p, a) in params.iter().zip(&analytic) {
            let name = format!("reduction={reduction}: d loss / d {}", ex.tape.nodes[p].name);
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
