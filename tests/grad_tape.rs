//! Whole-graph gradient checks through the tape: a DARTS mixed edge (all 8
//! primitives, softmax-weighted) and a small two-node cell, for both the
//! weights and α, against float64 central finite differences.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::{Backend, Cpu};
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::space::darts::{Cell, PRIMITIVES, mixed_edge};
use rarts::space::{GROUP_ARCH, GROUP_W};
use rarts::tape::{Init, Kind, NodeId, Tape};

/// A recorded graph with a scalar loss `Σ r ⊙ out`, `r` random.
struct Graph {
    tape: Tape,
    loss: NodeId,
    /// Input nodes and the data to put in them.
    inputs: Vec<(NodeId, Vec<f64>)>,
}

fn randn(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Finishes a graph: loss = Σ r ⊙ out.
fn with_loss(mut t: Tape, out: NodeId, mut inputs: Vec<(NodeId, Vec<f64>)>, rng: &mut StdRng) -> Graph {
    let s = t.shape(out);
    let r = t.input(s, "r");
    inputs.push((r, randn(rng, s.numel())));
    let prod = t.mul(out, r);
    let loss = t.sum_all(prod);
    Graph { tape: t, loss, inputs }
}

fn exec<B: Backend>(be: B, g: &Graph, seed: u64) -> Exec<B> {
    let mut ex = Exec::new(be, g.tape.clone()).expect("plan allocates");
    ex.init_params(&mut StdRng::seed_from_u64(seed)).expect("init");
    for (n, d) in &g.inputs {
        ex.set(*n, d).expect("input fits");
    }
    ex
}

/// Parameters of all groups with their values after init (in f64).
fn params(ex: &Exec<Cpu<f64>>) -> Vec<(NodeId, Vec<f64>)> {
    (0..ex.tape.nodes.len())
        .filter(|&i| matches!(ex.tape.nodes[i].kind, Kind::Param { .. }))
        .map(|i| (i, ex.get(i).unwrap()))
        .collect()
}

/// Central differences of the loss in f64 for every parameter element.
fn numeric(g: &Graph, seed: u64) -> Vec<(NodeId, Vec<f64>)> {
    let mut ex = exec(Cpu::<f64>::new(), g, seed);
    let h = 1e-6;
    let mut out = Vec::new();
    for (p, v) in params(&ex) {
        let mut grad = vec![0.0; v.len()];
        for i in 0..v.len() {
            let mut w = v.clone();
            w[i] = v[i] + h;
            ex.set(p, &w).unwrap();
            ex.forward().unwrap();
            let lp = ex.scalar(g.loss).unwrap();
            w[i] = v[i] - h;
            ex.set(p, &w).unwrap();
            ex.forward().unwrap();
            let lm = ex.scalar(g.loss).unwrap();
            grad[i] = (lp - lm) / (2.0 * h);
        }
        ex.set(p, &v).unwrap();
        out.push((p, grad));
    }
    out
}

fn analytic<B: Backend>(be: B, g: &Graph, seed: u64) -> Vec<Vec<f64>> {
    let mut ex = exec(be, g, seed);
    ex.forward().unwrap();
    ex.backward(g.loss, &[GROUP_W, GROUP_ARCH]).unwrap();
    let ps: Vec<NodeId> =
        (0..ex.tape.nodes.len()).filter(|&i| matches!(ex.tape.nodes[i].kind, Kind::Param { .. })).collect();
    ps.iter().map(|&p| ex.get_grad(p).unwrap()).collect()
}

/// Per-element `|a − n| ≤ atol + rtol·|n|`; panics with the worst offender.
fn assert_close(what: &str, tape: &Tape, num: &[(NodeId, Vec<f64>)], ana: &[Vec<f64>], atol: f64, rtol: f64) {
    let mut checked = 0;
    for ((p, n), a) in num.iter().zip(ana) {
        for (i, (&nv, &av)) in n.iter().zip(a).enumerate() {
            let tol = atol + rtol * nv.abs();
            let err = (av - nv).abs();
            assert!(
                err <= tol,
                "{what}: d loss / d {}[{i}]: analytic {av:.9e} vs numeric {nv:.9e}, error {err:.3e} is {:.1}× the tolerance {tol:.3e}",
                tape.nodes[*p].name,
                err / tol
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{what}: only {checked} gradient elements checked");
}

/// f64 analytic gradients agree with f64 central differences to ~1e-7
/// (h = 1e-6: truncation ~h², rounding ~1e-16/h); f32 analytic gradients
/// carry f32 rounding through a few dozen ops, ~1e-5 relative.
fn check(what: &str, g: &Graph, seed: u64) {
    let num = numeric(g, seed);
    let a64 = analytic(Cpu::<f64>::new(), g, seed);
    assert_close(&format!("{what} (f64)"), &g.tape, &num, &a64, 1e-7, 1e-6);
    let a32 = analytic(Cpu::<f32>::new(), g, seed);
    assert_close(&format!("{what} (f32)"), &g.tape, &num, &a32, 1e-4, 2e-3);
    // α really was checked, and its gradient is not trivially zero.
    let alpha = num.iter().position(|(p, _)| g.tape.nodes[*p].name.starts_with("alpha")).expect("graph has α");
    assert!(num[alpha].1.iter().any(|v| v.abs() > 1e-6), "{what}: α gradient is zero");
}

fn edge_graph(stride: usize, n: usize, c: usize, hw: usize, seed: u64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(n, c, hw, hw), "x");
    // Larger-than-default α so the softmax weights differ visibly.
    let alpha = t.param(Shape::mat(1, PRIMITIVES.len()), GROUP_ARCH, Init::Normal(0.5), "alpha");
    let w = t.softmax_rows(alpha);
    let (shape, terms) = mixed_edge(&mut t, x, c, stride, 0, GROUP_W, "edge");
    assert_eq!(terms.len(), 7, "every primitive but none contributes a term");
    let y = t.mix(&terms, w, shape);
    let xs = randn(&mut rng, n * c * hw * hw);
    with_loss(t, y, vec![(x, xs)], &mut rng)
}

#[test]
fn mixed_edge_stride_1_matches_finite_differences() {
    // Odd spatial size, C not a power of two, batch 2.
    check("mixed edge stride 1", &edge_graph(1, 2, 3, 5, 11), 12);
}

#[test]
fn mixed_edge_stride_2_matches_finite_differences() {
    // FactorizedReduce needs an even channel count and even size.
    check("mixed edge stride 2", &edge_graph(2, 2, 6, 6, 21), 22);
}

#[test]
fn two_node_cell_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(31);
    let (n, c, hw) = (2, 4, 6);
    let mut t = Tape::new();
    let s0 = t.input(Shape::nchw(n, 5, hw, hw), "s0");
    let s1 = t.input(Shape::nchw(n, 3, hw, hw), "s1");
    let cell = Cell { c, reduction: false, reduction_prev: false, steps: 2, multiplier: 2 };
    let alpha = t.param(Shape::mat(5, PRIMITIVES.len()), GROUP_ARCH, Init::Normal(0.5), "alpha");
    let w = t.softmax_rows(alpha);
    let out = cell.record(&mut t, s0, s1, w, GROUP_W, "cell");
    assert_eq!(t.shape(out), Shape::nchw(n, 2 * c, hw, hw));
    let inputs = vec![(s0, randn(&mut rng, n * 5 * hw * hw)), (s1, randn(&mut rng, n * 3 * hw * hw))];
    let g = with_loss(t, out, inputs, &mut rng);
    check("two-node cell", &g, 32);
}

/// A pool recorded twice on the same node is one op whose output both
/// consumers read: DARTS_V2's reduction cell pools each input more than
/// once. The gradient that reaches the conv before it is the sum over both.
#[test]
fn shared_pool_matches_finite_differences() {
    use rarts::ops::conv::ConvSpec;
    use rarts::tape::Op;
    let mut rng = StdRng::seed_from_u64(51);
    let (n, c, hw) = (2, 4, 6);
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(n, c, hw, hw), "x");
    let y = t.conv(x, c, ConvSpec::dense(3, 1, 1), GROUP_W, "conv");
    let (a, b) = (t.max_pool(y, 2), t.max_pool(y, 2));
    let (p, q) = (t.avg_pool(y, 1), t.avg_pool(y, 1));
    assert_eq!((a, p), (b, q), "the same pool of the same node is recorded once");
    assert_ne!(t.max_pool(y, 1), a, "another stride is another pool");
    assert_eq!(t.ops.iter().filter(|op| matches!(op, Op::MaxPool(_))).count(), 2);
    let sa = t.scale(a, 0.5);
    let ab = t.add(sa, b);
    let pq = t.sub(p, q);
    let pq2 = t.scale(q, 3.0);
    let pq = t.add(pq, pq2);
    let pooled = t.global_avg_pool(pq);
    let pooled_ab = t.global_avg_pool(ab);
    let out = t.add(pooled, pooled_ab);
    let inputs = vec![(x, randn(&mut rng, n * c * hw * hw))];
    let g = with_loss(t, out, inputs, &mut rng);
    let num = numeric(&g, 52);
    assert_close("shared pools (f64)", &g.tape, &num, &analytic(Cpu::<f64>::new(), &g, 52), 1e-7, 1e-6);
    assert_close("shared pools (f32)", &g.tape, &num, &analytic(Cpu::<f32>::new(), &g, 52), 1e-4, 2e-3);
}

/// A parameter the loss does not reach (behind an NB201 cell of `none`
/// edges from its input, say) gets a zero gradient, as PyTorch's Zero op
/// leaves it, not none: optimizers step it like any other.
#[test]
fn an_unreached_parameter_gets_a_zero_gradient() {
    let mut t = Tape::new();
    let used = t.param(Shape::vec(3), GROUP_W, Init::Const(0.5), "used");
    let unused = t.param(Shape::vec(4), GROUP_W, Init::Const(0.5), "unused");
    let _ = t.mul(unused, unused);
    let mut rng = StdRng::seed_from_u64(1);
    let g = with_loss(t, used, vec![], &mut rng);
    let mut ex = exec(Cpu::<f64>::new(), &g, 1);
    ex.forward().unwrap();
    ex.backward(g.loss, &[GROUP_W]).unwrap();
    assert_eq!(ex.get_grad(unused).unwrap(), vec![0.0; 4]);
    assert_eq!(ex.get_grad(used).unwrap(), g.inputs[0].1);
    // Another group's parameters are still not computed.
    assert!(ex.backward(g.loss, &[GROUP_ARCH]).is_err());
}
