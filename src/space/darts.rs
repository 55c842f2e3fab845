//! The DARTS CNN search space (SPEC §3; quark0/darts `cnn/model_search.py`).

use crate::error::Result;
use crate::genotype::Genotype;
use crate::ops::conv::ConvSpec;
use crate::ops::elementwise::Term;
use crate::ops::record::*;
use crate::shape::Shape;
use crate::space::{Alphas, Derived, SearchSpace, SpaceKind};
use crate::tape::{Init, NodeId, Tape};

pub use crate::space::primitive::{PRIMITIVES, Primitive};

/// Fewest cells: the two reduction cells (at L/3 and 2L/3) and a normal cell.
pub const MIN_LAYERS: usize = 3;

/// Shape of the supernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperNetConfig {
    /// Initial channels C.
    pub c: usize,
    /// Number of cells L; cells L/3 and 2L/3 reduce.
    pub layers: usize,
    pub classes: usize,
    pub in_channels: usize,
    /// Intermediate nodes per cell.
    pub steps: usize,
    /// How many of the last nodes are concatenated into the cell output.
    pub multiplier: usize,
    pub stem_multiplier: usize,
}

impl SuperNetConfig {
    pub fn new(c: usize, layers: usize, classes: usize, in_channels: usize) -> Self {
        SuperNetConfig { c, layers, classes, in_channels, steps: 4, multiplier: 4, stem_multiplier: 3 }
    }

    /// Edges per cell: node i has 2 + i incoming edges.
    pub fn edges(&self) -> usize {
        (0..self.steps).map(|i| 2 + i).sum()
    }

    pub fn is_reduction(&self, layer: usize) -> bool {
        layer == self.layers / 3 || layer == 2 * self.layers / 3
    }
}

/// The nodes of one recorded supernet.
#[derive(Clone, Debug)]
pub struct SuperNet {
    pub logits: NodeId,
    pub weight_params: Vec<NodeId>,
}

/// Softmax weights of both α matrices: `(normal, reduce)`, each `(edges, 8)`.
#[derive(Clone, Copy, Debug)]
pub struct MixWeights {
    pub normal: NodeId,
    pub reduce: NodeId,
}

/// Records the two α parameters `(edges, 8)`, initialised `1e-3·N(0, 1)`,
/// and their row softmaxes.
pub fn alphas(t: &mut Tape, cfg: &SuperNetConfig, group: u32) -> (NodeId, NodeId, MixWeights) {
    let s = Shape::mat(cfg.edges(), PRIMITIVES.len());
    let an = t.param(s, group, Init::Normal(1e-3), "alpha_normal");
    let ar = t.param(s, group, Init::Normal(1e-3), "alpha_reduce");
    let mw = MixWeights { normal: t.softmax_rows(an), reduce: t.softmax_rows(ar) };
    (an, ar, mw)
}

/// Records a supernet on input `x`; its weights go to parameter `group`.
pub fn supernet(t: &mut Tape, cfg: &SuperNetConfig, x: NodeId, mw: MixWeights, group: u32) -> SuperNet {
    let first = t.nodes.len();
    let c_stem = cfg.stem_multiplier * cfg.c;
    let s = t.conv(x, c_stem, ConvSpec::dense(3, 1, 1), group, "stem.conv");
    let stem = t.batch_norm(s, true, group, "stem.bn");
    let (mut s0, mut s1) = (stem, stem);
    let mut c_curr = cfg.c;
    let mut reduction_prev = false;
    for layer in 0..cfg.layers {
        let reduction = cfg.is_reduction(layer);
        if reduction {
            c_curr *= 2;
        }
        let w = if reduction { mw.reduce } else { mw.normal };
        let cell = Cell { c: c_curr, reduction, reduction_prev, steps: cfg.steps, multiplier: cfg.multiplier };
        let out = cell.record(t, s0, s1, w, group, &format!("cells.{layer}"));
        (s0, s1) = (s1, out);
        reduction_prev = reduction;
    }
    let pooled = t.global_avg_pool(s1);
    let logits = t.linear(pooled, cfg.classes, group, "classifier");
    let weight_params = t.params(group).into_iter().filter(|&p| p >= first).collect();
    SuperNet { logits, weight_params }
}

/// One search cell.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub c: usize,
    pub reduction: bool,
    pub reduction_prev: bool,
    pub steps: usize,
    pub multiplier: usize,
}

impl Cell {
    /// Records the cell on states `s0`, `s1` with mixing weights `w`
    /// (`(edges, 8)` softmax of α); returns the concatenated output.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, t: &mut Tape, s0: NodeId, s1: NodeId, w: NodeId, group: u32, name: &str) -> NodeId {
        let c = self.c;
        let p0 = if self.reduction_prev {
            factorized_reduce(t, s0, c, false, group, &format!("{name}.preprocess0"))
        } else {
            relu_conv_bn(t, s0, c, false, group, &format!("{name}.preprocess0"))
        };
        let p1 = relu_conv_bn(t, s1, c, false, group, &format!("{name}.preprocess1"));
        let mut states = vec![p0, p1];
        let mut edge = 0;
        for _ in 0..self.steps {
            let mut terms = Vec::new();
            let mut out_shape = None;
            for (j, &h) in states.clone().iter().enumerate() {
                let stride = if self.reduction && j < 2 { 2 } else { 1 };
                let (shape, ts) = mixed_edge(t, h, c, stride, edge, group, &format!("{name}.ops.{edge}"));
                out_shape = Some(shape);
                terms.extend(ts);
                edge += 1;
            }
            let node = t.mix(&terms, w, out_shape.expect("every node has at least two edges"));
            states.push(node);
        }
        t.concat(&states[states.len() - self.multiplier..])
    }
}

/// ReLU → 1×1 conv → BN; the BN has γ, β only with `affine` (the search
/// network has none, the evaluation network has them everywhere).
pub fn relu_conv_bn(t: &mut Tape, x: NodeId, c_out: usize, affine: bool, group: u32, name: &str) -> NodeId {
    let y = t.conv(x, c_out, ConvSpec::pointwise(1).after_relu(), group, &format!("{name}.conv"));
    t.batch_norm(y, affine, group, &format!("{name}.bn"))
}

/// ReLU, then two 1×1 stride-2 convs to `c_out/2` channels each, the second
/// on the input shifted by one pixel, concatenated, then BN (γ, β with `affine`).
pub fn factorized_reduce(t: &mut Tape, x: NodeId, c_out: usize, affine: bool, group: u32, name: &str) -> NodeId {
    assert!(c_out.is_multiple_of(2), "FactorizedReduce needs an even channel count");
    let a = t.conv(x, c_out / 2, ConvSpec::pointwise(2).after_relu(), group, &format!("{name}.conv_1"));
    let xs = t.shift(x);
    let b = t.conv(xs, c_out / 2, ConvSpec::pointwise(2).after_relu(), group, &format!("{name}.conv_2"));
    let cat = t.concat(&[a, b]);
    t.batch_norm(cat, affine, group, &format!("{name}.bn"))
}

/// ReLU → depthwise k×k (stride, dilation) → 1×1 conv → BN (γ, β with `affine`).
#[allow(clippy::too_many_arguments)]
pub fn dil_conv(
    t: &mut Tape,
    x: NodeId,
    c_out: usize,
    k: usize,
    stride: usize,
    dil: usize,
    affine: bool,
    group: u32,
    name: &str,
) -> NodeId {
    t.chain(x, c_out, ConvSpec::depthwise(k, stride, dil).after_relu(), affine, group, name)
}

/// Two stacked dilation-1 `dil_conv`s, the first with the stride.
#[allow(clippy::too_many_arguments)]
pub fn sep_conv(
    t: &mut Tape,
    x: NodeId,
    c: usize,
    k: usize,
    stride: usize,
    affine: bool,
    group: u32,
    name: &str,
) -> NodeId {
    let a = dil_conv(t, x, c, k, stride, 1, affine, group, &format!("{name}.0"));
    dil_conv(t, a, c, k, 1, 1, affine, group, &format!("{name}.1"))
}

/// Records primitive `p` on `x` as DARTS' `OPS[name](C, stride, affine)`
/// builds it; `None` for `none` (a zero contribution). Pools carry no BN
/// here: the search network adds one after each pool in [`mixed_edge`], the
/// evaluation network none.
#[allow(clippy::too_many_arguments)]
pub fn primitive(
    t: &mut Tape,
    p: Primitive,
    x: NodeId,
    c: usize,
    stride: usize,
    affine: bool,
    group: u32,
    name: &str,
) -> Option<NodeId> {
    let name = format!("{name}.{}", p.name());
    Some(match p {
        Primitive::None => return None,
        Primitive::MaxPool3x3 => t.max_pool(x, stride),
        Primitive::AvgPool3x3 => t.avg_pool(x, stride),
        Primitive::SkipConnect if stride == 1 => x,
        Primitive::SkipConnect => factorized_reduce(t, x, c, affine, group, &name),
        Primitive::SepConv3x3 => sep_conv(t, x, c, 3, stride, affine, group, &name),
        Primitive::SepConv5x5 => sep_conv(t, x, c, 5, stride, affine, group, &name),
        Primitive::DilConv3x3 => dil_conv(t, x, c, 3, stride, 2, affine, group, &name),
        Primitive::DilConv5x5 => dil_conv(t, x, c, 5, stride, 2, affine, group, &name),
    })
}

/// Records every primitive of one mixed edge; returns the output shape and
/// the terms `softmax(α)[edge, k] · op_k(x)` for the node's
/// [`mix`](crate::ops::elementwise::RecordElementwise::mix).
pub fn mixed_edge(
    t: &mut Tape,
    x: NodeId,
    c: usize,
    stride: usize,
    edge: usize,
    group: u32,
    name: &str,
) -> (Shape, Vec<Term>) {
    let mut terms = Vec::new();
    for (k, p) in Primitive::ALL.into_iter().enumerate() {
        if let Some(out) = primitive(t, p, x, c, stride, false, group, name) {
            // DARTS' MixedOp: `OPS[...]` then, for a pool, BN without affine.
            let out = if p.is_pool() { t.batch_norm(out, false, group, &format!("{name}.{}", p.name())) } else { out };
            terms.push(Term { x: out, idx: edge * Primitive::ALL.len() + k });
        }
    }
    (t.shape(terms[0].x), terms)
}

/// Bytes the recording of one cell of one network takes at least (tape
/// nodes, ops and names; measured: about 640 nodes of ~150 bytes at C=16).
const TAPE_BYTES_PER_CELL: u128 = 64 << 10;

/// DARTS' space as a [`SearchSpace`].
#[derive(Clone, Copy, Debug)]
pub struct DartsSpace(pub SuperNetConfig);

impl SearchSpace for DartsSpace {
    fn kind(&self) -> SpaceKind {
        SpaceKind::Darts
    }

    fn ops(&self) -> &'static [&'static str] {
        &PRIMITIVES
    }

    fn alphas(&self, t: &mut Tape, group: u32) -> Alphas {
        let (an, ar, mw) = alphas(t, &self.0, group);
        Alphas { params: vec![(an, "normal"), (ar, "reduce")], softmax: vec![mw.normal, mw.reduce] }
    }

    fn supernet(&self, t: &mut Tape, x: NodeId, a: &Alphas, group: u32) -> SuperNet {
        supernet(t, &self.0, x, MixWeights { normal: a.softmax[0], reduce: a.softmax[1] }, group)
    }

    fn derive(&self, alphas: &[Vec<f64>]) -> Result<Derived> {
        let [an, ar] = alphas else { crate::bail!("DARTS' α is two matrices, got {}", alphas.len()) };
        let g = Genotype::from_alphas(an, ar, self.0.steps, self.0.multiplier);
        Ok(Derived { text: g.to_text(), json: g.to_json(an, ar), warning: None })
    }

    /// Every cell holds at least the 7 non-`none` outputs of each of its
    /// mixed edges at its own size.
    fn min_bytes(&self, batch: usize, image: Shape) -> u128 {
        let (mut c, mut hw) = (self.0.c as u128, (image.h() * image.w()) as u128);
        let mut elems = 0u128;
        for layer in 0..self.0.layers {
            if self.0.is_reduction(layer) {
                c *= 2;
                hw /= 4;
            }
            elems += self.0.edges() as u128 * 7 * batch as u128 * c * hw.max(1);
        }
        elems * 4 + self.0.layers as u128 * TAPE_BYTES_PER_CELL
    }
}
