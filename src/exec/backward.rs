//! The backward pass: which gradients a backward computes, and each op's
//! backward rule (its family's `op.rs`) run on them in reverse order.

use crate::backend::{Backend, counts};
use crate::error::Result;
use crate::ops::node::Bwd;
use crate::tape::{Kind, NodeId};

use super::Exec;

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
        self.grads.fresh = live.clone();
        self.grads.fresh[loss] = false;
        let ls = self.grads.slot[loss].expect("loss has a gradient");
        self.be.fill(self.grads.bufs[ls].as_mut().expect("no gradient is taken between ops"), 1.0)?;
        for &p in &unreached {
            live[p] = true;
            let s = self.grads.slot[p].expect("parameters have gradients");
            self.be.fill(self.grads.bufs[s].as_mut().expect("no gradient is taken between ops"), 0.0)?;
        }
        self.grads.live = live;
        for i in (0..self.tape.ops.len()).rev() {
            if !self.grads.live[self.tape.ops[i].output()] {
                continue;
            }
            let t = self.profile.is_some().then(|| (std::time::Instant::now(), counts::now()));
            let op = &self.tape.ops[i];
            let mut io =
                Bwd { be: &self.be, vals: &self.vals, aux: &self.aux, grads: &mut self.grads, train: self.train };
            for x in op.inputs() {
                if !op.overwrites(x) {
                    io.zero_if_fresh(x)?;
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

    fn backward_op(&mut self, i: usize) -> Result<()> {
        let op = &self.tape.ops[i];
        let os = self.grads.slot[op.output()].expect("live output has a gradient");
        let dy = self.grads.bufs[os].take().expect("live output has a gradient");
        let mut io = Bwd { be: &self.be, vals: &self.vals, aux: &self.aux, grads: &mut self.grads, train: self.train };
        let r = op.backward(&mut io, &dy);
        self.grads.bufs[os] = Some(dy);
        r
    }
}
