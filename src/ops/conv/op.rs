//! The convolution as the tape records it: [`Conv2d`], recorded by
//! [`RecordConv::conv`] and [`RecordConv::conv_with`], and the chain
//! ReLU → depthwise → 1×1 ([`Chain`]), recorded by [`RecordConv::chain`].

use crate::error::Result;
use crate::ops::elementwise::ElementwiseOps;
use crate::ops::node::{Bwd, Fwd, Init, Node, NodeId, Recorder, Run, Variant, val};
use crate::shape::Shape;

use super::{ChainGeom, ChainGrads, ChainNorm, ChainSaved, ConvGeom, ConvOps};
use crate::ops::bn::BnGeom;

/// `out = conv(x, w)` (see [`ConvGeom`]).
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub x: NodeId,
    pub w: NodeId,
    pub out: NodeId,
    pub geom: ConvGeom,
}

impl Node for Conv2d {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        vec![self.x, self.w]
    }

    fn family(&self) -> &'static str {
        let g = &self.geom;
        if g.groups > 1 && g.groups == g.cin && g.cin == g.cout {
            "conv_depthwise"
        } else if g.k == 1 {
            "conv_1x1"
        } else {
            "conv_dense"
        }
    }

    fn overwrites(&self, x: NodeId) -> bool {
        x == self.x || x == self.w
    }
}

impl<B: ConvOps + ElementwiseOps> Run<B> for Conv2d {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        io.be.conv2d_fwd(&self.geom, io.val(self.x), io.val(self.w), out)
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        // Both gradients in one call, so that a backend can serve them in
        // one pass; each overwrites when it writes first.
        let (x, w) = (self.x, self.w);
        let (write, w_write) = (io.next_write(x), io.next_write(w));
        io.lend_grads([Some(x), Some(w), None], |io, [dx, dw, _]| {
            let (dx, dw) = (dx.map(|dx| (dx, write)), dw.map(|dw| (dw, w_write)));
            io.be.conv2d_bwd(&self.geom, io.val(x), io.val(w), dy, dx, dw)
        })
    }
}

/// `out = BN(w_pw · dwconv(relu?(x), w_dw))` (see [`ChainGeom`]): the body
/// of a sep_conv or dil_conv as one op. The depthwise output, the 1×1
/// output and BatchNorm's batch statistics are kept in auxiliary buffers
/// for the backward rather than as nodes; BatchNorm has γ, β with `affine`
/// and its own running statistics, as [`crate::ops::bn::BatchNorm`].
#[derive(Clone, Debug)]
pub struct Chain {
    pub x: NodeId,
    pub w_dw: NodeId,
    pub w_pw: NodeId,
    pub out: NodeId,
    pub affine: Option<(NodeId, NodeId)>,
    pub running: (NodeId, NodeId),
    /// Auxiliary buffers: the depthwise output, the 1×1 output, and the
    /// batch's mean and 1/std (2·c).
    pub d: usize,
    pub p: usize,
    pub saved: usize,
    /// Boxed: three geometries would make every op of the tape as large.
    pub geom: Box<ChainGeom>,
}

impl Node for Chain {
    fn output(&self) -> NodeId {
        self.out
    }

    fn inputs(&self) -> Vec<NodeId> {
        let mut v = vec![self.x, self.w_dw, self.w_pw];
        if let Some((gamma, beta)) = self.affine {
            v.extend([gamma, beta]);
        }
        v
    }

    fn family(&self) -> &'static str {
        "conv_chain"
    }

    fn overwrites(&self, x: NodeId) -> bool {
        x == self.x || x == self.w_dw || x == self.w_pw
    }
}

impl<B: ConvOps + ElementwiseOps> Run<B> for Chain {
    fn forward(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
        let Fwd { be, vals, aux, train } = io;
        let (rm, rv) = self.running;
        // The running statistics are updated while the chain runs: out of
        // the values meanwhile.
        let taken = "running statistics are only taken while their chain runs";
        let (mut running_mean, mut running_var) = (vals[rm].take().expect(taken), vals[rv].take().expect(taken));
        let r = {
            let vals = &*vals;
            let [d, p, saved] =
                aux.get_disjoint_mut([self.d, self.p, self.saved]).expect("a chain's buffers are distinct");
            let norm = ChainNorm {
                gamma: self.affine.map(|a| val(vals, a.0)),
                beta: self.affine.map(|a| val(vals, a.1)),
                running_mean: &mut running_mean,
                running_var: &mut running_var,
                batch: train.then_some((p, saved)),
            };
            let (x, w_dw, w_pw) = (val(vals, self.x), val(vals, self.w_dw), val(vals, self.w_pw));
            be.chain_fwd(&self.geom, x, w_dw, w_pw, norm, d, out)
        };
        (vals[rm], vals[rv]) = (Some(running_mean), Some(running_var));
        r
    }

    fn backward(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
        if !io.train {
            crate::bail!("backward through a chain's BatchNorm needs training mode");
        }
        let (x, w_dw, w_pw) = (self.x, self.w_dw, self.w_pw);
        let writes = [io.next_write(x), io.next_write(w_dw), io.next_write(w_pw)];
        let (gamma, beta) = (self.affine.map(|a| a.0), self.affine.map(|a| a.1));
        io.lend_grads([Some(x), Some(w_dw), Some(w_pw), gamma, beta], |io, [dx, ddw, dpw, dgamma, dbeta]| {
            let grads = ChainGrads {
                x: dx.map(|g| (g, writes[0])),
                w_dw: ddw.map(|g| (g, writes[1])),
                w_pw: dpw.map(|g| (g, writes[2])),
                gamma: dgamma,
                beta: dbeta,
            };
            let saved = ChainSaved {
                d: io.aux(self.d),
                p: io.aux(self.p),
                saved: io.aux(self.saved),
                gamma: gamma.map(|g| io.val(g)),
            };
            io.be.chain_bwd(&self.geom, io.val(x), io.val(w_dw), io.val(w_pw), saved, dy, grads)
        })
    }
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

/// Recording convolutions.
pub trait RecordConv: Recorder
where
    Self::Op: Variant<Conv2d> + Variant<Chain>,
{
    /// A fresh weight parameter `(cout, cin/groups, k, k)` for a conv of
    /// `cin` to `cout` channels (per network, see `Tape::set_nets`),
    /// PyTorch's default init (`U(±1/√fan_in)`).
    fn conv_weight(&mut self, cin: usize, cout: usize, spec: ConvSpec, group: u32, name: &str) -> NodeId {
        let groups = if spec.depthwise { cin } else { 1 };
        assert!(!spec.depthwise || cout == cin, "conv: a depthwise conv keeps its {cin} channels, not {cout}");
        let w_shape = Shape::nchw(self.nets() * cout, cin / groups, spec.k, spec.k);
        let bound = 1.0 / ((cin / groups * spec.k * spec.k) as f32).sqrt();
        self.param(w_shape, group, Init::Uniform(bound), name)
    }

    /// Convolution with a fresh weight parameter ([`conv_weight`](Self::conv_weight)),
    /// no bias. A depthwise `spec` needs `cout` = the input's channels.
    fn conv(&mut self, x: NodeId, cout: usize, spec: ConvSpec, group: u32, name: &str) -> NodeId {
        let w = self.conv_weight(self.channels(x), cout, spec, group, name);
        self.conv_with(x, w, spec)
    }

    /// Convolution with an existing weight node (its shape gives k and cout;
    /// grouped by network when several are recorded side by side).
    fn conv_with(&mut self, x: NodeId, w: NodeId, spec: ConvSpec) -> NodeId {
        let geom = conv_geom(self.shape(x), self.shape(w), spec, self.nets());
        let out = self.value(geom.y_shape());
        self.push(Conv2d { x, w, out, geom })
    }

    /// ReLU → depthwise `spec` → 1×1 to `cout` channels → BatchNorm (γ, β
    /// with `affine`) as one [`Chain`]; its parameters and statistics are
    /// made in the order, and with the names, that two [`conv`](Self::conv)s
    /// named `{name}.dw`, `{name}.pw` and a BatchNorm named `{name}.bn` would
    /// make them.
    fn chain(&mut self, x: NodeId, cout: usize, spec: ConvSpec, affine: bool, group: u32, name: &str) -> NodeId {
        assert!(spec.depthwise, "chain: the first conv is depthwise");
        let cin = self.channels(x);
        let w_dw = self.conv_weight(cin, cin, spec, group, &format!("{name}.dw"));
        let pointwise = ConvSpec::pointwise(1);
        let w_pw = self.conv_weight(cin, cout, pointwise, group, &format!("{name}.pw"));
        let dw = conv_geom(self.shape(x), self.shape(w_dw), spec, self.nets());
        let pw = conv_geom(dw.y_shape(), self.shape(w_pw), pointwise, self.nets());
        let ps = pw.y_shape();
        let c = Shape::vec(ps.c());
        let affine = affine.then(|| {
            (
                self.param(c, group, Init::Const(1.0), &format!("{name}.bn.weight")),
                self.param(c, group, Init::Const(0.0), &format!("{name}.bn.bias")),
            )
        });
        let running = (
            self.state(c, 0.0, &format!("{name}.bn.running_mean")),
            self.state(c, 1.0, &format!("{name}.bn.running_var")),
        );
        let bn = BnGeom { n: ps.n(), c: ps.c(), hw: ps.hw(), eps: 1e-5, momentum: 0.1 };
        let geom = ChainGeom::new(dw, pw, bn).expect("a depthwise conv, a 1×1 conv on its output, its BatchNorm");
        let (d, p, saved) = (self.aux_buf(dw.y_shape().numel()), self.aux_buf(ps.numel()), self.aux_buf(2 * ps.c()));
        let out = self.value(ps);
        self.push(Chain { x, w_dw, w_pw, out, affine, running, d, p, saved, geom: Box::new(geom) })
    }
}

impl<R: Recorder> RecordConv for R where R::Op: Variant<Conv2d> + Variant<Chain> {}

/// The geometry of `spec` on input `s` with weights `ws`, `nets` networks
/// side by side (a dense conv is grouped by network).
fn conv_geom(s: Shape, ws: Shape, spec: ConvSpec, nets: usize) -> ConvGeom {
    let ConvSpec { k, stride, pad, dil, depthwise, relu_in } = spec;
    let groups = if depthwise { s.c() } else { nets };
    assert!(ws.h() == k && ws.w() == k, "conv: weight is {}×{}, spec says {k}×{k}", ws.h(), ws.w());
    assert!(ws.n().is_multiple_of(groups) && ws.c() == s.c() / groups, "conv: bad channels/groups");
    ConvGeom {
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
    }
}
