//! The tape: an explicit list of recorded ops over numbered nodes.
//!
//! A network is recorded once (shapes only, no data); an [`crate::exec::Exec`]
//! then allocates one buffer per node from that record and replays it every
//! step: `forward` walks the list in order, `backward` walks it in reverse
//! with one `match` arm per op. The node buffers are not reallocated while
//! replaying (the CPU kernels still allocate per-call scratch), so a step on
//! the CUDA device is a fixed launch sequence that a CUDA graph captures and
//! replays (`Search::set_cuda_graph`).

mod op;

pub use op::Op;

use crate::ops::{bn::BnGeom, conv::ConvGeom, layout::ChannelSlice, pool::PoolGeom};
use crate::shape::Shape;

/// Index of a node in [`Tape::nodes`].
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

/// One term `w[idx] · x` of a [`Op::Mix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub x: NodeId,
    pub idx: usize,
}

/// How a convolution slides over its input, built by name rather than by
/// position: `ConvSpec::depthwise(3, 2, 1).after_relu()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub dil: usize,
    /// One k×k filter per channel (groups = channels) instead of a dense conv.
    pub depthwise: bool,
    /// A ReLU applied to the input inside the conv (every DARTS conv is
    /// preceded by one).
    pub relu_in: bool,
}

impl ConvSpec {
    /// A dense k×k convolution (groups = 1).
    pub fn dense(k: usize, stride: usize, pad: usize) -> Self {
        ConvSpec { k, stride, pad, dil: 1, depthwise: false, relu_in: false }
    }

    /// A 1×1 convolution.
    pub fn pointwise(stride: usize) -> Self {
        Self::dense(1, stride, 0)
    }

    /// A depthwise k×k convolution with dilation `dil`, padded by
    /// `dil·(k − 1)/2` so that stride 1 keeps the size (DARTS' sep_conv and
    /// dil_conv).
    pub fn depthwise(k: usize, stride: usize, dil: usize) -> Self {
        ConvSpec { k, stride, pad: dil * (k - 1) / 2, dil, depthwise: true, relu_in: false }
    }

    /// The same conv with a ReLU on its input.
    pub fn after_relu(self) -> Self {
        ConvSpec { relu_in: true, ..self }
    }
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

    fn value(&mut self, shape: Shape) -> NodeId {
        self.node(shape, Kind::Value, "")
    }

    fn push(&mut self, op: Op) -> NodeId {
        let out = op.output();
        self.ops.push(op);
        out
    }

    fn aux_buf(&mut self, len: usize) -> usize {
        self.aux.push(len);
        self.aux.len() - 1
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
    /// blocks of channels; channel counts given to [`conv`](Self::conv) and
    /// [`linear`](Self::linear) are per network; convolutions and the
    /// classifier are grouped by network, with one weight tensor holding
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

    // ---- recording ---------------------------------------------------------

    /// Convolution with a fresh weight parameter `(cout, cin/groups, k, k)`,
    /// PyTorch's default init (`U(±1/√fan_in)`), no bias. A depthwise
    /// `spec` needs `cout` = the input's channels. Channels are per network
    /// (see [`Tape::set_nets`]).
    pub fn conv(&mut self, x: NodeId, cout: usize, spec: ConvSpec, group: u32, name: &str) -> NodeId {
        let (nets, cin) = (self.nets(), self.channels(x));
        let groups = if spec.depthwise { cin } else { 1 };
        assert!(!spec.depthwise || cout == cin, "conv: a depthwise conv keeps its {cin} channels, not {cout}");
        let w_shape = Shape::nchw(nets * cout, cin / groups, spec.k, spec.k);
        let bound = 1.0 / ((cin / groups * spec.k * spec.k) as f32).sqrt();
        let w = self.param(w_shape, group, Init::Uniform(bound), name);
        self.conv_with(x, w, spec)
    }

    /// Convolution with an existing weight node (its shape gives k and cout;
    /// grouped by network when several are recorded side by side).
    pub fn conv_with(&mut self, x: NodeId, w: NodeId, spec: ConvSpec) -> NodeId {
        let (s, ws) = (self.shape(x), self.shape(w));
        let ConvSpec { k, stride, pad, dil, depthwise, relu_in } = spec;
        let groups = if depthwise { s.c() } else { self.nets() };
        assert!(ws.h() == k && ws.w() == k, "conv: weight is {}×{}, spec says {k}×{k}", ws.h(), ws.w());
        assert!(ws.n() % groups == 0 && ws.c() == s.c() / groups, "conv: bad channels/groups");
        let geom = ConvGeom {
            n: s.n(),
            cin: s.c(),
            h: s.h(),
            w: s.w(),
            cout: ws.n(),
            oh: ConvGeom::out_len(s.h(), k, stride, pad, dil),
            ow: ConvGeom::out_len(s.w(), k, stride, pad, dil),
            k,
            stride,
            pad,
            dil,
            groups,
            relu_in,
        };
        let out = self.value(geom.y_shape());
        self.push(Op::Conv2d { x, w, out, geom })
    }

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

    /// The output of an op already recorded that `same` matches. Pools have
    /// no parameters and no randomness, so the same pool of the same node
    /// (DARTS' reduction cell pools s0 twice and s1 three times; the search
    /// cell pools every state once per later node) is recorded once and its
    /// output shared: each consumer's gradient adds into the one output.
    fn recorded(&self, same: impl Fn(&Op) -> bool) -> Option<NodeId> {
        self.ops.iter().find(|op| same(op)).map(Op::output)
    }

    /// 3×3 max pool, padding 1 (shared with an identical one already recorded).
    pub fn max_pool(&mut self, x: NodeId, stride: usize) -> NodeId {
        let geom = self.pool_geom(x, 3, stride, 1);
        if let Some(out) =
            self.recorded(|op| matches!(op, Op::MaxPool { x: px, geom: pg, .. } if *px == x && *pg == geom))
        {
            return out;
        }
        let out = self.value(geom.y_shape());
        self.push(Op::MaxPool { x, out, geom })
    }

    /// 3×3 average pool, padding 1, padding not counted.
    pub fn avg_pool(&mut self, x: NodeId, stride: usize) -> NodeId {
        self.avg_pool_k(x, 3, stride, 1)
    }

    /// k×k average pool, padding not counted (`count_include_pad=False`);
    /// `pad ≤ k/2`; shared with an identical one already recorded. The
    /// auxiliary head's is k = 5, stride 3, pad 0.
    pub fn avg_pool_k(&mut self, x: NodeId, k: usize, stride: usize, pad: usize) -> NodeId {
        let geom = self.pool_geom(x, k, stride, pad);
        if let Some(out) =
            self.recorded(|op| matches!(op, Op::AvgPool { x: px, geom: pg, .. } if *px == x && *pg == geom))
        {
            return out;
        }
        let out = self.value(geom.y_shape());
        self.push(Op::AvgPool { x, out, geom })
    }

    /// BatchNorm with its own running statistics; with `affine`, fresh γ = 1, β = 0.
    pub fn batch_norm(&mut self, x: NodeId, affine: bool, group: u32, name: &str) -> NodeId {
        let s = self.shape(x);
        let c = Shape::vec(s.c());
        let affine = affine.then(|| {
            (
                self.param(c, group, Init::Const(1.0), &format!("{name}.weight")),
                self.param(c, group, Init::Const(0.0), &format!("{name}.bias")),
            )
        });
        let running =
            (self.state(c, 0.0, &format!("{name}.running_mean")), self.state(c, 1.0, &format!("{name}.running_var")));
        let saved = self.aux_buf(2 * s.c());
        let geom = BnGeom { n: s.n(), c: s.c(), hw: s.hw(), eps: 1e-5, momentum: 0.1 };
        let out = self.value(s);
        self.push(Op::BatchNorm { x, out, affine, running, saved, geom })
    }

    pub fn relu(&mut self, x: NodeId) -> NodeId {
        let out = self.value(self.shape(x));
        self.push(Op::Relu { x, out })
    }

    /// `Σ c_i · x_i` over same-shaped nodes.
    pub fn combine(&mut self, terms: &[(NodeId, f32)]) -> NodeId {
        let s = self.shape(terms[0].0);
        assert!(terms.iter().all(|t| self.shape(t.0) == s), "combine: shapes differ");
        let out = self.value(s);
        self.push(Op::Combine { terms: terms.to_vec(), out })
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.combine(&[(a, 1.0), (b, 1.0)])
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.combine(&[(a, 1.0), (b, -1.0)])
    }

    pub fn scale(&mut self, x: NodeId, c: f32) -> NodeId {
        self.combine(&[(x, c)])
    }

    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        assert_eq!(self.shape(a), self.shape(b), "mul: shapes differ");
        let out = self.value(self.shape(a));
        self.push(Op::Mul { a, b, out })
    }

    /// `Σ w[idx] · x` over `terms`; `shape` is given because a node may have
    /// no terms at all (every incoming op `none`).
    pub fn mix(&mut self, terms: &[Term], w: NodeId, shape: Shape) -> NodeId {
        assert!(terms.iter().all(|t| self.shape(t.x) == shape), "mix: shapes differ");
        assert!(terms.iter().all(|t| t.idx < self.shape(w).numel()), "mix: weight index out of range");
        let out = self.value(shape);
        self.push(Op::Mix { terms: terms.to_vec(), w, out })
    }

    /// `Σ_t x_t · mask_t[n]` over same-shaped nodes, a term without a mask
    /// taken as it is: the sum of an evaluation node's ops, each with its
    /// drop path, the masks `(n)` inputs the caller fills each step (0 or
    /// 1/keep per sample, see [`crate::space::eval::fill_drop_masks`]).
    pub fn masked_sum(&mut self, terms: &[(NodeId, Option<NodeId>)]) -> NodeId {
        let s = self.shape(terms[0].0);
        assert!(terms.iter().all(|t| self.shape(t.0) == s), "masked_sum: shapes differ");
        assert!(
            terms.iter().filter_map(|t| t.1).all(|m| self.shape(m).numel() == s.n()),
            "masked_sum: one mask value per sample"
        );
        let out = self.value(s);
        self.push(Op::MaskedSum { terms: terms.to_vec(), out })
    }

    /// Softmax of each row of a `(rows, cols, 1, 1)` matrix.
    pub fn softmax_rows(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let (rows, cols) = (s.n(), s.numel() / s.n());
        let out = self.value(s);
        self.push(Op::SoftmaxRows { x, out, rows, cols })
    }

    /// Concatenation along channels (per network, see [`Tape::set_nets`]).
    pub fn concat(&mut self, xs: &[NodeId]) -> NodeId {
        let s0 = self.shape(xs[0]);
        assert!(
            xs.iter().all(|&x| {
                let s = self.shape(x);
                s.n() == s0.n() && s.hw() == s0.hw() && s.h() == s0.h()
            }),
            "concat: shapes differ"
        );
        let groups = self.nets();
        assert!(xs.iter().all(|&x| self.shape(x).c().is_multiple_of(groups)), "concat: channels per network differ");
        let c = xs.iter().map(|&x| self.shape(x).c()).sum();
        let out = self.value(Shape::nchw(s0.n(), c, s0.h(), s0.w()));
        self.push(Op::Concat { xs: xs.to_vec(), out, groups })
    }

    /// Row `r` of a `(rows, cols)` matrix, as `(1, cols)`.
    pub fn row(&mut self, x: NodeId, r: usize) -> NodeId {
        let s = self.shape(x);
        let (rows, cols) = (s.n(), s.numel() / s.n());
        assert!(r < rows, "row: {r} of {rows}");
        let out = self.value(Shape::mat(1, cols));
        let slice = ChannelSlice { n: 1, hw: 1, c_part: cols, c_whole: rows * cols, off: r * cols };
        self.push(Op::Slice { x, out, slice })
    }

    /// `x[n, ch, …] · m[ch mod cm]` with `m` of `cm` values (a factor per
    /// channel, the same for every network side by side).
    pub fn channel_scale(&mut self, x: NodeId, m: NodeId) -> NodeId {
        let (s, cm) = (self.shape(x), self.shape(m).numel());
        assert!(cm > 0 && s.c().is_multiple_of(cm), "channel_scale: {cm} factors for {} channels", s.c());
        let out = self.value(s);
        self.push(Op::ChannelScale { x, m, out })
    }

    /// `x` cut along channels into `parts` equal blocks (the networks of
    /// [`Tape::set_nets`] apart again: RARTS's two networks' logits).
    pub fn split(&mut self, x: NodeId, parts: usize) -> Vec<NodeId> {
        let s = self.shape(x);
        assert!(parts >= 1 && s.c().is_multiple_of(parts), "split: {} channels into {parts} parts", s.c());
        let c = s.c() / parts;
        (0..parts)
            .map(|p| {
                let out = self.value(Shape::nchw(s.n(), c, s.h(), s.w()));
                let slice = ChannelSlice { n: s.n(), hw: s.hw(), c_part: c, c_whole: s.c(), off: p * c };
                self.push(Op::Slice { x, out, slice })
            })
            .collect()
    }

    /// `x[:, :, 1:, 1:]`
    pub fn shift(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let out = self.value(Shape::nchw(s.n(), s.c(), s.h() - 1, s.w() - 1));
        self.push(Op::Shift { x, out })
    }

    pub fn zeros(&mut self, shape: Shape) -> NodeId {
        let out = self.value(shape);
        self.push(Op::Zeros { out })
    }

    /// `(n, c, h, w) → (n, c)` stored as `(n, c, 1, 1)`.
    pub fn global_avg_pool(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        let out = self.value(Shape::mat(s.n(), s.c()));
        self.push(Op::GlobalAvgPool { x, out })
    }

    /// Fully connected layer with fresh weight and bias (PyTorch's default
    /// init); `out` features per network, grouped by network when several
    /// are recorded side by side.
    pub fn linear(&mut self, x: NodeId, out: usize, group: u32, name: &str) -> NodeId {
        let (s, nets) = (self.shape(x), self.nets());
        let i = s.numel() / s.n() / nets;
        let bound = 1.0 / (i as f32).sqrt();
        let w = self.param(Shape::mat(nets * out, i), group, Init::Uniform(bound), &format!("{name}.weight"));
        let b = self.param(Shape::vec(nets * out), group, Init::Uniform(bound), &format!("{name}.bias"));
        let out = self.value(Shape::mat(s.n(), nets * out));
        self.push(Op::Linear { x, w, b: Some(b), out })
    }

    /// `x·wᵀ (+ b)` with existing weight nodes (constants, shared weights):
    /// x `(n, i)`, w `(o, i)`, b `(o)`.
    pub fn linear_with(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> NodeId {
        let (s, ws) = (self.shape(x), self.shape(w));
        let i = s.numel() / s.n();
        assert_eq!(ws.numel() / ws.n(), i, "linear_with: weight rows of {} for inputs of {i}", ws.numel() / ws.n());
        let out = self.value(Shape::mat(s.n(), ws.n()));
        self.push(Op::Linear { x, w, b, out })
    }

    /// Mean cross-entropy of `(n, k)` logits against an `(n)` label input.
    pub fn cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> NodeId {
        let s = self.shape(logits);
        assert_eq!(self.shape(labels).numel(), s.n(), "cross_entropy: one label per row");
        let probs = self.aux_buf(s.numel());
        let out = self.value(Shape::scalar());
        self.push(Op::CrossEntropy { logits, labels, out, probs })
    }

    pub fn sum_all(&mut self, x: NodeId) -> NodeId {
        let out = self.value(Shape::scalar());
        self.push(Op::SumAll { x, out })
    }
}

/// The channel slice of part `i` of a concat. Per group: a tensor
/// `(n, groups·c, hw)` is `(n·groups, c, hw)` in memory, so a concat per
/// group is a plain concat over `n·groups` images.
pub fn concat_slices(tape: &Tape, xs: &[NodeId], out: NodeId, groups: usize) -> Vec<ChannelSlice> {
    let ys = tape.shape(out);
    let mut off = 0;
    xs.iter()
        .map(|&x| {
            let s = tape.shape(x);
            let c = s.c() / groups;
            let sl = ChannelSlice { n: s.n() * groups, hw: s.hw(), c_part: c, c_whole: ys.c() / groups, off };
            off += c;
            sl
        })
        .collect()
}
