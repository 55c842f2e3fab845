//! A network of any space ([`NetSpec`]) recorded for training and scoring:
//! its images, labels, cross-entropy (with DARTS' auxiliary head's term)
//! and the nodes an optimizer and the drop-path masks touch.

use crate::error::{Error, Result};
use crate::ops::record::*;
use crate::shape::Shape;
use crate::space::{GROUP_W, NetSpec};
use crate::tape::{NodeId, Tape};

/// Loss weight of the auxiliary head (`train.py`'s `auxiliary_weight`).
pub const AUX_WEIGHT: f32 = 0.4;

/// A network on a tape with its labels and loss: the nodes training and
/// scoring touch.
pub struct Trainable {
    pub tape: Tape,
    /// (images, labels, logits).
    pub io: (NodeId, NodeId, NodeId),
    /// Cross-entropy, plus `AUX_WEIGHT` times the auxiliary head's.
    pub loss: NodeId,
    /// The network's weights (DARTS' count) and the auxiliary head's.
    pub weights: Vec<NodeId>,
    pub aux: Vec<NodeId>,
    pub drop_masks: Vec<NodeId>,
}

/// The network `spec` on batches of `batch` images of `image`.
pub fn trainable(spec: &NetSpec, batch: usize, image: Shape) -> Result<Trainable> {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(batch, image.c(), image.h(), image.w()), "images");
    let labels = t.input(Shape::vec(batch), "labels");
    let auxiliary = matches!(spec, NetSpec::Darts(c) if c.auxiliary);
    let net =
        spec.record(&mut t, x, GROUP_W).map_err(|e| if auxiliary { Error(format!("--auxiliary: {e}")) } else { e })?;
    let ce = t.cross_entropy(net.logits, labels);
    let loss = match net.aux_logits {
        Some(aux) => {
            let ce_aux = t.cross_entropy(aux, labels);
            t.combine(&[(ce, 1.0), (ce_aux, AUX_WEIGHT)])
        }
        None => ce,
    };
    Ok(Trainable {
        tape: t,
        io: (x, labels, net.logits),
        loss,
        weights: net.weight_params,
        aux: net.aux_params,
        drop_masks: net.drop_masks,
    })
}
