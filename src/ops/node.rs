//! What an op of the tape is, so that each op is written once, in its
//! family's `op.rs`: a struct holding its nodes and geometry, with
//!
//! - [`Node`]: the nodes it reads and writes, its family name for profiles
//!   and which input gradients its backward can overwrite;
//! - a recording method in its family's `Record…` trait, written against
//!   [`Recorder`] (which the tape implements);
//! - [`Run`]: its forward kernels and its backward rule, written against
//!   [`Fwd`] and [`Bwd`] (which the executor builds from its buffers).
//!
//! Nothing here knows the tape or the executor: the tape lists the op
//! structs in one enum (`tape/op.rs`, a line each) and the executor replays
//! them.

use crate::device::{Device, Write};
use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::shape::Shape;

/// Index of a node of the tape.
pub type NodeId = usize;

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `U(−b, b)`
    Uniform(f32),
    /// `σ·N(0, 1)`
    Normal(f32),
    Const(f32),
}

/// The nodes an op reads and writes.
pub trait Node {
    /// The node this op writes.
    fn output(&self) -> NodeId;

    /// The nodes this op reads and can differentiate into (not labels,
    /// masks or running statistics).
    fn inputs(&self) -> Vec<NodeId>;

    /// A short family name, for profiles.
    fn family(&self) -> &'static str;

    /// Whether the backward writes input `x`'s gradient through a kernel
    /// that can overwrite it ([`Bwd::lend_write`], or
    /// [`Bwd::next_write`] with [`Bwd::lend_grads`]), so that the gradient
    /// needs no zeroing when this op is the first to write it. Naming
    /// fewer inputs only costs a fill: any other gradient is zeroed before
    /// the op runs.
    fn overwrites(&self, x: NodeId) -> bool {
        let _ = x;
        false
    }
}

/// An op's kernels on backend `B`.
pub trait Run<B: ElementwiseOps>: Node {
    /// Writes the output, `out` (taken out of the values while the op runs).
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()>;

    /// Adds (or writes, where it is first) the gradient of every computed
    /// input, given the output's gradient `dy`.
    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()>;
}

/// What a recording method needs of the tape: shapes, fresh nodes and
/// auxiliary buffers, and the op list.
pub trait Recorder {
    /// The tape's op type: one variant per op struct ([`Variant`]).
    type Op;

    fn shape(&self, n: NodeId) -> Shape;
    /// Networks recorded side by side (1 for one network).
    fn nets(&self) -> usize;
    /// Channels of `x` per network.
    fn channels(&self, x: NodeId) -> usize {
        self.shape(x).c() / self.nets()
    }
    /// A fresh node for an op's output.
    fn value(&mut self, shape: Shape) -> NodeId;
    /// A fresh parameter of `group`; `shape` counts every network side by side.
    fn param(&mut self, shape: Shape, group: u32, init: Init, name: &str) -> NodeId;
    /// A fresh node that forward updates and nothing differentiates.
    fn state(&mut self, shape: Shape, init: f32, name: &str) -> NodeId;
    /// A fresh auxiliary buffer of `len` elements (what a forward saves for
    /// its backward); its index.
    fn aux_buf(&mut self, len: usize) -> usize;
    /// The ops recorded so far.
    fn recorded_ops(&self) -> &[Self::Op];
    /// Appends `op`; its output.
    fn push_op(&mut self, op: Self::Op) -> NodeId;

    /// Appends an op struct; its output.
    fn push<T>(&mut self, op: T) -> NodeId
    where
        Self::Op: Variant<T>,
    {
        self.push_op(Self::Op::from(op))
    }

    /// The output of an op of type `T` already recorded that `same` matches.
    fn recorded<T: Node>(&self, same: impl Fn(&T) -> bool) -> Option<NodeId>
    where
        Self::Op: Variant<T>,
    {
        self.recorded_ops().iter().filter_map(Variant::peek).find(|op| same(op)).map(Node::output)
    }
}

/// The tape's op type holds op struct `T` as one of its variants.
pub trait Variant<T>: From<T> {
    fn peek(&self) -> Option<&T>;
}

/// `vals[n]`, which every op's inputs hold while it runs.
pub fn val<T>(vals: &[Option<T>], n: NodeId) -> &T {
    vals[n].as_ref().expect("inputs are recorded before outputs")
}

/// What a forward reads and writes besides its output: the values (the
/// output taken out), the auxiliary buffers, and whether BatchNorm uses
/// batch statistics.
pub struct Fwd<'a, B: Device> {
    pub be: &'a B,
    pub vals: &'a mut [Option<B::Buf>],
    pub aux: &'a mut [B::Buf],
    pub train: bool,
}

impl<B: Device> Fwd<'_, B> {
    pub fn val(&self, n: NodeId) -> &B::Buf {
        val(self.vals, n)
    }
}

/// An executor's gradients: the buffers, by slot; each node's slot
/// (present for every node some parameter can influence; nodes whose
/// gradients are never needed at once share one); which nodes the current
/// backward computes (`live`) and which of those nothing has written yet
/// (`fresh`: their buffers hold whatever a node sharing the slot left
/// there), which decide whether a kernel overwrites or adds.
#[derive(Debug, Default)]
pub struct Grads<T> {
    pub bufs: Vec<Option<T>>,
    pub slot: Vec<Option<usize>>,
    pub live: Vec<bool>,
    pub fresh: Vec<bool>,
}

impl<T> Grads<T> {
    /// Takes node `n`'s gradient buffer out if this backward computes it.
    pub fn take(&mut self, n: NodeId) -> Option<T> {
        if self.live[n] { self.bufs[self.slot[n]?].take() } else { None }
    }

    /// Puts a gradient taken by [`take`](Self::take) back.
    pub fn put(&mut self, n: NodeId, grad: Option<T>) {
        if let Some(grad) = grad {
            self.bufs[self.slot[n].expect("a taken gradient has a slot")] = Some(grad);
        }
    }

    /// How the next kernel writes node `n`'s gradient: `Set` if it is the
    /// first to write it (the buffer holds garbage), `Add` otherwise (also
    /// for a node whose gradient is not computed: it is never fresh).
    pub fn next_write(&mut self, n: NodeId) -> Write {
        if std::mem::take(&mut self.fresh[n]) { Write::Set } else { Write::Add }
    }
}

/// What a backward reads and writes: values and auxiliary buffers, and the
/// gradients, lent out one op at a time through the methods below.
pub struct Bwd<'a, B: Device> {
    pub be: &'a B,
    pub vals: &'a [Option<B::Buf>],
    pub aux: &'a [B::Buf],
    pub grads: &'a mut Grads<B::Buf>,
    pub train: bool,
}

impl<B: ElementwiseOps> Bwd<'_, B> {
    pub fn val(&self, n: NodeId) -> &B::Buf {
        val(self.vals, n)
    }

    pub fn aux(&self, i: usize) -> &B::Buf {
        &self.aux[i]
    }

    /// Whether this backward computes node `n`'s gradient.
    pub fn computes(&self, n: NodeId) -> bool {
        self.grads.live[n]
    }

    /// Takes node `n`'s gradient buffer out if this backward computes it.
    pub fn take_grad(&mut self, n: NodeId) -> Option<B::Buf> {
        self.grads.take(n)
    }

    /// Puts a gradient taken by [`take_grad`](Self::take_grad) back.
    pub fn put_grad(&mut self, n: NodeId, grad: Option<B::Buf>) {
        self.grads.put(n, grad)
    }

    /// See [`Grads::next_write`].
    pub fn next_write(&mut self, n: NodeId) -> Write {
        self.grads.next_write(n)
    }

    /// Zeroes node `n`'s gradient if this backward computes it and nothing
    /// has written it yet, for a kernel that can only add.
    pub fn zero_if_fresh(&mut self, n: NodeId) -> Result<()> {
        let g = &mut *self.grads;
        if !(g.live[n] && g.fresh[n]) {
            return Ok(());
        }
        g.fresh[n] = false;
        let s = g.slot[n].expect("live nodes have gradients");
        self.be.fill(g.bufs[s].as_mut().expect("no gradient is taken between ops"), 0.0)
    }
    /// Lends node `n`'s gradient to `f`, which adds to it, if this backward
    /// computes it (else does nothing), and takes it back whether or not `f`
    /// succeeds.
    pub fn lend(&mut self, n: NodeId, f: impl FnOnce(&Self, &mut B::Buf) -> Result<()>) -> Result<()> {
        self.zero_if_fresh(n)?;
        let Some(mut grad) = self.take_grad(n) else { return Ok(()) };
        let r = f(self, &mut grad);
        self.put_grad(n, Some(grad));
        r
    }

    /// [`lend`](Self::lend) for a kernel that can overwrite: `f` is told
    /// whether to set or add.
    pub fn lend_write(&mut self, n: NodeId, f: impl FnOnce(&Self, &mut B::Buf, Write) -> Result<()>) -> Result<()> {
        let Some(mut grad) = self.take_grad(n) else { return Ok(()) };
        let write = self.next_write(n);
        let r = f(self, &mut grad, write);
        self.put_grad(n, Some(grad));
        r
    }

    /// [`lend`](Self::lend) for ops with several optional inputs (BatchNorm's
    /// x, γ, β; a linear layer's x, w, b): each gradient `None` when its node
    /// is absent or not computed, to be added to unless the op asked
    /// [`next_write`](Self::next_write) first. The nodes must be distinct.
    pub fn lend_grads<const N: usize>(
        &mut self,
        ns: [Option<NodeId>; N],
        f: impl FnOnce(&Self, [Option<&mut B::Buf>; N]) -> Result<()>,
    ) -> Result<()> {
        let mut grads = ns.map(|n| n.and_then(|n| self.take_grad(n)));
        let r = f(self, grads.each_mut().map(Option::as_mut));
        for (n, grad) in ns.into_iter().zip(grads) {
            if let Some(n) = n {
                self.put_grad(n, grad);
            }
        }
        r
    }
}
