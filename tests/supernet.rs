//! The DARTS supernet as recorded on the tape.

use rarts::shape::Shape;
use rarts::space::darts::{SuperNetConfig, alphas, supernet};
use rarts::space::{GROUP_ARCH, GROUP_W};
use rarts::tape::Tape;

fn record(cfg: &SuperNetConfig, hw: usize) -> (Tape, rarts::space::darts::SuperNet) {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, cfg.in_channels, hw, hw), "x");
    let (_, _, mw) = alphas(&mut t, cfg, GROUP_ARCH);
    let net = supernet(&mut t, cfg, x, mw, GROUP_W);
    (t, net)
}

#[test]
fn c16_eight_cells_has_the_published_weight_count() {
    let cfg = SuperNetConfig::new(16, 8, 10, 3);
    let (t, net) = record(&cfg, 32);
    assert_eq!(t.numel(GROUP_W), 1_930_618);
    assert_eq!(t.numel(GROUP_ARCH), 2 * 14 * 8);
    assert_eq!(t.shape(net.logits), Shape::mat(2, 10));
}

#[test]
fn reduction_cells_halve_the_resolution_and_double_channels() {
    let cfg = SuperNetConfig::new(8, 5, 7, 1);
    let (t, net) = record(&cfg, 28);
    // Cells 1 and 3 reduce: 28 → 14 → 7; the last cell has 4·4C = 128 channels.
    assert!(cfg.is_reduction(1) && cfg.is_reduction(3) && !cfg.is_reduction(2));
    let classifier_in = t.shape(net.weight_params[net.weight_params.len() - 2]);
    assert_eq!(classifier_in, Shape::mat(7, 4 * 4 * 8));
}

/// Gradients of intermediate nodes share buffers: the plan of a whole
/// supernet holds far fewer gradient elements than value elements.
#[test]
fn gradient_buffers_are_shared_between_nodes() {
    use rarts::backend::Cpu;
    use rarts::exec::Exec;
    let cfg = SuperNetConfig::new(4, 3, 10, 3);
    let (tape, _) = record(&cfg, 16);
    let ex = Exec::new(Cpu::<f32>::new(), tape).expect("plan allocates");
    let (vals, grads) = ex.plan_elems();
    assert!(grads * 3 < vals, "gradients {grads} elements, values {vals}");
}
