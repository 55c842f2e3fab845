//! Replays a [`Tape`] on a backend. Every node buffer (values, gradients,
//! saved statistics) is allocated once in [`Exec::new`] (the copies of the BN
//! running statistics on the first [`Exec::stash_running_stats`]); `forward`
//! and `backward` launch kernels into that fixed plan.

use rand::Rng;
use rand_distr_free::normal;

use crate::backend::{Backend, Part, Write, counts};
use crate::error::Result;
use crate::ops::elementwise::{MixGrad, ScaleGeom};
use crate::real::Real;
use crate::shape::Shape;
use crate::tape::{Init, Kind, NodeId, Op, Tape, concat_slices};

pub struct Exec<B: Backend> {
    pub be: B,
    pub tape: Tape,
    vals: Vec<Option<B::Buf>>,
    /// Gradient buffers, by slot (see `plan_grad_slots`).
    grads: Vec<Option<B::Buf>>,
    /// Each node's gradient slot: present for every node that some
    /// parameter can influence. Parameters own theirs; other nodes share a
    /// slot with nodes of the same size whose gradients are never needed at
    /// the same time in a backward pass.
    slot: Vec<Option<usize>>,
    aux: Vec<B::Buf>,
    /// Which nodes the last `backward` computed gradients for.
    live: Vec<bool>,
    /// During `backward`: the live gradients nothing has written yet (their
    /// buffers hold whatever a node sharing the slot left there).
    fresh: Vec<bool>,
    /// BatchNorm uses batch statistics (and updates the running ones) when
    /// true, the running statistics when false.
    pub train: bool,
    /// When set, wall time per op family and direction is added up here
    /// (each op synchronised: a profile, not a fast run).
    pub profile: Option<Profile>,
    /// Copies of the BN running statistics taken by `stash_running_stats`
    /// (allocated on first use).
    stash: Vec<B::Buf>,
}

/// Per `(op family, "fwd" | "bwd")`: seconds, ops run, and the CUDA
/// launches their backend calls stand for (see `backend::counts`).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub rows: std::collections::BTreeMap<(&'static str, &'static str), ProfileRow>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ProfileRow {
    pub secs: f64,
    pub ops: usize,
    pub launches: u64,
}

impl Profile {
    /// Adds one op (or one piece of work outside ops, such as the
    /// optimizers) that took `secs` and `launches`.
    pub fn add(&mut self, family: &'static str, dir: &'static str, secs: f64, launches: u64) {
        let e = self.rows.entry((family, dir)).or_default();
        e.secs += secs;
        e.ops += 1;
        e.launches += launches;
    }

    /// Rows sorted by time, longest first.
    pub fn sorted(&self) -> Vec<(&'static str, &'static str, ProfileRow)> {
        let mut v: Vec<_> = self.rows.iter().map(|(k, v)| (k.0, k.1, *v)).collect();
        v.sort_by(|a, b| b.2.secs.total_cmp(&a.2.secs));
        v
    }
}

mod rand_distr_free {
    use rand::Rng;
    /// One standard normal draw (Box–Muller), to avoid a dependency for it.
    pub fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl<B: Backend> Exec<B> {
    /// Allocates the whole plan for `tape`.
    pub fn new(be: B, tape: Tape) -> Result<Self> {
        let n = tape.nodes.len();
        let mut can_grad: Vec<bool> = tape.nodes.iter().map(|nd| matches!(nd.kind, Kind::Param { .. })).collect();
        for op in &tape.ops {
            if op.inputs().iter().any(|&i| can_grad[i]) {
                can_grad[op.output()] = true;
            }
        }
        let (slot, slot_len) = plan_grad_slots(&tape, &can_grad);
        let elems = value_elems(&tape) + slot_len.iter().sum::<usize>();
        be.reserve(elems * std::mem::size_of::<B::Elem>())?;
        let mut vals = Vec::with_capacity(n);
        for nd in &tape.nodes {
            vals.push(Some(be.alloc(nd.shape.numel())?));
        }
        let mut grads = Vec::with_capacity(slot_len.len());
        for &len in &slot_len {
            grads.push(Some(be.alloc(len)?));
        }
        // Constants hold their values from the start.
        for (nd, v) in tape.nodes.iter().zip(vals.iter_mut()) {
            if let (Kind::Const { values }, Some(buf)) = (&nd.kind, v.as_mut()) {
                let conv: Vec<B::Elem> = values.iter().map(|&x| B::Elem::from_f32(x)).collect();
                be.upload(buf, &conv)?;
            }
        }
        let aux = tape.aux.iter().map(|&len| be.alloc(len)).collect::<Result<_>>()?;
        Ok(Exec {
            be,
            tape,
            vals,
            grads,
            slot,
            aux,
            live: vec![false; n],
            fresh: vec![false; n],
            train: true,
            profile: None,
            stash: Vec::new(),
        })
    }

    /// Elements the plan holds: (values and auxiliary buffers, gradients).
    pub fn plan_elems(&self) -> (usize, usize) {
        let grads = self.grads.iter().flatten().map(|grad| self.be.len(grad)).sum();
        (value_elems(&self.tape), grads)
    }

    /// Draws every parameter from its `Init` and resets BN running
    /// statistics. A parameter holding several networks' copies draws one
    /// and repeats it: the networks start equal.
    pub fn init_params(&mut self, rng: &mut impl Rng) -> Result<()> {
        for i in 0..self.tape.nodes.len() {
            let nd = &self.tape.nodes[i];
            let len = nd.shape.numel();
            let (init, nets) = match nd.kind {
                Kind::Param { init, nets, .. } => (init, nets),
                Kind::State { init } => (Init::Const(init), 1),
                _ => continue,
            };
            let one = len / nets;
            let data: Vec<f64> = match init {
                Init::Uniform(b) => (0..one).map(|_| rng.random_range(-(b as f64)..=b as f64)).collect(),
                Init::Normal(s) => (0..one).map(|_| s as f64 * normal(rng)).collect(),
                Init::Const(c) => vec![c as f64; one],
            };
            self.set(i, &data.repeat(nets))?;
        }
        Ok(())
    }

    /// BatchNorm running statistics, in recording order.
    pub fn state_nodes(&self) -> Vec<NodeId> {
        (0..self.tape.nodes.len()).filter(|&i| matches!(self.tape.nodes[i].kind, Kind::State { .. })).collect()
    }

    /// Keeps a copy of every BN running statistic, so that passes which are
    /// not at the network's own weights (DARTS' unrolled and perturbed
    /// weights, RARTS' exact-schedule pass) leave them as they were: call
    /// [`Exec::restore_running_stats`] after those passes.
    pub fn stash_running_stats(&mut self) -> Result<()> {
        let states = self.state_nodes();
        if self.stash.is_empty() {
            self.stash = states.iter().map(|&n| self.be.alloc(self.shape(n).numel())).collect::<Result<_>>()?;
        }
        let src: Vec<&B::Buf> = states.iter().map(|&n| self.vals[n].as_ref().expect("value present")).collect();
        self.be.copy_list(&src, &mut self.stash.iter_mut().collect::<Vec<_>>())
    }

    /// Puts back the statistics kept by the last [`Exec::stash_running_stats`].
    pub fn restore_running_stats(&mut self) -> Result<()> {
        let states = self.state_nodes();
        if self.stash.len() != states.len() {
            crate::bail!("restore_running_stats: nothing was stashed");
        }
        let mut dst = pick_mut(&mut self.vals, &states);
        self.be.copy_list(&self.stash.iter().collect::<Vec<_>>(), &mut dst)
    }

    /// The first of `nodes` whose value holds a NaN or an infinity.
    pub fn first_non_finite(&self, nodes: &[NodeId]) -> Result<Option<NodeId>> {
        for &n in nodes {
            if self.be.download(self.val(n))?.iter().any(|v| !v.to_f64().is_finite()) {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    pub fn shape(&self, n: NodeId) -> Shape {
        self.tape.shape(n)
    }

    pub fn val(&self, n: NodeId) -> &B::Buf {
        self.vals[n].as_ref().expect("value buffer is only taken while its op runs")
    }

    /// The gradient of parameter `n` from the last `backward`, if it
    /// computed one. Other nodes' gradients live in shared buffers and are
    /// gone once `backward` returns: `None` for them.
    pub fn grad(&self, n: NodeId) -> Option<&B::Buf> {
        self.grads[self.kept_slot(n)?].as_ref()
    }

    /// The slot of `n`'s gradient if the last `backward` left it readable
    /// (a parameter it computed).
    fn kept_slot(&self, n: NodeId) -> Option<usize> {
        let param = matches!(self.tape.nodes[n].kind, Kind::Param { .. });
        if self.live[n] && param { self.slot[n] } else { None }
    }

    /// The gradient slots of parameters `ps`, failing on the first that the
    /// last backward left without a gradient.
    fn grad_slots(&self, ps: &[NodeId]) -> Result<Vec<usize>> {
        ps.iter()
            .map(|&p| match self.kept_slot(p) {
                Some(s) => Ok(s),
                None => crate::bail!("no gradient for parameter '{}'", self.tape.nodes[p].name),
            })
            .collect()
    }

    /// The values of `ps` (distinct nodes), in order.
    pub fn val_list(&self, ps: &[NodeId]) -> Vec<&B::Buf> {
        ps.iter().map(|&p| self.val(p)).collect()
    }

    /// The values of `ps` (distinct nodes), mutable, in order, with the backend.
    pub fn val_list_mut(&mut self, ps: &[NodeId]) -> (&B, Vec<&mut B::Buf>) {
        (&self.be, pick_mut(&mut self.vals, ps))
    }

    /// The gradients of parameters `ps` from the last backward, in order.
    pub fn grad_list(&self, ps: &[NodeId]) -> Result<Vec<&B::Buf>> {
        Ok(self.grad_slots(ps)?.into_iter().map(|s| self.grads[s].as_ref().expect("no gradient is taken")).collect())
    }

    /// The gradients of parameters `ps` (distinct), mutable, with the backend.
    pub fn grad_list_mut(&mut self, ps: &[NodeId]) -> Result<(&B, Vec<&mut B::Buf>)> {
        let slots = self.grad_slots(ps)?;
        Ok((&self.be, pick_mut(&mut self.grads, &slots)))
    }

    /// What an optimizer step over parameters `ps` (distinct) needs: the
    /// backend, their values (mutable) and their gradients.
    pub fn update_lists(&mut self, ps: &[NodeId]) -> Result<UpdateLists<'_, B>> {
        let slots = self.grad_slots(ps)?;
        let grads = slots.into_iter().map(|s| self.grads[s].as_ref().expect("no gradient is taken")).collect();
        Ok((&self.be, pick_mut(&mut self.vals, ps), grads))
    }

    /// The RARTS coupling term on the gradients of `ps`:
    /// `∇p += β·(p − other)`, pairwise with `others`, on `part` of `ps` and
    /// `other_part` of `others` (the two networks' parts of the same
    /// nodes when they are recorded side by side).
    pub fn couple(&mut self, beta: f32, ps: &[NodeId], others: &[NodeId], part: Part, other_part: Part) -> Result<()> {
        let slots = self.grad_slots(ps)?;
        let mut grads = pick_mut(&mut self.grads, &slots);
        let pv: Vec<&B::Buf> = ps.iter().map(|&p| self.vals[p].as_ref().expect("value present")).collect();
        let ov: Vec<&B::Buf> = others.iter().map(|&p| self.vals[p].as_ref().expect("value present")).collect();
        self.be.couple(beta, &pv, &ov, &mut grads, part, other_part)
    }

    /// `dst = src` between two nodes of the same shape (parameter copies).
    pub fn copy_node(&mut self, src: NodeId, dst: NodeId) -> Result<()> {
        let mut d = self.vals[dst].take().expect("value present");
        let r = self.be.copy(self.val(src), &mut d);
        self.vals[dst] = Some(d);
        r
    }

    /// Uploads `data` (converted to the backend's element type) into node `n`.
    pub fn set(&mut self, n: NodeId, data: &[f64]) -> Result<()> {
        let conv: Vec<B::Elem> = data.iter().map(|&v| B::Elem::from_f64(v)).collect();
        self.set_elems(n, &conv)
    }

    pub fn set_elems(&mut self, n: NodeId, data: &[B::Elem]) -> Result<()> {
        let want = self.tape.shape(n).numel();
        if data.len() != want {
            crate::bail!("node {n} ({}) holds {want} elements, got {}", self.tape.nodes[n].name, data.len());
        }
        let be = &self.be;
        be.upload(self.vals[n].as_mut().expect("value buffer present"), data)
    }

    /// Node `n`'s value, as f64.
    pub fn get(&self, n: NodeId) -> Result<Vec<f64>> {
        Ok(self.be.download(self.val(n))?.iter().map(|v| v.to_f64()).collect())
    }

    /// Parameter `n`'s gradient from the last `backward`, as f64 (zeros if
    /// it was not computed). Other nodes' gradients are not kept.
    pub fn get_grad(&self, n: NodeId) -> Result<Vec<f64>> {
        if !matches!(self.tape.nodes[n].kind, Kind::Param { .. }) {
            crate::bail!("get_grad: '{}' is not a parameter; only parameters keep gradients", self.tape.nodes[n].name);
        }
        match self.grad(n) {
            Some(grad) => Ok(self.be.download(grad)?.iter().map(|v| v.to_f64()).collect()),
            None => Ok(vec![0.0; self.tape.shape(n).numel()]),
        }
    }

    /// A scalar node's value.
    pub fn scalar(&self, n: NodeId) -> Result<f64> {
        Ok(self.get(n)?[0])
    }

    // ---- forward ----------------------------------------------------------

    pub fn forward(&mut self) -> Result<()> {
        for i in 0..self.tape.ops.len() {
            self.timed(i, "fwd", Self::forward_op)?;
        }
        Ok(())
    }

    /// Runs `f` for op `i`, timing it when profiling.
    fn timed(&mut self, i: usize, dir: &'static str, f: fn(&mut Self, usize) -> Result<()>) -> Result<()> {
        if self.profile.is_none() {
            return f(self, i);
        }
        self.be.synchronize()?;
        let (t, c) = (std::time::Instant::now(), counts::now());
        f(self, i)?;
        let launches = (counts::now() - c).launches;
        self.be.synchronize()?;
        let fam = self.tape.ops[i].family();
        if let Some(p) = self.profile.as_mut() {
            p.add(fam, dir, t.elapsed().as_secs_f64(), launches);
        }
        Ok(())
    }

    fn forward_op(&mut self, i: usize) -> Result<()> {
        let op = &self.tape.ops[i];
        let oi = op.output();
        let mut out = self.vals[oi].take().expect("an op's output is written once per pass");
        // BN running statistics are separate nodes, updated while x is read:
        // take them out before the inputs are borrowed.
        let mut stats = match op {
            Op::BatchNorm { running, .. } if self.train => {
                Some((self.vals[running.0].take(), self.vals[running.1].take()))
            }
            _ => None,
        };
        let running = stats.as_mut().and_then(|(m, v)| Some((m.as_mut()?, v.as_mut()?)));
        let r = run_forward(&self.be, &self.tape, op, &self.vals, &mut self.aux, &mut out, running);
        self.vals[oi] = Some(out);
        if let (Op::BatchNorm { running: (m, v), .. }, Some((rm, rv))) = (op, stats) {
            (self.vals[*m], self.vals[*v]) = (rm, rv);
        }
        r
    }

    // ---- backward ---------------------------------------------------------

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
    fn lend3(
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
                self.lend3([Some(*x), Some(*w), None], |ex, [dx, dw, _]| {
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
                self.lend3([Some(*x), affine.map(|a| a.0), affine.map(|a| a.1)], |ex, [dx, dgamma, dbeta]| {
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
                self.lend3([Some(*x), Some(*m), None], |ex, [dx, dm, _]| {
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
                self.lend3([Some(*x), Some(*w), *b], |ex, [dx, dw, db]| {
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

/// The backend, parameter values (mutable) and their gradients: see
/// [`Exec::update_lists`].
pub type UpdateLists<'a, B> =
    (&'a B, Vec<&'a mut <B as crate::backend::Device>::Buf>, Vec<&'a <B as crate::backend::Device>::Buf>);

/// Mutable references to the buffers at `idx` (distinct, all present), in
/// the order of `idx`.
fn pick_mut<'a, T>(v: &'a mut [Option<T>], idx: &[usize]) -> Vec<&'a mut T> {
    let mut all: Vec<Option<&mut T>> = v.iter_mut().map(Option::as_mut).collect();
    idx.iter().map(|&i| all[i].take().expect("distinct nodes whose buffers are present")).collect()
}

/// Op `op`'s forward kernel(s) into `out`; `stats` holds the BN running
/// statistics (taken out of `vals`) in training mode.
fn run_forward<B: Backend>(
    be: &B,
    tape: &Tape,
    op: &Op,
    vals: &[Option<B::Buf>],
    aux: &mut [B::Buf],
    out: &mut B::Buf,
    stats: Option<(&mut B::Buf, &mut B::Buf)>,
) -> Result<()> {
    let v = |n: NodeId| vals[n].as_ref().expect("inputs are recorded before outputs");
    match op {
        Op::Conv2d { x, w, geom, .. } => be.conv2d_fwd(geom, v(*x), v(*w), out)?,
        Op::MaxPool { x, geom, .. } => be.max_pool_fwd(geom, v(*x), out)?,
        Op::AvgPool { x, geom, .. } => be.avg_pool_fwd(geom, v(*x), out)?,
        Op::BatchNorm { x, affine, running, saved, geom, .. } => {
            let gamma = affine.map(|a| v(a.0));
            let beta = affine.map(|a| v(a.1));
            if let Some((rm, rv)) = stats {
                be.bn_fwd_train(geom, v(*x), gamma, beta, out, &mut aux[*saved], rm, rv)?
            } else {
                be.bn_fwd_eval(geom, v(*x), gamma, beta, v(running.0), v(running.1), out)?
            }
        }
        Op::Relu { x, .. } => be.relu_fwd(v(*x), out)?,
        Op::Combine { terms, .. } => {
            if terms.is_empty() {
                be.fill(out, 0.0)?;
            }
            for (t, &(x, c)) in terms.iter().enumerate() {
                be.axpy(c, v(x), out, if t == 0 { Write::Set } else { Write::Add })?;
            }
        }
        Op::Mul { a, b, .. } => be.mul_fwd(v(*a), v(*b), out)?,
        Op::MaskedSum { terms, .. } => {
            let terms: Vec<(&B::Buf, Option<&B::Buf>)> = terms.iter().map(|&(x, m)| (v(x), m.map(v))).collect();
            be.masked_sum_fwd(&terms, out)?
        }
        Op::Mix { terms, w, .. } => {
            let terms: Vec<(usize, &B::Buf)> = terms.iter().map(|t| (t.idx, v(t.x))).collect();
            be.mix_fwd(v(*w), &terms, out)?
        }
        Op::SoftmaxRows { x, rows, cols, .. } => be.softmax_rows_fwd(*rows, *cols, v(*x), out)?,
        Op::Concat { xs, groups, .. } => {
            let slices = concat_slices(tape, xs, op.output(), *groups);
            let parts: Vec<_> = xs.iter().zip(slices).map(|(x, s)| (s, v(*x))).collect();
            be.concat_fwd(&parts, out)?
        }
        Op::Slice { x, slice, .. } => be.channel_take(slice, v(*x), out, Write::Set)?,
        Op::ChannelScale { x, m, .. } => be.channel_scale_fwd(&scale_geom(tape, *x, *m), v(*x), v(*m), out)?,
        Op::Shift { x, .. } => {
            let s = tape.shape(*x);
            be.shift_fwd(s.n(), s.c(), s.h(), s.w(), v(*x), out)?
        }
        Op::Zeros { .. } => be.fill(out, 0.0)?,
        Op::GlobalAvgPool { x, .. } => {
            let s = tape.shape(*x);
            be.gap_fwd(s.n() * s.c(), s.hw(), v(*x), out)?
        }
        Op::Linear { x, w, b, .. } => {
            let (n, i, o, groups) = linear_dims(tape, *x, *w);
            be.linear_fwd(n, i, o, groups, v(*x), v(*w), b.map(v), out)?
        }
        Op::CrossEntropy { logits, labels, probs, .. } => {
            let s = tape.shape(*logits);
            be.cross_entropy_fwd(s.n(), s.c(), v(*logits), v(*labels), out, &mut aux[*probs])?
        }
        Op::SumAll { x, .. } => be.sum_all_fwd(v(*x), out)?,
    }
    Ok(())
}

/// Elements of every node's value and every auxiliary buffer.
fn value_elems(tape: &Tape) -> usize {
    tape.nodes.iter().map(|nd| nd.shape.numel()).sum::<usize>() + tape.aux.iter().sum::<usize>()
}

/// Assigns every node that can have a gradient a buffer slot; returns each
/// node's slot and each slot's length.
///
/// A parameter gets its own slot (optimizers read it after `backward`).
/// Any other node's gradient is in use, during the reverse pass, only from
/// the last op that consumes the node (the first to accumulate into it) down
/// to the op that produced it (which reads it as `dy`): op indices
/// `[producer, last consumer]`, or to the end of the tape for a node nobody
/// consumes (a loss). Nodes of equal size whose intervals are disjoint share
/// a slot. A backward pass over a subset of the parameters only shortens the
/// intervals, so the same plan holds for every `backward` call.
fn plan_grad_slots(tape: &Tape, can_grad: &[bool]) -> (Vec<Option<usize>>, Vec<usize>) {
    let n = tape.nodes.len();
    let m = tape.ops.len();
    let mut producer = vec![usize::MAX; n];
    let mut last_use = vec![m; n];
    let mut used = vec![false; n];
    for (i, op) in tape.ops.iter().enumerate() {
        producer[op.output()] = i;
        for x in op.inputs() {
            last_use[x] = if used[x] { last_use[x].max(i) } else { i };
            used[x] = true;
        }
    }
    let mut slot = vec![None; n];
    let mut slot_len = Vec::new();
    // Nodes that may share, by size.
    let mut shared: std::collections::BTreeMap<usize, Vec<NodeId>> = Default::default();
    for i in 0..n {
        if !can_grad[i] {
            continue;
        }
        let len = tape.nodes[i].shape.numel();
        if matches!(tape.nodes[i].kind, Kind::Param { .. }) || producer[i] == usize::MAX {
            slot[i] = Some(slot_len.len());
            slot_len.push(len);
        } else {
            shared.entry(len).or_default().push(i);
        }
    }
    for (len, mut nodes) in shared {
        // In reverse-pass order: the node whose gradient is needed first.
        nodes.sort_by_key(|&i| std::cmp::Reverse(last_use[i]));
        // Each open slot of this size with the producer index of its latest
        // occupant: free for a node whose last use comes strictly before.
        let mut open: Vec<(usize, usize)> = Vec::new();
        for i in nodes {
            let s = match open.iter_mut().find(|(_, busy_from)| last_use[i] < *busy_from) {
                Some(o) => {
                    o.1 = producer[i];
                    o.0
                }
                None => {
                    slot_len.push(len);
                    open.push((slot_len.len() - 1, producer[i]));
                    slot_len.len() - 1
                }
            };
            slot[i] = Some(s);
        }
    }
    (slot, slot_len)
}

/// `(n, i, o, groups)` of a linear layer on x `(n, i)` with weights `(o, i/groups)`.
fn linear_dims(tape: &Tape, x: NodeId, w: NodeId) -> (usize, usize, usize, usize) {
    let (xs, ws) = (tape.shape(x), tape.shape(w));
    let i = xs.numel() / xs.n();
    (xs.n(), i, ws.n(), i / ws.c())
}

/// The geometry of a [`Op::ChannelScale`] of `x` by `m`.
fn scale_geom(tape: &Tape, x: NodeId, m: NodeId) -> ScaleGeom {
    let s = tape.shape(x);
    ScaleGeom { n: s.n(), c: s.c(), hw: s.hw(), cm: tape.shape(m).numel() }
}
