//! The backward pass: each op's backward rule, the gradients lent to its
//! kernels and whether they overwrite or add.

use crate::backend::{Backend, Write, counts};
use crate::error::Result;
use crate::ops::elementwise::MixGrad;
use crate::tape::{Kind, NodeId, Op, concat_slices};

use super::{Exec, linear_dims, scale_geom};

impl<B: Backend> Exec<B> {
    /// Gradients of scalar `loss` with respect to every parameter of the
    /// given groups (and every node between them and the loss). Gradients of
    /// other groups are not computed: `grad` returns `None` for them.
    pub fn backward(&mut self, loss: NodeId, groups: &[u32]) -> Result<()> {
        let mut live: Vec<bool> = self
            .tape
            .nodes
            .iter()
            .map(|nd| matches!(nd.kind, Kind::Param { group, .. } if groups.contains(&group)))
            .collect();
        for op in &self.tape.ops {
            if op.inputs().iter().any(|&i| live[i]) {
                live[op.output()] = true;
            }
        }
        if !live[loss] {
            crate::bail!("backward: the loss does not depend on parameter groups {groups:?}");
        }
        // Only nodes the loss depends on carry a nonzero gradient.
        let mut ancestor = vec![false; live.len()];
        ancestor[loss] = true;
        for op in self.tape.ops.iter().rev() {
            if ancestor[op.output()] {
                op.inputs().iter().for_each(|&i| ancestor[i] = true);
            }
        }
        live.iter_mut().zip(&ancestor).for_each(|(l, a)| *l &= *a);
        // A parameter of these groups that the loss does not reach (behind an
        // NB201 cell whose edges from its input are all `none`, say) gets a
        // zero gradient, as PyTorch's Zero op (`x.mul(0.)`) leaves it, so
        // that optimizers treat it as any other (weight decay, momentum).
        let unreached: Vec<NodeId> = (0..live.len())
            .filter(|&i| {
                !live[i] && matches!(self.tape.nodes[i].kind, Kind::Param { group, .. } if groups.contains(&group))
            })
            .collect();
        // The first op to write a live gradient overwrites it where its
        // kernel can (see `overwrites`); any other is zeroed just before
        // that op, so that the buffer is still in cache when the op reads it
        // back. Every live node but the loss feeds some live op (it depends
        // on a chosen parameter and the loss depends on it), so every live
        // gradient is written before it is read.
        self.fresh = live.clone();
        self.fresh[loss] = false;
        let ls = self.slot[loss].expect("loss has a gradient");
        self.be.fill(self.grads[ls].as_mut().expect("no gradient is taken between ops"), 1.0)?;
        for &p in &unreached {
            live[p] = true;
            let s = self.slot[p].expect("parameters have gradients");
            self.be.fill(self.grads[s].as_mut().expect("no gradient is taken between ops"), 0.0)?;
        }
        self.live = live;
        for i in (0..self.tape.ops.len()).rev() {
            if !self.live[self.tape.ops[i].output()] {
                continue;
            }
            let t = self.profile.is_some().then(|| (std::time::Instant::now(), counts::now()));
            for x in self.tape.ops[i].inputs() {
                if !overwrites(&self.tape.ops[i], x) {
                    self.zero_if_fresh(x)?;
                }
            }
            if let (Some((t, c)), Some(p)) = (t, self.profile.as_mut()) {
                let fills = (counts::now() - c).launches;
                if fills > 0 {
                    self.be.synchronize()?;
                    p.add("zero_grads", "bwd", t.elapsed().as_secs_f64(), fills);
                }
            }
            self.timed(i, "bwd", Self::backward_op)?;
        }
        Ok(())
    }

    /// Takes node `n`'s gradient buffer out if this backward computes it.
    fn take_grad(&mut self, n: NodeId) -> Option<B::Buf> {
        if self.live[n] { self.grads[self.slot[n]?].take() } else { None }
    }

    fn put_grad(&mut self, n: NodeId, grad: Option<B::Buf>) {
        if let Some(grad) = grad {
            self.grads[self.slot[n].expect("a taken gradient has a slot")] = Some(grad);
        }
    }

    /// Zeroes node `n`'s gradient if this backward computes it and nothing
    /// has written it yet, for a kernel that can only add.
    fn zero_if_fresh(&mut self, n: NodeId) -> Result<()> {
        if !(self.live[n] && self.fresh[n]) {
            return Ok(());
        }
        self.fresh[n] = false;
        let s = self.slot[n].expect("live nodes have gradients");
        self.be.fill(self.grads[s].as_mut().expect("no gradient is taken between ops"), 0.0)
    }

    /// How the next kernel writes node `n`'s gradient: `Set` if it is the
    /// first to write it (the buffer holds garbage), `Add` otherwise (also
    /// for a node whose gradient is not computed: it is never fresh).
    fn next_write(&mut self, n: NodeId) -> Write {
        if std::mem::take(&mut self.fresh[n]) { Write::Set } else { Write::Add }
    }

    /// Lends node `n`'s gradient to `f`, which adds to it, if this backward
    /// computes it (else does nothing), and takes it back whether or not `f`
    /// succeeds.
    fn lend(&mut self, n: NodeId, f: impl FnOnce(&Self, &mut B::Buf) -> Result<()>) -> Result<()> {
        self.zero_if_fresh(n)?;
        let Some(mut grad) = self.take_grad(n) else { return Ok(()) };
        let r = f(self, &mut grad);
        self.put_grad(n, Some(grad));
        r
    }

    /// [`lend`](Self::lend) for a kernel that can overwrite: `f` is told
    /// whether to set or add.
    fn lend_write(&mut self, n: NodeId, f: impl FnOnce(&Self, &mut B::Buf, Write) -> Result<()>) -> Result<()> {
        let Some(mut grad) = self.take_grad(n) else { return Ok(()) };
        let write = self.next_write(n);
        let r = f(self, &mut grad, write);
        self.put_grad(n, Some(grad));
        r
    }

    /// [`lend`](Self::lend) for ops with several optional inputs (BatchNorm's
    /// x, γ, β; a linear layer's x, w, b): each gradient `None` when its node
    /// is absent or not computed. The nodes must be distinct.
    fn lend_grads(
        &mut self,
        ns: [Option<NodeId>; 3],
        f: impl FnOnce(&Self, [Option<&mut B::Buf>; 3]) -> Result<()>,
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

    fn backward_op(&mut self, i: usize) -> Result<()> {
        // Cloning the op is cheap next to its kernels and frees `self` for
        // the gradient buffers it lends out.
        let op = self.tape.ops[i].clone();
        let os = self.slot[op.output()].expect("live output has a gradient");
        let dy = self.grads[os].take().expect("live output has a gradient");
        let r = self.backward_with(&op, &dy);
        self.grads[os] = Some(dy);
        r
    }

    /// The backward rule of each op: every gradient it computes, `+=`, or
    /// `=` through [`lend_write`](Self::lend_write) where it is the first
    /// write (the inputs [`overwrites`] names).
    fn backward_with(&mut self, op: &Op, dy: &B::Buf) -> Result<()> {
        match op {
            Op::Conv2d { x, w, geom, .. } => {
                // Both gradients in one call, so that a backend can serve them
                // in one pass; each overwrites when it writes first.
                let (write, w_write) = (self.next_write(*x), self.next_write(*w));
                self.lend_grads([Some(*x), Some(*w), None], |ex, [dx, dw, _]| {
                    let (dx, dw) = (dx.map(|dx| (dx, write)), dw.map(|dw| (dw, w_write)));
                    ex.be.conv2d_bwd(geom, ex.val(*x), ex.val(*w), dy, dx, dw)
                })
            }
            Op::MaxPool { x, out, geom } => {
                self.lend_write(*x, |ex, dx, write| ex.be.max_pool_bwd(geom, ex.val(*x), ex.val(*out), dy, dx, write))
            }
            Op::AvgPool { x, geom, .. } => self.lend_write(*x, |ex, dx, write| ex.be.avg_pool_bwd(geom, dy, dx, write)),
            Op::BatchNorm { x, affine, saved, geom, .. } => {
                if !self.train {
                    crate::bail!("backward through BatchNorm needs training mode");
                }
                let write = self.next_write(*x);
                self.lend_grads([Some(*x), affine.map(|a| a.0), affine.map(|a| a.1)], |ex, [dx, dgamma, dbeta]| {
                    let gamma = affine.map(|a| ex.val(a.0));
                    let dx = dx.map(|dx| (dx, write));
                    ex.be.bn_bwd(geom, ex.val(*x), gamma, &ex.aux[*saved], dy, dx, dgamma, dbeta)
                })
            }
            Op::Relu { x, .. } => self.lend(*x, |ex, dx| ex.be.relu_bwd(ex.val(*x), dy, dx)),
            Op::Combine { terms, .. } => {
                terms.iter().try_for_each(|&(x, c)| self.lend_write(x, |ex, dx, write| ex.be.axpy(c, dy, dx, write)))
            }
            Op::Mul { a, b, .. } => {
                self.lend(*a, |ex, da| ex.be.mul_bwd(ex.val(*b), dy, da))?;
                self.lend(*b, |ex, db| ex.be.mul_bwd(ex.val(*a), dy, db))
            }
            Op::MaskedSum { terms, .. } => terms.iter().try_for_each(|&(x, mask)| {
                self.lend_write(x, |ex, dx, write| match mask {
                    Some(m) => ex.be.drop_path_bwd(ex.val(m), dy, dx, write),
                    None => ex.be.axpy(1.0, dy, dx, write),
                })
            }),
            Op::Mix { terms, w, .. } => {
                // Every term's gradient out at once, for one pass over dy.
                let mut dxs = Vec::with_capacity(terms.len());
                for t in terms {
                    let dx = self.take_grad(t.x);
                    if dx.is_none() && self.live[t.x] {
                        crate::bail!("backward: two terms of a mixed edge share node {}", t.x);
                    }
                    let write = self.next_write(t.x);
                    dxs.push(dx.map(|dx| (dx, write)));
                }
                let mut dw = self.take_grad(*w);
                let mut grads: Vec<MixGrad<'_, B::Buf>> = terms
                    .iter()
                    .zip(dxs.iter_mut())
                    .map(|(t, dx)| MixGrad { idx: t.idx, x: self.val(t.x), dx: dx.as_mut().map(|(g, w)| (g, *w)) })
                    .collect();
                let r = self.be.mix_bwd(self.val(*w), dy, &mut grads, dw.as_mut());
                drop(grads);
                for (t, dx) in terms.iter().zip(dxs) {
                    self.put_grad(t.x, dx.map(|(g, _)| g));
                }
                self.put_grad(*w, dw);
                r
            }
            Op::SoftmaxRows { x, out, rows, cols } => {
                self.lend(*x, |ex, dx| ex.be.softmax_rows_bwd(*rows, *cols, ex.val(*out), dy, dx))
            }
            Op::Concat { xs, out, groups } => {
                let slices = concat_slices(&self.tape, xs, *out, *groups);
                if xs.iter().enumerate().any(|(i, x)| xs[..i].contains(x)) {
                    // A node concatenated twice: its parts add up, one by one.
                    return xs.iter().zip(&slices).try_for_each(|(&x, s)| {
                        self.lend_write(x, |ex, dx, write| ex.be.channel_take(s, dy, dx, write))
                    });
                }
                // Every computed part's gradient out at once, for one pass over dy.
                let mut taken = Vec::with_capacity(xs.len());
                for (&x, s) in xs.iter().zip(&slices) {
                    if let Some(g) = self.take_grad(x) {
                        let write = self.next_write(x);
                        taken.push((x, *s, g, write));
                    }
                }
                let mut parts: Vec<_> = taken.iter_mut().map(|(_, s, g, write)| (*s, g, *write)).collect();
                let r = self.be.concat_bwd(dy, &mut parts);
                drop(parts);
                for (x, _, g, _) in taken {
                    self.put_grad(x, Some(g));
                }
                r
            }
            Op::Shift { x, .. } => {
                let s = self.tape.shape(*x);
                self.lend(*x, |ex, dx| ex.be.shift_bwd(s.n(), s.c(), s.h(), s.w(), dy, dx))
            }
            Op::Slice { x, slice, .. } => self.lend(*x, |ex, dx| ex.be.channel_put(slice, dy, dx, Write::Add)),
            Op::ChannelScale { x, m, .. } => {
                let g = scale_geom(&self.tape, *x, *m);
                self.lend_grads([Some(*x), Some(*m), None], |ex, [dx, dm, _]| {
                    let dx = dx.map(|d| (d, Write::Add));
                    ex.be.channel_scale_bwd(&g, ex.val(*x), ex.val(*m), dy, dx, dm)
                })
            }
            Op::Zeros { .. } => Ok(()),
            Op::GlobalAvgPool { x, .. } => {
                let s = self.tape.shape(*x);
                self.lend(*x, |ex, dx| ex.be.gap_bwd(s.n() * s.c(), s.hw(), dy, dx))
            }
            Op::Linear { x, w, b, .. } => {
                let (n, i, o, groups) = linear_dims(&self.tape, *x, *w);
                self.lend_grads([Some(*x), Some(*w), *b], |ex, [dx, dw, db]| {
                    ex.be.linear_bwd(n, i, o, groups, ex.val(*x), ex.val(*w), dy, dx, dw, db)
                })
            }
            Op::CrossEntropy { logits, labels, probs, .. } => {
                let s = self.tape.shape(*logits);
                self.lend(*logits, |ex, dz| {
                    ex.be.cross_entropy_bwd(s.n(), s.c(), &ex.aux[*probs], ex.val(*labels), dy, dz)
                })
            }
            Op::SumAll { x, .. } => self.lend(*x, |ex, dx| ex.be.sum_all_bwd(dy, dx)),
        }
    }
}

/// Whether `op`'s backward writes input `x`'s gradient through a kernel that
/// can overwrite it, so that it needs no zeroing when `op` is the first to
/// write it. Must name only inputs that `backward_with` hands to
/// `lend_write` (naming fewer only costs a fill; `lend` zeroes any other).
fn overwrites(op: &Op, x: NodeId) -> bool {
    match op {
        Op::Conv2d { x: input, w, .. } => x == *input || x == *w,
        Op::BatchNorm { x: input, .. } => x == *input,
        Op::Combine { .. } | Op::MaskedSum { .. } | Op::Concat { .. } | Op::MaxPool { .. } | Op::AvgPool { .. } => true,
        Op::Mix { w, .. } => x != *w,
        _ => false,
    }
}
