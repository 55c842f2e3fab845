//! Replays a [`Tape`] on a backend. Every node buffer (values, gradients,
//! saved statistics) is allocated once in [`Exec::new`] (the copies of the BN
//! running statistics on the first [`Exec::stash_running_stats`]); `forward`
//! and `backward` launch kernels into that fixed plan.

use rand::Rng;
use rand_distr_free::normal;

mod backward;
mod forward;

use crate::backend::{Backend, Part};
use crate::error::Result;
use crate::ops::node::Grads;
use crate::real::Real;
use crate::shape::Shape;
use crate::tape::{Init, Kind, NodeId, Tape};

pub struct Exec<B: Backend> {
    pub be: B,
    pub tape: Tape,
    vals: Vec<Option<B::Buf>>,
    /// Gradient buffers by slot, each node's slot (see `plan_grad_slots`),
    /// and which nodes the last `backward` computed.
    grads: Grads<B::Buf>,
    /// What forward passes save for backward (BN statistics, softmax
    /// probabilities), as the tape sized them.
    aux: Vec<B::Buf>,
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
            grads: Grads { bufs: grads, slot, live: vec![false; n], fresh: vec![false; n] },
            aux,
            train: true,
            profile: None,
            stash: Vec::new(),
        })
    }

    /// Elements the plan holds: (values and auxiliary buffers, gradients).
    pub fn plan_elems(&self) -> (usize, usize) {
        let grads = self.grads.bufs.iter().flatten().map(|grad| self.be.len(grad)).sum();
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
        self.grads.bufs[self.kept_slot(n)?].as_ref()
    }

    /// The slot of `n`'s gradient if the last `backward` left it readable
    /// (a parameter it computed).
    fn kept_slot(&self, n: NodeId) -> Option<usize> {
        let param = matches!(self.tape.nodes[n].kind, Kind::Param { .. });
        if self.grads.live[n] && param { self.grads.slot[n] } else { None }
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
        Ok(self
            .grad_slots(ps)?
            .into_iter()
            .map(|s| self.grads.bufs[s].as_ref().expect("no gradient is taken"))
            .collect())
    }

    /// The gradients of parameters `ps` (distinct), mutable, with the backend.
    pub fn grad_list_mut(&mut self, ps: &[NodeId]) -> Result<(&B, Vec<&mut B::Buf>)> {
        let slots = self.grad_slots(ps)?;
        Ok((&self.be, pick_mut(&mut self.grads.bufs, &slots)))
    }

    /// What an optimizer step over parameters `ps` (distinct) needs: the
    /// backend, their values (mutable) and their gradients.
    pub fn update_lists(&mut self, ps: &[NodeId]) -> Result<UpdateLists<'_, B>> {
        let slots = self.grad_slots(ps)?;
        let grads = slots.into_iter().map(|s| self.grads.bufs[s].as_ref().expect("no gradient is taken")).collect();
        Ok((&self.be, pick_mut(&mut self.vals, ps), grads))
    }

    /// The RARTS coupling term on the gradients of `ps`:
    /// `∇p += β·(p − other)`, pairwise with `others`, on `part` of `ps` and
    /// `other_part` of `others` (the two networks' parts of the same
    /// nodes when they are recorded side by side).
    pub fn couple(&mut self, beta: f32, ps: &[NodeId], others: &[NodeId], part: Part, other_part: Part) -> Result<()> {
        let slots = self.grad_slots(ps)?;
        let mut grads = pick_mut(&mut self.grads.bufs, &slots);
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
}

/// Mutable references to the buffers at `idx` (distinct, all present), in
/// the order of `idx`.
fn pick_mut<'a, T>(v: &'a mut [Option<T>], idx: &[usize]) -> Vec<&'a mut T> {
    let mut all: Vec<Option<&mut T>> = v.iter_mut().map(Option::as_mut).collect();
    idx.iter().map(|&i| all[i].take().expect("distinct nodes whose buffers are present")).collect()
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

/// The backend, parameter values (mutable) and their gradients: see
/// [`Exec::update_lists`].
pub type UpdateLists<'a, B> =
    (&'a B, Vec<&'a mut <B as crate::backend::Device>::Buf>, Vec<&'a <B as crate::backend::Device>::Buf>);
