//! The width space (SPEC §7): the CIFAR ResNets' weight and multiply-add
//! counts, the counts of any chosen widths against the recorded network,
//! the search network's mask mix and multiply-add cost, the derivation.

mod common;

use rarts::backend::Cpu;
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::space::width::{FRACTIONS, WidthConfig, Widths, alphas, trained_net};
use rarts::space::{GROUP_ARCH, GROUP_W, SearchSpace, width::WidthSpace};
use rarts::tape::Tape;

fn cifar(depth: usize) -> WidthConfig {
    WidthConfig::new(depth, 10, 3, (32, 32))
}

/// He et al.'s ResNet-20 and ResNet-56 on 32×32 CIFAR images: weights
/// (BN's γ and β included) and multiply-adds (convolutions and the linear
/// layer), counted and recorded.
#[test]
fn resnet_weights_and_multiply_adds() {
    for (depth, weights, macs) in [(20, 269_722, 40_551_040), (56, 853_018, 125_485_696)] {
        let cfg = cifar(depth);
        let full = cfg.full_widths();
        assert_eq!(cfg.cost(&full), (weights, macs), "ResNet-{depth}");
        let mut t = Tape::new();
        let x = t.input(Shape::nchw(2, 3, 32, 32), "x");
        trained_net(&mut t, &cfg, x, &Widths(full.clone()), GROUP_W);
        assert_eq!(t.numel(GROUP_W), weights, "ResNet-{depth} recorded");
    }
}

/// Any widths: the recorded network's weights are what `cost` says, and
/// the network runs.
#[test]
fn chosen_widths_count_and_run() {
    let cfg = WidthConfig::new(8, 4, 1, (8, 8));
    let widths = Widths(vec![4, 12, 48]);
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 1, 8, 8), "x");
    let labels = t.input(Shape::vec(2), "labels");
    let n = trained_net(&mut t, &cfg, x, &widths, GROUP_W);
    assert_eq!(t.numel(GROUP_W), cfg.cost(&widths.0).0);
    let loss = t.cross_entropy(n.logits, labels);
    let mut ex = Exec::new(Cpu::<f64>::new(), t).unwrap();
    ex.init_params(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1)).unwrap();
    ex.set(x, &(0..128).map(|i| (i % 7) as f64 / 7.0).collect::<Vec<_>>()).unwrap();
    ex.set(labels, &[1.0, 3.0]).unwrap();
    ex.forward().unwrap();
    assert!(ex.scalar(loss).unwrap().is_finite());
}

/// The search network: every α gets a gradient from the loss, and the
/// multiply-add cost is `μ · max(0, E[MACs]/target − 1)` of the softmax's
/// expected widths, computed here on the host.
#[test]
fn search_network_mask_mix_and_cost() {
    let cfg = WidthConfig { macs_target: 0.3, macs_weight: 1.5, ..WidthConfig::new(8, 3, 1, (8, 8)) };
    let space = WidthSpace(cfg.clone());
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 1, 8, 8), "x");
    let labels = t.input(Shape::vec(2), "labels");
    let a = space.alphas(&mut t, GROUP_ARCH);
    let n = space.supernet(&mut t, x, &a, GROUP_W);
    let ce = t.cross_entropy(n.logits, labels);
    let cost = space.penalty(&mut t, &a).unwrap();
    let loss = t.add(ce, cost);
    let mut ex = Exec::new(Cpu::<f64>::new(), t).unwrap();
    ex.init_params(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(2)).unwrap();
    let alpha: Vec<f64> = (0..3 * FRACTIONS.len()).map(|i| ((i * 5 % 7) as f64 - 3.0) * 0.4).collect();
    ex.set(a.params[0].0, &alpha).unwrap();
    ex.set(x, &(0..128).map(|i| ((i * 3 % 11) as f64 / 5.0) - 1.0).collect::<Vec<_>>()).unwrap();
    ex.set(labels, &[0.0, 2.0]).unwrap();
    ex.forward().unwrap();
    // The cost on the host: expected widths from the softmax rows.
    let k = FRACTIONS.len();
    let mut expected = Vec::new();
    for (l, row) in cfg.layers().iter().zip(alpha.chunks(k)) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        expected.push(cfg.candidates(l).iter().zip(&e).map(|(&c, &p)| c as f64 * p / s).sum::<f64>());
    }
    let (fixed, full) = (cfg.cost(&[0, 0, 0]).1 as f64, cfg.cost(&cfg.full_widths()).1 as f64);
    let macs: f64 = fixed
        + cfg
            .layers()
            .iter()
            .zip(&expected)
            .map(|(l, &c)| (l.out.0 * l.out.1 * 9 * (l.c_in + l.planes)) as f64 * c)
            .sum::<f64>();
    let want = 1.5 * (macs / (0.3 * full) - 1.0).max(0.0);
    assert!(want > 0.0, "the test wants the cost active");
    let got = ex.scalar(cost).unwrap();
    assert!((got - want).abs() <= 1e-5 * want, "cost {got}, host {want}");
    ex.backward(loss, &[GROUP_W, GROUP_ARCH]).unwrap();
    let g = ex.get_grad(a.params[0].0).unwrap();
    assert!(g.iter().all(|v| v.is_finite() && *v != 0.0), "{g:?}");
    // The derivation: the strongest width of each row.
    let d = space.derive(std::slice::from_ref(&alpha)).unwrap();
    let widths = Widths::from_alpha(&cfg, &alpha).unwrap();
    for (l, (row, &w)) in cfg.layers().iter().zip(alpha.chunks(k).zip(&widths.0)) {
        let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        assert_eq!(w, cfg.candidates(l)[best]);
    }
    assert!(d.json.contains("\"widths\":[") && d.json.contains("\"softmax_alpha\":[["), "{}", d.json);
    assert_eq!(Widths::parse(&cfg, &d.text, "derived").unwrap(), widths);
    // A record of α alone, for its shape.
    let mut t = Tape::new();
    let (p, _) = alphas(&mut t, &cfg, GROUP_ARCH);
    assert_eq!(t.shape(p), Shape::mat(3, k));
}

#[test]
fn widths_sources_and_errors() {
    let cfg = cifar(20);
    assert_eq!(Widths::from_source(&cfg, "full").unwrap().0, cfg.full_widths());
    let half = Widths::from_source(&cfg, "uniform:0.5").unwrap();
    assert_eq!(half.0, [8, 8, 8, 16, 16, 16, 32, 32, 32]);
    let (p, m) = cfg.cost(&half.0);
    assert!(p < 269_722 && m < 40_551_040);
    for (bad, says) in [("uniform:2", "fraction in (0, 1]"), ("/nonexistent", "no such file")] {
        let e = Widths::from_source(&cfg, bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = Widths::parse(&cfg, "{\"widths\":[16,16]}", "f").unwrap_err().to_string();
    assert!(e.contains("2 widths") && e.contains("9 searchable layers"), "{e}");
    let e = Widths::parse(&cfg, "{\"widths\":[16,16,16,32,32,32,64,64,65]}", "f").unwrap_err().to_string();
    assert!(e.contains("width 8 is 65") && e.contains("1 to 64"), "{e}");
    assert!(WidthConfig::new(21, 10, 3, (32, 32)).check().is_err());
}

/// Uniform scaling's fraction: its widths' multiply-adds come within the
/// rounding of the channel counts of the target, and no multiple of 0.001
/// comes closer.
#[test]
fn uniform_fraction_meets_the_multiply_add_target() {
    for (depth, target) in [(20, 0.5), (56, 0.5), (20, 0.3)] {
        let cfg = cifar(depth);
        let full = cfg.cost(&cfg.full_widths()).1 as f64;
        let f = cfg.uniform_fraction(target);
        let off = |f: f64| (cfg.cost(&cfg.uniform_widths(f)).1 as f64 / full - target).abs();
        assert!(off(f) < 0.03, "ResNet-{depth} at {target}: fraction {f} gives {}", off(f));
        for g in [f - 0.05, f - 0.01, f + 0.01, f + 0.05] {
            assert!(off(g) >= off(f), "ResNet-{depth}: {g} is closer to {target} than {f}");
        }
    }
}

/// Records the width network at `widths` on a batch of 3 8×8 images and
/// returns it with its input and logits.
fn width_exec(cfg: &WidthConfig, widths: &Widths) -> (Exec<Cpu<f64>>, rarts::tape::NodeId, rarts::tape::NodeId) {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(3, 1, 8, 8), "x");
    let n = trained_net(&mut t, cfg, x, widths, GROUP_W);
    (Exec::new(Cpu::<f64>::new(), t).unwrap(), x, n.logits)
}

/// L1-norm pruning keeps each searchable conv's filters of largest L1
/// norm with their BN entries and the next conv's matching input channels.
/// Checked through the network: where the dropped channels' BN outputs are
/// zero (γ = β = 0), the full and the pruned network compute the same
/// logits in evaluation mode.
#[test]
fn l1_pruning_keeps_the_largest_filters_and_the_function() {
    use rarts::space::width::prune_l1;
    use std::collections::HashMap;
    let cfg = WidthConfig::new(8, 4, 1, (8, 8));
    let full = Widths(cfg.full_widths());
    let to = Widths(vec![5, 9, 30]);
    let (mut ex, x, logits) = width_exec(&cfg, &full);
    ex.init_params(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3)).unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(4);
    let names: HashMap<String, rarts::tape::NodeId> =
        rarts::run_record::persistent_nodes(&ex.tape).into_iter().map(|n| (ex.tape.nodes[n].name.clone(), n)).collect();
    // Per layer, a random set of filters to drop: small weights, BN γ = β = 0;
    // running statistics random everywhere.
    let mut dropped = Vec::new();
    for (li, l) in cfg.layers().iter().enumerate() {
        let name = cfg.block_name(li);
        let mut order: Vec<usize> = (0..l.planes).collect();
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
        let drop: Vec<usize> = order[to.0[li]..].to_vec();
        let conv1 = names[&format!("{name}.conv1")];
        let mut w = ex.get(conv1).unwrap();
        let per = w.len() / l.planes;
        for &o in &drop {
            w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= 1e-3);
        }
        ex.set(conv1, &w).unwrap();
        for (part, lo, hi) in
            [("weight", 0.5, 1.5), ("bias", -0.5, 0.5), ("running_mean", -1.0, 1.0), ("running_var", 0.5, 2.0)]
        {
            let n = names[&format!("{name}.bn1.{part}")];
            let v: Vec<f64> = (0..l.planes)
                .map(|c| {
                    if drop.contains(&c) && (part == "weight" || part == "bias") {
                        0.0
                    } else {
                        lo + (hi - lo) * rand::Rng::random::<f64>(&mut rng)
                    }
                })
                .collect();
            ex.set(n, &v).unwrap();
        }
        dropped.push(drop);
    }
    let input: Vec<f64> = (0..3 * 64).map(|i| ((i * 37 % 23) as f64 / 23.0) - 0.4).collect();
    ex.train = false;
    ex.set(x, &input).unwrap();
    ex.forward().unwrap();
    let want = ex.get(logits).unwrap();

    let tensor = |name: &str| -> rarts::Result<(Vec<usize>, Vec<f32>)> {
        let n = *names.get(name).ok_or_else(|| rarts::Error(format!("no {name}")))?;
        Ok((ex.shape(n).0.to_vec(), ex.get(n)?.iter().map(|&v| v as f32).collect()))
    };
    let pruned = prune_l1(&cfg, &full, &to, &tensor).unwrap();
    for (li, drop) in dropped.iter().enumerate() {
        let name = cfg.block_name(li);
        let kept: Vec<usize> = (0..cfg.layers()[li].planes).filter(|c| !drop.contains(c)).collect();
        let gamma = &pruned.iter().find(|p| p.0 == format!("{name}.bn1.weight")).unwrap().1;
        let full_gamma = tensor(&format!("{name}.bn1.weight")).unwrap().1;
        assert_eq!(gamma, &kept.iter().map(|&c| full_gamma[c]).collect::<Vec<_>>(), "{name}: kept filters in order");
    }
    let (mut small, sx, slogits) = width_exec(&cfg, &to);
    for n in rarts::run_record::persistent_nodes(&small.tape) {
        let name = small.tape.nodes[n].name.clone();
        let v = match pruned.iter().find(|p| p.0 == name) {
            Some(p) => p.1.clone(),
            None => tensor(&name).unwrap().1,
        };
        assert_eq!(v.len(), small.shape(n).numel(), "{name}");
        small.set(n, &v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()).unwrap();
    }
    small.train = false;
    small.set(sx, &input).unwrap();
    small.forward().unwrap();
    let got = small.get(slogits).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "pruned {got:?} vs full {want:?}");
    }
    // Wider than the trained network: refused, naming the layer.
    let e = prune_l1(&cfg, &to, &full, &tensor).unwrap_err().0;
    assert!(e.contains("layer1.0") && e.contains("fewer than"), "{e}");
}

/// The widths nearest the expected width (what the multiply-add cost
/// sees), beside the argmax in `genotype.json`, and `expected:` reads them.
#[test]
fn expected_widths_follow_the_softmax() {
    let cfg = WidthConfig::new(8, 4, 1, (8, 8));
    // Expected widths: 7.76 of (4, 8, 12, 16); 27.2 of (8, 16, 24, 32); 40
    // of (16, 32, 48, 64), equally near 32 and 48.
    let softmax = [0.46, 0.27, 0.14, 0.13, 0.1, 0.1, 0.1, 0.7, 0.25, 0.25, 0.25, 0.25];
    let real = cfg.expected_widths(&softmax);
    for (got, want) in real.iter().zip([7.76, 27.2, 40.0]) {
        assert!((got - want).abs() < 1e-9, "{real:?}");
    }
    let e = Widths::from_expected(&cfg, &softmax).unwrap();
    assert_eq!(e.0, vec![8, 24, 48]);
    assert_eq!(cfg.macs_fraction(&cfg.full_widths()), 1.0);
    assert!(Widths::from_expected(&cfg, &softmax[..8]).is_err());
    let argmax = Widths::from_alpha(&cfg, &softmax).unwrap();
    assert_eq!(argmax.0, vec![4, 32, 16]);
    let dir = std::env::temp_dir().join(format!("rarts-test-{}-expected", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("genotype.json"), argmax.to_json(&cfg, Some(&softmax))).unwrap();
    let src = dir.to_str().unwrap();
    assert_eq!(Widths::from_source(&cfg, src).unwrap(), argmax);
    assert_eq!(Widths::from_source(&cfg, &format!("expected:{src}")).unwrap(), e);
    let text = std::fs::read_to_string(dir.join("genotype.json")).unwrap();
    let want = cfg.cost(&e.0).1 as f64 / cfg.cost(&cfg.full_widths()).1 as f64;
    assert!(text.contains(&format!("\"macs_fraction_expected\":{want:.4}")), "{text}");
    // A file without them says so.
    std::fs::write(dir.join("genotype.json"), argmax.to_json(&cfg, None)).unwrap();
    let err = Widths::from_source(&cfg, &format!("expected:{src}")).unwrap_err().0;
    assert!(err.contains("no \"widths_expected\" list"), "{err}");
}
