//! The softmax ops as the tape records them ([`SoftmaxRows`],
//! [`CrossEntropy`]), recorded by [`RecordSoftmax`]'s methods.

use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Node, NodeId, Recorder, Run, Variant};
use crate::shape::Shape;

use super::SoftmaxOps;

/// Softmax of each row of a `(rows, cols)` matrix.
#[derive(Clone, Debug)]
pub struct SoftmaxRows {
    pub x: NodeId,
    pub out: NodeId,
    pub rows: usize,
    pub cols: usize,
}

/// Mean softmax cross-entropy of `(n, k)` logits against `n` labels;
/// `probs` is an auxiliary buffer of n·k (the softmax, for backward).
#[derive(Clone, Debug)]
pub struct CrossEntropy {
    pub logits: NodeId,
    pub labels: NodeId,
    pub out: NodeId,
    pub probs: usize,
    pub n: usize,
    pub k: usize,
}

impl Node for SoftmaxRows {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "softmax"
    }
}

impl<B: SoftmaxOps + ElementwiseOps> Run<B> for SoftmaxRows {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.softmax_rows_fwd(self.rows, self.cols, io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.softmax_rows_bwd(self.rows, self.cols, io.val(self.out), dy, dx))
    }
}

impl Node for CrossEntropy {
    fn output(&self) -> NodeId {
        self.out
    }

    /// Not the labels: they are data.
    fn inputs(&self) -> Vec<NodeId> {
        vec![self.logits]
    }

    fn family(&self) -> &'static str {
        "cross_entropy"
    }
}

impl<B: SoftmaxOps + ElementwiseOps> Run<B> for CrossEntropy {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let Fwd { be, vals, aux, .. } = io;
        let vals = &*vals;
        let (logits, labels) = (crate::ops::node::val(vals, self.logits), crate::ops::node::val(vals, self.labels));
        be.cross_entropy_fwd(self.n, self.k, logits, labels, out, &mut aux[self.probs])
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.logits, |io, dz| {
            io.be.cross_entropy_bwd(self.n, self.k, io.aux(self.probs), io.val(self.labels), dy, dz)
        })
    }
}

/// Recording softmax ops.
pub trait RecordSoftmax: Recorder
where
    Self::Op: Variant<SoftmaxRows> + Variant<CrossEntropy>,
{
    /// Softmax of each row of a `(rows, cols, 1, 1)` matrix.
    fn softmax_rows(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let (rows, cols) = (s.n(), s.numel() / s.n());
        let out = self.value(s);
        self.push(SoftmaxRows { x, out, rows, cols })
    }

    /// Mean cross-entropy of `(n, k)` logits against an `(n)` label input.
    fn cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> NodeId {
        let s = self.shape(logits);
        assert_eq!(self.shape(labels).numel(), s.n(), "cross_entropy: one label per row");
        let probs = self.aux_buf(s.numel());
        let out = self.value(Shape::scalar());
        self.push(CrossEntropy { logits, labels, out, probs, n: s.n(), k: s.c() })
    }
}

impl<R: Recorder> RecordSoftmax for R where R::Op: Variant<SoftmaxRows> + Variant<CrossEntropy> {}
