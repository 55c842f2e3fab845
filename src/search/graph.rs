//! The search graph: the supernet(s) of one search recorded on a tape —
//! one network for DARTS, the `w` and `y` networks sharing α for RARTS
//! (side by side: each op of the pair one op over both networks' channels,
//! see `Tape::set_nets`) — and a lower bound of the memory that recording
//! will take.

use crate::ops::record::*;
use crate::search::algo::{Algo, Problem};
use crate::search::config::SearchConfig;
use crate::shape::Shape;
use crate::space::{Alphas, GROUP_ARCH, GROUP_W, GROUP_Y, SearchSpace};
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
    pub(super) alphas: Alphas,
}

pub(super) fn record(cfg: &SearchConfig, space: &dyn SearchSpace, image: Shape) -> (Tape, Graph) {
    let mut t = Tape::new();
    let x_shape = Shape::nchw(cfg.step.batch, image.c(), image.h(), image.w());
    let alphas = space.alphas(&mut t, GROUP_ARCH);
    let a = alphas.nodes();
    let one_net = |t: &mut Tape, group: u32, tag: &str| {
        let x = t.input(x_shape, &format!("{tag}.images"));
        let labels = t.input(Shape::vec(cfg.step.batch), &format!("{tag}.labels"));
        let n = space.supernet(t, x, &alphas, group);
        let loss = t.cross_entropy(n.logits, labels);
        (x, labels, n.logits, loss, n.weight_params)
    };
    if cfg.step.algo == Algo::Rarts && cfg.step.side_by_side {
        let x = |t: &mut Tape, tag: &str| {
            (t.input(x_shape, &format!("{tag}.images")), t.input(Shape::vec(cfg.step.batch), &format!("{tag}.labels")))
        };
        let ((xt, lt), (xv, lv)) = (x(&mut t, "w"), x(&mut t, "y"));
        // The train batch in the first block of channels (w), the validation batch in the second (y).
        let both = t.concat(&[xt, xv]);
        t.set_nets(2);
        let n = space.supernet(&mut t, both, &alphas, GROUP_W);
        t.set_nets(1);
        let z = t.split(n.logits, 2);
        let (zt, zv) = (z[0], z[1]);
        let (loss_t, loss_v) = (t.cross_entropy(zt, lt), t.cross_entropy(zv, lv));
        let loss_v = with_penalty(&mut t, space, &alphas, loss_v);
        let total = t.combine(&[(loss_t, cfg.step.lambda), (loss_v, 1.0)]);
        let w = n.weight_params;
        let graph = Graph {
            prob: Problem {
                acc_train: Some((zt, lt)),
                acc_val: Some((zv, lv)),
                side_by_side: true,
                group_y: GROUP_W,
                ..problem(loss_t, loss_v, Some(total), w.clone(), w, a)
            },
            train_io: (xt, lt, zt),
            val_io: (xv, lv, zv),
            alphas,
        };
        return (t, graph);
    }
    let (xt, lt, zt, loss_t, w) = one_net(&mut t, GROUP_W, "w");
    let graph = if cfg.step.algo == Algo::Rarts {
        let (xv, lv, zv, loss_v, y) = one_net(&mut t, GROUP_Y, "y");
        let loss_v = with_penalty(&mut t, space, &alphas, loss_v);
        let total = t.combine(&[(loss_t, cfg.step.lambda), (loss_v, 1.0)]);
        Graph {
            prob: Problem {
                acc_train: Some((zt, lt)),
                acc_val: Some((zv, lv)),
                ..problem(loss_t, loss_v, Some(total), w, y, a)
            },
            train_io: (xt, lt, zt),
            val_io: (xv, lv, zv),
            alphas,
        }
    } else {
        Graph {
            prob: Problem {
                acc_train: Some((zt, lt)),
                ..problem(loss_t, with_penalty(&mut t, space, &alphas, loss_t), None, w, vec![], a)
            },
            train_io: (xt, lt, zt),
            val_io: (xt, lt, zt),
            alphas,
        }
    };
    (t, graph)
}

/// The validation loss with the space's architecture cost added, if it has one.
fn with_penalty(t: &mut Tape, space: &dyn SearchSpace, alphas: &Alphas, loss: NodeId) -> NodeId {
    match space.penalty(t, alphas) {
        Some(p) => t.add(loss, p),
        None => loss,
    }
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

/// A lower bound of the memory a search plan takes, known before anything
/// is recorded: the space's bound for each network.
pub(super) fn min_plan_bytes(cfg: &SearchConfig, space: &dyn SearchSpace, image: Shape) -> u128 {
    let networks = if cfg.step.algo == Algo::Rarts { 2 } else { 1 };
    networks * space.min_bytes(cfg.step.batch, image)
}
