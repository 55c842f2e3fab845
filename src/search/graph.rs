//! The search graph: the supernet(s) of one search recorded on a tape —
//! one network for DARTS, the `w` and `y` networks sharing α for RARTS
//! (side by side: each op of the pair one op over both networks' channels,
//! see `Tape::set_nets`) — and a lower bound of the memory that recording
//! will take.

use crate::search::algo::{Algo, Problem};
use crate::search::config::SearchConfig;
use crate::shape::Shape;
use crate::space::darts::{MixWeights, SuperNetConfig, alphas, supernet};
use crate::space::{GROUP_ARCH, GROUP_W, GROUP_Y};
use crate::tape::{NodeId, Tape};

/// The nodes of the recorded search graph that setting a search up and
/// running it touch.
pub(super) struct Graph {
    pub(super) prob: Problem,
    /// (images, labels, logits) of the network trained on the train split
    /// and of the one evaluated on the validation split (the same network
    /// for DARTS, fed in turn).
    pub(super) train_io: (NodeId, NodeId, NodeId),
    pub(super) val_io: (NodeId, NodeId, NodeId),
    pub(super) alpha_normal: NodeId,
    pub(super) alpha_reduce: NodeId,
}

pub(super) fn record(cfg: &SearchConfig, net: &SuperNetConfig, image: Shape) -> (Tape, Graph) {
    let mut t = Tape::new();
    let x_shape = Shape::nchw(cfg.batch, image.c(), image.h(), image.w());
    let (an, ar, mw) = alphas(&mut t, net, GROUP_ARCH);
    let one_net = |t: &mut Tape, group: u32, mw: MixWeights, tag: &str| {
        let x = t.input(x_shape, &format!("{tag}.images"));
        let labels = t.input(Shape::vec(cfg.batch), &format!("{tag}.labels"));
        let n = supernet(t, net, x, mw, group);
        let loss = t.cross_entropy(n.logits, labels);
        (x, labels, n.logits, loss, n.weight_params)
    };
    if cfg.algo == Algo::Rarts && cfg.side_by_side {
        let x = |t: &mut Tape, tag: &str| {
            (t.input(x_shape, &format!("{tag}.images")), t.input(Shape::vec(cfg.batch), &format!("{tag}.labels")))
        };
        let ((xt, lt), (xv, lv)) = (x(&mut t, "w"), x(&mut t, "y"));
        // The train batch in the first block of channels (w), the validation batch in the second (y).
        let both = t.concat(&[xt, xv]);
        t.set_nets(2);
        let n = supernet(&mut t, net, both, mw, GROUP_W);
        t.set_nets(1);
        let z = t.split(n.logits, 2);
        let (zt, zv) = (z[0], z[1]);
        let (loss_t, loss_v) = (t.cross_entropy(zt, lt), t.cross_entropy(zv, lv));
        let total = t.combine(&[(loss_t, cfg.lambda), (loss_v, 1.0)]);
        let w = n.weight_params;
        let graph = Graph {
            prob: Problem {
                acc_train: Some((zt, lt)),
                acc_val: Some((zv, lv)),
                side_by_side: true,
                group_y: GROUP_W,
                ..problem(loss_t, loss_v, Some(total), w.clone(), w, vec![an, ar])
            },
            train_io: (xt, lt, zt),
            val_io: (xv, lv, zv),
            alpha_normal: an,
            alpha_reduce: ar,
        };
        return (t, graph);
    }
    let (xt, lt, zt, loss_t, w) = one_net(&mut t, GROUP_W, mw, "w");
    let graph = if cfg.algo == Algo::Rarts {
        let (xv, lv, zv, loss_v, y) = one_net(&mut t, GROUP_Y, mw, "y");
        let total = t.combine(&[(loss_t, cfg.lambda), (loss_v, 1.0)]);
        Graph {
            prob: Problem {
                acc_train: Some((zt, lt)),
                acc_val: Some((zv, lv)),
                ..problem(loss_t, loss_v, Some(total), w, y, vec![an, ar])
            },
            train_io: (xt, lt, zt),
            val_io: (xv, lv, zv),
            alpha_normal: an,
            alpha_reduce: ar,
        }
    } else {
        Graph {
            prob: Problem { acc_train: Some((zt, lt)), ..problem(loss_t, loss_t, None, w, vec![], vec![an, ar]) },
            train_io: (xt, lt, zt),
            val_io: (xt, lt, zt),
            alpha_normal: an,
            alpha_reduce: ar,
        }
    };
    (t, graph)
}

fn problem(
    loss_train: NodeId,
    loss_val: NodeId,
    total: Option<NodeId>,
    w: Vec<NodeId>,
    y: Vec<NodeId>,
    alpha: Vec<NodeId>,
) -> Problem {
    Problem {
        loss_train,
        loss_val,
        total,
        w,
        y,
        side_by_side: false,
        alpha,
        group_w: GROUP_W,
        group_y: GROUP_Y,
        group_arch: GROUP_ARCH,
        acc_train: None,
        acc_val: None,
    }
}

/// Bytes the recording of one cell of one network takes at least (tape
/// nodes, ops and names; measured: about 640 nodes of ~150 bytes at C=16).
const TAPE_BYTES_PER_CELL: u128 = 64 << 10;

/// A lower bound of the memory a search plan takes, known before anything
/// is recorded: every cell holds at least the 7 non-`none` outputs of each
/// of its mixed edges at its own size, in each network.
pub(super) fn min_plan_bytes(cfg: &SearchConfig, net: &SuperNetConfig, image: Shape) -> u128 {
    let (mut c, mut hw) = (cfg.c as u128, (image.h() * image.w()) as u128);
    let mut elems = 0u128;
    for layer in 0..net.layers {
        if net.is_reduction(layer) {
            c *= 2;
            hw /= 4;
        }
        elems += net.edges() as u128 * 7 * cfg.batch as u128 * c * hw.max(1);
    }
    let networks = if cfg.algo == Algo::Rarts { 2 } else { 1 };
    networks * (elems * 4 + net.layers as u128 * TAPE_BYTES_PER_CELL)
}
