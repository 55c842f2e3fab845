//! BatchNorm as the tape records it: [`BatchNorm`], recorded by
//! [`RecordBn::batch_norm`].

use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Init, Node, NodeId, Recorder, Run, Variant, val};
use crate::shape::Shape;

use super::{BnGeom, BnOps};

/// BatchNorm of `x` per channel, with γ and β when `affine`; batch
/// statistics in training (updating the running ones), the running ones
/// otherwise.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub x: NodeId,
    pub out: NodeId,
    pub affine: Option<(NodeId, NodeId)>,
    pub running: (NodeId, NodeId),
    /// An auxiliary buffer of 2·c: the batch's mean and 1/std.
    pub saved: usize,
    pub geom: BnGeom,
}

impl Node for BatchNorm {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        let mut v = vec![self.x];
        if let Some((gamma, beta)) = self.affine {
            v.extend([gamma, beta]);
        }
        v
    }

    fn family(&self) -> &'static str {
        "batch_norm"
    }

    fn overwrites(&self, x: NodeId) -> bool {
        x == self.x
    }
}

impl<B: BnOps + ElementwiseOps> Run<B> for BatchNorm {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let Fwd { be, vals, aux, train } = io;
        let (rm, rv) = self.running;
        if !train {
            let vals = &*vals;
            let (gamma, beta) = (self.affine.map(|a| val(vals, a.0)), self.affine.map(|a| val(vals, a.1)));
            return be.bn_fwd_eval(&self.geom, val(vals, self.x), gamma, beta, val(vals, rm), val(vals, rv), out);
        }
        // The running statistics are updated while x is read: out of the
        // values while the kernel runs.
        let taken = "running statistics are only taken while their BN runs";
        let (mut m, mut v) = (vals[rm].take().expect(taken), vals[rv].take().expect(taken));
        let r = {
            let vals = &*vals;
            let (gamma, beta) = (self.affine.map(|a| val(vals, a.0)), self.affine.map(|a| val(vals, a.1)));
            be.bn_fwd_train(&self.geom, val(vals, self.x), gamma, beta, out, &mut aux[self.saved], &mut m, &mut v)
        };
        (vals[rm], vals[rv]) = (Some(m), Some(v));
        r
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        if !io.train {
            crate::bail!("backward through BatchNorm needs training mode");
        }
        let write = io.next_write(self.x);
        let affine = self.affine;
        io.lend_grads([Some(self.x), affine.map(|a| a.0), affine.map(|a| a.1)], |io, [dx, dgamma, dbeta]| {
            let gamma = affine.map(|a| io.val(a.0));
            let dx = dx.map(|dx| (dx, write));
            io.be.bn_bwd(&self.geom, io.val(self.x), gamma, io.aux(self.saved), dy, dx, dgamma, dbeta)
        })
    }
}

/// Recording BatchNorm.
pub trait RecordBn: Recorder
where
    Self::Op: Variant<BatchNorm>,
{
    /// BatchNorm with its own running statistics; with `affine`, fresh γ = 1, β = 0.
    fn batch_norm(&mut self, x: NodeId, affine: bool, group: u32, name: &str) -> NodeId {
        let s = self.shape(x);
        let c = Shape::vec(s.c());
        let affine = affine.then(|| {
            (
                self.param(c, group, Init::Const(1.0), &format!("{name}.weight")),
                self.param(c, group, Init::Const(0.0), &format!("{name}.bias")),
            )
        });
        let running =
            (self.state(c, 0.0, &format!("{name}.running_mean")), self.state(c, 1.0, &format!("{name}.running_var")));
        let saved = self.aux_buf(2 * s.c());
        let geom = BnGeom { n: s.n(), c: s.c(), hw: s.hw(), eps: 1e-5, momentum: 0.1 };
        let out = self.value(s);
        self.push(BatchNorm { x, out, affine, running, saved, geom })
    }
}

impl<R: Recorder> RecordBn for R where R::Op: Variant<BatchNorm> {}
