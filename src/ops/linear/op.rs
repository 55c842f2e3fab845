//! The fully connected layer as the tape records it: [`Linear`], recorded
//! by [`RecordLinear::linear`] and [`RecordLinear::linear_with`].

use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Init, Node, NodeId, Recorder, Run, Variant};
use crate::shape::Shape;

use super::LinearOps;

/// `out = x·wᵀ (+ b)`: x `(n, i)`, w `(o, i/groups)`, b `(o)`, grouped by
/// network when `groups` > 1.
#[derive(Clone, Debug)]
pub struct Linear {
    pub x: NodeId,
    pub w: NodeId,
    pub b: Option<NodeId>,
    pub out: NodeId,
    pub n: usize,
    pub i: usize,
    pub o: usize,
    pub groups: usize,
}

impl Node for Linear {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        [Some(self.x), Some(self.w), self.b].into_iter().flatten().collect()
    }

    fn family(&self) -> &'static str {
        "linear"
    }
}

impl<B: LinearOps + ElementwiseOps> Run<B> for Linear {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let b = self.b.map(|b| io.val(b));
        io.be.linear_fwd(self.n, self.i, self.o, self.groups, io.val(self.x), io.val(self.w), b, out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        let (n, i, o, groups) = (self.n, self.i, self.o, self.groups);
        io.lend_grads([Some(self.x), Some(self.w), self.b], |io, [dx, dw, db]| {
            io.be.linear_bwd(n, i, o, groups, io.val(self.x), io.val(self.w), dy, dx, dw, db)
        })
    }
}

/// Recording fully connected layers.
pub trait RecordLinear: Recorder
where
    Self::Op: Variant<Linear>,
{
    /// Fully connected layer with fresh weight and bias (PyTorch's default
    /// init); `out` features per network, grouped by network when several
    /// are recorded side by side.
    fn linear(&mut self, x: NodeId, out: usize, group: u32, name: &str) -> NodeId {
        let (s, nets) = (self.shape(x), self.nets());
        let i = s.numel() / s.n() / nets;
        let bound = 1.0 / (i as f32).sqrt();
        let w = self.param(Shape::mat(nets * out, i), group, Init::Uniform(bound), &format!("{name}.weight"));
        let b = self.param(Shape::vec(nets * out), group, Init::Uniform(bound), &format!("{name}.bias"));
        let y = self.value(Shape::mat(s.n(), nets * out));
        let full = s.numel() / s.n();
        self.push(Linear { x, w, b: Some(b), out: y, n: s.n(), i: full, o: nets * out, groups: full / i })
    }

    /// `x·wᵀ (+ b)` with existing weight nodes (constants, shared weights):
    /// x `(n, i)`, w `(o, i)`, b `(o)`.
    fn linear_with(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> NodeId {
        let (s, ws) = (self.shape(x), self.shape(w));
        let i = s.numel() / s.n();
        assert_eq!(ws.numel() / ws.n(), i, "linear_with: weight rows of {} for inputs of {i}", ws.numel() / ws.n());
        let out = self.value(Shape::mat(s.n(), ws.n()));
        self.push(Linear { x, w, b, out, n: s.n(), i, o: ws.n(), groups: 1 })
    }
}

impl<R: Recorder> RecordLinear for R where R::Op: Variant<Linear> {}
