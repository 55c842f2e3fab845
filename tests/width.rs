//! The width space (SPEC §7): the CIFAR ResNets' weight and multiply-add
//! counts, the counts of any chosen widths against the recorded network,
//! the search network's mask mix and multiply-add cost, the derivation.

mod common;

use rarts::backend::Cpu;
use rarts::exec::Exec;
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
