//! The elementwise ops as the tape records them ([`Relu`], [`Combine`],
//! [`Mul`], [`MaskedSum`], [`Mix`], [`ChannelScale`], [`Zeros`],
//! [`SumAll`]), recorded by [`RecordElementwise`]'s methods.

use crate::device::Write;
use crate::error::Result;
use crate::ops::node::{Bwd, Fwd, Node, NodeId, Recorder, Run, Variant};
use crate::shape::Shape;

use super::{ElementwiseOps, MixGrad, ScaleGeom};

/// `out = max(x, 0)`
#[derive(Clone, Debug)]
pub struct Relu {
    pub x: NodeId,
    pub out: NodeId,
}

/// `out = Σ c_i · x_i` (add, subtract, scale by a constant).
#[derive(Clone, Debug)]
pub struct Combine {
    pub terms: Vec<(NodeId, f32)>,
    pub out: NodeId,
}

/// `out = a · b`, elementwise.
#[derive(Clone, Debug)]
pub struct Mul {
    pub a: NodeId,
    pub b: NodeId,
    pub out: NodeId,
}

/// `out = Σ_t x_t · mask_t[n]` (`mask_t` absent: 1): a node of an
/// evaluation cell, the sum of its ops with DARTS' drop path applied as
/// they are added (per-sample multipliers, 0 or 1/keep, in input nodes).
/// No gradient into the masks.
#[derive(Clone, Debug)]
pub struct MaskedSum {
    pub terms: Vec<(NodeId, Option<NodeId>)>,
    pub out: NodeId,
}

/// One term `w[idx] · x` of a [`Mix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub x: NodeId,
    pub idx: usize,
}

/// `out = Σ w[idx] · x` over its terms: a mixed edge, or all mixed edges
/// into one node, with `w` the softmax of α. Absent terms (`none`) are zero.
#[derive(Clone, Debug)]
pub struct Mix {
    pub terms: Vec<Term>,
    pub w: NodeId,
    pub out: NodeId,
}

/// `out[n, ch, …] = x[n, ch, …] · m[ch mod cm]`, `m` of `cm` values: a
/// factor per channel (the width search's mask mix).
#[derive(Clone, Debug)]
pub struct ChannelScale {
    pub x: NodeId,
    pub m: NodeId,
    pub out: NodeId,
    pub geom: ScaleGeom,
}

/// `out = 0`
#[derive(Clone, Debug)]
pub struct Zeros {
    pub out: NodeId,
}

/// `out = Σ x`, a scalar.
#[derive(Clone, Debug)]
pub struct SumAll {
    pub x: NodeId,
    pub out: NodeId,
}

impl Node for Relu {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "relu"
    }
}

impl<B: ElementwiseOps> Run<B> for Relu {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.relu_fwd(io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.relu_bwd(io.val(self.x), dy, dx))
    }
}

impl Node for Combine {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        self.terms.iter().map(|t| t.0).collect()
    }

    fn family(&self) -> &'static str {
        "combine"
    }

    fn overwrites(&self, _: NodeId) -> bool {
        true
    }
}

impl<B: ElementwiseOps> Run<B> for Combine {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        if self.terms.is_empty() {
            io.be.fill(out, 0.0)?;
        }
        for (t, &(x, c)) in self.terms.iter().enumerate() {
            io.be.axpy(c, io.val(x), out, if t == 0 { Write::Set } else { Write::Add })?;
        }
        Ok(())
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        self.terms.iter().try_for_each(|&(x, c)| io.lend_write(x, |io, dx, write| io.be.axpy(c, dy, dx, write)))
    }
}

impl Node for Mul {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.a, self.b]
    }

    fn family(&self) -> &'static str {
        "mul"
    }
}

impl<B: ElementwiseOps> Run<B> for Mul {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.mul_fwd(io.val(self.a), io.val(self.b), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        let (a, b) = (self.a, self.b);
        io.lend(a, |io, da| io.be.mul_bwd(io.val(b), dy, da))?;
        io.lend(b, |io, db| io.be.mul_bwd(io.val(a), dy, db))
    }
}

impl Node for MaskedSum {
    fn output(&self) -> NodeId {
        self.out
    }

    /// The masks are data, like labels.
    fn inputs(&self) -> Vec<NodeId> {
        self.terms.iter().map(|t| t.0).collect()
    }

    fn family(&self) -> &'static str {
        "masked_sum"
    }

    fn overwrites(&self, _: NodeId) -> bool {
        true
    }
}

impl<B: ElementwiseOps> Run<B> for MaskedSum {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let terms: Vec<(&B::Buf, Option<&B::Buf>)> =
            self.terms.iter().map(|&(x, m)| (io.val(x), m.map(|m| io.val(m)))).collect();
        io.be.masked_sum_fwd(&terms, out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        self.terms.iter().try_for_each(|&(x, mask)| {
            io.lend_write(x, |io, dx, write| match mask {
                Some(m) => io.be.drop_path_bwd(io.val(m), dy, dx, write),
                None => io.be.axpy(1.0, dy, dx, write),
            })
        })
    }
}

impl Node for Mix {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        self.terms.iter().map(|t| t.x).chain([self.w]).collect()
    }

    fn family(&self) -> &'static str {
        "mix"
    }

    fn overwrites(&self, x: NodeId) -> bool {
        x != self.w
    }
}

impl<B: ElementwiseOps> Run<B> for Mix {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let terms: Vec<(usize, &B::Buf)> = self.terms.iter().map(|t| (t.idx, io.val(t.x))).collect();
        io.be.mix_fwd(io.val(self.w), &terms, out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        // Every term's gradient out at once, for one pass over dy.
        let mut dxs = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let dx = io.take_grad(t.x);
            if dx.is_none() && io.computes(t.x) {
                crate::bail!("backward: two terms of a mixed edge share node {}", t.x);
            }
            let write = io.next_write(t.x);
            dxs.push(dx.map(|dx| (dx, write)));
        }
        let mut dw = io.take_grad(self.w);
        let mut grads: Vec<MixGrad<'_, B::Buf>> = self
            .terms
            .iter()
            .zip(dxs.iter_mut())
            .map(|(t, dx)| MixGrad { idx: t.idx, x: io.val(t.x), dx: dx.as_mut().map(|(g, w)| (g, *w)) })
            .collect();
        let r = io.be.mix_bwd(io.val(self.w), dy, &mut grads, dw.as_mut());
        drop(grads);
        for (t, dx) in self.terms.iter().zip(dxs) {
            io.put_grad(t.x, dx.map(|(g, _)| g));
        }
        io.put_grad(self.w, dw);
        r
    }
}

impl Node for ChannelScale {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x, self.m]
    }

    fn family(&self) -> &'static str {
        "channel_scale"
    }
}

impl<B: ElementwiseOps> Run<B> for ChannelScale {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.channel_scale_fwd(&self.geom, io.val(self.x), io.val(self.m), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend_grads([Some(self.x), Some(self.m), None], |io, [dx, dm, _]| {
            let dx = dx.map(|d| (d, Write::Add));
            io.be.channel_scale_bwd(&self.geom, io.val(self.x), io.val(self.m), dy, dx, dm)
        })
    }
}

impl Node for Zeros {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![]
    }

    fn family(&self) -> &'static str {
        "zeros"
    }
}

impl<B: ElementwiseOps> Run<B> for Zeros {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.fill(out, 0.0)
    }

    fn backward(&self, _: &mut Bwd<'_, B>, _: &B::Buf) -> Result<()> {
        Ok(())
    }
}

impl Node for SumAll {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "sum"
    }
}

impl<B: ElementwiseOps> Run<B> for SumAll {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.sum_all_fwd(io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.sum_all_bwd(dy, dx))
    }
}

/// Recording elementwise ops.
pub trait RecordElementwise: Recorder
where
    Self::Op: Variant<Relu>
        + Variant<Combine>
        + Variant<Mul>
        + Variant<MaskedSum>
        + Variant<Mix>
        + Variant<ChannelScale>
        + Variant<Zeros>
        + Variant<SumAll>,
{
    fn relu(&mut self, x: NodeId) -> NodeId {
        let out = self.value(self.shape(x));
        self.push(Relu { x, out })
    }

    /// `Σ c_i · x_i` over same-shaped nodes.
    fn combine(&mut self, terms: &[(NodeId, f32)]) -> NodeId {
        let s = self.shape(terms[0].0);
        assert!(terms.iter().all(|t| self.shape(t.0) == s), "combine: shapes differ");
        let out = self.value(s);
        self.push(Combine { terms: terms.to_vec(), out })
    }

    fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.combine(&[(a, 1.0), (b, 1.0)])
    }

    fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.combine(&[(a, 1.0), (b, -1.0)])
    }

    fn scale(&mut self, x: NodeId, c: f32) -> NodeId {
        self.combine(&[(x, c)])
    }

    fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        assert_eq!(self.shape(a), self.shape(b), "mul: shapes differ");
        let out = self.value(self.shape(a));
        self.push(Mul { a, b, out })
    }

    /// `Σ w[idx] · x` over `terms`; `shape` is given because a node may have
    /// no terms at all (every incoming op `none`).
    fn mix(&mut self, terms: &[Term], w: NodeId, shape: Shape) -> NodeId {
        assert!(terms.iter().all(|t| self.shape(t.x) == shape), "mix: shapes differ");
        assert!(terms.iter().all(|t| t.idx < self.shape(w).numel()), "mix: weight index out of range");
        let out = self.value(shape);
        self.push(Mix { terms: terms.to_vec(), w, out })
    }

    /// `Σ_t x_t · mask_t[n]` over same-shaped nodes, a term without a mask
    /// taken as it is: the sum of an evaluation node's ops, each with its
    /// drop path, the masks `(n)` inputs the caller fills each step (0 or
    /// 1/keep per sample, see `space::eval::fill_drop_masks`).
    fn masked_sum(&mut self, terms: &[(NodeId, Option<NodeId>)]) -> NodeId {
        let s = self.shape(terms[0].0);
        assert!(terms.iter().all(|t| self.shape(t.0) == s), "masked_sum: shapes differ");
        assert!(
            terms.iter().filter_map(|t| t.1).all(|m| self.shape(m).numel() == s.n()),
            "masked_sum: one mask value per sample"
        );
        let out = self.value(s);
        self.push(MaskedSum { terms: terms.to_vec(), out })
    }

    /// `x[n, ch, …] · m[ch mod cm]` with `m` of `cm` values (a factor per
    /// channel, the same for every network side by side).
    fn channel_scale(&mut self, x: NodeId, m: NodeId) -> NodeId {
        let (s, cm) = (self.shape(x), self.shape(m).numel());
        assert!(cm > 0 && s.c().is_multiple_of(cm), "channel_scale: {cm} factors for {} channels", s.c());
        let geom = ScaleGeom { n: s.n(), c: s.c(), hw: s.hw(), cm };
        let out = self.value(s);
        self.push(ChannelScale { x, m, out, geom })
    }

    fn zeros(&mut self, shape: Shape) -> NodeId {
        let out = self.value(shape);
        self.push(Zeros { out })
    }

    fn sum_all(&mut self, x: NodeId) -> NodeId {
        let out = self.value(Shape::scalar());
        self.push(SumAll { x, out })
    }
}

impl<R: Recorder> RecordElementwise for R where
    R::Op: Variant<Relu>
        + Variant<Combine>
        + Variant<Mul>
        + Variant<MaskedSum>
        + Variant<Mix>
        + Variant<ChannelScale>
        + Variant<Zeros>
        + Variant<SumAll>
{
}
