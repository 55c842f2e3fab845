//! The tape: an explicit list of recorded ops over numbered nodes.
//!
//! A network is recorded once (shapes only, no data); an [`crate::exec::Exec`]
//! then allocates one buffer per node from that record and replays it every
//! step: `forward` walks the list in order, `backward` walks it in reverse.
//! The node buffers are not reallocated while replaying (the CPU kernels
//! still allocate per-call scratch), so a step on the CUDA device is a fixed
//! launch sequence that a CUDA graph captures and replays
//! (`Search::set_cuda_graph`).
//!
//! The recording methods (`t.conv(…)`, `t.relu(…)`) are each op family's
//! (`crate::ops::record`), written against [`Recorder`], which the tape
//! implements; each op is written in its family's `op.rs`.

mod op;

pub use op::Op;

use crate::ops::node::Recorder;
pub use crate::ops::node::{Init, NodeId};
use crate::shape::Shape;

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Data written by the caller before `forward` (images, labels, constants).
    Input,
    /// A learned leaf. `group` tells the weights of different networks and
    /// the architecture apart: every search algorithm reads them separately.
    /// With `nets` > 1 it holds that many networks' copies of one weight one
    /// after the other (see [`Tape::set_nets`]); each starts from the same
    /// draw.
    Param { group: u32, init: Init, nets: usize },
    /// State updated by forward but never differentiated (BN running statistics).
    State { init: f32 },
    /// Values fixed when the graph is recorded (the width search's masks and
    /// cost coefficients); set when the plan is allocated, never
    /// differentiated, not saved.
    Const { values: Vec<f32> },
    /// The output of an op.
    Value,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub shape: Shape,
    pub kind: Kind,
    pub name: String,
}

/// The record of a computation: nodes with shapes, ops over them, and the
/// sizes of the auxiliary buffers ops save for backward.
#[derive(Clone, Debug, Default)]
pub struct Tape {
    pub nodes: Vec<Node>,
    pub ops: Vec<Op>,
    pub aux: Vec<usize>,
    /// Networks recorded side by side (see [`Tape::set_nets`]); 0 means 1.
    nets: usize,
}

impl Tape {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn shape(&self, n: NodeId) -> Shape {
        self.nodes[n].shape
    }

    fn node(&mut self, shape: Shape, kind: Kind, name: impl Into<String>) -> NodeId {
        self.nodes.push(Node { shape, kind, name: name.into() });
        self.nodes.len() - 1
    }

    pub fn input(&mut self, shape: Shape, name: &str) -> NodeId {
        self.node(shape, Kind::Input, name)
    }

    /// A parameter of `shape`; while several networks are recorded side by
    /// side, `shape` already counts all of them (see [`Tape::set_nets`]).
    pub fn param(&mut self, shape: Shape, group: u32, init: Init, name: &str) -> NodeId {
        let nets = self.nets();
        assert!(shape.numel().is_multiple_of(nets), "param: {name} does not split into {nets} networks");
        self.node(shape, Kind::Param { group, init, nets }, name)
    }

    /// Records what follows as `nets` networks of the same shape side by
    /// side, each in its own block of channels (RARTS's `w` and `y`: every
    /// op of the pair is one op, one kernel launch): inputs carry `nets`
    /// blocks of channels; channel counts given to
    /// [`conv`](crate::ops::conv::RecordConv::conv) and
    /// [`linear`](crate::ops::linear::RecordLinear::linear) are per network;
    /// convolutions and the classifier are grouped by network, with one weight tensor holding
    /// every network's copy, one after the other; concatenations are per
    /// network; BatchNorm, pools, shifts and mixes (shared α) are per
    /// channel already. 1 records one network, as before.
    pub fn set_nets(&mut self, nets: usize) {
        assert!(nets >= 1, "set_nets: at least one network");
        self.nets = nets;
    }

    /// Networks recorded side by side now.
    pub fn nets(&self) -> usize {
        self.nets.max(1)
    }

    /// Channels of `x` per network.
    pub fn channels(&self, x: NodeId) -> usize {
        self.shape(x).c() / self.nets()
    }

    /// A node holding `values` (row-major, as many as `shape` has) from the
    /// start: never written by a step, never differentiated.
    pub fn constant(&mut self, shape: Shape, values: Vec<f32>, name: &str) -> NodeId {
        assert_eq!(values.len(), shape.numel(), "constant: {name} holds {} values, its shape {shape:?}", values.len());
        self.node(shape, Kind::Const { values }, name)
    }

    pub fn state(&mut self, shape: Shape, init: f32, name: &str) -> NodeId {
        self.node(shape, Kind::State { init }, name)
    }

    /// Every parameter of `group`, in recording order.
    pub fn params(&self, group: u32) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].kind, Kind::Param { group: g, .. } if g == group))
            .collect()
    }

    /// Number of parameter elements in `group`.
    pub fn numel(&self, group: u32) -> usize {
        self.params(group).iter().map(|&p| self.shape(p).numel()).sum()
    }
}

impl Recorder for Tape {
    type Op = Op;

    fn shape(&self, n: NodeId) -> Shape {
        Tape::shape(self, n)
    }

    fn nets(&self) -> usize {
        Tape::nets(self)
    }

    fn value(&mut self, shape: Shape) -> NodeId {
        self.node(shape, Kind::Value, "")
    }

    fn param(&mut self, shape: Shape, group: u32, init: Init, name: &str) -> NodeId {
        Tape::param(self, shape, group, init, name)
    }

    fn state(&mut self, shape: Shape, init: f32, name: &str) -> NodeId {
        Tape::state(self, shape, init, name)
    }

    fn aux_buf(&mut self, len: usize) -> usize {
        self.aux.push(len);
        self.aux.len() - 1
    }

    fn recorded_ops(&self) -> &[Op] {
        &self.ops
    }

    fn push_op(&mut self, op: Op) -> NodeId {
        let out = op.output();
        self.ops.push(op);
        out
    }
}
