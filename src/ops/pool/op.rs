//! The pools as the tape records them: [`MaxPool`] and [`AvgPool`],
//! recorded by [`RecordPool`]'s methods.

use crate::error::Result;
use crate::ops::conv::ConvGeom;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Node, NodeId, Recorder, Run, Variant};

use super::{PoolGeom, PoolOps};

/// `out = max over each window of x`.
#[derive(Clone, Debug)]
pub struct MaxPool {
    pub x: NodeId,
    pub out: NodeId,
    pub geom: PoolGeom,
}

/// `out = mean over each window of x`, padding not counted.
#[derive(Clone, Debug)]
pub struct AvgPool {
    pub x: NodeId,
    pub out: NodeId,
    pub geom: PoolGeom,
}

impl Node for MaxPool {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "max_pool"
    }

    fn overwrites(&self, _: NodeId) -> bool {
        true
    }
}

impl<B: PoolOps + ElementwiseOps> Run<B> for MaxPool {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.max_pool_fwd(&self.geom, io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend_write(self.x, |io, dx, write| {
            io.be.max_pool_bwd(&self.geom, io.val(self.x), io.val(self.out), dy, dx, write)
        })
    }
}

impl Node for AvgPool {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "avg_pool"
    }

    fn overwrites(&self, _: NodeId) -> bool {
        true
    }
}

impl<B: PoolOps + ElementwiseOps> Run<B> for AvgPool {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.avg_pool_fwd(&self.geom, io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend_write(self.x, |io, dx, write| io.be.avg_pool_bwd(&self.geom, dy, dx, write))
    }
}

/// Recording pools. Pools have no parameters and no randomness, so the same
/// pool of the same node (DARTS' reduction cell pools s0 twice and s1 three
/// times; the search cell pools every state once per later node) is
/// recorded once and its output shared: each consumer's gradient adds into
/// the one output.
pub trait RecordPool: Recorder
where
    Self::Op: Variant<MaxPool> + Variant<AvgPool>,
{
    /// A k×k window. Padding at most k/2 (PyTorch's rule) keeps every window
    /// partly in bounds, so no average divides by zero.
    fn pool_geom(&self, x: NodeId, k: usize, stride: usize, pad: usize) -> PoolGeom {
        let s = self.shape(x);
        assert!(k > 0 && stride > 0 && pad <= k / 2, "pool: bad window k={k} stride={stride} pad={pad}");
        assert!(s.h() + 2 * pad >= k && s.w() + 2 * pad >= k, "pool: {k}×{k} window larger than the padded input");
        PoolGeom {
            n: s.n(),
            c: s.c(),
            h: s.h(),
            w: s.w(),
            oh: ConvGeom::out_len(s.h(), k, stride, pad, 1),
            ow: ConvGeom::out_len(s.w(), k, stride, pad, 1),
            k,
            stride,
            pad,
        }
    }

    /// 3×3 max pool, padding 1 (shared with an identical one already recorded).
    fn max_pool(&mut self, x: NodeId, stride: usize) -> NodeId {
        let geom = self.pool_geom(x, 3, stride, 1);
        if let Some(out) = self.recorded(|op: &MaxPool| op.x == x && op.geom == geom) {
            return out;
        }
        let out = self.value(geom.y_shape());
        self.push(MaxPool { x, out, geom })
    }

    /// 3×3 average pool, padding 1, padding not counted.
    fn avg_pool(&mut self, x: NodeId, stride: usize) -> NodeId {
        self.avg_pool_k(x, 3, stride, 1)
    }

    /// k×k average pool, padding not counted (`count_include_pad=False`);
    /// `pad ≤ k/2`; shared with an identical one already recorded. The
    /// auxiliary head's is k = 5, stride 3, pad 0.
    fn avg_pool_k(&mut self, x: NodeId, k: usize, stride: usize, pad: usize) -> NodeId {
        let geom = self.pool_geom(x, k, stride, pad);
        if let Some(out) = self.recorded(|op: &AvgPool| op.x == x && op.geom == geom) {
            return out;
        }
        let out = self.value(geom.y_shape());
        self.push(AvgPool { x, out, geom })
    }
}

impl<R: Recorder> RecordPool for R where R::Op: Variant<MaxPool> + Variant<AvgPool> {}
