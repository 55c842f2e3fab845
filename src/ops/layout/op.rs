//! The layout ops as the tape records them ([`Concat`], [`Slice`],
//! [`Shift`], [`GlobalAvgPool`]), recorded by [`RecordLayout`]'s methods.

use crate::device::Write;
use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Node, NodeId, Recorder, Run, Variant};
use crate::shape::Shape;

use super::{ChannelSlice, LayoutOps};

/// Concatenation along channels, per group when `groups` > 1: each tensor
/// is `groups` blocks of channels (networks side by side), and block g of
/// the output is block g of every input, in order. `slices[i]` is where
/// input i lands ([`concat_slices`]).
#[derive(Clone, Debug)]
pub struct Concat {
    pub xs: Vec<NodeId>,
    pub out: NodeId,
    pub groups: usize,
    pub slices: Vec<ChannelSlice>,
}

/// `out = x[:, off:off + c]` (`slice.c_part` channels of `slice.c_whole`).
#[derive(Clone, Debug)]
pub struct Slice {
    pub x: NodeId,
    pub out: NodeId,
    pub slice: ChannelSlice,
}

/// `out = x[:, :, 1:, 1:]` of x `(n, c, h, w)`.
#[derive(Clone, Debug)]
pub struct Shift {
    pub x: NodeId,
    pub out: NodeId,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

/// `(n, c, h, w) → (n, c)`: the mean of each of the `nc` planes of `hw` values.
#[derive(Clone, Debug)]
pub struct GlobalAvgPool {
    pub x: NodeId,
    pub out: NodeId,
    pub nc: usize,
    pub hw: usize,
}

impl Node for Concat {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        self.xs.clone()
    }

    fn family(&self) -> &'static str {
        "concat"
    }

    fn overwrites(&self, _: NodeId) -> bool {
        true
    }
}

impl<B: LayoutOps + ElementwiseOps> Run<B> for Concat {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let parts: Vec<_> = self.xs.iter().zip(&self.slices).map(|(&x, s)| (*s, io.val(x))).collect();
        io.be.concat_fwd(&parts, out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        let xs = &self.xs;
        if xs.iter().enumerate().any(|(i, x)| xs[..i].contains(x)) {
            // A node concatenated twice: its parts add up, one by one.
            return xs
                .iter()
                .zip(&self.slices)
                .try_for_each(|(&x, s)| io.lend_write(x, |io, dx, write| io.be.channel_take(s, dy, dx, write)));
        }
        // Every computed part's gradient out at once, for one pass over dy.
        let mut taken = Vec::with_capacity(xs.len());
        for (&x, s) in xs.iter().zip(&self.slices) {
            if let Some(g) = io.take_grad(x) {
                let write = io.next_write(x);
                taken.push((x, *s, g, write));
            }
        }
        let mut parts: Vec<_> = taken.iter_mut().map(|(_, s, g, write)| (*s, g, *write)).collect();
        let r = io.be.concat_bwd(dy, &mut parts);
        drop(parts);
        for (x, _, g, _) in taken {
            io.put_grad(x, Some(g));
        }
        r
    }
}

impl Node for Slice {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "slice"
    }
}

impl<B: LayoutOps + ElementwiseOps> Run<B> for Slice {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.channel_take(&self.slice, io.val(self.x), out, Write::Set)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.channel_put(&self.slice, dy, dx, Write::Add))
    }
}

impl Node for Shift {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "shift"
    }
}

impl<B: LayoutOps + ElementwiseOps> Run<B> for Shift {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.shift_fwd(self.n, self.c, self.h, self.w, io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.shift_bwd(self.n, self.c, self.h, self.w, dy, dx))
    }
}

impl Node for GlobalAvgPool {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x]
    }

    fn family(&self) -> &'static str {
        "global_avg_pool"
    }
}

impl<B: LayoutOps + ElementwiseOps> Run<B> for GlobalAvgPool {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.gap_fwd(self.nc, self.hw, io.val(self.x), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        io.lend(self.x, |io, dx| io.be.gap_bwd(self.nc, self.hw, dy, dx))
    }
}

/// The channel slice of each part of a concatenation of `xs` (shapes
/// `shapes`) into `out` channels, per group: a tensor `(n, groups·c, hw)`
/// is `(n·groups, c, hw)` in memory, so a concat per group is a plain
/// concat over `n·groups` images.
pub fn concat_slices(shapes: &[Shape], out_c: usize, groups: usize) -> Vec<ChannelSlice> {
    let mut off = 0;
    shapes
        .iter()
        .map(|s| {
            let c = s.c() / groups;
            let sl = ChannelSlice { n: s.n() * groups, hw: s.hw(), c_part: c, c_whole: out_c / groups, off };
            off += c;
            sl
        })
        .collect()
}

/// Recording layout ops.
pub trait RecordLayout: Recorder
where
    Self::Op: Variant<Concat> + Variant<Slice> + Variant<Shift> + Variant<GlobalAvgPool>,
{
    /// Concatenation along channels (per network, see `Tape::set_nets`).
    fn concat(&mut self, xs: &[NodeId]) -> NodeId {
        let shapes: Vec<Shape> = xs.iter().map(|&x| self.shape(x)).collect();
        let s0 = shapes[0];
        assert!(
            shapes.iter().all(|s| s.n() == s0.n() && s.hw() == s0.hw() && s.h() == s0.h()),
            "concat: shapes differ"
        );
        let groups = self.nets();
        assert!(shapes.iter().all(|s| s.c().is_multiple_of(groups)), "concat: channels per network differ");
        let c = shapes.iter().map(|s| s.c()).sum();
        let out = self.value(Shape::nchw(s0.n(), c, s0.h(), s0.w()));
        let slices = concat_slices(&shapes, c, groups);
        self.push(Concat { xs: xs.to_vec(), out, groups, slices })
    }

    /// Row `r` of a `(rows, cols)` matrix, as `(1, cols)`.
    fn row(&mut self, x: NodeId, r: usize) -> NodeId {
        let s = self.shape(x);
        let (rows, cols) = (s.n(), s.numel() / s.n());
        assert!(r < rows, "row: {r} of {rows}");
        let out = self.value(Shape::mat(1, cols));
        let slice = ChannelSlice { n: 1, hw: 1, c_part: cols, c_whole: rows * cols, off: r * cols };
        self.push(Slice { x, out, slice })
    }

    /// `x` cut along channels into `parts` equal blocks (the networks of
    /// `Tape::set_nets` apart again: RARTS's two networks' logits).
    fn split(&mut self, x: NodeId, parts: usize) -> Vec<NodeId> {
        let s = self.shape(x);
        assert!(parts >= 1 && s.c().is_multiple_of(parts), "split: {} channels into {parts} parts", s.c());
        let c = s.c() / parts;
        (0..parts)
            .map(|p| {
                let out = self.value(Shape::nchw(s.n(), c, s.h(), s.w()));
                let slice = ChannelSlice { n: s.n(), hw: s.hw(), c_part: c, c_whole: s.c(), off: p * c };
                self.push(Slice { x, out, slice })
            })
            .collect()
    }

    /// `x[:, :, 1:, 1:]`
    fn shift(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let out = self.value(Shape::nchw(s.n(), s.c(), s.h() - 1, s.w() - 1));
        self.push(Shift { x, out, n: s.n(), c: s.c(), h: s.h(), w: s.w() })
    }

    /// `(n, c, h, w) → (n, c)` stored as `(n, c, 1, 1)`.
    fn global_avg_pool(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let out = self.value(Shape::mat(s.n(), s.c()));
        self.push(GlobalAvgPool { x, out, nc: s.n() * s.c(), hw: s.hw() })
    }
}

impl<R: Recorder> RecordLayout for R where
    R::Op: Variant<Concat> + Variant<Slice> + Variant<Shift> + Variant<GlobalAvgPool>
{
}
