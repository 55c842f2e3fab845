//! The per-step counts `rarts profile` prints: every backend call notes
//! itself once, with the CUDA launches it stands for, and host reads are the
//! calls that return a value to the host.

mod common;

use rarts::backend::Cpu;
use rarts::backend::counts;
use rarts::exec::Exec;
use rarts::ops::conv::ConvSpec;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::tape::Tape;

#[test]
fn a_forward_backward_is_counted_op_by_op() {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 3, 8, 8), "x");
    let labels = t.input(Shape::vec(2), "labels");
    let h = t.conv(x, 4, ConvSpec::dense(3, 1, 1), 0, "conv");
    let h = t.batch_norm(h, true, 0, "bn");
    let h = t.relu(h);
    let h = t.global_avg_pool(h);
    let z = t.linear(h, 5, 0, "fc");
    let loss = t.cross_entropy(z, labels);
    let mut ex = Exec::new(Cpu::<f32>::new(), t).unwrap();
    ex.set(x, &vec![0.5; 2 * 3 * 64]).unwrap();
    ex.set(labels, &[1.0, 3.0]).unwrap();
    ex.init_params(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0)).unwrap();

    let families: Vec<&str> = ex.tape.ops.iter().map(|op| op.family()).collect();
    let c0 = counts::now();
    ex.forward().unwrap();
    let fwd = counts::now() - c0;
    // conv, BN, ReLU, pool, linear, cross-entropy: one call and one launch
    // each (BN's channels of 2·64 values fit one block: statistics and
    // output in one launch).
    assert_eq!(fwd, counts::Counts { calls: 6, launches: 6, reads: 0 }, "{families:?}");

    let c0 = counts::now();
    ex.scalar(loss).unwrap();
    assert_eq!(counts::now() - c0, counts::Counts { calls: 1, launches: 0, reads: 1 }, "reading the loss");

    let c0 = counts::now();
    ex.backward(loss, &[0]).unwrap();
    let bwd = counts::now() - c0;
    // The loss's seed, one zero-fill per other live gradient (logits, the
    // pool's and ReLU's inputs, BN's input; the parameters' own), then the
    // rules: cross-entropy 1, linear 1 call of 3 launches (dx, dw, db), pool
    // 1, ReLU 1, BN 1 (one block a channel), conv 1 (filter only: x is data,
    // not a parameter).
    let fills = bwd.calls - 6;
    assert_eq!(bwd.reads, 0);
    assert_eq!(bwd.launches, fills + 1 + 3 + 1 + 1 + 1 + 1, "{bwd:?}");
}

/// A whole search step of every algorithm waits for the host once: the
/// step scalars read at its end. The optimizers' launches do not grow with
/// the number of parameters (tensor lists).
#[test]
fn a_search_step_reads_the_host_once() {
    use rarts::search::algo::Algo;
    use rarts::search::prepare::prepare;
    for algo in [Algo::Darts1, Algo::Darts2, Algo::Rarts] {
        let cfg = common::tiny_search(algo, 2);
        let mut p = prepare(Cpu::<f32>::new(), &cfg).unwrap();
        p.step().unwrap();
        let c0 = counts::now();
        let st = p.step().unwrap();
        let c = counts::now() - c0;
        assert_eq!(c.reads, 1, "{algo:?}: {c:?}");
        assert!(st.loss_train.is_finite() && st.acc_train.is_finite(), "{algo:?}: {st:?}");
        assert_eq!(st.acc_val.is_finite(), algo == Algo::Rarts, "{algo:?}: {st:?}");
    }
}
