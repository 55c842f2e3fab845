//! RARTS's two networks recorded side by side (each op of the pair one op
//! over both networks' channels, `Tape::set_nets`) compute what the two
//! networks recorded one after the other compute: the same losses,
//! accuracies and gradient norms step after step, and the same α and
//! weights at the end. Only the order of some sums differs (α's gradient
//! adds both networks' terms in one reduction), hence the tolerance. The
//! exact schedule's α gradients differ by an ulp or two from the first
//! step on, which Adam at a rate that moves α in a few steps (every
//! component moves by about the rate, whatever its gradient's size) makes
//! visible after two steps: it is compared over two, and α to 1e-4 of a
//! step (the rate) where that is looser than 1e-4 of its value: a
//! component near zero after two steps differs by a few 1e-6 (α[101], 3e-6
//! apart at 0.0083, after BatchNorm's statistics became per-plane moments
//! merged in order — the same in both recordings, per channel).

mod common;

use rarts::backend::Cpu;
use rarts::backend::counts;
use rarts::search::algo::{Algo, Schedule};
use rarts::search::prepare::{Prepared, prepare};

type Be = Cpu<f32>;

fn close(what: &str, a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-6 + 1e-4 * b.abs(), "{what}: side by side {a}, one after the other {b}");
}

fn values(p: &Prepared<Be>, nodes: &[usize]) -> Vec<f64> {
    nodes.iter().flat_map(|&n| p.search.ex.get(n).unwrap()).collect()
}

#[test]
fn side_by_side_equals_one_network_after_the_other() {
    for (schedule, steps) in [(Schedule::Fused, 4), (Schedule::Exact, 2)] {
        let mut cfg = common::tiny_search(Algo::Rarts, steps);
        cfg.step.schedule = schedule;
        // α must move for its comparison to mean something.
        cfg.step.arch_lr = 0.05;
        let mut side = prepare(Be::new(), &cfg).unwrap();
        cfg.step.side_by_side = false;
        let mut apart = prepare(Be::new(), &cfg).unwrap();
        assert!(side.search.prob.side_by_side && !apart.search.prob.side_by_side);
        assert_eq!(side.weights, apart.weights, "weights of one network");
        let alpha0 = values(&side, &side.search.prob.alpha);
        for step in 0..steps {
            let (a, b) = (side.step().unwrap(), apart.step().unwrap());
            let tag = |what: &str| format!("{schedule:?} step {step}: {what}");
            close(&tag("training loss"), a.loss_train, b.loss_train);
            close(&tag("validation loss"), a.loss_val, b.loss_val);
            close(&tag("w's gradient norm"), a.grad_norm, b.grad_norm);
            close(&tag("training accuracy"), a.acc_train, b.acc_train);
            close(&tag("validation accuracy"), a.acc_val, b.acc_val);
        }
        let (alpha_a, alpha_b) = (values(&side, &side.search.prob.alpha), values(&apart, &apart.search.prob.alpha));
        let moved = alpha_a.iter().zip(&alpha0).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(moved > 1e-3, "{schedule:?}: α moved by at most {moved}");
        let step_tol = 1e-4 * cfg.step.arch_lr as f64;
        for (i, (&a, &b)) in alpha_a.iter().zip(&alpha_b).enumerate() {
            let what = format!("{schedule:?}: α[{i}]");
            assert!(
                (a - b).abs() <= step_tol || (a - b).abs() <= 1e-6 + 1e-4 * b.abs(),
                "{what}: side by side {a}, one after the other {b}"
            );
        }
        // Side by side, each weight holds w's copy then y's.
        let pairs = values(&side, &side.search.prob.w);
        let (w, y) = (values(&apart, &apart.search.prob.w), values(&apart, &apart.search.prob.y));
        let mut at = 0;
        for (&n, &m) in side.search.prob.w.iter().zip(&apart.search.prob.w) {
            let len = apart.search.ex.shape(m).numel();
            assert_eq!(side.search.ex.shape(n).numel(), 2 * len, "{}", side.search.ex.tape.nodes[n].name);
            let (pw, py) = (&pairs[2 * at..2 * at + len], &pairs[2 * at + len..2 * (at + len)]);
            for i in 0..len {
                close(&format!("{schedule:?}: w of {} [{i}]", apart.search.ex.tape.nodes[m].name), pw[i], w[at + i]);
                close(&format!("{schedule:?}: y of {} [{i}]", apart.search.ex.tape.nodes[m].name), py[i], y[at + i]);
            }
            at += len;
        }
        assert_eq!(2 * at, pairs.len());
        assert!(w != y, "{schedule:?}: w and y never parted");
    }
}

/// Side by side, a RARTS step costs about the launches of one network's
/// step: fewer than two thirds of the two networks one after the other.
#[test]
fn side_by_side_halves_the_launches() {
    let mut launches = Vec::new();
    for side_by_side in [true, false] {
        let mut cfg = common::tiny_search(Algo::Rarts, 2);
        cfg.step.side_by_side = side_by_side;
        let mut p = prepare(Be::new(), &cfg).unwrap();
        p.step().unwrap();
        let c0 = counts::now();
        p.step().unwrap();
        launches.push((counts::now() - c0).launches);
    }
    assert!(
        3 * launches[0] < 2 * launches[1],
        "side by side {} launches, one after the other {}",
        launches[0],
        launches[1]
    );
}

/// The same for the NAS-Bench-201 space (its residual blocks, 3×3 and 1×1
/// nor_convs, pools and skips, side by side).
#[test]
fn side_by_side_equals_one_network_after_the_other_in_nb201() {
    let mut cfg = common::tiny_search(Algo::Rarts, 3);
    cfg.step.space = rarts::space::SpaceKind::Nb201;
    cfg.step.cells_per_stage = 1;
    cfg.step.arch_lr = 0.05;
    let mut side = prepare(Be::new(), &cfg).unwrap();
    cfg.step.side_by_side = false;
    let mut apart = prepare(Be::new(), &cfg).unwrap();
    assert_eq!(side.weights, apart.weights, "weights of one network");
    for step in 0..3 {
        let (a, b) = (side.step().unwrap(), apart.step().unwrap());
        close(&format!("nb201 step {step}: training loss"), a.loss_train, b.loss_train);
        close(&format!("nb201 step {step}: validation loss"), a.loss_val, b.loss_val);
        close(&format!("nb201 step {step}: w's gradient norm"), a.grad_norm, b.grad_norm);
    }
    let (alpha_a, alpha_b) = (values(&side, &side.search.prob.alpha), values(&apart, &apart.search.prob.alpha));
    for (i, (&a, &b)) in alpha_a.iter().zip(&alpha_b).enumerate() {
        close(&format!("nb201: α[{i}]"), a, b);
    }
}
